//! The same faults through the built binary (`etcdpack fetch` and `gen`), for what a user sees:
//! the exit code, a message naming both hashes or the URL and what to do, an empty cache, no
//! output directory, and a later good run that fills the cache and prints the path.

use std::path::PathBuf;

use etcdpack::fsutil::sha256_hex;

use crate::support::fetching::{
    STEM, URL_PATH, fetch_command, files_under, serve_bytes, small_release,
};
use crate::support::{Gen, HttpServer, Response, stderr};

/// `etcdpack fetch` of the 3.4.16 amd64 release from `server`, expecting `sha`.
fn cli_fetch(g: &Gen, server: &HttpServer, sha: &str) -> std::process::Output {
    fetch_command(g, &server.base_url, sha).output().unwrap()
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
    let err = stderr(&out);
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
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&evil_sha), "{err}");
    assert!(!g.out.exists(), "gen wrote {}", g.out.display());
    assert_eq!(files_under(&g.cache), Vec::<PathBuf>::new());

    // A later good run fills the same cache and prints the path.
    let good = serve_bytes(body.clone());
    let out = cli_fetch(&g, &good, &good_sha);
    let err = stderr(&out);
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
    let err = stderr(&out);
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
