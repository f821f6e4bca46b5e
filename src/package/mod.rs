//! **package**: one seam for every format. Each format serialises a
//! node's normalised contents ([`crate::stage::NodeTree`]) into a writer; no
//! packager opens paths or decides modes itself.
//!
//! One module per format ([`bundle`], [`deb`], [`rpm`]) holds every fact
//! about it: its file names, its scripts' templates, the typed scripts it
//! embeds, its writer and its reader, behind the [`Packager`] trait. Nothing
//! else matches on a [`Format`]: [`Format::packager`] is the one `match`,
//! and [`spec`] renders every format's scripts into
//! [`PackageSpec::scripts`].
//!
//! The .deb and .rpm install exactly the staged tree (the .deb adds its
//! copyright and lintian overrides, see `deb`); their maintainer scripts
//! are templates, rendered per node like every other text. Node packages
//! conflict with each other (`relations`). Why etcd.conf is no conffile and
//! not `%config(noreplace)`: see `deb` and `rpm`.
//!
//! Speed: every node's packages carry the same ~38 MB of binaries, and
//! compressing them dominates a run. In the tar-based streams (bundles,
//! `data.tar.gz`) each large file's data is a gzip member of its own,
//! compressed once per run ([`Shared`], see `archive`). The .rpm's payload
//! is still compressed inside the `rpm` crate, once per package; sharing
//! work there needs a payload writer of our own.

mod archive;
mod cpio;
pub use archive::{SHARED_MIN, Shared, gzip};
pub mod bundle;
pub mod deb;
mod relations;
pub mod rpm;
pub mod scan;
#[cfg(test)]
mod script_tests;
mod walk;

use std::io::Write;

use anyhow::Result;
use sha2::{Digest, Sha256};

use crate::config::{Cluster, Node};
pub use crate::model::{Format, Identity};
use crate::render::{self, ScriptEntry, Template, Templates};
use crate::stage::{self, NodeTree};

/// One artifact format, and everything etcdpack knows about it: its file
/// names, the templates of its scripts, its writer and its reader. Each
/// format's module implements it on a unit struct ([`bundle::Bundle`],
/// [`deb::Deb`], [`rpm::Rpm`]) and holds the typed scripts it embeds
/// (`Scripts`, rendered into [`PackageSpec::scripts`]);
/// [`Format::packager`] is the one place a [`Format`] becomes its module.
pub trait Packager: Sync {
    /// The artifact's file name extension, without the leading dot.
    fn extension(&self) -> &'static str;

    /// The artifact's file name, in the ecosystem's convention.
    fn file_name(&self, id: &Identity) -> String;

    /// Whether `name` is an artifact file name of this format.
    fn matches_file_name(&self, name: &str) -> bool {
        name.strip_suffix(self.extension())
            .is_some_and(|stem| stem.ends_with('.'))
    }

    /// The templates of the scripts this format embeds (maintainer scripts;
    /// the .deb's lintian overrides), with their built-in texts.
    fn templates(&self) -> &'static [Template];

    /// Serialise `spec` in this format. Formats never open paths.
    fn write(&self, spec: &PackageSpec, w: &mut dyn Write) -> Result<()>;

    /// The node files an artifact installs.
    fn read(&self, bytes: &[u8]) -> Result<Vec<ReadEntry>>;

    /// Every byte an artifact carries, decompressed, as a few streams (see
    /// [`read_streams`]).
    fn streams(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>>;
}

impl Format {
    /// This format's implementation: the one `match` over formats.
    pub fn packager(self) -> &'static dyn Packager {
        match self {
            Format::Tar => &bundle::Bundle,
            Format::Deb => &deb::Deb,
            Format::Rpm => &rpm::Rpm,
        }
    }

    /// The artifact's file name, in each ecosystem's convention:
    /// `etcd-k8s-etcd-1_3.4.16-1_amd64.tar.gz`, `…_3.4.16-1_amd64.deb`,
    /// `etcd-k8s-etcd-1-3.4.16-1.x86_64.rpm`.
    pub fn file_name(self, id: &Identity) -> String {
        self.packager().file_name(id)
    }

    /// Whether `name` is an artifact file name of this format.
    pub fn matches_file_name(self, name: &str) -> bool {
        self.packager().matches_file_name(name)
    }

