//! Stage 7, **package**: one seam for every format. Each format serialises a
//! node's normalised contents ([`crate::stage::NodeTree`]) into a writer; no
//! packager opens paths or decides modes itself.
//!
//! The .deb and .rpm install exactly the staged tree (the .deb adds its
//! copyright and lintian overrides, see `deb`); their maintainer scripts
//! are templates, rendered per node like every other text. Node packages
//! conflict with each other (`relations`). Why etcd.conf is no conffile and
//! not `%config(noreplace)`: see `deb` and `rpm`.
//!
//! Speed: every node's packages carry the same ~38 MB of binaries, and
//! compressing them dominates a run. Compression of the tar-based streams
//! happens in one place (`archive::gzip`), so it can later be done once per
//! run: tar entries are block-aligned and gzip members may be concatenated,
//! so a compressed run of the shared entries can be reused between nodes'
//! `data.tar.gz` and bundles. The .rpm's payload is compressed inside the
//! `rpm` crate; sharing work there needs a payload writer of our own.

mod archive;
mod bundle;
mod deb;
mod relations;
mod rpm;

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;

pub use crate::model::{Format, Identity};
use sha2::{Digest, Sha256};

use crate::config::{Cluster, Node};
use crate::render::{self, Templates};
use crate::stage::{self, NodeTree};

/// Everything a format needs to serialise one node's package.
#[derive(Debug, Clone)]
pub struct PackageSpec<'a> {
    pub id: Identity,
    pub tree: &'a NodeTree,
    /// Rendered texts by template name: `install.sh` for the bundle,
    /// `deb/postinst`, `rpm/post`, … (see [`Format::template_names`]).
    pub scripts: BTreeMap<&'static str, String>,
    pub summary: String,
    pub description: String,
    pub maintainer: String,
    pub homepage: String,
    pub license: &'static str,
    /// The cluster's name: the node packages of one cluster share virtual
    /// package names derived from it (see `relations`).
    pub cluster: String,
    /// `service.user`: who owns [`crate::stage::Owner::Service`] entries.
    pub service_user: String,
    /// Every timestamp in the artifact (seconds since the epoch).
    pub mtime: u64,
}

impl PackageSpec<'_> {
    /// Refuse a control character in any value a package header carries. A
    /// .deb control file and an .rpm header keep these on one line; a line
    /// break would start a field of its own (`Essential: yes`). The config
    /// is validated already; this is the writers' own guard, so that no
    /// value reaches a header unchecked. The description may span lines.
    fn check_header_values(&self, format: Format) -> Result<()> {
        let release = self.id.release.to_string();
        for (field, value) in [
            ("name", self.id.name.as_str()),
            ("version", &self.id.version),
            ("release", &release),
            ("summary", &self.summary),
            ("maintainer", &self.maintainer),
            ("homepage", &self.homepage),
            ("license", self.license),
            ("cluster name", &self.cluster),
            ("service user", &self.service_user),
        ] {
            one_line(format, field, value)?;
        }
        for line in self.description.split('\n') {
            one_line(format, "description", line)?;
        }
        Ok(())
    }
}

/// Refuse `value` for a one-line header `field` if it holds a control
/// character (line breaks above all).
fn one_line(format: Format, field: &str, value: &str) -> Result<()> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        anyhow::bail!(
            "cannot write the .{format}: its {field} {value:?} contains the control character {c:?}, which would break the package header\n  help: give the value on one line of printable characters (it comes from cluster.yaml: cluster.name, nodes, packages)"
        );
    }
    Ok(())
}

impl Format {
    /// The artifact's file name, in each ecosystem's convention:
    /// `etcd-k8s-etcd-1_3.4.16-1_amd64.tar.gz`, `…_3.4.16-1_amd64.deb`,
    /// `etcd-k8s-etcd-1-3.4.16-1.x86_64.rpm`.
    pub fn file_name(self, id: &Identity) -> String {
        match self {
            Format::Tar => format!(
                "{}_{}_{}.tar.gz",
                id.name,
                id.full_version(),
                id.arch.as_str()
            ),
            Format::Deb => format!("{}_{}_{}.deb", id.name, id.full_version(), id.arch.as_str()),
            Format::Rpm => format!("{}-{}.{}.rpm", id.name, id.full_version(), id.arch.rpm()),
        }
    }

    /// Serialise `spec` in this format. Formats never open paths.
    pub fn write(self, spec: &PackageSpec, w: &mut dyn Write) -> Result<()> {
        match self {
            Format::Tar => bundle::write(spec, w),
            Format::Deb => deb::write(spec, w),
            Format::Rpm => rpm::write(spec, w),
        }
    }

    /// Whether `name` is an artifact file name of this format.
    pub fn matches_file_name(self, name: &str) -> bool {
        match self {
            Format::Tar => name.ends_with(".tar.gz"),
            Format::Deb => name.ends_with(".deb"),
            Format::Rpm => name.ends_with(".rpm"),
        }
    }

