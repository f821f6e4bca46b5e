//! **publish**: the packages of a finished `gen` run as a signed apt
//! repository that machines install from (`apt install etcd-<cluster>-<node>`).
//!
//! - **Incremental.** New packages join the pool; the index lists the newest
//!   [`Options::keep`] releases of each package; a publish that changes
//!   nothing writes nothing (signatures are deterministic, see [`sign`]).
//! - **Atomic for readers.** Files are written under temporary names and
//!   renamed, in an order that keeps every state consistent: the pool, then
//!   `by-hash/` copies of the new indexes, then the indexes, then `Release`
//!   and its signatures, `InRelease` last. `Acquire-By-Hash: yes` makes apt
//!   fetch indexes by their digest, and the indexes of the last
//!   [`GENERATIONS`] publishes stay there (and the packages they list stay in
//!   the pool), so an `apt update` racing a publish never sees a
//!   "Hash Sum mismatch".
//! - **Safe to serve.** A package that holds a private key in clear is
//!   refused unless explicitly allowed: anyone who can read a repository can
//!   read every key in it.
//! - **Reproducible.** The same packages and date give the same bytes.

pub mod apt;
pub mod sign;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::fsutil::{self, OutputLock};
use crate::model::{Format, out};
use crate::output::Manifest;
use crate::package;
use crate::report::Reporter;
use apt::{COMPONENT, DebEntry, Listed};
use sign::Signer;

/// How many publishes' indexes stay reachable by hash.
pub const GENERATIONS: usize = 3;
/// Mode of everything in the repository: it is served to anyone.
const PUBLIC: u32 = 0o644;
const PUBLIC_DIR: u32 = 0o755;
/// The record, in each `by-hash/`, of the digests of the last publishes.
const HISTORY: &str = ".etcdpack-generations";

/// What to publish, where, and how.
#[derive(Debug)]
pub struct Options<'a> {
    /// A finished `gen` output directory.
    pub out: &'a Path,
    pub repo: &'a Path,
    pub suite: &'a str,
    /// `None`: an unsigned repository.
    pub signer: Option<&'a Signer>,
    /// The repository's URL as clients reach it (for the client files).
    pub url: &'a str,
    /// Releases of each package the index keeps.
    pub keep: usize,
    pub allow_cleartext_keys: bool,
    /// The `Date` of a changed `Release` and the time of its signatures.
    pub date: u64,
}

/// What a publish did.
#[derive(Debug)]
pub struct Published {
    /// Packages new in the pool, by file name.
    pub added: Vec<String>,
    /// Whether the indexes changed.
    pub changed: bool,
    /// The files for clients: `.sources` and, when signed, the public key.
    pub client_files: Vec<PathBuf>,
}