    /// The format whose artifact file name `name` is, if any.
    pub fn of_file_name(name: &str) -> Option<Format> {
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.matches_file_name(name))
    }

    /// Serialise `spec` in this format. Formats never open paths.
    pub fn write(self, spec: &PackageSpec, w: &mut dyn Write) -> Result<()> {
        self.packager().write(spec, w)
    }

    /// The templates of the scripts this format embeds.
    pub fn templates(self) -> &'static [Template] {
        self.packager().templates()
    }
}

/// The check an upgrade to 3.6 must pass before anything is unpacked, which
/// the .deb's preinst, the .rpm's pre and the bundle's install.sh include.
pub const UPGRADE_CHECK: Template = Template {
    name: "upgrade-check",
    text: include_str!("../../templates/upgrade-check"),
};

/// The fragment `templates/fragments/NAME`, by its template name.
macro_rules! fragment {
    ($name:literal) => {
        Template {
            name: concat!("fragments/", $name),
            text: include_str!(concat!("../../templates/fragments/", $name)),
        }
    };
}

/// The shell the scripts share, each piece written once: fragments that
/// the scripts include (`{%- include "fragments/…" %}`, on a line of its
/// own, after the line the fragment's lines follow). A fragment renders
/// from the newline after its header comment, which names the scripts that
/// include it and what they set for it (`format`: `deb`, `rpm` or `tar`;
/// `who`: what its messages start with), and ends without a newline. It is
/// only ever rendered inside a script, with that script's escaping.
pub const FRAGMENTS: &[Template] = &[
    UPGRADE_CHECK,
    fragment!("host-key-check"),
    fragment!("service-user"),
    fragment!("data-dir-check"),
    fragment!("unseal-key"),
    fragment!("enable-units"),
    fragment!("rolling-restart"),
    fragment!("auth-request"),
];

/// Every format's script templates, in [`Format::ALL`] order, and the
/// fragments they include ([`FRAGMENTS`]): what [`Templates::new`] is given
/// besides the node files' own.
pub fn templates() -> Vec<Template> {
    Format::ALL
        .iter()
        .flat_map(|f| f.templates())
        .chain(FRAGMENTS)
        .copied()
        .collect()
}

/// What every package script is rendered from: one node, the entries of its
/// tree, and its package's full version.
pub struct ScriptInput<'a> {
    templates: &'a Templates,
    cluster: &'a Cluster,
    node: &'a Node,
    entries: Vec<ScriptEntry<'a>>,
    version: String,
}

impl<'a> ScriptInput<'a> {
    pub fn new(
        templates: &'a Templates,
        cluster: &'a Cluster,
        node: &'a Node,
        tree: &'a NodeTree,
        version: String,
    ) -> Self {
        ScriptInput {
            templates,
            cluster,
            node,
            entries: tree.script_entries(),
            version,
        }
    }

    /// The text of `template` for this node.
    pub fn render(&self, template: &Template) -> Result<String> {
        render::render_script(
            self.templates,
            template.name,
            self.cluster,
            self.node,
            &self.entries,
            &self.version,
        )
    }
}

/// The rendered scripts of every format, typed: a writer takes the fields
/// it embeds, so none can be missing at run time. All are rendered whatever
/// `packages.formats` asks for (a few small templates), so a broken
/// override of any of them is found on every run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scripts {
    pub bundle: bundle::Scripts,
    pub deb: deb::Scripts,
    pub rpm: rpm::Scripts,
}

impl Scripts {
    pub fn render(input: &ScriptInput) -> Result<Self> {
        Ok(Scripts {
            bundle: bundle::Scripts::render(input)?,
            deb: deb::Scripts::render(input)?,
            rpm: rpm::Scripts::render(input)?,
        })
    }

    /// Every text with its template's name, sorted by name: the order
    /// [`inputs_digest`] reads them in.
    pub fn by_name(&self) -> Vec<(&'static str, &str)> {
        let mut all: Vec<_> = (self.bundle.named().into_iter())
            .chain(self.deb.named())
            .chain(self.rpm.named())
            .collect();
        all.sort_by_key(|(name, _)| *name);
        all
    }
}

/// Everything a format needs to serialise one node's package.
#[derive(Debug, Clone)]
pub struct PackageSpec<'a> {
    pub id: Identity,
    pub tree: &'a NodeTree,
    /// Every format's scripts, rendered for `tree`.
    pub scripts: Scripts,
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
    /// With `packages.keys: sealed`, the file install unseals the key into:
    /// installing needs `age`, and the .rpm declares the file (%ghost) so
    /// that an upgrade from a cleartext package, whose file it was, does not
    /// erase it after %post has written it.
    pub unsealed_key: Option<String>,
    /// With `backup.recipients`, `etcd-maint backup` encrypts with age: the
    /// package needs it at run time.
    pub encrypted_backups: bool,
    /// Every timestamp in the artifact (seconds since the epoch).
    pub mtime: u64,
    /// The run's cache of compressed large files (see `archive`); without
    /// one they are compressed anew, to the same bytes.
    pub shared: Option<&'a Shared>,
}

