//! **render**: the text files a node gets, from tera templates.
//!
//! Templates live in `templates/` and are embedded in the binary: the node
//! files' ones ([`TEMPLATES`]) here, each package script's in the module of
//! its format, which the caller registers with [`Templates::new`]. A user may
//! replace any of them from a directory (`gen --templates DIR`), under the
//! same relative name: `DIR/etcd.conf`, `DIR/deb/postinst`. Rendering is
//! strict: an undefined variable is an error naming the template. Every value
//! that depends on the node list is computed here, once, in Rust — templates
//! only lay values out — so no two files can disagree about the cluster.

use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;
use tera::{Context, Tera};
use time::OffsetDateTime;

use crate::config::{Cluster, MetricsListen, Node};
use crate::envfile;
pub use crate::model::Bootstrap;
use crate::model::Owner;
use crate::model::cis;
use crate::model::{ClusterState, Layout};

pub mod alerts;
pub mod monitoring;
mod units;
mod vars;
pub use units::MaintUnit;
#[cfg(test)]
use vars::time_span;
use vars::vars;

/// A built-in template: its name, which is also its path under `templates/`
/// and under a `gen --templates DIR`, and its embedded default text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    pub name: &'static str,
    pub text: &'static str,
}

/// A part of the maintenance script, `templates/maint/NAME`, which
/// `etcd-maint` includes (`{% include "maint/NAME" %}`): each command's
/// shell in a file of its own, rendered only inside the script, with its
/// escaping.
macro_rules! maint_part {
    ($name:literal) => {
        Template {
            name: concat!("maint/", $name),
            text: include_str!(concat!("../templates/maint/", $name)),
        }
    };
}

/// The templates of the files every node gets. The packages' scripts (the
/// bundle's installer, the maintainer scripts) are declared by their formats
/// and registered by the caller of [`Templates::new`].
pub const TEMPLATES: &[Template] = &[
    Template {
        name: "etcd.conf",
        text: include_str!("../templates/etcd.conf"),
    },
    Template {
        name: "etcd.service",
        text: include_str!("../templates/etcd.service"),
    },
    Template {
        name: "etcdctl.sh",
        text: include_str!("../templates/etcdctl.sh"),
    },
    Template {
        name: MAINT_SCRIPT,
        text: include_str!("../templates/etcd-maint"),
    },
    maint_part!("textfile"),
    maint_part!("backup"),
    maint_part!("restart"),
    maint_part!("defrag"),
    maint_part!("auth"),
    maint_part!("cis"),
    Template {
        name: "etcd-cert-check.service",
        text: include_str!("../templates/etcd-cert-check.service"),
    },
    Template {
        name: "etcd-cert-check.timer",
        text: include_str!("../templates/etcd-cert-check.timer"),
    },
    Template {
        name: "etcd-backup.service",
        text: include_str!("../templates/etcd-backup.service"),
    },
    Template {
        name: "etcd-backup.timer",
        text: include_str!("../templates/etcd-backup.timer"),
    },
    Template {
        name: "etcd-defrag.service",
        text: include_str!("../templates/etcd-defrag.service"),
    },
    Template {
        name: "etcd-defrag.timer",
        text: include_str!("../templates/etcd-defrag.timer"),
    },
    Template {
        name: "etcd-restart.service",
        text: include_str!("../templates/etcd-restart.service"),
    },
    Template {
        name: "etcd-restart.path",
        text: include_str!("../templates/etcd-restart.path"),
    },
    Template {
        name: "etcd-auth.service",
        text: include_str!("../templates/etcd-auth.service"),
    },
    Template {
        name: "etcd-auth.path",
        text: include_str!("../templates/etcd-auth.path"),
    },
];

/// The template of the maintenance script, `install_dir/bin/etcd-maint`.
pub const MAINT_SCRIPT: &str = "etcd-maint";

pub use crate::model::{CLIENT_PORT, PEER_PORT};

/// The loaded templates: the embedded ones, with user overrides applied.
pub struct Templates {
    tera: Tera,
}

