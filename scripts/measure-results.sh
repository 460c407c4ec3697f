#!/usr/bin/env bash
# measure-results.sh (needs target/release/snowflaked and the emulator venv: make setup demo)
# Measures issue 10's figures: daemon RSS while holding a 1M-row result (spilled), and the time
# to serve a page of 1000 rows from the daemon vs re-running the statement.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$repo/target/release/snowflaked
home=$(mktemp -d "${TMPDIR:-/tmp}/snowflaked-results.XXXX")
mkdir -p "$home/run"
$repo/.venv/bin/python $repo/tests/emulator/snowflake_emulator.py --host 127.0.0.1 --port 0 > "$home/emu.out" 2>"$home/emu.err" &
emu=$!
trap 'kill $emu 2>/dev/null; [ -n "${daemon:-}" ] && kill $daemon 2>/dev/null; rm -rf "$home"; true' EXIT
for _ in $(seq 100); do grep -q LISTENING "$home/emu.out" && break; sleep 0.2; done
port=$(sed -n 's/^LISTENING .*:\([0-9]*\)$/\1/p' "$home/emu.out")
export HOME=$home XDG_RUNTIME_DIR=$home/run XDG_STATE_HOME=$home/state XDG_CONFIG_HOME=$home/config SNOWFLAKE_HOME=$home/snowflake
export SNOWFLAKE_ACCOUNT=test SNOWFLAKE_USER=tester SNOWFLAKE_PASSWORD=x SNOWFLAKE_HOST=127.0.0.1 SNOWFLAKE_PORT=$port SNOWFLAKE_PROTOCOL=http
export SNOWFLAKED_SOCKET=$home/run/api.sock
$bin serve --idle-timeout 0 2>"$home/daemon.log" &
daemon=$!
for _ in $(seq 100); do [ -S "$SNOWFLAKED_SOCKET" ] && break; sleep 0.1; done
$bin query "SELECT 1" >/dev/null
rss() { grep -E "^(VmRSS|VmHWM)" /proc/$daemon/status | tr -s ' ' | tr '\n' ' '; }
echo "idle after one query: $(rss)"
sql="SELECT seq4() AS n, 'row ' || seq4() AS label FROM TABLE(GENERATOR(ROWCOUNT => 1000000)) ORDER BY n"
id=$( ($bin query "$sql" --detach --format json || true) | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
echo "id $id"
t0=$(date +%s%N)
$bin result "$id" --wait 600s --max-rows 1 --format json >/dev/null
t1=$(date +%s%N)
echo "1M rows fetched and held in $(( (t1 - t0) / 1000000 )) ms"
sleep 6   # the status loop returns freed memory to the OS when quiet (every 5 s)
echo "holding the 1M-row result: $(rss)"
du -sh "$home/run/snowflaked/results" 2>/dev/null || true
page() { $bin result "$id" --offset "$1" --max-rows 1000 --format json >/dev/null 2>&1; }
n=20
t0=$(date +%s%N); for i in $(seq $n); do page $(( i * 40000 )); done; t1=$(date +%s%N)
page_ms=$(( (t1 - t0) / n / 1000 ))
echo "page of 1000 rows from the daemon: ${page_ms} us (mean of $n, offsets spread over the result)"
m=3
t0=$(date +%s%N); for _ in $(seq $m); do $bin query "$sql" --max-rows 1000 --format json >/dev/null 2>&1; done; t1=$(date +%s%N)
rerun_ms=$(( (t1 - t0) / m / 1000 ))
echo "re-running the statement for 1000 rows: ${rerun_ms} us (mean of $m)"
echo "ratio re-run / page: $(( rerun_ms / page_ms ))x"
echo "after: $(rss)"
