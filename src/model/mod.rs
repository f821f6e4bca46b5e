//! The shared vocabulary, at the bottom of the module graph: what every
//! stage names and none of them owns. Nothing here imports another module
//! of the crate, and nothing here does I/O.
//!
//! - [`Arch`] and [`Format`]: the closed sets a config chooses from.
//! - [`Identity`]: a package's name, version, release and architecture.
//! - [`Layout`]: where things go on a node; [`out`]: where things go in `OUT/`.
//! - [`Blob`]: a file's data, shared, with its digests computed once.
//! - [`CertId`]: the one spelling of a certificate's id and its files.
//! - [`Bootstrap`]: how a member comes up the first time.
//! - [`cis`]: the CIS benchmark's etcd items, checked on a member and by verify.

mod arch;
mod blob;
mod bootstrap;
mod certs;
pub mod cis;
mod format;
mod identity;
mod layout;

pub use arch::Arch;
pub use blob::Blob;
pub use bootstrap::{Bootstrap, ClusterState};
pub use certs::{
    CA_BUNDLE, CA_CERT, CA_KEY, CertId, NEXT_CA_CERT, NEXT_CA_KEY, Rotation, peer_hostname,
};
pub use format::Format;
pub use identity::Identity;
pub use layout::{FileRecord, Layout, Owner, out};

/// etcd's client port: TLS, with client certificates.
pub const CLIENT_PORT: u16 = 2379;
/// etcd's peer port.
pub const PEER_PORT: u16 = 2380;

/// A time as RFC 3339 (`2036-01-01T00:00:00Z`), as the manifest and every
/// message print it.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}
