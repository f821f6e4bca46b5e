//! The Prometheus files `gen` writes to `OUT/monitoring/`, checked by
//! Prometheus's own `promtool`: the scrape config loads inside a full
//! `prometheus.yml` (with the targets and rules it names), the rules
//! load, and rule unit tests make every alert fire and then resolve. The
//! thresholds that come from the config are shown to follow it: two quotas
//! give two limits, which the same series crosses for one and not the
//! other; so do two node counts for the quorum, and two backup intervals.

mod support;

use std::path::Path;
use std::process::Command;

use etcdpack::config::{Cluster, Overrides};
use etcdpack::render::alerts::{self, Alert};
use etcdpack::render::monitoring;
use serde_json::{Value, json};

fn cluster(nodes: usize, extra: &str) -> Cluster {
    let mut yaml = String::from("version: 1\ncluster: { name: test }\nnodes:\n");
    for i in 1..=nodes {
        yaml.push_str(&format!("  - {{ name: etcd-{i}, ip: 10.0.0.{i} }}\n"));
    }
    yaml.push_str(extra);
    etcdpack::config::parse(Path::new("cluster.yaml"), &yaml, &Overrides::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `OUT/monitoring/` of `c` as gen writes it, into `dir`.
fn write(c: &Cluster, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in monitoring::files(c, &alerts::alerts(c)) {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// The labels a member's series carries when scraped by the generated job.
fn member(node: &str) -> String {
    format!(
        "job=\"etcd-test\",instance=\"10.0.0.{}:2381\",node=\"{node}\",cluster=\"test\"",
        &node[5..]
    )
}

fn series(metric: &str, labels: &str, values: &str) -> Value {
    json!({ "series": format!("{metric}{{{labels}}}"), "values": values })
}

/// The alert `name` (of `severity`) of `rules` as promtool reports it with
/// `labels`: the annotations expanded as Prometheus does.
fn expect(rules: &[Alert], name: &str, severity: &str, labels: Value) -> Value {
    let a = rules
        .iter()
        .find(|a| a.name == name && a.severity == severity)
        .unwrap_or_else(|| panic!("no {name} {severity}"));
    let node = labels
        .get("node")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let expand = |t: &str| {
        let t = t.replace("{{ $labels.cluster }}", "test");
        match &node {
            Some(n) => t.replace("{{ $labels.node }}", n),
            None => t,
        }
    };
    let mut labels = labels;
    labels["severity"] = json!(severity);
    json!({
        "exp_labels": labels,
        "exp_annotations": { "summary": expand(&a.summary), "description": expand(&a.description) },
    })
}

/// A rule unit test: `input` as series every `interval`, and for each
/// `(eval_time, alertname, expected alerts)`.
fn case(interval: &str, input: Vec<Value>, checks: Vec<(&str, &str, Vec<Value>)>) -> Value {
    json!({
        "interval": interval,
        "input_series": input,
        "alert_rule_test": checks
            .into_iter()
            .map(|(t, name, alerts)| json!({ "eval_time": t, "alertname": name, "exp_alerts": alerts }))
            .collect::<Vec<_>>(),
    })
}

/// Run `tests` against `c`'s rules with `promtool test rules` (a JSON
/// file is a YAML file).
fn test_rules(c: &Cluster, tests: Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    write(c, dir.path());
    let file =
        json!({ "rule_files": [monitoring::RULES], "evaluation_interval": "1m", "tests": tests });
    std::fs::write(dir.path().join("test.yml"), file.to_string()).unwrap();
    promtool(&["test", "rules", "test.yml"], dir.path());
}

fn cluster_labels() -> Value {
    json!({ "job": "etcd-test", "cluster": "test" })
}

fn member_labels(node: &str) -> Value {
    json!({ "job": "etcd-test", "instance": format!("10.0.0.{}:2381", &node[5..]), "node": node, "cluster": "test" })
}

#[test]
fn the_scrape_config_and_rules_load_in_prometheus() {
    support::require!(support::PROMTOOL);
    let c = cluster(3, "metrics: { listen: node }\nbackup: { enabled: true }\n");
    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join(monitoring::dir_on_server(&c));
    write(&c, &own);
    // The server's prometheus.yml: its own settings, and the generated
    // fragment's two lists merged in.
    let fragment = std::fs::read_to_string(own.join(monitoring::SCRAPE_CONFIG)).unwrap();
    let full = format!("global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n{fragment}");
    std::fs::write(dir.path().join("prometheus.yml"), full).unwrap();
    let out = promtool(&["check", "config", "prometheus.yml"], dir.path());
    assert!(out.contains("SUCCESS"), "{out}");
    let out = promtool(
        &[
            "check",
            "rules",
            &format!("etcd-test/{}", monitoring::RULES),
        ],
        dir.path(),
    );
    assert!(out.contains("SUCCESS"), "{out}");
    // One target per node, at its metrics listener, labelled.
    let targets: Value =
        serde_json::from_str(&std::fs::read_to_string(own.join(monitoring::TARGETS)).unwrap())
            .unwrap();
    assert_eq!(targets.as_array().unwrap().len(), 3);
    assert_eq!(targets[1]["targets"][0], "10.0.0.2:2381");
    assert_eq!(
        targets[1]["labels"],
        json!({ "cluster": "test", "node": "etcd-2" })
    );
    // An IPv6 node is bracketed.
    let v6 = etcdpack::config::parse(
        Path::new("c.yaml"),
        "version: 1\ncluster: { name: six }\nnodes: [{ name: a, ip: \"fd00::1\" }]\nmetrics: { listen: node, port: 9379 }\n",
        &Overrides::default(),
    )
    .unwrap();
    let files = monitoring::files(&v6, &alerts::alerts(&v6));
    assert!(files[1].1.contains("\"[fd00::1]:9379\""), "{}", files[1].1);
}

#[test]
fn every_etcd_alert_fires_and_resolves() {
    support::require!(support::PROMTOOL);
    let c = cluster(3, "");
    let r = alerts::alerts(&c);
    let (a, b, cc) = (member("etcd-1"), member("etcd-2"), member("etcd-3"));
    let mut tests = vec![
        case(
            "1m",
            vec![
                series("up", &a, "0x30 1x30"),
                series("up", &b, "1x60"),
                series("up", &cc, "1x60"),
            ],
            vec![
                (
                    "25m",
                    "etcdMembersDown",
                    vec![expect(&r, "etcdMembersDown", "warning", cluster_labels())],
                ),
                ("45m", "etcdMembersDown", vec![]),
            ],
        ),
        case(
            "1m",
            vec![series("etcd_server_has_leader", &a, "0x5 1x5")],
            vec![
                (
                    "3m",
                    "etcdNoLeader",
                    vec![expect(
                        &r,
                        "etcdNoLeader",
                        "critical",
                        member_labels("etcd-1"),
                    )],
                ),
                ("9m", "etcdNoLeader", vec![]),
            ],
        ),
        case(
            "1m",
            vec![series(
                "etcd_server_leader_changes_seen_total",
                &a,
                "0+1x20 20x40",
            )],
            vec![
                (
                    "12m",
                    "etcdHighNumberOfLeaderChanges",
                    vec![expect(
                        &r,
                        "etcdHighNumberOfLeaderChanges",
                        "warning",
                        cluster_labels(),
                    )],
                ),
                ("55m", "etcdHighNumberOfLeaderChanges", vec![]),
            ],
        ),
    ];
    // WAL fsyncs between 0.25s and 1s for 30 minutes (p99 ~0.99s), then
    // between 1s and 2s (p99 ~1.99s), then under 0.25s.
    let bucket = |le: &str, values: &str| {
        series(
            "etcd_disk_wal_fsync_duration_seconds_bucket",
            &format!("{a},le=\"{le}\""),
            values,
        )
    };
    tests.push(case(
        "1m",
        vec![
            bucket("0.25", "0x60 0+10x30"),
            bucket("1", "0+10x30 300x30 300+10x30"),
            bucket("2", "0+10x60 600+10x30"),
            bucket("+Inf", "0+10x60 600+10x30"),
        ],
        vec![
            (
                "25m",
                "etcdHighFsyncDurations",
                vec![expect(
                    &r,
                    "etcdHighFsyncDurations",
                    "warning",
                    member_labels("etcd-1"),
                )],
            ),
            (
                "55m",
                "etcdHighFsyncDurations",
                vec![
                    expect(
                        &r,
                        "etcdHighFsyncDurations",
                        "warning",
                        member_labels("etcd-1"),
                    ),
                    expect(
                        &r,
                        "etcdHighFsyncDurations",
                        "critical",
                        member_labels("etcd-1"),
                    ),
                ],
            ),
            ("85m", "etcdHighFsyncDurations", vec![]),
        ],
    ));
    let commit = |le: &str, values: &str| {
        series(
            "etcd_disk_backend_commit_duration_seconds_bucket",
            &format!("{a},le=\"{le}\""),
            values,
        )
    };
    tests.push(case(
        "1m",
        vec![
            commit("0.1", "0x30 0+10x30"),
            commit("0.5", "0+10x60"),
            commit("+Inf", "0+10x60"),
        ],
        vec![
            (
                "25m",
                "etcdHighCommitDurations",
                vec![expect(
                    &r,
                    "etcdHighCommitDurations",
                    "warning",
                    member_labels("etcd-1"),
                )],
            ),
            ("55m", "etcdHighCommitDurations", vec![]),
        ],
    ));
    // 40% of the database in use, then 90%.
    tests.push(case(
        "1m",
        vec![
            series("etcd_mvcc_db_total_size_in_bytes", &a, "1000000000x60"),
            series(
                "etcd_mvcc_db_total_size_in_use_in_bytes",
                &a,
                "400000000x30 900000000x30",
            ),
        ],
        vec![
            (
                "25m",
                "etcdDatabaseHighFragmentationRatio",
                vec![expect(
                    &r,
                    "etcdDatabaseHighFragmentationRatio",
                    "warning",
                    member_labels("etcd-1"),
                )],
            ),
            ("55m", "etcdDatabaseHighFragmentationRatio", vec![]),
        ],
    ));
    // The certificate 20 days from its expiry, then 5, then renewed.
    tests.push(case(
        "1m",
        vec![series(
            "etcdpack_cert_not_after_seconds",
            "job=\"node\",instance=\"10.0.0.1:9100\",cluster=\"test\",node=\"etcd-1\"",
            "1728000x30 432000x30 999999999x30",
        )],
        vec![
            (
                "25m",
                "etcdpackCertificateExpiry",
                vec![expect(
                    &r,
                    "etcdpackCertificateExpiry",
                    "warning",
                    node_labels(),
                )],
            ),
            (
                "55m",
                "etcdpackCertificateExpiry",
                vec![
                    expect(&r, "etcdpackCertificateExpiry", "warning", node_labels()),
                    expect(&r, "etcdpackCertificateExpiry", "critical", node_labels()),
                ],
            ),
            ("85m", "etcdpackCertificateExpiry", vec![]),
        ],
    ));
    test_rules(&c, tests);
}

fn node_labels() -> Value {
    json!({ "job": "node", "instance": "10.0.0.1:9100", "node": "etcd-1", "cluster": "test" })
}

/// With 3 members, two down is no quorum; with 5, two down still is one.
#[test]
fn the_quorum_follows_the_node_list() {
    support::require!(support::PROMTOOL);
    for (nodes, fires) in [(3, true), (5, false)] {
        let c = cluster(nodes, "");
        let r = alerts::alerts(&c);
        let input: Vec<Value> = (1..=nodes)
            .map(|i| {
                let values = if i <= 2 { "0x10 1x10" } else { "1x20" };
                series("up", &member(&format!("etcd-{i}")), values)
            })
            .collect();
        let alert = if fires {
            vec![expect(
                &r,
                "etcdInsufficientMembers",
                "critical",
                cluster_labels(),
            )]
        } else {
            vec![]
        };
        test_rules(
            &c,
            vec![case(
                "1m",
                input,
                vec![
                    ("5m", "etcdInsufficientMembers", alert),
                    ("15m", "etcdInsufficientMembers", vec![]),
                ],
            )],
        );
    }
}

/// A database of 3GiB is near a quota of 3GiB + 100MiB and far from one of
/// 8GiB; growing by a 256th of the quota a minute, it reaches its quota
/// within four hours, then stops.
#[test]
fn the_database_thresholds_follow_the_quota() {
    support::require!(support::PROMTOOL);
    let size: u64 = 3 << 30;
    for (quota, near) in [("3172MiB", true), ("8GiB", false)] {
        let c = cluster(3, &format!("tuning: {{ quota_backend_bytes: {quota} }}\n"));
        let q = c.tuning.quota_backend_bytes;
        let r = alerts::alerts(&c);
        assert!(
            r.iter()
                .any(|a| a.expr.contains(&alerts::quota_low_space(q).to_string()))
        );
        let a = member("etcd-1");
        let low = if near {
            vec![expect(
                &r,
                "etcdDatabaseQuotaLowSpace",
                "critical",
                member_labels("etcd-1"),
            )]
        } else {
            vec![]
        };
        let step = q / 256;
        test_rules(
            &c,
            vec![
                case(
                    "1m",
                    vec![series(
                        "etcd_mvcc_db_total_size_in_bytes",
                        &a,
                        &format!("{size}x30 {}x30", size / 3),
                    )],
                    vec![
                        ("25m", "etcdDatabaseQuotaLowSpace", low),
                        ("55m", "etcdDatabaseQuotaLowSpace", vec![]),
                    ],
                ),
                case(
                    "1m",
                    vec![series(
                        "etcd_mvcc_db_total_size_in_bytes",
                        &a,
                        &format!("0+{step}x60 {}x600", step * 60),
                    )],
                    vec![
                        (
                            "60m",
                            "etcdExcessiveDatabaseGrowth",
                            vec![expect(
                                &r,
                                "etcdExcessiveDatabaseGrowth",
                                "warning",
                                member_labels("etcd-1"),
                            )],
                        ),
                        ("400m", "etcdExcessiveDatabaseGrowth", vec![]),
                    ],
                ),
            ],
        );
    }
}

/// The last backup 50 hours old is too old with a daily timer (limit 48h),
/// and 13 hours old with a 6-hourly one (limit 12h); one just taken is not.
#[test]
fn the_backup_age_follows_the_interval() {
    support::require!(support::PROMTOOL);
    for (interval, minutes) in [("24h", 50 * 60), ("6h", 13 * 60)] {
        let c = cluster(
            3,
            &format!("backup: {{ enabled: true, interval: {interval} }}\n"),
        );
        let r = alerts::alerts(&c);
        let labels = "job=\"node\",instance=\"10.0.0.1:9100\",cluster=\"test\",node=\"etcd-1\"";
        let fresh = (minutes + 5) * 60;
        test_rules(
            &c,
            vec![case(
                "1m",
                vec![series(
                    "etcdpack_backup_last_success_timestamp_seconds",
                    labels,
                    &format!("0x{} {fresh}x60", minutes + 4),
                )],
                vec![
                    (
                        &format!("{minutes}m"),
                        "etcdpackBackupTooOld",
                        vec![expect(&r, "etcdpackBackupTooOld", "warning", node_labels())],
                    ),
                    (
                        &format!("{}m", minutes + 30),
                        "etcdpackBackupTooOld",
                        vec![],
                    ),
                ],
            )],
        );
    }
    let c = cluster(3, "");
    assert!(
        alerts::alerts(&c)
            .iter()
            .all(|a| a.name != "etcdpackBackupTooOld")
    );
}
