//! The `.rpm`, built with the `rpm` crate.
//!
//! Decisions:
//! - **gzip payload**, not the crate's default zstd: RHEL/CentOS 7 and 8 and
//!   Amazon Linux 2 cannot install zstd payloads. File digests are SHA-256.
//! - **`%config`, never `%config(noreplace)`**, for `etcd.conf` (the entries
//!   the content model marks `config`). A new package is built whenever
//!   `cluster.yaml` changes, and the upgrade must install the new settings;
//!   `noreplace` would keep a locally edited file and leave the node on the old
//!   ones. Plain `%config` installs the new file and keeps a local edit as
//!   `.rpmsave`, without asking. Same outcome as the .deb, which has no
//!   conffiles.
//! - Owners are in the header (the private key belongs to the service user),
//!   so `rpm -V` stays quiet; `%pre` creates the user before files are laid
//!   down. The crate then adds weak `Recommends: user(…)`/`group(…)` (for
//!   RPM 4.19's sysusers); dnf skips weak dependencies nothing provides.
//! - Only the directories the package owns get entries; `/opt`, `/usr/lib`,
//!   `/etc` belong to the distribution.

use std::collections::BTreeMap;
#[cfg(test)]
use std::io::Read;
use std::io::Write;

use anyhow::{Context, Result, bail};
use rpm::{
    BuildConfig, CompressionType, CompressionWithLevel, Dependency, FileOptions, Header,
    HeaderEntry, IndexData, IndexSignatureTag, IndexTag, PackageBuilder, PackageMetadata,
    RpmFormat, Scriptlet, SignatureHeaderBuilder,
};

use super::archive::{LEVEL, MemoSha256, SHARED_MIN, Shared};
use super::{Identity, PackageSpec, Packager, ReadEntry, ScriptInput, cpio, relations};
use crate::model::Blob;
use crate::render::Template;
use crate::stage::{Kind, Owner};

/// `%pre`.
pub const PRE: Template = Template {
    name: "rpm/pre",
    text: include_str!("../../templates/rpm/pre"),
};
/// `%post`.
pub const POST: Template = Template {
    name: "rpm/post",
    text: include_str!("../../templates/rpm/post"),
};
/// `%preun`.
pub const PREUN: Template = Template {
    name: "rpm/preun",
    text: include_str!("../../templates/rpm/preun"),
};
/// `%postun`.
pub const POSTUN: Template = Template {
    name: "rpm/postun",
    text: include_str!("../../templates/rpm/postun"),
};

/// The .rpm's rendered scriptlets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scripts {
    pub pre: String,
    pub post: String,
    pub preun: String,
    pub postun: String,
}

impl Scripts {
    pub fn render(input: &ScriptInput) -> Result<Self> {
        Ok(Scripts {
            pre: input.render(&PRE)?,
            post: input.render(&POST)?,
            preun: input.render(&PREUN)?,
            postun: input.render(&POSTUN)?,
        })
    }

    /// Each text with its template's name.
    pub fn named(&self) -> [(&'static str, &str); 4] {
        [
            (PRE.name, &self.pre),
            (POST.name, &self.post),
            (PREUN.name, &self.preun),
            (POSTUN.name, &self.postun),
        ]
    }
}

/// The `.rpm`.
pub struct Rpm;

impl Packager for Rpm {
    fn extension(&self) -> &'static str {
        "rpm"
    }

    /// `<package>-<version>-<release>.<rpm arch>.rpm`, rpmbuild's convention.
    fn file_name(&self, id: &Identity) -> String {
        format!(
            "{}-{}.{}.{}",
            id.name,
            id.full_version(),
            id.arch.rpm(),
            self.extension()
        )
    }

    fn templates(&self) -> &'static [Template] {
        &[PRE, POST, PREUN, POSTUN]
    }

    fn write(&self, spec: &PackageSpec, w: &mut dyn Write) -> Result<()> {
        write(spec, w)
    }

    fn read(&self, bytes: &[u8]) -> Result<Vec<ReadEntry>> {
        read(bytes)
    }

    fn streams(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        streams(bytes)
    }
}

/// Distribution packages that ship their own `etcd.service`.
const DISTRO_CONFLICTS: &[&str] = &["etcd"];

