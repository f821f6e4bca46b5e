//! The `.deb`: an `ar` archive of `debian-binary`, `control.tar.gz` and
//! `data.tar.gz`, written in-process so that generating needs no dpkg.
//!
//! Decisions:
//! - **No conffiles.** `etcd.conf` is generated, and a new package is built
//!   whenever `cluster.yaml` changes; the upgrade must install the new file.
//!   dpkg asks (or, non-interactively, keeps the old file) when a conffile was
//!   edited locally, which would leave a node silently running the old
//!   settings. The source of truth is `cluster.yaml`, so local edits are
//!   overwritten, as for every other file of the package.
//! - Everything in `data.tar` is `root:root`; `postinst` hands the private key
//!   to the service user, because the user may not exist when dpkg unpacks.
//! - Two files only the .deb carries, both for Debian's tooling, added through
//!   the shared normalisation ([`NodeTree::with_files`]):
//!   `/usr/share/lintian/overrides/<package>` (lintian reads overrides only from
//!   inside the package) and `/usr/share/doc/<package>/copyright` (etcd's
//!   licence, which Debian policy wants in every binary package).
//! - gzip for both members: the data stream goes through `archive::gzip`,
//!   the one place where payloads are compressed.

use std::io::{Read, Write};

use anyhow::{Context, Result, bail};

use super::archive::{self, Chunks, GzMembers, Shared, TarWriter};
use super::{Identity, PackageSpec, Packager, ReadEntry, ScriptInput, relations};
use crate::model::Blob;
use crate::render::Template;
use crate::stage::{Entry, Kind, NodeTree, Owner};

pub const PREINST: Template = Template {
    name: "deb/preinst",
    text: include_str!("../../templates/deb/preinst"),
};
pub const POSTINST: Template = Template {
    name: "deb/postinst",
    text: include_str!("../../templates/deb/postinst"),
};
pub const PRERM: Template = Template {
    name: "deb/prerm",
    text: include_str!("../../templates/deb/prerm"),
};
pub const POSTRM: Template = Template {
    name: "deb/postrm",
    text: include_str!("../../templates/deb/postrm"),
};
/// Kept with the rpmlint config, so that both override lists are read together.
pub const LINTIAN_OVERRIDES: Template = Template {
    name: "deb/lintian-overrides",
    text: include_str!("../../packaging/lintian-overrides"),
};

/// The .deb's rendered texts: its maintainer scripts and lintian overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scripts {
    pub preinst: String,
    pub postinst: String,
    pub prerm: String,
    pub postrm: String,
    pub lintian_overrides: String,
}

impl Scripts {
    pub fn render(input: &ScriptInput) -> Result<Self> {
        Ok(Scripts {
            preinst: input.render(&PREINST)?,
            postinst: input.render(&POSTINST)?,
            prerm: input.render(&PRERM)?,
            postrm: input.render(&POSTRM)?,
            lintian_overrides: input.render(&LINTIAN_OVERRIDES)?,
        })
    }

