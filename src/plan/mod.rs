//! **plan**: what a `gen` run would do against the current `OUT/`, worked
//! out by reading and never by writing. `etcdpack plan` prints it; `gen`
//! builds the same plan and [`crate::execute`] carries it out, so the two
//! cannot disagree.
//!
//! For every node the plan says whether its package is *added*, *changed*
//! or *unchanged*, which of its files change and why (`etcd.conf:
//! ETCD_HEARTBEAT_INTERVAL 100 → 150`, `server.pem: subject alternative
//! names changed: +DNS:etcd-a`), the release that results (`3.4.16-1 →
//! 3.4.16-2`) and the exact artifact names. It also says which certificates
//! are reused or issued and why, and what will be removed.
//!
//! How a file is known to change before it is written: the previous
//! `manifest.json` records every file of every node (sha256, mode, owner).
//! Rendered files are rendered here; a reused certificate is read from
//! `OUT/pki`; the binaries are the same bytes as last time when the release
//! archive has the same sha256. A certificate that is issued, a CA that is
//! created, or a different release is a change whose contents only `gen`
//! will know.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::clock::Clock;
use crate::config::Cluster;
use crate::config::access::AccessRecord;
use crate::model::{Bootstrap, CertId, Format, Identity, out};
use crate::output::{Manifest, Previous};
use crate::pki::{self, CaAction, LeafStep, PkiPlan, SealStep};
use crate::render::{self, Rendered, Templates};
use crate::report::Reporter;
use crate::stage::Planned;
use crate::{membership, outdir, release};

/// Everything a run will do, in the order it does it.
#[derive(Debug, Serialize)]
pub struct Plan {
    /// The output directory, as given.
    pub out: PathBuf,
    pub release: ReleasePlan,
    pub ca: CaPlan,
    pub certificates: Vec<CertPlan>,
    pub nodes: Vec<NodePlan>,
    /// Outputs of earlier runs that this run removes, relative to `out`.
    pub removed: Vec<String>,
    /// Members to add to or remove from the running cluster, with the
    /// commands that do it (see [`membership`]).
    pub membership: Vec<membership::Step>,
    /// Written last, relative to `out`: the record of the run.
    pub records: Vec<String>,
    /// The timestamp of every archive entry, when it is known before the
    /// run (it is the new CA's notBefore when the CA is created).
    pub source_date_epoch: Option<u64>,
    /// The phase of a CA rotation the run leaves the output in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_rotation: Option<crate::model::Rotation>,
    pub access: AccessPlan,
    /// `monitoring/*`: the cluster's Prometheus files, and how each changes.
    pub monitoring: Vec<OutputPlan>,
    pub summary: Summary,
    pub warnings: Vec<String>,
    /// The PKI decisions, carried out as they are by [`crate::execute`].
    #[serde(skip)]
    pub pki: PkiPlan,
}

/// The access policy the packages carry, and how it differs from the one
/// the previous run built (which each node's etcd-auth.service applies once
/// its package is installed).
#[derive(Debug, Clone, Serialize)]
pub struct AccessPlan {
    /// `auth.enabled`.
    pub enabled: bool,
    /// Whether the previous run recorded its policy (older manifests did
    /// not): without it, `changes` lists the whole policy.
    pub recorded: bool,
    /// One line each, `+`, `~` or `-` (see [`AccessRecord::changes_from`]).
    pub changes: Vec<String>,
}

