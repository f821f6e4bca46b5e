//! **publish**: the packages of a finished `gen` run as a signed apt
//! repository and a signed dnf/yum repository that machines install from
//! (`apt install etcd-<cluster>-<node>`, `dnf install etcd-<cluster>-<node>`).
//! The `.deb` packages of the run go to the apt half (`dists/`, `pool/`, see
//! [`apt`]), its `.rpm` packages to the yum half (`rpm/`, see [`yum`]); both
//! are one [`repository::Repository`] driven by one pipeline.
//!
//! - **Nothing signed that was not verified.** What the repository lists
//!   now is carried forward only when the signing key's signature over it
//!   verifies and every index and package matches the digests the signed
//!   file gives; anything else is refused with an error naming it, before
//!   anything is written. The run's own packages are checked against its
//!   manifest and for private keys in clear ([`package::scan`]).
//! - **The repository is a tree publish owns** ([`tree`]): no symbolic
//!   link or special file anywhere below it, every path built from checked
//!   names, and publishes into one repository take turns.
//! - **Incremental.** New packages join the pool; the index lists the newest
//!   [`Options::keep`] releases of each package; a publish that changes
//!   nothing writes nothing (signatures are deterministic, see [`sign`]).
//!   What publish wrote or verified is known by identity afterwards
//!   (`OUT/.etcdpack-publish.digests`, see `digests`), so an unchanged
//!   republish reads no package again.
//! - **Consistent for readers, whenever it is killed.** The pool first;
//!   then the apt indexes under `by-hash/`, under their names, `Release`
//!   and its signatures, `InRelease` last (`Acquire-By-Hash: yes` makes
//!   apt fetch indexes by digest, and the indexes of the last
//!   [`repository::GENERATIONS`] publishes, and the one the signed
//!   `InRelease` names, stay there); each `$basearch`'s `repodata/` is
//!   replaced whole, in one step. Packages go last, once no index still
//!   reachable lists them.
//! - **Reproducible.** The same packages and date give the same bytes.

pub mod apt;
pub mod repodata;
pub mod repository;
pub mod sign;
pub mod tree;
pub mod versions;
pub mod yum;

use std::fs;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;

use crate::digests::{self, Digests};
use crate::model::{Format, out};
use crate::output::Manifest;
use crate::package;
use crate::pki::KeyFinder;
use crate::report::Reporter;
use repository::{Ctx, RunPackage, publish_to};
use sign::Signer;
use tree::{RepoTree, check_name};

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
    let digests = Digests::load_all(o.out, &[digests::FILE_NAME, digests::PUBLISH_FILE_NAME]);
    let run = intake(o, &manifest, &digests, reporter)?;

    let tree = RepoTree::open(o.repo)?;
    let label = format!("etcd-{}", manifest.cluster);
    let later = crate::fsutil::Deferred::new();
    let ctx = Ctx {
        tree: &tree,
        suite: o.suite,
        label: &label,
        signer: o.signer,
        keep: o.keep,
        date: o.date,
        digests: &digests,
        reporter,
        interrupted: tree.interrupted(),
        later: &later,
    };
    let has = |f: Format| run.iter().any(|p| p.format == f);
    // Everything carried forward is verified before anything is written.
    let apt_now = has(Format::Deb)
        .then(|| repository::Repository::current(&apt::Apt, &ctx))
        .transpose()?;
    let yum_now = has(Format::Rpm)
        .then(|| repository::Repository::current(&yum::Yum, &ctx))
        .transpose()?;

    tree.begin()?;
    let mut published = Published {
        added: Vec::new(),
        changed: false,
        client_files: Vec::new(),
    };
    if let Some(now) = apt_now {
        let (added, changed) = publish_to(&ctx, &apt::Apt, now, &run)?;
        published.added.extend(added);
        published.changed |= changed;
    }
    if let Some(now) = yum_now {
        let (added, changed) = publish_to(&ctx, &yum::Yum, now, &run)?;
        published.added.extend(added);
        published.changed |= changed;
    }
    published.client_files = client_files(o, &tree, &manifest.cluster, &label, &has)?;
    digests.save_as(o.out, digests::PUBLISH_FILE_NAME)?;
    tree.finish()?;
    Ok(published)
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

