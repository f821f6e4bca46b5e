//! **execute**: carry out a [`Plan`] in `OUT/`. Every path, name, release
//! and certificate decision comes from the plan; this stage only produces
//! the bytes and writes them, and checks as it goes that they are what the
//! plan predicted (a file the plan knew the contents of must come out with
//! those contents, an unchanged node must come out with its recorded
//! digest), so that `plan` can never promise what `gen` does not do.
//!
//! Order: the marker declares every output first; then the CA, each node's
//! leaf, tree and artifacts (the clients' leaves meanwhile), the trust
//! bundle, the removals, one sync of every artifact written, and last
//! `SHA256SUMS` and `manifest.json` (see [`crate::output`]).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

use rayon::prelude::*;

use crate::config::Keys;
use crate::config::{Cluster, Node};
use crate::digests::Digests;
use crate::extract::OnDemand;
use crate::model::{CertId, FileRecord, out, rfc3339};
use crate::output::{
    Artifact, CaInfo, ClientInfo, EtcdInfo, HashingWriter, Manifest, NodeInfo, Retired,
};
use crate::plan::{ArtifactAction, Change, NodePlan, OutputPlan, Plan, Run};
use crate::render::{self, Templates};
use crate::report::Reporter;
use crate::stage::{Content, Material, Part, Programs, Source};
use crate::{fsutil, outdir, package, pki, stage};

/// Carry out `plan`, made for `run`, whose output directory the caller has
/// claimed and locked. Returns the manifest written.
pub fn run(plan: Plan, run: &Run, bins: &OnDemand) -> Result<Manifest> {
    let Run {
        cluster,
        templates,
        out_dir,
        clock,
        reporter,
        ..
    } = *run;
    let previous = run.previous();
    let Plan {
        nodes: node_plans,
        removed,
        pki: pki_plan,
        monitoring,
        ..
    } = plan;
    let outputs: Vec<String> = node_plans.iter().flat_map(|n| n.outputs()).collect();
    // What this run removes stays declared too: among it may be what an
    // interrupted earlier run declared, which no manifest lists.
    let declared: Vec<String> = outputs.iter().chain(&removed).cloned().collect();
    outdir::declare(out_dir, &declared)?;

    // The binaries are compressed, once for every package of every format
    // (see `package::archive`), on a thread of their own and the global
    // rayon pool, while the CA is made and the nodes are built on a pool of
    // their own: a node's packages wait for them (inside `Shared`), its key
    // and tree do not. Not when nothing is built.
    let shared = package::Shared::new();
    let builds = node_plans.iter().any(NodePlan::builds);
    let prepare = || -> Result<()> {
        if builds {
            let b = bins.get()?;
            let md5 = cluster.packages.formats.contains(&package::Format::Deb);
            let mut blobs = vec![&b.etcd, &b.etcdctl];
            blobs.extend(b.etcdutl.as_ref());
            shared.prepare(&blobs, md5);
        }
        Ok(())
    };
    let pki_dir = out_dir.join(out::PKI);
    let unsynced = fsutil::Deferred::new();
    let digests = Digests::load(out_dir);
    let (pki, nodes, mtime) = std::thread::scope(|s| {
        let preparing = s.spawn(prepare);
        let built = (|| {
            // The CA first: it signs every leaf and dates every file. The
            // leaves are issued as nodes and clients need them.
            let issuing = pki::begin(&pki_dir, cluster, pki_plan, reporter)?;
            let mtime = clock.stamp(issuing.ca_not_before().unix_timestamp().max(0) as u64);
            outdir::create_private(&out_dir.join(out::DIST))?;
            outdir::create_private(&out_dir.join(out::NODES))?;
            let links = stage::Links::new();
            let ctx = NodeCtx {
                shared: &shared,
                links: &links,
                digests: &digests,
                unsynced: &unsynced,
                cluster,
                templates,
                bins,
                pki: &issuing,
                previous,
                out_dir,
                mtime,
                reporter,
            };
            let nodes = ctx.build(&node_plans)?;
            // Every leaf is issued by now; this writes the trust bundle.
            Ok::<_, anyhow::Error>((issuing.finish()?, nodes, mtime))
        })();
        let prepared = preparing
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let built = built?;
        prepared?;
        Ok::<_, anyhow::Error>(built)
    })?;
    outdir::remove_stale(out_dir, &removed, &outputs, reporter)?;
    write_monitoring(out_dir, &monitoring, reporter)?;

    // Nodes that leave keep their last release on record.
    let mut retired: Vec<Retired> = previous
        .map(|m| {
            let mut r: Vec<Retired> = m
                .retired
                .iter()
                .filter(|r| !nodes.iter().any(|n| n.name == r.name))
                .cloned()
                .collect();
            for n in &m.nodes {
                if !nodes.iter().any(|k| k.name == n.name) {
                    r.retain(|x| x.name != n.name);
                    r.push(Retired {
                        name: n.name.clone(),
                        release: n.release,
                    });
                }
            }
            r
        })
        .unwrap_or_default();
    retired.sort_by(|a, b| a.name.cmp(&b.name));

    let manifest = Manifest {
        generator: format!("etcdpack {}", env!("CARGO_PKG_VERSION")),
        cluster: cluster.name.clone(),
        source_date_epoch: mtime,
        etcd: EtcdInfo {
            version: cluster.etcd.version.clone(),
            arch: cluster.etcd.arch.as_str().to_owned(),
            sha256: cluster.etcd.sha256.clone(),
        },
        ca: CaInfo {
            cert: out::pki(pki::CA_CERT),
            not_after: rfc3339(pki.ca_not_after),
            rotation: run.renewal.rotation.recorded(),
        },
        nodes,
        clients: cluster
            .clients
            .iter()
            .map(|c| {
                let id = CertId::Client(c.name.clone());
                let not_after = pki
                    .leaf(&id.id())
                    .map(|l| rfc3339(l.not_after))
                    .unwrap_or_default();
                ClientInfo {
                    name: c.name.clone(),
                    cert: out::pki(&id.cert_file()),
                    key: out::pki(&id.key_file()),
                    not_after,
                }
            })
            .collect(),
        retired,
        access: Some(crate::config::access::AccessRecord::of(cluster)),
    };
    // Every artifact is on disk before the manifest names it.
    unsynced.sync()?;
    manifest.write(out_dir)?;
    outdir::finish(out_dir)?;
    // Only an accelerator of the next run: without it, that run reads
    // every file it keeps.
    if let Err(e) = digests.save(out_dir) {
        reporter.warn(format!("{e:#}; the next run reads every file it keeps"));
    }
    Ok(manifest)
}

