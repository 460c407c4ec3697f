#!/usr/bin/env bash
# hooks_test.sh: end-to-end test of the snowflake plugin's session hooks (plugin/hooks/) with the
# real snowflaked client and a running daemon. It plays two Claude Code sessions: each gets its
# own token through the SessionStart hook, a USE in one leaves the other's context alone, a
# second SessionStart (compaction) keeps the token, and SessionEnd removes both tokens from the
# daemon. It also checks that the hooks stay silent and exit 0 when the binary is missing, when
# the daemon is unreachable, and when the client prints something that is not a token.
#
# Usage: SNOWFLAKED_SOCKET=/path/to/api.sock tests/plugin/hooks_test.sh SNOWFLAKED_BIN
# The daemon behind SNOWFLAKED_SOCKET must be able to run CREATE/DROP DATABASE (the emulator
# will do). Every client call is bounded by a timeout; nothing waits by sleeping.
set -uo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
	printf 'usage: SNOWFLAKED_SOCKET=PATH %s SNOWFLAKED_BIN\n' "$0" >&2
	exit 2
fi
if [ -z "${SNOWFLAKED_SOCKET:-}" ]; then
	# Refuse to run against whatever daemon the user has by default.
	printf '%s: set SNOWFLAKED_SOCKET to the test daemon'"'"'s socket\n' "$0" >&2
	exit 2
fi
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
hooks=$repo/plugin/hooks
call_timeout=30

work=$(mktemp -d "${TMPDIR:-/tmp}/snowflaked-hooks.XXXXXX")
db=HOOKS_TEST_$$_${RANDOM}
db_created=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	if [ -n "$db_created" ]; then
		# A token of its own, so cleanup never depends on the tokens under test.
		local t
		if t=$(timeout "$call_timeout" "$bin" session new </dev/null) && [ -n "$t" ]; then
			timeout "$call_timeout" "$bin" --session "$t" query "DROP DATABASE IF EXISTS $db" \
				</dev/null >/dev/null 2>&1
			timeout "$call_timeout" "$bin" session end "$t" </dev/null >/dev/null 2>&1
		fi
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# The hooks keep their token records here, as under Claude Code ($CLAUDE_PLUGIN_DATA).
export CLAUDE_PLUGIN_DATA=$work/plugin-data
export SNOWFLAKED_BIN=$bin
unset SNOWFLAKED_SESSION CLAUDE_ENV_FILE

