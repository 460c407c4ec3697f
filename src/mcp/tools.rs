//! The MCP tools: their names, arguments (with JSON schemas generated from these types, so
//! schema and parser cannot drift apart), descriptions written for a model, and annotations.
//!
//! Adding a tool is three edits here — a [`ToolKind`] variant, its entry in [`definition`],
//! its arguments type — and one arm in `server::SnowflakedMcp::dispatch`.
//!
//! `query` and `execute` wait a bounded time ([`DEFAULT_WAIT_S`] unless the call says
//! otherwise, well under the 60 s many MCP clients give a tool call): a statement that
//! outlives it goes on in the daemon, and the answer is its id and state, for `result`,
//! `queries` and `cancel`.

use rmcp::model::{Tool, ToolAnnotations};
use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

/// How long `query`, `execute` and `result` wait for a statement when the call names no
/// `wait_s`: well under the 60 s request timeout of common MCP clients, so the answer (rows,
/// or the id of a statement still running) always arrives.
pub const DEFAULT_WAIT_S: u64 = 45;

/// Every tool this server can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolKind {
    Query,
    Execute,
    Use,
    Context,
    Describe,
    Tables,
    Columns,
    Result,
    Queries,
    Cancel,
}

impl ToolKind {
    pub fn name(self) -> &'static str {
        match self {
            ToolKind::Query => "query",
            ToolKind::Execute => "execute",
            ToolKind::Use => "use",
            ToolKind::Context => "context",
            ToolKind::Describe => "describe",
            ToolKind::Tables => "tables",
            ToolKind::Columns => "columns",
            ToolKind::Result => "result",
            ToolKind::Queries => "queries",
            ToolKind::Cancel => "cancel",
        }
    }

    /// The tool called `name`, if this server offers it (`execute` only with writes allowed).
    pub fn find(name: &str, allow_writes: bool) -> Option<ToolKind> {
        offered(allow_writes).into_iter().find(|t| t.name() == name)
    }
}

/// The tools offered, in the order they are listed.
pub fn offered(allow_writes: bool) -> Vec<ToolKind> {
    let mut tools = vec![
        ToolKind::Query,
        ToolKind::Use,
        ToolKind::Context,
        ToolKind::Describe,
        ToolKind::Tables,
        ToolKind::Columns,
        ToolKind::Result,
        ToolKind::Queries,
        ToolKind::Cancel,
    ];
    if allow_writes {
        tools.insert(1, ToolKind::Execute);
    }
    tools
}

/// The definitions `tools/list` returns.
pub fn definitions(allow_writes: bool) -> Vec<Tool> {
    offered(allow_writes).into_iter().map(definition).collect()
}

/// What a tool may do, as MCP's annotations say it.
#[derive(Clone, Copy)]
struct Hints {
    read_only: bool,
    destructive: bool,
    idempotent: bool,
}

/// Reads only: nothing changes, calling twice is calling once.
const READS: Hints = Hints {
    read_only: true,
    destructive: false,
    idempotent: true,
};

fn tool<Args: JsonSchema + 'static, Output: JsonSchema + 'static>(
    kind: ToolKind,
    title: &str,
    description: &str,
    hints: Hints,
) -> Tool {
    Tool::new(
        kind.name(),
        description.to_string(),
        rmcp::model::JsonObject::new(),
    )
    .with_title(title)
    .with_input_schema::<Args>()
    .with_output_schema::<Output>()
    .with_annotations(
        ToolAnnotations::new()
            .open_world(false)
            .read_only(hints.read_only)
            .destructive(hints.destructive)
            .idempotent(hints.idempotent),
    )
}