/// Every `.deb` and `.rpm` of the run, each read once (on every core):
/// checked against the manifest, its name, version and architecture
/// checked before they become paths, and scanned for any private key of
/// the run's certificates in any encoding. Nothing is written.
fn intake(
    o: &Options,
    manifest: &Manifest,
    digests: &Digests,
    reporter: &Reporter,
) -> Result<Vec<RunPackage>> {
    let needles = package::scan::Needles::of(key_finder(o.out)?);
    let scan = package::scan::KeyScan::new(&needles);
    let artifacts: Vec<(Format, &str, &str)> = manifest
        .artifacts()
        .filter_map(|a| {
            let f = [Format::Deb, Format::Rpm]
                .into_iter()
                .find(|f| f.as_str() == a.format)?;
            Some((f, a.path.as_str(), a.sha256.as_str()))
        })
        .collect();
    if artifacts.is_empty() {
        bail!(
            "{} has no .deb or .rpm packages to publish\n  help: add deb and/or rpm to packages.formats in the config (or pass --formats deb,rpm to gen), and run gen again",
            o.out.display()
        );
    }
    let scanned = Scanned::load(o.out);
    let checked: Vec<(RunPackage, Option<String>)> = artifacts
        .par_iter()
        .map(|&(format, rel, sha256)| {
            let path = inside_out(o.out, rel)?;
            let file = rel.rsplit('/').next().unwrap_or(rel).to_owned();
            check_name("package file name", &file)?;
            let read = || format!("cannot read {}", path.display());
            let mut f = fs::File::open(&path).with_context(read)?;
            let meta = f.metadata().with_context(read)?;
            // Known by identity to be the manifest's package, and scanned
            // before: only its control file or headers are read.
            let known = digests.recorded(&meta).is_some_and(|k| k == sha256);
            let verdict = match scanned.get(sha256).filter(|_| known) {
                Some(v) => v,
                None => {
                    let mut bytes = Vec::with_capacity(meta.len() as usize);
                    f.read_to_end(&mut bytes).with_context(read)?;
                    if !known && crate::fsutil::sha256_hex(&bytes) != sha256 {
                        bail!(
                            "{} is not the package the manifest records (its sha256 differs)\n  help: run `etcdpack verify {}`, then gen again",
                            path.display(),
                            o.out.display()
                        );
                    }
                    let found = scan.find(format, &bytes).with_context(read)?;
                    scanned.put(sha256, found.clone());
                    found
                }
            };
            f.seek(std::io::SeekFrom::Start(0)).with_context(read)?;
            let control = match format {
                Format::Deb => {
                    let head = package::deb::control_prefix(&mut f).with_context(read)?;
                    apt::control_fields(&head, &path.display().to_string())?
                }
                _ => {
                    let head = package::rpm::head_of(&mut f).with_context(read)?;
                    check_name("rpm name", head.get_name().unwrap_or_default())?;
                    check_name("rpm architecture", head.get_arch().unwrap_or("noarch"))?;
                    Vec::new()
                }
            };
            let p = RunPackage {
                format,
                path,
                file,
                sha256: sha256.to_owned(),
                size: meta.len(),
                control,
            };
            Ok((p, verdict.map(|f| format!("{rel} ({f})"))))
        })
        .collect::<Result<_>>()?;
    scanned.save(o.out)?;
    let cleartext: Vec<String> = checked.iter().filter_map(|(_, f)| f.clone()).collect();
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
    Ok(checked.into_iter().map(|(p, _)| p).collect())
}

/// What scanning each package of the run for keys found, by its SHA-256,
/// kept in the private output directory (`OUT/.etcdpack-publish.scanned`):
/// an unchanged republish scans nothing again. The keys looked for are
/// those of the run's certificates; a package with other bytes has another
/// digest.
struct Scanned {
    found: std::sync::Mutex<std::collections::BTreeMap<String, Option<String>>>,
}

