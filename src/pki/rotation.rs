//! Rotating the CA with no downtime, in three phases, each rolled out to
//! every node (as package upgrades, whose restarts the cluster coordinates)
//! before the next:
//!
//! 1. **trust**: a next CA is created beside the current one
//!    (`next-ca.pem`, `next-ca-key.pem`); every node trusts both (its
//!    `ca.pem` is the bundle of the two); leaves stay as they are.
//! 2. **issue**: every leaf is issued anew by the next CA; nodes still
//!    trust both, so members on either side of the rollout talk.
//! 3. **retire**: the current CA leaves `OUT/pki` for `OUT/retired-ca/`
//!    (its key 0600), the next one becomes the CA, and nodes trust it alone.
//!
//! etcd reads its trusted CA files when it starts, not at each handshake
//! (etcd#11555): a node trusts a new bundle only once its member restarted,
//! which is why each phase is a package rollout and not a file copy.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use time::OffsetDateTime;

use super::ca::{self, Ca, CaFiles};
use super::{CA_CERT, CA_KEY, DIR_MODE, NEXT_CA_CERT, NEXT_CA_KEY};
use crate::config::Cluster;
use crate::fsutil;
use crate::model::{Rotation, out, rfc3339};
use crate::report::Reporter;

/// What a run does about a CA rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RotationStep {
    /// None under way.
    #[default]
    None,
    /// Phase 1: the next CA created (or kept), trusted beside the current.
    Trust,
    /// Phase 2: every leaf from the next CA.
    Issue,
    /// Phase 3: the current CA archived; the next one is the CA.
    Retire,
}

impl RotationStep {
    /// The phase the run leaves its output in.
    pub fn recorded(self) -> Option<Rotation> {
        match self {
            RotationStep::Trust => Some(Rotation::Trust),
            RotationStep::Issue => Some(Rotation::Issue),
            RotationStep::None | RotationStep::Retire => None,
        }
    }

    /// A run that keeps the phase the previous one left (`gen`, `renew`).
    pub fn kept(previous: Option<Rotation>) -> RotationStep {
        match previous {
            None => RotationStep::None,
            Some(Rotation::Trust) => RotationStep::Trust,
            Some(Rotation::Issue) => RotationStep::Issue,
        }
    }

    /// `rotate-ca` asked for `self` after a run that left `previous`: the
    /// step, or why it is out of order.
    pub fn after(self, previous: Option<Rotation>) -> Result<RotationStep, String> {
        let name = |s: RotationStep| match s {
            RotationStep::Trust => "trust",
            RotationStep::Issue => "issue",
            RotationStep::Retire => "retire",
            RotationStep::None => "none",
        };
        let expected = match previous {
            None => RotationStep::Trust,
            Some(Rotation::Trust) => RotationStep::Issue,
            Some(Rotation::Issue) => RotationStep::Retire,
        };
        if self == expected {
            return Ok(self);
        }
        let now = match previous {
            None => "no CA rotation is under way".to_owned(),
            Some(p) => format!("the CA rotation is in its {} phase", p.as_str()),
        };
        Err(format!(
            "rotate-ca {} is out of order: {now}\n  help: the phases go trust, issue, retire, each rolled out to every node first; next is `etcdpack rotate-ca {}`",
            name(self),
            name(expected)
        ))
    }
}

/// What this run does with the next CA.
pub(super) enum NextCa {
    Create,
    Reuse(Ca),
}

fn next_files(common_name: &str) -> CaFiles<'_> {
    CaFiles {
        cert: NEXT_CA_CERT,
        key: NEXT_CA_KEY,
        common_name,
    }
}

/// Decide, without writing, what `step` does with the next CA in `pki_dir`.
pub(super) fn decide(
    pki_dir: &Path,
    step: RotationStep,
    now: OffsetDateTime,
) -> Result<Option<NextCa>> {
    if step == RotationStep::None {
        return Ok(None);
    }
    let found = ca::load_files(pki_dir, &next_files(""), now)
        .context("the next CA of the rotation cannot be used")?;
    match (step, found) {
        (_, Some(next)) => Ok(Some(NextCa::Reuse(next))),
        (RotationStep::Trust, None) => Ok(Some(NextCa::Create)),
        (_, None) => bail!(
            "{} is missing, but the CA rotation is past its trust phase\n  help: restore {NEXT_CA_CERT} and {NEXT_CA_KEY} from a backup of {}",
            pki_dir.join(NEXT_CA_CERT).display(),
            pki_dir.display()
        ),
    }
}

/// Carry out `next`: the next CA, created under a name of its own (two CAs
/// a node trusts at once must not share a subject).
pub(super) fn apply(
    next: NextCa,
    pki_dir: &Path,
    cluster: &Cluster,
    now: OffsetDateTime,
    reporter: &Reporter,
) -> Result<Ca> {
    match next {
        NextCa::Reuse(ca) => Ok(ca),
        NextCa::Create => {
            let name = format!("{} {}", ca::CA_COMMON_NAME, rfc3339(now));
            ca::create_as(pki_dir, &next_files(&name), cluster, now, reporter)
        }
    }
}

/// Phase 3: move the current CA out of `pki_dir` into `OUT/retired-ca/`
/// (named by its notAfter, key 0600), then make the next CA the CA.
pub(super) fn retire(pki_dir: &Path, current: &Ca, reporter: &Reporter) -> Result<()> {
    let out_dir = pki_dir
        .parent()
        .context("the PKI directory has no parent")?;
    let archive = out_dir.join(out::RETIRED_CA);
    fsutil::ensure_dir(&archive, DIR_MODE)?;
    let stamp = rfc3339(current.not_before).replace(':', "");
    let cert = archive.join(format!("ca-{stamp}.pem"));
    let key = archive.join(format!("ca-{stamp}-key.pem"));
    let key_bytes = fs::read(pki_dir.join(CA_KEY))
        .with_context(|| format!("cannot read {}", pki_dir.join(CA_KEY).display()))?;
    fsutil::write_atomic(&key, &key_bytes, 0o600)?;
    fsutil::write_atomic(&cert, current.cert_pem.as_bytes(), 0o644)?;
    // The next CA's files take the CA's names: certificate first, so that a
    // run killed in between finds the next CA's certificate under ca.pem
    // with the old key, which it refuses ("not the key of").
    for (from, to) in [(NEXT_CA_CERT, CA_CERT), (NEXT_CA_KEY, CA_KEY)] {
        fs::rename(pki_dir.join(from), pki_dir.join(to))
            .with_context(|| format!("cannot move {from} to {to} in {}", pki_dir.display()))?;
    }
    reporter.status(
        "Retired",
        format!(
            "the CA of {} to {}; {} is the CA now",
            rfc3339(current.not_before),
            archive.display(),
            pki_dir.join(CA_CERT).display()
        ),
    );
    Ok(())
}
