//! **load**: `cluster.yaml` → validated [`Cluster`].
//!
//! Parsing ([`raw`]) and resolution (`validate`) are separate: the raw mirror
//! says what the user wrote, with positions; the `Cluster` says what will be
//! built, with every default applied and no `Option` where a value is required.

pub mod access;
mod choices;
mod error;
pub mod raw;
pub mod schema;
pub mod units;
mod validate;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use access::{Access, Policy};
pub use error::{ConfigError, Position, Problem, Rule};

pub use crate::model::Arch;
use crate::model::Format;
pub use crate::release::Etcd;

/// Values given on the command line that take precedence over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub etcd_sha256: Option<String>,
    pub formats: Option<Vec<Format>>,
}

/// A validated cluster description: what will be built.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    /// The config file this came from (relative paths in it resolve against its directory).
    pub source: PathBuf,
    pub name: String,
    pub token: String,
    pub etcd: Etcd,
    pub nodes: Vec<Node>,
    pub tuning: Tuning,
    pub pki: Pki,
    pub clients: Vec<Client>,
    pub paths: Paths,
    pub service: Service,
    pub packages: Packages,
    pub publish: Publish,
    pub backup: Backup,
    pub defrag: Defrag,
    pub auth: Auth,
    pub metrics: Metrics,
    /// Things that are allowed but probably not meant (an even node count).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub name: String,
    pub ip: IpAddr,
    /// Extra subject alternative names: IPs and DNS names.
    pub sans: Vec<San>,
    /// The machine's SSH host key, which a sealed key is encrypted to.
    pub ssh_host_key: Option<HostKey>,
}

/// An SSH host public key, as `TYPE BASE64` (no comment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct HostKey {
    public: String,
}

impl HostKey {
    /// The key of a `.pub` line (`TYPE BASE64 [COMMENT]`), not yet checked.
    pub fn new(line: &str) -> Self {
        let mut parts = line.split_whitespace();
        let public = match (parts.next(), parts.next()) {
            (Some(t), Some(b)) => format!("{t} {b}"),
            _ => line.trim().to_owned(),
        };
        HostKey { public }
    }

    /// The key of a `.pub` line (`TYPE BASE64 [COMMENT]`), checked to the
    /// letter and kept in its canonical encoding: the base64 must be
    /// exactly the encoding of an SSH public key blob of `TYPE`
    /// (RFC 4253 §6.6, RFC 8709 §4), with nothing after the key in it.
    /// The comment is dropped. Why not, if it is not.
    pub fn parse(line: &str) -> Result<Self, String> {
        use base64::Engine;
        let mut parts = line.split_ascii_whitespace();
        let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
            return Err("is not an SSH public key line (`TYPE BASE64 [COMMENT]`)".to_owned());
        };
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err("holds a control character".to_owned());
        }
        let blob = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("has a key that is not base64 ({e})"))?;
        let mut rest = &blob[..];
        let mut field = || -> Result<Vec<u8>, String> {
            let len = rest
                .get(..4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or("has a key blob that ends early")?;
            let v = rest
                .get(4..4 + len)
                .ok_or("has a key blob that ends early")?
                .to_vec();
            rest = &rest[4 + len..];
            Ok(v)
        };
        if field()? != kind.as_bytes() {
            return Err(format!(
                "has a key blob that is not of the type {kind:?} it names"
            ));
        }
        match kind {
            "ssh-ed25519" => {
                if field()?.len() != 32 {
                    return Err("has an ed25519 key that is not 32 bytes".to_owned());
                }
            }
            "ssh-rsa" => {
                field()?;
                field()?;
            }
            // Other kinds are named by the check that follows (age's).
            _ => return Ok(HostKey::new(line)),
        }
        if !rest.is_empty() {
            return Err(format!(
                "has {} bytes after the key in its blob",
                rest.len()
            ));
        }
        let canonical = base64::engine::general_purpose::STANDARD.encode(&blob);
        Ok(HostKey {
            public: format!("{kind} {canonical}"),
        })
    }

    /// `TYPE BASE64`, as age takes a recipient.
    pub fn public(&self) -> &str {
        &self.public
    }

    /// `ssh-ed25519` or `ssh-rsa`.
    pub fn kind(&self) -> &str {
        self.public.split(' ').next().unwrap_or_default()
    }

    /// The host's private key on the machine, which unseals what is sealed
    /// to this key (where sshd keeps it).
    pub fn identity_file(&self) -> String {
        let short = self.kind().strip_prefix("ssh-").unwrap_or(self.kind());
        format!("/etc/ssh/ssh_host_{short}_key")
    }

    /// `SHA256:…`, as `ssh-keygen -l` and sshd print it.
    pub fn fingerprint(&self) -> String {
        use base64::Engine;
        use sha2::Digest;
        let blob = self.public.split(' ').nth(1).unwrap_or_default();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(blob)
            .unwrap_or_default();
        let digest = sha2::Sha256::digest(&raw);
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
        )
    }
}

