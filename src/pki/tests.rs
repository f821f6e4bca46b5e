//! These tests call the real `openssl` and `cfssl` binaries: a chain that only
//! this crate accepts is worth nothing to etcd. Without them a test is skipped,
//! or fails in CI (`tests/support/prereq.rs`, the integration tests' policy).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;
use crate::config::{self, Algorithm};
use prereq::{CFSSL, OPENSSL, require};

#[path = "../../tests/support/prereq.rs"]
mod prereq;

/// The shipped example, moved onto loopback addresses.
fn yaml() -> String {
    config::EXAMPLE.replace("192.168.0.", "127.0.0.")
}

fn cluster_from(text: &str) -> Cluster {
    config::parse(Path::new("test.yaml"), text, &Default::default())
        .unwrap_or_else(|e| panic!("test config is invalid: {e}"))
}

fn cluster(algorithm: Algorithm) -> Cluster {
    cluster_from(&yaml().replace(
        "algorithm: rsa-2048",
        &format!("algorithm: {}", algorithm.as_str()),
    ))
}

fn import_cluster(algorithm: Algorithm, cert: &Path, key: &Path) -> Cluster {
    let text = yaml()
        .replace(
            "algorithm: rsa-2048",
            &format!("algorithm: {}", algorithm.as_str()),
        )
        .replace(
            "# ca_cert: ca.pem",
            &format!("ca_cert: '{}'", cert.display()),
        )
        .replace(
            "# ca_key: ca-key.pem",
            &format!("ca_key: '{}'", key.display()),
        );
    let c = cluster_from(&text);
    assert!(
        c.pki.import.is_some(),
        "the import keys were not substituted"
    );
    c
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn quiet() -> Reporter {
    Reporter::silent()
}

fn der_of(pem: &str) -> Vec<u8> {
    x509::pem_contents(pem.as_bytes()).unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file under `dir`: relative path → (bytes, mode).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, u32)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_owned();
                out.insert(rel, (fs::read(&path).unwrap(), mode(&path)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn openssl_verify(ca: &Path, leaf: &Path, purpose: &str) -> Result<(), String> {
    let out = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(ca)
        .args(["-purpose", purpose])
        .arg(leaf)
        .output()
        .expect("the openssl binary is installed");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Node leaves must pass as TLS server and client, client leaves only as client.
fn assert_openssl_accepts(pki_dir: &Path, ca_file: &Path, cluster: &Cluster) {
    for spec in leaf_specs(cluster) {
        let leaf = cert_path(pki_dir, &spec.id);
        openssl_verify(ca_file, &leaf, "sslclient")
            .unwrap_or_else(|e| panic!("{} as client: {e}", spec.id));
        let as_server = openssl_verify(ca_file, &leaf, "sslserver");
        assert_eq!(as_server.is_ok(), spec.server, "{}: {as_server:?}", spec.id);
    }
}

fn assert_issuer_bytes_match(pki: &Pki) {
    let ca_der = der_of(&pki.ca_cert_pem);
    let (_, ca) = X509Certificate::from_der(&ca_der).unwrap();
    for leaf in &pki.leaves {
        let der = der_of(&leaf.cert_pem);
        let (_, x) = X509Certificate::from_der(&der).unwrap();
        assert_eq!(
            x.issuer().as_raw(),
            ca.subject().as_raw(),
            "issuer bytes of {}",
            leaf.id
        );
    }
}

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

/// `cfssl gencert -initca` with the recipe's ca-csr.json; returns (ca.pem, ca-key.pem).
fn cfssl_ca(dir: &Path) -> (PathBuf, PathBuf) {
    let csr = dir.join("ca-csr.json");
    fs::write(
        &csr,
        r#"{"CN": "etcd CA", "key": {"algo": "rsa", "size": 2048},
            "names": [{"C": "CN", "L": "Beijing", "ST": "Beijing"}]}"#,
    )
    .unwrap();
    let out = Command::new("cfssl")
        .args(["gencert", "-initca"])
        .arg(&csr)
        .output()
        .expect("the cfssl binary is installed (Debian: golang-cfssl)");
    assert!(
        out.status.success(),
        "cfssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cert = dir.join("ca.pem");
    let key = dir.join("ca-key.pem");
    fs::write(&cert, json["cert"].as_str().unwrap()).unwrap();
    fs::write(&key, json["key"].as_str().unwrap()).unwrap();
    (cert, key)
}

#[test]
fn a_cfssl_ca_is_imported_verbatim_and_signs_verifiable_leaves() {
    if !require(&[CFSSL, OPENSSL]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ca_cert, ca_key) = cfssl_ca(dir.path());
    let original_key = fs::read(&ca_key).unwrap();
    assert!(String::from_utf8_lossy(&original_key).contains("BEGIN RSA PRIVATE KEY"));
    let pki_dir = dir.path().join("out/pki");
    let c = import_cluster(Algorithm::Rsa2048, &ca_cert, &ca_key);

    let pki = ensure(&pki_dir, &c, now(), &quiet()).unwrap();
    assert_eq!(pki.ca_origin, CaOrigin::Imported);
    assert_eq!(fs::read(pki_dir.join(CA_KEY)).unwrap(), original_key);
    assert_eq!(
        fs::read(pki_dir.join(CA_CERT)).unwrap(),
        fs::read(&ca_cert).unwrap()
    );
    assert_eq!(mode(&pki_dir.join(CA_KEY)), 0o600);
    assert_openssl_accepts(&pki_dir, &ca_cert, &c);
    assert_issuer_bytes_match(&pki);

    // Rerun: same CA, nothing changes.
    let before = snapshot(&pki_dir);
    let again = ensure(&pki_dir, &c, now(), &quiet()).unwrap();
    assert_eq!(again.ca_origin, CaOrigin::Imported);
    assert!(again.leaves.iter().all(|l| l.reused));
    assert_eq!(snapshot(&pki_dir), before);

    // An output directory with its own CA refuses a different import.
    let other = dir.path().join("other/pki");
    ensure(&other, &cluster(Algorithm::EcdsaP256), now(), &quiet()).unwrap();
    let err = format!("{:#}", ensure(&other, &c, now(), &quiet()).unwrap_err());
    assert!(err.contains("holds a different CA"), "{err}");
    assert!(
        err.contains(&format!("delete {}", other.display())),
        "{err}"
    );
}

#[test]
fn a_ca_cert_file_that_holds_a_key_is_refused_in_either_order() {
    if !require(&[CFSSL, OPENSSL]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ca_cert, ca_key) = cfssl_ca(dir.path());
    let cert = fs::read_to_string(&ca_cert).unwrap();
    let key = fs::read_to_string(&ca_key).unwrap();
    // `cat ca.pem ca-key.pem > bundle.pem`, and the key-first order; and the
    // same key as PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
    let pkcs8 = Command::new("openssl")
        .args(["pkey", "-in"])
        .arg(&ca_key)
        .output()
        .unwrap();
    assert!(pkcs8.status.success());
    let pkcs8 = String::from_utf8(pkcs8.stdout).unwrap();
    for (name, text) in [
        ("cert-then-key.pem", format!("{cert}{key}")),
        ("key-then-cert.pem", format!("{key}{cert}")),
        ("cert-then-pkcs8.pem", format!("{cert}{pkcs8}")),
    ] {
        let bundle = dir.path().join(name);
        fs::write(&bundle, text).unwrap();
        let pki_dir = dir.path().join(format!("out-{name}/pki"));
        // Config validation refuses it too (below); `ensure` must not rely on it.
        let mut c = cluster(Algorithm::Rsa2048);
        c.pki.import = Some(crate::config::CaImport {
            cert: bundle.clone(),
            key: ca_key.clone(),
            cert_at: crate::config::Position::file(Path::new("cluster.yaml")),
            key_at: crate::config::Position::file(Path::new("cluster.yaml")),
        });
        let err = format!("{:#}", ensure(&pki_dir, &c, now(), &quiet()).unwrap_err());
        assert!(err.contains(&bundle.display().to_string()), "{err}");
        assert!(err.contains("holds a private key"), "{err}");
        assert!(err.contains("help: give only the CA certificate"), "{err}");
        assert!(!pki_dir.join(CA_CERT).exists(), "nothing written: {err}");
        // The check before anything is written uses the same code.
        let err = format!("{:#}", check_import(&c, now()).unwrap_err());
        assert!(err.contains("holds a private key"), "{err}");
    }
}

#[test]
fn only_the_parsed_certificate_of_an_imported_file_is_written() {
    if !require(&[CFSSL]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ca_cert, ca_key) = cfssl_ca(dir.path());
    let der = der_of(&fs::read_to_string(&ca_cert).unwrap());
    // What `openssl pkcs12 -nokeys` exports: attributes around the PEM, and a
    // second certificate after it.
    let other = rcgen::CertificateParams::new(vec!["x.example".into()])
        .unwrap()
        .self_signed(&KeyPair::generate().unwrap())
        .unwrap()
        .pem();
    let exported = dir.path().join("exported.pem");
    fs::write(
        &exported,
        format!(
            "Bag Attributes\n    friendlyName: etcd CA\nsubject=C = CN, CN = etcd CA\n{}{other}",
            fs::read_to_string(&ca_cert).unwrap()
        ),
    )
    .unwrap();
    let pki_dir = dir.path().join("out/pki");
    let c = import_cluster(Algorithm::Rsa2048, &exported, &ca_key);
    let pki = ensure(&pki_dir, &c, now(), &quiet()).unwrap();
    let written = fs::read_to_string(pki_dir.join(CA_CERT)).unwrap();
    assert_eq!(written, pki.ca_cert_pem);
    assert!(
        written.starts_with("-----BEGIN CERTIFICATE-----\n"),
        "{written}"
    );
    assert_eq!(written.matches("BEGIN").count(), 1, "{written}");
    assert!(!written.contains("Bag Attributes"));
    assert_eq!(der_of(&written), der);
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

#[test]
fn an_openssl_ec_ca_is_imported() {
    if !require(&[OPENSSL]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("ec-key.pem");
    let cert = dir.path().join("ec.pem");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        "ec-key.pem",
    ]);
    run(&[
        "req",
        "-x509",
        "-new",
        "-key",
        "ec-key.pem",
        "-subj",
        "/O=Example/CN=Example EC CA",
        "-days",
        "30",
        "-out",
        "ec.pem",
    ]);
    assert!(
        fs::read_to_string(&key)
            .unwrap()
            .contains("BEGIN EC PRIVATE KEY")
    );
    let pki_dir = dir.path().join("pki");
    let c = import_cluster(Algorithm::EcdsaP256, &cert, &key);
    let pki = ensure(&pki_dir, &c, now(), &quiet()).unwrap();
    assert_openssl_accepts(&pki_dir, &cert, &c);
    assert_issuer_bytes_match(&pki);
    assert_eq!(
        fs::read(pki_dir.join(CA_KEY)).unwrap(),
        fs::read(&key).unwrap()
    );
    // Leaves cannot outlive the 30-day CA.
    assert!(pki.leaves.iter().all(|l| l.not_after <= pki.ca_not_after));
}

/// Write a certificate and key made with rcgen; returns their paths.
fn write_pair(
    dir: &Path,
    name: &str,
    params: &CertificateParams,
    key: &KeyPair,
) -> (PathBuf, PathBuf) {
    let cert = params.self_signed(key).unwrap();
    let cert_file = dir.join(format!("{name}.pem"));
    let key_file = dir.join(format!("{name}-key.pem"));
    fs::write(&cert_file, cert.pem()).unwrap();
    fs::write(&key_file, key.serialize_pem()).unwrap();
    (cert_file, key_file)
}

fn ca_params(not_after: OffsetDateTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, "test CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.not_before = not_after - time::Duration::days(400);
    p.not_after = not_after;
    p
}

#[test]
fn unusable_imports_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    let import = |cert: &Path, key: &Path| {
        // Config validation refuses these too; `ensure` must not rely on it.
        let mut c = cluster(Algorithm::EcdsaP256);
        c.pki.import = Some(crate::config::CaImport {
            cert: cert.to_owned(),
            key: key.to_owned(),
            cert_at: crate::config::Position::file(Path::new("cluster.yaml")),
            key_at: crate::config::Position::file(Path::new("cluster.yaml")),
        });
        let pki_dir = dir.path().join("pki");
        let err = ensure(&pki_dir, &c, t, &quiet()).unwrap_err();
        assert!(!pki_dir.join(CA_KEY).exists(), "nothing copied on error");
        format!("{err:#}")
    };

    // Key of another CA.
    let good = KeyPair::generate().unwrap();
    let (cert, _) = write_pair(
        dir.path(),
        "good",
        &ca_params(t + time::Duration::days(30)),
        &good,
    );
    let stranger = KeyPair::generate().unwrap();
    let stranger_file = dir.path().join("stranger-key.pem");
    fs::write(&stranger_file, stranger.serialize_pem()).unwrap();
    let err = import(&cert, &stranger_file);
    assert!(err.contains("is not the key of"), "{err}");
    assert!(err.contains(&stranger_file.display().to_string()), "{err}");

    // Not a CA.
    let mut leaf = ca_params(t + time::Duration::days(30));
    leaf.is_ca = IsCa::ExplicitNoCa;
    let (cert, key) = write_pair(dir.path(), "leaf", &leaf, &good);
    let err = import(&cert, &key);
    assert!(err.contains("is not a CA certificate"), "{err}");
    assert!(err.contains(&cert.display().to_string()), "{err}");

    // Expired.
    let (cert, key) = write_pair(
        dir.path(),
        "old",
        &ca_params(t - time::Duration::days(1)),
        &good,
    );
    let err = import(&cert, &key);
    assert!(err.contains("expired"), "{err}");
    assert!(err.contains(&cert.display().to_string()), "{err}");
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

#[test]
fn contains_key_finds_the_key_in_every_form() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(Algorithm::EcdsaP256);
    ensure(dir.path(), &c, now(), &quiet()).unwrap();
    let key = fs::read_to_string(dir.path().join(CA_KEY)).unwrap();
    let cert = fs::read(dir.path().join(CA_CERT)).unwrap();
    let other = KeyPair::generate().unwrap().serialize_pem();

    let embed = |inner: &[u8]| {
        let mut v = b"\x7fELF binary junk \x00\x01\x02".to_vec();
        v.extend_from_slice(inner);
        v.extend_from_slice(b"\x00trailing");
        v
    };
    assert!(contains_key(&embed(key.as_bytes()), &key));
    assert!(contains_key(&embed(&der_of(&key)), &key));
    let json = serde_json::to_string(&serde_json::json!({ "key": key })).unwrap();
    assert!(contains_key(json.as_bytes(), &key), "{json}");
    let one_line: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let rewrapped: Vec<u8> = one_line
        .as_bytes()
        .chunks(76)
        .flat_map(|c| c.iter().copied().chain(*b"\r\n"))
        .collect();
    assert!(contains_key(&embed(&rewrapped), &key));

    assert!(!contains_key(&embed(&cert), &key));
    assert!(!contains_key(&embed(other.as_bytes()), &key));
    assert!(!contains_key(b"", &key));
    assert!(!contains_key(&embed(key.as_bytes()), ""));
}

#[test]
fn debug_output_never_shows_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ensure(dir.path(), &cluster(Algorithm::EcdsaP256), now(), &quiet()).unwrap();
    let shown = format!("{pki:?}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(shown.contains("nodes/etcd-1"));
}
