//! `tuning`: etcd's timing and storage settings, within the bounds etcd accepts.

use std::time::Duration;

use super::{Checker, HOUR, MAX_ELECTION, MS, SUGGESTED_MAX_QUOTA};
use crate::config::error::Rule;
use crate::config::raw::*;
use crate::config::units;
use crate::config::*;

pub(super) fn tuning(c: &mut Checker, t: &RawTuning) -> Tuning {
    let heartbeat = c.duration(
        "tuning.heartbeat_interval",
        &t.heartbeat_interval,
        MS,
        Duration::from_millis(100),
    );
    let election = c.duration(
        "tuning.election_timeout",
        &t.election_timeout,
        MS,
        Duration::from_millis(1000),
    );
    if heartbeat < MS || !heartbeat.subsec_nanos().is_multiple_of(1_000_000) {
        let at = c.at_or_file(&t.heartbeat_interval);
        c.problem(
            Rule::Heartbeat,
            at,
            format!("tuning.heartbeat_interval {heartbeat:?} is not a whole number of milliseconds of at least 1ms"),
            "etcd counts the heartbeat in milliseconds; 100ms suits a LAN",
        );
    } else if election < heartbeat * 5 {
        let at = c.at_or_file(&t.election_timeout);
        c.problem(
            Rule::ElectionTooShort,
            at,
            format!(
                "tuning.election_timeout {}ms is less than 5 x heartbeat_interval ({}ms); etcd refuses to start",
                election.as_millis(),
                heartbeat.as_millis()
            ),
            format!("raise election_timeout to at least {}ms (10x the heartbeat is usual)", (heartbeat * 5).as_millis()),
        );
    }
    if election > MAX_ELECTION {
        let at = c.at_or_file(&t.election_timeout);
        c.problem(
            Rule::ElectionTooLong,
            at,
            format!(
                "tuning.election_timeout {}ms is above 50000ms; etcd refuses to start",
                election.as_millis()
            ),
            "use at most 50000ms",
        );
    }
    let quota = match &t.quota_backend_bytes {
        None => SUGGESTED_MAX_QUOTA,
        Some(q) => match units::parse_size(&q.value) {
            Ok(0) => {
                let at = c.at(q);
                c.problem(
                    Rule::Size,
                    at,
                    "tuning.quota_backend_bytes is 0",
                    "give a size such as \"8GiB\"",
                );
                0
            }
            Ok(n) => {
                if n > SUGGESTED_MAX_QUOTA {
                    let at = c.at(q);
                    c.warn(at, format!("tuning.quota_backend_bytes {n} is above 8GiB, which etcd advises against"));
                }
                n
            }
            Err(e) => {
                let at = c.at(q);
                c.problem(
                    Rule::Size,
                    at,
                    format!("tuning.quota_backend_bytes: {e}"),
                    "give a size such as \"8GiB\" or \"2147483648\"",
                );
                0
            }
        },
    };
    let retention = c.duration(
        "tuning.auto_compaction_retention",
        &t.auto_compaction_retention,
        HOUR,
        HOUR,
    );
    Tuning {
        heartbeat_interval: heartbeat,
        election_timeout: election,
        quota_backend_bytes: quota,
        auto_compaction_retention: retention,
        enable_v2: t.enable_v2.unwrap_or(true),
        insecure_localhost_listener: t.insecure_localhost_listener.unwrap_or(false),
    }
}
