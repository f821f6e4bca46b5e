//! A new PKI: leaf specs follow the config; an RSA and an ECDSA PKI chain for openssl with
//! issuer bytes identical to the CA's subject; each leaf says what its spec says; switching
//! the algorithm reissues; a created CA has path length zero.

use super::*;

#[test]
fn leaf_specs_follow_the_config() {
    let text = yaml().replace(
        "{ name: etcd-3, ip: 127.0.0.3, sans: [etcd-3.example.org] }",
        "{ name: etcd-3, ip: 127.0.0.3, sans: [etcd-3.example.org, localhost, 127.0.0.3, 10.0.0.3] }",
    );
    let specs = leaf_specs(&cluster_from(&text));
    let ids: Vec<_> = specs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "nodes/etcd-1",
            "nodes/etcd-2",
            "nodes/etcd-3",
            "clients/etcdctl",
            "clients/kube-apiserver",
            "clients/flannel"
        ]
    );
    let ip = |s: &str| San::Ip(s.parse().unwrap());
    let dns = |s: &str| San::Dns(s.to_owned());
    assert_eq!(
        specs[2].sans,
        [
            ip("127.0.0.3"),
            dns("etcd-3"),
            dns("localhost"),
            ip("127.0.0.1"),
            ip("::1"),
            dns(&peer_hostname(&cluster_from(&text))),
            dns("etcd-3.example.org"),
            ip("10.0.0.3"),
        ]
    );
    // The peer name is what admits a certificate to the peer port: nodes
    // carry it, clients never do.
    let peer = dns(&peer_hostname(&cluster_from(&text)));
    assert!(specs[..3].iter().all(|s| s.sans.contains(&peer)));
    assert!(specs[3..].iter().all(|s| !s.sans.contains(&peer)));
    assert!(specs[2].server && specs[2].client);
    assert_eq!(specs[2].common_name, "etcd-3");
    let api = &specs[4];
    assert_eq!(api.organization.as_deref(), Some("system:masters"));
    assert!(api.sans.is_empty() && api.client && !api.server);
}

