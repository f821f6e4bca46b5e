//! The apt repository's indexes: `Packages` stanzas from each `.deb`'s own
//! `control` file, and the suite's `Release`, laid out as apt expects:
//!
//! ```text
//! pool/main/<first letter>/<package>/<file>.deb
//! dists/<suite>/Release, Release.gpg, InRelease
//! dists/<suite>/main/binary-<arch>/Packages, Packages.gz
//! dists/<suite>/main/binary-<arch>/by-hash/SHA256/<sha256>
//! ```
//!
//! The indexes are a pure function of the packages and the date: the same
//! inputs give the same bytes. [`Apt`] is the apt repository as a
//! [`Repository`]: what it lists now is taken only from an `InRelease`
//! whose signature the signing key verifies (or, unsigned, from `Release`),
//! each `Packages` checked against the digest `Release` gives and each
//! listed package against its `Packages` stanza.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};

use super::repository::{Ctx, Current, Entry, HISTORY, Repository, RunPackage, history};
use super::tree::check_name;
use super::versions::compare_versions;
use crate::model::Format;

/// The one component etcdpack publishes.
pub const COMPONENT: &str = "main";

/// One package in the pool, as an index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebEntry {
    /// The control fields, in the package's order; a value keeps its
    /// continuation lines (`\n ` …).
    pub control: Vec<(String, String)>,
    /// `pool/…`, relative to the repository.
    pub filename: String,
    pub size: u64,
    pub md5: String,
    pub sha256: String,
}

impl DebEntry {
    pub fn field(&self, name: &str) -> Option<&str> {
        field(&self.control, name)
    }

    pub fn package(&self) -> &str {
        self.field("Package").unwrap_or_default()
    }

    pub fn version(&self) -> &str {
        self.field("Version").unwrap_or_default()
    }

    pub fn architecture(&self) -> &str {
        self.field("Architecture").unwrap_or_default()
    }

    /// Its stanza in `Packages`: the control fields, then where the file is
    /// and its digests, `Description` last (as dpkg-scanpackages writes).
    pub fn stanza(&self) -> String {
        let mut s = String::new();
        let mut description = None;
        for (k, v) in &self.control {
            match k.as_str() {
                "Description" => description = Some(v),
                // Fields of the index, never taken from a package.
                "Filename" | "Size" | "MD5sum" | "SHA1" | "SHA256" | "SHA512" => {}
                _ => s.push_str(&format!("{k}: {v}\n")),
            }
        }
        s.push_str(&format!(
            "Filename: {}\nSize: {}\nMD5sum: {}\nSHA256: {}\n",
            self.filename, self.size, self.md5, self.sha256
        ));
        if let Some(d) = description {
            s.push_str(&format!("Description: {d}\n"));
        }
        s
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The paragraphs of a control file or an index (RFC 822-like: `Field:
/// value`, continuation lines begin with a space or tab, paragraphs are
/// separated by blank lines). `what` names the input in errors.
pub fn paragraphs(text: &str, what: &str) -> Result<Vec<Vec<(String, String)>>> {
    let mut out = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else if line.starts_with([' ', '\t']) {
            let Some((_, v)) = cur.last_mut() else {
                bail!(
                    "{what}, line {}: a continuation line before any field",
                    n + 1
                );
            };
            v.push('\n');
            v.push_str(line);
        } else {
            let Some((k, v)) = line.split_once(':') else {
                bail!(
                    "{what}, line {}: not a `Field: value` line: {line:?}",
                    n + 1
                );
            };
            cur.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// Read back a `Packages` index written by [`packages`].
pub fn parse_packages(text: &str, what: &str) -> Result<Vec<DebEntry>> {
    paragraphs(text, what)?
        .into_iter()
        .map(|p| {
            let get = |k: &str| {
                field(&p, k)
                    .map(str::to_owned)
                    .ok_or_else(|| anyhow::anyhow!("{what}: a stanza has no {k}"))
            };
            Ok(DebEntry {
                filename: get("Filename")?,
                size: get("Size")?
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{what}: a Size is not a number"))?,
                md5: get("MD5sum")?,
                sha256: get("SHA256")?,
                control: p
                    .iter()
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "Filename" | "Size" | "MD5sum" | "SHA256")
                    })
                    .cloned()
                    .collect(),
            })
        })
        .collect()
}

/// The `Packages` index of `entries` (all of one architecture): sorted by
/// package name, then version.
pub fn packages(entries: &[DebEntry]) -> String {
    let mut sorted: Vec<&DebEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| {
        a.package()
            .cmp(b.package())
            .then_with(|| compare_versions(a.version(), b.version()))
    });
    sorted
        .iter()
        .map(|e| e.stanza())
        .collect::<Vec<_>>()
        .join("\n")
}

/// One file a `Release` lists: path relative to `dists/<suite>/`, size,
/// SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// The suite's `Release`. `date` is seconds since the epoch.
pub fn release(
    label: &str,
    suite: &str,
    architectures: &BTreeSet<String>,
    date: u64,
    files: &[Listed],
    signed: bool,
) -> String {
    let archs: Vec<&str> = architectures.iter().map(String::as_str).collect();
    let mut s = format!(
        "Origin: etcdpack\nLabel: {label}\nSuite: {suite}\nCodename: {suite}\nDate: {}\nArchitectures: {}\nComponents: {COMPONENT}\nDescription: {label}, published by etcdpack{}\nAcquire-By-Hash: yes\nSHA256:\n",
        rfc1123(date),
        archs.join(" "),
        if signed { "" } else { " (UNSIGNED)" }
    );
    let width = files
        .iter()
        .map(|f| f.size.to_string().len())
        .max()
        .unwrap_or(0);
    for f in files {
        s.push_str(&format!(" {} {:>width$} {}\n", f.sha256, f.size, f.path));
    }
    s
}

/// `Wed, 02 Dec 2026 06:00:00 UTC`: the date format of `Release` files.
pub fn rfc1123(secs: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs.min(253_402_300_799) as i64)
        .expect("a date before 10000");
    t.format(time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] UTC"
    ))
    .expect("a date formats")
}

