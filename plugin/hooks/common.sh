# common.sh: helpers shared by the snowflake plugin's session hooks (sourced, not run).
# It finds the snowflaked binary, reads the Claude Code session id from the hook input, and
# knows where the plugin remembers which snowflaked token belongs to which Claude session.
# Everything here is POSIX sh: the hooks run under /bin/sh on Linux and macOS alike.

# The binary: $SNOWFLAKED_BIN when set (a path, or a name looked up on PATH), else `snowflaked`
# on PATH. Prints its path; fails when there is none, so the hooks can stay silent.
snowflaked_bin() {
	if [ -n "${SNOWFLAKED_BIN:-}" ]; then
		case $SNOWFLAKED_BIN in
		*/*)
			if [ -f "$SNOWFLAKED_BIN" ] && [ -x "$SNOWFLAKED_BIN" ]; then
				printf '%s\n' "$SNOWFLAKED_BIN"
				return 0
			fi
			return 1
			;;
		*) command -v "$SNOWFLAKED_BIN" 2>/dev/null ;;
		esac
		return
	fi
	command -v snowflaked 2>/dev/null
}

# The "session_id" field of the hook's JSON input. Claude Code's ids are UUIDs; anything with
# other characters is ignored, since the id becomes a file name.
hook_session_id() {
	printf '%s\n' "$1" |
		sed -n 's/.*"session_id"[[:space:]]*:[[:space:]]*"\([A-Za-z0-9_-]\{1,128\}\)".*/\1/p' |
		head -n 1
}

# A token is written into a file that Claude Code sources before every Bash command, so only
# characters that need no quoting are accepted (hex, base64 and base64url tokens all qualify).
valid_token() {
	case $1 in
	'' | *[!A-Za-z0-9._~+/=-]*) return 1 ;;
	esac
	[ "${#1}" -le 256 ]
}

# Where each Claude session's token is remembered between SessionStart and SessionEnd: the
# SessionEnd hook does not see the variables that SessionStart exported, only the session id.
# $CLAUDE_PLUGIN_DATA is the plugin's own persistent folder; outside Claude Code (tests, manual
# runs) an XDG state folder stands in.
records_dir() {
	if [ -n "${CLAUDE_PLUGIN_DATA:-}" ]; then
		printf '%s/sessions\n' "$CLAUDE_PLUGIN_DATA"
	else
		printf '%s/snowflaked-claude-plugin/sessions\n' "${XDG_STATE_HOME:-$HOME/.local/state}"
	fi
}
