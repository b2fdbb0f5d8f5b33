# The one command surface for humans and CI.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PY_DIRS := python tests examples $(wildcard benches)
export PERAGO_CACHE_DIR ?= $(HOME)/.cache/perago

.PHONY: install venv build test test-unit lint fmt demo bench clean servers servers-up servers-down model

venv: $(PY)
$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip uv

# Build the Rust extension (release) and install perago editable with its dev tools.
install: $(PY)
	$(BIN)/uv pip install -q --python $(PY) "maturin>=1.9,<2"
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/maturin develop --release --uv -E dev -q

build: install

# Provision (only) the real servers into $(PERAGO_CACHE_DIR): lakeFS + lakectl built from the Go
# module proxy, the Conductor boot jar from Maven Central. Seconds when cached.
servers: install
	$(BIN)/perago dev provision

# Start/stop local servers for development; `up` writes their endpoints to ./.env.
servers-up: servers
	$(BIN)/perago dev up

servers-down: install
	$(BIN)/perago dev down

# Everything: the protocol model, Rust unit tests, then pytest (unit + integration against real
# servers, which the session fixtures start and stop themselves).
test: install servers model
	cargo test -q --workspace
	$(BIN)/pytest

# Model-check the publication protocol (docs/adr/0007) with spin; installs Debian's spin if absent.
model:
	@command -v spin >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq spin >/dev/null; } || \
		{ echo "error: the model needs spin (Debian package spin) and a C compiler"; exit 1; }
	bash model/check.sh

test-unit: install
	$(BIN)/pytest tests/unit

lint: install
	cargo fmt --all -- --check
	cargo clippy -q --workspace --all-targets -- -D warnings
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy
	$(PY) -m mypy.stubtest perago._native --ignore-missing-stub

fmt:
	cargo fmt --all
	$(BIN)/ruff format $(PY_DIRS)
	$(BIN)/ruff check --fix $(PY_DIRS)

# One command: start local servers, register, run perago start, run a workflow, print the result.
demo: install
	$(PY) -m perago.demo $(CURDIR)

bench: install
	$(BIN)/perago bench snapshot

clean:
	rm -rf $(VENV) target generated
