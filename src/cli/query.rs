//! `snowflaked query`: read the SQL (argument, `-f FILE`, or stdin), send it, print the result
//! in the chosen format. On a terminal a spinner on stderr shows the elapsed time and the
//! request id; Ctrl-C cancels the statement in Snowflake.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::format::{Format, Options, render_output};
use crate::api::{ErrorBody, ErrorDetail, ErrorKind, QueryRequest, QueryResponse, StatementInfo};
use crate::client::{Client, ClientError, QueryOutcome};
use crate::config::duration;

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL; several statements may be separated by `;`. `-` or nothing reads stdin
    pub sql: Option<String>,
    /// Read the SQL from this file
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "sql"
    )]
    pub file: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Return at most N rows (0 = all) [default: 100, or query.max_rows in the config]
    #[arg(long, value_name = "N")]
    pub max_rows: Option<u64>,
    /// Character budget for table and markdown output (0 = none) [default: 20000, or
    /// query.max_chars in the config]
    #[arg(long, value_name = "N")]
    pub max_chars: Option<usize>,
    /// Cancel the statement if it runs longer than this (30s, 5m; 0 = no limit)
    #[arg(long, value_name = "DUR", value_parser = duration::parse)]
    pub timeout: Option<Duration>,
    /// Refuse anything that is not a read (SELECT, SHOW, DESCRIBE, EXPLAIN, USE…)
    #[arg(long)]
    pub read_only: bool,
    /// Run all statements in one transaction; if one fails, everything is rolled back
    #[arg(long)]
    pub transaction: bool,
    /// A bind parameter, sent beside the SQL (never spliced into it): `VALUE` for the next `?`,
    /// `NAME=VALUE` for `:NAME`, typed as `TYPE:VALUE` (text by default; types: text, int,
    /// number, float, bool, date, time, timestamp, timestamp_ltz, timestamp_tz, binary (hex),
    /// `null:` / `null:TYPE`). Write `text:VALUE` for text that starts like NAME= or TYPE:
    #[arg(short = 'p', long = "param", value_name = "[NAME=][TYPE:]VALUE", value_parser = crate::binds::parse_arg)]
    pub params: Vec<crate::binds::Arg>,
    /// Tag this request's statements with TEXT (Snowflake's QUERY_TAG, seen in QUERY_HISTORY);
    /// the token's own tag applies again afterwards
    #[arg(long, value_name = "TEXT")]
    pub query_tag: Option<String>,
    /// Write NULL as TEXT in csv, table and markdown (like psql's `\pset null`); a string
    /// equal to TEXT is then quoted [default: nothing in csv, NULL in table and markdown]
    #[arg(long, value_name = "TEXT")]
    pub null: Option<String>,
    /// Wait at most this long (30s, 5m); if the statement is still running, print its id and
    /// the follow-up command and exit with status 4 — it goes on in the daemon, and
    /// `snowflaked result ID` gets its result later
    #[arg(long, value_name = "DUR", value_parser = duration::parse)]
    pub wait: Option<Duration>,
    /// Start the statement in the daemon and return at once (= --wait 0)
    #[arg(long, conflicts_with = "wait")]
    pub detach: bool,
}

/// Exit status: the statement is still running in the daemon (after `--wait`/`--detach`).
pub const STILL_RUNNING: u8 = 4;

/// Default character budget: a few pages, small enough for an agent's context window.
const DEFAULT_MAX_CHARS: usize = 20_000;

pub async fn run(client: &Client, args: QueryArgs) -> Result<ExitCode, ClientError> {
    let result = run_query(client, &args).await;
    if let Err(error) = &result
        && matches!(args.format, Format::Json | Format::Ndjson)
    {
        // A program reading the output can always parse it: the error object goes to stdout
        // too (stderr keeps the human-readable lines).
        write_stdout(&error_json(error));
    }
    result
}

/// The API's error object for any failure of the client, one line: the daemon's own body for
/// an API error, a `daemon_unreachable`, `protocol` or `usage` object otherwise.
pub fn error_json(error: &ClientError) -> String {
    let detail = match error {
        ClientError::Api { error, .. } => (**error).clone(),
        ClientError::Unreachable { .. } => {
            ErrorDetail::new(ErrorKind::DaemonUnreachable, error.to_string())
        }
        ClientError::Protocol(_) => ErrorDetail::new(ErrorKind::Protocol, error.to_string()),
        ClientError::Usage(message) => ErrorDetail::new(ErrorKind::Usage, message.clone()),
    };
    let mut line = serde_json::to_string(&ErrorBody { error: detail }).unwrap_or_default();
    line.push('\n');
    line
}

fn write_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

