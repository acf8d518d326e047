"""Mutation testing of one model package with mutmut 3.x, results kept between runs.

    python tools/mutate.py kvsim/policy            # or: make mutate PKG=kvsim/policy
    python tools/mutate.py kvsim/policy/lru.py     # one module
    python tools/mutate.py kvsim/policy --exclude hotness.py   # not that module
    python tools/mutate.py --score kvsim/policy    # print the stored score, run nothing
    python tools/mutate.py --retest kvsim/policy   # run the survivors again, after new tests
    python tools/mutate.py --sample 200 kvsim/index   # a seeded random sample of the mutants
    python tools/mutate.py --sample 200 --retest kvsim/index   # the sample's survivors again

Each package gets its own mutmut folder, ``.mutmut/<package>/`` (ignored by git): the
project's files are linked there and only that package is mutated (``only_mutate``), so
the other packages run unmutated (no trampolines slowing their tests) and one package's
results never invalidate another's. mutmut keeps per-function results in ``mutants/``:
a rerun tests only the mutants of functions changed since (and the new tests' coverage),
so an interrupted run resumes where it stopped.

mutmut runs the whole suite once to learn which tests call each mutated function, then
runs, for each mutant, only those tests (fastest first, stopping at the first failure).
Tests run under the ``ci`` hypothesis profile (derandomized), so a mutant's verdict does
not depend on the seed, and with KVSIM_MUTATION=1, which makes the fixtures that compute
something once for many tests recompute it per test (see ``shared`` in tests/conftest.py:
mutmut charges a call to the test that made it). Tests that only reach the code through a subprocess (the CLI,
the notebooks) cannot kill a mutant: mutmut does not see their calls; they are marked
``child_process`` and left out of the runs.

The score printed is killed / all mutants of the package (a timeout counts as killed:
the suite noticed; "no tests" counts as survived: no test calls the function).
``docs/testing.md`` lists the survivors judged equivalent (no test can tell them apart).

``--sample N`` runs N mutants drawn at random (seeded, ``--seed``) among all of the package's,
for a package too large to run whole in a session: mutmut runs the fastest mutants first, so
a run stopped early scores a biased subset, while a uniform sample's score estimates the whole
package's (the 95% Wilson interval is printed). Verdicts already stored are reused, and the
sample is remembered (``sample.json``), so a later full run only adds to it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutmut"
# What the tests need beside kvsim/ and tests/ (ROOT in tests/conftest.py is mutants/).
LINKED = ("kvsim", "tests", "conf", "traces", "notebooks", "shim", "benchmarks", "hydra_plugins", ".ci")
ALSO_COPY = LINKED[2:]
STATUS = {  # mutmut's exit codes (mutmut.stats.status_by_exit_code)
    1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
    36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
    37: "caught by type check", -11: "segfault", -9: "segfault", None: "not checked",
}


def toml_list(xs: list[str]) -> str:
    return "[" + ", ".join(json.dumps(x) for x in xs) + "]"


def workdir(pkg: str) -> Path:
    return WORK / pkg.replace("/", ".").removesuffix(".py")


def setup(pkg: str, exclude: list[str], tests: list[str], marks: str) -> Path:
    """``.mutmut/<pkg>/`` with links to the project and a pyproject.toml that is the
    project's plus the mutmut section for this package."""
    work = workdir(pkg)
    work.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        link = work / name
        if not link.is_symlink() and (ROOT / name).exists():
            link.symlink_to(ROOT / name, target_is_directory=True)
    only = [pkg] if pkg.endswith(".py") else [f"{pkg}/*"]
    select = "not child_process" + (f" and ({marks})" if marks else "")
    section = "\n".join([
        "",
        "# Written by tools/mutate.py for this package; edit tools/mutate.py instead.",
        "[tool.mutmut]",
        'source_paths = ["kvsim"]',
        f"only_mutate = {toml_list(only)}",
        f"do_not_mutate = {toml_list([f'{pkg}/{x}' for x in exclude])}",
        f"also_copy = {toml_list([n for n in ALSO_COPY if (ROOT / n).exists()])}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"]',
        # a test marked child_process runs kvsim only in another process, where mutmut cannot
        # see which functions it calls: it could never be chosen to kill a mutant
        f"pytest_add_cli_args_test_selection = {toml_list([*tests, '-m', select])}",
        # as plain Python, a kernel mutant that probes or walks for ever (a hash table, LFU's
        # heap) would hold a worker for 15x its tests' time (mutmut's timeout_multiplier: the
        # wall-clock bound; CPU time 30x) before it counts as a timeout; here 5x (2x counted
        # equivalent mutants as timeouts on this shared machine)
        *(["timeout_multiplier = 5.0"] if mutates_kernels(pkg, exclude) else []),
        "",
    ])
    text = (ROOT / "pyproject.toml").read_text() + section
    (work / "selection.json").write_text(json.dumps(tests + ([f"-m {marks}"] if marks else [])))
    target = work / "pyproject.toml"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
    return work


