#!/bin/sh
# session-start.sh: the snowflake plugin's SessionStart hook. Gives each Claude Code session its
# own snowflaked token, so the database, schema, warehouse and role it selects are not shared
# with other sessions or terminals, and a query tag (JSON: the tool and the Claude session id)
# that makes its statements attributable in QUERY_HISTORY: it mints one with
# `snowflaked session new`, tags it with `snowflaked use query-tag`, and appends
# `export SNOWFLAKED_SESSION=<token>` to $CLAUDE_ENV_FILE, which Claude Code sources before
# each Bash command.
#
# Always silent and always exit 0: its stdout would be added to the conversation, and a session
# that never touches Snowflake must not notice a missing binary or an unreachable daemon.
umask 077
exec 2>/dev/null

input=$(cat)
# shellcheck source=plugin/hooks/common.sh
. "$(dirname "$0")/common.sh" || exit 0

# Nowhere to export the token to: nothing useful can be done.
[ -n "${CLAUDE_ENV_FILE:-}" ] || exit 0
# The user chose a token when starting Claude Code (to share context with a terminal, say):
# Bash commands inherit it already, and it is not ours to replace or to end later.
[ -z "${SNOWFLAKED_SESSION:-}" ] || exit 0
bin=$(snowflaked_bin) || exit 0
[ -n "$bin" ] || exit 0

session_id=$(hook_session_id "$input")
records=$(records_dir)
token=

# After a compaction or on resume Claude Code runs this hook again for the same session: keep
# its token, and so the context the conversation has been using.
if [ -n "$session_id" ] && [ -f "$records/$session_id" ]; then
	token=$(head -n 1 "$records/$session_id")
	valid_token "$token" || token=
fi

if [ -z "$token" ]; then
	# Into a file rather than a pipe: if this call starts the daemon and the daemon kept the
	# pipe open, reading until end of file would hang the hook until Claude Code kills it.
	out=$(mktemp) || exit 0
	if ! "$bin" session new </dev/null >"$out"; then
		rm -f "$out"
		exit 0
	fi
	token=$(head -n 1 "$out")
	rm -f "$out"
	valid_token "$token" || exit 0
	# Every statement of this agent session carries a query tag naming the tool and the
	# session (the id is checked to be [A-Za-z0-9_-], so it needs no JSON escaping), so
	# Snowflake's QUERY_HISTORY shows which conversation ran what.
	if [ -n "$session_id" ]; then
		tag="{\"tool\":\"claude-code\",\"session\":\"$session_id\"}"
	else
		tag='{"tool":"claude-code"}'
	fi
	"$bin" --session "$token" use query-tag "$tag" </dev/null >/dev/null || true
	if [ -n "$session_id" ] && mkdir -p "$records"; then
		printf '%s\n' "$token" >"$records/$session_id"
		# Sessions that ended without SessionEnd (a crash, a killed terminal) leave records.
		find "$records" -type f -mtime +30 -exec rm -f {} + </dev/null
	fi
fi

line="export SNOWFLAKED_SESSION='$token'"
grep -qxF "$line" "$CLAUDE_ENV_FILE" </dev/null || printf '%s\n' "$line" >>"$CLAUDE_ENV_FILE"
exit 0
