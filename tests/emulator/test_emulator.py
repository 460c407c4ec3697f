"""Checks of the Snowflake emulator adapter (snowflake_emulator.py) against real clients.

This file owns the emulator's own test suite. It starts the adapter as a subprocess on port 0,
waits for its `LISTENING` line, and drives it two ways: with the official Python connector
(snowflake-connector-python 4.8.1), and with raw HTTP requests shaped like the ones
snowflake-connector-rs 1.1.1 sends (no SESSION_PARAMETERS, login context as query parameters,
`requestId` on query and abort), so the exact JSON wire encoding the Rust crate parses is
asserted too. No timing is asserted; the latency test only prints what it measured.

Run: PYTHONDONTWRITEBYTECODE=1 /tmp/fsvenv/bin/python -m pytest -p no:cacheprovider -q tests/emulator/test_emulator.py
"""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import http.client
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

os.environ["SNOWFLAKE_DISABLE_PLATFORM_DETECTION"] = "true"  # else logins probe cloud metadata

import snowflake.connector  # noqa: E402
from snowflake.connector.errors import ProgrammingError  # noqa: E402

HERE = Path(__file__).resolve().parent
EMULATOR = HERE / "snowflake_emulator.py"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


# --------------------------------------------------------------------------------------------
# harness
# --------------------------------------------------------------------------------------------


class EmulatorProcess:
    """The adapter as a subprocess; ready once it printed its LISTENING line."""

    def __init__(self, *flags: str) -> None:
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, str(EMULATOR), "--host", "127.0.0.1", "--port", "0", *flags],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        # a reader thread lets the wait for the line have a timeout
        threading.Thread(target=lambda: lines.put(self.proc.stdout.readline()), daemon=True).start()
        try:
            self.line = lines.get(timeout=START_TIMEOUT).rstrip("\n")
        except queue.Empty:
            self.stop()
            raise AssertionError(f"emulator printed nothing in {START_TIMEOUT}s: {self.errors()}")
        m = re.fullmatch(r"LISTENING 127\.0\.0\.1:(\d+)", self.line)
        if not m:
            self.stop()
            raise AssertionError(f"unexpected readiness line {self.line!r}: {self.errors()}")
        self.port = int(m[1])

    def errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class Raw:
    """Minimal HTTP client sending what snowflake-connector-rs sends."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        gzipped: bool = False,
        timeout: float = 60.0,
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Accept": "application/snowflake", "Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f'Snowflake Token="{token}"'
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            if gzipped:
                data = gzip.compress(data)
                headers["Content-Encoding"] = "gzip"
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw.decode(errors="replace")

    def login(self, gzipped: bool = False, **context: str) -> tuple[str, dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in context.items())
        body = {"data": {"ACCOUNT_NAME": "acct", "LOGIN_NAME": "user", "PASSWORD": "pw"}}  # no SESSION_PARAMETERS
        status, payload = self.request("POST", f"/session/v1/login-request?{query}", body, gzipped=gzipped)
        assert status == 200 and payload["success"], payload
        return payload["data"]["token"], payload

    def query(
        self, token: str, sql: str, request_id: str | None = None, gzipped: bool = False
    ) -> tuple[int, dict[str, Any]]:
        rid = request_id or str(uuid.uuid4())
        return self.request("POST", f"/queries/v1/query-request?requestId={rid}", {"sqlText": sql}, token, gzipped)

    def ok(self, token: str, sql: str) -> dict[str, Any]:
        status, payload = self.query(token, sql)
        assert status == 200 and payload["success"], payload
        return payload["data"]

    def abort(self, token: str, request_id: str) -> tuple[int, dict[str, Any]]:
        return self.request(
            "POST", f"/queries/v1/abort-request?requestId={uuid.uuid4()}", {"requestId": request_id}, token
        )

    def stats(self) -> dict[str, Any]:
        return self.request("GET", "/__emulator/stats")[1]

    def expire(self) -> dict[str, Any]:
        status, payload = self.request("POST", "/__emulator/expire-sessions")
        assert status == 200, payload
        return payload


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll a real condition until it holds, failing after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Background:
    """Run a blocking call on a thread; `result()` joins it with a timeout."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._out: queue.Queue[tuple[bool, Any]] = queue.Queue()

        def run() -> None:
            try:
                self._out.put((True, fn()))
            except BaseException as e:  # handed to the test thread
                self._out.put((False, e))

        threading.Thread(target=run, daemon=True).start()

    def result(self, timeout: float = 30.0) -> Any:
        ok, value = self._out.get(timeout=timeout)
        if not ok:
            raise value
        return value


