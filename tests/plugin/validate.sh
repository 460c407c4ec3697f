#!/usr/bin/env bash
# validate.sh: checks the Claude Code plugin and the repository's marketplace offline with the
# given `claude` binary (see install_claude.sh): `claude plugin validate --strict --profile
# directory plugin/` (manifest, commands, skill, hooks, plus the plugin directory's submission
# rules such as README and icon), the marketplace manifest, and that the icon is current.
# Prints one line per check; exits non-zero if any fails.
# Usage: tests/plugin/validate.sh PATH_TO_CLAUDE
set -uo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
	printf 'usage: %s PATH_TO_CLAUDE (install it with tests/plugin/install_claude.sh)\n' "$0" >&2
	exit 2
fi
claude=$1
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# A throwaway HOME: validation must not depend on, or write to, the developer's ~/.claude.
home=$(mktemp -d "${TMPDIR:-/tmp}/snowflaked-claude-home.XXXXXX")
trap 'rm -rf "$home"' EXIT
export HOME=$home
# No update checks or telemetry from a test run (the machine has no network for them anyway).
export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1

failures=0
check() {
	local name=$1
	shift
	local out
	if out=$("$@" </dev/null 2>&1); then
		printf 'PASS %s\n' "$name"
	else
		printf 'FAIL %s\n' "$name"
		printf '%s\n' "$out" | sed 's/^/    /'
		failures=$((failures + 1))
	fi
}

cd "$repo" || exit 2
check "claude plugin validate --strict --profile directory plugin/" \
	"$claude" plugin validate --strict --profile directory plugin/
check "claude plugin validate --strict . (marketplace)" \
	"$claude" plugin validate --strict .
check "plugin icon is what tests/plugin/make_icon.py draws" \
	python3 tests/plugin/make_icon.py --check

if [ "$failures" -ne 0 ]; then
	printf '%d check(s) failed\n' "$failures"
	exit 1
fi
printf 'all plugin validation checks passed\n'
