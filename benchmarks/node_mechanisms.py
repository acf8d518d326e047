"""Each mechanism of the serving-node model switched on alone, from a configuration that
models what kvsim modeled before (issue 10), on a real trace; then all of them (the defaults).

    python benchmarks/node_mechanisms.py [--trace FILE] [--out DIR]

Prints a markdown table (hit ratio, TTFT p50/p99, exposed load p99, load transfer p99,
link utilisation per direction, recomputed blocks) and writes it with every run's
summary.json to DIR (default outputs/node_mechanisms/).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

import kvsim.config  # noqa: F401
from kvsim.app import run

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRACE = os.environ.get(
    "KVSIM_REAL_TRACE", str(ROOT.parent / "shared" / "traces" / "mooncake" / "conversation_trace.jsonl")
)

# The previous model, in today's keys: literal 3 s bursts; one 40 GiB GPU tier and one PCIe
# link shared by the four instances (the GPU device at host scope), a queue per instance fed
# by the least loaded (the old single FCFS queue of four servers); whole prefills one at a
# time; loads (started when a request joins the queue) before compute; reused blocks always loaded; one queue per link for both
# directions, no priorities, only a path's slowest hop queues; the SSD as a link at its read bandwidth, no medium.
BEFORE = [
    "trace.spread=none",
    "system.devices.gpu=host",
    "system.tiers.gpu.capacity_gib=40",
    "router=least_loaded",
    "scheduler=fcfs",
    "system.overlap_load=false",
    "system.load_or_recompute=load",
    "system.full_duplex=false",
    "system.priorities=false",
    "system.every_hop=false",
    "system.tiers.ssd.read_Bps=null",
    "system.tiers.ssd.write_Bps=null",
    "system.links.ssd.bandwidth_Bps=${calibration.ssd.read_Bps}",
]

# Each mechanism: the overrides that switch it on (they replace the matching BEFORE entries).
MECHANISMS = {
    "arrivals spread within each 3 s tick": ["trace.spread=tick"],
    "own GPU tier per instance (HBM - weights - reserve)": ["system.devices.gpu=instance",
                                                                     "system.tiers.gpu.capacity_gib=null"],
    "own GPU tiers and cache-aware routing": ["system.devices.gpu=instance", "system.tiers.gpu.capacity_gib=null",
                                              "router=cache_aware"],
    "chunked prefill, continuous batching": ["scheduler=chunked"],
    "layer-wise overlap of KV load and compute": ["system.overlap_load=true"],
    "load or recompute": ["system.load_or_recompute=auto"],
    "every hop of a path queues": ["system.every_hop=true"],
    "full-duplex links (a queue per direction)": ["system.full_duplex=true"],
    "foreground before background": ["system.priorities=true"],
    "SSD medium: read/write bandwidths, writes occupy it": [
        "system.tiers.ssd.read_Bps=${calibration.ssd.read_Bps}",
        "system.tiers.ssd.write_Bps=${calibration.ssd.write_Bps}",
        "system.links.ssd.bandwidth_Bps=7.88e9",
    ],
}

# Link directions reported (mean over copies: pcie0..pcie3 when each instance has its own).
DIRECTIONS = [
    ("PCIe host->GPU", "pcie", "host", "gpu"),
    ("PCIe GPU->host", "pcie", "gpu", "host"),
    ("RDMA pool->NIC", "rdma", "remote", "nic"),
    ("RDMA NIC->pool", "rdma", "nic", "remote"),
    ("SSD read", "ssd", "ssd", "host"),
    ("SSD write", "ssd", "host", "ssd"),
]


def with_overrides(base: list[str], on: list[str]) -> list[str]:
    keys = {o.split("=", 1)[0] for o in on}
    return [o for o in base if o.split("=", 1)[0] not in keys] + on


def link_util(util: dict[str, float], link: str, src: str, dst: str) -> float:
    """Mean utilisation of ``link``'s copies in the direction src -> dst (or of its one
    shared queue when links are not full duplex)."""
    vals = []
    for k, v in util.items():
        parts = k.split(":")
        if len(parts) != 3 or parts[0] != "link" or parts[1].rstrip("0123456789") != link:
            continue
        ends = parts[2]
        if "<->" in ends:
            vals.append(v)
        else:
            a, b = ends.split("->")
            if a.rstrip("0123456789") == src and b.rstrip("0123456789") == dst:
                vals.append(v)
    return sum(vals) / len(vals) if vals else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default=DEFAULT_TRACE)
    ap.add_argument("--out", default=str(ROOT / "outputs" / "node_mechanisms"))
    args = ap.parse_args()
    if not Path(args.trace).is_file():
        print(f"trace not found: {args.trace} (set KVSIM_REAL_TRACE or --trace)", file=sys.stderr)
        return 2
    rows = [("before (all off)", BEFORE)]
    rows += [(f"+ {name}", with_overrides(BEFORE, on)) for name, on in MECHANISMS.items()]
    rows.append(("all on (the defaults)", []))
    out = Path(args.out)
    lines = [
        "| configuration | hit ratio | TTFT p50 | TTFT p99 | load p99 (exposed) | load transfer p99 | recomputed blocks | "
        + " | ".join(d[0] for d in DIRECTIONS) + " | SSD medium | prefill util. |",
        "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(DIRECTIONS) + "---:|---:|",
    ]
    for j, (label, overrides) in enumerate(rows):
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=[f"trace.path={args.trace}", "progress=false", "figures=false",
                                               "save_requests=false", *overrides])
        d = out / f"{j:02d}"
        d.mkdir(parents=True, exist_ok=True)
        s = run(cfg, d)
        (d / "overrides.json").write_text(json.dumps(overrides))
        u = s["utilization"]
        medium = f"{u['device:ssd']:.3f}" if "device:ssd" in u else "-"
        lines.append(
            f"| {label} | {s['hit_ratio']:.3f} | {s['ttft_p50_s'] * 1e3:.0f} ms | {s['ttft_p99_s']:.2f} s | "
            f"{s['load_p99_s'] * 1e3:.0f} ms | {s['load_transfer_p99_s'] * 1e3:.0f} ms | {s['recomputed_blocks']:,} | "
            + " | ".join(f"{link_util(u, *d_[1:]):.3f}" for d_ in DIRECTIONS)
            + f" | {medium} | {u['prefill']:.2f} |"
        )
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    (out / "table.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
