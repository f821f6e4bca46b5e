//! **stage**: the one content model every package format serialises.
//!
//! A node's contents are normalised here, once: absolute paths, every parent
//! directory present, which directories the package owns (its install dir and
//! below; never `/usr`, `/etc`, `/opt`), modes, owners, config-ness, sorted by
//! path, collisions refused. Formats only translate this into their encoding.
//! File data is shared ([`Blob`]), so the ~38 MB of binaries exist once in memory
//! however many nodes there are.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};
use sha2::{Digest, Sha256};

use crate::config::{Cluster, Keys, Node};
pub use crate::model::Owner;
use crate::model::{Blob, FileRecord, Layout};
use crate::render::{MaintUnit, ScriptEntry};

mod contents;
mod written;

pub use contents::{
    Content, Material, NodeCerts, Part, Planned, Programs, assemble, complete, contents,
};
pub use written::{Links, tree_matches};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Blob),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Absolute path on the node, without a trailing slash.
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    pub owner: Owner,
    /// A configuration file the package manager should track as such.
    pub config: bool,
    /// For directories: created and removed by this package (not the distro's).
    pub owned: bool,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir)
    }

    pub fn data(&self) -> &[u8] {
        match &self.kind {
            Kind::File(d) => d,
            Kind::Dir => &[],
        }
    }

    /// SHA-256 of the data (of nothing, for a directory), computed once
    /// per blob however many trees share it.
    pub fn sha256(&self) -> &str {
        const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        match &self.kind {
            Kind::File(d) => d.sha256(),
            Kind::Dir => EMPTY,
        }
    }
}

/// Everything one node's package holds, normalised.
#[derive(Debug, Clone)]
pub struct NodeTree {
    pub node: String,
    /// The directory the package owns, with everything below it.
    pub owned_root: String,
    /// Sorted by path; parents before children.
    pub entries: Vec<Entry>,
}

impl NodeTree {
    /// Build from files; parents are added, ownership of directories decided,
    /// entries sorted. Two files at one path is an error.
    pub fn new(node: &str, owned_root: &str, files: Vec<Entry>) -> Result<Self> {
        let mut map: BTreeMap<String, Entry> = BTreeMap::new();
        for f in files {
            if !f.path.starts_with('/') || f.path.ends_with('/') || f.path.contains("//") {
                bail!("internal: {} is not a normalised absolute path", f.path);
            }
            if f.path.split('/').any(|c| c == "..") {
                bail!("internal: {} has a '..' component", f.path);
            }
            let mut parent = Path::new(&f.path).parent();
            while let Some(p) = parent {
                let ps = p.to_str().expect("utf-8 path");
                if ps == "/" {
                    break;
                }
                map.entry(ps.to_owned()).or_insert_with(|| Entry {
                    path: ps.to_owned(),
                    kind: Kind::Dir,
                    mode: 0o755,
                    owner: Owner::Root,
                    config: false,
                    owned: ps == owned_root || ps.starts_with(&format!("{owned_root}/")),
                });
                parent = p.parent();
            }
            if let Some(prev) = map.get(&f.path)
                && (!prev.is_dir() || !f.is_dir())
            {
                bail!("internal: two entries for {}", f.path);
            }
            map.insert(f.path.clone(), f);
        }
        Ok(NodeTree {
            node: node.to_owned(),
            owned_root: owned_root.to_owned(),
            entries: map.into_values().collect(),
        })
    }

    /// This tree plus `extra` files, normalised by the same rules. For files
    /// one format must add for its own tooling (the .deb's lintian overrides
    /// and copyright); the node's contents proper stay identical everywhere.
    pub fn with_files(&self, extra: Vec<Entry>) -> Result<NodeTree> {
        let mut all = self.entries.clone();
        all.extend(extra);
        NodeTree::new(&self.node, &self.owned_root, all)
    }