fn write(spec: &PackageSpec, w: &mut dyn Write) -> Result<()> {
    // Uncompressed: the payload is compressed by `cpio::recompress`.
    let (mut b, large) = builder(spec, CompressionType::None.into())?;
    let pkg = b.build().context("cannot build the .rpm")?;
    finish(pkg, &large, spec.shared, w)
}

/// The crate's builder with everything of `spec`, files of at least
/// [`SHARED_MIN`] bytes as empty placeholders (returned by path).
fn builder(
    spec: &PackageSpec,
    compression: CompressionWithLevel,
) -> Result<(PackageBuilder, BTreeMap<String, Blob>)> {
    // Every header tag below is built from these values.
    spec.check_header_values(super::Format::Rpm)?;
    let mtime = u32::try_from(spec.mtime)
        .with_context(|| format!("timestamp {} does not fit an RPM header", spec.mtime))?;
    let config = BuildConfig::default()
        .compression(compression)
        .source_date(mtime);
    let mut b = PackageBuilder::new(
        &spec.id.name,
        &spec.id.version,
        spec.license,
        spec.id.arch.rpm(),
        &spec.summary,
    );
    b.using_config(config)
        .release(spec.id.release.to_string())
        .description(super::wrap(&spec.description, 79).join("\n"))
        .url(&spec.homepage)
        .packager(&spec.maintainer)
        .group("Applications/Databases")
        // A fixed name, as Fedora's reproducible builds use: the real host
        // name would make two builds differ.
        .build_host("reproducible")
        .add_changelog_entry(
            format!("{} - {}", spec.maintainer, spec.id.full_version()),
            format!("- {}, generated by etcdpack", spec.summary),
            mtime,
        );
    for p in relations::provides(spec) {
        b.provides(Dependency::any(p));
    }
    for c in DISTRO_CONFLICTS
        .iter()
        .map(|s| s.to_string())
        .chain(relations::conflicts())
    {
        b.conflicts(Dependency::any(c));
    }
    if spec.service_user != "root" {
        b.requires(Dependency::script_pre("/usr/sbin/useradd"));
        b.requires(Dependency::script_pre("/usr/sbin/groupadd"));
    }
    // Encrypted backups (backup.recipients) are written with age.
    if spec.encrypted_backups {
        b.requires(Dependency::any("age"));
    }
    // A sealed key is unsealed with age in %post, into a file the package
    // owns without shipping it: rpm erases the files of the package an
    // upgrade replaces after the new %post, and would otherwise take the
    // unsealed key with a cleartext package's own copy of it.
    if let Some(key) = &spec.unsealed_key {
        b.requires(Dependency::script_post("age"));
        let mut o = FileOptions::ghost(key).permissions(0o600);
        if spec.service_user != "root" {
            o = o.user(&spec.service_user).group(&spec.service_user);
        }
        b.with_ghost(o)
            .with_context(|| format!("cannot add {key} to the .rpm"))?;
    }

    // Large files go in as empty placeholders; `finish` puts them back.
    let mut large = BTreeMap::new();
    for e in &spec.tree.entries {
        let mode = u16::try_from(e.mode).context("internal: mode out of range")?;
        match &e.kind {
            Kind::Dir if e.owned => {
                b.with_dir_entry(FileOptions::dir(&e.path).permissions(mode))?;
            }
            Kind::Dir => {}
            Kind::File(data) => {
                let mut o = FileOptions::new(&e.path).permissions(mode);
                if e.owner == Owner::Service {
                    o = o.user(&spec.service_user).group(&spec.service_user);
                }
                if e.config {
                    o = o.config();
                }
                let contents = if data.len() >= SHARED_MIN {
                    large.insert(e.path.clone(), data.clone());
                    Vec::new()
                } else {
                    data.to_vec()
                };
                b.with_file_contents(contents, o)
                    .with_context(|| format!("cannot add {} to the .rpm", e.path))?;
            }
        }
    }

    let script = |text: &str| Scriptlet::new(text).prog(vec!["/bin/sh"]);
    let s = &spec.scripts.rpm;
    b.pre_install_script(script(&s.pre))
        .post_install_script(script(&s.post))
        .pre_uninstall_script(script(&s.preun))
        .post_uninstall_script(script(&s.postun));

    Ok((b, large))
}

