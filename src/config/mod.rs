//! Configuration: the daemon's own settings and the Snowflake connection it logs in with.
//!
//! Sources, lowest precedence first: built-in defaults, `~/.config/snowflaked/config.toml`
//! (XDG), `SNOWFLAKED_*` environment variables, command-line flags. Snowflake credentials are
//! resolved separately ([`connection`]) because they have their own, first-match-wins order.
//!
//! IO (reading files and the environment) lives in [`sources`]; everything else here is a pure
//! merge over values, so tests exercise it without touching the machine.

pub mod connection;
pub mod duration;
pub mod paths;
pub mod settings;
pub mod sources;

pub use connection::{Auth, ConnectionSettings, ConnectionSource};
pub use settings::{DaemonSettings, PoolSettings, QuerySettings, TokenSettings};

/// Why the configuration could not be used; every variant names the file or variable at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration in {origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error(
        "{path} holds credentials and is readable by other users (mode {mode:o}); run `chmod 0600 {path}`"
    )]
    InsecurePermissions { path: String, mode: u32 },
    #[error("no Snowflake connection is configured: {hint}")]
    NoConnection { hint: String },
    #[error("connection {name:?} is not defined in {path}")]
    UnknownConnection { name: String, path: String },
}
