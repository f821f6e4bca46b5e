//! Finding one private key in arbitrary bytes, whatever its encoding.
//!
//! A byte search finds a key only as it was written. The same key re-encoded
//! (PKCS#8, PKCS#1 RSA, SEC1 EC; PEM or DER) shares no bytes with it, so
//! [`KeyFinder`] parses every private key it can find instead and compares
//! its public half with the public key of a certificate: any encoding of the
//! certificate's key is found, and any other key is not.
//!
//! Candidates are PEM blocks whose label contains `PRIVATE KEY` (also when
//! the PEM text sits in JSON with `\n` escapes) and DER structures shaped like
//! a private key (a SEQUENCE starting with version 0 or 1) at any offset, so
//! a DER key file is found inside a tar or cpio stream too. Each scan is
//! linear in the input; only candidates are handed to the parser.

use anyhow::Result;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};

/// The largest DER private key considered (an RSA-8192 key is ~4.7 KiB).
const MAX_DER: usize = 16 << 10;
/// The smallest (an Ed25519 PKCS#8 key is 48 bytes).
const MIN_DER: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rsa,
    Ec,
    Ed25519,
    Other,
}

/// Finds the private key that belongs to one certificate's public key, or
/// to any of several certificates' ([`KeyFinder::for_cert_pems`]): each
/// candidate is parsed once, whatever the number of certificates.
#[derive(Debug, Clone)]
pub struct KeyFinder {
    /// Each certificate's key kind and its SubjectPublicKeyInfo's key
    /// bits: the RSAPublicKey DER for RSA, the uncompressed point for EC,
    /// the raw key for Ed25519.
    keys: Vec<(Kind, Vec<u8>)>,
}

/// Where and how a key was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Byte offset in the scanned data.
    pub offset: usize,
    /// `PEM "EC PRIVATE KEY"`, `DER`, ...
    pub encoding: String,
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "as {} at byte {}", self.encoding, self.offset)
    }
}

/// The key kind and public key bits of the PEM certificate `cert_pem`.
fn public_of(cert_pem: &str) -> Result<(Kind, Vec<u8>)> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("not a PEM certificate: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| anyhow::anyhow!("not an X.509 certificate: {e}"))?;
    let spki = cert.public_key();
    let kind = match spki.algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.1" => Kind::Rsa,
        "1.2.840.10045.2.1" => Kind::Ec,
        "1.3.101.112" => Kind::Ed25519,
        _ => Kind::Other,
    };
    let public = spki.subject_public_key.data.to_vec();
    anyhow::ensure!(
        !public.is_empty(),
        "the certificate has an empty public key"
    );
    Ok((kind, public))
}

impl KeyFinder {
    /// A finder for the key of the PEM certificate `cert_pem`.
    pub fn for_cert_pem(cert_pem: &str) -> Result<KeyFinder> {
        Ok(KeyFinder {
            keys: vec![public_of(cert_pem)?],
        })
    }

