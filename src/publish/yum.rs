//! The dnf/yum repository: each `.rpm` signed in its own signature header,
//! and the `repodata/` dnf reads ([`super::repodata`]), one directory per
//! `$basearch`, the packages beside `repodata/`:
//!
//! ```text
//! rpm/<suite>/<basearch>/Packages/<name>-<version>-<release>.<arch>.rpm
//! rpm/<suite>/<basearch>/repodata/repomd.xml, repomd.xml.asc
//! rpm/<suite>/<basearch>/repodata/<sha256>-{primary,filelists,other}.xml.gz
//! ```
//!
//! - **Built only on what it verified.** What a `$basearch` lists now is
//!   taken from a `repomd.xml` whose `repomd.xml.asc` the signing key
//!   verifies, its `primary.xml.gz` checked against the digest repomd
//!   gives, each listed package against its primary entry.
//! - **One step for readers.** A new `repodata/` is staged beside the old
//!   one, holding the new metadata, the files of the generations still
//!   kept, `repomd.xml` and its signature, and put in place with one
//!   `RENAME_EXCHANGE`: a reader, or a publish killed at any moment, sees
//!   the old pair of `repomd.xml` and `repomd.xml.asc` or the new one.
//! - **Signing streams.** An .rpm is signed by writing a new lead and
//!   signature header in front of its unchanged header and payload, which
//!   are copied through once; the package is never held whole.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};

use anyhow::{Context, Result, bail};
use rpm::PackageMetadata;
use sha2::{Digest, Sha256};

use super::repodata::{self, Data, KINDS, REPODATA, RpmEntry};
use super::repository::{Ctx, Current, HISTORY, Repository, RunPackage, history};
use super::tree::check_name;
use crate::model::Format;
use crate::package;

/// The directory of the yum repositories, beside apt's `dists/` and `pool/`.
pub const TOP: &str = "rpm";
/// Where the packages of one `$basearch` are, relative to its directory.
pub const PACKAGES: &str = "Packages";

/// The yum repository, as a [`Repository`].
pub struct Yum;

/// What a `$basearch` directory carries from one publish to the next.
#[derive(Debug, Default)]
pub struct ArchState {
    /// The verified `repomd.xml` and its signature, as they are.
    repomd: Option<(Vec<u8>, Option<Vec<u8>>)>,
    revision: Option<u64>,
    /// The metadata files the verified `repomd.xml` names, one history line.
    generation: Option<String>,
}

fn arch_dir(ctx: &Ctx, arch: &str) -> String {
    format!("{TOP}/{}/{arch}", ctx.suite)
}

impl Repository for Yum {
    type Entry = RpmEntry;
    type State = BTreeMap<String, ArchState>;
    const FORMAT: Format = Format::Rpm;

    fn current(&self, ctx: &Ctx) -> Result<Current<RpmEntry, Self::State>> {
        let mut current = Current {
            entries: Vec::new(),
            state: BTreeMap::new(),
        };
        for (arch, is_dir) in ctx.tree.list(&format!("{TOP}/{}", ctx.suite))? {
            if !is_dir {
                continue;
            }
            check_name("architecture directory", &arch)?;
            let dir = arch_dir(ctx, &arch);
            let (entries, state) = current_of(ctx, &dir, &arch)?;
            current.entries.extend(entries);
            current.state.insert(arch, state);
        }
        Ok(current)
    }