impl Templates {
    /// The node files' templates ([`TEMPLATES`]) and `extra` (the packages'
    /// scripts), each replaced by the file of the same name under
    /// `override_dir` if there is one. A file there that names no template is
    /// refused, with the list of the names that would be taken.
    pub fn new(override_dir: Option<&Path>, extra: &[Template]) -> Result<Self> {
        let known: Vec<&Template> = TEMPLATES.iter().chain(extra).collect();
        let mut tera = Tera::default();
        for (i, t) in known.iter().enumerate() {
            if known[..i].iter().any(|k| k.name == t.name) {
                bail!("internal: two built-in templates named {}", t.name);
            }
        }
        // All at once: a script includes a fragment registered after it.
        tera.add_raw_templates(known.iter().map(|t| (t.name, t.text)))
            .context("the built-in templates do not parse")?;
        if let Some(dir) = override_dir {
            for (name, path) in override_files(dir)? {
                if !known.iter().any(|t| t.name == name) {
                    bail!(
                        "{}: not a template etcdpack knows\n  help: name overrides after a built-in template (relative to the directory): {}",
                        path.display(),
                        known.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
                    );
                }
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                tera.add_raw_template(&name, &text)
                    .with_context(|| format!("{}: template does not parse", path.display()))?;
            }
        }
        // Every value a script template expands, in every script a node
        // runs as root, goes through `shell_value` (see there).
        tera.set_escape_fn(shell_value);
        tera.autoescape_on(SHELL_SCRIPTS.iter().copied());
        Ok(Templates { tera })
    }

    fn render(&self, name: &str, ctx: &Context) -> Result<String> {
        self.tera
            .render(name, ctx)
            .with_context(|| format!("cannot render template {name}"))
    }
}

/// The templates of shell scripts a node runs as root: the bundle's
/// installer, the packages' maintainer scripts and the fragment they share,
/// `etcd-maint` and the etcdctl profile.
pub const SHELL_SCRIPTS: &[&str] = &[
    "install.sh",
    "upgrade-check",
    MAINT_SCRIPT,
    "etcdctl.sh",
    "deb/preinst",
    "deb/postinst",
    "deb/prerm",
    "deb/postrm",
    "rpm/pre",
    "rpm/post",
    "rpm/preun",
    "rpm/postun",
];

/// What a script template does with every value it expands, by default
/// (Tera's autoescape, for [`SHELL_SCRIPTS`]): a value holding a character
/// the shell reads as code or quoting (`$`, a backquote, a quote, a
/// backslash, `;`, `&`, `|`, `<`, `>`, parentheses) or any control
/// character is refused whole, and the script is not rendered. The config
/// is validated to far stricter grammars when it is loaded; this rule holds
/// wherever an expansion stands in a script (quoted or not), should a value
/// ever slip past validation.
fn shell_value(input: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let code = |c: char| "$`\"'\\;&|<>()".contains(c) || c.is_control();
    if let Some(c) = input.chars().find(|&c| code(c)) {
        return Err(std::io::Error::other(format!(
            "refusing to put {input:?} into a root script: it holds {c:?}, which the shell would read as code"
        )));
    }
    out.write_all(input.as_bytes())
}

/// The files under `dir` and its subdirectories, one level deep (`deb/`,
/// `rpm/`), each with its template name: the path relative to `dir`.
fn override_files(dir: &Path) -> Result<Vec<(String, std::path::PathBuf)>> {
    let read = |d: &Path| -> Result<Vec<std::fs::DirEntry>> {
        let mut v = std::fs::read_dir(d)
            .and_then(|rd| rd.collect::<std::io::Result<Vec<_>>>())
            .with_context(|| format!("cannot read the templates directory {}", d.display()))?;
        v.sort_by_key(|e| e.file_name());
        Ok(v)
    };
    let mut out = Vec::new();
    for entry in read(dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() {
            for sub in read(&entry.path())? {
                let sub_name = sub.file_name().to_string_lossy().into_owned();
                out.push((format!("{name}/{sub_name}"), sub.path()));
            }
        } else {
            out.push((name, entry.path()));
        }
    }
    Ok(out)
}

/// The rendered files of one node that the PKI does not shape (the
/// maintenance script names the node certificate's expiry: see
/// [`render_maint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub etcd_conf: String,
    pub etcd_service: String,
    pub etcdctl_profile: String,
    /// Every maintenance unit the node gets ([`MaintUnit::of`]), in order.
    pub maint_units: Vec<(MaintUnit, String)>,
}

impl Rendered {
    /// The text of `unit`, if the node gets it.
    pub fn maint_unit(&self, unit: MaintUnit) -> Option<&str> {
        self.maint_units
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, text)| text.as_str())
    }
}

