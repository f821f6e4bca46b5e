//! The values every template lays out, computed once per node from the
//! cluster: what [`super`] renders each node file and script with.

use serde::Serialize;

use super::{MaintUnit, client_url, metrics_url, peer_url};
use crate::config::{Arch, Cluster, Node};
use crate::model::{Bootstrap, CLIENT_PORT, Layout};
use crate::release::Line;

/// A systemd time span (`6h`, `1d`, `90min`), for a timer.
pub(super) fn time_span(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(86400) {
        format!("{}d", s / 86400)
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}min", s / 60)
    } else {
        format!("{s}s")
    }
}

/// etcd 3.4 reads a bare number as hours; anything else as a Go duration.
fn retention(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(3600) {
        (s / 3600).to_string()
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[derive(Serialize)]
pub(super) struct Vars<'a> {
    generator: String,
    cluster: &'a str,
    token: &'a str,
    node: &'a str,
    package: String,
    etcd_version: &'a str,
    /// The release line, e.g. 3.4 (for the docs' address).
    line: &'static str,
    data_dir: &'a str,
    install_dir: &'a str,
    bin_dir: &'a str,
    cfg_dir: &'a str,
    ssl_dir: &'a str,
    etcd_bin: &'a str,
    etcdctl_bin: &'a str,
    /// `etcdutl`, which releases from 3.5 on ship (offline snapshot work).
    etcdutl_bin: Option<&'a str>,
    maint_bin: &'a str,
    conf_file: &'a str,
    unit_dir: &'a str,
    unit_file: &'a str,
    profile_file: &'a str,
    ca_file: &'a str,
    cert_file: &'a str,
    key_file: &'a str,
    listen_peer_urls: String,
    listen_client_urls: String,
    advertise_peer_urls: String,
    advertise_client_urls: String,
    initial_cluster: String,
    initial_cluster_state: &'static str,
    peer_hostname: String,
    /// `ETCD_CIPHER_SUITES`: comma-separated, see [`crate::release::CIPHER_SUITES`].
    cipher_suites: String,
    /// `ETCD_TLS_MIN_VERSION`, for the releases that know it.
    tls_min_version: Option<&'static str>,
    endpoints: String,
    /// How many members the cluster has.
    members: usize,
    restart_lock: &'static str,
    restart_pending: &'static str,
    /// The access policy (`clients[].access`), for etcd-maint auth.
    auth: AuthVars,
    auth_pending: &'static str,
    auth_lock: &'static str,
    heartbeat_ms: u128,
    election_ms: u128,
    quota_backend_bytes: u64,
    auto_compaction_retention: String,
    enable_v2: bool,
    /// Whether the release line knows ETCD_ENABLE_V2 at all (3.6 does not).
    v2_flag: bool,
    /// On 3.6: the 3.5 release an installed member must run at least, whose
    /// etcdutl checks its data directory before the package replaces it.
    upgrade_from: Option<String>,
    unsupported_arch: Option<&'static str>,
    user: &'a str,
    start: bool,
    /// With `packages.keys: sealed`: how the package unseals its key.
    sealed: Option<SealedVars>,
    /// `backup:`, for etcd-maint and the backup units.
    backup: BackupVars<'a>,
    /// `defrag:`, for etcd-maint and the defrag units.
    defrag: DefragVars,
    /// `metrics:`, for etcd.conf, etcd-maint and its units.
    metrics: MetricsVars<'a>,
    /// The maintenance units the node gets (`etcd-cert-check.service`, …),
    /// and of them the timers (and the path unit), which the package
    /// scripts enable and start.
    maint_units: Vec<&'static str>,
    timers: Vec<&'static str>,
    /// The timers a node of this cluster does not get, which an upgrade
    /// from a package that had them stops and disables.
    retired_timers: Vec<&'static str>,
}

#[derive(Serialize)]
struct AuthVars {
    enabled: bool,
    #[serde(flatten)]
    policy: crate::config::Policy,
}

#[derive(Serialize)]
struct BackupVars<'a> {
    enabled: bool,
    /// A systemd time span: `24h`, `1d`.
    interval: String,
    dir: &'a str,
    keep: u32,
    /// Whom every snapshot is encrypted to; none: snapshots in clear.
    recipients: &'a [String],
}

#[derive(Serialize)]
struct DefragVars {
    enabled: bool,
    /// A systemd time span: `24h`, `1d`.
    interval: String,
    /// Percent of the database file free.
    threshold: u32,
    /// Bytes.
    min_size: u64,
}

#[derive(Serialize)]
struct MetricsVars<'a> {
    /// `ETCD_LISTEN_METRICS_URLS`.
    listen_urls: String,
    extensive: bool,
    textfile_dir: &'a str,
}

/// The key sealed to the node's SSH host key, as the scripts unseal it.
#[derive(Serialize)]
struct SealedVars {
    /// The sealed file in the package.
    file: String,
    /// The host's private key that unseals it.
    identity: String,
    /// `TYPE BASE64` of the host key.
    host_key: String,
    fingerprint: String,
}

