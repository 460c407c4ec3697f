//! snowflaked: a per-user daemon that keeps Snowflake sessions alive for short-lived
//! command-line tools, and the command-line client that talks to it.
//!
//! The crate is one library and one binary. The library is laid out so that each concern
//! has exactly one owner:
//!
//! | module | owns | must not |
//! |---|---|---|
//! | [`api`] | the JSON wire types shared by server and client | know about sockets or Snowflake |
//! | [`binds`] | bind parameters: parsing, validation, the typed JSON form | splice values into SQL |
//! | [`config`] | daemon settings and Snowflake credentials, with their sources | perform network IO |
//! | [`secret`] | the redacting wrapper every credential travels in | ever print its content |
//! | [`activation`] | inherited (systemd, launchd) or self-bound listening sockets | unlink a socket it did not bind |
//! | [`lifecycle`] | activity tracking, the idle timer, sd_notify messages | know HTTP |
//! | [`server`] | the hyper service: routing, handlers, error → HTTP status | know the Snowflake crate |
//! | [`runner`] | running one token's statement on a pooled session | know HTTP |
//! | [`sessions`] | token → context registry, transaction pins, persistence | talk to Snowflake |
//! | [`pool`] | the pool of logged-in Snowflake sessions | know tokens' contexts beyond a diff |
//! | [`snowflake`] | the `Backend`/`Session` traits, the real connector, a fake for tests | know pools or tokens |
//! | [`sql`] | statement classification with a real lexer | execute anything |
//! | [`statements`] | statement ids, daemon-owned statements, held results and paging | know HTTP |
//! | [`row`] | a result row as JSON text, from Snowflake to the wire | parse more than it must |
//! | [`metrics`] | counters and the latency histogram, Prometheus text | block |
//! | [`daemon`] | wiring everything together and the one shutdown tree | contain business logic |
//! | [`client`] | finding, starting and calling the daemon: one typed method per API call | format output |
//! | [`catalog`] | the statements behind `describe`, `tables`, `columns` (CLI and MCP) | splice user text into SQL |
//! | [`cli`] | the command line, output formats, and the one printer of errors | hold daemon state |
//! | [`mcp`] | the stdio MCP server, one more client of the daemon | log in to Snowflake |
//!
//! See `ARCHITECTURE.md` for invariants and the request path.

pub mod activation;
pub mod api;
pub mod binds;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod lifecycle;
pub mod logging;
pub mod mcp;
pub mod metrics;
pub mod pool;
pub mod row;
pub mod runner;
pub mod secret;
pub mod server;
pub mod sessions;
pub mod snowflake;
pub mod sql;
pub mod statements;
