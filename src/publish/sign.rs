//! OpenPGP, in process: the repository signing key (created here, or one a
//! team already has), and the signatures apt and dnf verify.
//!
//! Signatures are v4, SHA-256, with their creation time given by the
//! caller: an RSA signature (PKCS#1 v1.5) of the same bytes at the same time
//! is the same bytes, so the same packages and `SOURCE_DATE_EPOCH` give the
//! same signed indexes. SHA-1 is used nowhere.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, KeyType,
    SecretKeyParamsBuilder, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::public_key::PublicKeyAlgorithm;
use pgp::packet::{
    PacketTrait, Signature, SignatureConfig, SignatureType, Subpacket, SubpacketData,
};
use pgp::types::{KeyDetails, KeyVersion, Password, SigningKey, Timestamp};

/// The passphrase of an encrypted signing key, when it has one.
pub const PASSPHRASE_ENV: &str = "ETCDPACK_SIGN_PASSPHRASE";

/// The algorithms `etcdpack signing-key` creates keys for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyAlgorithm {
    /// RSA-4096: verified by every apt, and by rpm on EL7–EL10.
    #[value(name = "rsa-4096")]
    Rsa4096,
    /// Ed25519: fast and small; apt verifies it, but rpm on EL9 does not.
    #[value(name = "ed25519")]
    Ed25519,
}

impl KeyAlgorithm {
    pub fn label(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa4096 => "RSA-4096",
            KeyAlgorithm::Ed25519 => "Ed25519",
        }
    }
}

/// A secret key that signs.
pub struct Signer {
    key: SignedSecretKey,
    /// The secret subkey that signs, or `None` for the primary key.
    subkey: Option<usize>,
    password: Password,
    /// The time of the latest self-signature that binds the signing key:
    /// no signature is dated before it.
    bound_at: u32,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// Create a signing key for `uid` (e.g. `etcdpack repository <ops@example.com>`).
pub fn generate(uid: &str, algorithm: KeyAlgorithm) -> Result<SignedSecretKey> {
    let key_type = match algorithm {
        KeyAlgorithm::Rsa4096 => KeyType::Rsa(4096),
        KeyAlgorithm::Ed25519 => KeyType::Ed25519Legacy,
    };
    generate_as(uid, key_type)
}

/// A key of `key_type` for `uid`. An RSA key is made again until its primes
/// are in the order OpenPGP requires (p < q, RFC 9580 §5.5.5.1): the
/// library that generates it keeps them in the order it found them, and
/// libgcrypt (gpg, rpmsign with gpg) then makes an invalid signature about
/// once in a hundred with such a key.
fn generate_as(uid: &str, key_type: KeyType) -> Result<SignedSecretKey> {
    loop {
        let key = generate_once(uid, key_type.clone())?;
        if rsa_primes_in_order(&key) != Some(false) {
            return Ok(key);
        }
    }
}

/// For an RSA key in clear, whether its primes are in OpenPGP's order.
fn rsa_primes_in_order(key: &SignedSecretKey) -> Option<bool> {
    use pgp::types::{PlainSecretParams, SecretParams};
    let SecretParams::Plain(PlainSecretParams::RSA(secret)) = key.primary_key.secret_params()
    else {
        return None;
    };
    let (_, p, q, _) = secret.to_bytes();
    // Big-endian, without leading zeros: the shorter is the smaller.
    Some((p.len(), &p) < (q.len(), &q))
}

fn generate_once(uid: &str, key_type: KeyType) -> Result<SignedSecretKey> {
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(key_type)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(uid.into())
        .preferred_hash_algorithms(
            [HashAlgorithm::Sha512, HashAlgorithm::Sha256]
                .into_iter()
                .collect(),
        );
    let params = params
        .build()
        .map_err(|e| anyhow!("cannot set up the signing key: {e}"))?;
    params
        .generate(rand::thread_rng())
        .map_err(|e| anyhow!("cannot generate the signing key: {e}"))
}

/// The armored secret key (what `--sign-key` reads).
pub fn armored_secret(key: &SignedSecretKey) -> Result<String> {
    key.to_armored_string(ArmorOptions::default())
        .map_err(|e| anyhow!("cannot armor the signing key: {e}"))
}

impl Signer {
    pub fn new(key: SignedSecretKey) -> Result<Self> {
        let subkey = signing_subkey(&key);
        if subkey.is_none() && !primary_signs(&key) {
            bail!("the key {} has no key that may sign", fingerprint_of(&key));
        }
        let password = std::env::var(PASSPHRASE_ENV)
            .map(Password::from)
            .unwrap_or_else(|_| Password::empty());
        if let Some(weak) = weak_binding(&key) {
            bail!(
                "the key {} is bound to its {weak} with a {} signature, which Debian 13's apt (sqv) and EL9's rpm refuse\n  help: re-certify it with SHA-256 (`gpg --cert-digest-algo SHA256 --quick-set-expire FPR 0`, or any change to its user ID with that option), or create one with `etcdpack signing-key`",
                fingerprint_of(&key),
                "SHA-1"
            );
        }
        let own = key
            .details
            .users
            .iter()
            .flat_map(|u| &u.signatures)
            .chain(&key.details.direct_signatures)
            .chain(
                subkey
                    .iter()
                    .flat_map(|&i| &key.secret_subkeys[i].signatures),
            );
        let bound_at = own
            .filter_map(|s| s.created())
            .map(|t| t.as_secs())
            .max()
            .unwrap_or(0);
        let signer = Signer {
            key,
            subkey,
            password,
            bound_at,
        };
        if signer.signing_key().version() != KeyVersion::V4 {
            bail!(
                "the key {} is an OpenPGP v6 key, which apt's gpgv and EL's rpm do not verify\n  help: use a v4 key (gpg's default), or create one with `etcdpack signing-key`",
                signer.fingerprint()
            );
        }
        // Sign once now, so that a wrong passphrase is an error before
        // anything is written (a key in clear needs none).
        if signer.encrypted() {
            signer.detached(b"", 0).map_err(|e| {
            anyhow!(
                "cannot sign with the key {}: {e}\n  help: if the key is protected by a passphrase, put it in ${PASSPHRASE_ENV}",
                signer.fingerprint()
            )
        })?;
        }
        Ok(signer)
    }

