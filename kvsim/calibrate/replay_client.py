"""An open-loop Redis client that replays a fixed command stream at given arrival times and
measures every command, and what the client itself spends on it.

The stream is a list of *units*: the commands one ``execute`` call of the simulated Redis
index sends, one after another on one connection (a request's lookup; its insert, which
becomes ready when its lookup's last reply is in). A unit becomes ready at its request's
arrival time (divided by the speed-up) or when the unit it follows completes; ready units
take the client's ``connections`` in turn (round robin, in the order they become ready) and
wait, FIFO, for their connection. One thread runs everything, as one event loop:

    loop:  admit the units that are due (arrival <= now)
           poll the sockets (select, no wait); none ready and the replay idle for a while:
               send one *probe* (a command of the stream's shapes on a separate connection)
               and time it alone; else wait in select until a reply or the next arrival
           for each reply: parse it, record it, send the connection's next command

Recorded per command: when it became ready (its unit's ready time for the first command,
the previous reply for the others), when its reply was parsed (latency = the difference:
connection wait, client thread, network, server), and the client thread's CPU, cut into
turns (see the loop): ``send_s`` for a command sent when its unit was admitted, ``recv_s``
for its reply's turn, which includes the sends that reply triggered. Also per request: how late the loop admitted it (``admit_late_s``: the
sleeping thread's wake-up after its select timed out).

Probes run only while nothing of the replay is in flight and the next arrival is at least
``probe_gap_s`` away, so they sample the machine at the same times as the replay without
touching it; they wait for their reply in ``select``, as the replay does. They come in pairs,
one pair per ``probe_every_s`` at most: the first after the loop has slept that long (as the
first command of a burst finds the machine: ``probe_cold``), the second right after it (as
the commands inside a burst do). With ``count_probes`` and a server on this machine, every
other pair is *counted*: the server thread's CPU is read from ``/proc`` right before and
after each of its probes (``probe_counted``); the others are timed with nothing between the
sleep or the reply before and their send, as the stream's commands are. Why both: those reads
shift the round trip they bracket (on the development VM a warm GET's network part 7 us
slower, a cold one 8 us faster, 300 pairs of each: the read after the sleep takes part of the
wake-up's cost, the one after a reply displaces what the next turn would find), so the model's
round trips come from the other pairs.
"""

from __future__ import annotations

import os
import selectors
import socket
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from kvsim.calibrate.redis_bench import main_thread_cpu, parse_commandstats, parse_info
from kvsim.calibrate.resp import RespError, encode


@dataclass
class Unit:
    request: int
    kinds: list[str]  # op kind of each command: get, range, insert
    keys: list[int]  # keys of each command
    payloads: list[bytes]
    after: int = -1  # the unit that must complete first (-1: ready at its request's arrival)


@dataclass
class Probe:
    kind: str
    keys: int
    payload: bytes
    after: bytes = b""  # an untimed command sent once the probe's reply is in (deleting what it wrote)
    before: bytes = b""  # an untimed command sent first when the probe is the second of a pair


