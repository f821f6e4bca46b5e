//! File-system helpers shared by every stage: atomic writes with explicit
//! modes, private directories, and the output-directory lock.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Write `data` to `path` through a temporary file in the same directory,
/// fsync it, set `mode`, then rename it into place. A reader never sees a
/// partial file under the final name.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    write_atomic_with(path, mode, |f| f.write_all(data).map_err(Into::into))
}

/// Like [`write_atomic`], with the contents produced by a writer callback
/// (for artifacts streamed straight into the file).
pub fn write_atomic_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> Result<()>,
) -> Result<()> {
    write_atomic_as(path, mode, fill, None).map(drop)
}

/// Like [`write_atomic_with`], but the file is only handed to the kernel's
/// writeback here (`sync_file_range`, which does not wait); `later` syncs it,
/// with every other file given to it, when [`Deferred::sync`] is called. For
/// the artifacts: a run writes hundreds of megabytes, and waiting for each
/// file in turn would idle a worker, while one wait at the end overlaps the
/// disk with the work. Until then the run is not finished: the outputs are
/// declared incomplete and checked by digest before they are kept.
pub fn write_atomic_deferred(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> Result<()>,
    later: &Deferred,
) -> Result<()> {
    write_atomic_as(path, mode, fill, Some(later)).map(drop)
}

/// Files written whose sync is owed (see [`write_atomic_deferred`]).
#[derive(Debug, Default)]
pub struct Deferred {
    files: std::sync::Mutex<Vec<PathBuf>>,
}

impl Deferred {
    pub fn new() -> Self {
        Self::default()
    }

    /// fsync every file given, and the directories they were renamed in.
    pub fn sync(&self) -> Result<()> {
        use rayon::prelude::*;
        let files = std::mem::take(&mut *self.files.lock().unwrap_or_else(|e| e.into_inner()));
        let mut dirs: Vec<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        dirs.sort();
        dirs.dedup();
        files.par_iter().chain(dirs.par_iter()).try_for_each(|p| {
            File::open(p)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot flush {}", p.display()))
        })
    }
}

/// Like [`write_atomic_with`]; the metadata of the file as it was renamed
/// into place, taken from its descriptor (for its identity: see
/// `digests`).
pub fn write_atomic_returning(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> Result<()>,
) -> Result<fs::Metadata> {
    write_atomic_as(path, mode, fill, None)
}

/// [`write_atomic_deferred`], returning the metadata as
/// [`write_atomic_returning`] does.
pub fn write_atomic_deferred_returning(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> Result<()>,
    later: &Deferred,
) -> Result<fs::Metadata> {
    write_atomic_as(path, mode, fill, Some(later))
}

fn write_atomic_as(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> Result<()>,
    later: Option<&Deferred>,
) -> Result<fs::Metadata> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // A directory made here may come to hold keys: private until said otherwise.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(
            ".{}.",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("tmp")
        ))
        .suffix(".part")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    fill(tmp.as_file_mut()).with_context(|| format!("cannot write {}", path.display()))?;
    // The umask may have narrowed the mode given at creation.
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    match later {
        None => tmp
            .as_file()
            .sync_all()
            .with_context(|| format!("cannot flush {}", path.display()))?,
        Some(_) => start_writeback(tmp.as_file()),
    }
    let file = tmp
        .persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot rename into {}", path.display()))?;
    if let Some(later) = later {
        let mut files = later.files.lock().unwrap_or_else(|e| e.into_inner());
        files.push(path.to_path_buf());
    }
    file.metadata()
        .with_context(|| format!("cannot read the metadata of {}", path.display()))
}

/// A writer of a whole file that bypasses the page cache where the file
/// system allows it (`O_DIRECT`): the bytes go from an aligned buffer of
/// ours to the disk, without the kernel copying them into its cache and
/// writing them back later. For the artifacts, which a run writes by the
/// gigabyte and does not read again. Where `O_DIRECT` is refused (tmpfs,
/// some network file systems) it is an ordinary buffered writer.
pub struct DirectWriter<'a> {
    file: &'a File,
    buf: Vec<Page>,
    len: usize,
    direct: bool,
}

/// One aligned block of the buffer.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct Page([u8; PAGE]);
const PAGE: usize = 4096;
/// Bytes written per call.
const DIRECT_BUF: usize = 1 << 20;

impl<'a> DirectWriter<'a> {
    /// Write `file` (new and empty) from its start.
    pub fn new(file: &'a File) -> Self {
        Self::with(file, set_direct(file, true))
    }

