//! **publish**: the packages of a finished `gen` run as a signed apt
//! repository and a signed dnf/yum repository that machines install from
//! (`apt install etcd-<cluster>-<node>`, `dnf install etcd-<cluster>-<node>`).
//! The `.deb` packages of the run go to the apt half (`dists/`, `pool/`, see
//! [`apt`]), its `.rpm` packages to the yum half (`rpm/`, see [`yum`]).
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
//!   "Hash Sum mismatch". The yum half keeps the same order: the packages,
//!   then the new `<sha256>-*.xml.gz`, then `repomd.xml`, then its signature
//!   `repomd.xml.asc`; the metadata of the last [`GENERATIONS`] publishes and
//!   the packages it lists stay, so a `dnf makecache` that read the previous
//!   `repomd.xml` still finds everything it names. (Two files cannot be
//!   replaced at once: a client that fetches `repomd.xml` in the instant
//!   between the two renames and its `.asc` after them sees a signature
//!   that does not match, refuses that one refresh, and succeeds on the
//!   next. It never accepts metadata that is not signed. The signature goes
//!   last because dnf fetches it last: a client that reads both after the
//!   first rename gets a matching pair when the second one follows at once.)
//! - **Safe to serve.** A package that holds a private key in clear is
//!   refused unless explicitly allowed: anyone who can read a repository can
//!   read every key in it.
//! - **Reproducible.** The same packages and date give the same bytes.

pub mod apt;
pub mod sign;
pub mod yum;

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
use yum::RpmEntry;

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
    /// The cluster the config names, when publish was given one: the run
    /// must be of that cluster.
    pub cluster: Option<&'a str>,
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
    /// The files for clients: `.sources` (apt), `.repo` (dnf) and, when
    /// signed, the public key.
    pub client_files: Vec<PathBuf>,
}

/// Publish the `.deb` and `.rpm` packages of `o.out` into `o.repo`.
pub fn publish(o: &Options, reporter: &Reporter) -> Result<Published> {
    let manifest = finished_run(o.out)?;
    if let Some(name) = o.cluster
        && name != manifest.cluster
    {
        bail!(
            "{} is a run of the cluster {:?}, not of {name:?}, which the config names\n  help: pass the output directory of this config's gen run with --out (or the config of that run with --config)",
            o.out.display(),
            manifest.cluster
        );
    }
    let (debs, rpms) = read_artifacts(o, &manifest, reporter)?;

    create_public(o.repo)?;
    let _lock = OutputLock::acquire(o.repo)?;
    let label = format!("etcd-{}", manifest.cluster);
    let mut published = Published {
        added: Vec::new(),
        changed: false,
        client_files: Vec::new(),
    };
    let has_debs = !debs.is_empty();
    if has_debs {
        let (added, changed) = publish_apt(o, &label, debs, reporter)?;
        published.added.extend(added);
        published.changed |= changed;
    }
    if !rpms.is_empty() {
        let (added, changed) = publish_yum(o, &rpms, reporter)?;
        published.added.extend(added);
        published.changed |= changed;
    }
    published.client_files =
        client_files(o, &manifest.cluster, &label, has_debs, !rpms.is_empty())?;
    Ok(published)
}

