//! lintian and rpmlint, the distributions' own policy checkers, pass on the packages with the
//! overrides etcdpack ships, warnings included; an override that no longer applies fails too.

use std::path::Path;
use std::process::Command;

use etcdpack::package::Format;

use crate::support::packaging::{build, cluster, put};
use crate::support::{self, run};

#[test]
fn lintian_and_rpmlint_pass_with_the_shipped_overrides() {
    support::require!(support::GCC_STATIC, support::LINTIAN, support::RPMLINT);
    // With backups on: every unit a package can ship is checked.
    let c = cluster("backup: { enabled: true }\n");
    let dir = tempfile::tempdir().unwrap();
    let (name, bytes) = build(Format::Deb, &c, "etcd-1", 1);
    let deb = put(dir.path(), &name, &bytes);
    let (name, bytes) = build(Format::Rpm, &c, "etcd-1", 1);
    let rpm = put(dir.path(), &name, &bytes);

    // Warnings fail too; info-level tags are shown, so an unused override is.
    let out = run(Command::new("lintian")
        .args([
            "--allow-root",
            "--fail-on",
            "error,warning",
            "--display-info",
        ])
        .arg(&deb));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lintian: {}\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("unused-override"), "{text}");

    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/rpmlint.toml");
    let out = run(Command::new("rpmlint")
        .arg("--config")
        .arg(&config)
        .arg(&rpm));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "rpmlint: {}\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(" 0 errors, 0 warnings"), "{text}");
}
