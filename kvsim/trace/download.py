"""Download the public Mooncake FAST'25 traces, verified: ``python -m kvsim.trace.download [DIR [NAME ...]]``.

The traces (Apache-2.0) live in the kvcache-ai/Mooncake repository, FAST25-release/traces.
Each file is downloaded to a temporary name beside its target, checked, and only then
renamed into place, so an interrupted download leaves nothing half-written. Checked means:

1. its size and SHA-256 equal the pinned ones (:data:`PUBLIC`), where they are pinned;
2. it reads, line by line, with the kvsim reader (every line valid).

A file that fails is removed and reported on its own line; the command exits 1 if any
file failed. A file already present is verified the same way before it is trusted (and
downloaded again if it fails). ``KVSIM_TRACE_URL`` replaces the base URL (a mirror).

What is pinned, and from where: ``conversation_trace.jsonl``, size and SHA-256 of the copy
the project's tests use (its size equals the file in the public repository);
``synthetic_trace.jsonl``, its size in the public repository; ``toolagent_trace.jsonl``,
nothing: no published size or checksum was reachable when this was written. For an
unpinned value the command prints what it got, so that it can be pinned after a check;
a download of such a file that stops at a line boundary cannot be told from a whole one.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kvsim.errors import UserError, cli
from kvsim.io import atomic_path
from kvsim.trace.mooncake import read_mooncake_jsonl

BASE_URL = "https://raw.githubusercontent.com/kvcache-ai/Mooncake/main/FAST25-release/traces/"


@dataclass(frozen=True)
class Pin:
    """What a good copy of a file is: its size in bytes and SHA-256 (None: not pinned)."""

    size: int | None = None
    sha256: str | None = None


PUBLIC: dict[str, Pin] = {
    "conversation_trace.jsonl": Pin(3_029_533, "b8cbb061a85206d729d91cdc2981f43c9e0d99209dce588d3af5f7934408b9df"),
    "toolagent_trace.jsonl": Pin(),
    "synthetic_trace.jsonl": Pin(1_136_313),
}
FILES = tuple(PUBLIC)


class VerifyError(UserError):
    """A file is not the file it should be; the message says how."""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, pin: Pin) -> str:
    """Raise :class:`VerifyError` unless ``path`` matches ``pin`` and reads as a trace;
    return a one-line account of what was checked."""
    size = path.stat().st_size
    if pin.size is not None and size != pin.size:
        short = "cut short? " if size < pin.size else ""
        raise VerifyError(f"size {size:,} bytes, expected {pin.size:,} ({short}removed)")
    digest = sha256_of(path)
    if pin.sha256 is not None and digest != pin.sha256:
        raise VerifyError(f"SHA-256 {digest}, expected {pin.sha256} (corrupt or changed upstream; removed)")
    try:
        trace = read_mooncake_jsonl(path, name=path.name.split(".")[0])
    except UserError as e:  # a TraceFormatError names the line; the file is removed
        raise VerifyError(f"not a valid trace: {e} (removed)") from None
    unpinned = [k for k, v in (("size", pin.size), ("SHA-256", pin.sha256)) if v is None]
    note = f"; NOT PINNED: {' and '.join(unpinned)} (size {size:,}, sha256 {digest})" if unpinned else ""
    return f"{len(trace):,} requests, {trace.num_block_accesses:,} block accesses, {size:,} bytes{note}"


def download(
    dest: str | Path,
    base_url: str | None = None,
    files: Iterable[str] = FILES,
    pins: Mapping[str, Pin] = PUBLIC,
    out: object = sys.stdout,
) -> tuple[list[Path], dict[str, str]]:
    """Fetch and verify ``files`` into ``dest``: (verified paths, {name: why it failed})."""
    base = base_url or os.environ.get("KVSIM_TRACE_URL") or BASE_URL
    root = Path(dest)
    made = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    done: list[Path] = []
    failed: dict[str, str] = {}

    def say(s: str) -> None:
        print(s, file=out)  # type: ignore[call-overload]

    for name in files:
        pin = pins.get(name, Pin())
        target = root / name
        if target.is_file():
            try:
                say(f"{target}: already present, verified: {verify(target, pin)}")
                done.append(target)
                continue
            except VerifyError as e:
                say(f"{target}: already present but {e}; downloading it again")
                target.unlink()
        url = base.rstrip("/") + "/" + name
        say(f"downloading {url}")
        try:
            with atomic_path(target) as tmp:
                with urllib.request.urlopen(url, timeout=60) as resp, tmp.open("wb") as fh:
                    while chunk := resp.read(1 << 20):
                        fh.write(chunk)
                say(f"  {target}: verified: {verify(tmp, pin)}")
        except (OSError, VerifyError) as e:  # the temporary file is gone (atomic_path)
            failed[name] = str(e) if isinstance(e, VerifyError) else f"download failed ({e})"
            continue
        done.append(target)
    if made and not any(root.iterdir()):
        root.rmdir()  # nothing verified: leave no trace of the attempt
    return done, failed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    dest = args[0] if args else "traces/public"
    names = args[1:] or list(FILES)
    unknown = [n for n in names if n not in PUBLIC]
    if unknown:
        raise UserError(f"unknown trace {', '.join(unknown)} (known: {', '.join(PUBLIC)})")
    _, failed = download(dest, files=names)
    for name, why in failed.items():
        print(f"kvsim.trace.download: error: {name}: {why}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    cli(main, prog="kvsim.trace.download")
