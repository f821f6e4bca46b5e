//! The .deb as dpkg-deb reads it: control fields (name, version, relations, the description),
//! an Installed-Size that counts the binaries, executable `sh -n`-clean maintainer scripts that
//! own the key for the service user and start etcd, md5sums, and the data's modes, owners and
//! mtimes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use etcdpack::package::Format;

use crate::support::packaging::{build, cluster, line, put, static_binaries};
use crate::support::{self, run_ok};

#[test]
fn deb_metadata_contents_and_scripts() {
    support::require!(support::GCC_STATIC, support::DPKG_DEB);
    let c = cluster("");
    let dir = tempfile::tempdir().unwrap();
    let (name, bytes) = build(Format::Deb, &c, "etcd-1", 2);
    assert_eq!(name, "etcd-test-etcd-1_3.4.16-2_amd64.deb");
    let deb = put(dir.path(), &name, &bytes);

    let info = run_ok(Command::new("dpkg-deb").arg("--info").arg(&deb));
    for want in [
        " Package: etcd-test-etcd-1\n",
        " Version: 3.4.16-2\n",
        " Architecture: amd64\n",
        " Maintainer: Platform Team <platform@example.org>\n",
        " Depends: passwd\n",
        " Conflicts: etcd-server, etcdpack-member\n",
        " Provides: etcdpack-member, etcdpack-test-member\n",
        " Homepage: https://etcd.io\n",
        " Description: etcd member etcd-1 of cluster test\n",
    ] {
        assert!(info.contains(want), "missing {want:?} in\n{info}");
    }
    let words = info.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("member etcd-1 (127.0.0.1) of the 3-member"),
        "{info}"
    );
    // Scripts are executable; there are no conffiles (see the deb module docs).
    assert!(!info.contains("conffiles"), "{info}");
    let size: u64 = run_ok(
        Command::new("dpkg-deb")
            .args(["--field"])
            .arg(&deb)
            .arg("Installed-Size"),
    )
    .trim()
    .parse()
    .unwrap();
    assert!(
        size * 1024 >= 2 * static_binaries().etcd.len() as u64,
        "Installed-Size {size}"
    );

    let ctrl = dir.path().join("control");
    run_ok(
        Command::new("dpkg-deb")
            .arg("--control")
            .arg(&deb)
            .arg(&ctrl),
    );
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        let meta = fs::metadata(ctrl.join(script)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755, "{script}");
        let text = fs::read_to_string(ctrl.join(script)).unwrap();
        assert!(
            text.starts_with("#!/bin/sh\n") && text.contains("\nset -e\n"),
            "{script}:\n{text}"
        );
        run_ok(Command::new("sh").arg("-n").arg(ctrl.join(script)));
    }
    let postinst = fs::read_to_string(ctrl.join("postinst")).unwrap();
    assert!(
        postinst.contains("chown -h \"$user:$user\" \"/opt/etcd/ssl/server-key.pem\""),
        "{postinst}"
    );
    assert!(
        postinst.contains(
            "units=\"etcd.service etcd-cert-check.timer etcd-restart.path etcd-auth.path\""
        ) && postinst.contains("systemctl start --no-block $units"),
        "{postinst}"
    );
    let md5sums = fs::read_to_string(ctrl.join("md5sums")).unwrap();
    assert!(md5sums.contains("  opt/etcd/bin/etcd\n"), "{md5sums}");

    let contents = run_ok(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    assert!(
        line(&contents, "opt/etcd/ssl/server-key.pem").starts_with("-rw------- root/root"),
        "{contents}"
    );
    assert!(
        line(&contents, "opt/etcd/bin/etcd").starts_with("-rwxr-xr-x root/root"),
        "{contents}"
    );
    assert!(
        line(&contents, "opt/etcd/cfg/etcd.conf").starts_with("-rw-r--r-- root/root"),
        "{contents}"
    );
    assert!(line(&contents, "usr/lib/systemd/system/etcd.service").starts_with("-rw-r--r--"));
    assert!(
        contents.contains("2023-11-14 22:13 opt/etcd/\n"),
        "every entry at the spec's mtime:\n{contents}"
    );
}
