"""Download the public Mooncake FAST'25 traces: ``python -m kvsim.trace.download [DIR]``.

The traces (Apache-2.0) live in the kvcache-ai/Mooncake repository, FAST25-release/traces.
Each file is downloaded to a temporary name, checked line by line with the kvsim reader,
and only then renamed into place, so an interrupted download leaves nothing half-written.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

from kvsim.io import atomic_path
from kvsim.trace.mooncake import read_mooncake_jsonl

BASE_URL = "https://raw.githubusercontent.com/kvcache-ai/Mooncake/main/FAST25-release/traces/"
FILES = ("conversation_trace.jsonl", "toolagent_trace.jsonl", "synthetic_trace.jsonl")


def download(dest: str | Path, base_url: str = BASE_URL, files: tuple[str, ...] = FILES) -> list[Path]:
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for name in files:
        target = out / name
        if target.is_file():
            print(f"{target}: already present")
            done.append(target)
            continue
        url = base_url + name
        print(f"downloading {url}")
        try:
            with atomic_path(target) as tmp:
                with urllib.request.urlopen(url, timeout=60) as resp, tmp.open("wb") as fh:
                    while chunk := resp.read(1 << 20):
                        fh.write(chunk)
                trace = read_mooncake_jsonl(tmp, name=target.stem)  # validate before keeping it
                print(f"  {len(trace):,} requests, {trace.num_block_accesses:,} block accesses")
        except OSError as exc:
            print(f"  failed: {exc}", file=sys.stderr)
            continue
        done.append(target)
    return done


if __name__ == "__main__":
    got = download(sys.argv[1] if len(sys.argv) > 1 else "traces/public")
    sys.exit(0 if len(got) == len(FILES) else 1)