/// Publish `debs` as the apt repository: what was new in the pool, and
/// whether the indexes changed.
fn publish_apt(
    o: &Options,
    label: &str,
    debs: Vec<(DebEntry, Vec<u8>)>,
    reporter: &Reporter,
) -> Result<(Vec<String>, bool)> {
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
    let release = apt::release(label, o.suite, &archs, date, &listed, o.signer.is_some());
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
    Ok((added, changed))
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

/// An `.rpm` of the run, checked; read again when it is pooled.
#[derive(Debug)]
struct RpmArtifact {
    /// Relative to the output directory.
    path: String,
    sha256: String,
}

/// Each `.deb` (with its index entry) and `.rpm` of the run, checked against
/// the manifest and for keys in clear, one at a time.
#[allow(clippy::type_complexity)]
fn read_artifacts(
    o: &Options,
    manifest: &Manifest,
    reporter: &Reporter,
) -> Result<(Vec<(DebEntry, Vec<u8>)>, Vec<RpmArtifact>)> {
    let mut debs = Vec::new();
    let mut rpms = Vec::new();
    let mut cleartext = Vec::new();
    for a in manifest.artifacts() {
        let format = if a.format == Format::Deb.as_str() {
            Format::Deb
        } else if a.format == Format::Rpm.as_str() {
            Format::Rpm
        } else {
            continue;
        };
        let bytes = read_artifact(o, &a.path, &a.sha256)?;
        let path = o.out.join(&a.path);
        let streams = package::read_streams(format, &bytes)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if streams
            .iter()
            .any(|s| memchr::memmem::find(s, b"PRIVATE KEY-----").is_some())
        {
            cleartext.push(a.path.clone());
        }
        if format == Format::Rpm {
            rpms.push(RpmArtifact {
                path: a.path.clone(),
                sha256: a.sha256.clone(),
            });
            continue;
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
    if debs.is_empty() && rpms.is_empty() {
        bail!(
            "{} has no .deb or .rpm packages to publish\n  help: add deb and/or rpm to packages.formats in the config (or pass --formats deb,rpm to gen), and run gen again",
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
    Ok((debs, rpms))
}

/// The artifact `rel` of the run, if it is the package the manifest records.
fn read_artifact(o: &Options, rel: &str, sha256: &str) -> Result<Vec<u8>> {
    let path = o.out.join(rel);
    let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    if fsutil::sha256_hex(&bytes) != sha256 {
        bail!(
            "{} is not the package the manifest records (its sha256 differs)\n  help: run `etcdpack verify {}`, then gen again",
            path.display(),
            o.out.display()
        );
    }
    Ok(bytes)
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
/// embedded) when the run had `.deb` packages, `<label>.repo` for dnf when
/// it had `.rpm` packages, and the public key as `<label>.asc`.
fn client_files(
    o: &Options,
    cluster: &str,
    label: &str,
    apt: bool,
    dnf: bool,
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if apt {
        let mut sources = format!(
            "# The apt repository of the etcd cluster {cluster}, published by etcdpack.\n# Install as /etc/apt/sources.list.d/{label}.sources, then: apt-get update && apt-get install {label}-<node>\nTypes: deb\nURIs: {}\nSuites: {}\nComponents: {COMPONENT}\n",
            o.url, o.suite
        );
        match o.signer {
            Some(s) => {
                sources.push_str("Signed-By:\n");
                for line in s.public_armored()?.lines() {
                    if line.trim().is_empty() {
                        sources.push_str(" .\n");
                    } else {
                        sources.push_str(&format!(" {line}\n"));
                    }
                }
            }
            None => {
                sources.push_str(
                    "# UNSIGNED: apt cannot tell this repository's packages from anyone else's.\nTrusted: yes\n",
                );
            }
        }
        let path = o.repo.join(format!("{label}.sources"));
        write_public(&path, sources.as_bytes())?;
        files.push(path);
    }
    if dnf {
        let text = yum::repo_file(cluster, label, o.url, o.suite, o.signer.is_some());
        let path = o.repo.join(format!("{label}.repo"));
        write_public(&path, text.as_bytes())?;
        files.push(path);
    }
    if let Some(s) = o.signer {
        let path = o.repo.join(format!("{label}.asc"));
        write_public(&path, s.public_armored()?.as_bytes())?;
        files.push(path);
    }
    Ok(files)
}

/// Sign and pool `rpms` and write the metadata of each `$basearch` they
/// are for: what was new in the pool, and whether the metadata changed.
fn publish_yum(
    o: &Options,
    rpms: &[RpmArtifact],
    reporter: &Reporter,
) -> Result<(Vec<String>, bool)> {
    let top = o.repo.join(yum::TOP).join(o.suite);
    let mut added = Vec::new();
    let mut by_arch: BTreeMap<String, Vec<RpmEntry>> = BTreeMap::new();
    for a in rpms {
        let bytes = read_artifact(o, &a.path, &a.sha256)?;
        let unsigned = yum::metadata_of(&bytes)
            .with_context(|| format!("cannot read {}", o.out.join(&a.path).display()))?;
        let arch = unsigned.get_arch().unwrap_or("noarch").to_owned();
        let file = a.path.rsplit('/').next().unwrap_or(&a.path);
        let href = format!("{}/{file}", yum::PACKAGES);
        let rel = format!("{}/{}/{arch}/{href}", yum::TOP, o.suite);
        let path = top.join(&arch).join(&href);
        let (bytes, new) = pool_rpm(o, &path, &rel, &bytes, &unsigned, reporter)?;
        if new {
            added.push(file.to_owned());
        }
        by_arch.entry(arch).or_default().push(RpmEntry {
            href,
            sha256: fsutil::sha256_hex(&bytes),
            size: bytes.len() as u64,
            metadata: yum::metadata_of(&bytes)?,
        });
    }

    let mut changed = false;
    for (arch, new) in by_arch {
        let dir = top.join(&arch);
        let repodata = dir.join(yum::REPODATA);
        let (revision, current) = current_rpm_entries(&dir, reporter)?;
        let mut all: BTreeMap<(String, String, String), RpmEntry> = BTreeMap::new();
        for e in current.into_iter().chain(new) {
            all.insert(e.key(), e);
        }
        let kept = yum::retain_newest(all.into_values().collect(), o.keep);
        let texts = yum::metadata(&kept)?;
        let mut data = Vec::new();
        let mut fresh = false;
        for (kind, text) in yum::KINDS.iter().zip(&texts) {
            let gz = gzip(text.as_bytes())?;
            let d = yum::Data::new(kind, text.as_bytes(), &gz);
            fresh |= write_public(&repodata.join(d.file_name()), &gz)?;
            data.push(d);
        }
        let line = yum::generation_line(&data);
        let current_line = fs::read_to_string(repodata.join(HISTORY))
            .unwrap_or_default()
            .lines()
            .next()
            .map(str::to_owned);
        // Unchanged metadata keeps its date, so that repomd.xml and its
        // signature come out as they are.
        let date = match revision {
            Some(r) if !fresh && current_line.as_deref() == Some(line.as_str()) => r,
            _ => o.date,
        };
        let history = record_yum_generation(&repodata, &line)?;
        let repomd = yum::repomd(date, &data);
        changed |= write_public(&repodata.join("repomd.xml"), repomd.as_bytes())?;
        let asc = repodata.join("repomd.xml.asc");
        match o.signer {
            Some(s) => {
                let signature = s.detached_armored(repomd.as_bytes(), date)?;
                changed |= write_public(&asc, signature.as_bytes())?;
            }
            // A signature of another repomd.xml would only make dnf refuse.
            None => changed |= remove_if_there(&asc)?,
        }
        prune_yum(
            &dir,
            &kept,
            &history,
            reporter,
            &format!("{}/{}/{arch}", yum::TOP, o.suite),
        )?;
    }
    Ok((added, changed))
}

/// Put an .rpm into the pool at `path`, signed when the repository is.
/// The pooled bytes, and whether they are new there. A package already
/// pooled with the same header is kept as it is when it carries this
/// repository's signature (signed earlier, on another date) and replaced
/// when not (another key, or none); a different package of the same name
/// is an error, as in the apt pool.
fn pool_rpm(
    o: &Options,
    path: &Path,
    rel: &str,
    bytes: &[u8],
    unsigned: &rpm::PackageMetadata,
    reporter: &Reporter,
) -> Result<(Vec<u8>, bool)> {
    let header = unsigned
        .header_bytes()
        .context("cannot read an .rpm header")?;
    let mut replacing = false;
    match fs::read(path) {
        Ok(existing) => {
            let same_package = yum::metadata_of(&existing)
                .ok()
                .and_then(|m| m.header_bytes().ok())
                .is_some_and(|h| h == header);
            if !same_package {
                bail!(
                    "{} already holds another package of the same name and version\n  help: a repository never changes a published package; this happens when an output directory was created again (releases start at 1): publish into a new --repo or --suite, or restore the earlier output directory and gen again",
                    path.display()
                );
            }
            let keep = match o.signer {
                Some(s) => yum::signed_by(&existing, s),
                None => existing == bytes,
            };
            if keep {
                return Ok((existing, false));
            }
            replacing = true;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let pooled = match o.signer {
        Some(s) => yum::sign_rpm(bytes, s, o.date).with_context(|| format!("cannot sign {rel}"))?,
        None => bytes.to_vec(),
    };
    write_public(path, &pooled)?;
    reporter.status(if replacing { "Re-signed" } else { "Pooled" }, rel);
    Ok((pooled, !replacing))
}

/// What the current metadata of a `$basearch` directory lists, read back
/// from its primary.xml and the pooled headers, and its revision.
fn current_rpm_entries(dir: &Path, reporter: &Reporter) -> Result<(Option<u64>, Vec<RpmEntry>)> {
    let repodata = dir.join(yum::REPODATA);
    let Ok(repomd) = fs::read_to_string(repodata.join("repomd.xml")) else {
        return Ok((None, Vec::new()));
    };
    let (revision, files) = yum::read_repomd(&repomd);
    let Some((_, href)) = files.iter().find(|(k, _)| k == "primary") else {
        return Ok((revision, Vec::new()));
    };
    let primary = gunzip_file(&dir.join(href))?;
    let mut out = Vec::new();
    for (href, sha256) in yum::read_primary(&primary) {
        let path = dir.join(&href);
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                reporter.warn(format!(
                    "{} is listed by the current metadata but missing; it is left out",
                    path.display()
                ));
                continue;
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let size = file.metadata()?.len();
        let metadata = rpm::PackageMetadata::parse(&mut std::io::BufReader::new(file))
            .with_context(|| format!("cannot read {}", path.display()))?;
        out.push(RpmEntry {
            href,
            sha256,
            size,
            metadata,
        });
    }
    Ok((revision, out))
}

fn gunzip_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let gz = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .with_context(|| format!("cannot decompress {}", path.display()))?;
    Ok(text)
}

/// Add this publish's metadata files to `repodata`'s history, newest
/// first, and remove the metadata files no kept generation names. The
/// kept lines.
fn record_yum_generation(repodata: &Path, line: &str) -> Result<Vec<String>> {
    let path = repodata.join(HISTORY);
    let old = fs::read_to_string(&path).unwrap_or_default();
    let mut lines: Vec<&str> = vec![line];
    lines.extend(old.lines().filter(|l| *l != line && !l.trim().is_empty()));
    lines.truncate(GENERATIONS);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    write_public(&path, text.as_bytes())?;
    let keep = yum::named_in(&lines);
    for e in
        fs::read_dir(repodata).with_context(|| format!("cannot read {}", repodata.display()))?
    {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if yum::is_data_file(&name) && !keep.contains(&name) {
            fs::remove_file(e.path())
                .with_context(|| format!("cannot remove {}", e.path().display()))?;
        }
    }
    Ok(lines.into_iter().map(str::to_owned).collect())
}

/// Remove from `Packages/` every .rpm that neither `kept` nor the primary
/// of a generation in `history` lists.
fn prune_yum(
    dir: &Path,
    kept: &[RpmEntry],
    history: &[String],
    reporter: &Reporter,
    shown: &str,
) -> Result<()> {
    let mut referenced: BTreeSet<String> = kept.iter().map(|e| e.href.clone()).collect();
    let repodata = dir.join(yum::REPODATA);
    for name in history.iter().flat_map(|l| l.split_whitespace()) {
        if name.ends_with("-primary.xml.gz")
            && let Ok(text) = gunzip_file(&repodata.join(name))
        {
            referenced.extend(yum::read_primary(&text).into_iter().map(|(h, _)| h));
        }
    }
    let packages = dir.join(yum::PACKAGES);
    for e in fs::read_dir(&packages).into_iter().flatten() {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let href = format!("{}/{name}", yum::PACKAGES);
        if name.ends_with(".rpm") && !referenced.contains(&href) {
            fs::remove_file(e.path())
                .with_context(|| format!("cannot remove {}", e.path().display()))?;
            reporter.status("Pruned", format!("{shown}/{href}"));
        }
    }
    Ok(())
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
