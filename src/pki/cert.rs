//! Leaf certificates: issue, decide whether an existing one may stay, and
//! check one against a CA for `etcdpack verify`.
//!
//! Reuse is decided by reading the certificate back, not by remembering what
//! was asked for last time: the files on disk are the only state, so a leaf
//! edited, replaced or signed by another CA is noticed.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PublicKeyData, SanType,
};
use time::OffsetDateTime;
use x509_parser::prelude::{GeneralName, X509Certificate};

use super::ca::Ca;
use super::x509::{
    CLOCK_SKEW, Policy, algorithm_of_spki, cert_der, first_text, generate_key, parse,
    random_serial, show_time, verify_chain,
};
use super::{CERT_MODE, Issued, KEY_MODE, LeafInfo, LeafSpec, cert_path, key_path};
use crate::config::San;
use crate::fsutil;
use crate::report::Reporter;

/// What a certificate says, in the terms of a [`LeafSpec`].
struct Facts {
    common_name: Option<String>,
    organization: Option<String>,
    sans: Vec<San>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    server: bool,
    client: bool,
}

fn facts(x: &X509Certificate<'_>) -> Result<Facts> {
    let mut sans = Vec::new();
    if let Some(ext) = x
        .subject_alternative_name()
        .map_err(|e| anyhow!("bad subjectAltName: {e}"))?
    {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.push(San::Dns((*d).to_owned())),
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => IpAddr::from(<[u8; 4]>::try_from(*b).expect("4 bytes")),
                        16 => IpAddr::from(<[u8; 16]>::try_from(*b).expect("16 bytes")),
                        n => bail!("an IP address SAN of {n} bytes"),
                    };
                    sans.push(San::Ip(ip));
                }
                _ => {}
            }
        }
    }
    let eku = x
        .extended_key_usage()
        .map_err(|e| anyhow!("bad extendedKeyUsage: {e}"))?;
    let (server, client) = eku.map_or((false, false), |e| {
        (
            e.value.server_auth || e.value.any,
            e.value.client_auth || e.value.any,
        )
    });
    Ok(Facts {
        common_name: first_text(x.subject().iter_common_name()),
        organization: first_text(x.subject().iter_organization()),
        sans,
        not_before: x.validity().not_before.to_datetime(),
        not_after: x.validity().not_after.to_datetime(),
        server,
        client,
    })
}

/// Check a leaf against a CA for `etcdpack verify`: issued by it (signature
/// really verified), valid at `now`; returns what the leaf says.
pub fn check_leaf(ca_cert_pem: &str, leaf_cert_pem: &str, now: OffsetDateTime) -> Result<LeafInfo> {
    let ca_der = cert_der(ca_cert_pem.as_bytes()).context("cannot read the CA certificate")?;
    let ca = parse(&ca_der).context("cannot read the CA certificate")?;
    let leaf_der = cert_der(leaf_cert_pem.as_bytes()).context("cannot read the certificate")?;
    let leaf = parse(&leaf_der).context("cannot read the certificate")?;
    let f = facts(&leaf)?;
    let who = f.common_name.as_deref().unwrap_or("(no common name)");
    verify_chain(&leaf, &ca).map_err(|why| anyhow!("certificate \"{who}\" is {why}"))?;
    if now < f.not_before {
        bail!(
            "certificate \"{who}\" is not valid before {} (the clock of this machine or of the issuer is wrong)",
            show_time(f.not_before)
        );
    }
    if now > f.not_after {
        bail!(
            "certificate \"{who}\" expired on {}",
            show_time(f.not_after)
        );
    }
    Ok(LeafInfo {
        common_name: f.common_name.unwrap_or_default(),
        sans: f.sans,
        not_after: f.not_after,
        server: f.server,
        client: f.client,
    })
}

/// What this run does with one leaf, decided without writing.
#[derive(Debug, Clone)]
pub enum LeafStep {
    /// The existing certificate still says what the config asks for.
    Reuse(Issued),
    /// A new certificate and key, and why (shown to the user).
    Issue { reason: String },
}

