//! Config errors: where, what, and how to fix it. Validation collects every
//! problem in one pass so a user fixes them all in one edit.

use std::fmt;
use std::path::{Path, PathBuf};

/// A place in the config file. Line 0 means "the file as a whole".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
}

impl Position {
    pub fn file(file: &Path) -> Self {
        Position {
            file: file.to_owned(),
            line: 0,
            column: 0,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
        }
    }
}

/// Which validation rule a problem broke; tests match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    Version,
    ClusterName,
    Token,
    NoNodes,
    NodeName,
    DuplicateName,
    Ip,
    DuplicateIp,
    San,
    Arch,
    EtcdVersion,
    UnknownRelease,
    Sha256,
    Url,
    Duration,
    Size,
    Heartbeat,
    ElectionTooShort,
    ElectionTooLong,
    Algorithm,
    Validity,
    CaFiles,
    ClientName,
    DuplicateClient,
    Path,
    User,
    Format,
    PackageName,
    Maintainer,
    /// `paths.*` is a system directory or one of its ancestors.
    SystemDir,
    /// `install_dir` and `data_dir` are equal or one is inside the other.
    PathOverlap,
    Homepage,
    /// A node's extra SAN names another node's IP or name.
    ForeignSan,
    /// `packages.keys` is not a known layout.
    KeyLayout,
    /// A node's `ssh_host_key` cannot be sealed to, is missing where
    /// `packages.keys: sealed` needs it, or is another node's too.
    HostKey,
    /// `tuning.enable_v2: true` with a release that has no v2 API.
    EnableV2,
    /// A `publish:` setting is malformed, or `sign_key` and `unsigned` are
    /// both given.
    Publish,
    /// A `backup:` setting is malformed: the interval, the directory or
    /// the number of snapshots to keep.
    Backup,
    /// A client's `access` is malformed, or its name is a node's too.
    Access,
    /// A `metrics:` setting is malformed: where the listener binds, its
    /// port, or the textfile directory.
    Metrics,
    /// A `backup.recipients` entry is not a recipient age can encrypt to
    /// (an X25519 `age1…` or an SSH public key), or is listed twice.
    Recipient,
    /// A `defrag:` setting is malformed: the interval, the threshold or
    /// the minimum size.
    Defrag,
}

/// One broken rule, with its place and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub rule: Rule,
    pub at: Position,
    pub message: String,
    pub help: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}\n  help: {}", self.at, self.message, self.help)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}", missing(file))]
    Missing { file: PathBuf },
    #[error("cannot read config {}: {source}\n  help: check the path given with --config", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{message}\n  help: {help}")]
    Syntax {
        file: PathBuf,
        message: String,
        help: String,
    },
    #[error("{}", list(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The rules broken, in file order (empty for read and syntax errors).
    pub fn rules(&self) -> Vec<Rule> {
        match self {
            ConfigError::Invalid(problems) => problems.iter().map(|p| p.rule).collect(),
            _ => Vec::new(),
        }
    }
}

/// The default `cluster.yaml` missing is how a first run starts: say what
/// writes one. Any other missing file is probably a typo in `--config`.
fn missing(file: &Path) -> String {
    if file == Path::new("cluster.yaml") {
        "no cluster.yaml here\n  help: run `etcdpack init` to write one (or pass --config FILE)"
            .to_owned()
    } else {
        format!(
            "config {} does not exist\n  help: check the path given with --config, or run `etcdpack init -o {}` to write an example there",
            file.display(),
            file.display()
        )
    }
}

fn list(problems: &[Problem]) -> String {
    let mut out = String::new();
    if problems.len() > 1 {
        out.push_str(&format!("the config has {} problems:\n", problems.len()));
    }
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&p.to_string());
    }
    out
}