    fn pool(&self, ctx: &Ctx, p: &RunPackage) -> Result<(RpmEntry, bool)> {
        let mut src =
            fs::File::open(&p.path).with_context(|| format!("cannot read {}", p.path.display()))?;
        let head = package::rpm::head_of(&mut src)
            .with_context(|| format!("cannot read {}", p.path.display()))?;
        let arch = head.get_arch().unwrap_or("noarch").to_owned();
        check_name("rpm architecture", &arch)?;
        let header = head.header_bytes().context("cannot read an .rpm header")?;
        let href = format!("{PACKAGES}/{}", p.file);
        let rel = format!("{}/{href}", arch_dir(ctx, &arch));
        let mut replacing = false;
        if let Some(mut existing) = ctx.tree.open_file(&rel)? {
            let meta = existing.metadata()?;
            let old = package::rpm::head_of(&mut existing).ok();
            let same = old
                .as_ref()
                .and_then(|m| m.header_bytes().ok())
                .is_some_and(|h| h == header);
            if !same {
                bail!(
                    "{} already holds another package of the same name and version\n  help: a repository never changes a published package; this happens when an output directory was created again (releases start at 1): publish into a new --repo or --suite, or restore the earlier output directory and gen again",
                    ctx.tree.path(&rel)?.display()
                );
            }
            let old = old.expect("read");
            // Kept when publish wrote or verified these very bytes before
            // (known by their identity), signed as this publish would.
            let ours = ctx.digests.recorded(&meta);
            let signed_right = match ctx.signer {
                Some(s) => old
                    .raw_signatures()
                    .is_ok_and(|sigs| sigs.iter().any(|sig| s.verifies(&header, sig))),
                None => old.raw_signatures().is_ok_and(|s| s.is_empty()),
            };
            if let Some(sha256) = ours.filter(|_| signed_right) {
                let entry = RpmEntry {
                    href,
                    sha256,
                    size: meta.len(),
                    metadata: old,
                };
                return Ok((entry, false));
            }
            replacing = true;
        }
        let (prefix, payload_at) = match ctx.signer {
            Some(s) => {
                let signature = s.detached_packet(&header, ctx.date)?;
                package::rpm::signed_head(&head, signature, s.signs_with_rsa())
                    .with_context(|| format!("cannot sign {}", p.file))?
            }
            None => {
                let at = head.get_package_segment_offsets().payload;
                let mut prefix = vec![0; usize::try_from(at).context("a huge .rpm")?];
                src.seek(SeekFrom::Start(0))?;
                src.read_exact(&mut prefix)?;
                (prefix, at)
            }
        };
        let mut sha = Sha256::new();
        sha.update(&prefix);
        let mut size = prefix.len() as u64;
        src.seek(SeekFrom::Start(payload_at))?;
        let meta = ctx.tree.write_with(
            &rel,
            |f| {
                f.write_all(&prefix)?;
                let mut buf = vec![0; 1 << 20];
                loop {
                    let n = src.read(&mut buf)?;
                    if n == 0 {
                        return Ok(());
                    }
                    sha.update(&buf[..n]);
                    size += n as u64;
                    f.write_all(&buf[..n])?;
                }
            },
            ctx.later,
        )?;
        let sha256 = hex::encode(sha.finalize());
        ctx.digests.wrote_file(&meta, sha256.clone());
        ctx.reporter
            .status(if replacing { "Re-signed" } else { "Pooled" }, &rel);
        let metadata = PackageMetadata::parse(&mut &prefix[..]).context("not an RPM package")?;
        let entry = RpmEntry {
            href,
            sha256,
            size,
            metadata,
        };
        Ok((entry, !replacing))
    }

    fn write_indexes(
        &self,
        ctx: &Ctx,
        mut state: Self::State,
        kept: Vec<RpmEntry>,
    ) -> Result<(bool, BTreeSet<String>)> {
        let mut by_arch: BTreeMap<String, Vec<RpmEntry>> = BTreeMap::new();
        for e in kept {
            by_arch.entry(e.arch().to_owned()).or_default().push(e);
        }
        let mut changed = false;
        let mut referenced = BTreeSet::new();
        for (arch, mut entries) in by_arch {
            entries.sort_by(|a, b| a.href.cmp(&b.href));
            let dir = arch_dir(ctx, &arch);
            let s = state.remove(&arch).unwrap_or_default();
            changed |= write_arch(ctx, &dir, s, &entries, &mut referenced)?;
        }
        Ok((changed, referenced))
    }

    fn pool_dirs(&self, ctx: &Ctx) -> Result<Vec<String>> {
        Ok(ctx
            .tree
            .list(&format!("{TOP}/{}", ctx.suite))?
            .into_iter()
            .filter(|(_, d)| *d)
            .map(|(arch, _)| format!("{}/{PACKAGES}", arch_dir(ctx, &arch)))
            .collect())
    }
}

