//! `tuning`: etcd's timing and storage settings, within the bounds etcd accepts.

use std::time::Duration;

use super::{Checker, HOUR, MAX_ELECTION, MS, SUGGESTED_MAX_QUOTA};
use crate::config::error::Rule;
use crate::config::raw::*;
use crate::config::units;
use crate::config::*;
use crate::release::Line;

pub(super) fn tuning(c: &mut Checker, t: &RawTuning, line: Line) -> Tuning {
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
        enable_v2: enable_v2(c, t, line),
        insecure_localhost_listener: t.insecure_localhost_listener.unwrap_or(false),
    }
}

/// The v2 API: served by default on 3.4 (flannel speaks it), deprecated in
/// 3.5, gone in 3.6.
fn enable_v2(c: &mut Checker, t: &RawTuning, line: Line) -> bool {
    let Some(v) = &t.enable_v2 else {
        return line == Line::V3_4;
    };
    if v.value && line == Line::V3_6 {
        let at = c.at(v);
        c.problem(
            Rule::EnableV2,
            at,
            "tuning.enable_v2: true, but etcd 3.6 has no v2 API",
            "remove it (or set false); clients of the v2 API, such as flannel with its etcd v2 backend, must stay on etcd 3.5 until they move to the v3 API",
        );
        return false;
    }
    if v.value && line == Line::V3_5 {
        let at = c.at(v);
        c.warn(
            at,
            "tuning.enable_v2: the v2 API is deprecated in etcd 3.5 and removed in 3.6\n  help: move its clients (flannel's etcd v2 backend) to the v3 API before upgrading to 3.6",
        );
    }
    v.value
}