    /// The rendered texts this format embeds (maintainer scripts; the .deb's
    /// lintian overrides), by template name. The caller renders them into
    /// [`PackageSpec::scripts`] under these names.
    pub fn template_names(self) -> &'static [&'static str] {
        match self {
            Format::Tar => &["install.sh"],
            Format::Deb => deb::TEMPLATES,
            Format::Rpm => rpm::SCRIPTS,
        }
    }
}

/// What every format needs to package `node`: its tree, identity, metadata,
/// and the scripts of each format in `packages.formats`, rendered for `tree`.
pub fn spec<'a>(
    templates: &Templates,
    cluster: &Cluster,
    node: &Node,
    tree: &'a NodeTree,
    id: Identity,
    mtime: u64,
) -> Result<PackageSpec<'a>> {
    let mut scripts = BTreeMap::new();
    for format in &cluster.packages.formats {
        for &name in format.template_names() {
            let text = render::render_script(
                templates,
                name,
                cluster,
                node,
                &tree.script_entries(),
                &id.full_version(),
            )?;
            scripts.insert(name, text);
        }
    }
    Ok(PackageSpec {
        id,
        tree,
        scripts,
        summary: format!("etcd member {} of cluster {}", node.name, cluster.name),
        description: format!(
            "etcd {} with TLS certificates and configuration for member {} ({}) of the {}-member cluster {}, and its systemd unit.",
            cluster.etcd.version,
            node.name,
            node.ip,
            cluster.nodes.len(),
            cluster.name
        ),
        maintainer: cluster.packages.maintainer.clone(),
        homepage: cluster.packages.homepage.clone(),
        // etcd's licence; etcdpack's generated files are under the same.
        license: "Apache-2.0",
        cluster: cluster.name.clone(),
        service_user: cluster.service.user.clone(),
        mtime,
    })
}

/// A digest of what a node's package holds besides its files: metadata and
/// every format's maintainer scripts (rendered at release 0, since the
/// release follows from this digest). The plan compares it with the
/// previous run's, so that a changed script or maintainer raises the
/// release as a changed file does.
pub fn inputs_digest(
    templates: &Templates,
    cluster: &Cluster,
    node: &Node,
    name: &str,
) -> Result<String> {
    let shape = stage::shape(cluster, node)?;
    let id = Identity {
        name: name.to_owned(),
        version: cluster.etcd.version.clone(),
        release: 0,
        arch: cluster.etcd.arch,
    };
    let mut all = cluster.clone();
    all.packages.formats = Format::ALL.to_vec();
    let s = spec(templates, &all, node, &shape, id, 0)?;
    let mut h = Sha256::new();
    for v in [
        s.summary.as_str(),
        &s.description,
        &s.maintainer,
        &s.homepage,
        s.license,
        &s.cluster,
        &s.service_user,
    ] {
        h.update(v.as_bytes());
        h.update([0]);
    }
    for (name, text) in &s.scripts {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Greedy word wrap at `width` columns; paragraphs (split on blank lines)
/// are separated by an empty string. Package descriptions are read in
/// terminals, and both lintian and rpmlint hold them to 80 columns.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    for (i, para) in text.split("\n\n").enumerate() {
        if i > 0 {
            out.push(String::new());
        }
        let mut line = String::new();
        for word in para.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                out.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if !line.is_empty() {
            out.push(line);
        }
    }
    out
}

/// One entry read back from an artifact (for `verify` and tests).
#[derive(Debug, Clone)]
pub struct ReadEntry {
    /// Absolute path on the node.
    pub path: String,
    pub mode: u32,
    pub dir: bool,
    pub data: Vec<u8>,
}

/// Read back the node files an artifact installs.
pub fn read_entries(format: Format, bytes: &[u8]) -> Result<Vec<ReadEntry>> {
    match format {
        Format::Tar => bundle::read(bytes),
        Format::Deb => deb::read(bytes),
        Format::Rpm => rpm::read(bytes),
    }
}

