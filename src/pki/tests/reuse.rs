//! Reruns: every file is reused byte for byte; a new SAN reissues only that node; half a CA is
//! an error that says what to do, while a CA key that signed nothing is an interrupted
//! creation and is redone; a leaf near expiry is reissued; a kept leaf must verify against the
//! CA, not just name it.

use super::*;

#[test]
fn rerun_reuses_every_file_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(Algorithm::Rsa2048);
    let t = now();
    let first = ensure(dir.path(), &c, t, &quiet()).unwrap();
    let before = snapshot(dir.path());
    let second = ensure(dir.path(), &c, t + time::Duration::hours(1), &quiet()).unwrap();
    assert_eq!(snapshot(dir.path()), before);
    assert_eq!(second.ca_origin, CaOrigin::Reused);
    assert_eq!(second.ca_cert_pem, first.ca_cert_pem);
    assert!(second.leaves.iter().all(|l| l.reused));
    for (a, b) in first.leaves.iter().zip(&second.leaves) {
        assert_eq!((&a.cert_pem, &a.key_pem), (&b.cert_pem, &b.key_pem));
    }
}

#[test]
fn a_new_san_reissues_only_that_node() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(Algorithm::EcdsaP256);
    ensure(dir.path(), &c, now(), &quiet()).unwrap();
    let before = snapshot(dir.path());

    let text = yaml()
        .replace("algorithm: rsa-2048", "algorithm: ecdsa-p256")
        .replace(
            "{ name: etcd-1, ip: 127.0.0.1 }",
            "{ name: etcd-1, ip: 127.0.0.1, sans: [etcd-1.example.org] }",
        );
    let changed = cluster_from(&text);
    let pki = ensure(dir.path(), &changed, now(), &quiet()).unwrap();
    let after = snapshot(dir.path());

    let reissued: Vec<_> = pki.leaves.iter().filter(|l| !l.reused).collect();
    assert_eq!(reissued.len(), 1);
    assert_eq!(reissued[0].id, "nodes/etcd-1");
    let info = check_leaf(&pki.ca_cert_pem, &reissued[0].cert_pem, now()).unwrap();
    assert!(info.sans.contains(&San::Dns("etcd-1.example.org".into())));
    let differing: Vec<_> = after
        .keys()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| k.to_string_lossy().into_owned())
        .collect();
    assert_eq!(differing, ["nodes/etcd-1-key.pem", "nodes/etcd-1.pem"]);
}

#[test]
fn half_a_ca_is_an_error_that_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(Algorithm::EcdsaP256);
    ensure(dir.path(), &c, now(), &quiet()).unwrap();
    let key = fs::read(dir.path().join(CA_KEY)).unwrap();
    fs::remove_file(dir.path().join(CA_KEY)).unwrap();
    let before = snapshot(dir.path());

    let err = format!("{:#}", ensure(dir.path(), &c, now(), &quiet()).unwrap_err());
    assert!(err.contains("ca-key.pem is missing"), "{err}");
    assert!(err.contains("restore ca-key.pem"), "{err}");
    assert!(
        err.contains(&format!("delete {}", dir.path().display())),
        "{err}"
    );
    assert_eq!(snapshot(dir.path()), before, "nothing may be regenerated");

    fs::write(dir.path().join(CA_KEY), key).unwrap();
    fs::remove_file(dir.path().join(CA_CERT)).unwrap();
    let err = format!("{:#}", ensure(dir.path(), &c, now(), &quiet()).unwrap_err());
    assert!(err.contains("ca.pem is missing"), "{err}");
}

#[test]
fn a_ca_key_that_signed_nothing_is_an_interrupted_creation_and_is_redone() {
    // What a run killed between writing the CA key and its certificate leaves.
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(Algorithm::EcdsaP256);
    fs::write(dir.path().join(CA_KEY), "half").unwrap();
    let pki = ensure(dir.path(), &c, now(), &quiet()).unwrap();
    assert_eq!(pki.ca_origin, CaOrigin::Created);
    assert_ne!(fs::read(dir.path().join(CA_KEY)).unwrap(), b"half");
    assert!(dir.path().join(CA_CERT).is_file());
}

#[test]
fn a_leaf_near_expiry_is_reissued() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = now();
    let long = cluster(Algorithm::EcdsaP256);
    ensure(dir.path(), &long, t0, &quiet()).unwrap();

    // Give etcd-2 a 40-day certificate, as a short-validity config would.
    fs::remove_file(cert_path(dir.path(), "nodes/etcd-2")).unwrap();
    let short = cluster_from(
        &yaml()
            .replace("algorithm: rsa-2048", "algorithm: ecdsa-p256")
            .replace("validity: 87600h", "validity: 960h"),
    );
    let pki = ensure(dir.path(), &short, t0, &quiet()).unwrap();
    let short_leaf = pki.leaf("nodes/etcd-2").unwrap().clone();
    assert!(!short_leaf.reused);
    assert!(pki.leaves.iter().filter(|l| l.reused).count() == 5);

    // 20 days later it has 20 days left: renewed; the others stay.
    let t1 = t0 + time::Duration::days(20);
    let pki = ensure(dir.path(), &long, t1, &quiet()).unwrap();
    let renewed = pki.leaf("nodes/etcd-2").unwrap();
    assert!(!renewed.reused);
    assert_ne!(renewed.cert_pem, short_leaf.cert_pem);
    assert!(renewed.not_after > short_leaf.not_after + time::Duration::days(365));
    assert_eq!(pki.leaves.iter().filter(|l| l.reused).count(), 5);

    // 5 days after issuance it is still fine.
    let pki = ensure(dir.path(), &long, t1 + time::Duration::days(5), &quiet()).unwrap();
    assert!(pki.leaves.iter().all(|l| l.reused));
}

#[test]
fn check_leaf_verifies_the_signature_not_just_the_name() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = cluster(Algorithm::EcdsaP256);
    let t = now();
    let pki_a = ensure(a.path(), &c, t, &quiet()).unwrap();
    let pki_b = ensure(b.path(), &c, t, &quiet()).unwrap();
    let leaf_b = &pki_b.leaf("nodes/etcd-1").unwrap().cert_pem;

    // Same subject "etcd CA", different key: only the signature tells them apart.
    let err = check_leaf(&pki_a.ca_cert_pem, leaf_b, t)
        .unwrap_err()
        .to_string();
    assert!(err.contains("signature does not verify"), "{err}");
    // A leaf of this CA passes; the same leaf after its expiry does not.
    let leaf_a = &pki_a.leaf("nodes/etcd-1").unwrap().cert_pem;
    check_leaf(&pki_a.ca_cert_pem, leaf_a, t).unwrap();
    let later = t + time::Duration::days(365 * 11);
    let err = check_leaf(&pki_a.ca_cert_pem, leaf_a, later)
        .unwrap_err()
        .to_string();
    assert!(err.contains("expired"), "{err}");

    // A leaf of B left in A's directory is re-issued, not reused.
    fs::copy(
        cert_path(b.path(), "nodes/etcd-1"),
        cert_path(a.path(), "nodes/etcd-1"),
    )
    .unwrap();
    fs::copy(
        key_path(b.path(), "nodes/etcd-1"),
        key_path(a.path(), "nodes/etcd-1"),
    )
    .unwrap();
    let pki = ensure(a.path(), &c, t, &quiet()).unwrap();
    assert!(!pki.leaf("nodes/etcd-1").unwrap().reused);
    check_leaf(
        &pki.ca_cert_pem,
        &pki.leaf("nodes/etcd-1").unwrap().cert_pem,
        t,
    )
    .unwrap();
}
