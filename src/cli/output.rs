//! Standard output for the client commands. A reader that went away (`snowflaked session list
//! | head`) is not a failure: the command stops at once and exits with success, as ripgrep
//! does, instead of panicking the way `println!` would. Any other write error is reported
//! and exits with status 1.

use std::fmt;
use std::io::Write;

/// Prints one line (see [`write`]); `outln!` is the `println!` of the client commands.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// Prints `args` and a newline.
pub fn line(args: fmt::Arguments<'_>) {
    write(format!("{args}\n").as_bytes());
}

/// Writes `bytes` to standard output and flushes; on a closed pipe the process exits 0.
pub fn write(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        exit_on_write_error(&e);
    }
}

/// The one error not returned to `main`: output is written from deep inside every command,
/// and nothing after a failed write is worth doing. Printed as `cli::error::report` prints.
fn exit_on_write_error(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    let _ = writeln!(
        std::io::stderr(),
        "error: cannot write to standard output: {error}"
    );
    std::process::exit(1);
}
