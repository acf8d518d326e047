"""Calibration files: measured values replace defaults, are marked, compose with Hydra, and
a simulation runs with them; every committed calibration file is complete."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import DictConfig, OmegaConf

from kvsim.app import run, validate
from kvsim.calibrate import calfile
from kvsim.calibrate.calfile import (
    CalibrationError,
    Measured,
    Source,
    format_value,
    parse_leaves,
    render,
)

from .conftest import CONF_DIR, ROOT

SRC = Source("2026-01-02T03:04Z", "testhost", "a unit test")
DEFAULT_TEXT = calfile.DEFAULT_FILE.read_text()


def leaves(cfg: DictConfig, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in cfg.items():
        if isinstance(v, DictConfig):
            out.update(leaves(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def run_overrides(conf: Path, name: str) -> list[str]:
    return [f"hydra.searchpath=[file://{conf}]", f"calibration={name}", "trace.max_requests=60",
            "progress=false", "figures=false", "save_requests=false"]


@pytest.mark.parametrize("v", [54.3e-6, 11.5e9, 1.0, 0.0, 999.96e-9, 123456.0, 2.5e6, 1e-12, 0.35e-6, 7.0])
def test_format_value_reads_back_as_the_same_float(v: float) -> None:
    s = format_value(v)
    for loaded in (yaml.safe_load(f"a: {s}")["a"], OmegaConf.create(f"a: {s}").a):
        assert isinstance(loaded, float), s  # PyYAML reads '1e-6' or '11.5e9' as strings
        assert math.isclose(loaded, v, rel_tol=5e-4), (s, v)
    assert format_value(54.3e-6) == "54.3e-6" and format_value(11.5e9) == "11.5e+9"


def test_measured_values_replace_defaults_and_say_so() -> None:
    ms = [Measured("redis.get_s", 1.5e-6, "GET over 10 calls"), Measured("host.memcpy_Bps", 9.9e9, "memcpy, one thread")]
    text = render(DEFAULT_TEXT, "unit", ms, SRC)
    cfg, ref = OmegaConf.create(text), OmegaConf.create(DEFAULT_TEXT)
    assert isinstance(cfg, DictConfig) and isinstance(ref, DictConfig)
    got, want = leaves(cfg), leaves(ref)
    assert got.keys() == want.keys()
    assert got["name"] == "unit"
    assert got["redis.get_s"] == pytest.approx(1.5e-6) and got["host.memcpy_Bps"] == pytest.approx(9.9e9)
    assert {k for k in got if got[k] != want[k]} == {"name", "redis.get_s", "host.memcpy_Bps"}
    # the measured lines are marked, with date, host, method and the default they replace
    old = parse_leaves(DEFAULT_TEXT)
    get_line = next(ln for ln in text.splitlines() if ln.startswith("  get_s:"))
    assert f"# [M] measured 2026-01-02T03:04Z on testhost: GET over 10 calls; default {old['redis.get_s'].value}" in get_line
    assert text.count("[M] measured 2026-01-02T03:04Z on testhost: ") == 2
    # every other line of the default file is there, verbatim, with its source comment
    body = DEFAULT_TEXT.splitlines()[next(i for i, ln in enumerate(DEFAULT_TEXT.splitlines()) if ln.startswith("name:")):]
    changed = {old[k].line for k in ("name", "redis.get_s", "host.memcpy_Bps")}
    first = DEFAULT_TEXT.splitlines().index(body[0])
    out_lines = set(text.splitlines())
    assert all(ln in out_lines for i, ln in enumerate(body, start=first) if i not in changed)
    assert "#   2026-01-02T03:04Z on testhost: a unit test" in text
    assert "calibration=unit" in text


def test_rejects_unknown_keys_bad_values_and_names() -> None:
    with pytest.raises(CalibrationError, match="redis.nope"):
        render(DEFAULT_TEXT, "unit", [Measured("redis.nope", 1.0, "x")], SRC)
    for bad in (float("nan"), float("inf"), -1e-6):
        with pytest.raises(CalibrationError):
            render(DEFAULT_TEXT, "unit", [Measured("redis.get_s", bad, "x")], SRC)
    for name in ("default", "a/b", "", "../x"):
        with pytest.raises(CalibrationError, match="name"):
            render(DEFAULT_TEXT, name, [], SRC)


SYNTHETIC = """\
# header of the default file
# second header line
name: default
net:                      # a section comment
  rtt_s: 25.0e-6          # [I] a guess
  bw_Bps: 11.5e9          # [R] a source
                          #     that goes on here
  label: "a # not a comment" # [I] quoted
