//! The YAML as written: a strict serde mirror (`deny_unknown_fields`) that
//! keeps the source position of every value a later check may complain about.
//! Nothing here applies defaults or judges values; see `validate`.
//!
//! The same types describe `cluster.yaml` as a JSON Schema (`etcdpack
//! schema`, see [`super::schema`]): their doc comments are the descriptions
//! editors show, so every comment on a field speaks to the person writing
//! the file.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};
use serde_saphyr::{Location, Spanned};

use super::choices::{algorithms, arches, config_versions, formats, key_layouts};
use super::units::Quantity;

/// A value and where it was written: serde-saphyr's [`Spanned`], with the
/// schema of the value itself.
#[derive(Debug, Clone, PartialEq)]
pub struct S<T> {
    pub value: T,
    /// Where the value is used (an alias's position for an aliased value).
    pub referenced: Location,
    /// Where the value is written.
    pub defined: Location,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for S<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<T>::deserialize(d)?;
        Ok(S {
            value: s.value,
            referenced: s.referenced,
            defined: s.defined,
        })
    }
}

impl<T: JsonSchema> JsonSchema for S<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// An etcd cluster for etcdpack: its members, the etcd release, TLS and
/// packaging. Only `version`, `cluster` and `nodes` are required.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "etcdpack cluster.yaml")]
pub struct RawConfig {
    /// The format of this file: 1.
    #[schemars(transform = config_versions)]
    pub version: S<u32>,
    pub cluster: RawCluster,
    #[serde(default)]
    pub etcd: RawEtcd,
    /// The members, one per machine: each gets its own certificate and its
    /// own package. URLs and the initial cluster are derived from this list.
    #[schemars(length(min = 1))]
    pub nodes: S<Vec<RawNode>>,
    #[serde(default)]
    pub tuning: RawTuning,
    #[serde(default)]
    pub pki: RawPki,
    /// Client certificates to write to OUT/pki/clients/, for the programs
    /// that talk to etcd (etcdctl, kube-apiserver, …). Not installed on the
    /// nodes.
    pub clients: Option<Vec<RawClient>>,
    #[serde(default)]
    pub paths: RawPaths,
    #[serde(default)]
    pub service: RawService,
    #[serde(default)]
    pub packages: RawPackages,
    #[serde(default)]
    pub publish: RawPublish,
    #[serde(default)]
    pub backup: RawBackup,
    #[serde(default)]
    pub defrag: RawDefrag,
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub metrics: RawMetrics,
}

/// The cluster as a whole.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// Part of every package name: a DNS label (lower-case letters, digits
    /// and '-'), e.g. k8s.
    pub name: S<String>,
    /// ETCD_INITIAL_CLUSTER_TOKEN, which keeps members of different clusters
    /// apart. Default: etcd-cluster-NAME.
    pub token: Option<S<String>>,
}

/// Which etcd release to package.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEtcd {
    /// The release, MAJOR.MINOR.PATCH (a leading 'v' is allowed), e.g.
    /// 3.4.16, the default. Releases without a pinned checksum need `sha256`.
    pub version: Option<S<String>>,
    /// The CPU architecture of the nodes. Default: amd64.
    #[schemars(transform = arches)]
    pub arch: Option<S<String>>,
    /// SHA-256 of the release tarball, 64 hex digits (from the release's
    /// SHA256SUMS). Required for a release without a pinned checksum.
    pub sha256: Option<S<String>>,
    /// Download the release tarball from this URL instead of the official
    /// GitHub release.
    pub url: Option<S<String>>,
}

/// One member of the cluster.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// The member's name (ETCD_NAME) and part of its package name: a DNS
    /// label, unique in the cluster.
    pub name: S<String>,
    /// The address the member listens on and peers use: an IPv4 or IPv6
    /// address without a port, unique in the cluster.
    pub ip: S<String>,
    /// Extra subject alternative names of the member's certificate: IP
    /// addresses or DNS names. The IP, the name, localhost, 127.0.0.1 and ::1
    /// are always included.
    #[serde(default)]
    pub sans: Vec<S<String>>,
    /// The machine's SSH host public key, the one line of its
    /// /etc/ssh/ssh_host_ed25519_key.pub (ssh-ed25519, or ssh-rsa of at
    /// least 2048 bits). With `packages.keys: sealed`, the member's private
    /// key is encrypted to it, and only this machine can unseal it.
    pub ssh_host_key: Option<S<String>>,
}

