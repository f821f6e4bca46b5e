use std::fmt;

use serde::{Deserialize, Serialize};

/// File name of the CA certificate inside the PKI directory.
pub const CA_CERT: &str = "ca.pem";
/// File name of the CA private key inside the PKI directory. Never packaged.
pub const CA_KEY: &str = "ca-key.pem";
/// During a CA rotation, the CA that replaces the current one.
pub const NEXT_CA_CERT: &str = "next-ca.pem";
/// Its private key. Never packaged.
pub const NEXT_CA_KEY: &str = "next-ca-key.pem";
/// What out-of-band clients trust, under the PKI directory: the CA, and
/// during a rotation the next one too.
pub const CA_BUNDLE: &str = "clients/ca-bundle.pem";

/// The phase of a CA rotation a run leaves its output in (see
/// `pki::rotation`); none when no rotation is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rotation {
    /// Every node trusts the current CA and the next one; leaves are the
    /// current CA's.
    Trust,
    /// Every leaf is the next CA's; nodes still trust both.
    Issue,
}

impl Rotation {
    pub fn as_str(self) -> &'static str {
        match self {
            Rotation::Trust => "trust",
            Rotation::Issue => "issue",
        }
    }
}

/// Which leaf certificate: one per node, one per client. Its id
/// (`nodes/etcd-1`, `clients/etcdctl`) names its files under `OUT/pki`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(into = "String")]
pub enum CertId {
    Node(String),
    Client(String),
}

impl CertId {
    /// The subdirectory of the PKI directory for each kind.
    pub const DIRS: [&'static str; 2] = ["nodes", "clients"];

    /// `nodes/etcd-1`
    pub fn id(&self) -> String {
        match self {
            CertId::Node(n) => format!("nodes/{n}"),
            CertId::Client(c) => format!("clients/{c}"),
        }
    }

    /// `nodes/etcd-1.pem`, relative to the PKI directory.
    pub fn cert_file(&self) -> String {
        format!("{}.pem", self.id())
    }

    /// `nodes/etcd-1-key.pem`, relative to the PKI directory.
    pub fn key_file(&self) -> String {
        format!("{}-key.pem", self.id())
    }

    /// `nodes/etcd-1-key.sealed`: the key sealed to the node's host key.
    pub fn sealed_key_file(&self) -> String {
        format!("{}-key.sealed", self.id())
    }
}

impl fmt::Display for CertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id())
    }
}

impl From<CertId> for String {
    fn from(c: CertId) -> String {
        c.id()
    }
}

/// The name that makes a certificate a peer of cluster `cluster`: every node
/// certificate carries it as a DNS SAN and etcd's
/// `ETCD_PEER_CERT_ALLOWED_HOSTNAME` requires it on the peer port, so a
/// client certificate from the same CA (which names nothing) is refused
/// there. Under `.invalid` (RFC 2606): it never resolves and names no host.
pub fn peer_hostname(cluster: &str) -> String {
    format!("peer.{cluster}.etcd.invalid")
}
