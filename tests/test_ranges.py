"""The range walker (kvsim.ranges) on hand-made schemas, and the one-line error report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated

import pytest

from kvsim.errors import ConfigError, describe, one_line
from kvsim.ranges import (
    KeyOrder,
    MultipleOf,
    NonNegInt,
    OneOf,
    PosFloat,
    PosInt,
    Range,
    Seconds,
    UsedWhen,
    check,
    check_call,
    check_fields,
)


@dataclass
class Inner:
    rate: PosFloat = 1.0


@dataclass
class Schema:
    kind: Annotated[str, OneOf("a", "b")] = "a"
    count: PosInt = 1
    only_b: Annotated[NonNegInt, UsedWhen("kind", "b")] = 0
    limit: PosInt | None = None
    frac: Annotated[float, Range(gt=0, le=1)] = 0.5
    big: Annotated[float, Range(finite=False)] = math.inf
    flag: bool = True
    items: dict[str, Inner] = field(default_factory=dict)
    orders: list[KeyOrder] = field(default_factory=list)
    tokens: Annotated[int, Range(ge=16), MultipleOf(16)] = 512


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"count": 0}, "x.count: must be >= 1, got 0"),
        ({"count": 2.0}, "x.count: expected an integer, got 2.0"),
        ({"count": True}, "x.count: expected an integer, got True"),
        ({"frac": math.nan}, "x.frac: is NaN"),
        ({"frac": 0}, "x.frac: must be > 0"),
        ({"frac": math.inf}, "x.frac: must be finite"),
        ({"flag": "yes"}, "x.flag: expected true or false, got 'yes'"),
        ({"kind": "c"}, "x.kind: 'c' is not one of a, b"),
        ({"limit": 0}, "x.limit: must be >= 1, got 0"),
        ({"limit": "x"}, "x.limit: expected an integer"),
        ({"items": {"p": {"rate": -1}}}, "x.items.p.rate: must be > 0, got -1"),
        ({"items": {"p": {"rte": 1}}}, "x.items.p.rte: unknown key; did you mean 'rate'?"),
        ({"orders": ["hashed", "sorted"]}, "x.orders[1]: 'sorted' is not one of remapped, hashed"),
        ({"cuont": 1}, "x.cuont: unknown key; did you mean 'count'?"),
        ({"only_b": 3}, "x.only_b: set to 3, but ignored when x.kind=a (used only with x.kind=b)"),
        ({"tokens": 100}, "x.tokens: must be a multiple of 16, got 100"),
        ({"tokens": 0}, "x.tokens: must be >= 16, got 0"),
    ],
)
def test_bad_values_name_the_key(value: dict, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        check_fields(value, Schema, "x")
    assert str(e.value).startswith(message), str(e.value)


def test_good_values_pass() -> None:
    check_fields({"kind": "b", "only_b": 3, "limit": None, "big": math.inf, "count": 5,
                  "items": {"p": {"rate": 2}}, "orders": ["hashed"], "tokens": 48}, Schema, "x")
    check(0.0, Seconds, "t")
    with pytest.raises(ConfigError, match="t: must be >= 0"):
        check(-1e-9, Seconds, "t")


class Widget:
    def __init__(self, capacity: int, size: PosInt, rate: Seconds = 0.0, name: str = "w") -> None:
        pass


def test_check_call_uses_the_signature() -> None:
    check_call(Widget, {"size": 3}, "w", later=["capacity"])
    with pytest.raises(ConfigError, match="w.size: missing"):
        check_call(Widget, {}, "w", later=["capacity"])
    with pytest.raises(ConfigError, match="w.sise: unknown key for .*Widget; did you mean 'size'"):
        check_call(Widget, {"size": 1, "sise": 2}, "w", later=["capacity"])
    with pytest.raises(ConfigError, match="w.rate: must be >= 0"):
        check_call(Widget, {"size": 1, "rate": -2}, "w", later=["capacity"])
    check_call(Widget, {"rate": 1}, "w", partial=True)


def test_one_line_and_exit_codes() -> None:
    assert one_line("Could not find 'x'\n\nAvailable options in 'policy':\n\tlru\n\tfifo\n"
                    "Config search path:\n\tprovider=hydra") == \
        "Could not find 'x'; Available options in 'policy': lru, fifo"
    assert describe(ConfigError("a.b: bad")) == ("a.b: bad", 2)
    assert describe(FileNotFoundError(2, "No such file or directory", "/x"))[1] == 2
    msg, code = describe(ZeroDivisionError("boom"))
    assert code == 1 and "internal error" in msg and "KVSIM_TRACEBACK=1" in msg