/// etcd's timing and storage settings.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTuning {
    /// How often the leader sends heartbeats: a duration such as 100ms or
    /// 1s; a bare number is milliseconds. A whole number of milliseconds,
    /// at least 1ms. Default: 100ms.
    pub heartbeat_interval: Option<S<Quantity>>,
    /// How long a follower waits for a heartbeat before it calls an
    /// election: a duration such as 1000ms or 1s; a bare number is
    /// milliseconds. At least 5 times heartbeat_interval and at most 50s.
    /// Default: 1000ms.
    pub election_timeout: Option<S<Quantity>>,
    /// The size limit of the backend database: a size such as 8GiB or
    /// 512MiB (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB); a bare number
    /// is bytes. Above 8GiB is a warning. Default: 8GiB.
    pub quota_backend_bytes: Option<S<Quantity>>,
    /// How much history to keep before compaction: a duration such as 1h or
    /// 30m; a bare number is hours. Default: 1h.
    pub auto_compaction_retention: Option<S<Quantity>>,
    /// Serve the v2 API as well (flannel still speaks it). Deprecated in
    /// etcd 3.5 and gone in 3.6. Default: true on 3.4, false on 3.5 and 3.6.
    pub enable_v2: Option<S<bool>>,
    /// Also listen on plaintext http://127.0.0.1:2379, which gives every
    /// local process full, unauthenticated access. Default: false.
    pub insecure_localhost_listener: Option<bool>,
}

/// The CA and the certificates.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPki {
    /// The key type of every new key. Default: rsa-2048.
    #[schemars(transform = algorithms)]
    pub algorithm: Option<S<String>>,
    /// How long new certificates are valid: a duration such as 87600h (ten
    /// years) or 365d; a bare number is hours. At least a day. Default:
    /// 87600h.
    pub validity: Option<S<Quantity>>,
    /// How long new node and client certificates are valid, when shorter
    /// than the CA's `validity` (e.g. 8760h: renewed yearly with `etcdpack
    /// renew` under a ten-year CA). At least a day. Default: `validity`.
    pub leaf_validity: Option<S<Quantity>>,
    #[serde(default)]
    pub subject: RawSubject,
    /// Sign with this existing CA certificate (PEM) instead of creating a
    /// CA; a path relative to this file. Needs `ca_key`.
    pub ca_cert: Option<S<String>>,
    /// The private key (PEM) of `ca_cert`; a path relative to this file.
    pub ca_key: Option<S<String>>,
}

/// The distinguished name parts every certificate's subject carries.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSubject {
    /// Country, e.g. CN.
    #[serde(rename = "C")]
    pub country: Option<String>,
    /// State or province, e.g. Beijing.
    #[serde(rename = "ST")]
    pub state: Option<String>,
    /// Locality (city), e.g. Beijing.
    #[serde(rename = "L")]
    pub locality: Option<String>,
    /// Organization.
    #[serde(rename = "O")]
    pub organization: Option<String>,
    /// Organizational unit.
    #[serde(rename = "OU")]
    pub organizational_unit: Option<String>,
}

/// A client certificate.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    /// The certificate's common name and file name, e.g. etcdctl; unique.
    /// With `auth.enabled`, also the etcd user it authenticates as.
    pub name: S<String>,
    /// The certificate's organization, e.g. "system:masters" for a
    /// Kubernetes API server.
    pub organization: Option<String>,
    /// What the client may do in etcd (with `auth.enabled`): `root` (every
    /// key, and the cluster's administration), or key prefixes it may
    /// `read` or `readwrite`. Default: root for etcdctl, readwrite
    /// [/registry/, compact_rev_key] for kube-apiserver, readwrite
    /// [/coreos.com/network/] for flannel, root for any other (with a
    /// warning).
    pub access: Option<S<RawAccess>>,
}