/// What the `$basearch` directory `dir` lists now, verified.
fn current_of(ctx: &Ctx, dir: &str, arch: &str) -> Result<(Vec<RpmEntry>, ArchState)> {
    let repodata = format!("{dir}/{REPODATA}");
    let shown = |name: &str| {
        ctx.tree
            .root()
            .join(&repodata)
            .join(name)
            .display()
            .to_string()
    };
    let Some(repomd) = ctx.tree.read(&format!("{repodata}/repomd.xml"))? else {
        return Ok((Vec::new(), ArchState::default()));
    };
    let asc = ctx.tree.read(&format!("{repodata}/repomd.xml.asc"))?;
    if let Some(signer) = ctx.signer {
        let good = asc.as_deref().is_some_and(|a| {
            std::str::from_utf8(a).is_ok_and(|a| signer.verifies_armored(&repomd, a))
        });
        if !good {
            bail!(
                "{} is not signed by the signing key {} (repomd.xml.asc is {}): publish builds only on what it can verify, and signs nothing else\n  help: publish with the key that signed it; or, if its packages are to be given up, remove {} and publish again",
                shown("repomd.xml"),
                signer.fingerprint(),
                if asc.is_some() {
                    "not its signature"
                } else {
                    "missing"
                },
                ctx.tree.root().join(dir).display()
            );
        }
    }
    let text = String::from_utf8(repomd.clone())
        .with_context(|| format!("{} is not UTF-8", shown("repomd.xml")))?;
    let (revision, files) = repodata::read_repomd(&text);
    let mut names = Vec::new();
    let mut primary = None;
    for f in &files {
        let name = f
            .href
            .strip_prefix(&format!("{REPODATA}/"))
            .filter(|n| repodata::is_data_file(n))
            .with_context(|| {
                format!(
                    "{} names {:?}, which publish never writes",
                    shown("repomd.xml"),
                    f.href
                )
            })?;
        names.push(name.to_owned());
        if f.kind == "primary" {
            primary = Some((name.to_owned(), f.sha256.clone()));
        }
    }
    let state = ArchState {
        repomd: Some((repomd, asc)),
        revision,
        generation: Some(names.join(" ")),
    };
    let Some((name, sha)) = primary else {
        return Ok((Vec::new(), state));
    };
    let gz = ctx
        .tree
        .read(&format!("{repodata}/{name}"))?
        .unwrap_or_default();
    if crate::fsutil::sha256_hex(&gz) != sha {
        bail!(
            "{} is not the metadata repomd.xml lists (its sha256 differs, or it is missing): publish builds only on what it can verify\n  help: restore the repository from a copy you trust, or remove {} and publish again",
            shown(&name),
            ctx.tree.root().join(dir).display()
        );
    }
    let mut xml = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut xml)
        .with_context(|| format!("cannot decompress {}", shown(&name)))?;
    let mut entries = Vec::new();
    for l in repodata::read_primary(&xml) {
        let file = l
            .href
            .strip_prefix(&format!("{PACKAGES}/"))
            .filter(|f| f.ends_with(".rpm"))
            .with_context(|| {
                format!(
                    "{} lists {:?}, which is not where publish pools",
                    shown(&name),
                    l.href
                )
            })?;
        check_name("file name", file)?;
        let rel = format!("{dir}/{}", l.href);
        let path = ctx.tree.path(&rel)?;
        let Some(mut f) = ctx.tree.open_file(&rel)? else {
            bail!(
                "{} is listed by {} but missing\n  help: restore it from a copy you trust, or remove {} and publish again",
                path.display(),
                shown(&name),
                ctx.tree.root().join(dir).display()
            );
        };
        let meta = f.metadata()?;
        let sha256 = ctx.digests.sha256(&path, &meta)?;
        if meta.len() != l.size || sha256 != l.sha256 {
            bail!(
                "{} is not the package {} lists (its sha256 or size differs): publish never signs metadata over a package it did not verify\n  help: find out who changed it, and restore it from a copy you trust",
                path.display(),
                shown(&name)
            );
        }
        let metadata = package::rpm::head_of(&mut f)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if metadata.get_arch().unwrap_or("noarch") != arch {
            bail!("{} is not a package for {arch}", path.display());
        }
        check_name("rpm name", metadata.get_name().unwrap_or_default())?;
        entries.push(RpmEntry {
            href: l.href,
            sha256,
            size: l.size,
            metadata,
        });
    }
    Ok((entries, state))
}

