"""Block id -> index key (kvsim/index/keys.py): values written down, not recomputed."""

from __future__ import annotations

import pytest

from kvsim.index.keys import KeyMap, hashed_key


def test_hashed_keys_by_hand() -> None:
    """SHA-256 of id 0's 8 little-endian bytes (eight zero bytes) starts af5570f5a1810b7a;
    of id 5 (05 00 .. 00), f13ee6ed54ea2aae; the key is those 64 bits shifted right by one."""
    assert hashed_key(0) == 0xAF5570F5A1810B7A >> 1 == 6_317_064_264_968_340_925
    assert hashed_key(5) == 0xF13EE6ED54EA2AAE >> 1 == 8_691_792_759_351_481_687


def test_key_and_keys_agree_whichever_comes_first() -> None:
    """key() of an id never seen computes it (not only keys()); the table answers after."""
    km = KeyMap("hashed")
    assert km.key(5) == 8_691_792_759_351_481_687 and km.key(5) == km.keys([5])[0]
    assert km.keys([0, 5]) == [6_317_064_264_968_340_925, 8_691_792_759_351_481_687]
    assert KeyMap("remapped").key(5) == 5 and KeyMap().keys([7, 3]) == [7, 3]
    with pytest.raises(ValueError, match="key_order"):
        KeyMap("sorted")
