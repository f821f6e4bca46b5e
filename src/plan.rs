//! Stage 2, **plan**: a pure function from the cluster to what `gen` will
//! write. No I/O: `etcdpack plan` prints it, `gen` walks it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Cluster;
use crate::package::Format;
use crate::{pki, release};

/// Where things go on a node, derived from `paths.install_dir`.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    pub install_dir: String,
    pub bin_dir: String,
    pub cfg_dir: String,
    pub ssl_dir: String,
    pub etcd_bin: String,
    pub etcdctl_bin: String,
    pub conf_file: String,
    pub ca_file: String,
    pub cert_file: String,
    pub key_file: String,
}

impl Layout {
    pub const UNIT_FILE: &'static str = "/usr/lib/systemd/system/etcd.service";
    pub const PROFILE_FILE: &'static str = "/etc/profile.d/etcdctl.sh";

    pub fn new(cluster: &Cluster) -> Self {
        let base = &cluster.paths.install_dir;
        let bin_dir = format!("{base}/bin");
        let cfg_dir = format!("{base}/cfg");
        let ssl_dir = format!("{base}/ssl");
        Layout {
            install_dir: base.clone(),
            etcd_bin: format!("{bin_dir}/etcd"),
            etcdctl_bin: format!("{bin_dir}/etcdctl"),
            conf_file: format!("{cfg_dir}/etcd.conf"),
            ca_file: format!("{ssl_dir}/ca.pem"),
            cert_file: format!("{ssl_dir}/server.pem"),
            key_file: format!("{ssl_dir}/server-key.pem"),
            bin_dir,
            cfg_dir,
            ssl_dir,
        }
    }
}

/// Output-directory layout, relative to `--out`.
pub mod out {
    pub const PKI: &str = "pki";
    pub const NODES: &str = "nodes";
    pub const DIST: &str = "dist";
    pub const SUMS: &str = "SHA256SUMS";
    pub const MANIFEST: &str = "manifest.json";
    /// Present while a `gen` run is writing; removed when it has finished.
    pub const INCOMPLETE: &str = ".incomplete";
}

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
    let l = Layout::new(cluster);
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
