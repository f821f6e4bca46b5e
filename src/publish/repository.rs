//! What the two kinds of repository share: one [`Repository`] trait that
//! [`super::apt::Apt`] and [`super::yum::Yum`] implement, the one pipeline
//! that drives either ([`publish_to`]), which releases stay listed
//! ([`retain_newest`]), the history of each index's last generations
//! ([`history`]) and the pruning of the pool ([`prune`]).
//!
//! The pipeline, for either kind:
//! 1. [`Repository::current`]: what the repository lists now, verified
//!    before anything is written: its signature by the signing key (when
//!    the repository is signed), every index against the digest the signed
//!    file gives, every listed package against its index. Whatever cannot
//!    be verified is an error naming it.
//! 2. [`Repository::pool`]: each package of the run into the pool.
//! 3. The listed releases: the current ones and the run's, the newest
//!    `keep` of each package and architecture.
//! 4. [`Repository::write_indexes`]: new indexes, signed, in an order that
//!    keeps every state a reader can see consistent.
//! 5. [`prune`]: packages that no index still reachable names.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context, Result};
use rayon::prelude::*;

use super::sign::Signer;
use super::tree::RepoTree;
use crate::digests::Digests;
use crate::model::Format;
use crate::report::Reporter;

/// How many publishes' indexes stay reachable (and the packages they list
/// stay in the pool), so that a client that read the previous index still
/// finds everything it names.
pub const GENERATIONS: usize = 3;
/// The record of the last generations, in the directory of their files.
pub const HISTORY: &str = ".etcdpack-generations";

/// One release of a package, as an index lists it.
pub trait Entry: Send {
    fn name(&self) -> &str;
    fn arch(&self) -> &str;
    /// Name, full version and architecture: what makes two the same.
    fn key(&self) -> (String, String, String);
    /// This release against `other` of the same package, in the package
    /// manager's order.
    fn cmp_version(&self, other: &Self) -> Ordering;
}

/// What a publish works with, for either kind.
pub struct Ctx<'a> {
    pub tree: &'a RepoTree,
    pub suite: &'a str,
    /// `etcd-<cluster>`: the repositories' label and the client files' name.
    pub label: &'a str,
    /// `None`: an unsigned repository.
    pub signer: Option<&'a Signer>,
    /// Releases of each package the index keeps.
    pub keep: usize,
    /// The date of changed indexes and of their signatures.
    pub date: u64,
    /// What is known of files' digests by their identity (see `digests`).
    pub digests: &'a Digests,
    pub reporter: &'a Reporter,
    /// The packages written, whose sync is owed before an index names them.
    pub later: &'a crate::fsutil::Deferred,
    /// The last publish into the repository was killed before it finished
    /// (see [`super::tree::RepoTree::interrupted`]): files under their
    /// names may be newer than the signed index that names them.
    pub interrupted: bool,
}

/// A package of the finished run, checked against the manifest and for
/// keys in clear (`super::intake`).
#[derive(Debug)]
pub struct RunPackage {
    pub format: Format,
    pub path: PathBuf,
    /// Its file name, checked to be a plain name.
    pub file: String,
    pub sha256: String,
    pub size: u64,
    /// A .deb's control fields, its name, version and architecture checked.
    pub control: Vec<(String, String)>,
}

/// What a repository lists now, verified.
pub struct Current<E, S> {
    pub entries: Vec<E>,
    /// What else of the current state the kind needs to go on from it.
    pub state: S,
}

/// A kind of repository.
pub trait Repository: Sync {
    type Entry: Entry;
    type State;
    /// The packages of a run it publishes.
    const FORMAT: Format;

    /// What the repository lists now, every part verified; see the module doc.
    fn current(&self, ctx: &Ctx) -> Result<Current<Self::Entry, Self::State>>;

    /// `p` into the pool: its entry, and whether it is new there.
    fn pool(&self, ctx: &Ctx, p: &RunPackage) -> Result<(Self::Entry, bool)>;

    /// The indexes of `kept`, going on from `state`: whether they changed,
    /// and every pool path (relative to the repository) an index still
    /// reachable names.
    fn write_indexes(
        &self,
        ctx: &Ctx,
        state: Self::State,
        kept: Vec<Self::Entry>,
    ) -> Result<(bool, BTreeSet<String>)>;

