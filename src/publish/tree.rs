//! The repository as a tree that publish owns.
//!
//! Whoever serves a repository (a web server's account, a sync job) may be
//! able to write into it. So nothing below `--repo` is used unchecked:
//!
//! - **Before anything else**, with the repository locked, every entry at
//!   any depth is looked at without following links ([`RepoTree::open`]): a
//!   symbolic link, a FIFO, a socket or a device anywhere is an error that
//!   names it, before anything is read or written. What a killed publish
//!   left (temporary files, a staged `repodata`) is removed.
//! - **Every path is built from checked names.** [`RepoTree::path`] takes a
//!   relative path whose every component is a plain name
//!   ([`check_component`]); names read from packages or indexes are checked
//!   by [`check_name`] before they become paths.
//! - **Files are opened without following a link** (`O_NOFOLLOW`), and
//!   written under a temporary name and renamed into place, so that a link
//!   planted after the check is replaced, never written through.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::fsutil::{self, OutputLock};

/// Mode of everything in the repository: it is served to anyone.
pub const PUBLIC: u32 = 0o644;
pub const PUBLIC_DIR: u32 = 0o755;
/// Present while a publish writes: one that is there when publish starts
/// was left by a publish that was killed.
const PUBLISHING: &str = ".etcdpack-publishing";
/// The suffix of a directory staged to replace another one.
const STAGED: &str = ".staged";

/// A checked repository directory, locked for the life of the value.
#[derive(Debug)]
pub struct RepoTree {
    root: PathBuf,
    _lock: OutputLock,
}

impl RepoTree {
    /// Create `root` (readable by all) if needed, wait for any other
    /// publish into it to finish, then check every entry in it.
    pub fn open(root: &Path) -> Result<RepoTree> {
        create_public(root)?;
        let lock = OutputLock::wait(root)?;
        let tree = RepoTree {
            root: root.to_owned(),
            _lock: lock,
        };
        tree.check(root)?;
        Ok(tree)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the last publish was killed before it finished.
    pub fn interrupted(&self) -> bool {
        self.root.join(PUBLISHING).is_file()
    }

    /// Mark the repository as being written, once what it holds was
    /// verified and before the first write.
    pub fn begin(&self) -> Result<()> {
        self.write(
            PUBLISHING,
            b"an etcdpack publish is writing this repository, or was killed\n",
        )
        .map(drop)
    }

    /// The last write is done.
    pub fn finish(&self) -> Result<()> {
        self.remove(PUBLISHING).map(drop)
    }

    /// Walk `dir` without following links: directories and regular files
    /// only; leftovers of a killed publish are removed.
    fn check(&self, dir: &Path) -> Result<()> {
        let entries =
            fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for e in entries {
            let e = e.with_context(|| format!("cannot read {}", dir.display()))?;
            let path = e.path();
            let t = e
                .file_type()
                .with_context(|| format!("cannot read {}", path.display()))?;
            let name = e.file_name();
            let name = name.to_string_lossy();
            if t.is_dir() {
                if name.starts_with('.') && name.ends_with(STAGED) {
                    fs::remove_dir_all(&path)
                        .with_context(|| format!("cannot remove {}", path.display()))?;
                } else {
                    self.check(&path)?;
                }
            } else if t.is_file() {
                if name.starts_with('.') && name.ends_with(".part") {
                    fs::remove_file(&path)
                        .with_context(|| format!("cannot remove {}", path.display()))?;
                }
            } else {
                let kind = if t.is_symlink() {
                    "a symbolic link"
                } else if t.is_fifo() {
                    "a FIFO"
                } else if t.is_socket() {
                    "a socket"
                } else {
                    "a device"
                };
                bail!(
                    "{} is {kind}: publish writes only into a repository of plain files and directories, which it owns\n  help: whoever can write into the served tree could point publish anywhere with it; remove it (and find out who put it there), then publish again",
                    path.display()
                );
            }
        }
        Ok(())
    }

    /// `rel` (components separated by `/`, each a plain name) below the root.
    pub fn path(&self, rel: &str) -> Result<PathBuf> {
        let mut p = self.root.clone();
        for c in rel.split('/') {
            check_component(c).with_context(|| format!("the repository path {rel:?}"))?;
            p.push(c);
        }
        Ok(p)
    }

    /// The regular file `rel`, opened without following a link; `None`
    /// when there is none.
    pub fn open_file(&self, rel: &str) -> Result<Option<File>> {
        let path = self.path(rel)?;
        match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => {
                let meta = f.metadata()?;
                if !meta.is_file() {
                    bail!("{} is not a regular file", path.display());
                }
                Ok(Some(f))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot open {}", path.display())),
        }
    }

    /// The contents of the regular file `rel`, if it is there.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        let Some(mut f) = self.open_file(rel)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {}", self.root.join(rel).display()))?;
        Ok(Some(bytes))
    }

