# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create the virtual environment (.venv) when it is missing.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mast-bench-installed
DEMO_OUT ?= demo-out

.PHONY: setup demo demo-quick test lint clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/install-detectron2.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade 'pip>=24' 'setuptools<81' wheel
	$(PY) -m pip install --quiet -c constraints.txt torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,detection]'
	PIP="$(PY) -m pip" bash scripts/install-detectron2.sh constraints.txt
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/mast-bench demo --out $(DEMO_OUT) --overwrite

demo-quick: setup
	$(VENV)/bin/mast-bench demo --quick --out $(DEMO_OUT)-quick --overwrite

lint: setup
	$(VENV)/bin/ruff check mast_bench tests benchmarks
	$(VENV)/bin/ruff format --check mast_bench tests benchmarks

test: setup
	$(VENV)/bin/ruff check mast_bench tests benchmarks
	$(VENV)/bin/python -m pytest -q

clean-venv:
	rm -rf $(VENV)
