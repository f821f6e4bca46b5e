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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;
use time::OffsetDateTime;

use crate::config::{Cluster, Node};
use crate::membership;
use crate::model::{Bootstrap, CertId, Format, Identity, out};
use crate::output::{self, Manifest, NodeInfo};
use crate::pki::{self, CaAction, LeafStep, PkiPlan, SealStep};
use crate::render::{self, Rendered, Templates};
use crate::report::Reporter;
use crate::stage::{self, Content, FileSpec, Material, Part, Planned, Programs, Source};
use crate::{envfile, outdir, package, release};

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
    pub summary: Summary,
    pub warnings: Vec<String>,
    /// The PKI decisions, carried out as they are by [`crate::execute`].
    #[serde(skip)]
    pub pki: PkiPlan,
    #[serde(skip)]
    pub previous: Option<Manifest>,
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
    /// fills in the rest ([`stage::complete`]).
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

/// What a run of `cluster` (its templates loaded, its CA import checked)
/// would do against `out_dir`, at time `now`. Reads `out_dir`, writes
/// nothing. A manifest that cannot be read is an error (see
/// [`Manifest::read`]), as is every PKI state `gen` would refuse.
pub fn build(
    cluster: &Cluster,
    templates: &Templates,
    out_dir: &Path,
    mirror: Option<&str>,
    now: OffsetDateTime,
    renewal: &pki::Renewal,
    reporter: &Reporter,
) -> Result<Plan> {
    let previous = Manifest::read(out_dir)?;
    let declared = outdir::declared(out_dir);
    let pki_dir = out_dir.join(out::PKI);
    let pki = pki::inspect(&pki_dir, cluster, now, renewal, reporter)?;
    let source_date_epoch = match pki.ca_not_before() {
        Some(t) => Some(output::source_date_epoch(t.unix_timestamp().max(0) as u64)?),
        None => None,
    };

    let e = &cluster.etcd;
    let release_change = previous.as_ref().and_then(|m| {
        if m.etcd.version != e.version {
            Some(format!("etcd {} → {}", m.etcd.version, e.version))
        } else if m.etcd.sha256 != e.sha256 {
            Some(format!(
                "release archive sha256 {} → {}",
                short(&m.etcd.sha256),
                short(&e.sha256)
            ))
        } else if m.etcd.arch != e.arch.as_str() {
            Some(format!("arch {} → {}", m.etcd.arch, e.arch.as_str()))
        } else {
            None
        }
    });
    let upgrade = match &previous {
        Some(m) => release::check_upgrade(&m.etcd.version, &e.version)?,
        None => None,
    };
    let release = ReleasePlan {
        upgrade,
        version: e.version.clone(),
        arch: e.arch.as_str().to_owned(),
        url: release::url(e, mirror),
        sha256: e.sha256.clone(),
        file_name: release::file_name(&e.version, e.arch),
        change: release_change.clone(),
    };

    let ca = CaPlan {
        action: pki.ca_action(),
        cert: out::pki(pki::CA_CERT),
        key: out::pki(pki::CA_KEY),
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

    let bootstraps = membership::bootstraps(cluster, previous.as_ref(), out_dir);
    let membership = membership::steps(cluster, previous.as_ref(), &bootstraps);
    let mut nodes = Vec::new();
    for node in &cluster.nodes {
        let run = Run {
            cluster,
            templates,
            out_dir,
            previous: previous.as_ref(),
            pki: &pki,
            release_change: release_change.as_deref(),
            source_date_epoch,
            bootstraps: &bootstraps,
        };
        nodes.push(run.node_plan(node)?);
    }
    let produced: Vec<String> = nodes.iter().flat_map(NodePlan::outputs).collect();
    let removed: Vec<String> = outdir::stale(previous.as_ref(), &declared, &produced)
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
    summary.removed = previous.as_ref().map_or(0, |m| {
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
        summary,
        warnings: cluster.warnings.clone(),
        pki,
        previous,
    })
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

/// What every node's plan is worked out from.
struct Run<'a> {
    cluster: &'a Cluster,
    templates: &'a Templates,
    out_dir: &'a Path,
    previous: Option<&'a Manifest>,
    pki: &'a PkiPlan,
    /// How the release differs from the previous run's, if it does.
    release_change: Option<&'a str>,
    source_date_epoch: Option<u64>,
    bootstraps: &'a BTreeMap<String, Bootstrap>,
}

impl Run<'_> {
    fn node_plan(&self, node: &Node) -> Result<NodePlan> {
        let Run {
            cluster,
            templates,
            out_dir,
            previous,
            pki,
            release_change,
            source_date_epoch,
            bootstraps,
        } = *self;
        let bootstrap = bootstraps
            .get(&node.name)
            .cloned()
            .unwrap_or_else(|| render::new_cluster(cluster));
        let rendered = render::render_node_as(templates, cluster, node, &bootstrap)?;
        let prev: Option<&NodeInfo> = previous.and_then(|m| m.node(&node.name));
        let cert_id = CertId::Node(node.name.clone());
        let tree_dir = out_dir.join(out::tree(&node.name));

        // What the files are made of, as far as it is known before the run.
        let leaf = |pem: fn(&pki::Issued) -> &str| match pki.leaf(&cert_id.id()) {
            Some((_, LeafStep::Reuse(issued))) => Part::Ready(pem(issued)),
            Some((_, LeafStep::Issue { reason })) => {
                Part::Later(format!("certificate issued: {reason}"))
            }
            None => Part::Later("new".into()),
        };
        // It names the certificate's expiry, known for a reused one.
        let maint = match pki.leaf(&cert_id.id()) {
            Some((_, LeafStep::Reuse(issued))) => Some(render::render_maint(
                templates,
                cluster,
                node,
                &issued.cert_pem,
                issued.not_after,
            )?),
            _ => None,
        };
        let material = Material {
            rendered: &rendered,
            programs: match (release_change, prev) {
                (Some(change), _) => Programs::New(change),
                (None, Some(p)) => Programs::Recorded(&p.files),
                (None, None) => Programs::New("new"),
            },
            ca_cert_pem: match pki.ca_cert_pem() {
                Some(pem) => Part::Ready(pem),
                None => Part::Later("new CA".into()),
            },
            cert_pem: leaf(|i| &i.cert_pem),
            key_pem: leaf(|i| &i.key_pem),
            sealed_key: match pki.seal(&cert_id.id()) {
                Some(SealStep::Reuse(armor)) => Part::Ready(armor.as_str()),
                Some(SealStep::Seal { reason }) => {
                    Part::Later(format!("key sealed again: {reason}"))
                }
                None => Part::Later("new".into()),
            },
            maint: match &maint {
                Some(text) => Part::Ready(text.as_str()),
                None => leaf(|i| &i.cert_pem),
            },
        };
        let contents = stage::contents(cluster, &material);

        let mut files = Vec::new();
        for Planned { spec: f, content } in &contents {
            let before = prev.and_then(|p| p.files.get(&f.path));
            let (change, why) = match (content.digest(), before) {
                (_, None) if prev.is_some_and(|p| p.files.is_empty()) => (
                    Change::Changed,
                    vec!["not recorded by the previous run (an older etcdpack)".into()],
                ),
                (_, None) => (Change::Added, Vec::new()),
                (Ok(sha), Some(b)) => {
                    let now = f.record(sha.to_owned());
                    if &now == b {
                        (Change::Unchanged, Vec::new())
                    } else if now.sha256 == b.sha256 {
                        (
                            Change::Changed,
                            vec![format!(
                                "mode/owner {} {:?} → {} {:?}",
                                b.mode, b.owner, now.mode, now.owner
                            )],
                        )
                    } else {
                        (Change::Changed, text_diff(f, content, &tree_dir))
                    }
                }
                (Err(why), Some(_)) => (Change::Changed, vec![why.to_owned()]),
            };
            files.push(FilePlan {
                path: f.path.clone(),
                change,
                why,
            });
        }
        if let Some(p) = prev {
            for path in p.files.keys() {
                if !contents.iter().any(|c| &c.spec.path == path) {
                    files.push(FilePlan {
                        path: path.clone(),
                        change: Change::Removed,
                        why: Vec::new(),
                    });
                }
            }
        }

        let name = cluster.packages.name_for(&cluster.name, &node.name);
        let package_sha256 = package::inputs_digest(templates, cluster, node, &name)?;
        let mut package_changes = Vec::new();
        if let Some(p) = prev {
            if p.package != name {
                package_changes.push(format!("package name {} → {name}", p.package));
            } else if p.package_sha256 != package_sha256 {
                package_changes.push("package metadata or maintainer scripts changed".into());
            }
        }
        let status = match prev {
            None => Change::Added,
            Some(_)
                if package_changes.is_empty()
                    && files.iter().all(|f| f.change == Change::Unchanged) =>
            {
                Change::Unchanged
            }
            Some(_) => Change::Changed,
        };
        let last = previous.and_then(|m| m.last_release(&node.name));
        let release = match (status, last) {
            (Change::Unchanged, Some(r)) => r,
            (_, Some(r)) => r + 1,
            (_, None) => 1,
        };
        let identity = Identity {
            name: name.clone(),
            version: cluster.etcd.version.clone(),
            release,
            arch: cluster.etcd.arch,
        };
        let same_timestamps = source_date_epoch.is_some()
            && previous.map(|m| Some(m.source_date_epoch)) == Some(source_date_epoch);
        let artifacts = cluster
            .packages
            .formats
            .iter()
            .map(|&format| {
                let path = out::artifact(&format.file_name(&identity));
                let exists = out_dir.join(&path).is_file();
                let recorded = prev.is_some_and(|p| p.artifacts.iter().any(|a| a.path == path));
                let action = if !exists {
                    ArtifactAction::Create
                } else if status == Change::Unchanged && recorded && same_timestamps {
                    ArtifactAction::Keep
                } else {
                    ArtifactAction::Replace
                };
                ArtifactPlan {
                    format,
                    path,
                    action,
                }
            })
            .collect();
        Ok(NodePlan {
            name: node.name.clone(),
            ip: node.ip.to_string(),
            package: name,
            status,
            version: identity.full_version(),
            release,
            previous_version: prev.map(|p| p.version.clone()),
            tree: out::tree(&node.name),
            files,
            package_changes,
            artifacts,
            identity,
            rendered,
            bootstrap,
            contents,
            package_sha256,
        })
    }
}

