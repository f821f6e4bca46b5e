//! One node's part of a plan: its files, what fills each and how each
//! changes, its package's release and artifacts.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::*;
use crate::config::Node;
use crate::envfile;
use crate::output::NodeInfo;
use crate::package;
use crate::render;
use crate::stage::{self, Content, FileSpec, Material, Part, Programs, Source};

/// What every node's plan is worked out from: the run, and what the plan
/// has decided for all of its nodes.
pub(super) struct Decided<'a> {
    pub run: &'a Run<'a>,
    pub pki: &'a PkiPlan,
    /// How the release differs from the previous run's, if it does.
    pub release_change: Option<&'a str>,
    pub source_date_epoch: Option<u64>,
    pub bootstraps: &'a BTreeMap<String, Bootstrap>,
    /// What nodes trust, when it is known before the run.
    pub bundle: Option<&'a str>,
}

impl Decided<'_> {
    pub(super) fn node_plan(&self, node: &Node) -> Result<NodePlan> {
        let Decided {
            run,
            pki,
            release_change,
            source_date_epoch,
            bootstraps,
            bundle: _,
        } = *self;
        let Run {
            cluster,
            templates,
            out_dir,
            ..
        } = *run;
        let previous = run.previous();
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
            ca_cert_pem: match self.bundle {
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
pub(super) fn short(hex: &str) -> &str {
    &hex[..hex.len().min(12)]
}