/// `pool/main/<first letter>/<package>/<file>`, or `lib?` for `lib…`
/// packages, as Debian lays out its pool.
pub fn pool_path(package: &str, file: &str) -> String {
    let prefix = if package.starts_with("lib") && package.len() > 3 {
        &package[..4]
    } else {
        &package[..1.min(package.len())]
    };
    format!("pool/{COMPONENT}/{prefix}/{package}/{file}")
}

impl Entry for DebEntry {
    fn name(&self) -> &str {
        self.package()
    }

    fn arch(&self) -> &str {
        self.architecture()
    }

    fn key(&self) -> (String, String, String) {
        (
            self.package().to_owned(),
            self.version().to_owned(),
            self.architecture().to_owned(),
        )
    }

    fn cmp_version(&self, other: &Self) -> Ordering {
        compare_versions(self.version(), other.version())
    }
}

/// The `Date` and the files a `Release` lists (its `SHA256:` field).
pub fn parse_release(text: &str, what: &str) -> Result<(Option<u64>, Vec<Listed>)> {
    let mut date = None;
    let mut files = Vec::new();
    let mut in_sha256 = false;
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("Date: ") {
            date = parse_rfc1123(d);
        }
        if line.starts_with([' ', '\t']) {
            if in_sha256 {
                let f: Vec<&str> = line.split_whitespace().collect();
                let [sha256, size, path] = f[..] else {
                    bail!("{what}: a SHA256 line is not `<sha256> <size> <path>`: {line:?}");
                };
                files.push(Listed {
                    path: path.to_owned(),
                    size: size
                        .parse()
                        .with_context(|| format!("{what}: the size {size:?} is not a number"))?,
                    sha256: sha256.to_owned(),
                });
            }
        } else {
            in_sha256 = line.trim_end() == "SHA256:";
        }
    }
    Ok((date, files))
}

fn parse_rfc1123(date: &str) -> Option<u64> {
    let t = time::PrimitiveDateTime::parse(
        date.trim().trim_end_matches(" UTC"),
        time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second]"
        ),
    )
    .ok()?;
    u64::try_from(t.assume_utc().unix_timestamp()).ok()
}

