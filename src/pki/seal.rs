//! **Sealed keys** (`packages.keys: sealed`): each member's private key,
//! encrypted with age to its machine's SSH host key, as agenix and sops do.
//! Only that machine, which holds the host key's private half, can read it;
//! the package that carries it is safe to publish.
//!
//! age encryption is randomised, so a sealed key is kept in
//! `OUT/pki/nodes/<node>-key.sealed` and reused while both the key and the
//! host key stay the same: a rerun then rebuilds nothing, and `plan` knows
//! the bytes it will ship. The file starts with a small header naming both
//! (the host key, and the SHA-256 of the key it seals); what ships is the
//! armored age file after it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use sha2::{Digest, Sha256};

use super::{CERT_MODE, Issued, LeafStep};
use crate::config::HostKey;
use crate::fsutil;

const RECIPIENT: &str = "# sealed to: ";
const SEALS: &str = "# key sha256: ";
const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";

/// What a run does with a node's sealed key.
#[derive(Debug, Clone)]
pub enum SealStep {
    /// The sealed key on disk is for the same key and host key.
    Reuse(String),
    /// Seal (again), and why (shown to the user).
    Seal { reason: String },
}

/// `pki_dir/<id>-key.sealed`
pub fn sealed_path(pki_dir: &Path, id: &str) -> PathBuf {
    pki_dir.join(format!("{id}-key.sealed"))
}

/// Decide whether the sealed key of leaf `id` may stay.
pub(super) fn decide(pki_dir: &Path, id: &str, host: &HostKey, leaf: &LeafStep) -> SealStep {
    let issued = match leaf {
        LeafStep::Reuse(issued) => issued,
        LeafStep::Issue { .. } => {
            return SealStep::Seal {
                reason: "new key".into(),
            };
        }
    };
    let text = match std::fs::read_to_string(sealed_path(pki_dir, id)) {
        Ok(t) => t,
        Err(_) => {
            return SealStep::Seal {
                reason: "not sealed yet".into(),
            };
        }
    };
    match parse(&text) {
        Some((recipient, seals, armor)) => {
            if recipient != host.public() {
                SealStep::Seal {
                    reason: "ssh_host_key changed".into(),
                }
            } else if seals != key_digest(&issued.key_pem) {
                SealStep::Seal {
                    reason: "sealed another key".into(),
                }
            } else {
                SealStep::Reuse(armor.to_owned())
            }
        }
        None => SealStep::Seal {
            reason: "sealed file unreadable".into(),
        },
    }
}

/// Carry out `step`: the sealed key (armored age) of `issued`.
pub(super) fn apply(
    step: SealStep,
    pki_dir: &Path,
    issued: &Issued,
    host: &HostKey,
) -> Result<String> {
    if let SealStep::Reuse(armor) = step {
        return Ok(armor);
    }
    let armor = seal(issued.key_pem.as_bytes(), host)
        .with_context(|| format!("cannot seal the key of {}", issued.id))?;
    let text = format!(
        "{RECIPIENT}{}\n{SEALS}{}\n{armor}",
        host.public(),
        key_digest(&issued.key_pem)
    );
    fsutil::write_atomic(
        &sealed_path(pki_dir, &issued.id),
        text.as_bytes(),
        CERT_MODE,
    )?;
    Ok(armor)
}

/// `data` encrypted with age to `host`, ASCII-armored.
pub fn seal(data: &[u8], host: &HostKey) -> Result<String> {
    let recipient: age::ssh::Recipient = host
        .public()
        .parse()
        .map_err(|e| anyhow!("{} is not a key age can seal to: {e:?}", host.public()))?;
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .map_err(|e| anyhow!("{e}"))?;
    let mut out = Vec::new();
    let armored = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)?;
    let mut w = encryptor.wrap_output(armored)?;
    w.write_all(data)?;
    w.finish()?.finish()?;
    String::from_utf8(out).context("age's armor is not text")
}

/// The sealed file's recipient, the digest of the key it seals, and the
/// armored age file.
fn parse(text: &str) -> Option<(&str, &str, &str)> {
    let (first, rest) = text.split_once('\n')?;
    let (second, armor) = rest.split_once('\n')?;
    let recipient = first.strip_prefix(RECIPIENT)?;
    let seals = second.strip_prefix(SEALS)?;
    armor
        .starts_with(ARMOR_BEGIN)
        .then_some((recipient, seals, armor))
}

