//! These tests call the real `openssl` and `cfssl` binaries: a chain that only
//! this crate accepts is worth nothing to etcd. Without them a test is skipped,
//! or fails in CI (`tests/support/prereq.rs`, the integration tests' policy).
//!
//! - [`issuance`]: what a new PKI holds, and that openssl accepts it;
//! - [`reuse`]: reruns reuse, reissue and refuse exactly what they should;
//! - [`import`]: an existing CA (cfssl's, openssl's) is imported verbatim, or
//!   refused with the file named;
//! - [`key_secrecy`]: keys are found in every form, and never printed.

mod import;
mod issuance;
mod key_secrecy;
#[path = "../../../tests/support/prereq.rs"]
mod prereq;
mod reuse;

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
