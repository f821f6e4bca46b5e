//! `fetch::ensure_release` against a local server that fails in every way a
//! real mirror or network can, checking that the cache never holds a file
//! that was not verified and that a good run always recovers. The last tests
//! do the same through the built binary (`etcdpack fetch` and `gen`), for
//! what a user sees: exit code, message, cache and output directory.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use etcdpack::config::{Arch, Etcd};
use etcdpack::extract;
use etcdpack::fetch::{FetchOptions, ensure_release};
use etcdpack::fsutil::sha256_hex;
use etcdpack::report::Reporter;
use support::{Gen, HttpServer, Response, etcdpack, standin};

const STEM: &str = "etcd-v3.4.16-linux-amd64";
const URL_PATH: &str = "/v3.4.16/etcd-v3.4.16-linux-amd64.tar.gz";

/// A small, valid release-shaped tarball.
fn small_release() -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in [
        ("etcd", &b"#!/bin/sh\necho etcd\n"[..]),
        ("etcdctl", b"etcdctl"),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_path(format!("{STEM}/{name}")).unwrap();
        header.set_mode(0o755);
        header.set_size(data.len() as u64);
        header.set_cksum();
        tar.append(&header, data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn etcd(sha256: &str) -> Etcd {
    Etcd {
        version: "3.4.16".into(),
        arch: Arch::Amd64,
        sha256: sha256.into(),
        url: None,
    }
}

fn opts(cache: &Path, server: &HttpServer) -> FetchOptions {
    FetchOptions {
        mirror: Some(server.base_url.clone()),
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
        ..FetchOptions::new(cache.to_path_buf())
    }
}

/// Every non-directory under `dir`, temporary files included.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn serve_bytes(body: Vec<u8>) -> HttpServer {
    HttpServer::with_handler(move |path, _| {
        if path == URL_PATH {
            Response::Ok(body.clone())
        } else {
            Response::Status(404)
        }
    })
}

fn expect_err(result: anyhow::Result<PathBuf>) -> String {
    let msg = format!("{:#}", result.expect_err("the fetch should have failed"));
    // Shown with --nocapture, to read the messages a user would get.
    eprintln!("{msg}");
    msg
}

/// Fetch from `server` into a fresh cache, which must succeed; the bytes fetched.
fn fetch_ok(server: &HttpServer, sha: &str) -> Vec<u8> {
    let cache = tempfile::tempdir().unwrap();
    let path = ensure_release(&etcd(sha), &opts(cache.path(), server), &Reporter::silent())
        .expect("the fetch should have succeeded");
    std::fs::read(path).unwrap()
}

/// After a failure, a good server fills the same cache without trouble.
fn assert_recovers(cache: &Path) {
    let body = small_release();
    let sha = sha256_hex(&body);
    let server = serve_bytes(body.clone());
    let path = ensure_release(&etcd(&sha), &opts(cache, &server), &Reporter::silent()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(files_under(cache), vec![path]);
    assert_eq!(server.hits(), 1);
}

fn failing(
    handler: impl Fn(&str, usize) -> Response + Send + Sync + 'static,
) -> (HttpServer, tempfile::TempDir, String) {
    let server = HttpServer::with_handler(handler);
    let cache = tempfile::tempdir().unwrap();
    let sha = sha256_hex(&small_release());
    (server, cache, sha)
}

#[test]
fn good_download_is_cached_and_then_reused_without_a_request() {
    let body = small_release();
    let sha = sha256_hex(&body);
    let server = serve_bytes(body.clone());
    let cache = tempfile::tempdir().unwrap();
    let opts = opts(cache.path(), &server);

    let path = ensure_release(&etcd(&sha), &opts, &Reporter::silent()).unwrap();
    assert_eq!(path, cache.path().join(&sha).join(format!("{STEM}.tar.gz")));
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(files_under(cache.path()), vec![path.clone()]);
    assert_eq!(server.hits(), 1);

    let again = ensure_release(&etcd(&sha), &opts, &Reporter::silent()).unwrap();
    assert_eq!(again, path);
    assert_eq!(server.hits(), 1, "a cache hit makes no request");
}

#[test]
fn damaged_cache_file_is_replaced() {
    let body = small_release();
    let sha = sha256_hex(&body);
    let server = serve_bytes(body.clone());
    let cache = tempfile::tempdir().unwrap();
    let path = cache.path().join(&sha).join(format!("{STEM}.tar.gz"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"half a download").unwrap();

    let got = ensure_release(
        &etcd(&sha),
        &opts(cache.path(), &server),
        &Reporter::silent(),
    )
    .unwrap();
    assert_eq!(got, path);
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(server.hits(), 1);
}

#[test]
fn checksum_mismatch_fails_closed() {
    let good_sha = sha256_hex(&small_release());
    let evil = b"not the release you pinned".to_vec();
    let evil_sha = sha256_hex(&evil);
    let server = serve_bytes(evil);
    let cache = tempfile::tempdir().unwrap();

    let msg = expect_err(ensure_release(
        &etcd(&good_sha),
        &opts(cache.path(), &server),
        &Reporter::silent(),
    ));
    assert!(msg.contains(&good_sha) && msg.contains(&evil_sha), "{msg}");
    assert!(msg.contains("checksum mismatch"), "{msg}");
    assert!(msg.contains(URL_PATH), "{msg}");
    assert_eq!(files_under(cache.path()), Vec::<PathBuf>::new());
    assert_eq!(server.hits(), 1, "a wrong file is not fetched again");
    assert_recovers(cache.path());
}

#[test]
fn not_found_fails_at_once_with_the_fix() {
    let (server, cache, sha) = failing(|_, _| Response::Status(404));
    let msg = expect_err(ensure_release(
        &etcd(&sha),
        &opts(cache.path(), &server),
        &Reporter::silent(),
    ));
    assert!(msg.contains("404"), "{msg}");
    assert!(
        msg.contains(&format!("{}{URL_PATH}", server.base_url)),
        "{msg}"
    );
    assert!(
        msg.contains("--mirror") && msg.contains("--etcd-tarball"),
        "{msg}"
    );
    assert_eq!(server.hits(), 1, "404 is not retried");
    assert_eq!(files_under(cache.path()), Vec::<PathBuf>::new());
    assert_recovers(cache.path());
}

#[test]
fn server_error_is_retried() {
    let body = small_release();
    let sha = sha256_hex(&body);
    let served = body.clone();
    let server = HttpServer::with_handler(move |_, n| {
        if n == 0 {
            Response::Status(500)
        } else {
            Response::Ok(served.clone())
        }
    });
    assert_eq!(fetch_ok(&server, &sha), body);
    assert_eq!(server.hits(), 2);
}

#[test]
fn persistent_server_error_gives_up_after_three_attempts() {
    let (server, cache, sha) = failing(|_, _| Response::Status(503));
    let msg = expect_err(ensure_release(
        &etcd(&sha),
        &opts(cache.path(), &server),
        &Reporter::silent(),
    ));
    assert!(msg.contains("503") && msg.contains("3 attempts"), "{msg}");
    assert_eq!(server.hits(), 3);
    assert_eq!(files_under(cache.path()), Vec::<PathBuf>::new());
    assert_recovers(cache.path());
}

#[test]
fn connection_reset_mid_body_is_retried_then_fails_cleanly() {
    let (server, cache, sha) = failing(|_, _| Response::ResetAfter(20_000));
    let msg = expect_err(ensure_release(
        &etcd(&sha),
        &opts(cache.path(), &server),
        &Reporter::silent(),
    ));
    assert!(msg.contains("3 attempts"), "{msg}");
    assert_eq!(server.hits(), 3);
    assert_eq!(files_under(cache.path()), Vec::<PathBuf>::new());
    assert_recovers(cache.path());
}

#[test]
fn truncated_body_is_retried_then_fails_cleanly() {
    let (server, cache, sha) = failing(|_, _| Response::Truncated {
        declared_len: 10_000,
        bytes: vec![1; 100],
    });
    let msg = expect_err(ensure_release(
        &etcd(&sha),
        &opts(cache.path(), &server),
        &Reporter::silent(),
    ));
    assert!(msg.contains("3 attempts"), "{msg}");
    assert_eq!(server.hits(), 3);
    assert_eq!(files_under(cache.path()), Vec::<PathBuf>::new());
    assert_recovers(cache.path());
}

#[test]
fn endless_body_is_stopped_at_max_bytes() {
    let (server, cache, sha) = failing(|_, _| Response::Endless);
    let opts = FetchOptions {
        max_bytes: 1 << 20,
        ..opts(cache.path(), &server)
    };
    let msg = expect_err(ensure_release(&etcd(&sha), &opts, &Reporter::silent()));
    assert!(
        msg.contains("larger than the limit of 1048576 bytes"),
        "{msg}"
    );
    assert_eq!(server.hits(), 1);
    assert_eq!(files_under(cache.path()), Vec::<PathBuf>::new());
    assert_recovers(cache.path());
}

#[test]
fn announced_size_over_max_bytes_is_refused_before_reading() {
    let (server, cache, sha) = failing(|_, _| Response::Ok(vec![0; 4096]));
    let opts = FetchOptions {
        max_bytes: 1000,
        ..opts(cache.path(), &server)
    };
    let msg = expect_err(ensure_release(&etcd(&sha), &opts, &Reporter::silent()));
    assert!(msg.contains("announces 4096 bytes"), "{msg}");
    assert_eq!(files_under(cache.path()), Vec::<PathBuf>::new());
}

#[test]
fn stalled_transfer_is_stopped_by_the_idle_timeout() {
    let (server, cache, sha) = failing(|_, _| Response::Stall(Duration::from_secs(30)));
    let opts = FetchOptions {
        idle_timeout: Duration::from_secs(1),
        retries: 1,
        ..opts(cache.path(), &server)
    };
    let start = Instant::now();
    let msg = expect_err(ensure_release(&etcd(&sha), &opts, &Reporter::silent()));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    assert!(msg.contains("idle timeout"), "{msg}");
    assert_eq!(files_under(cache.path()), Vec::<PathBuf>::new());
    assert_recovers(cache.path());
}

#[test]
fn redirect_loop_fails() {
    let (server, cache, sha) = failing(|path, _| Response::Redirect(path.to_string()));
    let msg = expect_err(ensure_release(
        &etcd(&sha),
        &opts(cache.path(), &server),
        &Reporter::silent(),
    ));
    assert!(msg.contains("redirect"), "{msg}");
    assert!(server.hits() <= 7, "{} requests", server.hits());
    assert_eq!(files_under(cache.path()), Vec::<PathBuf>::new());
    assert_recovers(cache.path());
}

#[test]
fn redirect_to_the_file_is_followed() {
    let body = small_release();
    let sha = sha256_hex(&body);
    let served = body.clone();
    let server = HttpServer::with_handler(move |path, _| match path {
        URL_PATH => Response::Redirect("/storage/blob".into()),
        "/storage/blob" => Response::Ok(served.clone()),
        _ => Response::Status(404),
    });
    assert_eq!(fetch_ok(&server, &sha), body);
    assert_eq!(server.hits(), 2);
}

#[test]
fn local_tarball_is_verified_and_used_in_place() {
    let body = small_release();
    let sha = sha256_hex(&body);
    let dir = tempfile::tempdir().unwrap();
    let tarball = dir.path().join(format!("{STEM}.tar.gz"));
    std::fs::File::create(&tarball)
        .unwrap()
        .write_all(&body)
        .unwrap();
    let server = HttpServer::with_handler(|_, _| Response::Status(500));
    let cache = tempfile::tempdir().unwrap();
    let opts = FetchOptions {
        local_tarball: Some(tarball.clone()),
        ..opts(cache.path(), &server)
    };

    let got = ensure_release(&etcd(&sha), &opts, &Reporter::silent()).unwrap();
    assert_eq!(got, tarball);
    assert_eq!(server.hits(), 0);
    assert_eq!(
        files_under(cache.path()),
        Vec::<PathBuf>::new(),
        "not copied"
    );

    let wrong = "0".repeat(64);
    let msg = expect_err(ensure_release(&etcd(&wrong), &opts, &Reporter::silent()));
    assert!(msg.contains(&wrong) && msg.contains(&sha), "{msg}");
    assert!(msg.contains(&format!("{STEM}.tar.gz")), "{msg}");
    assert!(
        msg.contains("--etcd-sha256") && msg.contains("etcd.sha256"),
        "{msg}"
    );
    assert_eq!(server.hits(), 0);
}

#[test]
fn standin_has_the_official_layout_and_the_system_programs() {
    support::require!(support::STANDIN);
    let standin = standin();
    assert_eq!((standin.version, standin.arch), ("3.4.16", "amd64"));
    let bytes = std::fs::read(&standin.path).unwrap();
    assert_eq!(sha256_hex(&bytes), standin.sha256);

    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if name == format!("{STEM}/etcd") || name == format!("{STEM}/etcdctl") {
            assert_eq!(entry.header().mode().unwrap(), 0o755, "{name}");
        }
        names.push(name);
    }
    for want in [
        "",
        "Documentation",
        "README.md",
        "README-etcdctl.md",
        "READMEv2-etcdctl.md",
        "etcd",
        "etcdctl",
    ] {
        let want = format!("{STEM}/{want}");
        assert!(
            names
                .iter()
                .any(|n| n.trim_end_matches('/') == want.trim_end_matches('/')),
            "{want} missing from {names:?}"
        );
    }
    assert!(
        names.iter().all(|n| n.starts_with(&format!("{STEM}/"))),
        "{names:?}"
    );

    let bins = extract::read_release(&standin.path, &etcd(&standin.sha256)).unwrap();
    assert_eq!(*bins.etcd, *std::fs::read("/usr/bin/etcd").unwrap());
    assert_eq!(*bins.etcdctl, *std::fs::read("/usr/bin/etcdctl").unwrap());
}

// ------------------------------------------------------- through the CLI

/// `etcdpack fetch` of the 3.4.16 amd64 release from `server`, expecting `sha`.
fn cli_fetch(g: &Gen, server: &HttpServer, sha: &str) -> std::process::Output {
    etcdpack()
        .arg("fetch")
        .arg("-c")
        .arg(&g.config)
        .arg("--cache-dir")
        .arg(&g.cache)
        .args(["--mirror", &server.base_url, "--etcd-sha256", sha])
        .output()
        .unwrap()
}

fn stderr_of(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("{text}");
    text
}

#[test]
fn cli_checksum_mismatch_names_both_hashes_keeps_nothing_and_recovers() {
    let g = Gen::new(&["127.0.0.1"], "");
    let body = small_release();
    let good_sha = sha256_hex(&body);
    let evil = b"a tampered release".to_vec();
    let evil_sha = sha256_hex(&evil);
    let server = serve_bytes(evil);

    let out = cli_fetch(&g, &server, &good_sha);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains(&format!("expected sha256: {good_sha}"))
            && err.contains(&format!("actual sha256:   {evil_sha}")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}{URL_PATH}", server.base_url)),
        "{err}"
    );
    assert!(err.contains("help:"), "{err}");
    assert_eq!(files_under(&g.cache), Vec::<PathBuf>::new());

    // `gen` from the same bad mirror writes no output directory either.
    let out = g.run_raw(&["--mirror", &server.base_url, "--etcd-sha256", &good_sha]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&evil_sha), "{err}");
    assert!(!g.out.exists(), "gen wrote {}", g.out.display());
    assert_eq!(files_under(&g.cache), Vec::<PathBuf>::new());

    // A later good run fills the same cache and prints the path.
    let good = serve_bytes(body.clone());
    let out = cli_fetch(&g, &good, &good_sha);
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert_eq!(path, g.cache.join(&good_sha).join(format!("{STEM}.tar.gz")));
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(files_under(&g.cache), vec![path]);
    assert!(err.contains("Verified"), "{err}");
}

