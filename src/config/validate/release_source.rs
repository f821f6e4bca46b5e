//! `etcd`: which release, and the checksum it must have.

use super::Checker;
use crate::config::error::{Position, Rule};
use crate::config::raw::*;
use crate::config::*;
use crate::release;

pub(super) fn etcd(c: &mut Checker, raw_etcd: &RawEtcd, overrides: &Overrides) -> Etcd {
    let version = match &raw_etcd.version {
        Some(v) => {
            let text = v.value.strip_prefix('v').unwrap_or(&v.value).to_owned();
            let parts: Vec<&str> = text.split('.').collect();
            if parts.len() != 3
                || parts
                    .iter()
                    .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
            {
                let at = c.at(v);
                c.problem(
                    Rule::EtcdVersion,
                    at,
                    format!("etcd.version \"{}\" is not a release number", v.value),
                    format!(
                        "write MAJOR.MINOR.PATCH, e.g. \"{}\"",
                        release::DEFAULT_VERSION
                    ),
                );
            } else if release::Line::of(&text).is_none() {
                let at = c.at(v);
                c.problem(
                    Rule::EtcdVersion,
                    at,
                    format!(
                        "etcd {text} is not of a release line etcdpack renders ({})",
                        release::Line::list()
                    ),
                    "use a 3.4.x, 3.5.x or 3.6.x release, e.g. \"3.5.21\" (with its etcd.sha256)",
                );
            }
            text
        }
        None => release::DEFAULT_VERSION.to_owned(),
    };
    let arch = match &raw_etcd.arch {
        None => Arch::Amd64,
        Some(a) => match a.value.as_str() {
            "amd64" => Arch::Amd64,
            "arm64" => Arch::Arm64,
            other => {
                let at = c.at(a);
                let hint = match other {
                    "x86_64" | "x86-64" => " (etcd calls it amd64)",
                    "aarch64" => " (etcd calls it arm64)",
                    _ => "",
                };
                c.problem(
                    Rule::Arch,
                    at,
                    format!("etcd.arch \"{other}\" is not supported{hint}"),
                    "use amd64 or arm64",
                );
                Arch::Amd64
            }
        },
    };
    let mut sha256 = String::new();
    let check_hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let pinned = release::pinned_sha256(&version, arch);
    // An explicit checksum is for a release etcdpack has no pin for, or a
    // rebuilt one on purpose; one that silently replaces the official
    // checksum of a pinned release is said out loud.
    let replaces_pin = |given: &str| pinned.filter(|p| !p.eq_ignore_ascii_case(given));
    if let Some(s) = &overrides.etcd_sha256 {
        if check_hex(s) {
            sha256 = s.to_ascii_lowercase();
            if let Some(p) = replaces_pin(s) {
                c.warn(
                    Position::file(c.file),
                    format!(
                        "--etcd-sha256 {sha256} replaces the pinned checksum {p} of etcd {version} linux-{}: only a tarball with this checksum is accepted\n  help: drop --etcd-sha256 to use the pinned checksum of the official release",
                        arch.as_str()
                    ),
                );
            }
        } else {
            c.problem(
                Rule::Sha256,
                Position::file(c.file),
                format!("--etcd-sha256 \"{s}\" is not a SHA-256 in hex"),
                "give the 64 hex digits of the tarball's SHA-256 (sha256sum prints it)",
            );
        }
    } else if let Some(s) = &raw_etcd.sha256 {
        if check_hex(&s.value) {
            sha256 = s.value.to_ascii_lowercase();
            if let Some(p) = replaces_pin(&s.value) {
                let at = c.at(s);
                c.warn(
                    at,
                    format!(
                        "etcd.sha256 {sha256} replaces the pinned checksum {p} of etcd {version} linux-{}: only a tarball with this checksum is accepted\n  help: remove etcd.sha256 to use the pinned checksum of the official release",
                        arch.as_str()
                    ),
                );
            }
        } else {
            let at = c.at(s);
            c.problem(
                Rule::Sha256,
                at,
                format!("etcd.sha256 \"{}\" is not a SHA-256 in hex", s.value),
                "give the 64 hex digits of the tarball's SHA-256 (sha256sum prints it)",
            );
        }
    } else if let Some(pinned) = pinned {
        sha256 = pinned.to_owned();
    } else {
        let at = raw_etcd
            .version
            .as_ref()
            .map(|v| c.at(v))
            .unwrap_or_else(|| Position::file(c.file));
        c.problem(
            Rule::UnknownRelease,
            at,
            format!(
                "etcd {version} linux-{} has no pinned checksum in this etcdpack (pinned: {})",
                arch.as_str(),
                release::pinned_list()
            ),
            "add `etcd.sha256: <hex>` (from the release's SHA256SUMS) or pass --etcd-sha256",
        );
    }
    let url = match &raw_etcd.url {
        Some(u) if u.value.starts_with("https://") || u.value.starts_with("http://") => {
            Some(u.value.clone())
        }
        Some(u) => {
            let at = c.at(u);
            c.problem(
                Rule::Url,
                at,
                format!("etcd.url \"{}\" is not an http(s) URL", u.value),
                "give the full URL of the release tarball, or remove the key to use the official release",
            );
            None
        }
        None => None,
    };
    Etcd {
        version,
        arch,
        sha256,
        url,
    }
}
