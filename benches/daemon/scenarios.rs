//! The five measured scenarios, in the order the benchmark runs them; each prints its section
//! and adds its figures and targets to the report.

pub mod cold;
pub mod concurrent;
pub mod memory;
pub mod sequential;
pub mod warm;
