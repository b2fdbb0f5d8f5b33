# The one command surface for humans and CI. `make help` lists every target.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PY_DIRS := python tests examples $(wildcard benches)
DIST ?= dist
export PERAGO_DEV_CACHE_DIR ?= $(HOME)/.cache/perago

.PHONY: help install venv tools build test test-model test-rust test-unit test-cli \
	test-integration test-e2e lint fmt demo bench wheel wheel-check clean fs-tools servers servers-up \
	servers-down model

## help: list every target with a one-line description
help:
	@awk '/^## / { line = substr($$0, 4); i = index(line, ": "); \
		printf "  %-17s %s\n", substr(line, 1, i - 1), substr(line, i + 2) }' $(MAKEFILE_LIST)

## venv: create the virtualenv .venv (with pip and uv)
venv: $(PY)
$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip uv

## tools: install the packaging tools (maturin, auditwheel, twine) into .venv
tools: $(PY)
	$(BIN)/uv pip install -q --python $(PY) "maturin>=1.9,<2" "auditwheel>=6" "twine>=5"

## install: build the Rust extension (release) and install perago editable with its dev tools
install: $(PY)
	$(BIN)/uv pip install -q --python $(PY) "maturin>=1.9,<2"
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/maturin develop --release --uv -E dev -q

## build: same as install
build: install

## fs-tools: install xfsprogs (mkfs.xfs) so the reflink test can make its XFS image (root + apt)
fs-tools:
	@if command -v mkfs.xfs >/dev/null; then echo "mkfs.xfs: $$(command -v mkfs.xfs)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -q xfsprogs >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q xfsprogs >/dev/null; }; \
		echo "mkfs.xfs: $$(command -v mkfs.xfs)"; \
	else echo "fs-tools: not root or no apt-get: the reflink test will say it is skipped and why"; fi

## servers: provision lakeFS + lakectl + MinIO (Go module proxy) and Conductor (Maven Central) into the cache
servers: install
	$(BIN)/perago dev provision

## servers-up: start local lakeFS and Conductor and write their endpoints to ./.env
servers-up: servers
	$(BIN)/perago dev up

## servers-down: stop the servers started by servers-up
servers-down: install
	$(BIN)/perago dev down

## test: everything: the protocol model, Rust unit tests, then pytest over all of tests/
# (unit + cli + integration + e2e against real servers, which the session fixtures start and stop).
test: install servers model fs-tools
	cargo test -q --workspace
	$(BIN)/pytest

## model: model-check the publication protocol (docs/adr/0007) with spin
# Installs Debian's spin if absent.
model:
	@command -v spin >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq spin >/dev/null; } || \
		{ echo "error: the model needs spin (Debian package spin) and a C compiler"; exit 1; }
	bash model/check.sh

## test-model: same as model
test-model: model

## test-rust: the Rust unit tests (cargo test over the workspace)
test-rust:
	cargo test -q --workspace

# pytest exits 5 when it collects no test: make fails on it like on any other non-zero status.
## test-unit: pytest tests/unit
test-unit: install servers
	$(BIN)/pytest tests/unit

## test-cli: pytest tests/cli (the perago command line)
test-cli: install servers
	$(BIN)/pytest tests/cli

## test-integration: pytest tests/integration (real lakeFS and Conductor, started by the fixtures)
test-integration: install servers
	$(BIN)/pytest tests/integration

## test-e2e: pytest tests/e2e (workers, supervisors and faults on the real servers)
test-e2e: install servers
	$(BIN)/pytest tests/e2e

## lint: cargo fmt/clippy, ruff, mypy and stubtest of the native module
lint: install
	cargo fmt --all -- --check
	cargo clippy -q --workspace --all-targets -- -D warnings
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy
	$(PY) -m mypy.stubtest perago._native --ignore-missing-stub

## fmt: format Rust and Python and apply ruff's fixes
fmt:
	cargo fmt --all
	$(BIN)/ruff format $(PY_DIRS)
	$(BIN)/ruff check --fix $(PY_DIRS)

## demo: start local servers, register, run perago start, run a workflow, print the result
demo: install
	$(PY) -m perago.demo $(CURDIR)

## bench: every benchmark (perago bench snapshot ... fleet) against a dev stack started for the run
# `perago dev up` in a fresh state dir under the cache (servers on free ports), its env file
# sourced; each bench's table goes to the terminal (stderr) and its JSON rows to
# $(BENCH_OUT)/<time>/<bench>.json (default generated/bench). The stack is stopped and its state
# dir removed however the run ends. A failing bench does not stop the others; make fails after
# the last one. BENCHES picks some (default all); BENCH_ARGS goes to every bench, so only options
# all of them take: e.g. make bench BENCHES="stage attempt" BENCH_ARGS="--repeat 1".
bench: install servers
	@set -uo pipefail; \
	mkdir -p "$(PERAGO_DEV_CACHE_DIR)/state" || exit 1; \
	state=$$(mktemp -d "$(PERAGO_DEV_CACHE_DIR)/state/bench.XXXXXX") || exit 1; \
	trap '$(BIN)/perago dev down --state-dir "$$state" >&2; rm -rf "$$state"' EXIT; \
	trap 'exit 130' INT TERM; \
	$(BIN)/perago dev up --state-dir "$$state" --env-file "$$state/bench.env" >&2 || exit 1; \
	set -a; . "$$state/bench.env"; set +a; \
	out="$(or $(BENCH_OUT),generated/bench)/$$(date -u +%Y%m%dT%H%M%SZ)"; \
	mkdir -p "$$out" || exit 1; \
	failed=""; \
	for name in $(or $(BENCHES),snapshot diff download upload cache stage attempt worker fleet); do \
		echo "== perago bench $$name $(BENCH_ARGS) --json > $$out/$$name.json" >&2; \
		$(BIN)/perago bench "$$name" $(BENCH_ARGS) --json > "$$out/$$name.json" || \
			failed="$$failed $$name"; \
	done; \
	echo "bench: JSON rows in $$out/" >&2; \
	if [ -n "$$failed" ]; then echo "error: failed benches:$$failed" >&2; exit 1; fi

## wheel: build the abi3 manylinux wheel and the sdist into dist/
wheel: tools
	rm -f $(DIST)/perago-*.whl $(DIST)/perago-*.tar.gz
	$(BIN)/maturin build --release --out $(DIST)
	$(BIN)/maturin sdist --out $(DIST)

## wheel-check: check the wheel (auditwheel, twine) and run check, extract and the demo from it
# in a clean virtualenv outside the source tree, with servers on free ports in a state dir of its own.
wheel-check: wheel
	bash .ci/wheel-check.sh $(DIST)

## clean: remove the virtualenv and build outputs
clean:
	rm -rf $(VENV) target generated $(DIST)