    /// Whether the key that signs is protected by a passphrase.
    fn encrypted(&self) -> bool {
        use pgp::types::SecretParams;
        let params = match self.subkey {
            Some(i) => self.key.secret_subkeys[i].key.secret_params(),
            None => self.key.primary_key.secret_params(),
        };
        !matches!(params, SecretParams::Plain(_))
    }

    /// Read an armored secret key (`gpg --export-secret-keys --armor`).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the signing key {}", path.display()))?;
        let (key, _) = SignedSecretKey::from_string(&text).map_err(|e| {
            anyhow!(
                "{} is not an armored OpenPGP secret key: {e}\n  help: export one with `gpg --export-secret-keys --armor KEYID > FILE`, or create one with `etcdpack signing-key --out FILE`",
                path.display()
            )
        })?;
        Signer::new(key).with_context(|| format!("signing key {}", path.display()))
    }

    /// Upper-case hex fingerprint of the primary key.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.key)
    }

    /// The armored public key (what clients import).
    pub fn public_armored(&self) -> Result<String> {
        self.key
            .to_public_key()
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| anyhow!("cannot armor the public key: {e}"))
    }

    // pgp implements `SigningKey` for `Box<&dyn SigningKey>`, not for `&dyn`.
    #[allow(clippy::redundant_allocation)]
    fn signing_key(&self) -> Box<&dyn SigningKey> {
        match self.subkey {
            Some(i) => Box::new(&self.key.secret_subkeys[i].key as &dyn SigningKey),
            None => Box::new(&self.key.primary_key as &dyn SigningKey),
        }
    }

    fn config(&self, typ: SignatureType, created: u64) -> Result<SignatureConfig> {
        let k = self.signing_key();
        let created = u32::try_from(created)
            .map_err(|_| anyhow!("the signature time {created} is past 2106"))?;
        // Never before the key itself: gpgv, gpgme (dnf) and rpm refuse a
        // signature older than its key as a "time conflict", which a
        // SOURCE_DATE_EPOCH older than the key would otherwise make. Nor
        // before the self-signature that binds it (made a moment after the
        // key, an RSA-4096 key taking seconds to make): Sequoia's sqv,
        // which Debian 13's apt verifies with, finds no binding then.
        let created = created.max(k.created_at().as_secs()).max(self.bound_at);
        let mut c = SignatureConfig::v4(typ, k.algorithm(), HashAlgorithm::Sha256);
        c.hashed_subpackets = vec![
            Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
                created,
            )))?,
            Subpacket::regular(SubpacketData::IssuerFingerprint(k.fingerprint()))?,
        ];
        c.unhashed_subpackets = vec![Subpacket::regular(SubpacketData::IssuerKeyId(
            k.legacy_key_id(),
        ))?];
        Ok(c)
    }

    /// `text` clearsigned (apt's `InRelease`).
    pub fn clearsign(&self, text: &str, created: u64) -> Result<String> {
        let config = self.config(SignatureType::Text, created)?;
        let msg = CleartextSignedMessage::new(text, config, &self.signing_key(), &self.password)
            .map_err(|e| anyhow!("cannot sign: {e}"))?;
        msg.to_armored_string(ArmorOptions::default())
            .map_err(|e| anyhow!("cannot armor a signature: {e}"))
    }

    /// A detached signature of `data`, as an OpenPGP packet.
    pub fn detached(&self, data: &[u8], created: u64) -> Result<Signature> {
        let config = self.config(SignatureType::Binary, created)?;
        config
            .sign(&self.signing_key(), &self.password, data)
            .map_err(|e| anyhow!("cannot sign: {e}"))
    }

    /// A detached signature of `data` as the binary OpenPGP packet, its
    /// packet header included: what an .rpm's signature header holds.
    pub fn detached_packet(&self, data: &[u8], created: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.detached(data, created)?
            .to_writer_with_header(&mut out)
            .map_err(|e| anyhow!("cannot write a signature: {e}"))?;
        Ok(out)
    }

    /// Whether the key that signs is an RSA key (rpm files an RSA header
    /// signature under another tag than a DSA, ECDSA or EdDSA one).
    pub fn signs_with_rsa(&self) -> bool {
        matches!(
            self.signing_key().algorithm(),
            PublicKeyAlgorithm::RSA | PublicKeyAlgorithm::RSASign
        )
    }

    /// Whether `packet`, a binary signature packet, is this key's valid
    /// signature of `data`.
    pub fn verifies(&self, data: &[u8], packet: &[u8]) -> bool {
        DetachedSignature::from_bytes(packet).is_ok_and(|sig| self.made(&sig.signature, data))
    }

    /// Whether `sig` is a valid signature of `data` by the key that signs
    /// (the primary key or the signing subkey).
    fn made(&self, sig: &Signature, data: &[u8]) -> bool {
        let public = self.key.to_public_key();
        let fingerprint = self.signing_key().fingerprint();
        if public.primary_key.fingerprint() == fingerprint {
            return sig.verify(&public.primary_key, data).is_ok();
        }
        public
            .public_subkeys
            .iter()
            .filter(|k| k.key.fingerprint() == fingerprint)
            .any(|k| sig.verify(&k.key, data).is_ok())
    }

    /// The text of `signed`, a clearsigned message (apt's `InRelease`), if
    /// this key signed it; `None` if it is not a clearsigned message or
    /// carries no valid signature of this key.
    pub fn verified_cleartext(&self, signed: &str) -> Option<String> {
        let (msg, _) = CleartextSignedMessage::from_string(signed).ok()?;
        let data = msg.signed_text();
        msg.signatures()
            .iter()
            .any(|s| self.made(s, data.as_bytes()))
            .then(|| msg.text().to_owned())
    }

    /// Whether `armored`, an armored detached signature (dnf's
    /// `repomd.xml.asc`), is this key's valid signature of `data`.
    pub fn verifies_armored(&self, data: &[u8], armored: &str) -> bool {
        DetachedSignature::from_string(armored)
            .is_ok_and(|(sig, _)| self.made(&sig.signature, data))
    }

    /// A detached signature of `data`, armored (apt's `Release.gpg`, dnf's
    /// `repomd.xml.asc`).
    pub fn detached_armored(&self, data: &[u8], created: u64) -> Result<String> {
        DetachedSignature::new(self.detached(data, created)?)
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| anyhow!("cannot armor a signature: {e}"))
    }
}

