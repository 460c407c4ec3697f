//! The daemon's own settings, with their documented defaults.
//!
//! Every field has a default so an empty config file is a valid one. Durations accept `30s`,
//! `5m`, `1h` or `0` (never / no limit).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::duration;

/// Everything `snowflaked serve` needs besides the Snowflake credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DaemonSettings {
    /// The Unix socket to bind when none is inherited. `None`: the per-user default.
    pub socket: Option<PathBuf>,
    /// A loopback TCP address to listen on as well (off unless configured).
    pub tcp: Option<SocketAddr>,
    /// Exit after this long with no connection open; `0` never exits.
    #[serde(deserialize_with = "duration::deserialize")]
    pub idle_timeout: Duration,
    /// How long in-flight requests may take to finish once the daemon is stopping.
    #[serde(deserialize_with = "duration::deserialize")]
    pub drain_timeout: Duration,
    /// `tracing` filter, e.g. `info` or `snowflaked=debug`; `RUST_LOG` overrides it.
    pub log_level: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// A client must send its request head and body within this time.
    #[serde(deserialize_with = "duration::deserialize")]
    pub request_read_timeout: Duration,
    /// A client that reads none of its answer for this long is disconnected.
    #[serde(deserialize_with = "duration::deserialize")]
    pub write_stall_timeout: Duration,
    /// Where token contexts are persisted. `None`: `$STATE_DIRECTORY` or the XDG state dir.
    pub state_dir: Option<PathBuf>,
    pub pool: PoolSettings,
    pub query: QuerySettings,
    pub tokens: TokenSettings,
    pub results: ResultSettings,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        Self {
            socket: None,
            tcp: None,
            idle_timeout: Duration::from_secs(30 * 60),
            drain_timeout: Duration::from_secs(20),
            log_level: "info".to_string(),
            max_body_bytes: 1024 * 1024,
            request_read_timeout: Duration::from_secs(10),
            write_stall_timeout: Duration::from_secs(30),
            state_dir: None,
            pool: PoolSettings::default(),
            query: QuerySettings::default(),
            tokens: TokenSettings::default(),
            results: ResultSettings::default(),
        }
    }
}

/// The Snowflake session pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PoolSettings {
    /// At most this many logged-in sessions.
    pub max_size: usize,
    /// Keep at least this many sessions logged in once the daemon has been used.
    pub min_idle: usize,
    /// A request waiting longer than this for a free session fails with a clear error.
    #[serde(deserialize_with = "duration::deserialize")]
    pub checkout_timeout: Duration,
    /// Idle sessions are checked with a trivial statement this often.
    #[serde(deserialize_with = "duration::deserialize")]
    pub heartbeat_interval: Duration,
    /// Sessions are replaced before they get this old (Snowflake session tokens expire after
    /// about an hour without renewal, which the client crate does not do).
    #[serde(deserialize_with = "duration::deserialize")]
    pub max_lifetime: Duration,
    /// One login may take at most this long.
    #[serde(deserialize_with = "duration::deserialize")]
    pub login_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: 4,
            min_idle: 1,
            checkout_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5 * 60),
            max_lifetime: Duration::from_secs(50 * 60),
            login_timeout: Duration::from_secs(60),
        }
    }
}

/// Defaults for statements.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct QuerySettings {
    /// Rows returned when the client does not say (`0`: all).
    pub max_rows: u64,
    /// Cancel statements running longer than this (`0`: no limit).
    #[serde(deserialize_with = "duration::deserialize")]
    pub timeout: Duration,
    /// Refuse anything that is not a read unless the client asks otherwise.
    pub read_only: bool,
    /// Character budget for table and markdown output (an agent's context window is small).
    pub max_chars: usize,
    /// The query tag of tokens that set none themselves (`snowflaked use query-tag`, the
    /// plugin's session hook), so their statements are attributable in QUERY_HISTORY too.
    /// `{token}` becomes the token's name (`minted` for minted tokens, which are credentials)
    /// and `{version}` snowflaked's version. Unset: no tag.
    pub tag: Option<String>,
}

impl Default for QuerySettings {
    fn default() -> Self {
        Self {
            max_rows: 100,
            timeout: Duration::ZERO,
            read_only: false,
            max_chars: 20_000,
            tag: None,
        }
    }
}

/// Client tokens and their contexts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TokenSettings {
    /// Forget a token's context after this long unused (`0`: never).
    #[serde(deserialize_with = "duration::deserialize")]
    pub ttl: Duration,
    /// Roll back a transaction left open and idle for this long (`0`: never).
    #[serde(deserialize_with = "duration::deserialize")]
    pub transaction_idle_timeout: Duration,
    /// Keep at most this many tokens (minted and named); more are refused with 429. It also
    /// bounds the state file, which every saved change rewrites.
    pub max: usize,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30 * 24 * 3600),
            transaction_idle_timeout: Duration::from_secs(10 * 60),
            max: crate::sessions::registry::DEFAULT_MAX_TOKENS,
        }
    }
}

/// Results held for paging (`snowflaked result ID`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ResultSettings {
    /// Bytes of result rows held in memory over all results; rows beyond go to a private
    /// spill file.
    pub memory: usize,
    /// Drop a held result this long after it was stored (it can then still come from
    /// Snowflake's result cache for 24 h).
    #[serde(deserialize_with = "duration::deserialize")]
    pub keep: Duration,
    /// Where spill files go (in a subdirectory per daemon). `None`: `results/` in the
    /// runtime directory.
    pub dir: Option<PathBuf>,
    /// Rows a held result keeps at most (`0`: all); pages past it are refused with a message
    /// rather than filling the disk.
    pub max_rows: u64,
}

impl Default for ResultSettings {
    fn default() -> Self {
        Self {
            // 1 MiB: the small results agents page through stay in memory; big ones go to the
            // spill file, so held rows cost the idle daemon at most this much (the bench's
            // idle RSS after a 100k-row answer: 17.9 MiB at 1 MiB held, 24.8 MiB at 4 MiB).
            memory: 1024 * 1024,
            keep: Duration::from_secs(3600),
            dir: None,
            // Bounds what one detached statement downloads and spills (a model's `SELECT *`
            // through MCP or the plugin starts one); pages past it are refused, plainly.
            max_rows: 1_000_000,
        }
    }
}
