"""`make bench-mcp`: `snowflaked mcp` against Snowflake Labs' MCP server (`snowflake-labs-mcp`
1.4.2 from PyPI, pinned in benches/mcp/requirements-snowflake-labs-mcp.txt and installed in its
own venv, target/bench-venv, by this script), in one run, on one emulator with injected latency
(+500 ms per login, +60 ms per statement by default), both driven by the official MCP Python
SDK (the `mcp` client pinned in tests/emulator/requirements-dev.txt) over stdio.

Both servers read the same Snowflake `connections.toml` (account, user, password, host, port,
protocol=http) pointing at the emulator; neither gets any SNOWFLAKE_* variable. The Labs
server's SQL tool is `run_snowflake_query(statement)`, enabled by its service config YAML
(`other_services.query_manager`, `sql_statement_permissions`), written here.

What is measured (issue 13, Benchmark), each for both servers where meaningful:
1. spawn → first `SELECT 1` tool result: from spawning the server process (through the MCP
   `initialize` handshake) to the first tool result, with snowflaked's daemon already warm;
   for snowflaked also with a bare JSON-RPC client written here (the server's own part, without
   the SDK client's work on a first result) and with no daemon running (self-start + login).
2. a warm `SELECT 1` tool call on an initialized server, against the baseline: the same
   statement sent as one raw HTTP request straight to the emulator on an already-open
   Snowflake session (no daemon, no client library), the statement's own cost. The daemon's
   own HTTP API (`POST /v1/query` on its socket) is shown too, to split the MCP hop from the
   daemon hop. The four are interleaved round by round so machine noise hits them alike.
3. 8 MCP clients started at once, each running 10 `SELECT` calls: wall time from the first
   spawn to the last result, and Snowflake logins during it (the emulator's login counter).
4. RSS (VmRSS, and the peak VmHWM) of one server process after it served calls; snowflaked's
   daemon, which all `snowflaked mcp` processes share, is shown on its own line.
5. a ping sent while a `SYSTEM$WAIT` statement runs: answered before the statement ends?

Run:  .venv/bin/python benches/mcp/bench.py [--snowflaked target/release/snowflaked]
Knobs: --login-ms, --statement-ms, --pool-size, --reps, --skip-labs (snowflaked alone).
Everything is loopback; every process started here is ended by its pid. The report ends with
one line of JSON for machines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

ROOT = Path(__file__).resolve().parents[2]
LABS_REQUIREMENTS = ROOT / "benches/mcp/requirements-snowflake-labs-mcp.txt"
EMULATOR = ROOT / "tests/emulator/snowflake_emulator.py"
MIB = 1024 * 1024
WAIT = 60.0  # seconds any single readiness wait may take

# The targets of issue 13's Benchmark section.
TARGET_FIRST_RESULT_S = 0.100
TARGET_WARM_RATIO = 1.05
TARGET_FLEET_S = 2.0
TARGET_RSS_MIB = 15.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- processes this script starts --------------------------------------------------------------


class Processes:
    """Every long-running process started here, ended by its pid (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []

    def start(self, *args: Any, **kwargs: Any) -> subprocess.Popen:
        child = subprocess.Popen(*args, **kwargs)
        self.children.append(child)
        return child

    def end_all(self) -> None:
        for child in reversed(self.children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


# ---- the emulator ------------------------------------------------------------------------------


class Emulator:
    def __init__(self, processes: Processes, python: str, workdir: Path) -> None:
        self.stderr = open(workdir / "emulator.log", "wb")
        self.process = processes.start(
            [python, str(EMULATOR), "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            stdin=subprocess.DEVNULL,
        )
        line = self.process.stdout.readline().decode()
        if not line.startswith("LISTENING "):
            raise SystemExit(f"the emulator did not start (see {workdir / 'emulator.log'})")
        self.port = int(line.rsplit(":", 1)[1])

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        try:
            payload = None if body is None else json.dumps(body)
            conn.request(method, path, payload, {"Content-Type": "application/json"})
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def stats(self) -> dict[str, Any]:
        return self._request("GET", "/__emulator/stats")

    def logins(self) -> int:
        return int(self.stats()["logins"])

    def set_latency(self, login_ms: float, statement_ms: float) -> dict[str, Any]:
        return self._request(
            "POST", "/__emulator/options", {"login_delay_ms": login_ms, "statement_delay_ms": statement_ms}
        )

    def running_with(self, marker: str) -> bool:
        return any(marker in (sql or "") for sql in self.stats()["running_sql"])

    def release_waits(self, marker: str) -> int:
        return int(self._request("POST", "/__emulator/release-waits", {"containing": marker})["released"])


class RawSession:
    """A Snowflake session opened with one raw login request, for the baseline: a statement is
    one HTTP request on a kept-alive connection, nothing else."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
        login = {"data": {"LOGIN_NAME": "tester", "PASSWORD": "not-a-real-password", "ACCOUNT_NAME": "test"}}
        answer = self._post("/session/v1/login-request", login, {})
        self.token = answer["data"]["token"]
        self.sequence = 0

    def _post(self, path: str, body: Any, headers: dict[str, str]) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/snowflake", **headers}
        try:
            self.conn.request("POST", path, json.dumps(body), headers)
            response = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The emulator closes a connection idle for 30 s: open a new one, once.
            self.conn.close()
            self.conn.request("POST", path, json.dumps(body), headers)
            response = self.conn.getresponse()
        answer = json.loads(response.read())
        if not answer.get("success"):
            raise RuntimeError(f"raw request {path} failed: {answer}")
        return answer

    def statement(self, sql: str) -> float:
        self.sequence += 1
        body = {"sqlText": sql, "asyncExec": False, "sequenceId": self.sequence}
        auth = {"Authorization": f'Snowflake Token="{self.token}"'}
        started = time.perf_counter()
        self._post(f"/queries/v1/query-request?requestId={uuid.uuid4()}", body, auth)
        return time.perf_counter() - started


# ---- snowflaked's daemon -----------------------------------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("snowflaked", timeout=WAIT)
        self.path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT)
        self.sock.connect(self.path)


class Daemon:
    """`snowflaked serve` on a private socket, started by hand (READY=1 on our NOTIFY_SOCKET)."""

    def __init__(self, processes: Processes, binary: Path, env: dict[str, str], workdir: Path) -> None:
        self.socket = Path(env["SNOWFLAKED_SOCKET"])
        notify_path = workdir / "notify.sock"
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(notify_path))
        notify.settimeout(WAIT)
        self.log = open(workdir / "daemon.log", "wb")
        self.process = processes.start(
            [str(binary), "serve", "--socket", str(self.socket), "--idle-timeout", "30m"],
            env={**env, "NOTIFY_SOCKET": str(notify_path)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        try:
            while b"READY=1" not in notify.recv(4096).split(b"\n"):
                pass
        except socket.timeout:
            raise SystemExit(f"the daemon never said READY=1 (see {workdir / 'daemon.log'})")
        finally:
            notify.close()
        self.pid = self.process.pid

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = UnixHTTPConnection(self.socket)
        try:
            headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
            conn.request(method, path, None if body is None else json.dumps(body), headers)
            answer = conn.getresponse()
            return answer.status, json.loads(answer.read() or b"null")
        finally:
            conn.close()

    def query(self, sql: str) -> float:
        started = time.perf_counter()
        status, body = self.request("POST", "/v1/query", {"sql": sql})
        took = time.perf_counter() - started
        if status != 200:
            raise RuntimeError(f"daemon query failed: {status} {body}")
        return took

    def status(self) -> dict[str, Any]:
        return self.request("GET", "/v1/status")[1]

    def wait_idle(self) -> None:
        """Until no login is in flight (the pool's background warm-up logins are done)."""
        deadline = time.monotonic() + WAIT
        while self.status()["sessions"]["logging_in"] > 0:
            if time.monotonic() > deadline:
                raise SystemExit("the daemon's logins never finished")
            time.sleep(0.01)


# ---- the two MCP servers -----------------------------------------------------------------------


@dataclass
class Server:
    label: str
    command: str
    args: list[str]
    env: dict[str, str]
    sql_tool: str
    sql_argument: str
    # matches this server's processes in /proc/PID/cmdline
    cmdline_mark: str
    errlog: Any = None
    figures: dict[str, Any] = field(default_factory=dict)

    def params(self) -> StdioServerParameters:
        return StdioServerParameters(command=self.command, args=self.args, env=self.env)

    @contextlib.asynccontextmanager
    async def session(self):
        async with stdio_client(self.params(), errlog=self.errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session

    async def sql(self, session: ClientSession, sql: str, expect: str | None = None):
        """Runs `sql` through the server's SQL tool; a tool error, or a result whose text lacks
        `expect`, ends the benchmark (a fast wrong answer is no figure)."""
        result = await session.call_tool(self.sql_tool, {self.sql_argument: sql})
        text = "".join(getattr(block, "text", "") for block in result.content)
        if result.is_error:
            raise RuntimeError(f"{self.label}: {sql} failed: {text}")
        if expect is not None and expect not in text:
            raise RuntimeError(f"{self.label}: {sql} answered {text!r}, without {expect!r}")
        return result

    def pids(self) -> list[int]:
        """This server's processes that are children of this script, oldest first: the
        command line names `cmdline_mark` and ends with the server's arguments (`mcp`, so
        snowflaked's daemon, also a child, never counts)."""
        found = []
        me = os.getpid()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            args = [arg.encode() for arg in self.args]
            if (
                ppid == me
                and any(self.cmdline_mark.encode() in part for part in cmdline)
                and cmdline[len(cmdline) - len(args) :] == args
            ):
                found.append(int(entry))
        return sorted(found)


def memory(pid: int) -> dict[str, float]:
    """VmRSS, its peak VmHWM and its parts (RssAnon: heap and stacks; RssFile: the mapped
    binary and libraries) of `pid`, in MiB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            figures[key] = int(value.split()[0]) * 1024 / MIB
    return figures


# ---- the scenarios -----------------------------------------------------------------------------


async def first_result(server: Server, handshakes: list[float] | None = None) -> float:
    """Spawn → initialize → first `SELECT 1` result; the spawn + initialize part goes to
    `handshakes`."""
    started = time.perf_counter()
    async with server.session() as session:
        if handshakes is not None:
            handshakes.append(time.perf_counter() - started)
        await server.sql(session, "SELECT 1", expect="1")
        return time.perf_counter() - started


async def first_result_raw(server: Server) -> float:
    """Spawn → first `SELECT 1` result with a minimal JSON-RPC client written here (initialize,
    initialized, tools/call; nothing validated or listed): the server's own part of the SDK
    figure above, without the SDK client's work on the first result (it lists the tools and
    checks the result against the tool's output schema)."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        server.command,
        *server.args,
        env=server.env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=server.errlog,
    )

    async def send(message: dict[str, Any]) -> None:
        process.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
        await process.stdin.drain()

    async def answer(request_id: int) -> dict[str, Any]:
        while True:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=WAIT)
            if not line:
                raise RuntimeError(f"{server.label} closed stdout")
            message = json.loads(line)
            if message.get("id") == request_id:
                return message

    try:
        client = {"name": "bench", "version": "0"}
        await send({"id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": client}})
        await answer(1)
        await send({"method": "notifications/initialized"})
        call = {"name": server.sql_tool, "arguments": {server.sql_argument: "SELECT 1"}}
        await send({"id": 2, "method": "tools/call", "params": call})
        result = (await answer(2))["result"]
        took = time.perf_counter() - started
        if result.get("isError") or "1" not in json.dumps(result.get("content")):
            raise RuntimeError(f"{server.label}: SELECT 1 answered {result}")
        return took
    finally:
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout=WAIT)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()


def end_self_started(socket_path: Path) -> None:
    """Ends the daemon a `snowflaked mcp` started by itself (not our child: its parent was
    that server) by its pid, and waits until it is gone."""
    conn = UnixHTTPConnection(socket_path)
    try:
        conn.request("GET", "/v1/status", None, {"Authorization": "Bearer bench"})
        pid = json.loads(conn.getresponse().read())["pid"]
    finally:
        conn.close()
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + WAIT
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the self-started daemon {pid} did not exit")
        time.sleep(0.01)  # a process that is not our child gives no other signal


async def cold_first_result(server: Server) -> float:
    """Spawn → first result with no daemon running: `snowflaked mcp` starts one itself, which
    logs in (one login's latency) before the statement runs. The daemon is ended after."""
    try:
        return await first_result(server)
    finally:
        await asyncio.to_thread(end_self_started, Path(server.env["SNOWFLAKED_SOCKET"]))


async def warm_calls(servers: list[Server], daemon: Daemon, raw: RawSession, rounds: int) -> dict[str, list[float]]:
    """Interleaved rounds: the raw statement, the daemon's API, then each server's tool call."""
    times: dict[str, list[float]] = {"raw": [], "daemon": []}
    async with contextlib.AsyncExitStack() as stack:
        sessions = []
        for server in servers:
            session = await stack.enter_async_context(server.session())
            for _ in range(3):  # warm: first calls, connection set-up, caches
                await server.sql(session, "SELECT 1")
            sessions.append((server, session))
            times[server.label] = []
            # RSS of one server process that has served calls, while its session is open.
            pids = server.pids()
            if len(pids) != 1:
                raise RuntimeError(f"{server.label}: expected one server process, found {pids}")
            server.figures["rss"] = memory(pids[0])
        for _ in range(3):
            raw.statement("SELECT 1")
            daemon.query("SELECT 1")
        for _ in range(rounds):
            times["raw"].append(raw.statement("SELECT 1"))
            times["daemon"].append(await asyncio.to_thread(daemon.query, "SELECT 1"))
            for server, session in sessions:
                started = time.perf_counter()
                await server.sql(session, "SELECT 1")
                times[server.label].append(time.perf_counter() - started)
    return times


async def fleet(server: Server, emulator: Emulator, clients: int, calls: int) -> dict[str, Any]:
    """`clients` MCP clients started at once, each running `calls` statements one after another."""
    logins_before = await asyncio.to_thread(emulator.logins)
    started = time.perf_counter()
    finished: list[float] = []

    async def one(client: int) -> None:
        async with server.session() as session:
            for call in range(calls):
                value = 1000 + client * 100 + call
                await server.sql(session, f"SELECT {value}", expect=str(value))
            finished.append(time.perf_counter())

    await asyncio.gather(*(one(i) for i in range(clients)))
    logins = await asyncio.to_thread(emulator.logins) - logins_before
    return {"seconds": max(finished) - started, "logins": logins}


async def ping_during_statement(server: Server, emulator: Emulator, wait_s: int) -> dict[str, Any]:
    """A ping sent while `SYSTEM$WAIT(wait_s)` runs: its latency, and whether it was answered
    while the statement was still running in the emulator (a server that blocks answers it only
    after the statement ended). The statement is released (ended early) once that is known."""
    marker = f"PING_{uuid.uuid4().hex[:12].upper()}"
    async with server.session() as session:
        statement = asyncio.create_task(server.sql(session, f"SELECT SYSTEM$WAIT({wait_s}) AS {marker}"))
        deadline = time.monotonic() + WAIT
        while not await asyncio.to_thread(emulator.running_with, marker):
            if time.monotonic() > deadline or statement.done():
                raise RuntimeError(f"{server.label}: the SYSTEM$WAIT statement never ran")
            await asyncio.sleep(0.005)
        sent = time.perf_counter()
        await asyncio.wait_for(session.send_ping(), timeout=wait_s + WAIT)
        answered = time.perf_counter() - sent
        during = await asyncio.to_thread(emulator.running_with, marker)
        await asyncio.to_thread(emulator.release_waits, marker)
        await asyncio.wait_for(statement, timeout=WAIT)
    return {"answered_during_statement": during, "ping_ms": answered * 1000.0}


# ---- set-up ------------------------------------------------------------------------------------


def labs_venv(path: Path, python: str) -> Path:
    """The Labs server's own venv, (re)made when the pinned requirements change."""
    stamp = path / ".requirements-sha256"
    digest = hashlib.sha256(LABS_REQUIREMENTS.read_bytes()).hexdigest()
    if not (stamp.exists() and stamp.read_text() == digest):
        log(f"installing snowflake-labs-mcp into {path} (pinned: {LABS_REQUIREMENTS.relative_to(ROOT)})")
        subprocess.run([python, "-m", "venv", "--clear", str(path)], check=True)
        subprocess.run(
            [str(path / "bin/pip"), "install", "--quiet", "--disable-pip-version-check", "-r", str(LABS_REQUIREMENTS)],
            check=True,
        )
        stamp.write_text(digest)
    return path / "bin/snowflake-labs-mcp"


def write_configs(workdir: Path, port: int) -> tuple[Path, Path]:
    """Snowflake's connections.toml (read by both servers) and the Labs service config."""
    snowflake_home = workdir / "snowflake"
    snowflake_home.mkdir()
    connections = snowflake_home / "connections.toml"
    connections.write_text(
        "[default]\n"
        'account = "test"\n'
        'user = "tester"\n'
        'password = "not-a-real-password"\n'
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        'protocol = "http"\n'
    )
    connections.chmod(0o600)  # the Python connector warns about readable credentials files
    services = workdir / "labs-services.yaml"
    services.write_text(
        "# snowflake-labs-mcp's service config: only its SQL tool, SELECT allowed.\n"
        "other_services:\n"
        "  object_manager: false\n"
        "  query_manager: true\n"
        "  semantic_manager: false\n"
        "sql_statement_permissions:\n"
        "  - Select: true\n"
    )
    return snowflake_home, services


# ---- the report --------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(args: argparse.Namespace, results: dict[str, Any], labs: bool) -> None:
    sd, lb = results["snowflaked"], results.get("labs")
    rows: list[tuple[str, str, str, str, str]] = []

    def row(what: str, mine: str, theirs: str = "", ratio: str = "", target: str = "") -> None:
        rows.append((what, mine, theirs, ratio, target))

    def times(a: float, b: float | None) -> str:
        return f"{b / a:.1f}×" if b is not None and a > 0 else ""

    f = results["first_result"]
    row(
        f"spawn → first SELECT 1 result (median of {len(f['snowflaked'])})",
        ms(sd["first_result_s"]),
        ms(lb["first_result_s"]) if labs else "",
        times(sd["first_result_s"], lb["first_result_s"] if labs else None),
        f"≤ {ms(TARGET_FIRST_RESULT_S)}: {verdict(sd['first_result_s'] <= TARGET_FIRST_RESULT_S)}",
    )
    row(
        "  of which spawn + initialize",
        ms(sd["handshake_s"]),
        ms(lb["handshake_s"]) if labs else "",
    )
    row(
        "  the server alone (a raw JSON-RPC client, no SDK)",
        ms(sd["first_result_raw_s"]),
    )
    row(
        f"  the same, no daemon running (self-start + login; median of {len(f['snowflaked_cold'])})",
        ms(sd["first_result_cold_s"]),
        "",
        times(sd["first_result_cold_s"], lb["first_result_s"] if labs else None),
    )
    w = results["warm"]
    base = w["raw_s"]
    row(
        f"warm SELECT 1 tool call (median of {args.rounds})",
        f"{ms(sd['warm_s'])} = {sd['warm_s'] / base:.3f}× base",
        f"{ms(lb['warm_s'])} = {lb['warm_s'] / base:.3f}× base" if labs else "",
        times(sd["warm_s"], lb["warm_s"] if labs else None),
        f"≤ {TARGET_WARM_RATIO}× base: {verdict(sd['warm_s'] / base <= TARGET_WARM_RATIO)}",
    )
    row("  base: raw statement on an open session", ms(base))
    row(
        "  snowflaked's HTTP API, same statement",
        f"{ms(w['daemon_s'])} = {w['daemon_s'] / base:.3f}× base",
    )
    fl = results["fleet"]
    row(
        f"{args.clients} clients at once × {args.calls} queries",
        ms(sd["fleet"]["seconds"]),
        ms(lb["fleet"]["seconds"]) if labs else "",
        times(sd["fleet"]["seconds"], lb["fleet"]["seconds"] if labs else None),
        f"≤ {ms(TARGET_FLEET_S)}: {verdict(sd['fleet']['seconds'] <= TARGET_FLEET_S)}",
    )
    row(
        "  Snowflake logins during it",
        f"{sd['fleet']['logins']} (pool {args.pool_size})",
        str(lb["fleet"]["logins"]) if labs else "",
        "",
        f"≤ pool: {verdict(sd['fleet']['logins'] <= args.pool_size)}",
    )
    row(
        "  logins since the daemon started",
        f"{fl['daemon_logins_total']}",
    )
    rss = sd["rss"]
    row(
        "RSS of one server process (peak; heap+stacks)",
        f"{rss['VmRSS']:.1f} MiB ({rss['VmHWM']:.1f}; anon {rss['RssAnon']:.1f})",
        f"{lb['rss']['VmRSS']:.1f} MiB ({lb['rss']['VmHWM']:.1f}; anon {lb['rss']['RssAnon']:.1f})"
        if labs and lb["rss"]
        else "",
        times(rss["VmRSS"], lb["rss"]["VmRSS"] if labs and lb["rss"] else None),
        f"≤ {TARGET_RSS_MIB:.0f} MiB: {verdict(rss['VmRSS'] <= TARGET_RSS_MIB)}",
    )
    row("  the shared daemon (one per user)", f"{results['daemon_rss']['VmRSS']:.1f} MiB")

    def ping(p: dict[str, Any]) -> str:
        return f"{'yes' if p['answered_during_statement'] else 'NO'}, {ms(p['ping_ms'] / 1000)}"

    row(
        f"ping answered while SYSTEM$WAIT({args.wait_s}) runs",
        ping(sd["ping"]),
        ping(lb["ping"]) if labs else "",
        "",
        f"yes: {verdict(sd['ping']['answered_during_statement'])}",
    )

    header = ("", "snowflaked mcp", "snowflake-labs-mcp" if labs else "", "labs/sfd" if labs else "", "target")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(5)]
    print()
    print(
        f"MCP benchmark: emulator latency +{args.login_ms:.0f} ms/login, +{args.statement_ms:.0f} ms/statement; "
        f"snowflaked pool max {args.pool_size}; {os.cpu_count()} CPUs, load average "
        f"{results['load_before']:.1f} before, {os.getloadavg()[0]:.1f} after (other work on the machine skews every figure)"
    )
    for r in [header] + rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())
    if labs and "labs_note" in results:
        print(results["labs_note"])
    print(json.dumps(results, separators=(",", ":")))