fn definition(kind: ToolKind) -> Tool {
    match kind {
        ToolKind::Query => tool::<QueryArgs, QueryOutput>(
            kind,
            "Run a read-only SQL query on Snowflake",
            QUERY_DESCRIPTION,
            READS,
        ),
        ToolKind::Execute => tool::<QueryArgs, QueryOutput>(
            kind,
            "Run SQL that changes Snowflake data, in one transaction",
            EXECUTE_DESCRIPTION,
            Hints {
                read_only: false,
                destructive: true,
                idempotent: false,
            },
        ),
        // It changes only this client's own context, never data: not destructive, and
        // setting the same value twice is the same as once.
        ToolKind::Use => tool::<UseArgs, ContextOutput>(
            kind,
            "Set the database, schema, warehouse, role or query tag",
            USE_DESCRIPTION,
            Hints {
                read_only: false,
                destructive: false,
                idempotent: true,
            },
        ),
        ToolKind::Context => tool::<ContextArgs, ContextOutput>(
            kind,
            "Show the current database, schema, warehouse and role",
            CONTEXT_DESCRIPTION,
            READS,
        ),
        ToolKind::Describe => tool::<DescribeArgs, DescribeOutput>(
            kind,
            "Show a table's or view's columns (and a few rows)",
            DESCRIBE_DESCRIPTION,
            READS,
        ),
        ToolKind::Tables => tool::<TablesArgs, QueryOutput>(
            kind,
            "List tables and views matching a pattern",
            TABLES_DESCRIPTION,
            READS,
        ),
        ToolKind::Columns => tool::<ColumnsArgs, QueryOutput>(
            kind,
            "Find columns by name across a database",
            COLUMNS_DESCRIPTION,
            READS,
        ),
        ToolKind::Result => tool::<ResultArgs, QueryOutput>(
            kind,
            "Get a long statement's result, or a further page of one",
            RESULT_DESCRIPTION,
            READS,
        ),
        ToolKind::Queries => tool::<QueriesArgs, QueriesOutput>(
            kind,
            "List this conversation's running and recent statements",
            QUERIES_DESCRIPTION,
            READS,
        ),
        // Stopping a statement loses no data (a cancelled write is rolled back), and cancelling
        // twice is cancelling once.
        ToolKind::Cancel => tool::<CancelArgs, CancelOutput>(
            kind,
            "Cancel a running statement",
            CANCEL_DESCRIPTION,
            Hints {
                read_only: false,
                destructive: false,
                idempotent: true,
            },
        ),
    }
}

const QUERY_DESCRIPTION: &str = "Run read-only SQL on Snowflake (SELECT, SHOW, DESCRIBE, EXPLAIN, WITH … SELECT) \
and get the result as a markdown table (or JSON). Statements that could change data are refused \
before they reach Snowflake. Unqualified names resolve against the current context (see the \
`context` and `use` tools); it persists between calls. Put values into the SQL as bind \
parameters, never by pasting them in: `?` placeholders with `params` an array, or `:name` with \
`params` an object (one statement per call then). Results are capped: at most `max_rows` rows (default 100) and `max_chars` \
characters (default 20000); the answer says when rows were cut, so aggregate, filter or add \
LIMIT rather than raising the caps. Several statements may be separated by `;`; the last one's \
result is returned. Long statements: the call waits at most `wait_s` seconds (default 45); if \
the statement is still running then, the answer is its `id` and state `running` — it goes on \
in snowflaked: call `result` with the id to wait for and read its rows, or `cancel` to stop \
it. If this MCP client goes away, statements it left running are cancelled.";

const EXECUTE_DESCRIPTION: &str = "Run SQL that changes Snowflake data or objects (INSERT, UPDATE, DELETE, MERGE, \
CREATE, ALTER, DROP, …). DESTRUCTIVE: changes are real and visible to everyone. All statements \
of one call (separated by `;`) run in a single transaction: if any fails, every one of them is \
rolled back and nothing is changed. Pass values as bind parameters (`params`, as for `query`). \
Use `query` for reads. Returns the last statement's result (e.g. the number of rows affected) \
within the same caps as `query`. Like `query`, it waits at most `wait_s` seconds (default 45) \
and then answers the statement's `id` and state `running` while it goes on: call `result` \
with the id to learn whether it committed, or `cancel` to stop and roll it back.";

const USE_DESCRIPTION: &str = "Change this conversation's Snowflake context: database, schema, warehouse, role \
and/or query tag (give only the ones to change). Like USE DATABASE/SCHEMA/WAREHOUSE/ROLE, but \
it persists for every later call of this client and never affects other clients. Names follow \
SQL rules: unquoted names are upper-cased, \"Quoted\" names are kept as written; a schema may be \
given as DB.SCHEMA. Returns the resulting context.";

const CONTEXT_DESCRIPTION: &str = "Show this conversation's current Snowflake context: database, schema, warehouse, \
role, query tag, and whether a transaction is open. Call it to learn where unqualified table \
names resolve before writing SQL.";

const DESCRIBE_DESCRIPTION: &str = "Show the columns of one table or view (name, type, nullable, default, comment) and, \
with `sample`, its first few rows. `name` is NAME, SCHEMA.NAME or DB.SCHEMA.NAME, resolved \
against the current context; unquoted parts are upper-cased, \"Quoted\" parts keep their case. \
Call it before writing a query against a table whose columns you do not know.";

