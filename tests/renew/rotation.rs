//! `etcdpack rotate-ca` through its three phases, read back with openssl and the packaging
//! tools: what every node trusts and holds at each phase, the order enforced, and the old
//! CA's key gone from every node and package at the end.

use super::*;

/// The certificates of a PEM bundle, one PEM text each.
fn certificates(bundle: &str) -> Vec<String> {
    bundle
        .split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|c| c.contains("BEGIN CERTIFICATE"))
        .map(str::to_owned)
        .collect()
}

fn phase(g: &Gen) -> Option<String> {
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(g.out.join("manifest.json")).unwrap()).unwrap();
    m["ca"]["rotation"].as_str().map(str::to_owned)
}

/// The files of every node tree and every artifact's streams (through dpkg-deb, rpm2cpio
/// and gzip), with their names.
fn everything_shipped(g: &Gen) -> Vec<(String, Vec<u8>)> {
    let mut all = Vec::new();
    for file in support::scan::files(&g.out.join("nodes")) {
        all.push((file.display().to_string(), fs::read(&file).unwrap()));
    }
    for e in fs::read_dir(g.out.join("dist")).unwrap() {
        let path = e.unwrap().path();
        for s in support::unpack::streams(&path) {
            all.push((path.display().to_string(), s));
        }
    }
    all
}

