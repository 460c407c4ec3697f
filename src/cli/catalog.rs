//! Catalog commands sized for an agent's context window: `describe NAME [--sample N]`,
//! `tables [PATTERN] [--in DB[.SCHEMA]]` and `columns PATTERN [--in DB[.SCHEMA]]`.
//!
//! They are clients of the ordinary query API (read-only, within `--max-rows` and the
//! character budget, in every format). User text never becomes SQL text: patterns and names
//! that are compared travel as bind parameters, and the only names placed in the statement
//! (the database of an INFORMATION_SCHEMA, the object of a DESCRIBE) are parsed as Snowflake
//! identifiers first and re-quoted. When a list is cut, a notice on stderr says how many
//! entries there were and how to narrow it down.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::Error;
use super::format::{Format, render};
use crate::api::{Column, QueryRequest, QueryResponse};
use crate::binds::{BindValue, Params};
use crate::client::{Client, ClientError};
use crate::sessions::context::quote_ident;

/// What every catalog command takes besides its own arguments.
#[derive(Debug, Args)]
pub struct Output {
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Show at most N entries (0 = all) [default: 100, or query.max_rows in the config]
    #[arg(long, value_name = "N")]
    pub max_rows: Option<u64>,
    /// Character budget for table and markdown output (0 = none) [default: 20000, or
    /// query.max_chars in the config]
    #[arg(long, value_name = "N")]
    pub max_chars: Option<usize>,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The table or view: NAME, SCHEMA.NAME or DB.SCHEMA.NAME ("Quoted" parts keep their case)
    pub name: String,
    /// Also show N rows of the table (table, markdown and json formats)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub sample: u64,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct TablesArgs {
    /// Case-insensitive LIKE pattern for the names (% any text, _ one character); without a %
    /// it matches names containing it
    pub pattern: Option<String>,
    /// Where to look: DB (every schema) or DB.SCHEMA [default: the current schema]
    #[arg(long = "in", value_name = "DB.SCHEMA")]
    pub within: Option<String>,
    #[command(flatten)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct ColumnsArgs {
    /// Case-insensitive LIKE pattern for column names (as for `tables`)
    pub pattern: String,
    /// Where to look: DB or DB.SCHEMA [default: every schema of the current database]
    #[arg(long = "in", value_name = "DB.SCHEMA")]
    pub within: Option<String>,
    #[command(flatten)]
    pub output: Output,
}

/// Why a catalog command cannot run, before anything is sent.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(
        "{0:?} is not a name: use NAME, SCHEMA.NAME or DB.SCHEMA.NAME (\"Quoted\" parts keep their case)"
    )]
    BadName(String),
    #[error("{0:?} is not DB or DB.SCHEMA")]
    BadScope(String),
    #[error(
        "this token has no current database: choose one with `snowflaked use database NAME`, or pass --in DB.SCHEMA"
    )]
    NoDatabase,
}

