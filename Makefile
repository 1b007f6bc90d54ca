# Two-command quickstart: `make demo` and `make test`. Each creates .venv if missing and
# installs the package with what it needs (torch comes from pip's local wheel cache here).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out
PYTEST_ARGS ?=

.PHONY: install demo test bench clean

install: $(STAMP)

# pip's own output (build-backend notices included) goes to .venv/pip.log and is shown only
# when an install fails.
PIP = $(BIN)/python -m pip install --disable-pip-version-check
QUIET = > $(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing midlevel and its dependencies into $(VENV) (log: $(VENV)/pip.log)"
	@$(PIP) --upgrade pip $(QUIET)
	@$(PIP) -e '.[test]' $(QUIET)
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/midlevel demo --out $(DEMO_OUT)

test: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest -q $(PYTEST_ARGS)

$(VENV)/.bench: $(STAMP)
	@$(PIP) -e '.[test,bench]' $(QUIET)
	@touch $(VENV)/.bench

bench: $(VENV)/.bench
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