    /// Each text with its template's name.
    pub fn named(&self) -> [(&'static str, &str); 5] {
        [
            (PREINST.name, &self.preinst),
            (POSTINST.name, &self.postinst),
            (PRERM.name, &self.prerm),
            (POSTRM.name, &self.postrm),
            (LINTIAN_OVERRIDES.name, &self.lintian_overrides),
        ]
    }

    /// The maintainer scripts by their `control.tar.gz` member names, in
    /// the order they are written.
    fn maintainer_scripts(&self) -> [(&'static str, &str); 4] {
        [
            ("preinst", &self.preinst),
            ("postinst", &self.postinst),
            ("prerm", &self.prerm),
            ("postrm", &self.postrm),
        ]
    }
}

/// The `.deb`.
pub struct Deb;

impl Packager for Deb {
    fn extension(&self) -> &'static str {
        "deb"
    }

    /// `<package>_<version>-<release>_<arch>.deb`, dpkg's convention.
    fn file_name(&self, id: &Identity) -> String {
        format!(
            "{}_{}_{}.{}",
            id.name,
            id.full_version(),
            id.arch.as_str(),
            self.extension()
        )
    }

    fn templates(&self) -> &'static [Template] {
        &[PREINST, POSTINST, PRERM, POSTRM, LINTIAN_OVERRIDES]
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
const DISTRO_CONFLICTS: &[&str] = &["etcd-server"];

fn write(spec: &PackageSpec, w: &mut dyn Write) -> Result<()> {
    spec.check_header_values(super::Format::Deb)?;
    let tree = contents(spec)?;
    let control = control_tar(spec, &tree)?;
    let data = data_tar(&tree, spec.mtime, spec.shared)?;
    let mut ar = ar::Builder::new(w);
    let members: [(&str, u64, Box<dyn Read>); 3] = [
        ("debian-binary", 4, Box::new(&b"2.0\n"[..])),
        (
            "control.tar.gz",
            control.len() as u64,
            Box::new(&control[..]),
        ),
        ("data.tar.gz", data.len(), Box::new(data.reader())),
    ];
    for (name, len, bytes) in members {
        let mut h = ar::Header::new(name.as_bytes().to_vec(), len);
        h.set_mode(0o100644);
        h.set_mtime(spec.mtime);
        ar.append(&h, bytes)
            .with_context(|| format!("cannot write the .deb member {name}"))?;
    }
    ar.into_inner().context("cannot finish the .deb")?;
    Ok(())
}

/// The node's tree plus the .deb-only files described in the module docs.
fn contents(spec: &PackageSpec) -> Result<NodeTree> {
    let file = |path: String, text: String| Entry {
        path,
        kind: Kind::File(Blob::from(text)),
        mode: 0o644,
        owner: Owner::Root,
        config: false,
        owned: false,
    };
    let name = &spec.id.name;
    spec.tree.with_files(vec![
        file(
            format!("/usr/share/lintian/overrides/{name}"),
            spec.scripts.deb.lintian_overrides.clone(),
        ),
        file(format!("/usr/share/doc/{name}/copyright"), copyright(spec)),
    ])
}

/// A machine-readable copyright file: etcd's licence, which also covers what
/// etcdpack generates.
fn copyright(spec: &PackageSpec) -> String {
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: etcd\n\
         Upstream-Contact: https://github.com/etcd-io/etcd\n\
         Source: {homepage}\n\
         Comment: Built by etcdpack from the official etcd release binaries,\n \
         with configuration and certificates generated for this node.\n\
         \n\
         Files: *\n\
         Copyright: 2013-{year} The etcd Authors\n\
         License: {license}\n \
         On Debian systems, the full text of the Apache License, Version 2.0,\n \
         can be found in the file `/usr/share/common-licenses/Apache-2.0'.\n",
        homepage = spec.homepage,
        license = spec.license,
        year = time::OffsetDateTime::from_unix_timestamp(spec.mtime as i64)
            .map(|t| t.year())
            .unwrap_or(2013),
    )
}

/// Directories of the system that no Debian package lists.
const UNOWNED_DIRS: &[&str] = &["/opt"];

fn data_tar(tree: &NodeTree, mtime: u64, shared: Option<&Shared>) -> Result<Chunks> {
    let mut t = TarWriter::new(GzMembers::new(Chunks::new(), shared), mtime);
    t.dir(".", 0o755)?;
    // No package lists /opt on Debian (base-files makes it): a package that
    // listed it would be its only owner, and purging it would remove the
    // system's /opt. Its own directories below are listed as ever.
    t.tree(".", tree, UNOWNED_DIRS)?;
    t.finish()?
        .finish()
        .context("cannot finish the data.tar.gz stream")
}

fn control_tar(spec: &PackageSpec, tree: &NodeTree) -> Result<Vec<u8>> {
    let mut t = TarWriter::new(GzMembers::new(Vec::new(), None), spec.mtime);
    t.dir(".", 0o755)?;
    t.file("./control", 0o644, control(spec, tree)?.as_bytes())?;
    t.file("./md5sums", 0o644, md5sums(tree).as_bytes())?;
    for (member, text) in spec.scripts.deb.maintainer_scripts() {
        t.file(&format!("./{member}"), 0o755, text.as_bytes())?;
    }
    t.finish()?
        .finish()
        .context("cannot finish the control.tar.gz stream")
}

/// The `control` file. Field order follows dpkg-gencontrol's. Every value
/// is one line (a control character in one is an error, never written); the
/// Description's further lines are continuations, `.` for a blank one.
pub(super) fn control(spec: &PackageSpec, tree: &NodeTree) -> Result<String> {
    let mut c = String::new();
    let mut field = |k: &str, v: &str| -> Result<()> {
        super::one_line(super::Format::Deb, &format!("control field {k}"), v)?;
        if !v.is_empty() {
            c.push_str(&format!("{k}: {v}\n"));
        }
        Ok(())
    };
    field("Package", &spec.id.name)?;
    field("Version", &spec.id.full_version())?;
    field("Architecture", spec.id.arch.as_str())?;
    field("Maintainer", &spec.maintainer)?;
    field("Installed-Size", &installed_size(tree).to_string())?;
    // useradd comes from `passwd`, which is required but not Essential.
    let mut depends = Vec::new();
    if spec.service_user != "root" {
        depends.push("passwd");
    }
    // A sealed key is unsealed with age at install; encrypted backups
    // (backup.recipients) are written with it.
    if spec.unsealed_key.is_some() || spec.encrypted_backups {
        depends.push("age");
    }
    if !depends.is_empty() {
        field("Depends", &depends.join(", "))?;
    }
    let mut conflicts: Vec<String> = DISTRO_CONFLICTS.iter().map(|s| s.to_string()).collect();
    conflicts.extend(relations::conflicts());
    field("Conflicts", &conflicts.join(", "))?;
    field("Provides", &relations::provides(spec).join(", "))?;
    field("Section", "database")?;
    field("Priority", "optional")?;
    field("Homepage", &spec.homepage)?;
    field("Description", &spec.summary)?;
    for line in super::wrap(&spec.description, 78) {
        super::one_line(super::Format::Deb, "description", &line)?;
        let line = if line.is_empty() { "." } else { &line };
        c.push_str(&format!(" {line}\n"));
    }
    Ok(c)
}

/// Kibibytes, counted as dpkg-gencontrol does: each file rounded up, each
/// directory one.
fn installed_size(tree: &NodeTree) -> u64 {
    tree.entries
        .iter()
        .map(|e| match &e.kind {
            Kind::Dir => 1,
            Kind::File(d) => (d.len() as u64).div_ceil(1024),
        })
        .sum()
}

fn md5sums(tree: &NodeTree) -> String {
    tree.entries
        .iter()
        .filter_map(|e| match &e.kind {
            Kind::File(d) => Some(format!("{}  {}\n", d.md5(), e.path.trim_start_matches('/'))),
            Kind::Dir => None,
        })
        .collect()
}

/// The members of a .deb, by name.
fn members(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut a = ar::Archive::new(bytes);
    let mut out = Vec::new();
    while let Some(entry) = a.next_entry() {
        let mut entry = entry.context("not an ar archive")?;
        let name = String::from_utf8_lossy(entry.header().identifier()).into_owned();
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .with_context(|| format!("cannot read the .deb member {name}"))?;
        out.push((name, data));
    }
    Ok(out)
}

/// The first bytes of a .deb read from `r`, up to the end of its control
/// member: an ar archive of `debian-binary` and `control.tar.gz`, which
/// [`control_of`] reads, without reading the data member.
pub fn control_prefix(r: &mut impl Read) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    for _ in 0..2 {
        let at = if buf.is_empty() { 8 } else { buf.len() };
        let mut head = vec![0; at + 60 - buf.len()];
        r.read_exact(&mut head).context("the .deb ends early")?;
        buf.extend_from_slice(&head);
        let size: usize = std::str::from_utf8(&buf[buf.len() - 12..buf.len() - 2])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .filter(|n| *n <= 16 << 20)
            .context("the ar archive has a bad member size")?;
        let mut data = vec![0; size + size % 2];
        r.read_exact(&mut data).context("the .deb ends early")?;
        buf.extend_from_slice(&data);
    }
    Ok(buf)
}

/// The members of a .deb (an ar archive), by name, borrowed.
pub(crate) fn ar_members(bytes: &[u8]) -> Result<Vec<(String, &[u8])>> {
    let mut rest = bytes
        .strip_prefix(b"!<arch>\n")
        .context("not an ar archive")?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 60 || &rest[58..60] != b"`\n" {
            bail!("the ar archive has a bad member header");
        }
        let name = String::from_utf8_lossy(&rest[..16])
            .trim_end()
            .trim_end_matches('/')
            .to_owned();
        let size: usize = std::str::from_utf8(&rest[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .context("the ar archive has a bad member size")?;
        let data = rest
            .get(60..60 + size)
            .context("the ar archive ends inside a member")?;
        out.push((name, data));
        rest = rest.get(60 + size + size % 2..).unwrap_or_default();
    }
    Ok(out)
}

fn member<'a>(members: &'a [(String, Vec<u8>)], name: &str) -> Result<&'a [u8]> {
    members
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, d)| &d[..])
        .with_context(|| format!("the .deb has no {name}"))
}

