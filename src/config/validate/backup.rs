//! `backup:`: where `etcd-maint backup` keeps snapshots on a node, how many,
//! and how often the timer takes one.

use super::install::{is_within, system_dir};
use super::*;
use crate::config::raw::RawBackup;

pub const DEFAULT_DIR: &str = "/var/backups/etcd";
pub const DEFAULT_KEEP: u32 = 7;
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// A snapshot of a large member takes a while; more often than this is a
/// mistake, not a schedule.
const MIN_INTERVAL: Duration = Duration::from_secs(60);

pub(super) fn backup(c: &mut Checker, raw: &RawBackup, paths: &Paths) -> Backup {
    let interval = raw
        .interval
        .as_ref()
        .and_then(|v| interval(c, v))
        .unwrap_or(DEFAULT_INTERVAL);
    let dir = match &raw.dir {
        None => DEFAULT_DIR.to_owned(),
        Some(d) => {
            if let Some(why) = dir_problem(&d.value, paths) {
                let at = c.at(d);
                c.problem(
                    Rule::Backup,
                    at,
                    format!("backup.dir \"{}\" {why}", d.value),
                    format!(
                        "give the snapshots a directory of their own, e.g. {DEFAULT_DIR}: not a system directory, and apart from paths.install_dir (the package's, removed with it) and paths.data_dir (etcd's)"
                    ),
                );
            }
            d.value.clone()
        }
    };
    let keep = match &raw.keep {
        None => DEFAULT_KEEP,
        Some(k) if k.value == 0 => {
            let at = c.at(k);
            c.problem(
                Rule::Backup,
                at,
                "backup.keep is 0: every snapshot would be removed as soon as it is written",
                format!("keep at least 1 snapshot (default: {DEFAULT_KEEP})"),
            );
            DEFAULT_KEEP
        }
        Some(k) => k.value,
    };
    Backup {
        enabled: raw.enabled.unwrap_or(false),
        interval,
        dir,
        keep,
    }
}

/// The timer's interval: a duration with a unit, whole seconds, at least
/// [`MIN_INTERVAL`]; `None` after a problem is recorded.
fn interval(c: &mut Checker, v: &S<Quantity>) -> Option<Duration> {
    let shown = match &v.value {
        Quantity::Int(n) => n.to_string(),
        Quantity::Text(t) => format!("{t:?}"),
    };
    let bare = match &v.value {
        Quantity::Int(_) => true,
        Quantity::Text(t) => t.trim().parse::<u64>().is_ok(),
    };
    let problem = if bare {
        Err(format!("backup.interval {shown} has no unit"))
    } else {
        match units::parse_duration(&v.value, Duration::from_secs(1)) {
            Err(e) => Err(format!("backup.interval: {e}")),
            Ok(d) if d.subsec_nanos() != 0 => Err(format!(
                "backup.interval {shown} is not a whole number of seconds"
            )),
            Ok(d) if d < MIN_INTERVAL => {
                Err(format!("backup.interval {shown} is shorter than a minute"))
            }
            Ok(d) => Ok(d),
        }
    };
    match problem {
        Ok(d) => Some(d),
        Err(message) => {
            let at = c.at(v);
            c.problem(
                Rule::Backup,
                at,
                message,
                "write a duration with its unit, such as \"6h\", \"30m\" or \"1d\" (at least 1m)",
            );
            None
        }
    }
}

