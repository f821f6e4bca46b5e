//! **fetch**: take `etcd` and `etcdctl` out of a release tarball, and nothing else.
//!
//! The tarball is the one input that comes from the network, so it is treated
//! as hostile even after its checksum matched (a checksum given by the user
//! proves only that the file is the one they meant). Extraction happens in
//! memory: no path from the archive ever reaches the file system, and an
//! archive that tries path tricks, link tricks, duplicates or a decompression
//! bomb is refused outright rather than partly used. So is one that would
//! cost memory or time out of proportion to a release: a GNU long name or PAX
//! header is checked against [`MAX_PATH_BYTES`] / [`MAX_PAX_BYTES`] before it
//! is read, and no more than [`MAX_ENTRIES`] entries are looked at.

use std::cell::Cell;
use std::collections::HashSet;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result, bail};
use flate2::read::MultiGzDecoder;
use tar::EntryType;

use crate::fsutil::sha256_hex;
use crate::model::Blob;
use crate::release;
use crate::release::Etcd;

/// One member may be at most this large (etcd 3.4's binary is ~23 MiB).
pub const MAX_MEMBER_BYTES: u64 = 256 << 20;
/// The whole decompressed archive may be at most this large (the official one is ~40 MiB).
pub const MAX_TOTAL_BYTES: u64 = 1 << 30;
/// No path in the archive may be longer (PATH_MAX on Linux).
pub const MAX_PATH_BYTES: usize = 4096;
/// A PAX header may be at most this large: a path, a link target and a few
/// times and ids.
pub const MAX_PAX_BYTES: u64 = 16 << 10;
/// The archive may have at most this many entries, extension headers
/// included (the official one has about 20).
pub const MAX_ENTRIES: usize = 10_000;
/// Top-level names listed when the programs are missing.
const SHOWN_TOPS: usize = 10;

/// The programs a node needs, shared cheaply between all nodes' packages.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub etcd: Blob,
    pub etcdctl: Blob,
    /// From 3.5 on: the offline tool (snapshot restore and status, checks of
    /// the data directory) that etcdctl's own commands give way to.
    pub etcdutl: Option<Blob>,
}

/// The release's binaries, read on first use: a run that builds nothing
/// (every node unchanged, every artifact verified) does not decompress the
/// release at all.
pub struct OnDemand<'a> {
    tarball: &'a Path,
    etcd: &'a Etcd,
    bins: OnceLock<Binaries>,
    loading: Mutex<()>,
}

impl<'a> OnDemand<'a> {
    pub fn new(tarball: &'a Path, etcd: &'a Etcd) -> Self {
        OnDemand {
            tarball,
            etcd,
            bins: OnceLock::new(),
            loading: Mutex::new(()),
        }
    }

    /// The binaries, read with [`read_release`] the first time (by one
    /// thread; others wait for it).
    pub fn get(&self) -> Result<&Binaries> {
        if let Some(b) = self.bins.get() {
            return Ok(b);
        }
        let _one = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = self.bins.get() {
            return Ok(b);
        }
        let b = read_release(self.tarball, self.etcd)?;
        Ok(self.bins.get_or_init(|| b))
    }
}

/// Read the release once, check it against `etcd.sha256`, then extract.
///
/// The check is repeated here although the fetch stage already did it: the
/// cache directory is writable by the user and could have changed since.
pub fn read_release(tarball: &Path, etcd: &Etcd) -> Result<Binaries> {
    let bytes =
        std::fs::read(tarball).with_context(|| format!("cannot read {}", tarball.display()))?;
    let actual = sha256_hex(&bytes);
    if !actual.eq_ignore_ascii_case(&etcd.sha256) {
        bail!(
            "{} does not match the expected checksum\n  expected sha256: {}\n  actual sha256:   {}\n  help: remove the file to download it again, or pass --etcd-sha256 (etcd.sha256 in the config) if it is a different release on purpose",
            tarball.display(),
            etcd.sha256,
            actual
        );
    }
    let bins = extract(&bytes, &release::stem(&etcd.version, etcd.arch))
        .with_context(|| format!("cannot use {}", tarball.display()))?;
    if etcd.line() >= release::Line::V3_5 && bins.etcdutl.is_none() {
        bail!(
            "cannot use {}: not an etcd {} release: {}/etcdutl is missing (every release from 3.5 on has it)\n  help: check that etcd.version matches the tarball",
            tarball.display(),
            etcd.version,
            release::stem(&etcd.version, etcd.arch)
        );
    }
    Ok(bins)
}