/// `OUT/monitoring/`: each file the plan says is new or changed, whole.
fn write_monitoring(out_dir: &Path, files: &[OutputPlan], reporter: &Reporter) -> Result<()> {
    outdir::create_private(&out_dir.join(out::MONITORING))?;
    for f in files.iter().filter(|f| f.change != Change::Unchanged) {
        let path = out_dir.join(&f.path);
        fsutil::write_atomic(&path, f.contents.as_bytes(), 0o644)?;
        reporter.status("Wrote", path.display());
    }
    Ok(())
}

/// Workers building nodes at once. Each holds one package's buffers, so
/// this bounds memory however many cores there are.
const MAX_WORKERS: usize = 4;

/// What every node's part of a run shares.
struct NodeCtx<'a> {
    /// Large files compressed once for every node's packages.
    shared: &'a package::Shared,
    /// The binaries of trees written so far, to link rather than copy.
    links: &'a stage::Links,
    /// Digests of files on disk: recorded by the last run, or read once.
    digests: &'a Digests,
    /// Artifacts written, synced to disk together before the manifest.
    unsynced: &'a fsutil::Deferred,
    cluster: &'a Cluster,
    templates: &'a Templates,
    bins: &'a OnDemand<'a>,
    /// Issues each leaf as it is first asked for.
    pki: &'a pki::Issuing<'a>,
    previous: Option<&'a Manifest>,
    out_dir: &'a Path,
    mtime: u64,
    reporter: &'a Reporter,
}

