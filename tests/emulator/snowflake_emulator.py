"""Snowflake emulator adapter for snowflaked's tests and benchmarks.

This file owns the launcher that serves fakesnow 0.12.1's Starlette handlers with the fixes
snowflaked's end-to-end tier needs: JSON rowsets instead of Arrow (snowflake-connector-rs reads
only JSON), query ids on errors, gzip request bodies, logins without SESSION_PARAMETERS,
per-session CURRENT_WAREHOUSE()/CURRENT_ROLE(), a cancellable SYSTEM$WAIT, injected latency
(changeable at run time), test-only session expiry and login refusal, counters of concurrency,
and a one-line readiness signal. fakesnow itself is not modified: its
handlers are called unchanged and only their requests and responses are adjusted here.

Run:  python snowflake_emulator.py --host 127.0.0.1 --port 0
It prints exactly one line, `LISTENING HOST:PORT`, once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import datetime as dt
import decimal
import gzip
import json
import logging
import math
import re
import signal
import socket
import sys
import uuid
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterator

import pyarrow as pa
import sqlglot
from sqlglot import exp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import fakesnow.server as fs_server
from fakesnow import statement_type
from fakesnow.expr import normalise_ident

log = logging.getLogger("snowflake_emulator")

# Snowflake's wire codes that clients branch on.
SESSION_EXPIRED_CODE = "390112"
SESSION_EXPIRED_MESSAGE = "Your session has expired. Please login again."
SESSION_GONE_CODE = "390104"
MASTER_TOKEN_EXPIRED_CODE = "390114"
CANCELLED_CODE = "000604"
CANCELLED_MESSAGE = "SQL execution canceled"
CANCELLED_SQL_STATE = "57014"
# fakesnow answers SQL it cannot run with HTTP 500 and this code; clients see it as SQL error.
UNSUPPORTED_CODE = "261000"
UNSUPPORTED_SQL_STATE = "0A000"

# Request ids are remembered for a while so that an abort racing its own query still lands
# (Snowflake lets a client cancel a statement whose request has not reached it yet), but the
# memory must stay bounded for long benchmark runs.
REMEMBERED_REQUEST_IDS = 4096


# --------------------------------------------------------------------------------------------
# Arrow -> Snowflake JSON rowset
# --------------------------------------------------------------------------------------------

_NANOS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_DECIMAL_CONTEXT = decimal.Context(prec=100)
_EPOCH_DATE = dt.date(1970, 1, 1)


def _fraction_text(nanos: int, scale: int) -> str:
    """Seconds with exactly `scale` fraction digits, from signed nanoseconds.

    snowflake-connector-rs rejects more fraction digits than the column's scale, and Snowflake
    writes exactly that many, so truncate/pad to it. The sign covers the whole number: Snowflake
    means -1.5 s by "-1.500000000", not -2 + 0.5.
    """
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(nanos), 1_000_000_000)
    if scale <= 0:
        return f"{sign}{whole}"
    scale = min(scale, 9)
    return f"{sign}{whole}.{frac // 10 ** (9 - scale):0{scale}d}"


def _tz_index(tz: str | None, epoch_seconds: int) -> int:
    """Snowflake's timezone index: UTC offset in minutes plus 1440."""
    if not tz or tz.upper() in ("UTC", "Z", "ETC/UTC", "+00:00"):
        return 1440
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", tz)
    if m:
        minutes = int(m[2]) * 60 + int(m[3])
        return 1440 + (minutes if m[1] == "+" else -minutes)
    import zoneinfo  # only named zones need it

    offset = dt.datetime.fromtimestamp(epoch_seconds, zoneinfo.ZoneInfo(tz)).utcoffset()
    return 1440 + int(offset.total_seconds() // 60) if offset else 1440


def _real_text(v: float) -> str:
    # Snowflake spells the non-finite doubles this way; both clients parse them.
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(v)


def _decimal_text(v: Any, scale: int) -> str:
    d = v if isinstance(v, decimal.Decimal) else decimal.Decimal(str(v))
    # quantize, not float: 38-digit decimals must come out exact, with exactly `scale` digits
    q = d.quantize(decimal.Decimal(1).scaleb(-scale), context=_DECIMAL_CONTEXT)
    return f"{q:f}"


def _column_cells(col: pa.ChunkedArray | pa.Array, info: dict[str, Any]) -> list[str | None]:
    """Encode one Arrow column as Snowflake JSON cells, following the rowtype fakesnow reported."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    sf_type = str(info.get("type") or "text").lower()
    scale = info.get("scale")
    atype = col.type

    if pa.types.is_null(atype):
        return [None] * len(col)

    if pa.types.is_struct(atype):
        # fakesnow's Arrow timestamp encoding: {epoch, fraction[, timezone]}. Its NULLs keep a
        # valid struct with NULL children (which is why the Python connector reads them as
        # 1970-01-01), so a NULL epoch is the real NULL marker.
        names = [atype.field(i).name for i in range(atype.num_fields)]
        epochs = col.field(names.index("epoch")).to_pylist()
        fracs = col.field(names.index("fraction")).to_pylist()
        tzs = col.field(names.index("timezone")).to_pylist() if "timezone" in names else None
        valid = col.is_valid().to_pylist()
        ts_scale = 9 if scale is None else int(scale)
        out: list[str | None] = []
        for i, (e, f) in enumerate(zip(epochs, fracs)):
            if not valid[i] or e is None:
                out.append(None)
                continue
            text = _fraction_text(e * 1_000_000_000 + (f or 0), ts_scale)
            if sf_type == "timestamp_tz":
                text += f" {tzs[i] if tzs and tzs[i] is not None else 1440}"
            out.append(text)
        return out

    if pa.types.is_timestamp(atype):
        per = _NANOS_PER_UNIT[atype.unit]
        ts_scale = 9 if scale is None else int(scale)
        out = []
        for n in col.cast(pa.int64()).to_pylist():
            if n is None:
                out.append(None)
                continue
            nanos = n * per
            text = _fraction_text(nanos, ts_scale)
            if sf_type == "timestamp_tz":
                text += f" {_tz_index(atype.tz, nanos // 1_000_000_000)}"
            out.append(text)
        return out

    if pa.types.is_time(atype) or sf_type == "time":
        # time64 from DuckDB directly, or int64 nanoseconds after fakesnow's to_sf
        per = _NANOS_PER_UNIT[atype.unit] if pa.types.is_time(atype) else 1
        t_scale = 9 if scale is None else int(scale)
        return [None if n is None else _fraction_text(n * per, t_scale) for n in col.cast(pa.int64()).to_pylist()]

    if pa.types.is_date(atype):
        return [None if d is None else str((d - _EPOCH_DATE).days) for d in col.to_pylist()]

    values = col.to_pylist()
    if pa.types.is_boolean(atype):
        return [None if v is None else ("1" if v else "0") for v in values]
    if pa.types.is_binary(atype) or pa.types.is_large_binary(atype) or pa.types.is_fixed_size_binary(atype):
        return [None if v is None else v.hex().upper() for v in values]
    if pa.types.is_decimal(atype):
        dscale = int(scale) if scale is not None else atype.scale
        return [None if v is None else _decimal_text(v, dscale) for v in values]
    if pa.types.is_floating(atype):
        if sf_type == "fixed" and scale:
            return [None if v is None else _decimal_text(v, int(scale)) for v in values]
        return [None if v is None else _real_text(v) for v in values]
    if pa.types.is_integer(atype):
        return [None if v is None else str(v) for v in values]
    if pa.types.is_string(atype) or pa.types.is_large_string(atype):
        return values
    # anything else (lists, maps, ...) has no Snowflake scalar form: JSON text like a VARIANT
    return [None if v is None else json.dumps(v, default=str) for v in values]


def arrow_table_to_rowset(table: pa.Table, rowtype: list[dict[str, Any]]) -> list[list[str | None]]:
    if table.num_columns == 0:
        return []
    columns = [_column_cells(table.column(i), rowtype[i] if i < len(rowtype) else {}) for i in range(table.num_columns)]
    return [list(row) for row in zip(*columns)]


def arrow_ipc_to_rowset(b64: str, rowtype: list[dict[str, Any]]) -> list[list[str | None]]:
    """Decode a `rowsetBase64` Arrow IPC stream into a Snowflake JSON rowset."""
    if not b64:
        return []
    table = pa.ipc.open_stream(base64.b64decode(b64)).read_all()
    return arrow_table_to_rowset(table, rowtype)


def to_json_result(data: dict[str, Any]) -> None:
    """Rewrite a successful response's data in place to carry a JSON rowset with exact counts."""
    if "rowsetBase64" in data:
        data["rowset"] = arrow_ipc_to_rowset(data.pop("rowsetBase64") or "", data.get("rowtype") or [])
    if "rowset" in data or data.get("queryResultFormat") is not None:
        rows = data.setdefault("rowset", [])
        data["queryResultFormat"] = "json"
        data["returned"] = len(rows)
        # total is the result's row count; fakesnow's DML batches report 1 row of counts already
        data["total"] = len(rows)


# --------------------------------------------------------------------------------------------
# SQL text helpers (no parser: the emulator only needs a few exact shapes)
# --------------------------------------------------------------------------------------------

_LITERAL_RE = re.compile(
    r"""'(?:[^'\\]|\\.|'')*'?       # string literal, Snowflake allows both '' and \' escapes
      | "(?:[^"]|"")*"?             # quoted identifier
      | \$\$.*?(?:\$\$|$)           # dollar-quoted string
      | --[^\n]*                    # line comment
      | //[^\n]*                    # Snowflake also accepts // comments
      | /\*.*?(?:\*/|$)             # block comment
    """,
    re.VERBOSE | re.DOTALL,
)


def _code_segments(sql: str) -> Iterator[tuple[bool, str]]:
    """Split SQL into (is_code, text) pieces so rewrites never touch literals or comments."""
    pos = 0
    for m in _LITERAL_RE.finditer(sql):
        if m.start() > pos:
            yield True, sql[pos : m.start()]
        yield False, m.group(0)
        pos = m.end()
    if pos < len(sql):
        yield True, sql[pos:]


def _sub_code(sql: str, pattern: re.Pattern[str], repl: Callable[[re.Match[str]], str]) -> str:
    return "".join(pattern.sub(repl, text) if is_code else text for is_code, text in _code_segments(sql))


def _find_call(sql: str, start: re.Pattern[str], call: re.Pattern[str]) -> re.Match[str] | None:
    """Match `call` on the original text where `start` occurs outside literals and comments.

    Literals are blanked (same length) only to locate the call, then it is matched on the
    original text, because its own arguments may be string literals (e.g. a time unit).
    """
    blanked = "".join(text if is_code else " " * len(text) for is_code, text in _code_segments(sql))
    for found in start.finditer(blanked):
        if m := call.match(sql, found.start()):
            return m
    return None


_IDENT = r'("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_USE_WAREHOUSE_RE = re.compile(rf"^\s*USE\s+WAREHOUSE\s+{_IDENT}\s*;?\s*$", re.I)
_USE_ROLE_RE = re.compile(rf"^\s*USE\s+ROLE\s+{_IDENT}\s*;?\s*$", re.I)
_DROP_DATABASE_RE = re.compile(rf"^\s*DROP\s+DATABASE\s+(IF\s+EXISTS\s+)?{_IDENT}\s*(?:CASCADE|RESTRICT)?\s*;?\s*$", re.I)
_USE_SECONDARY_RE = re.compile(r"^\s*USE\s+SECONDARY\s+ROLES?\b", re.I)
# fakesnow fails every ALTER SESSION; the query tag is the one session parameter snowflaked
# sets, so the emulator accepts setting and unsetting it (and nothing else).
_QUERY_TAG_RE = re.compile(r"^\s*ALTER\s+SESSION\s+(?:SET\s+QUERY_TAG\s*=\s*'((?:[^'\\]|''|\\.)*)'|UNSET\s+QUERY_TAG)\s*;?\s*$", re.I)
# The statements a test may ask about, with the query tag each ran under (QUERY_HISTORY's view).
REMEMBERED_QUERIES = 1000
# The session's TIMEZONE: kept per session, reported by SHOW PARAMETERS, and what TIMESTAMP_LTZ
# values are shown in by the clients.
_TIMEZONE_RE = re.compile(r"^\s*ALTER\s+SESSION\s+(?:SET\s+TIMEZONE\s*=\s*'([^']*)'|UNSET\s+TIMEZONE)\s*;?\s*$", re.I)
_SHOW_PARAMETERS_RE = re.compile(r"^\s*SHOW\s+PARAMETERS\b", re.I)
_LTZ_RE = re.compile(r"TIMESTAMP_?LTZ", re.I)
_CONTEXT_FN_RE = re.compile(r"\b(CURRENT_WAREHOUSE|CURRENT_ROLE)\s*\(\s*\)", re.I)
_WAIT_START_RE = re.compile(r"\bSYSTEM\$WAIT\s*\(", re.I)
_WAIT_RE = re.compile(
    r"\bSYSTEM\$WAIT\s*\(\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:,\s*'([A-Za-z]+)'\s*)?\)",
    re.I,
)
_WAIT_UNITS = {
    "NANOSECONDS": 1e-9,
    "MICROSECONDS": 1e-6,
    "MILLISECONDS": 1e-3,
    "SECONDS": 1.0,
    "MINUTES": 60.0,
    "HOURS": 3600.0,
    "DAYS": 86400.0,
}


_EPOCH = dt.datetime(1970, 1, 1)
_fakesnow_from_binding = fs_server.from_binding


def from_binding(binding: dict[str, Any]) -> Any:  # noqa: ANN401
    """One bind value as Snowflake's wire sends it, decoded as Snowflake would type it.

    fakesnow's own decoder fails on NULLs of a non-text type and on FIXED decimals, returns REAL
    as text, and makes TIMESTAMP_NTZ zoned; everything else is left to it. Times are decoded
    with integer arithmetic (to the microsecond, Python's resolution) so no float rounding
    creeps in.
    """
    ty, value = binding.get("type"), binding.get("value")
    if value is None:
        return None
    if ty == "FIXED":
        return int(value) if re.fullmatch(r"[+-]?\d+", value) else decimal.Decimal(value)
    if ty == "REAL":
        return float(value)  # also NaN, Infinity, -Infinity
    if ty in ("TIMESTAMP_NTZ", "TIMESTAMP_LTZ", "TIMESTAMP_TZ"):
        nanos, _, offset = value.partition(" ")
        at = _EPOCH + dt.timedelta(microseconds=int(nanos) // 1000)
        if ty == "TIMESTAMP_NTZ":
            return at
        utc = at.replace(tzinfo=dt.timezone.utc)
        if ty == "TIMESTAMP_TZ" and offset:
            return utc.astimezone(dt.timezone(dt.timedelta(minutes=int(offset) - 1440)))
        return utc
    return _fakesnow_from_binding(binding)


# fakesnow's query route decodes bindings through this module-level name.
fs_server.from_binding = from_binding


def string_literal_value(body: str) -> str:
    """The text of a Snowflake string literal's body: '' and backslash escapes undone."""
    return re.sub(r"''|\\(.)", lambda m: "'" if m[0] == "''" else {"n": "\n", "t": "\t", "0": "\0"}.get(m[1], m[1]), body)


def ltz_columns(sql: str) -> set[int]:
    """Positions in the select list that are casts to TIMESTAMP_LTZ.

    DuckDB has one time-zone-aware timestamp, so fakesnow reports TIMESTAMP_LTZ and
    TIMESTAMP_TZ alike as timestamp_tz; only the SQL tells them apart. This is the one place
    the emulator parses SQL (with fakesnow's own parser), and only when LTZ is mentioned.
    """
    if not _LTZ_RE.search(sql):
        return set()
    try:
        tree = sqlglot.parse_one(sql, read="snowflake")
    except sqlglot.errors.ParseError:
        return set()
    if not isinstance(tree, exp.Select):
        return set()
    return {
        i
        for i, e in enumerate(tree.expressions)
        if isinstance(e.unalias(), (exp.Cast, exp.TryCast)) and e.unalias().to.is_type(exp.DataType.Type.TIMESTAMPLTZ)
    }


def ident_value(raw: str) -> str:
    """Snowflake identifier semantics: unquoted upper-cases, quoted keeps case ("" -> ")."""
    raw = raw.strip()
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        return raw[1:-1].replace('""', '"')
    return normalise_ident(raw)


def _sql_literal(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


# --------------------------------------------------------------------------------------------
# Emulator state
# --------------------------------------------------------------------------------------------


class _Cancelled(Exception):
    """The running statement was aborted (abort-request or shutdown)."""


@dataclass
class SessionState:
    warehouse: str | None
    role: str | None
    query_tag: str | None = None
    # fakesnow runs a session's statements on one DuckDB cursor and fails (HTTP 500) when two
    # overlap; Snowflake runs them concurrently, so queue them here instead.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # ALTER SESSION SET TIMEZONE; None: the account's (fakesnow reports Etc/UTC)
    timezone: str | None = None


@dataclass
class RunningQuery:
    token: str
    request_id: str
    query_id: str
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    # set by /__emulator/release-waits: a SYSTEM$WAIT in progress finishes successfully now
    release: asyncio.Event = field(default_factory=asyncio.Event)
    # the statement's text once read, so a test can wait for its own statement to be running
    sql: str | None = None


@dataclass
class Options:
    login_delay: float = 0.0
    statement_delay: float = 0.0
    # test-only: logins answer "Incorrect username or password" (HTTP 200, code 390100)
    refuse_logins: bool = False


def _remember(store: collections.OrderedDict[str, None], key: str) -> None:
    store[key] = None
    store.move_to_end(key)
    while len(store) > REMEMBERED_REQUEST_IDS:
        store.popitem(last=False)


_TOKEN_RE = re.compile(r'Token="([^"]*)"')


def _token_of(request: Request) -> str | None:
    auth = request.headers.get("Authorization") or ""
    m = _TOKEN_RE.search(auth)
    return m[1] if m else None


def _json_of(response: Response) -> Any:
    try:
        return json.loads(bytes(response.body))
    except (ValueError, TypeError):
        return None


def _with_body(request: Request, body: bytes) -> Request:
    """A copy of `request` whose body is `body` (fakesnow's handlers read the body themselves)."""
    headers = [(k, v) for k, v in request.scope["headers"] if k not in (b"content-length", b"content-encoding")]
    headers.append((b"content-length", str(len(body)).encode()))
    scope = dict(request.scope, headers=headers)
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await request.receive()

    return Request(scope, receive)


def _text_rowtype(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "database": "",
        "schema": "",
        "table": "",
        "nullable": True,
        "type": "text",
        "byteLength": 16777216,
        "length": 16777216,
        "scale": None,
        "precision": None,
        "collation": None,
    }


class Emulator:
    """Per-process emulator state and the wrapped routes."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.sessions: dict[str, SessionState] = {}
        self.expired: set[str] = set()
        self.running: dict[str, RunningQuery] = {}
        self.pending_aborts: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.finished: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.cancelled_ids: collections.deque[str] = collections.deque(maxlen=REMEMBERED_REQUEST_IDS)
        self.logins = 0
        self.queries = 0
        self.cancelled = 0
        # logins received and not answered yet (including their injected delay)
        self.logins_running = 0
        # the most statements running at once since start or the last reset-peak
        self.peak_running = 0
        # (session's query tag, statement text) of recent statements, like QUERY_HISTORY
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=REMEMBERED_QUERIES)

    # ---- responses -------------------------------------------------------------------------

    @staticmethod
    def expired_response() -> JSONResponse:
        # HTTP 200 like Snowflake; data carries a query id because snowflake-connector-rs
        # rejects a data object without one before it looks at the code.
        return JSONResponse(
            {
                "data": {"nextAction": "RETRY_LOGIN", "errorCode": SESSION_EXPIRED_CODE, "queryId": str(uuid.uuid4())},
                "code": SESSION_EXPIRED_CODE,
                "message": SESSION_EXPIRED_MESSAGE,
                "success": False,
                "headers": None,
            }
        )

    @staticmethod
    def error_response(code: str, message: str, sql_state: str | None, query_id: str | None = None) -> JSONResponse:
        return JSONResponse(
            {
                "data": {
                    "errorCode": code,
                    "sqlState": sql_state,
                    "queryId": query_id or str(uuid.uuid4()),
                    "internalError": False,
                },
                "code": code,
                "message": message,
                # Snowflake sends sqlState in data; snowflake-connector-rs reads it at the top.
                "sqlState": sql_state,
                "success": False,
                "headers": None,
            }
        )

    def _success(self, token: str, query_id: str, name: str, value: str, type_id: int) -> JSONResponse:
        conn = fs_server.sessions.get(token)
        state = self.sessions.get(token)
        return JSONResponse(
            {
                "data": {
                    "parameters": [{"name": "TIMEZONE", "value": "Etc/UTC"}],
                    "rowtype": [_text_rowtype(name)],
                    "rowset": [[value]],
                    "total": 1,
                    "returned": 1,
                    "queryId": query_id,
                    "statementTypeId": type_id,
                    "queryResultFormat": "json",
                    "finalDatabaseName": conn.database if conn else None,
                    "finalSchemaName": conn.schema if conn else None,
                    "finalWarehouseName": state.warehouse if state else None,
                    "finalRoleName": self._role(state),
                },
                "code": None,
                "message": None,
                "success": True,
            }
        )

    @staticmethod
    def _role(state: SessionState | None) -> str:
        # Every Snowflake session has a role; PUBLIC is the one every user holds.
        return state.role if state and state.role else "PUBLIC"

    def _check_session(self, request: Request) -> tuple[str | None, JSONResponse | None]:
        """The request's session token, and the expired-session answer if it was expired.

        Missing or unknown tokens pass: fakesnow answers them itself (401, 390103/390104).
        """
        token = _token_of(request)
        if token is not None and token in self.expired:
            return token, self.expired_response()
        return token, None

    # ---- cancellation ----------------------------------------------------------------------

    async def _until_cancelled(
        self, aw: Awaitable[Any], run: RunningQuery, undo: Callable[[Any], None] | None = None
    ) -> Any:
        """Await `aw` unless the statement is cancelled first (then raise _Cancelled)."""
        task = asyncio.ensure_future(aw)
        waiter = asyncio.ensure_future(run.cancel.wait())
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            waiter.cancel()
        if task in done:
            return task.result()
        task.cancel()
        try:
            result = await task
        except asyncio.CancelledError:
            pass
        else:
            # it completed in the same instant; give back what it took (e.g. a lock)
            if undo:
                undo(result)
        raise _Cancelled

    @staticmethod
    async def _wait_or_release(seconds: float, run: RunningQuery) -> None:
        """SYSTEM$WAIT: sleep `seconds`, or less if a test releases the statement."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(run.release.wait(), timeout=seconds)

    def cancel_all(self) -> None:
        for run in list(self.running.values()):
            run.cancel.set()

    # ---- routes ----------------------------------------------------------------------------

    async def login_request(self, request: Request) -> Response:
        self.logins_running += 1
        try:
            return await self._login(request)
        finally:
            self.logins_running -= 1

    async def _login(self, request: Request) -> Response:
        if self.options.login_delay:
            await asyncio.sleep(self.options.login_delay)
        if self.options.refuse_logins:
            return JSONResponse(
                {"data": None, "code": "390100", "message": "Incorrect username or password was specified.", "success": False}
            )
        raw = await request.body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return JSONResponse({"data": None, "code": "390100", "message": "Malformed login request.", "success": False})
        data = body.setdefault("data", {}) if isinstance(body, dict) else None
        if not isinstance(data, dict):
            return JSONResponse({"data": None, "code": "390100", "message": "Malformed login request.", "success": False})
        params = data.get("SESSION_PARAMETERS")
        if not isinstance(params, dict):
            # Snowflake accepts a login without SESSION_PARAMETERS (snowflake-connector-rs omits
            # them when none are set); fakesnow indexes it unconditionally.
            params = data["SESSION_PARAMETERS"] = {}

        response = await fs_server.login_request(_with_body(request, json.dumps(body).encode()))
        payload = _json_of(response)
        if response.status_code != 200 or not isinstance(payload, dict) or not payload.get("success"):
            return response

        upper_params = {str(k).upper(): v for k, v in params.items()}
        warehouse = request.query_params.get("warehouse") or upper_params.get("WAREHOUSE")
        role = request.query_params.get("roleName") or upper_params.get("ROLE")
        state = SessionState(
            warehouse=ident_value(str(warehouse)) if warehouse else None,
            role=ident_value(str(role)) if role else None,
        )
        token = payload["data"]["token"]
        self.sessions[token] = state
        self.logins += 1
        info = payload["data"].setdefault("sessionInfo", {})
        info["warehouseName"] = state.warehouse
        info["roleName"] = self._role(state)
        return JSONResponse(payload)

    async def query_request(self, request: Request) -> Response:
        token, early = self._check_session(request)
        if early is not None:
            return early
        if token is None or token not in fs_server.sessions:
            return await fs_server.query_request(request)

        self.queries += 1
        state = self.sessions.setdefault(token, SessionState(None, None))
        request_id = request.query_params.get("requestId") or str(uuid.uuid4())
        run = RunningQuery(token=token, request_id=request_id, query_id=str(uuid.uuid4()))
        if request_id in self.pending_aborts:
            # the abort overtook its statement
            del self.pending_aborts[request_id]
            run.cancel.set()
        self.running[request_id] = run
        self.peak_running = max(self.peak_running, len(self.running))
        try:
            return await self._run_query(request, token, state, run)
        except _Cancelled:
            self.cancelled += 1
            self.cancelled_ids.append(request_id)
            return self.error_response(CANCELLED_CODE, CANCELLED_MESSAGE, CANCELLED_SQL_STATE, run.query_id)
        finally:
            if self.running.get(request_id) is run:
                del self.running[request_id]
            _remember(self.finished, request_id)

    async def _run_query(self, request: Request, token: str, state: SessionState, run: RunningQuery) -> Response:
        if run.cancel.is_set():
            raise _Cancelled
        raw = await request.body()
        try:
            body = json.loads(raw)
            sql = str(body["sqlText"])
            run.sql = sql
        except (ValueError, KeyError, TypeError):
            return self.error_response("000900", "SQL text is missing or malformed.", "42000", run.query_id)

        if self.options.statement_delay:
            await self._until_cancelled(asyncio.sleep(self.options.statement_delay), run)

        wait = _find_call(sql, _WAIT_START_RE, _WAIT_RE)
        if wait:
            unit = (wait[2] or "SECONDS").upper()
            if unit not in _WAIT_UNITS:
                return self.error_response("100069", f"Invalid time unit '{wait[2]}' for SYSTEM$WAIT.", "22023", run.query_id)
            amount = wait[1]
            await self._until_cancelled(self._wait_or_release(float(amount) * _WAIT_UNITS[unit], run), run)
            name = re.sub(r"\s+", "", wait[0]).upper()
            return self._success(token, run.query_id, name, f"waited {amount} {unit.lower()}", statement_type.SELECT)

        self.history.append({"sql": sql[:1000], "query_tag": state.query_tag})
        tag = _QUERY_TAG_RE.match(sql)
        if tag:
            state.query_tag = string_literal_value(tag[1]) if tag[1] is not None else None
            return self._success(token, run.query_id, "status", "Statement executed successfully.", statement_type.USE)

        drop_db = _DROP_DATABASE_RE.match(sql)
        if drop_db:
            async with state.lock:
                return self._drop_database(token, run.query_id, ident_value(drop_db[2]), bool(drop_db[1]))
        timezone = _TIMEZONE_RE.match(sql)
        if timezone:
            if timezone[1] is not None:
                try:
                    import zoneinfo

                    zoneinfo.ZoneInfo(timezone[1])
                except (ValueError, zoneinfo.ZoneInfoNotFoundError):
                    return self.error_response("002037", f"Invalid value [{timezone[1]}] for parameter 'TIMEZONE'", "22023", run.query_id)
            state.timezone = timezone[1]
            return self._success(token, run.query_id, "status", "Statement executed successfully.", statement_type.USE)

        if _USE_SECONDARY_RE.match(sql):
            # accepted and ignored: the emulator has no roles to activate
            return self._success(token, run.query_id, "status", "Statement executed successfully.", statement_type.USE)

        use_wh = _USE_WAREHOUSE_RE.match(sql)
        use_role = _USE_ROLE_RE.match(sql)

        # CURRENT_WAREHOUSE() does not exist in fakesnow and CURRENT_ROLE() is DuckDB's; answer
        # from the session's own state as literals, and name the columns as Snowflake does.
        renames: dict[str, str] = {}

        def literal(m: re.Match[str]) -> str:
            fn = m[1].upper()
            value = state.warehouse if fn == "CURRENT_WAREHOUSE" else self._role(state)
            lit = _sql_literal(value)
            renames[lit] = f"{fn}()"
            return lit

        new_sql = _sub_code(sql, _CONTEXT_FN_RE, literal)
        if new_sql != sql:
            body["sqlText"] = new_sql
            fs_request = _with_body(request, json.dumps(body).encode())
        else:
            fs_request = request

        await self._until_cancelled(state.lock.acquire(), run, undo=lambda _: state.lock.release())
        try:
            # not cancellable from here: DuckDB work in fakesnow's thread pool cannot be stopped
            response = await fs_server.query_request(fs_request)
        except Exception as e:
            # a fakesnow bug outside its own error handling; still answer as a SQL error with a
            # query id so the client reports it rather than a broken connection
            log.exception("fakesnow failed on %r", sql)
            return self.error_response(UNSUPPORTED_CODE, f"Emulator error: {type(e).__name__}: {e}", "XX000", run.query_id)
        finally:
            state.lock.release()

        payload = _json_of(response)
        if not isinstance(payload, dict):
            return response
        if response.status_code >= 500:
            # fakesnow's "unhandled exception" for SQL it does not support (multi-statement,
            # ALTER SESSION, some types): Snowflake would answer a SQL error, not a server fault.
            return self.error_response(
                str(payload.get("code") or UNSUPPORTED_CODE),
                str(payload.get("message") or "Unsupported by the emulator"),
                UNSUPPORTED_SQL_STATE,
                run.query_id,
            )
        if response.status_code != 200:
            return response

        if not payload.get("success"):
            data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
            code = payload.get("code") or data.get("errorCode")
            return self.error_response(
                str(code) if code is not None else "000000",
                str(payload.get("message") or ""),
                data.get("sqlState"),
                data.get("queryId") or run.query_id,
            )

        data = payload.get("data")
        if isinstance(data, dict):
            if use_wh:
                state.warehouse = ident_value(use_wh[1])
            if use_role:
                state.role = ident_value(use_role[1])
            rowtype = data.get("rowtype") or []
            for i in ltz_columns(sql):
                if i < len(rowtype) and str(rowtype[i].get("type")).lower() == "timestamp_tz":
                    rowtype[i]["type"] = "timestamp_ltz"
            to_json_result(data)
            if state.timezone is not None and _SHOW_PARAMETERS_RE.match(sql):
                self._show_session_timezone(data, state.timezone)
            for col in data.get("rowtype") or []:
                if col.get("name") in renames:
                    col["name"] = renames[col["name"]]
            data.setdefault("queryId", run.query_id)
            data["finalWarehouseName"] = state.warehouse
            data["finalRoleName"] = self._role(state)
        return JSONResponse(payload)

    def _drop_database(self, token: str, query_id: str, name: str, if_exists: bool) -> JSONResponse:
        """DROP DATABASE, which fakesnow cannot parse: DuckDB detaches the database.

        Sessions whose current database it was are left without one, as in Snowflake: their
        unqualified names fail (090105) until they USE another database.
        """
        duck = fs_server.sessions[token]._duck_conn
        exists = duck.execute(
            "select count(*) from duckdb_databases() where upper(database_name) = ?", [name.upper()]
        ).fetchone()[0]
        if not exists:
            if if_exists:
                return self._success(token, query_id, "status", "Drop statement executed successfully.", statement_type.DDL)
            return self.error_response("002003", f"Database '{name}' does not exist or not authorized.", "02000", query_id)
        for conn in fs_server.sessions.values():
            current = conn._duck_conn.execute("select current_database()").fetchone()[0]
            if str(current).upper() == name.upper():
                conn._duck_conn.execute("USE memory.main")
                conn.database, conn.database_set = None, False
                conn._schema, conn.schema_set = None, False
        duck.execute(f'DETACH DATABASE "{name}"')
        return self._success(token, query_id, "status", f"{name} successfully dropped.", statement_type.DDL)

    @staticmethod
    def _show_session_timezone(data: dict[str, Any], timezone: str) -> None:
        """SHOW PARAMETERS answers the session's TIMEZONE at level SESSION."""
        names = [str(c.get("name")).lower() for c in data.get("rowtype") or []]
        if not {"key", "value", "level"} <= set(names):
            return
        key, value, level = names.index("key"), names.index("value"), names.index("level")
        for row in data.get("rowset") or []:
            if str(row[key]).upper() == "TIMEZONE":
                row[value] = timezone
                row[level] = "SESSION"

    async def abort_request(self, request: Request) -> Response:
        token, early = self._check_session(request)
        if early is not None:
            return early
        if token is None:
            return JSONResponse(
                {"data": None, "code": "390103", "message": "Session token not found in the request data.", "success": False},
                status_code=401,
            )
        if token not in fs_server.sessions:
            return JSONResponse(
                {"data": None, "code": SESSION_GONE_CODE, "message": "User must login again to access the service.", "success": False},
                status_code=401,
            )
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = {}
        request_id = str(body.get("requestId") or "") if isinstance(body, dict) else ""
        run = self.running.get(request_id)
        if run is not None and run.token == token:
            run.cancel.set()
        elif request_id and request_id not in self.finished:
            _remember(self.pending_aborts, request_id)
        # Snowflake acknowledges an abort even when the statement already finished.
        return JSONResponse({"data": None, "code": None, "message": None, "success": True})

    def _guarded(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a fakesnow handler that takes a session token with the expiry check."""

        async def endpoint(request: Request) -> Response:
            token, early = self._check_session(request)
            if early is not None:
                return early
            response = await handler(request)
            if token and request.query_params.get("delete") and token not in fs_server.sessions:
                self.sessions.pop(token, None)  # logged out
            return response

        return endpoint

    async def token_request(self, request: Request) -> Response:
        """Session renewal. fakesnow has none (404) and issues no master tokens.

        A still-valid session "renews" to itself. An expired one cannot be renewed: the answer
        is Snowflake's expired-master-token error (390114), after which clients log in again.
        (Not 390112: the Python connector answers that by renewing again, forever; and with a
        404 it would raise an HTTP error instead of an authentication one.)
        """
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = {}
        old = body.get("oldSessionToken") if isinstance(body, dict) else None
        if isinstance(old, str) and old in fs_server.sessions:
            return JSONResponse(
                {
                    "data": {"sessionToken": old, "validityInSecondsST": 3600, "masterToken": None},
                    "code": None,
                    "message": None,
                    "success": True,
                }
            )
        return JSONResponse(
            {
                "data": None,
                "code": MASTER_TOKEN_EXPIRED_CODE,
                "message": "Master token has expired. Please login again.",
                "success": False,
                "headers": None,
            }
        )

    async def expire_sessions(self, request: Request) -> Response:
        tokens = list(fs_server.sessions)
        for token in tokens:
            self.expired.add(token)
            # drop fakesnow's connection: an expired session can never be used again
            fs_server.sessions.pop(token, None)
            self.sessions.pop(token, None)
        return JSONResponse({"expired": len(tokens)})

    async def stats(self, request: Request) -> Response:
        return JSONResponse(
            {
                "logins": self.logins,
                "queries": self.queries,
                "cancelled": self.cancelled,
                "active_sessions": len(fs_server.sessions),
                "running": len(self.running),
                "peak_running": self.peak_running,
                "running_sql": [r.sql for r in self.running.values() if r.sql is not None],
                "logins_running": self.logins_running,
                "cancelled_request_ids": list(self.cancelled_ids),
                "query_tags": sorted({s.query_tag for s in self.sessions.values() if s.query_tag is not None}),
                "history": list(self.history),
            }
        )

    async def release_waits(self, request: Request) -> Response:
        """Finishes now, successfully, every running SYSTEM$WAIT whose SQL contains `containing`
        (a marker the test put in it), so a test decides when a slow statement returns."""
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        marker = body.get("containing") if isinstance(body, dict) else None
        if not isinstance(marker, str) or not marker:
            return JSONResponse({"error": "expected {\"containing\": \"non-empty text\"}"}, status_code=400)
        released = 0
        for run in self.running.values():
            if run.sql is not None and marker in run.sql and not run.release.is_set():
                run.release.set()
                released += 1
        return JSONResponse({"released": released})

    async def reset_peak(self, request: Request) -> Response:
        self.peak_running = len(self.running)
        return JSONResponse({"peak_running": self.peak_running})

    async def set_options(self, request: Request) -> Response:
        """Changes `login_delay_ms`, `statement_delay_ms` or `refuse_logins` while running;
        absent fields stay. Answers the options now in force."""
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": "expected a JSON object"}, status_code=400)
        unknown = set(body) - {"login_delay_ms", "statement_delay_ms", "refuse_logins"}
        if unknown:
            return JSONResponse({"error": f"unknown options: {sorted(unknown)}"}, status_code=400)
        try:
            if "login_delay_ms" in body:
                self.options.login_delay = float(body["login_delay_ms"]) / 1000.0
            if "statement_delay_ms" in body:
                self.options.statement_delay = float(body["statement_delay_ms"]) / 1000.0
        except (TypeError, ValueError):
            return JSONResponse({"error": "delays are numbers of milliseconds"}, status_code=400)
        if "refuse_logins" in body:
            if not isinstance(body["refuse_logins"], bool):
                return JSONResponse({"error": "refuse_logins is true or false"}, status_code=400)
            self.options.refuse_logins = body["refuse_logins"]
        return JSONResponse(
            {
                "login_delay_ms": self.options.login_delay * 1000.0,
                "statement_delay_ms": self.options.statement_delay * 1000.0,
                "refuse_logins": self.options.refuse_logins,
            }
        )

    def routes(self) -> list[Route]:
        mine = [
            Route("/__emulator/stats", self.stats, methods=["GET"]),
            Route("/__emulator/expire-sessions", self.expire_sessions, methods=["POST"]),
            Route("/__emulator/reset-peak", self.reset_peak, methods=["POST"]),
            Route("/__emulator/release-waits", self.release_waits, methods=["POST"]),
            Route("/__emulator/options", self.set_options, methods=["POST"]),
            Route("/session/v1/login-request", self.login_request, methods=["POST"]),
            Route("/queries/v1/query-request", self.query_request, methods=["POST"]),
            Route("/queries/v1/abort-request", self.abort_request, methods=["POST"]),
            Route("/session/token-request", self.token_request, methods=["POST"]),
        ]
        taken = {r.path for r in mine}
        # keep every other fakesnow route (heartbeat, logout, monitoring, stage uploads), each
        # behind the expiry check
        for r in fs_server.routes:
            if r.path not in taken:
                mine.append(Route(r.path, self._guarded(r.endpoint), methods=list(r.methods or [])))
        return mine


class GunzipRequests:
    """ASGI middleware: clients may gzip request bodies; handlers below see them plain."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not any(
            k == b"content-encoding" and v.strip().lower() == b"gzip" for k, v in scope["headers"]
        ):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away before sending its body
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        try:
            body = gzip.decompress(b"".join(chunks))
        except (OSError, EOFError, zlib.error):
            await Response("bad gzip body", status_code=400)(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-encoding", b"content-length")]
        headers.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(dict(scope, headers=headers), replay, send)


def build_app(options: Options) -> tuple[Any, Emulator]:
    emulator = Emulator(options)
    return GunzipRequests(Starlette(routes=emulator.routes())), emulator


# --------------------------------------------------------------------------------------------
# Process entry point
# --------------------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Snowflake emulator (fakesnow + JSON rowsets) for snowflaked tests")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 lets the OS pick a free port")
    p.add_argument("--login-delay-ms", type=float, default=0.0, help="added before each login")
    p.add_argument("--statement-delay-ms", type=float, default=0.0, help="added before each statement")
    p.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"], help="stderr logging"
    )
    return p.parse_args(argv)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=1024)
    sock.set_inheritable(False)
    return sock


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    level = getattr(logging, args.log_level.upper())
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # fakesnow's module logger is fixed at INFO on import; quiet it unless asked
    logging.getLogger("fakesnow").setLevel(level)
    fs_server.logger.setLevel(level)
    if level > logging.DEBUG:
        # fakesnow reads DuckDB results through a DB-API path that warns on every statement
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)

    import uvicorn

    app, emulator = build_app(
        Options(login_delay=args.login_delay_ms / 1000.0, statement_delay=args.statement_delay_ms / 1000.0)
    )
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                # the readiness line tests wait on; printed once the socket is being served
                print(f"LISTENING {shown}:{port}", flush=True)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn's own handlers re-raise the signal after shutdown, so the process would die
            # by SIGTERM instead of exiting 0; handle them on the loop instead.
            loop = asyncio.get_running_loop()

            def stop() -> None:
                if self.should_exit:
                    self.force_exit = True
                self.should_exit = True
                emulator.cancel_all()  # waiting statements answer "cancelled" right away

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop)
            try:
                yield
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

    config = uvicorn.Config(
        app,
        log_level=level,
        access_log=level <= logging.DEBUG,
        lifespan="off",
        timeout_graceful_shutdown=5,
        # the Rust crate turns keep-alive reuse off; the Python connector pools: either is fine
        timeout_keep_alive=30,
    )
    server = Server(config)
    asyncio.run(server.serve(sockets=[sock]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
