//! The access policy under systemd: clients of the cluster's output, and the check that
//! the policy the packages carry is in force.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::support::both;

/// etcdctl on the host as client `name` of the cluster's output (its certificate: its etcd
/// user), against every member.
pub fn client_etcdctl(c: &Cluster, name: &str, args: &[&str]) -> Output {
    let pki = c.generated.out.join("pki");
    let endpoints: Vec<String> = (1..=3).map(|i| c.endpoint(i)).collect();
    Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", endpoints.join(",")))
        .arg(format!(
            "--cacert={}",
            pki.join("clients/ca-bundle.pem").display()
        ))
        .arg(format!(
            "--cert={}",
            pki.join(format!("clients/{name}.pem")).display()
        ))
        .arg(format!(
            "--key={}",
            pki.join(format!("clients/{name}-key.pem")).display()
        ))
        .arg("--command-timeout=5s")
        .args(args)
        .output()
        .unwrap()
}

/// The access policy the packages carry is in force, applied by etcd-auth.service (started
/// by etcd-auth.path once an install asked for it) within `within`: flannel's certificate
/// reads and writes its network and is refused Kubernetes' objects, kube-apiserver's reads
/// and writes them, and no node has the request pending any more.
pub fn assert_policy_applied(c: &Cluster, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let out = client_etcdctl(c, "flannel", &["get", "/registry/secrets/probe"]);
        if !out.status.success() && both(&out).contains("permission denied") {
            break;
        }
        if Instant::now() > deadline {
            let journals: String = (1..=3)
                .map(|i| {
                    c.node(i)
                        .sh_ok("journalctl -u etcd-auth.service --no-pager | tail -n 20")
                })
                .collect();
            panic!(
                "flannel is not refused /registry/ {within:?} on: {}\n{journals}",
                both(&out)
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    for (name, args) in [
        ("flannel", &["put", "/coreos.com/network/config", "{}"][..]),
        ("kube-apiserver", &["put", "/registry/pods/probe", "p"][..]),
        ("kube-apiserver", &["get", "/registry/pods/probe"][..]),
    ] {
        let out = client_etcdctl(c, name, args);
        assert!(out.status.success(), "{name} {args:?}: {}", both(&out));
    }
    let out = client_etcdctl(c, "flannel", &["put", "/registry/pods/probe", "mine"]);
    assert!(both(&out).contains("permission denied"), "{}", both(&out));
    // Every node's request is done (each applies it once the lock is its turn).
    for i in 1..=3 {
        let pending = c.node(i).sh_ok(
            "for _ in $(seq 60); do [ -e /var/lib/etcdpack/auth-pending ] || break; sleep 1; done; \
             ls /var/lib/etcdpack/auth-pending 2>/dev/null || echo none",
        );
        assert_eq!(pending.trim(), "none", "etcd-{i}");
    }
}
