//! `snowflaked mcp`: run the stdio MCP server ([`crate::mcp`]) for one MCP client.

use std::process::ExitCode;

use clap::Args;

use crate::client::Client;

#[derive(Debug, Args)]
pub struct McpArgs {
    /// Also offer the `execute` tool, which runs writes (always in one transaction). Without
    /// it the server only reads
    #[arg(long)]
    pub allow_writes: bool,
}

/// Runs the server; `session` is the token given with --session/SNOWFLAKED_SESSION, if any.
pub async fn run(client: Client, session: Option<String>, args: McpArgs) -> ExitCode {
    let default_max_chars =
        crate::config::sources::load_settings(&crate::config::paths::ProcessEnv)
            .map_or(20_000, |s| s.query.max_chars);
    let options = crate::mcp::Options {
        allow_writes: args.allow_writes,
        fixed_token: session,
        default_max_chars,
    };
    crate::mcp::main(client, options).await
}