impl NodeCtx<'_> {
    /// Every node as `plans` plan them (in config order in the record),
    /// and meanwhile the clients' certificates.
    ///
    /// Nodes are independent: each one's leaf, tree and packages are built
    /// on a pool of two threads per core (artifacts are written past the
    /// page cache, so a worker waits for the disk while the other
    /// computes; a key is generated while another worker waits), at most
    /// `MAX_WORKERS`. A node's packages wait for the binaries compressed
    /// on the global pool, which this pool leaves alone (see
    /// `Shared::prepare`).
    fn build(&self, plans: &[NodePlan]) -> Result<Vec<NodeInfo>> {
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get() * 2)
            .min(MAX_WORKERS);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .build()
            .context("cannot start the worker threads")?;
        let (nodes, clients) = pool.install(|| {
            rayon::join(
                || {
                    self.cluster
                        .nodes
                        .par_iter()
                        .zip(plans.par_iter())
                        .map(|(node, np)| self.node(node, np))
                        .collect::<Result<Vec<_>>>()
                },
                || {
                    self.cluster.clients.par_iter().try_for_each(|c| {
                        self.pki
                            .leaf(&CertId::Client(c.name.clone()).id())
                            .map(drop)
                    })
                },
            )
        });
        clients?;
        nodes
    }

    /// Build `node`'s tree and artifacts as `np` plans them.
    fn node(&self, node: &Node, np: &NodePlan) -> Result<NodeInfo> {
        let NodeCtx {
            shared,
            links,
            digests,
            unsynced: _,
            cluster,
            templates,
            bins: _,
            pki: _,
            previous,
            out_dir,
            mtime,
            reporter,
        } = *self;
        debug_assert_eq!(node.name, np.name);
        let prev = previous.as_ref().and_then(|m| m.node(&np.name));
        if !np.builds()
            && let Some(p) = prev
            && let Some(kept) = self.kept(np, p)?
        {
            return Ok(kept);
        }
        let tree = self.tree(node, np)?;
        let records = tree.records();
        let digest = tree.digest();
        let tree_dir = out_dir.join(&np.tree);
        tree.write_to(&tree_dir, links)?;
        for (path, r) in &records {
            digests.wrote(
                tree_dir.join(path.trim_start_matches('/')),
                r.sha256.clone(),
            );
        }
        reporter.status("Staged", tree_dir.display());

        let mut spec = package::spec(templates, cluster, node, &tree, np.identity.clone(), mtime)?;
        spec.shared = Some(shared);
        let mut artifacts = Vec::new();
        for a in &np.artifacts {
            let path = out_dir.join(&a.path);
            let recorded = prev.and_then(|p| p.artifacts.iter().find(|r| r.path == a.path));
            if a.action == ArtifactAction::Keep
                && let Some(r) = recorded
                && self.intact(&path, r)
            {
                reporter.detail("Kept", path.display());
                artifacts.push(r.clone());
                continue;
            }
            let mut sum = None;
            let fill = |f: &mut std::fs::File| {
                let mut w = HashingWriter::new(fsutil::DirectWriter::new(f));
                a.format.write(&spec, &mut w)?;
                let (hash, size, inner) = w.finish();
                inner.finish()?;
                sum = Some((hash, size));
                Ok(())
            };
            // The identity recorded is the one the file had when it was
            // renamed into place, from its descriptor: a change made to it
            // later in the run is not taken for what this run wrote.
            let meta = fsutil::write_atomic_deferred_returning(
                &path,
                outdir::ARTIFACT_MODE,
                fill,
                self.unsynced,
            )?;
            let (sha256, size) = sum.expect("set by the writer");
            digests.wrote_file(&meta, sha256.clone());
            reporter.status("Packaged", path.display());
            artifacts.push(Artifact {
                format: a.format.as_str().to_owned(),
                path: a.path.clone(),
                sha256,
                size,
            });
        }
        self.info(np, digest, records, artifacts)
    }

    /// `node`'s tree: the files `np` knew the contents of, and the rest
    /// from the release and the certificates this run made.
    fn tree(&self, node: &Node, np: &NodePlan) -> Result<stage::NodeTree> {
        let cluster = self.cluster;
        let id = CertId::Node(node.name.clone()).id();
        // Issued here, just before the tree that carries it.
        let leaf = self.pki.leaf(&id)?;
        if cluster.packages.keys == Keys::Sealed && leaf.sealed_key.is_none() {
            bail!("internal: the key of {id} was not sealed");
        }
        // etcd-maint names the certificate's expiry: rendered here only
        // when the plan could not (the certificate is new).
        let pending = |source| {
            np.contents
                .iter()
                .any(|p| p.spec.source == source && !matches!(p.content, Content::Known(_)))
        };
        let maint = if pending(Source::Maint) {
            render::render_maint(
                self.templates,
                cluster,
                node,
                &leaf.cert_pem,
                leaf.not_after,
            )?
        } else {
            String::new()
        };
        let material = Material {
            rendered: &np.rendered,
            programs: Programs::Read(self.bins.get()?),
            ca_cert_pem: Part::Ready(self.pki.ca_cert_pem()),
            cert_pem: Part::Ready(&leaf.cert_pem),
            key_pem: Part::Ready(&leaf.key_pem),
            sealed_key: Part::Ready(leaf.sealed_key.as_deref().unwrap_or_default()),
            maint: Part::Ready(&maint),
        };
        stage::complete(cluster, node, &np.contents, &material)
    }

    /// An unchanged node whose tree and artifacts on disk are still what
    /// the previous run recorded: its record, nothing built. `None` when
    /// anything differs (then the node is built as if changed).
    fn kept(&self, np: &NodePlan, prev: &NodeInfo) -> Result<Option<NodeInfo>> {
        if !stage::tree_matches(&self.out_dir.join(&np.tree), &prev.files, self.digests) {
            return Ok(None);
        }
        // Each artifact hashed on a thread of its own (the pool balances
        // them across nodes).
        let artifacts: Option<Vec<Artifact>> = np
            .artifacts
            .par_iter()
            .map(|a| {
                let r = prev.artifacts.iter().find(|r| r.path == a.path)?;
                self.intact(&self.out_dir.join(&a.path), r)
                    .then(|| r.clone())
            })
            .collect();
        let Some(artifacts) = artifacts else {
            return Ok(None);
        };
        for a in &artifacts {
            self.reporter
                .detail("Kept", self.out_dir.join(&a.path).display());
        }
        let info = self.info(
            np,
            prev.content_sha256.clone(),
            prev.files.clone(),
            artifacts,
        )?;
        Ok(Some(info))
    }

    /// Whether the artifact at `path` is the one `recorded`: a regular
    /// file of the same size and sha256 (recorded by the last run, or
    /// streamed, never read into memory).
    fn intact(&self, path: &Path, recorded: &Artifact) -> bool {
        std::fs::symlink_metadata(path).is_ok_and(|m| {
            m.is_file()
                && m.len() == recorded.size
                && self
                    .digests
                    .sha256(path, &m)
                    .is_ok_and(|h| h == recorded.sha256)
        })
    }

    /// The manifest's record of a node built or kept as `np` plans it.
    fn info(
        &self,
        np: &NodePlan,
        content_sha256: String,
        files: BTreeMap<String, FileRecord>,
        artifacts: Vec<Artifact>,
    ) -> Result<NodeInfo> {
        // A kept node's leaf is reused, and looked up (or issued) here.
        let leaf = self.pki.leaf(&CertId::Node(np.name.clone()).id())?;
        Ok(NodeInfo {
            name: np.name.clone(),
            ip: np.ip.clone(),
            package: np.package.clone(),
            version: np.version.clone(),
            release: np.release,
            content_sha256,
            files,
            package_sha256: np.package_sha256.clone(),
            tree: np.tree.clone(),
            cert_not_after: rfc3339(leaf.not_after),
            artifacts,
            bootstrap: Some(np.bootstrap.clone()),
        })
    }
}