/// A client's access: the word `root`, or its key prefixes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawAccess {
    /// `root`: every key, and the cluster's administration.
    Root(String),
    Prefixes(RawPrefixes),
}

/// Key prefixes a client may read, or read and write: each a prefix of
/// keys (`/registry/` covers every key that starts with it; `/` covers
/// every key that starts with a slash).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPrefixes {
    /// Prefixes the client may read (get, watch).
    pub read: Option<Vec<String>>,
    /// Prefixes the client may read and write (put, delete, txn, and the
    /// keys of its leases and locks).
    pub readwrite: Option<Vec<String>>,
}

/// etcd's own authentication and role-based access control.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Turn etcd's auth on, with a user per client certificate (its common
    /// name) and a role per client from `clients[].access`; the nodes'
    /// own certificates are root. The packages apply the policy once the
    /// cluster is healthy (etcd-auth.service, `etcd-maint auth apply`).
    /// false: etcdpack leaves etcd's auth alone (every certificate from the
    /// CA may do anything, unless set up by hand). Default: true.
    pub enabled: Option<S<bool>>,
}

/// Where the package installs on a node.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPaths {
    /// An absolute path holding bin/, cfg/ and ssl/. Default: /opt/etcd.
    pub install_dir: Option<S<String>>,
    /// etcd's data directory, an absolute path; created at install, never
    /// deleted. Default: /var/lib/etcd/default.etcd.
    pub data_dir: Option<S<String>>,
}

/// The systemd service.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// The system user etcd runs as, created at install; root is allowed.
    /// Default: etcd.
    pub user: Option<S<String>>,
    /// Start etcd when the package is installed (false: enable only).
    /// Default: true.
    pub start: Option<bool>,
}

/// The packages written to OUT/dist/.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPackages {
    /// Which packages to build for every node. Default: all.
    #[schemars(transform = formats)]
    pub formats: Option<S<Vec<String>>>,
    /// The package name pattern with the placeholders {cluster} and {node}
    /// ({node} is required). Default: etcd-{cluster}-{node}.
    pub name: Option<S<String>>,
    /// The packages' maintainer, `Name <email>`. Default: CLUSTER etcd
    /// operators <root@localhost>.
    pub maintainer: Option<S<String>>,
    /// The packages' homepage URL. Default: https://etcd.io.
    pub homepage: Option<S<String>>,
    /// How a node's package holds the member's private key. `cleartext`: the
    /// key itself (0600); copy each package to its own machine only.
    /// `sealed`: the key encrypted with age to the node's `ssh_host_key` and
    /// unsealed when the package is installed, so that packages can be
    /// published in a repository that others can read. Default: cleartext.
    #[schemars(transform = key_layouts)]
    pub keys: Option<S<String>>,
}

/// Defaults for `etcdpack publish --config FILE`; its options override
/// each of them.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPublish {
    /// The repository directory (relative to this file's directory).
    pub repo: Option<S<String>>,
    /// The suite to publish into: letters, digits, '.', '_' and '-'.
    /// Default: stable.
    pub suite: Option<S<String>>,
    /// The repository's URL as machines reach it (http, https or file),
    /// written into the client files.
    pub url: Option<S<String>>,
    /// The armored OpenPGP secret key that signs (relative to this file's
    /// directory); never inside the repository.
    pub sign_key: Option<S<String>>,
    /// Publish without signatures (instead of `sign_key`).
    pub unsigned: Option<S<bool>>,
    /// Releases of each package the indexes keep, at least 1. Default: 3.
    pub keep: Option<S<u32>>,
}

