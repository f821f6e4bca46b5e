//! What holds for every format alike: each reads back as exactly the staged node tree (paths,
//! modes, types, bytes), two builds of the same input are byte-identical, and the maintainer
//! scripts follow the service settings (no user created, nothing started, when the config
//! says so).

use std::process::Command;

use etcdpack::package::{self, Format};

use crate::support::packaging::{build, cluster, line, put, tree};
use crate::support::{self, run_ok, sha256};

#[test]
fn deb_and_rpm_read_back_exactly_the_node_tree() {
    support::require!(support::GCC_STATIC);
    let c = cluster("");
    let t = tree(&c, "etcd-1");
    assert!(!t.entries.iter().any(|e| e.path.starts_with("/usr/share")));
    for format in [Format::Tar, Format::Deb, Format::Rpm] {
        let (_, bytes) = build(format, &c, "etcd-1", 1);
        let read = package::read_entries(format, &bytes).unwrap();
        let read: Vec<_> = read
            .iter()
            .filter(|e| e.path != "/")
            // The .deb's own copyright and lintian overrides (see its docs).
            .filter(|e| {
                !(format == Format::Deb
                    && (e.path == "/usr/share" || e.path.starts_with("/usr/share/")))
            })
            .map(|e| {
                (
                    e.path.clone(),
                    format!("{:o}", e.mode),
                    e.dir,
                    sha256(&e.data),
                )
            })
            .collect();
        let want: Vec<_> = t
            .entries
            .iter()
            // The .rpm claims only the directories the package owns.
            .filter(|e| format != Format::Rpm || !e.is_dir() || e.owned)
            .map(|e| {
                (
                    e.path.clone(),
                    format!("{:o}", e.mode),
                    e.is_dir(),
                    sha256(e.data()),
                )
            })
            .collect();
        for (r, w) in read.iter().zip(&want) {
            assert_eq!(r, w, "{format}");
        }
        assert_eq!(read.len(), want.len(), "{format}: {read:#?}");
    }
}

#[test]
fn without_a_service_user_or_autostart_the_scripts_say_so() {
    support::require!(support::GCC_STATIC, support::DPKG_DEB, support::RPM);
    let c = cluster("service: { user: root, start: false }\n");
    let (_, bytes) = build(Format::Deb, &c, "etcd-1", 1);
    let dir = tempfile::tempdir().unwrap();
    let deb = put(dir.path(), "x.deb", &bytes);
    let info = run_ok(Command::new("dpkg-deb").arg("--info").arg(&deb));
    assert!(!info.contains("Depends:"), "{info}");
    let postinst = run_ok(
        Command::new("dpkg-deb")
            .args(["--info"])
            .arg(&deb)
            .arg("postinst"),
    );
    assert!(
        !postinst.contains("useradd") && !postinst.contains("systemctl start"),
        "{postinst}"
    );
    assert!(
        postinst.contains("systemctl enable etcd.service"),
        "{postinst}"
    );
    let (_, bytes) = build(Format::Rpm, &c, "etcd-1", 1);
    let rpm = put(dir.path(), "x.rpm", &bytes);
    let scripts = run_ok(Command::new("rpm").args(["-qp", "--scripts"]).arg(&rpm));
    assert!(
        !scripts.contains("useradd") && !scripts.contains("systemctl start"),
        "{scripts}"
    );
    let list = run_ok(Command::new("rpm").args(["-qlvp"]).arg(&rpm));
    assert!(
        line(&list, "server-key.pem").contains(" root     root "),
        "{list}"
    );
}

#[test]
fn two_builds_are_byte_identical() {
    support::require!(support::GCC_STATIC);
    let c = cluster("");
    for format in [Format::Tar, Format::Deb, Format::Rpm] {
        let (_, a) = build(format, &c, "etcd-2", 3);
        let (_, b) = build(format, &c, "etcd-2", 3);
        assert!(a == b, "{format}: two builds differ");
    }
}
