"""JSON-lines trace files, read line by line: what every JSON-lines reader shares.

A file may be gzip-compressed (recognized by its magic bytes) and is decompressed as it
streams. Every problem -- bad compression, bad UTF-8, a line that is not a JSON object, a
missing field, a mistyped count -- stops the read with a :class:`TraceFormatError` naming the
file, the line and the field.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, cast

from kvsim.trace.schema import TraceFormatError


def _open(p: Path) -> IO[bytes]:
    with p.open("rb") as fh:
        magic = fh.read(2)
    return cast(IO[bytes], gzip.open(p, "rb") if magic == b"\x1f\x8b" else p.open("rb"))


def lines(p: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line; bad bytes and bad compression name their line."""
    lineno = 0
    with _open(p) as fh:
        while True:
            try:
                raw = fh.readline()
            except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
                what = "truncated" if isinstance(exc, EOFError) else f"corrupt ({exc})"
                raise TraceFormatError(p, lineno + 1, "<gzip>", f"compressed data {what}") from None
            if not raw:
                return
            lineno += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise TraceFormatError(
                    p, lineno, "<text>", f"invalid UTF-8 at byte {exc.start + 1} of the line ({exc.reason})"
                ) from None
            if lineno == 1:
                text = text.removeprefix("\ufeff")  # a byte-order mark is not data
            yield lineno, text


def records(p: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of every line that is not blank (a trailing newline is
    tolerated): each a JSON object holding the ``required`` fields."""
    for lineno, line in lines(p):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TraceFormatError(p, lineno, "<json>", f"not valid JSON ({exc.msg})") from None
        except RecursionError:
            raise TraceFormatError(p, lineno, "<json>", "nested too deeply") from None
        if not isinstance(rec, dict):
            raise TraceFormatError(p, lineno, "<json>", "expected a JSON object")
        for f in required:
            if f not in rec:
                raise TraceFormatError(p, lineno, f, "missing")
        yield lineno, rec


def number_field(path: Path, lineno: int, rec: dict[str, Any], name: str, what: str = "a number") -> float:
    """``rec[name]``, a finite number (``true`` and NaN are not); ``what`` names it in the error."""
    value = rec[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TraceFormatError(path, lineno, name, f"expected {what}, got {value!r}")
    return value


def int_field(path: Path, lineno: int, rec: dict[str, Any], name: str, minimum: int) -> int:
    """``rec[name]``, a whole number >= ``minimum`` (``12.0`` is 12; ``true`` is not a number)."""
    value = rec[name]
    # bool is an int subclass in Python; a trace saying "true" tokens is wrong.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TraceFormatError(path, lineno, name, f"expected a number, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise TraceFormatError(path, lineno, name, f"expected an integer, got {value!r}")
    if value < minimum:
        raise TraceFormatError(path, lineno, name, f"must be >= {minimum}, got {value!r}")
    return int(value)
