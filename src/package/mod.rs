//! Stage 7, **package**: one seam for every format. Each format serialises a
//! node's normalised contents ([`crate::stage::NodeTree`]) into a writer; no
//! packager opens paths or decides modes itself.

mod archive;
mod bundle;

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::str::FromStr;

use anyhow::Result;
use serde::Serialize;

use crate::config::Arch;
use crate::stage::NodeTree;

/// A package's name, version and architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub name: String,
    /// The etcd version.
    pub version: String,
    /// Rises whenever the node's contents change, so package managers upgrade.
    pub release: u32,
    pub arch: Arch,
}

impl Identity {
    /// `3.4.16-2`
    pub fn full_version(&self) -> String {
        format!("{}-{}", self.version, self.release)
    }
}

/// Everything a format needs to serialise one node's package.
#[derive(Debug, Clone)]
pub struct PackageSpec<'a> {
    pub id: Identity,
    pub tree: &'a NodeTree,
    /// Rendered scripts by name (`install.sh` for the bundle).
    pub scripts: BTreeMap<&'static str, String>,
    pub summary: String,
    pub description: String,
    pub maintainer: String,
    pub homepage: String,
    pub license: &'static str,
    /// Every timestamp in the artifact (seconds since the epoch).
    pub mtime: u64,
}

/// The artifact formats, a closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Tar,
}

impl Format {
    /// Every format, in the order they are built.
    pub const ALL: &'static [Format] = &[Format::Tar];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Tar => "tar",
        }
    }

    /// The artifact's file name, e.g. `etcd-k8s-etcd-1_3.4.16-1_amd64.tar.gz`.
    pub fn file_name(self, id: &Identity) -> String {
        match self {
            Format::Tar => format!(
                "{}_{}_{}.tar.gz",
                id.name,
                id.full_version(),
                id.arch.as_str()
            ),
        }
    }

    /// Serialise `spec` in this format. Formats never open paths.
    pub fn write(self, spec: &PackageSpec, w: &mut dyn Write) -> Result<()> {
        match self {
            Format::Tar => bundle::write(spec, w),
        }
    }

    /// Whether `name` is an artifact file name of this format.
    pub fn matches_file_name(self, name: &str) -> bool {
        match self {
            Format::Tar => name.ends_with(".tar.gz"),
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

/// One entry read back from an artifact (for `verify` and tests).
#[derive(Debug, Clone)]
pub struct ReadEntry {
    /// Absolute path on the node.
    pub path: String,
    pub mode: u32,
    pub dir: bool,
    pub data: Vec<u8>,
}

/// Read back the node files an artifact installs.
pub fn read_entries(format: Format, bytes: &[u8]) -> Result<Vec<ReadEntry>> {
    match format {
        Format::Tar => bundle::read(bytes),
    }
}