const TABLES_DESCRIPTION: &str = "List tables and views (schema, name, kind, rows, bytes, comment) whose names match \
`pattern`, a case-insensitive LIKE pattern (`%` any text, `_` one character; without `%` it \
matches names containing it; absent: all). Looks in the current schema, or in `in`: DB (every \
schema) or DB.SCHEMA. When the list is cut by `max_rows` the answer says how many there are; \
narrow the pattern rather than raising the cap.";

const COLUMNS_DESCRIPTION: &str = "Find columns whose names match `pattern` (a case-insensitive LIKE pattern, as for \
`tables`) across every schema of the current database, or in `in`: DB or DB.SCHEMA. Answers \
schema, table, column, type and nullable for each, e.g. to learn which tables hold a \
CUSTOMER_ID. When the list is cut by `max_rows` the answer says how many there are.";

const RESULT_DESCRIPTION: &str = "Get the result of a statement by its `id` (what `query`, `execute` or `queries` \
answered): waits at most `wait_s` seconds (default 45) for one still running and then answers \
its state again, so call it repeatedly for a long statement. Also pages through any result \
without running the statement again: `offset` skips rows, `max_rows` rows per page (default \
100). A statement that failed or was cancelled answers its error.";

const QUERIES_DESCRIPTION: &str = "List this conversation's statements that are running or whose results snowflaked \
still holds (`all`: older ones too): id, state (running, succeeded, failed, cancelled), start \
time, elapsed time, rows and the first line of the SQL. Use the id with `result` or `cancel`.";

const CANCEL_DESCRIPTION: &str = "Cancel one of this conversation's running statements by its `id` (from `query`, \
`execute` or `queries`). Snowflake stops it; a cancelled `execute` is rolled back. Answers the \
statement's state after the cancel (cancelled, or succeeded if it finished first).";

/// Output format of a result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
pub enum ResultFormat {
    /// A markdown table followed by one status line (row count, query id, time).
    #[default]
    Markdown,
    /// One JSON object: query_id, columns, rows (arrays), row_count, truncated, context.
    Json,
}

/// Arguments of `query` and `execute`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
#[schemars(transform = portable)]
pub struct QueryArgs {
    /// The SQL to run. Several statements may be separated by `;`.
    pub sql: String,
    /// Bind parameters: an array for `?` placeholders (in order) or an object for `:name`
    /// ones. Strings bind as text, integers as int, other numbers as float, booleans as bool,
    /// null as NULL; any other type as {"type": "date", "value": "2024-01-31"} (types: text,
    /// int, number, float, bool, date, time, timestamp, timestamp_ltz, timestamp_tz, binary).
    #[serde(default)]
    #[schemars(schema_with = "params_schema")]
    pub params: Option<serde_json::Value>,
    /// Return at most this many rows (0 = all rows; default 100).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_rows: Option<u64>,
    /// Character budget of the returned text; rows beyond it are cut and the answer says so
    /// (0 = no budget; default 20000).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_chars: Option<usize>,
    /// `markdown` (default) or `json`.
    #[serde(default)]
    pub format: Option<ResultFormat>,
    /// Cancel the statement if it runs longer than this many seconds (default: the daemon's).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub timeout_s: Option<u64>,
    /// Wait at most this many seconds for the result (default 45; 0 = start it and answer at
    /// once). A statement still running then goes on: the answer is its id, for `result`.
    #[serde(default)]
    #[schemars(range(min = 0, max = 3600))]
    pub wait_s: Option<u64>,
}

/// `params`: an array or an object of JSON values (each as the daemon's API takes it).
fn params_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let any = serde_json::json!({"anyOf": [
        {"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"},
        {"type": "object", "properties": {"type": {"type": "string"}, "value": {}}, "required": ["type", "value"]}
    ]});
    schemars::json_schema!({
        "anyOf": [
            {"type": "array", "items": any},
            {"type": "object", "additionalProperties": any}
        ]
    })
}

/// Arguments of `use`: the parts of the context to change; at least one.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 1))]
#[schemars(transform = portable)]
pub struct UseArgs {
    /// The database, e.g. ANALYTICS.
    #[serde(default)]
    pub database: Option<String>,
    /// The schema, e.g. PUBLIC or ANALYTICS.PUBLIC.
    #[serde(default)]
    pub schema: Option<String>,
    /// The warehouse that runs the queries.
    #[serde(default)]
    pub warehouse: Option<String>,
    /// The role whose privileges apply.
    #[serde(default)]
    pub role: Option<String>,
    /// A tag attached to the following statements ("" clears it).
    #[serde(default)]
    pub query_tag: Option<String>,
}

