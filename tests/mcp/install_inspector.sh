#!/usr/bin/env bash
# install_inspector.sh: installs the pinned MCP Inspector (`@modelcontextprotocol/inspector`),
# whose CLI mode lists and calls `snowflaked mcp`'s tools in tests/it/mcp.rs, into an npm prefix of
# its own; prints the path of the `mcp-inspector` binary. Same pattern as
# tests/plugin/install_claude.sh, so CI can cache the prefix.
# Usage: tests/mcp/install_inspector.sh [PREFIX]   (default PREFIX: /tmp/mcp-inspector-npm)
set -euo pipefail

version=2.12.0
prefix=${1:-/tmp/mcp-inspector-npm}
inspector=$prefix/node_modules/.bin/mcp-inspector

if [ -x "$inspector" ] && "$inspector" --version 2>/dev/null | grep -q "$version"; then
	printf '%s\n' "$inspector"
	exit 0
fi

mkdir -p "$prefix"
# npm's output goes to stderr so that stdout stays the one path callers capture.
npm install --prefix "$prefix" --no-audit --no-fund "@modelcontextprotocol/inspector@$version" >&2
if ! "$inspector" --version 2>/dev/null | grep -q "$version"; then
	printf 'install_inspector.sh: %s does not report version %s\n' "$inspector" "$version" >&2
	exit 1
fi
printf '%s\n' "$inspector"
