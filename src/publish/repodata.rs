//! The metadata of the yum repository, `repodata/`, laid out as Fedora's
//! and EL's mirrors are, as `createrepo_c` writes it for the same packages:
//! byte for byte but for three things: `<time file>` is the package's build
//! time (createrepo_c takes the file's mtime, which no two copies share),
//! there are no sqlite databases (dnf and libsolv read the XML; the
//! databases only served yum 3), and packages are listed by file name.
//!
//! Everything here is a pure function of the packages and the date; it
//! reads back only what it wrote itself (see [`read_repomd`],
//! [`read_primary`]), after the signature over it was checked.

use std::cmp::Ordering;

use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use rpm::{IndexSignatureTag, IndexTag, PackageMetadata};

use super::repository::Entry;
use super::versions::rpmvercmp;

/// Where the metadata is, relative to a `$basearch` directory.
pub const REPODATA: &str = "repodata";
/// The kinds of metadata dnf reads, in repomd.xml's order.
pub const KINDS: [&str; 3] = ["primary", "filelists", "other"];

/// One package in the repository, as its metadata lists it.
#[derive(Debug)]
pub struct RpmEntry {
    /// `Packages/<file>`, relative to the `$basearch` directory.
    pub href: String,
    /// Of the file as it is in the repository (signed).
    pub sha256: String,
    pub size: u64,
    /// Its lead and headers.
    pub metadata: PackageMetadata,
}

impl RpmEntry {
    pub fn name(&self) -> &str {
        self.metadata.get_name().unwrap_or_default()
    }

    pub fn arch(&self) -> &str {
        self.metadata.get_arch().unwrap_or_default()
    }

    pub fn epoch(&self) -> u32 {
        self.metadata.get_epoch().unwrap_or(0)
    }

    pub fn version(&self) -> &str {
        self.metadata.get_version().unwrap_or_default()
    }

    pub fn release(&self) -> &str {
        self.metadata.get_release().unwrap_or_default()
    }

    /// `name`, `epoch:version-release`, `arch`: what makes two packages the same.
    pub fn key(&self) -> (String, String, String) {
        (
            self.name().to_owned(),
            format!("{}:{}-{}", self.epoch(), self.version(), self.release()),
            self.arch().to_owned(),
        )
    }
}

impl Entry for RpmEntry {
    fn name(&self) -> &str {
        RpmEntry::name(self)
    }

    fn arch(&self) -> &str {
        RpmEntry::arch(self)
    }

    fn key(&self) -> (String, String, String) {
        RpmEntry::key(self)
    }

    /// As rpm orders two releases of a package: epoch, version, release.
    fn cmp_version(&self, other: &Self) -> Ordering {
        self.epoch()
            .cmp(&other.epoch())
            .then_with(|| rpmvercmp(self.version(), other.version()))
            .then_with(|| rpmvercmp(self.release(), other.release()))
    }
}

/// Read the lead and headers of an .rpm (the payload is not needed).
pub fn metadata_of(bytes: &[u8]) -> Result<PackageMetadata> {
    PackageMetadata::parse(&mut &bytes[..]).context("not an RPM package")
}

