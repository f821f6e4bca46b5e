//! `etcdpack verify`: re-check a finished output directory without trusting
//! the run that wrote it — checksums, certificate chains and expiry, each
//! node's certificate against its name and IP, private-key modes inside the
//! artifacts, and that the CA key is in no artifact and no node tree, in
//! any encoding ([`pki::KeyFinder`]), and the CIS benchmark's etcd items
//! on each node's rendered configuration ([`cis`]).
//!
//! The directory is not trusted either: every path taken from
//! `SHA256SUMS` or `manifest.json` must be a plain relative path inside it,
//! and nothing is read through a symbolic link — a link anywhere under
//! `dist/`, `pki/` or a node tree is reported, never followed.

use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::config::San;
use crate::model::out;
use crate::output::{Manifest, parse_sums};
use crate::package::{self, Format};
use crate::pki;

mod cis;

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

    let mut artifacts = Vec::new();
    for (hash, rel) in &sums {
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
        // Streamed: the artifacts of a large cluster are gigabytes, and
        // each is read again, one at a time, by the checks below.
        match fs::File::open(&path).and_then(crate::fsutil::sha256_reader) {
            Ok(sha) => {
                let ok = sha == *hash;
                r.check(ok, format!("{rel}: sha256 matches"));
                artifacts.push(Artifact {
                    rel: rel.clone(),
                    path,
                    sha256: sha,
                });
            }
            Err(e) => {
                r.check(false, format!("{rel}: readable ({e})"));
            }
        }
    }

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

    // The nodes whose tree holds a sealed key, with their certificates.
    let mut sealed = Vec::new();
    for (node, tree) in &trees {
        let certs = find_files(tree, "server.pem");
        if !r.check(
            certs.len() == 1,
            format!("{}: one server certificate in {}", node.name, node.tree),
        ) {
            continue;
        }
        let leaf = fs::read_to_string(&certs[0])?;
        // During a CA rotation a leaf may be the next CA's.
        let checked = pki::check_leaf(&ca_pem, &leaf, now).or_else(|e| match &next_ca_pem {
            Some(next) => pki::check_leaf(next, &leaf, now),
            None => Err(e),
        });
        match checked {
            Ok(info) => {
                r.check(
                    info.common_name == node.name,
                    format!("{}: certificate CN is the node name", node.name),
                );
                let ip_ok = node
                    .ip
                    .parse()
                    .map(|ip| info.sans.contains(&San::Ip(ip)))
                    .unwrap_or(false);
                r.check(
                    ip_ok,
                    format!("{}: certificate names IP {}", node.name, node.ip),
                );
                r.check(
                    info.sans.contains(&San::Dns(node.name.clone())),
                    format!("{}: certificate names host {}", node.name, node.name),
                );
                r.check(
                    info.server && info.client,
                    format!("{}: certificate allows server and client auth", node.name),
                );
                let days = (info.not_after - now).whole_days();
                r.check(
                    days > 30,
                    format!("{}: certificate valid for {days} more days", node.name),
                );
            }
            Err(e) => {
                r.check(
                    false,
                    format!(
                        "{}: certificate chains to pki/ca.pem (or, in a CA rotation, pki/next-ca.pem) ({e:#})",
                        node.name
                    ),
                );
            }
        }
        let keys = find_files(tree, "server-key.pem");
        if !find_files(tree, "server-key.pem.age").is_empty() {
            r.check(
                keys.is_empty(),
                format!(
                    "{}: its key is sealed, and not also in clear in {}",
                    node.name, node.tree
                ),
            );
            sealed.push((*node, leaf.clone()));
        }
        for k in keys {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&k)?.permissions().mode() & 0o777;
            r.check(
                mode == 0o600,
                format!(
                    "{}: {} has mode 0600 (is {mode:04o})",
                    node.name,
                    rel(dir, &k)
                ),
            );
        }
    }

    // The CA key is found by its public half, in any encoding, so the scan
    // needs only the certificate. The key file, when it is still here, adds
    // a byte search, which also finds its body split across lines or JSON.
    let ca_key = inside(dir, &format!("{}/{}", out::PKI, pki::CA_KEY))
        .ok()
        .and_then(|p| fs::read_to_string(p).ok());
    // And the next CA's key, during a rotation.
    let cas: Vec<&str> = [Some(ca_pem.as_str()), next_ca_pem.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    match pki::KeyFinder::for_cert_pems(cas) {
        Ok(finder) => {
            let scan = |data: &[u8]| find_ca_key(&finder, ca_key.as_deref(), data);
            for a in &artifacts {
                let what = format!("{}: does not contain the CA key", a.rel);
                check_clean(&mut r, a, what, &scan);
            }
            for (node, tree) in &trees {
                let found = walk(tree).files.iter().find_map(|f| {
                    let found = scan(&fs::read(f).ok()?)?;
                    Some(format!("{found} in {}", rel(dir, f)))
                });
                let what = format!("{}: does not contain the CA key", node.tree);
                match found {
                    None => r.check(true, what),
                    Some(found) => r.check(false, format!("{what} (found {found})")),
                };
            }
        }
        Err(e) => {
            r.check(
                false,
                format!(
                    "the CA key can be searched for: pki/ca.pem has no usable public key ({e:#})"
                ),
            );
        }
    }

    // A sealed node's key is in none of its artifacts, in any encoding: it
    // is found by its certificate's public key, as the CA key is.
    for (node, leaf) in &sealed {
        let finder = match pki::KeyFinder::for_cert_pem(leaf) {
            Ok(f) => f,
            Err(e) => {
                let what = format!("{}: its key can be searched for", node.name);
                r.check(false, format!("{what} ({e:#})"));
                continue;
            }
        };
        let scan = |data: &[u8]| finder.find(data).map(|f| f.to_string());
        let own = artifacts
            .iter()
            .filter(|a| node.artifacts.iter().any(|x| x.path == a.rel));
        for a in own {
            let what = format!("{}: holds {}'s key only sealed", a.rel, node.name);
            check_clean(&mut r, a, what, &scan);
        }
    }

    // The CIS benchmark's etcd items, on what each node will run with.
    let cas: Vec<&str> = [Some(ca_pem.as_str()), next_ca_pem.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    for (node, tree) in &trees {
        let own: Vec<&Artifact> = artifacts
            .iter()
            .filter(|a| node.artifacts.iter().any(|x| x.path == a.rel))
            .collect();
        cis::check(&mut r, node, tree, &cas, &own);
    }

    for a in &artifacts {
        let rel = &a.rel;
        let Some(format) = Format::of_file_name(rel) else {
            continue;
        };
        let bytes = match a.read() {
            Ok(b) => b,
            Err(e) => {
                r.check(false, format!("{rel}: readable as {format} ({e:#})"));
                continue;
            }
        };
        match package::read_entries(format, &bytes) {
            Ok(entries) => {
                let bad: Vec<_> = entries
                    .iter()
                    .filter(|e| e.path.ends_with("-key.pem") && e.mode & 0o077 != 0)
                    .map(|e| format!("{} {:04o}", e.path, e.mode))
                    .collect();
                r.check(
                    bad.is_empty(),
                    format!("{rel}: private keys are not readable by others {bad:?}"),
                );
            }
            Err(e) => {
                r.check(false, format!("{rel}: readable as {format} ({e:#})"));
            }
        }
    }
    Ok(r)
}

/// An artifact as its digest was computed (matching the record or not),
/// read again by each check that needs its bytes, so that only one is in
/// memory at a time.
struct Artifact {
    rel: String,
    path: std::path::PathBuf,
    sha256: String,
}

impl Artifact {
    /// Its bytes, if they are still the ones whose digest was computed.
    fn read(&self) -> Result<Vec<u8>> {
        let bytes =
            fs::read(&self.path).with_context(|| format!("cannot read {}", self.path.display()))?;
        if crate::fsutil::sha256_hex(&bytes) != self.sha256 {
            bail!("{} changed while verify read it", self.rel);
        }
        Ok(bytes)
    }
}

/// How the CA key is in `data`, if it is: parsed in any encoding, or byte
/// for byte as the key file `ca_key` holds it.
fn find_ca_key(finder: &pki::KeyFinder, ca_key: Option<&str>, data: &[u8]) -> Option<String> {
    if let Some(key) = ca_key
        && pki::contains_key(data, key)
    {
        return Some("as the text of pki/ca-key.pem".to_owned());
    }
    finder.find(data).map(|f| f.to_string())
}

/// The check `what`: `scan` finds nothing in artifact `a`, unpacked.
fn check_clean(r: &mut Report, a: &Artifact, what: String, scan: &dyn Fn(&[u8]) -> Option<String>) {
    let bytes = match a.read() {
        Ok(b) => b,
        Err(e) => {
            r.check(false, format!("{what} ({e:#})"));
            return;
        }
    };
    match unpacked_find(&a.rel, &bytes, scan) {
        Ok(None) => r.check(true, what),
        Ok(Some(found)) => r.check(false, format!("{what} (found {found})")),
        // What cannot be unpacked cannot be shown to be clean.
        Err(e) => r.check(false, format!("{what} (cannot unpack it: {e:#})")),
    };
}

/// `scan` over the artifact's own bytes, then over every stream in it.
fn unpacked_find(
    rel: &str,
    bytes: &[u8],
    scan: &dyn Fn(&[u8]) -> Option<String>,
) -> Result<Option<String>> {
    if let Some(found) = scan(bytes) {
        return Ok(Some(found));
    }
    let Some(format) = Format::of_file_name(rel) else {
        return Ok(None);
    };
    // Every stream, not only the installed entries: a key beside the
    // bundle's installer or in a .deb's control member leaks just the same.
    Ok(package::read_streams(format, bytes)?
        .iter()
        .enumerate()
        .find_map(|(i, s)| Some(format!("{} in stream {}", scan(s)?, i + 1))))
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