/// `host` as it appears in a URL: IPv6 in brackets.
pub fn url_host(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

pub fn peer_url(node: &Node) -> String {
    format!("https://{}:{PEER_PORT}", url_host(node.ip))
}

pub fn client_url(node: &Node) -> String {
    format!("https://{}:{CLIENT_PORT}", url_host(node.ip))
}

/// Where `node`'s plain-http metrics listener binds (`metrics:`), which
/// serves `/metrics` and `/health`.
pub fn metrics_url(cluster: &Cluster, node: &Node) -> String {
    let host = match cluster.metrics.listen {
        MetricsListen::Localhost => "127.0.0.1".to_owned(),
        MetricsListen::Node => url_host(node.ip),
    };
    format!("http://{host}:{}", cluster.metrics.port)
}

/// Every node of `cluster` bootstrapping together: how the first members
/// come up (see [`crate::membership`]).
pub fn new_cluster(cluster: &Cluster) -> Bootstrap {
    Bootstrap {
        initial_cluster: initial_cluster(cluster),
        state: ClusterState::New,
    }
}

/// `name=peer-url,…` for ETCD_INITIAL_CLUSTER, in node order.
pub fn initial_cluster(cluster: &Cluster) -> String {
    cluster
        .nodes
        .iter()
        .map(|n| format!("{}={}", n.name, peer_url(n)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Render every text file `node` receives. The EnvironmentFile is checked by
/// systemd's rules before it is returned (this also guards user templates).
pub fn render_node(t: &Templates, cluster: &Cluster, node: &Node) -> Result<Rendered> {
    render_node_as(t, cluster, node, &new_cluster(cluster))
}

/// [`render_node`] for a node that comes up as `bootstrap` says.
pub fn render_node_as(
    t: &Templates,
    cluster: &Cluster,
    node: &Node,
    bootstrap: &Bootstrap,
) -> Result<Rendered> {
    let l = Layout::new(&cluster.paths.install_dir);
    let ctx = Context::from_serialize(&vars(cluster, node, &l, bootstrap))?;
    let etcd_conf = t.render("etcd.conf", &ctx)?;
    envfile::lint(&etcd_conf).context(
        "the rendered etcd.conf is not a clean systemd EnvironmentFile (check a --templates override)",
    )?;
    let maint_units = MaintUnit::of(cluster)
        .into_iter()
        .map(|u| Ok((u, t.render(u.name(), &ctx)?)))
        .collect::<Result<_>>()?;
    Ok(Rendered {
        etcd_conf,
        etcd_service: t.render("etcd.service", &ctx)?,
        etcdctl_profile: t.render("etcdctl.sh", &ctx)?,
        maint_units,
    })
}

/// The maintenance script of `node` (`install_dir/bin/etcd-maint`), whose
/// certificate is `cert_pem`, valid until `cert_not_after`: nodes have no
/// openssl, so the script carries the expiry it checks, as seconds since
/// the epoch and as a date, and the certificate's SHA-256, to know that the
/// certificate in place is that one. Rendered once the PKI has decided the
/// certificate.
pub fn render_maint(
    t: &Templates,
    cluster: &Cluster,
    node: &Node,
    cert_pem: &str,
    cert_not_after: OffsetDateTime,
) -> Result<String> {
    let l = Layout::new(&cluster.paths.install_dir);
    // A restore brings every member up anew, together: the whole node list.
    let bootstrap = new_cluster(cluster);
    let mut ctx = Context::from_serialize(&vars(cluster, node, &l, &bootstrap))?;
    ctx.insert(
        "cert_sha256",
        &crate::fsutil::sha256_hex(cert_pem.as_bytes()),
    );
    ctx.insert("cert_not_after", &cert_not_after.unix_timestamp());
    ctx.insert(
        "cert_not_after_date",
        &crate::model::rfc3339(cert_not_after),
    );
    cis_vars(&mut ctx);
    t.render(MAINT_SCRIPT, &ctx)
}

/// What `etcd-maint cis` needs of the CIS items' table.
fn cis_vars(ctx: &mut Context) {
    ctx.insert("cis_items", &cis::script_items());
    ctx.insert("data_dir_flag", cis::DATA_DIR);
    ctx.insert("kubernetes_ca", cis::KUBERNETES_CA);
}

/// One entry of the tree a script handles, as the script templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct ScriptEntry<'a> {
    pub path: &'a str,
    /// Octal, four digits: `0644`.
    pub mode: String,
    pub owner: Owner,
    pub dir: bool,
    pub owned: bool,
}

/// A script that handles exactly `entries` (a node tree's), from the template
/// `name`: one of the `extra` templates given to [`Templates::new`] (the
/// bundle's installer, a package's maintainer script, the .deb's lintian
/// overrides; each format declares its own).
pub fn render_script(
    t: &Templates,
    name: &str,
    cluster: &Cluster,
    node: &Node,
    entries: &[ScriptEntry],
    version: &str,
) -> Result<String> {
    let l = Layout::new(&cluster.paths.install_dir);
    // The scripts do not bootstrap anything: only etcd.conf reads the bootstrap.
    let bootstrap = new_cluster(cluster);
    let mut ctx = Context::from_serialize(&vars(cluster, node, &l, &bootstrap))?;
    ctx.insert("entries", &entries);
    ctx.insert("version", version);
    t.render(name, &ctx)
}

#[cfg(test)]
mod tests;
