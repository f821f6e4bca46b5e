//! What fills each file of a node: known now, or only once the run has made
//! it (a certificate issued, the release read), and why.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use super::{FileSpec, NodeTree, Source, node_files};
use crate::config::{Cluster, Node};
use crate::extract::Binaries;
use crate::model::{Blob, FileRecord};
use crate::render::Rendered;

/// The certificate material a node receives. Never the CA key.
#[derive(Debug, Clone, Copy)]
pub struct NodeCerts<'a> {
    pub ca_cert_pem: &'a str,
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
    /// The key sealed to the node's host key, with `packages.keys: sealed`.
    pub sealed_key: Option<&'a str>,
}

/// Something a node's files are made of: at hand, or made only by the run,
/// and why it is new (`new CA`, `certificate issued: expires on …`).
#[derive(Debug, Clone)]
pub enum Part<T> {
    Ready(T),
    Later(String),
}

/// Where a node's programs come from.
#[derive(Debug, Clone, Copy)]
pub enum Programs<'a> {
    /// Read from the release.
    Read(&'a Binaries),
    /// Not read yet, the same release archive as the previous run's: the
    /// same bytes as that run recorded, by path.
    Recorded(&'a BTreeMap<String, FileRecord>),
    /// Not read yet, and new: why (`new`, `etcd 3.4.16 → 3.5.0`).
    New(&'a str),
}

/// Everything a node's files are made of, as far as it is known: all of it
/// once a run has made its certificates and read the release; before, what
/// a plan can know.
#[derive(Debug, Clone)]
pub struct Material<'a> {
    pub rendered: &'a Rendered,
    pub programs: Programs<'a>,
    pub ca_cert_pem: Part<&'a str>,
    pub cert_pem: Part<&'a str>,
    pub key_pem: Part<&'a str>,
    /// With `packages.keys: sealed`.
    pub sealed_key: Part<&'a str>,
    /// `etcd-maint`, which names the certificate's expiry.
    pub maint: Part<&'a str>,
}

/// What one file of a node holds, as far as it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The bytes.
    Known(Blob),
    /// Bytes not at hand yet but the same as the previous run's, of this
    /// sha256: the programs of the release that run read.
    Recorded(String),
    /// Bytes only the run makes, and why they are new.
    Pending(String),
}

impl Content {
    /// The sha256 the file will have, or why it is new when only the run
    /// will know.
    pub fn digest(&self) -> Result<&str, &str> {
        match self {
            Content::Known(b) => Ok(b.sha256()),
            Content::Recorded(sha) => Ok(sha),
            Content::Pending(why) => Err(why),
        }
    }
}

/// One file of a node and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub spec: FileSpec,
    pub content: Content,
}

/// Every file of a node of `cluster` with its contents as far as `m` knows
/// them, in [`node_files`] order: the one place that says what fills each
/// file. A plan predicts, diffs and records from this; a run fills in what
/// was not known with [`complete`].
pub fn contents(cluster: &Cluster, m: &Material) -> Vec<Planned> {
    node_files(cluster)
        .into_iter()
        .map(|spec| Planned {
            content: content(&spec, m),
            spec,
        })
        .collect()
}

fn content(f: &FileSpec, m: &Material) -> Content {
    let text = |s: &str| Content::Known(Blob::from(s));
    let part = |p: &Part<&str>| match p {
        Part::Ready(s) => text(s),
        Part::Later(why) => Content::Pending(why.clone()),
    };
    match f.source {
        Source::Etcd | Source::Etcdctl | Source::Etcdutl => match m.programs {
            Programs::Read(b) => Content::Known(match f.source {
                Source::Etcd => b.etcd.clone(),
                Source::Etcdctl => b.etcdctl.clone(),
                // The release was checked to have it (extract::read_release).
                _ => b.etcdutl.clone().unwrap_or_else(|| Blob::from(&b""[..])),
            }),
            Programs::Recorded(records) => match records.get(&f.path) {
                Some(r) => Content::Recorded(r.sha256.clone()),
                None => Content::Pending("new".into()),
            },
            Programs::New(why) => Content::Pending(why.to_owned()),
        },
        Source::EtcdConf => text(&m.rendered.etcd_conf),
        Source::Unit => text(&m.rendered.etcd_service),
        Source::Profile => text(&m.rendered.etcdctl_profile),
        Source::MaintUnit(unit) => text(m.rendered.maint_unit(unit).unwrap_or_default()),
        Source::CaCert => part(&m.ca_cert_pem),
        Source::NodeCert => part(&m.cert_pem),
        Source::NodeKey => part(&m.key_pem),
        Source::SealedKey => part(&m.sealed_key),
        Source::Maint => part(&m.maint),
    }
}

/// The tree of `node` from its `planned` files, those whose bytes were not
/// known filled in from `m`, which by now has everything.
pub fn complete(
    cluster: &Cluster,
    node: &Node,
    planned: &[Planned],
    m: &Material,
) -> Result<NodeTree> {
    let files = planned
        .iter()
        .map(|p| {
            let data = match &p.content {
                Content::Known(b) => b.clone(),
                _ => match content(&p.spec, m) {
                    Content::Known(b) => b,
                    Content::Recorded(_) | Content::Pending(_) => {
                        bail!(
                            "internal: the contents of {} are still unknown",
                            p.spec.path
                        )
                    }
                },
            };
            Ok(p.spec.entry(data))
        })
        .collect::<Result<Vec<_>>>()?;
    NodeTree::new(&node.name, &cluster.paths.install_dir, files)
}

/// A node's tree from its parts, for callers that hold certificates
/// themselves (tests build packages this way without a PKI run); `maint` is
/// the maintenance script, [`crate::render::render_maint`] for the certificate.
pub fn assemble(
    cluster: &Cluster,
    node: &Node,
    bins: &Binaries,
    certs: NodeCerts,
    rendered: &Rendered,
    maint: &str,
) -> Result<NodeTree> {
    let m = Material {
        rendered,
        programs: Programs::Read(bins),
        ca_cert_pem: Part::Ready(certs.ca_cert_pem),
        cert_pem: Part::Ready(certs.cert_pem),
        key_pem: Part::Ready(certs.key_pem),
        sealed_key: Part::Ready(certs.sealed_key.unwrap_or_default()),
        maint: Part::Ready(maint),
    };
    complete(cluster, node, &contents(cluster, &m), &m)
}
