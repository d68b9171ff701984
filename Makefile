# Two commands for a newcomer:  make demo  (install + main job)  and  make test.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint format bench clean

install: $(STAMP)

# torch is pinned to the CPU build (2.13.0); an unpinned torch pulls multi-GB GPU wheels.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The main job, small version (~4 min): policies x points x 3 chips on the shipped digits DiT.
demo: $(STAMP)
	$(VENV)/bin/accelsim explore --quick

# pytest exits 5 when no test was collected; that is not a failure of the suite.
test: $(STAMP)
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) benchmarks/perf_model.py
	$(PY) benchmarks/kernels.py

clean:
	rm -rf $(VENV) build *.egg-info
