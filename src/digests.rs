//! What a run knows of a file's SHA-256 without reading it again.
//!
//! An unchanged rerun checks every tree file and artifact in `OUT/` against
//! the manifest. Reading hundreds of megabytes for that would cost most of
//! a fresh run, so, like git's index and make's timestamps, etcdpack keeps a
//! record, `OUT/.etcdpack.digests`, of each file's identity when it was last
//! written or read: device, inode, size, modification and change time, and
//! its SHA-256. A file whose identity is the one recorded has the recorded
//! digest and is not read; any other is read and hashed.
//!
//! - **Why it is sound.** Every write to a file, and every `chmod`, `touch`
//!   or rename, sets its change time (ctime) to the present, and no user call
//!   can set it back. A file rewritten with the same size and its old
//!   modification time restored still has a new ctime.
//! - **The racy case.** A write in the same clock tick as the ctime that was
//!   recorded would leave the ctime as it was. So a file read and hashed is
//!   recorded only when its ctime was at least [`RACY`] (whole seconds on a
//!   file system that has only those) before the read began, and unchanged
//!   after it; a younger one is read again next time. A file etcdpack wrote
//!   itself is recorded with the digest of what it wrote, after the run's
//!   last write; the output directory is locked meanwhile.
//! - **What it does not see.** Bytes changed under the file system (a bad
//!   disk, a raw write to the device). `etcdpack verify` reads every byte.
//!
//! The record is only an accelerator: missing, unreadable or of another
//! format, it is ignored and every file is read.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::fsutil;

/// The record's name in `OUT/`.
pub const FILE_NAME: &str = ".etcdpack.digests";
/// The record `etcdpack publish` keeps in `OUT/`: the files of the
/// repositories it wrote or checked (identities are of any file system).
pub const PUBLISH_FILE_NAME: &str = ".etcdpack-publish.digests";

/// How long before a read a file must have last changed for its digest to
/// be recorded (on a file system with sub-second timestamps: a clock tick is
/// at most 10 ms).
pub const RACY: Duration = Duration::from_millis(100);
/// The same on a file system that keeps whole seconds.
const RACY_COARSE: Duration = Duration::from_secs(2);

const HEADER: &str = "# etcdpack digests 1: device inode size mtime ctime sha256 (see `etcdpack verify` for a full check)\n";

/// A file's identity: device, inode, size, mtime and ctime (s, ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    fn of(meta: &fs::Metadata) -> Self {
        Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the file last changed at least [`RACY`] before `now`.
    fn settled(&self, now: SystemTime) -> bool {
        let (s, ns) = self.ctime;
        let (Ok(s), Ok(ns)) = (u64::try_from(s), u32::try_from(ns)) else {
            return false;
        };
        let margin = if ns == 0 && self.mtime.1 == 0 {
            RACY_COARSE
        } else {
            RACY
        };
        let changed = UNIX_EPOCH + Duration::new(s, ns);
        changed + margin <= now
    }

    fn line(&self, sha256: &str) -> String {
        format!(
            "{} {} {} {}.{:09} {}.{:09} {sha256}\n",
            self.dev, self.ino, self.size, self.mtime.0, self.mtime.1, self.ctime.0, self.ctime.1
        )
    }

    fn parse(line: &str) -> Option<(Self, String)> {
        fn time(t: &str) -> Option<(i64, i64)> {
            let (s, ns) = t.split_once('.')?;
            Some((s.parse().ok()?, ns.parse().ok()?))
        }
        let mut f = line.split(' ');
        let id = Identity {
            dev: f.next()?.parse().ok()?,
            ino: f.next()?.parse().ok()?,
            size: f.next()?.parse().ok()?,
            mtime: time(f.next()?)?,
            ctime: time(f.next()?)?,
        };
        let sha = f.next()?;
        let hex = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
        (hex && f.next().is_none()).then(|| (id, sha.to_owned()))
    }
}