pub async fn describe(client: &Client, args: DescribeArgs) -> Result<ExitCode, Error> {
    let Some(parts) = parse_name(&args.name).filter(|p| p.len() <= 3) else {
        return Err(CatalogError::BadName(args.name).into());
    };
    let object = parts
        .iter()
        .map(|p| quote_ident(p))
        .collect::<Vec<_>>()
        .join(".");
    let described = run(
        client,
        &format!("DESCRIBE TABLE {object}"),
        Params::None,
        args.output.max_rows,
    )
    .await?;
    let columns = project(
        &described,
        &[
            ("name", "name"),
            ("type", "type"),
            ("nullable", "null?"),
            ("default", "default"),
            ("comment", "comment"),
        ],
    );
    let sample = if args.sample > 0 {
        Some(
            run(
                client,
                &format!("SELECT * FROM {object}"),
                Params::None,
                Some(args.sample),
            )
            .await?,
        )
    } else {
        None
    };
    let format = args.output.format;
    let budget = character_budget(args.output.max_chars, format);
    let width = width();
    let text = match (format, &sample) {
        (Format::Json, _) => {
            let mut text = serde_json::json!({
                "name": args.name,
                "columns": columns,
                "sample": sample,
            })
            .to_string();
            text.push('\n');
            text
        }
        (Format::Table | Format::Markdown, Some(sample)) => {
            let mut text = render(&columns, format, budget, width);
            let left = if budget == 0 {
                0
            } else {
                budget.saturating_sub(text.chars().count()).max(1)
            };
            let heading = match format {
                Format::Markdown => format!(
                    "\n**{} sample rows of {}**\n\n",
                    sample.row_count, args.name
                ),
                _ => format!("\n{} sample rows of {}:\n", sample.row_count, args.name),
            };
            text.push_str(&heading);
            text.push_str(&render(sample, format, left, width));
            text
        }
        (Format::Csv | Format::Ndjson, Some(_)) => {
            eprintln!(
                "note: csv and ndjson carry the column list only; the sample rows are in table, markdown and json, or run `snowflaked query` for them"
            );
            render(&columns, format, budget, width)
        }
        (_, None) => render(&columns, format, budget, width),
    };
    print(&text);
    if columns.truncated {
        eprintln!(
            "note: only the first {} columns of {} are shown; raise --max-rows to see more",
            columns.row_count, args.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn tables(client: &Client, args: TablesArgs) -> Result<ExitCode, Error> {
    let (database, schema) = scope(client, args.within.as_deref(), true).await?;
    let pattern = like_pattern(args.pattern.as_deref().unwrap_or("%"));
    let (filter, params) = filters(schema, "table_name", pattern);
    let from = format!(
        "FROM {}.INFORMATION_SCHEMA.TABLES WHERE {filter}",
        quote_ident(&database)
    );
    let sql = format!(
        "SELECT table_schema AS \"schema\", table_name AS \"name\", CASE table_type WHEN 'BASE TABLE' THEN 'TABLE' ELSE table_type END AS \"kind\", row_count AS \"rows\", bytes AS \"bytes\", comment AS \"comment\" {from} ORDER BY 1, 2"
    );
    list(client, &sql, &from, params, &args.output, "tables").await
}

pub async fn columns(client: &Client, args: ColumnsArgs) -> Result<ExitCode, Error> {
    let (database, schema) = scope(client, args.within.as_deref(), false).await?;
    let (filter, params) = filters(schema, "column_name", like_pattern(&args.pattern));
    let from = format!(
        "FROM {}.INFORMATION_SCHEMA.COLUMNS WHERE {filter}",
        quote_ident(&database)
    );
    let sql = format!(
        "SELECT table_schema AS \"schema\", table_name AS \"table\", column_name AS \"column\", data_type AS \"type\", is_nullable AS \"nullable\" {from} ORDER BY 1, 2, ordinal_position"
    );
    list(client, &sql, &from, params, &args.output, "columns").await
}

/// The WHERE clause of a listing: outside INFORMATION_SCHEMA, in `schema` if given (exactly),
/// with `column` matching `pattern` — the values bound, never written into the text.
fn filters(schema: Option<String>, column: &str, pattern: String) -> (String, Params) {
    let mut filter = "table_schema <> 'INFORMATION_SCHEMA'".to_string();
    let mut values = Vec::new();
    if let Some(schema) = schema {
        filter.push_str(" AND table_schema = ?");
        values.push(BindValue::Text(schema));
    }
    filter.push_str(&format!(" AND {column} ILIKE ?"));
    values.push(BindValue::Text(pattern));
    (filter, Params::Positional(values))
}

/// Runs a listing, prints it, and when it was cut says how many entries there were.
async fn list(
    client: &Client,
    sql: &str,
    from: &str,
    params: Params,
    output: &Output,
    what: &str,
) -> Result<ExitCode, Error> {
    let response = run(client, sql, params.clone(), output.max_rows).await?;
    let budget = character_budget(output.max_chars, output.format);
    print(&render(&response, output.format, budget, width()));
    if response.truncated {
        let total = run(client, &format!("SELECT COUNT(*) {from}"), params, Some(1))
            .await
            .ok()
            .and_then(|r| r.rows.first().map(|row| crate::row::values(row)))
            .and_then(|row| row.first().map(super::format::cell_text));
        let total = total.map_or_else(|| "more".to_string(), |n| n.to_string());
        eprintln!(
            "note: showing {} of {total} {what}; narrow it with a PATTERN or --in, or raise --max-rows",
            response.row_count
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The database to read INFORMATION_SCHEMA from and the schema to filter on (`None`: all):
/// from `--in`, else from the token's context (with its schema when `current_schema`).
async fn scope(
    client: &Client,
    within: Option<&str>,
    current_schema: bool,
) -> Result<(String, Option<String>), Error> {
    if let Some(within) = within {
        return match parse_name(within).as_deref() {
            Some([db]) => Ok((db.clone(), None)),
            Some([db, schema]) => Ok((db.clone(), Some(schema.clone()))),
            _ => Err(CatalogError::BadScope(within.to_string()).into()),
        };
    }
    let context = client.context().await?.context;
    match context.database {
        Some(db) => Ok((db, context.schema.filter(|_| current_schema))),
        None => Err(CatalogError::NoDatabase.into()),
    }
}

/// One read-only statement through the daemon.
async fn run(
    client: &Client,
    sql: &str,
    params: Params,
    max_rows: Option<u64>,
) -> Result<QueryResponse, ClientError> {
    let request = QueryRequest {
        sql: sql.to_string(),
        max_rows,
        read_only: Some(true),
        params: params.to_json(),
        ..QueryRequest::default()
    };
    client.query(&request).await
}

/// The named columns of a result (`(shown as, Snowflake's name)`), in that order; a column
/// Snowflake did not send is all NULL.
fn project(response: &QueryResponse, wanted: &[(&str, &str)]) -> QueryResponse {
    let index: Vec<Option<usize>> = wanted
        .iter()
        .map(|(_, name)| {
            response
                .columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
        })
        .collect();
    let rows = response
        .rows
        .iter()
        .map(|row| {
            let values = crate::row::values(row);
            let picked: Vec<Value> = index
                .iter()
                .map(|i| {
                    i.and_then(|i| values.get(i).cloned())
                        .unwrap_or(Value::Null)
                })
                .collect();
            crate::row::from_values(&picked)
        })
        .collect();
    QueryResponse {
        columns: wanted
            .iter()
            .map(|(shown, _)| Column {
                name: shown.to_string(),
                ty: "TEXT".into(),
                nullable: true,
                scale: None,
            })
            .collect(),
        rows,
        ..response.clone()
    }
}

/// A name as Snowflake resolves it: `a.b."C d"` → `["A", "B", "C d"]`.
fn parse_name(name: &str) -> Option<Vec<String>> {
    let parts = crate::sessions::context::split_qualified(name)?;
    Some(
        parts
            .into_iter()
            .map(|part| match part.strip_prefix('"') {
                Some(quoted) => quoted
                    .strip_suffix('"')
                    .unwrap_or(quoted)
                    .replace("\"\"", "\""),
                None => part.to_ascii_uppercase(),
            })
            .collect(),
    )
}

/// `orders` → `%orders%`; a pattern with `%` is used as given.
fn like_pattern(pattern: &str) -> String {
    if pattern.contains('%') {
        pattern.to_string()
    } else {
        format!("%{pattern}%")
    }
}

fn character_budget(max_chars: Option<usize>, format: Format) -> usize {
    match (max_chars, format) {
        (Some(chars), _) => chars,
        (None, Format::Table | Format::Markdown) => {
            crate::config::sources::load_settings(&crate::config::paths::ProcessEnv)
                .map_or(20_000, |s| s.query.max_chars)
        }
        (None, _) => 0,
    }
}

fn width() -> Option<u16> {
    if std::io::stdout().is_terminal() {
        super::query::terminal_width()
    } else {
        None
    }
}

fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_as_snowflake_resolves_them() {
        assert_eq!(parse_name("db.sch.t").unwrap(), ["DB", "SCH", "T"]);
        assert_eq!(parse_name("\"My \"\"T\"\"\"").unwrap(), ["My \"T\""]);
        assert!(parse_name("t; DROP TABLE x").is_none());
        assert!(parse_name("a..b").is_none());
    }

    #[test]
    fn plain_patterns_match_inside_names() {
        assert_eq!(like_pattern("ord"), "%ord%");
        assert_eq!(like_pattern("ORD%"), "ORD%");
    }
}