    /// A finder for the key of any of the PEM certificates `pems`.
    pub fn for_cert_pems<'a>(pems: impl IntoIterator<Item = &'a str>) -> Result<KeyFinder> {
        let keys = pems.into_iter().map(public_of).collect::<Result<_>>()?;
        Ok(KeyFinder { keys })
    }

    /// The first private key in `data` whose public key is a certificate's.
    pub fn find(&self, data: &[u8]) -> Option<Found> {
        let mut first = None;
        self.visit(data, &mut |_, found| {
            first = Some(found);
            false
        });
        first
    }

    /// For each certificate (by its index in the order given) whose key is
    /// in `data`, where it first is: PEM blocks before DER, as [`find`].
    ///
    /// [`find`]: KeyFinder::find
    pub fn find_each(&self, data: &[u8]) -> Vec<(usize, Found)> {
        let mut out: Vec<(usize, Found)> = Vec::new();
        let all = self.keys.len();
        self.visit(data, &mut |i, found| {
            if !out.iter().any(|(j, _)| *j == i) {
                out.push((i, found));
            }
            out.len() < all
        });
        out
    }

    /// Every key in `data`, PEM blocks first, each given to `each` with the
    /// index of its certificate until `each` says to stop.
    fn visit(&self, data: &[u8], each: &mut dyn FnMut(usize, Found) -> bool) {
        if !self.keys.is_empty() && self.visit_pem(data, each) {
            self.visit_der(data, each);
        }
    }

    fn wants(&self, kind: Kind) -> bool {
        self.keys
            .iter()
            .any(|(k, _)| *k == kind || *k == Kind::Other)
    }

    fn matches(&self, public: &[u8]) -> Option<usize> {
        self.keys.iter().position(|(_, p)| p == public)
    }

    /// The index of the certificate whose private key `der` (PKCS#8,
    /// PKCS#1 or SEC1) is, if any.
    fn key_of(&self, der: &[u8]) -> Option<usize> {
        let rsa = || {
            let k = RsaKeyPair::from_pkcs8(der)
                .or_else(|_| RsaKeyPair::from_der(der))
                .ok()?;
            self.matches(k.public_key().as_ref())
        };
        let ec = || {
            [
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
            ]
            .into_iter()
            .find_map(|alg| {
                let k = EcdsaKeyPair::from_private_key_der(alg, der).ok()?;
                self.matches(k.public_key().as_ref())
            })
        };
        let ed = || {
            let k = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).ok()?;
            self.matches(k.public_key().as_ref())
        };
        None.or_else(|| self.wants(Kind::Rsa).then(rsa).flatten())
            .or_else(|| self.wants(Kind::Ec).then(ec).flatten())
            .or_else(|| self.wants(Kind::Ed25519).then(ed).flatten())
    }

    /// PEM blocks labelled `... PRIVATE KEY`. A block ends at its END line
    /// or at the next BEGIN, whichever comes first, so a decoy BEGIN cannot
    /// swallow the real block after it. False once `each` said to stop.
    fn visit_pem(&self, data: &[u8], each: &mut dyn FnMut(usize, Found) -> bool) -> bool {
        const BEGIN: &[u8] = b"-----BEGIN ";
        const END: &[u8] = b"-----END";
        let begins: Vec<usize> = memchr::memmem::find_iter(data, BEGIN).collect();
        let mut ends = memchr::memmem::find_iter(data, END).peekable();
        for (i, &at) in begins.iter().enumerate() {
            let label_start = at + BEGIN.len();
            let rest = &data[label_start..data.len().min(label_start + 64)];
            let Some(label_len) = memchr::memmem::find(rest, b"-----") else {
                continue;
            };
            let label = &rest[..label_len];
            if memchr::memmem::find(label, b"PRIVATE KEY").is_none() {
                continue;
            }
            let body_start = label_start + label_len + 5;
            while ends.next_if(|&e| e < body_start).is_some() {}
            let end = ends.peek().copied().unwrap_or(data.len());
            let next = begins.get(i + 1).copied().unwrap_or(data.len());
            let body = &data[body_start..end.min(next)];
            if let Some(der) = decode_base64(body)
                && let Some(i) = self.key_of(&der)
            {
                let found = Found {
                    offset: at,
                    encoding: format!("PEM \"{}\"", String::from_utf8_lossy(label)),
                };
                if !each(i, found) {
                    return false;
                }
            }
        }
        true
    }

    /// DER private keys anywhere: a SEQUENCE whose first element is the
    /// INTEGER 0 (PKCS#8, PKCS#1) or 1 (SEC1) and whose length fits.
    fn visit_der(&self, data: &[u8], each: &mut dyn FnMut(usize, Found) -> bool) {
        for at in memchr::memchr_iter(0x30, data) {
            let Some((header, len)) = der_length(&data[at + 1..]) else {
                continue;
            };
            let total = 1 + header + len;
            if !(MIN_DER..=MAX_DER).contains(&total) || at + total > data.len() {
                continue;
            }
            let inner = &data[at + 1 + header..];
            if !(inner.starts_with(&[0x02, 0x01, 0x00]) || inner.starts_with(&[0x02, 0x01, 0x01])) {
                continue;
            }
            if let Some(i) = self.key_of(&data[at..at + total]) {
                let found = Found {
                    offset: at,
                    encoding: "DER".to_owned(),
                };
                if !each(i, found) {
                    return;
                }
            }
        }
    }
}

