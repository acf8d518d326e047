"""The modes' Hydra edge (kvsim/modes.py): modes run from built objects without a config,
the edge builds what the config says, and no model or mode module reaches back into the
edge (DESIGN: "no model or mode module imports kvsim.app")."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvsim.bench.metadata import run_metadata_bench
from kvsim.bench.settings import MetadataBenchSettings
from kvsim.config import MODES, load
from kvsim.index.base import IndexModel
from kvsim.index.mooncake import MooncakeMasterIndex
from kvsim.index.redis import RedisIndex
from kvsim.modes import ConfigIndexes
from kvsim.trace.schema import Trace
from kvsim.workload import arrivals

PACKAGE = Path(__file__).resolve().parents[1] / "kvsim"
# The edge: what turns a config into objects (and the command line and config checks above it).
EDGE = {"app.py", "modes.py", "checks.py", "__main__.py"}


def _imports_app(path: Path) -> list[int]:
    """Lines of ``path`` that import the edge (kvsim.app or kvsim.modes), in any form."""
    edge = ("kvsim.app", "kvsim.modes")
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            names = [f"{node.module}.{a.name}" for a in node.names] + [str(node.module)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        if any(n in edge for n in names):
            lines.append(node.lineno)
    return sorted(lines)


def test_no_model_or_mode_module_imports_the_edge() -> None:
    found = {str(p.relative_to(PACKAGE)): ls for p in sorted(PACKAGE.rglob("*.py"))
             if p.name not in EDGE or p.parent != PACKAGE for ls in [_imports_app(p)] if ls}
    assert found == {}


def test_the_import_rule_sees_every_form(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from kvsim.app import build_index\n\nfrom kvsim import modes\nimport kvsim.app\nimport kvsim.index\n")
    assert _imports_app(f) == [2, 4, 5]


def test_every_mode_runs_through_the_edge() -> None:
    for name, mode in MODES.items():
        assert mode.run.startswith(("kvsim.modes:", "kvsim.app:")), name
        assert callable(load(mode.run))


class HandCatalog:
    """Index models built by hand, no config: what a notebook passes."""

    default = "redis"

    def __init__(self) -> None:
        self.built: list[tuple[str, dict[str, Any]]] = []

    def key(self, name: str, overrides: Mapping[str, Any]) -> str:
        return f"{name}:{sorted(overrides.items())}"

    def build(self, name: str, overrides: Mapping[str, Any]) -> IndexModel:
        self.built.append((name, dict(overrides)))
        rng = np.random.default_rng(0)
        if name == "redis":
            return RedisIndex(tcp_rtt_s=30e-6, get_s=1e-6, mget_base_s=1.5e-6, mget_per_key_s=0.3e-6,
                              mset_base_s=2e-6, mset_per_key_s=0.5e-6, del_base_s=1.5e-6, del_per_key_s=0.3e-6,
                              rng=rng, **overrides)
        assert name == "mooncake"
        return MooncakeMasterIndex(rpc_rtt_s=40e-6, rpc_base_s=5e-6, per_key_s=0.2e-6, rng=rng, **overrides)

    def key_order_override(self, name: str, order: str) -> dict[str, Any]:
        return {"key_order": order}


def test_the_metadata_bench_runs_from_built_objects(embedded_trace: Trace, tmp_path: Path) -> None:
    trace = embedded_trace.head(300)
    arr = arrivals(trace.arrival_s, "none")
    s = MetadataBenchSettings(parts=["bench"], indexes=["redis", "mooncake"],
                              variants={"redis_again": {"index": "redis"}}, warmup_s=0.0, interval_s=30.0)
    cat = HandCatalog()
    summary = run_metadata_bench(trace, arr, cat, s, tmp_path, seed=0)
    table = pd.read_csv(tmp_path / "metadata_summary.csv")
    assert set(table["index"]) == {"redis", "mooncake", "redis_again"}
    # the variant resolves to the same config as "redis": replayed once, listed twice
    assert cat.built == [("redis", {}), ("mooncake", {})]
    a, b = (table[table["index"] == x].drop(columns="index").reset_index(drop=True) for x in ("redis", "redis_again"))
    pd.testing.assert_frame_equal(a, b)
    assert summary["requests"] == len(trace) and summary["workload"]["spread"] == "none"


def test_config_indexes_build_the_named_index_with_overrides(compose_cfg) -> None:  # type: ignore[no-untyped-def]
    cfg = compose_cfg(["+experiment=metadata_bench", "index=redis"])
    cat = ConfigIndexes(cfg)
    assert cat.default == "redis"
    sh = cat.build("sherman", {"cache_bytes": 0})
    assert type(sh).__name__ == "ShermanIndex"
    assert cat.key("sherman", {"cache_bytes": 0}) != cat.key("sherman", {})
    assert cat.key("sherman", {}) == cat.key("sherman", {})
    assert cat.key_order_override("sherman", "hashed") == {"client.key_order": "hashed"}


def test_the_readme_example_runs(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """README's "From Python, without Hydra" block, as printed there."""
    readme = (PACKAGE.parent / "README.md").read_text()
    section = readme.split("### From Python, without Hydra", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "traces").symlink_to(PACKAGE.parent / "traces")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    bench = tmp_path / "outputs" / "from_python" / "bench"
    assert set(pd.read_csv(bench / "metadata_summary.csv")["index"]) == {"redis"}
    analysis = tmp_path / "outputs" / "from_python" / "analysis"
    assert (analysis / "report.md").is_file() and list(analysis.glob("fig*.png"))