/// Why `dir` cannot hold the snapshots, if it cannot.
fn dir_problem(dir: &str, paths: &Paths) -> Option<String> {
    if !is_clean_abs_path(dir) {
        return Some(
            "is not a clean absolute path (no '..', '.', spaces or trailing '/')".to_owned(),
        );
    }
    if let Some(sys) = system_dir(dir) {
        return Some(if sys.trim_end_matches('*') == dir {
            "is a system directory".to_owned()
        } else {
            format!("is a system directory holding {sys}")
        });
    }
    for (key, other) in [
        ("paths.install_dir", &paths.install_dir),
        ("paths.data_dir", &paths.data_dir),
    ] {
        if is_within(dir, other) {
            return Some(format!("is inside {key} \"{other}\""));
        }
        if is_within(other, dir) {
            return Some(format!("holds {key} \"{other}\""));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{Cluster, ConfigError, Overrides, Rule, parse};

    fn with(backup: &str) -> Result<Cluster, ConfigError> {
        let text = format!(
            "version: 1\ncluster: {{ name: k8s }}\nnodes:\n  - {{ name: etcd-1, ip: 192.168.0.1 }}\n{backup}"
        );
        parse(Path::new("cluster.yaml"), &text, &Overrides::default())
    }

    fn problems(backup: &str) -> Vec<(Rule, String)> {
        match with(backup) {
            Err(ConfigError::Invalid(p)) => p
                .into_iter()
                .map(|p| {
                    (
                        p.rule,
                        format!("{}: {}\n  help: {}", p.at, p.message, p.help),
                    )
                })
                .collect(),
            other => panic!("{backup}: {other:?}"),
        }
    }

    #[test]
    fn defaults_and_accepted_values() {
        let b = with("").unwrap().backup;
        assert!(!b.enabled);
        assert_eq!(b.interval, Duration::from_secs(86400));
        assert_eq!(b.dir, "/var/backups/etcd");
        assert_eq!(b.keep, 7);
        let b =
            with("backup: { enabled: true, interval: 1h30m, dir: /srv/etcd-backups, keep: 1 }\n")
                .unwrap()
                .backup;
        assert!(b.enabled);
        assert_eq!(b.interval, Duration::from_secs(5400));
        assert_eq!(b.dir, "/srv/etcd-backups");
        assert_eq!(b.keep, 1);
        assert_eq!(
            with("backup: { interval: 1m }\n").unwrap().backup.interval,
            Duration::from_secs(60)
        );
    }

    #[test]
    fn the_interval_needs_a_unit_whole_seconds_and_a_minute() {
        for (interval, says) in [
            ("6", "backup.interval 6 has no unit"),
            ("\"6\"", "backup.interval \"6\" has no unit"),
            ("30s", "backup.interval \"30s\" is shorter than a minute"),
            (
                "90500ms",
                "backup.interval \"90500ms\" is not a whole number of seconds",
            ),
            ("daily", "backup.interval: \"daily\" is not a duration"),
            ("6 hours", "has an unknown unit"),
        ] {
            let p = problems(&format!("backup:\n  interval: {interval}\n"));
            assert_eq!(p.len(), 1, "{interval}: {p:?}");
            assert_eq!(p[0].0, Rule::Backup);
            assert!(
                p[0].1.starts_with("cluster.yaml:6:13: ") && p[0].1.contains(says),
                "{interval}: {}",
                p[0].1
            );
            assert!(p[0].1.contains("help: write a duration with its unit"));
        }
    }

    #[test]
    fn the_directory_is_clean_absolute_and_nobody_elses() {
        for (dir, says) in [
            ("var/backups/etcd", "is not a clean absolute path"),
            ("/var/backups/../etcd", "is not a clean absolute path"),
            ("/var/backups", "is a system directory"),
            ("/usr", "is a system directory"),
            (
                "/opt/etcd/backups",
                "is inside paths.install_dir \"/opt/etcd\"",
            ),
            (
                "/var/lib/etcd/default.etcd",
                "is inside paths.data_dir \"/var/lib/etcd/default.etcd\"",
            ),
            ("/var/lib/etcd", "holds paths.data_dir"),
        ] {
            let p = problems(&format!("backup: {{ dir: {dir} }}\n"));
            assert_eq!(p.len(), 1, "{dir}: {p:?}");
            assert_eq!(p[0].0, Rule::Backup);
            assert!(
                p[0].1.contains(&format!("backup.dir \"{dir}\" {says}"))
                    && p[0]
                        .1
                        .contains("help: give the snapshots a directory of their own"),
                "{dir}: {}",
                p[0].1
            );
        }
    }

    #[test]
    fn at_least_one_snapshot_is_kept() {
        let p = problems("backup: { keep: 0 }\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, Rule::Backup);
        assert!(
            p[0].1.contains("cluster.yaml:5:17: backup.keep is 0"),
            "{}",
            p[0].1
        );
    }
}
