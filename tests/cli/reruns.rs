//! Reruns: the same input gives the same bytes and reuses the PKI (also in a fresh output
//! directory, and with every timestamp from SOURCE_DATE_EPOCH); a changed config raises the
//! release and replaces the old artifact.

use std::fs;

use crate::support::{self, Gen, run_ok};

#[test]
fn rerun_is_byte_identical_and_reuses_the_pki() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["192.168.0.1", "192.168.0.2", "192.168.0.3"], "");
    g.run_ok(&[]);
    let first = fs::read_to_string(g.out.join("SHA256SUMS")).unwrap();
    let ca = fs::read(g.out.join("pki/ca.pem")).unwrap();
    g.run_ok(&[]);
    assert_eq!(fs::read_to_string(g.out.join("SHA256SUMS")).unwrap(), first);
    assert_eq!(fs::read(g.out.join("pki/ca.pem")).unwrap(), ca);

    // Same inputs and the same pki in a fresh output directory: same bytes.
    let other = tempfile::tempdir().unwrap();
    let out2 = other.path().join("out");
    fs::create_dir_all(&out2).unwrap();
    run_ok(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(g.out.join("pki"))
            .arg(&out2),
    );
    g.run_ok_into(&out2, &[]);
    assert_eq!(fs::read_to_string(out2.join("SHA256SUMS")).unwrap(), first);

    // SOURCE_DATE_EPOCH sets every timestamp.
    g.run_ok_env(&[], &[("SOURCE_DATE_EPOCH", "1234567890")]);
    let tgz = g.out.join("dist/etcd-test-etcd-1_3.4.16-1_amd64.tar.gz");
    let listing = run_ok(
        std::process::Command::new("tar")
            .args(["--full-time", "-tvzf"])
            .arg(&tgz),
    );
    assert!(
        listing.lines().all(|l| l.contains("2009-02-13 23:31:30")),
        "{listing}"
    );
}

#[test]
fn changed_tuning_raises_the_release_and_replaces_the_old_artifact() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["192.168.0.1"], "");
    g.run_ok(&[]);
    fs::write(
        &g.config,
        fs::read_to_string(&g.config).unwrap() + "tuning: { quota_backend_bytes: 4GiB }\n",
    )
    .unwrap();
    let out = g.run_ok(&[]);
    assert!(
        out.trim()
            .ends_with("etcd-test-etcd-1_3.4.16-2_amd64.tar.gz"),
        "{out}"
    );
    let names: Vec<_> = fs::read_dir(g.out.join("dist"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}
