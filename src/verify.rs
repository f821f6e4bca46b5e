//! `etcdpack verify`: re-check a finished output directory without trusting
//! the run that wrote it — checksums, certificate chains and expiry, each
//! node's certificate against its name and IP, private-key modes inside the
//! artifacts, and that the CA key is in no artifact and no node tree, in
//! any encoding ([`pki::KeyFinder`]), and the CIS benchmark's etcd items
//! on each node's rendered configuration ([`cis`]).
//!
//! Each artifact is read once, on every core, and everything about it is
//! checked from that read ([`artifacts`]); the binaries' members, the same
//! in every package, are inflated once for the whole output.
//!
//! The directory is not trusted either: every path taken from
//! `SHA256SUMS` or `manifest.json` must be a plain relative path inside it,
//! and nothing is read through a symbolic link — a link anywhere under
//! `dist/`, `pki/` or a node tree is reported, never followed.

use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::model::out;
use crate::output::{Manifest, parse_sums};
use crate::package::scan::KeyScan;
use crate::pki;
use artifacts::{Artifact, label};

mod artifacts;
mod cis;
mod nodes;

/// `verify` found a problem (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct VerifyFailed(pub String);

#[derive(Debug, Serialize)]
pub struct Check {
    pub what: String,
    pub ok: bool,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub dir: PathBuf,
    /// False when the last `gen` run did not finish.
    pub complete: bool,
    pub checks: Vec<Check>,
}

impl Report {
    fn check(&mut self, ok: bool, what: impl Into<String>) -> bool {
        self.checks.push(Check {
            what: what.into(),
            ok,
        });
        ok
    }

    pub fn ok(&self) -> bool {
        self.complete && self.checks.iter().all(|c| c.ok)
    }

    pub fn into_result(self) -> Result<()> {
        if !self.complete {
            return Err(VerifyFailed(format!(
                "{}: the last gen run did not finish\n  help: run `etcdpack gen` again with the same --out",
                self.dir.display()
            ))
            .into());
        }
        let failed: Vec<_> = self
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.what.as_str())
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(VerifyFailed(format!(
                "{}: {} check(s) failed: {}",
                self.dir.display(),
                failed.len(),
                failed.join("; ")
            ))
            .into())
        }
    }
}

/// The notBefore of a PEM certificate, in seconds since the epoch.
pub fn not_before(cert_pem: &str) -> Result<u64> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("not a PEM certificate: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| anyhow::anyhow!("not an X.509 certificate: {e}"))?;
    Ok(cert.validity().not_before.timestamp().max(0) as u64)
}

