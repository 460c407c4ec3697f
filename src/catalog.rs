//! The catalog lookups behind `describe`, `tables` and `columns`, shared by the command line
//! ([`crate::cli::catalog`]) and the MCP tools ([`crate::mcp`]): which read-only statements
//! answer them, run through the ordinary query API. Each front end only renders the answer.
//!
//! User text never becomes SQL text: patterns and names that are compared travel as bind
//! parameters, and the only names placed in the statement (the database of an
//! INFORMATION_SCHEMA, the object of a DESCRIBE) are parsed as Snowflake identifiers first and
//! re-quoted.

use serde_json::Value;

use crate::api::{Column, QueryRequest, QueryResponse};
use crate::binds::{BindValue, Params};
use crate::client::{Client, ClientError};
use crate::sessions::context::quote_ident;

/// Why a lookup failed: its arguments (nothing was sent), or the daemon's answer.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(
        "{0:?} is not a name: use NAME, SCHEMA.NAME or DB.SCHEMA.NAME (\"Quoted\" parts keep their case)"
    )]
    BadName(String),
    #[error("{0:?} is not DB or DB.SCHEMA")]
    BadScope(String),
    /// Each front end says how to choose one in its own terms.
    #[error("this token has no current database")]
    NoDatabase,
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// A table's or view's columns and, when asked for, a few of its rows.
#[derive(Debug, Clone)]
pub struct Described {
    /// The columns `name`, `type`, `nullable`, `default`, `comment`, one row per column.
    pub columns: QueryResponse,
    pub sample: Option<QueryResponse>,
}

/// A list of tables or columns, and how many entries there were when it was cut.
#[derive(Debug, Clone)]
pub struct Listing {
    pub response: QueryResponse,
    /// Set when the list was cut by `max_rows` and the count could be had.
    pub total: Option<u64>,
}

/// `DESCRIBE TABLE name` (at most `max_rows` columns) and `sample` rows of it (0: none).
pub async fn describe(
    client: &Client,
    name: &str,
    sample: u64,
    max_rows: Option<u64>,
) -> Result<Described, CatalogError> {
    let parts = parse_name(name)
        .filter(|p| p.len() <= 3)
        .ok_or_else(|| CatalogError::BadName(name.to_string()))?;
    let object = parts
        .iter()
        .map(|p| quote_ident(p))
        .collect::<Vec<_>>()
        .join(".");
    let described = run(
        client,
        &format!("DESCRIBE TABLE {object}"),
        Params::None,
        max_rows,
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
    let sample = if sample > 0 {
        let sql = format!("SELECT * FROM {object}");
        Some(run(client, &sql, Params::None, Some(sample)).await?)
    } else {
        None
    };
    Ok(Described { columns, sample })
}

/// Tables and views whose names match `pattern` (see [`like_pattern`]; None: all) in `within`
/// (DB or DB.SCHEMA; None: the current schema).
pub async fn tables(
    client: &Client,
    pattern: Option<&str>,
    within: Option<&str>,
    max_rows: Option<u64>,
) -> Result<Listing, CatalogError> {
    let (database, schema) = scope(client, within, true).await?;
    let pattern = like_pattern(pattern.unwrap_or("%"));
    let (filter, params) = filters(schema, "table_name", pattern);
    let from = format!(
        "FROM {}.INFORMATION_SCHEMA.TABLES WHERE {filter}",
        quote_ident(&database)
    );
    let sql = format!(
        "SELECT table_schema AS \"schema\", table_name AS \"name\", CASE table_type WHEN 'BASE TABLE' THEN 'TABLE' ELSE table_type END AS \"kind\", row_count AS \"rows\", bytes AS \"bytes\", comment AS \"comment\" {from} ORDER BY 1, 2"
    );
    list(client, &sql, &from, params, max_rows).await
}

/// Columns whose names match `pattern` in `within` (None: every schema of the current
/// database), with their tables and types.
pub async fn columns(
    client: &Client,
    pattern: &str,
    within: Option<&str>,
    max_rows: Option<u64>,
) -> Result<Listing, CatalogError> {
    let (database, schema) = scope(client, within, false).await?;
    let (filter, params) = filters(schema, "column_name", like_pattern(pattern));
    let from = format!(
        "FROM {}.INFORMATION_SCHEMA.COLUMNS WHERE {filter}",
        quote_ident(&database)
    );
    let sql = format!(
        "SELECT table_schema AS \"schema\", table_name AS \"table\", column_name AS \"column\", data_type AS \"type\", is_nullable AS \"nullable\" {from} ORDER BY 1, 2, ordinal_position"
    );
    list(client, &sql, &from, params, max_rows).await
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

/// Runs a listing and, when it was cut, counts the entries.
async fn list(
    client: &Client,
    sql: &str,
    from: &str,
    params: Params,
    max_rows: Option<u64>,
) -> Result<Listing, CatalogError> {
    let response = run(client, sql, params.clone(), max_rows).await?;
    let total = if response.truncated {
        run(client, &format!("SELECT COUNT(*) {from}"), params, Some(1))
            .await
            .ok()
            .and_then(|r| r.rows.first().map(|row| crate::row::values(row)))
            .and_then(|row| row.first().and_then(count))
    } else {
        None
    };
    Ok(Listing { response, total })
}

/// A COUNT(*) cell: a number, or a number as text (exact decimals may come as strings).
fn count(cell: &Value) -> Option<u64> {
    match cell {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The database to read INFORMATION_SCHEMA from and the schema to filter on (`None`: all):
/// from `within`, else from the token's context (with its schema when `current_schema`).
async fn scope(
    client: &Client,
    within: Option<&str>,
    current_schema: bool,
) -> Result<(String, Option<String>), CatalogError> {
    if let Some(within) = within {
        return match parse_name(within).as_deref() {
            Some([db]) => Ok((db.clone(), None)),
            Some([db, schema]) => Ok((db.clone(), Some(schema.clone()))),
            _ => Err(CatalogError::BadScope(within.to_string())),
        };
    }
    let context = client.context().await?;
    match context.context.database {
        Some(db) => Ok((db, context.context.schema.filter(|_| current_schema))),
        None => Err(CatalogError::NoDatabase),
    }
}

/// One read-only statement through the daemon, owned by this request.
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

    #[test]
    fn listing_filters_bind_what_the_user_typed() {
        let (filter, params) = filters(Some("PUB'LIC".into()), "table_name", "%x%".into());
        assert!(
            !filter.contains("PUB'LIC") && !filter.contains("%x%"),
            "{filter}"
        );
        assert_eq!(
            params,
            Params::Positional(vec![
                BindValue::Text("PUB'LIC".into()),
                BindValue::Text("%x%".into())
            ])
        );
    }

    #[test]
    fn counts_come_as_numbers_or_text() {
        assert_eq!(count(&serde_json::json!(7)), Some(7));
        assert_eq!(count(&serde_json::json!("12")), Some(12));
        assert_eq!(count(&Value::Null), None);
    }
}
