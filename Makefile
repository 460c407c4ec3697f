# snowflaked's developer entry points. `make demo` and `make test` are the README's two
# commands: each sets up what it needs on a fresh machine first.

PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
CLAUDE_PREFIX ?= $(CURDIR)/target/claude-npm
INSPECTOR_PREFIX ?= $(CURDIR)/target/mcp-inspector-npm

.PHONY: setup demo test test-rust test-emulator test-packaging test-plugin test-mcp-inspector lint bench bench-mcp clean

# The emulator's Python environment, pinned (tests/emulator/requirements*.txt), and the crates.
setup: $(VENV)/.installed
	cargo fetch --locked

$(VENV)/.installed: tests/emulator/requirements.txt tests/emulator/requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check -r tests/emulator/requirements-dev.txt
	touch $@

# The main job on the embedded default: the local emulator, no Snowflake account needed.
demo: setup
	cargo build --release --locked
	scripts/demo.sh target/release/snowflaked

# Every test: Rust (unit, in-process, end to end on the emulator), the emulator adapter's own
# tests, the unit files, the Claude Code plugin, and the MCP server through the MCP Inspector.
test: setup test-rust test-emulator test-packaging test-plugin test-mcp-inspector

test-rust:
	SNOWFLAKED_TEST_PYTHON=$(CURDIR)/$(VENV_PY) cargo test --locked --all-targets

test-emulator:
	PYTHONDONTWRITEBYTECODE=1 $(VENV_PY) -m pytest -p no:cacheprovider -q tests/emulator/test_emulator.py

test-packaging:
	tests/packaging/check_units.sh

test-plugin:
	tests/plugin/validate.sh "$$(tests/plugin/install_claude.sh $(CLAUDE_PREFIX))"

# `snowflaked mcp` through the pinned MCP Inspector's CLI (npm), as CI's second real MCP client.
test-mcp-inspector:
	SNOWFLAKED_TEST_MCP_INSPECTOR="$$(tests/mcp/install_inspector.sh $(INSPECTOR_PREFIX))" \
	SNOWFLAKED_TEST_PYTHON=$(CURDIR)/$(VENV_PY) cargo test --locked --test it mcp::the_mcp_inspector_cli

lint:
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets -- -D warnings

# Benchmarks (ratios against a baseline measured in the same run); see README.
bench: setup
	SNOWFLAKED_TEST_PYTHON=$(CURDIR)/$(VENV_PY) cargo bench --locked --bench daemon

# `snowflaked mcp` against snowflake-labs-mcp 1.4.2 (pinned; the script installs it in its own
# venv, target/bench-venv) on the emulator with +500 ms/login, +60 ms/statement; see README.
bench-mcp: setup
	cargo build --release --locked
	$(VENV_PY) benches/mcp/bench.py --snowflaked target/release/snowflaked --labs-python $(PYTHON)

clean:
	rm -rf $(VENV) target