/// The header tags `finish` reads and corrects.
const TAG_SIZE: u32 = IndexTag::RPMTAG_SIZE as u32;
const TAG_FILESIZES: u32 = IndexTag::RPMTAG_FILESIZES as u32;
const TAG_FILEDIGESTS: u32 = IndexTag::RPMTAG_FILEDIGESTS as u32;
const TAG_DIRINDEXES: u32 = IndexTag::RPMTAG_DIRINDEXES as u32;
const TAG_BASENAMES: u32 = IndexTag::RPMTAG_BASENAMES as u32;
const TAG_DIRNAMES: u32 = IndexTag::RPMTAG_DIRNAMES as u32;
const TAG_PAYLOADCOMPRESSOR: u32 = IndexTag::RPMTAG_PAYLOADCOMPRESSOR as u32;
const TAG_PAYLOADFLAGS: u32 = IndexTag::RPMTAG_PAYLOADFLAGS as u32;
const TAG_PAYLOADSHA256: u32 = IndexTag::RPMTAG_PAYLOADSHA256 as u32;
const TAG_PAYLOADSHA256ALT: u32 = IndexTag::RPMTAG_PAYLOADSHA256ALT as u32;

/// Write the package the crate built uncompressed, with placeholders for
/// `large`, as it would have been with the files in place and a gzip
/// payload: the payload recompressed (large files as shared members, see
/// `cpio.rs`), and the header's sizes, file digests and payload tags, then
/// the signature header's digests and size, computed again. For a package
/// without large files the bytes are exactly those the crate writes with
/// gzip at the same level but for the compressed stream itself and its
/// digest (the crate flushes after every file; a test holds it to that).
fn finish(
    pkg: rpm::Package,
    large: &BTreeMap<String, Blob>,
    shared: Option<&Shared>,
    w: &mut dyn Write,
) -> Result<()> {
    let payload = cpio::recompress(&pkg.payload, large, shared)?;
    let compressed_sha256 = payload.compressed.sha256(MemoSha256::new(shared));

    let mut entries = pkg
        .metadata
        .header
        .get_all_entries()
        .context("internal: cannot read the .rpm header back")?;
    // The region tag; `from_entries` makes it again.
    entries.retain(|(tag, _)| *tag != u32::from(IndexTag::RPMTAG_HEADERIMMUTABLE));
    let get = |tag: u32| entries.iter().find(|(t, _)| *t == tag).map(|(_, d)| d);
    let paths: Vec<String> = match (get(TAG_DIRINDEXES), get(TAG_BASENAMES), get(TAG_DIRNAMES)) {
        (
            Some(IndexData::Int32(ix)),
            Some(IndexData::StringArray(base)),
            Some(IndexData::StringArray(dirs)),
        ) => ix
            .iter()
            .zip(base)
            .map(|(i, b)| format!("{}{b}", dirs[*i as usize]))
            .collect(),
        _ if large.is_empty() => Vec::new(),
        _ => bail!("internal: the .rpm header lists no files"),
    };
    let mut added = 0u32;
    for (tag, data) in &mut entries {
        match (*tag, data) {
            (TAG_FILESIZES, IndexData::Int32(sizes)) => {
                for (p, size) in paths.iter().zip(sizes.iter_mut()) {
                    if let Some(b) = large.get(p) {
                        *size = u32::try_from(b.len()).context("a file over 4 GiB")?;
                        added += *size;
                    }
                }
            }
            (TAG_FILEDIGESTS, IndexData::StringArray(digests)) => {
                for (p, d) in paths.iter().zip(digests.iter_mut()) {
                    if let Some(b) = large.get(p) {
                        *d = b.sha256().to_owned();
                    }
                }
            }
            (TAG_PAYLOADSHA256, IndexData::StringArray(v)) => *v = vec![compressed_sha256.clone()],
            (TAG_PAYLOADSHA256ALT, IndexData::StringArray(v)) => {
                *v = vec![payload.raw_sha256.clone()]
            }
            (TAG_PAYLOADFLAGS, IndexData::StringTag(v)) => *v = LEVEL.to_string(),
            _ => {}
        }
    }
    for (tag, data) in &mut entries {
        if let (TAG_SIZE, IndexData::Int32(v)) = (*tag, data) {
            v[0] = v[0].checked_add(added).context("a package over 4 GiB")?;
        }
    }
    entries.push((
        TAG_PAYLOADCOMPRESSOR,
        IndexData::StringTag("gzip".to_owned()),
    ));
    let header = Header::<IndexTag>::from_entries(
        entries.into_iter().map(|(t, d)| HeaderEntry::new(t, d)),
        IndexTag::RPMTAG_HEADERIMMUTABLE,
    );
    let meta = PackageMetadata {
        lead: pkg.metadata.lead,
        signature: Header::<IndexSignatureTag>::new_empty(),
        header,
    };
    let header_bytes = meta
        .header_bytes()
        .context("cannot write the .rpm header")?;
    let signature = SignatureHeaderBuilder::new()
        .format(RpmFormat::V4)
        .reserved_space(Some(SignatureHeaderBuilder::DEFAULT_RESERVED_SPACE))
        .set_content_length(header_bytes.len() as u64 + payload.compressed.len())
        .calculate_digests(&header_bytes)
        .build()
        .context("cannot build the .rpm signature header")?;
    // The size of the uncompressed payload, which rpm2cpio (rpm 4.18) checks
    // the archive it copies out against: without it, it fails on a
    // complete archive.
    let mut sig_entries = signature
        .get_all_entries()
        .context("internal: cannot read the .rpm signature header back")?;
    let size = match u32::try_from(payload.raw_len) {
        Ok(n) => (
            IndexSignatureTag::RPMSIGTAG_PAYLOADSIZE as u32,
            IndexData::Int32(vec![n]),
        ),
        Err(_) => (
            IndexSignatureTag::RPMSIGTAG_LONGARCHIVESIZE as u32,
            IndexData::Int64(vec![payload.raw_len]),
        ),
    };
    // The region tag; `from_entries` makes it again.
    sig_entries.retain(|(tag, _)| *tag != IndexSignatureTag::HEADER_SIGNATURES as u32);
    sig_entries.push(size);
    let signature = Header::<IndexSignatureTag>::from_entries(
        sig_entries.into_iter().map(|(t, d)| HeaderEntry::new(t, d)),
        IndexSignatureTag::HEADER_SIGNATURES,
    );
    let meta = PackageMetadata { signature, ..meta };
    let mut w = WriteRef(w);
    meta.write(&mut w).context("cannot write the .rpm")?;
    payload
        .compressed
        .write_to(&mut w)
        .context("cannot write the .rpm")?;
    Ok(())
}