impl UseArgs {
    /// Nothing to change: a malformed call, not a no-op.
    pub fn is_empty(&self) -> bool {
        [
            &self.database,
            &self.schema,
            &self.warehouse,
            &self.role,
            &self.query_tag,
        ]
        .iter()
        .all(|v| v.is_none())
    }
}

/// `context` takes no arguments.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct ContextArgs {}

/// Arguments of `describe`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
#[schemars(transform = portable)]
pub struct DescribeArgs {
    /// The table or view: NAME, SCHEMA.NAME or DB.SCHEMA.NAME.
    pub name: String,
    /// Also return this many of its rows (default 0: none).
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub sample: Option<u64>,
    /// Show at most this many columns (0 = all; default 100).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_rows: Option<u64>,
    /// Character budget of the returned text (0 = no budget; default 20000).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_chars: Option<usize>,
    /// `markdown` (default) or `json`.
    #[serde(default)]
    pub format: Option<ResultFormat>,
}

/// Arguments of `tables`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
#[schemars(transform = portable)]
pub struct TablesArgs {
    /// Case-insensitive LIKE pattern for the names; without `%` it matches names containing
    /// it (default: all).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Where to look: DB (every schema) or DB.SCHEMA (default: the current schema).
    #[serde(default, rename = "in")]
    pub within: Option<String>,
    /// Show at most this many entries (0 = all; default 100).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_rows: Option<u64>,
    /// Character budget of the returned text (0 = no budget; default 20000).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_chars: Option<usize>,
    /// `markdown` (default) or `json`.
    #[serde(default)]
    pub format: Option<ResultFormat>,
}

/// Arguments of `columns`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
#[schemars(transform = portable)]
pub struct ColumnsArgs {
    /// Case-insensitive LIKE pattern for column names; without `%` it matches names
    /// containing it.
    pub pattern: String,
    /// Where to look: DB or DB.SCHEMA (default: every schema of the current database).
    #[serde(default, rename = "in")]
    pub within: Option<String>,
    /// Show at most this many entries (0 = all; default 100).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_rows: Option<u64>,
    /// Character budget of the returned text (0 = no budget; default 20000).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_chars: Option<usize>,
    /// `markdown` (default) or `json`.
    #[serde(default)]
    pub format: Option<ResultFormat>,
}

/// Arguments of `result`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
#[schemars(transform = portable)]
pub struct ResultArgs {
    /// The statement's id, as `query`, `execute` or `queries` answered it.
    pub id: String,
    /// Skip this many rows (default 0).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub offset: Option<u64>,
    /// Return at most this many rows (0 = all rows; default 100).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_rows: Option<u64>,
    /// Character budget of the returned text (0 = no budget; default 20000).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub max_chars: Option<usize>,
    /// `markdown` (default) or `json`.
    #[serde(default)]
    pub format: Option<ResultFormat>,
    /// Wait at most this many seconds for a statement still running (default 45; 0 = answer
    /// its state at once).
    #[serde(default)]
    #[schemars(range(min = 0, max = 3600))]
    pub wait_s: Option<u64>,
}

/// Arguments of `queries`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
#[schemars(transform = portable)]
pub struct QueriesArgs {
    /// Also list statements whose results snowflaked no longer holds (default false).
    #[serde(default)]
    pub all: Option<bool>,
}

/// Arguments of `cancel`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(deny_unknown_fields)]
pub struct CancelArgs {
    /// The running statement's id.
    pub id: String,
}

/// One result column.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[schemars(transform = portable)]
pub struct ColumnOutput {
    pub name: String,
    /// Snowflake's type name, e.g. FIXED, TEXT, TIMESTAMP_NTZ.
    #[serde(rename = "type")]
    pub ty: String,
}

/// A context as the tools report it; unset parts are absent.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[schemars(transform = portable)]
pub struct ContextFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_tag: Option<String>,
}