    pub fn files(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| !e.is_dir())
    }

    /// The entries as the script templates see them.
    pub fn script_entries(&self) -> Vec<ScriptEntry<'_>> {
        self.entries
            .iter()
            .map(|e| ScriptEntry {
                path: &e.path,
                mode: format!("{:04o}", e.mode),
                owner: e.owner,
                dir: e.is_dir(),
                owned: e.owned,
            })
            .collect()
    }

    /// The record of every file, by path, as the manifest keeps it.
    pub fn records(&self) -> BTreeMap<String, FileRecord> {
        self.files()
            .map(|e| {
                (
                    e.path.clone(),
                    FileRecord::new(e.sha256().to_owned(), e.mode, e.owner, e.config),
                )
            })
            .collect()
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path == path)
    }

    /// A digest of everything that reaches the node (paths, kinds, modes,
    /// owners, contents). The package release rises when it changes.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for e in &self.entries {
            h.update(e.path.as_bytes());
            h.update([
                0,
                e.is_dir() as u8,
                e.config as u8,
                e.owned as u8,
                e.owner as u8,
            ]);
            h.update(e.mode.to_be_bytes());
            h.update(hex::decode(e.sha256()).expect("a hex digest"));
        }
        hex::encode(h.finalize())
    }
}

/// What fills one file of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The `etcd` binary of the release.
    Etcd,
    /// The `etcdctl` binary of the release.
    Etcdctl,
    /// The `etcdutl` binary of a 3.5 or later release.
    Etcdutl,
    /// Rendered: `etcd.conf`.
    EtcdConf,
    /// Rendered: the systemd unit.
    Unit,
    /// Rendered: the etcdctl profile.
    Profile,
    /// The CA certificate.
    CaCert,
    /// The node's certificate.
    NodeCert,
    /// The node's private key.
    NodeKey,
    /// The node's private key sealed to its SSH host key (`packages.keys:
    /// sealed`), in place of [`Source::NodeKey`].
    SealedKey,
    /// Rendered once the certificate is known: `etcd-maint`.
    Maint,
    /// Rendered: a maintenance timer or its service.
    MaintUnit(MaintUnit),
}

impl Source {
    /// Rendered from a template: text whose changes a plan may show line by
    /// line. Never a certificate, a key or a program.
    pub fn is_rendered(self) -> bool {
        matches!(
            self,
            Source::EtcdConf
                | Source::Unit
                | Source::Profile
                | Source::Maint
                | Source::MaintUnit(_)
        )
    }
}

/// One file a node gets, before its contents are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub path: String,
    pub source: Source,
    pub mode: u32,
    pub owner: Owner,
    pub config: bool,
}

