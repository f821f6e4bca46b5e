use std::fmt;

use serde::Serialize;

/// File name of the CA certificate inside the PKI directory.
pub const CA_CERT: &str = "ca.pem";
/// File name of the CA private key inside the PKI directory. Never packaged.
pub const CA_KEY: &str = "ca-key.pem";

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
