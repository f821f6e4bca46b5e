//! Redirects over https, through a local TLS server the binary is made to trust: to another
//! https URL they are followed (the control), to plain http they are refused, naming both URLs.

use std::io::Write;
use std::path::PathBuf;

use etcdpack::fsutil::sha256_hex;

use crate::support::fetching::{URL_PATH, fetch_command, files_under, serve_bytes, small_release};
use crate::support::{Gen, stderr};

/// A CA (its PEM, for `SSL_CERT_FILE`) and a server configuration for
/// 127.0.0.1 signed by it.
fn tls_for_localhost() -> (String, std::sync::Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &Issuer::from_params(&ca_params, &ca_key))
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    (ca.pem(), std::sync::Arc::new(config))
}

/// An https server on 127.0.0.1 answering every request with `response`;
/// returns its URL. It runs until the test process ends.
fn https_server(config: std::sync::Arc<rustls::ServerConfig>, response: Vec<u8>) -> String {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut reader = BufReader::new(&mut tls);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = tls.write_all(&response);
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    base
}

fn redirect_to(location: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

/// `etcdpack fetch` from `mirror`, trusting `ca_pem` for https.
fn cli_fetch_trusting(g: &Gen, ca_pem: &str, mirror: &str, sha: &str) -> std::process::Output {
    let ca = g.dir.path().join("test-ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    fetch_command(g, mirror, sha)
        .env("SSL_CERT_FILE", &ca)
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap()
}

#[test]
fn https_to_https_redirects_are_followed() {
    // The control: the local TLS server is trusted and its redirects work,
    // so the refusal below is about the downgrade alone.
    let g = Gen::new(&["127.0.0.1"], "");
    let body = small_release();
    let sha = sha256_hex(&body);
    let (ca, config) = tls_for_localhost();
    let mut ok = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    ok.extend_from_slice(&body);
    let file = https_server(config.clone(), ok);
    let redirecting = https_server(config, redirect_to(&format!("{file}/blob")));
    let out = cli_fetch_trusting(&g, &ca, &redirecting, &sha);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert_eq!(std::fs::read(path).unwrap(), body);
}

#[test]
fn https_to_http_redirects_are_refused() {
    let g = Gen::new(&["127.0.0.1"], "");
    let body = small_release();
    let sha = sha256_hex(&body);
    // The plain server would serve the right file: only the downgrade is wrong.
    let plain = serve_bytes(body);
    let target = format!("{}{URL_PATH}", plain.base_url);
    let (ca, config) = tls_for_localhost();
    let base = https_server(config, redirect_to(&target));
    let out = cli_fetch_trusting(&g, &ca, &base, &sha);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{base}{URL_PATH}")) && err.contains(&target),
        "the message names both URLs: {err}"
    );
    assert!(err.contains("https") && err.contains("help:"), "{err}");
    assert_eq!(plain.hits(), 0, "the http URL was requested");
    assert_eq!(files_under(&g.cache), Vec::<PathBuf>::new());
}