    /// The text of `rel`, if it is there.
    pub fn read_text(&self, rel: &str) -> Result<Option<String>> {
        self.read(rel)?
            .map(|b| {
                String::from_utf8(b)
                    .with_context(|| format!("{} is not UTF-8", self.root.join(rel).display()))
            })
            .transpose()
    }

    /// Write `bytes` to `rel` (atomically, readable by all, its directories
    /// too) unless it already holds them. Whether it wrote.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> Result<bool> {
        if self.read(rel)?.is_some_and(|b| b == bytes) {
            return Ok(false);
        }
        let path = self.path(rel)?;
        create_public(path.parent().expect("a file in a directory"))?;
        fsutil::write_atomic(&path, bytes, PUBLIC)?;
        Ok(true)
    }

    /// Write `rel` from `fill` (atomically, readable by all); the file as
    /// written, for its identity. Its sync is owed to `later` (see
    /// [`fsutil::write_atomic_deferred`]): for the packages, which no index
    /// names until `later` is synced.
    pub fn write_with(
        &self,
        rel: &str,
        fill: impl FnOnce(&mut File) -> Result<()>,
        later: &fsutil::Deferred,
    ) -> Result<fs::Metadata> {
        let path = self.path(rel)?;
        create_public(path.parent().expect("a file in a directory"))?;
        fsutil::write_atomic_deferred_returning(&path, PUBLIC, fill, later)
    }

    /// Remove the file `rel`; whether it was there.
    pub fn remove(&self, rel: &str) -> Result<bool> {
        let path = self.path(rel)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
    }

    /// The names in the directory `rel` (none when it is not there), and
    /// whether each is a directory.
    pub fn list(&self, rel: &str) -> Result<Vec<(String, bool)>> {
        let path = self.path(rel)?;
        let entries = match fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.with_context(|| format!("cannot read {}", path.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            out.push((name, e.file_type()?.is_dir()));
        }
        out.sort();
        Ok(out)
    }

    /// A new, empty directory beside `rel`, to be filled and then put in
    /// its place by [`RepoTree::replace_dir`]; a killed publish leaves it to
    /// be removed by the next one.
    pub fn stage_dir(&self, rel: &str) -> Result<PathBuf> {
        let target = self.path(rel)?;
        let parent = target.parent().expect("below the root");
        create_public(parent)?;
        let name = target.file_name().expect("a name").to_string_lossy();
        let staged = parent.join(format!(".{name}{STAGED}"));
        if staged.exists() {
            fs::remove_dir_all(&staged)
                .with_context(|| format!("cannot remove {}", staged.display()))?;
        }
        fs::create_dir(&staged).with_context(|| format!("cannot create {}", staged.display()))?;
        fsutil::ensure_dir(&staged, PUBLIC_DIR)?;
        Ok(staged)
    }

    /// Put the staged directory in place of `rel` in one step: a reader (or
    /// a publish killed at any moment) sees the old directory whole or the
    /// new one whole, never a mix.
    pub fn replace_dir(&self, staged: &Path, rel: &str) -> Result<()> {
        let target = self.path(rel)?;
        for d in [staged, target.parent().expect("below the root")] {
            File::open(d)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot flush {}", d.display()))?;
        }
        fsutil::exchange_dirs(staged, &target)?;
        if staged.exists() {
            fs::remove_dir_all(staged)
                .with_context(|| format!("cannot remove {}", staged.display()))?;
        }
        Ok(())
    }
}

