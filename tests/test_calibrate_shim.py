"""The native shim: its JSON read on fixed inputs, and the shim built and run here
(locally, and as client and server over loopback TCP; RDMA and CUDA skip cleanly)."""

from __future__ import annotations

import copy
import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from kvsim.calibrate import calfile, shim
from kvsim.calibrate.__main__ import main
from kvsim.calibrate.shim import ShimError, parse_shim

LOCAL_DOC: dict[str, Any] = {
    "tool": "kvsim-shim", "format": 1, "version": "0.1.0", "hostname": "node7",
    "date_utc": "2026-03-04T05:06:07Z", "cpu": "AMD EPYC", "role": "local",
    "build": {"rdma": True, "cuda": False},
    "dram": {"status": "ok", "buffer_bytes": 268435456, "accesses": 4000000, "repeats": 3,
             "latency_s": 1.05e-07, "latency_min_s": 1.01e-07, "latency_max_s": 1.12e-07},
    "memcpy": {"status": "ok", "bytes": 268435456, "repeats": 5, "bandwidth_Bps": 1.2e10,
               "bandwidth_max_Bps": 1.3e10, "bandwidth_min_Bps": 1.1e10},
    "cuda": {"status": "skipped", "reason": "built without the CUDA runtime"},
    "tcp": {"status": "skipped", "reason": "no peer"},
    "rdma": {"status": "skipped", "reason": "no RDMA device"},
}

CLIENT_DOC: dict[str, Any] = {
    **copy.deepcopy(LOCAL_DOC), "role": "client", "peer": "10.0.0.2",
    "cuda": {"status": "ok", "device": "NVIDIA H100", "device_index": 0, "bytes": 268435456, "repeats": 10,
             "h2d_Bps": 5.3e10, "d2h_Bps": 5.5e10, "small_h2d_p50_s": 8.0e-6, "small_h2d_p99_s": 1.2e-5,
             "small_h2d_mean_s": 8.5e-6, "small_h2d_min_s": 7.0e-6, "small_h2d_samples": 2000},
    "tcp": {"status": "ok", "message_bytes": 64, "warmup": 1000, "rtt_p50_s": 2.4e-5, "rtt_p99_s": 3.1e-5,
            "rtt_mean_s": 2.5e-5, "rtt_min_s": 2.0e-5, "rtt_samples": 9000},
    "rdma": {"device": "mlx5_0", "port": 1, "link_layer": "Ethernet", "gid_index": 3, "active_mtu": 4096,
             "active_speed": 64, "active_width": 2, "latency_bytes": 8, "latency_iters": 10000,
             "write_inline": True,
             "read_rtt_p50_s": 1.95e-6, "read_rtt_p99_s": 2.4e-6, "read_rtt_p999_s": 3.9e-6, "read_rtt_mean_s": 2.0e-6,
             "read_rtt_min_s": 1.8e-6, "read_rtt_samples": 10000,
             "write_rtt_p50_s": 1.9e-6, "write_rtt_p99_s": 2.3e-6, "write_rtt_mean_s": 1.9e-6,
             "write_rtt_min_s": 1.7e-6, "write_rtt_samples": 10000,
             "cas_rtt_p50_s": 2.1e-6, "cas_rtt_p99_s": 2.6e-6, "cas_rtt_mean_s": 2.1e-6,
             "cas_rtt_min_s": 1.9e-6, "cas_rtt_samples": 10000,
             "bw_bytes": 65536, "bw_msgs": 20000, "bw_window": 64, "write_bw_Bps": 1.17e10,
             "read_bw_Bps": 1.15e10, "rate_window": 16, "read_depth": 16, "small_read_rate_per_s": 2.6e6,
             "status": "ok"},
}


def test_local_output_gives_host_memory_keys() -> None:
    r = parse_shim(LOCAL_DOC)
    assert {m.key: m.value for m in r.measured} == {"host.dram_latency_s": 1.05e-07, "host.memcpy_Bps": 1.2e10}
    assert r.skipped == {"cuda": "built without the CUDA runtime", "tcp": "no peer", "rdma": "no RDMA device"}
    assert not r.errors
    assert (r.source.host, r.source.date) == ("node7", "2026-03-04T05:06Z")
    assert "dram, memcpy" in r.source.what and "skipped cuda, rdma, tcp" in r.source.what
    dram = next(m for m in r.measured if m.key == "host.dram_latency_s")
    assert "256 MiB" in dram.note and "101 - 112 ns" in dram.note