top: 3                    # [R] top-level scalar
deep:
  inner:
    x_s: 1.0e-6           # [I] nested
"""


def test_parser_and_writer_on_a_synthetic_file() -> None:
    lv = parse_leaves(SYNTHETIC)
    assert set(lv) == {"name", "net.rtt_s", "net.bw_Bps", "net.label", "top", "deep.inner.x_s"}
    assert lv["net.bw_Bps"].continuation == (6,) and lv["net.rtt_s"].continuation == ()
    assert lv["net.label"].value == '"a # not a comment"'
    text = render(SYNTHETIC, "syn", [Measured("net.bw_Bps", 9.0e9, "bw"), Measured("deep.inner.x_s", 2e-6, "x")], SRC)
    assert "that goes on here" not in text  # the default's reasoning for a replaced value goes
    assert "# header of the default file" not in text  # the header is the calibration file's own
    assert "# a section comment" in text and "# [R] top-level scalar" in text
    cfg = OmegaConf.create(text)
    assert cfg.net.bw_Bps == 9.0e9 and cfg.deep.inner.x_s == 2e-6 and cfg.net.label == "a # not a comment"


def test_measurements_accumulate_and_refresh_follows_the_default() -> None:
    a = render(DEFAULT_TEXT, "acc", [Measured("redis.get_s", 1.5e-6, "GET")], Source("2026-01-01T00:00Z", "h1", "redis run"))
    b = render(DEFAULT_TEXT, "acc", [Measured("host.dram_latency_s", 90e-9, "chase")],
               Source("2026-01-02T00:00Z", "h2", "shim run"), previous_text=a)
    cfg = OmegaConf.create(b)
    assert cfg.redis.get_s == 1.5e-6 and cfg.host.dram_latency_s == 90e-9
    assert "#   2026-01-01T00:00Z on h1: redis run" in b and "#   2026-01-02T00:00Z on h2: shim run" in b
    assert set(calfile.measured_lines(b)) == {"redis.get_s", "host.dram_latency_s"}
    # the default file gains a section: refresh keeps the measured values and adds the new keys
    grown = DEFAULT_TEXT.rstrip("\n") + "\nnewsec:                   # [I] added later\n  k_s: 1.0e-6            # [I] new\n"
    c = render(grown, "acc", [], None, previous_text=b)
    cfg = OmegaConf.create(c)
    assert cfg.newsec.k_s == 1e-6 and cfg.redis.get_s == 1.5e-6 and cfg.host.dram_latency_s == 90e-9
    # a re-measured key replaces the earlier measurement
    d = render(DEFAULT_TEXT, "acc", [Measured("redis.get_s", 3e-6, "again")], SRC, previous_text=b)
    assert OmegaConf.create(d).redis.get_s == 3e-6 and d.count("# [M] measured 20") == 2
    assert "redis run" not in d and "shim run" in d  # the header lists the measurements still in use


def test_refresh_refuses_to_lose_a_renamed_keys_measurement() -> None:
    """The default file renames a measured key: a refresh cannot carry the value over, and
    must say so (naming the key) instead of writing a file that silently has the default."""
    a = render(DEFAULT_TEXT, "ren", [Measured("redis.get_s", 1.5e-6, "GET")], SRC)
    renamed = DEFAULT_TEXT.replace("\n  get_s:", "\n  get_latency_s:", 1)
    assert renamed != DEFAULT_TEXT
    with pytest.raises(CalibrationError, match=r"no longer has: \['redis.get_s'\]"):
        render(renamed, "ren", [], None, previous_text=a)
    # also when the new key is measured now: the user decides (write(..., fresh=True) starts over)
    with pytest.raises(CalibrationError, match="redis.get_s"):
        render(renamed, "ren", [Measured("redis.get_latency_s", 2e-6, "GET")], SRC, previous_text=a)


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "calibration" / "unit.yaml"
    calfile.write("unit", [Measured("redis.get_s", 1.5e-6, "GET")], SRC, out=out)
    before = out.read_text()
    with pytest.raises(CalibrationError):
        calfile.write("unit", [Measured("redis.nope", 1.0, "x")], SRC, out=out)
    real = Path.write_text

    def half_then_fail(self: Path, data: str, *a: object, **k: object) -> int:
        real(self, data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        calfile.write("unit", [Measured("redis.get_s", 2.5e-6, "GET")], SRC, out=out)
    monkeypatch.undo()
    assert out.read_text() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["unit.yaml"]  # no temporary left
    with pytest.raises(CalibrationError, match="default"):
        calfile.write("unit", [], SRC, out=calfile.DEFAULT_FILE)


def test_file_composes_and_drives_the_simulation(compose_cfg, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    ms = [Measured("tcp.rtt_s", 1.0e-3, "a slow network"), Measured("redis.get_s", 2.0e-6, "GET")]
    calfile.write("unit", ms, SRC, out=conf / "calibration" / "unit.yaml")
    cfg = compose_cfg(run_overrides(conf, "unit"))
    assert cfg.calibration.name == "unit"
    assert cfg.index.tcp_rtt_s == 1.0e-3 and cfg.index.get_s == 2.0e-6
    slow = run(cfg, tmp_path / "slow")
    fast = run(compose_cfg(run_overrides(conf, "default")), tmp_path / "fast")
    assert slow["requests"] == fast["requests"] == 60
    assert slow["metadata_p50_s"] >= 1.0e-3 > fast["metadata_p50_s"]  # every lookup pays the round trip


def committed() -> list[Path]:
    return sorted(p for p in (CONF_DIR / "calibration").glob("*.yaml") if p.stem != "default")


@pytest.mark.parametrize("path", committed(), ids=lambda p: p.stem)
def test_committed_calibration_files_are_complete(path: Path, compose_cfg) -> None:
    """A file beside default.yaml has every key it has (else `python -m kvsim.calibrate
    refresh NAME` after the default file changed), and works with every index."""
    text = path.read_text()
    try:
        calfile.check(text, DEFAULT_TEXT)
    except CalibrationError as e:
        pytest.fail(f"{path.name}: {e}; run `python -m kvsim.calibrate refresh {path.stem}`")
    assert OmegaConf.create(text).name == path.stem
    for line in calfile.measured_lines(text).values():
        assert re.search(r"# \[M\] measured \d{4}-\d\d-\d\dT\d\d:\d\dZ on \S+: ", line), line
    for index in sorted(p.stem for p in (CONF_DIR / "index").glob("*.yaml")):
        validate(compose_cfg([f"calibration={path.stem}", f"index={index}"]))


@pytest.mark.child_process
def test_python_m_kvsim_runs_with_a_written_calibration(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    calfile.write("cli", [Measured("tcp.rtt_s", 40e-6, "loopback")], SRC, out=conf / "calibration" / "cli.yaml")
    out = tmp_path / "run"
    p = subprocess.run(
        [sys.executable, "-m", "kvsim", *run_overrides(conf, "cli"), f"hydra.run.dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "tcp_rtt_s: 4.0e-05" in (out / "config.yaml").read_text()
