//! Stage 3a: which etcd release, from where, with which checksum.
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

/// The release built when the config names none.
pub const DEFAULT_VERSION: &str = "3.4.16";

/// Where official releases are downloaded from.
pub const OFFICIAL_BASE: &str = "https://github.com/etcd-io/etcd/releases/download";

/// (version, arch, sha256 of `etcd-v{version}-linux-{arch}.tar.gz`), from the
/// release's own SHA256SUMS.
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
