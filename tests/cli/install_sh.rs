//! The bundle's `install.sh --root`: it places every file with its mode and owner (creating
//! the service user), a second run changes nothing, and another node's bundle refuses to
//! overwrite the install. Needs root (chown).

use std::fs;

use crate::support::{self, Gen, mode_of, run_ok};

#[test]
fn install_sh_places_files_is_idempotent_and_refuses_another_node() {
    support::require!(support::ROOT, support::STANDIN);
    let g = Gen::new(&["192.168.0.1", "192.168.0.2", "192.168.0.3"], "");
    g.run_ok(&[]);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    support::bare_root(&root);
    let [installer_1, installer_2] =
        [1, 2].map(|i| g.unpack_bundle(i, work.path()).join("install.sh"));
    let first = run_ok(
        std::process::Command::new(&installer_1)
            .arg("--root")
            .arg(&root),
    );
    assert!(first.contains("installed etcd-test-etcd-1"), "{first}");
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    let etcd_uid: u32 = passwd
        .lines()
        .find(|l| l.starts_with("etcd:"))
        .expect("etcd user created")
        .split(':')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    use std::os::unix::fs::MetadataExt;
    let key = root.join("opt/etcd/ssl/server-key.pem");
    assert_eq!(mode_of(&key), 0o600);
    assert_eq!(fs::metadata(&key).unwrap().uid(), etcd_uid);
    assert_eq!(
        fs::metadata(root.join("opt/etcd/cfg/etcd.conf"))
            .unwrap()
            .uid(),
        0
    );
    let data = root.join("var/lib/etcd/default.etcd");
    assert_eq!(mode_of(&data), 0o700);
    assert_eq!(fs::metadata(&data).unwrap().uid(), etcd_uid);
    assert_eq!(mode_of(&root.join("opt/etcd/bin/etcd")), 0o755);
    assert!(root.join("usr/lib/systemd/system/etcd.service").is_file());

    // Idempotent: a second run changes nothing.
    let before = run_ok(
        std::process::Command::new("find")
            .arg(&root)
            .args(["-printf", "%p %m %U %s %T@\n"]),
    );
    run_ok(
        std::process::Command::new(&installer_1)
            .arg("--root")
            .arg(&root),
    );
    let after = run_ok(
        std::process::Command::new("find")
            .arg(&root)
            .args(["-printf", "%p %m %U %s %T@\n"]),
    );
    assert_eq!(before, after);

    // Another node's bundle refuses to overwrite this install.
    let other = std::process::Command::new(&installer_2)
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(1));
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("etcd-1") && err.contains("refusing"), "{err}");
    assert!(
        fs::read_to_string(root.join("opt/etcd/cfg/etcd.conf"))
            .unwrap()
            .contains("ETCD_NAME=etcd-1\n")
    );
}