/// Publish the `.deb` packages of `o.out` into `o.repo`.
pub fn publish(o: &Options, reporter: &Reporter) -> Result<Published> {
    let manifest = finished_run(o.out)?;
    let debs = read_debs(o, &manifest, reporter)?;

    create_public(o.repo)?;
    let _lock = OutputLock::acquire(o.repo)?;
    let mut added = Vec::new();
    for (entry, bytes) in &debs {
        if put_in_pool(o.repo, entry, bytes)? {
            reporter.status("Pooled", &entry.filename);
            added.push(entry.filename.clone());
        }
    }

    let dists = o.repo.join("dists").join(o.suite);
    let current = current_entries(&dists)?;
    let mut all: BTreeMap<(String, String, String), DebEntry> = BTreeMap::new();
    for e in current.into_iter().chain(debs.into_iter().map(|(e, _)| e)) {
        let key = (
            e.package().to_owned(),
            e.version().to_owned(),
            e.architecture().to_owned(),
        );
        all.insert(key, e);
    }
    let kept = apt::retain_newest(all.into_values().collect(), o.keep);
    let mut by_arch: BTreeMap<String, Vec<DebEntry>> = BTreeMap::new();
    for e in kept {
        by_arch
            .entry(e.architecture().to_owned())
            .or_default()
            .push(e);
    }

    // The indexes, by-hash first.
    let mut listed = Vec::new();
    let mut changed = false;
    for (arch, entries) in &by_arch {
        let rel = format!("{COMPONENT}/binary-{arch}");
        let dir = dists.join(&rel);
        let text = apt::packages(entries);
        let gz = gzip(text.as_bytes())?;
        let by_hash = dir.join("by-hash/SHA256");
        let mut generation = Vec::new();
        for (name, bytes) in [("Packages", text.as_bytes()), ("Packages.gz", &gz[..])] {
            let sha = fsutil::sha256_hex(bytes);
            write_public(&by_hash.join(&sha), bytes)?;
            generation.push(sha.clone());
            listed.push(Listed {
                path: format!("{rel}/{name}"),
                size: bytes.len() as u64,
                sha256: sha,
            });
        }
        record_generation(&by_hash, &generation)?;
        for (name, bytes) in [("Packages", text.as_bytes()), ("Packages.gz", &gz[..])] {
            changed |= write_public(&dir.join(name), bytes)?;
        }
    }
    listed.sort_by(|a, b| a.path.cmp(&b.path));

    // An unchanged index keeps its date, so that its Release and signatures
    // come out as they are.
    let date = match (changed, release_date(&dists)) {
        (false, Some(d)) => d,
        _ => o.date,
    };
    let archs: BTreeSet<String> = by_arch.keys().cloned().collect();
    let label = format!("etcd-{}", manifest.cluster);
    let release = apt::release(&label, o.suite, &archs, date, &listed, o.signer.is_some());
    changed |= write_public(&dists.join("Release"), release.as_bytes())?;
    match o.signer {
        Some(s) => {
            let detached = s.detached_armored(release.as_bytes(), date)?;
            changed |= write_public(&dists.join("Release.gpg"), detached.as_bytes())?;
            let inline = s.clearsign(&release, date)?;
            changed |= write_public(&dists.join("InRelease"), inline.as_bytes())?;
        }
        None => {
            // A signature of another Release would only make apt refuse.
            for name in ["InRelease", "Release.gpg"] {
                changed |= remove_if_there(&dists.join(name))?;
            }
        }
    }

    prune(o.repo, &dists, &by_arch, reporter)?;
    let client_files = client_files(o, &manifest.cluster, &label)?;
    Ok(Published {
        added,
        changed,
        client_files,
    })
}

/// The manifest of a finished `gen` run in `out`.
fn finished_run(out_dir: &Path) -> Result<Manifest> {
    if out_dir.join(out::INCOMPLETE).exists() {
        bail!(
            "{} holds an unfinished gen run ({} is there)\n  help: run gen again until it finishes, then publish",
            out_dir.display(),
            out::INCOMPLETE
        );
    }
    Manifest::read(out_dir)?.with_context(|| {
        format!(
            "{} holds no {}: it is not the output of a finished gen run\n  help: run `etcdpack gen --out {}` first",
            out_dir.display(),
            out::MANIFEST,
            out_dir.display()
        )
    })
}