/// Every byte an artifact carries, decompressed, as a few streams: for
/// proving that something (the CA key) is nowhere in it. Unlike
/// [`read_entries`] this is not limited to what installs: a bundle's files
/// beside `root/`, a .deb's control member, an .rpm's header count too. A
/// member that cannot be decompressed is an error, never skipped.
pub fn read_streams(format: Format, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    match format {
        Format::Tar => bundle::streams(bytes),
        Format::Deb => deb::streams(bytes),
        Format::Rpm => rpm::streams(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_lines_short_and_paragraphs_apart() {
        let w = wrap(&format!("{}\n\nsecond", "word ".repeat(40)), 20);
        assert!(w.iter().all(|l| l.len() <= 20), "{w:?}");
        assert_eq!(w[w.len() - 2], "");
        assert_eq!(w[w.len() - 1], "second");
        assert_eq!(wrap("a b", 20), ["a b"]);
    }

    use std::sync::Arc;

    use crate::model::{Arch, Owner};
    use crate::stage::{Entry, Kind};

    fn tree() -> NodeTree {
        let file = Entry {
            path: "/opt/etcd/cfg/etcd.conf".into(),
            kind: Kind::File(Arc::from(&b"ETCD_NAME=etcd-1\n"[..])),
            mode: 0o644,
            owner: Owner::Root,
            config: true,
            owned: false,
        };
        NodeTree::new("etcd-1", "/opt/etcd", vec![file]).unwrap()
    }

    fn spec(tree: &NodeTree) -> PackageSpec<'_> {
        let mut scripts = BTreeMap::new();
        for f in [Format::Deb, Format::Rpm] {
            for name in f.template_names() {
                scripts.insert(*name, "#!/bin/sh\nexit 0\n".to_owned());
            }
        }
        PackageSpec {
            id: Identity {
                name: "etcd-k8s-etcd-1".into(),
                version: "3.4.16".into(),
                release: 1,
                arch: Arch::Amd64,
            },
            tree,
            scripts,
            summary: "etcd member etcd-1 of cluster k8s".into(),
            description: "First paragraph, long enough to wrap.\n\nSecond paragraph.".into(),
            maintainer: "Platform Team <platform@example.org>".into(),
            homepage: "https://etcd.io".into(),
            license: "Apache-2.0",
            cluster: "k8s".into(),
            service_user: "etcd".into(),
            mtime: 1_700_000_000,
        }
    }

    /// Every one-line value of a spec, by name.
    type Field = for<'a, 'b> fn(&'a mut PackageSpec<'b>) -> &'a mut String;
    const ONE_LINE: &[(&str, Field)] = &[
        ("name", |s| &mut s.id.name),
        ("version", |s| &mut s.id.version),
        ("summary", |s| &mut s.summary),
        ("maintainer", |s| &mut s.maintainer),
        ("homepage", |s| &mut s.homepage),
        ("cluster", |s| &mut s.cluster),
        ("service user", |s| &mut s.service_user),
    ];

    #[test]
    fn deb_and_rpm_writers_refuse_control_characters_in_one_line_values() {
        let tree = tree();
        for format in [Format::Deb, Format::Rpm] {
            let mut out = Vec::new();
            format.write(&spec(&tree), &mut out).unwrap();
            for (what, field) in ONE_LINE {
                for injected in ["\nEssential: yes", "\rPre-Depends: evil", "\u{1b}[2J", "\0"] {
                    let mut s = spec(&tree);
                    field(&mut s).push_str(injected);
                    let mut out = Vec::new();
                    let err = format
                        .write(&s, &mut out)
                        .expect_err(&format!("{format}: {what} with {injected:?}"));
                    let text = format!("{err:#}");
                    assert!(
                        text.contains("control character") && text.contains("help:"),
                        "{format}: {what}: {text}"
                    );
                    let written = String::from_utf8_lossy(&out);
                    assert!(
                        !written.contains("Essential: yes") && !written.contains("Pre-Depends"),
                        "{format}: {what}: nothing injected may be written"
                    );
                }
            }
            // The description may span lines; other control characters are refused.
            let mut s = spec(&tree);
            s.description = "one\u{7}bell".into();
            assert!(format.write(&s, &mut Vec::new()).is_err(), "{format}");
        }
    }

    #[test]
    fn the_deb_description_keeps_its_continuation_format() {
        let tree = tree();
        let control = deb::control(&spec(&tree), &tree).unwrap();
        let desc = &control[control.find("Description: ").unwrap()..];
        assert_eq!(
            desc,
            "Description: etcd member etcd-1 of cluster k8s\n \
             First paragraph, long enough to wrap.\n .\n Second paragraph.\n"
        );
        // Every line is a field or a continuation: nothing starts a field of its own.
        for line in control.lines() {
            assert!(line.starts_with(' ') || line.contains(": "), "{line:?}");
        }
    }

    #[test]
    fn file_names_follow_each_ecosystem() {
        let id = Identity {
            name: "etcd-k8s-etcd-1".into(),
            version: "3.4.16".into(),
            release: 2,
            arch: Arch::Arm64,
        };
        let names: Vec<_> = Format::ALL.iter().map(|f| f.file_name(&id)).collect();
        assert_eq!(
            names,
            [
                "etcd-k8s-etcd-1_3.4.16-2_arm64.tar.gz",
                "etcd-k8s-etcd-1_3.4.16-2_arm64.deb",
                "etcd-k8s-etcd-1-3.4.16-2.aarch64.rpm",
            ]
        );
        for (f, n) in Format::ALL.iter().zip(&names) {
            assert!(f.matches_file_name(n));
            assert_eq!(
                Format::ALL
                    .iter()
                    .filter(|g| g.matches_file_name(n))
                    .count(),
                1
            );
        }
    }
}