/// The structured result of `query`, `execute`, `result`, `tables` and `columns`: the rows
/// that fit the budget and the facts about what was cut — or, for a statement still running,
/// its id and state with no rows.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[schemars(transform = portable)]
pub struct QueryOutput {
    /// `succeeded` (the rows are here) or `running` (call `result` with `id` later).
    pub state: String,
    /// snowflaked's id of the statement, for `result` and `cancel`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Snowflake's query id, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_id: Option<String>,
    pub columns: Vec<ColumnOutput>,
    /// The rows returned (as arrays of cells), at most `rows_shown` of them.
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Rows the daemon returned (at most `max_rows`).
    pub row_count: u64,
    /// Rows included here after the character budget.
    pub rows_shown: u64,
    /// True when more rows exist than `max_rows` allowed.
    pub truncated_by_max_rows: bool,
    /// True when rows were left out to stay within `max_chars`.
    pub truncated_by_max_chars: bool,
    /// The first row's position in the whole result (pages of `result`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Rows (or entries, for `tables` and `columns`) in the whole result, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_rows: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextFields>,
    /// True while this client holds an open transaction.
    pub in_transaction: bool,
    pub elapsed_ms: u64,
    /// What the caller must hear besides the result.
    pub warnings: Vec<String>,
}

/// The structured result of `use` and `context`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[schemars(transform = portable)]
pub struct ContextOutput {
    pub context: ContextFields,
    /// True while this client holds an open transaction.
    pub in_transaction: bool,
}

/// The structured result of `describe`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[schemars(transform = portable)]
pub struct DescribeOutput {
    /// The name as given.
    pub name: String,
    /// One row per column: name, type, nullable, default, comment.
    pub columns: QueryOutput,
    /// The sample rows, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<QueryOutput>,
}

/// One statement as `queries` lists it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[schemars(transform = portable)]
pub struct StatementOutput {
    pub id: String,
    /// `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_id: Option<String>,
    /// RFC 3339, UTC.
    pub started: String,
    pub elapsed_ms: u64,
    /// Rows of the whole result, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// The first line of the SQL.
    pub sql: String,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The structured result of `queries`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[schemars(transform = portable)]
pub struct QueriesOutput {
    pub statements: Vec<StatementOutput>,
}

/// The structured result of `cancel`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[schemars(transform = portable)]
pub struct CancelOutput {
    pub id: String,
    /// The state after the cancel: `cancelled`, `succeeded` or `failed` (it finished first),
    /// or `running` (Snowflake has not stopped it yet).
    pub state: String,
}

/// Makes a generated schema portable across MCP clients (what `mcp-inspector --cli --strict`
/// and its clients check): an optional argument is absent rather than `null` (no `["integer", "null"]` types,
/// no `anyOf` with a null branch, no `default: null`), and "any JSON value" (a result cell) is
/// spelled as explicit branches instead of a bare `true` schema. The parsers still accept
/// `null` for an optional argument; output fields that would be null are left out.
fn portable(schema: &mut schemars::Schema) {
    if let Some(object) = schema.as_object_mut() {
        portable_object(object);
    }
}

fn portable_object(object: &mut serde_json::Map<String, serde_json::Value>) {
    use serde_json::Value;
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            object.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(branches)) = object.get_mut("anyOf") {
        branches.retain(|b| b.get("type").is_none_or(|t| t != "null"));
        if branches.len() == 1
            && let Value::Object(only) = branches.remove(0)
        {
            object.remove("anyOf");
            for (key, value) in only {
                object.entry(key).or_insert(value);
            }
        }
    }
    if object.get("default") == Some(&Value::Null) {
        object.remove("default");
    }
    // `uint64` and friends are schemars' own formats, unknown to validators (which warn).
    if object
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| f.starts_with("uint") || f.starts_with("int"))
    {
        object.remove("format");
    }
    // Only the places that hold schemas: a `true` under `const` or `default` is a value.
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = object.get_mut(key) {
            portable_schema(sub);
        }
    }
    for key in ["properties", "$defs"] {
        if let Some(Value::Object(map)) = object.get_mut(key) {
            map.values_mut().for_each(portable_schema);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(list)) = object.get_mut(key) {
            list.iter_mut().for_each(portable_schema);
        }
    }
}

