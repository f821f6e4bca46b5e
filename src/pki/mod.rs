//! **pki**: one CA per output directory, one certificate per node and
//! per client, all kept under `OUT/pki` and reused on reruns.
//!
//! Why it is shaped this way:
//!
//! - **The CA is state, not output.** Every node trusts the CA that signed its
//!   peers; a new CA on a rerun would split a running cluster. So an existing
//!   `ca.pem` + `ca-key.pem` is always reused, half a CA is an error rather than
//!   a reason to start over, and an imported CA that differs from the one on
//!   disk is refused instead of silently rotating trust.
//! - **Leaves are cheap and re-issued one at a time.** A leaf is kept only while
//!   it still says exactly what the config asks for (names, addresses, usages,
//!   key algorithm), verifies against the current CA, and is not close to
//!   expiry. Adding a SAN to one node therefore changes one node's package.
//! - **Per-node certificates** instead of the recipe's one shared `server.pem`:
//!   a leaked node key must not impersonate every other node.
//! - **Byte-exact issuer names.** Go's TLS stack (and so etcd) chains a leaf to
//!   its CA by comparing raw issuer and subject bytes; every issued leaf is
//!   checked for it before it is written.
//! - **Imported keys are copied, never re-encoded**: re-serialising a PKCS#1
//!   key through rcgen would label it wrongly, and the user's file is the
//!   authority anyway.
//!
//! The CA key never leaves `OUT/pki`; [`contains_key`] lets later stages prove it.

mod ca;
mod cert;
mod issuing;
mod keyscan;
pub mod rotation;
mod seal;
mod x509;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use anyhow::Result;
use time::{OffsetDateTime, UtcOffset};

use crate::config::{Cluster, San};
use crate::report::Reporter;

pub use ca::check_import;
pub use cert::{LeafStep, check_leaf};
pub use issuing::{Issuing, begin};
pub use keyscan::{Found, KeyFinder};
pub use seal::{SealStep, seal, sealed_path};

use crate::model::CertId;
pub use crate::model::{CA_BUNDLE, CA_CERT, CA_KEY, NEXT_CA_CERT, NEXT_CA_KEY};
pub use rotation::RotationStep;

const DIR_MODE: u32 = 0o700;
const CERT_MODE: u32 = 0o644;
const KEY_MODE: u32 = 0o600;

/// What one leaf certificate must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    /// Path under the PKI directory without extension: `nodes/etcd-1`,
    /// `clients/etcdctl` (the id of [`LeafSpec::cert`]).
    pub id: String,
    pub cert: CertId,
    pub common_name: String,
    pub organization: Option<String>,
    pub sans: Vec<San>,
    /// Extended key usage serverAuth.
    pub server: bool,
    /// Extended key usage clientAuth.
    pub client: bool,
}

/// The name that admits a certificate to the peer port of `cluster` (see
/// [`crate::model::peer_hostname`]).
pub fn peer_hostname(cluster: &Cluster) -> String {
    crate::model::peer_hostname(&cluster.name)
}

/// Every leaf the cluster needs, nodes first, in config order.
///
/// Node leaves serve both the client and the peer port, and act as clients
/// towards their peers, hence server + client. `localhost`, 127.0.0.1 and ::1
/// let etcdctl on the node itself talk TLS to the local member; the
/// [`peer_hostname`] admits the node to the peer port.
pub fn leaf_specs(cluster: &Cluster) -> Vec<LeafSpec> {
    let mut specs = Vec::with_capacity(cluster.nodes.len() + cluster.clients.len());
    for node in &cluster.nodes {
        let mut sans = vec![
            San::Ip(node.ip),
            San::Dns(node.name.clone()),
            San::Dns("localhost".to_owned()),
            San::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            San::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            San::Dns(peer_hostname(cluster)),
        ];
        for san in &node.sans {
            if !sans.contains(san) {
                sans.push(san.clone());
            }
        }
        let cert = CertId::Node(node.name.clone());
        specs.push(LeafSpec {
            id: cert.id(),
            cert,
            common_name: node.name.clone(),
            organization: None,
            sans,
            server: true,
            client: true,
        });
    }
    for client in &cluster.clients {
        let cert = CertId::Client(client.name.clone());
        specs.push(LeafSpec {
            id: cert.id(),
            cert,
            common_name: client.name.clone(),
            organization: client.organization.clone(),
            sans: Vec::new(),
            server: false,
            client: true,
        });
    }
    specs
}

