//! **membership**: how each node's member comes up, and the steps that
//! change a running cluster's membership.
//!
//! - On the first run every node bootstraps the cluster together
//!   (`ETCD_INITIAL_CLUSTER_STATE=new`, every node in `ETCD_INITIAL_CLUSTER`).
//! - A node the previous run built keeps the bootstrap its package was made
//!   with (as `manifest.json` records it; from its tree's etcd.conf when an
//!   older etcdpack wrote the manifest): adding or removing other
//!   nodes does not touch its etcd.conf, so its package changes only where
//!   it must (the etcdctl profile's endpoints).
//! - A node added later *joins*: `existing`, with the members that stay plus
//!   the nodes joining before it plus itself. It joins as a learner, added
//!   with `etcdctl member add --learner` before its package is installed,
//!   and is promoted once it has caught up. etcd 3.4 allows one learner at a
//!   time, so joiners go one after the other, in config order.
//! - With etcd's auth on, a joining node's user is made first (root, as the
//!   access policy has every node), so that its own certificate works at
//!   once; the members' new packages then apply the whole new policy.
//! - A node removed from the config leaves with `etcdctl member remove`;
//!   added again later, it joins anew from an empty data directory (etcd
//!   refuses to bring back a removed member's data).
//!
//! The steps are printed by `plan` and `gen`: each is a command for an
//! operator (or a pipeline) to run as root, on a member (where the package's
//! etcdctl profile points etcdctl at the cluster) or on the node itself.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::config::Cluster;
use crate::envfile;
use crate::model::{Bootstrap, ClusterState, Layout, out};
use crate::output::Manifest;
use crate::render;

/// One change of membership and the commands that make it.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub node: String,
    /// `join` or `remove`.
    pub action: &'static str,
    /// What the node is, for the reader: why it joins, or that it leaves.
    pub why: String,
    /// Each: where it runs (`a member`, or the node's name) and the command.
    pub commands: Vec<(String, String)>,
}

/// Each node's bootstrap, by name.
pub fn bootstraps(
    cluster: &Cluster,
    previous: Option<&Manifest>,
    out_dir: &Path,
) -> BTreeMap<String, Bootstrap> {
    let staying: Vec<&crate::config::Node> = cluster
        .nodes
        .iter()
        .filter(|n| previous.is_some_and(|m| m.node(&n.name).is_some()))
        .collect();
    let mut out = BTreeMap::new();
    if staying.is_empty() {
        // A new cluster (or one none of whose members stays).
        for n in &cluster.nodes {
            out.insert(n.name.clone(), render::new_cluster(cluster));
        }
        return out;
    }
    let l = Layout::new(&cluster.paths.install_dir);
    let mut members: Vec<String> = staying
        .iter()
        .map(|n| format!("{}={}", n.name, render::peer_url(n)))
        .collect();
    for n in &cluster.nodes {
        let b = match previous.and_then(|m| m.node(&n.name)) {
            Some(info) => info
                .bootstrap
                .clone()
                .or_else(|| in_tree(out_dir, &n.name, &l))
                .unwrap_or_else(|| render::new_cluster(cluster)),
            None => {
                members.push(format!("{}={}", n.name, render::peer_url(n)));
                Bootstrap {
                    initial_cluster: members.join(","),
                    state: ClusterState::Existing,
                }
            }
        };
        out.insert(n.name.clone(), b);
    }
    out
}

/// The bootstrap in the etcd.conf of `node`'s tree from the previous run,
/// for a manifest of an etcdpack that did not record it.
fn in_tree(out_dir: &Path, node: &str, l: &Layout) -> Option<Bootstrap> {
    let conf = out_dir
        .join(out::tree(node))
        .join(l.conf_file.trim_start_matches('/'));
    let vars = envfile::parse(&std::fs::read_to_string(conf).ok()?).ok()?;
    let value = |key: &str| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let state = match value("ETCD_INITIAL_CLUSTER_STATE")?.as_str() {
        "new" => ClusterState::New,
        "existing" => ClusterState::Existing,
        _ => return None,
    };
    Some(Bootstrap {
        initial_cluster: value("ETCD_INITIAL_CLUSTER")?,
        state,
    })
}

/// `etcdctl member list`'s id of the member named `node` (3.4 prints
/// `ID, STATUS, NAME, PEER ADDRS, CLIENT ADDRS, IS LEARNER`).
fn member_id(peer: &str) -> String {
    format!("$(etcdctl member list | awk -F', ' '$4 == \"{peer}\" {{ print $1 }}')")
}

