//! Reproducible tar and gzip streams, shared by the formats that embed tar
//! (the bundle and the .deb's data and control members), and the one place
//! where large shared files are compressed.
//!
//! **Compressed once per run.** Every node's packages carry the same ~38 MB
//! of binaries. A gzip stream may consist of several members one after the
//! other (RFC 1952 §2.2; gzip, zlib's `gzread`, dpkg, tar, rpm and apt all
//! read on through them), so the data of every file of at least
//! [`SHARED_MIN`] bytes is in members of its own: [`GzMembers`] ends the
//! member before it, writes the file's data as members of [`CHUNK`] bytes
//! each, and starts a new one with the padding its archive needs (512 bytes
//! for tar, 4 for the .rpm's cpio, see `cpio.rs`). Those members' bytes
//! depend only on the file's data and the level, so [`Shared`] compresses
//! each file once per run, its chunks on every core at once, and every
//! package of every format and node carries them. The bytes are
//! the same with or without a cache: only the work differs.
//!
//! Headers are written by hand: tar's own deterministic mode forces 0644/0755
//! and would lose a key's 0600. Every entry gets uid/gid 0, owner names
//! root/root and the same mtime; gzip headers carry no name and no time.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result};
use flate2::{Compression, GzBuilder, write::GzEncoder};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::ReadEntry;
use crate::model::Blob;
use crate::stage::{Kind, NodeTree};

/// Files at least this large are compressed as members of their own, once
/// per run (the binaries; nothing rendered comes near it).
pub const SHARED_MIN: usize = 1 << 20;

/// The gzip level of every stream.
pub const LEVEL: u32 = 6;

/// One file's data as gzip members of [`CHUNK`] bytes each (the last one
/// shorter), one after the other: the same bytes whether the chunks are
/// compressed on one thread or many.
fn member(data: &[u8], parallel: bool) -> Vec<u8> {
    let one = |chunk: &[u8]| {
        let mut g = gzip(Vec::with_capacity(chunk.len() / 2));
        g.write_all(chunk).expect("writing to memory");
        g.finish().expect("writing to memory")
    };
    if parallel {
        data.par_chunks(CHUNK).map(one).collect::<Vec<_>>().concat()
    } else {
        data.chunks(CHUNK).map(one).collect::<Vec<_>>().concat()
    }
}

/// A large file is compressed in chunks of this size, each its own gzip
/// member, so that all cores compress it at once (as pigz does). A member
/// starts with an empty dictionary; at 4 MiB that costs nothing measurable.
const CHUNK: usize = 4 << 20;

/// Bytes that bring `len` to a multiple of `align`.
pub fn pad(len: usize, align: usize) -> usize {
    (align - len % align) % align
}

/// The compressed members of large files, computed once per run and shared
/// by every package of every format and thread. Keyed by the identity of
/// the blob (which every node's tree shares, and the cache keeps alive, so
/// a key cannot come to mean other bytes).
#[derive(Default)]
pub struct Shared {
    members: Mutex<HashMap<usize, Slot>>,
    digests: Mutex<HashMap<Vec<u8>, Sha256>>,
    /// Files compressed so far: each at most once per run.
    compressed: AtomicUsize,
}

type Slot = (Blob, Arc<OnceLock<Arc<Vec<u8>>>>);

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.members.lock().map_or(0, |m| m.len());
        write!(f, "Shared({n} members)")
    }
}

impl Shared {
    pub fn new() -> Self {
        Self::default()
    }

    /// `data` as gzip members: compressed on first use, shared after (a
    /// thread asking meanwhile, [`Shared::prepare`]'s or another, waits
    /// for the first). Here on this thread alone: the caller may be a
    /// worker of a pool whose other jobs call this too, and a worker
    /// waiting for chunks inside the initialisation could take up such a
    /// job and wait for itself.
    pub fn member(&self, data: &Blob) -> Arc<Vec<u8>> {
        self.slot(data)
            .get_or_init(|| self.compress(data, false))
            .clone()
    }

    fn compress(&self, data: &Blob, parallel: bool) -> Arc<Vec<u8>> {
        self.compressed.fetch_add(1, Ordering::Relaxed);
        Arc::new(member(data, parallel))
    }

    fn slot(&self, data: &Blob) -> Arc<OnceLock<Arc<Vec<u8>>>> {
        let key = data.id();
        {
            let mut m = self.members.lock().unwrap_or_else(|e| e.into_inner());
            let entry = m
                .entry(key)
                .or_insert_with(|| (data.clone(), Arc::new(OnceLock::new())));
            debug_assert!(entry.0.same(data));
            entry.1.clone()
        }
    }