@pytest.fixture(scope="module")
def emulator() -> Any:
    emu = EmulatorProcess()
    yield emu
    rc = emu.stop()
    assert rc == 0, f"emulator exited {rc}: {emu.errors()}"


@pytest.fixture
def raw(emulator: EmulatorProcess) -> Raw:
    return Raw(emulator.port)


def connect(port: int, **kw: Any) -> Any:
    return snowflake.connector.connect(
        user="user", password="pw", account="acct", host="127.0.0.1", port=port, protocol="http", login_timeout=30, **kw
    )


def fresh_db(run: Callable[[str], Any]) -> str:
    """All sessions share one database server: every test works in its own database."""
    name = unique_name()
    run(f"CREATE DATABASE {name}")
    # fakesnow neither creates PUBLIC nor switches to the new database (Snowflake does both)
    run(f"CREATE SCHEMA {name}.PUBLIC")
    run(f"USE SCHEMA {name}.PUBLIC")
    return name


TYPES_SQL = """
select 42 i, 12345678901234567890.123::number(38,3) d, -1.5::number(5,2) nd, 1.5::float r,
       'héllo ☃ 😀' t, true b, false bf, null n,
       '2024-06-15'::date dt, '1969-12-31'::date dneg, '01:02:03.5'::time tm,
       '2024-06-15 12:30:45.123456'::timestamp_ntz ntz, '1969-12-31 23:59:58.5'::timestamp_ntz ntzneg,
       '2024-06-15 12:30:45+00:00'::timestamp_tz tz,
       parse_json('{"a":[1,2],"s":"x"}') v, parse_json('[1,"two",null]') arr, object_construct('k','v') obj,
       to_binary('48656C6C6F','HEX') bin
"""


# --------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------


def test_readiness_line_and_clean_exit_on_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        emu = EmulatorProcess()
        raw = Raw(emu.port)
        assert raw.stats()["logins"] == 0
        # a statement still waiting when the signal comes is answered "cancelled", not dropped
        token, _ = raw.login()
        waiting = Background(lambda: raw.query(token, "select system$wait(600)"))
        wait_until(lambda: raw.stats()["running"] == 1, "the wait to be running")
        wait_until(lambda: raw.stats()["running_sql"] == ["select system$wait(600)"], "its text to be known")
        assert emu.stop(sig) == 0, emu.errors()
        assert waiting.result()[1]["code"] == "000604"


def unique_name() -> str:
    return f"T_{uuid.uuid4().hex[:10].upper()}"


def test_json_rowset_wire_encoding(raw: Raw) -> None:
    # fakesnow installs its SQL macros (TO_TIMESTAMP, OBJECT_CONSTRUCT, ...) per database, so
    # these only work with a current database
    token, _ = raw.login(databaseName=unique_name(), schemaName="PUBLIC")
    data = raw.ok(token, TYPES_SQL)
    assert data["queryResultFormat"] == "json"
    assert "rowsetBase64" not in data
    assert data["total"] == data["returned"] == len(data["rowset"]) == 1
    row = dict(zip([c["name"] for c in data["rowtype"]], data["rowset"][0]))
    assert all(v is None or isinstance(v, str) for v in row.values())
    expected = {
        "I": "42",
        "D": "12345678901234567890.123",
        "ND": "-1.50",
        "R": "1.5",
        "T": "héllo ☃ 😀",
        "B": "1",
        "BF": "0",
        "N": None,
        "DT": str((dt.date(2024, 6, 15) - dt.date(1970, 1, 1)).days),
        "DNEG": "-1",
        "TM": "3723.500000000",
        "NTZ": "1718454645.123456000",
        "NTZNEG": "-1.500000000",
        "TZ": "1718454645.000000000 1440",
        "BIN": "48656C6C6F",
    }
    for name, value in expected.items():
        assert row[name] == value, (name, row[name])
    assert json.loads(row["V"]) == {"a": [1, 2], "s": "x"}
    assert json.loads(row["ARR"]) == [1, "two", None]
    assert json.loads(row["OBJ"]) == {"k": "v"}

    # NULLs of every kind are JSON null (fakesnow's Arrow turns NULL timestamps into 1970-01-01)
    data = raw.ok(
        token,
        "select x::timestamp_ntz a, x::timestamp_tz b, x::time c, x::date d, x::number(10,2) e, x::boolean f"
        " from (values (null)) v(x)",
    )
    assert data["rowset"] == [[None] * 6]

    # many rows: counts match
    data = raw.ok(token, "select range r from range(1000)")
    assert data["total"] == data["returned"] == 1000
    assert data["rowset"][999] == ["999"]