/// Each `.deb` of the run, checked against the manifest and for keys in
/// clear, with its index entry.
fn read_debs(
    o: &Options,
    manifest: &Manifest,
    reporter: &Reporter,
) -> Result<Vec<(DebEntry, Vec<u8>)>> {
    let mut debs = Vec::new();
    let mut cleartext = Vec::new();
    for a in manifest
        .artifacts()
        .filter(|a| a.format == Format::Deb.as_str())
    {
        let path = o.out.join(&a.path);
        let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if fsutil::sha256_hex(&bytes) != a.sha256 {
            bail!(
                "{} is not the package the manifest records (its sha256 differs)\n  help: run `etcdpack verify {}`, then gen again",
                path.display(),
                o.out.display()
            );
        }
        let streams = package::read_streams(Format::Deb, &bytes)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if streams
            .iter()
            .any(|s| memchr::memmem::find(s, b"PRIVATE KEY-----").is_some())
        {
            cleartext.push(a.path.clone());
        }
        let control = package::deb::control_of(&bytes)
            .with_context(|| format!("cannot read the control file of {}", path.display()))?;
        let fields = apt::paragraphs(&control, &format!("the control file of {}", path.display()))?
            .into_iter()
            .next()
            .with_context(|| format!("the control file of {} is empty", path.display()))?;
        let file = a.path.rsplit('/').next().unwrap_or(&a.path);
        let mut entry = DebEntry {
            control: fields,
            filename: String::new(),
            size: bytes.len() as u64,
            md5: hex::encode(<md5::Md5 as md5::Digest>::digest(&bytes)),
            sha256: a.sha256.clone(),
        };
        entry.filename = apt::pool_path(entry.package(), file);
        debs.push((entry, bytes));
    }
    if debs.is_empty() {
        bail!(
            "{} has no .deb packages to publish\n  help: add deb to packages.formats in the config (or pass --formats deb to gen), and run gen again",
            o.out.display()
        );
    }
    if !cleartext.is_empty() {
        let list = cleartext.join(", ");
        if !o.allow_cleartext_keys {
            bail!(
                "refusing to publish packages that hold a private key in clear: {list}\n  anyone who can read the repository could read every node's key, and each one is full client access to the cluster\n  help: keep these packages off repositories and copy each one to its own machine, or pass --allow-cleartext-keys if only the machines themselves can read this repository"
            );
        }
        reporter.warn(format!(
            "PUBLISHING PRIVATE KEYS IN CLEAR (--allow-cleartext-keys): {list}; anyone who can read {} can read every node's key",
            o.repo.display()
        ));
    }
    Ok(debs)
}

