"""The node's devices and links as a networkx graph; transfers follow the fastest path.

Devices are nodes (``gpu``, ``host``, ``ssd``, ``nic``, ``remote``, ``metadata``...);
links are edges with ``bandwidth_Bps``, ``latency_s`` and ``parallelism`` (how many
transfers it serves at once, each at full bandwidth: DMA engines, SSD queues).

Modeling choice: a transfer queues only at the *bottleneck* link of its path (lowest
bandwidth) and holds it for ``bytes / bandwidth``; the other links add their latency.
Every link on the path is charged the bytes. This is exact when one link dominates
(RDMA 11.5 GB/s or an SSD behind PCIe 25 GB/s) and ignores second-order contention on
the faster links.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from kvsim.system.servers import FCFSServer


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    bandwidth_Bps: float
    latency_s: float
    parallelism: int = 1
    name: str = ""

    @property
    def key(self) -> str:
        return self.name or f"{self.a}-{self.b}"


@dataclass(frozen=True)
class Path:
    """A precomputed route: its links, the bottleneck, and the fixed latency."""

    src: str
    dst: str
    links: tuple[str, ...]
    bottleneck: str
    bandwidth_Bps: float
    latency_s: float


class Topology:
    def __init__(self, devices: list[str], links: list[Link]) -> None:
        g = nx.Graph()
        g.add_nodes_from(devices)
        for ln in links:
            for end in (ln.a, ln.b):
                if end not in g:
                    raise ValueError(f"link {ln.key} names unknown device '{end}' (devices: {devices})")
            if ln.bandwidth_Bps <= 0:
                raise ValueError(f"link {ln.key}: bandwidth must be > 0")
            g.add_edge(ln.a, ln.b, link=ln, latency=ln.latency_s)
        self.graph = g
        self.links = {ln.key: ln for ln in links}
        self.servers = {ln.key: FCFSServer(ln.key, ln.parallelism) for ln in links}
        self.bytes_moved = {ln.key: 0 for ln in links}
        self._paths: dict[tuple[str, str], Path] = {}

    def path(self, src: str, dst: str) -> Path:
        """The lowest-latency route from ``src`` to ``dst`` (cached)."""
        p = self._paths.get((src, dst))
        if p is None:
            if src == dst:
                p = Path(src, dst, (), "", float("inf"), 0.0)
            else:
                try:
                    nodes = nx.shortest_path(self.graph, src, dst, weight="latency")
                except (nx.NetworkXNoPath, nx.NodeNotFound) as exc:
                    raise ValueError(f"no path from '{src}' to '{dst}' in the topology") from exc
                lns = [self.graph.edges[u, v]["link"] for u, v in zip(nodes, nodes[1:], strict=False)]
                neck = min(lns, key=lambda ln: ln.bandwidth_Bps)
                p = Path(
                    src,
                    dst,
                    tuple(ln.key for ln in lns),
                    neck.key,
                    neck.bandwidth_Bps,
                    sum(ln.latency_s for ln in lns),
                )
            self._paths[(src, dst)] = p
        return p

    def transfer(self, now: float, path: Path, nbytes: int) -> float:
        """Book a transfer starting at ``now``; return its completion time."""
        if not path.links or nbytes <= 0:
            return now
        for key in path.links:
            self.bytes_moved[key] += nbytes
        done = self.servers[path.bottleneck].serve(now, nbytes / path.bandwidth_Bps)
        return done + path.latency_s
