//! The one place that writes to stderr: progress in cargo's style, warnings,
//! errors with their cause chain. Stdout is left to results.

use std::ffi::OsStr;
use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// Progress, warnings and errors for a human on stderr.
#[derive(Debug)]
pub struct Reporter {
    verbosity: Verbosity,
    /// stderr is a terminal: progress bars are drawn.
    terminal: bool,
    /// Colour escapes are written: a terminal, and `NO_COLOR` unset or empty.
    color: bool,
}

impl Reporter {
    pub fn new(verbosity: Verbosity) -> Self {
        Self::with(
            verbosity,
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        )
    }

    /// The decisions of [`new`](Self::new), from what it observed: whether
    /// stderr is a terminal and the value of `NO_COLOR`. `NO_COLOR` set to
    /// anything but the empty string turns colour off and nothing else
    /// (<https://no-color.org>).
    pub fn with(verbosity: Verbosity, terminal: bool, no_color: Option<&OsStr>) -> Self {
        let color = terminal && no_color.is_none_or(OsStr::is_empty);
        Reporter {
            verbosity,
            terminal,
            color,
        }
    }

    /// A reporter that prints nothing (library use and tests).
    pub fn silent() -> Self {
        Reporter {
            verbosity: Verbosity::Quiet,
            terminal: false,
            color: false,
        }
    }

    /// stderr is an interactive terminal (progress bars are worth drawing).
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// Whether messages are coloured.
    pub fn color(&self) -> bool {
        self.color
    }

    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// `   Verb message`, the verb right-aligned to 12 columns like cargo.
    pub fn status(&self, verb: &str, message: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Normal {
            self.line(verb, "32", &message.to_string());
        }
    }

    /// Like [`status`](Self::status), shown only with `-v`.
    pub fn detail(&self, verb: &str, message: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Verbose {
            self.line(verb, "36", &message.to_string());
        }
    }

    pub fn warn(&self, message: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Normal {
            self.prefixed("warning", "33", &message.to_string());
        }
    }

    /// The error and each cause on its own line. Always printed.
    pub fn error(&self, err: &anyhow::Error) {
        let mut text = err.to_string();
        for cause in err.chain().skip(1) {
            text.push_str(&format!("\n  caused by: {cause}"));
        }
        self.prefixed("error", "31", &text);
    }

    fn line(&self, verb: &str, color: &str, message: &str) {
        let mut err = std::io::stderr().lock();
        if self.color {
            let _ = writeln!(err, "\x1b[1;{color}m{verb:>12}\x1b[0m {message}");
        } else {
            let _ = writeln!(err, "{verb:>12} {message}");
        }
    }

    fn prefixed(&self, label: &str, color: &str, message: &str) {
        let mut err = std::io::stderr().lock();
        if self.color {
            let _ = writeln!(err, "\x1b[1;{color}m{label}\x1b[0m: {message}");
        } else {
            let _ = writeln!(err, "{label}: {message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_turns_colour_off_and_keeps_the_terminal() {
        let r = Reporter::with(Verbosity::Normal, true, Some(OsStr::new("1")));
        assert!(!r.color());
        assert!(r.is_terminal(), "NO_COLOR must not hide the progress bar");
    }

    #[test]
    fn a_terminal_without_no_color_is_coloured() {
        let r = Reporter::with(Verbosity::Normal, true, None);
        assert!(r.color() && r.is_terminal());
        // An empty NO_COLOR counts as unset.
        let r = Reporter::with(Verbosity::Normal, true, Some(OsStr::new("")));
        assert!(r.color() && r.is_terminal());
    }

    #[test]
    fn a_pipe_gets_neither_colour_nor_progress() {
        for no_color in [None, Some(OsStr::new("1"))] {
            let r = Reporter::with(Verbosity::Verbose, false, no_color);
            assert!(!r.color() && !r.is_terminal());
        }
    }
}