/// Why a rendered file changed, read against the copy in the previous run's
/// node tree: `ETCD_HEARTBEAT_INTERVAL 100 → 150` for `etcd.conf`, the
/// first differing line for the others. Certificates, keys and programs
/// only "changed".
fn text_diff(f: &FileSpec, content: &Content, tree_dir: &Path) -> Vec<String> {
    let (true, Content::Known(blob)) = (f.source.is_rendered(), content) else {
        return vec!["contents changed".into()];
    };
    let Ok(new) = std::str::from_utf8(blob) else {
        return vec!["contents changed".into()];
    };
    let (source, path) = (f.source, f.path.as_str());
    let Ok(old) = std::fs::read_to_string(tree_dir.join(path.trim_start_matches('/'))) else {
        return vec!["contents changed".into()];
    };
    if source == Source::EtcdConf
        && let (Ok(a), Ok(b)) = (envfile::parse(&old), envfile::parse(new))
    {
        let a: BTreeMap<_, _> = a.into_iter().collect();
        let b: BTreeMap<_, _> = b.into_iter().collect();
        let mut why = Vec::new();
        for (k, v) in &b {
            match a.get(k) {
                None => why.push(format!("{k} added: {v}")),
                Some(old) if old != v => why.push(format!("{k} {old} → {v}")),
                Some(_) => {}
            }
        }
        for k in a.keys().filter(|k| !b.contains_key(*k)) {
            why.push(format!("{k} removed"));
        }
        if !why.is_empty() {
            return why;
        }
    }
    let (old_lines, new_lines): (Vec<&str>, Vec<&str>) =
        (old.lines().collect(), new.lines().collect());
    for i in 0..old_lines.len().max(new_lines.len()) {
        let (a, b) = (old_lines.get(i), new_lines.get(i));
        if a != b {
            return vec![format!(
                "line {}: {:?} → {:?}",
                i + 1,
                a.copied().unwrap_or(""),
                b.copied().unwrap_or("")
            )];
        }
    }
    vec!["contents changed".into()]
}

