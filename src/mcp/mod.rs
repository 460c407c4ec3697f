//! `snowflaked mcp`: a Model Context Protocol server on stdio, built on `rmcp`, that is one
//! more client of the daemon. Every MCP client (Claude Desktop, Cursor, Codex, Claude Code…)
//! starts its own `snowflaked mcp` process; each process mints its own token when the client
//! initializes (unless `--session` names one), so each MCP client keeps its own database,
//! schema, warehouse and role while all of them share the daemon's warm pool — none of them
//! logs in to Snowflake itself. The token is ended when the client goes away.
//!
//! Layout: [`server`] is the protocol handler (initialize, list, call), [`tools`] the tool
//! definitions and arguments (the one place new tools are added), [`render`] turns daemon
//! answers into tool results. Stdout carries only protocol messages; logs go to stderr.

pub mod render;
pub mod server;
pub mod tools;

use rmcp::ServiceExt;

use crate::client::Client;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("cannot start the MCP server on stdio: {0}")]
    Start(String),
    #[error("the MCP server stopped unexpectedly: {0}")]
    Stopped(String),
}

/// How the server was started.
#[derive(Debug, Clone)]
pub struct Options {
    /// Register the `execute` tool (writes, always in one transaction).
    pub allow_writes: bool,
    /// A token given with `--session`/`SNOWFLAKED_SESSION`: used as is and never ended.
    /// None: mint one at `initialize` and end it when the client goes away.
    pub fixed_token: Option<String>,
    /// The character budget when a call names none (config `query.max_chars`).
    pub default_max_chars: usize,
}

/// Serves one MCP client on stdin/stdout until it closes the stream or a signal arrives,
/// then ends the minted token.
pub async fn run(client: Client, options: Options) -> Result<(), McpError> {
    let handler = server::SnowflakedMcp::new(client, options);
    let running = handler
        .clone()
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| McpError::Start(e.to_string()))?;
    let cancel = running.cancellation_token();
    let outcome = tokio::select! {
        outcome = running.waiting() => outcome.map(|_| ()).map_err(|e| McpError::Stopped(e.to_string())),
        () = shutdown_signal() => {
            cancel.cancel();
            Ok(())
        }
    };
    handler.end_session().await;
    outcome
}

/// SIGINT or SIGTERM: what MCP clients send after closing stdin, or instead of it.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
