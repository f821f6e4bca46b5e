//! Who may do what in etcd: each client's access (`clients[].access`) and
//! the cluster's access policy derived from it, which every node's
//! `etcd-maint auth apply` reconciles the running cluster to.
//!
//! etcd's v3 auth, with client-certificate authentication: a request made
//! with a certificate is made as the user named by its common name. So each
//! client certificate's name is a user; a client limited to key prefixes
//! has a role of its own name holding them; a `root` client, and every
//! node's own certificate (which `etcd-maint` uses for snapshots,
//! defragmentation, alarms, membership and the restart lock, all of which
//! etcd reserves to root), has the `root` role. The `root` user, which etcd
//! requires before auth is enabled, has no password: no certificate
//! etcdpack issues is named root unless a client is.

use serde::{Deserialize, Serialize};

use super::{Client, Cluster};

/// etcd's administrator user and role.
pub const ROOT: &str = "root";

/// What a client may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Every key, and the cluster's administration.
    Root,
    /// Only these key prefixes.
    Prefixes {
        read: Vec<String>,
        readwrite: Vec<String>,
    },
}

/// A permission on a key prefix, as etcd names its types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Perm {
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "readwrite")]
    ReadWrite,
}

impl Perm {
    pub fn as_str(self) -> &'static str {
        match self {
            Perm::Read => "read",
            Perm::ReadWrite => "readwrite",
        }
    }
}

/// One user of the policy and the one role it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyUser {
    pub name: String,
    pub role: String,
}

/// One permission of a role: `perm` on every key starting with `prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub role: String,
    pub perm: Perm,
    pub prefix: String,
}

/// The users, roles and permissions the cluster runs with, whole: what
/// is not in it is removed by `etcd-maint auth apply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// `root` first, then the nodes, then the clients, in config order.
    pub users: Vec<PolicyUser>,
    /// The roles besides `root` (which etcd defines), each a client's.
    pub roles: Vec<String>,
    pub grants: Vec<Grant>,
}

impl Policy {
    /// The policy of `cluster` (whether or not `auth.enabled`).
    pub fn of(cluster: &Cluster) -> Policy {
        let mut users = vec![PolicyUser {
            name: ROOT.to_owned(),
            role: ROOT.to_owned(),
        }];
        let mut add = |name: &str, role: &str| {
            if !users.iter().any(|u| u.name == name) {
                users.push(PolicyUser {
                    name: name.to_owned(),
                    role: role.to_owned(),
                });
            }
        };
        for node in &cluster.nodes {
            add(&node.name, ROOT);
        }
        let mut roles = Vec::new();
        let mut grants = Vec::new();
        for client in &cluster.clients {
            match &client.access {
                Access::Root => add(&client.name, ROOT),
                Access::Prefixes { read, readwrite } => {
                    add(&client.name, &client.name);
                    roles.push(client.name.clone());
                    let perms = readwrite
                        .iter()
                        .map(|p| (Perm::ReadWrite, p))
                        .chain(read.iter().map(|p| (Perm::Read, p)));
                    for (perm, prefix) in perms {
                        // A prefix in both lists is readwrite.
                        if !grants
                            .iter()
                            .any(|g: &Grant| g.role == client.name && &g.prefix == prefix)
                        {
                            grants.push(Grant {
                                role: client.name.clone(),
                                perm,
                                prefix: prefix.clone(),
                            });
                        }
                    }
                }
            }
        }
        Policy {
            users,
            roles,
            grants,
        }
    }

    /// The clients limited to key prefixes.
    pub fn restricted(clients: &[Client]) -> impl Iterator<Item = &Client> {
        clients
            .iter()
            .filter(|c| matches!(c.access, Access::Prefixes { .. }))
    }
}