passed=0
failed=0
pass() {
	printf 'PASS %s\n' "$1"
	passed=$((passed + 1))
}
fail() {
	printf 'FAIL %s\n' "$1"
	[ $# -lt 2 ] || printf '%s\n' "$2" | sed 's/^/    /'
	failed=$((failed + 1))
}
finish() {
	printf '%d passed, %d failed\n' "$passed" "$failed"
	[ "$failed" -eq 0 ]
	exit
}

# The client, bounded in time, with the environment the caller set up.
sf() { timeout "$call_timeout" "$bin" "$@" </dev/null; }

# Runs hook FILE for Claude session SID the way Claude Code does: JSON event on stdin,
# CLAUDE_ENV_FILE in the environment. SID "-" leaves session_id out of the event. Extra
# arguments are `env` options and VAR=value pairs, applied after SNOWFLAKED_SESSION is
# removed. Sets hook_rc and hook_out (stdout and stderr together).
run_hook() {
	local file=$1 sid=$2 event=$3 env_file=$4
	shift 4
	local id_field=
	[ "$sid" = - ] || id_field=$(printf '"session_id":"%s",' "$sid")
	local json
	json=$(printf '{%s"transcript_path":"%s/transcript.jsonl","cwd":"%s","hook_event_name":"%s","source":"startup","reason":"other"}' \
		"$id_field" "$work" "$repo" "$event")
	hook_out=$(printf '%s\n' "$json" |
		env -u SNOWFLAKED_SESSION "$@" CLAUDE_ENV_FILE="$env_file" \
			timeout "$call_timeout" sh "$hooks/$file" 2>&1)
	hook_rc=$?
}

# The token that an env file exports, as the Bash tool would see it after sourcing the file.
exported_token() {
	(
		unset SNOWFLAKED_SESSION
		# shellcheck disable=SC1090
		. "$1" && printf '%s' "${SNOWFLAKED_SESSION:-}"
	)
}

# Runs the client inside "session" ENV_FILE: the file sourced first, as Claude Code does
# before each Bash command.
in_session() {
	local env_file=$1
	shift
	(
		unset SNOWFLAKED_SESSION
		# shellcheck disable=SC1090
		. "$env_file" && sf "$@"
	)
}

silent_noop() { # NAME: the last hook run must have exited 0 without output
	if [ "$hook_rc" -eq 0 ] && [ -z "$hook_out" ]; then
		pass "$1"
	else
		fail "$1" "exit $hook_rc, output: $hook_out"
	fi
}

# --- Without a usable client the hooks must do nothing, silently. ---------------------------

env_file=$work/missing.env
run_hook session-start.sh 11111111-0000-4000-8000-000000000001 SessionStart "$env_file" \
	SNOWFLAKED_BIN="$work/does-not-exist/snowflaked"
silent_noop "SessionStart with SNOWFLAKED_BIN pointing nowhere exits 0 silently"
if [ -s "$env_file" ]; then
	fail "SessionStart with a missing binary writes no env file" "$(cat "$env_file")"
else
	pass "SessionStart with a missing binary writes no env file"
fi
run_hook session-end.sh 11111111-0000-4000-8000-000000000001 SessionEnd "$env_file" \
	SNOWFLAKED_BIN="$work/does-not-exist/snowflaked" SNOWFLAKED_SESSION=some-token
silent_noop "SessionEnd with SNOWFLAKED_BIN pointing nowhere exits 0 silently"

# Not on PATH and no override: only meaningful where no snowflaked is installed system-wide.
bare_path=/usr/bin:/bin
if PATH=$bare_path command -v snowflaked >/dev/null 2>&1; then
	printf 'SKIP SessionStart without snowflaked on PATH (one is installed in %s)\n' "$bare_path"
else
	run_hook session-start.sh 11111111-0000-4000-8000-000000000002 SessionStart "$env_file" \
		-u SNOWFLAKED_BIN PATH="$bare_path"
	silent_noop "SessionStart without snowflaked on PATH exits 0 silently"
fi

# A client that cannot reach its daemon (exit 3, message on stderr).
mkdir -p "$work/stub"
cat >"$work/stub/unreachable" <<'EOF'
#!/bin/sh
echo "error: cannot reach snowflaked" >&2
exit 3
EOF
# A client whose output is not a token: it must never reach a file that Bash sources.
cat >"$work/stub/garbage" <<'EOF'
#!/bin/sh
echo "abc'; touch injected; echo '"
EOF
chmod +x "$work/stub/unreachable" "$work/stub/garbage"
for stub in unreachable garbage; do
	env_file=$work/$stub.env
	run_hook session-start.sh "11111111-0000-4000-8000-$stub" SessionStart "$env_file" \
		SNOWFLAKED_BIN="$work/stub/$stub"
	silent_noop "SessionStart with a client that is $stub exits 0 silently"
	if [ -s "$env_file" ]; then
		fail "SessionStart with a client that is $stub writes nothing" "$(cat "$env_file")"
	else
		pass "SessionStart with a client that is $stub writes nothing"
	fi
done
run_hook session-end.sh 11111111-0000-4000-8000-000000000009 SessionEnd "$work/x.env" \
	SNOWFLAKED_BIN="$work/stub/unreachable" SNOWFLAKED_SESSION=some-token
silent_noop "SessionEnd with an unreachable daemon exits 0 silently"

# --- Two sessions against the real daemon. --------------------------------------------------

if ! status_out=$(sf status 2>&1); then
	fail "the daemon at \$SNOWFLAKED_SOCKET answers snowflaked status" "$status_out"
	finish
fi
pass "the daemon at \$SNOWFLAKED_SOCKET answers snowflaked status"

default_before=$(sf context --json 2>&1)

sid_a=aaaaaaaa-1111-4111-8111-$(printf '%012d' $$)
sid_b=bbbbbbbb-2222-4222-8222-$(printf '%012d' $$)
env_a=$work/session-a.env
env_b=$work/session-b.env
run_hook session-start.sh "$sid_a" SessionStart "$env_a"
silent_noop "SessionStart for session a exits 0 silently"
run_hook session-start.sh "$sid_b" SessionStart "$env_b"
silent_noop "SessionStart for session b exits 0 silently"
tok_a=$(exported_token "$env_a")
tok_b=$(exported_token "$env_b")
if [ -n "$tok_a" ] && [ -n "$tok_b" ] && [ "$tok_a" != "$tok_b" ] &&
	[ "$tok_a" != default ] && [ "$tok_b" != default ]; then
	pass "each session's env file exports its own SNOWFLAKED_SESSION"
else
	fail "each session's env file exports its own SNOWFLAKED_SESSION" \
		"A: $(cat "$env_a" 2>&1)"$'\n'"B: $(cat "$env_b" 2>&1)"
fi
for f in "$env_a" "$env_b"; do
	lines=$(grep -c '^export SNOWFLAKED_SESSION=' "$f" 2>/dev/null)
	if [ "$lines" = 1 ] && [ "$(wc -l <"$f")" -eq 1 ]; then
		pass "$(basename "$f") holds exactly one export line"
	else
		fail "$(basename "$f") holds exactly one export line" "$(cat "$f" 2>&1)"
	fi
done

ctx_b_before=$(in_session "$env_b" context --json 2>&1)
if out=$(in_session "$env_a" query "CREATE DATABASE IF NOT EXISTS $db" 2>&1); then
	db_created=1
	pass "session a creates database $db"
else
	fail "session a creates database $db" "$out"
fi
if out=$(in_session "$env_a" use database "$db" 2>&1); then
	pass "session a: snowflaked use database $db"
else
	fail "session a: snowflaked use database $db" "$out"
fi
ctx_a=$(in_session "$env_a" context --json 2>&1)
ctx_b=$(in_session "$env_b" context --json 2>&1)
if grep -qiF "\"$db\"" <<<"$ctx_a"; then
	pass "session a's context names $db"
else
	fail "session a's context names $db" "$ctx_a"
fi
if [ "$ctx_a" != "$ctx_b" ] && ! grep -qiF "$db" <<<"$ctx_b" && [ "$ctx_b" = "$ctx_b_before" ]; then
	pass "session b's context differs from a's and did not change"
else
	fail "session b's context differs from a's and did not change" \
		"A: $ctx_a"$'\n'"B before: $ctx_b_before"$'\n'"B after: $ctx_b"
fi
default_after=$(sf context --json 2>&1)
if [ "$default_after" = "$default_before" ]; then
	pass "the default token's context did not change"
else
	fail "the default token's context did not change" \
		"before: $default_before"$'\n'"after: $default_after"
fi

list=$(sf session list 2>&1)
if grep -qF -- "$tok_a" <<<"$list" && grep -qF -- "$tok_b" <<<"$list"; then
	pass "snowflaked session list shows both tokens"
else
	fail "snowflaked session list shows both tokens" "$list"
fi

# Compaction (or resume) runs SessionStart again for the same Claude session: same token.
env_a2=$work/session-a-compacted.env
run_hook session-start.sh "$sid_a" SessionStart "$env_a2"
silent_noop "SessionStart again for session a exits 0 silently"
if [ "$(exported_token "$env_a2")" = "$tok_a" ]; then
	pass "SessionStart again for session a keeps its token"
else
	fail "SessionStart again for session a keeps its token" "$(cat "$env_a2" 2>&1)"
fi

# SessionEnd, run the way the brief's Claude Code would: the session's env sourced first.
run_hook session-end.sh "$sid_a" SessionEnd "$env_a" SNOWFLAKED_SESSION="$tok_a"
silent_noop "SessionEnd for session a exits 0 silently"
run_hook session-end.sh "$sid_b" SessionEnd "$env_b" SNOWFLAKED_SESSION="$tok_b"
silent_noop "SessionEnd for session b exits 0 silently"
# Without a session id in the event (a hand-run hook) the exported variable names the token.
env_c=$work/session-c.env
run_hook session-start.sh - SessionStart "$env_c"
silent_noop "SessionStart without a session id exits 0 silently"
tok_c=$(exported_token "$env_c")
if [ -n "$tok_c" ] && [ "$tok_c" != "$tok_a" ] && [ "$tok_c" != "$tok_b" ]; then
	pass "SessionStart without a session id exports a new token"
else
	fail "SessionStart without a session id exports a new token" "$(cat "$env_c" 2>&1)"
fi
run_hook session-end.sh - SessionEnd "$env_c" SNOWFLAKED_SESSION="$tok_c"
silent_noop "SessionEnd without a session id exits 0 silently"

list=$(sf session list 2>&1)
list_rc=$?
gone=1
for t in "$tok_a" "$tok_b" "$tok_c"; do
	[ -z "$t" ] || ! grep -qF -- "$t" <<<"$list" || gone=
done
if [ "$list_rc" -eq 0 ] && [ -n "$gone" ]; then
	pass "after SessionEnd none of the tokens is in snowflaked session list"
else
	fail "after SessionEnd none of the tokens is in snowflaked session list" "exit $list_rc: $list"
fi
if [ -z "$(ls -A "$CLAUDE_PLUGIN_DATA/sessions" 2>/dev/null)" ]; then
	pass "SessionEnd removed the hooks' token records"
else
	fail "SessionEnd removed the hooks' token records" "$(ls -la "$CLAUDE_PLUGIN_DATA/sessions")"
fi

finish