pub fn verify(dir: &Path) -> Result<Report> {
    let mut r = Report {
        dir: dir.to_owned(),
        complete: true,
        checks: Vec::new(),
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "{} is not a directory\n  help: give the --out directory of a gen run",
            dir.display()
        );
    }
    if dir.join(out::INCOMPLETE).exists() || !dir.join(out::MANIFEST).exists() {
        r.complete = false;
        r.check(
            false,
            "the last gen run finished (no .incomplete marker, manifest.json present)",
        );
        return Ok(r);
    }
    // Nothing is read through a symbolic link: the records first.
    for name in [out::MANIFEST, out::SUMS, out::PKI, out::DIST, out::NODES] {
        if let Err(why) = inside(dir, name) {
            r.check(
                false,
                format!("{name}: a plain path in the output directory ({why})"),
            );
            return Ok(r);
        }
    }
    let manifest = Manifest::read(dir)?.context("manifest.json vanished")?;
    let sums_text = fs::read_to_string(dir.join(out::SUMS))
        .with_context(|| format!("cannot read {}", dir.join(out::SUMS).display()))?;
    let sums = parse_sums(&sums_text)?;
    r.check(
        sums_text == manifest.sums(),
        "SHA256SUMS lists exactly the artifacts of manifest.json",
    );

    // The artifacts' paths. Each is read once, below, once what to look
    // for in it is known.
    let mut files = Vec::new();
    for (_, rel) in &sums {
        let path = match inside(dir, rel) {
            Ok(path) => path,
            Err(why) => {
                r.check(
                    false,
                    format!("{rel}: a plain path inside the output directory ({why})"),
                );
                continue;
            }
        };
        if let Ok(meta) = fs::symlink_metadata(&path)
            && !meta.is_file()
        {
            r.check(false, format!("{rel}: a regular file"));
            continue;
        }
        files.push((rel.clone(), path));
    }
    let pool = artifacts::pool()?;

    // Every directory verify reads from holds only files and directories.
    let mut trees = Vec::new();
    for node in &manifest.nodes {
        match inside(dir, &node.tree) {
            Ok(tree) => trees.push((node, tree)),
            Err(why) => {
                r.check(
                    false,
                    format!(
                        "{}: tree {} is a plain path inside the output directory ({why})",
                        node.name, node.tree
                    ),
                );
            }
        }
    }
    let listed: Vec<(String, Walk)> = [out::DIST, out::PKI]
        .iter()
        .map(|d| (d.to_string(), dir.join(d)))
        .chain(trees.iter().map(|(n, t)| (n.tree.clone(), t.clone())))
        .map(|(name, path)| (name, walk(&path)))
        .collect();
    for (name, w) in &listed {
        let odd: Vec<String> = w
            .odd
            .iter()
            .map(|(p, what)| format!("{} is {what}", rel(dir, p)))
            .collect();
        r.check(
            odd.is_empty(),
            format!(
                "{name}: holds only files and directories{}",
                if odd.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", odd.join(", "))
                }
            ),
        );
    }

    let now = time::OffsetDateTime::now_utc();
    if let Err(why) = inside(dir, &format!("{}/{}", out::PKI, pki::CA_CERT)) {
        r.check(false, format!("pki/ca.pem: a plain file ({why})"));
        let read = artifacts::read_all(&pool, files, None);
        check_digests(&mut r, &read, &sums);
        return Ok(r);
    }
    let ca_pem = fs::read_to_string(dir.join(out::PKI).join(pki::CA_CERT)).with_context(|| {
        format!(
            "cannot read the CA certificate in {}",
            dir.join(out::PKI).display()
        )
    })?;
    let ca_ok = not_before(&ca_pem).is_ok();
    r.check(ca_ok, "pki/ca.pem is a certificate");
    // The next CA of a rotation under way.
    let next_ca_pem = inside(dir, &format!("{}/{}", out::PKI, pki::NEXT_CA_CERT))
        .ok()
        .and_then(|p| fs::read_to_string(p).ok());
    let cas: Vec<&str> = [Some(ca_pem.as_str()), next_ca_pem.as_deref()]
        .into_iter()
        .flatten()
        .collect();

    let sealed = nodes::check_trees(&mut r, dir, &trees, &ca_pem, next_ca_pem.as_deref(), now)?;

    // The CA key is found by its public half, in any encoding, so the scan
    // needs only the certificate. The key file, when it is still here, adds
    // a byte search, which also finds its body split across lines or JSON.
    // And the next CA's key, during a rotation.
    let ca_key = inside(dir, &format!("{}/{}", out::PKI, pki::CA_KEY))
        .ok()
        .and_then(|p| fs::read_to_string(p).ok());
    let ca_usable = match pki::KeyFinder::for_cert_pems(cas.iter().copied()) {
        Ok(_) => true,
        Err(e) => {
            r.check(
                false,
                format!(
                    "the CA key can be searched for: pki/ca.pem has no usable public key ({e:#})"
                ),
            );
            false
        }
    };
    // A sealed node's key is in none of its artifacts, in any encoding: it
    // is found by its certificate's public key, as the CA key is.
    let mut searched = Vec::new();
    for (node, leaf) in &sealed {
        match pki::KeyFinder::for_cert_pem(leaf) {
            Ok(_) => searched.push((*node, leaf.as_str())),
            Err(e) => {
                let what = format!("{}: its key can be searched for", node.name);
                r.check(false, format!("{what} ({e:#})"));
            }
        }
    }
    let leaves: Vec<&str> = searched.iter().map(|(_, leaf)| *leaf).collect();
    let needles = if ca_usable {
        artifacts::needles(&cas, ca_key.as_deref(), &leaves)?
    } else {
        artifacts::needles(&[], None, &leaves)?
    };
    let scan = KeyScan::new(&needles);
    let read = artifacts::read_all(&pool, files, Some(&scan));
    check_digests(&mut r, &read, &sums);
    let readable: Vec<&Artifact> = read.iter().filter(|a| a.sha256.is_ok()).collect();

    if ca_usable {
        for a in &readable {
            let what = format!("{}: does not contain the CA key", a.rel);
            check_clean(&mut r, a, what, label::CA);
        }
        // The trees' walks, after those of dist/ and pki/.
        let files: Vec<Vec<PathBuf>> = listed[2..].iter().map(|(_, w)| w.files.clone()).collect();
        let found = artifacts::scan_trees(&pool, &files, &scan, &|l| l == label::CA);
        for ((node, _), found) in trees.iter().zip(found) {
            let what = format!("{}: does not contain the CA key", node.tree);
            match found {
                Ok(None) => r.check(true, what),
                Ok(Some((how, file))) => r.check(
                    false,
                    format!("{what} (found {how} in {})", rel(dir, &file)),
                ),
                Err(e) => r.check(false, format!("{what} (cannot read it: {e})")),
            };
        }
    }
    for (i, (node, _)) in searched.iter().enumerate() {
        let own = readable
            .iter()
            .filter(|a| node.artifacts.iter().any(|x| x.path == a.rel));
        for a in own {
            let what = format!("{}: holds {}'s key only sealed", a.rel, node.name);
            check_clean(&mut r, a, what, label::sealed(i));
        }
    }

    // The CIS benchmark's etcd items, on what each node will run with.
    for (node, tree) in &trees {
        let own: Vec<&Artifact> = readable
            .iter()
            .copied()
            .filter(|a| node.artifacts.iter().any(|x| x.path == a.rel))
            .collect();
        cis::check(&mut r, node, tree, &cas, &own);
    }

    for a in &readable {
        let rel = &a.rel;
        let Some(format) = a.format() else {
            continue;
        };
        match &a.read {
            Some(Ok(read)) => {
                let bad: Vec<_> = read
                    .entries
                    .iter()
                    .filter(|e| e.path.ends_with("-key.pem") && e.mode & 0o077 != 0)
                    .map(|e| format!("{} {:04o}", e.path, e.mode))
                    .collect();
                r.check(
                    bad.is_empty(),
                    format!("{rel}: private keys are not readable by others {bad:?}"),
                );
            }
            Some(Err(e)) => {
                r.check(false, format!("{rel}: readable as {format} ({e})"));
            }
            None => {}
        }
    }
    Ok(r)
}

