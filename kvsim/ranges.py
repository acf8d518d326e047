"""Ranges on config values, declared where the value is typed, checked by one walker.

A setting declares its range in its type, with ``typing.Annotated``::

    layers: PosInt                                   # an int >= 1
    mfu: Annotated[float, Range(gt=0, le=1)] = 0.5
    key_order: Annotated[str, OneOf("remapped", "hashed")] = "remapped"

The same annotations serve a config dataclass (``kvsim.config``; OmegaConf strips
``Annotated``) and a class's constructor (a policy, an index: its signature *is* its
schema). :func:`check` walks a plain value (dicts, lists, scalars) against such a type
and raises :class:`ConfigError` naming the key; :func:`check_call` checks the keyword
arguments a config would pass to a class. Every float must be finite unless its
:class:`Range` says ``finite=False``; an int is never a bool; a bool is never a string.

This module imports neither Hydra nor OmegaConf: model packages use its aliases freely.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union

from kvsim.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """Bounds of a number (``None``: unbounded); ``finite``: NaN and infinities refused."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    finite: bool = True

    def problem(self, v: float) -> str | None:
        if isinstance(v, float) and math.isnan(v):
            return "is NaN"
        if self.finite and isinstance(v, float) and math.isinf(v):
            return f"must be finite, got {v}"
        for bound, ok, word in (
            (self.gt, lambda b: v > b, ">"),
            (self.ge, lambda b: v >= b, ">="),
            (self.lt, lambda b: v < b, "<"),
            (self.le, lambda b: v <= b, "<="),
        ):
            if bound is not None and not ok(bound):
                return f"must be {word} {bound:g}, got {v!r}"
        return None


@dataclass(frozen=True)
class OneOf:
    """The value must be one of these."""

    choices: tuple[Any, ...]

    def __init__(self, *choices: Any) -> None:
        object.__setattr__(self, "choices", tuple(choices))


@dataclass(frozen=True)
class MultipleOf:
    """An integer that must be a whole multiple of ``step`` (e.g. tokens of a block made of
    a trace's own smaller blocks)."""

    step: int


@dataclass(frozen=True)
class UsedWhen:
    """A field used only when a sibling field has one of some values (e.g. only when
    ``system.kind`` is ``single_tier``); elsewhere it must keep its default."""

    field: str
    values: tuple[str, ...]

    def __init__(self, field: str, *values: str) -> None:
        object.__setattr__(self, "field", field)
        object.__setattr__(self, "values", tuple(values))


# Aliases: the common ranges, named for what they hold.
PosInt = Annotated[int, Range(ge=1)]  # a count where zero is meaningless
NonNegInt = Annotated[int, Range(ge=0)]  # a count that may be zero (0 often means "off")
PosFloat = Annotated[float, Range(gt=0)]  # a size, rate or bandwidth
NonNegFloat = Annotated[float, Range(ge=0)]
Seconds = Annotated[float, Range(ge=0)]  # a duration (0: free)
Rate = Annotated[float, Range(gt=0)]  # per second; bytes per second
Bytes = Annotated[float, Range(ge=0)]  # a byte budget (0: none)
Fraction = Annotated[float, Range(ge=0, le=1)]
KeyOrder = Annotated[str, OneOf("remapped", "hashed")]
Seed = Annotated[int, Range(ge=0)]  # numpy's generators take non-negative seeds


def _split(tp: Any) -> tuple[Any, list[Any]]:
    """``Annotated[T, m1, m2]`` -> (T, [m1, m2]); anything else -> (tp, [])."""
    if typing.get_origin(tp) is Annotated:
        base, *meta = typing.get_args(tp)
        inner, more = _split(base)
        return inner, [*more, *meta]
    return tp, []


def describe(tp: Any) -> str:
    base, _ = _split(tp)
    if base is Any:
        return "any value"
    origin = typing.get_origin(base)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(base))
    if base is type(None):
        return "null"
    if origin in (list, tuple, Sequence) or base in (list, tuple):
        return "a list"
    if origin in (dict, Mapping) or base is dict:
        return "a mapping"
    if dataclasses.is_dataclass(base):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(base, str(base))


def _close(key: str, known: Sequence[str]) -> str:
    near = difflib.get_close_matches(key, list(known), n=1)
    return f"did you mean '{near[0]}'? " if near else ""


