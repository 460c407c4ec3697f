//! Logging setup: structured events to the journal when running under systemd (with fields
//! such as `token`, `query_id`, `elapsed_ms`, `outcome`), to stderr otherwise. The level comes
//! from `RUST_LOG`, else the configured `log_level`. Nothing secret is ever logged: credentials
//! travel in [`crate::secret::Secret`], which prints as `<redacted>`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

/// Installs the global subscriber. `prefer_journal` is true under systemd.
pub fn init(level: &str, prefer_journal: bool) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    if prefer_journal {
        match tracing_journald::layer() {
            Ok(journal) => {
                tracing_subscriber::registry()
                    .with(filter)
                    .with(journal.with_syslog_identifier("snowflaked".into()))
                    .init();
                return;
            }
            Err(e) => eprintln!("warning: journald unavailable ({e}); logging to stderr"),
        }
    }
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
}

/// Whether systemd started this process with its output connected to the journal.
pub fn under_systemd() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some() || std::env::var_os("INVOCATION_ID").is_some()
}

/// Client-side logging: warnings only, to stderr, unless `RUST_LOG` says otherwise. Colour
/// only on a terminal: `snowflaked mcp`'s stderr usually ends up in an MCP client's log file.
pub fn init_client() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .try_init();
}
