//! `etcd-maint auth`: the cluster's access policy applied to three real
//! members (Debian's etcd 3.4) on 127.0.12.x, each started from its node's
//! tree, with the client certificates `gen` wrote.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

/// etcdctl as client `name` of the output `g` (its certificate, so its etcd
/// user), against `endpoints`.
fn client(g: &Gen, name: &str, endpoints: &str) -> Command {
    let pki = g.out.join("pki");
    let mut c = Command::new("etcdctl");
    c.env("ETCDCTL_API", "3")
        .env("ETCDCTL_ENDPOINTS", endpoints)
        .env("ETCDCTL_CACERT", pki.join("ca.pem"))
        .env("ETCDCTL_CERT", pki.join(format!("clients/{name}.pem")))
        .env("ETCDCTL_KEY", pki.join(format!("clients/{name}-key.pem")))
        .env("ETCDCTL_COMMAND_TIMEOUT", "10s");
    c
}

/// Client `name` runs `args`: whether etcd let it, and what it said.
fn as_client(g: &Gen, name: &str, endpoints: &str, args: &[&str]) -> (bool, String) {
    let out = client(g, name, endpoints).args(args).output().unwrap();
    (out.status.success(), both(&out))
}

fn allowed(g: &Gen, name: &str, endpoints: &str, args: &[&str]) -> String {
    let (ok, said) = as_client(g, name, endpoints, args);
    assert!(ok, "{name} {args:?} was refused:\n{said}");
    said
}

fn denied(g: &Gen, name: &str, endpoints: &str, args: &[&str]) {
    let (ok, said) = as_client(g, name, endpoints, args);
    assert!(
        !ok && said.contains("permission denied"),
        "{name} {args:?} was not refused for want of permission:\n{said}"
    );
}

/// Puts `/w/N` as etcdctl (a root client), N = 0, 1, …, until stopped: the
/// Ns etcd acknowledged.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u32>>,
}

impl Writer {
    fn start(g: &Gen, endpoints: &str) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let cmd = {
            let c = client(g, "etcdctl", endpoints);
            let envs: Vec<(std::ffi::OsString, std::ffi::OsString)> = c
                .get_envs()
                .map(|(k, v)| (k.to_owned(), v.unwrap().to_owned()))
                .collect();
            envs
        };
        let thread = std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut n = 0;
            while !flag.load(Ordering::SeqCst) {
                let ok = Command::new("etcdctl")
                    .envs(cmd.iter().map(|(k, v)| (k, v)))
                    .args(["put", &format!("/w/{n}"), "v"])
                    .output()
                    .unwrap()
                    .status
                    .success();
                if ok {
                    acked.push(n);
                }
                n += 1;
            }
            acked
        });
        Writer { stop, thread }
    }

    fn stop(self) -> Vec<u32> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

