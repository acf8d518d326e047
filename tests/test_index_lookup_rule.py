"""One lookup rule for every index (kvsim.index.base): ``lookup=all`` never asks fewer
round trips than ``prefix``, and ``prefix``'s ops are the first ops of ``all``'s."""

from __future__ import annotations

import random

import pytest

from kvsim.app import build_index
from kvsim.index.base import IndexModel

from .conftest import CONF_DIR

NAMES = sorted(p.stem for p in (CONF_DIR / "index").glob("*.yaml"))
# no compute-side caching, so that a lookup changes nothing the next one sees: the two
# instances (prefix, all) then hold the same structure at every request
NO_CACHE = {"sherman": ["index.cache_bytes=0"], "chime": ["index.cache_bytes=0", "index.hotspot_bytes=0"],
            "extent": ["index.cache_bytes=0"]}


def build(compose_cfg, name: str, rule: str) -> IndexModel:  # type: ignore[no-untyped-def]
    return build_index(compose_cfg([f"index={name}", f"index.lookup={rule}", *NO_CACHE.get(name, [])]))


@pytest.mark.parametrize("name", NAMES)
def test_all_never_asks_fewer_round_trips_than_prefix(name: str, compose_cfg, embedded_trace) -> None:  # type: ignore[no-untyped-def]
    prefix, every = build(compose_cfg, name, "prefix"), build(compose_cfg, name, "all")
    assert (prefix.lookup, every.lookup) == ("prefix", "all")
    hid, off = embedded_trace.hash_ids, embedded_trace.offsets
    rng = random.Random(1)
    stopped = 0
    for i in range(min(len(embedded_trace), 800)):
        blocks = hid[off[i] : off[i + 1]].tolist()
        p, a = prefix.plan_lookup(blocks), every.plan_lookup(blocks)
        assert sum(o.round_trips for o in a) >= sum(o.round_trips for o in p)
        assert len(a) >= len(p)
        assert [(o.kind, o.keys) for o in a[: len(p)]] == [(o.kind, o.keys) for o in p]
        stopped += len(a) > len(p)
        gone = [b for b in blocks if rng.random() < 0.05]  # a bounded index drops some (gaps)
        for ix in (prefix, every):
            ix.apply(ix.plan_insert([b for b in blocks if not ix.contains(b)]))
            ix.apply(ix.plan_delete(gone))
    assert stopped > 50  # with gaps the rule makes a difference


def test_prefix_stops_after_the_op_that_meets_the_first_absent_block(compose_cfg) -> None:  # type: ignore[no-untyped-def]
    for name in NAMES:
        ix = build(compose_cfg, name, "prefix")
        ix.apply(ix.plan_insert([0, 1, 2, 3]))
        ops = ix.plan_lookup([0, 1, 2, 3, 7, 9, 10, 11])  # a run, a lone 7 (absent), a run
        assert [(o.kind, o.keys) for o in ops] == [("range", 4), ("get", 1)], name
        ops = build(compose_cfg, name, "all").plan_lookup([0, 1, 2, 3, 7, 9, 10, 11])
        assert [(o.kind, o.keys) for o in ops] == [("range", 4), ("get", 1), ("range", 3)], name
