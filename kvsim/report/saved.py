"""Which saved run a notebook reads: the folder an environment variable names, else the one
of the newest matching file under ``outputs/`` (the notebooks read saved files, never rerun)."""

from __future__ import annotations

import os
from pathlib import Path

from kvsim.config import PROJECT_ROOT


def saved_run(env_var: str, pattern: str, beside: str | None = None, root: Path = PROJECT_ROOT) -> Path | None:
    """``$env_var`` if set; else the folder of the newest file matching ``pattern`` (a glob
    under ``root/outputs``) that has ``beside`` next to it; None where there is none yet."""
    given = os.environ.get(env_var)
    if given:
        return Path(given)
    found = [p for p in (root / "outputs").glob(pattern) if beside is None or (p.parent / beside).is_file()]
    return max(found, key=lambda p: p.stat().st_mtime).parent if found else None
