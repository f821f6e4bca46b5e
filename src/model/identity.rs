use serde::Serialize;

use super::Arch;

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