/// SHA-256 of files by identity: from the record of the last run, from this
/// run (a file hard-linked into many trees is read once), or read.
#[derive(Debug, Default)]
pub struct Digests {
    known: Mutex<HashMap<Identity, String>>,
    /// What the next record holds: every file this run found intact or
    /// wrote, whose identity can be trusted later.
    kept: Mutex<HashMap<Identity, String>>,
    /// Files this run wrote, with their digests; their identities are taken
    /// when the run has made its last change to them.
    written: Mutex<Vec<(PathBuf, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Digests {
    /// No record: every file is read.
    pub fn new() -> Self {
        Self::default()
    }

    /// The record in `dir`, if there is a readable one of this format.
    pub fn load(dir: &Path) -> Self {
        Self::load_all(dir, &[FILE_NAME])
    }

    /// The records `names` in `dir`, those that are readable and of this
    /// format.
    pub fn load_all(dir: &Path, names: &[&str]) -> Self {
        let mut known = HashMap::new();
        for name in names {
            let record: Option<HashMap<Identity, String>> =
                fs::read_to_string(dir.join(name)).ok().and_then(|text| {
                    let body = text.strip_prefix(HEADER)?;
                    body.lines().map(Identity::parse).collect::<Option<_>>()
                });
            known.extend(record.unwrap_or_default());
        }
        Digests {
            known: Mutex::new(known),
            ..Self::default()
        }
    }

    /// Hex SHA-256 of the regular file at `path`, whose metadata is `meta`.
    pub fn sha256(&self, path: &Path, meta: &fs::Metadata) -> std::io::Result<String> {
        let id = Identity::of(meta);
        let known = lock(&self.known).get(&id).cloned();
        if let Some(h) = known {
            lock(&self.kept).insert(id, h.clone());
            return Ok(h);
        }
        let began = SystemTime::now();
        let h = fsutil::sha256_reader(fs::File::open(path)?)?;
        // Changed while it was read: its digest is of no one version.
        let after = fs::metadata(path).map(|m| Identity::of(&m));
        if after.as_ref().is_ok_and(|a| *a == id) {
            lock(&self.known).insert(id, h.clone());
            if id.settled(began) {
                lock(&self.kept).insert(id, h.clone());
            }
        }
        Ok(h)
    }

    /// The digest recorded for the file whose metadata is `meta`, if its
    /// identity is in a record (never read).
    pub fn recorded(&self, meta: &fs::Metadata) -> Option<String> {
        lock(&self.known).get(&Identity::of(meta)).cloned()
    }

    /// The file at `path` was written by this run with digest `sha256`.
    pub fn wrote(&self, path: PathBuf, sha256: String) {
        lock(&self.written).push((path, sha256));
    }

    /// This run wrote a file whose metadata, taken from its descriptor as
    /// it was renamed into place, is `meta`, with digest `sha256`.
    pub fn wrote_file(&self, meta: &fs::Metadata, sha256: String) {
        let id = Identity::of(meta);
        lock(&self.known).insert(id, sha256.clone());
        lock(&self.kept).insert(id, sha256);
    }

    /// Write the record into `dir`: the files found intact or written by
    /// this run, as they are now. Call it once nothing more is written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.save_as(dir, FILE_NAME)
    }

    /// [`Digests::save`] under the name `name`.
    pub fn save_as(&self, dir: &Path, name: &str) -> Result<()> {
        let mut kept = lock(&self.kept).clone();
        for (path, sha) in lock(&self.written).drain(..) {
            let meta = fs::metadata(&path)
                .with_context(|| format!("cannot read the metadata of {}", path.display()))?;
            kept.insert(Identity::of(&meta), sha);
        }
        let mut lines: Vec<String> = kept.iter().map(|(id, sha)| id.line(sha)).collect();
        lines.sort();
        let text = format!("{HEADER}{}", lines.concat());
        fsutil::write_atomic(&dir.join(name), text.as_bytes(), 0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn sha(path: &Path) -> String {
        fsutil::sha256_hex(&fs::read(path).unwrap())
    }

    fn settle() {
        std::thread::sleep(RACY + Duration::from_millis(20));
    }

    #[test]
    fn a_file_changed_after_it_was_written_is_not_taken_for_what_was_written() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("artifact");
        fs::write(&path, b"what gen wrote").unwrap();
        let written = fs::metadata(&path).unwrap();
        let d = Digests::new();
        d.wrote_file(&written, sha(&path));
        // Later in the run: the same size, the modification time put back.
        settle();
        fs::write(&path, b"someone else's").unwrap();
        let t = std::time::UNIX_EPOCH
            + Duration::new(written.mtime() as u64, written.mtime_nsec() as u32);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(t)
            .unwrap();
        d.save(dir.path()).unwrap();
        let now = fs::metadata(&path).unwrap();
        assert_eq!(now.len(), written.len());
        assert_eq!(
            Digests::load(dir.path()).sha256(&path, &now).unwrap(),
            sha(&path),
            "the changed file is read again, not answered from the record"
        );
    }

    #[test]
    fn a_recorded_file_is_not_read_again_and_any_change_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        fs::write(&path, b"first").unwrap();
        // Recorded with a digest that is not the file's: a later run that
        // answers it has not read the file.
        let d = Digests::new();
        d.wrote(path.clone(), "0".repeat(64));
        d.save(dir.path()).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(
            Digests::load(dir.path()).sha256(&path, &meta).unwrap(),
            "0".repeat(64)
        );

        // Same size, mtime put back: the ctime still moves.
        let mtime = meta.modified().unwrap();
        std::thread::sleep(Duration::from_millis(30));
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all(b"FIRST")
            .unwrap();
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.modified().unwrap(), mtime);
        let d = Digests::load(dir.path());
        assert_eq!(d.sha256(&path, &meta).unwrap(), sha(&path));
    }

    #[test]
    fn a_file_read_is_recorded_only_once_it_has_settled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        fs::write(&path, b"contents").unwrap();

        let fresh = Digests::new();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(fresh.sha256(&path, &meta).unwrap(), sha(&path));
        fresh.save(dir.path()).unwrap();
        let record = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(record, HEADER, "a file just changed is not recorded");

        settle();
        let d = Digests::new();
        assert_eq!(d.sha256(&path, &meta).unwrap(), sha(&path));
        d.save(dir.path()).unwrap();
        let record = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(
            record,
            format!("{HEADER}{}", Identity::of(&meta).line(&sha(&path)))
        );
        let mode = fs::metadata(dir.path().join(FILE_NAME)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn a_record_of_another_format_or_damaged_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        fs::write(&path, b"contents").unwrap();
        let meta = fs::metadata(&path).unwrap();
        let good = Identity::of(&meta).line(&"0".repeat(64));
        for text in [
            good.clone(),
            format!("{HEADER}{}", good.replace(' ', "  ")),
            format!("{HEADER}{good}garbage\n"),
            format!("{HEADER}{}", good.replace("0000", "zzzz")),
        ] {
            fs::write(dir.path().join(FILE_NAME), &text).unwrap();
            let d = Digests::load(dir.path());
            assert_eq!(d.sha256(&path, &meta).unwrap(), sha(&path), "{text}");
        }
    }
}
