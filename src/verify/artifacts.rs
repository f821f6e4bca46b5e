//! One pass over every artifact, on every core: each is read once, its
//! SHA-256 computed from those bytes, and, read as its format, scanned for
//! every key looked for and listed (paths, modes, the scripts' text) in the
//! same pass ([`KeyScan::inspect`]). The binaries' members, the same bytes
//! in every package, are inflated once for the whole output.
//!
//! The node trees are scanned for the CA key the same way, each file once:
//! the binaries, hard links of one file in every tree, once in all.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use anyhow::{Context, Result};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::io::Read;

use crate::fsutil::DirectBuf;
use crate::package::scan::{Inspection, KeyScan, Needles};
use crate::package::{Format, SHARED_MIN};

/// Artifacts read at once. Each holds one package's bytes (about 14 MB
/// with the binaries) and its window, so this bounds memory however many
/// cores there are.
const MAX_WORKERS: usize = 4;

/// An artifact as the one pass read it.
pub(super) struct Artifact {
    pub rel: String,
    /// The SHA-256 of the bytes read, or why they could not be.
    pub sha256: Result<String, String>,
    /// Read as its format (as bytes when it has none), when a scan was
    /// asked for, or why it could not be.
    pub read: Option<Result<Inspection, String>>,
}

impl Artifact {
    /// Its format, by its file name.
    pub fn format(&self) -> Option<Format> {
        Format::of_file_name(&self.rel)
    }

    /// The text of every small file it carries and its scriptlets: where
    /// its scripts are.
    pub fn texts(&self) -> Result<Vec<String>, String> {
        let read = match &self.read {
            Some(Ok(i)) => i,
            Some(Err(e)) => return Err(e.clone()),
            None => return Err("it was not read as a package".into()),
        };
        let files = read.entries.iter().filter_map(|e| e.text.as_deref());
        Ok(files
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .chain(read.scripts.iter().cloned())
            .collect())
    }
}

/// The pool the checks run on: every core, at most [`MAX_WORKERS`].
pub(super) fn pool() -> Result<rayon::ThreadPool> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS);
    rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .context("cannot start the worker threads")
}

/// Read each of `files` (relative name, path) once: its digest, and with
/// `scan` everything [`KeyScan::inspect`] finds. One thread reads them from
/// the disk, in order and past the page cache (as gen wrote them), while
/// the workers of `pool` check those read before.
pub(super) fn read_all(
    pool: &rayon::ThreadPool,
    files: Vec<(String, PathBuf)>,
    scan: Option<&KeyScan>,
) -> Vec<Artifact> {
    type Read = (usize, String, Result<DirectBuf, String>);
    let (tx, rx) = mpsc::sync_channel::<Read>(AHEAD);
    // Buffers come back once their artifact is checked: at most AHEAD +
    // the workers + the one being read are ever allocated.
    let (give_back, returned) = mpsc::channel::<DirectBuf>();
    let mut out: Vec<(usize, Artifact)> = std::thread::scope(|s| {
        s.spawn(move || {
            for (i, (rel, path)) in files.into_iter().enumerate() {
                let mut buf = returned.try_recv().unwrap_or_default();
                let read = buf.read(&path).map(drop).map_err(|e| e.to_string());
                if tx.send((i, rel, read.map(|()| buf))).is_err() {
                    return;
                }
            }
        });
        pool.install(|| {
            rx.into_iter()
                .par_bridge()
                .map(|(i, rel, read)| {
                    let buf = match read {
                        Ok(buf) => buf,
                        Err(e) => {
                            let read = None;
                            return (
                                i,
                                Artifact {
                                    rel,
                                    sha256: Err(e),
                                    read,
                                },
                            );
                        }
                    };
                    let a = check(&rel, buf.bytes(), scan);
                    let _ = give_back.send(buf);
                    (i, Artifact { rel, ..a })
                })
                .collect()
        })
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, a)| a).collect()
}

/// The digest of `bytes`, artifact `rel`, and with `scan` what it holds.
fn check(rel: &str, bytes: &[u8], scan: Option<&KeyScan>) -> Artifact {
    let sha256 = Ok(crate::fsutil::sha256_hex(bytes));
    let read = scan.map(|scan| match Format::of_file_name(rel) {
        Some(format) => {
            let read = scan.inspect(format, bytes);
            read.map(keep_script_lines).map_err(|e| format!("{e:#}"))
        }
        // Not a package: its bytes as they are.
        None => Ok(Inspection {
            found: scan.in_plain(bytes),
            ..Inspection::default()
        }),
    });
    Artifact {
        rel: String::new(),
        sha256,
        read,
    }
}

/// `read` with only the lines of its texts the CIS checks read, so that
/// what is kept of every artifact until the checks is small.
fn keep_script_lines(mut read: Inspection) -> Inspection {
    let prune = |t: &[u8]| super::cis::script_lines(&String::from_utf8_lossy(t));
    for e in &mut read.entries {
        e.text = e.text.as_deref().map(|t| prune(t).into_bytes());
    }
    for s in &mut read.scripts {
        *s = prune(s.as_bytes());
    }
    read
}

