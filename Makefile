# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.kvsim-installed

.PHONY: run test test-deep mutate lint bench traces clean accel

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,cluster,accel]'
	touch $(STAMP)

# the jobs of `make run` on every core (joblib, from the cluster extra installed above),
# unless there is only one
LAUNCHER := $(if $(filter-out 0 1,$(shell nproc 2>/dev/null || echo 1)),hydra/launcher=joblib,)

## accel: compile the hot modules with Cython into build/accel/ when their sources changed
## (results identical, about 1.4x faster; a failed build is a notice and the sources are used;
## KVSIM_ACCEL=0 runs the sources)
accel: $(STAMP)
	$(PY) -m kvsim.accel build --if-stale --optional

## run: the placement sweep on the embedded trace, its jobs on every core (table + figures under outputs/sweeps/)
run: $(STAMP) accel
	$(PY) -m kvsim +experiment=placement_sweep $(LAUNCHER)

## test: the whole test suite (real-trace tests use ../shared/traces or KVSIM_REAL_TRACE)
test: $(STAMP) accel
	$(PY) -m pytest -q

## test-deep: the suite with ten times the hypothesis examples, new random draws (for humans, nightly)
test-deep: $(STAMP) accel
	KVSIM_HYPOTHESIS_PROFILE=deep $(PY) -m pytest -q

## mutate: mutation testing (mutmut) of one package, results kept in .mutmut/ between runs:
##   make mutate PKG=kvsim/policy [EXCLUDE=lru.py] [TESTS='tests/test_policy_*.py'] [MARKS='not slow and not real_trace']
##   (default: every model package in turn, the whole suite to choose tests from)
MUTATE_PKGS ?= kvsim/trace kvsim/metrics.py kvsim/policy kvsim/system kvsim/index kvsim/report
PKG ?= $(MUTATE_PKGS)
EXCLUDE ?=
TESTS ?= tests
MARKS ?=
mutate: $(STAMP)
	@for p in $(PKG); do $(PY) tools/mutate.py $$p --exclude "$(EXCLUDE)" --tests "$(TESTS)" --marks "$(MARKS)" || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check kvsim tests benchmarks hydra_plugins tools notebooks
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/bench_replay.py
	$(PY) benchmarks/bench_policies.py
	$(PY) benchmarks/bench_analysis.py

## traces: download the public Mooncake FAST'25 traces into traces/public/
traces: $(STAMP)
	$(PY) -m kvsim.trace.download traces/public

clean:
	rm -rf $(VENV) build/accel .pytest_cache .mypy_cache .ruff_cache .mutmut
