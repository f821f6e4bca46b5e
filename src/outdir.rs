//! The output directory is etcdpack's own: claimed before anything is written
//! into it, private to its owner, and cleaned of nothing but what etcdpack
//! itself wrote there.
//!
//! - **Claimed.** `gen` writes into a directory that is new, empty, holds
//!   only a `pki/` to reuse, or holds the `manifest.json` or `.incomplete`
//!   marker of an earlier run. Any other
//!   non-empty directory is refused unless `--force` is given, because every
//!   guess about a stranger's files (keep them? remove them?) is a way to lose
//!   them or to package them.
//! - **Private.** It holds the CA key and every node's key (each package
//!   holds one, and a node certificate is also a client certificate), so the
//!   directory and every directory etcdpack creates in it are 0700 and every
//!   package 0600, whatever the umask.
//! - **Cleaned by record.** A file is removed only when the previous
//!   `manifest.json` lists it, or when the `.incomplete` marker of an
//!   interrupted run declared it, and this run does not produce it again.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path};

use anyhow::{Context, Result, bail};

use crate::digests;
use crate::fsutil::{self, OutputLock};
use crate::model::out;
use crate::output::Manifest;
use crate::report::Reporter;

/// Mode of the output directory and of every directory etcdpack creates in it.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every package: each one holds its node's private key.
pub const ARTIFACT_MODE: u32 = 0o600;

const MARKER_HEADER: &str = "# an etcdpack gen run is writing this directory, or was interrupted; run it again\n# it declared these outputs (removed by the next run if that run does not produce them):\n";

/// Make `out` etcdpack's directory for this run, or refuse: see the module doc.
pub fn claim(out_dir: &Path, force: bool, reporter: &Reporter) -> Result<()> {
    match fs::symlink_metadata(out_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return create_private(out_dir);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", out_dir.display())),
        Ok(_) if !out_dir.is_dir() => bail!(
            "{} exists and is not a directory\n  help: give --out a new or empty directory",
            out_dir.display()
        ),
        Ok(_) => {}
    }
    let ours = out_dir.join(out::MANIFEST).exists() || out_dir.join(out::INCOMPLETE).exists();
    if !ours {
        let mut foreign = Vec::new();
        for entry in
            fs::read_dir(out_dir).with_context(|| format!("cannot read {}", out_dir.display()))?
        {
            let name = entry?.file_name();
            // `pki/` alone is the state of an earlier run brought along
            // (restored from a backup, or carried to a new directory).
            if name != OutputLock::FILE_NAME
                && name != digests::FILE_NAME
                && name != digests::PUBLISH_FILE_NAME
                && name != out::PKI
            {
                foreign.push(name.to_string_lossy().into_owned());
            }
        }
        foreign.sort();
        if !foreign.is_empty() && !force {
            bail!(
                "{} is not empty ({}{}) and holds no manifest.json of an earlier gen run: it is not an etcdpack output directory\n  help: give --out a new or empty directory, or pass --force to write into this one (nothing etcdpack did not write is ever removed)",
                out_dir.display(),
                foreign
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                if foreign.len() > 3 { ", …" } else { "" }
            );
        }
        if !foreign.is_empty() {
            reporter.warn(format!(
                "{} holds files of its own (--force): they are left as they are",
                out_dir.display()
            ));
        }
    }
    let mode = fs::metadata(out_dir)?.permissions().mode() & 0o777;
    if mode != DIR_MODE {
        fs::set_permissions(out_dir, fs::Permissions::from_mode(DIR_MODE))
            .with_context(|| format!("cannot make {} private (0700)", out_dir.display()))?;
        reporter.detail(
            "Private",
            format!("{} (was {mode:04o}, now 0700)", out_dir.display()),
        );
    }
    Ok(())
}

/// Create `dir` and its missing parents as 0700 (not narrowed by the umask
/// alone: the mode is forced afterwards).
pub fn create_private(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    fsutil::ensure_dir(dir, DIR_MODE)
}