/// Every file a node of `cluster` gets: the one list that both the plan
/// and [`assemble`] read, sorted by path.
pub fn node_files(cluster: &Cluster) -> Vec<FileSpec> {
    let l = Layout::new(&cluster.paths.install_dir);
    let file = |path: &str, source, mode, owner, config| FileSpec {
        path: path.to_owned(),
        source,
        mode,
        owner,
        config,
    };
    let mut files = vec![
        file(&l.etcd_bin, Source::Etcd, 0o755, Owner::Root, false),
        file(&l.etcdctl_bin, Source::Etcdctl, 0o755, Owner::Root, false),
        file(&l.maint_bin, Source::Maint, 0o755, Owner::Root, false),
        file(&l.conf_file, Source::EtcdConf, 0o644, Owner::Root, true),
        file(&l.ca_file, Source::CaCert, 0o644, Owner::Root, false),
        file(&l.cert_file, Source::NodeCert, 0o644, Owner::Root, false),
        match cluster.packages.keys {
            Keys::Cleartext => file(&l.key_file, Source::NodeKey, 0o600, Owner::Service, false),
            // Unsealed into key_file at install; only root reads the sealed file.
            Keys::Sealed => file(
                &l.sealed_key_file,
                Source::SealedKey,
                0o600,
                Owner::Root,
                false,
            ),
        },
        file(Layout::UNIT_FILE, Source::Unit, 0o644, Owner::Root, false),
        file(
            Layout::PROFILE_FILE,
            Source::Profile,
            0o644,
            Owner::Root,
            false,
        ),
    ];
    if cluster.etcd.line() >= crate::release::Line::V3_5 {
        files.push(file(
            &l.etcdutl_bin,
            Source::Etcdutl,
            0o755,
            Owner::Root,
            false,
        ));
    }
    for unit in MaintUnit::of(cluster) {
        files.push(file(
            &Layout::unit_file(unit.name()),
            Source::MaintUnit(unit),
            0o644,
            Owner::Root,
            false,
        ));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

impl FileSpec {
    /// The record of this file with contents of sha256 `content_sha256`.
    pub fn record(&self, content_sha256: String) -> FileRecord {
        FileRecord::new(content_sha256, self.mode, self.owner, self.config)
    }

    /// The tree's entry of this file, holding `data`.
    fn entry(&self, data: Blob) -> Entry {
        Entry {
            path: self.path.clone(),
            kind: Kind::File(data),
            mode: self.mode,
            owner: self.owner,
            config: self.config,
            owned: false,
        }
    }
}

/// The shape of a node's tree (paths, modes, owners; every file empty),
/// for what depends on the shape only: the maintainer scripts, which a plan
/// renders before any contents exist.
pub fn shape(cluster: &Cluster, node: &Node) -> Result<NodeTree> {
    let files = node_files(cluster)
        .into_iter()
        .map(|f| f.entry(Blob::from(&[][..])))
        .collect();
    NodeTree::new(&node.name, &cluster.paths.install_dir, files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: Kind::File(Blob::from(&b"x"[..])),
            mode: 0o644,
            owner: Owner::Root,
            config: false,
            owned: false,
        }
    }

    #[test]
    fn parents_are_added_sorted_and_owned_only_below_the_install_dir() {
        let t = NodeTree::new(
            "n",
            "/opt/etcd",
            vec![
                f("/usr/lib/systemd/system/etcd.service"),
                f("/opt/etcd/bin/etcd"),
            ],
        )
        .unwrap();
        let paths: Vec<_> = t
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e.owned))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("/opt", false),
                ("/opt/etcd", true),
                ("/opt/etcd/bin", true),
                ("/opt/etcd/bin/etcd", false),
                ("/usr", false),
                ("/usr/lib", false),
                ("/usr/lib/systemd", false),
                ("/usr/lib/systemd/system", false),
                ("/usr/lib/systemd/system/etcd.service", false),
            ]
        );
    }

    #[test]
    fn extra_files_are_normalised_like_the_rest() {
        let t = NodeTree::new("n", "/opt/etcd", vec![f("/opt/etcd/bin/etcd")]).unwrap();
        let more = t.with_files(vec![f("/usr/share/doc/p/copyright")]).unwrap();
        let paths: Vec<_> = more
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e.owned))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("/opt", false),
                ("/opt/etcd", true),
                ("/opt/etcd/bin", true),
                ("/opt/etcd/bin/etcd", false),
                ("/usr", false),
                ("/usr/share", false),
                ("/usr/share/doc", false),
                ("/usr/share/doc/p", false),
                ("/usr/share/doc/p/copyright", false),
            ]
        );
        assert!(t.with_files(vec![f("/opt/etcd/bin/etcd")]).is_err());
    }

    #[test]
    fn collisions_and_bad_paths_are_refused() {
        assert!(NodeTree::new("n", "/opt/etcd", vec![f("/a/b"), f("/a/b")]).is_err());
        assert!(NodeTree::new("n", "/opt/etcd", vec![f("relative")]).is_err());
        assert!(NodeTree::new("n", "/opt/etcd", vec![f("/a/../b")]).is_err());
    }

    #[test]
    fn digest_changes_with_content_and_mode() {
        let a = NodeTree::new("n", "/o", vec![f("/o/x")]).unwrap();
        let mut e = f("/o/x");
        e.mode = 0o600;
        let b = NodeTree::new("n", "/o", vec![e]).unwrap();
        let mut e = f("/o/x");
        e.kind = Kind::File(Blob::from(&b"y"[..]));
        let c = NodeTree::new("n", "/o", vec![e]).unwrap();
        assert_ne!(a.digest(), b.digest());
        assert_ne!(a.digest(), c.digest());
        assert_eq!(
            a.digest(),
            NodeTree::new("n", "/o", vec![f("/o/x")]).unwrap().digest()
        );
    }
}