def mutates_kernels(pkg: str, exclude: list[str]) -> bool:
    """Does this run mutate the compiled hotness kernels (kvsim/policy/_hotness_jit.py)?"""
    kernels = "kvsim/policy/_hotness_jit.py"
    left_out = any(kernels == f"{pkg}/{x}" or kernels.startswith(f"{pkg}/{x}/") for x in exclude)
    return (kernels == pkg or kernels.startswith(pkg + "/")) and not left_out


def tally(work: Path, pkg: str, exclude: list[str]) -> tuple[Counter[str], list[str]]:
    """Status counts and surviving mutant names of ``pkg`` from mutmut's .meta files."""
    counts: Counter[str] = Counter()
    survivors: list[str] = []
    base = work / "mutants"
    metas = [base / (pkg + ".meta")] if pkg.endswith(".py") else sorted((base / pkg).rglob("*.py.meta"))
    skip = {base / pkg / (x + ".meta") for x in exclude}
    for meta in metas:
        if not meta.is_file() or meta in skip:
            continue
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            status = STATUS.get(code, "suspicious")
            counts[status] += 1
            if status in ("survived", "no tests"):
                survivors.append(f"{name}: {status}")
    return counts, survivors


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n (n > 0)."""
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5
    return max(0.0, mid - half), min(1.0, mid + half)


def all_mutants(work: Path, pkg: str, exclude: list[str]) -> dict[str, int | None]:
    """Every mutant of ``pkg`` mutmut generated, with its stored exit code (None: not run)."""
    base = work / "mutants"
    metas = [base / (pkg + ".meta")] if pkg.endswith(".py") else sorted((base / pkg).rglob("*.py.meta"))
    skip = {base / pkg / (x + ".meta") for x in exclude}
    out: dict[str, int | None] = {}
    for meta in metas:
        if meta.is_file() and meta not in skip:
            out.update(json.loads(meta.read_text())["exit_code_by_key"])
    return out


def report_sample(pkg: str, work: Path, wall_s: float | None, exclude: list[str]) -> float | None:
    sample = json.loads((work / "sample.json").read_text())
    codes = all_mutants(work, pkg, exclude)
    counts: Counter[str] = Counter(STATUS.get(codes.get(name), "suspicious") for name in sample["names"])
    for name in sample["names"]:
        if STATUS.get(codes.get(name)) in ("survived", "no tests"):
            print("  ", f"{name}: {STATUS[codes[name]]}")
    n = len(sample["names"])
    run = n - counts["not checked"]
    detected = counts["killed"] + counts["timeout"] + counts["caught by type check"]
    if not run:
        print(f"{pkg}: no sampled mutant checked yet")
        return None
    lo, hi = wilson(detected, run)
    parts = ", ".join(f"{c} {k}" for k, c in sorted(counts.items()))
    took = f"; this run {wall_s / 60:.1f} min" if wall_s is not None else ""
    print(f"{pkg}: sample of {n} of {len(codes)} mutants (seed {sample['seed']}; {parts}): "
          f"score {detected / run:.1%} ({detected}/{run}), 95% interval {lo:.1%}-{hi:.1%}{took}")
    summary = {"package": pkg, "excluded": exclude, "sample": n, "seed": sample["seed"], "mutants": len(codes),
               "checked": run, "detected": detected, "score": detected / run, "interval95": [lo, hi],
               "counts": dict(counts), "run_wall_s": wall_s}
    (work / "sample_score.json").write_text(json.dumps(summary, indent=1) + "\n")
    return detected / run


def report(pkg: str, work: Path, wall_s: float | None, exclude: list[str]) -> float | None:
    counts, survivors = tally(work, pkg, exclude)
    total = sum(counts.values())
    if not total:
        print(f"{pkg}: no mutants recorded yet")
        return None
    detected = counts["killed"] + counts["timeout"] + counts["caught by type check"]
    score = detected / total
    for s in survivors:
        print("  ", s)
    parts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    took = f"; this run {wall_s / 60:.1f} min" if wall_s is not None else ""
    what = pkg + (f" (without {', '.join(exclude)})" if exclude else "")
    selection = json.loads((work / "selection.json").read_text()) if (work / "selection.json").exists() else None
    if selection and selection != ["tests"]:
        print(f"   tests mutmut could choose from: {' '.join(selection)}")
    print(f"{what}: {total} mutants ({parts}): score {score:.1%} ({detected}/{total}){took}")
    print(f"   inspect one: cd {work.relative_to(ROOT)} && ../../.venv/bin/mutmut show NAME")
    summary = {"package": pkg, "excluded": exclude, "tests": selection, "mutants": total, "detected": detected, "score": score,
               "counts": dict(counts), "run_wall_s": wall_s}
    (work / "score.json").write_text(json.dumps(summary, indent=1) + "\n")
    return score


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("package", help="a folder or module under kvsim/, e.g. kvsim/policy or kvsim/metrics.py")
    ap.add_argument("--exclude", default="", help="comma-separated modules of the package not to mutate, e.g. hotness.py")
    ap.add_argument("--tests", default="tests",
                    help="the tests mutmut may choose from (default: the whole suite), e.g. "
                         "'tests/test_policy_*.py tests/test_hierarchy.py': fewer is faster, and the "
                         "score then is a lower bound of the whole suite's")
    ap.add_argument("--marks", default="", help="a pytest -m expression to narrow the tests further, "
                    "e.g. 'not real_trace' (the real-trace replays make each surviving mutant slow)")
    ap.add_argument("--score", action="store_true", help="print the stored score and survivors, run nothing")
    ap.add_argument("--retest", action="store_true",
                    help="run the surviving mutants again (after adding tests; mutmut keeps a verdict otherwise)")
    ap.add_argument("--fresh", action="store_true", help="forget this package's results and start over")
    ap.add_argument("--sample", type=int, default=0,
                    help="run only N mutants drawn at random among the package's (stored verdicts reused); "
                         "the score is an estimate with its 95%% interval")
    ap.add_argument("--seed", type=int, default=0, help="the seed of --sample's draw")
    ap.add_argument("--max-children", type=int, default=os.cpu_count() or 2, help="parallel mutant workers")
    args = ap.parse_args(argv)
    pkg = args.package.rstrip("/")
    if not (ROOT / pkg).exists() or not pkg.startswith("kvsim"):
        print(f"mutate: {pkg}: not a package or module under kvsim/", file=sys.stderr)
        return 2
    exclude = [x for x in args.exclude.split(",") if x]
    if args.score:
        if args.sample and (workdir(pkg) / "sample.json").is_file():
            return 0 if report_sample(pkg, workdir(pkg), None, exclude) is not None else 1
        return 0 if report(pkg, workdir(pkg), None, exclude) is not None else 1
    if args.fresh:
        shutil.rmtree(workdir(pkg), ignore_errors=True)
    tests = sorted({str(p.relative_to(ROOT)) for pat in args.tests.split() for p in ROOT.glob(pat)})
    if not tests:
        print(f"mutate: --tests {args.tests!r} matches no test file or folder", file=sys.stderr)
        return 2
    work = setup(pkg, exclude, tests, args.marks)
    env = dict(os.environ, MPLBACKEND="Agg", KVSIM_HYPOTHESIS_PROFILE="ci", KVSIM_MUTATION="1")
    if mutates_kernels(pkg, exclude):
        # the hotness kernels run as plain Python (numba's njit returns each function itself):
        # mutmut's trampolines cannot be compiled, and no mutant waits for a compilation. Their
        # uint64 arithmetic wraps there as compiled, with a warning that means nothing here.
        env.update(NUMBA_DISABLE_JIT="1", PYTHONWARNINGS="ignore:overflow encountered:RuntimeWarning")
    real = ROOT.parent / "shared" / "traces" / "mooncake" / "conversation_trace.jsonl"
    if "KVSIM_REAL_TRACE" not in env and real.is_file():
        env["KVSIM_REAL_TRACE"] = str(real)  # ROOT in the tests is .mutmut/PKG/mutants
    names = [s.split(":")[0] for s in tally(work, pkg, exclude)[1]] if args.retest else []
    mutmut = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children)]
    t0 = time.perf_counter()
    if args.sample:
        if not all_mutants(work, pkg, exclude):
            # generate the mutants and learn which tests call what; the name matches nothing,
            # so mutmut stops there (with an error we expect)
            subprocess.run([*mutmut, "kvsim.no_such_mutant_name"], cwd=work, env=env, capture_output=True)
        codes = all_mutants(work, pkg, exclude)
        if not codes:
            print(f"mutate: {pkg}: mutmut generated no mutants (see: cd {work} && mutmut run)", file=sys.stderr)
            return 1
        rng = random.Random(args.seed)
        sample = sorted(rng.sample(sorted(codes), min(args.sample, len(codes))))
        (work / "sample.json").write_text(json.dumps({"seed": args.seed, "names": sample}, indent=0) + "\n")
        # stored verdicts stand, except the survivors' with --retest
        rerun = {None, 0, 5, 33} if args.retest else {None}
        names = [n for n in sample if codes[n] in rerun]
        if names:
            proc = subprocess.run([*mutmut, *names], cwd=work, env=env)
            if proc.returncode:
                return proc.returncode
        return 0 if report_sample(pkg, work, time.perf_counter() - t0, exclude) is not None else 1
    proc = subprocess.run([*mutmut, *names], cwd=work, env=env)
    wall = time.perf_counter() - t0
    score = report(pkg, work, wall, exclude)
    return proc.returncode if proc.returncode else (0 if score is not None else 1)


if __name__ == "__main__":
    sys.exit(main())
