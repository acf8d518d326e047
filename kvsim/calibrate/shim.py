"""The native microbenchmark shim (``shim/``): build it, run it, read its JSON.

``kvsim-shim`` prints one JSON object (format 1) with a section per measurement, each
``"status": "ok" | "skipped" | "error"``. :func:`parse_shim` turns the ``ok`` sections into
calibration values:

========================  ===========================================  ==========================
section                   shim field                                   calibration key
========================  ===========================================  ==========================
dram                      latency_s (median of repeats)                host.dram_latency_s
memcpy                    bandwidth_Bps (median of repeats)            host.memcpy_Bps
tcp (client mode)         rtt_p50_s                                    tcp.rtt_s
                          rtt_p99_s, rtt_p999_s                        tcp.rtt_p99_s, tcp.rtt_p999_s
rdma (client mode)        read_rtt_p50_s                               rdma.read_rtt_s
                          read_rtt_p99_s, read_rtt_p999_s              rdma.read_rtt_p99_s, ..._p999_s
                          read_rtt_p50_s / 2                           rdma.one_way_s
                          write_rtt_p50_s / 2 (a signaled WRITE        rdma.write_one_way_s
                          completes after the ACK: a round trip)
                          write_rtt_p99_s / 2, write_rtt_p999_s / 2    rdma.write_one_way_p99_s, ..._p999_s
                          cas_rtt_p50_s                                rdma.atomic_rtt_s
                          cas_rtt_p99_s, cas_rtt_p999_s                rdma.atomic_rtt_p99_s, ..._p999_s
                          min(read_bw_Bps, write_bw_Bps)               rdma.bandwidth_Bps
                          small_read_rate_per_s                        rdma.message_rate_per_s
cuda                      h2d_Bps                                      pcie.h2d_Bps
                          small_h2d_p50_s                              pcie.latency_s
========================  ===========================================  ==========================
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvsim.calibrate.calfile import Measured, Source
from kvsim.config import PROJECT_ROOT
from kvsim.errors import UserError

SHIM_DIR = PROJECT_ROOT / "shim"
SHIM_BIN = SHIM_DIR / "build" / "kvsim-shim"
FORMAT = 1


class ShimError(UserError, RuntimeError):
    """The shim could not be built or run, or its output is not what kvsim reads."""


@dataclass
class ShimReading:
    measured: list[Measured]
    source: Source
    skipped: dict[str, str] = field(default_factory=dict)  # section -> reason
    errors: dict[str, str] = field(default_factory=dict)


def _mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def _us(s: float) -> str:
    x = s * 1e6
    return f"{x:.0f} us" if x >= 100 else f"{x:.3g} us"


def _tails(sec: dict[str, Any], prefix: str, key: str, scale: float = 1.0) -> list[Measured]:
    """The p99 and p99.9 beside a measured median (older shims report no p99.9: skipped)."""
    out = []
    for q, name in (("p99", "p99"), ("p999", "p99.9")):
        v = sec.get(f"{prefix}_{q}_s")
        if v is not None and v == v:  # (NaN when there were no samples)
            what = f"{name} of {sec.get('latency_iters', sec.get('rtt_samples', '?'))}"
            out.append(Measured(f"{key}_{q}_s", float(v) * scale, what + (" / 2" if scale != 1.0 else "")))
    return out


def parse_shim(doc: dict[str, Any]) -> ShimReading:
    """The calibration values in one kvsim-shim JSON document (see the module's table)."""
    if doc.get("tool") != "kvsim-shim":
        raise ShimError("not kvsim-shim output (no \"tool\": \"kvsim-shim\")")
    if doc.get("format") != FORMAT:
        raise ShimError(f"kvsim-shim output format {doc.get('format')!r}; this kvsim reads format {FORMAT}")
    if doc.get("role") == "server":
        raise ShimError("this is the server's output: the client (`kvsim-shim --client HOST`) measures")
    host = str(doc.get("hostname", "unknown"))
    date = str(doc.get("date_utc", "unknown"))
    out: list[Measured] = []
    skipped: dict[str, str] = {}
    errors: dict[str, str] = {}
    ok: list[str] = []
    for name in ("dram", "memcpy", "tcp", "rdma", "cuda"):
        sec = doc.get(name)
        if not isinstance(sec, dict):
            skipped[name] = "absent"
            continue
        status = sec.get("status")
        if status == "skipped":
            skipped[name] = str(sec.get("reason", ""))
            continue
        if status != "ok":
            errors[name] = str(sec.get("reason", status))
            continue
        ok.append(name)
        try:
            out += _section(name, sec, doc)
        except (KeyError, TypeError) as e:
            raise ShimError(f"kvsim-shim section {name!r}: missing or bad field {e}") from None
    what = f"kvsim-shim {doc.get('version', '?')} ({doc.get('role', 'local')}"
    if doc.get("peer"):
        what += f", peer {doc['peer']}"
    what += f"; cpu {doc.get('cpu', '?')}): " + (", ".join(ok) or "nothing measured")
    if skipped:
        what += "; skipped " + ", ".join(sorted(skipped))
    return ShimReading(out, Source(date[:16] + "Z", host, what), skipped, errors)


def _section(name: str, sec: dict[str, Any], doc: dict[str, Any]) -> list[Measured]:
    tool = f"kvsim-shim {doc.get('version', '?')}"
    if name == "dram":
        return [
            Measured(
                "host.dram_latency_s",
                float(sec["latency_s"]),
                f"{tool} pointer chase over {_mib(sec['buffer_bytes'])}, {sec['accesses']} loads x "
                f"{sec['repeats']}, median ({float(sec['latency_min_s']) * 1e9:.0f} - "
                f"{float(sec['latency_max_s']) * 1e9:.0f} ns)",
            )
        ]
    if name == "memcpy":
        return [
            Measured(
                "host.memcpy_Bps",
                float(sec["bandwidth_Bps"]),
                f"{tool} memcpy of {_mib(sec['bytes'])}, one thread, median of {sec['repeats']} "
                f"({sec['bandwidth_min_Bps'] / 1e9:.3g} - {sec['bandwidth_max_Bps'] / 1e9:.3g} GB/s)",
            )
        ]
    if name == "tcp":
        return [
            Measured(
                "tcp.rtt_s",
                float(sec["rtt_p50_s"]),
                f"{tool} TCP round trip of {sec['message_bytes']} B to {doc.get('peer', '?')}, p50 of "
                f"{sec['rtt_samples']} (p99 {_us(sec['rtt_p99_s'])})",
            ),
            *_tails(sec, "rtt", "tcp.rtt"),
        ]
    if name == "rdma":
        dev = f"{sec['device']} port {sec['port']} ({sec['link_layer']}) to {doc.get('peer', '?')}"
        lat = f"{sec['latency_bytes']} B, p50 of {sec['latency_iters']}"
        read = float(sec["read_rtt_p50_s"])
        write = float(sec["write_rtt_p50_s"])
        bw = min(float(sec["read_bw_Bps"]), float(sec["write_bw_Bps"]))
        res = [
            Measured("rdma.read_rtt_s", read, f"{tool} READ {lat} (p99 {_us(sec['read_rtt_p99_s'])}), {dev}"),
            Measured("rdma.one_way_s", read / 2, f"half the READ round trip {_us(read)}"),
            Measured(
                "rdma.write_one_way_s", write / 2,
                f"half a signaled WRITE's round trip {_us(write)} ({lat}, inline {sec.get('write_inline')})",
            ),
            Measured(
                "rdma.bandwidth_Bps", bw,
                f"the lower of READ {float(sec['read_bw_Bps']) / 1e9:.3g} / WRITE "
                f"{float(sec['write_bw_Bps']) / 1e9:.3g} GB/s, {sec['bw_bytes']} B messages, {sec['bw_window']} in flight",
            ),
            Measured(
                "rdma.message_rate_per_s", float(sec["small_read_rate_per_s"]),
                f"{sec['latency_bytes']} B READs on one QP, {sec['rate_window']} in flight (read depth {sec['read_depth']})",
            ),
        ]
        res += _tails(sec, "read_rtt", "rdma.read_rtt") + _tails(sec, "write_rtt", "rdma.write_one_way", 0.5)
        if "cas_rtt_p50_s" in sec:
            res.append(
                Measured("rdma.atomic_rtt_s", float(sec["cas_rtt_p50_s"]),
                         f"{tool} CAS, p50 of {sec['latency_iters']} (p99 {_us(sec['cas_rtt_p99_s'])})")
            )
            res += _tails(sec, "cas_rtt", "rdma.atomic_rtt")
        return res
    if name == "cuda":
        return [
            Measured(
                "pcie.h2d_Bps", float(sec["h2d_Bps"]),
                f"{tool} pinned cudaMemcpyAsync of {_mib(sec['bytes'])} to {sec['device']}, median of "
                f"{sec['repeats']} (D2H {float(sec['d2h_Bps']) / 1e9:.3g} GB/s)",
            ),
            Measured(
                "pcie.latency_s", float(sec["small_h2d_p50_s"]),
                f"{tool} 8-byte synchronous cudaMemcpy H2D, p50 of {sec['small_h2d_samples']}",
            ),
        ]
    raise ShimError(f"unknown section {name}")


def build(shim_dir: Path = SHIM_DIR, build_dir: Path | None = None, extra: Sequence[str] = ()) -> Path:
    """``make -C shim``; the binary's path."""
    if shutil.which("make") is None:
        raise ShimError("`make` is not installed: cannot build the shim (apt-get install make gcc)")
    cmd = ["make", "-C", str(shim_dir), *extra]
    if build_dir is not None:
        cmd.append(f"BUILD={build_dir}")
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise ShimError(f"building the shim failed:\n{p.stdout}\n{p.stderr}")
    return (build_dir or shim_dir / "build") / "kvsim-shim"


def run(binary: Path, args: Sequence[str] = (), timeout: float = 600) -> tuple[dict[str, Any], str]:
    """Run the shim; (its JSON, its stderr). Notices on stderr say what was skipped and why."""
    import json

    p = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout)
    try:
        doc = json.loads(p.stdout)
    except json.JSONDecodeError:
        raise ShimError(f"kvsim-shim exited {p.returncode} without JSON:\n{p.stderr}") from None
    if p.returncode != 0:
        raise ShimError(f"kvsim-shim exited {p.returncode}:\n{p.stderr}")
    return doc, p.stderr
