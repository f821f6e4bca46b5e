//! Importing an existing CA: cfssl's (the recipe's) is taken verbatim and signs leaves openssl
//! verifies; a certificate file that holds a key is refused either way round; only the parsed
//! certificate of an imported file is written; an openssl EC CA is imported; unusable imports
//! are refused with the file named.

use super::*;

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