/// Decide whether the leaf of `spec` under `pki_dir` may stay. `ca` is None
/// when the CA is created on this run: then every leaf is new.
pub(super) fn decide(
    pki_dir: &Path,
    spec: &LeafSpec,
    ca: Option<&Ca>,
    policy: &Policy,
) -> LeafStep {
    let Some(ca) = ca else {
        return LeafStep::Issue {
            reason: "new CA".into(),
        };
    };
    let cert_file = cert_path(pki_dir, &spec.id);
    let key_file = key_path(pki_dir, &spec.id);
    match reusable(&cert_file, &key_file, spec, ca, policy) {
        Ok(issued) => LeafStep::Reuse(issued),
        Err(reason) => LeafStep::Issue { reason },
    }
}

/// Say what [`apply`] will do with `step`, in the order of the config
/// (the leaves are then issued in the order they are needed).
pub(super) fn report(step: &LeafStep, spec: &LeafSpec, reporter: &Reporter) {
    match step {
        LeafStep::Reuse(issued) => reporter.detail(
            "Reusing",
            format!("{} (expires {})", spec.id, show_time(issued.not_after)),
        ),
        LeafStep::Issue { reason } => reporter.status("Issuing", format!("{} ({reason})", spec.id)),
    }
}

/// Carry out `step` for `spec`: the reused leaf, or a new one (its key
/// generated here) written under `pki_dir`.
pub(super) fn apply(
    step: LeafStep,
    pki_dir: &Path,
    spec: &LeafSpec,
    ca: &Ca,
    issuer: &Issuer<'_, &KeyPair>,
    policy: &Policy,
) -> Result<Issued> {
    if let LeafStep::Reuse(issued) = step {
        return Ok(issued);
    }
    let cert_file = cert_path(pki_dir, &spec.id);
    let key_file = key_path(pki_dir, &spec.id);
    let (cert_pem, key_pem) = issue(spec, ca, issuer, policy)
        .with_context(|| format!("cannot issue the certificate {}", spec.id))?;
    let not_after = parse(&cert_der(cert_pem.as_bytes())?)?
        .validity()
        .not_after
        .to_datetime();
    // Key first: a certificate on disk is then always next to its own key or
    // to a newer one, which the next run detects and re-issues.
    fsutil::write_atomic(&key_file, key_pem.as_bytes(), KEY_MODE)?;
    fsutil::write_atomic(&cert_file, cert_pem.as_bytes(), CERT_MODE)?;
    Ok(Issued {
        id: spec.id.clone(),
        cert_pem,
        key_pem,
        not_after,
        reused: false,
        sealed_key: None,
    })
}

