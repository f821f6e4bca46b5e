//! The CIS Kubernetes Benchmark's etcd items, written down once: what
//! `etcd-maint cis` checks on a running member (the script's list is
//! rendered from this table) and `etcdpack verify` on each node's rendered
//! configuration.
//!
//! Like kube-bench (cfg/cis-1.x/etcd.yaml and master.yaml), a setting is
//! a flag on etcd's command line or, when the flag is absent, its `ETCD_*`
//! variable: etcd's own precedence (and etcd refuses to start with both).
//! A boolean passes only as `true` (kube-bench's `eq true`, any case), and
//! an `--auto-tls` passes when absent or `false`.

/// One item of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// The benchmark's number: `2.1`, `1.1.11`.
    pub id: &'static str,
    /// What passes, in the benchmark's words (no quotes or parentheses:
    /// the maintenance script carries it).
    pub title: &'static str,
    pub check: Check,
}

/// What an [`Item`] asks of the member. Flags are named without dashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Every one of these (string) flags is set, to a value that is not empty.
    Set(&'static [&'static str]),
    /// This boolean flag is `true`.
    True(&'static str),
    /// This boolean flag is absent or `false`.
    NotTrue(&'static str),
    /// This flag names the trusted CA, one of etcd's own: not the
    /// Kubernetes CA ([`KUBERNETES_CA`]).
    UniqueCa(&'static str),
    /// The data directory ([`DATA_DIR`]) has mode 700 or less.
    DataDirMode,
    /// The data directory is owned by the service user and its group.
    DataDirOwner,
}

impl Check {
    /// The check's kind, as the maintenance script spells it.
    pub fn kind(self) -> &'static str {
        match self {
            Check::Set(_) => "set",
            Check::True(_) => "true",
            Check::NotTrue(_) => "not-true",
            Check::UniqueCa(_) => "unique-ca",
            Check::DataDirMode => "data-dir-mode",
            Check::DataDirOwner => "data-dir-owner",
        }
    }

    /// The flags it reads, without dashes.
    pub fn flags(&self) -> &[&'static str] {
        match self {
            Check::Set(flags) => flags,
            Check::True(flag) | Check::NotTrue(flag) | Check::UniqueCa(flag) => {
                std::slice::from_ref(flag)
            }
            Check::DataDirMode | Check::DataDirOwner => &[DATA_DIR],
        }
    }
}

/// The flag of etcd's data directory.
pub const DATA_DIR: &str = "data-dir";

/// Where kubeadm keeps the Kubernetes CA, which etcd must not trust (2.7).
pub const KUBERNETES_CA: &str = "/etc/kubernetes/pki/ca.crt";

/// The items, in the benchmark's order: section 2 (etcd), then the two
/// control-plane items about etcd's data directory.
pub const ITEMS: &[Item] = &[
    Item {
        id: "2.1",
        title: "--cert-file and --key-file are set",
        check: Check::Set(&["cert-file", "key-file"]),
    },
    Item {
        id: "2.2",
        title: "--client-cert-auth is true",
        check: Check::True("client-cert-auth"),
    },
    Item {
        id: "2.3",
        title: "--auto-tls is not true",
        check: Check::NotTrue("auto-tls"),
    },
    Item {
        id: "2.4",
        title: "--peer-cert-file and --peer-key-file are set",
        check: Check::Set(&["peer-cert-file", "peer-key-file"]),
    },
    Item {
        id: "2.5",
        title: "--peer-client-cert-auth is true",
        check: Check::True("peer-client-cert-auth"),
    },
    Item {
        id: "2.6",
        title: "--peer-auto-tls is not true",
        check: Check::NotTrue("peer-auto-tls"),
    },
    Item {
        id: "2.7",
        title: "a unique CA for etcd: --trusted-ca-file is set, not the Kubernetes CA",
        check: Check::UniqueCa("trusted-ca-file"),
    },
    Item {
        id: "1.1.11",
        title: "the data directory has mode 700 or more restrictive",
        check: Check::DataDirMode,
    },
    Item {
        id: "1.1.12",
        title: "the data directory is owned by the service user",
        check: Check::DataDirOwner,
    },
];

/// An item as the maintenance script lays it out:
/// `cis_item ID KIND "FLAG..." "TITLE"`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScriptItem {
    pub id: &'static str,
    pub kind: &'static str,
    /// Without dashes, separated by spaces.
    pub flags: String,
    pub title: &'static str,
}

/// [`ITEMS`], as the maintenance script's list is rendered from them.
pub fn script_items() -> Vec<ScriptItem> {
    ITEMS
        .iter()
        .map(|i| ScriptItem {
            id: i.id,
            kind: i.check.kind(),
            flags: i.check.flags().join(" "),
            title: i.title,
        })
        .collect()
}

/// The variable etcd reads for `flag`: `cert-file` → `ETCD_CERT_FILE`.
pub fn env_name(flag: &str) -> String {
    format!("ETCD_{}", flag.to_ascii_uppercase().replace('-', "_"))
}

/// Whether `mode` (permission and special bits) is 700 or more
/// restrictive: no bit outside the owner's.
pub fn mode_ok(mode: u32) -> bool {
    mode & 0o7777 & !0o700 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_titles_fit_a_script() {
        for (i, item) in ITEMS.iter().enumerate() {
            assert!(ITEMS[..i].iter().all(|o| o.id != item.id), "{}", item.id);
            assert!(
                !item.title.contains(['"', '\'', '(', ')', '$', '`', '\\']),
                "{}",
                item.title
            );
            assert!(!item.check.flags().is_empty());
        }
        assert_eq!(
            env_name("peer-client-cert-auth"),
            "ETCD_PEER_CLIENT_CERT_AUTH"
        );
        assert!(mode_ok(0o700) && mode_ok(0o500) && mode_ok(0));
        assert!(!mode_ok(0o750) && !mode_ok(0o2700) && !mode_ok(0o701));
    }
}