def test_client_output_gives_network_rdma_and_pcie_keys() -> None:
    got = {m.key: m.value for m in parse_shim(CLIENT_DOC).measured}
    assert got == pytest.approx({
        "host.dram_latency_s": 1.05e-07, "host.memcpy_Bps": 1.2e10,
        "tcp.rtt_s": 2.4e-5, "tcp.rtt_p99_s": 3.1e-5,   # tails beside the medians
        "rdma.read_rtt_s": 1.95e-6, "rdma.one_way_s": 0.975e-6,
        "rdma.read_rtt_p99_s": 2.4e-6, "rdma.read_rtt_p999_s": 3.9e-6,
        "rdma.write_one_way_s": 0.95e-6,      # a signaled WRITE's completion is a round trip
        "rdma.write_one_way_p99_s": 1.15e-6,
        "rdma.atomic_rtt_s": 2.1e-6, "rdma.atomic_rtt_p99_s": 2.6e-6,
        "rdma.bandwidth_Bps": 1.15e10,        # the lower of READ and WRITE
        "rdma.message_rate_per_s": 2.6e6,
        "pcie.h2d_Bps": 5.3e10, "pcie.latency_s": 8.0e-6,
    })
    doc = copy.deepcopy(CLIENT_DOC)
    for k in [k for k in doc["rdma"] if k.startswith("cas_")]:
        del doc["rdma"][k]
    keys = {m.key for m in parse_shim(doc).measured}
    assert "rdma.atomic_rtt_s" not in keys and "rdma.atomic_rtt_p99_s" not in keys  # no atomics: defaults kept


def test_every_key_the_shim_gives_exists_in_the_default_file() -> None:
    r = parse_shim(CLIENT_DOC)
    text = calfile.render(calfile.DEFAULT_FILE.read_text(), "tb", r.measured, r.source)
    cfg = OmegaConf.create(text)
    assert cfg.rdma.read_rtt_s == 1.95e-6 and cfg.pcie.h2d_Bps == 5.3e10
    assert text.count("# [M] measured 2026-03-04T05:06Z on node7: ") == 16


def test_bad_documents_are_refused() -> None:
    with pytest.raises(ShimError, match="server"):
        parse_shim({**LOCAL_DOC, "role": "server"})
    with pytest.raises(ShimError, match="format"):
        parse_shim({**LOCAL_DOC, "format": 2})
    with pytest.raises(ShimError, match="kvsim-shim"):
        parse_shim({"tool": "perftest"})
    with pytest.raises(ShimError, match="dram"):
        parse_shim({**LOCAL_DOC, "dram": {"status": "ok"}})
    r = parse_shim({**LOCAL_DOC, "memcpy": {"status": "error", "reason": "cannot allocate"}})
    assert r.errors == {"memcpy": "cannot allocate"} and [m.key for m in r.measured] == ["host.dram_latency_s"]


def test_cli_turns_saved_json_into_a_calibration_file(tmp_path: Path) -> None:
    src = tmp_path / "shim.json"
    src.write_text(json.dumps(CLIENT_DOC))
    out = tmp_path / "calibration" / "tb.yaml"
    assert main(["shim", "--json", str(src), "--name", "tb", "--out", str(out), "--note", "two hosts"]) == 0
    text = out.read_text()
    assert "# Note: two hosts" in text and OmegaConf.create(text).tcp.rtt_s == 2.4e-5
    (tmp_path / "server.json").write_text(json.dumps({**LOCAL_DOC, "role": "server"}))
    x = tmp_path / "calibration" / "x.yaml"
    assert main(["shim", "--json", str(tmp_path / "server.json"), "--out", str(x)]) == 2  # a user error
    assert not x.exists()