/// Check the fields of a .deb or an index stanza that become paths or
/// index lines: `Package`, `Version`, `Architecture`, each to its grammar
/// (Debian policy §5.6.1, §5.6.12, §5.6.8).
pub fn check_control(fields: &[(String, String)], what: &str) -> Result<()> {
    let get = |k: &str| field(fields, k).with_context(|| format!("{what} has no {k} field"));
    let package = get("Package")?;
    let ok_name = package.len() >= 2
        && package.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && package
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !ok_name {
        check_name("Package", package).with_context(|| what.to_owned())?;
        bail!(
            "{what}: the Package {package:?} is not a Debian package name (lower-case letters, digits, '+', '-', '.')"
        );
    }
    let version = get("Version")?;
    let ok_version = version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~:-".contains(c));
    if !ok_version {
        bail!("{what}: the Version {version:?} is not a Debian version");
    }
    let arch = get("Architecture")?;
    if arch.is_empty()
        || !arch
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        bail!("{what}: the Architecture {arch:?} is not a Debian architecture");
    }
    for (k, v) in fields {
        if k.is_empty() || k.contains(char::is_whitespace) || v.contains("\n\n") {
            bail!("{what}: the field {k:?} cannot be put in an index");
        }
    }
    Ok(())
}

/// The apt repository, as a [`Repository`].
pub struct Apt;

/// What the apt half carries from one publish to the next.
pub struct AptState {
    /// The `Date` of the verified `Release`.
    date: Option<u64>,
    /// Per `main/binary-<arch>`, the generation the verified `Release`
    /// names (the digests of its `Packages` and `Packages.gz`).
    generation: BTreeMap<String, String>,
}

fn dists(ctx: &Ctx) -> String {
    format!("dists/{}", ctx.suite)
}

impl Repository for Apt {
    type Entry = DebEntry;
    type State = AptState;
    const FORMAT: Format = Format::Deb;

    fn current(&self, ctx: &Ctx) -> Result<Current<DebEntry, AptState>> {
        let dists = dists(ctx);
        let shown = |name: &str| {
            ctx.tree
                .root()
                .join(&dists)
                .join(name)
                .display()
                .to_string()
        };
        let mut current = Current {
            entries: Vec::new(),
            state: AptState {
                date: None,
                generation: BTreeMap::new(),
            },
        };
        let release = match ctx.signer {
            Some(signer) => match ctx.tree.read_text(&format!("{dists}/InRelease"))? {
                Some(signed) => signer.verified_cleartext(&signed).with_context(|| {
                    format!(
                        "{} is not signed by the signing key {}: publish builds only on what it can verify, and signs nothing else\n  help: publish with the key that signed this suite; or, if its packages are to be given up, remove {} and publish again (the run's packages are published afresh)",
                        shown("InRelease"),
                        signer.fingerprint(),
                        ctx.tree.root().join(&dists).display()
                    )
                })?,
                None if ctx.tree.read(&format!("{dists}/Release"))?.is_some() => bail!(
                    "{} is there without an InRelease: the suite was published unsigned, and publish signs nothing it cannot verify\n  help: remove {} and publish again with the signing key (the run's packages are published afresh)",
                    shown("Release"),
                    ctx.tree.root().join(&dists).display()
                ),
                None => return Ok(current),
            },
            None => match ctx.tree.read_text(&format!("{dists}/Release"))? {
                Some(text) => text,
                None => return Ok(current),
            },
        };
        let (date, listed) = parse_release(&release, &shown("Release"))?;
        current.state.date = date;
        let mut by_rel: BTreeMap<String, &Listed> = BTreeMap::new();
        for l in &listed {
            by_rel.insert(l.path.clone(), l);
        }
        for l in &listed {
            let Some(rel) = l.path.strip_suffix("/Packages") else {
                continue;
            };
            let Some(arch) = rel.strip_prefix(&format!("{COMPONENT}/binary-")) else {
                bail!(
                    "{}: {} is not an index publish writes",
                    shown("Release"),
                    l.path
                );
            };
            check_name("architecture", arch)?;
            let gz = by_rel
                .get(&format!("{}.gz", l.path))
                .map(|g| g.sha256.clone())
                .unwrap_or_default();
            current.state.generation.insert(
                arch.to_owned(),
                format!("{} {gz}", l.sha256).trim().to_owned(),
            );
            let text = index_listed(ctx, &dists, rel, l)?;
            // Under its name, the index is the signed one, unless a publish
            // was killed after renaming a new one there: anything else is
            // someone else's.
            for (name, sha) in [("Packages", &l.sha256), ("Packages.gz", &gz)] {
                let here = ctx.tree.read(&format!("{dists}/{rel}/{name}"))?;
                let same = here
                    .as_ref()
                    .is_some_and(|b| crate::fsutil::sha256_hex(b) == *sha);
                if !same && !ctx.interrupted {
                    bail!(
                        "{} is not the index the signed Release lists: publish did not write it, and signs nothing it did not verify
  help: find out who changed it; restore the repository from a copy you trust, or remove {} and publish again",
                        ctx.tree.root().join(&dists).join(rel).join(name).display(),
                        ctx.tree.root().join(&dists).display()
                    );
                }
            }
            let what = shown(&l.path);
            for e in parse_packages(&text, &what)? {
                check_control(
                    &e.control,
                    &format!("{what}, the stanza of {}", e.package()),
                )?;
                if e.architecture() != arch && e.architecture() != "all" {
                    bail!("{what} lists {} for {}", e.package(), e.architecture());
                }
                verify_pooled(ctx, &e, &what)?;
                current.entries.push(e);
            }
        }
        Ok(current)
    }

