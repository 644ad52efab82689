# Two commands for a fresh clone: `make demo` and `make test`. Each sets up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: demo test lint bench-linkage clean

$(BIN)/yiyang: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

demo: $(BIN)/yiyang
	$(BIN)/yiyang demo

test: $(BIN)/yiyang
	$(BIN)/pytest -n 2 --dist loadfile -q

lint: $(BIN)/yiyang
	$(BIN)/ruff check src tests bench

bench-linkage: $(BIN)/yiyang
	$(BIN)/python bench/linkage.py

clean:
	rm -rf $(VENV) data .pytest_cache
