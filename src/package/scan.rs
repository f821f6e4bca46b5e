//! Proving that packages hold no private key, without inflating the same
//! bytes twice, and reading their entries in the same pass.
//!
//! Every byte a package carries is looked at: its uncompressed parts as they
//! are (an .rpm's lead and headers, a .deb's `debian-binary`), its gzip
//! streams decompressed (a .deb's members, an .rpm's payload). Each
//! decompressed stream goes through the [`Needles`] in windows that overlap
//! by [`OVERLAP`] bytes, so a key is found wherever it starts, and through a
//! walker of its archive (`walk.rs`), which lists every entry's path and
//! mode and keeps the small files' text.
//!
//! **The same member is inflated once.** A gzip stream is a series of
//! members, and the members holding the binaries are the same bytes in
//! every package of a run (see `archive.rs`). A large member, once inflated
//! and scanned with nothing found, is remembered by its compressed bytes
//! together with the first and last [`OVERLAP`] bytes of what it inflates
//! to. Met again, at a member boundary, it is recognised by comparing the
//! bytes there with it (far cheaper than inflating them), and only its
//! first and last bytes join the scanned stream: a key that lies wholly
//! inside was looked for the first time, and one that crosses its start or
//! end lies within the bytes kept. The walker lets it pass only where it
//! is inside one large file's data, which it does not keep; anywhere else
//! the member is inflated. The compressed bytes decide what the member
//! inflates to, so nothing is taken on trust: every byte of every package
//! is either scanned or compared with bytes that were scanned.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};

use super::walk::{CpioWalk, Listed, Plain, Tap, TarWalk};
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

/// What a scan looks for, each under a label of the caller's: the private
/// keys of certificates, in any encoding, and key files' own text.
#[derive(Debug)]
pub struct Needles {
    finder: KeyFinder,
    /// The label of each certificate of the finder, in order; 0 for all
    /// when empty.
    labels: Vec<usize>,
    /// A key file's PEM text, found byte for byte ([`crate::pki::contains_key`]),
    /// with how it is named when found.
    texts: Vec<(usize, String, String)>,
}

impl Needles {
    /// The keys of `certs` (label, PEM certificate), and the key files
    /// `texts` (label, PEM key, what it is).
    pub fn new(certs: &[(usize, &str)], texts: Vec<(usize, String, String)>) -> Result<Self> {
        Ok(Needles {
            finder: KeyFinder::for_cert_pems(certs.iter().map(|(_, pem)| *pem))?,
            labels: certs.iter().map(|(label, _)| *label).collect(),
            texts,
        })
    }

    /// The keys `finder` finds, all under label 0.
    pub fn of(finder: KeyFinder) -> Self {
        Needles {
            finder,
            labels: Vec::new(),
            texts: Vec::new(),
        }
    }

    /// Each label found in `data`, once, with where (offsets from `base`).
    fn find(&self, data: &[u8], base: u64, found: &mut Vec<(usize, String)>) {
        for (label, pem, how) in &self.texts {
            if !found.iter().any(|(l, _)| l == label) && crate::pki::contains_key(data, pem) {
                found.push((*label, how.clone()));
            }
        }
        for (i, f) in self.finder.find_each(data) {
            let label = self.labels.get(i).copied().unwrap_or(0);
            if !found.iter().any(|(l, _)| *l == label) {
                let at = base + f.offset as u64;
                found.push((label, format!("as {} at byte {at}", f.encoding)));
            }
        }
    }
}

/// What one pass over a package found.
#[derive(Debug, Default)]
pub struct Inspection {
    /// Each label of the [`Needles`] found, with where it first was.
    pub found: Vec<(usize, String)>,
    /// Every entry of every archive in it: a bundle's tar, a .deb's control
    /// and data members, an .rpm's payload.
    pub entries: Vec<Listed>,
    /// An .rpm's scriptlets (they are in its header, not in an archive).
    pub scripts: Vec<String>,
}

impl Inspection {
    fn add(&mut self, found: Vec<(usize, String)>, place: &str) {
        for (label, how) in found {
            if !self.found.iter().any(|(l, _)| *l == label) {
                self.found.push((label, format!("{how} {place}")));
            }
        }
    }
}

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
pub struct KeyScan<'n> {
    needles: &'n Needles,
    known: Mutex<HashMap<Vec<u8>, Vec<Arc<Known>>>>,
    /// Pairs of known members met one right after the other, whose
    /// junction (the first one's tail, the second one's head) was scanned
    /// and held nothing: every package has the binaries' members in the
    /// same order, so their junctions need scanning once.
    junctions: Mutex<HashSet<(usize, usize)>>,
}

