"""Drives `snowflaked mcp` over stdio with the official MCP Python SDK (`mcp`, pinned in
tests/emulator/requirements-dev.txt), as a real MCP client would. Run by tests/it/mcp.rs, which
provides the emulator, a socket-activated daemon and the environment; each scenario asserts
and exits non-zero with the reason on stderr.

    python driver.py SCENARIO SNOWFLAKED_BINARY [ARG...]

The server inherits this process's environment (SNOWFLAKED_SOCKET, HOME, ...).
"""

import asyncio
import json
import os
import sys
from contextlib import asynccontextmanager

import jsonschema
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

BINARY = ""


@asynccontextmanager
async def server(*flags):
    params = StdioServerParameters(command=BINARY, args=["mcp", *flags], env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


def text(result):
    return "".join(block.text for block in result.content if getattr(block, "type", "") == "text")


def check(condition, what, *details):
    if not condition:
        raise AssertionError(f"{what}: " + " | ".join(repr(d) for d in details))


async def ok(session, tool, arguments):
    result = await session.call_tool(tool, arguments)
    check(not result.is_error, f"{tool} {arguments} succeeds", text(result))
    return result


async def tool_error(session, tool, arguments):
    result = await session.call_tool(tool, arguments)
    check(result.is_error, f"{tool} {arguments} is a tool error", text(result))
    return result


async def protocol_error(session, tool, arguments):
    try:
        result = await session.call_tool(tool, arguments)
    except MCPError as error:
        return error
    raise AssertionError(f"{tool} {arguments} should be a JSON-RPC error, got {result}")


async def list_tools(session):
    tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    for tool in tools.values():
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        check(tool.input_schema.get("type") == "object", "input schema is an object", tool.name)
        if tool.output_schema is not None:
            jsonschema.Draft202012Validator.check_schema(tool.output_schema)
        check(len(tool.description or "") > 80, "a description for a model", tool.name)
        a = tool.annotations
        check(a is not None and a.read_only_hint is not None, "annotations", tool.name)
        check(a.destructive_hint is not None and a.idempotent_hint is not None, "hints", tool.name)
    return tools


READ_TOOLS = ["cancel", "columns", "context", "describe", "queries", "query", "result", "tables", "use"]


async def read_only(db):
    """Every read-only tool, a SQL error, a refused write, and protocol errors."""
    async with server() as session:
        tools = await list_tools(session)
        check(sorted(tools) == READ_TOOLS, "read-only tools", sorted(tools))
        for name in ["describe", "tables", "columns", "result", "queries"]:
            check(tools[name].annotations.read_only_hint is True, "reads only", name)
        check(tools["query"].annotations.read_only_hint is True, "query is read-only")
        check(tools["query"].input_schema["required"] == ["sql"], "sql is required")

        context = await ok(session, "context", {})
        check("in_transaction" in context.structured_content, "context facts", context.structured_content)

        used = await ok(session, "use", {"database": db, "schema": "PUBLIC"})
        check(used.structured_content["context"]["database"] == db, "use sets the database", used.structured_content)

        result = await ok(session, "query", {"sql": "SELECT CURRENT_DATABASE() AS DB, 1 + 1 AS TWO"})
        check(result.structured_content["rows"] == [[db, 2]], "rows", result.structured_content)
        check(f"| {db} | 2 |" in text(result), "a markdown table", text(result))

        # The budgets: rows by the daemon, characters here; both reported as facts.
        sql = "SELECT seq4() AS N, 'padding padding padding padding ' || seq4() AS PAD FROM TABLE(GENERATOR(ROWCOUNT => 300))"
        cut = await ok(session, "query", {"sql": sql, "max_rows": 200, "max_chars": 2000})
        facts = cut.structured_content
        check(facts["truncated_by_max_rows"] and facts["truncated_by_max_chars"], "truncation facts", facts)
        check(0 < facts["rows_shown"] < 200 and len(facts["rows"]) == facts["rows_shown"], "rows shown", facts)
        check("max_chars" in text(cut) and len(text(cut)) < 2400, "a notice within the budget", text(cut))
        as_json = await ok(session, "query", {"sql": "SELECT 7 AS SEVEN", "format": "json"})
        check(json.loads(text(as_json))["rows"] == [[7]], "json format", text(as_json))

        failed = await tool_error(session, "query", {"sql": "SELECT * FROM NO_SUCH_TABLE_ANYWHERE"})
        check("NO_SUCH_TABLE_ANYWHERE" in text(failed), "Snowflake's message", text(failed))
        check("code " in text(failed) and "query id " in text(failed), "code and query id", text(failed))
        check(failed.structured_content is None, "no structured content on errors", failed.structured_content)

        refused = await tool_error(session, "query", {"sql": f"CREATE TABLE {db}.PUBLIC.NOPE (n INT)"})
        check("execute" in text(refused), "the hint names the execute tool", text(refused))

        await protocol_error(session, "execute", {"sql": "DELETE FROM T"})
        await protocol_error(session, "no_such_tool", {})
        await protocol_error(session, "query", {})
        await protocol_error(session, "query", {"sql": "SELECT 1", "read_only": False})
        await protocol_error(session, "use", {})

        # The server is still serving after all of that.
        await ok(session, "query", {"sql": "SELECT 1"})

        await binds(session)
        await catalog(session, db)
        await long_statements(session)


async def binds(session):
    """`params`: positional for `?`, named for `:name`, typed values; a bad one is a tool error."""
    positional = await ok(session, "query", {"sql": "SELECT ? AS A, ? AS B", "params": [41, "it's"]})
    check(positional.structured_content["rows"] == [[41, "it's"]], "positional binds", positional.structured_content)
    named = await ok(session, "query", {"sql": "SELECT :n + 1 AS N", "params": {"n": 6}})
    check(named.structured_content["rows"] == [[7]], "named binds", named.structured_content)
    typed = await ok(session, "query", {"sql": "SELECT ? AS D", "params": [{"type": "date", "value": "2024-01-31"}]})
    check(typed.structured_content["rows"] == [["2024-01-31"]], "typed binds", typed.structured_content)
    bad = await tool_error(session, "query", {"sql": "SELECT ?", "params": [{"type": "nosuch", "value": 1}]})
    check("nosuch" in text(bad), "names the bad type", text(bad))


async def catalog(session, db):
    """`describe`, `tables` and `columns` on the table the test made (db.PUBLIC.ORDERS)."""
    described = await ok(session, "describe", {"name": "orders", "sample": 2})
    names = [row[0] for row in described.structured_content["columns"]["rows"]]
    check(names == ["ID", "CUSTOMER_ID", "NOTE"], "the columns", described.structured_content)
    check(len(described.structured_content["sample"]["rows"]) == 2, "two sample rows", described.structured_content)
    check("sample rows of orders" in text(described), "the sample in the text", text(described))

    tables = await ok(session, "tables", {"pattern": "ord"})
    check([r[1] for r in tables.structured_content["rows"]] == ["ORDERS"], "tables by pattern", tables.structured_content)
    elsewhere = await ok(session, "tables", {"pattern": "ord", "in": f"{db}.NO_SUCH_SCHEMA"})
    check(elsewhere.structured_content["rows"] == [], "tables in another schema", elsewhere.structured_content)
    # A pattern is a bound value: a quote in it is a character to match, not SQL.
    quoted = await ok(session, "tables", {"pattern": "x' OR 'a'='a"})
    check(quoted.structured_content["rows"] == [], "a pattern is not SQL", quoted.structured_content)

    columns = await ok(session, "columns", {"pattern": "customer"})
    found = [(r[1], r[2]) for r in columns.structured_content["rows"]]
    check(found == [("ORDERS", "CUSTOMER_ID")], "columns by pattern", columns.structured_content)
    cut = await ok(session, "columns", {"pattern": "%", "in": db, "max_rows": 1})
    check(cut.structured_content["truncated_by_max_rows"], "a cut list", cut.structured_content)
    check(cut.structured_content["total_rows"] == 3, "says how many there are", cut.structured_content)
    check("showing 1 of 3 columns" in text(cut), "and says it in the text", text(cut))

    bad = await tool_error(session, "describe", {"name": "t; DROP TABLE x"})
    check("is not a name" in text(bad), "a bad name", text(bad))


async def long_statements(session):
    """A statement that outlives the wait answers its id; `queries`, `result` and `cancel` follow it."""
    started = await ok(session, "query", {"sql": "SELECT SYSTEM$WAIT(2) AS W", "wait_s": 0})
    facts = started.structured_content
    check(facts["state"] == "running" and facts["id"], "still running, with its id", facts)
    check("`result`" in text(started) and facts["id"] in text(started), "says how to go on", text(started))
    statement = facts["id"]

    listed = await ok(session, "queries", {})
    states = {s["id"]: s["state"] for s in listed.structured_content["statements"]}
    check(states.get(statement) == "running", "queries lists it as running", listed.structured_content)

    done = await ok(session, "result", {"id": statement, "wait_s": 60})
    check(done.structured_content["state"] == "succeeded", "result waits for it", done.structured_content)
    check(len(done.structured_content["rows"]) == 1, "and returns its row", done.structured_content)

    # Paging: rows past max_rows come from the daemon, without running the statement again.
    sql = "SELECT seq4() AS N FROM TABLE(GENERATOR(ROWCOUNT => 250)) ORDER BY N"
    first = await ok(session, "query", {"sql": sql, "max_rows": 100})
    check(first.structured_content["truncated_by_max_rows"], "the first page is cut", first.structured_content)
    check(f'"offset": 100' in text(first), "names the next page", text(first))
    second = await ok(session, "result", {"id": first.structured_content["id"], "offset": 100, "max_rows": 100})
    page = second.structured_content
    check(page["offset"] == 100 and page["rows"][0] == [100] and len(page["rows"]) == 100, "the second page", page)

    slow = await ok(session, "query", {"sql": "SELECT SYSTEM$WAIT(60)", "wait_s": 0})
    cancelled = await ok(session, "cancel", {"id": slow.structured_content["id"]})
    check(cancelled.structured_content["state"] == "cancelled", "cancel stops it", cancelled.structured_content)
    gone = await tool_error(session, "result", {"id": slow.structured_content["id"], "wait_s": 0})
    check("cancel" in text(gone), "its result says it was cancelled", text(gone))
    await tool_error(session, "cancel", {"id": "no-such-statement"})


async def writes(db):
    """`execute` with --allow-writes: one transaction per call."""
    async with server("--allow-writes") as session:
        tools = await list_tools(session)
        check("execute" in tools, "execute is offered", sorted(tools))
        hints = tools["execute"].annotations
        check(hints.destructive_hint is True and hints.read_only_hint is False, "destructive", hints)

        table = f"{db}.PUBLIC.T"
        await ok(session, "execute", {"sql": f"CREATE TABLE {table} (n INT)"})
        await ok(session, "execute", {"sql": f"INSERT INTO {table} VALUES (?), (?)", "params": [1, 2]})
        # A failing statement rolls back the whole call, including the insert before it.
        await tool_error(session, "execute", {"sql": f"INSERT INTO {table} VALUES (3); SELECT * FROM NO_SUCH_TABLE"})
        count = await ok(session, "query", {"sql": f"SELECT COUNT(*), SUM(n) FROM {table}"})
        check(count.structured_content["rows"] == [[2, 3]], "the failed call changed nothing", count.structured_content)
        # Reads still go through the read-only tool only.
        await tool_error(session, "query", {"sql": f"DELETE FROM {table}"})


async def concurrent(db_a, db_b):
    """Two MCP clients at once, each with its own context; nothing bleeds."""
    async with server() as a, server() as b:
        await ok(a, "use", {"database": db_a})
        await ok(b, "use", {"database": db_b})

        async def current(session):
            result = await ok(session, "query", {"sql": "SELECT CURRENT_DATABASE()"})
            return result.structured_content["rows"][0][0]

        seen = await asyncio.gather(*[current(a if i % 2 == 0 else b) for i in range(20)])
        expected = [db_a if i % 2 == 0 else db_b for i in range(20)]
        check(seen == expected, "each client sees only its own database", seen)
        context_b = await ok(b, "context", {})
        check(context_b.structured_content["context"]["database"] == db_b, "b's context", context_b.structured_content)

        # Statements are private too: b neither sees nor reads nor cancels a's.
        started = await ok(a, "query", {"sql": "SELECT SYSTEM$WAIT(1) AS W", "wait_s": 0})
        statement = started.structured_content["id"]
        listed = await ok(b, "queries", {"all": True})
        check(all(s["id"] != statement for s in listed.structured_content["statements"]), "b's list", listed.structured_content)
        await tool_error(b, "result", {"id": statement, "wait_s": 0})
        await tool_error(b, "cancel", {"id": statement})
        done = await ok(a, "result", {"id": statement, "wait_s": 60})
        check(done.structured_content["state"] == "succeeded", "a's statement ran on", done.structured_content)


async def idle(db):
    """One session across the daemon's idle exit: the test's activator starts it again."""
    async with server() as session:
        await ok(session, "use", {"database": db})
        print("WAITING-FOR-IDLE-EXIT", flush=True)
        line = await asyncio.to_thread(sys.stdin.readline)
        check(line.strip() == "go", "the test says the daemon has exited", line)
        result = await ok(session, "query", {"sql": "SELECT CURRENT_DATABASE()"})
        check(result.structured_content["rows"] == [[db]], "the context survived", result.structured_content)


async def unreachable():
    """No daemon and no way to start one: a clear tool error, and the server lives on."""
    async with server() as session:
        failed = await tool_error(session, "query", {"sql": "SELECT 1"})
        check("could not be reached" in text(failed), "says the daemon is unreachable", text(failed))
        failed = await tool_error(session, "context", {})
        await session.send_ping()


SCENARIOS = {
    "read_only": read_only,
    "writes": writes,
    "concurrent": concurrent,
    "idle": idle,
    "unreachable": unreachable,
}

if __name__ == "__main__":
    scenario, BINARY, *arguments = sys.argv[1:]
    asyncio.run(SCENARIOS[scenario](*arguments))
    print("OK", flush=True)
