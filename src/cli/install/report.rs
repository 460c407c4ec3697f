//! What `install` and `uninstall` tell the user: one line per file and per command, then
//! warnings and advice. Lines are kept in order (for tests) and, when live, printed as they
//! happen, so that a slow `systemctl` never leaves the terminal silent.

use std::io::Write as _;

/// How much a line matters; warnings and errors go to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// The lines said so far.
#[derive(Debug, Default)]
pub struct Report {
    live: bool,
    pub lines: Vec<(Level, String)>,
}

/// The command could not finish; why is in the report. Exit status 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported;

impl Report {
    /// A report printed as it is written.
    pub fn live() -> Report {
        Report {
            live: true,
            lines: Vec::new(),
        }
    }

    pub fn say(&mut self, text: impl Into<String>) {
        self.add(Level::Info, text.into());
    }

    pub fn warn(&mut self, text: impl Into<String>) {
        self.add(Level::Warning, text.into());
    }

    /// Adds an error line and returns what the flows propagate with `?`.
    pub fn error(&mut self, text: impl Into<String>) -> Reported {
        self.add(Level::Error, text.into());
        Reported
    }

    /// Everything said, one line after another.
    #[cfg(test)]
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(|(_, line)| format!("{line}\n"))
            .collect()
    }

    fn add(&mut self, level: Level, text: String) {
        if self.live {
            // A closed pipe (`snowflaked install | head`) must not turn into a panic halfway
            // through the work, so write errors are ignored rather than unwrapped.
            let _ = match level {
                Level::Info => writeln!(std::io::stdout(), "{text}"),
                Level::Warning => writeln!(std::io::stderr(), "warning: {text}"),
                Level::Error => writeln!(std::io::stderr(), "error: {text}"),
            };
        }
        self.lines.push((level, text));
    }
}