/// `PackageMetadata::write` wants a sized writer.
struct WriteRef<'a>(&'a mut dyn Write);

impl Write for WriteRef<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Every entry the package installs, with its data from the payload
/// (read with a reader of ours: the crate's stops after one gzip member).
fn read(bytes: &[u8]) -> Result<Vec<ReadEntry>> {
    let pkg = rpm::Package::parse(&mut &bytes[..]).context("not an RPM package")?;
    let mut out: Vec<ReadEntry> = cpio::read(&pkg.payload)?
        .into_iter()
        .map(|(path, mode, data)| ReadEntry {
            path,
            mode: mode & 0o7777,
            dir: mode & 0o170000 == 0o040000,
            data,
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The .rpm as it is (its header, scriptlets included, is not compressed)
/// and the contents of every file in its payload.
fn streams(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = vec![bytes.to_vec()];
    out.extend(read(bytes)?.into_iter().map(|e| e.data));
    Ok(out)
}

/// Size of an .rpm's lead, before its signature header.
const LEAD_SIZE: u64 = 96;

/// The lead and headers of an .rpm, read from its first bytes (the payload
/// is not needed).
pub fn head_of(r: &mut impl std::io::Read) -> Result<rpm::PackageMetadata> {
    rpm::PackageMetadata::parse(&mut std::io::BufReader::new(r)).context("not an RPM package")
}

/// A new lead, signature header and header for the .rpm whose lead and
/// headers are `head`, carrying the OpenPGP signature `signature` (a binary
/// signature packet, made by `rsa` key or not) of its header, as `rpmsign
/// --addsign` writes it: the signature takes its room from the space
/// reserved for it, so that the header stays where it was. Any earlier
/// signature is replaced. The payload that follows is the package's own,
/// unchanged, from the offset returned beside the bytes.
pub fn signed_head(
    head: &rpm::PackageMetadata,
    signature: Vec<u8>,
    rsa: bool,
) -> Result<(Vec<u8>, u64)> {
    use rpm::{HeaderEntry, IndexData, IndexSignatureTag};
    let mut metadata = head.clone();
    let offsets = metadata.get_package_segment_offsets();
    let old_size = offsets.header - LEAD_SIZE;
    let tag = |t: IndexSignatureTag| t as u32;
    let dropped = [
        tag(IndexSignatureTag::HEADER_SIGNATURES),
        tag(IndexSignatureTag::RPMSIGTAG_RSA),
        tag(IndexSignatureTag::RPMSIGTAG_DSA),
        tag(IndexSignatureTag::RPMSIGTAG_OPENPGP),
        tag(IndexSignatureTag::RPMSIGTAG_PGP),
        tag(IndexSignatureTag::RPMSIGTAG_GPG),
        tag(IndexSignatureTag::RPMSIGTAG_RESERVEDSPACE),
    ];
    let had_reserved = metadata
        .signature
        .entry_is_present(tag(IndexSignatureTag::RPMSIGTAG_RESERVEDSPACE));
    let mut entries: Vec<(u32, IndexData)> = metadata
        .signature
        .get_all_entries()
        .context("cannot read the .rpm signature header")?
        .into_iter()
        .filter(|(t, _)| !dropped.contains(t))
        .collect();
    // rpm ≥ 6 reads the OpenPGP tag, rpm 4 its legacy one: both, as the
    // rpm crate and rpm 6 write them for a v4 package.
    use base64::Engine as _;
    entries.push((
        tag(IndexSignatureTag::RPMSIGTAG_OPENPGP),
        IndexData::StringArray(vec![
            base64::engine::general_purpose::STANDARD.encode(&signature),
        ]),
    ));
    let legacy = if rsa {
        IndexSignatureTag::RPMSIGTAG_RSA
    } else {
        IndexSignatureTag::RPMSIGTAG_DSA
    };
    entries.push((tag(legacy), IndexData::Bin(signature)));

    let build = |reserved: Option<usize>| {
        let mut all = entries.clone();
        if let Some(n) = reserved {
            all.push((
                tag(IndexSignatureTag::RPMSIGTAG_RESERVEDSPACE),
                IndexData::Bin(vec![0; n]),
            ));
        }
        rpm::Header::<IndexSignatureTag>::from_entries(
            all.into_iter().map(|(t, d)| HeaderEntry::new(t, d)),
            IndexSignatureTag::HEADER_SIGNATURES,
        )
    };
    let size_of = |m: &mut rpm::PackageMetadata, h| {
        m.signature = h;
        m.get_package_segment_offsets().header - LEAD_SIZE
    };
    let mut signature_header = build(None);
    if had_reserved {
        // The reserved entry's own index record and alignment count too:
        // measure with an empty one, then give it what is left.
        let least = size_of(&mut metadata, build(Some(0)));
        if least < old_size {
            signature_header = build(Some((old_size - least) as usize));
        }
    }
    metadata.signature = signature_header;
    let mut out = Vec::with_capacity(offsets.payload as usize + 1024);
    metadata
        .write(&mut out)
        .context("cannot write the signed .rpm")?;
    Ok((out, offsets.payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::sha256_hex;
    use crate::package::tests::{spec, tree};
    use crate::stage::{Entry, NodeTree};

    /// Without large files, `finish` changes nothing but the compressed
    /// stream (the crate flushes after every file) and so its digest and
    /// the signature header: every other header tag is the crate's own,
    /// and the archive inside is the same.
    #[test]
    fn without_large_files_the_package_is_the_crates_own() {
        let t = tree();
        let spec = spec(&t);
        let mut ours = Vec::new();
        write(&spec, &mut ours).unwrap();
        let (mut b, large) = builder(&spec, CompressionWithLevel::Gzip(LEVEL)).unwrap();
        assert!(large.is_empty());
        let mut crates = Vec::new();
        b.build().unwrap().write(&mut crates).unwrap();
        let [ours, crates] = [ours, crates].map(|b| rpm::Package::parse(&mut &b[..]).unwrap());
        let tags = |p: &rpm::Package| {
            let mut e = p.metadata.header.get_all_entries().unwrap();
            e.retain(|(t, _)| *t != TAG_PAYLOADSHA256);
            e
        };
        assert!(tags(&ours) == tags(&crates), "the header tags differ");
        let raw = |p: &rpm::Package| {
            let mut v = Vec::new();
            flate2::read::MultiGzDecoder::new(&p.payload[..])
                .read_to_end(&mut v)
                .unwrap();
            v
        };
        assert!(raw(&ours) == raw(&crates), "the archives differ");
    }

    #[test]
    fn large_files_are_in_place_and_every_digest_and_size_is_right() {
        let big = Blob::from(
            (0..SHARED_MIN + 4321)
                .map(|i| (i * 31 % 253) as u8)
                .collect::<Vec<u8>>(),
        );
        let t = tree();
        let mut files: Vec<Entry> = t.entries.iter().filter(|e| !e.is_dir()).cloned().collect();
        files.push(Entry {
            path: "/opt/etcd/bin/etcd".into(),
            kind: Kind::File(big.clone()),
            mode: 0o755,
            owner: Owner::Root,
            config: false,
            owned: false,
        });
        // A file whose path sorts first.
        files.push(Entry {
            path: "/etc/profile.d/etcdctl.sh".into(),
            kind: Kind::File(Blob::from(&b"export ETCDCTL_API=3\n"[..])),
            mode: 0o644,
            owner: Owner::Root,
            config: false,
            owned: false,
        });
        let t = NodeTree::new("etcd-1", "/opt/etcd", files).unwrap();
        let mut spec = spec(&t);
        let plain = {
            let mut v = Vec::new();
            write(&spec, &mut v).unwrap();
            v
        };
        let shared = Shared::new();
        spec.shared = Some(&shared);
        let mut bytes = Vec::new();
        write(&spec, &mut bytes).unwrap();
        assert_eq!(bytes, plain, "the same bytes with or without the cache");

        let pkg = rpm::Package::parse(&mut &bytes[..]).unwrap();
        let h = &pkg.metadata.header;
        // The header's digests of the payload, compressed and not.
        let mut raw = Vec::new();
        flate2::read::MultiGzDecoder::new(&pkg.payload[..])
            .read_to_end(&mut raw)
            .unwrap();
        // The large file first, although its path sorts later: every
        // node's payload starts with the same bytes.
        let first = b"./opt/etcd/bin/etcd\0";
        assert_eq!(&raw[110..110 + first.len()], first);
        let tag = |t: IndexTag| h.get_entry_data_as_string_array(t).unwrap()[0].to_owned();
        assert_eq!(
            tag(IndexTag::RPMTAG_PAYLOADSHA256),
            sha256_hex(&pkg.payload)
        );
        assert_eq!(tag(IndexTag::RPMTAG_PAYLOADSHA256ALT), sha256_hex(&raw));
        assert_eq!(
            h.get_entry_data_as_string(IndexTag::RPMTAG_PAYLOADCOMPRESSOR)
                .unwrap(),
            "gzip"
        );
        // The signature header's digest of the header and size of the rest.
        let header = pkg.metadata.header_bytes().unwrap();
        let sig = &pkg.metadata.signature;
        assert_eq!(
            sig.get_entry_data_as_string(IndexSignatureTag::RPMSIGTAG_SHA256)
                .unwrap(),
            sha256_hex(&header)
        );
        assert_eq!(
            sig.get_entry_data_as_u32(IndexSignatureTag::RPMSIGTAG_SIZE)
                .unwrap() as usize,
            header.len() + pkg.payload.len()
        );
        // Each file's size and digest, and the total.
        let files = pkg.metadata.get_file_entries().unwrap();
        let etcd = files
            .iter()
            .find(|f| f.path().to_str() == Some("/opt/etcd/bin/etcd"))
            .unwrap();
        assert_eq!(etcd.size(), big.len());
        assert_eq!(etcd.digest().unwrap().as_hex(), big.sha256());
        let total: usize = files.iter().map(|f| f.size()).sum();
        assert_eq!(
            h.get_entry_data_as_u32(IndexTag::RPMTAG_SIZE).unwrap() as usize,
            total
        );
        // The data comes back, the big file is a gzip member of its own.
        let read = read(&bytes).unwrap();
        let e = read
            .iter()
            .find(|e| e.path == "/opt/etcd/bin/etcd")
            .unwrap();
        assert_eq!(e.data, &big[..]);
        assert_eq!(e.mode, 0o755);
        let member = shared.member(&big);
        assert!(pkg.payload.windows(member.len()).any(|w| w == &member[..]));
    }
}
