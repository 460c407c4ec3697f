//! Daemon answers as MCP tool results: a result as text within the character budget (drawn by
//! the CLI's formatter, [`crate::cli::format`]) plus structured content with the truncation
//! facts; a failure as a tool error (`isError: true`) carrying the daemon's message,
//! Snowflake's code, sqlstate and query id, and a hint phrased for a model calling tools.

use rmcp::model::{CallToolResult, ContentBlock};

use super::tools::{
    CancelOutput, ColumnOutput, ContextFields, ContextOutput, DescribeOutput, QueriesOutput,
    QueryOutput, ResultFormat, StatementOutput,
};
use crate::api::{
    Context, ContextResponse, ErrorDetail, ErrorKind, QueryResponse, StatementInfo, StatementList,
};
use crate::catalog::{CatalogError, Described, Listing};
use crate::cli::format::{Format, render};
use crate::client::ClientError;

/// A query's result, or a page of one (`result`), cut to `max_chars` (0 = no budget) by whole
/// rows; rows left by `max_rows` are named with the `result` call that pages on.
pub fn query_result(
    response: &QueryResponse,
    format: ResultFormat,
    max_chars: usize,
) -> CallToolResult {
    let more = response.id.as_ref().map(|id| {
        let offset = response.page.as_ref().map_or(0, |p| p.offset) + response.row_count;
        let total = response
            .page
            .as_ref()
            .and_then(|p| p.total_rows)
            .map(|t| format!(" of {t}"))
            .unwrap_or_default();
        format!(
            "… showing rows up to {offset}{total}; more exist. Aggregate or filter in SQL, or page on with `result` {{\"id\": \"{id}\", \"offset\": {offset}}} (it does not run the statement again)\n"
        )
    });
    let (text, output) = result_parts(response, format, max_chars, more);
    success(text, &output)
}

/// A list of `tables` or `columns`, saying how many there are when it was cut.
pub fn listing_result(
    listing: &Listing,
    format: ResultFormat,
    max_chars: usize,
    what: &str,
) -> CallToolResult {
    let response = &listing.response;
    let total = listing
        .total
        .map_or_else(|| "more".to_string(), |t| t.to_string());
    let more = format!(
        "… showing {} of {total} {what}; narrow it with `pattern` or `in`, or raise max_rows\n",
        response.row_count
    );
    let (text, mut output) = result_parts(response, format, max_chars, Some(more));
    output.total_rows = listing
        .total
        .or(Some(response.row_count).filter(|_| !response.truncated));
    success(text, &output)
}

/// `describe`: the columns, then the sample rows within what the budget leaves.
pub fn described_result(
    name: &str,
    described: &Described,
    format: ResultFormat,
    max_chars: usize,
) -> CallToolResult {
    let more = format!(
        "… only the first {} columns of {name} are shown; raise max_rows to see more\n",
        described.columns.row_count
    );
    let (mut text, columns) = result_parts(&described.columns, format, max_chars, Some(more));
    let sample = described.sample.as_ref().map(|sample| {
        let left = if max_chars == 0 {
            0
        } else {
            max_chars.saturating_sub(text.len()).max(1)
        };
        text.push_str(&format!(
            "\n{} sample rows of {name}:\n\n",
            sample.row_count
        ));
        let (sample_text, output) = result_parts(sample, format, left, None);
        text.push_str(&sample_text);
        output
    });
    let output = DescribeOutput {
        name: name.to_string(),
        columns,
        sample,
    };
    success(text, &output)
}

/// A statement still running after the wait: its id and what to do next.
pub fn running_result(info: &StatementInfo) -> CallToolResult {
    let query_id = info
        .query_id
        .as_deref()
        .map(|q| format!(" (Snowflake query id {q})"))
        .unwrap_or_default();
    let text = format!(
        "still running after {:.1}s: id {}{query_id}. It goes on in snowflaked: call `result` with {{\"id\": \"{}\"}} to wait for it and get its rows, or `cancel` to stop it.\n",
        info.elapsed_ms as f64 / 1000.0,
        info.id,
        info.id
    );
    let output = QueryOutput {
        state: info.state.clone(),
        id: Some(info.id.clone()),
        query_id: info.query_id.clone(),
        elapsed_ms: info.elapsed_ms,
        ..QueryOutput::default()
    };
    success(text, &output)
}

/// `queries`: one line per statement.
pub fn queries_result(list: &StatementList) -> CallToolResult {
    let statements: Vec<StatementOutput> = list
        .statements
        .iter()
        .map(|s| StatementOutput {
            id: s.id.clone(),
            state: s.state.clone(),
            query_id: s.query_id.clone(),
            started: s.started.clone(),
            elapsed_ms: s.elapsed_ms,
            rows: s.rows,
            sql: s.sql.clone(),
            error: s.error.as_ref().map(|e| e.message.clone()),
        })
        .collect();
    let mut text = String::new();
    if statements.is_empty() {
        text.push_str("no statements running or held\n");
    }
    for s in &statements {
        text.push_str(&format!(
            "{} {} started {} ({:.1}s){}: {}\n",
            s.id,
            s.state,
            s.started,
            s.elapsed_ms as f64 / 1000.0,
            s.rows.map(|r| format!(", {r} rows")).unwrap_or_default(),
            s.sql
        ));
        if let Some(error) = &s.error {
            text.push_str(&format!("  error: {error}\n"));
        }
    }
    success(text, &QueriesOutput { statements })
}

