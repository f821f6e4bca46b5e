//! The one policy for a test whose prerequisite is missing (a program, root):
//!
//! - **in CI** — `CI` set to anything but empty, `0` or `false` (what CI
//!   services set, and what `.ci/run` exports; insta's rule, under which a
//!   changed snapshot fails instead of being written), or
//!   `ETCDPACK_E2E_REQUIRED` set — the test fails and says what is missing: a
//!   skip there would hide a gap;
//! - **elsewhere** it prints `skipped: <test>: needs …` on stderr and returns,
//!   so that a developer without root or without one of the tools still runs
//!   everything else.
//!
//! `.ci/install-deps` installs every package named here. Integration tests
//! say `support::require!(ROOT, LINTIAN)` as their first line; the unit tests
//! under `src/` include this file and call [`require`] themselves. It uses
//! std only, so that both can.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Something a test needs from the machine it runs on.
#[derive(Clone, Copy, Debug)]
pub enum Need {
    /// Running as root: chroot, chown to another user, namespaces.
    Root,
    /// A program on `PATH` (or in /usr/sbin, /sbin), and the Debian package
    /// that provides it.
    Program {
        name: &'static str,
        package: &'static str,
    },
    /// Anything else: `probe` says whether it is there.
    Probe {
        what: &'static str,
        package: &'static str,
        probe: fn() -> bool,
    },
    /// Each of these.
    All(&'static [Need]),
}

pub const ROOT: Need = Need::Root;

const fn program(name: &'static str, package: &'static str) -> Need {
    Need::Program { name, package }
}

pub const AGE: Need = program("age", "age");
pub const APT_GET: Need = program("apt-get", "apt");
pub const CFSSL: Need = program("cfssl", "golang-cfssl");
pub const CHROOT: Need = program("chroot", "coreutils");
pub const CREATEREPO_C: Need = program("createrepo_c", "createrepo-c");
pub const CPIO: Need = program("cpio", "cpio");
pub const CURL: Need = program("curl", "curl");
pub const DEBOOTSTRAP: Need = program("debootstrap", "debootstrap");
pub const DNF: Need = program("dnf", "dnf");
pub const DPKG_DEB: Need = program("dpkg-deb", "dpkg");
pub const DPKG_SCANPACKAGES: Need = program("dpkg-scanpackages", "dpkg-dev");
pub const FISH: Need = program("fish", "fish");
/// Prometheus's own checker: configs, rules, and rule unit tests.
pub const PROMTOOL: Need = program("promtool", "prometheus");
/// A Prometheus server, scraping a live cluster.
pub const PROMETHEUS: Need = program("prometheus", "prometheus");
pub const FLOCK: Need = program("flock", "util-linux");
/// gcc and a static libc (`gcc -static`), for programs standing in for
/// the statically linked official ones.
pub const GCC_STATIC: Need = Need::All(&[
    program("gcc", "gcc"),
    Need::Probe {
        what: "a static libc for gcc -static",
        package: "libc6-dev",
        probe: static_libc,
    },
]);
pub const GPG: Need = program("gpg", "gnupg");
pub const LINTIAN: Need = program("lintian", "lintian");
pub const MANDOC: Need = program("mandoc", "mandoc");
pub const NIX_INSTANTIATE: Need = program("nix-instantiate", "nix-bin");
pub const NSENTER: Need = program("nsenter", "util-linux");
pub const OPENSSL: Need = program("openssl", "openssl");
pub const RPM: Need = program("rpm", "rpm");
pub const RPM2CPIO: Need = program("rpm2cpio", "rpm");
pub const SHELLCHECK: Need = program("shellcheck", "shellcheck");
pub const PIUPARTS: Need = program("piuparts", "piuparts");
pub const RPMLINT: Need = program("rpmlint", "rpmlint");
pub const SQ: Need = program("sq", "sq");
pub const SQV: Need = program("sqv", "sqv");
pub const SSH_KEYGEN: Need = program("ssh-keygen", "openssh-client");
pub const SYSTEMD_ANALYZE: Need = program("systemd-analyze", "systemd");
pub const UNSHARE: Need = program("unshare", "util-linux");
pub const ZSH: Need = program("zsh", "zsh");

/// What the stand-in release is made of: Debian's `/usr/bin/etcd` and
/// `/usr/bin/etcdctl`, which the tests that start members run too. Every test
/// that runs `gen` (or `plan`, `verify`) on a generated output needs it.
pub const STANDIN: Need = Need::All(&[
    Need::Probe {
        what: "/usr/bin/etcd",
        package: "etcd-server",
        probe: || Path::new("/usr/bin/etcd").is_file(),
    },
    Need::Probe {
        what: "/usr/bin/etcdctl",
        package: "etcd-client",
        probe: || Path::new("/usr/bin/etcdctl").is_file(),
    },
]);

/// What the 3.5 stand-in release is made of: etcd, etcdctl and etcdutl of
/// Debian trixie's etcd-server and etcd-client 3.5.x, which `.ci/install-deps`
/// downloads and unpacks (not installs) under this directory (the path is
/// `ETCD_3_5_DIR` in tests/support/mod.rs).
pub const STANDIN_3_5: Need = Need::Probe {
    what: "etcd, etcdctl and etcdutl 3.5 under /usr/local/lib/etcdpack-tests/etcd-3.5 (.ci/install-deps)",
    package: "etcd-server and etcd-client of trixie",
    probe: || {
        ["etcd", "etcdctl", "etcdutl"].iter().all(|b| {
            Path::new("/usr/local/lib/etcdpack-tests/etcd-3.5")
                .join(b)
                .is_file()
        })
    },
};

pub const ETCD_3_5_LATE: Need = Need::Probe {
    what: "etcd and etcdutl 3.5.26 or later under /usr/local/lib/etcdpack-tests/etcd-3.5-late (.ci/install-deps)",
    package: "etcd-server of forky",
    probe: || {
        ["etcd", "etcdutl"].iter().all(|b| {
            Path::new("/usr/local/lib/etcdpack-tests/etcd-3.5-late")
                .join(b)
                .is_file()
        })
    },
};

/// Whether the tests run in CI, where a missing prerequisite is a failure: insta's own rule
/// (so that a changed snapshot fails exactly where a skip would), or `ETCDPACK_E2E_REQUIRED`.
pub fn in_ci() -> bool {
    let ci = match std::env::var("CI").ok().as_deref() {
        Some("" | "0" | "false") => false,
        Some(_) => true,
        None => std::env::var_os("TF_BUILD").is_some(),
    };
    ci || std::env::var_os("ETCDPACK_E2E_REQUIRED").is_some()
}

/// What of `needs` this machine lacks, one phrase each ("root",
/// "lintian (Debian package lintian)").
pub fn missing(needs: &[Need]) -> Vec<String> {
    let mut out = Vec::new();
    for need in needs {
        match *need {
            Need::Root => {
                if !is_root() {
                    out.push("root".to_string());
                }
            }
            Need::Program { name, package } => {
                if find_program(name).is_none() {
                    out.push(format!("{name} (Debian package {package})"));
                }
            }
            Need::Probe {
                what,
                package,
                probe,
            } => {
                if !probe() {
                    out.push(format!("{what} (Debian package {package})"));
                }
            }
            Need::All(all) => out.extend(missing(all)),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|m| seen.insert(m.clone()));
    out
}

/// Whether the calling test may go on: true when the machine has all of
/// `needs`. Otherwise fails the test in CI, or says that it is skipped and
/// returns false (see the module docs).
#[must_use]
pub fn require(needs: &[Need]) -> bool {
    let lacking = missing(needs);
    require_that(if lacking.is_empty() {
        None
    } else {
        Some(format!("needs {}", lacking.join(", ")))
    })
}

/// The same policy for a prerequisite the caller checks itself: `why_not` is
/// `None` when the test can run, or what it needs ("needs a Debian root with
/// systemd; … is not one").
#[must_use]
pub fn require_that(why_not: Option<String>) -> bool {
    let Some(why) = why_not else {
        return true;
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    if in_ci() {
        panic!(
            "{test} cannot run: {why}; in CI a missing prerequisite is a failure, not a skip \
             (.ci/install-deps installs every package the tests use)"
        );
    }
    // Straight to the process's stderr: the test harness captures eprintln! of passing tests,
    // and a skip nobody sees is a skip that hides a gap.
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "skipped: {test}: {why}");
    false
}

/// The first executable `name` on `PATH`, /usr/sbin or /sbin.
pub fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    euid == Some("0")
}

/// Whether gcc can link statically: its libc.a is where gcc looks.
fn static_libc() -> bool {
    let out = std::process::Command::new("gcc")
        .arg("-print-file-name=libc.a")
        .output();
    out.is_ok_and(|o| {
        let p = String::from_utf8_lossy(&o.stdout).trim().to_string();
        Path::new(&p).is_absolute() && Path::new(&p).is_file()
    })
}
