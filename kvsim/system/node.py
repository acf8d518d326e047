"""The tiers of N prefill instances on H hosts, and the view each instance has of them.

A tier template (``gpu`` on device ``gpu``, ``dram`` on ``host``, ...) has one copy per copy
of its device (:class:`kvsim.system.topology.Layout`): the GPU tier one per instance (its
capacity derived from the HBM left after weights and reserve), the DRAM tier one per host,
the remote pool one for all. Instance i's view is the chain of the copies it reaches,
fastest first; the scopes must not narrow down a chain (a host's DRAM cannot spill into one
instance's tier), so every tier has one tier below it whatever the view.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvsim.system.hierarchy import TierSpec
from kvsim.system.topology import SCOPES, Layout


@dataclass(frozen=True)
class TierTemplate:
    name: str
    device: str  # device template (its scope decides how many copies)
    capacity_blocks: int  # per copy
    access_latency_s: float = 0.0


def node_tiers(layout: Layout, templates: list[TierTemplate]) -> tuple[list[TierSpec], list[list[int]]]:
    """Tier copies (level by level, copy by copy) and every instance's view of them."""
    rank = {s: i for i, s in enumerate(SCOPES)}
    for upper, lower in zip(templates, templates[1:], strict=False):
        if rank[layout.scope(lower.device)] < rank[layout.scope(upper.device)]:
            raise ValueError(
                f"system.tiers: tier {lower.name} (device {lower.device}, scope {layout.scope(lower.device)}) "
                f"is below {upper.name} (scope {layout.scope(upper.device)}): a tier's scope cannot be "
                "narrower than the tier above it"
            )
    tiers: list[TierSpec] = []
    index: dict[tuple[int, str], int] = {}
    for lvl, tpl in enumerate(templates):
        for dev, _ in layout.copies(tpl.device):
            index[(lvl, dev)] = len(tiers)
            tiers.append(TierSpec(tpl.name, dev, tpl.capacity_blocks, tpl.access_latency_s))
    views = [
        [index[(lvl, layout.device(tpl.device, i))] for lvl, tpl in enumerate(templates)]
        for i in range(layout.instances)
    ]
    return tiers, views
