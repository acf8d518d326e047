"""Lock words of a remote B+tree, and how a compute node waits for them.

A write takes its node's lock word with an RDMA CAS, holds it across the READ of the node
and the WRITE of its change, and releases it with the last WRITE (the unlock is one more
work request of that batch). Two ways to wait for a lock held by someone else, as the two
papers do it:

``local`` (Sherman's hierarchical on-chip lock, HOCL; thustorage/Sherman src/Tree.cpp
``acquire_local_lock`` / ``can_hand_over`` / ``releases_local_lock``): the compute node keeps
a local ticket lock per lock word. A writer first takes a local ticket; if another thread
of the node holds the lock it *waits locally* (no RDMA). The holder, when it writes the node
back, checks for local waiters: if there are some, and fewer than ``max_handover`` (Sherman's
``kMaxHandOverTime`` = 8) threads had the lock since its CAS, it hands the lock over -- its WRITE
carries no unlock and the next waiter proceeds at once, without a CAS; otherwise its WRITE
unlocks the remote word and the next waiter CASes it. With one compute node a remote CAS
then never fails.

``spin`` (CHIME, dmemsys/CHIME src/Tree.cpp ``lock_node``: a masked CAS on the lock word
embedded in the node; on failure the coroutine yields to the thread's others and
re-issues the CAS; Sherman without its local table: ``try_lock_addr``, ``goto retry``):
every writer CASes the remote word; a CAS that reaches it while it is held fails, costs a
round trip and is retried after ``backoff_s`` (0 in both papers: the retry is posted as soon
as the failed CAS completes). CHIME's local lock table combines writes of the *same key*
only, so writers of different keys in one leaf meet at the remote lock.

Timing of the remote word: a CAS takes effect when it reaches the memory node, about half
a round trip after it is posted (``arrival``); an unlock takes effect when its WRITE lands,
half a round trip before the writer sees the completion (``unlock_at``). The holder knows
both when it posts (the NIC and queue pairs are virtual clocks), so a CAS succeeds exactly
when it arrives after the last unlock landed and before anyone else's CAS.

Spinning is simulated without an event per failed CAS (written for speed: under remapped
keys hundreds of thousands of CASes fail on the rightmost leaf). A spinner is a sequence of
CAS arrivals, each one round trip (drawn from the atomic's distribution) plus the backoff
after the last. When the holder posts its unlock (landing at L), every spinner's failed
arrivals before L are counted, and the spinner whose next arrival comes first after L is
woken at that CAS's completion; it takes the lock unless a new writer's first CAS got there
in between (then it spins on). Failed CASes are counted and timed but not booked on the
NIC (8 bytes each: a 5 ns share of a 215 M msg/s NIC).

``slots``: Sherman keeps 32,768 lock words in the NIC's 256 KB on-chip memory and maps a
node to ``hash(node) % slots`` (two nodes may share a word); CHIME embeds one lock in every
node (``slots = 0``: one word per node).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import simpy

from kvsim.index.keys import mix64

LOCK_WAITS = ("local", "spin")


class Spinner:
    """A writer spinning on a remote lock word: its CAS arrivals and failures so far."""

    __slots__ = ("next", "fails", "event", "period")

    def __init__(self, env: simpy.Environment, first: float, period: Callable[[], float]) -> None:
        self.next = first  # arrival time of its next CAS at the word
        self.fails = 0
        self.event = env.event()  # fires at the completion of a CAS that may win
        self.period = period  # one CAS round trip + the backoff, drawn per attempt


class _Word:
    __slots__ = ("busy", "queue", "handovers", "held_until", "spinners")

    def __init__(self) -> None:
        self.busy = False  # local: a thread of this node holds it
        self.queue: deque[simpy.Event] = deque()  # local waiters, FIFO (ticket order)
        self.handovers = 0  # consecutive hand-overs (local)
        self.held_until = -math.inf  # remote word: held until this time (inf: no unlock posted yet)
        self.spinners: list[Spinner] = []


class LockTable:
    def __init__(self, wait: str = "local", slots: int = 0, max_handover: int = 8, backoff_s: float = 0.0) -> None:
        if wait not in LOCK_WAITS:
            raise ValueError(f"lock_wait must be one of {LOCK_WAITS}, got {wait!r}")
        if slots < 0 or max_handover < 0 or backoff_s < 0:
            raise ValueError("lock_slots, max_handover and cas_backoff_s must be >= 0")
        self.wait = wait
        self.local = wait == "local"
        self.slots = slots
        self.max_handover = max_handover
        self.backoff_s = backoff_s
        self.words: dict[int, _Word] = {}
        self.acquired = 0
        self.handed = 0
        self.cas_failed = 0

    def slot(self, node_id: int) -> int:
        return mix64(node_id) % self.slots if self.slots else node_id

    def _word(self, slot: int) -> _Word:
        w = self.words.get(slot)
        if w is None:
            w = self.words[slot] = _Word()
        return w

    # --- local waiting (HOCL) ----------------------------------------------------------
    def enter(self, env: simpy.Environment, slot: int) -> simpy.Event | None:
        """Take a local ticket: None if the lock is free (CAS it), else an event that
        fires with ``True`` (handed over: no CAS) or ``False`` (CAS it) when it is ours."""
        w = self._word(slot)
        if not w.busy:
            w.busy = True
            return None
        ev = env.event()
        w.queue.append(ev)
        return ev

    def will_hand_over(self, slot: int) -> bool:
        """Decided when the holder posts its write-back (Sherman's ``can_hand_over``:
        ``hand_time`` counts the chain's acquisitions, the CAS one included, so at most
        ``max_handover - 1`` hand-overs follow one CAS)."""
        w = self._word(slot)
        return bool(w.queue) and w.handovers + 1 < self.max_handover

    def leave(self, slot: int, handing: bool) -> None:
        """The holder's write-back completed: pass the lock to the next local waiter."""
        w = self._word(slot)
        self.acquired += 1
        if w.queue:
            if handing:
                w.handovers += 1
                self.handed += 1
            else:
                w.handovers = 0
            w.queue.popleft().succeed(handing)
        else:
            w.busy = False
            w.handovers = 0

    # --- the remote word (spin) ----------------------------------------------------------
    def try_cas(self, slot: int, arrival: float) -> bool:
        """A CAS that reached the word at ``arrival``: True if it took the lock."""
        w = self._word(slot)
        if w.held_until <= arrival:
            w.held_until = math.inf
            return True
        self.cas_failed += 1
        return False

    def unlock_at(self, env: simpy.Environment, slot: int, landing: float, half: float) -> None:
        w = self._word(slot)
        w.held_until = landing
        if w.spinners:
            self._wake_next(env, w, half)

    def spin(self, env: simpy.Environment, slot: int, spinner: Spinner, half: float) -> None:
        """Register a spinner (after a failed CAS); it is woken when it may win."""
        w = self._word(slot)
        w.spinners.append(spinner)
        if w.held_until < math.inf:
            self._wake_next(env, w, half)

    def _wake_next(self, env: simpy.Environment, w: _Word, half: float) -> None:
        landing = w.held_until
        best: Spinner | None = None
        for s in w.spinners:
            while s.next < landing:  # these CASes reached the word while it was held
                s.fails += 1
                self.cas_failed += 1
                s.next += s.period()
            if best is None or s.next < best.next:
                best = s
        assert best is not None
        w.spinners.remove(best)
        ev = best.event

        def wake(_: simpy.Event) -> None:
            ev.succeed()

        t = env.timeout(max(0.0, best.next + half - env.now))
        t.callbacks.append(wake)

    def release_spin(self, slot: int) -> None:
        self.acquired += 1
