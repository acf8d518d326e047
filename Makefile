# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.kvsim-installed

.PHONY: run test lint bench traces clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,cluster]'
	touch $(STAMP)

## run: the placement sweep on the embedded trace (table + figure under outputs/sweeps/)
run: $(STAMP)
	$(PY) -m kvsim +experiment=placement_sweep

## test: the whole test suite (real-trace tests use ../shared/traces or KVSIM_REAL_TRACE)
test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check kvsim tests benchmarks hydra_plugins
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/bench_replay.py
	$(PY) benchmarks/bench_policies.py
	$(PY) benchmarks/bench_analysis.py

## traces: download the public Mooncake FAST'25 traces into traces/public/
traces: $(STAMP)
	$(PY) -m kvsim.trace.download traces/public

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
