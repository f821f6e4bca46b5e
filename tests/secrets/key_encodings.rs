//! `verify` knows the CA key in every encoding openssl gives it (PKCS#8, PKCS#1 and SEC1, PEM
//! and DER), in a tarball, a .deb, an .rpm and a node tree; and it does not take the node's own
//! key, in the same encodings, for the CA's.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support;
use crate::support::tamper::{
    artifact_name, assert_verify_fails, assert_verify_passes, copy_of_dir, fresh_output,
    fresh_rsa_output, repack_deb, repack_rpm, repack_tarball, substitute,
};

/// `key_file` re-encoded by `openssl <args>` (the key on stdout).
fn openssl(key_file: &Path, args: &[&str]) -> Vec<u8> {
    let o = Command::new("openssl")
        .args(args)
        .arg("-in")
        .arg(key_file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// The encodings openssl gives an ECDSA key: PKCS#8 and SEC1, PEM and DER.
const EC_ENCODINGS: &[(&str, &[&str])] = &[
    ("pkcs8-pem", &["pkey"]),
    ("pkcs8-der", &["pkey", "-outform", "DER"]),
    ("sec1-pem", &["ec"]),
    ("sec1-der", &["ec", "-outform", "DER"]),
];

/// The encodings openssl gives an RSA key: PKCS#8 and PKCS#1, PEM and DER.
const RSA_ENCODINGS: &[(&str, &[&str])] = &[
    ("pkcs8-pem", &["pkey"]),
    ("pkcs8-der", &["pkey", "-outform", "DER"]),
    ("pkcs1-pem", &["rsa", "-traditional"]),
    ("pkcs1-der", &["rsa", "-traditional", "-outform", "DER"]),
];

/// The key file `key` under pki/ in each encoding, each checked by openssl
/// to be the same key. PKCS#8 is what etcdpack writes; the traditional
/// encodings (PKCS#1, SEC1) share no bytes with it that a search could find.
fn reencoded(out: &Path, key: &str, encodings: &[(&str, &[&str])]) -> Vec<(String, Vec<u8>)> {
    let file = out.join("pki").join(key);
    let original = fs::read(&file).unwrap();
    let modulus = |data: &[u8]| {
        let scratch = tempfile::NamedTempFile::new().unwrap();
        fs::write(scratch.path(), data).unwrap();
        let form = if data.starts_with(b"-----") {
            "PEM"
        } else {
            "DER"
        };
        openssl(scratch.path(), &["pkey", "-pubout", "-inform", form])
    };
    let public = modulus(&original);
    encodings
        .iter()
        .map(|(what, args)| {
            let bytes = openssl(&file, args);
            if !what.starts_with("pkcs8") {
                assert_ne!(bytes, original, "{what}");
            }
            assert_eq!(modulus(&bytes), public, "{what}: not the same key");
            (what.to_string(), bytes)
        })
        .collect()
}

#[test]
fn verify_knows_the_ca_key_in_every_encoding_in_a_tarball() {
    support::require!(support::STANDIN, support::OPENSSL);
    for (fresh, encodings) in [
        (fresh_output as fn() -> _, EC_ENCODINGS),
        (fresh_rsa_output, RSA_ENCODINGS),
    ] {
        let (_dir, out) = fresh();
        for (what, bytes) in reencoded(&out, "ca-key.pem", encodings) {
            let (_dir, out) = copy_of_dir(&out);
            let name = artifact_name(&out, ".tar.gz");
            let tarball = fs::read(out.join("dist").join(&name)).unwrap();
            // Neither under root/ nor named like a key.
            let planted = repack_tarball(&tarball, &[("backup.bin".to_owned(), bytes)]);
            substitute(&out, &name, &planted);
            eprintln!("case: {what}");
            assert_verify_fails(&out, &name, "does not contain the CA key");
        }
    }
}

#[test]
fn verify_knows_the_ca_key_re_encoded_in_a_deb_an_rpm_and_a_node_tree() {
    support::require!(
        support::STANDIN,
        support::OPENSSL,
        support::DPKG_DEB,
        support::RPM
    );
    let (_dir, base) = fresh_output();
    let keys = reencoded(&base, "ca-key.pem", EC_ENCODINGS);
    let key = |what: &str| keys.iter().find(|(w, _)| w == what).unwrap().1.clone();

    // SEC1 DER in the control member of the .deb, beside the scripts.
    let (_dir, out) = copy_of_dir(&base);
    let name = artifact_name(&out, ".deb");
    let planted = repack_deb(&out, &name, |tree| {
        fs::write(tree.join("DEBIAN/extra"), key("sec1-der")).unwrap();
    });
    substitute(&out, &name, &planted);
    eprintln!("case: deb control");
    assert_verify_fails(&out, &name, "does not contain the CA key");

    // SEC1 PEM in the data member.
    let (_dir, out) = copy_of_dir(&base);
    let planted = repack_deb(&out, &name, |tree| {
        fs::write(tree.join("opt/etcd/ssl/extra.txt"), key("sec1-pem")).unwrap();
    });
    substitute(&out, &name, &planted);
    eprintln!("case: deb data");
    assert_verify_fails(&out, &name, "does not contain the CA key");

    // PKCS#8 DER in the .rpm's payload.
    let (_dir, out) = copy_of_dir(&base);
    let name = artifact_name(&out, ".rpm");
    let planted = repack_rpm(&out, &name, &[("/opt/etcd/extra", key("pkcs8-der"), 0o644)]);
    substitute(&out, &name, &planted);
    eprintln!("case: rpm payload");
    assert_verify_fails(&out, &name, "does not contain the CA key");

    // SEC1 PEM in a staged node tree (no artifact changes).
    let (_dir, out) = copy_of_dir(&base);
    fs::write(out.join("nodes/etcd-1/opt/etcd/notes"), key("sec1-pem")).unwrap();
    eprintln!("case: node tree");
    assert_verify_fails(&out, "nodes/etcd-1", "does not contain the CA key");
}

#[test]
fn verify_does_not_take_a_node_key_for_the_ca_key() {
    support::require!(support::STANDIN, support::OPENSSL);
    // The control: the same plants with the node's own key, which the
    // artifacts carry anyway, are no CA key.
    for (fresh, encodings) in [
        (fresh_output as fn() -> _, EC_ENCODINGS),
        (fresh_rsa_output, RSA_ENCODINGS),
    ] {
        let (_dir, base) = fresh();
        let keys = reencoded(&base, "nodes/etcd-1-key.pem", encodings);
        let (_dir, out) = copy_of_dir(&base);
        let name = artifact_name(&out, ".tar.gz");
        let tarball = fs::read(out.join("dist").join(&name)).unwrap();
        let extra: Vec<_> = keys
            .iter()
            .map(|(what, bytes)| (format!("backup-{what}"), bytes.clone()))
            .collect();
        substitute(&out, &name, &repack_tarball(&tarball, &extra));
        fs::write(
            out.join("nodes/etcd-1/opt/etcd/notes"),
            &keys.iter().find(|(w, _)| w.ends_with("pem")).unwrap().1,
        )
        .unwrap();
        assert_verify_passes(&out);
    }
}