    fn pool(&self, ctx: &Ctx, p: &RunPackage) -> Result<(DebEntry, bool)> {
        let mut entry = DebEntry {
            control: p.control.clone(),
            filename: String::new(),
            size: p.size,
            md5: p.md5.clone(),
            sha256: p.sha256.clone(),
        };
        entry.filename = pool_path(entry.package(), &p.file);
        let rel = &entry.filename;
        if let Some(f) = ctx.tree.open_file(rel)? {
            let meta = f.metadata()?;
            let path = ctx.tree.path(rel)?;
            let sha = ctx.digests.sha256(&path, &meta)?;
            if sha == p.sha256 {
                return Ok((entry, false));
            }
            bail!(
                "{} already holds another package of the same name and version\n  help: a repository never changes a published package; this happens when an output directory was created again (releases start at 1): publish into a new --repo or --suite, or restore the earlier output directory and gen again",
                path.display()
            );
        }
        let mut src = std::fs::File::open(&p.path)
            .with_context(|| format!("cannot read {}", p.path.display()))?;
        let meta = ctx.tree.write_with(rel, |f| {
            std::io::copy(&mut src, f)?;
            Ok(())
        })?;
        ctx.digests.wrote_file(&meta, p.sha256.clone());
        ctx.reporter.status("Pooled", rel);
        Ok((entry, true))
    }

    fn write_indexes(
        &self,
        ctx: &Ctx,
        state: AptState,
        kept: Vec<DebEntry>,
    ) -> Result<(bool, BTreeSet<String>)> {
        let dists = dists(ctx);
        let mut referenced: BTreeSet<String> = kept.iter().map(|e| e.filename.clone()).collect();
        let mut by_arch: BTreeMap<String, Vec<DebEntry>> = BTreeMap::new();
        for e in kept {
            by_arch
                .entry(e.architecture().to_owned())
                .or_default()
                .push(e);
        }
        // The indexes: by-hash first, then under their names.
        let mut listed = Vec::new();
        let mut changed = false;
        for (arch, entries) in &by_arch {
            let rel = format!("{COMPONENT}/binary-{arch}");
            let dir = format!("{dists}/{rel}");
            let text = packages(entries);
            let gz = super::gzip(text.as_bytes())?;
            let by_hash = format!("{dir}/by-hash/SHA256");
            let mut generation = Vec::new();
            for (name, bytes) in [("Packages", text.as_bytes()), ("Packages.gz", &gz[..])] {
                let sha = crate::fsutil::sha256_hex(bytes);
                ctx.tree.write(&format!("{by_hash}/{sha}"), bytes)?;
                generation.push(sha.clone());
                listed.push(Listed {
                    path: format!("{rel}/{name}"),
                    size: bytes.len() as u64,
                    sha256: sha,
                });
            }
            let old = ctx
                .tree
                .read_text(&format!("{by_hash}/{HISTORY}"))?
                .unwrap_or_default();
            let lines = history(
                &old,
                &generation.join(" "),
                state.generation.get(arch).map(String::as_str),
            );
            let text_of_history: String = lines.iter().map(|l| format!("{l}\n")).collect();
            ctx.tree
                .write(&format!("{by_hash}/{HISTORY}"), text_of_history.as_bytes())?;
            let named: BTreeSet<&str> = lines.iter().flat_map(|l| l.split(' ')).collect();
            for (name, _) in ctx.tree.list(&by_hash)? {
                if name.starts_with('.') {
                    continue;
                }
                if !named.contains(name.as_str()) {
                    ctx.tree.remove(&format!("{by_hash}/{name}"))?;
                } else if let Some(bytes) = ctx.tree.read(&format!("{by_hash}/{name}"))?
                    && crate::fsutil::sha256_hex(&bytes) == name
                    && let Ok(text) = std::str::from_utf8(&bytes)
                    && let Ok(entries) = parse_packages(text, &name)
                {
                    // A generation still reachable keeps its packages.
                    referenced.extend(entries.into_iter().map(|e| e.filename));
                }
            }
            for (name, bytes) in [("Packages", text.as_bytes()), ("Packages.gz", &gz[..])] {
                changed |= ctx.tree.write(&format!("{dir}/{name}"), bytes)?;
            }
        }
        listed.sort_by(|a, b| a.path.cmp(&b.path));

        // An unchanged index keeps its date, so that its Release and
        // signatures come out as they are.
        let date = match (changed, state.date) {
            (false, Some(d)) => d,
            _ => ctx.date,
        };
        let archs: BTreeSet<String> = by_arch.keys().cloned().collect();
        let release = release(
            ctx.label,
            ctx.suite,
            &archs,
            date,
            &listed,
            ctx.signer.is_some(),
        );
        changed |= ctx
            .tree
            .write(&format!("{dists}/Release"), release.as_bytes())?;
        match ctx.signer {
            Some(s) => {
                let detached = s.detached_armored(release.as_bytes(), date)?;
                changed |= ctx
                    .tree
                    .write(&format!("{dists}/Release.gpg"), detached.as_bytes())?;
                let inline = s.clearsign(&release, date)?;
                changed |= ctx
                    .tree
                    .write(&format!("{dists}/InRelease"), inline.as_bytes())?;
            }
            None => {
                // A signature of another Release would only make apt refuse.
                for name in ["InRelease", "Release.gpg"] {
                    changed |= ctx.tree.remove(&format!("{dists}/{name}"))?;
                }
            }
        }
        Ok((changed, referenced))
    }