#[test]
fn the_access_policy_is_applied_under_a_writer_kept_true_and_refused_while_a_member_is_down() {
    support::require!(support::ROOT, support::STANDIN);
    let ips = ["127.0.12.1", "127.0.12.2", "127.0.12.3"];
    let g = Gen::new(
        &ips,
        "service: { user: root }\nclients:\n  - { name: etcdctl }\n  - { name: kube-apiserver }\n  - { name: flannel }\n  - { name: old-tool, access: root }\n",
    );
    g.run_ok(&[]);
    let work = tempfile::tempdir().unwrap();
    let Three {
        roots,
        eps,
        all,
        mut members,
    } = Three::start(&g, work.path(), &ips);

    // Before: every certificate may do anything.
    allowed(&g, "flannel", &all, &["put", "/registry/secrets/x", "open"]);

    let plan = maint_ok(&roots[0], &["auth", "plan"]);
    for line in [
        "would add role kube-apiserver",
        "would grant readwrite on prefix /registry/ to role kube-apiserver",
        "would grant readwrite on prefix compact_rev_key to role kube-apiserver",
        "would grant readwrite on prefix /coreos.com/network/ to role flannel",
        "would add user root",
        "would add user etcd-2",
        "would grant role flannel to user flannel",
        "would grant role root to user old-tool",
        "would turn auth on",
    ] {
        assert!(plan.contains(line), "no {line:?} in\n{plan}");
    }
    // Planning changed nothing.
    allowed(&g, "flannel", &all, &["get", "/registry/secrets/x"]);

    // Applied on every node at once, under a writer: the lock takes them one
    // at a time, the first does the work, the others find nothing to do.
    let writer = Writer::start(&g, &all);
    std::thread::sleep(Duration::from_millis(500));
    let applies: Vec<_> = roots
        .iter()
        .map(|r| {
            let r = r.clone();
            std::thread::spawn(move || maint(&r, &["auth", "apply"]))
        })
        .collect();
    let said: Vec<Output> = applies.into_iter().map(|t| t.join().unwrap()).collect();
    std::thread::sleep(Duration::from_millis(500));
    let acked = writer.stop();
    for out in &said {
        assert!(out.status.success(), "{}", both(out));
    }
    let texts: Vec<String> = said.iter().map(both).collect();
    assert_eq!(
        texts.iter().filter(|t| t.contains("turn auth on")).count(),
        1,
        "{texts:#?}"
    );
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains("the policy's already"))
            .count(),
        2,
        "{texts:#?}"
    );
    // No acknowledged write was lost.
    assert!(acked.len() > 3, "the writer got only {acked:?} through");
    let stored = allowed(
        &g,
        "etcdctl",
        &all,
        &["get", "--prefix", "/w/", "--keys-only"],
    );
    for n in &acked {
        assert!(
            stored.lines().any(|l| l == format!("/w/{n}")),
            "acknowledged /w/{n} is gone"
        );
    }

    // flannel: its network only; not Kubernetes' objects, not a snapshot,
    // not the membership.
    allowed(
        &g,
        "flannel",
        &all,
        &["put", "/coreos.com/network/config", "{}"],
    );
    allowed(&g, "flannel", &all, &["get", "/coreos.com/network/config"]);
    denied(&g, "flannel", &all, &["get", "/registry/secrets/x"]);
    denied(&g, "flannel", &all, &["put", "/registry/secrets/x", "mine"]);
    let snap = work.path().join("flannel.db");
    let (ok, said_snap) = as_client(
        &g,
        "flannel",
        &eps[0],
        &["snapshot", "save", snap.to_str().unwrap()],
    );
    assert!(
        !ok && said_snap.contains("permission denied"),
        "{said_snap}"
    );
    denied(
        &g,
        "flannel",
        &all,
        &[
            "member",
            "add",
            "intruder",
            "--peer-urls=https://127.0.12.9:2380",
        ],
    );
    // kube-apiserver: /registry/ and its compaction marker.
    allowed(
        &g,
        "kube-apiserver",
        &all,
        &["put", "/registry/pods/a", "p"],
    );
    allowed(&g, "kube-apiserver", &all, &["get", "/registry/secrets/x"]);
    allowed(&g, "kube-apiserver", &all, &["put", "compact_rev_key", "1"]);
    denied(
        &g,
        "kube-apiserver",
        &all,
        &["get", "/coreos.com/network/config"],
    );

    // The nodes' own tools keep working with auth on.
    let backups = work.path().join("backups");
    maint_ok(&roots[1], &["backup", backups.to_str().unwrap()]);
    let recovered = maint_ok(&roots[2], &["quota-recover"]);
    assert!(recovered.contains("no alarm"), "{recovered}");
    assert!(
        maint_ok(&roots[0], &["auth", "apply"]).contains("the policy's already"),
        "applied twice"
    );

    // The policy changed: flannel may only read now, old-tool is gone.
    let g2 = Gen::new(
        &ips,
        "service: { user: root }\nclients:\n  - { name: etcdctl }\n  - { name: kube-apiserver }\n  - { name: flannel, access: { read: [/coreos.com/network/] } }\n",
    );
    // The same output directory: the same CA and nodes, a new etcd-maint.
    g2.run_ok_into(&g.out, &[]);
    for (i, r) in roots.iter().enumerate() {
        fs::copy(
            g.out
                .join(format!("nodes/etcd-{}/opt/etcd/bin/etcd-maint", i + 1)),
            r.join("opt/etcd/bin/etcd-maint"),
        )
        .unwrap();
    }
    let plan = maint_ok(&roots[2], &["auth", "plan"]);
    for line in [
        "would grant read on prefix /coreos.com/network/ to role flannel",
        "would delete user old-tool (not in the policy)",
    ] {
        assert!(plan.contains(line), "no {line:?} in\n{plan}");
    }
    assert!(!plan.contains("turn auth on"), "{plan}");
    let applied = maint_ok(&roots[2], &["auth", "apply"]);
    assert!(applied.contains("2 change(s)"), "{applied}");
    allowed(&g, "flannel", &all, &["get", "/coreos.com/network/config"]);
    denied(
        &g,
        "flannel",
        &all,
        &["put", "/coreos.com/network/config", "x"],
    );
    let users = allowed(&g, "etcdctl", &all, &["user", "list"]);
    assert!(!users.lines().any(|u| u == "old-tool"), "{users}");

    // A member down: refused, with the reason, and nothing changed.
    members.pop().unwrap().stop();
    let out = maint(&roots[0], &["auth", "apply"]);
    let said = both(&out);
    assert_eq!(out.status.code(), Some(75), "{said}");
    assert!(
        said.contains("the member(s) at https://127.0.12.3:2379 are not healthy"),
        "{said}"
    );

    // Restored, with auth on, from the backup taken under the first policy:
    // the members come back with its users, and etcd-maint brings them to
    // the policy of today.
    for m in members {
        m.stop();
    }
    let snapshot = fs::read_dir(&backups)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for root in &roots {
        maint_ok(root, &["restore", snapshot.to_str().unwrap()]);
    }
    let members: Vec<Member> = roots.iter().map(|r| Member::start(r)).collect();
    wait_healthy(&roots[0], &all, &members.iter().collect::<Vec<_>>());
    let stored = allowed(
        &g,
        "etcdctl",
        &all,
        &["get", "--prefix", "/w/", "--keys-only"],
    );
    assert!(stored.lines().any(|l| l == "/w/0"), "{stored}");
    denied(&g, "flannel", &all, &["get", "/registry/secrets/x"]);
    let applied = maint_ok(&roots[0], &["auth", "apply"]);
    assert!(
        applied.contains("delete user old-tool") && applied.contains("2 change(s)"),
        "{applied}"
    );
    denied(
        &g,
        "flannel",
        &all,
        &["put", "/coreos.com/network/config", "x"],
    );
}
