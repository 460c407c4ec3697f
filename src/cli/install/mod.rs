//! `snowflaked install`, `uninstall` and `logs` (being written).

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Print what would be written and run, and change nothing
    #[arg(long)]
    pub print: bool,
}

pub fn install(_args: InstallArgs) -> ExitCode {
    eprintln!("error: install is not available in this build yet");
    ExitCode::from(2)
}

pub fn uninstall() -> ExitCode {
    eprintln!("error: uninstall is not available in this build yet");
    ExitCode::from(2)
}

pub fn logs(_follow: bool) -> ExitCode {
    eprintln!("error: logs is not available in this build yet");
    ExitCode::from(2)
}
