//! The one place that writes to stderr: progress in cargo's style, warnings,
//! errors with their cause chain. Stdout is left to results.

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
    color: bool,
}

impl Reporter {
    pub fn new(verbosity: Verbosity) -> Self {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Reporter { verbosity, color }
    }

    /// A reporter that prints nothing (library use and tests).
    pub fn silent() -> Self {
        Reporter {
            verbosity: Verbosity::Quiet,
            color: false,
        }
    }

    pub fn is_terminal(&self) -> bool {
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