/// Where the CA in use came from on this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaOrigin {
    /// Generated on this run.
    Created,
    /// Found in the PKI directory from an earlier run.
    Reused,
    /// Copied from `pki.ca_cert` / `pki.ca_key`.
    Imported,
}

/// One leaf certificate and its key, as written under the PKI directory.
#[derive(Clone)]
pub struct Issued {
    pub id: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: OffsetDateTime,
    /// Kept from an earlier run rather than issued now.
    pub reused: bool,
    /// The key sealed to the node's SSH host key (armored age), with
    /// `packages.keys: sealed`.
    pub sealed_key: Option<String>,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("id", &self.id)
            .field("not_after", &self.not_after)
            .field("reused", &self.reused)
            .field("key_pem", &"[elided]")
            .finish_non_exhaustive()
    }
}

/// The CA certificate and every leaf of the cluster. The CA key is not here:
/// nothing downstream of this stage needs it.
#[derive(Debug, Clone)]
pub struct Pki {
    /// What nodes trust: the CA's certificate, during a CA rotation with
    /// the next CA's after it.
    pub ca_cert_pem: String,
    pub ca_not_before: OffsetDateTime,
    pub ca_not_after: OffsetDateTime,
    pub ca_origin: CaOrigin,
    pub leaves: Vec<Issued>,
}

impl Pki {
    pub fn leaf(&self, id: &str) -> Option<&Issued> {
        self.leaves.iter().find(|l| l.id == id)
    }
}

/// What a leaf says, as read back by [`check_leaf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafInfo {
    pub common_name: String,
    pub sans: Vec<San>,
    pub not_after: OffsetDateTime,
    pub server: bool,
    pub client: bool,
}

/// `pki_dir/<id>.pem`
pub fn cert_path(pki_dir: &Path, id: &str) -> PathBuf {
    pki_dir.join(format!("{id}.pem"))
}

/// `pki_dir/<id>-key.pem`
pub fn key_path(pki_dir: &Path, id: &str) -> PathBuf {
    pki_dir.join(format!("{id}-key.pem"))
}

/// What a run will do with the CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaAction {
    Create,
    Reuse,
    Import,
}

/// Every PKI decision of a run, made by reading `OUT/pki` and the files
/// to import, never by writing: [`inspect`] makes it, `plan` shows it and
/// [`apply`] carries out exactly it.
pub struct PkiPlan {
    ca: ca::CaStep,
    /// During a CA rotation: the next CA.
    next: Option<rotation::NextCa>,
    pub rotation: RotationStep,
    now: OffsetDateTime,
    /// One per leaf, in [`leaf_specs`] order.
    pub leaves: Vec<(LeafSpec, LeafStep)>,
    /// With `packages.keys: sealed`: one per node leaf, by leaf id.
    pub seals: Vec<(String, SealStep)>,
}

impl fmt::Debug for PkiPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PkiPlan")
            .field("ca", &self.ca_action())
            .field("leaves", &self.leaves)
            .finish_non_exhaustive()
    }
}

impl PkiPlan {
    pub fn ca_action(&self) -> CaAction {
        match &self.ca {
            ca::CaStep::Create => CaAction::Create,
            ca::CaStep::Reuse(_) => CaAction::Reuse,
            ca::CaStep::Import { write: true, .. } => CaAction::Import,
            ca::CaStep::Import { write: false, .. } => CaAction::Reuse,
        }
    }

    fn current(&self) -> Option<&ca::Ca> {
        match &self.ca {
            ca::CaStep::Create => None,
            ca::CaStep::Reuse(c) | ca::CaStep::Import { ca: c, .. } => Some(c),
        }
    }

    fn next_ca(&self) -> Option<&ca::Ca> {
        match &self.next {
            Some(rotation::NextCa::Reuse(c)) => Some(c),
            _ => None,
        }
    }

    /// What nodes trust ([`bundle`]), when every CA in it exists before
    /// the run.
    pub fn trust_bundle(&self) -> Option<String> {
        match self.rotation {
            RotationStep::None => self.current().map(|c| c.cert_pem.clone()),
            RotationStep::Trust | RotationStep::Issue => {
                Some(bundle(&[self.current()?, self.next_ca()?]))
            }
            RotationStep::Retire => self.next_ca().map(|c| c.cert_pem.clone()),
        }
    }