def test_types_round_trip_python_connector(emulator: EmulatorProcess) -> None:
    with connect(emulator.port, database=unique_name(), schema="PUBLIC") as con:
        cur = con.cursor()
        cur.execute(TYPES_SQL)
        row = dict(zip([d.name for d in cur.description], cur.fetchone()))
    assert row["I"] == 42
    assert row["D"] == decimal.Decimal("12345678901234567890.123")
    assert row["ND"] == decimal.Decimal("-1.50")
    assert row["R"] == 1.5
    assert row["T"] == "héllo ☃ 😀"
    assert row["B"] is True and row["BF"] is False
    assert row["N"] is None
    assert row["DT"] == dt.date(2024, 6, 15) and row["DNEG"] == dt.date(1969, 12, 31)
    assert row["TM"] == dt.time(1, 2, 3, 500000)
    assert row["NTZ"] == dt.datetime(2024, 6, 15, 12, 30, 45, 123456)
    assert row["NTZNEG"] == dt.datetime(1969, 12, 31, 23, 59, 58, 500000)
    assert row["TZ"] == dt.datetime(2024, 6, 15, 12, 30, 45, tzinfo=dt.timezone.utc)
    assert json.loads(row["V"]) == {"a": [1, 2], "s": "x"}
    assert json.loads(row["ARR"]) == [1, "two", None]
    assert json.loads(row["OBJ"]) == {"k": "v"}
    assert row["BIN"] == b"Hello"


def test_login_without_session_parameters_and_gzip_bodies(raw: Raw) -> None:
    token, payload = raw.login(gzipped=True, databaseName="nosuch_ok", schemaName="s")
    assert payload["data"]["sessionInfo"]["databaseName"] == "NOSUCH_OK"
    status, payload = raw.query(token, "select 'zipped' z", gzipped=True)
    assert status == 200 and payload["data"]["rowset"] == [["zipped"]]
    status, payload = raw.request("POST", "/session/heartbeat", {}, token, gzipped=True)
    assert status == 200 and payload["success"], payload


def test_use_database_schema_and_current_database(emulator: EmulatorProcess) -> None:
    with connect(emulator.port) as con:
        cur = con.cursor()
        db = fresh_db(cur.execute)
        cur.execute("create schema other")
        cur.execute(f"use database {db}")
        cur.execute("use schema other")
        cur.execute("select current_database(), current_schema()")
        assert cur.fetchone() == (db, "OTHER")
        cur.execute("create table t (x int)")
        cur.execute("insert into t values (1), (2)")
        assert cur.fetchone() == (2,)
        cur.execute("select sum(x) from t")
        assert cur.fetchone() == (3,)


def test_warehouse_and_role_tracking_raw(raw: Raw) -> None:
    token, payload = raw.login(warehouse="my_wh", roleName="analyst")
    assert payload["data"]["sessionInfo"]["warehouseName"] == "MY_WH"
    assert payload["data"]["sessionInfo"]["roleName"] == "ANALYST"
    data = raw.ok(token, "select current_warehouse(), current_role(), 'current_role()' lit")
    assert [c["name"] for c in data["rowtype"]] == ["CURRENT_WAREHOUSE()", "CURRENT_ROLE()", "LIT"]
    assert data["rowset"] == [["MY_WH", "ANALYST", "current_role()"]]
    assert data["finalWarehouseName"] == "MY_WH" and data["finalRoleName"] == "ANALYST"

    data = raw.ok(token, 'USE WAREHOUSE "Mixed Case"')
    assert data["finalWarehouseName"] == "Mixed Case"
    raw.ok(token, "use role sysadmin")
    raw.ok(token, "use secondary roles all")  # accepted, ignored
    data = raw.ok(token, "select current_warehouse() w, current_role() r")
    assert data["rowset"] == [["Mixed Case", "SYSADMIN"]]

    # a session that never chose: no warehouse, role PUBLIC
    other, _ = raw.login()
    data = raw.ok(other, "select current_warehouse() w, current_role() r")
    assert data["rowset"] == [[None, "PUBLIC"]]
    assert data["finalWarehouseName"] is None and data["finalRoleName"] == "PUBLIC"