    /// Compress every large one of `blobs` now, and compute its SHA-256
    /// (and MD5, for a .deb's `md5sums`, when `md5`), all chunks and digests
    /// at once on every core: whoever asks later, or meanwhile, finds them
    /// ready or waits for them. Each file is compressed inside its slot's
    /// initialisation, so a package asking for it meanwhile waits rather
    /// than compress it again on one thread.
    ///
    /// Runs on the global rayon pool: no job of it waits on a slot, so a
    /// worker that takes up another of its jobs while it waits for chunks
    /// cannot wait for itself. Callers of [`Shared::member`] must not run
    /// on that pool while this runs.
    pub fn prepare(&self, blobs: &[&Blob], md5: bool) {
        let large: Vec<&Blob> = blobs
            .iter()
            .copied()
            .filter(|b| b.len() >= SHARED_MIN)
            .collect();
        rayon::join(
            || {
                large.par_iter().for_each(|b| {
                    self.slot(b).get_or_init(|| self.compress(b, true));
                })
            },
            || {
                large.par_iter().for_each(|b| {
                    rayon::join(|| b.sha256().len(), || if md5 { b.md5().len() } else { 0 });
                })
            },
        );
    }
}

/// SHA-256 of a stream made of small pieces of its own and large shared
/// ones (a blob, a shared member). Every node's .rpm payload starts with
/// the same few kilobytes and then the binaries, so the state after them
/// is the same for every node: it is remembered, keyed by exactly what was
/// hashed up to there (the small bytes verbatim, the shared pieces by
/// identity), and the binaries are hashed once per run, not once per
/// package. A stream whose own bytes before a shared piece exceed
/// [`MEMO_PREFIX_MAX`] is simply hashed.
pub struct MemoSha256<'s> {
    state: Sha256,
    /// Everything absorbed so far, encoded; `None` once too long to keep.
    key: Option<Vec<u8>>,
    /// Own bytes not yet absorbed into `state`.
    pending: Vec<u8>,
    memo: Option<&'s Shared>,
}

/// Own bytes a memo key keeps before giving up on memoizing.
const MEMO_PREFIX_MAX: usize = 1 << 16;

impl<'s> MemoSha256<'s> {
    pub fn new(memo: Option<&'s Shared>) -> Self {
        MemoSha256 {
            state: Sha256::new(),
            key: memo.map(|_| Vec::new()),
            pending: Vec::new(),
            memo,
        }
    }

    fn flush(&mut self) {
        self.state.update(&self.pending);
        self.pending.clear();
    }

    pub fn update(&mut self, bytes: &[u8]) {
        if let Some(k) = &mut self.key {
            if k.len() + self.pending.len() + bytes.len() <= MEMO_PREFIX_MAX {
                self.pending.extend_from_slice(bytes);
                return;
            }
            self.key = None;
        }
        self.flush();
        self.state.update(bytes);
    }

    /// A shared piece: `id` names these very bytes for the run.
    pub fn shared(&mut self, id: usize, bytes: &[u8]) {
        let (Some(memo), Some(mut key)) = (self.memo, self.key.take()) else {
            self.flush();
            self.state.update(bytes);
            return;
        };
        key.extend_from_slice(&(self.pending.len() as u64).to_le_bytes());
        key.extend_from_slice(&self.pending);
        key.extend_from_slice(&u64::MAX.to_le_bytes());
        key.extend_from_slice(&(id as u64).to_le_bytes());
        key.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        let known = {
            let m = memo.digests.lock().unwrap_or_else(|e| e.into_inner());
            m.get(&key).cloned()
        };
        match known {
            Some(state) => {
                self.state = state;
                self.pending.clear();
            }
            None => {
                self.flush();
                self.state.update(bytes);
                let mut m = memo.digests.lock().unwrap_or_else(|e| e.into_inner());
                m.insert(key.clone(), self.state.clone());
            }
        }
        self.key = Some(key);
    }

    /// Lowercase hex.
    pub fn finish(mut self) -> String {
        self.flush();
        hex::encode(self.state.finalize())
    }
}

/// A writer that can take a finished gzip member by reference: [`Chunks`]
/// keeps it without copying; any other writer copies it.
pub trait MemberSink: Write {
    fn member(&mut self, m: Arc<Vec<u8>>) -> io::Result<()> {
        self.write_all(&m)
    }
}

impl MemberSink for Vec<u8> {}
impl<W: Write + ?Sized> MemberSink for &mut W {}

/// A byte stream held as pieces, shared members by reference: a package
/// whose length or digest must be known before it is written (the .deb's
/// `data.tar.gz`, the .rpm's payload) costs its own bytes in memory, not
/// another copy of the binaries.
#[derive(Default)]
pub struct Chunks {
    parts: Vec<Part>,
    len: u64,
}

enum Part {
    Own(Vec<u8>),
    Shared(Arc<Vec<u8>>),
}