/// Copy a package into the pool. Whether it is new there; a different
/// package of the same name is an error (clients would see it change).
fn put_in_pool(repo: &Path, entry: &DebEntry, bytes: &[u8]) -> Result<bool> {
    let path = repo.join(&entry.filename);
    match fs::read(&path) {
        Ok(existing) if fsutil::sha256_hex(&existing) == entry.sha256 => return Ok(false),
        Ok(_) => bail!(
            "{} already holds another package of the same name and version\n  help: a repository never changes a published package; this happens when an output directory was created again (releases start at 1): publish into a new --repo or --suite, or restore the earlier output directory and gen again",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    write_public(&path, bytes)?;
    Ok(true)
}

/// What the current indexes of the suite list, every architecture.
fn current_entries(dists: &Path) -> Result<Vec<DebEntry>> {
    let mut out = Vec::new();
    let component = dists.join(COMPONENT);
    let Ok(dirs) = fs::read_dir(&component) else {
        return Ok(out);
    };
    for d in dirs {
        let path = d?.path().join("Packages");
        match fs::read_to_string(&path) {
            Ok(text) => out.extend(apt::parse_packages(&text, &path.display().to_string())?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    Ok(out)
}

/// The `Date` of the suite's current `Release`, if it has one.
fn release_date(dists: &Path) -> Option<u64> {
    let text = fs::read_to_string(dists.join("Release")).ok()?;
    let date = text.lines().find_map(|l| l.strip_prefix("Date: "))?;
    let t = time::PrimitiveDateTime::parse(
        date.trim_end_matches(" UTC"),
        time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second]"
        ),
    )
    .ok()?;
    u64::try_from(t.assume_utc().unix_timestamp()).ok()
}

/// Add this publish's index digests to `by_hash`'s history, newest first,
/// and remove the copies no kept generation names.
fn record_generation(by_hash: &Path, generation: &[String]) -> Result<()> {
    let path = by_hash.join(HISTORY);
    let old = fs::read_to_string(&path).unwrap_or_default();
    let line = generation.join(" ");
    let mut lines: Vec<&str> = vec![line.as_str()];
    lines.extend(old.lines().filter(|l| *l != line && !l.trim().is_empty()));
    lines.truncate(GENERATIONS);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    write_public(&path, text.as_bytes())?;
    let keep: BTreeSet<&str> = lines.iter().flat_map(|l| l.split(' ')).collect();
    for e in fs::read_dir(by_hash).with_context(|| format!("cannot read {}", by_hash.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name != HISTORY && !name.starts_with('.') && !keep.contains(name.as_str()) {
            fs::remove_file(e.path())
                .with_context(|| format!("cannot remove {}", e.path().display()))?;
        }
    }
    Ok(())
}

/// Remove from the pool every package that neither the current indexes nor
/// those still reachable by hash list.
fn prune(
    repo: &Path,
    dists: &Path,
    by_arch: &BTreeMap<String, Vec<DebEntry>>,
    reporter: &Reporter,
) -> Result<()> {
    let mut referenced: BTreeSet<String> = by_arch
        .values()
        .flatten()
        .map(|e| e.filename.clone())
        .collect();
    let component = dists.join(COMPONENT);
    for d in fs::read_dir(&component).into_iter().flatten() {
        let by_hash = d?.path().join("by-hash/SHA256");
        let history = fs::read_to_string(by_hash.join(HISTORY)).unwrap_or_default();
        for sha in history.split_whitespace() {
            // The plain index of each generation; the .gz says the same.
            if let Ok(text) = fs::read_to_string(by_hash.join(sha))
                && let Ok(entries) = apt::parse_packages(&text, sha)
            {
                referenced.extend(entries.into_iter().map(|e| e.filename));
            }
        }
    }
    let pool = repo.join("pool");
    let mut stack = vec![pool.clone()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten() {
            let e = e?;
            let path = e.path();
            if e.file_type()?.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(repo)
                .expect("under the repository")
                .to_string_lossy()
                .into_owned();
            if rel.ends_with(".deb") && !referenced.contains(&rel) {
                fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                reporter.status("Pruned", &rel);
            }
        }
    }
    Ok(())
}

/// The files a client drops in: `<label>.sources` for apt (the key
/// embedded), and the public key as `<label>.asc`.
fn client_files(o: &Options, cluster: &str, label: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut sources = format!(
        "# The apt repository of the etcd cluster {cluster}, published by etcdpack.\n# Install as /etc/apt/sources.list.d/{label}.sources, then: apt-get update && apt-get install {label}-<node>\nTypes: deb\nURIs: {}\nSuites: {}\nComponents: {COMPONENT}\n",
        o.url, o.suite
    );
    match o.signer {
        Some(s) => {
            let key = s.public_armored()?;
            sources.push_str("Signed-By:\n");
            for line in key.lines() {
                if line.trim().is_empty() {
                    sources.push_str(" .\n");
                } else {
                    sources.push_str(&format!(" {line}\n"));
                }
            }
            let path = o.repo.join(format!("{label}.asc"));
            write_public(&path, key.as_bytes())?;
            files.push(path);
        }
        None => {
            sources.push_str(
                "# UNSIGNED: apt cannot tell this repository's packages from anyone else's.\nTrusted: yes\n",
            );
        }
    }
    let path = o.repo.join(format!("{label}.sources"));
    write_public(&path, sources.as_bytes())?;
    files.insert(0, path);
    Ok(files)
}

/// `data` gzip'd as every package stream is: the same bytes every time.
fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut g = package::gzip(Vec::new());
    g.write_all(data)?;
    Ok(g.finish()?)
}

/// Create `dir` and its missing parents, readable by all.
fn create_public(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut d = dir;
    while !d.exists() {
        missing.push(d);
        match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => d = p,
            _ => break,
        }
    }
    for m in missing.iter().rev() {
        fs::create_dir(m).with_context(|| format!("cannot create {}", m.display()))?;
        fsutil::ensure_dir(m, PUBLIC_DIR)?;
    }
    Ok(())
}

/// Write `bytes` to `path` (atomically, readable by all, its directories
/// too) unless it already holds them. Whether it wrote.
fn write_public(path: &Path, bytes: &[u8]) -> Result<bool> {
    if fs::read(path).is_ok_and(|b| b == bytes) {
        return Ok(false);
    }
    create_public(path.parent().expect("a file in a directory"))?;
    fsutil::write_atomic(path, bytes, PUBLIC)?;
    Ok(true)
}

fn remove_if_there(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}