/// What an interrupted earlier run declared in its `.incomplete` marker
/// (nothing if there is none). Reads only.
pub fn declared(out_dir: &Path) -> Vec<String> {
    match fs::read_to_string(out_dir.join(out::INCOMPLETE)) {
        Ok(text) => text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Mark the run as started: record in the marker everything it is about to
/// write or remove, before it touches any of it, so that the next run can
/// clean up after an interrupted one.
pub fn declare(out_dir: &Path, outputs: &[String]) -> Result<()> {
    let mut text = MARKER_HEADER.to_owned();
    for o in outputs {
        text.push_str(o);
        text.push('\n');
    }
    fsutil::write_atomic(&out_dir.join(out::INCOMPLETE), text.as_bytes(), 0o644)
}

/// The run has finished: its manifest is written.
pub fn finish(out_dir: &Path) -> Result<()> {
    fs::remove_file(out_dir.join(out::INCOMPLETE)).context("cannot remove the .incomplete marker")
}

/// What an earlier run wrote (the previous manifest's artifacts and node
/// trees, an interrupted run's declared outputs) that a run producing
/// `produced` does not produce again, sorted. A recorded path that is not
/// `dist/<file>` or `nodes/<name>` is never listed, so an edited manifest
/// cannot aim a removal anywhere else.
pub fn stale(previous: Option<&Manifest>, declared: &[String], produced: &[String]) -> Vec<String> {
    let mut recorded: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
    if let Some(m) = previous {
        for n in &m.nodes {
            recorded.insert(&n.tree);
            recorded.extend(n.artifacts.iter().map(|a| a.path.as_str()));
        }
    }
    let produced: BTreeSet<&str> = produced.iter().map(String::as_str).collect();
    recorded
        .into_iter()
        .filter(|rel| !produced.contains(rel) && recorded_output(rel).is_some())
        .map(str::to_owned)
        .collect()
}

/// Remove `stale` (from [`stale`]), and the temporary files that an
/// interrupted write of any of those or of `produced` left behind. Nothing
/// else is touched.
pub fn remove_stale(
    out_dir: &Path,
    stale: &[String],
    produced: &[String],
    reporter: &Reporter,
) -> Result<()> {
    for rel in stale.iter().chain(produced) {
        let Some((dir, name)) = recorded_output(rel) else {
            continue;
        };
        if stale.contains(rel) {
            remove(&out_dir.join(rel), reporter)?;
        }
        // Leftovers of an interrupted write of this name.
        match dir {
            out::DIST => remove_temp_files(&out_dir.join(out::DIST), name, reporter)?,
            _ => {
                let nodes = out_dir.join(out::NODES);
                remove(&nodes.join(format!(".{name}.staging")), reporter)?;
                remove(&nodes.join(format!("{name}.old")), reporter)?;
            }
        }
    }
    for name in [out::SUMS, out::MANIFEST, out::INCOMPLETE] {
        remove_temp_files(out_dir, name, reporter)?;
    }
    Ok(())
}

/// `dist/<file>` or `nodes/<name>` as (`dist`|`nodes`, name), else None.
fn recorded_output(rel: &str) -> Option<(&'static str, &str)> {
    let mut parts = Path::new(rel).components();
    let dir = match parts.next()? {
        Component::Normal(d) if d == out::DIST => out::DIST,
        Component::Normal(d) if d == out::NODES => out::NODES,
        _ => return None,
    };
    let name = match parts.next()? {
        Component::Normal(n) => n.to_str()?,
        _ => return None,
    };
    if parts.next().is_some() || name.starts_with('.') {
        return None;
    }
    Some((dir, name))
}

/// `fsutil::write_atomic`'s temporary files for `name` in `dir`:
/// `.<name>.<random>.part`.
fn remove_temp_files(dir: &Path, name: &str, reporter: &Reporter) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    let prefix = format!(".{name}.");
    for entry in entries {
        let file = entry?.file_name();
        let file = file.to_string_lossy();
        if file.starts_with(&prefix) && file.ends_with(".part") {
            remove(&dir.join(file.as_ref()), reporter)?;
        }
    }
    Ok(())
}

/// Remove a file, a symlink (never what it points to) or a directory tree.
fn remove(path: &Path, reporter: &Reporter) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
    .with_context(|| format!("cannot remove {}", path.display()))?;
    reporter.detail("Removed", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dist_files_and_node_trees_are_recorded_outputs() {
        assert_eq!(recorded_output("dist/a.deb"), Some((out::DIST, "a.deb")));
        assert_eq!(
            recorded_output("nodes/etcd-1"),
            Some((out::NODES, "etcd-1"))
        );
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "dist/../../x",
            "dist/a/b",
            "nodes",
            "pki/ca-key.pem",
            "dist/.lock",
            "nodes/..",
            "SHA256SUMS",
        ] {
            assert_eq!(recorded_output(bad), None, "{bad}");
        }
    }
}