/// Each artifact's digest as read, against the record.
fn check_digests(r: &mut Report, read: &[Artifact], sums: &[(String, String)]) {
    for a in read {
        let rel = &a.rel;
        match &a.sha256 {
            Ok(sha) => {
                let ok = sums.iter().any(|(h, p)| p == rel && h == sha);
                r.check(ok, format!("{rel}: sha256 matches"));
            }
            Err(e) => {
                r.check(false, format!("{rel}: readable ({e})"));
            }
        }
    }
}

/// The check `what`: the label `label` was found nowhere in artifact `a`.
fn check_clean(r: &mut Report, a: &Artifact, what: String, label: usize) {
    match &a.read {
        Some(Ok(read)) => match read.found.iter().find(|(l, _)| *l == label) {
            None => r.check(true, what),
            Some((_, found)) => r.check(false, format!("{what} (found {found})")),
        },
        // What cannot be unpacked cannot be shown to be clean.
        Some(Err(e)) => r.check(false, format!("{what} (cannot unpack it: {e})")),
        None => r.check(false, format!("{what} (it was not read)")),
    };
}

fn rel(base: &Path, p: &Path) -> String {
    p.strip_prefix(base).unwrap_or(p).display().to_string()
}

/// `rel` joined to `dir` if it is a plain relative path there: not absolute,
/// no `.` or `..` component, and no component a symbolic link. Otherwise why not.
fn inside(dir: &Path, rel: &str) -> Result<PathBuf, String> {
    let mut at = dir.to_owned();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(name) => at.push(name),
            Component::RootDir | Component::Prefix(_) => return Err("it is absolute".into()),
            Component::ParentDir => return Err("it has a `..` component".into()),
            Component::CurDir => return Err("it has a `.` component".into()),
        }
        if fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!("{} is a symbolic link", self::rel(dir, &at)));
        }
    }
    if at == dir {
        return Err("it is empty".into());
    }
    Ok(at)
}

/// What [`walk`] found: the regular files, and everything else that is not
/// a directory, with what it is. Nothing is followed.
#[derive(Default)]
struct Walk {
    files: Vec<PathBuf>,
    odd: Vec<(PathBuf, String)>,
}

fn walk(dir: &Path) -> Walk {
    let mut out = Walk::default();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                stack.push(p);
            } else if kind.is_file() {
                out.files.push(p);
            } else if kind.is_symlink() {
                let target = fs::read_link(&p).unwrap_or_default();
                let what = format!("a symbolic link to {}", target.display());
                out.odd.push((p, what));
            } else {
                out.odd.push((p, "not a regular file".into()));
            }
        }
    }
    out.files.sort();
    out.odd.sort();
    out
}

fn find_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    walk(dir)
        .files
        .into_iter()
        .filter(|p| p.file_name().and_then(|n| n.to_str()) == Some(name))
        .collect()
}