/// Why `c` cannot be one component of a repository path, if it cannot:
/// empty, `.` or `..`, or a character other than ASCII letters, digits and
/// `._+~-`.
pub fn check_component(c: &str) -> Result<()> {
    if c.is_empty() || c == "." || c == ".." {
        bail!("{c:?} is not a name");
    }
    if c.len() > 255 {
        bail!("{c:?} is longer than 255 bytes");
    }
    if let Some(bad) = c
        .chars()
        .find(|ch| !(ch.is_ascii_alphanumeric() || "._+~-".contains(*ch)))
    {
        bail!("{c:?} holds {bad:?}, which no name in a repository may hold");
    }
    Ok(())
}

/// `value`, read from a package or an index as its `what`, checked to be a
/// plain name before it becomes part of a path: as [`check_component`],
/// and not starting with `.` or `-`.
pub fn check_name(what: &str, value: &str) -> Result<()> {
    let problem = check_component(value)
        .err()
        .map(|e| e.to_string())
        .or_else(|| {
            value
                .starts_with(['.', '-'])
                .then(|| format!("{value:?} starts with {:?}", &value[..1]))
        });
    if let Some(why) = problem {
        bail!(
            "the {what} {why}: it would become a path in the repository\n  help: a package of etcdpack's never has such a {what}; publish only the output of `etcdpack gen`"
        );
    }
    Ok(())
}

/// Create `dir` and its missing parents, readable by all.
pub fn create_public(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut d = dir;
    while fs::symlink_metadata(d).is_err() {
        missing.push(d);
        match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => d = p,
            _ => break,
        }
    }
    for m in missing.iter().rev() {
        match fs::create_dir(m) {
            Ok(()) => fsutil::ensure_dir(m, PUBLIC_DIR)?,
            // Made meanwhile by another thread of this publish.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", m.display())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_packages_are_plain_names() {
        for ok in [
            "etcd-k8s-etcd-1",
            "etcd_3.4.16-1_amd64.deb",
            "x86_64",
            "a+b~c",
        ] {
            check_name("name", ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "../../tmp/x",
            "a/b",
            ".hidden",
            "-rf",
            "a b",
            "a\nb",
            "é",
        ] {
            assert!(check_name("Package", bad).is_err(), "{bad:?}");
        }
        let err = check_name("Package", "../../../../tmp/x").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the Package \"../../../../tmp/x\" holds '/'"),
            "{err}"
        );
    }

    #[test]
    fn a_link_or_a_fifo_anywhere_is_refused_and_leftovers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        fs::create_dir_all(root.join("dists/stable/main")).unwrap();
        fs::write(root.join("dists/stable/.Release.x.part"), "half").unwrap();
        fs::create_dir_all(root.join("rpm/.repodata.staged")).unwrap();
        drop(RepoTree::open(&root).unwrap());
        assert!(!root.join("dists/stable/.Release.x.part").exists());
        assert!(!root.join("rpm/.repodata.staged").exists());

        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("dists/stable/main/by-hash")).unwrap();
        let err = RepoTree::open(&root).unwrap_err().to_string();
        assert!(err.contains("main/by-hash is a symbolic link"), "{err}");
        fs::remove_file(root.join("dists/stable/main/by-hash")).unwrap();

        let fifo = std::ffi::CString::new(root.join("pool").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let err = RepoTree::open(&root).unwrap_err().to_string();
        assert!(err.contains("pool is a FIFO"), "{err}");
    }

    #[test]
    fn a_staged_directory_replaces_the_old_one_whole() {
        let dir = tempfile::tempdir().unwrap();
        let tree = RepoTree::open(dir.path()).unwrap();
        tree.write("a/repodata/old", b"old").unwrap();
        let staged = tree.stage_dir("a/repodata").unwrap();
        fs::write(staged.join("new"), "new").unwrap();
        tree.replace_dir(&staged, "a/repodata").unwrap();
        assert_eq!(tree.read("a/repodata/new").unwrap().unwrap(), b"new");
        assert!(tree.read("a/repodata/old").unwrap().is_none());
        assert!(!staged.exists());
        // Where there was none, it is renamed into place.
        let staged = tree.stage_dir("b/repodata").unwrap();
        tree.replace_dir(&staged, "b/repodata").unwrap();
        assert!(dir.path().join("b/repodata").is_dir());
        assert!(tree.path("a/../b").is_err());
    }
}
