//! The alerting rules of a cluster: the etcd mixin's alerts
//! (etcd-io/etcd `contrib/mixin/alerts/alerts.libsonnet`), with the
//! thresholds that are this cluster's written in as numbers — the quorum
//! from the node list, the database's limit from
//! `tuning.quota_backend_bytes` — and etcdpack's own alerts on what
//! `etcd-maint` measures on each node (the certificate's expiry, the age
//! of the last backup), which node_exporter's textfile collector exports.
//!
//! The rules select the scrape job [`job`] names (`job="etcd-CLUSTER"`),
//! which the scrape config of `render::monitoring` defines, and aggregate
//! away the labels that name one member (`instance`, `node`); textfile
//! metrics carry `cluster` and `node` themselves.

use std::time::Duration;

use crate::config::Cluster;

/// The scrape interval the mixin's rate windows assume (its default): the
/// peer-failure rate of etcdMembersDown looks back four of them.
const SCRAPE_INTERVAL_SECONDS: u64 = 30;
/// etcdDatabaseHighFragmentationRatio ignores databases smaller than this
/// in use (the mixin's 100MiB).
const FRAGMENTATION_FLOOR: u64 = 100 << 20;
/// How long before its expiry a certificate is a warning, and critical
/// (the warning is cert-check's own default window).
pub const CERT_WARN_DAYS: u64 = 30;
pub const CERT_CRITICAL_DAYS: u64 = 7;

const MIN: Duration = Duration::from_secs(60);

/// One alerting rule. Its annotations expand `{{ $labels.cluster }}` and,
/// for an alert about one member, `{{ $labels.node }}` only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub name: &'static str,
    pub expr: String,
    /// How long `expr` must hold before the alert fires.
    pub for_: Duration,
    pub severity: &'static str,
    pub summary: String,
    pub description: String,
}

/// The scrape job's name, which the rules select on: `etcd-CLUSTER`
/// (the scrape config of [`super::monitoring`] names its job so).
pub fn job(cluster: &Cluster) -> String {
    format!("etcd-{}", cluster.name)
}

/// The share of the quota at which etcdDatabaseQuotaLowSpace fires, in
/// bytes: 95% of `quota`, as the mixin's ratio.
pub fn quota_low_space(quota: u64) -> u64 {
    quota / 100 * 95 + quota % 100 * 95 / 100
}

/// How many members answer for the cluster to have a quorum.
pub fn quorum(members: usize) -> usize {
    members / 2 + 1
}