    fn pool_dirs(&self, _ctx: &Ctx) -> Result<Vec<String>> {
        Ok(vec!["pool".to_owned()])
    }
}

/// The text of the index `rel/Packages` that the verified `Release` lists
/// as `l`: its by-hash copy (which a publish killed after writing the new
/// index under its name still has), else the file under its name, either
/// only if its digest and size are the listed ones.
fn index_listed(ctx: &Ctx, dists: &str, rel: &str, l: &Listed) -> Result<String> {
    let shown = ctx.tree.root().join(dists).join(&l.path);
    let candidates = [
        format!("{dists}/{rel}/by-hash/SHA256/{}", l.sha256),
        format!("{dists}/{}", l.path),
    ];
    for c in &candidates {
        let Ok(Some(bytes)) = ctx.tree.read(c) else {
            continue;
        };
        if bytes.len() as u64 == l.size && crate::fsutil::sha256_hex(&bytes) == l.sha256 {
            return String::from_utf8(bytes)
                .with_context(|| format!("{} is not UTF-8", shown.display()));
        }
    }
    bail!(
        "{} is not the index the signed Release lists (its sha256 {} is in neither by-hash/ nor the file): publish builds only on what it can verify\n  help: restore the repository from a copy you trust, or remove {} and publish again",
        shown.display(),
        l.sha256,
        ctx.tree.root().join(dists).display()
    )
}

/// Check that the pool file an index stanza names is the one it describes.
fn verify_pooled(ctx: &Ctx, e: &DebEntry, what: &str) -> Result<()> {
    let parts: Vec<&str> = e.filename.split('/').collect();
    let file = parts.last().copied().unwrap_or_default();
    check_name("file name", file)?;
    if !file.ends_with(".deb") || pool_path(e.package(), file) != e.filename {
        bail!(
            "{what} lists {} at {:?}, which is not where publish pools it",
            e.package(),
            e.filename
        );
    }
    let path = ctx.tree.path(&e.filename)?;
    let Some(f) = ctx.tree.open_file(&e.filename)? else {
        bail!(
            "{} is listed by {what} but missing\n  help: restore it from a copy you trust, or remove the suite's indexes and publish again",
            path.display()
        );
    };
    let meta = f.metadata()?;
    let sha = ctx.digests.sha256(&path, &meta)?;
    if meta.len() != e.size || sha != e.sha256 {
        bail!(
            "{} is not the package {what} lists (its sha256 or size differs): publish never signs an index over a package it did not verify\n  help: find out who changed it, and restore it from a copy you trust",
            path.display()
        );
    }
    Ok(())
}