/// Write the metadata of one `$basearch` directory as one new `repodata/`;
/// whether it changed. Adds the packages its kept generations list to
/// `referenced`.
fn write_arch(
    ctx: &Ctx,
    dir: &str,
    state: ArchState,
    entries: &[RpmEntry],
    referenced: &mut BTreeSet<String>,
) -> Result<bool> {
    let repodata = format!("{dir}/{REPODATA}");
    referenced.extend(entries.iter().map(|e| format!("{dir}/{}", e.href)));
    let texts = repodata::metadata(entries)?;
    let mut data = Vec::new();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (kind, text) in KINDS.iter().zip(&texts) {
        let gz = super::gzip(text.as_bytes())?;
        let d = Data::new(kind, text.as_bytes(), &gz);
        files.push((d.file_name().to_owned(), gz));
        data.push(d);
    }
    let line = data
        .iter()
        .map(|d| d.file_name().to_owned())
        .collect::<Vec<_>>()
        .join(" ");
    // Unchanged metadata keeps its date, so that repomd.xml and its
    // signature come out as they are.
    let date = match state.revision {
        Some(r) if state.generation.as_deref() == Some(line.as_str()) => r,
        _ => ctx.date,
    };
    let repomd = repodata::repomd(date, &data);
    // The verified signature of the same repomd.xml is kept as it is.
    let verified = state
        .repomd
        .as_ref()
        .filter(|(m, _)| *m == repomd.as_bytes())
        .and_then(|(_, a)| a.clone());
    let asc = match (ctx.signer, verified) {
        (Some(_), Some(a)) => Some(a),
        (Some(s), None) => Some(s.detached_armored(repomd.as_bytes(), date)?.into_bytes()),
        (None, _) => None,
    };
    let old_history = ctx
        .tree
        .read_text(&format!("{repodata}/{HISTORY}"))?
        .unwrap_or_default();
    let lines = history(&old_history, &line, state.generation.as_deref());
    let history_text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let unchanged = state
        .repomd
        .as_ref()
        .is_some_and(|(m, a)| *m == repomd.as_bytes() && a.as_deref() == asc.as_deref())
        && old_history == history_text;
    // What the kept generations still list stays in the pool.
    let mut kept_files: Vec<(String, Vec<u8>)> = Vec::new();
    for name in lines.iter().skip(1).flat_map(|l| l.split(' ')) {
        if files.iter().any(|(n, _)| n == name) || !repodata::is_data_file(name) {
            continue;
        }
        if let Some(bytes) = ctx.tree.read(&format!("{repodata}/{name}"))? {
            if name.ends_with("-primary.xml.gz") {
                let mut xml = String::new();
                if flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_string(&mut xml)
                    .is_ok()
                {
                    referenced.extend(
                        repodata::read_primary(&xml)
                            .into_iter()
                            .map(|l| format!("{dir}/{}", l.href)),
                    );
                }
            }
            kept_files.push((name.to_owned(), bytes));
        }
    }
    if unchanged {
        return Ok(false);
    }
    let staged = ctx.tree.stage_dir(&repodata)?;
    let put = |name: &str, bytes: &[u8]| -> Result<()> {
        crate::fsutil::write_atomic(&staged.join(name), bytes, super::tree::PUBLIC)
    };
    for (name, bytes) in files.iter().chain(&kept_files) {
        put(name, bytes)?;
    }
    put(HISTORY, history_text.as_bytes())?;
    put("repomd.xml", repomd.as_bytes())?;
    if let Some(asc) = &asc {
        put("repomd.xml.asc", asc)?;
    }
    ctx.tree.replace_dir(&staged, &repodata)?;
    Ok(true)
}

/// Where a client keeps the repository's public key: dnf reads it from the
/// machine, never from the server it is to check.
pub fn key_path(label: &str) -> String {
    format!("/etc/pki/rpm-gpg/RPM-GPG-KEY-{label}")
}

/// The `.repo` file for dnf and yum: `<url>/rpm/<suite>/$basearch`, the key
/// a file on the machine (shipped beside it, see [`key_path`]).
pub fn repo_file(cluster: &str, label: &str, url: &str, suite: &str, signed: bool) -> String {
    let mut s = format!(
        "# The dnf/yum repository of the etcd cluster {cluster}, published by etcdpack.\n# Install as /etc/yum.repos.d/{label}.repo"
    );
    if signed {
        let _ = write!(s, ", with {label}.asc as {}", key_path(label));
    }
    let _ = writeln!(s, ", then: dnf install {label}-<node>");
    if !signed {
        s.push_str("# UNSIGNED: dnf cannot tell this repository's packages from anyone else's.\n");
    }
    let check = u8::from(signed);
    let _ = write!(
        s,
        "[{label}]\nname=etcd cluster {cluster} ({suite})\nbaseurl={url}/{TOP}/{suite}/$basearch\nenabled=1\ngpgcheck={check}\nrepo_gpgcheck={check}\n"
    );
    if signed {
        let _ = writeln!(s, "gpgkey=file://{}", key_path(label));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repo_file_takes_its_key_from_the_machine_and_an_unsigned_one_says_so() {
        let signed = repo_file("k8s", "etcd-k8s", "http://m.example/etcd", "stable", true);
        assert!(signed.contains("\n[etcd-k8s]\n"), "{signed}");
        assert!(signed.contains("\nbaseurl=http://m.example/etcd/rpm/stable/$basearch\n"));
        assert!(signed.contains("\ngpgcheck=1\nrepo_gpgcheck=1\n"));
        assert!(signed.contains("\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-etcd-k8s\n"));
        assert!(!signed.contains("gpgkey=http"), "{signed}");
        let unsigned = repo_file("k8s", "etcd-k8s", "file:///srv/repo", "stable", false);
        assert!(unsigned.contains("UNSIGNED"), "{unsigned}");
        assert!(unsigned.contains("\ngpgcheck=0\nrepo_gpgcheck=0\n"));
        assert!(!unsigned.contains("gpgkey"));
    }
}