impl Chunks {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// SHA-256 of the bytes, through `hasher` (shared members by identity).
    pub fn sha256(&self, mut hasher: MemoSha256) -> String {
        for p in &self.parts {
            match p {
                Part::Own(v) => hasher.update(v),
                Part::Shared(v) => hasher.shared(Arc::as_ptr(v) as usize, v),
            }
        }
        hasher.finish()
    }

    /// The pieces in order.
    pub fn parts(&self) -> impl Iterator<Item = &[u8]> {
        self.parts.iter().map(|p| match p {
            Part::Own(v) => &v[..],
            Part::Shared(v) => &v[..],
        })
    }

    pub fn write_to(&self, w: &mut dyn Write) -> io::Result<()> {
        self.parts().try_for_each(|p| w.write_all(p))
    }

    /// A reader over the pieces.
    pub fn reader(&self) -> impl Read + '_ {
        self.parts()
            .fold(Box::new(io::empty()) as Box<dyn Read>, |r, p| {
                Box::new(r.chain(p))
            })
    }
}

impl Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.parts.last_mut() {
            Some(Part::Own(v)) => v.extend_from_slice(buf),
            _ => self.parts.push(Part::Own(buf.to_vec())),
        }
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl MemberSink for Chunks {
    fn member(&mut self, m: Arc<Vec<u8>>) -> io::Result<()> {
        self.len += m.len() as u64;
        self.parts.push(Part::Shared(m));
        Ok(())
    }
}

/// Where an archive writes a large file's data (already announced by its
/// header): raw into a plain writer, or as a gzip member of its own.
pub trait DataSink: Write {
    fn data(&mut self, data: &Blob, align: usize) -> io::Result<()>;
}

impl DataSink for Vec<u8> {
    fn data(&mut self, data: &Blob, align: usize) -> io::Result<()> {
        self.write_all(data)?;
        self.write_all(&vec![0; pad(data.len(), align)])
    }
}

/// A gzip stream of several members: everything written goes into the
/// current member; [`DataSink::data`] puts a large file's data in a member
/// of its own, from `shared` when given. See the module doc.
pub struct GzMembers<'s, W: MemberSink> {
    enc: Option<GzEncoder<W>>,
    shared: Option<&'s Shared>,
}

impl<'s, W: MemberSink> GzMembers<'s, W> {
    pub fn new(w: W, shared: Option<&'s Shared>) -> Self {
        GzMembers {
            enc: Some(gzip(w)),
            shared,
        }
    }

    fn enc(&mut self) -> &mut GzEncoder<W> {
        self.enc.as_mut().expect("a member is open")
    }

    /// End the last member; the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.enc.take().expect("a member is open").finish()
    }
}

impl<W: MemberSink> Write for GzMembers<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.enc().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.enc().flush()
    }
}

impl<W: MemberSink> DataSink for GzMembers<'_, W> {
    /// The data is a member of its own, the same in every format; its
    /// padding starts the next member.
    fn data(&mut self, data: &Blob, align: usize) -> io::Result<()> {
        let mut w = self.enc.take().expect("a member is open").finish()?;
        let m = match self.shared {
            Some(s) => s.member(data),
            None => Arc::new(member(data, false)),
        };
        w.member(m)?;
        let mut next = gzip(w);
        next.write_all(&vec![0; pad(data.len(), align)])?;
        self.enc = Some(next);
        Ok(())
    }
}

pub struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
    mtime: u64,
}

impl<W: DataSink> TarWriter<W> {
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

    /// A large file: its header here, its data as the sink takes large
    /// data (a gzip member of its own), padded to the tar block.
    pub fn large_file(&mut self, path: &str, mode: u32, data: &Blob) -> Result<()> {
        let mut h = self.header(tar::EntryType::Regular, mode, data.len() as u64)?;
        // The header says the size; no data follows it through the builder.
        self.builder
            .append_data(&mut h, path, std::io::empty())
            .with_context(|| format!("cannot add {path}"))?;
        self.builder
            .get_mut()
            .data(data, 512)
            .with_context(|| format!("cannot add {path}"))
    }

    /// Every entry of a node's tree, each path prefixed with `prefix`
    /// (`.` for a .deb's data, `<top>/root` for the bundle), but the
    /// directories `skip` (their contents stay).
    pub fn tree(&mut self, prefix: &str, tree: &NodeTree, skip: &[&str]) -> Result<()> {
        for e in &tree.entries {
            if matches!(e.kind, Kind::Dir) && skip.contains(&e.path.as_str()) {
                continue;
            }
            let path = format!("{prefix}{}", e.path);
            match &e.kind {
                Kind::Dir => self.dir(&path, e.mode)?,
                Kind::File(data) if data.len() >= SHARED_MIN => {
                    self.large_file(&path, e.mode, data)?
                }
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
    let mut a = tar::Archive::new(flate2::read::MultiGzDecoder::new(bytes));
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
    GzBuilder::new().mtime(0).write(w, Compression::new(LEVEL))
}

#[cfg(test)]
mod tests;