impl From<HostKey> for String {
    fn from(k: HostKey) -> String {
        k.public
    }
}

/// How a node's package holds the member's private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Keys {
    /// The key itself, 0600, owned by the service user.
    Cleartext,
    /// The key encrypted to the node's SSH host key, unsealed at install.
    Sealed,
}

impl Keys {
    pub const ALL: [Keys; 2] = [Keys::Cleartext, Keys::Sealed];

    pub fn as_str(self) -> &'static str {
        match self {
            Keys::Cleartext => "cleartext",
            Keys::Sealed => "sealed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum San {
    Ip(IpAddr),
    Dns(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Tuning {
    pub heartbeat_interval: Duration,
    pub election_timeout: Duration,
    pub quota_backend_bytes: u64,
    pub auto_compaction_retention: Duration,
    pub enable_v2: bool,
    /// Listen on plaintext http://127.0.0.1:2379 too (off: any local process
    /// would get unauthenticated full access).
    pub insecure_localhost_listener: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Algorithm {
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Rsa2048 => "rsa-2048",
            Algorithm::EcdsaP256 => "ecdsa-p256",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Subject {
    pub country: Option<String>,
    pub state: Option<String>,
    pub locality: Option<String>,
    pub organization: Option<String>,
    pub organizational_unit: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pki {
    pub algorithm: Algorithm,
    /// The CA's, and the leaves' unless `leaf_validity` is shorter.
    pub validity: Duration,
    pub leaf_validity: Duration,
    pub subject: Subject,
    /// An existing CA to sign with instead of creating one.
    pub import: Option<CaImport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaImport {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Where the config names each file, for messages of the later check
    /// ([`crate::pki`] reads the files; loading a config reads only the YAML).
    #[serde(skip)]
    pub cert_at: Position,
    #[serde(skip)]
    pub key_at: Position,
}

#[derive(Debug, Clone, Serialize)]
pub struct Client {
    pub name: String,
    pub organization: Option<String>,
    /// What it may do in etcd, with `auth.enabled`.
    pub access: Access,
}

/// etcd's auth: whether etcdpack turns it on and keeps it to the policy.
#[derive(Debug, Clone, Serialize)]
pub struct Auth {
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Paths {
    /// e.g. /opt/etcd, holding bin/, cfg/ and ssl/.
    pub install_dir: String,
    pub data_dir: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Service {
    pub user: String,
    /// Start the unit when a package is installed.
    pub start: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Packages {
    pub formats: Vec<Format>,
    /// Package name pattern with `{cluster}` and `{node}` placeholders.
    pub name: String,
    pub maintainer: String,
    pub homepage: String,
    pub keys: Keys,
}

/// The `publish:` section: defaults for `etcdpack publish`, each `None`
/// where the config does not say.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Publish {
    /// Resolved against the config's directory.
    pub repo: Option<PathBuf>,
    pub suite: Option<String>,
    pub url: Option<String>,
    /// Resolved against the config's directory.
    pub sign_key: Option<PathBuf>,
    pub unsigned: bool,
    pub keep: Option<u32>,
}

/// What `etcdpack publish` was told on its command line; each one given
/// wins over the config's `publish:` section.
#[derive(Debug, Clone, Default)]
pub struct PublishFlags {
    pub repo: Option<PathBuf>,
    pub suite: Option<String>,
    pub url: Option<String>,
    pub sign_key: Option<PathBuf>,
    pub unsigned: bool,
    pub keep: Option<u32>,
}

/// `etcdpack publish`'s settings, resolved once: the command line's, else
/// the config's, else the defaults.
#[derive(Debug, Clone)]
pub struct PublishSettings {
    pub repo: PathBuf,
    pub suite: String,
    /// `None`: clients reach the repository at its directory (`file://`).
    pub url: Option<String>,
    /// `None`: an unsigned repository, asked for.
    pub sign_key: Option<PathBuf>,
    pub keep: u32,
}

/// Why publish's settings cannot be resolved.
#[derive(Debug)]
pub enum PublishProblem {
    /// Something needed was not said (a usage error).
    Missing(String),
    /// A value said is invalid.
    Invalid(String),
}

impl Publish {
    /// Resolve `flags` over this section; `shown` names the config in help.
    pub fn resolve(
        &self,
        flags: PublishFlags,
        shown: &str,
    ) -> Result<PublishSettings, PublishProblem> {
        let Some(repo) = flags.repo.or_else(|| self.repo.clone()) else {
            return Err(PublishProblem::Missing(
                "publish needs a repository directory\n  help: pass --repo DIR, or set publish.repo in the config and pass it with --config".to_owned(),
            ));
        };
        let suite = flags
            .suite
            .or_else(|| self.suite.clone())
            .unwrap_or_else(|| "stable".to_owned());
        if let Some(why) = suite_problem(&suite) {
            return Err(PublishProblem::Invalid(format!(
                "--suite {suite:?} {why}\n  help: write a name of letters, digits, '.', '_' and '-', e.g. stable"
            )));
        }
        let sign_key = match (flags.sign_key, flags.unsigned) {
            (Some(k), _) => Some(k),
            (None, true) => None,
            (None, false) if self.unsigned => None,
            (None, false) => match &self.sign_key {
                Some(k) => Some(k.clone()),
                None => {
                    return Err(PublishProblem::Missing(format!(
                        "publish needs a signing key, or to be told that the repository is unsigned\n  help: pass --sign-key FILE (create one with `etcdpack signing-key --out FILE`), or --unsigned; or set publish.sign_key or publish.unsigned in {shown}"
                    )));
                }
            },
        };
        let url = match flags.url.or_else(|| self.url.clone()) {
            Some(u) => {
                if let Some(why) = url_problem(&u) {
                    return Err(PublishProblem::Invalid(format!(
                        "--url {u:?} {why}\n  help: write the URL machines reach the repository at, e.g. https://mirror.example.com/etcd"
                    )));
                }
                Some(u.trim_end_matches('/').to_owned())
            }
            None => None,
        };
        Ok(PublishSettings {
            repo,
            suite,
            url,
            sign_key,
            keep: flags.keep.or(self.keep).unwrap_or(3),
        })
    }
}

/// The `backup:` section: how `etcd-maint backup` keeps snapshots on a
/// node, and whether a timer runs it.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    /// The packages ship etcd-backup.service and etcd-backup.timer.
    pub enabled: bool,
    /// How often the timer runs, in whole seconds, at least a minute.
    pub interval: Duration,
    /// An absolute path on the node.
    pub dir: String,
    /// Snapshots kept, at least 1.
    pub keep: u32,
    /// Whom every snapshot is encrypted to, each in its canonical form: an
    /// age recipient (`age1…`) or an SSH public key (`TYPE BASE64`, no
    /// comment). Empty: snapshots in clear.
    pub recipients: Vec<String>,
}

/// The `defrag:` section: which members `etcd-maint defrag` defragments,
/// and whether a timer runs it.
#[derive(Debug, Clone, Serialize)]
pub struct Defrag {
    /// The packages ship etcd-defrag.service and etcd-defrag.timer.
    pub enabled: bool,
    /// How often the timer runs, in whole seconds, at least a minute.
    pub interval: Duration,
    /// The free share of the database file, in percent (1 to 99), above
    /// which a member is defragmented.
    pub threshold: u32,
    /// The database size in bytes below which a member never is.
    pub min_size: u64,
}

/// The `metrics:` section: each member's plain-http metrics listener.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    pub listen: MetricsListen,
    /// Never the client or the peer port.
    pub port: u16,
    /// `ETCD_METRICS=extensive`.
    pub extensive: bool,
    /// node_exporter's textfile directory on each node, an absolute path.
    pub textfile_dir: String,
}

/// Where a member's metrics listener binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsListen {
    /// 127.0.0.1: only the node itself reaches it.
    Localhost,
    /// The node's own IP: a central Prometheus reaches it.
    Node,
}

impl MetricsListen {
    pub const ALL: [MetricsListen; 2] = [MetricsListen::Localhost, MetricsListen::Node];

    pub fn as_str(self) -> &'static str {
        match self {
            MetricsListen::Localhost => "localhost",
            MetricsListen::Node => "node",
        }
    }
}

/// Why `s` cannot be a suite (a directory under `dists/` and `rpm/`, and
/// apt's `Suite:`), if it cannot.
pub fn suite_problem(s: &str) -> Option<&'static str> {
    if s.is_empty() {
        Some("is empty")
    } else if s.len() > 64 {
        Some("is longer than 64 characters")
    } else if s.starts_with(['.', '-']) {
        Some("starts with '.' or '-'")
    } else if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        Some("holds a character other than letters, digits, '.', '_' and '-'")
    } else {
        None
    }
}

/// Why `s` cannot be the URL the client files name, if it cannot.
pub fn url_problem(s: &str) -> Option<&'static str> {
    let rest = ["https://", "http://", "file://"]
        .iter()
        .find_map(|p| s.strip_prefix(p));
    match rest {
        None => Some("is not an http, https or file URL"),
        Some(r) if r.trim_end_matches('/').is_empty() => Some("names no host or path"),
        Some(r) if !r.bytes().all(|b| b.is_ascii_graphic()) => {
            Some("holds spaces or control characters (percent-encode them)")
        }
        Some(_) => None,
    }
}

impl Packages {
    pub fn name_for(&self, cluster: &str, node: &str) -> String {
        self.name
            .replace("{cluster}", cluster)
            .replace("{node}", node)
    }
}

impl Cluster {
    /// The directory that relative paths in the config resolve against.
    pub fn base_dir(&self) -> &Path {
        self.source
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// Read and validate a config file.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Cluster, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ConfigError::Missing {
                file: path.to_owned(),
            }
        } else {
            ConfigError::Read {
                file: path.to_owned(),
                source,
            }
        }
    })?;
    parse(path, &text, overrides)
}

