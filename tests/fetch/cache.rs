//! The cache: a good download is cached under its checksum and then reused without a request,
//! a damaged cache file is replaced, and a local tarball is verified and used in place, never
//! copied.

use std::io::Write;
use std::path::PathBuf;

use etcdpack::fetch::{FetchOptions, ensure_release};
use etcdpack::fsutil::sha256_hex;
use etcdpack::report::Reporter;

use crate::support::fetching::{
    STEM, etcd, expect_err, files_under, opts, serve_bytes, small_release,
};
use crate::support::{HttpServer, Response};

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
