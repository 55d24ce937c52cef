# cogo: `make run` sets up and runs the main job on demo data; `make test` sets up and runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export COGO_HOME ?= $(CURDIR)/.cogo
export COGO_WORKSPACES_DIR ?= $(CURDIR)/workspaces
# The demo repository for the code graph: this project's own history.
export COGO_REPOS ?= $(CURDIR)

.PHONY: install run test lint neo4j up down ui serve clean bench-tools

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

neo4j:
	@tools/neo4j/build.sh

up: install
	@$(BIN)/cogo up

down:
	@$(BIN)/cogo down

run: install
	@$(BIN)/cogo up
	@echo "== loading demo data"
	@$(BIN)/cogo demo
	@echo "== materializing every asset (Dagster runs, stored in Postgres: see them in the UI)"
	@eval "$$($(BIN)/cogo env)" && $(BIN)/python -m cogo.pipelines.main_run
	@$(BIN)/python -m cogo.summary
	@echo
	@echo "Dagster UI:    eval \"\$$($(BIN)/cogo env)\" && $(BIN)/dagster dev -w workspace.yaml   (http://127.0.0.1:3000)"
	@echo "Read service:  $(BIN)/cogo serve --port 8000                                          (http://127.0.0.1:8000/docs)"
	@echo "Graph:         $(BIN)/cogo graph query 'MATCH (n) RETURN labels(n)[0] AS label, count(*) AS n'"

lint: install
	$(BIN)/ruff check cogo tests $(wildcard bench)

test: install neo4j
	$(BIN)/ruff check cogo tests $(wildcard bench)
	@set +e; $(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5): treated as success"; rc=0; fi; exit $$rc

# Benchmarks: the LlamaIndex peer (bench_knowledge) and wrk, the HTTP load generator of bench_service (which falls
# back to an async httpx client without it, at a lower ceiling).
bench-tools: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@command -v wrk >/dev/null || (command -v apt-get >/dev/null && (apt-get install -y -q wrk || sudo apt-get install -y -q wrk)) \
		|| echo "wrk not installed: bench_service.py will use its httpx client"

ui: install
	@eval "$$($(BIN)/cogo env)" && $(BIN)/dagster dev -w workspace.yaml

serve: install
	@$(BIN)/cogo serve

clean: down
	rm -rf .cogo tools/neo4j/target