/// `cancel`: the statement's state once the cancel has been asked for.
pub fn cancel_result(id: &str, state: &str) -> CallToolResult {
    let text = match state {
        "cancelled" => format!("cancelled {id}\n"),
        "running" => format!("asked Snowflake to cancel {id}; it is still stopping\n"),
        other => format!("{id} had already finished ({other}) before the cancel\n"),
    };
    let output = CancelOutput {
        id: id.to_string(),
        state: state.to_string(),
    };
    success(text, &output)
}

/// A catalog lookup that failed: its arguments, or the daemon's answer.
pub fn catalog_error(error: &CatalogError) -> CallToolResult {
    let text = match error {
        CatalogError::Client(error) => return error_result(error),
        CatalogError::NoDatabase => format!(
            "error: {error}\nhint: choose one with the `use` tool, or say where to look with `in` (DB or DB.SCHEMA)"
        ),
        error => format!("error: {error}"),
    };
    CallToolResult::error(vec![ContentBlock::text(text)])
}

/// A result's text within `max_chars` and its structured form. `more` is the notice for rows
/// that `max_rows` left out.
fn result_parts(
    response: &QueryResponse,
    format: ResultFormat,
    max_chars: usize,
    more: Option<String>,
) -> (String, QueryOutput) {
    let total = response.rows.len();
    let draw = |rows: usize| {
        // The CLI's notices name CLI flags; the tool's own notice below names tool arguments.
        let mut shown = response.clone();
        shown.rows.truncate(rows);
        shown.truncated = false;
        let format = match format {
            ResultFormat::Markdown => Format::Markdown,
            ResultFormat::Json => Format::Json,
        };
        render(&shown, format, 0, None)
    };
    let mut text = draw(total);
    let mut shown = total;
    if max_chars > 0 && text.len() > max_chars {
        // The largest number of rows whose text fits: the length grows with the rows.
        let (mut fits, mut too_many) = (0usize, total);
        while too_many - fits > 1 {
            let middle = fits + (too_many - fits) / 2;
            if draw(middle).len() <= max_chars {
                fits = middle;
            } else {
                too_many = middle;
            }
        }
        shown = fits;
        text = draw(shown);
    }
    if shown < total {
        text.push_str(&format!(
            "… showing {shown} of {total}{} rows to stay within max_chars {max_chars}; narrow the query (fewer columns, WHERE, LIMIT, aggregates) or raise max_chars\n",
            if response.truncated { "+" } else { "" }
        ));
    } else if response.truncated {
        text.push_str(&more.unwrap_or_else(|| format!(
            "… showing the first {total} rows; more exist. Aggregate or filter in SQL, or raise max_rows (0 = all)\n"
        )));
    }
    let output = QueryOutput {
        state: "succeeded".into(),
        id: response.id.clone(),
        query_id: Some(response.query_id.clone()).filter(|q| !q.is_empty()),
        columns: response
            .columns
            .iter()
            .map(|c| ColumnOutput {
                name: c.name.clone(),
                ty: c.ty.clone(),
            })
            .collect(),
        rows: response
            .rows
            .iter()
            .take(shown)
            .map(|r| crate::row::values(r))
            .collect(),
        row_count: response.row_count,
        rows_shown: shown as u64,
        truncated_by_max_rows: response.truncated,
        truncated_by_max_chars: shown < total,
        offset: response.page.as_ref().map(|p| p.offset),
        total_rows: response.page.as_ref().and_then(|p| p.total_rows),
        context: Some(context_fields(&response.context)),
        in_transaction: response.in_transaction,
        elapsed_ms: response.elapsed_ms,
        warnings: response.warnings.clone(),
    };
    for warning in &response.warnings {
        text.push_str(&format!("warning: {warning}\n"));
    }
    (text, output)
}

/// A context as `use` and `context` return it.
pub fn context_result(response: &ContextResponse) -> CallToolResult {
    let c = &response.context;
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
    let mut text = format!(
        "database: {}\nschema: {}\nwarehouse: {}\nrole: {}\n",
        show(&c.database),
        show(&c.schema),
        show(&c.warehouse),
        show(&c.role)
    );
    if let Some(tag) = &c.query_tag {
        text.push_str(&format!("query tag: {tag}\n"));
    }
    if response.in_transaction {
        text.push_str("a transaction is open (COMMIT or ROLLBACK ends it)\n");
    }
    let output = ContextOutput {
        context: context_fields(c),
        in_transaction: response.in_transaction,
    };
    success(text, &output)
}

