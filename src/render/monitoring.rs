//! The files a cluster's Prometheus needs, written to `OUT/monitoring/`:
//! a scrape config to merge into `prometheus.yml`, the file_sd targets it
//! names (each member's metrics listener, labelled `cluster` and `node`),
//! and the alerting rules with this cluster's thresholds
//! ([`super::alerts`]). Every value comes from the config, so the files
//! change only when it does.

use serde_json::json;

use super::alerts::{self, Alert};
use crate::config::Cluster;

/// The scrape config: `rule_files` and `scrape_configs`, to merge into
/// the server's `prometheus.yml` (a valid config on its own too).
pub const SCRAPE_CONFIG: &str = "prometheus.yml";
/// The file_sd targets, one per member.
pub const TARGETS: &str = "targets.json";
/// The alerting rules.
pub const RULES: &str = "rules.yml";

pub use super::alerts::job;

/// Where the scrape config expects the other two files, relative to the
/// server's `prometheus.yml`: a directory of the cluster's own.
pub fn dir_on_server(cluster: &Cluster) -> String {
    format!("etcd-{}", cluster.name)
}

/// Every file of `OUT/monitoring/`, by name, with its contents, the rules
/// from `alerts` (normally [`alerts::alerts`] of `cluster`).
pub fn files(cluster: &Cluster, alerts: &[Alert]) -> Vec<(&'static str, String)> {
    vec![
        (SCRAPE_CONFIG, scrape_config(cluster)),
        (TARGETS, targets(cluster)),
        (RULES, alerts::rules_yaml(cluster, alerts)),
    ]
}

fn scrape_config(cluster: &Cluster) -> String {
    let q = |s: &str| serde_json::to_string(s).expect("a string serialises");
    let dir = dir_on_server(cluster);
    format!(
        "# Prometheus scrape config of etcd cluster {name}, written by etcdpack {version}.\n\
         # Copy this directory to the server as {dir}/ beside its prometheus.yml, and\n\
         # merge the two lists below into it (or use this file as it is). Each member\n\
         # serves /metrics in plain http at metrics.listen:metrics.port ({listen});\n\
         # {targets} lists them, labelled cluster and node, and is re-read when it changes.\n\
         rule_files:\n  - {rules}\n\
         scrape_configs:\n  - job_name: {job}\n    scheme: http\n    metrics_path: /metrics\n    file_sd_configs:\n      - files:\n          - {targets_path}\n",
        name = cluster.name,
        version = env!("CARGO_PKG_VERSION"),
        listen = cluster.metrics.listen.as_str(),
        targets = TARGETS,
        rules = q(&format!("{dir}/{RULES}")),
        job = q(&job(cluster)),
        targets_path = q(&format!("{dir}/{TARGETS}")),
    )
}

fn targets(cluster: &Cluster) -> String {
    let list: Vec<_> = cluster
        .nodes
        .iter()
        .map(|n| {
            let url = super::metrics_url(cluster, n);
            let target = url.strip_prefix("http://").unwrap_or(&url);
            json!({
                "targets": [target],
                "labels": { "cluster": cluster.name, "node": n.name },
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&list).expect("json serialises");
    s.push('\n');
    s
}