/// `s` as XML character data, as libxml2 writes a text node.
pub fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` as an XML attribute value in double quotes, as libxml2 writes one.
pub fn xml_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// The text of an escaped attribute or text node (the escapes above, and
/// numeric references).
pub fn xml_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// What XML 1.0 cannot hold: control characters but tab, newline and CR.
fn check_xml_chars(what: &str, s: &str, pkg: &str) -> Result<()> {
    if let Some(c) = s
        .chars()
        .find(|&c| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
    {
        bail!(
            "the {what} of {pkg} holds the control character {:#04x}, which repository metadata cannot hold",
            c as u32
        );
    }
    Ok(())
}

mod relations;
pub use relations::is_primary_file;
use relations::{File, files_of, relations_of, write_deps};

/// A string tag of the header (summary, description and group are
/// translatable ones: their first text), or empty.
fn string(m: &PackageMetadata, tag: IndexTag) -> String {
    m.header
        .get_entry_data_as_string(tag)
        .or_else(|_| m.header.get_entry_data_as_i18n_string(tag))
        .map(str::to_owned)
        .unwrap_or_default()
}

fn version_element(e: &RpmEntry) -> String {
    format!(
        "<version epoch=\"{}\" ver=\"{}\" rel=\"{}\"/>",
        e.epoch(),
        xml_attr(e.version()),
        xml_attr(e.release())
    )
}

/// The archive size as createrepo_c reads it (0 when the package does not say).
fn archive_size(m: &PackageMetadata) -> u64 {
    m.header
        .get_entry_data_as_u64(IndexTag::RPMTAG_LONGARCHIVESIZE)
        .or_else(|_| {
            m.header
                .get_entry_data_as_u32(IndexTag::RPMTAG_ARCHIVESIZE)
                .map(u64::from)
        })
        .or_else(|_| {
            m.signature
                .get_entry_data_as_u64(IndexSignatureTag::RPMSIGTAG_LONGARCHIVESIZE)
        })
        .or_else(|_| {
            m.signature
                .get_entry_data_as_u32(IndexSignatureTag::RPMSIGTAG_PAYLOADSIZE)
                .map(u64::from)
        })
        .unwrap_or(0)
}

/// One package's `<package>` in primary.xml.
fn primary_package(e: &RpmEntry) -> Result<String> {
    let m = &e.metadata;
    let nevra = format!("{}-{}-{}.{}", e.name(), e.version(), e.release(), e.arch());
    let files = files_of(m).with_context(|| format!("cannot read {nevra}"))?;
    let rel = relations_of(m, &files).with_context(|| format!("cannot read {nevra}"))?;
    let text = |tag: IndexTag| string(m, tag);
    let fields = [
        ("name", e.name().to_owned()),
        ("summary", text(IndexTag::RPMTAG_SUMMARY)),
        ("description", text(IndexTag::RPMTAG_DESCRIPTION)),
        ("packager", text(IndexTag::RPMTAG_PACKAGER)),
        ("url", text(IndexTag::RPMTAG_URL)),
        ("license", text(IndexTag::RPMTAG_LICENSE)),
        ("vendor", text(IndexTag::RPMTAG_VENDOR)),
        ("group", text(IndexTag::RPMTAG_GROUP)),
        ("buildhost", text(IndexTag::RPMTAG_BUILDHOST)),
        ("sourcerpm", text(IndexTag::RPMTAG_SOURCERPM)),
    ];
    for (what, value) in &fields {
        check_xml_chars(what, value, &nevra)?;
    }
    for f in &files {
        check_xml_chars("file list", &f.path, &nevra)?;
    }
    let field = |name: &str| xml_text(&fields.iter().find(|(k, _)| *k == name).expect("a field").1);
    let offsets = m.get_package_segment_offsets();
    let build = m.get_build_time().unwrap_or(0);
    let installed = m.get_installed_size().unwrap_or(0);
    let mut s = String::new();
    s.push_str("<package type=\"rpm\">\n");
    let _ = writeln!(s, "  <name>{}</name>", field("name"));
    let _ = writeln!(s, "  <arch>{}</arch>", xml_text(e.arch()));
    let _ = writeln!(s, "  {}", version_element(e));
    let _ = writeln!(
        s,
        "  <checksum type=\"sha256\" pkgid=\"YES\">{}</checksum>",
        e.sha256
    );
    for name in ["summary", "description", "packager", "url"] {
        let _ = writeln!(s, "  <{name}>{}</{name}>", field(name));
    }
    let _ = writeln!(s, "  <time file=\"{build}\" build=\"{build}\"/>");
    let _ = writeln!(
        s,
        "  <size package=\"{}\" installed=\"{installed}\" archive=\"{}\"/>",
        e.size,
        archive_size(m)
    );
    let _ = writeln!(s, "  <location href=\"{}\"/>", xml_attr(&e.href));
    s.push_str("  <format>\n");
    for name in ["license", "vendor", "group", "buildhost", "sourcerpm"] {
        let _ = writeln!(s, "    <rpm:{name}>{}</rpm:{name}>", field(name));
    }
    let _ = writeln!(
        s,
        "    <rpm:header-range start=\"{}\" end=\"{}\"/>",
        offsets.header, offsets.payload
    );
    write_deps(&mut s, "provides", &rel.provides, false);
    write_deps(&mut s, "requires", &rel.requires, true);
    write_deps(&mut s, "conflicts", &rel.conflicts, false);
    write_deps(&mut s, "obsoletes", &rel.obsoletes, false);
    write_deps(&mut s, "suggests", &rel.suggests, false);
    write_deps(&mut s, "enhances", &rel.enhances, false);
    write_deps(&mut s, "recommends", &rel.recommends, false);
    write_deps(&mut s, "supplements", &rel.supplements, false);
    for f in files.iter().filter(|f| is_primary_file(&f.path)) {
        file_element(&mut s, "    ", f);
    }
    s.push_str("  </format>\n</package>\n");
    Ok(s)
}

fn file_element(s: &mut String, indent: &str, f: &File) {
    match f.kind {
        Some(k) => {
            let _ = writeln!(s, "{indent}<file type=\"{k}\">{}</file>", xml_text(&f.path));
        }
        None => {
            let _ = writeln!(s, "{indent}<file>{}</file>", xml_text(&f.path));
        }
    }
}

fn package_head(e: &RpmEntry) -> String {
    format!(
        "<package pkgid=\"{}\" name=\"{}\" arch=\"{}\">\n  {}\n",
        e.sha256,
        xml_attr(e.name()),
        xml_attr(e.arch()),
        version_element(e)
    )
}

/// The changelog as createrepo_c lists it: oldest first, an entry of the
/// same time as the one before it a second later, trailing spaces of the
/// author dropped.
fn changelog_of(m: &PackageMetadata) -> Result<Vec<(String, u64, String)>> {
    let entries = match m.get_changelog_entries() {
        Ok(e) => e,
        Err(rpm::Error::TagNotFound(_)) => Vec::new(),
        Err(e) => return Err(e).context("cannot read the changelog"),
    };
    // createrepo_c prepends each entry (newest first in the header) to its
    // list, and on a repeated time bumps the entries listed after it.
    let mut list: Vec<(String, u64, String)> = Vec::new();
    let mut last = 0u64;
    for c in entries {
        let time = c.timestamp;
        list.insert(
            0,
            (c.name.trim_end_matches(' ').to_owned(), time, c.description),
        );
        if last == time {
            for (t, prev) in (time..).zip(list.iter_mut().skip(1)) {
                if prev.1 != t {
                    break;
                }
                prev.1 += 1;
            }
        } else {
            last = time;
        }
    }
    Ok(list)
}

/// primary.xml, filelists.xml and other.xml of `entries`, uncompressed.
pub fn metadata(entries: &[RpmEntry]) -> Result<[String; 3]> {
    let n = entries.len();
    let mut primary = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata xmlns=\"http://linux.duke.edu/metadata/common\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\" packages=\"{n}\">\n"
    );
    let mut filelists = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<filelists xmlns=\"http://linux.duke.edu/metadata/filelists\" packages=\"{n}\">\n"
    );
    let mut other = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<otherdata xmlns=\"http://linux.duke.edu/metadata/other\" packages=\"{n}\">\n"
    );
    for e in entries {
        primary.push_str(&primary_package(e)?);
        filelists.push_str(&package_head(e));
        for f in files_of(&e.metadata)? {
            file_element(&mut filelists, "  ", &f);
        }
        filelists.push_str("</package>\n");
        other.push_str(&package_head(e));
        for (author, date, text) in changelog_of(&e.metadata)? {
            check_xml_chars("changelog", &format!("{author}{text}"), e.name())?;
            let _ = writeln!(
                other,
                "  <changelog author=\"{}\" date=\"{date}\">{}</changelog>",
                xml_attr(&author),
                xml_text(&text)
            );
        }
        other.push_str("</package>\n");
    }
    primary.push_str("</metadata>");
    filelists.push_str("</filelists>");
    other.push_str("</otherdata>");
    Ok([primary, filelists, other])
}

/// One metadata file as repomd.xml records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    /// primary, filelists or other.
    pub kind: String,
    /// `repodata/<sha256>-<kind>.xml.gz`.
    pub href: String,
    /// Of the compressed file.
    pub sha256: String,
    pub size: u64,
    pub open_sha256: String,
    pub open_size: u64,
}

impl Data {
    pub fn new(kind: &str, plain: &[u8], gz: &[u8]) -> Data {
        let sha256 = crate::fsutil::sha256_hex(gz);
        Data {
            kind: kind.to_owned(),
            href: format!("{REPODATA}/{sha256}-{kind}.xml.gz"),
            sha256,
            size: gz.len() as u64,
            open_sha256: crate::fsutil::sha256_hex(plain),
            open_size: plain.len() as u64,
        }
    }

    /// The file's name in `repodata/`.
    pub fn file_name(&self) -> &str {
        self.href.rsplit('/').next().unwrap_or(&self.href)
    }
}

/// repomd.xml: `revision` and every timestamp the date of the publish
/// that made the metadata.
pub fn repomd(date: u64, data: &[Data]) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<repomd xmlns=\"http://linux.duke.edu/metadata/repo\" xmlns:rpm=\"http://linux.duke.edu/metadata/rpm\">\n  <revision>{date}</revision>\n"
    );
    for d in data {
        let _ = write!(
            s,
            "  <data type=\"{}\">\n    <checksum type=\"sha256\">{}</checksum>\n    <open-checksum type=\"sha256\">{}</open-checksum>\n    <location href=\"{}\"/>\n    <timestamp>{date}</timestamp>\n    <size>{}</size>\n    <open-size>{}</open-size>\n  </data>\n",
            xml_attr(&d.kind),
            d.sha256,
            d.open_sha256,
            xml_attr(&d.href),
            d.size,
            d.open_size
        );
    }
    s.push_str("</repomd>\n");
    s
}

/// The values of `attr` of each `<element … attr="…">` in XML that this
/// module wrote, unescaped.
pub fn attributes(xml: &str, element: &str, attr: &str) -> Vec<String> {
    let open = format!("<{element} ");
    let key = format!(" {attr}=\"");
    let mut out = Vec::new();
    for piece in xml.split(&open).skip(1) {
        let tag = format!(" {}", &piece[..piece.find('>').unwrap_or(piece.len())]);
        if let Some(i) = tag.find(&key) {
            let v = &tag[i + key.len()..];
            if let Some(end) = v.find('"') {
                out.push(xml_unescape(&v[..end]));
            }
        }
    }
    out
}

/// A metadata file as a repomd.xml this module wrote names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub kind: String,
    pub href: String,
    pub sha256: String,
}

/// What a repomd.xml this module wrote says: its revision and each
/// metadata file.
pub fn read_repomd(xml: &str) -> (Option<u64>, Vec<Named>) {
    let revision = xml
        .split_once("<revision>")
        .and_then(|(_, r)| r.split_once("</revision>"))
        .and_then(|(r, _)| r.trim().parse().ok());
    let mut files = Vec::new();
    for piece in xml.split("<data ").skip(1) {
        let piece = format!("<data {piece}");
        let kind = attributes(&piece, "data", "type").into_iter().next();
        let href = attributes(&piece, "location", "href").into_iter().next();
        let sha = piece
            .split_once("<checksum type=\"sha256\">")
            .and_then(|(_, r)| r.split_once('<'))
            .map(|(s, _)| s.trim().to_owned());
        if let (Some(kind), Some(href), Some(sha256)) = (kind, href, sha) {
            files.push(Named { kind, href, sha256 });
        }
    }
    (revision, files)
}

/// A package as a primary.xml this module wrote lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub href: String,
    pub sha256: String,
    pub size: u64,
}

/// Each package a primary.xml this module wrote lists.
pub fn read_primary(xml: &str) -> Vec<Listed> {
    let mut out = Vec::new();
    for piece in xml.split("<package type=\"rpm\">").skip(1) {
        let sha = piece
            .split_once("pkgid=\"YES\">")
            .and_then(|(_, r)| r.split_once('<'))
            .map(|(s, _)| s.trim().to_owned());
        let href = attributes(piece, "location", "href").into_iter().next();
        let size = attributes(piece, "size", "package")
            .into_iter()
            .next()
            .and_then(|s| s.parse().ok());
        if let (Some(sha256), Some(href), Some(size)) = (sha, href, size) {
            out.push(Listed { href, sha256, size });
        }
    }
    out
}

/// Whether `name` is a metadata file this module names (`<sha256>-<kind>.xml.gz`).
pub fn is_data_file(name: &str) -> bool {
    name.split_once('-').is_some_and(|(sha, rest)| {
        sha.len() == 64
            && sha.bytes().all(|c| c.is_ascii_hexdigit())
            && KINDS.iter().any(|k| rest == format!("{k}.xml.gz"))
    })
}

#[cfg(test)]
mod tests {
    use super::relations::{flag_str, split_evr};
    use super::*;
    use rpm::DependencyFlags;

    #[test]
    fn text_and_attributes_are_escaped_as_libxml2_escapes_them() {
        let s = "a<b>&\"c\"\td\ne\r";
        assert_eq!(xml_text(s), "a&lt;b&gt;&amp;\"c\"\td\ne&#13;");
        assert_eq!(xml_attr(s), "a&lt;b&gt;&amp;&quot;c&quot;&#9;d&#10;e&#13;");
        assert_eq!(xml_unescape(&xml_attr(s)), s);
        assert_eq!(xml_unescape(&xml_text(s)), s);
        assert_eq!(xml_unescape("&#x41;&#66;&bogus; &"), "AB&bogus; &");
        assert!(check_xml_chars("summary", "ok\tfine\n", "p").is_ok());
        let err = check_xml_chars("summary", "bell\u{7}", "p").unwrap_err();
        assert!(err.to_string().contains("0x07"), "{err}");
    }

    #[test]
    fn repomd_and_primary_read_back() {
        let data = vec![Data::new("primary", b"<x/>", b"gz & co")];
        let xml = repomd(1_700_000_000, &data);
        let (rev, files) = read_repomd(&xml);
        assert_eq!(rev, Some(1_700_000_000));
        assert_eq!(
            files,
            [Named {
                kind: "primary".to_owned(),
                href: data[0].href.clone(),
                sha256: data[0].sha256.clone()
            }]
        );
        assert!(is_data_file(data[0].file_name()));
        assert!(!is_data_file("repomd.xml"));
        assert!(!is_data_file(&format!("{}-comps.xml.gz", data[0].sha256)));
        let primary = "<package type=\"rpm\">\n  <checksum type=\"sha256\" pkgid=\"YES\">abc</checksum>\n  <size package=\"12\" installed=\"3\" archive=\"4\"/>\n  <location href=\"Packages/a&amp;b.rpm\"/>\n</package>\n";
        assert_eq!(
            read_primary(primary),
            [Listed {
                href: "Packages/a&b.rpm".to_owned(),
                sha256: "abc".to_owned(),
                size: 12
            }]
        );
    }

    #[test]
    fn dependency_versions_split_as_createrepo_c_splits_them() {
        let s = |v: &str| split_evr(v);
        let t = |e: &str, v: &str, r: Option<&str>| {
            Some(Some((e.to_owned(), v.to_owned(), r.map(str::to_owned))))
        };
        assert_eq!(s("3.4.16-1"), t("0", "3.4.16", Some("1")));
        assert_eq!(s("2:1.0"), t("2", "1.0", None));
        assert_eq!(s("1.0-2-3"), t("0", "1.0", Some("2-3")));
        assert_eq!(s(""), Some(None));
        assert_eq!(s("x:1.0"), None);
        assert_eq!(flag_str(DependencyFlags::GE.bits()), Some("GE"));
        assert_eq!(flag_str(DependencyFlags::SCRIPT_PRE.bits()), None);
        assert!(is_primary_file("/etc/profile.d/etcdctl.sh"));
        assert!(is_primary_file("/opt/etcd/bin/etcd"));
        assert!(!is_primary_file("/opt/etcd/bin"));
        assert!(!is_primary_file("/opt/etcd/ssl/ca.pem"));
    }
}