/// A failed call as a tool error the model can read and act on. The facts travel in the text
/// only: clients validate any structured content against the tool's output schema, error or
/// not (the TypeScript SDK, and with it the MCP Inspector, refuses the result otherwise).
pub fn error_result(error: &ClientError) -> CallToolResult {
    let text = match error {
        ClientError::Api { error: detail, .. } => api_error_text(detail),
        ClientError::Unreachable { .. } => {
            format!("snowflaked (the local Snowflake daemon) could not be reached: {error}")
        }
        ClientError::Protocol(_) => format!("snowflaked gave an unexpected answer: {error}"),
        ClientError::Usage(message) => format!("error: {message}"),
    };
    CallToolResult::error(vec![ContentBlock::text(text)])
}

fn api_error_text(detail: &ErrorDetail) -> String {
    // What the token's context lacked comes first: it is often why the statement failed.
    let mut text: String = detail
        .warnings
        .iter()
        .map(|w| format!("warning: {w}\n"))
        .collect();
    text.push_str(&format!("error: {}", detail.message_with_facts()));
    if let Some(hint) = hint(detail) {
        text.push_str(&format!("\nhint: {hint}"));
    }
    text
}

/// The daemon's hint, except where it names CLI flags a model calling tools cannot use.
fn hint(detail: &ErrorDetail) -> Option<String> {
    match detail.kind {
        ErrorKind::ReadOnly => Some(
            "the `query` tool only reads; changes need the `execute` tool, which exists only when the user started the server with `snowflaked mcp --allow-writes`".into(),
        ),
        _ => detail.hint.as_ref().map(|hint| {
            hint.replace("`snowflaked context`", "the `context` tool")
                .replace(
                    "`snowflaked use database|schema|role NAME`",
                    "the `use` tool",
                )
        }),
    }
}

fn context_fields(c: &Context) -> ContextFields {
    ContextFields {
        database: c.database.clone(),
        schema: c.schema.clone(),
        warehouse: c.warehouse.clone(),
        role: c.role.clone(),
        query_tag: c.query_tag.clone(),
    }
}

fn success<T: serde::Serialize>(text: String, output: &T) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = serde_json::to_value(output).ok();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Built from the wire form, so fields other issues add to the answer (such as the
    /// daemon's statement `id`) do not break it.
    fn response(rows: usize, truncated: bool) -> QueryResponse {
        let rows: Vec<Vec<usize>> = (0..rows).map(|i| vec![i]).collect();
        serde_json::from_value(serde_json::json!({
            "id": "d-1",
            "query_id": "01-q",
            "columns": [{"name": "N", "type": "FIXED"}],
            "row_count": rows.len(),
            "rows": rows,
            "truncated": truncated,
            "context": {"database": null, "schema": null, "warehouse": null, "role": null},
            "elapsed_ms": 3,
        }))
        .unwrap()
    }

    fn text(result: &CallToolResult) -> String {
        result.content[0].as_text().unwrap().text.clone()
    }

    #[test]
    fn a_result_within_budget_is_whole() {
        let result = query_result(&response(3, false), ResultFormat::Markdown, 1000);
        let structured = result.structured_content.clone().unwrap();
        assert_eq!(structured["rows_shown"], 3);
        assert_eq!(structured["truncated_by_max_chars"], false);
        assert!(text(&result).starts_with("| N |"));
        assert!(!text(&result).contains('…'));
    }

    #[test]
    fn the_character_budget_cuts_whole_rows_and_says_so() {
        for format in [ResultFormat::Markdown, ResultFormat::Json] {
            let result = query_result(&response(500, true), format, 400);
            let structured = result.structured_content.clone().unwrap();
            let shown = structured["rows_shown"].as_u64().unwrap();
            assert!(shown > 0 && shown < 500, "{shown}");
            assert_eq!(structured["rows"].as_array().unwrap().len() as u64, shown);
            assert_eq!(structured["truncated_by_max_chars"], true);
            assert_eq!(structured["truncated_by_max_rows"], true);
            let text = text(&result);
            let (body, notice) = text.split_once('…').unwrap();
            assert!(body.len() <= 400, "{}", body.len());
            assert!(notice.contains("max_chars") && !notice.contains("--"));
        }
    }

    #[test]
    fn errors_carry_code_query_id_and_a_tool_hint() {
        let error = ClientError::Api {
            status: 403,
            error: Box::new(ErrorDetail {
                kind: "read_only".into(),
                message: "refused: INSERT writes".into(),
                code: Some("002003".into()),
                sqlstate: None,
                query_id: Some("01-x".into()),
                hint: Some("run it without --read-only".into()),
                statement: None,
                warnings: Vec::new(),
            }),
        };
        let result = error_result(&error);
        assert_eq!(result.is_error, Some(true));
        let text = text(&result);
        assert!(text.contains("code 002003") && text.contains("query id 01-x"));
        assert!(text.contains("execute") && !text.contains("--read-only"));
        assert!(result.structured_content.is_none());
    }
}