/// What of `key` its newest self-signature or binding signature certifies
/// with SHA-1 (or weaker), if anything: only SHA-2 is accepted by today's
/// verifiers, which go by the newest one.
fn weak_binding(key: &SignedSecretKey) -> Option<&'static str> {
    let weak = |sigs: &[Signature]| {
        sigs.iter()
            .max_by_key(|s| s.created().map(|t| t.as_secs()))
            .is_some_and(|s| {
                matches!(
                    s.hash_alg(),
                    Some(HashAlgorithm::Sha1 | HashAlgorithm::Md5 | HashAlgorithm::Ripemd160)
                )
            })
    };
    if key.details.users.iter().any(|u| weak(&u.signatures)) {
        return Some("user ID");
    }
    if weak(&key.details.direct_signatures) {
        return Some("primary key");
    }
    key.secret_subkeys
        .iter()
        .any(|k| weak(&k.signatures))
        .then_some("subkey")
}

fn fingerprint_of(key: &SignedSecretKey) -> String {
    hex::encode_upper(key.primary_key.fingerprint().as_bytes())
}

/// Whether the primary key may sign: a self-signature says so, or none
/// says anything of its use (old keys).
fn primary_signs(key: &SignedSecretKey) -> bool {
    let sigs: Vec<&Signature> = key
        .details
        .users
        .iter()
        .flat_map(|u| &u.signatures)
        .chain(&key.details.direct_signatures)
        .collect();
    sigs.is_empty()
        || sigs.iter().any(|s| s.key_flags().sign())
        || sigs.iter().all(|s| s.key_flags() == Default::default())
}