/// Validate config text that came from `path`.
pub fn parse(path: &Path, text: &str, overrides: &Overrides) -> Result<Cluster, ConfigError> {
    if text.trim().is_empty() {
        return Err(ConfigError::Syntax {
            file: path.to_owned(),
            message: format!("{}: the config is empty", path.display()),
            help: "start from the example that `etcdpack init` writes".into(),
        });
    }
    let raw: raw::RawConfig = serde_saphyr::from_str(text).map_err(|e| syntax_error(path, e))?;
    validate::resolve(path, raw, overrides)
}

fn syntax_error(path: &Path, e: serde_saphyr::Error) -> ConfigError {
    let name = path.display().to_string();
    let rendered = e.render_with_options(serde_saphyr::render_options! {
        source_name: Some(name.as_str()),
    });
    // The crate's text starts "error: line L column C: "; say it the way
    // compilers do instead: "file:L:C: message", then the snippet.
    let mut message = rendered
        .strip_prefix("error: ")
        .unwrap_or(&rendered)
        .to_owned();
    if let Some(loc) = e.location() {
        let prefix = format!("line {} column {}: ", loc.line(), loc.column());
        if let Some(rest) = message.strip_prefix(&prefix) {
            message = format!("{}:{}:{}: {rest}", name, loc.line(), loc.column());
        }
    }
    // The parser speaks to programmers; say what to do instead.
    let message = message.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    let help = [
        (
            "unknown field",
            "remove or rename the key; `etcdpack init` writes an example with every key",
        ),
        (
            "missing field",
            "add the key; `etcdpack init` writes an example with every key",
        ),
        ("duplicate mapping key", "keep one of the two values"),
        (
            "expected sequence",
            "write a list, e.g. `[a, b]` or one `- item` per line",
        ),
        (
            "expected mapping",
            "write `key: value` pairs; `etcdpack init` writes an example",
        ),
        ("invalid boolean", "write true or false"),
        ("invalid u32", "write a whole number"),
        (
            "invalid type",
            "give the value the type shown; `etcdpack init` writes an example",
        ),
    ]
    .iter()
    .find(|(needle, _)| message.contains(needle))
    .map_or("fix the YAML at the position shown", |(_, help)| help);
    ConfigError::Syntax {
        file: path.to_owned(),
        message,
        help: help.to_owned(),
    }
}

/// The commented example that `etcdpack init` writes: the recipe's 3-node cluster.
pub const EXAMPLE: &str = include_str!("../../templates/cluster.yaml");

#[cfg(test)]
mod tests;
