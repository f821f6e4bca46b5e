//! **release**: which etcd release, from where, with which checksum.
//!
//! The pinned table is the one source of truth for official checksums; the
//! Nix code reads the same data (see `nix/pins.nix`, kept equal by a test).

use serde::Serialize;

use crate::model::Arch;

/// The release a cluster runs, as the config resolved it.
#[derive(Debug, Clone, Serialize)]
pub struct Etcd {
    /// Without the leading `v`, e.g. "3.4.16".
    pub version: String,
    pub arch: Arch,
    /// Lower-case hex; from the pinned table, the config or `--etcd-sha256`.
    pub sha256: String,
    /// Full download URL when the config names one; otherwise derived from the mirror.
    pub url: Option<String>,
}

/// A minor line of etcd releases: what is rendered follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Line {
    #[serde(rename = "3.4")]
    V3_4,
    #[serde(rename = "3.5")]
    V3_5,
    #[serde(rename = "3.6")]
    V3_6,
}

impl Line {
    pub const ALL: [Line; 3] = [Line::V3_4, Line::V3_5, Line::V3_6];

    pub fn as_str(self) -> &'static str {
        match self {
            Line::V3_4 => "3.4",
            Line::V3_5 => "3.5",
            Line::V3_6 => "3.6",
        }
    }

    /// The line of `version` (MAJOR.MINOR.PATCH), if etcdpack renders it.
    pub fn of(version: &str) -> Option<Line> {
        match parse_version(version)? {
            (3, 4, _) => Some(Line::V3_4),
            (3, 5, _) => Some(Line::V3_5),
            (3, 6, _) => Some(Line::V3_6),
            _ => None,
        }
    }

    /// The lines as text for messages: "3.4, 3.5, 3.6".
    pub fn list() -> String {
        Line::ALL.map(Line::as_str).join(", ")
    }
}

/// `MAJOR.MINOR.PATCH` as numbers.
pub fn parse_version(version: &str) -> Option<(u64, u64, u64)> {
    let mut it = version.split('.').map(|p| p.parse::<u64>().ok());
    let v = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(v)
}

impl Etcd {
    /// The release line; 3.4 for a version no line matches (the config
    /// check refuses those, so this is only a fallback).
    pub fn line(&self) -> Line {
        Line::of(&self.version).unwrap_or(Line::V3_4)
    }

    /// `ETCD_TLS_MIN_VERSION`'s value, for the releases that know
    /// `--tls-min-version`: "Add `etcd --tls-min-version --tls-max-version`"
    /// is in the etcd CHANGELOG under v3.4.25 (etcd-io/etcd#15486), v3.5.8
    /// (#15483) and v3.6.0 (#15156). Earlier releases (3.4.16, Debian's
    /// 3.4.23, 3.5.0–3.5.7) get nothing: etcd 3.4, 3.5 and 3.6 only warn
    /// "unrecognized environment variable" at an `ETCD_*` variable they do
    /// not know (`verifyEnv` in `pkg/flags/flag.go`) and start without it, so
    /// a rendered setting the release cannot read would be silently lost.
    ///
    /// Every one of these releases already refuses anything below TLS 1.2
    /// (its `TLSInfo` sets `MinVersion: tls.VersionTLS12`, and the flag
    /// defaults to TLS1.2); rendering it states the floor where the release
    /// can read it, so a later default cannot lower it unnoticed.
    pub fn tls_min_version(&self) -> Option<&'static str> {
        let v = parse_version(&self.version)?;
        let knows = match self.line() {
            Line::V3_4 => v >= (3, 4, 25),
            Line::V3_5 => v >= (3, 5, 8),
            Line::V3_6 => true,
        };
        knows.then_some("TLS1.2")
    }
}

/// `ETCD_CIPHER_SUITES` for TLS 1.2, on every line: the ECDHE suites with
/// an AEAD cipher (AES-GCM, ChaCha20-Poly1305), for ECDSA and RSA keys
/// alike (`pki.algorithm` is either), so that no CBC or SHA-1 suite is
/// negotiated on the client or the peer port. TLS 1.3 has only AEAD suites,
/// which Go does not let anyone configure.
///
/// An unknown name stops etcd ("unexpected TLS cipher suite"), so these are
/// names each line's `tlsutil.GetCipherSuite` accepts whatever Go it was
/// built with: the AES-GCM names are Go's own; ChaCha20's are given without
/// `_SHA256`: the only spelling in 3.4's table for Go before 1.15
/// (`pkg/tlsutil/cipher_suites.go` up to 3.4.18, whose official builds use
/// Go 1.12.17, 3.4.16 among them), and one that 3.4 for Go 1.15 and later
/// and every 3.5 and 3.6 release (`client/pkg/tlsutil/cipher_suites.go`)
/// map by name to the `_SHA256` suite, whatever Go calls it.
pub const CIPHER_SUITES: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
];

