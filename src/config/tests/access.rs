//! Clients: their `access`, `auth`, and the warnings about them.

use super::*;
use crate::config::access::{Grant, Perm, PolicyUser};

fn policy_of(extra: &str) -> Policy {
    Policy::of(&with(extra).unwrap())
}

#[test]
fn the_default_clients_get_what_they_need_and_the_nodes_are_root() {
    let c = with("tuning: { enable_v2: false }\n").unwrap();
    assert!(c.auth.enabled);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let p = Policy::of(&c);
    let users: Vec<(&str, &str)> = p
        .users
        .iter()
        .map(|u| (u.name.as_str(), u.role.as_str()))
        .collect();
    assert_eq!(
        users,
        [
            ("root", "root"),
            ("etcd-1", "root"),
            ("etcd-2", "root"),
            ("etcd-3", "root"),
            ("etcdctl", "root"),
            ("kube-apiserver", "kube-apiserver"),
            ("flannel", "flannel"),
        ]
    );
    assert_eq!(p.roles, ["kube-apiserver", "flannel"]);
    let grants: Vec<(&str, &str, &str)> = p
        .grants
        .iter()
        .map(|g| (g.role.as_str(), g.perm.as_str(), g.prefix.as_str()))
        .collect();
    assert_eq!(
        grants,
        [
            ("kube-apiserver", "readwrite", "/registry/"),
            ("kube-apiserver", "readwrite", "compact_rev_key"),
            ("flannel", "readwrite", "/coreos.com/network/"),
        ]
    );
}

#[test]
fn listed_access_is_taken_as_written_and_readwrite_wins_over_read() {
    let p = policy_of(
        "tuning: { enable_v2: false }\nclients:\n  - { name: ops, access: root }\n  - name: mon\n    access: { read: [/a/, /b/], readwrite: [/b/] }\n",
    );
    assert_eq!(
        p.users[4..],
        [
            PolicyUser {
                name: "ops".into(),
                role: "root".into()
            },
            PolicyUser {
                name: "mon".into(),
                role: "mon".into()
            }
        ]
    );
    assert_eq!(
        p.grants,
        [
            Grant {
                role: "mon".into(),
                perm: Perm::ReadWrite,
                prefix: "/b/".into()
            },
            Grant {
                role: "mon".into(),
                perm: Perm::Read,
                prefix: "/a/".into()
            }
        ]
    );
}

#[test]
fn a_listed_client_without_access_is_root_with_a_warning() {
    let c = with("tuning: { enable_v2: false }\nclients: [{ name: backup-agent }]\n").unwrap();
    assert_eq!(c.clients[0].access, Access::Root);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].starts_with("cluster.yaml:8:")
            && c.warnings[0].contains("client backup-agent has no `access`"),
        "{:?}",
        c.warnings
    );
}

#[test]
fn bad_access_is_refused_where_it_is_written() {
    for (extra, line, says) in [
        (
            "clients: [{ name: a, access: admin }]\n",
            7,
            "\"admin\" is not a level",
        ),
        (
            "clients: [{ name: a, access: { read: [\"/a b/\"] } }]\n",
            7,
            "prefix \"/a b/\" holds ' '",
        ),
        (
            "clients:\n  - name: a\n    access: { readwrite: [\"/x$(id)\"] }\n",
            9,
            "holds '$'",
        ),
        (
            "clients: [{ name: a, access: { read: [] } }]\n",
            7,
            "no key prefix",
        ),
        (
            "clients: [{ name: root, access: { read: [/a/] } }]\n",
            7,
            "etcd's root user",
        ),
        (
            "clients: [{ name: etcd-2, access: root }]\n",
            7,
            "the name of a node",
        ),
    ] {
        let r = with(extra);
        let m = message(with(extra));
        assert_eq!(rules(r), [Rule::Access], "{extra}: {m}");
        assert!(
            m.starts_with(&format!("cluster.yaml:{line}:")) && m.contains(says),
            "{extra}: {m}"
        );
    }
    // Unknown keys are refused by the parser, with the line.
    let m = message(with("clients: [{ name: a, access: { write: [/a/] } }]\n"));
    assert!(m.contains("line 7") || m.contains(":7:"), "{m}");
}

#[test]
fn the_v2_api_outside_the_roles_is_said_in_plain_words() {
    // 3.4 serves v2 by default: restricted clients are warned about.
    let c = with("").unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].contains("kube-apiserver, flannel can still read and write every v2 key"),
        "{:?}",
        c.warnings
    );
    // Only root clients, or auth off: nothing to say.
    let only_root = with("clients: [{ name: etcdctl }]\n").unwrap();
    assert!(only_root.warnings.is_empty(), "{:?}", only_root.warnings);
    let off = with("auth: { enabled: false }\n").unwrap();
    assert!(!off.auth.enabled);
    assert!(off.warnings.is_empty(), "{:?}", off.warnings);
}

/// The corpus's valid CA, by absolute path (the test's working directory is
/// the crate, but say so explicitly).
fn corpus_ca() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/configs/bad/ca");
    format!("pki: {{ ca_cert: {dir}/ca.pem, ca_key: {dir}/ca-key.pem }}\n")
}

#[test]
fn an_imported_ca_with_a_system_masters_client_is_a_warning() {
    let c = with(&corpus_ca()).unwrap();
    let w: Vec<_> = c
        .warnings
        .iter()
        .filter(|w| w.contains("system:masters"))
        .collect();
    assert_eq!(w.len(), 1, "{:?}", c.warnings);
    assert!(
        w[0].contains("kube-apiserver")
            && w[0].contains("cluster-admin")
            && w[0].contains("organization")
            && w[0].contains("pki.ca_cert"),
        "{}",
        w[0]
    );
    // A listed client is named at its own line.
    let listed = with(&format!(
        "{}clients:\n  - {{ name: etcdctl }}\n  - {{ name: api, organization: \"system:masters\" }}\n",
        corpus_ca()
    ))
    .unwrap();
    let w: Vec<_> = listed
        .warnings
        .iter()
        .filter(|w| w.contains("system:masters"))
        .collect();
    assert_eq!(w.len(), 1, "{:?}", listed.warnings);
    assert!(
        w[0].starts_with("cluster.yaml:10:") && w[0].contains("client api"),
        "{}",
        w[0]
    );
}

#[test]
fn a_created_ca_or_no_admin_client_gives_no_warning() {
    let created = with("tuning: { enable_v2: false }\n").unwrap();
    assert!(created.warnings.is_empty(), "{:?}", created.warnings);
    let no_admin = with(&format!(
        "{}clients: [{{ name: etcdctl }}, {{ name: api, organization: ops, access: root }}]\n",
        corpus_ca()
    ))
    .unwrap();
    assert!(no_admin.warnings.is_empty(), "{:?}", no_admin.warnings);
}