pub(super) fn vars<'a>(
    cluster: &'a Cluster,
    node: &'a Node,
    l: &'a Layout,
    b: &Bootstrap,
) -> Vars<'a> {
    let mut listen_client = vec![client_url(node)];
    if cluster.tuning.insecure_localhost_listener {
        listen_client.push(format!("http://127.0.0.1:{CLIENT_PORT}"));
    }
    Vars {
        generator: format!("etcdpack {}", env!("CARGO_PKG_VERSION")),
        cluster: &cluster.name,
        token: &cluster.token,
        node: &node.name,
        package: cluster.packages.name_for(&cluster.name, &node.name),
        etcd_version: &cluster.etcd.version,
        line: cluster.etcd.line().as_str(),
        data_dir: &cluster.paths.data_dir,
        install_dir: &cluster.paths.install_dir,
        bin_dir: &l.bin_dir,
        cfg_dir: &l.cfg_dir,
        ssl_dir: &l.ssl_dir,
        etcd_bin: &l.etcd_bin,
        etcdctl_bin: &l.etcdctl_bin,
        etcdutl_bin: (cluster.etcd.line() >= Line::V3_5).then_some(l.etcdutl_bin.as_str()),
        maint_bin: &l.maint_bin,
        conf_file: &l.conf_file,
        unit_dir: Layout::UNIT_DIR,
        unit_file: Layout::UNIT_FILE,
        profile_file: Layout::PROFILE_FILE,
        ca_file: &l.ca_file,
        cert_file: &l.cert_file,
        key_file: &l.key_file,
        listen_peer_urls: peer_url(node),
        listen_client_urls: listen_client.join(","),
        advertise_peer_urls: peer_url(node),
        advertise_client_urls: client_url(node),
        initial_cluster: b.initial_cluster.clone(),
        initial_cluster_state: b.state.as_str(),
        peer_hostname: crate::model::peer_hostname(&cluster.name),
        cipher_suites: crate::release::CIPHER_SUITES.join(","),
        tls_min_version: cluster.etcd.tls_min_version(),
        endpoints: cluster
            .nodes
            .iter()
            .map(client_url)
            .collect::<Vec<_>>()
            .join(","),
        members: cluster.nodes.len(),
        restart_lock: Layout::RESTART_LOCK,
        restart_pending: Layout::RESTART_PENDING,
        auth: AuthVars {
            enabled: cluster.auth.enabled,
            policy: crate::config::Policy::of(cluster),
        },
        auth_pending: Layout::AUTH_PENDING,
        auth_lock: Layout::AUTH_LOCK,
        heartbeat_ms: cluster.tuning.heartbeat_interval.as_millis(),
        election_ms: cluster.tuning.election_timeout.as_millis(),
        quota_backend_bytes: cluster.tuning.quota_backend_bytes,
        auto_compaction_retention: retention(cluster.tuning.auto_compaction_retention),
        enable_v2: cluster.tuning.enable_v2,
        v2_flag: cluster.etcd.line() < Line::V3_6,
        upgrade_from: (cluster.etcd.line() == Line::V3_6).then(|| {
            let (a, b, c) = crate::release::BEFORE_3_6;
            format!("{a}.{b}.{c}")
        }),
        // 3.5 supports arm64; 3.4 runs there only when told to.
        unsupported_arch: (cluster.etcd.arch == Arch::Arm64 && cluster.etcd.line() == Line::V3_4)
            .then_some("arm64"),
        user: &cluster.service.user,
        start: cluster.service.start,
        sealed: match (cluster.packages.keys, &node.ssh_host_key) {
            (crate::config::Keys::Sealed, Some(host)) => Some(SealedVars {
                file: l.sealed_key_file.clone(),
                identity: host.identity_file(),
                host_key: host.public().to_owned(),
                fingerprint: host.fingerprint(),
            }),
            _ => None,
        },
        backup: BackupVars {
            enabled: cluster.backup.enabled,
            interval: time_span(cluster.backup.interval),
            dir: &cluster.backup.dir,
            keep: cluster.backup.keep,
            recipients: &cluster.backup.recipients,
        },
        defrag: DefragVars {
            enabled: cluster.defrag.enabled,
            interval: time_span(cluster.defrag.interval),
            threshold: cluster.defrag.threshold,
            min_size: cluster.defrag.min_size,
        },
        metrics: MetricsVars {
            listen_urls: metrics_url(cluster, node),
            extensive: cluster.metrics.extensive,
            textfile_dir: &cluster.metrics.textfile_dir,
        },
        maint_units: MaintUnit::of(cluster)
            .into_iter()
            .map(MaintUnit::name)
            .collect(),
        timers: MaintUnit::of(cluster)
            .into_iter()
            .filter(|u| u.is_timer())
            .map(MaintUnit::name)
            .collect(),
        retired_timers: MaintUnit::ALL
            .into_iter()
            .filter(|u| u.is_timer() && !u.shipped(cluster))
            .map(MaintUnit::name)
            .collect(),
    }
}
