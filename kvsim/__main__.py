"""`python -m kvsim [overrides]`: compose the config with Hydra and run it.

Each run (a single run, or one job of a multirun) goes through :class:`RunFolder`: locked,
checked (skipped if its folder holds a complete run of the same config, refused if it holds
another's unless ``overwrite=true``), written into a staging folder and made visible by
one rename. A job of a sweep that fails leaves a one-line failure record for the sweep's
table instead (:mod:`kvsim.sweepjobs`).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

import kvsim.config  # noqa: F401  (registers the config schemas and resolvers)
from kvsim.app import run
from kvsim.runfolder import RunFolder, config_hash, discard_staged
from kvsim.sweepjobs import clear_failure, record_failure

# conf/hydra/launcher/{joblib,submitit_*}.yaml are validated against the plugins' schemas of
# the same name (a misspelled launcher key fails at compose time); Hydra 1.3 warns that this
# matching is deprecated. The cluster extra pins hydra-core 1.3.8, where it works.
warnings.filterwarnings("ignore", message=r"(?s).*validated against ConfigStore schema with the same name")
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")
log = logging.getLogger("kvsim")


def sigterm_as_interrupt() -> None:
    """SIGTERM (a scheduler's or `kill`'s) unwinds like Ctrl-C: staging folders and temporary
    files are removed on the way out. Only the main thread may set handlers."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)


def _error_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_job(cfg: DictConfig) -> float | None:
    hc = HydraConfig.get()
    final = Path(hc.runtime.output_dir)
    sweep_dir = Path(hc.sweep.dir).absolute() if hc.mode == RunMode.MULTIRUN else None
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    h = config_hash({str(k): v for k, v in container.items()})
    sigterm_as_interrupt()
    try:
        with RunFolder(final, h, overwrite=bool(cfg.overwrite)) as rf:
            if rf.skip:
                log.info("skip: complete %s (same config; overwrite=true reruns it)", final)
                summary = json.loads((final / "summary.json").read_text()) if (final / "summary.json").is_file() else {}
            else:
                if sweep_dir is not None:
                    cfg.progress = False  # one bar per job would garble the sweep's output
                summary = run(cfg, rf.staging)
                rf.commit()
                log.info("results: %s", final)
    except Exception as exc:
        if sweep_dir is not None:
            record_failure(sweep_dir, final.name, int(hc.job.num), h, _error_line(exc))
        raise
    if sweep_dir is not None:
        clear_failure(sweep_dir, final.name)
    ratio = summary.get("hit_ratio") if isinstance(summary, dict) else None
    return float(ratio) if ratio is not None else None


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _main(cfg: DictConfig) -> float | None:
    return run_job(cfg)


def main() -> None:
    sigterm_as_interrupt()
    try:
        _main()
    finally:
        discard_staged()


if __name__ == "__main__":
    main()
