# Developer commands (`make help`). All run on .venv, which `make install` creates.
PY := .venv/bin/python
MODE ?=
TESTS ?= tests
BENCH ?=
ARGS ?=

.PHONY: help install serve test lint bench

help:  ## this list
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

install:  ## create/update .venv with the default models (MODE=test: + test clients, ruff, mypy)
	bash scripts/setup.sh $(MODE)

serve:  ## serve the default models on 127.0.0.1:8000 (ARGS="--config_path ..." for others)
	.venv/bin/genai-gateway serve $(ARGS)

test:  ## the README's test command (TESTS=tests/test_ops.py for fewer)
	bash scripts/setup.sh test && $(PY) -m pytest -q $(TESTS)

lint:  ## the CI gates: ruff, then mypy (pyproject.toml's [tool.mypy] files)
	.venv/bin/ruff check .
	.venv/bin/mypy

bench:  ## list the benchmarks; BENCH=<name> [ARGS="--help"] runs one
ifeq ($(BENCH),)
	@for f in bench/*.py; do [ $$f = bench/common.py ] || \
	  printf '  %-22s %s\n' "$$(basename $$f .py)" "$$(sed -n '1s/^"""//p' $$f)"; done
	@echo 'run one: make bench BENCH=<name> [ARGS="..."]'
else
	$(PY) bench/$(BENCH).py $(ARGS)
endif
