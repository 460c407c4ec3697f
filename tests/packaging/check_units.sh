#!/usr/bin/env bash
# check_units.sh: static checks of the init-system files in packaging/ — systemd-analyze verify
# and the offline security score for the systemd user units, and a parse plus key checks of the
# launchd agent. Prints one line per check, exits non-zero if any fails.
#
# It never starts a systemd manager: systemd-analyze --user verify/security run without one.
# Usage: tests/packaging/check_units.sh   (from anywhere; needs systemd-analyze and python3)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
units_src=$repo/packaging/systemd
plist_src=$repo/packaging/launchd/com.snowflaked.agent.plist

# The exposure score reached by snowflaked.service (x10, as --threshold takes it): 1.9. A change
# that weakens the sandbox makes this check fail instead of slipping through.
security_threshold=19

failures=0
pass() { printf 'PASS %s\n' "$1"; }
fail() {
	printf 'FAIL %s\n' "$1"
	[ $# -lt 2 ] || printf '%s\n' "$2" | sed 's/^/    /'
	failures=$((failures + 1))
}

work=$(mktemp -d "${TMPDIR:-/tmp}/snowflaked-units.XXXXXX")
trap 'rm -rf "$work"' EXIT

# verify wants ExecStart= to name an existing executable, and the user manager it simulates
# needs XDG_RUNTIME_DIR; both live in the temp dir so the host is not touched.
mkdir -m 0700 "$work/runtime" "$work/units"
bin=$work/bin/snowflaked
mkdir "$work/bin"
printf '#!/bin/sh\nexit 0\n' >"$bin"
chmod 0755 "$bin"
for f in "$units_src"/*.socket "$units_src"/*.service; do
	sed "s|@SNOWFLAKED_BIN@|$bin|g" "$f" >"$work/units/$(basename "$f")"
done
export XDG_RUNTIME_DIR=$work/runtime

cd "$work/units"
units=(./snowflaked.socket ./snowflaked-tcp.socket ./snowflaked.service)

# A misspelled key or a bad value is only a warning with exit 0, so any stderr is a failure.
for u in "${units[@]}"; do
	name=${u#./}
	if out=$(systemd-analyze --user verify "$u" 2>&1 >/dev/null) && [ -z "$out" ]; then
		pass "systemd-analyze --user verify $name"
	else
		fail "systemd-analyze --user verify $name" "$out"
	fi
done

# The secrets rule: credentials reach the daemon through LoadCredential=, never Environment=.
if grep -Eq '^[[:space:]]*(Environment|EnvironmentFile|PassEnvironment)=' "$units_src"/*.service; then
	fail "no Environment=/EnvironmentFile= lines in the service" \
		"$(grep -En '^[[:space:]]*(Environment|EnvironmentFile|PassEnvironment)=' "$units_src"/*.service)"
else
	pass "no Environment=/EnvironmentFile= lines in the service"
fi

# The socket and service must agree with the daemon on fd names and the socket path.
check_line() {
	local file=$1 line=$2
	if grep -qxF "$line" "$units_src/$file"; then
		pass "$file has $line"
	else
		fail "$file has $line"
	fi
}
check_line snowflaked.socket 'ListenStream=%t/snowflaked/api.sock'
check_line snowflaked.socket 'FileDescriptorName=api'
check_line snowflaked.socket 'SocketMode=0600'
check_line snowflaked-tcp.socket 'FileDescriptorName=api-tcp'
check_line snowflaked-tcp.socket 'Service=snowflaked.service'
check_line snowflaked.service 'ExecStart=@SNOWFLAKED_BIN@ serve'
check_line snowflaked.service 'Type=notify'
check_line snowflaked.service 'StateDirectory=snowflaked'

# Exit status of --threshold says pass/fail; the score line is parsed only to report it.
name="systemd-analyze --user security --offline=true snowflaked.service (exposure <= ${security_threshold:0:1}.${security_threshold:1})"
if sec_out=$(systemd-analyze --user security --offline=true --threshold="$security_threshold" \
	./snowflaked.service 2>&1); then
	score=$(printf '%s\n' "$sec_out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	pass "$name: $score"
else
	fail "$name" "$(printf '%s\n' "$sec_out" | grep -E '✗|Overall' || printf '%s\n' "$sec_out")"
fi

# The plist: it must parse, and carry what the daemon and `snowflaked install` rely on.
if plist_out=$(python3 - "$plist_src" 2>&1 <<'EOF'
import plistlib
import sys

with open(sys.argv[1], "rb") as f:
    p = plistlib.load(f)

problems = []
def expect(cond, msg):
    if not cond:
        problems.append(msg)

expect(p.get("Label") == "com.snowflaked.agent", "Label is not com.snowflaked.agent")
expect(p.get("ProgramArguments") == ["@SNOWFLAKED_BIN@", "serve"],
       "ProgramArguments is not [@SNOWFLAKED_BIN@, serve]")
api = p.get("Sockets", {}).get("api", {})
expect(api.get("SockPathName", "").startswith("@HOME@/"),
       "Sockets.api.SockPathName is not an absolute path under @HOME@")
expect(api.get("SockPathMode") == 0o600, "Sockets.api.SockPathMode is not 384 (0600)")
expect("KeepAlive" not in p, "KeepAlive is set: an idle exit would be relaunched at once")
expect(not p.get("RunAtLoad", False), "RunAtLoad is set: the daemon must start on demand")
for key in ("StandardOutPath", "StandardErrorPath"):
    expect(p.get(key, "").startswith("@HOME@/Library/Logs/snowflaked/"),
           f"{key} is not under @HOME@/Library/Logs/snowflaked/")
expect("EnvironmentVariables" not in p, "EnvironmentVariables is set: no secrets in the plist")
# sun_path on macOS holds 104 bytes; a home of up to 50 bytes must still fit.
sock = api.get("SockPathName", "").replace("@HOME@", "/Users/" + "u" * 43)
expect(len(sock.encode()) < 104, f"socket path too long for sun_path with a long home: {sock}")

if problems:
    print("\n".join(problems))
    sys.exit(1)
EOF
); then
	pass "launchd plist parses and has the expected keys"
else
	fail "launchd plist parses and has the expected keys" "$plist_out"
fi

if [ "$failures" -ne 0 ]; then
	printf '%d check(s) failed\n' "$failures"
	exit 1
fi
printf 'all packaging checks passed\n'
