//! `snowflaked result ID` (a page of a statement's result, or its state, never running the
//! statement again) and `snowflaked queries` (this token's running and recent statements).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::format::Format;
use super::query::{STILL_RUNNING, print_result, print_still_running};
use crate::client::{Client, ClientError, PageRequest, QueryOutcome};
use crate::config::duration;

#[derive(Debug, Args)]
pub struct ResultArgs {
    /// The statement's id, as `query` or `queries` printed it
    pub id: String,
    /// Wait up to this long for a statement still running (exit status 4 if it still is)
    #[arg(long, value_name = "DUR", value_parser = duration::parse)]
    pub wait: Option<Duration>,
    /// Skip this many rows
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub offset: u64,
    /// Return at most N rows (0 = all) [default: 100, or query.max_rows in the config]
    #[arg(long, value_name = "N")]
    pub max_rows: Option<u64>,
    /// Character budget for table and markdown output (0 = none)
    #[arg(long, value_name = "N")]
    pub max_chars: Option<usize>,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Write NULL as TEXT in csv, table and markdown, as `query --null` does
    #[arg(long, value_name = "TEXT")]
    pub null: Option<String>,
}

#[derive(Debug, Args)]
pub struct QueriesArgs {
    /// Also list statements whose results the daemon no longer holds (kept by Snowflake 24 h)
    #[arg(long)]
    pub all: bool,
    /// Print JSON (the fields of GET /v1/queries)
    #[arg(long)]
    pub json: bool,
}

pub async fn result(client: &Client, args: ResultArgs) -> Result<ExitCode, ClientError> {
    let page = PageRequest {
        offset: args.offset,
        limit: args.max_rows,
        wait: args.wait,
    };
    let response = match client.result_page(&args.id, page).await? {
        QueryOutcome::Finished(response) => response,
        QueryOutcome::Running(running) => {
            print_still_running(&running, args.format);
            return Ok(ExitCode::from(STILL_RUNNING));
        }
    };
    let next = response.page.as_ref().map(|p| {
        let offset = p.offset + response.row_count;
        format!(
            "more rows{}: `snowflaked result {} --offset {offset}` for the next page",
            p.total_rows
                .map(|t| format!(" (this page ends at row {offset} of {t})"))
                .unwrap_or_default(),
            args.id
        )
    });
    print_result(&response, args.format, args.max_chars, args.null, next);
    Ok(ExitCode::SUCCESS)
}

pub async fn queries(client: &Client, args: QueriesArgs) -> Result<ExitCode, ClientError> {
    let list = client.statements(args.all).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if list.statements.is_empty() {
        println!(
            "no statements{}",
            if args.all {
                ""
            } else {
                " running or held (--all lists older ones)"
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "id", "state", "started", "elapsed", "rows", "query id", "sql",
    ]);
    for s in &list.statements {
        table.add_row([
            s.id.clone(),
            s.state.clone(),
            s.started.clone(),
            format!("{:.1}s", s.elapsed_ms as f64 / 1000.0),
            s.rows.map(|r| r.to_string()).unwrap_or_default(),
            s.query_id.clone().unwrap_or_default(),
            s.sql.clone(),
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}