@dataclass
class ReplayResult:
    # one row per command of the stream (in unit order)
    unit: np.ndarray
    kind: list[str]
    keys: np.ndarray
    ready_s: np.ndarray
    done_s: np.ndarray
    send_s: np.ndarray
    recv_s: np.ndarray
    # one row per probe
    probe_kind: list[str] = field(default_factory=list)
    probe_keys: list[int] = field(default_factory=list)
    probe_rtt_s: list[float] = field(default_factory=list)
    probe_send_s: list[float] = field(default_factory=list)
    probe_recv_s: list[float] = field(default_factory=list)
    probe_cold: list[bool] = field(default_factory=list)  # the first of a pair (after a sleep)
    # per cold probe: how late the loop woke from the sleep before it (what the select was
    # asked to wait, less what it took: the same lateness a burst's admission has, which
    # ``admit_late_s`` records), NaN when no timed sleep came right before it
    probe_late_s: list[float] = field(default_factory=list)
    # the server thread's CPU over each probe's turn (from /proc, no server call: a server
    # on this machine only; NaN elsewhere, and for a probe not counted)
    probe_server_cpu_s: list[float] = field(default_factory=list)
    # per probe: the server thread's CPU was read around it (every other pair, where it can
    # be read); the others are timed as the stream's commands are, nothing between the sleep
    # or the reply before and their send
    probe_counted: list[bool] = field(default_factory=list)
    admit_late_s: list[float] = field(default_factory=list)  # in admission order
    admit_of_request: dict[int, float] = field(default_factory=dict)  # request -> its lateness
    wall_s: float = 0.0
    waited_s: float = 0.0  # time spent waiting in select
    probing_s: float = 0.0  # time spent on probes
    # with ``count_probes``: the server's own time (INFO commandstats, seconds per command)
    # spent on the probes (their untimed commands included), so that the stream's is the
    # delta around the replay less this
    probe_server_s: dict[str, float] = field(default_factory=dict)
    probe_server_calls: dict[str, int] = field(default_factory=dict)  # ... and their calls
    probe_pairs: int = 0  # probe pairs counted
    # with ``count_probes`` on Redis 7+: the server's main-thread CPU over the stretches that
    # hold the stream's commands and no probe (from the reading before each to the one when
    # it went idle), their length, and the calls and commands' own seconds in them
    stream_cpu_s: float = 0.0
    stream_window_s: float = 0.0
    stream_calls: int = 0
    stream_usec_s: float = 0.0
    stream_windows: int = 0  # the stretches (each ends with one INFO reading, a call of its own)
    # ... and the times the server's main thread stopped running over those stretches (its
    # context switches, from /proc: a server on this machine only, else None): one per turn
    # of its event loop, which ends by blocking in epoll_wait
    stream_switches: int | None = None
    # the same over the probe pairs' stretches (each from the reading before the pair to
    # the one right after it: the sleep before the first probe, the pair and its untimed
    # commands): what a turn costs the server outside a burst
    pair_cpu_s: float = 0.0
    pair_window_s: float = 0.0
    pair_switches: int | None = None
    # with ``turn_cpu``: per wait for replies inside the stream (on one CPU the server's
    # turns run while the client waits), (its place in the busy period from 0, the server
    # thread's CPU over it, the replies it brought)
    turn_server_cpu: list[tuple[int, float, int]] = field(default_factory=list)

    @property
    def latency_s(self) -> np.ndarray:
        return self.done_s - self.ready_s


def reply_end(buf: bytearray | bytes, i: int = 0) -> int:
    """The index just past one complete RESP reply starting at ``buf[i]``, or -1."""
    j = buf.find(b"\r\n", i)
    if j < 0:
        return -1
    t = buf[i]
    if t in (43, 45, 58):  # + - :
        return j + 2
    n = int(buf[i + 1 : j])
    if t == 36:  # $ bulk string
        if n < 0:
            return j + 2
        end = j + 2 + n + 2
        return end if len(buf) >= end else -1
    if t == 42:  # * array
        k = j + 2
        for _ in range(max(n, 0)):
            if k >= len(buf):
                return -1
            k = reply_end(buf, k)
            if k < 0:
                return -1
        return k
    raise RespError(f"unexpected reply type {chr(t)!r}")


def _values(buf: bytes) -> list[bytes | None] | bytes | None:
    """Decode a complete reply (what a client library would hand the application)."""
    t = buf[0]
    if t == 45:
        raise RespError(buf[1:-2].decode(errors="replace"))
    if t in (43, 58):
        return buf[1:-2]
    if t == 36:
        j = buf.index(b"\r\n")
        n = int(buf[1:j])
        return None if n < 0 else bytes(buf[j + 2 : j + 2 + n])
    out: list[bytes | None] = []
    j = buf.index(b"\r\n")
    k = j + 2
    for _ in range(int(buf[1:j])):
        e = reply_end(buf, k)
        v = _values(buf[k:e])
        out.append(v if isinstance(v, bytes) or v is None else None)
        k = e
    return out


