//! Packages built through the library, from the real templates and fixed inputs: no PKI, no
//! download, no clock. A small statically linked program stands in for each Go binary (so
//! that lintian sees what it would see in production), or any fixed bytes the caller gives;
//! the certificates are fixed PEM-shaped texts.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use etcdpack::config::{self, Cluster, Overrides};
use etcdpack::extract::Binaries;
use etcdpack::model::Blob;
use etcdpack::package::{self, Format, Identity};
use etcdpack::render::{self, Templates};
use etcdpack::stage::{self, NodeCerts, NodeTree};

use super::run_ok;

/// Every entry's mtime (2023-11-14 22:13:20 UTC).
pub const MTIME: u64 = 1_700_000_000;
/// The expiry of every node certificate, as the maintenance script names it
/// (2033-11-11 22:13:20 UTC, 3650 days after [`MTIME`]).
pub const CERT_NOT_AFTER: i64 = 2_015_360_000;
/// The node key every staged tree carries (not a real key).
pub const KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nbm90IGEgcmVhbCBrZXk=\n-----END PRIVATE KEY-----\n";

/// A three-node cluster `test`; `tuning` replaces the default tuning section.
pub fn cluster(tuning: &str) -> Cluster {
    let yaml = format!(
        "version: 1
cluster: {{ name: test, token: test-token }}
nodes:
  - {{ name: etcd-1, ip: 127.0.0.1 }}
  - {{ name: etcd-2, ip: 127.0.0.2 }}
  - {{ name: etcd-3, ip: 127.0.0.3 }}
pki: {{ algorithm: ecdsa-p256 }}
packages:
  formats: [tar, deb, rpm]
  maintainer: \"Platform Team <platform@example.org>\"
{tuning}"
    );
    config::parse(Path::new("cluster.yaml"), &yaml, &Overrides::default()).unwrap()
}

/// Two small statically linked programs, like the official Go binaries
/// (and, like them, different from each other).
pub fn static_binaries() -> Binaries {
    static BINS: OnceLock<Binaries> = OnceLock::new();
    let bins = BINS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let compile = |name: &str, status: u8| -> Blob {
            let src = dir.path().join(format!("{name}.c"));
            fs::write(&src, format!("int main(void) {{ return {status}; }}\n")).unwrap();
            let bin = dir.path().join(name);
            run_ok(
                Command::new("gcc")
                    .args(["-static", "-Os", "-s", "-o"])
                    .arg(&bin)
                    .arg(&src),
            );
            Blob::from(fs::read(&bin).unwrap())
        };
        Binaries {
            etcd: compile("etcd", 0),
            etcdctl: compile("etcdctl", 1),
            etcdutl: None,
        }
    });
    Binaries {
        etcd: bins.etcd.clone(),
        etcdctl: bins.etcdctl.clone(),
        etcdutl: bins.etcdutl.clone(),
    }
}

/// The staged tree of `node`, with stand-in binaries and certificates.
pub fn tree(cluster: &Cluster, node: &str) -> NodeTree {
    tree_with(&static_binaries(), cluster, node)
}

/// The staged tree of `node` with `bins` as its programs and fixed certificates.
pub fn tree_with(bins: &Binaries, cluster: &Cluster, node: &str) -> NodeTree {
    let node = cluster.node(node).unwrap();
    let templates = Templates::new(None, &[]).unwrap();
    let rendered = render::render_node(&templates, cluster, node).unwrap();
    let cert = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        node.name
    );
    let not_after = time::OffsetDateTime::from_unix_timestamp(CERT_NOT_AFTER).unwrap();
    let maint = render::render_maint(&templates, cluster, node, &cert, not_after).unwrap();
    let certs = NodeCerts {
        ca_cert_pem: "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
        cert_pem: &cert,
        key_pem: KEY,
        sealed_key: None,
    };
    stage::assemble(cluster, node, bins, certs, &rendered, &maint).unwrap()
}

/// `node`'s package in `format`, at `release`, and its file name.
pub fn build(format: Format, cluster: &Cluster, node: &str, release: u32) -> (String, Vec<u8>) {
    build_with(&static_binaries(), format, cluster, node, release)
}

/// [`build`] with `bins` as the node's programs.
pub fn build_with(
    bins: &Binaries,
    format: Format,
    cluster: &Cluster,
    node: &str,
    release: u32,
) -> (String, Vec<u8>) {
    let tree = tree_with(bins, cluster, node);
    let id = Identity {
        name: cluster.packages.name_for(&cluster.name, node),
        version: cluster.etcd.version.clone(),
        release,
        arch: cluster.etcd.arch,
    };
    let templates = Templates::new(None, &package::templates()).unwrap();
    let n = cluster.node(node).unwrap();
    let spec = etcdpack::package::spec(&templates, cluster, n, &tree, id.clone(), MTIME).unwrap();
    let mut bytes = Vec::new();
    format.write(&spec, &mut bytes).unwrap();
    (format.file_name(&id), bytes)
}

/// Write `bytes` as `dir/name` and return the path.
pub fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

/// The line of `listing` that ends with `suffix`.
pub fn line<'a>(listing: &'a str, suffix: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.trim_end().ends_with(suffix))
        .unwrap_or_else(|| panic!("no line ending in {suffix} in\n{listing}"))
}
