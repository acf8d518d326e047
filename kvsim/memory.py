"""A guard on a run's memory: stop the run with a clear message instead of taking the
machine down; and :class:`OldObjects`, which keeps the garbage collector off a long run's
old objects.

A watcher thread reads the process's resident memory (RSS) every ``interval_s``. Past the
limit it raises :class:`~kvsim.errors.MemoryLimitError` in the thread that runs the
simulation, at its next Python instruction, so the run unwinds like any failed run (its
error is one line, naming ``memory_limit_gib``). If memory still grows past 1.25 x the
limit (``hard_factor``), or stays over it for ``grace_s`` (the thread is stuck in one long C call), the
process writes the same line and exits at once (exit code 2).
"""

from __future__ import annotations

import ctypes
import gc
import os
import resource
import sys
import threading
from types import TracebackType

from kvsim.errors import USER_ERROR, MemoryLimitError

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident memory of this process now (Linux: /proc; elsewhere: the peak so far)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:  # pragma: no cover - not Linux
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)


class MemoryGuard:
    """``with MemoryGuard(limit_bytes): run()`` stops ``run`` when RSS passes the limit."""

    def __init__(self, limit_bytes: int, interval_s: float = 0.05, grace_s: float = 10.0,
                 hard_factor: float = 1.25, what: str = "the run") -> None:
        self.limit = int(limit_bytes)
        self.interval_s = interval_s
        self.grace_s = grace_s
        self.hard_factor = hard_factor
        self.what = what
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._target = 0
        self.tripped = False

    def message(self, rss: int) -> str:
        return (
            f"memory_limit_gib: {self.what} reached {rss / 2**20:,.0f} MiB of resident memory, over "
            f"its limit of {self.limit / 2**20:,.0f} MiB; stopped (raise memory_limit_gib=GIB if the "
            "input needs it)"
        )

    def __enter__(self) -> MemoryGuard:
        self._target = threading.get_ident()
        self.peak = rss_bytes()
        if self.peak > self.limit:  # over before it starts: stop here, before anything is written
            raise _error(self.message(self.peak))()
        self._thread = threading.Thread(target=self._watch, name="kvsim-memory-guard", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.tripped and e is None:  # finished before the error arrived: drop it
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._target), None)

    def _watch(self) -> None:
        over_since: float | None = None
        raised_at = -1.0
        waited = 0.0
        while not self._stop.wait(self.interval_s):
            waited += self.interval_s
            rss = rss_bytes()
            self.peak = max(self.peak, rss)
            if rss <= self.limit:
                over_since = None
                continue
            msg = self.message(rss)
            if over_since is None:
                over_since = waited
            if rss > self.hard_factor * self.limit or waited - over_since > self.grace_s:
                os.write(2, f"kvsim: error: {msg}\n".encode())
                os._exit(USER_ERROR)
            # again every second while still inside the guard: code that catches every
            # Exception (a logging handler, say) may have swallowed the last one
            if waited - raised_at >= 1.0:
                self.tripped = True
                raised_at = waited
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self._target), ctypes.py_object(_error(msg))
                )


def _error(message: str) -> type[MemoryLimitError]:
    """A MemoryLimitError class carrying ``message`` (an exception raised in another thread
    is given as a class, so the message travels with the class)."""
    return type("MemoryLimitExceeded", (MemoryLimitError,), {"__str__": lambda self: message})


class OldObjects:
    """Keep Python's full garbage collections off a simulation's old objects.

    A full collection visits every object the collector tracks, and an overloaded run's live
    objects grow with its backlog (each waiting request's process, frame and record), so
    the collections grew with it: on 500 k requests of a day-long generated trace they took
    a quarter of the run (52 s; 39 s with the collector off, peak RSS equal). ``tick()``,
    called once per request, freezes every ``every`` calls what has survived a young
    collection (:func:`gc.freeze`: left out of later collections, still freed by reference
    counting when it dies); the ``with`` block's end unfreezes it. Garbage in a reference
    cycle among frozen objects waits for that end (none measurable here: peak RSS equal
    with the collector off). Does nothing while the collector is off or when something else
    has frozen objects (freezing is process-wide)."""

    def __init__(self, every: int = 4096) -> None:
        self.every = every
        self.active = False
        self.frozen = 0  # how many times this run froze
        self._n = 0

    def __enter__(self) -> OldObjects:
        self.active = gc.isenabled() and gc.get_freeze_count() == 0
        self._n = 0
        return self

    def tick(self) -> None:
        self._n += 1
        if self._n >= self.every and self.active:
            self._n = 0
            gc.collect(1)  # young garbage is collected, not frozen
            gc.freeze()
            self.frozen += 1

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self.active:
            gc.unfreeze()
            self.active = False
