# The two commands of the README. Both set themselves up on a fresh machine:
# they create .venv with the system's python3 and install promoter into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/promoter demo $(if $(WORKDIR),--workdir $(WORKDIR))

# lint-imports checks the layers and the pure core's imports, mypy the types (strict on the
# pure core); both are configured in pyproject.toml.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy promoter
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy promoter

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf $(VENV) promoter-demo .pytest_cache .ruff_cache .grimp_cache .import_linter_cache .mypy_cache
