//! **record**: `SHA256SUMS` and `manifest.json`, the record of a
//! finished run. They are written last, and `.incomplete` marks a run that
//! is still writing (or was killed), so a reader never mistakes a partial
//! output directory for a finished one.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil;
use crate::model::{Bootstrap, FileRecord, Rotation, out};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub generator: String,
    pub cluster: String,
    pub source_date_epoch: u64,
    pub etcd: EtcdInfo,
    pub ca: CaInfo,
    pub nodes: Vec<NodeInfo>,
    pub clients: Vec<ClientInfo>,
    /// Nodes that earlier runs built and a later config removed, with their
    /// last release: a node added again continues from there, so that a
    /// machine that still has the old package upgrades.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<Retired>,
    /// The access policy the packages carry (`auth`, `clients[].access`);
    /// absent in a manifest written before etcdpack kept one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<crate::config::access::AccessRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Retired {
    pub name: String,
    pub release: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EtcdInfo {
    pub version: String,
    pub arch: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaInfo {
    pub cert: String,
    pub not_after: String,
    /// The phase of a CA rotation under way (`rotate-ca`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub ip: String,
    pub package: String,
    pub version: String,
    pub release: u32,
    /// Digest of everything the node receives (every entry of its tree).
    pub content_sha256: String,
    /// Every file the node receives, by path: what a plan compares against.
    #[serde(default)]
    pub files: BTreeMap<String, FileRecord>,
    /// Digest of the package's own inputs besides the files (metadata and
    /// maintainer scripts); a change raises `release` too.
    #[serde(default)]
    pub package_sha256: String,
    pub tree: String,
    pub cert_not_after: String,
    pub artifacts: Vec<Artifact>,
    /// How the node's member comes up the first time, as its etcd.conf
    /// says; absent from the manifest of an older etcdpack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<Bootstrap>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Artifact {
    pub format: String,
    /// Relative to the output directory.
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientInfo {
    pub name: String,
    pub cert: String,
    pub key: String,
    pub not_after: String,
}

impl Manifest {
    /// The manifest of the previous finished run in `dir`, if any. One
    /// that cannot be read is an error, never a fresh start: it records the
    /// package releases that machines have installed, and releases that
    /// started again at 1 would be older than those, so apt and dnf would
    /// not upgrade.
    pub fn read(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(out::MANIFEST);
        let help = format!(
            "help: restore {} from a backup or from version control; only if no machine has these packages installed, delete it (package releases then start again at 1)",
            path.display()
        );
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                anyhow::anyhow!(
                    "{} is not an etcdpack manifest ({e}): it records the package release of every node, and without it new packages would be older than the installed ones\n  {help}",
                    path.display()
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}\n  {help}", path.display())),
        }
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The last release `name` had, whether it is still a node or retired.
    pub fn last_release(&self, name: &str) -> Option<u32> {
        self.node(name).map(|n| n.release).or_else(|| {
            self.retired
                .iter()
                .find(|r| r.name == name)
                .map(|r| r.release)
        })
    }

    pub fn artifacts(&self) -> impl Iterator<Item = &Artifact> {
        self.nodes.iter().flat_map(|n| n.artifacts.iter())
    }

    /// `sha256sum -c` compatible lines for every artifact.
    pub fn sums(&self) -> String {
        let mut lines: Vec<String> = self
            .artifacts()
            .map(|a| format!("{}  {}\n", a.sha256, a.path))
            .collect();
        lines.sort();
        lines.concat()
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        fsutil::write_atomic(&dir.join(out::SUMS), self.sums().as_bytes(), 0o644)?;
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        fsutil::write_atomic(&dir.join(out::MANIFEST), &json, 0o644)
    }
}

/// The previous finished run's record, read once per run, and which file
/// it was read from: a run that reads it before it locks the output
/// directory checks, once it holds the lock, that no other run has
/// replaced it since ([`Previous::check_unchanged`]).
#[derive(Debug, Clone, Default)]
pub struct Previous {
    manifest: Option<Manifest>,
    /// (device, inode, size, mtime in ns) of `manifest.json` as read.
    file: Option<(u64, u64, u64, i128)>,
}

impl Previous {
    /// [`Manifest::read`], with the identity of the file read.
    pub fn read(dir: &Path) -> Result<Previous> {
        let file = stamp(dir);
        let manifest = Manifest::read(dir)?;
        let previous = Previous { manifest, file };
        // Read between two looks at the file.
        previous.check_unchanged(dir)?;
        Ok(previous)
    }

    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// An error unless `dir`'s `manifest.json` is still the one read (or
    /// still absent): another run finished in between, and a plan made
    /// from the older record would number releases wrongly.
    pub fn check_unchanged(&self, dir: &Path) -> Result<()> {
        if stamp(dir) != self.file {
            anyhow::bail!(
                "{} changed while this run read it: another run finished there\n  help: run again",
                dir.join(out::MANIFEST).display()
            );
        }
        Ok(())
    }
}

fn stamp(dir: &Path) -> Option<(u64, u64, u64, i128)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir.join(out::MANIFEST)).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.size(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    ))
}