fn key_digest(key_pem: &str) -> String {
    hex::encode(Sha256::digest(key_pem.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// An ed25519 host key pair in OpenSSH's formats (made with
    /// `ssh-keygen -t ed25519 -N ''`; a test key of nothing).
    const HOST_PUB: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINs8qipbFuh0bFcUDOmVyv7rN9t23ATzSC+ib3Y25/6z test";
    const HOST_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDbPKoqWxbodGxXFAzplcr+6zfbdtwE80gvom92Nuf+swAAAIhJ2vDvSdrw
7wAAAAtzc2gtZWQyNTUxOQAAACDbPKoqWxbodGxXFAzplcr+6zfbdtwE80gvom92Nuf+sw
AAAEB7MQ2pvpuX9tU2Y02MXk0tiE8gCXrrzYmK0phK+R5mpds8qipbFuh0bFcUDOmVyv7r
N9t23ATzSC+ib3Y25/6zAAAABHRlc3QB
-----END OPENSSH PRIVATE KEY-----
";

    fn unseal(armor: &str, identity: &str) -> Result<Vec<u8>, age::DecryptError> {
        let id = age::ssh::Identity::from_buffer(identity.as_bytes(), None).unwrap();
        let reader = age::armor::ArmoredReader::new(armor.as_bytes());
        let d = age::Decryptor::new(reader)?;
        let mut r = d.decrypt(std::iter::once(&id as &dyn age::Identity))?;
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        Ok(out)
    }

    #[test]
    fn the_host_key_unseals_what_is_sealed_to_it_and_the_text_is_not_in_the_file() {
        let host = HostKey::new(HOST_PUB);
        let secret = b"-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n";
        let armor = seal(secret, &host).unwrap();
        assert!(armor.starts_with(ARMOR_BEGIN), "{armor}");
        assert!(!armor.contains("secret") && !armor.contains("PRIVATE KEY"));
        assert_eq!(unseal(&armor, HOST_KEY).unwrap(), secret);
        // Randomised: the same key sealed twice differs, which is why a
        // sealed key is kept and reused.
        assert_ne!(seal(secret, &host).unwrap(), armor);
    }

    #[test]
    fn a_sealed_file_is_reused_only_for_the_same_key_and_host_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("nodes")).unwrap();
        let host = HostKey::new(HOST_PUB);
        let issued = |key: &str| Issued {
            id: "nodes/etcd-1".into(),
            cert_pem: String::new(),
            key_pem: key.into(),
            not_after: time::OffsetDateTime::UNIX_EPOCH,
            reused: true,
            sealed_key: None,
        };
        let reuse = |i: &Issued| LeafStep::Reuse(i.clone());
        let a = issued("key a");
        let first = decide(dir.path(), &a.id, &host, &reuse(&a));
        assert!(matches!(&first, SealStep::Seal { reason } if reason == "not sealed yet"));
        let armor = apply(first, dir.path(), &a, &host).unwrap();
        match decide(dir.path(), &a.id, &host, &reuse(&a)) {
            SealStep::Reuse(again) => assert_eq!(again, armor),
            other => panic!("not reused: {other:?}"),
        }
        let b = issued("key b");
        assert!(matches!(
            decide(dir.path(), &b.id, &host, &reuse(&b)),
            SealStep::Seal { reason } if reason == "sealed another key"
        ));
        let other = HostKey::new(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAGH0rNxHGN9Yzti/gQdAO40G47Ba5Ms+hEt1dtYOS/o",
        );
        assert!(matches!(
            decide(dir.path(), &a.id, &other, &reuse(&a)),
            SealStep::Seal { reason } if reason == "ssh_host_key changed"
        ));
        assert!(matches!(
            decide(dir.path(), &a.id, &host, &LeafStep::Issue { reason: "new".into() }),
            SealStep::Seal { reason } if reason == "new key"
        ));
    }

    #[test]
    fn fingerprints_are_as_ssh_keygen_prints_them() {
        // ssh-keygen -lf of HOST_PUB.
        assert_eq!(
            HostKey::new(HOST_PUB).fingerprint(),
            "SHA256:mZwLB6IWcycqm7opTp8iORU/sl9SVuD7aUKTbJjSp5I"
        );
        assert_eq!(
            HostKey::new(HOST_PUB).identity_file(),
            "/etc/ssh/ssh_host_ed25519_key"
        );
    }
}