def test_session_timezone_and_timestamp_ltz(raw: Raw) -> None:
    token, _ = raw.login()
    sql = "select '2024-01-01 12:00:00 +00:00'::timestamp_ltz l, '2024-01-01 12:00:00 +00:00'::timestamp_tz t, 1 n"
    data = raw.ok(token, sql)
    assert [c["type"] for c in data["rowtype"]] == ["timestamp_ltz", "timestamp_tz", "fixed"]
    # LTZ is an instant (epoch seconds); TZ carries its offset index
    assert data["rowset"] == [["1704110400.000000000", "1704110400.000000000 1440", "1"]]

    raw.ok(token, "ALTER SESSION SET TIMEZONE = 'Asia/Tokyo'")
    shown = raw.ok(token, "SHOW PARAMETERS LIKE 'TIMEZONE' IN SESSION")
    names = [c["name"] for c in shown["rowtype"]]
    row = dict(zip(names, shown["rowset"][0]))
    assert row["value"] == "Asia/Tokyo" and row["level"] == "SESSION"

    other, _ = raw.login()
    shown = raw.ok(other, "SHOW PARAMETERS LIKE 'TIMEZONE' IN SESSION")
    assert dict(zip(names, shown["rowset"][0]))["value"] == "Etc/UTC", "per session"

    raw.ok(token, "alter session unset timezone")
    shown = raw.ok(token, "SHOW PARAMETERS LIKE 'TIMEZONE' IN SESSION")
    assert dict(zip(names, shown["rowset"][0]))["value"] == "Etc/UTC"


def test_current_warehouse_after_use_warehouse_python(emulator: EmulatorProcess) -> None:
    with connect(emulator.port, warehouse="wh_one") as con:
        cur = con.cursor()
        cur.execute("select current_warehouse()")
        assert cur.fetchone() == ("WH_ONE",)
        assert cur.description[0].name == "CURRENT_WAREHOUSE()"
        cur.execute("use warehouse wh_two")
        cur.execute("select current_warehouse()")
        assert cur.fetchone() == ("WH_TWO",)


def test_sql_error_carries_query_id_and_code(emulator: EmulatorProcess, raw: Raw) -> None:
    db = unique_name()
    with connect(emulator.port, database=db, schema="PUBLIC") as con:
        cur = con.cursor()
        with pytest.raises(ProgrammingError) as err:
            cur.execute("select * from no_such_table_anywhere")
    assert err.value.errno == 2003
    assert err.value.sqlstate == "42S02"
    assert err.value.sfqid

    token, _ = raw.login(databaseName=db, schemaName="PUBLIC")
    status, payload = raw.query(token, "select * from no_such_table_anywhere")
    assert status == 200 and payload["success"] is False
    assert payload["code"] == "002003" and payload["message"]
    assert payload["data"]["queryId"] and payload["data"]["sqlState"] == "42S02"

    # SQL fakesnow cannot run (it answers HTTP 500) is a SQL error with a query id, like Snowflake
    status, payload = raw.query(token, "select 1; select 2")
    assert status == 200 and payload["success"] is False, payload
    assert payload["code"] and payload["data"]["queryId"]


def test_system_wait_answers_like_snowflake(raw: Raw) -> None:
    token, _ = raw.login()
    data = raw.ok(token, "SELECT SYSTEM$WAIT(0.05)")
    assert data["rowtype"][0]["name"] == "SYSTEM$WAIT(0.05)"
    assert data["rowtype"][0]["type"] == "text"
    assert data["rowset"] == [["waited 0.05 seconds"]]
    assert data["total"] == data["returned"] == 1 and data["queryId"]
    data = raw.ok(token, "select system$wait(20, 'MILLISECONDS')")
    assert data["rowset"] == [["waited 20 milliseconds"]]
    # only real calls wait: a string mentioning it is plain data
    data = raw.ok(token, "select 'SYSTEM$WAIT(600)' s")
    assert data["rowset"] == [["SYSTEM$WAIT(600)"]]