/// Snapshots of each node's own member, written by `etcd-maint backup` on
/// the node: by hand, or by the etcd-backup.timer every package ships when
/// `enabled`. `dir` and `keep` apply to a backup by hand too.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBackup {
    /// Ship etcd-backup.service and etcd-backup.timer, enabled and started
    /// like etcd. Default: false.
    pub enabled: Option<bool>,
    /// How often the timer takes a snapshot: a duration such as 6h, 30m or
    /// 1d (units s, m, h, d; a unit is required), at least 1m; the first
    /// one 5 minutes after the timer starts (at install or boot). Default:
    /// 24h.
    pub interval: Option<S<Quantity>>,
    /// The directory on each node that holds the snapshots, an absolute
    /// path (root's, 0700; created at install, never deleted). Default:
    /// /var/backups/etcd.
    pub dir: Option<S<String>>,
    /// How many snapshots to keep: a new one removes the oldest beyond
    /// this, at least 1. Default: 7.
    #[schemars(range(min = 1))]
    pub keep: Option<S<u32>>,
    /// Who can read the snapshots. Each snapshot is encrypted with age to
    /// every recipient listed, in a private temporary directory, and only
    /// the encrypted `snapshot-<timestamp>.db.age` reaches `dir`; restoring
    /// one needs the identity of one of them (`etcd-maint restore SNAPSHOT
    /// --identity FILE`), which is kept off the nodes. Each is an age
    /// recipient, `age1…` as age-keygen prints it, or an SSH public key,
    /// the line of a .pub file (ssh-ed25519, or ssh-rsa of 2048 to 4096
    /// bits; the comment is dropped). The packages then depend on age.
    /// Default: none, and the snapshots are in clear: every key of the
    /// cluster, Kubernetes Secrets included.
    #[schemars(length(min = 1))]
    pub recipients: Option<S<Vec<S<String>>>>,
}

/// Scheduled defragmentation: `etcd-maint defrag` on each node, for its own
/// member, by hand or by the etcd-defrag.timer every package ships when
/// `enabled`. One member at a time cluster-wide (under the lock the
/// coordinated restarts take), only while every member is healthy, the
/// leader last. `threshold` and `min_size` apply to a defrag by hand too.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefrag {
    /// Ship etcd-defrag.service and etcd-defrag.timer, enabled and started
    /// like etcd. Default: false.
    pub enabled: Option<bool>,
    /// How often the timer looks: a duration such as 24h, 6h or 1d (units
    /// s, m, h, d; a unit is required), at least 1m; the first time 10
    /// minutes after the timer starts (at install or boot). Default: 24h.
    pub interval: Option<S<Quantity>>,
    /// Defragment a member only when more than this percentage of its
    /// database file is free space (1 - in use / size), 1 to 99. Default:
    /// 50, as etcd's own alert (etcdDatabaseHighFragmentationRatio).
    #[schemars(range(min = 1, max = 99))]
    pub threshold: Option<S<u32>>,
    /// ...and only when its database file is at least this large: a size
    /// such as 100MiB or 1GB; a bare number is bytes. Default: 100MiB, as
    /// etcd's own alert.
    pub min_size: Option<S<Quantity>>,
}

/// Each member's plain-http metrics listener (`/metrics` and `/health`,
/// no TLS, no client certificate), and the monitoring files `gen` writes
/// for it under OUT/monitoring/.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Where the listener binds: `localhost` (http://127.0.0.1:PORT, for
    /// an agent on the node itself) or `node` (http://NODE-IP:PORT, what a
    /// central Prometheus scrapes). Default: localhost.
    #[schemars(transform = super::choices::metrics_listens)]
    pub listen: Option<S<String>>,
    /// The listener's port: neither 2379 (the client port) nor 2380 (the
    /// peer port). Default: 2381.
    pub port: Option<S<u16>>,
    /// Export etcd's extensive metrics too (ETCD_METRICS=extensive: the
    /// gRPC handling-time histograms). Default: false.
    pub extensive: Option<bool>,
    /// The node_exporter textfile-collector directory on each node, an
    /// absolute path, into which `etcd-maint cert-check` and `etcd-maint
    /// backup` write etcdpack-cert.prom and etcdpack-backup.prom when it
    /// exists. Default: /var/lib/node_exporter/textfile_collector.
    pub textfile_dir: Option<S<String>>,
}
