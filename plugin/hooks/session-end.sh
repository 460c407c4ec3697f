#!/bin/sh
# session-end.sh: the snowflake plugin's SessionEnd hook. Ends the snowflaked token that
# session-start.sh minted for this Claude Code session (`snowflaked session end TOKEN`), which
# rolls back a transaction left open and frees the daemon's context for it.
#
# Always silent and always exit 0: Claude Code is exiting, and a missing binary or an
# unreachable daemon must not delay or disturb that.
umask 077
exec 2>/dev/null

input=$(cat)
# shellcheck source=plugin/hooks/common.sh
. "$(dirname "$0")/common.sh" || exit 0

bin=$(snowflaked_bin) || exit 0
[ -n "$bin" ] || exit 0

session_id=$(hook_session_id "$input")
record=
token=
if [ -n "$session_id" ]; then
	# Only a token this plugin minted is ended; a token the user set for Claude Code is theirs.
	record="$(records_dir)/$session_id"
	[ -f "$record" ] && token=$(head -n 1 "$record")
elif [ -n "${SNOWFLAKED_SESSION:-}" ] && [ "$SNOWFLAKED_SESSION" != default ]; then
	# Without a session id (a hand-run or scripted call) the exported variable is all there is.
	# The shared `default` token is never ended.
	token=$SNOWFLAKED_SESSION
fi
valid_token "$token" || exit 0

if "$bin" session end "$token" </dev/null >/dev/null; then
	# Kept when the daemon could not be reached, so resuming this session reuses the token.
	[ -z "$record" ] || rm -f "$record"
fi
exit 0