def open_socket(host: str, port: int) -> socket.socket:
    """A non-blocking TCP connection without Nagle's delay, as the replay's connections and
    probes use."""
    s = socket.create_connection((host, port), timeout=10.0)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    return s


def time_probe(sock: socket.socket, sel: selectors.BaseSelector, p: Probe) -> tuple[float, float, float]:
    """Send ``p`` alone and wait for its reply in ``select``: (send, receive, round trip).
    The receive runs from the wake-up to the parsed reply (the ``recv`` calls included), as
    a reply's turn in the replay is measured."""
    clock = time.perf_counter
    t0 = clock()
    sock.sendall(p.payload)
    t1 = clock()
    buf = bytearray()
    t2 = None
    while True:
        sel.select(1.0)
        if t2 is None:
            t2 = clock()
        buf += read_available(sock)
        if reply_end(buf) >= 0:
            _values(bytes(buf))
            t3 = clock()
            return t1 - t0, t3 - t2, t3 - t0


class TimedConnection:
    """One connection (:func:`open_socket`) with a selector of its own, whose commands are
    timed alone as the replay's probes are (:func:`time_probe`): what the stand-alone
    measurements (benchmarks/redis_*.py) send their chains on."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = open_socket(host, port)
        self.sel = selectors.SelectSelector()
        self.sel.register(self.sock, selectors.EVENT_READ)

    def round_trip_s(self, payload: bytes) -> float:
        """``payload`` sent alone: its round trip less its send and its receive."""
        send, recv, rtt = time_probe(self.sock, self.sel, Probe("get", 1, payload))
        return rtt - send - recv

    def close(self) -> None:
        self.sel.close()
        self.sock.close()

    def __enter__(self) -> TimedConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_available(sock: socket.socket) -> bytes:
    """What a non-blocking connection (a probe's, a benchmark's) has for us now (nothing yet: b"")."""
    try:
        chunk = sock.recv(1 << 16)
    except BlockingIOError:
        return b""
    if not chunk:
        raise RespError("the server closed the probe connection")
    return chunk


def untimed(sock: socket.socket, sel: selectors.BaseSelector, payload: bytes) -> bytearray:
    """Send ``payload`` and wait for its reply, untimed; the reply."""
    sock.sendall(payload)
    buf = bytearray()
    while reply_end(buf) < 0:
        sel.select(1.0)
        buf += read_available(sock)
    return buf


def server_counts(sock: socket.socket, sel: selectors.BaseSelector,
                  cpu: bool = True) -> tuple[dict[str, tuple[int, float]], float | None]:
    """``INFO cpu commandstats`` over the probe connection: calls of each command so far and
    the seconds spent in them, and the main thread's CPU seconds so far (None before Redis
    7, whose INFO takes one section: then commandstats alone; or with ``cpu=False``)."""
    for sections in ((("cpu", "commandstats"),) if cpu else ()) + (("commandstats",),):
        buf = untimed(sock, sel, encode("INFO", *sections))
        if buf[:1] != b"-":
            break
    text = bytes(buf[buf.find(b"\r\n") + 2 :]).decode(errors="replace")
    return {k: (v[0], v[1] * 1e-6) for k, v in parse_commandstats(text).items()}, main_thread_cpu(parse_info(text))


def server_thread_switches(pid: int) -> int | None:
    """The context switches so far of process ``pid``'s main thread (voluntary and not), from
    ``/proc``; None where there is no such thread here."""
    try:
        with open(f"/proc/{pid}/task/{pid}/status") as f:
            return sum(int(line.split()[1]) for line in f
                       if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")))
    except (OSError, ValueError, IndexError):
        return None


def server_thread_cpu(pid: int) -> float | None:
    """CPU seconds so far of process ``pid``'s main thread (``/proc/PID/task/PID/schedstat``,
    nanoseconds on the CPU); None where there is no such thread here."""
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
            return int(f.read().split()[0]) * 1e-9
    except (OSError, ValueError, IndexError):
        return None


def cpu_line_s(line: str) -> tuple[float, float] | None:
    """The first line of ``/proc/stat`` (``cpu`` and its ticks: user nice system idle iowait
    irq softirq steal ...) as CPU seconds busy (user, nice, system, irq, softirq) and stolen
    by the hypervisor (steal), all vCPUs together; None for another line."""
    f = line.split()
    if len(f) < 9 or f[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f[1:9])
    hz = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / hz, steal / hz


def process_cpu(pid: int) -> float | None:
    """CPU seconds so far of process ``pid``, all its threads (``/proc/PID/stat`` utime and
    stime); None where there is no such process here."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after the command name: state, ppid, ...
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class MachineShare(NamedTuple):
    """What the rest of this machine took while a replay ran, as fractions of all its vCPUs'
    time over it: ``others``, CPU busy beyond this process and the server's (other
    processes, and interrupts not charged to either); ``steal``, taken by the hypervisor."""

    others: float
    steal: float