/// The rules of `cluster`, in the mixin's order, etcdpack's after them.
pub fn alerts(cluster: &Cluster) -> Vec<Alert> {
    let sel = format!("job=\"{}\"", job(cluster));
    let mine = format!("cluster=\"{}\"", cluster.name);
    let members = cluster.nodes.len();
    let quota = cluster.tuning.quota_backend_bytes;
    let on = |what: &str| format!("etcd cluster \"{{{{ $labels.cluster }}}}\": {what}");
    let member = |what: &str| {
        format!(
            "etcd cluster \"{{{{ $labels.cluster }}}}\": {what} on member {{{{ $labels.node }}}}."
        )
    };
    let quantile = |metric: &str, over: &str| {
        format!("histogram_quantile(0.99, rate({metric}{{{sel}}}[5m])) > {over}")
    };
    let mut v = vec![
        Alert {
            name: "etcdMembersDown",
            expr: format!(
                "max without (endpoint) (sum without (instance, node) (up{{{sel}}} == bool 0) or count without (To) (sum without (instance, node) (rate(etcd_network_peer_sent_failures_total{{{sel}}}[{}s])) > 0.01)) > 0",
                SCRAPE_INTERVAL_SECONDS * 4
            ),
            for_: 20 * MIN,
            severity: "warning",
            summary: "etcd cluster members are down.".into(),
            description: on("members are down, or their peers cannot reach them."),
        },
        Alert {
            name: "etcdInsufficientMembers",
            expr: format!(
                "sum without (instance, node) (up{{{sel}}} == bool 1) < {}",
                quorum(members)
            ),
            for_: 3 * MIN,
            severity: "critical",
            summary: "etcd cluster has insufficient number of members.".into(),
            description: on(&format!(
                "fewer than {} of its {members} members are up: no quorum.",
                quorum(members)
            )),
        },
        Alert {
            name: "etcdNoLeader",
            expr: format!("etcd_server_has_leader{{{sel}}} == 0"),
            for_: MIN,
            severity: "critical",
            summary: "etcd cluster has no leader.".into(),
            description: member("no leader"),
        },
        Alert {
            name: "etcdHighNumberOfLeaderChanges",
            expr: format!(
                "increase((max without (instance, node) (etcd_server_leader_changes_seen_total{{{sel}}}) or 0*absent(etcd_server_leader_changes_seen_total{{{sel}}}))[15m:1m]) >= 4"
            ),
            for_: 5 * MIN,
            severity: "warning",
            summary: "etcd cluster has high number of leader changes.".into(),
            description: on(
                "4 or more leader changes within the last 15 minutes; frequent elections may be a sign of insufficient resources, high network latency, or disruptions by other components.",
            ),
        },
    ];
    for (over, severity) in [("0.5", "warning"), ("1", "critical")] {
        v.push(Alert {
            name: "etcdHighFsyncDurations",
            expr: quantile("etcd_disk_wal_fsync_duration_seconds_bucket", over),
            for_: 10 * MIN,
            severity,
            summary: "etcd cluster 99th percentile fsync durations are too high.".into(),
            description: member(&format!(
                "99th percentile of WAL fsync durations above {over}s"
            )),
        });
    }
    v.extend([
        Alert {
            name: "etcdHighCommitDurations",
            expr: quantile("etcd_disk_backend_commit_duration_seconds_bucket", "0.25"),
            for_: 10 * MIN,
            severity: "warning",
            summary: "etcd cluster 99th percentile commit durations are too high.".into(),
            description: member("99th percentile of backend commit durations above 0.25s"),
        },
        Alert {
            name: "etcdDatabaseQuotaLowSpace",
            expr: format!(
                "last_over_time(etcd_mvcc_db_total_size_in_bytes{{{sel}}}[5m]) > {}",
                quota_low_space(quota)
            ),
            for_: 10 * MIN,
            severity: "critical",
            summary: "etcd cluster database is running full.".into(),
            description: member(&format!(
                "database above 95% of its quota of {quota} bytes (tuning.quota_backend_bytes); defragment (etcd-maint quota-recover once the alarm is raised) or raise the quota, as writes stop when it is full"
            )),
        },
        Alert {
            name: "etcdExcessiveDatabaseGrowth",
            expr: format!(
                "predict_linear(etcd_mvcc_db_total_size_in_bytes{{{sel}}}[4h], 4*60*60) > {quota}"
            ),
            for_: 10 * MIN,
            severity: "warning",
            summary: "etcd cluster database growing very fast.".into(),
            description: member(&format!(
                "at the rate of the past four hours, the database reaches its quota of {quota} bytes within four hours"
            )),
        },
        Alert {
            name: "etcdDatabaseHighFragmentationRatio",
            expr: format!(
                "(last_over_time(etcd_mvcc_db_total_size_in_use_in_bytes{{{sel}}}[5m]) / last_over_time(etcd_mvcc_db_total_size_in_bytes{{{sel}}}[5m])) < 0.5 and etcd_mvcc_db_total_size_in_use_in_bytes{{{sel}}} > {FRAGMENTATION_FLOOR}"
            ),
            for_: 10 * MIN,
            severity: "warning",
            summary: "etcd database size in use is less than 50% of the actual allocated storage.".into(),
            description: member("less than half of the database file in use; defragment it (etcdctl defrag) to give the space back"),
        },
    ]);
    for (days, severity) in [
        (CERT_WARN_DAYS, "warning"),
        (CERT_CRITICAL_DAYS, "critical"),
    ] {
        v.push(Alert {
            name: "etcdpackCertificateExpiry",
            expr: format!("etcdpack_cert_not_after_seconds{{{mine}}} - time() < {}", days * 86400),
            for_: 10 * MIN,
            severity,
            summary: "etcd member certificate expires soon.".into(),
            description: member(&format!(
                "the certificate expires within {days} days; run etcdpack gen and install the node's new package"
            )),
        });
    }
    if cluster.backup.enabled {
        let limit = cluster.backup.interval.as_secs() * 2;
        v.push(Alert {
            name: "etcdpackBackupTooOld",
            expr: format!(
                "time() - etcdpack_backup_last_success_timestamp_seconds{{{mine}}} > {limit}"
            ),
            for_: 10 * MIN,
            severity: "warning",
            summary: "etcd member backup is too old.".into(),
            description: member(&format!(
                "no snapshot for over {limit} seconds, twice backup.interval; see journalctl -u etcd-backup.service"
            )),
        });
    }
    v
}

/// `alerts` as a Prometheus rule file: one group, named after the job.
/// Every string is written as a JSON string, which YAML reads as the same
/// double-quoted scalar.
pub fn rules_yaml(cluster: &Cluster, alerts: &[Alert]) -> String {
    let q = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let mut s = format!(
        "# Prometheus alerting rules of etcd cluster {}, written by etcdpack {}:\n\
         # the etcd mixin's alerts, with this cluster's quorum ({} of {} members) and\n\
         # quota ({} bytes), and etcdpack's on the textfile metrics of etcd-maint.\n\
         groups:\n  - name: {}\n    rules:\n",
        cluster.name,
        env!("CARGO_PKG_VERSION"),
        quorum(cluster.nodes.len()),
        cluster.nodes.len(),
        cluster.tuning.quota_backend_bytes,
        q(&job(cluster)),
    );
    for a in alerts {
        s.push_str(&format!(
            "      - alert: {}\n        expr: {}\n        for: {}\n        labels:\n          severity: {}\n        annotations:\n          summary: {}\n          description: {}\n",
            q(a.name),
            q(&a.expr),
            prom_duration(a.for_),
            q(a.severity),
            q(&a.summary),
            q(&a.description),
        ));
    }
    s
}

/// A Prometheus duration: `20m`, `1h`, `90s`.
fn prom_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s > 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}
