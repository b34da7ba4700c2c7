# The two commands a user needs are `make demo` and `make test`; both bootstrap first.
VENV := .venv
PY := $(VENV)/bin/python
# Two pytest-xdist workers, one test module each at a time (module-scoped labs are built once),
# modules handed out in collection order (functional first, see tests/functional/conftest.py):
# most of the suite's wall time is waiting on labs, traffic and subprocesses, which two
# workers overlap. Labs, namespaces, ports and dirs are unique per test, so workers cannot collide.
XDIST := -n 2 --dist loadscope --no-loadscope-reorder

.PHONY: bootstrap demo test unit functional lint bench bench-mirror clean

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	@bash scripts/demo.sh

test: bootstrap lint
	$(PY) -m pytest -q $(XDIST) tests

unit: bootstrap
	$(PY) -m pytest -q tests/unit

functional: bootstrap
	$(PY) -m pytest -q $(XDIST) tests/functional

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: bootstrap
	$(PY) -m bench

# Mirroring off / on / on + analysis on a two-node lab (root; ~20 min, ARGS=--quick ~3 min).
bench-mirror: bootstrap
	$(PY) -m mirrorctl.cli bench $(ARGS)

clean:
	rm -rf .mypy_cache .ruff_cache .pytest_cache build *.egg-info