/// The last secret subkey bound as a signing key, which is the one gpg
/// signs with.
fn signing_subkey(key: &SignedSecretKey) -> Option<usize> {
    key.secret_subkeys
        .iter()
        .rposition(|k| k.signatures.iter().any(|s| s.key_flags().sign()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        let key = generate("test <test@example.com>", KeyAlgorithm::Ed25519).unwrap();
        let text = armored_secret(&key).unwrap();
        let (key, _) = SignedSecretKey::from_string(&text).unwrap();
        Signer::new(key).unwrap()
    }

    #[test]
    fn signatures_verify_and_are_the_same_bytes_at_the_same_time() {
        let s = signer();
        let t = u64::from(s.signing_key().created_at().as_secs()) + 1000;
        let text = "Origin: etcdpack\nSuite: stable\n";
        let signed = s.clearsign(text, t).unwrap();
        assert!(signed.starts_with("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n"));
        let (msg, _) = CleartextSignedMessage::from_string(&signed).unwrap();
        let public = s.key.to_public_key();
        msg.verify(&public.primary_key).unwrap();
        assert_eq!(msg.signed_text(), text.replace('\n', "\r\n"));
        assert!(signed.contains(&format!("\n\n{text}")), "{signed}");

        let sig = s.detached(b"data", t).unwrap();
        sig.verify(&public.primary_key, &b"data"[..]).unwrap();
        assert!(sig.verify(&public.primary_key, &b"date"[..]).is_err());
        assert_eq!(sig.created().map(|t| t.as_secs()), Some(t as u32));
        assert_eq!(sig.hash_alg(), Some(HashAlgorithm::Sha256));
        // Ed25519 signatures are deterministic too.
        assert_eq!(signed, s.clearsign(text, t).unwrap());
        // A date before the key is the time it was bound: no client
        // accepts a signature older than its key or its binding.
        let early = s.detached(b"data", 1_000_000_000).unwrap();
        assert_eq!(early.created().map(|t| t.as_secs()), Some(s.bound_at));
        assert!(s.bound_at >= s.signing_key().created_at().as_secs());
    }

    #[test]
    fn rsa_keys_have_their_primes_in_openpgp_order() {
        // Half of all keys come out of the generator the other way round:
        // ten in a row in order cannot be chance.
        for _ in 0..10 {
            let key = generate_as("t <t@example.com>", KeyType::Rsa(2048)).unwrap();
            assert_eq!(rsa_primes_in_order(&key), Some(true));
        }
        let ed = generate("t <t@example.com>", KeyAlgorithm::Ed25519).unwrap();
        assert_eq!(rsa_primes_in_order(&ed), None);
    }

    #[test]
    fn a_file_that_is_no_secret_key_is_an_error_with_help() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.asc");
        std::fs::write(&path, "-----BEGIN PGP PUBLIC KEY BLOCK-----\n").unwrap();
        let err = format!("{:#}", Signer::load(&path).unwrap_err());
        assert!(
            err.contains("is not an armored OpenPGP secret key"),
            "{err}"
        );
        assert!(err.contains("gpg --export-secret-keys --armor"), "{err}");
    }
}
