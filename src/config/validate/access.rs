//! `clients[].access` and `auth`: who may do what in etcd.

use super::Checker;
use crate::config::access::{Access, ROOT, default_access, prefix_problem};
use crate::config::error::Rule;
use crate::config::raw::*;
use crate::config::*;

/// The access of the client `raw` lists (`None`: a client of the default
/// list, named `name`).
pub(super) fn client(c: &mut Checker, name: &str, raw: Option<&RawClient>) -> Access {
    let Some(raw) = raw else {
        return default_access(name).unwrap_or(Access::Root);
    };
    let at = c.at(&raw.name);
    let access_at = raw.access.as_ref().map(|a| c.at(a));
    let access = match raw.access.as_ref().map(|a| &a.value) {
        None => match default_access(name) {
            Some(a) => a,
            None => {
                c.warn(
                    at.clone(),
                    format!(
                        "client {name} has no `access`: with auth on it is root, and reads and writes every key\n  help: give it only what it needs, e.g. `access: {{ readwrite: [/{name}/] }}` (or `access: root` to keep it, without this warning)"
                    ),
                );
                Access::Root
            }
        },
        Some(RawAccess::Root(word)) => {
            if word != ROOT {
                c.problem(
                    Rule::Access,
                    access_at.clone().unwrap_or(at.clone()),
                    format!("client {name}: access {word:?} is not a level of access"),
                    "write `access: root`, or key prefixes: `access: { read: [/prefix/], readwrite: [/other/] }`",
                );
            }
            Access::Root
        }
        Some(RawAccess::Prefixes(p)) => {
            let list = |c: &mut Checker, key: &str, v: &Option<Vec<String>>| {
                let mut out: Vec<String> = Vec::new();
                for prefix in v.iter().flatten() {
                    if let Some(why) = prefix_problem(prefix) {
                        c.problem(
                            Rule::Access,
                            access_at.clone().unwrap_or(at.clone()),
                            format!("client {name}: access.{key} prefix {prefix:?} {why}"),
                            "write a key prefix of letters, digits and / . _ - : + = @ ~ %, such as /registry/",
                        );
                    } else if !out.contains(prefix) {
                        out.push(prefix.clone());
                    }
                }
                out
            };
            let read = list(c, "read", &p.read);
            let readwrite = list(c, "readwrite", &p.readwrite);
            if p.read.iter().chain(&p.readwrite).all(|l| l.is_empty()) {
                c.problem(
                    Rule::Access,
                    access_at.clone().unwrap_or(at.clone()),
                    format!(
                        "client {name}: access lists no key prefix, so the client could do nothing"
                    ),
                    "list the prefixes it needs under `read` or `readwrite`, or remove the client",
                );
            }
            Access::Prefixes { read, readwrite }
        }
    };
    if name == ROOT && access != Access::Root {
        c.problem(
            Rule::Access,
            at,
            "a client named root is etcd's root user, which has every right",
            "give the client `access: root`, or another name",
        );
    }
    access
}

/// `auth`, and what it asks of the rest of the config: a client is not
/// named as a node (both would be the same etcd user), and the v2 API,
/// which etcd's v3 roles do not cover, is said to be open.
pub(super) fn auth(
    c: &mut Checker,
    raw: &RawConfig,
    nodes: &[Node],
    clients: &[Client],
    tuning: &Tuning,
) -> Auth {
    let enabled = raw.auth.enabled.as_ref().is_none_or(|e| e.value);
    if !enabled {
        return Auth { enabled };
    }
    for (i, client) in clients.iter().enumerate() {
        if nodes.iter().any(|n| n.name == client.name) {
            let at = match &raw.clients {
                Some(list) => c.at(&list[i].name),
                None => c.at_or_file(&None::<S<()>>),
            };
            c.problem(
                Rule::Access,
                at,
                format!(
                    "client {} has the name of a node: with auth on, both certificates would be the same etcd user, which is root",
                    client.name
                ),
                "rename the client",
            );
        }
    }
    let restricted: Vec<&str> = Policy::restricted(clients)
        .map(|c| c.name.as_str())
        .collect();
    if tuning.enable_v2 && !restricted.is_empty() {
        let at = match &raw.tuning.enable_v2 {
            Some(v) => c.at(v),
            None => c.at_or_file(&raw.auth.enabled),
        };
        c.warn(
            at,
            format!(
                "the v2 API is on (tuning.enable_v2), and etcd's roles cover only the v3 API: {} can still read and write every v2 key with its certificate\n  help: set `tuning.enable_v2: false` unless a client speaks v2 (flannel's etcd v2 backend); its data then stays open to every certificate from the CA",
                restricted.join(", ")
            ),
        );
    }
    Auth { enabled }
}