/// The command, run on a member, that adds `name` as a learner at `peer`
/// unless a member with that peer URL is there already. Members are matched
/// by peer URL, not name: one added that has not started yet has no name,
/// so the step run again finds it and stops, instead of adding it forever.
/// Retried: etcd refuses a reconfiguration while its members have not all
/// been connected for a few seconds.
pub fn add_command(name: &str, peer: &str) -> String {
    format!(
        "until etcdctl member list | grep -qF ', {peer}, ' || etcdctl member add {name} --learner --peer-urls={peer}; do sleep 5; done"
    )
}

/// The command, run on a member, that removes the member at `peer`,
/// started or not (see [`add_command`]); nothing once it is gone.
pub fn remove_command(peer: &str) -> String {
    format!(
        "until ! etcdctl member list | grep -qF ', {peer}, ' || etcdctl member remove {}; do sleep 5; done",
        member_id(peer)
    )
}

/// The command, run on a member, that makes `name` a root user of etcd's
/// auth (as the access policy does every node), unless it is one: a
/// joining node's own certificate works as soon as it starts, before the
/// members' new packages apply the new policy. Run again, it does nothing.
pub fn user_command(name: &str) -> String {
    format!(
        "{{ etcdctl user get {name} >/dev/null 2>&1 || etcdctl user add {name} --no-password; }} && etcdctl user grant-role {name} root"
    )
}

/// The command, run on a member, that promotes the learner at `peer`.
pub fn promote_command(peer: &str) -> String {
    format!(
        "until etcdctl member promote {}; do sleep 5; done",
        member_id(peer)
    )
}

/// The membership changes from the previous run to this one: joins first
/// (one at a time, in config order), then removals.
pub fn steps(
    cluster: &Cluster,
    previous: Option<&Manifest>,
    bootstraps: &BTreeMap<String, Bootstrap>,
) -> Vec<Step> {
    let Some(m) = previous else {
        return Vec::new();
    };
    let member = "a member".to_owned();
    let data = &cluster.paths.data_dir;
    let mut steps = Vec::new();
    for n in &cluster.nodes {
        if bootstraps.get(&n.name).map(|b| b.state) != Some(ClusterState::Existing)
            || m.node(&n.name).is_some()
        {
            continue;
        }
        let package = cluster.packages.name_for(&cluster.name, &n.name);
        let peer = render::peer_url(n);
        let returning = m.retired.iter().any(|r| r.name == n.name);
        let mut commands = Vec::new();
        if cluster.auth.enabled {
            commands.push((member.clone(), user_command(&n.name)));
        }
        commands.push((member.clone(), add_command(&n.name, &peer)));
        if returning {
            commands.push((
                n.name.clone(),
                format!(
                    "if [ -d {data} ]; then mv {data} {data}.removed-$(date +%Y%m%d%H%M%S); fi"
                ),
            ));
        }
        commands.push((
            n.name.clone(),
            format!("apt-get install -y {package}   # or: dnf install -y {package}, or its .deb/.rpm/.tar.gz"),
        ));
        commands.push((member.clone(), promote_command(&peer)));
        steps.push(Step {
            node: n.name.clone(),
            action: "join",
            why: if returning {
                "added again after its removal: it joins anew, its old data moved aside".into()
            } else {
                "new since the last run: it joins the running cluster as a learner".into()
            },
            commands,
        });
    }
    for gone in m.nodes.iter().filter(|p| cluster.node(&p.name).is_none()) {
        steps.push(Step {
            node: gone.name.clone(),
            action: "remove",
            why: "no longer in the config".into(),
            commands: vec![
                (member.clone(), remove_command(&gone_peer(gone))),
                (
                    gone.name.clone(),
                    format!(
                        "apt-get remove -y {0}   # or: dnf remove -y {0}",
                        gone.package
                    ),
                ),
            ],
        });
    }
    steps
}

/// The peer URL of a node the previous run recorded.
fn gone_peer(gone: &crate::output::NodeInfo) -> String {
    match gone.ip.parse::<std::net::IpAddr>() {
        Ok(ip) => format!("https://{}:{}", render::url_host(ip), render::PEER_PORT),
        Err(_) => format!("https://{}:{}", gone.ip, render::PEER_PORT),
    }
}

/// The steps as `plan` and `gen` print them.
pub fn render_text(steps: &[Step]) -> String {
    let mut s = String::new();
    for (i, step) in steps.iter().enumerate() {
        s.push_str(&format!(
            "  {}. {} {} ({}):\n",
            i + 1,
            step.action,
            step.node,
            step.why
        ));
        for (on, command) in &step.commands {
            s.push_str(&format!("       on {on}: {command}\n"));
        }
    }
    s
}