class CpuMark(NamedTuple):
    """This machine's, this process's and the server's CPU at one moment (:func:`cpu_mark`)."""

    t: float
    busy_s: float
    steal_s: float
    own_s: float
    server_s: float


def cpu_mark(server_pid: int | None) -> CpuMark | None:
    """The CPU counters :func:`machine_share` takes the difference of; None where this
    machine's or the server's cannot be read (a server elsewhere, no ``/proc``)."""
    try:
        with open("/proc/stat") as f:
            machine = cpu_line_s(f.readline())
    except OSError:
        return None
    server = process_cpu(server_pid) if server_pid is not None else None
    if machine is None or server is None:
        return None
    own = os.times()
    return CpuMark(time.perf_counter(), machine[0], machine[1], own.user + own.system, server)


def machine_share(a: CpuMark | None, b: CpuMark | None, cpus: int | None = None) -> MachineShare | None:
    """What the rest of the machine took between marks ``a`` and ``b`` (:class:`MachineShare`):
    a replay measures the server and its client, so CPU that others took from them shows in
    its latencies and not in the model calibrated beside it."""
    if a is None or b is None or b.t <= a.t:
        return None
    total = (b.t - a.t) * (cpus or os.cpu_count() or 1)
    others = (b.busy_s - a.busy_s) - (b.own_s - a.own_s) - (b.server_s - a.server_s)
    return MachineShare(max(others, 0.0) / total, (b.steal_s - a.steal_s) / total)


def local_server_pid(sock: socket.socket, sel: selectors.BaseSelector) -> int | None:
    """The pid of the Redis server at the other end of ``sock`` (``INFO server``), if that
    server runs on this machine (its ``/proc`` entry is a redis-server); else None."""
    return local_redis_pid(bytes(untimed(sock, sel, encode("INFO", "server"))).decode(errors="replace"))


def local_redis_pid(info_server: str) -> int | None:
    """The ``process_id`` of an ``INFO server`` reply, if that process runs on this machine
    and is a redis-server (its ``/proc`` entry says so); else None."""
    pid = parse_info(info_server).get("process_id", "")
    if not pid.isdigit():
        return None
    try:
        with open(f"/proc/{pid}/comm") as f:
            return int(pid) if f.read().startswith("redis") else None
    except OSError:
        return None


