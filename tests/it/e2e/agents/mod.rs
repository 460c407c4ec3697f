//! What agents need next (issue 12, items 10–12), end to end with the real binary on the
//! emulator: bind parameters of every type with hostile strings, query tags the emulator sees,
//! and catalog commands that stay inside the budgets.

mod binds;
mod catalog;
mod tags;
