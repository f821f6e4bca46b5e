//! What a user meets before `gen`: `init` writes an example that plans and refuses to
//! overwrite it, `--help` of every command (snapshotted), `plan` lists every artifact and
//! writes nothing, and an invalid config fails with its position and writes nothing.

use crate::support::{self, COMMANDS, Gen, etcdpack};

#[test]
fn init_writes_a_valid_example_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cluster.yaml");
    let out = etcdpack().args(["init", "-o"]).arg(&cfg).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        cfg.display().to_string()
    );
    let plan = etcdpack().args(["plan", "-c"]).arg(&cfg).output().unwrap();
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let again = etcdpack().args(["init", "-o"]).arg(&cfg).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn help_is_complete_for_every_command() {
    let _snapshots = support::snapshots_in_tests_dir();
    for &cmd in COMMANDS {
        let out = etcdpack().args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        insta::assert_snapshot!(format!("help_{cmd}"), text);
    }
    let top = etcdpack().arg("--help").output().unwrap();
    insta::assert_snapshot!("help", String::from_utf8_lossy(&top.stdout));
}

#[test]
fn plan_lists_every_artifact_and_writes_nothing() {
    let g = Gen::new(&["192.168.0.1", "192.168.0.2", "192.168.0.3"], "");
    let out = etcdpack()
        .args(["plan", "-c"])
        .arg(&g.config)
        .arg("-o")
        .arg(&g.out)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let o = g.out.display();
    for want in [
        format!("CA: create {o}/pki/ca.pem"),
        "  issue  nodes/etcd-2 (new CA)".to_owned(),
        "  issue  clients/kube-apiserver (new CA)".to_owned(),
        "+ etcd-3 (192.168.0.3): etcd-test-etcd-3 3.4.16-1 (new)".to_owned(),
        format!("    create  {o}/dist/etcd-test-etcd-1_3.4.16-1_amd64.tar.gz"),
        "Plan (nodes): 3 to add, 0 to change, 0 unchanged, 0 to remove.".to_owned(),
    ] {
        assert!(
            text.lines().any(|l| l == want),
            "missing {want:?} in\n{text}"
        );
    }
    assert!(!g.out.exists(), "plan must not write");
}

#[test]
fn invalid_config_fails_with_position_and_writes_nothing() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["192.168.0.1", "192.168.0.1"], "");
    let out = g.run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:5:", g.config.display())) && err.contains("used twice"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert!(!g.out.exists());
}
