//! Every integration test of snowflaked, in one test binary (`cargo test --test it`), one
//! module per subject. One binary links the crate and the harness once instead of once per
//! file, and lets the harness be checked for dead code like any other code: a helper no test
//! uses is an error here, not an `allow`.
//!
//! Run one subject with `cargo test --test it e2e::` or one test by its name.

/// The harness: private homes, the socket activator, the emulator and raw HTTP (shared with
/// `benches/daemon`).
mod support;

/// Self-start, exit codes, tokens over TCP: the client as people meet it.
mod client;
/// End to end on the real wire with socket activation.
mod e2e;
/// Golden output of every result format.
mod formats;
/// The daemon in-process with the fake backend: fault injection and HTTP fuzzing.
mod in_process;
/// `install`, `uninstall` and `logs` with stand-ins for systemctl and journalctl.
mod install;
/// Real Snowflake, when credentials are given.
mod live;
/// `snowflaked mcp` driven by the official MCP SDK.
mod mcp;
/// The output programs and agents read.
mod output;
/// The Claude Code plugin against a real daemon.
mod plugin;
/// The state file end to end.
mod state;
