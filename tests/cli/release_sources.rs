//! Where the release comes from: an offline tarball (and a wrong checksum for it, which writes
//! nothing), a cache filled by `fetch` that lets `gen` work without a network, and a
//! replaced pinned checksum, which is warned about with how to undo it.

use std::path::Path;

use crate::support::{self, Gen, etcdpack, run_ok, standin};

#[test]
fn offline_tarball_and_json_summary() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["10.0.0.1"], "");
    let s = standin();
    let out = g.run_ok(&["--json", "--etcd-tarball", s.path.to_str().unwrap()]);
    let m: serde_json::Value = serde_json::from_str(&out).expect("stdout is one JSON document");
    assert_eq!(m["cluster"], "test");
    assert_eq!(m["etcd"]["sha256"], s.sha256.as_str());

    let wrong = Gen::new(&["10.0.0.1"], "");
    let out = wrong.run_raw(&[
        "--etcd-tarball",
        s.path.to_str().unwrap(),
        "--etcd-sha256",
        &"0".repeat(64),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&s.sha256) && err.contains(&"0".repeat(64)),
        "{err}"
    );
    assert!(
        !wrong.out.exists(),
        "nothing is written when the release does not verify"
    );
}

#[test]
fn a_cache_filled_by_fetch_makes_gen_work_without_a_network() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["10.0.0.1"], "");
    let s = standin();
    let server = support::HttpServer::serve_file(
        &format!("/v{0}/etcd-v{0}-linux-{1}.tar.gz", s.version, s.arch),
        &s.path,
    );
    let mirror = server.base_url.clone();
    let fetched = run_ok(
        etcdpack()
            .args(["fetch", "-c"])
            .arg(&g.config)
            .args([
                "--mirror",
                &mirror,
                "--etcd-sha256",
                &s.sha256,
                "--cache-dir",
            ])
            .arg(&g.cache),
    );
    assert!(Path::new(fetched.trim()).starts_with(&g.cache), "{fetched}");
    assert_eq!(server.hits(), 1);
    drop(server);

    // The mirror is gone: only the cache can serve the release now.
    let out = g.run_raw(&["--mirror", &mirror, "--etcd-sha256", &s.sha256]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(g.out.join("SHA256SUMS").is_file());
}

/// The official 3.4.16 amd64 checksum, pinned in etcdpack.
const PINNED_3_4_16_AMD64: &str =
    "2e2d5b3572e077e7641193ed07b4929b0eaf0dc2f9463e9b677765528acafb89";

/// stderr of a successful `plan` of a one-node cluster with `etcd` as the
/// config's etcd section.
fn plan_stderr(etcd: &str) -> String {
    let g = Gen::new(&["127.0.0.1"], etcd);
    let out = etcdpack()
        .args(["plan", "-c"])
        .arg(&g.config)
        .arg("-o")
        .arg(&g.out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[test]
fn replacing_a_pinned_checksum_is_warned_about() {
    support::require!(support::STANDIN);
    let other = "ab".repeat(32);
    let stderr = plan_stderr(&format!(
        "etcd: {{ version: 3.4.16, arch: amd64, sha256: \"{other}\" }}\n"
    ));
    let warning = stderr
        .lines()
        .position(|l| l.starts_with("warning:") && l.contains("etcd.sha256"))
        .unwrap_or_else(|| panic!("no warning about etcd.sha256:\n{stderr}"));
    let text = stderr
        .lines()
        .skip(warning)
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("cluster.yaml")
            && text.contains(&other)
            && text.contains(PINNED_3_4_16_AMD64),
        "{text}"
    );
    assert!(text.contains("help: remove etcd.sha256"), "{text}");

    // The pinned value itself, or a release without a pin, is no replacement.
    for etcd in [
        format!(
            "etcd: {{ version: 3.4.16, sha256: \"{}\" }}\n",
            PINNED_3_4_16_AMD64.to_uppercase()
        ),
        format!("etcd: {{ version: 3.5.0, sha256: \"{other}\" }}\n"),
    ] {
        let stderr = plan_stderr(&etcd);
        assert!(!stderr.contains("pinned checksum"), "{etcd}: {stderr}");
    }

    // --etcd-sha256 replacing the pin says so, and how to undo it.
    let g = Gen::new(&["127.0.0.1"], "");
    let s = standin();
    let out = etcdpack()
        .args(["fetch", "-c"])
        .arg(&g.config)
        .arg("--cache-dir")
        .arg(&g.cache)
        .arg("--etcd-tarball")
        .arg(&s.path)
        .args(["--etcd-sha256", &s.sha256])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning:")
            && stderr.contains(&format!("--etcd-sha256 {}", s.sha256))
            && stderr.contains(PINNED_3_4_16_AMD64)
            && stderr.contains("help: drop --etcd-sha256"),
        "{stderr}"
    );
}