impl Scanned {
    const FILE_NAME: &'static str = ".etcdpack-publish.scanned";
    const HEADER: &'static str = "# etcdpack publish: sha256, then `clean` or `key` and where\n";

    fn load(out_dir: &Path) -> Scanned {
        let text = fs::read_to_string(out_dir.join(Self::FILE_NAME)).unwrap_or_default();
        let found = text
            .strip_prefix(Self::HEADER)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (sha, rest) = l.split_once(' ')?;
                let hex = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
                let verdict = match rest.split_once(' ') {
                    None if rest == "clean" => None,
                    Some(("key", at)) => Some(at.to_owned()),
                    _ => return None,
                };
                hex.then(|| (sha.to_owned(), verdict))
            })
            .collect();
        Scanned {
            found: std::sync::Mutex::new(found),
        }
    }

    fn get(&self, sha256: &str) -> Option<Option<String>> {
        self.found
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sha256)
            .cloned()
    }

    fn put(&self, sha256: &str, found: Option<String>) {
        let found = found.map(|f| f.replace('\n', " "));
        self.found
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sha256.to_owned(), found);
    }

    fn save(&self, out_dir: &Path) -> Result<()> {
        let mut text = Self::HEADER.to_owned();
        for (sha, v) in self.found.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            match v {
                None => text.push_str(&format!("{sha} clean\n")),
                Some(at) => text.push_str(&format!("{sha} key {at}\n")),
            }
        }
        crate::fsutil::write_atomic(&out_dir.join(Self::FILE_NAME), text.as_bytes(), 0o600)
    }
}

/// A finder for the key of every certificate of the run (`OUT/pki`, at
/// any depth: the CA, the nodes' and the clients').
fn key_finder(out_dir: &Path) -> Result<KeyFinder> {
    let mut pems = Vec::new();
    let mut stack = vec![out_dir.join(out::PKI)];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let e = e?;
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type()?.is_dir() {
                stack.push(path);
            } else if name.ends_with(".pem") && !name.ends_with("-key.pem") {
                let text = fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                if text.contains("-----BEGIN CERTIFICATE-----") {
                    pems.push(text);
                }
            }
        }
    }
    KeyFinder::for_cert_pems(pems.iter().map(String::as_str)).with_context(|| {
        format!(
            "cannot read the certificates in {}",
            out_dir.join(out::PKI).display()
        )
    })
}

/// `rel`, a path the manifest records, below `out_dir`: plain names only.
fn inside_out(out_dir: &Path, rel: &str) -> Result<PathBuf> {
    let mut p = out_dir.to_path_buf();
    for c in rel.split('/') {
        tree::check_component(c).with_context(|| {
            format!(
                "the manifest of {} records the artifact {rel:?}",
                out_dir.display()
            )
        })?;
        p.push(c);
    }
    Ok(p)
}

/// The files a client drops in: `<label>.sources` for apt (the key
/// embedded) when the run had `.deb` packages, `<label>.repo` for dnf when
/// it had `.rpm` packages (its key a file on the machine), and the public
/// key as `<label>.asc`.
fn client_files(
    o: &Options,
    tree: &RepoTree,
    cluster: &str,
    label: &str,
    has: &dyn Fn(Format) -> bool,
) -> Result<Vec<PathBuf>> {
    let public = o.signer.map(Signer::public_armored).transpose()?;
    let mut files = Vec::new();
    let mut put = |name: String, text: &str| -> Result<()> {
        tree.write(&name, text.as_bytes())?;
        files.push(tree.path(&name)?);
        Ok(())
    };
    if has(Format::Deb) {
        let text = apt::sources_file(cluster, label, o.url, o.suite, public.as_deref());
        put(format!("{label}.sources"), &text)?;
    }
    if has(Format::Rpm) {
        let text = yum::repo_file(cluster, label, o.url, o.suite, public.is_some());
        put(format!("{label}.repo"), &text)?;
    }
    if let Some(key) = &public {
        put(format!("{label}.asc"), key)?;
    }
    Ok(files)
}

/// `data` gzip'd as every package stream is: the same bytes every time.
fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut g = package::gzip(Vec::new());
    g.write_all(data)?;
    Ok(g.finish()?)
}
