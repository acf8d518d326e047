"""A Redis client and server sharing one CPU, as two event loops that each run until they
block (``RedisIndex(shared_cpu=True)``): the set-up ``+experiment=redis_validation`` measures,
a one-thread open-loop client and a redis-server pinned to one CPU under SCHED_FIFO.

Why turns and not a queue of commands: on one CPU under run-to-block scheduling, the client
and the server alternate. The client's turn (``kvsim.calibrate.replay_client``) admits the
units that are due (each admitted unit takes the next connection, round robin, and sends its
first command if that connection is free), then handles every reply that is in, in
connection order (``select`` returns the sockets in descriptor order), each reply's turn
sending its unit's next command, or admitting the units that waited for it and the next
unit queued on its connection; it repeats while replies are in, then blocks. The server's
turn (Redis 7's ``aeMain``) reads and runs every command that has come in since its last
turn, in the order they came, and writes the replies (``beforeSleep``) before it blocks in
``epoll_wait``: every reply of a turn reaches the client when the server's turn ends.
Ordering the same work by event time instead (one FCFS queue) serves a burst's replies
between its sends and lets a command's round trip overlap the CPU's other work; on this
set-up both are wrong, and the inserts of a burst (the second phase of every request) came
out 25-50% late.

Costs: the client's, per command (``send``: its encoding and send; ``recv``: receiving and
parsing its reply), measured or drawn by :class:`RedisIndex`; a request's admission waits
``admit`` (a sleeping thread's timer wake-up) when the CPU is idle at its arrival. The
server's, per turn, ``turn_s`` (the event loop's part paid once per turn: ``epoll_wait``,
``beforeSleep``), per command, ``io_s - turn_s + io_per_key_s x keys`` (the rest of the
event loop: read, parse, write; ``io_s`` is measured with one command per turn) plus the
command's time (``INFO commandstats``, times its tail factor, times the key-count
scale); per turn, one draw of the round trip (``tcp_rtt_s`` and its tail: on loopback on one
CPU that is the kernel's work and the two context switches of a round trip, which the
validation's probes measure as a lone command's round trip less its send, receive, event
loop and command); and on every turn but the first after the CPU idled, ``turn_extra_s``:
what a turn inside a burst costs the server beyond a lone warm turn of as many commands (the
validation measures it on the server's own CPU counters over the replay's bursts; 0 by
default). Why a term of its own: the lone probes and the calibration's back-to-back rounds
see a server whose caches hold its own work, a burst's turns come between the client's
Python work on the same CPU, which evicts them. And per command on a connection that was
idle before it, ``idle_extra`` of that idle time (a connection unused for a second costs
the server several microseconds more on its next command than one used a moment ago; 0 by
default), charged to the event loop; for a command alone in its turn, the lone commands'
measurement of it. And on the first turn after the CPU idled, ``cold_per_command_s`` for
each command beyond the first (the cold round trip is a lone command's: a cold turn's
further commands find their connections' state as cold as its first's; 0 by default). And
on a warm turn, ``work_shift`` of the client's work since the server's last turn ended (the
time between the two: on one CPU the client's, as the CPU did not idle), also charged to
the event loop: a turn after a long reply's parsing costs more than one right after a
short reply (mostly the server's own CPU: the client's work evicts its state from the
caches, among other things), about what the validation's warm probes show at each amount
of work (none by default).

One SimPy process per index (the CPU), started by the first call; the calls' processes wait
on one event each.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, NamedTuple

import simpy

from kvsim.index.base import Op

if TYPE_CHECKING:
    from kvsim.index.redis import RedisIndex


class LoopCharges(NamedTuple):
    """What the model charged the server's event loop so far (:meth:`RedisIndex.loop_charges`)."""

    loop_s: float  # the turns' own parts and the commands' event-loop time (not the round trips, not the commands)
    commands: int  # commands served
    turns: int  # server turns that served them
    cold_turns: int  # of which the first after the CPU idled


class _Unit:
    """One ``execute`` call: its commands, their client costs, and its completion event."""

    __slots__ = ("ops", "costs", "done", "ready", "pos", "start", "follower")

    def __init__(self, ops: list[Op], costs: list[tuple[float, float, float]], done: simpy.Event, ready: float,
                 follower: bool) -> None:
        self.ops = ops
        self.costs = costs  # (admit, send, recv) per command
        self.done = done
        self.ready = ready
        self.pos = 0  # the command in flight or next
        self.start = ready  # when that command became ready
        self.follower = follower


