//! Stage 4, **pki** (interface; implementation lands separately).
#![allow(unused_variables)]

use std::path::{Path, PathBuf};

use crate::config::{Cluster, San};
use crate::report::Reporter;

pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca-key.pem";

pub struct LeafSpec {
    pub id: String,
    pub common_name: String,
    pub organization: Option<String>,
    pub sans: Vec<San>,
    pub server: bool,
    pub client: bool,
}

pub fn leaf_specs(cluster: &Cluster) -> Vec<LeafSpec> {
    let mut v: Vec<LeafSpec> = cluster
        .nodes
        .iter()
        .map(|n| LeafSpec {
            id: format!("nodes/{}", n.name),
            common_name: n.name.clone(),
            organization: None,
            sans: vec![],
            server: true,
            client: true,
        })
        .collect();
    v.extend(cluster.clients.iter().map(|c| LeafSpec {
        id: format!("clients/{}", c.name),
        common_name: c.name.clone(),
        organization: c.organization.clone(),
        sans: vec![],
        server: false,
        client: true,
    }));
    v
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaOrigin {
    Created,
    Reused,
    Imported,
}

pub struct Issued {
    pub id: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: time::OffsetDateTime,
    pub reused: bool,
}

pub struct Pki {
    pub ca_cert_pem: String,
    pub ca_not_after: time::OffsetDateTime,
    pub ca_origin: CaOrigin,
    pub leaves: Vec<Issued>,
}

impl Pki {
    pub fn leaf(&self, id: &str) -> Option<&Issued> {
        self.leaves.iter().find(|l| l.id == id)
    }
}

pub fn cert_path(pki_dir: &Path, id: &str) -> PathBuf {
    pki_dir.join(format!("{id}.pem"))
}

pub fn key_path(pki_dir: &Path, id: &str) -> PathBuf {
    pki_dir.join(format!("{id}-key.pem"))
}

pub fn ensure(
    pki_dir: &Path,
    cluster: &Cluster,
    now: time::OffsetDateTime,
    reporter: &Reporter,
) -> anyhow::Result<Pki> {
    anyhow::bail!("pki not implemented yet")
}

pub struct LeafInfo {
    pub common_name: String,
    pub sans: Vec<San>,
    pub not_after: time::OffsetDateTime,
    pub server: bool,
    pub client: bool,
}

pub fn check_leaf(
    ca_cert_pem: &str,
    leaf_cert_pem: &str,
    now: time::OffsetDateTime,
) -> anyhow::Result<LeafInfo> {
    anyhow::bail!("pki not implemented yet")
}

pub fn contains_key(data: &[u8], key_pem: &str) -> bool {
    false
}