/// Artifacts read ahead of the workers.
const AHEAD: usize = 1;

/// For each tree, the first file of it in which `needles` found a label
/// `wanted` accepts (how, and the file), if any. Every file is read; a
/// large one (the binaries, the same in every tree) is scanned once for all
/// trees: met again, as the same inode (gen links them) or with the same
/// SHA-256, it is known by what its first scan found.
pub(super) fn scan_trees(
    pool: &rayon::ThreadPool,
    trees: &[Vec<PathBuf>],
    scan: &KeyScan,
    wanted: &(dyn Fn(usize) -> bool + Sync),
) -> Vec<Result<Option<(String, PathBuf)>, String>> {
    let memo = Memo::default();
    pool.install(|| {
        trees
            .par_iter()
            .map(|files| {
                let found: Result<Vec<Option<(String, PathBuf)>>, String> = files
                    .par_iter()
                    .map(|f| {
                        let found = memo.scan(scan, f).map_err(|e| format!("{e:#}"))?;
                        let hit = found.iter().find(|(label, _)| wanted(*label));
                        Ok(hit.map(|(_, how)| (how.clone(), f.clone())))
                    })
                    .collect();
                found.map(|v| v.into_iter().flatten().next())
            })
            .collect()
    })
}

/// What was found in each large file, by inode and by content: each is
/// scanned once, and a thread that asks meanwhile waits for the first.
#[derive(Default)]
struct Memo {
    by_inode: Mutex<HashMap<(u64, u64), Slot>>,
    by_digest: Mutex<HashMap<String, Slot>>,
}

type Found = Result<Vec<(usize, String)>, String>;
type Slot = Arc<OnceLock<Found>>;

fn slot<K: std::hash::Hash + Eq>(map: &Mutex<HashMap<K, Slot>>, key: K) -> Slot {
    let mut m = map.lock().unwrap_or_else(|e| e.into_inner());
    m.entry(key).or_default().clone()
}

impl Memo {
    fn scan(&self, scan: &KeyScan, path: &Path) -> Result<Vec<(usize, String)>> {
        let meta = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.len() < SHARED_MIN as u64 {
            return Ok(scan_file(scan, path)?.0);
        }
        let by_inode = slot(&self.by_inode, (meta.dev(), meta.ino()));
        let found = by_inode.get_or_init(|| {
            let digest = digest_file(path).map_err(|e| format!("{e:#}"))?;
            let by_digest = slot(&self.by_digest, digest.clone());
            by_digest
                .get_or_init(|| {
                    let (found, read) = scan_file(scan, path).map_err(|e| format!("{e:#}"))?;
                    if read != digest {
                        return Err(format!("{} changed while it was read", path.display()));
                    }
                    Ok(found)
                })
                .clone()
        });
        found.clone().map_err(anyhow::Error::msg)
    }
}

/// The SHA-256 of the file at `path`, read in pieces.
fn digest_file(path: &Path) -> Result<String> {
    let f = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    crate::fsutil::sha256_reader(f).with_context(|| format!("cannot read {}", path.display()))
}

/// Every label found in the file at `path`, read in pieces, and the
/// SHA-256 of what was read.
fn scan_file(scan: &KeyScan, path: &Path) -> Result<(Vec<(usize, String)>, String)> {
    let f = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hashing = Hashing(f, Sha256::new());
    let found = scan
        .in_reader(&mut hashing)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok((found, hex::encode(hashing.1.finalize())))
}

/// A reader that hashes what it reads.
struct Hashing<R>(R, Sha256);

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1.update(&buf[..n]);
        Ok(n)
    }
}

/// How the needles' labels are used by verify.
pub(super) mod label {
    /// The CA's key (and the next CA's, during a rotation).
    pub const CA: usize = 0;
    /// The key of the sealed node at index `i` of the list of sealed nodes.
    pub fn sealed(i: usize) -> usize {
        1 + i
    }
}

/// The needles of verify: the CAs' keys, the CA key file's text when it is
/// there, and every sealed node's key.
pub(super) fn needles(cas: &[&str], ca_key: Option<&str>, sealed: &[&str]) -> Result<Needles> {
    let certs: Vec<(usize, &str)> = cas
        .iter()
        .map(|c| (label::CA, *c))
        .chain(
            sealed
                .iter()
                .enumerate()
                .map(|(i, c)| (label::sealed(i), *c)),
        )
        .collect();
    let texts = ca_key
        .map(|k| {
            (
                label::CA,
                k.to_owned(),
                "as the text of pki/ca-key.pem".to_owned(),
            )
        })
        .into_iter()
        .collect();
    Needles::new(&certs, texts)
}
