//! X.509 and key primitives that the CA and the leaves share: PEM in and
//! out, key generation, serials, the reuse policy's clock.

use std::path::Path;

use anyhow::{Result, anyhow, bail};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256, RsaKeySize, SerialNumber};
use time::OffsetDateTime;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION};
use x509_parser::pem::Pem;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, SubjectPublicKeyInfo};

use crate::config::{self, Algorithm};

/// Certificates start this far in the past, so that a node whose clock runs
/// a little behind accepts them straight away.
pub(super) const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);
/// A leaf this close to expiry is re-issued (or a tenth of the validity, if shorter).
pub(super) const RENEW_BEFORE: time::Duration = time::Duration::days(30);

/// What "a good leaf" means on this run.
pub(super) struct Policy {
    pub now: OffsetDateTime,
    pub validity: time::Duration,
    pub leaf_validity: time::Duration,
    pub renew_before: time::Duration,
    pub algorithm: Algorithm,
}

impl Policy {
    pub fn new(pki: &config::Pki, now: OffsetDateTime) -> Result<Self> {
        let validity = time::Duration::try_from(pki.validity)
            .ok()
            .filter(|v| now.checked_add(*v).is_some())
            .ok_or_else(|| anyhow!("pki.validity {:?} is out of range", pki.validity))?;
        let leaf_validity = time::Duration::try_from(pki.leaf_validity)
            .ok()
            .filter(|v| *v <= validity)
            .unwrap_or(validity);
        Ok(Policy {
            now,
            validity,
            leaf_validity,
            renew_before: RENEW_BEFORE.min(leaf_validity / 10),
            algorithm: pki.algorithm,
        })
    }

    /// The end of a new CA.
    pub fn fresh_not_after(&self) -> OffsetDateTime {
        self.now + self.validity
    }

    /// The end of a new leaf (before the CA's own end caps it).
    pub fn fresh_leaf_not_after(&self) -> OffsetDateTime {
        self.now + self.leaf_validity
    }
}

pub(super) fn generate_key(algorithm: Algorithm) -> Result<KeyPair> {
    let key = match algorithm {
        Algorithm::Rsa2048 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048),
        Algorithm::EcdsaP256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256),
    };
    key.map_err(|e| anyhow!("cannot generate a {} key: {e}", algorithm.as_str()))
}

/// 16 random bytes, positive and without a leading zero byte, so every
/// serial has the same DER length and re-issuing never repeats one.
pub(super) fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow!("the system random generator failed"))?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// The DER contents of the first PEM block in `bytes`.
pub(super) fn pem_contents(bytes: &[u8]) -> Result<Vec<u8>> {
    let pem = Pem::iter_from_buffer(bytes)
        .next()
        .ok_or_else(|| anyhow!("no PEM block found"))?
        .map_err(|e| anyhow!("malformed PEM: {e}"))?;
    Ok(pem.contents)
}

/// The DER of the CA certificate in the file `path` holds (`bytes`), refusing
/// a file that also holds a private key: such a file is a bundle of
/// certificate and key (`cat ca.pem ca-key.pem`), and its text must never be
/// what nodes receive. Every block is looked at, whatever its order.
pub(super) fn ca_cert_der(bytes: &[u8], path: &Path) -> Result<Vec<u8>> {
    let mut cert = None;
    for pem in Pem::iter_from_buffer(bytes) {
        let pem = pem.map_err(|e| anyhow!("{} holds malformed PEM: {e}", path.display()))?;
        if pem.label.contains("PRIVATE KEY") {
            bail!(
                "{} holds a private key (a `-----BEGIN {}-----` block) besides the certificate: it would be copied to every node\n  help: give only the CA certificate in pki.ca_cert and its key in pki.ca_key; split the bundle with `openssl x509 -in {} -out ca.pem` and `openssl pkey -in {} -out ca-key.pem`",
                path.display(),
                pem.label,
                path.display(),
                path.display()
            );
        }
        if pem.label == "CERTIFICATE" && cert.is_none() {
            cert = Some(pem.contents);
        }
    }
    cert.ok_or_else(|| {
        anyhow!(
            "{} holds no PEM certificate\n  help: give the CA certificate in PEM form (`-----BEGIN CERTIFICATE-----`), such as cfssl's ca.pem",
            path.display()
        )
    })
}

/// PEM text of one DER block, 64-column base64 and `\n` line ends, exactly as
/// rcgen writes the certificates it issues.
pub(super) fn encode_pem(label: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(label, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// The DER of the first `CERTIFICATE` block.
pub(super) fn cert_der(bytes: &[u8]) -> Result<Vec<u8>> {
    for pem in Pem::iter_from_buffer(bytes) {
        let pem = pem.map_err(|e| anyhow!("malformed PEM: {e}"))?;
        if pem.label == "CERTIFICATE" {
            return Ok(pem.contents);
        }
    }
    bail!("no `-----BEGIN CERTIFICATE-----` block found")
}

pub(super) fn parse(der: &[u8]) -> Result<X509Certificate<'_>> {
    let (_, x) = X509Certificate::from_der(der).map_err(|e| anyhow!("not a certificate: {e}"))?;
    Ok(x)
}

pub(super) fn show_time(t: OffsetDateTime) -> String {
    crate::model::rfc3339(t)
}

/// The configured algorithm a public key corresponds to, if any.
pub(super) fn algorithm_of_spki(spki: &SubjectPublicKeyInfo<'_>) -> Option<Algorithm> {
    let oid = &spki.algorithm.algorithm;
    if *oid == OID_PKCS1_RSAENCRYPTION {
        (spki.parsed().ok()?.key_size() == 2048).then_some(Algorithm::Rsa2048)
    } else if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki.algorithm.parameters.as_ref()?.as_oid().ok()?;
        (curve == OID_EC_P256).then_some(Algorithm::EcdsaP256)
    } else {
        None
    }
}

/// The leaf was issued by `ca`: issuer bytes equal the CA's subject bytes
/// (what Go compares) and the signature verifies with the CA's key.
pub(super) fn verify_chain(
    leaf: &X509Certificate<'_>,
    ca: &X509Certificate<'_>,
) -> Result<(), String> {
    if leaf.issuer().as_raw() != ca.subject().as_raw() {
        return Err(format!(
            "issued by \"{}\", not by the CA \"{}\"",
            leaf.issuer(),
            ca.subject()
        ));
    }
    leaf.verify_signature(Some(ca.public_key()))
        .map_err(|e| format!("its signature does not verify with the CA's key ({e})"))
}

/// The first value of a name attribute, if it is a string.
pub(super) fn first_text<'a>(
    mut values: impl Iterator<Item = &'a AttributeTypeAndValue<'a>>,
) -> Option<String> {
    values
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_owned)
}