/// The control fields of the `.deb` in `bytes`.
pub fn control_fields(bytes: &[u8], what: &str) -> Result<Vec<(String, String)>> {
    let control = crate::package::deb::control_of(bytes)
        .with_context(|| format!("cannot read the control file of {what}"))?;
    let fields = paragraphs(&control, &format!("the control file of {what}"))?
        .into_iter()
        .next()
        .with_context(|| format!("the control file of {what} is empty"))?;
    check_control(&fields, &format!("the control file of {what}"))?;
    Ok(fields)
}

/// The deb822 `.sources` file for apt, the public key embedded when signed.
pub fn sources_file(
    cluster: &str,
    label: &str,
    url: &str,
    suite: &str,
    public: Option<&str>,
) -> String {
    let mut sources = format!(
        "# The apt repository of the etcd cluster {cluster}, published by etcdpack.\n# Install as /etc/apt/sources.list.d/{label}.sources, then: apt-get update && apt-get install {label}-<node>\nTypes: deb\nURIs: {url}\nSuites: {suite}\nComponents: {COMPONENT}\n"
    );
    match public {
        Some(key) => {
            sources.push_str("Signed-By:\n");
            for line in key.lines() {
                if line.trim().is_empty() {
                    sources.push_str(" .\n");
                } else {
                    sources.push_str(&format!(" {line}\n"));
                }
            }
        }
        None => sources.push_str(
            "# UNSIGNED: apt cannot tell this repository's packages from anyone else's.\nTrusted: yes\n",
        ),
    }
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(package: &str, version: &str) -> DebEntry {
        DebEntry {
            control: vec![
                ("Package".into(), package.into()),
                ("Version".into(), version.into()),
                ("Architecture".into(), "amd64".into()),
                ("Description".into(), "etcd member\n second line".into()),
            ],
            filename: pool_path(package, &format!("{package}_{version}_amd64.deb")),
            size: 12,
            md5: "0".repeat(32),
            sha256: "1".repeat(64),
        }
    }

    #[test]
    fn an_index_reads_back_and_keeps_the_newest_releases() {
        let all = vec![
            entry("etcd-b", "3.4.16-2"),
            entry("etcd-a", "3.4.16-10"),
            entry("etcd-a", "3.4.16-9"),
            entry("etcd-a", "3.4.16-11"),
        ];
        let text = packages(&all);
        assert!(
            text.starts_with("Package: etcd-a\nVersion: 3.4.16-9\n"),
            "{text}"
        );
        assert!(
            text.contains("Filename: pool/main/e/etcd-a/etcd-a_3.4.16-9_amd64.deb\nSize: 12\n")
        );
        assert!(text.contains("Description: etcd member\n second line\n\nPackage: etcd-a\n"));
        let back = parse_packages(&text, "Packages").unwrap();
        assert_eq!(packages(&back), text);

        let kept = super::super::repository::retain_newest(back, 2);
        let names: Vec<String> = kept
            .iter()
            .map(|e| format!("{} {}", e.package(), e.version()))
            .collect();
        assert_eq!(
            names,
            ["etcd-a 3.4.16-11", "etcd-a 3.4.16-10", "etcd-b 3.4.16-2"]
        );
    }

    #[test]
    fn a_release_lists_every_index_with_its_size() {
        let archs = BTreeSet::from(["amd64".to_owned()]);
        let files = [
            Listed {
                path: "main/binary-amd64/Packages".into(),
                size: 1234,
                sha256: "a".repeat(64),
            },
            Listed {
                path: "main/binary-amd64/Packages.gz".into(),
                size: 56,
                sha256: "b".repeat(64),
            },
        ];
        let r = release("etcd-test", "stable", &archs, 1_796_190_883, &files, true);
        assert!(r.contains("Date: Wed, 02 Dec 2026 05:54:43 UTC\n"), "{r}");
        assert!(r.contains("Acquire-By-Hash: yes\n"));
        assert!(!r.contains("Valid-Until"));
        assert!(r.ends_with(&format!(
            "SHA256:\n {} 1234 main/binary-amd64/Packages\n {}   56 main/binary-amd64/Packages.gz\n",
            "a".repeat(64),
            "b".repeat(64)
        )));
    }

    #[test]
    fn a_bad_line_is_an_error_naming_it() {
        let err = paragraphs("Package: a\nnonsense\n", "control").unwrap_err();
        assert_eq!(
            err.to_string(),
            "control, line 2: not a `Field: value` line: \"nonsense\""
        );
    }
}