class OneCpuLoops:
    """The client's and the server's event loops on one CPU (see the module docstring)."""

    def __init__(self, env: simpy.Environment, ix: RedisIndex, connections: int) -> None:
        self.env = env
        self.ix = ix
        n = connections
        self.cur: list[_Unit | None] = [None] * n  # the unit on each connection
        self.queue: list[deque[_Unit]] = [deque() for _ in range(n)]
        self.next_conn = 0
        self.last_send = [-math.inf] * n  # when each connection last sent a command
        self.idle_s = [0.0] * n  # how long it was idle before the command in flight on it (idle_knots)
        self.due: deque[_Unit] = deque()  # units ready by the clock, not yet admitted
        self.followers: list[_Unit] = []  # units made ready by a reply, admitted in its turn
        self.inbox: list[int] = []  # connections whose command reached the server, in order
        self.replies: set[int] = set()  # connections whose reply reached the client
        self.handling = False  # inside a reply's turn (a call made now follows that reply)
        self.idle: simpy.Event | None = None  # the blocked CPU's wake-up
        self.cold = True  # the CPU has been idle since the server's last turn
        self.cold_level: float | None = None  # the quantile level of the cold turn's round trip (RedisIndex.cold_level)
        # the server's event-loop time charged so far (not the round trips or the commands),
        # the commands served and the turns that served them: what the validation compares
        # with the server's measured CPU and its thread's context switches
        self.loop_s = 0.0
        self.commands = 0
        self.turns = 0
        self.cold_turns = 0
        self.last_end = -math.inf  # when the server's last turn ended (work_shift)
        env.process(self._cpu())

    def submit(self, ops: list[Op], costs: list[tuple[float, float, float]]) -> simpy.Event:
        env = self.env
        u = _Unit(ops, costs, env.event(), env.now, self.handling)
        if self.handling:
            self.followers.append(u)
        else:
            self.due.append(u)
            if self.idle is not None and not self.idle.triggered:
                self.idle.succeed()
        return u.done

    # --- the client's turn -------------------------------------------------------------
    def _send(self, c: int, t: float) -> float:
        u = self.cur[c]
        assert u is not None
        t = self._book(t, u.costs[u.pos][1])
        self.idle_s[c] = t - self.last_send[c]
        self.last_send[c] = t
        self.inbox.append(c)
        return t

    def _admit(self, u: _Unit, t: float) -> float:
        c = self.next_conn
        self.next_conn = (c + 1) % len(self.cur)
        if self.cur[c] is None:
            self.cur[c] = u
            u.start = u.ready
            return self._send(c, t)
        self.queue[c].append(u)
        return t

    def _book(self, t: float, cost: float) -> float:
        return self.ix.server.serve(t, cost) if cost > 0 else t

    def _client_turn(self, t: float) -> Generator[simpy.Event, Any, float]:
        env, rec = self.env, self.ix.recorder
        while True:
            if t > env.now:  # let the arrivals up to now happen
                yield env.timeout(t - env.now)
            while self.due and self.due[0].ready <= t:
                t = self._admit(self.due.popleft(), t)
            if not self.replies:
                if t > env.now:  # another pass: what came due while it sent
                    continue
                return t
            ready = sorted(self.replies)
            self.replies.clear()
            for c in ready:
                u = self.cur[c]
                assert u is not None
                t = self._book(t, u.costs[u.pos][2])
                if rec is not None:
                    rec.add(u.ops[u.pos], u.start, t - u.start)
                u.pos += 1
                u.start = t
                if u.pos < len(u.ops):
                    t = self._send(c, t)
                    continue
                # the unit is done: its caller runs now and may start a unit that follows it
                if t > env.now:
                    yield env.timeout(t - env.now)
                u.done.succeed()
                self.handling = True
                yield env.timeout(0)
                self.handling = False
                for f in self.followers:
                    t = self._admit(f, t)
                self.followers.clear()
                self.cur[c] = None
                if self.queue[c]:
                    nxt = self.queue[c].popleft()
                    self.cur[c] = nxt
                    nxt.start = nxt.ready
                    t = self._send(c, t)

    # --- the server's turn -------------------------------------------------------------
    def _server_turn(self, t: float) -> float:
        ix = self.ix
        svc: Callable[[], float] = ix.service_draw
        scale = ix.key_scale()
        n = len(self.inbox)
        # the turn's own part of the event loop (epoll_wait, beforeSleep) once, the rest of
        # io_s per command (io_s is measured with one command per turn)
        loop = ix.turn_s * (1 - n)
        if self.cold:
            level, self.cold_level = self.cold_level, None
            cost = ix.rtt_cold_draw() if level is None else ix.rtt_cold_draw.at(level)
            loop += ix.cold_per_command_s * (n - 1)
            self.cold_turns += 1
            self.cold = False
        else:
            cost = ix.rtt_draw() + ix.turn_extra_s
            if ix.work_log_knots:
                loop += ix.work_shift(t - self.last_end)
        cost += loop
        idle = ix.idle_extra if ix.idle_log_knots or ix.lone_idle_log_knots else None
        for c in self.inbox:
            u = self.cur[c]
            assert u is not None
            op = u.ops[u.pos]
            io = ix.io(op)
            if idle is not None:  # (the idle extra is the event loop's too: it is not the command's)
                io += idle(self.idle_s[c], n == 1)
            loop += io
            cost += io + op.server_s * scale * svc()
        self.loop_s += loop
        self.commands += n
        self.turns += 1
        self.replies.update(self.inbox)
        self.inbox.clear()
        self.last_end = self._book(t, max(cost, 0.0))
        return self.last_end

    def charges(self) -> LoopCharges:
        return LoopCharges(self.loop_s, self.commands, self.turns, self.cold_turns)

    def _cpu(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        woke = True  # the loop starts asleep: the first call wakes it, as a later one wakes it after idling
        while True:
            if not self.due and not self.inbox and not self.replies:
                self.idle = env.event()
                self.cold = True
                yield self.idle
                self.idle = None
                woke = True
            if woke:
                woke = False
                u = self.due[0]  # the sleeping client's timer wakes it
                late = u.costs[0][0] if u.costs else 0.0
                self.cold_level = self.ix.cold_level(late)  # the coming cold turn's, with the wake-up's lateness
                if late > 0:
                    yield env.timeout(late)
            t = env.now
            t = yield from self._client_turn(t)
            if self.inbox:
                t = self._server_turn(t)
            if t > env.now:
                yield env.timeout(t - env.now)
