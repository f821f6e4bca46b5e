//! What the fetch tests share: a small release-shaped tarball, the fetch options pointing at a
//! local server, `etcdpack fetch` from a mirror, and the checks that a cache holds nothing
//! unverified and recovers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use etcdpack::config::{Arch, Etcd};
use etcdpack::fetch::{FetchOptions, ensure_release};
use etcdpack::fsutil::sha256_hex;
use etcdpack::report::Reporter;

use super::{Gen, HttpServer, Response, etcdpack};

pub const STEM: &str = "etcd-v3.4.16-linux-amd64";
pub const URL_PATH: &str = "/v3.4.16/etcd-v3.4.16-linux-amd64.tar.gz";

/// A small, valid release-shaped tarball.
pub fn small_release() -> Vec<u8> {
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

pub fn etcd(sha256: &str) -> Etcd {
    Etcd {
        version: "3.4.16".into(),
        arch: Arch::Amd64,
        sha256: sha256.into(),
        url: None,
    }
}

pub fn opts(cache: &Path, server: &HttpServer) -> FetchOptions {
    FetchOptions {
        mirror: Some(server.base_url.clone()),
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
        ..FetchOptions::new(cache.to_path_buf())
    }
}

/// Every non-directory under `dir`, temporary files included.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
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

pub fn serve_bytes(body: Vec<u8>) -> HttpServer {
    HttpServer::with_handler(move |path, _| {
        if path == URL_PATH {
            Response::Ok(body.clone())
        } else {
            Response::Status(404)
        }
    })
}

pub fn expect_err(result: anyhow::Result<PathBuf>) -> String {
    let msg = format!("{:#}", result.expect_err("the fetch should have failed"));
    // Shown with --nocapture, to read the messages a user would get.
    eprintln!("{msg}");
    msg
}

/// Fetch from `server` into a fresh cache, which must succeed; the bytes fetched.
pub fn fetch_ok(server: &HttpServer, sha: &str) -> Vec<u8> {
    let cache = tempfile::tempdir().unwrap();
    let path = ensure_release(&etcd(sha), &opts(cache.path(), server), &Reporter::silent())
        .expect("the fetch should have succeeded");
    std::fs::read(path).unwrap()
}

/// After a failure (of case `what`), a good server fills the same cache without trouble.
pub fn assert_recovers(what: &str, cache: &Path) {
    let body = small_release();
    let sha = sha256_hex(&body);
    let server = serve_bytes(body.clone());
    let path = ensure_release(&etcd(&sha), &opts(cache, &server), &Reporter::silent())
        .unwrap_or_else(|e| panic!("{what}: a good server after it fails: {e:#}"));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        body,
        "{what}: after recovery"
    );
    assert_eq!(files_under(cache), vec![path], "{what}: after recovery");
    assert_eq!(server.hits(), 1, "{what}: after recovery");
}

/// `etcdpack fetch` of the release `g`'s config names into `g`'s cache, from
/// `mirror`, expecting `sha`.
pub fn fetch_command(g: &Gen, mirror: &str, sha: &str) -> Command {
    let mut c = etcdpack();
    c.arg("fetch")
        .arg("-c")
        .arg(&g.config)
        .arg("--cache-dir")
        .arg(&g.cache)
        .args(["--mirror", mirror, "--etcd-sha256", sha]);
    c
}
