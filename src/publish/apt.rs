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

mod index;
pub use index::{
    COMPONENT, DebEntry, Listed, check_control, control_fields, packages, paragraphs,
    parse_packages, parse_release, pool_path, release, rfc1123,
};

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

/// The apt repository, as a [`Repository`].
pub struct Apt;

/// What the apt half carries from one publish to the next.
pub struct AptState {
    /// The `Date` of the verified `Release`.
    date: Option<u64>,
    /// Per `main/binary-<arch>`, the generation the verified `Release`
    /// names (the digests of its `Packages` and `Packages.gz`).
    generation: BTreeMap<String, String>,
    /// The text of the verified `Release` (of `InRelease` when signed).
    release: Option<String>,
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
                release: None,
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
        current.state.release = Some(release.clone());
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
        let meta = ctx.tree.write_with(
            rel,
            |f| {
                std::io::copy(&mut src, f)?;
                Ok(())
            },
            ctx.later,
        )?;
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
        // The pool is shared by every suite: what another suite's indexes
        // (those under their names and those still reachable by hash) list
        // stays. Read only to keep files, never to list or sign them.
        referenced.extend(other_suites_reference(ctx)?);

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
                // The signatures of the verified Release are kept as they
                // are (the same bytes signing again would give, at less
                // cost); any other is made anew.
                let gpg = format!("{dists}/Release.gpg");
                let same = state.release.as_deref() == Some(release.as_str());
                let kept = same
                    && ctx
                        .tree
                        .read_text(&gpg)?
                        .is_some_and(|a| s.verifies_armored(release.as_bytes(), &a));
                if !kept {
                    let detached = s.detached_armored(release.as_bytes(), date)?;
                    changed |= ctx.tree.write(&gpg, detached.as_bytes())?;
                }
                if !same {
                    let inline = s.clearsign(&release, date)?;
                    changed |= ctx
                        .tree
                        .write(&format!("{dists}/InRelease"), inline.as_bytes())?;
                }
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

/// The pool files the indexes of every other suite name.
fn other_suites_reference(ctx: &Ctx) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for (suite, is_dir) in ctx.tree.list("dists")? {
        if !is_dir || suite == ctx.suite || check_name("suite", &suite).is_err() {
            continue;
        }
        let component = format!("dists/{suite}/{COMPONENT}");
        for (bin, is_dir) in ctx.tree.list(&component)? {
            if !is_dir || check_name("index directory", &bin).is_err() {
                continue;
            }
            let dir = format!("{component}/{bin}");
            let mut texts = Vec::new();
            texts.extend(ctx.tree.read(&format!("{dir}/Packages"))?);
            for (name, is_dir) in ctx.tree.list(&format!("{dir}/by-hash/SHA256"))? {
                if !is_dir && check_name("by-hash file", &name).is_ok() {
                    texts.extend(ctx.tree.read(&format!("{dir}/by-hash/SHA256/{name}"))?);
                }
            }
            for bytes in texts {
                if let Ok(text) = std::str::from_utf8(&bytes)
                    && let Ok(entries) = parse_packages(text, &dir)
                {
                    out.extend(entries.into_iter().map(|e| e.filename));
                }
            }
        }
    }
    Ok(out)
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