    fn with(file: &'a File, direct: bool) -> Self {
        DirectWriter {
            file,
            buf: vec![Page([0; PAGE]); DIRECT_BUF / PAGE],
            len: 0,
            direct,
        }
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `Page` is plain bytes with no padding, so the pages are
        // one contiguous, initialised byte slice.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.buf.as_mut_ptr().cast::<u8>(),
                self.buf.len() * PAGE,
            )
        }
    }

    /// Write out the buffer's first `n` bytes (a multiple of the block size
    /// unless the writer is buffered).
    fn drain(&mut self, n: usize) -> std::io::Result<()> {
        let mut done = 0;
        while done < n {
            let (file, direct) = (self.file, self.direct);
            let chunk = &self.bytes()[done..n];
            match (&*file).write(chunk) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(k) if direct && k % PAGE != 0 => {
                    // A short write off the block size: go on buffered.
                    self.direct = set_direct(file, false);
                    done += k;
                }
                Ok(k) => done += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // Accepted at open but refused on writing (an alignment the
                // device wants larger): buffered from here on.
                Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
                    self.direct = set_direct(file, false);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Write what remains and give the file its length.
    pub fn finish(mut self) -> std::io::Result<()> {
        let len = self.len;
        if len == 0 {
            return Ok(());
        }
        if self.direct {
            // The last block, padded; the padding cut off again below.
            let padded = len.div_ceil(PAGE) * PAGE;
            self.bytes()[len..padded].fill(0);
            let mut file = self.file;
            let end = file.stream_position()? + len as u64;
            self.drain(padded)?;
            self.file.set_len(end)?;
        } else {
            self.drain(len)?;
        }
        Ok(())
    }
}

impl Write for DirectWriter<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let cap = self.buf.len() * PAGE;
        let n = data.len().min(cap - self.len);
        let at = self.len;
        self.bytes()[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        if self.len == cap {
            self.drain(cap)?;
            self.len = 0;
        }
        Ok(n)
    }

    /// Blocks are written as they fill; the rest by [`DirectWriter::finish`].
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A buffer that whole files are read into past the page cache where the
/// file system allows it (`O_DIRECT`): for reading back gigabytes of
/// artifacts that gen wrote past the cache too, without the kernel filling
/// its cache with them and copying them out again. Where `O_DIRECT` is
/// refused it reads the ordinary way. Reused from file to file, so that it
/// is allocated (and zeroed) once.
#[derive(Default)]
pub struct DirectBuf {
    pages: Vec<Page>,
    len: usize,
}

impl DirectBuf {
    /// The bytes of the file last read.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `Page` is plain bytes with no padding, so the pages are
        // one contiguous, initialised byte slice; `len` is within it.
        unsafe { std::slice::from_raw_parts(self.pages.as_ptr().cast::<u8>(), self.len) }
    }

    /// Read all of the file at `path`.
    pub fn read(&mut self, path: &Path) -> std::io::Result<&[u8]> {
        let file = File::open(path)?;
        let size = file.metadata()?.len() as usize;
        // A page more than the size, so that reading on to the end of the
        // file ends with a short read, and a file that grew shows.
        let need = size / PAGE + 1;
        if self.pages.len() < need {
            self.pages.resize(need, Page([0; PAGE]));
        }
        let cap = self.pages.len() * PAGE;
        // SAFETY: as in `bytes`, the whole buffer, borrowed mutably once.
        let buf =
            unsafe { std::slice::from_raw_parts_mut(self.pages.as_mut_ptr().cast::<u8>(), cap) };
        let mut direct = set_direct(&file, true);
        let mut len = 0;
        loop {
            let want = (cap - len).min(DIRECT_READ);
            if want == 0 {
                break;
            }
            match (&file).read(&mut buf[len..len + want]) {
                Ok(0) => break,
                Ok(k) if direct && k % PAGE != 0 => {
                    // The end of the file, or a short read off the block
                    // size: buffered from here on.
                    direct = set_direct(&file, false);
                    len += k;
                }
                Ok(k) => len += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
                    direct = set_direct(&file, false);
                }
                Err(e) => return Err(e),
            }
        }
        self.len = len;
        if len != size {
            return Err(std::io::Error::other(format!(
                "{} changed size while it was read",
                path.display()
            )));
        }
        Ok(self.bytes())
    }
}

/// Bytes read per call.
const DIRECT_READ: usize = 4 << 20;

/// Turn `O_DIRECT` on or off for `f`; whether it is now on.
fn set_direct(f: &File, on: bool) -> bool {
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a valid descriptor; no memory of ours is passed.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return false;
        }
        let want = if on {
            flags | libc::O_DIRECT
        } else {
            flags & !libc::O_DIRECT
        };
        libc::fcntl(fd, libc::F_SETFL, want) == 0 && on
    }
}

