"""User errors, and the one-line report every command gives them.

A mistake in what the user gave (a config key, an input file, a path, a server's reply)
raises a :class:`UserError` whose message names where: ``FILE:LINE: field 'NAME': ...``
or the config key. Every command runs under :func:`cli`, which prints one line on stderr
and exits 2 for user errors (Hydra's own compose and override errors included) and 1 for
anything else (a bug: the line says so). ``KVSIM_TRACEBACK=1`` shows the full traceback
instead. This module imports nothing heavy: the CLIs import it first.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import NoReturn

USER_ERROR = 2
INTERNAL_ERROR = 1
TRACEBACK_ENV = "KVSIM_TRACEBACK"


class UserError(Exception):
    """Something the user gave is wrong; the message is one line naming where."""


class ConfigError(UserError, ValueError):
    """A config value or key is wrong; the message names the key."""


class InputFileError(UserError, FileNotFoundError):
    """An input file is missing or unreadable; the message names it and what to do."""


class MemoryLimitError(UserError, MemoryError):
    """The run's resident memory passed its limit (``memory_limit_gib``)."""


class Stop(BaseException):
    """Carries an error through code that turns Exceptions into warnings (Hydra's
    callbacks) up to :func:`cli`, which reports ``error``."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def traceback_wanted() -> bool:
    return os.environ.get(TRACEBACK_ENV, "") not in ("", "0")


def one_line(text: str) -> str:
    """A multi-line message as one line: list items joined with ', ', lines with '; '."""
    text = str(text).split("Config search path:")[0]  # Hydra's list of where it looked
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("See https://hydra.cc", "object_type="))]
    out: list[str] = []
    listing = False
    for ln in lines:
        if listing and not ln.endswith(":"):
            out[-1] += (", " if not out[-1].endswith(":") else " ") + ln
            continue
        listing = ln.endswith(":")
        out.append(ln)
    return re.sub(r"\s+", " ", "; ".join(out)).strip()


def _omegaconf_message(e: BaseException) -> str:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    key = getattr(e, "full_key", None)
    return f"{key}: {msg}" if key else msg


def describe(e: BaseException) -> tuple[str, int]:
    """(one line, exit code) for an exception that reached the top of a command."""
    if isinstance(e, UserError):
        return one_line(str(e)), USER_ERROR
    if isinstance(e, FileNotFoundError | IsADirectoryError | NotADirectoryError | PermissionError):
        where = f": {e.filename}" if e.filename else ""
        return f"{e.strerror or one_line(str(e))}{where}", USER_ERROR
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 text ({e.reason} at byte {e.start})", USER_ERROR
    try:
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException
    except ImportError:  # pragma: no cover - hydra is a dependency
        HydraException = OmegaConfBaseException = ()  # type: ignore[assignment,misc]
    if isinstance(e, OmegaConfBaseException):
        return _omegaconf_message(e), USER_ERROR
    if isinstance(e, HydraException):
        msg = one_line(str(e))
        if getattr(e, "override", None):
            msg = f"override '{e.override}': {msg}"  # type: ignore[attr-defined]
        if isinstance(e.__cause__, OmegaConfBaseException):
            msg = f"{msg}: {_omegaconf_message(e.__cause__)}"
        return msg, USER_ERROR
    if isinstance(e, MemoryError):
        return "out of memory (set memory_limit_gib lower to stop such runs earlier)", USER_ERROR
    detail = one_line(str(e))
    return (
        f"internal error: {type(e).__name__}{': ' + detail if detail else ''} "
        f"(a bug in kvsim; {TRACEBACK_ENV}=1 shows the traceback)",
        INTERNAL_ERROR,
    )


def quick_exit() -> None:
    """Skip the interpreter's last garbage collection when this process exits (idempotent).

    At exit Python collects every object it tracks, which after kvsim's imports (numpy,
    pandas, matplotlib, seaborn, scipy, numba) takes about 0.5 s here, and a joblib worker's
    exit is on its sweep's critical path. :func:`gc.freeze`, an :mod:`atexit` handler, moves
    everything out of that collection's reach; the other handlers run as before (log files
    are flushed and closed by ``logging``'s), objects are still released as their modules
    are cleared, and only garbage in reference cycles is left to the OS. Commands call it
    (:func:`cli`), and so do the sweep's jobs and tasks in worker processes."""
    global _QUICK_EXIT
    if not _QUICK_EXIT:
        import atexit
        import gc

        atexit.register(gc.freeze)
        _QUICK_EXIT = True


_QUICK_EXIT = False


def cli(main: Callable[[], int | None], prog: str = "kvsim") -> NoReturn:
    """Run a command's ``main``; report any error on one line with its exit code. Its
    process then exits without a last garbage collection (:func:`quick_exit`)."""
    quick_exit()
    if traceback_wanted():
        try:
            sys.exit(main() or 0)
        except Stop as s:
            raise s.error from s
    try:
        rc = main()
    except Stop as s:
        msg, code = describe(s.error)
        print(f"{prog}: error: {msg}", file=sys.stderr)
        sys.exit(code)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        msg, code = describe(e)
        print(f"{prog}: error: {msg}", file=sys.stderr)
        sys.exit(code)
    sys.exit(rc or 0)
