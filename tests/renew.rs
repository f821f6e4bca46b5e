//! `etcdpack status` lists every certificate's expiry, soonest first, and
//! fails (exit 4) inside its warning window; `etcdpack renew` re-issues leaf
//! certificates from the same CA — all of them, those inside a window, or
//! one node's — shows its plan first with `--plan`, raises only the affected
//! packages' releases, and never touches the CA. Certificates are read back
//! with openssl.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use support::{Gen, both, ok};

/// Three nodes and a client, leaves valid 40 days under a CA of ten years.
fn generated() -> Gen {
    let g = Gen::new(
        &["127.0.0.1", "127.0.0.2", "127.0.0.3"],
        "pki: { algorithm: ecdsa-p256, validity: 87600h, leaf_validity: 40d }\nclients: [{ name: etcdctl }]\n",
    );
    g.run_ok(&[]);
    g
}

fn status(out: &Path, args: &[&str]) -> Output {
    support::etcdpack()
        .arg("status")
        .arg(out)
        .args(args)
        .output()
        .unwrap()
}

/// `openssl x509 -noout -<what>` of a PEM certificate.
fn x509(cert: &Path, what: &str) -> String {
    ok(Command::new("openssl")
        .args(["x509", "-noout", what, "-in"])
        .arg(cert)
        .output()
        .unwrap())
    .trim()
    .to_owned()
}

fn releases(g: &Gen) -> Vec<String> {
    (1..=3)
        .map(|i| {
            let dist = fs::read_dir(g.out.join("dist")).unwrap();
            let mut names: Vec<String> = dist
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!("etcd-test-etcd-{i}_")))
                .collect();
            names.sort();
            names.join(" ")
        })
        .collect()
}

#[test]
fn status_lists_expiry_soonest_first_and_fails_inside_its_window() {
    support::require!(support::STANDIN);
    let g = generated();
    let listed = ok(status(&g.out, &[]));
    let lines: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(lines.len(), 5, "{listed}");
    // The leaves (40 days) before the CA (ten years).
    assert!(lines[4].contains("CA (pki/ca.pem)"), "{listed}");
    for what in [
        "node etcd-1",
        "node etcd-2",
        "node etcd-3",
        "client etcdctl",
    ] {
        assert!(
            lines[..4].iter().any(|l| l.contains(what)),
            "{what}:\n{listed}"
        );
    }
    assert!(
        lines[0].contains(" 39 ") || lines[0].contains(" 40 "),
        "{listed}"
    );

    let warned = status(&g.out, &["--warn", "45d"]);
    assert_eq!(warned.status.code(), Some(4), "{}", both(&warned));
    let said = both(&warned);
    assert!(
        said.contains("4 certificate(s) expire within 45 days"),
        "{said}"
    );
    assert!(said.contains("etcdpack renew"), "{said}");
    assert!(
        !said.contains(", CA (2"),
        "the CA is not inside the window:\n{said}"
    );

    let json: serde_json::Value = serde_json::from_str(&ok(status(&g.out, &["--json"]))).unwrap();
    assert_eq!(json["certificates"].as_array().unwrap().len(), 5);

    let missing = status(&g.dir.path().join("nothing"), &[]);
    assert_eq!(missing.status.code(), Some(1), "{}", both(&missing));
    assert!(both(&missing).contains("help:"), "{}", both(&missing));
}

#[test]
fn renew_reissues_from_the_same_ca_and_raises_only_the_affected_releases() {
    support::require!(support::STANDIN, support::OPENSSL);
    let g = generated();
    let pki = g.out.join("pki");
    let ca = fs::read(pki.join("ca.pem")).unwrap();
    let ca_key = fs::read(pki.join("ca-key.pem")).unwrap();
    let serial = |who: &str| x509(&pki.join(format!("{who}.pem")), "-serial");
    let before: Vec<String> = [
        "nodes/etcd-1",
        "nodes/etcd-2",
        "nodes/etcd-3",
        "clients/etcdctl",
    ]
    .iter()
    .map(|w| serial(w))
    .collect();

    // Nothing expires within 30 days: nothing changes.
    let sums = fs::read(g.out.join("SHA256SUMS")).unwrap();
    ok(g.renew(&["--within", "30d"]));
    assert_eq!(fs::read(g.out.join("SHA256SUMS")).unwrap(), sums);

    // The plan of one node's renewal names it, and writes nothing.
    let plan = ok(g.renew(&["--node", "etcd-2", "--plan"]));
    assert!(
        plan.contains("issue  nodes/etcd-2 (renewed: was valid until"),
        "{plan}"
    );
    for other in ["nodes/etcd-1", "nodes/etcd-3", "clients/etcdctl"] {
        assert!(plan.contains(&format!("reuse  {other}\n")), "{plan}");
    }
    assert!(
        plan.contains("etcd-test-etcd-2 3.4.16-1 → 3.4.16-2"),
        "{plan}"
    );
    assert_eq!(fs::read(g.out.join("SHA256SUMS")).unwrap(), sums);

    // One node: only its certificate and package change.
    ok(g.renew(&["--node", "etcd-2"]));
    assert_eq!(serial("nodes/etcd-1"), before[0]);
    assert_ne!(serial("nodes/etcd-2"), before[1]);
    assert_eq!(serial("nodes/etcd-3"), before[2]);
    assert_eq!(serial("clients/etcdctl"), before[3]);
    let r = releases(&g);
    assert!(
        r[0].contains("3.4.16-1_") && !r[0].contains("3.4.16-2_"),
        "{r:?}"
    );
    assert!(r[1].contains("3.4.16-2_"), "{r:?}");
    assert!(
        r[2].contains("3.4.16-1_") && !r[2].contains("3.4.16-2_"),
        "{r:?}"
    );

    // Everything inside a 45-day window: every leaf, never the CA.
    ok(g.renew(&["--within", "45d"]));
    for (i, who) in ["nodes/etcd-1", "nodes/etcd-3", "clients/etcdctl"]
        .iter()
        .enumerate()
    {
        assert_ne!(serial(who), before[[0, 2, 3][i]], "{who}");
    }
    assert_eq!(fs::read(pki.join("ca.pem")).unwrap(), ca);
    assert_eq!(fs::read(pki.join("ca-key.pem")).unwrap(), ca_key);
    let r = releases(&g);
    assert!(r[0].contains("3.4.16-2_"), "{r:?}");
    assert!(r[1].contains("3.4.16-3_"), "{r:?}");
    // Each renewed leaf chains to the unchanged CA and is the node's again.
    for i in 1..=3 {
        let cert = pki.join(format!("nodes/etcd-{i}.pem"));
        ok(Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(pki.join("ca.pem"))
            .arg(&cert)
            .output()
            .unwrap());
        let sans = ok(Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(&cert)
            .output()
            .unwrap());
        assert!(sans.contains(&format!("IP Address:127.0.0.{i}")), "{sans}");
    }
    // A gen afterwards keeps the renewed leaves.
    let sums = fs::read(g.out.join("SHA256SUMS")).unwrap();
    g.run_ok(&[]);
    assert_eq!(fs::read(g.out.join("SHA256SUMS")).unwrap(), sums);

    // An unknown node is a usage error that names the nodes.
    let wrong = g.renew(&["--node", "etcd-9"]);
    assert_eq!(wrong.status.code(), Some(2), "{}", both(&wrong));
    assert!(
        both(&wrong).contains("etcd-1, etcd-2, etcd-3"),
        "{}",
        both(&wrong)
    );
}

#[path = "renew/rotation.rs"]
mod rotation;
