//! `snowflaked mcp`: run the stdio MCP server ([`crate::mcp`]) for one MCP client.

use std::process::ExitCode;

use clap::Args;

use super::Error;
use crate::client::Client;

#[derive(Debug, Args)]
pub struct McpArgs {
    /// Also offer the `execute` tool, which runs writes (always in one transaction). Without
    /// it the server only reads
    #[arg(long)]
    pub allow_writes: bool,
}

/// Runs the server; `session` is the token given with --session/SNOWFLAKED_SESSION, if any.
/// Exit 0 when the MCP client went away; an error (exit 3) when stdio failed.
pub async fn run(
    client: Client,
    session: Option<String>,
    args: McpArgs,
) -> Result<ExitCode, Error> {
    let default_max_chars =
        crate::config::sources::load_settings(&crate::config::paths::ProcessEnv)
            .map_or(20_000, |s| s.query.max_chars);
    let options = crate::mcp::Options {
        allow_writes: args.allow_writes,
        fixed_token: session,
        default_max_chars,
    };
    crate::mcp::run(client, options).await.map_err(|error| {
        // Also in the log, beside what the MCP client's own log shows of stderr.
        tracing::error!("{error}");
        Error::Mcp(error)
    })?;
    Ok(ExitCode::SUCCESS)
}
