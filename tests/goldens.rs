//! Golden files: what each package says about itself, as the distributions' own tools print
//! it — the .deb's control file, the .rpm's header (names, relations, which scriptlets exist),
//! and every package's file listing with modes, owners, sizes and times — compared with the
//! snapshots committed in `tests/snapshots/goldens__*.snap`.
//!
//! A change in any of them is a change users see (what apt or dnf shows, what ends up on the
//! disk with which owner), so it must show up in review: a failing test here says what
//! changed; after checking it, `cargo insta review` (or `INSTA_UPDATE=always cargo test --test
//! goldens`) updates the snapshot. Plain `cargo test` needs no cargo-insta, and in CI (`CI`
//! set) insta never writes a snapshot, so a mismatch is a failure.
//!
//! The inputs are fixed, so that the output is too: the packages are built through the library
//! (`support::packaging`) from the real templates, with fixed bytes for the programs, fixed
//! PEM-shaped texts for the certificates and the key, and every mtime at
//! `packaging::MTIME`; the tools run with `TZ=UTC` and `LC_ALL=C`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use etcdpack::extract::Binaries;
use etcdpack::model::Blob;
use etcdpack::package::Format;

use support::packaging::{build_with, cluster, put};
use support::run_ok;

/// Programs of fixed bytes (and, like the real ones, different from each other): the sizes in
/// the listings and Installed-Size do not depend on the compiler at hand.
fn fixed_binaries() -> Binaries {
    Binaries {
        etcd: Blob::from(&b"\x7fELF stand-in for etcd, fixed for the golden files\n"[..]),
        etcdctl: Blob::from(&b"\x7fELF stand-in for etcdctl\n"[..]),
        etcdutl: None,
    }
}

/// Node etcd-1's package in `format` (release 1), written into `dir`.
fn package(dir: &Path, format: Format) -> PathBuf {
    let (name, bytes) = build_with(&fixed_binaries(), format, &cluster(""), "etcd-1", 1);
    put(dir, &name, &bytes)
}

/// A tool's command, with times in UTC and untranslated messages.
fn tool(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("TZ", "UTC").env("LC_ALL", "C");
    cmd
}

/// Runs of spaces made one: the columns of a listing are padded to its widest entry, which
/// says nothing about the package.
fn squeeze(listing: &str) -> String {
    listing
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn deb_control_file() {
    support::require!(support::DPKG_DEB);
    let dir = tempfile::tempdir().unwrap();
    let deb = package(dir.path(), Format::Deb);
    let control = run_ok(tool("dpkg-deb").arg("--info").arg(&deb).arg("control"));
    insta::assert_snapshot!("deb_control", control);
}

#[test]
fn deb_file_listing() {
    support::require!(support::DPKG_DEB);
    let dir = tempfile::tempdir().unwrap();
    let deb = package(dir.path(), Format::Deb);
    let data = run_ok(tool("dpkg-deb").arg("--contents").arg(&deb));
    let control_tar = dir.path().join("control.tar");
    let bytes = tool("dpkg-deb")
        .arg("--ctrl-tarfile")
        .arg(&deb)
        .output()
        .unwrap();
    assert!(bytes.status.success(), "dpkg-deb --ctrl-tarfile failed");
    std::fs::write(&control_tar, &bytes.stdout).unwrap();
    let control = run_ok(tool("tar").args(["-tvf"]).arg(&control_tar));
    let listing = format!(
        "# dpkg-deb --contents\n{}# the control member\n{}",
        squeeze(&data),
        squeeze(&control)
    );
    insta::assert_snapshot!("deb_files", listing);
}

/// The header fields users and tools read, one per line; relations with their flags and
/// versions; and which scriptlets exist, with their interpreter.
const RPM_HEADER: &str = "\
Name: %{NAME}
Version: %{VERSION}
Release: %{RELEASE}
Arch: %{ARCH}
Summary: %{SUMMARY}
License: %{LICENSE}
URL: %{URL}
Packager: %{PACKAGER}
Vendor: %{VENDOR}
Group: %{GROUP}
Build time: %{BUILDTIME}
Payload: %{PAYLOADFORMAT} %{PAYLOADCOMPRESSOR}
File digests: %{FILEDIGESTALGO}
Description:
%{DESCRIPTION}
Requires:
[  %{REQUIRENAME} %{REQUIREFLAGS:depflags} %{REQUIREVERSION}
]Provides:
[  %{PROVIDENAME} %{PROVIDEFLAGS:depflags} %{PROVIDEVERSION}
]Conflicts:
[  %{CONFLICTNAME} %{CONFLICTFLAGS:depflags} %{CONFLICTVERSION}
]Scriptlets:
  %%pre: %|PREIN?{%{PREINPROG}}:{none}|
  %%post: %|POSTIN?{%{POSTINPROG}}:{none}|
  %%preun: %|PREUN?{%{PREUNPROG}}:{none}|
  %%postun: %|POSTUN?{%{POSTUNPROG}}:{none}|
  %%pretrans: %|PRETRANS?{%{PRETRANSPROG}}:{none}|
  %%posttrans: %|POSTTRANS?{%{POSTTRANSPROG}}:{none}|
  triggers: %|TRIGGERNAME?{[%{TRIGGERNAME} ]}:{none}|
";

#[test]
fn rpm_header() {
    support::require!(support::RPM);
    let dir = tempfile::tempdir().unwrap();
    let rpm = package(dir.path(), Format::Rpm);
    let header = run_ok(tool("rpm").args(["-qp", "--qf", RPM_HEADER]).arg(&rpm));
    let config = run_ok(tool("rpm").args(["-qp", "--configfiles"]).arg(&rpm));
    // Trailing blanks (an empty version after a relation's name) are no information.
    let header: String = header
        .lines()
        .map(|l| format!("{}\n", l.trim_end()))
        .collect();
    insta::assert_snapshot!("rpm_header", format!("{header}Config files:\n{config}"));
}

#[test]
fn rpm_file_listing() {
    support::require!(support::RPM);
    let dir = tempfile::tempdir().unwrap();
    let rpm = package(dir.path(), Format::Rpm);
    let listing = run_ok(tool("rpm").arg("-qlvp").arg(&rpm));
    insta::assert_snapshot!("rpm_files", squeeze(&listing));
}

#[test]
fn bundle_file_listing() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = package(dir.path(), Format::Tar);
    let listing = run_ok(tool("tar").arg("-tvzf").arg(&bundle));
    insta::assert_snapshot!("bundle_files", squeeze(&listing));
}

/// The listings are of fixed inputs: two builds give the same bytes, so a snapshot can only
/// change when etcdpack does.
#[test]
fn the_inputs_are_fixed() {
    for format in [Format::Tar, Format::Deb, Format::Rpm] {
        let a = build_with(&fixed_binaries(), format, &cluster(""), "etcd-1", 1);
        let b = build_with(&fixed_binaries(), format, &cluster(""), "etcd-1", 1);
        assert!(a == b, "{format}: two builds of the same input differ");
    }
}