/// Parse `SHA256SUMS` into (hex, relative path) pairs.
pub fn parse_sums(text: &str) -> Result<Vec<(String, String)>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            let (h, p) = l
                .split_once("  ")
                .with_context(|| format!("SHA256SUMS line {} is not `<sha256>  <path>`", i + 1))?;
            Ok((h.to_owned(), p.to_owned()))
        })
        .collect()
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// (hex sha256, byte count, inner writer)
    pub fn finish(self) -> (String, u64, W) {
        (hex::encode(self.hasher.finalize()), self.len, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(release: u32, digest: &str) -> Manifest {
        Manifest {
            generator: "t".into(),
            cluster: "c".into(),
            source_date_epoch: 0,
            etcd: EtcdInfo {
                version: "3.4.16".into(),
                arch: "amd64".into(),
                sha256: "x".into(),
            },
            ca: CaInfo {
                cert: "pki/ca.pem".into(),
                not_after: "x".into(),
                rotation: None,
            },
            access: None,
            nodes: vec![NodeInfo {
                name: "n1".into(),
                ip: "127.0.0.1".into(),
                package: "p".into(),
                version: format!("3.4.16-{release}"),
                release,
                content_sha256: digest.into(),
                files: BTreeMap::new(),
                package_sha256: String::new(),
                tree: "nodes/n1".into(),
                cert_not_after: "x".into(),
                artifacts: vec![Artifact {
                    format: "tar".into(),
                    path: "dist/a".into(),
                    sha256: "ab".into(),
                    size: 1,
                }],
                bootstrap: None,
            }],
            clients: vec![],
            retired: vec![Retired {
                name: "n0".into(),
                release: 7,
            }],
        }
    }

    #[test]
    fn the_last_release_of_a_node_or_a_retired_one_is_known() {
        let m = manifest(3, "d1");
        assert_eq!(m.last_release("n1"), Some(3));
        assert_eq!(m.last_release("n0"), Some(7));
        assert_eq!(m.last_release("n2"), None);
    }

    #[test]
    fn a_corrupt_manifest_is_an_error_with_help() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join(out::MANIFEST), b"{ truncated").unwrap();
        let err = format!("{:#}", Manifest::read(dir.path()).unwrap_err());
        assert!(err.contains("is not an etcdpack manifest"), "{err}");
        assert!(err.contains("help: restore"), "{err}");
    }

    #[test]
    fn sums_round_trip() {
        let m = manifest(1, "d");
        assert_eq!(m.sums(), "ab  dist/a\n");
        assert_eq!(
            parse_sums(&m.sums()).unwrap(),
            vec![("ab".into(), "dist/a".into())]
        );
    }

    #[test]
    fn hashing_writer_matches_sha256() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (h, n, inner) = w.finish();
        assert_eq!(n, 3);
        assert_eq!(inner, b"abc");
        assert_eq!(h, fsutil::sha256_hex(b"abc"));
    }
}
