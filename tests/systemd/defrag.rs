//! Scheduled defragmentation under systemd: etcd-defrag.service started on every node at the
//! same moment (as timers that fire together start it) defragments one member at a time, the
//! leader last, while a writer loses nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, Writer, host_etcdctl};
use crate::e2e;
use crate::support::json_number as number;

/// Each member's (database size, in use, leads), from its own endpoint status.
fn statuses(c: &Cluster, pki: &Path) -> Vec<(u64, u64, bool)> {
    (1..=3)
        .map(|i| {
            let out = host_etcdctl(&c.endpoint(i), pki)
                .args(["endpoint", "status", "-w", "json"])
                .output()
                .unwrap();
            let json = String::from_utf8_lossy(&out.stdout).into_owned();
            (
                number(&json, "dbSize"),
                number(&json, "dbSizeInUse"),
                number(&json, "member_id") == number(&json, "leader"),
            )
        })
        .collect()
}

fn free((size, in_use, _): (u64, u64, bool)) -> u64 {
    (size - in_use) * 100 / size
}

fn ctl(c: &Cluster, pki: &Path, args: &[&str]) {
    let endpoints: Vec<String> = (1..=3).map(|i| c.endpoint(i)).collect();
    let out = host_etcdctl(&endpoints.join(","), pki)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The text right after `marker` up to and including the next `Z` (a time stamp).
fn stamp_after(said: &str, marker: &str) -> Option<String> {
    let rest = &said[said.find(marker)? + marker.len()..];
    Some(rest[..rest.find('Z')? + 1].to_owned())
}

/// Fragments every member (3 MB kept, 15 MB written, deleted and compacted away), starts
/// etcd-defrag.service on all three nodes at once, and checks the journals, the members'
/// databases and the writer. The cluster's config has `defrag: { enabled: true,
/// threshold: 40, min_size: 2MiB }`.
pub fn defragment_all_at_once(c: &Cluster, pki: &Path) {
    let value = "x".repeat(100_000);
    for k in 0..30 {
        ctl(c, pki, &["put", &format!("/e2e/live/{k}"), &value]);
    }
    for k in 0..150 {
        ctl(c, pki, &["put", &format!("/e2e/junk/{k}"), &value]);
    }
    ctl(c, pki, &["del", "--prefix", "/e2e/junk/"]);
    let rev = {
        let out = host_etcdctl(&c.endpoint(1), pki)
            .args(["endpoint", "status", "-w", "json"])
            .output()
            .unwrap();
        number(&String::from_utf8_lossy(&out.stdout), "revision")
    };
    ctl(c, pki, &["compact", &rev.to_string(), "--physical"]);
    // Freed pages count once no read holds them: after the next commits.
    let before = e2e::wait_for(Duration::from_secs(60), || {
        ctl(c, pki, &["put", "/e2e/tick", "1"]);
        let s = statuses(c, pki);
        s.iter().all(|s| free(*s) > 60).then_some(s)
    })
    .unwrap_or_else(|| panic!("not fragmented: {:?}", statuses(c, pki)));
    let leader = before.iter().position(|s| s.2).expect("no leader") + 1;

    let writer = Writer::start(c, pki);
    let since = c.node(1).exec_ok(&["date", "-u", "+%Y-%m-%d %H:%M:%S"]);
    for i in 1..=3 {
        c.node(i)
            .exec_ok(&["systemctl", "start", "--no-block", "etcd-defrag.service"]);
    }
    let started = Instant::now();
    for i in 1..=3 {
        let done = e2e::wait_for(Duration::from_secs(180), || {
            let (active, result) = unit_state(c, i, "etcd-defrag.service");
            (active == "inactive" && result == "success").then_some(())
        });
        assert!(
            done.is_some(),
            "etcd-{i}'s defrag did not finish: {:?}\n{}",
            unit_state(c, i, "etcd-defrag.service"),
            journal(c, i, since.trim())
        );
    }
    let took = started.elapsed();
    let acked = writer.stop();

    let mut windows = Vec::new();
    for i in 1..=3 {
        let said = journal(c, i, since.trim());
        let marker = format!("==> defrag of etcd-{i} ({}) started at ", c.endpoint(i));
        let start = stamp_after(&said, &marker)
            .unwrap_or_else(|| panic!("etcd-{i} not defragmented:\n{said}"));
        let end = stamp_after(&said, &format!("defrag of etcd-{i} finished at "))
            .unwrap_or_else(|| panic!("etcd-{i} did not finish:\n{said}"));
        windows.push((start, end, i));
    }
    windows.sort();
    for w in windows.windows(2) {
        assert!(w[0].1 < w[1].0, "overlapping defrags: {windows:?}");
    }
    assert_eq!(windows[2].2, leader, "the leader was not last: {windows:?}");
    let after = statuses(c, pki);
    for (i, s) in after.iter().enumerate() {
        assert!(
            free(*s) <= 40 && s.0 < before[i].0 / 2,
            "etcd-{}: {before:?} → {after:?}",
            i + 1
        );
    }
    c.assert_written(&acked);
    eprintln!(
        "defrag of three members by their timers' service in {took:?}, one at a time, etcd-{leader} (the leader) last: {windows:?}; {} writes acknowledged",
        acked.len()
    );
}

/// etcd-defrag.service's journal on node `i` since `since`, as etcd-maint wrote it.
fn journal(c: &Cluster, i: usize, since: &str) -> String {
    c.node(i).exec_ok(&[
        "journalctl",
        "-u",
        "etcd-defrag.service",
        "--since",
        since,
        "-o",
        "cat",
        "--no-pager",
    ])
}

/// `unit`'s ActiveState and Result on node `i`.
fn unit_state(c: &Cluster, i: usize, unit: &str) -> (String, String) {
    let property = |p: &str| {
        c.node(i)
            .exec_ok(&["systemctl", "show", "-P", p, unit])
            .trim()
            .to_owned()
    };
    (property("ActiveState"), property("Result"))
}