/// Start writing `f`'s dirty pages to disk without waiting for it. Only a
/// hint: the sync owed later is what makes the file durable.
fn start_writeback(f: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; the call reads no memory of ours.
    unsafe {
        libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Create `dir` (and parents) and force its mode.
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", dir.display()))
}

/// Replace directory `target` by `staged` as atomically as the file system
/// allows: the old tree is moved aside first and removed after the rename.
pub fn replace_dir(staged: &Path, target: &Path) -> Result<()> {
    let aside = target.with_extension("old");
    if aside.exists() {
        fs::remove_dir_all(&aside).with_context(|| format!("cannot remove {}", aside.display()))?;
    }
    if target.exists() {
        fs::rename(target, &aside)
            .with_context(|| format!("cannot move {} aside", target.display()))?;
    }
    fs::rename(staged, target)
        .with_context(|| format!("cannot rename {} to {}", staged.display(), target.display()))?;
    if aside.exists() {
        fs::remove_dir_all(&aside).with_context(|| format!("cannot remove {}", aside.display()))?;
    }
    Ok(())
}

/// Put directory `staged` in the place of `target` in one step: with
/// `renameat2(RENAME_EXCHANGE)` when `target` exists (the old tree is then
/// at `staged`, for the caller to remove), with a rename when it does not.
/// At no moment is `target` missing or a mix of the two.
pub fn exchange_dirs(staged: &Path, target: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    if fs::symlink_metadata(target).is_err() {
        return fs::rename(staged, target).with_context(|| {
            format!("cannot rename {} to {}", staged.display(), target.display())
        });
    }
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).expect("no NUL in a path");
    let (a, b) = (c(staged), c(target));
    // SAFETY: two valid NUL-terminated paths, relative to the working directory.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| {
            format!(
                "cannot exchange {} with {} (renameat2 RENAME_EXCHANGE)",
                staged.display(),
                target.display()
            )
        });
    }
    Ok(())
}

/// An exclusive lock on an output directory, held for the life of the value.
/// A second `gen` on the same directory refuses instead of interleaving.
#[derive(Debug)]
pub struct OutputLock {
    _file: File,
    path: PathBuf,
}

impl OutputLock {
    pub const FILE_NAME: &'static str = ".etcdpack.lock";

    pub fn acquire(out: &Path) -> Result<Self> {
        fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        let path = out.join(Self::FILE_NAME);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => bail!(
                "{} is in use by another etcdpack run (lock {} is held)\n  help: wait for the other run to finish, or use another --out directory",
                out.display(),
                path.display()
            ),
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        Ok(OutputLock { _file: file, path })
    }

    /// Like [`OutputLock::acquire`], but waits for another holder to let
    /// go instead of refusing: runs on the same directory serialize.
    pub fn wait(dir: &Path) -> Result<Self> {
        let path = dir.join(Self::FILE_NAME);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(OutputLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Hex SHA-256 of a byte slice.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(data))
}

/// Hex SHA-256 of everything `r` reads, in blocks.
pub fn sha256_reader(mut r: impl std::io::Read) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(hex::encode(h.finalize())),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/key.pem");
        write_atomic(&path, b"secret", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"secret");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("key.pem")]);
    }

    #[test]
    fn failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"old", 0o644).unwrap();
        let err = write_atomic_with(&path, 0o644, |f| {
            f.write_all(b"half")?;
            bail!("interrupted")
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// Whatever the length, past the page cache or through it, the file
    /// holds exactly the bytes written, however they were cut.
    #[test]
    fn a_direct_writer_writes_exactly_the_bytes_given() {
        // Under the build directory: a disk file system, where O_DIRECT is
        // normally allowed (the test holds either way).
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let data: Vec<u8> = (0..3 * DIRECT_BUF + 5000)
            .map(|i| (i * 7 + i / 4099) as u8)
            .collect();
        for len in [
            0,
            1,
            PAGE - 1,
            PAGE,
            PAGE + 1,
            DIRECT_BUF,
            DIRECT_BUF + 1,
            data.len(),
        ] {
            for direct in [true, false] {
                let path = dir.path().join(format!("f-{len}-{direct}"));
                let file = File::create(&path).unwrap();
                let mut w = DirectWriter::with(&file, direct && set_direct(&file, true));
                for piece in data[..len].chunks(PAGE + 3) {
                    w.write_all(piece).unwrap();
                }
                w.finish().unwrap();
                drop(file);
                assert!(
                    fs::read(&path).unwrap() == data[..len],
                    "{len} bytes, direct {direct}"
                );
            }
        }
    }

    /// Whatever the length, one buffer reads back exactly each file's
    /// bytes, a smaller file after a larger one too, on a disk file system
    /// (past the cache) and on tmpfs, where `O_DIRECT` is refused.
    #[test]
    fn a_direct_buffer_reads_exactly_the_file() {
        let data: Vec<u8> = (0..DIRECT_READ + 3 * PAGE + 77)
            .map(|i| (i * 13 + i / 4093) as u8)
            .collect();
        let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let shm = tempfile::tempdir_in("/dev/shm").ok();
        for dir in [Some(&disk), shm.as_ref()].into_iter().flatten() {
            let mut buf = DirectBuf::default();
            for len in [data.len(), 0, 1, PAGE, PAGE + 1, DIRECT_READ, 5] {
                let path = dir.path().join(format!("f-{len}"));
                fs::write(&path, &data[..len]).unwrap();
                assert!(buf.read(&path).unwrap() == &data[..len], "{len} bytes");
            }
            assert!(buf.read(&dir.path().join("missing")).is_err());
        }
    }

    #[test]
    fn second_lock_on_same_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = OutputLock::acquire(dir.path()).unwrap();
        let err = OutputLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains("in use by another etcdpack run"), "{err}");
        drop(first);
        OutputLock::acquire(dir.path()).unwrap();
    }
}
