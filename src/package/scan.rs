//! Proving that packages hold no private key, without inflating the same
//! bytes twice.
//!
//! Every byte a package carries is looked at: its uncompressed parts as they
//! are (an .rpm's lead and headers, a .deb's `debian-binary`), its gzip
//! streams decompressed (a .deb's members, an .rpm's payload). Each
//! decompressed stream goes through [`KeyFinder`] in windows that overlap
//! by [`OVERLAP`] bytes, so a key is found wherever it starts.
//!
//! **The same member is inflated once.** A gzip stream is a series of
//! members, and the members holding the binaries are the same bytes in
//! every package of a run (see `archive.rs`). A large member, once inflated
//! and scanned, is remembered by its compressed bytes together with the
//! first and last [`OVERLAP`] bytes of what it inflates to. Met again, at a
//! member boundary, it is recognised by comparing the bytes there with
//! it (far cheaper than inflating them), and only its first and last
//! bytes join the scanned stream: a key that lies wholly inside was found
//! the first time, and one that crosses its start or end lies within the
//! bytes kept. The compressed bytes decide what the member inflates to, so
//! nothing is taken on trust: every byte of every package is either scanned
//! or compared with bytes that were scanned.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};

use crate::model::Format;
use crate::pki::KeyFinder;

/// The most bytes a private key takes in any encoding etcdpack finds
/// (an RSA-16384 key in PEM is under 13 KiB).
pub const OVERLAP: usize = 64 << 10;
/// Members that inflate to at least this many bytes are remembered.
const REMEMBER: usize = 1 << 20;
/// Bytes of a member that key the table of those remembered.
const PREFIX: usize = 64;
/// Scanned at once, with the overlap before it.
const WINDOW: usize = 4 << 20;

/// A member inflated and scanned before.
#[derive(Debug)]
struct Known {
    len: usize,
    /// The member's compressed bytes.
    bytes: Vec<u8>,
    /// What it inflates to, in bytes.
    out_len: u64,
    head: Vec<u8>,
    tail: Vec<u8>,
}

/// Finds private keys in packages; one per run of checks, shared by every
/// thread, so that a member common to many packages is inflated once.
#[derive(Debug)]
pub struct KeyScan<'f> {
    finder: &'f KeyFinder,
    known: Mutex<HashMap<Vec<u8>, Vec<Arc<Known>>>>,
}

impl<'f> KeyScan<'f> {
    pub fn new(finder: &'f KeyFinder) -> Self {
        KeyScan {
            finder,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Where a key of the finder's certificates is in `bytes`, a package of
    /// `format`, if it is anywhere. A part that cannot be read is an error:
    /// what cannot be read cannot be shown to hold no key.
    pub fn find(&self, format: Format, bytes: &[u8]) -> Result<Option<String>> {
        match format {
            Format::Deb => {
                for (name, data) in super::deb::ar_members(bytes)? {
                    let found = if name.ends_with(".gz") {
                        self.in_gzip(data)
                            .with_context(|| format!("the member {name}"))?
                    } else if name == "debian-binary" || name.ends_with(".tar") {
                        self.finder.find(data).map(|f| f.to_string())
                    } else {
                        bail!(
                            "the .deb member {name} is in a compression this check does not read"
                        );
                    };
                    if let Some(f) = found {
                        return Ok(Some(format!("{f} of the member {name}")));
                    }
                }
                Ok(None)
            }
            Format::Rpm => {
                let m =
                    rpm::PackageMetadata::parse(&mut &bytes[..]).context("not an RPM package")?;
                let start = usize::try_from(m.get_package_segment_offsets().payload)
                    .context("a huge .rpm")?;
                if let Some(f) = self.finder.find(&bytes[..start.min(bytes.len())]) {
                    return Ok(Some(format!("{f} in the headers")));
                }
                let payload = &bytes[start.min(bytes.len())..];
                let found = if payload.starts_with(&[0x1f, 0x8b]) {
                    self.in_gzip(payload)?
                } else {
                    // Another compression (not etcdpack's): inflated whole.
                    super::read_streams(format, bytes)?
                        .iter()
                        .find_map(|s| self.finder.find(s).map(|f| f.to_string()))
                };
                Ok(found.map(|f| format!("{f} of the payload")))
            }
            Format::Tar => {
                let found = self.in_gzip(bytes)?;
                Ok(found.map(|f| format!("{f} of the bundle")))
            }
        }
    }

    /// Scan the gzip stream `data`, member by member.
    fn in_gzip(&self, data: &[u8]) -> Result<Option<String>> {
        let mut w = Window::new(self.finder);
        let mut at = 0;
        while at < data.len() {
            if let Some(k) = self.recall(&data[at..]) {
                w.skip(&k);
                at += k.len;
                continue;
            }
            let mut rest = &data[at..];
            let before = rest.len();
            let mut dec = flate2::bufread::GzDecoder::new(&mut rest);
            let mut chunk = vec![0; 1 << 20];
            let mut head = Vec::new();
            let mut total = 0;
            loop {
                let n = dec
                    .read(&mut chunk)
                    .with_context(|| format!("not gzip at byte {at}"))?;
                if n == 0 {
                    break;
                }
                if head.len() < OVERLAP {
                    let take = n.min(OVERLAP - head.len());
                    head.extend_from_slice(&chunk[..take]);
                }
                total += n;
                w.push(&chunk[..n]);
            }
            drop(dec);
            let used = before - rest.len();
            if used == 0 {
                bail!("not gzip at byte {at}");
            }
            if total >= REMEMBER && w.found.is_none() {
                self.remember(&data[at..at + used], total as u64, head, w.tail());
            }
            at += used;
        }
        Ok(w.finish())
    }

    fn recall(&self, rest: &[u8]) -> Option<Arc<Known>> {
        let key = &rest[..PREFIX.min(rest.len())];
        let candidates = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()?;
        candidates
            .into_iter()
            .find(|k| k.len <= rest.len() && rest[..k.len] == k.bytes[..])
    }

    fn remember(&self, member: &[u8], out_len: u64, head: Vec<u8>, tail: Vec<u8>) {
        let known = Arc::new(Known {
            len: member.len(),
            out_len,
            bytes: member.to_vec(),
            head,
            tail,
        });
        let key = member[..PREFIX.min(member.len())].to_vec();
        let mut table = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let list = table.entry(key).or_default();
        if !list.iter().any(|k| k.bytes == known.bytes) {
            list.push(known);
        }
    }
}

/// A decompressed stream, scanned in overlapping windows.
struct Window<'f> {
    finder: &'f KeyFinder,
    buf: Vec<u8>,
    /// Offset in the stream of `buf[0]`.
    base: u64,
    found: Option<String>,
}

impl<'f> Window<'f> {
    fn new(finder: &'f KeyFinder) -> Self {
        Window {
            finder,
            buf: Vec::new(),
            base: 0,
            found: None,
        }
    }

    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= WINDOW + OVERLAP {
            self.scan();
            let drop = self.buf.len() - OVERLAP;
            self.buf.drain(..drop);
            self.base += drop as u64;
        }
    }