/// Extract `{stem}/etcd` and `{stem}/etcdctl` (and `{stem}/etcdutl` when
/// there is one) from gzip'd tar bytes.
pub fn extract(targz: &[u8], stem: &str) -> Result<Binaries> {
    extract_limited(targz, stem, MAX_MEMBER_BYTES, MAX_TOTAL_BYTES)
}

fn extract_limited(targz: &[u8], stem: &str, max_member: u64, max_total: u64) -> Result<Binaries> {
    if !targz.starts_with(&[0x1f, 0x8b]) {
        bail!("not a gzip file (an etcd release is a .tar.gz)");
    }
    let exceeded = Rc::new(Cell::new(false));
    let reader = Limited {
        inner: MultiGzDecoder::new(targz),
        left: max_total,
        exceeded: exceeded.clone(),
    };
    let bomb = || {
        anyhow::anyhow!(
            "the archive decompresses to more than {} MiB: refusing it (a release is far smaller)",
            max_total >> 20
        )
    };
    let corrupt = |e: io::Error| {
        if exceeded.get() {
            bomb()
        } else {
            anyhow::Error::new(e).context("corrupt archive (not a valid .tar.gz)")
        }
    };

    let want_etcd = format!("{stem}/etcd");
    let want_etcdctl = format!("{stem}/etcdctl");
    let want_etcdutl = format!("{stem}/etcdutl");
    let mut etcd: Option<Vec<u8>> = None;
    let mut etcdctl: Option<Vec<u8>> = None;
    let mut etcdutl: Option<Vec<u8>> = None;
    let mut tops: Vec<String> = Vec::new();
    let mut seen_tops: HashSet<String> = HashSet::new();
    // What extension headers said about the next member.
    let mut ext = Extensions::default();
    let mut count = 0usize;

    let mut archive = tar::Archive::new(reader);
    // Raw entries: the tar crate would read a GNU long name or a PAX header
    // into memory whatever its size. Here each is checked before it is read.
    for entry in archive.entries().map_err(corrupt)?.raw(true) {
        let mut entry = entry.map_err(corrupt)?;
        count += 1;
        if count > MAX_ENTRIES {
            bail!(
                "the archive has more than {MAX_ENTRIES} entries: refusing it (a release has a few dozen)"
            );
        }
        let kind = entry.header().entry_type();
        if ext.take_extension(&mut entry, kind).map_err(|e| match e {
            ExtError::Io(e) => corrupt(e),
            ExtError::Refused(e) => e,
        })? {
            continue;
        }
        if kind.is_gnu_sparse() {
            bail!(
                "entry {:?} is a GNU sparse file: refusing it (a release has none)",
                shorten(&entry.path_bytes())
            );
        }
        let raw = ext
            .path
            .take()
            .unwrap_or_else(|| entry.path_bytes().into_owned());
        let link_name = ext
            .link
            .take()
            .or_else(|| entry.header().link_name_bytes().map(|t| t.into_owned()));
        let shown = shorten(&raw);
        if raw.len() > MAX_PATH_BYTES {
            bail!(
                "entry {shown:?} has a path of {} bytes, longer than {MAX_PATH_BYTES} bytes: refusing it",
                raw.len()
            );
        }
        let path = check_path(&raw).map_err(|why| anyhow::anyhow!("entry {shown:?}: {why}"))?;

        if matches!(kind, EntryType::Symlink | EntryType::Link) {
            let target = link_name.unwrap_or_default();
            let from = if kind == EntryType::Symlink {
                // A symlink resolves against the directory holding it.
                &path[..path.len().saturating_sub(1)]
            } else {
                // A hard link names another member of the archive.
                &[][..]
            };
            check_link(from, &target).map_err(|why| {
                anyhow::anyhow!(
                    "entry {shown:?} links to {:?}: {why}",
                    String::from_utf8_lossy(&target)
                )
            })?;
        }

        let size = entry.header().entry_size().map_err(corrupt)?;
        if size > max_member {
            bail!(
                "entry {shown:?} is {size} bytes, more than the {} MiB allowed for one member",
                max_member >> 20
            );
        }

        if let Some(top) = path.first()
            && seen_tops.len() <= SHOWN_TOPS
            && seen_tops.insert(top.clone())
        {
            tops.push(top.clone());
        }
        let joined = path.join("/");
        let slot = if joined == want_etcd {
            &mut etcd
        } else if joined == want_etcdctl {
            &mut etcdctl
        } else if joined == want_etcdutl {
            &mut etcdutl
        } else {
            continue;
        };
        if kind != EntryType::Regular {
            bail!(
                "entry {shown:?} is {}, not a regular file: refusing it",
                describe(kind)
            );
        }
        if slot.is_some() {
            bail!("entry {shown:?} appears more than once: refusing an ambiguous archive");
        }
        // The header's size is the archive's claim, not yet data: reserve at
        // most what a real etcd binary needs and let the vector grow past it.
        let mut data = Vec::with_capacity(size.min(64 << 20) as usize);
        (&mut entry)
            .take(max_member + 1)
            .read_to_end(&mut data)
            .map_err(corrupt)?;
        if data.len() as u64 != size {
            bail!(
                "entry {shown:?} declares {size} bytes but holds {}",
                data.len()
            );
        }
        *slot = Some(data);
    }
    // Read to the end so that gzip's own CRC and length are checked too.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(corrupt)?;

    let missing: Vec<&str> = [(&etcd, &want_etcd), (&etcdctl, &want_etcdctl)]
        .into_iter()
        .filter(|(slot, _)| slot.is_none())
        .map(|(_, name)| name.as_str())
        .collect();
    if !missing.is_empty() {
        let found = if tops.is_empty() {
            "the archive is empty".to_string()
        } else if tops.len() > SHOWN_TOPS {
            format!("top-level entries: {}, ...", tops[..SHOWN_TOPS].join(", "))
        } else {
            format!("top-level entries: {}", tops.join(", "))
        };
        bail!(
            "not an etcd release: {} missing ({found})\n  help: check that etcd.version and etcd.arch match the tarball",
            missing.join(" and ")
        );
    }
    Ok(Binaries {
        etcd: etcd.unwrap_or_default().into(),
        etcdctl: etcdctl.unwrap_or_default().into(),
        etcdutl: etcdutl.map(Blob::from),
    })
}