/// The first 3.5 release that a 3.6 member may join or replace: every
/// member must run it (or later) before the upgrade to 3.6.
pub const BEFORE_3_6: (u64, u64, u64) = (3, 5, 26);

/// Whether the cluster built with `from` may move to `to`, and what the
/// move needs first (said by `plan`): a downgrade and a skipped minor
/// release are refused, as etcd refuses them.
pub fn check_upgrade(from: &str, to: &str) -> anyhow::Result<Option<String>> {
    let (Some(f), Some(t)) = (parse_version(from), parse_version(to)) else {
        return Ok(None);
    };
    if t < f {
        anyhow::bail!(
            "etcd {to} is older than {from}, which the last gen built: downgrades are refused (etcd does not run on a data directory a newer release has written)\n  help: set etcd.version to {from} or later; to start again with an older release, use a new output directory for a new cluster"
        );
    }
    if t.0 == f.0 && t.1 > f.1 + 1 {
        let next = format!("{}.{}", f.0, f.1 + 1);
        anyhow::bail!(
            "etcd {from} → {to} skips the {next} line: etcd upgrades one minor release at a time\n  help: set etcd.version to a {next}.x release first, gen, upgrade every node to it, then move to {to}"
        );
    }
    let (a, b, c) = BEFORE_3_6;
    if (f.0, f.1) == (3, 5) && (t.0, t.1) == (3, 6) {
        if f < BEFORE_3_6 {
            anyhow::bail!(
                "etcd {from} → {to}: every member must run {a}.{b}.{c} or later before the upgrade to 3.6\n  help: set etcd.version to {a}.{b}.{c} or a later 3.5 release first, gen, upgrade every node, then move to {to}"
            );
        }
        return Ok(Some(format!(
            "before upgrading to {to}: every member runs {from} (≥ {a}.{b}.{c}), and `etcdutl check v2store` passes on each member's data directory (3.6 has no v2 store)"
        )));
    }
    if (f.0, f.1) != (t.0, t.1) {
        return Ok(Some(format!(
            "a minor upgrade: install the new packages one node at a time, each member healthy before the next (cluster version {}.{} once all run it)",
            t.0, t.1
        )));
    }
    Ok(None)
}

/// The release built when the config names none.
pub const DEFAULT_VERSION: &str = "3.4.16";

/// Where official releases are downloaded from.
pub const OFFICIAL_BASE: &str = "https://github.com/etcd-io/etcd/releases/download";

/// (version, arch, sha256 of `etcd-v{version}-linux-{arch}.tar.gz`).
///
/// 3.4.16's come from its release's SHA256SUMS. Besides the target release, a
/// checksum is pinned only where two independent public sources agree on it:
/// kubespray's `checksums.yml` (`etcd_binary_checksums`) and at least one other
/// project that pins the same official tarball by SHA-256. That is the newest
/// release of each later line: 3.5.33 (amd64; its arm64 sum has one source
/// only) and 3.6.14. Every other release needs `etcd.sha256`. nix/pins.nix
/// holds the same table.
pub const PINNED: &[(&str, Arch, &str)] = &[
    (
        "3.4.16",
        Arch::Amd64,
        "2e2d5b3572e077e7641193ed07b4929b0eaf0dc2f9463e9b677765528acafb89",
    ),
    (
        "3.4.16",
        Arch::Arm64,
        "6712ff22aeec39ed19688b1edf6747194193b074548fc62163e4804ca0264512",
    ),
    (
        "3.5.33",
        Arch::Amd64,
        "5025b5b24d81a9616b6e284ccd439b9a3df055ef8fdcdc142af3ec8f6a3b3c95",
    ),
    (
        "3.6.14",
        Arch::Amd64,
        "ffe840ff9295808e88cce2794a18a5ac87f12a5203c8314d0bf6aa119b41bac5",
    ),
    (
        "3.6.14",
        Arch::Arm64,
        "fa1b80565ee6fc2df1ae6f57a508b221f3ecc7d591c317c581cd8281b0842b3e",
    ),
];

pub fn pinned_sha256(version: &str, arch: Arch) -> Option<&'static str> {
    PINNED
        .iter()
        .find(|(v, a, _)| *v == version && *a == arch)
        .map(|(_, _, h)| *h)
}

