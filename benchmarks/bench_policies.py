"""Single-tier replay throughput of every kvsim policy beside libCacheSim's, in one run.

    python benchmarks/bench_policies.py [--trace FILE] [--capacity 10000] [--repeat 3]
    python benchmarks/bench_policies.py --trace agentic --block-tokens 64 --capacity 53508 \
        --policies lru,hotness,lookahead --no-python-loop      # the agentic sessions, 14.4 M accesses

For each policy: kvsim's ``replay`` of the trace's block accesses (what
``system=single_tier`` times), libCacheSim's C trace replay (``process_trace`` on an
oracleGeneral binary of the same accesses) and libCacheSim driven from Python (one
``get`` per access), in block accesses per second, best of ``--repeat``; and both hit
counts, which must agree where libCacheSim has the policy. Construction (libCacheSim's
hash table, kvsim's ``bind``, and loading hotness's compiled kernels once per process,
printed separately) is outside the timed region; OPT's next-use pass and hotness's
conversion of the key list to an array are inside kvsim's time (libCacheSim reads next uses
precomputed in the trace file). Ends with the
checks that kvsim's LRU is at least as fast as libCacheSim's C replay and that hotness takes
at most 5x LRU's time (exit status 1 if not). ``--trace agentic`` (or a folder) reads the
agentic sessions (KVSIM_AGENTIC_TRACE, default ../shared/traces/agentic) at ``--block-tokens``.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from kvsim.policy import ARC, FIFO, LFU, LRU, OPT, S3FIFO, Hotness, LookAhead, PrefixLRU
from kvsim.policy.base import EvictionPolicy
from kvsim.policy.opt import INF, next_use
from kvsim.trace.mooncake import read_mooncake_jsonl

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRACE = os.environ.get(
    "KVSIM_REAL_TRACE", str(ROOT.parent / "shared" / "traces" / "mooncake" / "conversation_trace.jsonl")
)
AGENTIC = os.environ.get("KVSIM_AGENTIC_TRACE", str(ROOT.parent / "shared" / "traces" / "agentic"))
# kvsim policy -> (factory, libCacheSim class or None)
POLICIES: dict[str, tuple[Callable[[int], EvictionPolicy], str | None]] = {
    "lru": (LRU, "LRU"),
    "fifo": (FIFO, "FIFO"),
    "lfu": (LFU, "LFU"),
    "s3fifo": (S3FIFO, "S3FIFO"),
    "arc": (ARC, "ARC"),
    "prefix_lru": (PrefixLRU, None),
    "hotness": (Hotness, None),
    "lookahead": (LookAhead, None),
    "opt": (OPT, "Belady"),  # kvsim's OPT with bypass; libCacheSim's Belady always inserts
    "opt (bypass=false)": (partial(OPT, bypass=False), "Belady"),
}


CLOCK = time.perf_counter  # --clock cpu: time.process_time (this process's CPU time)


def best_of(n: int, setup: Callable[[], object], run: Callable[[object], int]) -> tuple[float, int]:
    best, hits = float("inf"), -1
    for _ in range(n):
        obj = setup()
        gc.collect()
        t = CLOCK()
        hits = run(obj)
        best = min(best, CLOCK() - t)
    return best, hits


def write_oracle_general(keys: np.ndarray, path: Path) -> None:
    rec = np.zeros(len(keys), dtype=[("t", "<u4"), ("id", "<u8"), ("size", "<u4"), ("next", "<i8")])
    rec["t"] = np.arange(len(keys))
    rec["id"] = keys
    rec["size"] = 1
    nxt = next_use(keys)
    rec["next"] = np.where(nxt >= INF, np.iinfo(np.int64).max, nxt)
    rec.tofile(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default=DEFAULT_TRACE, help="a Mooncake JSONL file, 'agentic', or a folder of sessions")
    ap.add_argument("--block-tokens", type=int, default=None, help="agentic sessions: block size (64 native)")
    ap.add_argument("--capacity", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--policies", default=",".join(POLICIES), help="comma-separated subset of " + ",".join(POLICIES))
    ap.add_argument("--no-python-loop", action="store_true", help="skip libCacheSim driven from Python")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: time this process's CPU time (steadier on a shared machine; every replay runs on one thread)")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    names = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        print(f"--policies: unknown {unknown} (known: {list(POLICIES)})", file=sys.stderr)
        return 2
    path = AGENTIC if args.trace == "agentic" else args.trace
    if Path(path).is_dir():
        from kvsim.trace.agentic import read_agentic

        trace = read_agentic(path, args.block_tokens or 64, name="agentic")
    elif Path(path).is_file():
        trace = read_mooncake_jsonl(path, block_tokens=args.block_tokens or 512)
    else:
        print(f"trace not found: {path} (set KVSIM_REAL_TRACE / KVSIM_AGENTIC_TRACE or --trace)", file=sys.stderr)
        return 2
    import libcachesim as lcs

    ids = np.asarray(trace.hash_ids, dtype=np.int64)
    keys = ids.tolist()
    n, cap = len(keys), args.capacity
    nxt = [x if x < INF else np.iinfo(np.int64).max for x in next_use(ids).tolist()]
    tmp = Path(tempfile.mkdtemp()) / "trace.oracleGeneral.bin"
    write_oracle_general(ids, tmp)

    def kvsim_setup(factory: Callable[[int], EvictionPolicy]) -> EvictionPolicy:
        p = factory(cap)
        p.bind(trace)
        return p

    def lcs_c(cache: object) -> int:
        reader = lcs.TraceReader(str(tmp), lcs.TraceType.ORACLE_GENERAL_TRACE)
        miss_ratio, _ = cache.process_trace(reader)  # type: ignore[attr-defined]
        return round((1 - miss_ratio) * n)

    def lcs_py(cache: object) -> int:
        req = lcs.Request()
        req.obj_size = 1
        get = cache.get  # type: ignore[attr-defined]
        hits = 0
        for k, x in zip(keys, nxt, strict=True):
            req.obj_id = k
            req.next_access_vtime = x
            hits += get(req)
        return hits

    print(f"# single-tier replay, {trace.name}: {n:,} block accesses, capacity {cap:,} blocks, best of {args.repeat}, {args.clock} time")
    print(f"# python {sys.version.split()[0]}, libcachesim {getattr(lcs, '__version__', '?')}, {os.cpu_count()} CPUs")
    if "hotness" in names:
        from kvsim.policy import _hotness_jit

        # (numba: loaded from its cache, or compiled on a fresh machine, once per process)
        print(f"# hotness's compiled kernels loaded in {_hotness_jit.warm():.2f} s (once per process, not timed)")
    print("| policy | kvsim (M accesses/s) | libCacheSim C replay | libCacheSim from Python | kvsim speed / C | hits kvsim | hits libCacheSim |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    ratio_lru = float("nan")
    times: dict[str, float] = {}
    for name in names:
        factory, lcs_name = POLICIES[name]
        t_k, h_k = best_of(args.repeat, partial(kvsim_setup, factory), lambda p: p.replay(keys))  # type: ignore[attr-defined]
        times[name] = t_k
        row = [name, f"{n / t_k / 1e6:.2f}"]
        if lcs_name:
            mk = partial(getattr(lcs, lcs_name), cache_size=cap)
            t_c, h_c = best_of(args.repeat, mk, lcs_c)
            t_p = float("nan")
            if not args.no_python_loop:
                t_p, h_p = best_of(1, mk, lcs_py)
                assert h_p == h_c, (name, h_p, h_c)
            row += [f"{n / t_c / 1e6:.2f}", f"{n / t_p / 1e6:.2f}", f"{t_c / t_k:.2f}", f"{h_k:,}", f"{h_c:,}"]
            if name == "lru":
                ratio_lru = t_k / t_c
        else:
            row += ["-", "-", "-", f"{h_k:,}", "-"]
        print("| " + " | ".join(row) + " |", flush=True)
    ok = True
    if ratio_lru == ratio_lru:  # measured
        fast = ratio_lru <= 1.0
        ok &= fast
        print(f"\nLRU: kvsim takes {ratio_lru:.2f}x libCacheSim's C replay time "
              f"({'at least as fast' if fast else 'SLOWER than libCacheSim'})")
    if "hotness" in times and "lru" in times:
        r = times["hotness"] / times["lru"]
        ok &= r <= 5.0
        print(f"hotness: {r:.2f}x LRU's replay time ({'within' if r <= 5.0 else 'NOT within'} 5x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
