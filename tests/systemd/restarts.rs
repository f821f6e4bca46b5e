//! Restarts the cluster coordinates: every member's package installed at the same moment
//! while a writer writes and a sampler asks each member's health, and an upgrade while a
//! member is down, whose restart waits until the cluster can afford it.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cluster::{Background, Cluster, Format, HEALTHY_WITHIN, Writer, host_etcdctl};
use crate::e2e;

/// Asks every member's health from the host every 0.3 s (`etcdctl endpoint health`, which
/// asks the three at once, each through a linearizable read), keeping how many answered
/// healthy in each sample.
pub struct Sampler(Background<(Instant, Vec<Sample>)>);

/// When, how many members answered healthy, and what etcdctl said.
pub type Sample = (Duration, usize, String);

impl Sampler {
    pub fn start(c: &Cluster, pki: &Path) -> Sampler {
        let endpoints: Vec<String> = (1..=3).map(|i| c.endpoint(i)).collect();
        let endpoints = endpoints.join(",");
        let pki = pki.to_owned();
        Sampler(Background::start(
            (Instant::now(), Vec::new()),
            move |(started, samples)| {
                let out = host_etcdctl(&endpoints, &pki)
                    .args(["--dial-timeout=1s", "--command-timeout=2s"])
                    .args(["endpoint", "health"])
                    .output()
                    .unwrap();
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                let healthy = text.matches(" is healthy: ").count();
                samples.push((started.elapsed(), healthy, text));
                std::thread::sleep(Duration::from_millis(300));
            },
        ))
    }

    /// The samples: when, how many members answered healthy, and what etcdctl said.
    pub fn stop(self) -> Vec<Sample> {
        self.0.stop().1
    }
}

/// The environment of node `i`'s running etcd (its EnvironmentFile, as systemd passed it).
pub fn running_environment(c: &Cluster, i: usize) -> String {
    let pid = c.wait_active(i);
    c.node(i)
        .sh_ok(&format!("tr '\\0' '\\n' < /proc/{pid}/environ"))
}

/// Waits until node `i`'s etcd runs as another process than `before` whose environment has
/// `setting`; panics after `within`.
pub fn wait_restarted_with(c: &Cluster, i: usize, before: u32, setting: &str, within: Duration) {
    let restarted = e2e::wait_for(within, || {
        let now = c.wait_active(i);
        (now != before && running_environment(c, i).lines().any(|l| l == setting)).then_some(now)
    });
    assert!(
        restarted.is_some(),
        "etcd on etcd-{i} does not run with {setting} in a new process within {within:?}\n{}",
        c.diagnose()
    );
}

/// When node `i`'s etcd.service last began to stop and was last started again (ready), in
/// seconds of the host's clock (the nodes share it), from its journal.
fn restart_window(c: &Cluster, i: usize) -> (f64, f64) {
    let journal = c.node(i).exec_ok(&[
        "journalctl",
        "--no-pager",
        "-o",
        "short-unix",
        "-u",
        "etcd.service",
    ]);
    let last = |what: &str| -> f64 {
        journal
            .lines()
            .rfind(|l| l.contains(&format!("systemd[1]: {what} etcd.service")))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| panic!("no {what:?} of etcd.service on etcd-{i}:\n{journal}"))
    };
    (last("Stopping"), last("Started"))
}

/// Installs release `release` of every node's package at the same moment (each node's own
/// tool, in parallel) while a writer writes and a [`Sampler`] samples: no sample shows fewer
/// than two members healthy, each member restarts into a process with `setting`, no
/// acknowledged write is lost. Returns the longest time the writer went without an
/// acknowledged write.
pub fn upgrade_all_at_once(
    c: &Cluster,
    pki: &Path,
    format: Format,
    release: u32,
    setting: &str,
) -> Duration {
    let before: Vec<u32> = (1..=3).map(|i| c.wait_active(i)).collect();
    for i in 1..=3 {
        assert!(
            !running_environment(c, i).lines().any(|l| l == setting),
            "etcd-{i} runs with {setting} already"
        );
    }
    let writer = Writer::start(c, pki);
    let sampler = Sampler::start(c, pki);
    std::thread::sleep(Duration::from_secs(2));
    std::thread::scope(|s| {
        for i in 1..=3 {
            s.spawn(move || c.install_package(i, format, release));
        }
    });
    // Each install returns once its member is back, or says its restart is deferred: either
    // way every member runs the new setting soon after.
    for i in 1..=3 {
        wait_restarted_with(c, i, before[i - 1], setting, HEALTHY_WITHIN * 2);
    }
    c.wait_healthy(1, &[1, 2, 3]);
    std::thread::sleep(Duration::from_secs(2));
    let samples = sampler.stop();
    let (acked, longest_gap) = writer.stop_timed();

    // One member down at a time: from the moment one began to stop until it was ready again,
    // no other was stopped.
    let mut windows: Vec<(f64, f64, usize)> = (1..=3)
        .map(|i| {
            let (stop, start) = restart_window(c, i);
            assert!(
                stop < start,
                "etcd-{i}: stopped at {stop}, started at {start}"
            );
            (stop, start, i)
        })
        .collect();
    windows.sort_by(|a, b| a.0.total_cmp(&b.0));
    for w in windows.windows(2) {
        assert!(
            w[0].1 <= w[1].0,
            "etcd-{} stopped at {} while etcd-{} was down ({} to {})\n{}",
            w[1].2,
            w[1].0,
            w[0].2,
            w[0].0,
            w[0].1,
            c.diagnose()
        );
    }
    // The leader handed its leadership over as it stopped (etcd's graceful stop sends a
    // follower raft's MsgTimeoutNow), rather than leaving the others to notice it gone.
    let handed_over = (1..=3).any(|i| {
        c.node(i)
            .exec_ok(&[
                "journalctl",
                "--no-pager",
                "-o",
                "cat",
                "-u",
                "etcd.service",
            ])
            .contains("received MsgTimeoutNow from")
    });
    assert!(
        handed_over,
        "no member logged a leadership transfer as it stopped\n{}",
        c.diagnose()
    );
    assert!(samples.len() >= 5, "only {} samples", samples.len());
    for (at, healthy, text) in &samples {
        assert!(
            *healthy >= 2,
            "{healthy} of 3 members healthy {at:?} into the upgrade:\n{text}\n{}",
            c.diagnose()
        );
    }
    c.assert_written(&acked);
    for i in 1..=3 {
        let status = c.node(i).exec_ok(&["/opt/etcd/bin/etcd-maint", "status"]);
        assert!(status.contains("no restart pending"), "etcd-{i}: {status}");
    }
    eprintln!(
        "all-at-once upgrade to release {release}: restarts one after another ({windows:?}); {} samples, none below 2 of 3 healthy ({} with 2); {} writes acknowledged, the longest gap between two {longest_gap:?}",
        samples.len(),
        samples
            .iter()
            .filter(|(_, healthy, _)| *healthy == 2)
            .count(),
        acked.len()
    );
    longest_gap
}