def replay_open_loop(
    host: str,
    port: int,
    units: Sequence[Unit],
    arrival_s: Sequence[float],
    speedup: float,
    connections: int,
    probes: Sequence[Probe] = (),
    probe_gap_s: float = 1e-3,
    probe_every_s: float = 1e-2,
    lead_s: float = 0.05,
    timeout_s: float = 600.0,
    count_probes: bool = False,
    turn_cpu: bool = False,
) -> ReplayResult:
    """Replay ``units`` open loop: request ``r``'s first unit is due ``arrival_s[r] /
    speedup`` after the start. ``probes`` are sent in turn while the replay is idle.

    ``count_probes``: the server's own time spent on the probes, ``probe_server_s``: an
    ``INFO commandstats`` on the probe connection after each probe pair, and one when the
    stream has gone idle (nothing in flight, the next arrival more than ``probe_gap_s``
    away) after commands of its own; a pair's time is the delta from the last such reading.
    Neither reading falls inside a burst or right before a pair's first probe (which follows
    a sleep), and the client's time on them is charged to no command.

    ``turn_cpu`` (with ``count_probes``, a server on this machine): the server thread's CPU
    over each wait of the client for replies, by the wait's place in its busy period
    (``turn_server_cpu``: a diagnostic; the two ``/proc`` reads around each wait are
    charged to the client's pieces, as its other work is)."""
    if connections < 1:
        raise ValueError("connections must be >= 1")
    clock = time.perf_counter
    n_cmd = sum(len(u.payloads) for u in units)
    first_cmd = np.cumsum([0] + [len(u.payloads) for u in units])
    ready = np.zeros(n_cmd)
    done = np.zeros(n_cmd)
    send_s = np.zeros(n_cmd)
    recv_s = np.zeros(n_cmd)
    followers: dict[int, list[int]] = {}
    starters: list[list[int]] = [[] for _ in range(max((u.request for u in units), default=-1) + 1)]
    for i, u in enumerate(units):
        if u.after < 0:
            starters[u.request].append(i)
        else:
            followers.setdefault(u.after, []).append(i)
    req_order = sorted(range(len(starters)), key=lambda r: arrival_s[r])
    socks = [open_socket(host, port) for _ in range(connections)]
    probe_sock = open_socket(host, port) if probes else None
    probe_sel = selectors.SelectSelector()
    if probe_sock is not None:
        probe_sel.register(probe_sock, selectors.EVENT_READ)
    sel = selectors.SelectSelector()  # select(2): microsecond timeouts (epoll rounds up to a millisecond)
    for c, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, c)
    queue: list[deque[int]] = [deque() for _ in range(connections)]
    cur: list[int] = [-1] * connections  # the unit in flight on each connection
    pos: list[int] = [0] * connections  # its next command
    bufs = [bytearray() for _ in range(connections)]
    in_flight = 0
    next_conn = 0
    res = ReplayResult(
        np.repeat(np.arange(len(units)), [len(u.payloads) for u in units]),
        [k for u in units for k in u.kinds],
        np.array([k for u in units for k in u.keys], dtype=np.int64),
        ready, done, send_s, recv_s,
    )

    # The client thread's CPU is accounted in *turns*: every stretch of the loop that does
    # not wait is cut at each event, and each piece is charged to one command: the piece
    # that ends with a command's send is its ``send_s`` (an admitted unit's first command:
    # from the wake-up or the previous piece; a command sent because a reply came in: from
    # that reply's parse), the piece that ends with a reply parsed is its ``recv_s`` (the
    # select that returned it, if it did not wait, recv and parse). The loop's own work
    # after the last event of a stretch (the select that finds nothing, the next arrival,
    # the bookkeeping before it waits) is charged to that last piece: the thread is busy
    # until it waits. The model books them the same way: a reply and the send it triggers
    # in one turn of its client thread.
    counting = count_probes and probe_sock is not None
    dirty = False  # stream commands sent since the last INFO reading
    reading: dict[str, tuple[int, float]] = {}
    last: tuple[np.ndarray, int] | None = None  # the last piece charged
    mark = 0.0  # where the current turn began

    def send(c: int, t_ready: float) -> None:
        nonlocal in_flight, mark, last, dirty
        u = units[cur[c]]
        i = int(first_cmd[cur[c]]) + pos[c]
        ready[i] = t_ready
        socks[c].sendall(u.payloads[pos[c]])  # (a short command: the socket buffer takes it)
        dirty = True
        t = clock()
        send_s[i] = t - mark
        mark = t
        last = (send_s, i)
        in_flight += 1

    def admit(unit: int, t: float) -> None:
        """A unit becomes ready at ``t``: send its first command if its connection is free."""
        nonlocal next_conn, mark
        c = next_conn
        next_conn = (next_conn + 1) % connections
        if cur[c] < 0:
            cur[c], pos[c] = unit, 0
            send(c, t)
        else:
            queue[c].append(unit)
            ready[int(first_cmd[unit])] = t  # its first command is ready now, sent later

    def probe(p: Probe, cold: bool, counted: bool) -> None:
        assert probe_sock is not None
        if cold:
            res.probe_late_s.append(slept_late)
        if p.before and not cold:
            untimed(probe_sock, probe_sel, p.before)
        cpu0 = server_thread_cpu(pid) if pid is not None and counted else None
        send, recv, rtt = time_probe(probe_sock, probe_sel, p)
        cpu1 = server_thread_cpu(pid) if pid is not None and counted else None
        res.probe_counted.append(counted)
        res.probe_server_cpu_s.append(cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else float("nan"))
        if p.after:
            untimed(probe_sock, probe_sel, p.after)
        res.probe_kind.append(p.kind)
        res.probe_keys.append(p.keys)
        res.probe_send_s.append(send)
        res.probe_recv_s.append(recv)
        res.probe_rtt_s.append(rtt)
        res.probe_cold.append(cold)

    start = clock() + lead_s
    due = [start + arrival_s[r] / speedup for r in req_order]
    nxt = 0
    finished = 0
    last_probe = 0.0  # the loop's last work: a probe pair or a reply (a cold probe follows a sleep)
    k_probe = 0
    k_pair = 0

    cpu_at: tuple[float | None, float] = (None, 0.0)  # the last reading's CPU and when
    has_cpu = True  # the server reports its main thread's CPU (asked until it does not)
    # the server's thread, where it runs here: its context switches at the last reading
    pid = local_server_pid(probe_sock, probe_sel) if counting and probe_sock is not None else None
    switches_at: int | None = None
    if pid is not None:
        res.stream_switches = res.pair_switches = 0
    turn_place = 0  # (turn_cpu) the client's waits for replies since the stream was last idle
    slept_late = float("nan")  # how late the last sleep (a select that timed out) woke up

    def read_server(stream: bool = False, pair: bool = False) -> dict[str, tuple[int, float]]:
        """``stream``: the stretch since the last reading held the stream's commands only;
        ``pair``: a probe pair and nothing of the stream."""
        nonlocal last, mark, cpu_at, has_cpu, switches_at
        if last is not None:  # the stretch ends here: its tail is the last piece's
            last[0][last[1]] += clock() - mark
            last = None
        assert probe_sock is not None
        # read before the INFO call: the turn that answers it is not the stream's (and the
        # turn that answered the last reading had ended when it was read: on one CPU under
        # SCHED_FIFO the server blocks before this thread runs; on two, one may be miscounted)
        switches = server_thread_switches(pid) if pid is not None else None
        if switches is not None and switches_at is not None:
            if stream and res.stream_switches is not None:
                res.stream_switches += switches - switches_at
            elif pair and res.pair_switches is not None:
                res.pair_switches += switches - switches_at
        out, cpu = server_counts(probe_sock, probe_sel, has_cpu)
        switches_at = server_thread_switches(pid) if pid is not None else None
        has_cpu = cpu is not None
        t = clock()
        if stream and cpu is not None and cpu_at[0] is not None:
            res.stream_cpu_s += cpu - cpu_at[0]
            res.stream_window_s += t - cpu_at[1]
            for k, (n, v) in out.items():
                n0, v0 = reading.get(k, (0, 0.0))
                res.stream_calls += n - n0
                res.stream_usec_s += v - v0
            res.stream_windows += 1
        elif pair and cpu is not None and cpu_at[0] is not None:
            res.pair_cpu_s += cpu - cpu_at[0]
            res.pair_window_s += t - cpu_at[1]
        cpu_at = (cpu, t)
        mark = clock()
        return out

    if counting:
        reading = read_server()
    deadline = clock() + timeout_s + (arrival_s[req_order[-1]] / speedup if req_order else 0.0)
    mark = clock()
    try:
        while finished < n_cmd:
            now = clock()
            if now > deadline:
                raise TimeoutError(f"replay at x{speedup} did not finish in time ({finished}/{n_cmd} replies)")
            while nxt < len(due) and due[nxt] <= now:
                slept_late = float("nan")  # the sleep ended in an admission, not a probe
                res.admit_late_s.append(now - due[nxt])
                res.admit_of_request[req_order[nxt]] = now - due[nxt]
                for unit in starters[req_order[nxt]]:
                    admit(unit, due[nxt])
                nxt += 1
            events = sel.select(0)
            if not events:
                gap = (due[nxt] - now) if nxt < len(due) else float("inf")
                if counting and dirty and in_flight == 0 and gap > probe_gap_s:
                    reading, dirty = read_server(stream=True), False  # the stream has gone idle
                    continue
                if probes and in_flight == 0 and gap > probe_gap_s and now - last_probe >= probe_every_s:
                    t_p = clock()
                    counted = pid is not None and k_pair % 2 == 0
                    k_pair += 1
                    for cold in (True, False):  # one after the sleep, one right after it
                        probe(probes[k_probe % len(probes)], cold, counted)
                        k_probe += 1
                    if counting:  # the pair's share, read right after it
                        after = read_server(pair=True)
                        for k, (n, v) in after.items():
                            n0, v0 = reading.get(k, (0, 0.0))
                            res.probe_server_calls[k] = res.probe_server_calls.get(k, 0) + n - n0
                            res.probe_server_s[k] = res.probe_server_s.get(k, 0.0) + v - v0
                        reading = after
                        res.probe_pairs += 1
                    last_probe = mark = clock()
                    res.probing_s += last_probe - t_p
                    continue
                wait = None if nxt >= len(due) else max(0.0, due[nxt] - clock())
                if in_flight == 0 and wait is None:
                    break  # nothing due and nothing in flight: every unit is done
                if probes and in_flight == 0 and wait is not None and wait > probe_gap_s:
                    wait = min(wait, probe_every_s)
                if in_flight == 0:
                    turn_place = 0  # a busy period ends
                cpu_w = server_thread_cpu(pid) if turn_cpu and pid is not None and in_flight > 0 else None
                if last is not None:  # the stretch ends: its tail is the last piece's
                    last[0][last[1]] += clock() - mark
                    last = None
                t_w = clock()
                events = sel.select(wait)
                mark = clock()  # a wait (and its wake-up) is not the client's CPU
                res.waited_s += mark - t_w
                slept_late = mark - t_w - wait if wait is not None and not events and in_flight == 0 else float("nan")
                if cpu_w is not None and pid is not None:
                    cpu_after = server_thread_cpu(pid)
                    if cpu_after is not None:
                        res.turn_server_cpu.append((turn_place, cpu_after - cpu_w, len(events)))
                    turn_place += 1
            # replies in connection order (select's own order follows the descriptors'
            # hash slots): what the model's client does with the replies of one turn
            for key, _ in sorted(events, key=lambda e: int(e[0].data)):
                c = key.data
                try:
                    chunk = socks[c].recv(1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    raise RespError("the server closed a replay connection")
                buf = bufs[c]
                buf += chunk
                end = reply_end(buf)
                if end < 0:
                    continue
                _values(bytes(buf[:end]))
                del buf[:end]
                t = clock()
                i = int(first_cmd[cur[c]]) + pos[c]
                done[i] = t
                recv_s[i] = t - mark
                mark = t
                last = (recv_s, i)
                in_flight -= 1
                finished += 1
                last_probe = t
                u = units[cur[c]]
                pos[c] += 1
                if pos[c] < len(u.payloads):
                    send(c, t)
                else:
                    for f in followers.get(cur[c], []):
                        admit(f, t)
                    cur[c] = -1
                    if queue[c]:
                        cur[c], pos[c] = queue[c].popleft(), 0
                        send(c, ready[int(first_cmd[cur[c]])])
    finally:
        sel.close()
        probe_sel.close()
        for s in socks:
            s.close()
        if probe_sock is not None:
            probe_sock.close()
    res.wall_s = clock() - start
    return res