    /// The notBefore of the CA the output is dated by (the CA once the run
    /// is done), when it exists before the run.
    pub fn ca_not_before(&self) -> Option<OffsetDateTime> {
        match self.rotation {
            RotationStep::Retire => self.next_ca().map(|c| c.not_before),
            _ => self.current().map(|c| c.not_before),
        }
    }

    pub fn leaf(&self, id: &str) -> Option<&(LeafSpec, LeafStep)> {
        self.leaves.iter().find(|(s, _)| s.id == id)
    }

    /// What happens to the sealed key of leaf `id`, if keys are sealed.
    pub fn seal(&self, id: &str) -> Option<&SealStep> {
        self.seals.iter().find(|(i, _)| i == id).map(|(_, s)| s)
    }
}

/// What a run asks of the PKI beyond the config: the leaves `etcdpack renew`
/// re-issues although they are still good (new key, new certificate, the
/// same CA), and where a CA rotation stands (`etcdpack rotate-ca`).
#[derive(Debug, Clone, Default)]
pub struct Renewal {
    /// Whether a renewal was asked for at all (`gen` and `plan`: no).
    pub requested: bool,
    /// Only leaves that expire within this; `None`: every selected leaf.
    pub within: Option<time::Duration>,
    /// Only these nodes' leaves (and no client's); empty: every leaf.
    pub nodes: Vec<String>,
    /// Where a CA rotation stands for this run.
    pub rotation: RotationStep,
}

