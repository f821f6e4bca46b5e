use serde::{Deserialize, Serialize};

/// How a node's member comes up the first time: etcd.conf's
/// `ETCD_INITIAL_CLUSTER` and `ETCD_INITIAL_CLUSTER_STATE`, which etcd reads
/// only when its data directory is empty. `manifest.json` records each
/// node's, so that a later run keeps it (see `membership`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bootstrap {
    /// `name=peer-url,…`
    pub initial_cluster: String,
    pub state: ClusterState,
}

/// `new` (the first members, together) or `existing` (a member joining a
/// running cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterState {
    New,
    Existing,
}

impl ClusterState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterState::New => "new",
            ClusterState::Existing => "existing",
        }
    }
}
