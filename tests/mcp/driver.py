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


async def read_only(db):
    """Every read-only tool, a SQL error, a refused write, and protocol errors."""
    async with server() as session:
        tools = await list_tools(session)
        check(sorted(tools) == ["context", "query", "use"], "read-only tools", sorted(tools))
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


async def writes(db):
    """`execute` with --allow-writes: one transaction per call."""
    async with server("--allow-writes") as session:
        tools = await list_tools(session)
        check("execute" in tools, "execute is offered", sorted(tools))
        hints = tools["execute"].annotations
        check(hints.destructive_hint is True and hints.read_only_hint is False, "destructive", hints)

        table = f"{db}.PUBLIC.T"
        await ok(session, "execute", {"sql": f"CREATE TABLE {table} (n INT); INSERT INTO {table} VALUES (1), (2)"})
        # A failing statement rolls back the whole call, including the insert before it.
        await tool_error(session, "execute", {"sql": f"INSERT INTO {table} VALUES (3); SELECT * FROM NO_SUCH_TABLE"})
        count = await ok(session, "query", {"sql": f"SELECT COUNT(*) FROM {table}"})
        check(count.structured_content["rows"] == [[2]], "the failed call changed nothing", count.structured_content)
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
