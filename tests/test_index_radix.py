"""The node-local radix tree: walk cost = nodes visited * per_node + blocks matched * per_block."""

from __future__ import annotations

import pytest
import simpy

from kvsim.index.base import OpRecorder
from kvsim.index.radix import RadixTreeIndex

N, B = 0.2e-6, 0.1e-6


def make() -> RadixTreeIndex:
    return RadixTreeIndex(per_node_s=N, per_block_s=B, lock_s=0.0)


def serve(ix: RadixTreeIndex, req: list[int], new: list[int]) -> None:
    ix.plan_lookup(req)
    ix.plan_insert(new)


def test_a_chain_inserted_together_is_one_compressed_node() -> None:
    ix = make()
    serve(ix, list(range(10)), list(range(10)))
    assert ix.n_nodes == 1
    ops = ix.plan_lookup(list(range(10)))
    assert len(ops) == 1 and ops[0].kind == "range"
    assert ops[0].server_s == pytest.approx(1 * N + 10 * B)


def test_branch_splits_the_edge_and_adds_a_node_per_level() -> None:
    ix = make()
    serve(ix, list(range(10)), list(range(10)))
    # a second conversation shares blocks 0..4, then diverges into 20, 21
    req = [0, 1, 2, 3, 4, 20, 21]
    serve(ix, req, [20, 21])
    assert ix.n_nodes == 3  # [0..4] -> {[5..9], [20, 21]}
    ops = ix.plan_lookup(req)
    assert [op.kind for op in ops] == ["range", "range"]
    total = sum(op.server_s for op in ops)
    assert total == pytest.approx(2 * N + 7 * B)
    # the next turn extends [20, 21] in place (no children): still 3 nodes
    serve(ix, [*req, 22, 23], [22, 23])
    assert ix.n_nodes == 3


def test_lookup_stops_at_the_first_absent_block() -> None:
    ix = make()
    serve(ix, [0, 1, 2], [0, 1, 2])
    ops = ix.plan_lookup([0, 1, 2, 7, 9, 10])  # 7 absent: the ops after it are not asked
    assert [(op.kind, op.keys) for op in ops] == [("range", 3), ("get", 1)]
    assert ops[1].server_s == pytest.approx(N)  # the failed child lookup


def test_delete_trims_tails_and_drops_empty_nodes() -> None:
    ix = make()
    serve(ix, list(range(6)), list(range(6)))
    serve(ix, [0, 1, 2, 10, 11], [10, 11])
    ix.plan_delete([10, 11])
    assert ix.n_nodes == 2 and 10 not in ix
    ix.plan_delete([3])  # a removed block inside an edge: the walk stops there
    ops = ix.plan_lookup([0, 1, 2, 3, 4, 5])
    assert sum(op.keys for op in ops) == 6 and ix.stats()["keys"] == 5
    ix.plan_insert([3])  # recomputed: revived in place
    assert 3 in ix


def test_execute_is_one_critical_section() -> None:
    ix = RadixTreeIndex(per_node_s=N, per_block_s=B, lock_s=0.05e-6)
    serve(ix, list(range(8)), list(range(8)))
    ix.recorder = OpRecorder()
    env = simpy.Environment()

    def p():  # type: ignore[no-untyped-def]
        yield from ix.execute(env, ix.plan_lookup([0, 1, 2, 3, 4, 5, 6, 7]))

    env.process(p())
    env.process(p())
    env.run()
    one = 0.05e-6 + N + 8 * B
    assert sorted(ix.recorder.latency_s) == pytest.approx([one, 2 * one])


def test_a_block_whose_parent_was_never_placed_starts_an_orphan_chain() -> None:
    """Request [0 1 2] is looked up (the chain 0 -> 1 -> 2 is learned) but only block 2 is
    inserted: its parent 1 is in no node, so 2 hangs under the root, one orphan chain; a
    second such block (4, after 3 that is never placed) makes two; block 5 extends 4's."""
    ix = make()
    ix.plan_lookup([0, 1, 2])
    ix.plan_insert([2])
    assert ix.stats()["orphan_chains"] == 1 and ix.stats()["keys"] == 1
    ix.plan_lookup([0, 3, 4, 5])
    ix.plan_insert([4, 5])
    assert ix.stats()["orphan_chains"] == 2 and ix.stats()["keys"] == 3
