"""kvsim.errors: the one-line report of a command's error, and its quick exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, site_probe_env

# A module run at every interpreter's start (``sitecustomize`` on PYTHONPATH): it keeps an
# object in a reference cycle alive in a global, so only the interpreter's last garbage
# collection can finalize it, and its finalizer leaves a file named by the process's id.
EXIT_PROBE = r"""
import os
class _Probe:
    def __init__(self):
        self.path = os.path.join(os.environ["KVSIM_EXIT_PROBE"], f"collected-{os.getpid()}")
        with open("/proc/self/cmdline", "rb") as f:
            self.command = f.read().replace(b"\0", b" ")
        self.cycle = self
    def __del__(self, _open=os.open, _write=os.write, _close=os.close, _flags=os.O_CREAT | os.O_WRONLY):
        fd = _open(self.path, _flags)
        _write(fd, self.command)
        _close(fd)
_probe = _Probe()
"""


def exit_probe_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose Python processes report a last collection at exit (a file
    ``collected-PID`` holding the process's command line, in the folder returned) -- worker
    processes included."""
    return site_probe_env(tmp_path, EXIT_PROBE, "KVSIM_EXIT_PROBE")


def collected(out: Path, but: str = "resource_tracker") -> list[str]:
    """The command lines of the processes that ran the last collection, but those with
    ``but`` in theirs (joblib's and multiprocessing's resource trackers: not kvsim's)."""
    return [c for f in sorted(out.glob("collected-*")) if but not in (c := f.read_text())]


def run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_the_probe_sees_the_last_collection(tmp_path: Path) -> None:
    env, out = exit_probe_env(tmp_path)
    assert run("pass", env).returncode == 0
    assert len(collected(out)) == 1


def test_a_command_exits_without_the_last_collection(tmp_path: Path) -> None:
    """cli() registers quick_exit: a command's process skips the collection (about 0.5 s
    after kvsim's imports) whether it succeeds or fails, and still reports as before."""
    env, out = exit_probe_env(tmp_path)
    ok = run("from kvsim.errors import cli; cli(lambda: 0)", env)
    assert ok.returncode == 0, ok.stderr
    bad = run("from kvsim.errors import cli, UserError\n"
              "def main():\n    raise UserError('conf/x.yaml:3: field a: wrong')\n"
              "cli(main, prog='kvsim-test')", env)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["kvsim-test: error: conf/x.yaml:3: field a: wrong"]
    assert not collected(out)


def test_quick_exit_is_registered_once(tmp_path: Path) -> None:
    env, out = exit_probe_env(tmp_path)
    p = run("import atexit, gc\n"
            "calls = []\n"
            "atexit.register = lambda f, *a, **k: calls.append(f)\n"
            "from kvsim.errors import quick_exit\n"
            "quick_exit(); quick_exit()\n"
            "assert calls == [gc.freeze], calls\n", env)
    assert p.returncode == 0, p.stderr
