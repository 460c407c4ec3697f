//! Catalog commands sized for an agent's context window: `describe NAME [--sample N]`,
//! `tables [PATTERN] [--in DB[.SCHEMA]]` and `columns PATTERN [--in DB[.SCHEMA]]`.
//!
//! The statements behind them live in [`crate::catalog`], shared with the MCP tools; this
//! module renders their answers (within `--max-rows` and the character budget, in every
//! format). When a list is cut, a notice on stderr says how many entries there were and how to
//! narrow it down.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Args;

use super::format::{Format, render};
use crate::catalog::{self, CatalogError, Described, Listing};
use crate::client::{Client, ClientError};

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

pub async fn describe(client: &Client, args: DescribeArgs) -> Result<ExitCode, ClientError> {
    let described =
        match catalog::describe(client, &args.name, args.sample, args.output.max_rows).await {
            Ok(described) => described,
            Err(e) => return failed(e),
        };
    let Described { columns, sample } = described;
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

pub async fn tables(client: &Client, args: TablesArgs) -> Result<ExitCode, ClientError> {
    let listing = catalog::tables(
        client,
        args.pattern.as_deref(),
        args.within.as_deref(),
        args.output.max_rows,
    )
    .await;
    show(listing, &args.output, "tables")
}

pub async fn columns(client: &Client, args: ColumnsArgs) -> Result<ExitCode, ClientError> {
    let listing = catalog::columns(
        client,
        &args.pattern,
        args.within.as_deref(),
        args.output.max_rows,
    )
    .await;
    show(listing, &args.output, "columns")
}

/// Prints a listing and, when it was cut, says how many entries there were.
fn show(
    listing: Result<Listing, CatalogError>,
    output: &Output,
    what: &str,
) -> Result<ExitCode, ClientError> {
    let Listing { response, total } = match listing {
        Ok(listing) => listing,
        Err(e) => return failed(e),
    };
    let budget = character_budget(output.max_chars, output.format);
    print(&render(&response, output.format, budget, width()));
    if response.truncated {
        let total = total.map_or_else(|| "more".to_string(), |n| n.to_string());
        eprintln!(
            "note: showing {} of {total} {what}; narrow it with a PATTERN or --in, or raise --max-rows",
            response.row_count
        );
    }
    Ok(ExitCode::SUCCESS)
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

/// A lookup that could not be made is a usage error (exit 2); the daemon's answer is
/// reported as it is. Either way the one printer (`cli::error::report`) prints it.
fn failed(error: CatalogError) -> Result<ExitCode, ClientError> {
    Err(match error {
        CatalogError::Client(error) => error,
        CatalogError::NoDatabase => ClientError::Usage(format!(
            "{error}: choose one with `snowflaked use database NAME`, or pass --in DB.SCHEMA"
        )),
        error => ClientError::Usage(error.to_string()),
    })
}