/// The first 12 hex digits of a sha256, for messages.
fn short(hex: &str) -> &str {
    &hex[..hex.len().min(12)]
}

/// The plan as a person reads it, `terraform plan`-like: `+` added, `~`
/// changed, `=` unchanged, `-` removed.
pub fn render_text(plan: &Plan) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let r = &plan.release;
    let _ = writeln!(s, "etcd {} {} from {}", r.version, r.arch, r.url);
    let _ = writeln!(s, "  sha256 {}", r.sha256);
    if let Some(c) = &r.change {
        let _ = writeln!(s, "  changed: {c}");
    }
    if let Some(u) = &r.upgrade {
        let _ = writeln!(s, "  upgrade: {u}");
    }
    let _ = writeln!(
        s,
        "\nCA: {} {}",
        match plan.ca.action {
            CaAction::Create => "create",
            CaAction::Reuse => "reuse",
            CaAction::Import => "import",
        },
        plan.out.join(&plan.ca.cert).display()
    );
    let _ = writeln!(s, "\nCertificates:");
    for c in &plan.certificates {
        match (&c.action, &c.reason) {
            (CertAction::Issue, Some(why)) => {
                let _ = writeln!(s, "  issue  {} ({why})", c.id);
            }
            _ => {
                let _ = writeln!(s, "  reuse  {}", c.id);
            }
        }
        if let Some(seal) = &c.sealed {
            let why = seal
                .reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            let _ = writeln!(s, "    {} its key sealed to {}{why}", seal.action, seal.to);
        }
    }
    let _ = writeln!(s, "\nNodes:");
    for n in &plan.nodes {
        let (mark, what) = match n.status {
            Change::Added => ("+", format!("{} (new)", n.version)),
            Change::Changed => (
                "~",
                format!(
                    "{} → {}",
                    n.previous_version.as_deref().unwrap_or("?"),
                    n.version
                ),
            ),
            _ => ("=", format!("{} (unchanged)", n.version)),
        };
        let _ = writeln!(s, "{mark} {} ({}): {} {what}", n.name, n.ip, n.package);
        if n.status == Change::Changed {
            for f in n.files.iter().filter(|f| f.change != Change::Unchanged) {
                let mark = match f.change {
                    Change::Added => "+",
                    Change::Removed => "-",
                    _ => "~",
                };
                if f.why.is_empty() {
                    let _ = writeln!(s, "    {mark} {}", f.path);
                } else {
                    let _ = writeln!(s, "    {mark} {}: {}", f.path, f.why.join("; "));
                }
            }
            for c in &n.package_changes {
                let _ = writeln!(s, "    ~ {c}");
            }
        }
        for a in &n.artifacts {
            let verb = match a.action {
                ArtifactAction::Create => "create ",
                ArtifactAction::Replace => "replace",
                ArtifactAction::Keep => "keep   ",
            };
            let _ = writeln!(s, "    {verb} {}", plan.out.join(&a.path).display());
        }
    }
    if !plan.removed.is_empty() {
        let _ = writeln!(s, "\nRemoved:");
        for r in &plan.removed {
            let _ = writeln!(s, "  - {}", plan.out.join(r).display());
        }
    }
    if !plan.membership.is_empty() {
        let _ = writeln!(
            s,
            "\nMembership of the running cluster, once the packages are built (run as root, in order):"
        );
        s.push_str(&membership::render_text(&plan.membership));
    }
    let m = &plan.summary;
    let _ = writeln!(
        s,
        "\nPlan (nodes): {} to add, {} to change, {} unchanged, {} to remove.",
        m.added, m.changed, m.unchanged, m.removed
    );
    s
}
