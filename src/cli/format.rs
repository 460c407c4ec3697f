//! Result formats: `table` (aligned, for people), `markdown` (for agents), `json` (the API's
//! object), `ndjson` (one row object per line, for pipes), `csv` (RFC 4180).
//!
//! `table` and `markdown` respect a character budget and end with one line saying what was
//! cut and how to get more; `json`, `ndjson` and `csv` are for programs and are never cut
//! here (only `--max-rows` limits them).

use std::fmt::Write;

use clap::ValueEnum;
use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value;

use crate::api::QueryResponse;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Markdown,
    Json,
    Ndjson,
    Csv,
}

/// Renders a result. `max_chars` of 0 means no budget; `width` is the terminal width for
/// `table` (None: not a terminal, no wrapping).
pub fn render(
    response: &QueryResponse,
    format: Format,
    max_chars: usize,
    width: Option<u16>,
) -> String {
    match format {
        Format::Json => {
            let mut out = serde_json::to_string(response).unwrap_or_default();
            out.push('\n');
            out
        }
        Format::Ndjson => ndjson(response),
        Format::Csv => csv(response),
        Format::Markdown => budgeted(response, max_chars, markdown),
        Format::Table => budgeted(response, max_chars, |r, rows| table(r, rows, width)),
    }
}

/// A cell as text: NULL for null, JSON for VARIANT/OBJECT/ARRAY, the plain value otherwise.
pub fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Renders with as many rows as fit in `max_chars`, then a notice of what was cut.
fn budgeted(
    response: &QueryResponse,
    max_chars: usize,
    draw: impl Fn(&QueryResponse, usize) -> String,
) -> String {
    let total = response.rows.len();
    let mut shown = total;
    let mut out = draw(response, shown);
    if max_chars > 0 && out.len() > max_chars {
        // Shrink by the measured size per row, then step down until it fits.
        while shown > 0 && out.len() > max_chars {
            let per_row = out.len() / (shown + 2).max(1);
            let excess = out.len() - max_chars;
            shown = shown.saturating_sub((excess / per_row.max(1)).max(1));
            out = draw(response, shown);
        }
    }
    let notice = notice(response, shown);
    if let Some(line) = notice {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn notice(response: &QueryResponse, shown: usize) -> Option<String> {
    let total = response.rows.len();
    if shown < total {
        Some(format!(
            "… showing {shown} of {total}{} rows (character budget); narrow the query, pass --max-chars 0, or use --format csv",
            if response.truncated { "+" } else { "" }
        ))
    } else if response.truncated {
        Some(format!(
            "… showing the first {total} rows; more exist (--max-rows {total}); pass --max-rows N (0 = all) or aggregate in SQL"
        ))
    } else {
        None
    }
}

fn status_line(response: &QueryResponse) -> String {
    format!(
        "{} row{} · query id {} · {} ms\n",
        response.row_count,
        if response.row_count == 1 { "" } else { "s" },
        response.query_id,
        response.elapsed_ms
    )
}

fn table(response: &QueryResponse, rows: usize, width: Option<u16>) -> String {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    match width {
        Some(w) => {
            table.set_content_arrangement(ContentArrangement::Dynamic);
            table.set_width(w);
        }
        None => {
            table.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    table.set_header(response.columns.iter().map(|c| c.name.clone()));
    for row in response.rows.iter().take(rows) {
        table.add_row(crate::row::values(row).iter().map(cell_text));
    }
    let mut out = table.to_string();
    out.push('\n');
    out.push_str(&status_line(response));
    out
}

/// Escapes a cell so the markdown table never breaks: pipes escaped, newlines as `<br>`.
pub fn markdown_cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace(['\n', '\r'], "<br>")
}

fn markdown(response: &QueryResponse, rows: usize) -> String {
    let mut out = String::new();
    let header: Vec<String> = response
        .columns
        .iter()
        .map(|c| markdown_cell(&c.name))
        .collect();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}|", vec!["---"; header.len().max(1)].join("|"));
    for row in response.rows.iter().take(rows) {
        let cells: Vec<String> = crate::row::values(row)
            .iter()
            .map(|v| markdown_cell(&cell_text(v)))
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
    out.push_str(&status_line(response));
    out
}

fn ndjson(response: &QueryResponse) -> String {
    let mut out = String::new();
    for row in &response.rows {
        let object: serde_json::Map<String, Value> = response
            .columns
            .iter()
            .zip(crate::row::values(row))
            .map(|(c, v)| (c.name.clone(), v))
            .collect();
        out.push_str(&Value::Object(object).to_string());
        out.push('\n');
    }
    out
}

fn csv(response: &QueryResponse) -> String {
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    let _ = writer.write_record(response.columns.iter().map(|c| c.name.as_str()));
    for row in &response.rows {
        let cells: Vec<String> = crate::row::values(row)
            .iter()
            .map(|v| match v {
                // In CSV, NULL is an empty field; an empty string is a quoted empty field.
                Value::Null => String::new(),
                other => cell_text(other),
            })
            .collect();
        let _ = writer.write_record(&cells);
    }
    String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
}