#[test]
fn rsa_pki_chains_for_openssl_with_exact_issuer_bytes() {
    if !require(&[OPENSSL]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    let c = cluster(Algorithm::Rsa2048);
    let pki = ensure(&pki_dir, &c, now(), &quiet()).unwrap();

    assert_eq!(pki.ca_origin, CaOrigin::Created);
    assert_eq!(pki.leaves.len(), 6);
    assert!(pki.leaves.iter().all(|l| !l.reused));
    assert_openssl_accepts(&pki_dir, &pki_dir.join(CA_CERT), &c);
    assert_issuer_bytes_match(&pki);

    for dir in ["", "nodes", "clients"] {
        assert_eq!(mode(&pki_dir.join(dir)), 0o700, "mode of pki/{dir}");
    }
    assert_eq!(mode(&pki_dir.join(CA_CERT)), 0o644);
    assert_eq!(mode(&pki_dir.join(CA_KEY)), 0o600);
    for leaf in &pki.leaves {
        assert_eq!(mode(&cert_path(&pki_dir, &leaf.id)), 0o644);
        assert_eq!(mode(&key_path(&pki_dir, &leaf.id)), 0o600);
        assert_eq!(
            fs::read_to_string(cert_path(&pki_dir, &leaf.id)).unwrap(),
            leaf.cert_pem
        );
    }

    // The CA itself, as openssl reads it.
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(pki_dir.join(CA_CERT))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(
        text.contains("Digital Signature, Certificate Sign, CRL Sign"),
        "{text}"
    );
    assert!(text.contains("Public-Key: (2048 bit)"), "{text}");
    let der = der_of(&pki.ca_cert_pem);
    let (_, ca) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(
        ca.subject().to_string(),
        "C=CN, ST=Beijing, L=Beijing, CN=etcd CA"
    );
    assert_eq!(ca.issuer().as_raw(), ca.subject().as_raw());
}

#[test]
fn leaves_say_what_the_spec_says() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(Algorithm::EcdsaP256);
    let t = now();
    let pki = ensure(dir.path(), &c, t, &quiet()).unwrap();
    let t = t.replace_nanosecond(0).unwrap();
    let validity = time::Duration::try_from(c.pki.validity).unwrap();
    assert_eq!(pki.ca_not_after, t + validity);

    for spec in leaf_specs(&c) {
        let issued = pki.leaf(&spec.id).unwrap();
        let info = check_leaf(&pki.ca_cert_pem, &issued.cert_pem, t).unwrap();
        assert_eq!(info.common_name, spec.common_name);
        assert_eq!(info.sans, spec.sans, "{}", spec.id);
        assert_eq!((info.server, info.client), (spec.server, spec.client));
        assert_eq!(info.not_after, t + validity);
        assert_eq!(issued.not_after, t + validity);

        let der = der_of(&issued.cert_pem);
        let (_, x) = X509Certificate::from_der(&der).unwrap();
        let bc = x
            .basic_constraints()
            .unwrap()
            .expect("basicConstraints present");
        assert!(!bc.value.ca, "{} must be CA:FALSE", spec.id);
        let ku = x.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && ku.key_encipherment() && !ku.key_cert_sign());
        let org = x
            .subject()
            .iter_organization()
            .next()
            .map(|a| a.as_str().unwrap().to_owned());
        assert_eq!(org, spec.organization);
        assert!(x.validity().not_before.to_datetime() <= t);
    }
    let api = pki.leaf("clients/kube-apiserver").unwrap();
    let info = check_leaf(&pki.ca_cert_pem, &api.cert_pem, t).unwrap();
    assert!(info.client && !info.server);
    let node = check_leaf(
        &pki.ca_cert_pem,
        &pki.leaf("nodes/etcd-3").unwrap().cert_pem,
        t,
    )
    .unwrap();
    assert!(node.sans.contains(&San::Dns("etcd-3.example.org".into())));
    assert!(node.server && node.client);
}

#[test]
fn ecdsa_p256_path_and_algorithm_switch() {
    if !require(&[OPENSSL]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(Algorithm::EcdsaP256);
    let pki = ensure(dir.path(), &c, now(), &quiet()).unwrap();
    assert_openssl_accepts(dir.path(), &dir.path().join(CA_CERT), &c);
    assert_issuer_bytes_match(&pki);
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(cert_path(dir.path(), "nodes/etcd-1"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ecdsa-with-SHA256"), "{text}");
    assert!(text.contains("NIST CURVE: P-256"), "{text}");
    assert!(
        pki.leaves[0]
            .key_pem
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );

    // A new algorithm re-issues the leaves; the CA is kept.
    let ca_before = fs::read(dir.path().join(CA_KEY)).unwrap();
    let rsa = cluster(Algorithm::Rsa2048);
    let pki = ensure(dir.path(), &rsa, now(), &quiet()).unwrap();
    assert_eq!(pki.ca_origin, CaOrigin::Reused);
    assert!(pki.leaves.iter().all(|l| !l.reused));
    assert_eq!(fs::read(dir.path().join(CA_KEY)).unwrap(), ca_before);
    assert_openssl_accepts(dir.path(), &dir.path().join(CA_CERT), &rsa);
}

#[test]
fn a_created_ca_has_path_length_zero() {
    if !require(&[OPENSSL]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    let pki = ensure(&pki_dir, &cluster(Algorithm::EcdsaP256), now(), &quiet()).unwrap();
    let der = der_of(&pki.ca_cert_pem);
    let (_, x) = X509Certificate::from_der(&der).unwrap();
    let bc = x.basic_constraints().unwrap().unwrap().value;
    assert!(bc.ca);
    assert_eq!(bc.path_len_constraint, Some(0));
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(pki_dir.join(CA_CERT))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
}
