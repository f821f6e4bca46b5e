//! piuparts, Debian's own judge of packages, on a node's .deb in a bookworm
//! chroot of its own (made with debootstrap from the Debian mirror, cached
//! as a tarball beside the e2e roots): installed and purged, purged and
//! installed again, and upgraded from the previous release (served to the
//! chroot's apt from a local repository), with nothing of the system's
//! lost and nothing left but the deliberate keep (the member's data
//! directory; the service user is not among piuparts' checks).

use std::path::PathBuf;
use std::process::Command;

use etcdpack::package::Format;

use crate::e2e;
use crate::support::packaging::{build, cluster, put};
use crate::support::{self, both, run};

/// What a purge leaves on purpose: the member's data, never removed by the
/// package (see README, "Installing").
const KEPT: &[&str] = &["/var/lib/etcd/", "/var/lib/etcd/default.etcd/"];

#[test]
fn piuparts_installs_purges_and_reinstalls_a_node_package() {
    support::require!(
        support::ROOT,
        support::PIUPARTS,
        support::GCC_STATIC,
        support::DPKG_SCANPACKAGES
    );
    let c = cluster("");
    let dir = tempfile::tempdir().unwrap();
    // The previous release, in a flat repository piuparts' apt installs it
    // from before it upgrades to the new one.
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let (old_name, old) = build(Format::Deb, &c, "etcd-1", 1);
    put(&repo, &old_name, &old);
    let index = run(Command::new("dpkg-scanpackages")
        .arg(".")
        .current_dir(&repo));
    assert!(index.status.success(), "{}", both(&index));
    std::fs::write(repo.join("Packages"), &index.stdout).unwrap();
    let (name, bytes) = build(Format::Deb, &c, "etcd-1", 2);
    let deb = put(dir.path(), &name, &bytes);

    let cache = e2e::cache_dir();
    std::fs::create_dir_all(&cache).unwrap();
    let base: PathBuf = cache.join("piuparts-bookworm.tgz");
    let mirror = std::env::var("ETCDPACK_E2E_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".to_owned());
    let mut cmd = Command::new("piuparts");
    cmd.args(["-d", "bookworm", "-m", &mirror])
        .arg("--install-purge-install")
        .arg("--bindmount")
        .arg(&repo)
        .arg("--extra-repo")
        .arg(format!("deb [trusted=yes] file://{} ./", repo.display()))
        .arg("--log-file")
        .arg(dir.path().join("piuparts.log"));
    // The chroot is made once and kept as a tarball; later runs unpack it.
    if base.is_file() {
        cmd.arg("-b").arg(&base);
    } else {
        cmd.arg("-s").arg(&base);
    }
    for k in KEPT {
        cmd.args(["-i", k]);
    }
    let out = run(cmd.arg(&deb));
    let log = std::fs::read_to_string(dir.path().join("piuparts.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "piuparts failed:\n{}\n{}",
        both(&out),
        log.lines()
            .filter(|l| l.contains("FAIL") || l.starts_with("  "))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for pass in [
        "PASS: Installation and purging test.",
        "PASS: Installation, upgrade and purging tests.",
        "PASS: All tests.",
    ] {
        assert!(log.contains(pass), "no {pass:?} in\n{log}");
    }
}
