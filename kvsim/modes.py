"""Each mode's Hydra edge: build the mode's objects from the composed config, then call it.

A mode itself takes built objects and typed settings and never reads the config, so that a
notebook or a test runs it without Hydra:

    trace_analysis   kvsim.analysis.run.analyze_to_dir(trace, out, AnalysisSettings), then
                     kvsim.report.trace_report.report_trace_analysis(out) draws
    metadata_bench   kvsim.bench.metadata.run_metadata_bench(trace, arrivals, IndexCatalog, settings, out)
    policy_eval      kvsim.bench.policy_eval.evaluate(PolicyEvalSettings, out, {name: policy factory})
    redis_validation kvsim.bench.redis_validation.run_redis_validation(trace, arrivals, RedisIndex,
                                                                       RedisValidationSettings, out)

(``simulate`` is :func:`kvsim.app.run_simulation`, whose builders live beside it.) The
functions here are what :data:`kvsim.config.MODES` names: ``(cfg, out) -> summary``; each
draws its mode's figures from the saved files afterwards (report/), since a module that
replays does not draw.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from kvsim.app import build_index, build_model, build_policy_factory, build_timed_trace, build_trace
from kvsim.config import PROJECT_ROOT, experiment_settings, load
from kvsim.index.base import IndexModel
from kvsim.io import write_json
from kvsim.policy.base import EvictionPolicy

if TYPE_CHECKING:  # the modes' own modules load when their mode runs (pandas, simpy, ...)
    from kvsim.analysis.run import AnalysisSettings
    from kvsim.bench.validation_settings import RedisValidationSettings

log = logging.getLogger("kvsim")


def drawn(cfg: DictConfig, out: Path, summary: dict[str, Any], draw: str) -> dict[str, Any]:
    """After a mode has written its files: unless ``figures=false``, draw its figures from
    them (``draw``: "module:function" of report/, imported only then; it returns one path,
    the summary's ``figure``, or a dict of them) and record their paths in ``summary.json``."""
    if not cfg.get("figures", True):
        return summary
    got = load(draw)(out)
    paths = got if isinstance(got, dict) else {"figure": got}
    summary.update({k: str(v) if v else None for k, v in paths.items()})
    write_json(Path(out) / "summary.json", summary)
    return summary


# --- trace_analysis --------------------------------------------------------------------------
def analysis_settings(cfg: DictConfig) -> AnalysisSettings:
    """``cfg.experiment`` with what the analysis takes from the rest of the config: the
    figures switch, the seed, and a model's KV bytes per block (a secondary axis; a model
    that cannot be built leaves it out, since the analysis does not need one)."""
    from kvsim.analysis.run import AnalysisSettings
    from kvsim.analysis.settings import TraceAnalysisSettings

    exp = asdict(experiment_settings(cfg.get("experiment"), TraceAnalysisSettings))
    block_bytes = model = None
    if cfg.get("model") is not None:
        try:
            m = build_model(cfg)
            block_bytes, model = m.block_bytes(int(cfg.trace.block_tokens)), m.name
        except Exception:  # optional here: the KV-size axis is left out
            block_bytes = model = None
    return AnalysisSettings(**exp, figures=bool(cfg.get("figures", True)), seed=int(cfg.get("seed", 0)),
                            kv_block_bytes=block_bytes, model=model)


def trace_analysis(cfg: DictConfig, out: Path) -> dict[str, Any]:
    from kvsim.analysis.run import analyze_to_dir
    from kvsim.report.trace_report import report_trace_analysis

    t0 = time.perf_counter()
    trace = build_trace(cfg)
    read_s = time.perf_counter() - t0
    settings = analysis_settings(cfg)
    analyze_to_dir(trace, out, settings, read_s=read_s)
    stats = report_trace_analysis(out, figures=settings.figures)  # drawn from the saved files
    log.info(
        "trace %s: %d requests, %d block accesses, %d unique blocks; block hit ratio %.3f, "
        "mean sequential fraction %.3f, runs test pass %.3f; %.2f s -> %s",
        stats["trace_file"], stats["requests"], stats["block_accesses"], stats["unique_blocks"],
        stats["block_hit_ratio"], stats["mean_sequential_fraction"] or 0.0,
        stats["runs_test_share_p_gt_005"] or 0.0, stats["timing_s"]["total"], out,
    )
    return stats


# --- metadata_bench --------------------------------------------------------------------------
@dataclass(frozen=True)
class ConfigIndexes:
    """The metadata bench's :class:`~kvsim.bench.metadata.IndexCatalog` from a run's config:
    ``conf/index/<name>.yaml`` (the command line's own ``index`` node when it is that index)
    with overrides, built as the simulation builds its index (seeded by the run)."""

    cfg: DictConfig

    @property
    def default(self) -> str:
        return str(self.cfg.index.name)

    def _node(self, name: str, overrides: Mapping[str, Any]) -> DictConfig:
        from kvsim.bench.settings import index_config

        return index_config(self.cfg, name, overrides)

    def key(self, name: str, overrides: Mapping[str, Any]) -> str:
        return OmegaConf.to_yaml(self._node(name, overrides).index, resolve=True)

    def build(self, name: str, overrides: Mapping[str, Any]) -> IndexModel:
        return build_index(self._node(name, overrides))

    def key_order_override(self, name: str, order: str) -> dict[str, Any]:
        from kvsim.bench.settings import key_order_override

        return key_order_override(self.cfg, name, order)


def metadata_bench(cfg: DictConfig, out: Path) -> dict[str, Any]:
    from kvsim.bench.metadata import run_metadata_bench
    from kvsim.bench.settings import settings_of

    trace, arr = build_timed_trace(cfg)  # arrivals from the workload module
    summary = run_metadata_bench(trace, arr, ConfigIndexes(cfg), settings_of(cfg), out, seed=int(cfg.seed))
    return drawn(cfg, out, summary, "kvsim.report.metadata:draw_metadata_bench")


# --- policy_eval -----------------------------------------------------------------------------
def policy_factories(names: Sequence[str]) -> dict[str, Callable[[int], EvictionPolicy]]:
    """Each ``conf/policy/<name>.yaml`` as ``policy=<name>`` builds it (capacity -> policy),
    its keys checked against the class."""
    factories = {}
    for name in names:
        node = OmegaConf.load(PROJECT_ROOT / "conf" / "policy" / f"{name}.yaml")
        factories[name] = build_policy_factory(OmegaConf.create({"policy": node}))
    return factories


def policy_eval(cfg: DictConfig, out: Path) -> dict[str, Any]:
    """Every family x capacity x policy, then the tables and the figure."""
    from kvsim.bench.policy_eval import PolicyEvalSettings, evaluate

    s = experiment_settings(cfg.experiment, PolicyEvalSettings)
    return drawn(cfg, out, evaluate(s, out, policy_factories(s.policies)), "kvsim.report.policy_eval:plot_policy_eval")


# --- redis_validation ------------------------------------------------------------------------
def redis_validation_settings(cfg: DictConfig) -> RedisValidationSettings:
    from kvsim.bench.validation_settings import RedisValidationSettings

    s = experiment_settings(cfg.get("experiment"), RedisValidationSettings)
    s.speedups = [float(x) for x in s.speedups]  # (a speed-up written as 10 is an int in YAML)
    return s


def redis_validation(cfg: DictConfig, out: Path) -> dict[str, Any]:
    from kvsim.bench.redis_validation import run_redis_validation
    from kvsim.index.redis import RedisIndex

    trace, arr = build_timed_trace(cfg)  # arrivals from the workload module
    planner = build_index(cfg)
    assert isinstance(planner, RedisIndex)  # the mode's check refuses another index
    summary = run_redis_validation(trace, arr, planner, redis_validation_settings(cfg), out, seed=int(cfg.seed))
    return drawn(cfg, out, summary, "kvsim.report.redis_validation:plot_cdfs")