impl<'n> KeyScan<'n> {
    pub fn new(needles: &'n Needles) -> Self {
        KeyScan {
            needles,
            known: Mutex::new(HashMap::new()),
            junctions: Mutex::new(HashSet::new()),
        }
    }

    /// Where a key of the needles is in `bytes`, a package of `format`, if
    /// it is anywhere. A part that cannot be read is an error: what cannot
    /// be read cannot be shown to hold no key.
    pub fn find(&self, format: Format, bytes: &[u8]) -> Result<Option<String>> {
        Ok(self
            .inspect(format, bytes)?
            .found
            .into_iter()
            .next()
            .map(|(_, f)| f))
    }

    /// Every label of the needles found in `bytes`, a package of `format`,
    /// and its entries, in one pass. A part that cannot be read is an error.
    pub fn inspect(&self, format: Format, bytes: &[u8]) -> Result<Inspection> {
        let mut out = Inspection::default();
        match format {
            Format::Deb => {
                for (name, data) in super::deb::ar_members(bytes)? {
                    let place = format!("of the member {name}");
                    let what = || format!("the member {name}");
                    if name.ends_with(".tar.gz") {
                        let mut walk = TarWalk::new();
                        let found = self.in_gzip(data, &mut walk).with_context(what)?;
                        out.add(found, &place);
                        whole(walk.complete(), &name)?;
                        out.entries.extend(walk.entries);
                    } else if name.ends_with(".gz") {
                        out.add(self.in_gzip(data, &mut Plain).with_context(what)?, &place);
                    } else if name == "debian-binary" || name.ends_with(".tar") {
                        out.add(self.in_plain(data), &place);
                        if name.ends_with(".tar") {
                            let mut walk = TarWalk::new();
                            walk.push(data).with_context(what)?;
                            whole(walk.complete(), &name)?;
                            out.entries.extend(walk.entries);
                        }
                    } else {
                        bail!(
                            "the .deb member {name} is in a compression this check does not read"
                        );
                    }
                }
            }
            Format::Rpm => {
                let m =
                    rpm::PackageMetadata::parse(&mut &bytes[..]).context("not an RPM package")?;
                let start = usize::try_from(m.get_package_segment_offsets().payload)
                    .context("a huge .rpm")?;
                let start = start.min(bytes.len());
                out.add(self.in_plain(&bytes[..start]), "in the headers");
                out.scripts = [
                    m.get_pre_install_script(),
                    m.get_post_install_script(),
                    m.get_pre_uninstall_script(),
                    m.get_post_uninstall_script(),
                    m.get_pre_trans_script(),
                    m.get_post_trans_script(),
                ]
                .into_iter()
                .filter_map(|s| s.ok().map(|s| s.script))
                .collect();
                let payload = &bytes[start..];
                if payload.starts_with(&[0x1f, 0x8b]) {
                    let mut walk = CpioWalk::new();
                    out.add(self.in_gzip(payload, &mut walk)?, "of the payload");
                    whole(walk.complete(), "the payload")?;
                    out.entries = walk.entries;
                } else {
                    // Another compression (not etcdpack's): inflated whole.
                    for s in super::read_streams(format, bytes)? {
                        out.add(self.in_plain(&s), "of the payload");
                    }
                    out.entries = super::read_entries(format, bytes)?
                        .into_iter()
                        .map(|e| {
                            let small = !e.dir && e.data.len() < super::archive::SHARED_MIN;
                            Listed {
                                path: e.path,
                                mode: e.mode,
                                text: small.then_some(e.data),
                            }
                        })
                        .collect();
                }
            }
            Format::Tar => {
                let mut walk = TarWalk::new();
                out.add(self.in_gzip(bytes, &mut walk)?, "of the bundle");
                whole(walk.complete(), "the bundle")?;
                out.entries = walk.entries;
            }
        }
        Ok(out)
    }

