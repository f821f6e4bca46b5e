//! `defrag:`: which members `etcd-maint defrag` defragments, and how often
//! the timer looks.

use super::*;
use crate::config::raw::RawDefrag;

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// etcd's own alert, etcdDatabaseHighFragmentationRatio: more than half of
/// the file free, in a database of more than 100MiB.
pub const DEFAULT_THRESHOLD: u32 = 50;
pub const DEFAULT_MIN_SIZE: u64 = 100 << 20;

pub(super) fn defrag(c: &mut Checker, raw: &RawDefrag) -> Defrag {
    let interval = raw
        .interval
        .as_ref()
        .and_then(|v| super::backup::interval(c, Rule::Defrag, "defrag.interval", v))
        .unwrap_or(DEFAULT_INTERVAL);
    let threshold = match &raw.threshold {
        None => DEFAULT_THRESHOLD,
        Some(t) if (1..=99).contains(&t.value) => t.value,
        Some(t) => {
            let at = c.at(t);
            c.problem(
                Rule::Defrag,
                at,
                format!(
                    "defrag.threshold {} is not a percentage from 1 to 99",
                    t.value
                ),
                format!(
                    "give the share of free space, in percent, above which a member is defragmented (default: {DEFAULT_THRESHOLD})"
                ),
            );
            DEFAULT_THRESHOLD
        }
    };
    let min_size = match &raw.min_size {
        None => DEFAULT_MIN_SIZE,
        Some(s) => match units::parse_size(&s.value) {
            Ok(n) => n,
            Err(e) => {
                let at = c.at(s);
                c.problem(
                    Rule::Defrag,
                    at,
                    format!("defrag.min_size: {e}"),
                    "write a size such as \"100MiB\" or \"1GB\" (a bare number is bytes)",
                );
                DEFAULT_MIN_SIZE
            }
        },
    };
    Defrag {
        enabled: raw.enabled.unwrap_or(false),
        interval,
        threshold,
        min_size,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{Cluster, ConfigError, Overrides, Rule, parse};

    fn with(defrag: &str) -> Result<Cluster, ConfigError> {
        let text = format!(
            "version: 1\ncluster: {{ name: k8s }}\nnodes:\n  - {{ name: etcd-1, ip: 192.168.0.1 }}\n{defrag}"
        );
        parse(Path::new("cluster.yaml"), &text, &Overrides::default())
    }

    fn problems(defrag: &str) -> Vec<(Rule, String)> {
        match with(defrag) {
            Err(ConfigError::Invalid(p)) => p
                .into_iter()
                .map(|p| (p.rule, format!("{}: {}", p.at, p.message)))
                .collect(),
            other => panic!("{defrag}: {other:?}"),
        }
    }

    #[test]
    fn defaults_and_accepted_values() {
        let d = with("").unwrap().defrag;
        assert!(!d.enabled);
        assert_eq!(d.interval, Duration::from_secs(86400));
        assert_eq!((d.threshold, d.min_size), (50, 100 << 20));
        let d = with("defrag: { enabled: true, interval: 6h, threshold: 30, min_size: 1GB }\n")
            .unwrap()
            .defrag;
        assert!(d.enabled);
        assert_eq!(d.interval, Duration::from_secs(6 * 3600));
        assert_eq!((d.threshold, d.min_size), (30, 1_000_000_000));
        assert_eq!(
            with("defrag: { min_size: 0 }\n").unwrap().defrag.min_size,
            0
        );
    }

    #[test]
    fn bad_values_are_named_with_their_place() {
        for (entry, says) in [
            (
                "threshold: 0",
                "5:22: defrag.threshold 0 is not a percentage",
            ),
            (
                "threshold: 100",
                "5:22: defrag.threshold 100 is not a percentage",
            ),
            (
                "min_size: lots",
                "5:21: defrag.min_size: \"lots\" is not a size",
            ),
            ("interval: 30s", "5:21: defrag.interval \"30s\" is shorter"),
            ("interval: 6", "5:21: defrag.interval 6 has no unit"),
        ] {
            let p = problems(&format!("defrag: {{ {entry} }}\n"));
            assert_eq!(p.len(), 1, "{entry}: {p:?}");
            assert_eq!(p[0].0, Rule::Defrag);
            assert!(p[0].1.contains(says), "{entry}: {}", p[0].1);
        }
    }
}