fn portable_schema(schema: &mut serde_json::Value) {
    match schema {
        serde_json::Value::Bool(true) => {
            *schema = serde_json::json!({"anyOf": [
                {"type": "string"}, {"type": "number"}, {"type": "boolean"},
                {"type": "null"}, {"type": "object"}, {"type": "array"}
            ]});
        }
        serde_json::Value::Object(object) => portable_object(object),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_is_offered_only_with_writes_allowed() {
        assert_eq!(ToolKind::find("execute", false), None);
        assert_eq!(ToolKind::find("execute", true), Some(ToolKind::Execute));
        assert_eq!(ToolKind::find("nope", true), None);
        let names: Vec<_> = definitions(false)
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "query", "use", "context", "describe", "tables", "columns", "result", "queries",
                "cancel"
            ]
        );
    }

    #[test]
    fn every_tool_has_an_object_schema_a_description_and_annotations() {
        for tool in definitions(true) {
            assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
            assert!(tool.output_schema.is_some(), "{}", tool.name);
            assert!(tool.description.as_deref().unwrap_or("").len() > 80);
            let a = tool.annotations.expect("annotations");
            assert!(a.read_only_hint.is_some() && a.destructive_hint.is_some());
            assert!(a.idempotent_hint.is_some());
        }
        let execute = definition(ToolKind::Execute);
        assert_eq!(execute.annotations.unwrap().destructive_hint, Some(true));
        let query = definition(ToolKind::Query);
        assert_eq!(query.annotations.unwrap().read_only_hint, Some(true));
        assert!(query.input_schema["required"] == serde_json::json!(["sql"]));
    }

    /// What `mcp-inspector --cli --strict` and the TypeScript SDK flagged in the schemas
    /// schemars generates by itself.
    #[test]
    fn schemas_are_portable() {
        fn check(path: &str, value: &serde_json::Value) {
            match value {
                serde_json::Value::Object(object) => {
                    assert!(!object.get("type").is_some_and(|t| t.is_array()), "{path}");
                    assert_ne!(
                        object.get("default"),
                        Some(&serde_json::Value::Null),
                        "{path}"
                    );
                    assert!(
                        !object
                            .get("format")
                            .is_some_and(|f| f.as_str().unwrap_or("").starts_with("uint")),
                        "{path}"
                    );
                    for key in ["items", "additionalProperties"] {
                        if let Some(sub) = object.get(key) {
                            assert_ne!(sub, &serde_json::Value::Bool(true), "{path}.{key}");
                        }
                    }
                    for (key, sub) in object {
                        check(&format!("{path}.{key}"), sub);
                    }
                }
                serde_json::Value::Array(items) => {
                    for item in items {
                        check(path, item);
                    }
                }
                _ => {}
            }
        }
        for tool in definitions(true) {
            check(
                &tool.name,
                &serde_json::Value::Object((*tool.input_schema).clone()),
            );
            let output = tool.output_schema.unwrap();
            check(&tool.name, &serde_json::Value::Object((*output).clone()));
        }
    }

    #[test]
    fn params_are_an_array_or_an_object_and_waits_are_bounded() {
        let query = definition(ToolKind::Query);
        let params = &query.input_schema["properties"]["params"];
        let shapes: Vec<_> = params["anyOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["type"].as_str().unwrap())
            .collect();
        assert_eq!(shapes, ["array", "object"], "{params}");
        assert!(params["description"].as_str().unwrap().contains(":name"));
        assert_eq!(query.input_schema["properties"]["wait_s"]["maximum"], 3600);
        let args: QueryArgs =
            serde_json::from_value(serde_json::json!({"sql": "select ?", "params": [1]})).unwrap();
        assert_eq!(args.params, Some(serde_json::json!([1])));
        // Under common MCP clients' request timeout.
        const { assert!(DEFAULT_WAIT_S < 60) };
    }

    #[test]
    fn catalog_and_statement_tools_only_read_except_cancel() {
        for kind in [
            ToolKind::Describe,
            ToolKind::Tables,
            ToolKind::Columns,
            ToolKind::Result,
            ToolKind::Queries,
        ] {
            let a = definition(kind).annotations.unwrap();
            assert_eq!(a.read_only_hint, Some(true), "{}", kind.name());
        }
        let cancel = definition(ToolKind::Cancel).annotations.unwrap();
        assert_eq!(cancel.read_only_hint, Some(false));
        assert_eq!(cancel.destructive_hint, Some(false));
        let tables = definition(ToolKind::Tables);
        assert!(tables.input_schema["properties"]["in"].is_object());
    }

    #[test]
    fn unknown_arguments_are_refused() {
        let bad = serde_json::json!({"sql": "select 1", "read_only": false});
        assert!(serde_json::from_value::<QueryArgs>(bad).is_err());
        let bad = serde_json::json!({"format": "csv", "sql": "select 1"});
        assert!(serde_json::from_value::<QueryArgs>(bad).is_err());
    }
}
