#!/usr/bin/env bash
# The main job on the local emulator, as a user would run it: start the Snowflake emulator,
# hand a socket to `snowflaked serve` the way systemd does (systemd-socket-activate; where
# that is missing the client self-starts the daemon), then run a few commands through
# `snowflaked query` and show the daemon's status. Everything lives in a temp directory and
# is stopped on exit.
set -euo pipefail
bin=$(realpath "${1:-target/release/snowflaked}")
root=$(cd "$(dirname "$0")/.." && pwd)
python=${SNOWFLAKED_TEST_PYTHON:-$root/.venv/bin/python}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# 1. The emulator, on a free port; wait for the line that says it listens.
"$python" "$root/tests/emulator/snowflake_emulator.py" --port 0 > "$work/emulator.out" &
pids+=($!)
port=""
for _ in $(seq 1 600); do
  port=$(sed -n 's/^LISTENING .*:\([0-9]*\)$/\1/p' "$work/emulator.out")
  [ -n "$port" ] && break
  kill -0 "${pids[0]}" || { echo "the emulator failed to start" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "the emulator did not start" >&2; exit 1; }

# 2. A private user environment pointing at it (no real account, no secrets).
export HOME="$work/home" XDG_RUNTIME_DIR="$work/run" XDG_STATE_HOME="$work/state" XDG_CONFIG_HOME="$work/config"
export SNOWFLAKE_ACCOUNT=demo SNOWFLAKE_USER=demo SNOWFLAKE_PASSWORD=demo
export SNOWFLAKE_HOST=127.0.0.1 SNOWFLAKE_PORT="$port" SNOWFLAKE_PROTOCOL=http
mkdir -p "$HOME" "$XDG_RUNTIME_DIR/snowflaked"
chmod 0700 "$XDG_RUNTIME_DIR" "$XDG_RUNTIME_DIR/snowflaked"
socket="$XDG_RUNTIME_DIR/snowflaked/api.sock"

# 3. Socket activation, as the systemd user unit does it.
if command -v systemd-socket-activate >/dev/null; then
  env_args=()
  for v in HOME XDG_RUNTIME_DIR XDG_STATE_HOME XDG_CONFIG_HOME SNOWFLAKE_ACCOUNT SNOWFLAKE_USER SNOWFLAKE_PASSWORD SNOWFLAKE_HOST SNOWFLAKE_PORT SNOWFLAKE_PROTOCOL; do
    env_args+=(-E "$v")
  done
  systemd-socket-activate -l "$socket" --fdname api "${env_args[@]}" -- "$bin" serve --idle-timeout 5m 2> "$work/daemon.log" &
  pids+=($!)
  for _ in $(seq 1 100); do [ -S "$socket" ] && break; sleep 0.05; done
  echo "# socket $socket handed to snowflaked by systemd-socket-activate (started on the first connection)"
else
  echo "# no systemd-socket-activate here: the client starts the daemon itself"
fi

run() { echo; echo "\$ snowflaked $*"; "$bin" "$@"; }
run query "SELECT 'hello from snowflaked' AS greeting, 42 AS answer"
run query "CREATE DATABASE demo_db"
run query "CREATE SCHEMA demo_db.public"
run use database demo_db
# (real Snowflake switches to PUBLIC by itself; the emulator needs it said)
run use schema public
run query "CREATE TABLE cities (name TEXT, population INT)"
run query "INSERT INTO cities VALUES ('Zürich', 421878), ('Oslo', 709037), ('Lima', 10092000)"
run query "SELECT name, population FROM cities ORDER BY population DESC" --format markdown
run --session agent-2 context
run context
run query "SELECT CURRENT_DATABASE() AS db, COUNT(*) AS n FROM cities" --format json
run status
run stop
