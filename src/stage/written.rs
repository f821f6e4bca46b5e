//! A node's tree on disk: written atomically, its large files linked
//! between trees, and checked against the record of the run that wrote it.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use rayon::prelude::*;

use super::{Kind, NodeTree};
use crate::fsutil;
use crate::model::{Blob, FileRecord};

impl NodeTree {
    /// Write the tree under `dir` (which becomes the node's `/`), atomically:
    /// it is built beside `dir` and renamed into place. A large file that
    /// `links` knows from a tree written before in this run becomes a hard
    /// link to it, not another copy.
    pub fn write_to(&self, dir: &Path, links: &Links) -> Result<()> {
        let parent = dir.parent().context("node tree directory has no parent")?;
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let staging = parent.join(format!(
            ".{}.staging",
            dir.file_name().and_then(|n| n.to_str()).unwrap_or("node")
        ));
        if staging.exists() {
            fs::remove_dir_all(&staging)
                .with_context(|| format!("cannot remove {}", staging.display()))?;
        }
        fs::create_dir(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
        // The tree holds the node's key: its top is private; below it, every
        // entry has the mode it has on the node.
        fs::set_permissions(&staging, fs::Permissions::from_mode(0o700))?;
        for e in &self.entries {
            let p = staging.join(e.path.trim_start_matches('/'));
            match &e.kind {
                Kind::Dir => {
                    fs::create_dir_all(&p)
                        .with_context(|| format!("cannot create {}", p.display()))?;
                    fs::set_permissions(&p, fs::Permissions::from_mode(e.mode))?;
                }
                Kind::File(data) => {
                    if let Some(src) = links.source(data, e.mode)
                        && fs::hard_link(&src, &p).is_ok()
                    {
                        continue;
                    }
                    let mut f = fs::File::create(&p)
                        .with_context(|| format!("cannot create {}", p.display()))?;
                    f.set_permissions(fs::Permissions::from_mode(e.mode))?;
                    std::io::Write::write_all(&mut f, data)
                        .with_context(|| format!("cannot write {}", p.display()))?;
                }
            }
        }
        fsutil::replace_dir(&staging, dir)?;
        for e in &self.entries {
            if let Kind::File(data) = &e.kind {
                links.record(data, e.mode, dir.join(e.path.trim_start_matches('/')));
            }
        }
        Ok(())
    }
}

/// The large files of the trees written so far in a run, by blob: the ~38 MB
/// of binaries are written once, and every other node's tree holds hard
/// links to that file (one inode, one copy on disk; a link that cannot be
/// made, e.g. across file systems, falls back to a copy). Only files of
/// trees already renamed into place are offered, and a node's tree is
/// written once per run, so a source does not move while others link to it.
#[derive(Default)]
pub struct Links {
    done: Mutex<HashMap<(usize, u32), PathBuf>>,
}

impl Links {
    pub fn new() -> Self {
        Self::default()
    }

    /// A written file holding `data` with `mode`, if there is one.
    fn source(&self, data: &Blob, mode: u32) -> Option<PathBuf> {
        if data.len() < LINK_MIN {
            return None;
        }
        let done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        done.get(&(data.id(), mode)).cloned()
    }

    fn record(&self, data: &Blob, mode: u32, path: PathBuf) {
        if data.len() >= LINK_MIN {
            let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
            done.entry((data.id(), mode)).or_insert(path);
        }
    }
}

/// Files at least this large are linked rather than copied between trees.
const LINK_MIN: usize = 1 << 20;

/// Whether the tree written at `dir` is still exactly `records`: the same
/// regular files and no others (directories aside), each with its mode and
/// contents. What lets an unchanged node be kept rather than written again.
pub fn tree_matches(
    dir: &Path,
    records: &BTreeMap<String, FileRecord>,
    digests: &crate::digests::Digests,
) -> bool {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, fs::Metadata)>) -> std::io::Result<()> {
        for e in fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name().into_string().map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "a name not UTF-8")
            })?;
            let path = format!("{rel}/{name}");
            let meta = e.metadata()?;
            if meta.is_dir() {
                walk(&e.path(), &path, out)?;
            } else {
                out.push((path, meta));
            }
        }
        Ok(())
    }
    let mut found = Vec::new();
    if walk(dir, "", &mut found).is_err() || found.len() != records.len() {
        return false;
    }
    found.par_iter().all(|(path, meta)| {
        let Some(r) = records.get(path) else {
            return false;
        };
        meta.is_file()
            && format!("{:04o}", meta.permissions().mode() & 0o7777) == r.mode
            && digests
                .sha256(&dir.join(path.trim_start_matches('/')), meta)
                .is_ok_and(|h| h == r.sha256)
    })
}