async fn run_query(client: &Client, args: &QueryArgs) -> Result<ExitCode, ClientError> {
    if args.format == Format::Csv
        && let Some(null) = &args.null
        && null.contains([',', '"', '\r', '\n'])
    {
        return Err(ClientError::Usage(format!(
            "--null {null:?} cannot be told apart in csv: leave out commas, quotes and line breaks"
        )));
    }
    let sql = read_sql(args)?;
    let params = crate::binds::Params::from_args(&args.params)
        .map_err(|e| ClientError::Usage(e.to_string()))?;
    let request = QueryRequest {
        sql,
        max_rows: args.max_rows,
        timeout_ms: args.timeout.map(|t| t.as_millis() as u64),
        read_only: args.read_only.then_some(true),
        transaction: args.transaction,
        params: params.to_json(),
        query_tag: args.query_tag.clone(),
        wait_ms: if args.detach {
            Some(0)
        } else {
            args.wait.map(|w| w.as_millis() as u64)
        },
    };
    // Chosen here, so Ctrl-C can name the statement before the daemon answers.
    let request_id = crate::api::new_statement_id("q");
    let spinner = std::io::stderr()
        .is_terminal()
        .then(|| spawn_spinner(request_id.clone()));
    let call = client.submit(&request, &request_id);
    let result = tokio::select! {
        result = call => result,
        _ = tokio::signal::ctrl_c() => {
            if let Some(spinner) = &spinner { spinner.abort(); }
            eprintln!("\rcancelling {request_id}…");
            // Closing the connection also cancels; asking explicitly makes it prompt.
            let _ = client.cancel(&request_id).await;
            return Ok(ExitCode::from(130));
        }
    };
    if let Some(spinner) = spinner {
        spinner.abort();
        eprint!("\r\x1b[2K");
    }
    let response = match result? {
        QueryOutcome::Finished(response) => response,
        QueryOutcome::Running(running) => {
            print_still_running(&running, args.format);
            return Ok(ExitCode::from(STILL_RUNNING));
        }
    };
    print_result(
        &response,
        args.format,
        args.max_chars,
        args.null.clone(),
        None,
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints a result (or a page of one) in `format`, within the character budget, and says how
/// to page on when rows are left.
pub(super) fn print_result(
    response: &QueryResponse,
    format: Format,
    max_chars: Option<usize>,
    null: Option<String>,
    next: Option<String>,
) {
    for warning in &response.warnings {
        eprintln!("warning: {warning}");
    }
    let width = if std::io::stdout().is_terminal() {
        terminal_width()
    } else {
        None
    };
    let options = Options {
        format,
        max_chars: character_budget(max_chars, format),
        width,
        null,
    };
    let rendered = render_output(response, &options);
    for notice in &rendered.notices {
        eprintln!("{notice}");
    }
    write_stdout(&rendered.stdout);
    if response.truncated
        && let Some(id) = &response.id
    {
        let offset = response.page.as_ref().map_or(0, |p| p.offset) + response.row_count;
        eprintln!(
            "{}",
            next.unwrap_or_else(|| format!(
                "more rows: `snowflaked result {id} --offset {offset}` pages on without running the statement again"
            ))
        );
    }
}

/// What `query --wait`/`--detach` prints when the statement is still running.
pub(super) fn print_still_running(info: &StatementInfo, format: Format) {
    if matches!(format, Format::Json | Format::Ndjson) {
        println!("{}", serde_json::to_string(info).unwrap_or_default());
        return;
    }
    let query_id = info
        .query_id
        .as_deref()
        .map(|q| format!(" (Snowflake query id {q})"))
        .unwrap_or_default();
    println!(
        "still running after {:.1}s: id {}{query_id}\nget the result: snowflaked result {} --wait 60s\ncancel it:      snowflaked cancel {}",
        info.elapsed_ms as f64 / 1000.0,
        info.id,
        info.id,
        info.id
    );
}

/// The character budget for table and markdown output. Only those formats have one, so only
/// they read the config file for it; programs asking for json, ndjson or csv pay nothing.
fn character_budget(max_chars: Option<usize>, format: Format) -> usize {
    match (max_chars, format) {
        (Some(chars), _) => chars,
        (None, Format::Table | Format::Markdown) => {
            crate::config::sources::load_settings(&crate::config::paths::ProcessEnv)
                .map_or(DEFAULT_MAX_CHARS, |s| s.query.max_chars)
        }
        (None, _) => 0,
    }
}

/// The SQL from the argument, the file or standard input; reading it is a usage error.
fn read_sql(args: &QueryArgs) -> Result<String, ClientError> {
    let usage = ClientError::Usage;
    let sql = match (&args.file, args.sql.as_deref()) {
        (Some(path), _) => std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?,
        (None, Some(sql)) if sql != "-" => sql.to_string(),
        _ => {
            if std::io::stdin().is_terminal() {
                eprintln!("reading SQL from standard input; end with Ctrl-D");
            }
            let mut sql = String::new();
            std::io::stdin()
                .read_to_string(&mut sql)
                .map_err(|e| usage(format!("cannot read standard input: {e}")))?;
            sql
        }
    };
    if sql.trim().is_empty() {
        return Err(usage(
            "no SQL given: pass it as an argument, with -f FILE, or on standard input".into(),
        ));
    }
    Ok(sql)
}

fn spawn_spinner(request_id: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
        let started = Instant::now();
        // Quick statements finish before the spinner would flicker into view.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut frame = 0;
        loop {
            eprint!(
                "\r{} running {:.1}s · {request_id} (Ctrl-C cancels)",
                FRAMES[frame % FRAMES.len()],
                started.elapsed().as_secs_f64()
            );
            let _ = std::io::stderr().flush();
            frame += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

pub(super) fn terminal_width() -> Option<u16> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .or_else(|| {
            // SAFETY: TIOCGWINSZ fills a winsize struct; stdout is a terminal here.
            let mut size: libc::winsize = unsafe { std::mem::zeroed() };
            let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
            (ok && size.ws_col > 0).then_some(size.ws_col)
        })
}
