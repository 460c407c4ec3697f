//! Why a command failed, and the one place that prints it. Commands return these errors
//! instead of printing them; [`report`] writes each one to stderr as `error: …` (with what the
//! daemon said besides its message: warnings first, then the statement, code, sqlstate and
//! query id, then the hint) and picks the exit status of the contract in product.md.

use std::process::ExitCode;

use crate::client::ClientError;
use crate::config::ConfigError;
use crate::daemon::DaemonError;
use crate::mcp::McpError;
use crate::snowflake::BackendError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the daemon failed, or the input could not make one.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `config --check` could not log in.
    #[error("check failed: {0}")]
    Check(#[source] BackendError),
    /// The async runtime could not be built.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// `serve` could not take over or bind its sockets.
    #[error("cannot listen: {0}")]
    Listen(#[source] std::io::Error),
    /// The daemon stopped because of an error.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// `mcp` could not serve on stdio.
    #[error(transparent)]
    Mcp(#[from] McpError),
    /// `install`, `uninstall` or `logs` could not start.
    #[error(transparent)]
    Install(#[from] super::install::InstallError),
}

impl Error {
    /// 1 the statement failed in Snowflake, 2 usage or configuration error, 3 the daemon could
    /// not be reached or started (or, for `serve`, could not listen or run).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Client(error) => error.exit_code(),
            Error::Config(_) | Error::Check(_) | Error::Install(_) => 2,
            Error::Runtime(_) | Error::Listen(_) | Error::Daemon(_) | Error::Mcp(_) => 3,
        }
    }
}

/// Prints `error` on stderr and returns its exit status.
pub fn report(error: &Error) -> ExitCode {
    let text = match error {
        Error::Client(ClientError::Api { error: detail, .. }) => {
            let mut text = String::new();
            // First: a context that could not be applied is often why it failed.
            for warning in &detail.warnings {
                text.push_str(&format!("warning: {warning}\n"));
            }
            text.push_str(&format!("error: {}", detail.message_with_facts()));
            if let Some(hint) = &detail.hint {
                text.push_str(&format!("\nhint: {hint}"));
            }
            text
        }
        other => format!("error: {other}"),
    };
    eprintln!("{text}");
    ExitCode::from(error.exit_code())
}