#[test]
fn cli_not_found_names_the_url_and_what_to_do() {
    let g = Gen::new(&["127.0.0.1"], "");
    let sha = sha256_hex(&small_release());
    let server = HttpServer::with_handler(|_, _| Response::Status(404));
    let out = cli_fetch(&g, &server, &sha);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains(&format!("cannot download {}{URL_PATH}", server.base_url)),
        "{err}"
    );
    assert!(err.contains("404"), "{err}");
    assert!(
        err.contains("help:")
            && err.contains("--mirror")
            && err.contains("--cache-dir")
            && err.contains("--etcd-tarball"),
        "{err}"
    );
    assert_eq!(server.hits(), 1, "a 404 is not retried");
    assert_eq!(files_under(&g.cache), Vec::<PathBuf>::new());
}

// ------------------------------------------------------------------ https

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
    etcdpack()
        .arg("fetch")
        .arg("-c")
        .arg(&g.config)
        .arg("--cache-dir")
        .arg(&g.cache)
        .args(["--mirror", mirror, "--etcd-sha256", sha])
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
    let err = stderr_of(&out);
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
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{base}{URL_PATH}")) && err.contains(&target),
        "the message names both URLs: {err}"
    );
    assert!(err.contains("https") && err.contains("help:"), "{err}");
    assert_eq!(plain.hits(), 0, "the http URL was requested");
    assert_eq!(files_under(&g.cache), Vec::<PathBuf>::new());
}
