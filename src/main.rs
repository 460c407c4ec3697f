//! The `snowflaked` binary: the daemon (`serve`) and its client in one executable. All logic
//! lives in the library; this only hands over to the command line and prints what failed.

use std::process::ExitCode;

fn main() -> ExitCode {
    match snowflaked::cli::run() {
        Ok(code) => code,
        Err(error) => snowflaked::cli::error::report(&error),
    }
}