/// What GNU long-name and PAX headers say about the member after them.
#[derive(Default)]
struct Extensions {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
}

enum ExtError {
    /// The archive ended or the stream broke.
    Io(io::Error),
    /// The header is refused.
    Refused(anyhow::Error),
}

impl Extensions {
    /// If `entry` is an extension header, check its declared size, read it
    /// and remember what it says; true if it was one.
    fn take_extension<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: EntryType,
    ) -> Result<bool, ExtError> {
        let (what, cap) = if kind.is_gnu_longname() {
            ("GNU long name", MAX_PATH_BYTES as u64 + 1)
        } else if kind.is_gnu_longlink() {
            ("GNU long link name", MAX_PATH_BYTES as u64 + 1)
        } else if kind.is_pax_local_extensions() || kind.is_pax_global_extensions() {
            ("PAX header", MAX_PAX_BYTES)
        } else {
            return Ok(false);
        };
        let size = entry.header().entry_size().map_err(ExtError::Io)?;
        if size > cap {
            return Err(ExtError::Refused(anyhow::anyhow!(
                "a {what} of {size} bytes, more than the {cap} allowed: refusing the archive (a release has short names)"
            )));
        }
        let mut data = Vec::with_capacity(size as usize);
        entry.read_to_end(&mut data).map_err(ExtError::Io)?;
        if data.len() as u64 != size {
            return Err(ExtError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        let name = |mut d: Vec<u8>| {
            // GNU terminates the name with NUL.
            if let Some(end) = memchr::memchr(0, &d) {
                d.truncate(end);
            }
            d
        };
        let refused = |why: String| ExtError::Refused(anyhow::anyhow!("a {what}: {why}"));
        if kind.is_gnu_longname() {
            if self.path.replace(name(data)).is_some() {
                return Err(refused("two names for the same member".into()));
            }
        } else if kind.is_gnu_longlink() {
            if self.link.replace(name(data)).is_some() {
                return Err(refused("two link names for the same member".into()));
            }
        } else if kind.is_pax_local_extensions() {
            for record in tar::PaxExtensions::new(&data) {
                let record = record.map_err(|e| refused(format!("malformed record ({e})")))?;
                match record.key_bytes() {
                    b"path" => self.path = Some(record.value_bytes().to_vec()),
                    b"linkpath" => self.link = Some(record.value_bytes().to_vec()),
                    // The member's data would not be where its header says.
                    b"size" | b"GNU.sparse.size" | b"GNU.sparse.realsize" => {
                        return Err(refused(format!(
                            "its {} record is not supported (a release has no such member)",
                            String::from_utf8_lossy(record.key_bytes())
                        )));
                    }
                    _ => {}
                }
            }
        }
        // Global PAX headers carry nothing a member's path or size depends on.
        Ok(true)
    }
}

/// A name for messages: at most 200 bytes of it.
fn shorten(raw: &[u8]) -> String {
    if raw.len() <= 200 {
        String::from_utf8_lossy(raw).into_owned()
    } else {
        format!(
            "{}... ({} bytes)",
            String::from_utf8_lossy(&raw[..200]),
            raw.len()
        )
    }
}

/// The path's components with `.` and empty ones dropped, or why it is unsafe.
fn check_path(raw: &[u8]) -> Result<Vec<String>, String> {
    if raw.first() == Some(&b'/') {
        return Err("absolute path".into());
    }
    let mut parts = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("path contains a `..` component".into()),
            _ => parts.push(String::from_utf8_lossy(part).into_owned()),
        }
    }
    if parts.is_empty() {
        return Err("empty path".into());
    }
    Ok(parts)
}

/// A link target must stay inside the archive when resolved from `from`.
fn check_link(from: &[String], target: &[u8]) -> Result<(), String> {
    if target.is_empty() {
        return Err("empty link target".into());
    }
    if target.first() == Some(&b'/') {
        return Err("absolute link target".into());
    }
    let mut depth = from.len();
    for part in target.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." if depth == 0 => return Err("link target escapes the archive with `..`".into()),
            b".." => depth -= 1,
            _ => depth += 1,
        }
    }
    Ok(())
}

fn describe(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Symlink => "a symbolic link",
        EntryType::Link => "a hard link",
        EntryType::Directory => "a directory",
        EntryType::Char | EntryType::Block => "a device",
        EntryType::Fifo => "a FIFO",
        _ => "a special entry",
    }
}

/// Counts bytes coming out of the decoder and stops once the limit is passed,
/// so a bomb costs at most `limit` bytes of work.
struct Limited<R> {
    inner: R,
    left: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Only an error if there is more to come.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.exceeded.set(true);
                    Err(io::Error::other("decompressed size limit exceeded"))
                }
            };
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
