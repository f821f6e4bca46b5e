use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The artifact formats, a closed set. What each one is and how it is
/// written lives in its own module under `package/`; this is only the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Tar,
    Deb,
    Rpm,
}

impl Format {
    /// Every format, in the order they are built.
    pub const ALL: &'static [Format] = &[Format::Tar, Format::Deb, Format::Rpm];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::Deb => "deb",
            Format::Rpm => "rpm",
        }
    }

    /// "tar, deb, rpm" for messages.
    pub fn names() -> String {
        Self::ALL
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("unknown package format \"{s}\" (known: {})", Self::names()))
    }
}