    fn scan(&mut self) {
        if self.found.is_none()
            && let Some(f) = self.finder.find(&self.buf)
        {
            self.found = Some(format!(
                "as {} at byte {} of the decompressed stream",
                f.encoding,
                self.base + f.offset as u64
            ));
        }
    }

    /// The last [`OVERLAP`] bytes pushed.
    fn tail(&self) -> Vec<u8> {
        self.buf[self.buf.len().saturating_sub(OVERLAP)..].to_vec()
    }

    /// A member scanned before: its first bytes end the window, its last
    /// bytes start the next.
    fn skip(&mut self, k: &Known) {
        let start = self.base + self.buf.len() as u64;
        self.buf.extend_from_slice(&k.head);
        self.scan();
        self.buf.clear();
        self.buf.extend_from_slice(&k.tail);
        self.base = start + k.out_len - k.tail.len() as u64;
    }

    fn finish(mut self) -> Option<String> {
        self.scan();
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn finder_and_key() -> (KeyFinder, String) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (
            KeyFinder::for_cert_pem(&cert.pem()).unwrap(),
            key.serialize_pem(),
        )
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        g.write_all(data).unwrap();
        g.finish().unwrap()
    }

    /// Pseudo-random bytes that compress poorly.
    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn a_member_met_again_is_not_inflated_and_keys_at_its_edges_are_still_found() {
        let (finder, key) = finder_and_key();
        let scan = KeyScan::new(&finder);
        let big = gz(&noise(3 << 20, 7));
        // First sight: inflated and remembered.
        let clean = [gz(b"head"), big.clone(), gz(b"tail")].concat();
        assert_eq!(scan.in_gzip(&clean).unwrap(), None);
        assert_eq!(scan.known.lock().unwrap().len(), 1);
        // A key just before the known member and one just after it are
        // found, at their offsets in the decompressed stream.
        let before = [gz(key.as_bytes()), big.clone()].concat();
        assert!(scan.in_gzip(&before).unwrap().is_some());
        let after = [big.clone(), gz(key.as_bytes())].concat();
        let found = scan.in_gzip(&after).unwrap().unwrap();
        assert!(found.contains(&format!("at byte {}", 3 << 20)), "{found}");
        // The member really is skipped: a copy whose bytes differ is
        // inflated (and a bad one is an error, never taken as known).
        let mut broken = big.clone();
        let mid = broken.len() / 2;
        broken[mid] ^= 0xff;
        assert!(scan.in_gzip(&broken).is_err());
        assert!(scan.in_gzip(b"not gzip").is_err());
    }

    #[test]
    fn a_key_across_a_window_boundary_is_found() {
        let (finder, key) = finder_and_key();
        let scan = KeyScan::new(&finder);
        let mut data = noise(WINDOW + OVERLAP - 100, 3);
        data.extend_from_slice(key.as_bytes());
        data.extend_from_slice(&noise(1000, 5));
        let found = scan.in_gzip(&gz(&data)).unwrap().unwrap();
        assert!(
            found.contains(&format!("at byte {}", WINDOW + OVERLAP - 100)),
            "{found}"
        );
    }
}
