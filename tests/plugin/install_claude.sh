#!/usr/bin/env bash
# install_claude.sh: installs the pinned Claude Code CLI, whose `claude plugin validate` checks
# the plugin offline, into an npm prefix of its own; prints the path of the `claude` binary.
# Kept apart from validate.sh so CI can cache the prefix and skip this step.
# Usage: tests/plugin/install_claude.sh [PREFIX]   (default PREFIX: /tmp/claude-npm)
set -euo pipefail

version=2.1.328
prefix=${1:-/tmp/claude-npm}
claude=$prefix/node_modules/.bin/claude

if [ -x "$claude" ] && "$claude" --version 2>/dev/null | grep -q "^$version "; then
	printf '%s\n' "$claude"
	exit 0
fi

mkdir -p "$prefix"
# The package's postinstall puts the native binary in place; its output goes to stderr so that
# stdout stays the one path callers capture.
npm install --prefix "$prefix" --no-audit --no-fund "@anthropic-ai/claude-code@$version" >&2
if ! "$claude" --version 2>/dev/null | grep -q "^$version "; then
	printf 'install_claude.sh: %s does not report version %s\n' "$claude" "$version" >&2
	exit 1
fi
printf '%s\n' "$claude"