def test_the_printed_command_runs_with_the_file_written_by_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--out DIR/calibration/NAME.yaml``: the printed ``python -m kvsim ...`` line finds it."""
    import shlex
    import sys

    src = tmp_path / "shim.json"
    src.write_text(json.dumps(CLIENT_DOC))
    out = tmp_path / "elsewhere" / "calibration" / "tb2.yaml"
    assert main(["shim", "--json", str(src), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    cmd = shlex.split(line.split("use it with: ", 1)[1])
    assert cmd[:3] == ["python", "-m", "kvsim"] and "calibration=tb2" in cmd
    run = tmp_path / "run"
    p = subprocess.run(
        [sys.executable, *cmd[1:], "trace.max_requests=30", "progress=false", "figures=false",
         "save_requests=false", f"hydra.run.dir={run}"],
        capture_output=True, text=True, timeout=300,
    )
    assert p.returncode == 0, p.stderr
    assert OmegaConf.load(run / "config.yaml").calibration.name == "tb2"


def test_out_must_be_a_calibration_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "shim.json"
    src.write_text(json.dumps(CLIENT_DOC))
    assert main(["shim", "--json", str(src), "--out", str(tmp_path / "tb.yaml")]) == 2
    assert "give DIR/calibration/NAME.yaml" in capsys.readouterr().err
    assert main(["shim", "--json", str(src), "--name", "a", "--out", str(tmp_path / "calibration" / "b.yaml")]) == 2
    assert not list(tmp_path.rglob("*.yaml"))


# --- the shim built and run on this machine ------------------------------------------------
SMALL = ["--dram-bytes", "8M", "--dram-accesses", "200000", "--memcpy-bytes", "8M", "--cuda-bytes", "8M"]


def _build(tmp: Path, *extra: str) -> Path:
    if shutil.which("make") is None or (shutil.which("cc") or shutil.which("gcc")) is None:
        pytest.skip("make or a C compiler (gcc) is not installed: cannot build shim/ (apt-get install make gcc)")
    return shim.build(build_dir=tmp, extra=extra)


@pytest.fixture(scope="module")
def shim_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("shim-build"))  # not shim/build: leaves a user's build alone


def rdma_devices() -> list[str]:
    d = Path("/sys/class/infiniband")
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def test_shim_runs_locally_and_skips_rdma_cleanly(shim_bin: Path) -> None:
    p = subprocess.run([str(shim_bin), *SMALL], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["tool"] == "kvsim-shim" and doc["role"] == "local"
    assert 1e-9 < doc["dram"]["latency_s"] < 1e-5
    assert doc["memcpy"]["bandwidth_Bps"] > 1e8
    assert doc["build"]["rdma"] == Path("/usr/include/infiniband/verbs.h").exists()
    assert doc["rdma"]["status"] == "skipped"
    if not rdma_devices():
        assert doc["rdma"]["reason"] in ("no RDMA device", "built without libibverbs (install libibverbs-dev and rebuild)")
        if doc["build"]["rdma"]:
            assert "no RDMA device: skipped" in p.stderr
    assert doc["cuda"]["status"] in ("skipped", "ok")
    keys = {m.key for m in parse_shim(doc).measured}
    assert {"host.dram_latency_s", "host.memcpy_Bps"} <= keys


def test_shim_builds_without_rdma_or_cuda(tmp_path: Path) -> None:
    binary = _build(tmp_path, "RDMA=0", "CUDA=0")
    p = subprocess.run([str(binary), "--skip", "dram,memcpy"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["build"] == {"rdma": False, "cuda": False}
    assert doc["rdma"]["reason"].startswith("built without libibverbs")
    assert doc["cuda"]["reason"].startswith("built without the CUDA runtime")
    assert doc["dram"]["status"] == "skipped"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_shim_client_and_server_over_loopback(shim_bin: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [str(shim_bin), "--server", "--bind", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        client = subprocess.run(
            [str(shim_bin), "--client", "127.0.0.1", "--port", str(port), "--pings", "300",
             "--skip", "dram,memcpy,cuda", "--connect-timeout", "10"],
            capture_output=True, text=True, timeout=60,
        )
        s_out, s_err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert client.returncode == 0, client.stderr
    assert server.returncode == 0, s_err
    c, s = json.loads(client.stdout), json.loads(s_out)
    assert c["role"] == "client" and s["role"] == "server"
    assert c["tcp"]["status"] == "ok" and c["tcp"]["rtt_samples"] == 270  # the first 30 warm up
    assert 0 < c["tcp"]["rtt_min_s"] <= c["tcp"]["rtt_p50_s"] <= c["tcp"]["rtt_p99_s"] < 1.0
    assert s["tcp"] == {"status": "ok", "echoed": 300}
    if not rdma_devices():
        assert c["rdma"]["status"] == s["rdma"]["status"] == "skipped"
    r = parse_shim(c)
    assert [m.key for m in r.measured] == ["tcp.rtt_s", "tcp.rtt_p99_s", "tcp.rtt_p999_s"]
    assert "127.0.0.1" in r.measured[0].note


def test_shim_usage_errors(shim_bin: Path) -> None:
    for args in (["--bogus"], ["--server", "--client", "x"], ["--skip", "gpu"], ["--dram-repeats", "0"]):
        p = subprocess.run([str(shim_bin), *args], capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, args
    p = subprocess.run([str(shim_bin), "--client", "127.0.0.1", "--port", str(free_port()), "--connect-timeout", "0",
                        "--skip", "dram,memcpy,cuda"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 1 and "cannot connect" in p.stderr
    assert json.loads(p.stdout)["rdma"]["status"] == "error"  # the JSON is still whole


def test_calibrate_shim_run_writes_a_file(shim_bin: Path, tmp_path: Path) -> None:
    out = tmp_path / "calibration" / "here.yaml"
    rc = main(["shim", "--run", "--shim", str(shim_bin), "--name", "here", "--out", str(out),
               "--save-json", str(tmp_path / "raw.json"), "--", *SMALL, "--skip", "cuda"])
    assert rc == 0
    cfg = OmegaConf.create(out.read_text())
    raw = json.loads((tmp_path / "raw.json").read_text())
    assert cfg.host.dram_latency_s == pytest.approx(raw["dram"]["latency_s"], rel=1e-3)
    assert cfg.name == "here" and f"on {raw['hostname']}: kvsim-shim" in out.read_text()