def test_system_wait_is_cancelled_by_abort_request(raw: Raw) -> None:
    token, _ = raw.login()
    before = raw.stats()
    rid = str(uuid.uuid4())
    waiting = Background(lambda: raw.query(token, "select system$wait(600)", request_id=rid))
    wait_until(lambda: raw.stats()["running"] > before["running"], "the wait to be running")

    # neither other sessions nor the same session are blocked meanwhile
    other, _ = raw.login()
    assert raw.ok(other, "select 1 x")["rowset"] == [["1"]]
    assert raw.ok(token, "select 2 x")["rowset"] == [["2"]]

    status, ack = raw.abort(token, rid)
    assert status == 200 and ack["success"] is True
    status, payload = waiting.result()
    assert status == 200
    assert payload["success"] is False
    assert payload["code"] == "000604"
    assert payload["message"] == "SQL execution canceled"
    assert payload["data"]["sqlState"] == "57014" and payload["data"]["queryId"]
    after = raw.stats()
    assert after["cancelled"] == before["cancelled"] + 1
    assert rid in after["cancelled_request_ids"]


def test_abort_that_overtakes_its_statement(raw: Raw) -> None:
    token, _ = raw.login()
    rid = str(uuid.uuid4())
    assert raw.abort(token, rid)[1]["success"] is True
    status, payload = raw.query(token, "select system$wait(600)", request_id=rid)
    assert payload["code"] == "000604", payload
    # aborting a finished statement is acknowledged and changes nothing
    done = str(uuid.uuid4())
    raw.query(token, "select 1", request_id=done)
    assert raw.abort(token, done)[1]["success"] is True
    status, payload = raw.query(token, "select 3 x", request_id=done)
    assert payload["success"] is True


def test_python_connector_cancels_system_wait(emulator: EmulatorProcess) -> None:
    with connect(emulator.port) as con:
        cur = con.cursor()
        # the connector's own timeout sends abort-request with the statement's requestId
        with pytest.raises(ProgrammingError) as err:
            cur.execute("select system$wait(600)", timeout=1)
        assert err.value.errno == 604
        cur.execute("select 1")
        assert cur.fetchone() == (1,)


def test_statements_on_one_session_may_overlap(raw: Raw) -> None:
    # fakesnow alone fails overlapping statements of one session with HTTP 500
    token, _ = raw.login()

    def many(n: int) -> list[Any]:
        return [raw.ok(token, f"select {n} * {i} x")["rowset"] for i in range(15)]

    runs = [Background(lambda n=n: many(n)) for n in range(1, 4)]
    for n, run in enumerate(runs, start=1):
        assert run.result() == [[[str(n * i)]] for i in range(15)]


def test_expiry_control(emulator: EmulatorProcess, raw: Raw) -> None:
    token, _ = raw.login()
    raw.ok(token, "select 1")
    with connect(emulator.port) as con:
        cur = con.cursor()
        cur.execute("select 1")
        expired = raw.expire()
        assert expired["expired"] >= 2
        # the Python connector answers 390112 by renewing the session, which the emulator cannot
        # do (no master token): it then raises 390114 and the user logs in again
        with pytest.raises(ProgrammingError) as err:
            cur.execute("select 1")
        assert err.value.errno == 390114

    for _ in range(2):  # stays expired
        status, payload = raw.query(token, "select 1")
        assert status == 200
        assert payload["success"] is False
        assert payload["code"] == "390112"
        assert payload["message"] == "Your session has expired. Please login again."
        assert payload["data"]["queryId"]
    assert raw.abort(token, str(uuid.uuid4()))[1]["code"] == "390112"
    assert raw.request("POST", "/session/heartbeat", {}, token)[1]["code"] == "390112"

    fresh, _ = raw.login()
    assert raw.ok(fresh, "select 5 x")["rowset"] == [["5"]]
    assert raw.stats()["active_sessions"] >= 1


def test_stats_count_logins_and_queries(raw: Raw) -> None:
    before = raw.stats()
    token, _ = raw.login()
    raw.ok(token, "select 1")
    raw.ok(token, "select 2")
    after = raw.stats()
    assert after["logins"] == before["logins"] + 1
    assert after["queries"] == before["queries"] + 2
    assert after["running"] == 0
    assert set(after) >= {"logins", "queries", "cancelled", "active_sessions", "running"}


