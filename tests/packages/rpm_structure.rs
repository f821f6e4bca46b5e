//! The .rpm as rpm reads it: header fields (name, version, release, arch, licence, URL,
//! packager, compression, build time, summary, a description wrapped for a terminal),
//! provides, conflicts and requires, `%config` without noreplace, SHA-256 file digests, modes
//! and owners (the key the service user's), no distribution directories claimed, the four
//! scriptlets, and digests `rpm -K` accepts.

use std::process::Command;

use etcdpack::package::Format;

use crate::support::packaging::{build, cluster, line, put};
use crate::support::{self, run_ok};

#[test]
fn rpm_metadata_contents_scripts_and_digests() {
    support::require!(support::GCC_STATIC, support::RPM);
    let c = cluster("");
    let dir = tempfile::tempdir().unwrap();
    let (name, bytes) = build(Format::Rpm, &c, "etcd-1", 2);
    assert_eq!(name, "etcd-test-etcd-1-3.4.16-2.x86_64.rpm");
    let rpm = put(dir.path(), &name, &bytes);
    let q = |args: &[&str]| run_ok(Command::new("rpm").arg("-qp").args(args).arg(&rpm));

    let fmt = "%{NAME}|%{VERSION}|%{RELEASE}|%{ARCH}|%{LICENSE}|%{URL}|%{PACKAGER}|%{PAYLOADCOMPRESSOR}|%{BUILDTIME}|%{SUMMARY}";
    assert_eq!(
        q(&["--qf", fmt]),
        "etcd-test-etcd-1|3.4.16|2|x86_64|Apache-2.0|https://etcd.io|Platform Team <platform@example.org>|gzip|1700000000|etcd member etcd-1 of cluster test"
    );
    let description = q(&["--qf", "%{DESCRIPTION}"]);
    assert!(description.lines().all(|l| l.len() <= 79), "{description}");
    assert!(
        description
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains("member etcd-1 (127.0.0.1)")
    );
    let provides = q(&["--provides"]);
    assert!(
        provides.contains("etcdpack-member\n") && provides.contains("etcdpack-test-member\n"),
        "{provides}"
    );
    assert_eq!(q(&["--conflicts"]), "etcd\netcdpack-member\n");
    assert!(q(&["--requires"]).contains("/usr/sbin/useradd"));
    // %config without noreplace: upgrades install the new etcd.conf.
    assert_eq!(q(&["--configfiles"]), "/opt/etcd/cfg/etcd.conf\n");
    assert_eq!(
        q(&["--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]"])
            .lines()
            .find(|l| l.starts_with("/opt/etcd/cfg/etcd.conf")),
        Some("/opt/etcd/cfg/etcd.conf c")
    );
    // SHA-256 file digests (algorithm 8).
    assert_eq!(q(&["--qf", "%{FILEDIGESTALGO}"]), "8");

    let list = q(&["-lv"]);
    assert!(
        line(&list, "/opt/etcd/ssl/server-key.pem").starts_with("-rw-------    1 etcd     etcd"),
        "{list}"
    );
    assert!(
        line(&list, "/opt/etcd/bin/etcd").starts_with("-rwxr-xr-x    1 root     root"),
        "{list}"
    );
    assert!(
        line(&list, " /opt/etcd").starts_with("drwxr-xr-x"),
        "{list}"
    );
    for distro_dir in [
        "/opt",
        "/usr/lib",
        "/usr/lib/systemd/system",
        "/etc",
        "/etc/profile.d",
    ] {
        assert!(
            !list.lines().any(|l| l.ends_with(&format!(" {distro_dir}"))),
            "{distro_dir} claimed:\n{list}"
        );
    }

    let scripts = q(&["--scripts"]);
    for want in [
        "preinstall scriptlet (using /bin/sh):",
        "postinstall scriptlet (using /bin/sh):",
        "preuninstall scriptlet (using /bin/sh):",
        "postuninstall scriptlet (using /bin/sh):",
        "useradd --system",
        "install -d -m 0700 -o \"$user\" -g \"$user\" \"/var/lib/etcd/default.etcd\"",
        "if systemctl is-active --quiet etcd.service; then",
        "/opt/etcd/bin/etcd-maint\" restart --wait 120",
        "systemctl disable etcd.service",
    ] {
        assert!(scripts.contains(want), "missing {want:?} in\n{scripts}");
    }

    let k = run_ok(Command::new("rpm").arg("-K").arg(&rpm));
    assert!(k.trim_end().ends_with("digests OK"), "{k}");
}