/// The access a client named `name` gets when the config says none: what
/// the three clients of the example need (kube-apiserver keeps its objects
/// under /registry/ and its compaction marker in `compact_rev_key`; flannel
/// its network under /coreos.com/network/), root for etcdctl. `None` for
/// any other name.
pub fn default_access(name: &str) -> Option<Access> {
    let rw = |p: &[&str]| Access::Prefixes {
        read: Vec::new(),
        readwrite: p.iter().map(|s| s.to_string()).collect(),
    };
    match name {
        "etcdctl" => Some(Access::Root),
        "kube-apiserver" => Some(rw(&["/registry/", "compact_rev_key"])),
        "flannel" => Some(rw(&["/coreos.com/network/"])),
        _ => None,
    }
}

/// Why `prefix` cannot be a key prefix of the policy, if it cannot: it is
/// written into the node's root script and read back from etcdctl's
/// output, so it is kept to a plain alphabet.
pub fn prefix_problem(prefix: &str) -> Option<String> {
    if prefix.is_empty() {
        return Some("is empty".to_owned());
    }
    if prefix.len() > 256 {
        return Some("is longer than 256 characters".to_owned());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/._-:+=@~%".contains(c);
    prefix
        .chars()
        .find(|&c| !allowed(c))
        .map(|c| format!("holds {c:?}"))
}

/// The policy a run built into the packages, as `manifest.json` records
/// it: what the next `plan` compares with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// `auth.enabled`.
    pub enabled: bool,
    #[serde(flatten)]
    pub policy: Policy,
}

impl AccessRecord {
    pub fn of(cluster: &Cluster) -> AccessRecord {
        AccessRecord {
            enabled: cluster.auth.enabled,
            policy: Policy::of(cluster),
        }
    }

    /// What moving from `before` (`None`: no record) to `self` changes,
    /// one line each: `+ user flannel (role flannel)`, `~ role flannel:
    /// /coreos.com/network/ readwrite → read`, `- user old-tool`.
    pub fn changes_from(&self, before: Option<&AccessRecord>) -> Vec<String> {
        let mut out = Vec::new();
        let (was_on, old) = match before {
            Some(b) => (b.enabled, Some(&b.policy)),
            None => (false, None),
        };
        match (was_on, self.enabled) {
            (false, true) => out.push("+ etcd's auth turned on".to_owned()),
            (true, false) => out.push(
                "- etcd's auth no longer kept by etcdpack (etcdctl auth disable turns it off)"
                    .to_owned(),
            ),
            _ => {}
        }
        if !self.enabled {
            return out;
        }
        let empty = Policy {
            users: Vec::new(),
            roles: Vec::new(),
            grants: Vec::new(),
        };
        let old = if was_on {
            old.unwrap_or(&empty)
        } else {
            &empty
        };
        for u in &self.policy.users {
            match old.users.iter().find(|o| o.name == u.name) {
                None => out.push(format!("+ user {} (role {})", u.name, u.role)),
                Some(o) if o.role != u.role => {
                    out.push(format!("~ user {}: role {} → {}", u.name, o.role, u.role))
                }
                Some(_) => {}
            }
        }
        for o in &old.users {
            if !self.policy.users.iter().any(|u| u.name == o.name) {
                out.push(format!("- user {}", o.name));
            }
        }
        for g in &self.policy.grants {
            match old
                .grants
                .iter()
                .find(|o| o.role == g.role && o.prefix == g.prefix)
            {
                None => out.push(format!(
                    "+ role {}: {} {}",
                    g.role,
                    g.prefix,
                    g.perm.as_str()
                )),
                Some(o) if o.perm != g.perm => out.push(format!(
                    "~ role {}: {} {} → {}",
                    g.role,
                    g.prefix,
                    o.perm.as_str(),
                    g.perm.as_str()
                )),
                Some(_) => {}
            }
        }
        for o in &old.grants {
            if !self
                .policy
                .grants
                .iter()
                .any(|g| g.role == o.role && g.prefix == o.prefix)
            {
                out.push(format!(
                    "- role {}: {} {}",
                    o.role,
                    o.prefix,
                    o.perm.as_str()
                ));
            }
        }
        for r in &old.roles {
            if !self.policy.roles.contains(r) {
                out.push(format!("- role {r}"));
            }
        }
        out
    }
}