def test_query_tag_is_recorded_per_session_and_statement(raw: Raw) -> None:
    token, _ = raw.login()
    other, _ = raw.login()
    tag = """{"tool":"claude-code","session":"it's \\ a \\"test\\""}"""
    literal = "'" + tag.replace("\\", "\\\\").replace("'", "''") + "'"
    raw.ok(token, f"ALTER SESSION SET QUERY_TAG = {literal}")
    raw.ok(token, "select 'tagged' t")
    raw.ok(other, "select 'untagged' t")
    assert tag in raw.stats()["query_tags"]
    history = raw.stats()["history"]
    assert {"sql": "select 'tagged' t", "query_tag": tag} in history
    assert {"sql": "select 'untagged' t", "query_tag": None} in history
    raw.ok(token, "ALTER SESSION UNSET QUERY_TAG")
    raw.ok(token, "select 'after' t")
    assert {"sql": "select 'after' t", "query_tag": None} in raw.stats()["history"]


def test_bindings_are_typed_as_snowflake_types_them(emulator: EmulatorProcess) -> None:
    with connect(emulator.port, paramstyle="qmark") as conn:
        cur = conn.cursor()
        cur.execute(
            "select ?, ?, ?, ?",
            (decimal.Decimal("-12.50"), 0.25, None, dt.datetime(2024, 1, 2, 3, 4, 5, 123456)),
        )
        assert cur.fetchone() == (decimal.Decimal("-12.50"), 0.25, None, dt.datetime(2024, 1, 2, 3, 4, 5, 123456))


def test_latency_flags_apply() -> None:
    # Timing is printed (see it with `pytest -s`), never asserted: it only shows the flags work.
    emu = EmulatorProcess("--login-delay-ms", "300", "--statement-delay-ms", "150")
    try:
        raw = Raw(emu.port)
        t0 = time.monotonic()
        token, _ = raw.login()
        t1 = time.monotonic()
        raw.ok(token, "select 1")
        t2 = time.monotonic()
        print(f"\nwith --login-delay-ms 300 --statement-delay-ms 150: login {1000 * (t1 - t0):.0f} ms,"
              f" select 1 {1000 * (t2 - t1):.0f} ms")
        # the statement delay is cancellable like the statement itself
        rid = str(uuid.uuid4())
        waiting = Background(lambda: raw.query(token, "select 1", request_id=rid))
        wait_until(lambda: raw.stats()["running"] == 1, "the delayed statement to be running")
        raw.abort(token, rid)
        assert waiting.result()[1]["code"] == "000604"
    finally:
        assert emu.stop() == 0, emu.errors()


def test_converter_paths_duckdb_does_not_reach() -> None:
    # Arrow shapes fakesnow's DuckDB does not produce today, but the converter accepts.
    import pyarrow as pa

    sys.path.insert(0, str(HERE))
    try:
        import snowflake_emulator as se
    finally:
        sys.path.remove(str(HERE))
    table = pa.table(
        {
            "ns": pa.array([1_718_454_645_123_456_789, None], pa.timestamp("ns")),
            "tz": pa.array([1_718_454_645_000_000, None], pa.timestamp("us", tz="+09:00")),
            "big": pa.array([decimal.Decimal("-0.5"), None], pa.decimal128(38, 2)),
            "nan": pa.array([float("nan"), float("-inf")], pa.float64()),
        }
    )
    rowtype = [
        {"type": "timestamp_ntz", "scale": 9},
        {"type": "timestamp_tz", "scale": 3},
        {"type": "fixed", "scale": 2},
        {"type": "real"},
    ]
    assert se.arrow_table_to_rowset(table, rowtype) == [
        ["1718454645.123456789", "1718454645.000 1980", "-0.50", "NaN"],
        [None, None, None, "-Infinity"],
    ]