/// The length octets of a DER element after its tag: (their count, the length).
fn der_length(bytes: &[u8]) -> Option<(usize, usize)> {
    match *bytes.first()? {
        n @ 0..=0x7f => Some((1, n as usize)),
        0x81 => Some((2, *bytes.get(1)? as usize)),
        0x82 => Some((3, (*bytes.get(1)? as usize) << 8 | *bytes.get(2)? as usize)),
        _ => None,
    }
}

/// The bytes of a PEM body: base64 with any whitespace and the escapes JSON
/// or a shell put into a PEM text (`\n`, `\r`, `\t`, `\/`). None if anything
/// else is in it (such as the headers of an encrypted key).
fn decode_base64(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut i = 0;
    let mut padded = false;
    while i < body.len() {
        let b = body[i];
        i += 1;
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padded = true;
                continue;
            }
            b'\\' => match body.get(i) {
                Some(b'n' | b'r' | b't') => {
                    i += 1;
                    continue;
                }
                Some(b'/') => {
                    i += 1;
                    63
                }
                _ => return None,
            },
            b if b.is_ascii_whitespace() => continue,
            _ => return None,
        };
        if padded {
            return None;
        }
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair as RcKeyPair, PKCS_ECDSA_P256_SHA256};

    fn ca() -> (String, RcKeyPair) {
        let key = RcKeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = CertificateParams::new(vec!["ca".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key)
    }

    #[test]
    fn base64_ignores_wrapping_and_json_escapes() {
        assert_eq!(decode_base64(b"aGVs\nbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64(b"aGVs\\nbG8=\\n").unwrap(), b"hello");
        assert_eq!(decode_base64(b"Proc-Type: 4,ENCRYPTED"), None);
        assert_eq!(decode_base64(b"  "), None);
    }

    #[test]
    fn finds_the_key_as_pem_der_and_in_json_but_not_another_key() {
        let (cert, key) = ca();
        let finder = KeyFinder::for_cert_pem(&cert).unwrap();
        let pem = key.serialize_pem();
        let der = key.serialize_der();

        let mut stream = vec![0x30u8; 1000];
        stream.extend_from_slice(pem.as_bytes());
        let found = finder.find(&stream).unwrap();
        assert_eq!(found.offset, 1000);
        assert_eq!(found.encoding, "PEM \"PRIVATE KEY\"");

        let mut stream = b"\x30\x05\x02\x01\x00 junk".repeat(100);
        stream.extend_from_slice(&der);
        stream.extend_from_slice(b"trailing");
        assert_eq!(finder.find(&stream).unwrap().encoding, "DER");

        let json = serde_json::to_string(&serde_json::json!({ "k": pem })).unwrap();
        assert!(finder.find(json.as_bytes()).is_some(), "{json}");

        // A decoy BEGIN before the real block does not hide it.
        let decoy = format!("-----BEGIN PRIVATE KEY-----\n{pem}");
        assert!(finder.find(decoy.as_bytes()).is_some());

        let other = RcKeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let both = format!("{}{}", other.serialize_pem(), "x");
        assert_eq!(finder.find(both.as_bytes()), None);
        assert_eq!(finder.find(&other.serialize_der()), None);
        assert_eq!(finder.find(b""), None);
    }
}