#[test]
fn the_ca_rotates_in_three_phases_each_in_its_order() {
    support::require!(
        support::STANDIN,
        support::OPENSSL,
        support::DPKG_DEB,
        support::RPM2CPIO
    );
    let g = Gen::new(
        &["127.0.0.1", "127.0.0.2"],
        "packages: { formats: [tar, deb, rpm] }\nclients: [{ name: kube-apiserver }]\n",
    );
    g.run_ok(&[]);
    let pki = g.out.join("pki");
    let node_ca = |i: usize| g.out.join(format!("nodes/etcd-{i}/opt/etcd/ssl/ca.pem"));
    let node_cert = |i: usize| {
        g.out
            .join(format!("nodes/etcd-{i}/opt/etcd/ssl/server.pem"))
    };
    let old_ca = fs::read_to_string(pki.join("ca.pem")).unwrap();
    let old_key = fs::read_to_string(pki.join("ca-key.pem")).unwrap();
    let leaf_before = fs::read(node_cert(1)).unwrap();

    // Out of order: refused as usage (exit 2), nothing written.
    for step in ["issue", "retire"] {
        let before = support::publishing::tree(&g.out);
        let out = g.rotate(step, &[]);
        assert_eq!(out.status.code(), Some(2), "{}", both(&out));
        assert!(
            both(&out).contains(&format!("rotate-ca {step} is out of order"))
                && both(&out).contains("next is `etcdpack rotate-ca trust`"),
            "{}",
            both(&out)
        );
        assert_eq!(support::publishing::tree(&g.out), before, "{step} wrote");
    }

    // trust: the next CA beside the current one; every node trusts both; leaves unchanged.
    let planned = g.rotate("trust", &["--plan"]);
    assert!(planned.status.success(), "{}", both(&planned));
    assert!(!pki.join("next-ca.pem").exists(), "--plan wrote");
    ok(g.rotate("trust", &[]));
    assert_eq!(phase(&g).as_deref(), Some("trust"));
    let next_ca = fs::read_to_string(pki.join("next-ca.pem")).unwrap();
    assert_ne!(next_ca, old_ca);
    assert_ne!(
        x509(&pki.join("next-ca.pem"), "-subject"),
        x509(&pki.join("ca.pem"), "-subject"),
        "two CAs trusted at once share a subject"
    );
    for i in 1..=2 {
        let bundle = fs::read_to_string(node_ca(i)).unwrap();
        assert_eq!(certificates(&bundle), vec![old_ca.clone(), next_ca.clone()]);
    }
    assert_eq!(fs::read(node_cert(1)).unwrap(), leaf_before);
    assert_eq!(
        fs::read_to_string(pki.join("clients/ca-bundle.pem")).unwrap(),
        format!("{old_ca}{next_ca}")
    );
    let status = ok(support::etcdpack()
        .arg("status")
        .arg(&g.out)
        .output()
        .unwrap());
    assert!(
        status.contains("CA rotation: phase trust") && status.contains("etcdpack rotate-ca issue"),
        "{status}"
    );
    // gen between phases keeps the phase.
    g.run_ok(&[]);
    assert_eq!(phase(&g).as_deref(), Some("trust"));
    assert_eq!(fs::read(node_cert(1)).unwrap(), leaf_before);

    // issue: every leaf from the next CA, and none verifies against the old one alone.
    ok(g.rotate("issue", &[]));
    assert_eq!(phase(&g).as_deref(), Some("issue"));
    let leaves = [
        node_cert(1),
        node_cert(2),
        pki.join("clients/kube-apiserver.pem"),
    ];
    for leaf in &leaves {
        assert!(
            support::openssl_verifies(&pki.join("next-ca.pem"), leaf),
            "{}",
            leaf.display()
        );
        assert!(
            !support::openssl_verifies(&pki.join("ca.pem"), leaf),
            "{}",
            leaf.display()
        );
    }
    for i in 1..=2 {
        let bundle = fs::read_to_string(node_ca(i)).unwrap();
        assert_eq!(certificates(&bundle).len(), 2);
    }
    ok(support::etcdpack()
        .arg("verify")
        .arg(&g.out)
        .output()
        .unwrap());

    // retire: the old CA archived outside pki/ (key 0600), the next one is the CA, and
    // nothing shipped trusts or holds the old CA any more.
    ok(g.rotate("retire", &[]));
    assert_eq!(phase(&g), None);
    assert_eq!(fs::read_to_string(pki.join("ca.pem")).unwrap(), next_ca);
    assert!(!pki.join("next-ca.pem").exists() && !pki.join("next-ca-key.pem").exists());
    let archived: Vec<_> = fs::read_dir(g.out.join("retired-ca"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let key = archived
        .iter()
        .find(|p| p.to_string_lossy().ends_with("-key.pem"))
        .unwrap();
    assert_eq!(fs::read_to_string(key).unwrap(), old_key);
    assert_eq!(support::mode_of(key), 0o600);
    for i in 1..=2 {
        assert_eq!(fs::read_to_string(node_ca(i)).unwrap(), next_ca);
        assert!(support::openssl_verifies(&node_ca(i), &node_cert(i)));
    }
    // A certificate of the old CA is trusted by no node now.
    let old_leaf = g.dir.path().join("old-leaf.pem");
    fs::write(&old_leaf, &leaf_before).unwrap();
    assert!(support::openssl_verifies(
        &g.out.join("retired-ca").join(
            archived
                .iter()
                .find(|p| !p.to_string_lossy().ends_with("-key.pem"))
                .unwrap()
        ),
        &old_leaf
    ));
    assert!(!support::openssl_verifies(&node_ca(1), &old_leaf));
    for (name, data) in everything_shipped(&g) {
        assert!(
            !etcdpack::pki::contains_key(&data, &old_key),
            "{name} holds the old CA's key"
        );
        assert!(
            memchr::memmem::find(&data, old_ca.trim().as_bytes()).is_none(),
            "{name} still trusts the old CA"
        );
    }
    ok(support::etcdpack()
        .arg("verify")
        .arg(&g.out)
        .output()
        .unwrap());
    // A new rotation may start again.
    let again = g.rotate("issue", &[]);
    assert_eq!(again.status.code(), Some(2), "{}", both(&again));

    // A CA imported by the config is rotated where it is managed: refused, nothing written.
    let imported = g.dir.path().join("imported");
    fs::create_dir_all(&imported).unwrap();
    fs::copy(pki.join("ca.pem"), imported.join("ca.pem")).unwrap();
    fs::copy(pki.join("ca-key.pem"), imported.join("ca-key.pem")).unwrap();
    let config = fs::read_to_string(&g.config).unwrap();
    fs::write(
        &g.config,
        config.replace(
            "packages:",
            &format!(
                "pki: {{ algorithm: ecdsa-p256, ca_cert: {0}/ca.pem, ca_key: {0}/ca-key.pem }}\npackages:",
                imported.display()
            ),
        )
        .replace("pki: { algorithm: ecdsa-p256 }\n", ""),
    )
    .unwrap();
    g.run_ok(&[]);
    let before = support::publishing::tree(&g.out);
    let refused = g.rotate("trust", &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", both(&refused));
    assert!(
        both(&refused).contains("this config imports its CA (pki.ca_cert, pki.ca_key)"),
        "{}",
        both(&refused)
    );
    assert_eq!(support::publishing::tree(&g.out), before);
}
