//! What holds for every format alike: each reads back as exactly the staged node tree (paths,
//! modes, types, bytes), two builds of the same input are byte-identical, and the maintainer
//! scripts follow the service settings (no user created, nothing started, when the config
//! says so).

use std::process::Command;

use etcdpack::extract::Binaries;
use etcdpack::model::Blob;
use etcdpack::package::Format;

use crate::support::packaging::{build, build_with, cluster, line, put, tree};
use crate::support::{self, run_ok, sha256, unpack};

/// Each artifact as GNU tar, `dpkg-deb` and `rpm`/`rpm2cpio` list and extract it: the staged
/// tree's paths, modes, types and bytes, in its order, and nothing else.
#[test]
fn deb_and_rpm_read_back_exactly_the_node_tree() {
    support::require!(
        support::GCC_STATIC,
        support::DPKG_DEB,
        support::RPM,
        support::RPM2CPIO,
        support::CPIO
    );
    let c = cluster("");
    let t = tree(&c, "etcd-1");
    assert!(!t.entries.iter().any(|e| e.path.starts_with("/usr/share")));
    let dir = tempfile::tempdir().unwrap();
    for format in [Format::Tar, Format::Deb, Format::Rpm] {
        let (name, bytes) = build(format, &c, "etcd-1", 1);
        let artifact = put(dir.path(), &name, &bytes);
        let read: Vec<_> = unpack::entries(&artifact)
            .into_iter()
            .filter(|e| e.path != "/")
            // The .deb's own copyright and lintian overrides (see its docs).
            .filter(|e| {
                !(format == Format::Deb
                    && (e.path == "/usr/share" || e.path.starts_with("/usr/share/")))
            })
            .map(|e| (e.path, format!("{:o}", e.mode), e.dir, e.sha256))
            .collect();
        let want: Vec<_> = t
            .entries
            .iter()
            // The .rpm claims only the directories the package owns; the
            // .deb lists every parent but the system's /opt.
            .filter(|e| format != Format::Rpm || !e.is_dir() || e.owned)
            .filter(|e| format != Format::Deb || e.path != "/opt")
            .map(|e| {
                (
                    e.path.clone(),
                    format!("{:o}", e.mode),
                    e.is_dir(),
                    if e.is_dir() {
                        String::new()
                    } else {
                        sha256(e.data())
                    },
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
        postinst.contains(
            "units=\"etcd.service etcd-cert-check.timer etcd-restart.path etcd-auth.path\""
        ) && postinst.contains("systemctl enable $units"),
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

/// Binaries of at least a MiB are gzip members of their own (see `package::archive`), the same
/// compressed bytes in every format, and the distributions' own readers read on through them:
/// GNU tar, dpkg-deb, rpm (`-K` checks the payload digest) and rpm2cpio with cpio, each giving
/// back the binaries byte for byte.
#[test]
fn large_binaries_are_shared_gzip_members_that_the_real_tools_read() {
    support::require!(
        support::DPKG_DEB,
        support::RPM,
        support::RPM2CPIO,
        support::CPIO
    );
    // Little compressible, so a member is large and cannot match by chance.
    let noise = |seed: u64, len: usize| -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8 & 0x3f
            })
            .collect()
    };
    let bins = Binaries {
        etcd: Blob::from(noise(1, (3 << 20) + 5)),
        etcdctl: Blob::from(noise(2, (1 << 20) + 1)),
        etcdutl: None,
    };
    let c = cluster("");
    let dir = tempfile::tempdir().unwrap();
    let mut artifacts = Vec::new();
    for format in [Format::Tar, Format::Deb, Format::Rpm] {
        let (name, bytes) = build_with(&bins, format, &c, "etcd-1", 1);
        artifacts.push((format, put(dir.path(), &name, &bytes), bytes));
    }
    // The member of etcd's data (under 4 MiB: one chunk), as `package::archive` makes it: the
    // same bytes in all three.
    let mut member = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::new(6));
    std::io::Write::write_all(&mut member, &bins.etcd).unwrap();
    let member = member.finish().unwrap();
    for (format, _, bytes) in &artifacts {
        assert!(
            bytes.windows(member.len()).any(|w| w == &member[..]),
            "{format}: etcd's member is not in the artifact"
        );
    }
    let check = |format: Format, root: &std::path::Path, under: &str| {
        for (rel, want) in [("etcd", &bins.etcd), ("etcdctl", &bins.etcdctl)] {
            let got = std::fs::read(root.join(under).join(rel))
                .unwrap_or_else(|e| panic!("{format}: {under}/{rel}: {e}"));
            assert!(got == want[..], "{format}: {rel} differs");
        }
    };
    for (format, path, _) in &artifacts {
        let x = dir.path().join(format!("x-{format}"));
        std::fs::create_dir(&x).unwrap();
        match format {
            Format::Tar => {
                run_ok(Command::new("tar").arg("-xzf").arg(path).arg("-C").arg(&x));
                check(
                    *format,
                    &x,
                    "etcd-test-etcd-1_3.4.16-1_amd64/root/opt/etcd/bin",
                );
            }
            Format::Deb => {
                run_ok(Command::new("dpkg-deb").arg("-x").arg(path).arg(&x));
                check(*format, &x, "opt/etcd/bin");
            }
            Format::Rpm => {
                let k = run_ok(Command::new("rpm").arg("-K").arg("--nosignature").arg(path));
                assert!(k.contains("digests OK"), "{k}");
                // rpm2cpio's own exit status counts (pipefail): rpm 4.18's
                // fails when the payload's size is not the one recorded.
                run_ok(Command::new("bash").current_dir(&x).arg("-c").arg(format!(
                    "set -o pipefail; rpm2cpio '{}' | cpio -idm --quiet",
                    path.display()
                )));
                check(*format, &x, "opt/etcd/bin");
                // Every file rpm lists came out.
                let listed = run_ok(Command::new("rpm").arg("-qlp").arg(path));
                for f in listed.lines() {
                    assert!(
                        x.join(f.trim_start_matches('/')).symlink_metadata().is_ok(),
                        "{f} is not in what rpm2cpio wrote"
                    );
                }
            }
        }
    }
}