/// A file of the output directory that is neither a node's nor the PKI's,
/// with its contents, which the plan works out and the run writes.
#[derive(Debug, Clone, Serialize)]
pub struct OutputPlan {
    /// Relative to `out`.
    pub path: String,
    pub change: Change,
    #[serde(skip)]
    pub contents: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReleasePlan {
    pub version: String,
    pub arch: String,
    pub url: String,
    pub sha256: String,
    pub file_name: String,
    /// How it differs from the previous run's release, if it does.
    pub change: Option<String>,
    /// What an upgrade of the release needs, when this is one.
    pub upgrade: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaPlan {
    pub action: CaAction,
    /// `pki/ca.pem`
    pub cert: String,
    pub key: String,
    /// `pki/clients/ca-bundle.pem`: what clients trust (both CAs during a
    /// rotation), and how the run changes it.
    pub bundle: String,
    pub bundle_change: Change,
}

#[derive(Debug, Clone, Serialize)]
pub struct CertPlan {
    pub id: CertId,
    pub action: CertAction,
    /// Why a certificate is issued: `new`, `new CA`, `subject alternative
    /// names changed: +DNS:x`, `expires on …`, `key algorithm is not …`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `pki/nodes/etcd-1.pem`
    pub cert: String,
    pub key: String,
    /// With `packages.keys: sealed`: the key sealed to the node's host key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed: Option<SealPlan>,
}

/// A node's key sealed to its SSH host key.
#[derive(Debug, Clone, Serialize)]
pub struct SealPlan {
    /// `pki/nodes/etcd-1-key.sealed`
    pub file: String,
    /// The host key's fingerprint, `SHA256:…`.
    pub to: String,
    /// `reuse` or `seal`.
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CertAction {
    Reuse,
    Issue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Changed,
    Unchanged,
    Removed,
}

#[derive(Debug, Serialize)]
pub struct NodePlan {
    pub name: String,
    pub ip: String,
    pub package: String,
    pub status: Change,
    /// `3.4.16-2`: the package version this run builds.
    pub version: String,
    pub release: u32,
    /// The version the previous run built, if the node had one.
    pub previous_version: Option<String>,
    /// `nodes/etcd-1`
    pub tree: String,
    /// Every file the node gets (and those it no longer gets), with how it changes.
    pub files: Vec<FilePlan>,
    /// Changes to the package besides its files (metadata, scripts).
    pub package_changes: Vec<String>,
    pub artifacts: Vec<ArtifactPlan>,
    #[serde(skip)]
    pub identity: Identity,
    #[serde(skip)]
    pub rendered: Rendered,
    /// How the member comes up the first time, as its etcd.conf says.
    #[serde(skip)]
    pub bootstrap: Bootstrap,
    /// Every file with its contents as far as they are known now; the run
    /// fills in the rest ([`crate::stage::complete`]).
    #[serde(skip)]
    pub contents: Vec<Planned>,
    #[serde(skip)]
    pub package_sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FilePlan {
    /// Absolute path on the node.
    pub path: String,
    pub change: Change,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub why: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactPlan {
    pub format: Format,
    /// `dist/<file>`, relative to `out`.
    pub path: String,
    pub action: ArtifactAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactAction {
    /// A new file.
    Create,
    /// The file exists and is written again.
    Replace,
    /// The file exists, its node is unchanged: it is checked, not rebuilt.
    Keep,
}

/// Counts, as `terraform plan` ends with them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub added: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub removed: usize,
}

/// One run of `plan`, `gen` or `renew`, gathered once: what every stage
/// after loading reads. The previous run's record is read here, once, and
/// an upgrade etcd does not allow is refused here, before anything is
/// downloaded or written.
pub struct Run<'a> {
    /// Loaded, its CA import checked.
    pub cluster: &'a Cluster,
    pub templates: &'a Templates,
    pub out_dir: &'a Path,
    /// Where the release is downloaded from, when not the official site.
    pub mirror: Option<&'a str>,
    pub clock: Clock,
    /// What the run asks of the PKI: renewals, and where a CA rotation
    /// stands (kept from the previous run, or the phase `rotate-ca` asks).
    pub renewal: pki::Renewal,
    pub reporter: &'a Reporter,
    /// The previous finished run's record in `out_dir`.
    pub previous: Previous,
    /// What the upgrade from the previous run's release needs, when this
    /// is one.
    pub upgrade: Option<String>,
}

impl<'a> Run<'a> {
    /// The run of `cluster` into `out_dir`. A manifest that cannot be read
    /// is an error (see [`Manifest::read`]), as is an upgrade etcd does
    /// not allow.
    pub fn new(
        cluster: &'a Cluster,
        templates: &'a Templates,
        out_dir: &'a Path,
        options: RunOptions<'a>,
        reporter: &'a Reporter,
    ) -> Result<Run<'a>> {
        let previous = Previous::read(out_dir)?;
        let upgrade = match previous.manifest() {
            Some(m) => release::check_upgrade(&m.etcd.version, &cluster.etcd.version)?,
            None => None,
        };
        let phase = previous.manifest().and_then(|m| m.ca.rotation);
        let rotation = match options.rotate {
            None => pki::RotationStep::kept(phase),
            Some(_) if cluster.pki.import.is_some() => {
                return Err(OutOfOrder(
                    "rotate-ca creates the next CA itself, and this config imports its CA (pki.ca_cert, pki.ca_key), which would then no longer be the CA in the output directory\n  help: rotate the imported CA where it is managed, or remove pki.ca_cert and pki.ca_key to rotate to a CA of etcdpack's own (the CA already in the output directory is kept until rotate-ca retire)".to_owned(),
                )
                .into());
            }
            Some(step) => step.after(phase).map_err(OutOfOrder)?,
        };
        let renewal = pki::Renewal {
            rotation,
            ..options.renewal.clone()
        };
        Ok(Run {
            cluster,
            templates,
            out_dir,
            mirror: options.mirror,
            clock: options.clock,
            renewal,
            reporter,
            previous,
            upgrade,
        })
    }

    /// The previous finished run's manifest, if there is one.
    pub fn previous(&self) -> Option<&Manifest> {
        self.previous.manifest()
    }
}

/// The command line's part of a [`Run`].
#[derive(Debug, Clone, Copy)]
pub struct RunOptions<'a> {
    pub mirror: Option<&'a str>,
    pub clock: Clock,
    pub renewal: &'a pki::Renewal,
    /// The phase of a CA rotation `rotate-ca` asks for.
    pub rotate: Option<pki::RotationStep>,
}

/// A `rotate-ca` phase asked for out of its order, or for a config whose CA
/// is imported (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OutOfOrder(pub String);

/// What `run` would do. Reads its output directory, writes nothing; every
/// PKI state `gen` would refuse is an error.
pub fn build(run: &Run) -> Result<Plan> {
    let Run {
        cluster,
        out_dir,
        mirror,
        clock,
        reporter,
        ..
    } = *run;
    let renewal = &run.renewal;
    let previous = run.previous();
    let declared = outdir::declared(out_dir);
    let pki_dir = out_dir.join(out::PKI);
    let pki = pki::inspect(&pki_dir, cluster, clock.now(), renewal, reporter)?;
    let source_date_epoch = pki
        .ca_not_before()
        .map(|t| clock.stamp(t.unix_timestamp().max(0) as u64));

    let e = &cluster.etcd;
    let release_change = previous.and_then(|m| {
        if m.etcd.version != e.version {
            Some(format!("etcd {} → {}", m.etcd.version, e.version))
        } else if m.etcd.sha256 != e.sha256 {
            Some(format!(
                "release archive sha256 {} → {}",
                node::short(&m.etcd.sha256),
                node::short(&e.sha256)
            ))
        } else if m.etcd.arch != e.arch.as_str() {
            Some(format!("arch {} → {}", m.etcd.arch, e.arch.as_str()))
        } else {
            None
        }
    });
    let release = ReleasePlan {
        upgrade: run.upgrade.clone(),
        version: e.version.clone(),
        arch: e.arch.as_str().to_owned(),
        url: release::url(e, mirror),
        sha256: e.sha256.clone(),
        file_name: release::file_name(&e.version, e.arch),
        change: release_change.clone(),
    };
    let bundle = pki.trust_bundle();
    let written = std::fs::read_to_string(pki_dir.join(pki::CA_BUNDLE)).ok();
    let ca = CaPlan {
        action: pki.ca_action(),
        cert: out::pki(pki::CA_CERT),
        key: out::pki(pki::CA_KEY),
        bundle: out::pki(pki::CA_BUNDLE),
        bundle_change: match (&written, &bundle) {
            (None, _) => Change::Added,
            (Some(w), Some(b)) if w == b => Change::Unchanged,
            _ => Change::Changed,
        },
    };
    let certificates = pki
        .leaves
        .iter()
        .map(|(spec, step)| {
            let id = spec.cert.clone();
            let (action, reason) = match step {
                LeafStep::Reuse(_) => (CertAction::Reuse, None),
                LeafStep::Issue { reason } => (CertAction::Issue, Some(reason.clone())),
            };
            let host = match &id {
                CertId::Node(n) => cluster.node(n).and_then(|n| n.ssh_host_key.as_ref()),
                CertId::Client(_) => None,
            };
            let sealed = pki.seal(&spec.id).zip(host).map(|(step, host)| {
                let (action, reason) = match step {
                    SealStep::Reuse(_) => ("reuse", None),
                    SealStep::Seal { reason } => ("seal", Some(reason.clone())),
                };
                SealPlan {
                    file: out::pki(&id.sealed_key_file()),
                    to: host.fingerprint(),
                    action,
                    reason,
                }
            });
            CertPlan {
                cert: out::pki(&id.cert_file()),
                key: out::pki(&id.key_file()),
                id,
                action,
                reason,
                sealed,
            }
        })
        .collect();

    let bootstraps = membership::bootstraps(cluster, previous, out_dir);
    let membership = membership::steps(cluster, previous, &bootstraps);
    let decided = node::Decided {
        run,
        bundle: bundle.as_deref(),
        pki: &pki,
        release_change: release_change.as_deref(),
        source_date_epoch,
        bootstraps: &bootstraps,
    };
    let nodes = cluster
        .nodes
        .iter()
        .map(|node| decided.node_plan(node))
        .collect::<Result<Vec<_>>>()?;
    let produced: Vec<String> = nodes.iter().flat_map(NodePlan::outputs).collect();
    let removed: Vec<String> = outdir::stale(previous, &declared, &produced)
        .into_iter()
        .filter(|rel| std::fs::symlink_metadata(out_dir.join(rel)).is_ok())
        .collect();
    let mut summary = Summary::default();
    for n in &nodes {
        match n.status {
            Change::Added => summary.added += 1,
            Change::Changed => summary.changed += 1,
            _ => summary.unchanged += 1,
        }
    }
    summary.removed = previous.map_or(0, |m| {
        m.nodes
            .iter()
            .filter(|n| !cluster.nodes.iter().any(|c| c.name == n.name))
            .count()
    });
    Ok(Plan {
        out: out_dir.to_owned(),
        release,
        ca,
        certificates,
        nodes,
        removed,
        membership,
        records: vec![out::SUMS.to_owned(), out::MANIFEST.to_owned()],
        source_date_epoch,
        ca_rotation: renewal.rotation.recorded(),
        access: {
            let now = AccessRecord::of(cluster);
            let before = previous.and_then(|m| m.access.as_ref());
            AccessPlan {
                enabled: now.enabled,
                recorded: before.is_some(),
                changes: now.changes_from(before),
            }
        },
        monitoring: monitoring(cluster, out_dir),
        summary,
        warnings: cluster.warnings.clone(),
        pki,
    })
}

/// The files of `OUT/monitoring/`, each compared with what is there.
fn monitoring(cluster: &Cluster, out_dir: &Path) -> Vec<OutputPlan> {
    let alerts = render::alerts::alerts(cluster);
    render::monitoring::files(cluster, &alerts)
        .into_iter()
        .map(|(name, contents)| {
            let path = out::monitoring(name);
            let change = match std::fs::read_to_string(out_dir.join(&path)) {
                Err(_) => Change::Added,
                Ok(w) if w == contents => Change::Unchanged,
                Ok(_) => Change::Changed,
            };
            OutputPlan {
                path,
                change,
                contents,
            }
        })
        .collect()
}

impl NodePlan {
    /// Whether this node is built (its tree written, an artifact made),
    /// rather than verified and kept.
    pub fn builds(&self) -> bool {
        self.status != Change::Unchanged
            || self
                .artifacts
                .iter()
                .any(|a| a.action != ArtifactAction::Keep)
    }

    /// The outputs this node's part of the run writes, relative to `out`.
    pub fn outputs(&self) -> Vec<String> {
        let mut v = vec![self.tree.clone()];
        v.extend(self.artifacts.iter().map(|a| a.path.clone()));
        v
    }
}

impl Plan {
    /// Every output the run writes or keeps, relative to `out`: what the
    /// `.incomplete` marker declares.
    pub fn outputs(&self) -> Vec<String> {
        self.nodes.iter().flat_map(NodePlan::outputs).collect()
    }

    /// Whether the run builds anything: a node that changes, or an
    /// artifact that is not kept.
    pub fn builds(&self) -> bool {
        self.nodes.iter().any(NodePlan::builds)
    }

    /// The node of this name.
    pub fn node(&self, name: &str) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

mod node;
mod text;

pub use text::{render_text, rotation_text};
