//! `verify` finds a CA key planted in any format — in a tarball (installed or beside the
//! installer), in a .deb's data or control member, in an .rpm's payload — with the records
//! updated to match, and fails, never passes, on an artifact it cannot read.

use std::fs;
use std::process::Command;

use crate::support;
use crate::support::run_ok;
use crate::support::tamper::{
    artifact_name, assert_verify_fails, assert_verify_passes, ca_key, fresh_output, repack_deb,
    repack_rpm, repack_tarball, substitute,
};

#[test]
fn verify_catches_a_ca_key_planted_in_a_tarball() {
    support::require!(support::STANDIN);
    for (case, path) in [
        ("installed", "root/opt/etcd/ssl/ca-key.pem"),
        ("beside the installer", "notes.txt"),
    ] {
        let (_dir, out) = fresh_output();
        assert_verify_passes(&out);
        let ca = ca_key(&out);
        let name = artifact_name(&out, ".tar.gz");
        let bytes = fs::read(out.join("dist").join(&name)).unwrap();
        let planted = repack_tarball(&bytes, &[(path.to_owned(), ca.into_bytes())]);
        substitute(&out, &name, &planted);
        eprintln!("case: {case}");
        assert_verify_fails(&out, &name, "does not contain the CA key");
    }
}

#[test]
fn verify_catches_a_ca_key_planted_in_a_deb() {
    support::require!(support::STANDIN, support::DPKG_DEB);
    // In the data the package installs.
    let (_dir, out) = fresh_output();
    let ca = ca_key(&out);
    let name = artifact_name(&out, ".deb");
    let planted = repack_deb(&out, &name, |tree| {
        fs::write(tree.join("opt/etcd/ssl/ca-key.pem"), &ca).unwrap();
    });
    substitute(&out, &name, &planted);
    eprintln!("case: data");
    assert_verify_fails(&out, &name, "does not contain the CA key");

    // In the control member, where a maintainer script would carry it.
    let (_dir, out) = fresh_output();
    let ca = ca_key(&out);
    let planted = repack_deb(&out, &name, |tree| {
        let postinst = tree.join("DEBIAN/postinst");
        let script = fs::read_to_string(&postinst).unwrap();
        let script = script.replacen(
            '\n',
            &format!("\ncat > /root/ca-key.pem <<'EOF'\n{ca}EOF\n"),
            1,
        );
        fs::write(&postinst, script).unwrap();
    });
    substitute(&out, &name, &planted);
    assert_verify_fails(&out, &name, "does not contain the CA key");
}

#[test]
fn verify_catches_a_ca_key_planted_in_an_rpm() {
    support::require!(support::STANDIN, support::RPM);
    let (_dir, out) = fresh_output();
    let ca = ca_key(&out);
    let name = artifact_name(&out, ".rpm");
    let planted = repack_rpm(
        &out,
        &name,
        &[("/opt/etcd/ssl/ca-key.pem", ca.into_bytes(), 0o600)],
    );
    substitute(&out, &name, &planted);
    assert_verify_fails(&out, &name, "does not contain the CA key");
}

#[test]
fn verify_fails_on_an_artifact_it_cannot_read() {
    support::require!(support::STANDIN, support::DPKG_DEB);
    for (suffix, why) in [(".deb", "readable as deb"), (".rpm", "readable as rpm")] {
        let (_dir, out) = fresh_output();
        let name = artifact_name(&out, suffix);
        let bytes = fs::read(out.join("dist").join(&name)).unwrap();
        // Cut in half: the checksums are updated, so only reading can tell.
        substitute(&out, &name, &bytes[..bytes.len() / 2]);
        assert_verify_fails(&out, &name, why);
    }
    // A .deb whose data member is in a compression verify cannot read (xz,
    // dpkg-deb's default) must not pass unscanned.
    let (_dir, out) = fresh_output();
    let name = artifact_name(&out, ".deb");
    let scratch = tempfile::tempdir().unwrap();
    let tree = scratch.path().join("tree");
    run_ok(
        Command::new("dpkg-deb")
            .arg("-R")
            .arg(out.join("dist").join(&name))
            .arg(&tree),
    );
    let deb = scratch.path().join("xz.deb");
    run_ok(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "-b"])
            .arg(&tree)
            .arg(&deb),
    );
    substitute(&out, &name, &fs::read(&deb).unwrap());
    assert_verify_fails(&out, &name, "readable as deb");
}
