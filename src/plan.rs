//! Stage 2, **plan**: a pure function from the cluster to what `gen` will
//! write. No I/O: `etcdpack plan` prints it, `gen` walks it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Cluster;
use crate::model::{Format, Layout, out};
use crate::{pki, release};

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub out: PathBuf,
    pub release: ReleasePlan,
    pub pki: Vec<PathBuf>,
    pub nodes: Vec<NodePlan>,
    pub files: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReleasePlan {
    pub version: String,
    pub arch: String,
    pub url: String,
    pub sha256: String,
    pub file_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodePlan {
    pub name: String,
    pub ip: String,
    pub package: String,
    pub tree: PathBuf,
    pub node_files: Vec<String>,
    pub artifacts: Vec<ArtifactPlan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactPlan {
    pub format: Format,
    pub path: PathBuf,
}

/// The on-node paths every node's package holds.
pub fn node_files(cluster: &Cluster) -> Vec<String> {
    let l = Layout::new(&cluster.paths.install_dir);
    let mut files = vec![
        l.etcd_bin,
        l.etcdctl_bin,
        l.conf_file,
        l.ca_file,
        l.cert_file,
        l.key_file,
        Layout::UNIT_FILE.to_owned(),
        Layout::PROFILE_FILE.to_owned(),
    ];
    files.sort();
    files
}

/// What `gen` will write for `cluster` into `out`, with package releases as
/// given by `release_of` (the previous manifest's, see [`crate::output`]).
pub fn plan(
    cluster: &Cluster,
    out: &Path,
    mirror: Option<&str>,
    release_of: impl Fn(&str) -> u32,
) -> Plan {
    let e = &cluster.etcd;
    let release = ReleasePlan {
        version: e.version.clone(),
        arch: e.arch.as_str().to_owned(),
        url: release::url(e, mirror),
        sha256: e.sha256.clone(),
        file_name: release::file_name(&e.version, e.arch),
    };
    let mut pki_files = vec![
        out.join(out::PKI).join(pki::CA_CERT),
        out.join(out::PKI).join(pki::CA_KEY),
    ];
    for leaf in pki::leaf_specs(cluster) {
        pki_files.push(pki::cert_path(&out.join(out::PKI), &leaf.id));
        pki_files.push(pki::key_path(&out.join(out::PKI), &leaf.id));
    }
    let files_on_node = node_files(cluster);
    let nodes = cluster
        .nodes
        .iter()
        .map(|n| {
            let package = cluster.packages.name_for(&cluster.name, &n.name);
            let spec = crate::package::Identity {
                name: package.clone(),
                version: e.version.clone(),
                release: release_of(&n.name),
                arch: e.arch,
            };
            NodePlan {
                name: n.name.clone(),
                ip: n.ip.to_string(),
                tree: out.join(out::NODES).join(&n.name),
                node_files: files_on_node.clone(),
                artifacts: cluster
                    .packages
                    .formats
                    .iter()
                    .map(|&f| ArtifactPlan {
                        format: f,
                        path: out.join(out::DIST).join(f.file_name(&spec)),
                    })
                    .collect(),
                package,
            }
        })
        .collect();
    Plan {
        out: out.to_owned(),
        release,
        pki: pki_files,
        nodes,
        files: vec![out.join(out::SUMS), out.join(out::MANIFEST)],
        warnings: cluster.warnings.clone(),
    }
}

impl Plan {
    /// Every path the run writes, in order, for `etcdpack plan`.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut v = self.pki.clone();
        for n in &self.nodes {
            v.push(n.tree.clone());
            v.extend(n.artifacts.iter().map(|a| a.path.clone()));
        }
        v.extend(self.files.iter().cloned());
        v
    }
}