# ---- main --------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, processes: Processes, workdir: Path) -> dict[str, Any]:
    emulator = Emulator(processes, args.emulator_python, workdir)
    snowflake_home, services = write_configs(workdir, emulator.port)
    in_force = emulator.set_latency(args.login_ms, args.statement_ms)
    log(f"emulator on port {emulator.port}, latency {in_force}")

    run_dir = workdir / "run"
    run_dir.mkdir(mode=0o700)
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    sfd_env = {
        **base_env,
        "HOME": str(workdir),
        "XDG_RUNTIME_DIR": str(run_dir),
        "XDG_STATE_HOME": str(workdir / "state"),
        "XDG_CONFIG_HOME": str(workdir / "config"),
        "SNOWFLAKE_HOME": str(snowflake_home),
        "SNOWFLAKED_SOCKET": str(run_dir / "api.sock"),
        "SNOWFLAKED_POOL__MAX_SIZE": str(args.pool_size),
        "RUST_LOG": "warn",
    }
    errlog = open(workdir / "servers.log", "w")
    servers = [
        Server(
            label="snowflaked",
            command=str(args.snowflaked),
            args=["mcp"],
            env=sfd_env,
            sql_tool="query",
            sql_argument="sql",
            cmdline_mark=str(args.snowflaked),
            errlog=errlog,
        )
    ]
    if not args.skip_labs:
        labs_binary = labs_venv(args.labs_venv, args.labs_python)
        servers.append(
            Server(
                label="labs",
                command=str(labs_binary),
                args=["--service-config-file", str(services)],
                env={**base_env, "HOME": str(workdir), "SNOWFLAKE_HOME": str(snowflake_home)},
                sql_tool="run_snowflake_query",
                sql_argument="statement",
                cmdline_mark="snowflake-labs-mcp",
                errlog=errlog,
            )
        )
    sfd = servers[0]
    cold_run = workdir / "run-cold"
    cold_run.mkdir(mode=0o700)
    cold = Server(
        label="snowflaked (no daemon yet)",
        command=str(args.snowflaked),
        args=["mcp"],
        env={
            **sfd_env,
            "XDG_RUNTIME_DIR": str(cold_run),
            "XDG_STATE_HOME": str(workdir / "state-cold"),
            "SNOWFLAKED_SOCKET": str(cold_run / "api.sock"),
        },
        sql_tool="query",
        sql_argument="sql",
        cmdline_mark=str(args.snowflaked),
        errlog=errlog,
    )

    daemon = Daemon(processes, args.snowflaked, sfd_env, workdir)
    # Warm: a first statement logs in; then wait for the pool's background logins to settle.
    daemon.query("SELECT 1")
    daemon.wait_idle()
    results: dict[str, Any] = {
        "load_before": os.getloadavg()[0],
        "settings": {
            "login_ms": args.login_ms,
            "statement_ms": args.statement_ms,
            "pool_size": args.pool_size,
            "clients": args.clients,
            "calls": args.calls,
        }
    }

    # 1. spawn → first result
    firsts: dict[str, list[float]] = {}
    for server in servers:
        reps = args.reps if server is sfd else args.labs_reps
        log(f"{server.label}: spawn → first result, {reps} times")
        handshakes: list[float] = []
        firsts[server.label] = [await first_result(server, handshakes) for _ in range(reps)]
        server.figures["first_result_s"] = statistics.median(firsts[server.label])
        server.figures["handshake_s"] = statistics.median(handshakes)
    log(f"snowflaked: spawn → first result with a raw JSON-RPC client, {args.reps} times")
    firsts["snowflaked_raw"] = [await first_result_raw(sfd) for _ in range(args.reps)]
    sfd.figures["first_result_raw_s"] = statistics.median(firsts["snowflaked_raw"])
    log(f"snowflaked: spawn → first result with no daemon running, {args.labs_reps} times")
    firsts["snowflaked_cold"] = [await cold_first_result(cold) for _ in range(args.labs_reps)]
    sfd.figures["first_result_cold_s"] = statistics.median(firsts["snowflaked_cold"])
    results["first_result"] = firsts

    # 2. warm call (and RSS of one server process that served calls)
    log(f"warm SELECT 1: {args.rounds} interleaved rounds")
    warm = await warm_calls(servers, daemon, RawSession(emulator.port), args.rounds)
    results["warm"] = {"raw_s": statistics.median(warm["raw"]), "daemon_s": statistics.median(warm["daemon"])}
    for server in servers:
        server.figures["warm_s"] = statistics.median(warm[server.label])
    results["warm_samples"] = warm

    # 3. a fleet of clients at once
    for server in servers:
        log(f"{server.label}: {args.clients} clients at once × {args.calls} queries")
        server.figures["fleet"] = await fleet(server, emulator, args.clients, args.calls)
    results["fleet"] = {"daemon_logins_total": daemon.status()["sessions"]["logins"]}
    results["daemon_rss"] = memory(daemon.pid)

    # 5. ping during a statement
    for server in servers:
        log(f"{server.label}: ping while a statement runs")
        server.figures["ping"] = await ping_during_statement(server, emulator, args.wait_s)

    for server in servers:
        results[server.label] = server.figures
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--snowflaked", type=Path, default=ROOT / "target/release/snowflaked")
    p.add_argument("--emulator-python", default=sys.executable, help="Python with fakesnow (the .venv)")
    p.add_argument("--labs-venv", type=Path, default=ROOT / "target/bench-venv")
    p.add_argument("--labs-python", default="python3", help="makes the Labs server's venv")
    p.add_argument("--skip-labs", action="store_true", help="measure snowflaked alone")
    p.add_argument("--login-ms", type=float, default=500.0)
    p.add_argument("--statement-ms", type=float, default=60.0)
    p.add_argument("--pool-size", type=int, default=8)
    p.add_argument("--reps", type=int, default=10, help="spawn → first result, snowflaked")
    p.add_argument("--labs-reps", type=int, default=3, help="spawn → first result, Labs server")
    p.add_argument("--rounds", type=int, default=30, help="warm calls per server")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--wait-s", type=int, default=3, help="the SYSTEM$WAIT of the ping scenario")
    args = p.parse_args()
    args.snowflaked = args.snowflaked.resolve()
    if not args.snowflaked.exists():
        raise SystemExit(f"no binary at {args.snowflaked}: cargo build --release --locked")

    processes = Processes()
    with tempfile.TemporaryDirectory(prefix="sfd-mcp-bench-") as tmp:
        workdir = Path(tmp)
        try:
            results = asyncio.run(run(args, processes, workdir))
        except BaseException:
            for name in ("servers.log", "daemon.log", "emulator.log"):
                path = workdir / name
                if path.exists():
                    log(f"---- {name} (last lines)\n" + "\n".join(path.read_text(errors="replace").splitlines()[-30:]))
            raise
        finally:
            processes.end_all()
    report(args, results, labs=not args.skip_labs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