def test_options_control_changes_login_delay_and_refuses_logins(raw: Raw) -> None:
    status, options = raw.request("POST", "/__emulator/options", {"login_delay_ms": 2000})
    assert status == 200 and options["login_delay_ms"] == 2000 and options["refuse_logins"] is False
    try:
        login = Background(raw.login)
        wait_until(lambda: raw.stats()["logins_running"] == 1, "the delayed login to be in progress")
        raw.request("POST", "/__emulator/options", {"login_delay_ms": 0})
        token, _ = login.result()
        assert raw.stats()["logins_running"] == 0
        assert raw.ok(token, "select 1 x")["rowset"] == [["1"]]

        raw.request("POST", "/__emulator/options", {"refuse_logins": True})
        body = {"data": {"ACCOUNT_NAME": "acct", "LOGIN_NAME": "user", "PASSWORD": "pw"}}
        status, payload = raw.request("POST", "/session/v1/login-request", body)
        assert status == 200 and payload["success"] is False and payload["code"] == "390100", payload
        # sessions already logged in keep working
        assert raw.ok(token, "select 2 x")["rowset"] == [["2"]]

        assert raw.request("POST", "/__emulator/options", {"nonsense": 1})[0] == 400
        assert raw.request("POST", "/__emulator/options", {"refuse_logins": "yes"})[0] == 400
        assert raw.request("POST", "/__emulator/options", [1])[0] == 400
    finally:
        raw.request("POST", "/__emulator/options", {"login_delay_ms": 0, "refuse_logins": False})
    raw.login()


def test_peak_running_counts_statements_running_at_once(raw: Raw) -> None:
    tokens = [raw.login()[0] for _ in range(3)]
    assert raw.request("POST", "/__emulator/reset-peak")[0] == 200
    assert raw.stats()["peak_running"] == 0
    rids = [str(uuid.uuid4()) for _ in tokens]
    waits = [
        Background(lambda t=t, r=r: raw.query(t, "select system$wait(600)", request_id=r))
        for t, r in zip(tokens, rids)
    ]
    wait_until(lambda: raw.stats()["running"] == 3, "three waits to be running")
    for token, rid in zip(tokens, rids):
        raw.abort(token, rid)
    for w in waits:
        assert w.result()[1]["code"] == "000604"
    stats = raw.stats()
    assert stats["peak_running"] == 3 and stats["running"] == 0
    assert raw.request("POST", "/__emulator/reset-peak")[1] == {"peak_running": 0}


def test_release_waits_finishes_marked_waits_now(raw: Raw) -> None:
    token, _ = raw.login()
    other, _ = raw.login()
    marker = f"gate-{uuid.uuid4().hex}"
    released = Background(lambda: raw.ok(token, f"select system$wait(600) w, '{marker}' m"))
    keeps = str(uuid.uuid4())
    kept = Background(lambda: raw.query(other, "select system$wait(600) w, 'unmarked' m", request_id=keeps))
    wait_until(lambda: sum(marker in q for q in raw.stats()["running_sql"]) == 1, "the marked wait to run")
    wait_until(lambda: sum("'unmarked'" in q for q in raw.stats()["running_sql"]) >= 1, "the other wait to run")
    status, payload = raw.request("POST", "/__emulator/release-waits", {"containing": marker})
    assert status == 200 and payload == {"released": 1}
    data = released.result()
    # the emulator answers a SYSTEM$WAIT statement with its one column, whatever else it selects
    assert data["rowset"] == [["waited 600 seconds"]]
    # waits without the marker are untouched
    assert any("'unmarked'" in q for q in raw.stats()["running_sql"])
    raw.abort(other, keeps)
    assert kept.result()[1]["code"] == "000604"
    assert raw.request("POST", "/__emulator/release-waits", {"containing": ""})[0] == 400


def test_drop_database_leaves_its_users_without_a_current_database(raw: Raw) -> None:
    user, _ = raw.login()
    dropper, _ = raw.login()
    name = unique_name()
    raw.ok(user, f"CREATE DATABASE {name}")
    raw.ok(user, f"CREATE SCHEMA {name}.PUBLIC")
    raw.ok(user, f"USE SCHEMA {name}.PUBLIC")
    raw.ok(user, "CREATE TABLE T (n INT)")
    data = raw.ok(dropper, f"DROP DATABASE {name}")
    assert data["rowset"] == [[f"{name} successfully dropped."]]
    status, payload = raw.query(user, "SELECT * FROM T")
    assert payload["success"] is False and payload["code"] == "090105", payload
    assert raw.ok(user, "select current_database() d")["rowset"] == [["memory"]]
    status, payload = raw.query(dropper, f"DROP DATABASE {name}")
    assert payload["code"] == "002003", payload
    raw.ok(dropper, f"DROP DATABASE IF EXISTS {name}")
    assert raw.query(user, f"USE SCHEMA {name}.PUBLIC")[1]["success"] is False
