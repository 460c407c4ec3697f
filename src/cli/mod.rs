//! The command line: clap definitions, dispatch, and exit codes. One file per group of
//! subcommands; output formats live in [`format`].
//!
//! Commands return their exit status or an [`Error`]; `main` hands errors to
//! [`error::report`], the one place they are printed.
//!
//! Exit status (product.md): 0 success, 1 the statement failed in Snowflake, 2 usage or
//! configuration error, 3 the daemon could not be reached or started, 4 the statement is
//! still running in the daemon (after `--wait`/`--detach`; `result ID` gets it later).

pub mod catalog;
pub mod commands;
pub mod config;
pub mod error;
pub mod format;
pub mod install;
pub mod mcp;
pub mod output;
pub mod query;
pub mod result;
pub mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub use self::error::Error;
use crate::client::Client;

/// snowflaked keeps Snowflake sessions alive for short-lived command-line tools: one login,
/// reused by every command; each client token keeps its own database, schema, warehouse and
/// role between commands.
#[derive(Debug, Parser)]
#[command(
    name = "snowflaked",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Exit status: 0 success, 1 the statement failed, 2 usage or configuration error, 3 the daemon could not be reached or started, 4 still running (after --wait or --detach: `snowflaked result ID` gets the result later)"
)]
pub struct Cli {
    /// The daemon's Unix socket [default: $XDG_RUNTIME_DIR/snowflaked/api.sock]
    #[arg(long, global = true, env = "SNOWFLAKED_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// The client token whose context commands use; tools that want their own context mint
    /// one with `snowflaked session new` [default: default; `mcp` mints its own]
    #[arg(long, global = true, env = "SNOWFLAKED_SESSION", value_name = "TOKEN")]
    pub session: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground (what the systemd and launchd units start)
    Serve(serve::ServeArgs),
    /// Run SQL through the daemon (`-` or no SQL reads standard input)
    Query(query::QueryArgs),
    /// Show a table's or view's columns (name, type, nullable, default, comment) and, with
    /// --sample N, N of its rows
    Describe(catalog::DescribeArgs),
    /// List tables and views (kind, rows, bytes) matching a pattern in the current schema, or
    /// --in DB[.SCHEMA]
    Tables(catalog::TablesArgs),
    /// Find columns whose names match a pattern across the current database, with their tables
    Columns(catalog::ColumnsArgs),
    /// A page of a statement's result by its id, or its state; never runs it again
    Result(result::ResultArgs),
    /// This token's running and recent statements
    Queries(result::QueriesArgs),
    /// Change this token's context
    Use {
        /// What to change
        kind: ContextKind,
        /// The name, as in SQL: unquoted names are upper-cased by Snowflake, "Quoted" ones
        /// are kept as written; a schema may be given as DB.SCHEMA
        name: String,
    },
    /// Show this token's context
    Context {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Show the daemon: version, pid, uptime, activation, idle time left, pool, tokens, queries
    Status {
        /// Print JSON (the fields of GET /v1/status)
        #[arg(long)]
        json: bool,
    },
    /// Manage client tokens
    #[command(subcommand)]
    Session(SessionCommand),
    /// Cancel a running statement (also a detached one) by its id
    Cancel {
        /// The statement's id
        query_id: String,
    },
    /// Ask the daemon to finish running statements and exit
    Stop,
    /// Print the resolved configuration with secrets redacted
    Config {
        /// Also log in once and report the account, user, role and warehouse
        #[arg(long)]
        check: bool,
    },
    /// Print the Prometheus metrics the daemon exposes at /metrics
    Metrics,
    /// Write and enable the user service (systemd socket + service, or a launchd agent)
    Install(install::InstallArgs),
    /// Stop, disable and remove exactly what `install` created
    Uninstall,
    /// Show the daemon's logs (the journal on Linux, the agent's log file on macOS)
    Logs {
        /// Keep following new lines
        #[arg(short, long)]
        follow: bool,
    },
    /// Serve the Model Context Protocol on stdin/stdout for one MCP client (Claude Desktop,
    /// Cursor, Codex, Claude Code…), with its own token and context
    Mcp(mcp::McpArgs),
    /// Print shell completions
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Mint a new random token and print it (use it with --session or SNOWFLAKED_SESSION)
    New,
    /// Forget a token, rolling back its open transaction [default: this token]
    End {
        /// The token to end
        token: Option<String>,
    },
    /// List the tokens the daemon knows
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ContextKind {
    Database,
    Schema,
    Warehouse,
    Role,
    /// The query tag attached to this token's statements ("" clears it)
    QueryTag,
}

/// Parses arguments and runs the command: its exit status, or why it failed (for
/// [`error::report`] to print).
pub fn run() -> Result<ExitCode, Error> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "snowflaked", &mut script);
            output::write(&script);
            Ok(ExitCode::SUCCESS)
        }
        Command::Config { check } => config::run(check),
        Command::Install(args) => Ok(install::install(args)?),
        Command::Uninstall => Ok(install::uninstall()?),
        Command::Logs { follow } => Ok(install::logs(follow)?),
        command => {
            crate::logging::init_client();
            let client = Client::new(cli.socket, cli.session.clone());
            runtime()?.block_on(run_client(client, cli.session, command))
        }
    }
}

/// The single-threaded runtime of a client command.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

async fn run_client(
    client: Client,
    session: Option<String>,
    command: Command,
) -> Result<ExitCode, Error> {
    Ok(match command {
        Command::Mcp(args) => return mcp::run(client, session, args).await,
        Command::Describe(args) => catalog::describe(&client, args).await?,
        Command::Tables(args) => catalog::tables(&client, args).await?,
        Command::Columns(args) => catalog::columns(&client, args).await?,
        Command::Query(args) => query::run(&client, args).await?,
        Command::Result(args) => result::result(&client, args).await?,
        Command::Queries(args) => result::queries(&client, args).await?,
        Command::Use { kind, name } => commands::use_context(&client, kind, name).await?,
        Command::Context { json } => commands::context(&client, json).await?,
        Command::Status { json } => commands::status(&client, json).await?,
        Command::Session(SessionCommand::New) => commands::session_new(&client).await?,
        Command::Session(SessionCommand::End { token }) => {
            commands::session_end(&client, token).await?
        }
        Command::Session(SessionCommand::List { json }) => {
            commands::session_list(&client, json).await?
        }
        Command::Cancel { query_id } => commands::cancel(&client, &query_id).await?,
        Command::Stop => commands::stop(&client).await?,
        Command::Metrics => commands::metrics(&client).await?,
        Command::Serve(_)
        | Command::Completions { .. }
        | Command::Config { .. }
        | Command::Install(_)
        | Command::Uninstall
        | Command::Logs { .. } => unreachable!("handled before the runtime starts"),
    })
}
