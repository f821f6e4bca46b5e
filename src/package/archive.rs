//! Reproducible tar and gzip streams, shared by the formats that embed tar
//! (the bundle and the .deb's data and control members).
//!
//! Headers are written by hand: tar's own deterministic mode forces 0644/0755
//! and would lose a key's 0600. Every entry gets uid/gid 0, owner names
//! root/root and the same mtime; gzip headers carry no name and no time.

use std::io::{Read, Write};

use anyhow::{Context, Result};
use flate2::{Compression, GzBuilder, write::GzEncoder};

use super::ReadEntry;
use crate::stage::{Kind, NodeTree};

pub struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
    mtime: u64,
}

impl<W: Write> TarWriter<W> {
    pub fn new(w: W, mtime: u64) -> Self {
        let mut builder = tar::Builder::new(w);
        builder.mode(tar::HeaderMode::Complete);
        TarWriter { builder, mtime }
    }

    fn header(&self, kind: tar::EntryType, mode: u32, size: u64) -> Result<tar::Header> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_username("root")?;
        h.set_groupname("root")?;
        h.set_mtime(self.mtime);
        h.set_size(size);
        Ok(h)
    }

    /// A directory; `path` is written with a trailing slash.
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<()> {
        let mut h = self.header(tar::EntryType::Directory, mode, 0)?;
        let p = format!("{}/", path.trim_end_matches('/'));
        self.builder
            .append_data(&mut h, &p, std::io::empty())
            .with_context(|| format!("cannot add directory {p}"))
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> Result<()> {
        let mut h = self.header(tar::EntryType::Regular, mode, data.len() as u64)?;
        self.builder
            .append_data(&mut h, path, data)
            .with_context(|| format!("cannot add {path}"))
    }

    /// Every entry of a node's tree, each path prefixed with `prefix`
    /// (`.` for a .deb's data, `<top>/root` for the bundle).
    pub fn tree(&mut self, prefix: &str, tree: &NodeTree) -> Result<()> {
        for e in &tree.entries {
            let path = format!("{prefix}{}", e.path);
            match &e.kind {
                Kind::Dir => self.dir(&path, e.mode)?,
                Kind::File(data) => self.file(&path, e.mode, data)?,
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Result<W> {
        self.builder
            .into_inner()
            .context("cannot finish the tar stream")
    }
}

/// Read back the entries of a tar.gz that `node_path` maps to a path on the
/// node (absolute, no trailing slash); entries it maps to `None` are skipped.
pub fn read_tar_gz(
    bytes: &[u8],
    node_path: impl Fn(&str) -> Option<String>,
) -> Result<Vec<ReadEntry>> {
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut out = Vec::new();
    for e in a.entries().context("not a tar.gz")? {
        let mut e = e.context("corrupt tar.gz")?;
        let raw = e.path()?.to_string_lossy().into_owned();
        let Some(path) = node_path(&raw) else {
            continue;
        };
        let mode = e.header().mode()?;
        let dir = e.header().entry_type().is_dir();
        let mut data = Vec::new();
        e.read_to_end(&mut data)?;
        out.push(ReadEntry {
            path,
            mode,
            dir,
            data,
        });
    }
    Ok(out)
}

/// A gzip stream without file name or time, at a fixed level, so the same
/// input gives the same bytes.
pub fn gzip<W: Write>(w: W) -> GzEncoder<W> {
    GzBuilder::new().mtime(0).write(w, Compression::new(6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn modes_owners_and_times_are_exact() {
        let mut t = TarWriter::new(Vec::new(), 1_600_000_000);
        t.dir("opt/etcd", 0o755).unwrap();
        t.file("opt/etcd/ssl/key.pem", 0o600, b"k").unwrap();
        let long = format!("{}/x", "d".repeat(120));
        t.file(&long, 0o644, b"long").unwrap();
        let bytes = t.finish().unwrap();
        let mut a = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            seen.push((
                e.path().unwrap().to_string_lossy().into_owned(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.mtime().unwrap(),
                s,
            ));
        }
        assert_eq!(
            seen[0],
            ("opt/etcd/".into(), 0o755, 0, 1_600_000_000, "".into())
        );
        assert_eq!(
            seen[1],
            (
                "opt/etcd/ssl/key.pem".into(),
                0o600,
                0,
                1_600_000_000,
                "k".into()
            )
        );
        assert_eq!(seen[2].0, long);
    }

    #[test]
    fn gzip_is_reproducible_and_has_no_time() {
        let z = |data: &[u8]| {
            let mut g = gzip(Vec::new());
            g.write_all(data).unwrap();
            g.finish().unwrap()
        };
        let a = z(b"hello");
        assert_eq!(a, z(b"hello"));
        assert_eq!(&a[4..8], &[0, 0, 0, 0], "MTIME field must be zero");
        assert_eq!(a[3] & 0x08, 0, "no FNAME");
        let mut out = String::new();
        flate2::read::GzDecoder::new(&a[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello");
    }
}
