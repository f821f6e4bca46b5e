//! Carrying out a [`PkiPlan`] in two steps: the CAs first ([`begin`]), then
//! each leaf on its own, by whichever thread needs it ([`Issuing::leaf`]).
//!
//! A new leaf's key dominates its cost (an RSA-2048 key takes tens of
//! milliseconds, a signature well under one), and a node needs no other
//! node's certificate. So `gen` does not wait for every leaf before it
//! builds the first node: the worker that builds a node issues that node's
//! leaf just before its tree, and key generation overlaps the packaging of
//! other nodes (which waits on the disk) instead of preceding all of it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use time::OffsetDateTime;

use super::ca::{self, Ca};
use super::cert::{self, LeafStep};
use super::seal::{self, SealStep};
use super::x509::Policy;
use super::{
    CA_BUNDLE, CERT_MODE, CaOrigin, DIR_MODE, Issued, LeafSpec, Pki, PkiPlan, RotationStep, bundle,
    host_keys, rotation,
};
use crate::config::{Cluster, HostKey};
use crate::fsutil;
use crate::model::CertId;
use crate::report::Reporter;

/// The PKI once its CAs exist: every leaf still to be reused or issued,
/// one at a time and in any order, then [`Issuing::finish`].
pub struct Issuing<'a> {
    pki_dir: PathBuf,
    policy: Policy,
    /// The CA that signs new leaves: the next one from a rotation's issue
    /// phase on.
    signer: Ca,
    /// What nodes trust (see [`Pki::ca_cert_pem`]).
    ca_cert_pem: String,
    ca_not_before: OffsetDateTime,
    ca_not_after: OffsetDateTime,
    ca_origin: CaOrigin,
    /// One per leaf, in [`super::leaf_specs`] order.
    leaves: Vec<Leaf<'a>>,
    reporter: &'a Reporter,
}

/// One leaf of the plan: what to do with it until done, then the result.
struct Leaf<'a> {
    spec: LeafSpec,
    /// With `packages.keys: sealed`: the host key its key is sealed to.
    host: Option<&'a HostKey>,
    /// Taken by the one thread that carries it out; held meanwhile, so a
    /// second caller waits for the first instead of issuing it again.
    todo: Mutex<Option<Todo>>,
    done: OnceLock<Issued>,
}

struct Todo {
    step: LeafStep,
    /// What happens to the sealed key, with a host key.
    seal: Option<SealStep>,
}

/// Carry out the CA part of `plan` under `pki_dir`: write the CA if it is
/// created or imported, create the next CA of a rotation, retire the current
/// one in a rotation's last phase. The leaves are left to the [`Issuing`].
pub fn begin<'a>(
    pki_dir: &Path,
    cluster: &'a Cluster,
    plan: PkiPlan,
    reporter: &'a Reporter,
) -> Result<Issuing<'a>> {
    for dir in [pki_dir.to_owned()]
        .into_iter()
        .chain(CertId::DIRS.iter().map(|d| pki_dir.join(d)))
    {
        fsutil::ensure_dir(&dir, DIR_MODE)?;
    }
    let now = plan.now;
    let policy = Policy::new(&cluster.pki, now)?;
    let rotation = plan.rotation;
    let current = ca::apply(plan.ca, pki_dir, cluster, now, reporter)?;
    let next = match plan.next {
        Some(n) => Some(rotation::apply(n, pki_dir, cluster, now, reporter)?),
        None => None,
    };
    if rotation == RotationStep::Retire {
        rotation::retire(pki_dir, &current, reporter)?;
    }
    let ca_cert_pem = match (rotation, &next) {
        (RotationStep::None, _) => bundle(&[&current]),
        (RotationStep::Trust | RotationStep::Issue, Some(n)) => bundle(&[&current, n]),
        (RotationStep::Retire, Some(n)) => bundle(&[n]),
        (_, None) => bail!("internal: the CA rotation has no next CA"),
    };
    // The output is dated by the current CA until it is retired.
    let (ca_not_before, ca_not_after) = match (rotation, &next) {
        (RotationStep::Retire, Some(n)) => (n.not_before, n.not_after),
        _ => (current.not_before, current.not_after),
    };
    let ca_origin = current.origin;
    let signer = match (rotation, next) {
        (RotationStep::Issue | RotationStep::Retire, Some(n)) => n,
        _ => current,
    };
    // Fails here, once, rather than for every leaf.
    signer.issuer()?;
    // Said in the order of the config, as `plan` says it, although the
    // leaves are then issued in whatever order they are needed.
    for (spec, step) in &plan.leaves {
        cert::report(step, spec, reporter);
    }
    let hosts: Vec<_> = host_keys(cluster).collect();
    let mut seals = plan.seals;
    let leaves = plan
        .leaves
        .into_iter()
        .map(|(spec, step)| {
            let sealing = seals
                .iter()
                .position(|(id, _)| *id == spec.id)
                .map(|i| seals.swap_remove(i).1);
            let host = hosts.iter().find(|(id, _)| *id == spec.id).map(|h| h.1);
            Leaf {
                spec,
                host,
                todo: Mutex::new(Some(Todo {
                    step,
                    seal: sealing,
                })),
                done: OnceLock::new(),
            }
        })
        .collect();
    Ok(Issuing {
        pki_dir: pki_dir.to_owned(),
        policy,
        signer,
        ca_cert_pem,
        ca_not_before,
        ca_not_after,
        ca_origin,
        leaves,
        reporter,
    })
}

