//! The MCP tools: their names, arguments (with JSON schemas generated from these types, so
//! schema and parser cannot drift apart), descriptions written for a model, and annotations.
//!
//! Adding a tool is three edits here — a [`ToolKind`] variant, its entry in [`definitions`],
//! its arguments type — and one arm in `server::SnowflakedMcp::dispatch`. Reserved for the
//! issues being built next to this one: catalog tools (`describe`, `tables`, `columns`, on top
//! of the catalog commands) and long-statement tools (`result`, `queries`, `cancel`, on top of
//! the daemon's statement ids; a `query` that outlives a bounded wait would then return its id
//! and state instead of blocking), and `params` (binds) on `query`/`execute`.

use rmcp::model::{Tool, ToolAnnotations};
use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};

/// Every tool this server can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolKind {
    Query,
    Execute,
    Use,
    Context,
}

impl ToolKind {
    pub fn name(self) -> &'static str {
        match self {
            ToolKind::Query => "query",
            ToolKind::Execute => "execute",
            ToolKind::Use => "use",
            ToolKind::Context => "context",
        }
    }

    /// The tool called `name`, if this server offers it (`execute` only with writes allowed).
    pub fn find(name: &str, allow_writes: bool) -> Option<ToolKind> {
        offered(allow_writes).into_iter().find(|t| t.name() == name)
    }
}

/// The tools offered, in the order they are listed.
pub fn offered(allow_writes: bool) -> Vec<ToolKind> {
    let mut tools = vec![ToolKind::Query, ToolKind::Use, ToolKind::Context];
    if allow_writes {
        tools.insert(1, ToolKind::Execute);
    }
    tools
}

/// The definitions `tools/list` returns.
pub fn definitions(allow_writes: bool) -> Vec<Tool> {
    offered(allow_writes).into_iter().map(definition).collect()
}

fn definition(kind: ToolKind) -> Tool {
    let annotations = ToolAnnotations::new().open_world(false);
    match kind {
        ToolKind::Query => Tool::new(
            kind.name(),
            QUERY_DESCRIPTION,
            rmcp::model::JsonObject::new(),
        )
        .with_title("Run a read-only SQL query on Snowflake")
        .with_input_schema::<QueryArgs>()
        .with_output_schema::<QueryOutput>()
        .with_annotations(
            annotations
                .read_only(true)
                .destructive(false)
                .idempotent(true),
        ),
        ToolKind::Execute => Tool::new(
            kind.name(),
            EXECUTE_DESCRIPTION,
            rmcp::model::JsonObject::new(),
        )
        .with_title("Run SQL that changes Snowflake data, in one transaction")
        .with_input_schema::<QueryArgs>()
        .with_output_schema::<QueryOutput>()
        .with_annotations(
            annotations
                .read_only(false)
                .destructive(true)
                .idempotent(false),
        ),
        ToolKind::Use => Tool::new(kind.name(), USE_DESCRIPTION, rmcp::model::JsonObject::new())
            .with_title("Set the database, schema, warehouse, role or query tag")
            .with_input_schema::<UseArgs>()
            .with_output_schema::<ContextOutput>()
            // It changes only this client's own context, never data: not destructive, and
            // setting the same value twice is the same as once.
            .with_annotations(
                annotations
                    .read_only(false)
                    .destructive(false)
                    .idempotent(true),
            ),
        ToolKind::Context => Tool::new(
            kind.name(),
            CONTEXT_DESCRIPTION,
            rmcp::model::JsonObject::new(),
        )
        .with_title("Show the current database, schema, warehouse and role")
        .with_input_schema::<ContextArgs>()
        .with_output_schema::<ContextOutput>()
        .with_annotations(
            annotations
                .read_only(true)
                .destructive(false)
                .idempotent(true),
        ),
    }
}

const QUERY_DESCRIPTION: &str = "Run read-only SQL on Snowflake (SELECT, SHOW, DESCRIBE, EXPLAIN, WITH … SELECT) \
and get the result as a markdown table (or JSON). Statements that could change data are refused \
before they reach Snowflake. Unqualified names resolve against the current context (see the \
`context` and `use` tools); it persists between calls. Results are capped: at most `max_rows` \
rows (default 100) and `max_chars` characters (default 20000); the answer says when rows were \
cut, so aggregate, filter or add LIMIT rather than raising the caps. Several statements may be \
separated by `;`; the last one's result is returned.";

const EXECUTE_DESCRIPTION: &str = "Run SQL that changes Snowflake data or objects (INSERT, UPDATE, DELETE, MERGE, \
CREATE, ALTER, DROP, …). DESTRUCTIVE: changes are real and visible to everyone. All statements \
of one call (separated by `;`) run in a single transaction: if any fails, every one of them is \
rolled back and nothing is changed. Use `query` for reads. Returns the last statement's result \
(e.g. the number of rows affected) within the same caps as `query`.";

const USE_DESCRIPTION: &str = "Change this conversation's Snowflake context: database, schema, warehouse, role \
and/or query tag (give only the ones to change). Like USE DATABASE/SCHEMA/WAREHOUSE/ROLE, but \
it persists for every later call of this client and never affects other clients. Names follow \
SQL rules: unquoted names are upper-cased, \"Quoted\" names are kept as written; a schema may be \
given as DB.SCHEMA. Returns the resulting context.";

const CONTEXT_DESCRIPTION: &str = "Show this conversation's current Snowflake context: database, schema, warehouse, \
role, query tag, and whether a transaction is open. Call it to learn where unqualified table \
names resolve before writing SQL.";

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

/// The structured result of `query` and `execute`: the rows that fit the budget and the
/// facts about what was cut.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[schemars(transform = portable)]
pub struct QueryOutput {
    /// Snowflake's query id.
    pub query_id: String,
    pub columns: Vec<ColumnOutput>,
    /// The rows returned (as arrays of cells), at most `rows_shown` of them.
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Rows the daemon returned (at most `max_rows`).
    pub row_count: u64,
    /// Rows included here after the character budget.
    pub rows_shown: u64,
    /// True when Snowflake had more rows than `max_rows` allowed.
    pub truncated_by_max_rows: bool,
    /// True when rows were left out to stay within `max_chars`.
    pub truncated_by_max_chars: bool,
    pub context: ContextFields,
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
        assert_eq!(names, ["query", "use", "context"]);
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
    fn unknown_arguments_are_refused() {
        let bad = serde_json::json!({"sql": "select 1", "read_only": false});
        assert!(serde_json::from_value::<QueryArgs>(bad).is_err());
        let bad = serde_json::json!({"format": "csv", "sql": "select 1"});
        assert!(serde_json::from_value::<QueryArgs>(bad).is_err());
    }
}