/// Every entry `data.tar.gz` installs.
fn read(bytes: &[u8]) -> Result<Vec<ReadEntry>> {
    let members = members(bytes)?;
    if member(&members, "debian-binary")? != b"2.0\n" {
        bail!("not a 2.0 .deb");
    }
    let data = member(&members, "data.tar.gz")?;
    archive::read_tar_gz(data, |raw| {
        // `./opt/…`, `opt/…` and `./` all occur in the wild.
        let path = raw
            .trim_start_matches("./")
            .trim_start_matches('/')
            .trim_end_matches('/');
        (!path.is_empty() && path != ".").then(|| format!("/{path}"))
    })
    .context("data.tar.gz")
}

/// The `control` file of a .deb (for a repository's index).
pub fn control_of(bytes: &[u8]) -> Result<String> {
    let members = members(bytes)?;
    if member(&members, "debian-binary")? != b"2.0\n" {
        bail!("not a 2.0 .deb");
    }
    let gz = member(&members, "control.tar.gz")?;
    let mut a = tar::Archive::new(flate2::read::MultiGzDecoder::new(gz));
    for e in a.entries().context("control.tar.gz is not a tar.gz")? {
        let mut e = e.context("control.tar.gz is corrupt")?;
        let path = e.path()?.to_string_lossy().into_owned();
        if path.trim_start_matches("./") == "control" {
            let mut text = String::new();
            e.read_to_string(&mut text)
                .context("the control file is not UTF-8")?;
            return Ok(text);
        }
    }
    bail!("control.tar.gz has no control file")
}

/// Every member of the .deb, the gzip'd ones decompressed. Members in a
/// compression this crate does not read (xz, zstd, bzip2) are an error.
fn streams(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for (name, data) in members(bytes)? {
        if name.ends_with(".gz") {
            let mut plain = Vec::new();
            flate2::read::MultiGzDecoder::new(&data[..])
                .read_to_end(&mut plain)
                .with_context(|| format!("the .deb member {name} is not valid gzip"))?;
            out.push(plain);
        } else if name == "debian-binary" || name.ends_with(".tar") {
            out.push(data);
        } else {
            bail!(
                "the .deb member {name} cannot be read here (only gzip and uncompressed members are)"
            );
        }
    }
    Ok(out)
}