impl Renewal {
    /// Why the still-good leaf `spec`, valid until `not_after`, is renewed,
    /// if it is.
    fn reason(
        &self,
        spec: &LeafSpec,
        not_after: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Option<String> {
        if !self.requested {
            return None;
        }
        if !self.nodes.is_empty()
            && !matches!(&spec.cert, CertId::Node(n) if self.nodes.contains(n))
        {
            return None;
        }
        let expires = x509::show_time(not_after);
        match self.within {
            Some(w) if not_after > now + w => None,
            Some(_) => Some(format!("renewed: expires on {expires}, within the window")),
            None => Some(format!("renewed: was valid until {expires}")),
        }
    }
}

/// Decide, without writing, what [`apply`] will do under `pki_dir`
/// (normally `OUT/pki`): create, reuse or import the CA; reuse or issue
/// each leaf, with the reason.
///
/// `now` is taken as a parameter so that reruns and tests control time.
pub fn inspect(
    pki_dir: &Path,
    cluster: &Cluster,
    now: OffsetDateTime,
    renewal: &Renewal,
    reporter: &Reporter,
) -> Result<PkiPlan> {
    // Certificates carry whole seconds; keep `now` comparable with them.
    let now = now
        .to_offset(UtcOffset::UTC)
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond");
    let ca = ca::decide(pki_dir, cluster, now, reporter)?;
    let next = rotation::decide(pki_dir, renewal.rotation, now)?;
    let policy = x509::Policy::new(&cluster.pki, now)?;
    // The CA that signs the leaves: the next one from the issue phase on.
    let existing = match (renewal.rotation, &ca, &next) {
        (RotationStep::Issue | RotationStep::Retire, _, Some(rotation::NextCa::Reuse(n))) => {
            Some(n)
        }
        (RotationStep::Issue | RotationStep::Retire, _, _) => None,
        (_, ca::CaStep::Create, _) => None,
        (_, ca::CaStep::Reuse(c), _) => Some(c),
        // An imported CA that replaces nothing signs everything anew only
        // if the leaves on disk are not its own; `decide` checks that.
        (_, ca::CaStep::Import { ca: c, .. }, _) => Some(c),
    };
    let leaves: Vec<(LeafSpec, LeafStep)> = leaf_specs(cluster)
        .into_iter()
        .map(|spec| {
            let step = match cert::decide(pki_dir, &spec, existing, &policy) {
                LeafStep::Reuse(issued) => match renewal.reason(&spec, issued.not_after, now) {
                    Some(reason) => LeafStep::Issue { reason },
                    None => LeafStep::Reuse(issued),
                },
                issue => issue,
            };
            (spec, step)
        })
        .collect();
    let seals = host_keys(cluster)
        .filter_map(|(id, host)| {
            let (_, leaf) = leaves.iter().find(|(s, _)| s.id == id)?;
            Some((id.clone(), seal::decide(pki_dir, &id, host, leaf)))
        })
        .collect();
    Ok(PkiPlan {
        ca,
        next,
        rotation: renewal.rotation,
        now,
        leaves,
        seals,
    })
}

/// Each node leaf's id and the host key its key is sealed to, when keys
/// are sealed.
fn host_keys(cluster: &Cluster) -> impl Iterator<Item = (String, &crate::config::HostKey)> {
    let sealed = cluster.packages.keys == crate::config::Keys::Sealed;
    cluster
        .nodes
        .iter()
        .filter(move |_| sealed)
        .filter_map(|n| {
            let host = n.ssh_host_key.as_ref()?;
            Some((CertId::Node(n.name.clone()).id(), host))
        })
}

/// Carry out `plan` under `pki_dir`: write the CA if it is created or
/// imported, and every leaf it issues, in parallel (see [`Issuing`] for
/// issuing them one at a time).
pub fn apply(pki_dir: &Path, cluster: &Cluster, plan: PkiPlan, reporter: &Reporter) -> Result<Pki> {
    begin(pki_dir, cluster, plan, reporter)?.finish()
}

/// The certificates of `cas`, one after another: what a node trusts.
fn bundle(cas: &[&ca::Ca]) -> String {
    cas.iter().map(|c| c.cert_pem.as_str()).collect()
}

/// [`inspect`] then [`apply`]: create or reuse the CA and every leaf.
pub fn ensure(
    pki_dir: &Path,
    cluster: &Cluster,
    now: OffsetDateTime,
    reporter: &Reporter,
) -> Result<Pki> {
    let plan = inspect(pki_dir, cluster, now, &Renewal::default(), reporter)?;
    apply(pki_dir, cluster, plan, reporter)
}

/// True if `data` contains the private key of `key_pem` in any of the forms it
/// travels in: the PEM text, its base64 body (also re-wrapped or on one line,
/// as in JSON), or the raw DER. Compressed archives must be unpacked first.
pub fn contains_key(data: &[u8], key_pem: &str) -> bool {
    let body: Vec<u8> = pem_body(key_pem)
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if body.len() < 32 {
        // Not a key: an empty needle would match everything.
        return false;
    }
    if find(data, key_pem.trim().as_bytes()) {
        return true;
    }
    if let Ok(der) = x509::pem_contents(key_pem.as_bytes())
        && !der.is_empty()
        && find(data, &der)
    {
        return true;
    }
    runs(data, body.len()).any(|run| find(&flatten(run), &body))
}

/// The stretches of `data`, at least `min` bytes long, that a base64 body
/// can hide in, however wrapped or escaped: only base64, whitespace and
/// backslashes. Only these are flattened and searched, with the same
/// result as searching all of `data` flattened (a body in it is made of
/// those bytes alone) at a fraction of the work: a stretch of `min` bytes
/// holds one of every `min`-th byte, so only those are looked at first.
fn runs(data: &[u8], min: usize) -> impl Iterator<Item = &[u8]> {
    const fn allowed() -> [bool; 256] {
        let mut t = [false; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            t[b] = c.is_ascii_alphanumeric()
                || matches!(c, b'+' | b'/' | b'=' | b'\\')
                || c.is_ascii_whitespace();
            b += 1;
        }
        t
    }
    const ALLOWED: [bool; 256] = allowed();
    let ok = |i: usize| ALLOWED[data[i] as usize];
    let min = min.max(1);
    let mut probe = min - 1;
    std::iter::from_fn(move || {
        while probe < data.len() {
            if !ok(probe) {
                probe += min;
                continue;
            }
            let mut start = probe;
            while start > 0 && ok(start - 1) {
                start -= 1;
            }
            let mut end = probe + 1;
            while end < data.len() && ok(end) {
                end += 1;
            }
            // The next stretch starts after `end`, which is not allowed.
            probe = end + min - 1;
            if end - start >= min {
                return Some(&data[start..end]);
            }
        }
        None
    })
}

/// `data` without whitespace and without the escapes JSON or a shell put into
/// a PEM text (`\n`, `\r`, `\t`, `\/`), so a base64 body is found however
/// it was wrapped or quoted.
fn flatten(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        match (data[i], data.get(i + 1)) {
            (b'\\', Some(b'n' | b'r' | b't')) => i += 2,
            (b'\\', Some(b'/')) => {
                out.push(b'/');
                i += 2;
            }
            (b, _) if b.is_ascii_whitespace() => i += 1,
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// The base64 lines between the first BEGIN and END markers.
fn pem_body(pem: &str) -> String {
    pem.lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .filter(|l| !l.contains(':'))
        .collect()
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && memchr::memmem::find(haystack, needle).is_some()
}

#[cfg(test)]
mod tests;
