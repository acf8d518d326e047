"""The bad-input corpus: every way a user can err, through the real command line.

Each :class:`Case` is one command (``python -m MODULE ARGS`` in a subprocess) that must
fail with exactly one line on stderr, ``MODULE: error: ...`` holding ``expect``, exit
code ``code``, no traceback, and leave every file it could touch as it was: the command
runs in a scratch folder holding a copy of a complete earlier run, and ``hydra.run.dir``
points at that copy (a rerun into a finished run folder), so the test compares every
file under the scratch folder, byte for byte, before and after.

To add a case, add a row to :data:`CASES`. In ``argv`` (and ``expect``, ``env``), ``{bad}``
is ``tests/bad_inputs``, ``{tmp}`` the scratch folder, ``{run}`` the earlier run's folder,
``{root}`` the project and ``{port}`` the port of a fake server answering ``server``;
``setup`` may write generated inputs into the scratch folder first (they are part of the
"before"). ``python -m kvsim`` cases get ``hydra.run.dir={run}`` and
``hydra.sweep.dir={tmp}/sweep`` added.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ROOT

BAD = ROOT / "tests" / "bad_inputs"


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]
    expect: str  # a fragment of the one error line
    code: int = 2  # 2: a user error
    module: str = "kvsim"
    setup: Callable[[Path], None] | None = None
    env: tuple[tuple[str, str], ...] = ()  # extra environment ({tmp} etc. filled in)
    server: bytes | None = None  # a fake TCP server answering this to anything; its port is {port}


CASES: list[Case] = [
    # --- config: every mistake fails at compose time, naming the key ---------------------
    Case("plus_typo_in_typed_group", ("+system.capacity_scal=0.5",),
         "system.capacity_scal: unknown key; did you mean 'capacity_scale'?"),
    Case("plus_typo_in_experiment", ("+experiment=trace_analysis", "+experiment.runs_alpah=0.1"),
         "experiment.runs_alpah: unknown key; did you mean 'runs_alpha'?"),
    Case("typo_without_plus", ("system.capcity_scale=2",), "capcity_scale"),
    Case("nan", ("system.capacity_scale=nan",), "system.capacity_scale: is NaN"),
    Case("inf", ("gpu.peak_flops=inf",), "gpu.peak_flops: must be finite"),
    Case("zero_layers", ("model.layers=0",), "model.layers: must be >= 1, got 0"),
    Case("zero_block_tokens", ("trace.block_tokens=0",), "trace.block_tokens: must be >= 1, got 0"),
    Case("zero_tensor_parallel", ("gpu.tensor_parallel=0",), "gpu.tensor_parallel: must be >= 1, got 0"),
    Case("negative_round_trip", ("calibration.tcp.rtt_s=-25e-6",), "calibration.tcp.rtt_s: must be >= 0"),
    Case("zero_max_requests", ("trace.max_requests=0",), "trace.max_requests: must be >= 1, got 0"),
    Case("wrong_type", ("model.layers=many",), "model.layers: Value 'many' of type 'str' could not be converted to Integer"),
    Case("flag_not_bool", ("policy.inclusive=1",), "policy.inclusive: expected true or false, got 1"),
    Case("policy_param_range", ("policy=s3fifo", "policy.small_ratio=1.5"), "policy.small_ratio: must be < 1, got 1.5"),
    Case("index_param_choice", ("index=chime", "index.client.key_order=sorted"),
         "index.client.key_order: 'sorted' is not one of remapped, hashed"),
    Case("plus_key_in_policy", ("+policy.agee=3",), "policy.agee: unknown key for kvsim.policy.lru.LRU"),
    Case("key_ignored_by_tiered", ("system.capacity_blocks=5000",),
         "system.capacity_blocks: set to 5000, but ignored when system.kind=tiered"),
    Case("key_ignored_by_single_tier", ("system=single_tier", "system.capacity_scale=0.5"),
         "system.capacity_scale: set to 0.5, but ignored when system.kind=single_tier"),
    Case("group_ignored_by_mode", ("+experiment=trace_analysis", "policy=fifo"),
         "policy=fifo: mode trace_analysis does not use 'policy' (used by: simulate)"),
    Case("unknown_option", ("policy=lruu",), "Could not find 'policy/lruu'; Available options in 'policy': arc, fifo"),
    Case("override_grammar", ("system.capacity_scale=[",), "override 'system.capacity_scale=['"),
    Case("unknown_index_in_bench", ("+experiment=metadata_bench", "experiment.indexes=[redis,sherma]"),
         "experiment.indexes: no index config 'sherma'"),
    Case("unknown_policy_in_eval", ("+experiment=policy_eval", "experiment.policies=[lru,opt,lruu]"),
         "experiment.policies[2]: 'lruu' is not one of arc, fifo"),
    Case("eval_without_its_yardstick", ("+experiment=policy_eval", "experiment.policies=[lru,fifo]"),
         "experiment.policies: opt is a yardstick and must be listed"),
    Case("multirun_checks_every_job_first", ("-m", "policy=lru,fifo", "system.capacity_scale=1,nan"),
         "system.capacity_scale: is NaN"),
    Case("memory_limit_zero", ("memory_limit_gib=0",), "memory_limit_gib: must be > 0, got 0.0"),
    Case("negative_seed", ("seed=-1",), "seed: must be >= 0, got -1"),
    Case("unknown_experiment", ("+experiment=placement_swep",), "Could not find 'experiment/placement_swep'"),
    Case("switch_set_to_a_number", ("overwrite=2",), "overwrite: expected true or false, got '2'"),
    Case("nested_switch_set_to_a_number", ("system.overlap_load=0",),
         "system.overlap_load: expected true or false, got '0'"),
    Case("broken_interpolation", ("trace.path=${{nope}}",), "trace.path: Interpolation key 'nope' not found"),
    Case("experiment_setting_of_another_mode", ("+experiment=metadata_bench", "+experiment.runs_alpha=0.1"),
         "experiment.runs_alpha: unknown key"),
    Case("sweep_value_out_of_range_in_an_experiment", ("+experiment=placement_sweep", "system.capacity_scale=0.5,-1"),
         "system.capacity_scale: must be > 0, got -1"),
    # --- run folders and sweeps (issue 8 item 1-2, issue 12) ------------------------------
    Case("run_folder_holds_another_config", ("trace.max_requests=20",),
         "holds a complete run of another config (hash "),  # {run} holds trace.max_requests=30
    Case("launcher_key_typo", ("-m", "hydra/launcher=joblib", "hydra.launcher.n_jbos=2"),
         "hydra.launcher.n_jbos: Key 'n_jbos' not in 'JobLibLauncherConf'"),
    Case("launcher_value_type", ("-m", "hydra/launcher=submitit_slurm", "hydra.launcher.mem_gb=lots"),
         "hydra.launcher.mem_gb: Value 'lots' of type 'str' could not be converted to Integer"),
    Case("report_missing_folder", ("{tmp}/nope",), "{tmp}/nope: no such folder", module="kvsim.report"),
    Case("report_not_a_sweep", ("{run}",), "no sweep_jobs.json, so not a kvsim sweep folder", module="kvsim.report"),
    # --- paths ------------------------------------------------------------------------------
    # --- the serving node: a model that does not fit, scopes, scheduler, arrivals ---------
    Case("model_does_not_fit", ("model=llama3_70b",),
         "model llama3_70b does not fit on gpu h100 with gpu.tensor_parallel=1: HBM 80.0 GiB x 1 = 80.0 GiB"),
    Case("unknown_scope", ("system.devices.gpu=rack",), "system.devices.gpu"),
    Case("scope_narrows_down_the_chain", ("system.devices.ssd=instance",), "scope cannot be narrower"),
    Case("zero_token_budget", ("scheduler.max_batch_tokens=0",), "scheduler.max_batch_tokens: must be >= 1, got 0"),
    Case("unknown_spread", ("trace.spread=smear",), "trace.spread"),
    Case("router_param_range", ("router.balance_tokens=-5",), "router.balance_tokens: must be >= 0"),
    Case("trace_missing", ("trace.path={tmp}/nope.jsonl",), "trace.path: file not found: "),
    Case("trace_is_a_folder", ("trace.path={tmp}",), "trace.path: is a folder, not a file"),
    Case("run_folder_under_a_file", ("hydra.run.dir={tmp}/a_file/run", "trace.max_requests=5"), "Not a directory",
         setup=lambda d: (d / "a_file").write_text("x")),
    # --- hostile traces: FILE:LINE: field 'NAME': what is wrong -----------------------------
    Case("id_over_int64", ("trace.path={bad}/id_over_int64.jsonl",),
         "id_over_int64.jsonl:3: field 'hash_ids': element 1 (9223372036854775808) does not fit in int64"),
    Case("id_2_pow_64", ("trace.path={bad}/id_2_pow_64.jsonl",),
         "id_2_pow_64.jsonl:3: field 'hash_ids': element 1 (18446744073709551616) does not fit in int64"),
    Case("repeated_id", ("trace.path={bad}/repeated_id.jsonl",),
         "repeated_id.jsonl:3: field 'hash_ids': element 2 (3) repeats an earlier id: Mooncake hash_ids are "
         "chained prefix hashes numbered in first-seen order, so they strictly increase within a request"),
    Case("decreasing_id", ("trace.path={bad}/decreasing_id.jsonl",),
         "decreasing_id.jsonl:3: field 'hash_ids': element 2 (4) is less than element 1 (5): Mooncake hash_ids are chained"),
    Case("negative_id", ("trace.path={bad}/negative_id.jsonl",),
         "negative_id.jsonl:3: field 'hash_ids': element 1 is not a non-negative integer: -4"),
    Case("invalid_utf8", ("trace.path={bad}/invalid_utf8.jsonl",),
         "invalid_utf8.jsonl:3: field '<text>': invalid UTF-8 at byte 91 of the line"),
    Case("not_json", ("trace.path={bad}/not_json.jsonl",), "not_json.jsonl:3: field '<json>': not valid JSON"),
    Case("missing_field", ("trace.path={bad}/missing_field.jsonl",), "missing_field.jsonl:3: field 'hash_ids': missing"),
    Case("nan_timestamp", ("trace.path={bad}/nan_timestamp.jsonl",),
         "nan_timestamp.jsonl:3: field 'timestamp': expected a number, got nan"),
    Case("decreasing_timestamp", ("trace.path={bad}/decreasing_timestamp.jsonl",),
         "decreasing_timestamp.jsonl:3: field 'timestamp': decreases (2999 after 3000)"),
    Case("string_length", ("trace.path={bad}/string_length.jsonl",),
         "string_length.jsonl:3: field 'output_length': expected a number, got '7'"),
    Case("block_count", ("trace.path={bad}/block_count.jsonl",),
         "block_count.jsonl:3: field 'hash_ids': has 3 blocks but input_length=600 needs ceil(600/512) = 2"),
    Case("empty_trace", ("trace.path={bad}/empty.jsonl",), "empty.jsonl:0: field '<file>': no requests"),
    Case("blank_lines_only", ("trace.path={bad}/blank_lines_only.jsonl",), "blank_lines_only.jsonl:0: field '<file>': no requests"),
    Case("gzip_of_a_bad_trace", ("trace.path={tmp}/repeated_id.jsonl.gz",),
         "repeated_id.jsonl.gz:3: field 'hash_ids': element 2 (3) repeats an earlier id", setup=lambda d: _gzip(d, "repeated_id.jsonl")),
    Case("bailian_id_not_64_bits", ("trace=bailian", "trace.path={tmp}/b.jsonl"),
         "b.jsonl:2: field 'hash_ids': element 1 is not a 64-bit integer: 18446744073709551616",
         setup=lambda d: _bailian(d, [1, 2**64])),
    Case("bailian_block_not_a_multiple_of_16", ("trace=bailian", "trace.path={tmp}/b.jsonl", "trace.block_tokens=24"),
         "trace.block_tokens: Bailian traces have 16-token blocks, so a block must be a positive multiple of 16 tokens, got 24",
         setup=lambda d: _bailian(d, [1, 2])),
    Case("bailian_missing", ("trace=bailian", "trace.path={tmp}/nope.jsonl"),
         "trace.path: file not found: "),
    Case("gzip_cut_short", ("trace.path={tmp}/cut.jsonl.gz",), "cut.jsonl.gz:", setup=lambda d: _gzip(d, None, cut=True)),
    Case("gzip_corrupt", ("trace.path={tmp}/corrupt.jsonl.gz",), "corrupt.jsonl.gz:1: field '<gzip>': compressed data corrupt",
         setup=lambda d: (d / "corrupt.jsonl.gz").write_bytes(b"\x1f\x8b" + bytes(range(200)))),
    Case("bad_trace_in_trace_analysis", ("+experiment=trace_analysis", "trace.path={bad}/decreasing_id.jsonl"),
         "decreasing_id.jsonl:3: field 'hash_ids'"),
    Case("bad_trace_in_metadata_bench", ("+experiment=metadata_bench", "trace.path={bad}/id_over_int64.jsonl"),
         "id_over_int64.jsonl:3: field 'hash_ids'"),
    Case("bad_trace_in_single_tier", ("system=single_tier", "trace.path={bad}/repeated_id.jsonl"),
         "repeated_id.jsonl:3: field 'hash_ids'"),
    Case("bad_trace_in_a_multirun", ("-m", "trace.path={root}/traces/synthetic_conversation.jsonl,{bad}/not_json.jsonl",
                                     "trace.max_requests=20"),
         "not_json.jsonl:3: field '<json>'"),
    # --- memory -------------------------------------------------------------------------------
    Case("memory_limit", ("memory_limit_gib=0.01",), "memory_limit_gib: the run reached"),
    # --- the other commands ---------------------------------------------------------------
    Case("bench_redraw_missing_folder", ("{tmp}/nope",), "{tmp}/nope: no such folder", module="kvsim.bench.metadata"),
    Case("bench_redraw_nothing_to_draw", ("{run}",), "no metadata_bench tables", module="kvsim.bench.metadata"),
    Case("policy_eval_redraw_not_its_folder", ("{run}",), "not a policy_eval run folder (missing policy_eval_cells.csv)",
         module="kvsim.report.policy_eval"),
    Case("calibrate_out_not_in_a_calibration_folder", ("shim", "--json", "{tmp}/x.json", "--out", "{tmp}/lab.yaml"),
         "--out {tmp}/lab.yaml: give DIR/calibration/NAME.yaml", module="kvsim.calibrate"),
    Case("calibrate_json_not_from_the_shim", ("shim", "--json", "{tmp}/x.json", "--out", "{tmp}/calibration/lab.yaml"),
         "not kvsim-shim output", module="kvsim.calibrate", setup=lambda d: (d / "x.json").write_text('{"a": 1}')),
    Case("calibrate_not_a_redis_server", ("redis", "--port", "{port}", "--out", "{tmp}/calibration/lab.yaml"),
         "sent b'HTTP/1.1 400 Bad Request\\r\\n': not a Redis reply (is this a Redis server?)",
         module="kvsim.calibrate", server=b"HTTP/1.1 400 Bad Request\r\n\r\n"),
    Case("calibrate_bad_redis_reply", ("redis", "--port", "{port}", "--out", "{tmp}/calibration/lab.yaml"),
         "not a Redis reply", module="kvsim.calibrate", server=b"$abc\r\n"),
    Case("calibrate_redis_unreachable", ("redis", "--port", "1", "--out", "{tmp}/calibration/lab.yaml"),
         "cannot reach Redis at 127.0.0.1:1", module="kvsim.calibrate"),
    Case("calibrate_refresh_unknown", ("refresh", "nope", "--out", "{tmp}/calibration/nope.yaml"),
         "no calibration file {tmp}/calibration/nope.yaml", module="kvsim.calibrate"),
    Case("download_unknown_trace", ("{tmp}/dl", "chat_trace.jsonl"), "unknown trace chat_trace.jsonl",
         module="kvsim.trace.download"),
    Case("download_short_file", ("{tmp}/dl", "conversation_trace.jsonl"),
         "conversation_trace.jsonl: size 488,558 bytes, expected 3,029,533 (cut short? removed)", code=1,
         module="kvsim.trace.download", env=(("KVSIM_TRACE_URL", "file://{tmp}/mirror/"),),
         setup=lambda d: _mirror(d)),
]


def _mirror(folder: Path) -> None:
    """A download mirror whose conversation trace is another file (the embedded trace)."""
    (folder / "mirror").mkdir()
    shutil.copy(ROOT / "traces" / "synthetic_conversation.jsonl", folder / "mirror" / "conversation_trace.jsonl")


def _bailian(folder: Path, ids: list[int]) -> None:
    """A two-line Qwen-Bailian trace whose second line has ``ids``."""
    import json

    rec = {"chat_id": 1, "parent_chat_id": -1, "timestamp": 0.5, "input_length": 40, "output_length": 2, "hash_ids": [1, 2]}
    (folder / "b.jsonl").write_text(json.dumps(rec) + "\n" + json.dumps({**rec, "chat_id": 2, "hash_ids": ids}) + "\n")


def _gzip(folder: Path, name: str | None, cut: bool = False) -> None:
    """``name`` from tests/bad_inputs gzipped into ``folder``; or the embedded trace,
    gzipped and cut in half (a download stopped short)."""
    import gzip

    src = BAD / name if name else ROOT / "traces" / "synthetic_conversation.jsonl"
    data = gzip.compress(src.read_bytes())
    if cut:
        (folder / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    else:
        (folder / f"{name}.gz").write_bytes(data)


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root``: its path and, for a file, its content hash."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KVSIM_TRACEBACK", "HYDRA_FULL_ERROR")}
    env["MPLBACKEND"] = "Agg"
    return env


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run folder, made once: what a failing rerun must leave untouched."""
    out = tmp_path_factory.mktemp("finished") / "run"
    p = subprocess.run(
        [sys.executable, "-m", "kvsim", "trace.max_requests=30", "progress=false", f"hydra.run.dir={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=_env(),
    )
    assert p.returncode == 0, p.stderr
    assert (out / "summary.json").is_file()
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_fails_in_one_line_and_writes_nothing(case: Case, tmp_path: Path, finished_run: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    if case.setup:
        case.setup(tmp_path)
    with _fake_server(case.server) as port:
        fill = {"bad": BAD, "tmp": tmp_path, "run": run, "root": ROOT, "port": port}
        args = [a.format(**fill) for a in case.argv]
        if case.module == "kvsim" and not any(a.startswith("hydra.run.dir=") for a in args):
            args += [f"hydra.run.dir={run}", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
        before = _snapshot(tmp_path)
        p = subprocess.run(
            [sys.executable, "-m", case.module, *args], cwd=tmp_path, capture_output=True, text=True,
            timeout=300, env={**_env(), **{k: v.format(**fill) for k, v in case.env}},
        )
    lines = p.stderr.strip().splitlines()
    assert p.returncode == case.code, p.stderr
    assert "Traceback" not in p.stderr + p.stdout
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(f"{case.module}: error: "), lines[0]
    assert case.expect.format(**fill) in lines[0], lines[0]
    assert _snapshot(tmp_path) == before  # no result file appeared; the earlier run is unchanged


@contextmanager
def _fake_server(reply: bytes | None) -> Iterator[int]:
    """A TCP server on a free loopback port that answers ``reply`` to whatever it is sent."""
    if reply is None:
        yield 0
        return
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    conn.sendall(reply)
                except OSError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join()
        srv.close()


def test_traceback_on_request(tmp_path: Path) -> None:
    """KVSIM_TRACEBACK=1 (the README's switch) shows the whole traceback instead."""
    p = subprocess.run(
        [sys.executable, "-m", "kvsim", "model.layers=0", f"hydra.run.dir={tmp_path / 'r'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**_env(), "KVSIM_TRACEBACK": "1"},
    )
    assert p.returncode != 0
    assert "Traceback (most recent call last)" in p.stderr
    assert "model.layers: must be >= 1" in p.stderr


# --- a hostile trace that is valid: one id of 2^63-1 (raw 64-bit hashes) -------------------
# Nothing may be sized by the largest id. Each command runs with memory_limit_gib=1, so a
# structure that grew with the id would stop the run (exit 2) instead of passing.
TOP_ID = 2**63 - 1
HOSTILE_OK = {
    "every_index_both_key_orders": ("+experiment=metadata_bench", "experiment.warmup_s=0",
                                    "experiment.parts=[bench,key_order,cache_sweep,random_gets]",
                                    "experiment.cache_sweep.cache_bytes=[0,65536]"),
    "simulate_sherman_hashed_keys": ("index=sherman", "index.client.key_order=hashed", "policy=hotness"),
    "single_tier_every_policy": ("-m", "system=single_tier", "policy=lru,fifo,lfu,s3fifo,arc,prefix_lru,hotness,opt"),
    "trace_analysis": ("+experiment=trace_analysis",),
}


@pytest.fixture(scope="module")
def top_id_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import json

    lines = (ROOT / "traces" / "synthetic_conversation.jsonl").read_text().splitlines()[:60]
    t = json.loads(lines[-1])["timestamp"]
    lines += [json.dumps({"timestamp": t, "input_length": 600, "output_length": 5, "hash_ids": [0, TOP_ID]}),
              json.dumps({"timestamp": t, "input_length": 100, "output_length": 5, "hash_ids": [TOP_ID]})]
    p = tmp_path_factory.mktemp("top") / "top_id.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.mark.parametrize("name", list(HOSTILE_OK))
def test_largest_int64_id_runs_in_bounded_memory(name: str, top_id_trace: Path, tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "kvsim", *HOSTILE_OK[name], f"trace.path={top_id_trace}", "memory_limit_gib=1",
         f"hydra.run.dir={tmp_path / 'run'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=_env(),
    )
    assert p.returncode == 0, p.stderr[-2000:]
    results = list(tmp_path.rglob("summary.json")) + list(tmp_path.rglob("trace_stats.json"))
    assert results, p.stderr[-2000:]
