"""Block ids in C (kvsim/idtable.pyx): an IdSet answers as a Python set of the same ints.

Random adds, updates, removals and lookups of ids anywhere in 64 bits (collisions and
backward-shift deletions in a table kept at most half full), compared with a set after every
step, with the table's own check. Compiled only (``python -m kvsim.accel build``): skipped
without the build unless ``KVSIM_REQUIRE_ACCEL=1`` (set by .ci/run). The LRU tiers built on
the same table: tests/test_lrutable.py.
"""

from __future__ import annotations

import importlib
import random
from typing import Any

import pytest

from kvsim.index.redis import new_id_set

from .conftest import require_resource


@pytest.fixture
def idtable() -> Any:
    try:
        return importlib.import_module("kvsim.idtable")
    except ImportError:
        require_resource("KVSIM_REQUIRE_ACCEL")  # skips without a current build
        raise


def test_an_id_set_answers_as_a_set(idtable: Any) -> None:
    rng = random.Random(5)
    pool = [rng.randrange(-(2**63), 2**63) for _ in range(3000)] + list(range(500)) + [-(2**63), 2**63 - 1]
    ids, ref = idtable.IdSet(), set()
    for step in range(6000):
        op = rng.random()
        keys = [rng.choice(pool) for _ in range(rng.randint(1, 30))]
        if op < 0.35:
            ids.update(keys)
            ref.update(keys)
        elif op < 0.55:
            ids.difference_update(keys)
            ref.difference_update(keys)
        elif op < 0.65:
            ids.add(keys[0])
            ref.add(keys[0])
        elif op < 0.75:
            ids.discard(keys[0])
            ref.discard(keys[0])
        else:
            run = rng.sample(sorted(ref), min(len(ref), 5)) + keys[:1] if ref else keys
            assert ids.issuperset(run) == ref.issuperset(run)
        assert len(ids) == len(ref)
        assert all((k in ids) == (k in ref) for k in keys)
        if step % 500 == 0:
            ids.check()
            assert set(ids) == ref
    assert set(ids) == ref and ids.count == len(ref)
    with pytest.raises(OverflowError):
        ids.add(2**63)


def test_the_redis_index_holds_its_keys_in_one(idtable: Any) -> None:
    assert isinstance(new_id_set(), idtable.IdSet)