impl Issuing<'_> {
    /// What nodes trust: the CA's certificate, during a CA rotation with
    /// the next CA's after it.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    /// The notBefore of the CA the output is dated by.
    pub fn ca_not_before(&self) -> OffsetDateTime {
        self.ca_not_before
    }

    /// The leaf `id` (`nodes/etcd-1`), reused or issued (its key
    /// generated, signed, written under the PKI directory, sealed) on the
    /// first call, on this thread; the same leaf on every later one.
    pub fn leaf(&self, id: &str) -> Result<&Issued> {
        let leaf = self
            .leaves
            .iter()
            .find(|l| l.spec.id == id)
            .with_context(|| format!("internal: no certificate planned for {id}"))?;
        self.carry_out(leaf)
    }

    fn carry_out<'s>(&'s self, leaf: &'s Leaf) -> Result<&'s Issued> {
        if let Some(done) = leaf.done.get() {
            return Ok(done);
        }
        let mut todo = leaf.todo.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(done) = leaf.done.get() {
            return Ok(done);
        }
        let Some(Todo { step, seal }) = todo.take() else {
            bail!("the certificate {} could not be issued", leaf.spec.id);
        };
        let spec = &leaf.spec;
        let issuer = self.signer.issuer()?;
        let mut issued = cert::apply(
            step,
            &self.pki_dir,
            spec,
            &self.signer,
            &issuer,
            &self.policy,
        )?;
        if let (Some(step), Some(host)) = (seal, leaf.host) {
            if matches!(step, SealStep::Seal { .. }) {
                self.reporter
                    .status("Sealing", format!("{} to {}", spec.id, host.fingerprint()));
            }
            issued.sealed_key = Some(seal::apply(step, &self.pki_dir, &issued, host)?);
        }
        Ok(leaf.done.get_or_init(|| issued))
    }

    /// Every leaf not asked for yet, in parallel; then the trust bundle
    /// clients use is written, and the whole PKI returned.
    pub fn finish(self) -> Result<Pki> {
        self.leaves
            .par_iter()
            .try_for_each(|l| self.carry_out(l).map(drop))?;
        fsutil::write_atomic(
            &self.pki_dir.join(CA_BUNDLE),
            self.ca_cert_pem.as_bytes(),
            CERT_MODE,
        )?;
        let leaves = self
            .leaves
            .into_iter()
            .map(|l| l.done.into_inner().expect("carried out above"))
            .collect();
        Ok(Pki {
            ca_cert_pem: self.ca_cert_pem,
            ca_not_before: self.ca_not_before,
            ca_not_after: self.ca_not_after,
            ca_origin: self.ca_origin,
            leaves,
        })
    }
}
