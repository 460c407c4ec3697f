//! Client tokens and their contexts.
//!
//! Each client names a token; for each token the daemon remembers the context (database,
//! schema, warehouse, role, query tag) that Snowflake reported after the token's last
//! context-changing statement. The runner applies that context to whichever pooled session
//! runs the token's next statement. This module owns the registry, the pure context diff, and
//! the state file that lets contexts survive idle exits and restarts; it never talks to
//! Snowflake itself.

pub mod context;
pub mod registry;
pub mod store;
pub mod token;
pub mod writer;

pub use context::Context;
pub use registry::Registry;