/// The pinned releases as text for messages, e.g. "3.4.16 amd64, 3.4.16 arm64".
pub fn pinned_list() -> String {
    PINNED
        .iter()
        .map(|(v, a, _)| format!("{v} {}", a.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The release file's name and top directory, as upstream lays it out.
pub fn stem(version: &str, arch: Arch) -> String {
    format!("etcd-v{version}-linux-{}", arch.as_str())
}

pub fn file_name(version: &str, arch: Arch) -> String {
    format!("{}.tar.gz", stem(version, arch))
}

/// The URL to fetch: `etcd.url` if the config gives one, else
/// `{mirror or official}/v{V}/etcd-v{V}-linux-{ARCH}.tar.gz`.
pub fn url(etcd: &Etcd, mirror: Option<&str>) -> String {
    if mirror.is_none()
        && let Some(url) = &etcd.url
    {
        return url.clone();
    }
    let base = mirror.unwrap_or(OFFICIAL_BASE).trim_end_matches('/');
    format!(
        "{base}/v{}/{}",
        etcd.version,
        file_name(&etcd.version, etcd.arch)
    )
}

#[cfg(test)]
mod upgrade_tests {
    use super::*;

    #[test]
    fn upgrades_go_one_minor_at_a_time_and_never_down() {
        assert_eq!(check_upgrade("3.4.16", "3.4.16").unwrap(), None);
        assert_eq!(check_upgrade("3.4.16", "3.4.30").unwrap(), None);
        assert!(
            check_upgrade("3.4.16", "3.5.21")
                .unwrap()
                .unwrap()
                .contains("one node at a time")
        );
        let skip = check_upgrade("3.4.16", "3.6.4").unwrap_err().to_string();
        assert!(
            skip.contains("skips the 3.5 line") && skip.contains("3.5.x"),
            "{skip}"
        );
        let down = check_upgrade("3.5.21", "3.4.16").unwrap_err().to_string();
        assert!(down.contains("downgrades are refused"), "{down}");
        let down = check_upgrade("3.4.20", "3.4.16").unwrap_err().to_string();
        assert!(down.contains("downgrades are refused"), "{down}");
        let early = check_upgrade("3.5.21", "3.6.4").unwrap_err().to_string();
        assert!(early.contains("3.5.26 or later"), "{early}");
        let note = check_upgrade("3.5.26", "3.6.4").unwrap().unwrap();
        assert!(note.contains("etcdutl check v2store"), "{note}");
    }
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    fn etcd(version: &str) -> Etcd {
        Etcd {
            version: version.into(),
            arch: Arch::Amd64,
            sha256: String::new(),
            url: None,
        }
    }

    #[test]
    fn tls_min_version_only_where_the_release_knows_the_flag() {
        for v in ["3.4.16", "3.4.23", "3.4.24", "3.5.0", "3.5.7"] {
            assert_eq!(etcd(v).tls_min_version(), None, "{v}");
        }
        for v in [
            "3.4.25", "3.4.45", "3.5.8", "3.5.16", "3.5.33", "3.6.0", "3.6.14",
        ] {
            assert_eq!(etcd(v).tls_min_version(), Some("TLS1.2"), "{v}");
        }
    }

    #[test]
    fn cipher_suites_are_aead_ecdhe_for_both_key_types() {
        for s in CIPHER_SUITES {
            assert!(s.starts_with("TLS_ECDHE_"), "{s}");
            assert!(
                s.contains("_GCM_") || s.ends_with("_CHACHA20_POLY1305"),
                "{s}"
            );
        }
        for kind in ["ECDSA", "RSA"] {
            let n = CIPHER_SUITES
                .iter()
                .filter(|s| s.starts_with(&format!("TLS_ECDHE_{kind}_WITH_")))
                .count();
            assert_eq!(n, 3, "{kind}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etcd(url: Option<&str>) -> Etcd {
        Etcd {
            version: "3.4.16".into(),
            arch: Arch::Amd64,
            sha256: String::new(),
            url: url.map(Into::into),
        }
    }

    #[test]
    fn official_url_is_the_github_release() {
        assert_eq!(
            url(&etcd(None), None),
            "https://github.com/etcd-io/etcd/releases/download/v3.4.16/etcd-v3.4.16-linux-amd64.tar.gz"
        );
    }

    #[test]
    fn mirror_replaces_the_base_and_wins_over_config_url() {
        assert_eq!(
            url(
                &etcd(Some("http://x/y.tgz")),
                Some("http://127.0.0.1:8080/etcd/")
            ),
            "http://127.0.0.1:8080/etcd/v3.4.16/etcd-v3.4.16-linux-amd64.tar.gz"
        );
        assert_eq!(url(&etcd(Some("http://x/y.tgz")), None), "http://x/y.tgz");
    }

    #[test]
    fn pins_for_3_4_16_are_the_official_checksums() {
        assert_eq!(
            pinned_sha256("3.4.16", Arch::Amd64),
            Some("2e2d5b3572e077e7641193ed07b4929b0eaf0dc2f9463e9b677765528acafb89")
        );
        assert_eq!(
            pinned_sha256("3.4.16", Arch::Arm64),
            Some("6712ff22aeec39ed19688b1edf6747194193b074548fc62163e4804ca0264512")
        );
        assert_eq!(pinned_sha256("3.4.15", Arch::Amd64), None);
    }
}