    /// The directories of the pool, relative to the repository, and the
    /// extension of the packages in them.
    fn pool_dirs(&self, ctx: &Ctx) -> Result<Vec<String>>;
}

/// Publish the run's packages of `R`'s format on top of `current`: the
/// file names new in the pool, and whether the indexes changed.
pub fn publish_to<R: Repository>(
    ctx: &Ctx,
    repo: &R,
    current: Current<R::Entry, R::State>,
    run: &[RunPackage],
) -> Result<(Vec<String>, bool)> {
    let mine: Vec<&RunPackage> = run.iter().filter(|p| p.format == R::FORMAT).collect();
    let pooled: Vec<(R::Entry, bool)> = mine
        .par_iter()
        .map(|p| repo.pool(ctx, p))
        .collect::<Result<_>>()?;
    // Durable before any index names them.
    ctx.later.sync()?;
    let added = mine
        .iter()
        .zip(&pooled)
        .filter(|(_, (_, new))| *new)
        .map(|(p, _)| p.file.clone())
        .collect();
    let mut all = BTreeMap::new();
    for e in current
        .entries
        .into_iter()
        .chain(pooled.into_iter().map(|(e, _)| e))
    {
        all.insert(e.key(), e);
    }
    let kept = retain_newest(all.into_values().collect(), ctx.keep);
    let (changed, referenced) = repo.write_indexes(ctx, current.state, kept)?;
    for dir in repo.pool_dirs(ctx)? {
        prune(ctx, &dir, R::FORMAT.as_str(), &referenced)?;
    }
    Ok((added, changed))
}

/// The newest `keep` releases of each package and architecture, by name.
pub fn retain_newest<E: Entry>(mut entries: Vec<E>, keep: usize) -> Vec<E> {
    entries.sort_by(|a, b| {
        (a.name(), a.arch())
            .cmp(&(b.name(), b.arch()))
            .then_with(|| b.cmp_version(a))
    });
    let mut out: Vec<E> = Vec::new();
    let mut count = 0;
    for e in entries {
        let same = out
            .last()
            .is_some_and(|l| l.name() == e.name() && l.arch() == e.arch());
        count = if same { count + 1 } else { 1 };
        if count <= keep {
            out.push(e);
        }
    }
    out
}

/// The history of an index after a publish: `line` (the files of the new
/// generation) first, then `current` (the generation the verified signed
/// file names: however many publishes were killed before they signed, it
/// stays reachable), then the older lines of `old`, [`GENERATIONS`] in all.
pub fn history(old: &str, line: &str, current: Option<&str>) -> Vec<String> {
    let mut lines: Vec<String> = vec![line.to_owned()];
    let older = current
        .into_iter()
        .chain(old.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty());
    for l in older {
        if lines.len() == GENERATIONS {
            break;
        }
        if !lines.iter().any(|k| k == l) {
            lines.push(l.to_owned());
        }
    }
    lines
}

/// Remove from the directory `dir` (relative to the repository, searched
/// at any depth) every `.ext` package that `referenced` does not name.
pub fn prune(ctx: &Ctx, dir: &str, ext: &str, referenced: &BTreeSet<String>) -> Result<()> {
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for (name, is_dir) in ctx.tree.list(&d)? {
            let rel = format!("{d}/{name}");
            if is_dir {
                stack.push(rel);
            } else if name.ends_with(&format!(".{ext}")) && !referenced.contains(&rel) {
                ctx.tree
                    .remove(&rel)
                    .with_context(|| format!("cannot prune {rel}"))?;
                ctx.reporter.status("Pruned", &rel);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_keeps_the_signed_generation_however_many_runs_were_killed() {
        assert_eq!(history("", "a", None), ["a"]);
        assert_eq!(history("b\nc\nd\n", "a", None), ["a", "b", "c"]);
        // Three killed publishes wrote x, y and z; the signed index is c.
        let old = "z\ny\nx\nc\n";
        assert_eq!(history(old, "a", Some("c")), ["a", "c", "z"]);
        assert_eq!(history("a\nb\n", "a", Some("a")), ["a", "b"]);
    }
}