    /// Every label found in what `r` gives (a file as it is), read in pieces.
    pub fn in_reader(&self, mut r: impl Read) -> std::io::Result<Vec<(usize, String)>> {
        let mut w = Window::new(self.needles);
        let mut buf = vec![0; 1 << 20];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(w.finish());
            }
            w.push(&buf[..n]);
        }
    }

    /// Bytes as they are, scanned in windows like a stream.
    pub fn in_plain(&self, data: &[u8]) -> Vec<(usize, String)> {
        let mut w = Window::new(self.needles);
        for c in data.chunks(WINDOW) {
            w.push(c);
        }
        w.finish()
    }

    /// Scan the gzip stream `data`, member by member, and `tap` its bytes.
    fn in_gzip(&self, data: &[u8], tap: &mut dyn Tap) -> Result<Vec<(usize, String)>> {
        let mut w = Window::new(self.needles);
        let mut at = 0;
        while at < data.len() {
            if let Some(k) = self.recall(&data[at..])
                && tap.can_skip(k.out_len)
            {
                let id = Arc::as_ptr(&k) as usize;
                let junction = w.after_known.map(|prev| (prev, id));
                let known = junction.is_some_and(|j| {
                    let set = self.junctions.lock().unwrap_or_else(|e| e.into_inner());
                    set.contains(&j)
                });
                w.skip(&k, id, known);
                if let Some(j) = junction
                    && !known
                    && w.found.is_empty()
                {
                    let mut set = self.junctions.lock().unwrap_or_else(|e| e.into_inner());
                    set.insert(j);
                }
                tap.skip(k.out_len);
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
                tap.push(&chunk[..n])?;
            }
            drop(dec);
            let used = before - rest.len();
            if used == 0 {
                bail!("not gzip at byte {at}");
            }
            if total >= REMEMBER {
                // Every byte of the member scanned before it is known clean.
                w.settle();
                if w.found.is_empty() {
                    self.remember(&data[at..at + used], total as u64, head, w.tail());
                }
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

/// An archive `what` that ended inside an entry: truncated.
fn whole(complete: bool, what: &str) -> Result<()> {
    if !complete {
        bail!("{what} ends inside an entry: it is truncated");
    }
    Ok(())
}

/// A decompressed stream, scanned in overlapping windows.
struct Window<'n> {
    needles: &'n Needles,
    buf: Vec<u8>,
    /// Offset in the stream of `buf[0]`.
    base: u64,
    /// Each label found, first where.
    found: Vec<(usize, String)>,
    /// The known member whose tail is all that is held, when it is.
    after_known: Option<usize>,
}

impl<'n> Window<'n> {
    fn new(needles: &'n Needles) -> Self {
        Window {
            needles,
            buf: Vec::new(),
            base: 0,
            found: Vec::new(),
            after_known: None,
        }
    }

    fn push(&mut self, data: &[u8]) {
        self.after_known = None;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= WINDOW + OVERLAP {
            self.settle();
        }
    }

    /// Scan what is held, and keep only its last [`OVERLAP`] bytes.
    fn settle(&mut self) {
        self.scan();
        let drop = self.buf.len().saturating_sub(OVERLAP);
        self.buf.drain(..drop);
        self.base += drop as u64;
    }

    fn scan(&mut self) {
        self.needles.find(&self.buf, self.base, &mut self.found);
    }

    /// The last [`OVERLAP`] bytes pushed.
    fn tail(&self) -> Vec<u8> {
        self.buf[self.buf.len().saturating_sub(OVERLAP)..].to_vec()
    }

    /// A member scanned before (`id`): its first bytes end the window, its
    /// last bytes start the next. `known`: the window is the tail of a
    /// member whose junction with this one was scanned before.
    fn skip(&mut self, k: &Known, id: usize, known: bool) {
        let start = self.base + self.buf.len() as u64;
        if !known {
            self.buf.extend_from_slice(&k.head);
            self.scan();
        }
        self.after_known = Some(id);
        self.buf.clear();
        self.buf.extend_from_slice(&k.tail);
        self.base = start + k.out_len - k.tail.len() as u64;
    }

    fn finish(mut self) -> Vec<(usize, String)> {
        self.scan();
        self.found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn finder_and_key() -> (Needles, String) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (
            Needles::of(KeyFinder::for_cert_pem(&cert.pem()).unwrap()),
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
        assert_eq!(scan.in_gzip(&clean, &mut Plain).unwrap(), []);
        assert_eq!(scan.known.lock().unwrap().len(), 1);
        // A key just before the known member and one just after it are
        // found, at their offsets in the decompressed stream.
        let before = [gz(key.as_bytes()), big.clone()].concat();
        assert!(!scan.in_gzip(&before, &mut Plain).unwrap().is_empty());
        let after = [big.clone(), gz(key.as_bytes())].concat();
        let found = &scan.in_gzip(&after, &mut Plain).unwrap()[0].1;
        assert!(found.contains(&format!("at byte {}", 3 << 20)), "{found}");
        // The member really is skipped: a copy whose bytes differ is
        // inflated (and a bad one is an error, never taken as known).
        let mut broken = big.clone();
        let mid = broken.len() / 2;
        broken[mid] ^= 0xff;
        assert!(scan.in_gzip(&broken, &mut Plain).is_err());
        assert!(scan.in_gzip(b"not gzip", &mut Plain).is_err());
    }

    #[test]
    fn a_key_across_a_window_boundary_is_found() {
        let (finder, key) = finder_and_key();
        let scan = KeyScan::new(&finder);
        let mut data = noise(WINDOW + OVERLAP - 100, 3);
        data.extend_from_slice(key.as_bytes());
        data.extend_from_slice(&noise(1000, 5));
        let found = &scan.in_gzip(&gz(&data), &mut Plain).unwrap()[0].1;
        assert!(
            found.contains(&format!("at byte {}", WINDOW + OVERLAP - 100)),
            "{found}"
        );
    }

    /// One pass finds each label where it is and lists the entries; a key
    /// planted in one package's copy of a shared file is found, and the
    /// packages around it, with the file as it was, pass.
    #[test]
    fn inspect_finds_each_label_and_lists_entries() {
        use crate::model::Blob;
        use crate::package::archive::{GzMembers, Shared, TarWriter};
        let cert = |key: &rcgen::KeyPair| {
            let params = rcgen::CertificateParams::new(vec!["x".into()]).unwrap();
            params.self_signed(key).unwrap().pem()
        };
        let ca = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let node = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let needles = Needles::new(&[(0, &cert(&ca)), (1, &cert(&node))], Vec::new()).unwrap();
        let scan = KeyScan::new(&needles);
        let shared = Shared::new();
        let bundle = |big: &Blob| {
            let gz = GzMembers::new(Vec::new(), Some(&shared));
            let mut t = TarWriter::new(gz, 0);
            t.file("top/install.sh", 0o755, b"#!/bin/sh\n").unwrap();
            t.large_file("top/root/opt/etcd/bin/etcd", 0o755, big)
                .unwrap();
            t.file("top/root/opt/etcd/ssl/server-key.pem", 0o640, b"sealed")
                .unwrap();
            t.finish().unwrap().finish().unwrap()
        };
        let clean = Blob::from(noise(5 << 20, 11));
        let mut planted = noise(5 << 20, 11);
        let key = node.serialize_pem();
        planted[3 << 20..(3 << 20) + key.len()].copy_from_slice(key.as_bytes());
        let planted = Blob::from(planted);

        let first = scan.inspect(Format::Tar, &bundle(&clean)).unwrap();
        assert_eq!(first.found, []);
        let listed: Vec<_> = first
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e.mode))
            .collect();
        assert_eq!(
            listed,
            [
                ("top/install.sh", 0o755),
                ("top/root/opt/etcd/bin/etcd", 0o755),
                ("top/root/opt/etcd/ssl/server-key.pem", 0o640),
            ]
        );
        assert_eq!(first.entries[0].text.as_deref(), Some(&b"#!/bin/sh\n"[..]));
        assert_eq!(first.entries[1].text, None);
        let remembered = scan.known.lock().unwrap().len();
        assert!(remembered >= 1, "the binary's members are remembered");

        let found = scan.inspect(Format::Tar, &bundle(&planted)).unwrap().found;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, 1, "the node's key, not the CA's: {found:?}");
        assert!(found[0].1.ends_with("of the bundle"), "{found:?}");

        let again = scan.inspect(Format::Tar, &bundle(&clean)).unwrap();
        assert_eq!(again.found, []);
        assert_eq!(again.entries, first.entries);
    }
}