/// The existing leaf, or why it cannot stay (shown to the user).
fn reusable(
    cert_file: &Path,
    key_file: &Path,
    spec: &LeafSpec,
    ca: &Ca,
    policy: &Policy,
) -> Result<Issued, String> {
    let (cert_pem, key_pem) = match (
        std::fs::read_to_string(cert_file),
        std::fs::read_to_string(key_file),
    ) {
        (Ok(c), Ok(k)) => (c, k),
        (Err(_), Err(_)) => return Err("new".into()),
        (Err(_), Ok(_)) => return Err("certificate file missing".into()),
        (Ok(_), Err(_)) => return Err("key file missing".into()),
    };
    let der = cert_der(cert_pem.as_bytes()).map_err(|e| format!("unreadable certificate: {e}"))?;
    let leaf = parse(&der).map_err(|e| format!("unreadable certificate: {e}"))?;
    let key = KeyPair::from_pem(&key_pem).map_err(|e| format!("unreadable key: {e}"))?;
    let ca_x = ca.x509().map_err(|e| e.to_string())?;
    verify_chain(&leaf, &ca_x).map_err(|why| format!("it was {why}"))?;
    if key.subject_public_key_info() != leaf.public_key().raw {
        return Err("key does not belong to the certificate".into());
    }
    if algorithm_of_spki(leaf.public_key()) != Some(policy.algorithm) {
        return Err(format!(
            "key algorithm is not {}",
            policy.algorithm.as_str()
        ));
    }
    let f = facts(&leaf).map_err(|e| format!("unreadable certificate: {e}"))?;
    if f.common_name.as_deref() != Some(spec.common_name.as_str()) {
        return Err("common name changed".into());
    }
    if f.organization != spec.organization {
        return Err("organization changed".into());
    }
    let have: BTreeSet<&San> = f.sans.iter().collect();
    let want: BTreeSet<&San> = spec.sans.iter().collect();
    if have != want || f.sans.len() != spec.sans.len() {
        let mut diff: Vec<String> = want
            .difference(&have)
            .map(|s| format!("+{}", show_san(s)))
            .collect();
        diff.extend(have.difference(&want).map(|s| format!("-{}", show_san(s))));
        return Err(if diff.is_empty() {
            "subject alternative names changed".into()
        } else {
            format!("subject alternative names changed: {}", diff.join(" "))
        });
    }
    if (f.server, f.client) != (spec.server, spec.client) {
        return Err("extended key usages changed".into());
    }
    if policy.now < f.not_before {
        return Err(format!("not valid before {}", show_time(f.not_before)));
    }
    // A leaf cut short by the CA's own expiry stays: a new one could not live longer.
    let renew_at = (policy.now + policy.renew_before).min(ca.not_after);
    if f.not_after < renew_at {
        return Err(format!("expires on {}", show_time(f.not_after)));
    }
    Ok(Issued {
        id: spec.id.clone(),
        cert_pem,
        key_pem,
        not_after: f.not_after,
        reused: true,
        sealed_key: None,
    })
}

/// `IP:10.0.0.1`, `DNS:etcd-1`, as openssl prints them.
fn show_san(san: &San) -> String {
    match san {
        San::Ip(ip) => format!("IP:{ip}"),
        San::Dns(d) => format!("DNS:{d}"),
    }
}

/// Sign a new leaf; returns (certificate PEM, PKCS#8 key PEM).
fn issue(
    spec: &LeafSpec,
    ca: &Ca,
    issuer: &Issuer<'_, &KeyPair>,
    policy: &Policy,
) -> Result<(String, String)> {
    let key = generate_key(policy.algorithm)?;
    let mut params = CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    if let Some(o) = &spec.organization {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    dn.push(DnType::CommonName, spec.common_name.as_str());
    params.distinguished_name = dn;
    params.subject_alt_names = spec
        .sans
        .iter()
        .map(|san| -> Result<SanType> {
            Ok(match san {
                San::Ip(ip) => SanType::IpAddress(*ip),
                San::Dns(name) => SanType::DnsName(
                    name.clone()
                        .try_into()
                        .map_err(|e| anyhow!("SAN {name:?} is not a valid DNS name: {e}"))?,
                ),
            })
        })
        .collect::<Result<_>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    if spec.server {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    if spec.client {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial()?);
    params.not_before = (policy.now - CLOCK_SKEW).max(ca.not_before);
    params.not_after = policy.fresh_leaf_not_after().min(ca.not_after);
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|e| anyhow!("signing failed: {e}"))?;

    // rcgen rebuilds the issuer name from the parsed CA; make sure that gave
    // back the CA's exact bytes, or Go clients would not find the chain.
    let leaf = parse(cert.der())?;
    let ca_x = ca.x509()?;
    if leaf.issuer().as_raw() != ca_x.subject().as_raw() {
        bail!(
            "the CA's subject \"{}\" cannot be reproduced byte for byte in the issuer field\n  help: use a CA whose subject has one attribute per RDN and no repeated attribute types",
            ca_x.subject()
        );
    }
    Ok((cert.pem(), key.serialize_pem()))
}
