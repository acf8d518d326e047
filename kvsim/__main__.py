"""`python -m kvsim [overrides]`: compose the config with Hydra and run it."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import kvsim.config  # noqa: F401  (registers the config schemas and resolvers)
from kvsim.app import run

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def _main(cfg: DictConfig) -> float | None:
    out = Path(HydraConfig.get().runtime.output_dir)
    summary = run(cfg, out)
    ratio = summary.get("hit_ratio") if isinstance(summary, dict) else None
    return float(ratio) if ratio is not None else None


def main() -> None:
    _main()


if __name__ == "__main__":
    main()