def check(value: Any, tp: Any, where: str) -> None:
    """Raise :class:`ConfigError` naming ``where`` (a dotted key) if ``value`` is not a ``tp``."""
    base, meta = _split(tp)
    if base is Any:
        return
    origin = typing.get_origin(base)
    if origin in (Union, types.UnionType):
        options = typing.get_args(base)
        if value is None and type(None) in options:
            return
        real = [o for o in options if o is not type(None)]
        errors = []
        for o in real:
            try:
                check(value, Annotated[o, *meta] if meta else o, where)
                return
            except ConfigError as e:
                errors.append(e)
        if len(real) == 1:
            raise errors[0]
        raise ConfigError(f"{where}: expected {describe(base)}, got {value!r}")
    if value is None:
        raise ConfigError(f"{where}: expected {describe(base)}, got null")
    if dataclasses.is_dataclass(base) and isinstance(base, type):
        check_fields(value, base, where)
    elif origin in (list, tuple, Sequence) or base in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(base)
        item = args[0] if args else Any
        for i, v in enumerate(value):
            check(v, item, f"{where}[{i}]")
    elif origin in (dict, Mapping) or base is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        args = typing.get_args(base)
        item = args[1] if len(args) == 2 else Any
        for k, v in value.items():
            check(v, item, f"{where}.{k}")
    elif base is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
    elif base is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
    elif base is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not any(isinstance(m, Range) for m in meta):
            meta = [*meta, Range()]  # every float is finite unless its range says otherwise
    elif base is str and not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    for m in meta:
        if isinstance(m, Range):
            why = m.problem(value)
            if why:
                raise ConfigError(f"{where}: {why}")
        elif isinstance(m, OneOf) and value not in m.choices:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(str, m.choices))}")
        elif isinstance(m, MultipleOf) and value % m.step:
            raise ConfigError(f"{where}: must be a multiple of {m.step}, got {value!r}")


def field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _key(where: str, name: object) -> str:
    return f"{where}.{name}" if where else str(name)


def check_fields(value: Any, cls: type, where: str, skip: Sequence[str] = ()) -> None:
    """``value`` (a mapping) against the dataclass ``cls``: every key known, each of its
    type and in range, every required one there (``skip``: fields checked elsewhere)."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {value!r}")
    hints = field_types(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    for k in value:
        if k not in fields and k not in skip:
            raise ConfigError(f"{_key(where, k)}: unknown key; {_close(str(k), list(fields))}known: {', '.join(fields)}")
    for name, f in fields.items():
        if name in value:
            check(value[name], hints[name], _key(where, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_key(where, name)}: missing")
    for name in fields:  # a field used only for some values of another field keeps its default
        _, meta = _split(hints[name])
        for m in meta:
            if not isinstance(m, UsedWhen) or name not in value:
                continue
            mode = value.get(m.field, default_of(fields[m.field]))
            if mode not in m.values and value[name] != default_of(fields[name]):
                used = " or ".join(f"{_key(where, m.field)}={v}" for v in m.values)
                raise ConfigError(
                    f"{_key(where, name)}: set to {value[name]!r}, but ignored when "
                    f"{_key(where, m.field)}={mode} (used only with {used})"
                )


def default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def signature_types(cls: type) -> dict[str, tuple[Any, Any]]:
    """A class's constructor as a schema: {parameter: (annotated type, default or MISSING)}."""
    init = cls.__init__  # type: ignore[misc]
    hints = typing.get_type_hints(init, include_extras=True)
    out: dict[str, tuple[Any, Any]] = {}
    for name, p in inspect.signature(cls).parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = dataclasses.MISSING if p.default is p.empty else p.default
        out[name] = (hints.get(name, Any), default)
    return out


def check_call(
    cls: type, kwargs: Mapping[str, Any], where: str, later: Sequence[str] = (), partial: bool = False
) -> None:
    """The keyword arguments a config passes to ``cls``: each a parameter of its
    constructor, of its annotated type and range; every required one given (``later``:
    the ones the caller supplies itself, e.g. a policy's ``capacity``; ``partial``: none
    required, for overrides of a node checked whole elsewhere)."""
    params = signature_types(cls)
    takes_kwargs = any(
        p.kind is p.VAR_KEYWORD for p in inspect.signature(cls).parameters.values()
    )
    target = f"{cls.__module__}.{cls.__qualname__}"
    for k, v in kwargs.items():
        if k not in params:
            if takes_kwargs:
                continue
            allowed = [p for p in params if p not in later]
            raise ConfigError(f"{where}.{k}: unknown key for {target}; {_close(str(k), allowed)}known: {', '.join(allowed)}")
        check(v, params[k][0], f"{where}.{k}")
    for name, (_, default) in params.items():
        if not partial and name not in kwargs and name not in later and default is dataclasses.MISSING:
            raise ConfigError(f"{where}.{name}: missing (required by {target})")
