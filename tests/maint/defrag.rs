//! `etcd-maint defrag` on three real members (Debian's etcd 3.4) on
//! 127.0.13.x, each started from its node's tree, with etcd's auth on (the
//! nodes' certificates are root): run on all three nodes at once, it
//! defragments one member at a time, the leader last, and loses no write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::support::json_number as number;

/// Each member's endpoint status: (database size, in use, leads).
fn statuses(root: &Path, eps: &[String]) -> Vec<(u64, u64, bool)> {
    eps.iter()
        .map(|ep| {
            let json = ctl_ok(root, ep, &["endpoint", "status", "-w", "json"]);
            (
                number(&json, "dbSize"),
                number(&json, "dbSizeInUse"),
                number(&json, "member_id") == number(&json, "leader"),
            )
        })
        .collect()
}

/// The free share of a database, in percent.
fn free(size: u64, in_use: u64) -> u64 {
    (size - in_use) * 100 / size
}

/// The time stamp (`…Z`) right after `marker` in `said`, if any.
fn stamp_after<'a>(said: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &said[said.find(marker)? + marker.len()..];
    Some(&rest[..rest.find('Z')? + 1])
}

#[test]
fn defrag_on_every_node_at_once_takes_one_member_at_a_time_the_leader_last() {
    support::require!(support::ROOT, support::STANDIN);
    let ips = ["127.0.13.1", "127.0.13.2", "127.0.13.3"];
    let g = Gen::new(
        &ips,
        "service: { user: root }\ndefrag: { threshold: 40, min_size: 2MiB }\n",
    );
    g.run_ok(&[]);
    let work = tempfile::tempdir().unwrap();
    let Three {
        roots,
        eps,
        all,
        mut members,
    } = Three::start(&g, work.path(), &ips);
    maint_ok(&roots[0], &["auth", "apply"]);

    // 3 MB that stay, and 15 MB written, deleted and compacted away: every
    // member's file mostly free.
    let value = "x".repeat(100_000);
    for k in 0..30 {
        ctl_ok(&roots[0], &all, &["put", &format!("/live/{k}"), &value]);
    }
    for k in 0..150 {
        ctl_ok(&roots[0], &all, &["put", &format!("/junk/{k}"), &value]);
    }
    ctl_ok(&roots[0], &all, &["del", "--prefix", "/junk/"]);
    let rev = number(
        &ctl_ok(&roots[0], &eps[0], &["endpoint", "status", "-w", "json"]),
        "revision",
    );
    ctl_ok(
        &roots[0],
        &all,
        &["compact", &rev.to_string(), "--physical"],
    );
    // The pages compaction frees count as free once no read holds them:
    // after the next commits.
    let deadline = Instant::now() + Duration::from_secs(30);
    let before = loop {
        ctl_ok(&roots[0], &all, &["put", "/tick", "1"]);
        let s = statuses(&roots[0], &eps);
        if s.iter().all(|(size, in_use, _)| free(*size, *in_use) > 60) {
            break s;
        }
        assert!(Instant::now() < deadline, "not fragmented: {s:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let leader = before.iter().position(|s| s.2).expect("no leader");

    // A writer meanwhile, through every member.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, root, all) = (stop.clone(), roots[0].clone(), all.clone());
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut n = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let put = etcdctl(&root, &all)
                    .args(["put", &format!("/w/{n}"), "v"])
                    .output()
                    .unwrap();
                if put.status.success() {
                    acked.push(n);
                }
                n += 1;
            }
            acked
        })
    };

    let started = Instant::now();
    let runs: Vec<_> = roots
        .iter()
        .map(|root| {
            let root = root.clone();
            std::thread::spawn(move || {
                maint(
                    &root,
                    &[
                        "defrag",
                        "--threshold",
                        "40",
                        "--wait",
                        "120",
                        "--retry",
                        "1",
                    ],
                )
            })
        })
        .collect();
    let outs: Vec<Output> = runs.into_iter().map(|t| t.join().unwrap()).collect();
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let acked = writer.join().unwrap();

    let mut windows = Vec::new();
    for (i, out) in outs.iter().enumerate() {
        let said = both(out);
        assert!(out.status.success(), "etcd-{}: {said}", i + 1);
        let node = format!("etcd-{}", i + 1);
        let start = stamp_after(
            &said,
            &format!("==> defrag of {node} ({}) started at ", eps[i]),
        )
        .unwrap_or_else(|| panic!("{node} not defragmented:\n{said}"));
        let end = stamp_after(&said, &format!("defrag of {node} finished at "))
            .unwrap_or_else(|| panic!("{node} did not finish:\n{said}"));
        assert_eq!(said.matches("==> defrag of ").count(), 1, "{said}");
        assert!(start < end, "{said}");
        windows.push((start.to_owned(), end.to_owned(), i));
    }
    // One member at a time: no window overlaps the next one.
    windows.sort();
    for w in windows.windows(2) {
        assert!(w[0].1 < w[1].0, "overlapping defrags: {windows:?}");
    }
    // The leader last, after deferring to its followers and handing its
    // leadership over.
    assert_eq!(windows[2].2, leader, "{windows:?}");
    let led = both(&outs[leader]);
    assert!(
        led.contains("is defragmented after its followers")
            && led.contains("handed its leadership over to member"),
        "{led}"
    );
    eprintln!("defrag of three members took {took:?}: {windows:?}");

    let after = statuses(&roots[0], &eps);
    for (i, (size, in_use, _)) in after.iter().enumerate() {
        assert!(
            free(*size, *in_use) <= 40 && *size < before[i].0 / 2,
            "etcd-{}: {before:?} → {after:?}",
            i + 1
        );
    }
    // No acknowledged write lost, on any member.
    assert!(
        acked.len() > 10,
        "the writer got {} writes through",
        acked.len()
    );
    for ep in &eps {
        let keys = ctl_ok(&roots[0], ep, &["get", "--prefix", "/w/", "--keys-only"]);
        let have: std::collections::HashSet<&str> =
            keys.lines().filter(|l| !l.is_empty()).collect();
        for n in &acked {
            assert!(
                have.contains(format!("/w/{n}").as_str()),
                "{ep} lost /w/{n}"
            );
        }
    }

    // A member below the threshold is left alone.
    let again = maint(&roots[1], &["defrag"]);
    let said = both(&again);
    assert_eq!(again.status.code(), Some(0), "{said}");
    assert!(
        said.contains("a defrag needs more than 40% free in at least 2097152 bytes")
            && !said.contains("==> defrag of"),
        "{said}"
    );

    // With a member down, no defrag: deferred, naming it.
    members.pop().unwrap().stop();
    let refused = maint(
        &roots[0],
        &["defrag", "--threshold", "0", "--min-size", "0"],
    );
    let said = both(&refused);
    assert_eq!(refused.status.code(), Some(75), "{said}");
    assert!(
        said.contains("the defrag of etcd-1 is deferred: the member(s) at https://127.0.13.3:2379 are not healthy")
            && !said.contains("==> defrag of"),
        "{said}"
    );
}
