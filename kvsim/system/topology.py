"""The node's devices and links as a networkx graph; a transfer books every queue on its path.

Devices are nodes (``gpu0``, ``host0``, ``ssd0``, ``nic0``, ``remote``...); links are edges
with a bandwidth per direction (``bandwidth_Bps`` from ``a`` to ``b``,
``reverse_bandwidth_Bps`` back, the same by default), ``latency_s`` and ``parallelism`` (how
many transfers a direction serves at once, each at full bandwidth: DMA engines, queues).
Links are full duplex: one queue per direction, so loads flowing up do not wait for
demotions flowing down (``full_duplex=False``: one queue per link for both directions).
A device can have a medium of its own (``Device``: an SSD's flash, whose reads and writes
share one queue at their own bandwidths); a transfer out of it books its read, a transfer
into it its write -- so a demotion's write occupies the destination device.

A transfer of ``B`` bytes from ``src`` to ``dst`` follows the lowest-latency path and books
every queue on it at once (fork-join):

    each queue q of the path (link directions, the source's read, the destination's write):
        finish_q = q.serve(now, B / bandwidth_q)         (its own busy time, its own wait)
    done = max_q finish_q + sum of the links' latencies

Unloaded, the slowest hop sets the time; under load every hop's queue adds its own wait,
and each hop is busy only for its own share (a fast link between two slow ones serves other
transfers in between). Foreground transfers (a request's KV loads) are served before
background ones (demotions) at every queue, non-preemptively (:class:`PriorityServer`);
background ones are fire-and-forget. Modeling choice: the hops of a transfer are not coupled
in time beyond the fork-join (no flow control between them), exact for one-hop paths and
for paths where one hop dominates. ``every_hop=False`` is the previous model: a transfer
queues only at its slowest hop (every hop still carries its bytes).

:func:`expand` turns the configured templates (one ``gpu``, one ``host``...) into the devices
and links of N instances on H hosts: a device's scope is ``instance`` (one per instance: its
GPU), ``host`` (one per host: DRAM, NIC, SSD) or ``cluster`` (one: the remote pool); a link is
copied once per copy of its narrower end.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import networkx as nx

from kvsim.servers import PriorityServer, carry, defer_all, estimate_all, serve_all

SCOPES = ("instance", "host", "cluster")


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    bandwidth_Bps: float  # a -> b
    latency_s: float
    parallelism: int = 1
    name: str = ""
    reverse_bandwidth_Bps: float | None = None  # b -> a (None: the same)

    @property
    def key(self) -> str:
        return self.name or f"{self.a}-{self.b}"

    def bandwidth(self, src: str) -> float:
        """Bandwidth of the direction leaving ``src``."""
        if src == self.a or self.reverse_bandwidth_Bps is None:
            return self.bandwidth_Bps
        return self.reverse_bandwidth_Bps


@dataclass(frozen=True)
class Device:
    """A device whose medium is a queue of its own (reads and writes share it)."""

    name: str
    read_Bps: float
    write_Bps: float
    parallelism: int = 1


@dataclass(frozen=True)
class Path:
    """A precomputed route: its links, every queue it books, and the fixed latency."""

    src: str
    dst: str
    links: tuple[str, ...]
    bottleneck: str
    bandwidth_Bps: float  # the slowest hop
    latency_s: float
    hops: tuple[tuple[PriorityServer, float], ...] = field(default=(), compare=False)  # (queue, s per byte)
    carried: tuple[PriorityServer, ...] = field(default=(), compare=False)  # every queue its bytes cross


class Topology:
    def __init__(
        self,
        devices: list[str],
        links: list[Link],
        media: list[Device] | None = None,
        full_duplex: bool = True,
        priorities: bool = True,
        every_hop: bool = True,
    ) -> None:
        g = nx.Graph()
        g.add_nodes_from(devices)
        for ln in links:
            for end in (ln.a, ln.b):
                if end not in g:
                    raise ValueError(f"link {ln.key} names unknown device '{end}' (devices: {devices})")
            if ln.bandwidth_Bps <= 0 or (ln.reverse_bandwidth_Bps is not None and ln.reverse_bandwidth_Bps <= 0):
                raise ValueError(f"link {ln.key}: bandwidth must be > 0")
            if ln.parallelism < 1:
                raise ValueError(f"link {ln.key}: parallelism must be >= 1")
            g.add_edge(ln.a, ln.b, link=ln, latency=ln.latency_s)
        self.graph = g
        self.links = {ln.key: ln for ln in links}
        self.full_duplex = full_duplex
        self.every_hop = every_hop
        #: every queue, by its report name: link:<name>:<a>-><b> (or <a><-><b>), device:<name>
        self.queues: dict[str, PriorityServer] = {}
        self._dir: dict[tuple[str, str], PriorityServer] = {}  # (link key, source end) -> queue
        for ln in links:
            if full_duplex:
                for s, d in ((ln.a, ln.b), (ln.b, ln.a)):
                    q = PriorityServer(f"link:{ln.key}:{s}->{d}", ln.parallelism, priorities)
                    self.queues[q.name] = q
                    self._dir[(ln.key, s)] = q
            else:
                q = PriorityServer(f"link:{ln.key}:{ln.a}<->{ln.b}", ln.parallelism, priorities)
                self.queues[q.name] = q
                self._dir[(ln.key, ln.a)] = self._dir[(ln.key, ln.b)] = q
        self.media: dict[str, tuple[Device, PriorityServer]] = {}
        for m in media or []:
            if m.name not in g:
                raise ValueError(f"device medium '{m.name}' is not a device of the topology")
            if m.read_Bps <= 0 or m.write_Bps <= 0:
                raise ValueError(f"device {m.name}: read and write bandwidth must be > 0")
            q = PriorityServer(f"device:{m.name}", m.parallelism, priorities)
            self.queues[q.name] = q
            self.media[m.name] = (m, q)
        self._paths: dict[tuple[str, str], Path] = {}

    def queue(self, link: str, src: str) -> PriorityServer:
        """The queue of ``link`` in the direction leaving ``src`` (e.g. a host's NIC link,
        for an RDMA index's client that shares it with the KV traffic)."""
        return self._dir[(link, src)]

    def path(self, src: str, dst: str) -> Path:
        """The lowest-latency route from ``src`` to ``dst`` (cached)."""
        p = self._paths.get((src, dst))
        if p is None:
            p = self._route(src, dst)
            self._paths[(src, dst)] = p
        return p

    def _route(self, src: str, dst: str) -> Path:
        if src == dst:
            return Path(src, dst, (), "", float("inf"), 0.0)
        try:
            nodes = nx.shortest_path(self.graph, src, dst, weight="latency")
        except (nx.NetworkXNoPath, nx.NodeNotFound) as exc:
            raise ValueError(f"no path from '{src}' to '{dst}' in the topology") from exc
        hops: list[tuple[PriorityServer, float]] = []
        names: list[str] = []
        neck, neck_bw, lat = "", float("inf"), 0.0
        if src in self.media:
            m, q = self.media[src]
            hops.append((q, 1.0 / m.read_Bps))
            neck, neck_bw = q.name, m.read_Bps
        for u, v in zip(nodes, nodes[1:], strict=False):
            ln: Link = self.graph.edges[u, v]["link"]
            bw = ln.bandwidth(u)
            hops.append((self._dir[(ln.key, u)], 1.0 / bw))
            names.append(ln.key)
            lat += ln.latency_s
            if bw < neck_bw:
                neck, neck_bw = ln.key, bw
        if dst in self.media:
            m, q = self.media[dst]
            hops.append((q, 1.0 / m.write_Bps))
            if m.write_Bps < neck_bw:
                neck, neck_bw = q.name, m.write_Bps
        carried = tuple(q for q, _ in hops)
        if not self.every_hop:  # the previous model: only the slowest hop queues
            hops = [min(hops, key=lambda h: -h[1])]
        return Path(src, dst, tuple(names), neck, neck_bw, lat, tuple(hops), carried)

    # --- transfers (written for speed: a few calls per hop, no SimPy events) ---------------
    def transfer(self, now: float, path: Path, nbytes: int) -> float:
        """Book a foreground transfer starting at ``now``; return its completion time."""
        if not path.hops or nbytes <= 0:
            return now
        carry(path.carried, nbytes)
        return serve_all(path.hops, now, nbytes) + path.latency_s

    def defer(self, now: float, path: Path, nbytes: int) -> None:
        """Queue a background transfer (nobody waits for it)."""
        if nbytes <= 0:
            return
        carry(path.carried, nbytes)
        defer_all(path.hops, now, nbytes)

    def estimate(self, now: float, path: Path, nbytes: int) -> float:
        """When a foreground transfer started now would complete (nothing is booked)."""
        if not path.hops or nbytes <= 0:
            return now
        return estimate_all(path.hops, now, nbytes) + path.latency_s

    @property
    def bytes_moved(self) -> dict[str, int]:
        """Bytes through every queue (per link direction, per device)."""
        return {k[k.index(":") + 1 :]: q.bytes for k, q in self.queues.items()}

    def utilization(self, span_s: float) -> dict[str, float]:
        return {k: q.utilization(span_s) for k, q in self.queues.items()}


# --- N instances on H hosts from one template --------------------------------------------
@dataclass(frozen=True)
class Layout:
    """Which copy of every templated device an instance reaches."""

    instances: int
    instances_per_host: int
    scopes: Mapping[str, str]  # device template -> instance | host | cluster

    def __post_init__(self) -> None:
        if self.instances < 1:
            raise ValueError(f"gpu.instances: must be >= 1, got {self.instances}")
        if self.instances_per_host < 1:
            raise ValueError(f"system.instances_per_host: must be >= 1, got {self.instances_per_host}")
        for d, s in self.scopes.items():
            if s not in SCOPES:
                raise ValueError(f"system.devices.{d}: scope {s!r} is not one of {list(SCOPES)}")

    @property
    def hosts(self) -> int:
        return -(-self.instances // self.instances_per_host)

    def host_of(self, instance: int) -> int:
        return instance // self.instances_per_host

    def scope(self, template: str) -> str:
        return self.scopes.get(template, "cluster")

    def device(self, template: str, instance: int) -> str:
        """The copy of ``template`` that ``instance`` reaches."""
        s = self.scope(template)
        if s == "instance":
            return f"{template}{instance}"
        if s == "host":
            return f"{template}{self.host_of(instance)}"
        return template

    def copies(self, template: str) -> Iterator[tuple[str, int]]:
        """Every copy of ``template`` with one instance that reaches it."""
        s = self.scope(template)
        if s == "instance":
            yield from ((f"{template}{i}", i) for i in range(self.instances))
        elif s == "host":
            yield from ((f"{template}{h}", h * self.instances_per_host) for h in range(self.hosts))
        else:
            yield template, 0


def expand(layout: Layout, devices: list[str], links: list[Link], media: list[Device]) -> tuple[
    list[str], list[Link], list[Device]
]:
    """The concrete devices, links and media of ``layout`` from their templates."""
    rank = {s: i for i, s in enumerate(SCOPES)}
    out_dev = [name for d in devices for name, _ in layout.copies(d)]
    out_links: list[Link] = []
    for ln in links:
        narrow = ln.a if rank[layout.scope(ln.a)] <= rank[layout.scope(ln.b)] else ln.b
        for name, i in layout.copies(narrow):
            suffix = name[len(narrow) :]
            out_links.append(
                Link(layout.device(ln.a, i), layout.device(ln.b, i), ln.bandwidth_Bps, ln.latency_s,
                     ln.parallelism, f"{ln.key}{suffix}", ln.reverse_bandwidth_Bps)
            )
    out_media = [
        Device(name, m.read_Bps, m.write_Bps, m.parallelism) for m in media for name, _ in layout.copies(m.name)
    ]
    return out_dev, out_links, out_media