/// What every format needs to package `node`: its tree, identity, metadata,
/// and every format's scripts, rendered for `tree`.
pub fn spec<'a>(
    templates: &Templates,
    cluster: &Cluster,
    node: &Node,
    tree: &'a NodeTree,
    id: Identity,
    mtime: u64,
) -> Result<PackageSpec<'a>> {
    let input = ScriptInput::new(templates, cluster, node, tree, id.full_version());
    let scripts = Scripts::render(&input)?;
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
        unsealed_key: (cluster.packages.keys == crate::config::Keys::Sealed)
            .then(|| crate::model::Layout::new(&cluster.paths.install_dir).key_file),
        encrypted_backups: !cluster.backup.recipients.is_empty(),
        mtime,
        shared: None,
    })
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
    let s = spec(templates, cluster, node, &shape, id, 0)?;
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
    for (name, text) in s.scripts.by_name() {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    // The .rpm of a sealed key lists the unsealed key file (a %ghost); only
    // then hashed, so that packages without one keep their digests.
    if let Some(key) = &s.unsealed_key {
        h.update(b"unsealed key\0");
        h.update(key.as_bytes());
        h.update([0]);
    }
    // Likewise the dependency on age that encrypted backups add.
    if s.encrypted_backups {
        h.update(b"encrypted backups\0");
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
    format.packager().read(bytes)
}

/// Every byte an artifact carries, decompressed, as a few streams: for
/// proving that something (the CA key) is nowhere in it. Unlike
/// [`read_entries`] this is not limited to what installs: a bundle's files
/// beside `root/`, a .deb's control member, an .rpm's header count too. A
/// member that cannot be decompressed is an error, never skipped.
pub fn read_streams(format: Format, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    format.packager().streams(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_lines_short_and_paragraphs_apart() {
        let w = wrap(&format!("{}\n\nsecond", "word ".repeat(40)), 20);
        assert!(w.iter().all(|l| l.len() <= 20), "{w:?}");
        assert_eq!(w[w.len() - 2], "");
        assert_eq!(w[w.len() - 1], "second");
        assert_eq!(wrap("a b", 20), ["a b"]);
    }

    use crate::model::{Arch, Blob, Owner};
    use crate::stage::{Entry, Kind};

    pub(crate) fn tree() -> NodeTree {
        let file = Entry {
            path: "/opt/etcd/cfg/etcd.conf".into(),
            kind: Kind::File(Blob::from(&b"ETCD_NAME=etcd-1\n"[..])),
            mode: 0o644,
            owner: Owner::Root,
            config: true,
            owned: false,
        };
        NodeTree::new("etcd-1", "/opt/etcd", vec![file]).unwrap()
    }

    pub(crate) fn spec(tree: &NodeTree) -> PackageSpec<'_> {
        let script = || "#!/bin/sh\nexit 0\n".to_owned();
        let scripts = Scripts {
            bundle: bundle::Scripts {
                install_sh: script(),
            },
            deb: deb::Scripts {
                preinst: script(),
                postinst: script(),
                prerm: script(),
                postrm: script(),
                lintian_overrides: script(),
            },
            rpm: rpm::Scripts {
                pre: script(),
                post: script(),
                preun: script(),
                postun: script(),
            },
        };
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
            unsealed_key: None,
            encrypted_backups: false,
            mtime: 1_700_000_000,
            shared: None,
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

    /// `etcd-maint backup` encrypts with age once `backup.recipients` is set.
    #[test]
    fn encrypted_backups_make_both_packages_depend_on_age() {
        let t = tree();
        let mut s = spec(&t);
        s.encrypted_backups = true;
        let control = deb::control(&s, &t).unwrap();
        assert!(control.contains("\nDepends: passwd, age\n"), "{control}");
        let mut bytes = Vec::new();
        Format::Rpm.write(&s, &mut bytes).unwrap();
        let p = ::rpm::Package::parse(&mut &bytes[..]).unwrap();
        let requires = p.metadata.get_requires().unwrap();
        assert!(requires.iter().any(|d| d.name == "age"), "{requires:?}");
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
