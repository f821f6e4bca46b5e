//! The same cluster from the .rpm packages (127.0.5.1-3), its members' metrics listeners on
//! their own IPs scraped by a real Prometheus (127.0.5.100:9090) with the generated scrape
//! config and rules, whose members-down alert goes pending then firing while one member is
//! stopped; then upgraded on every node at the same
//! moment with `rpm -U` (the restarts coordinated by the cluster), then the negative control: the recipe's
//! inline comment in the EnvironmentFile makes the unit fail, and the checks that passed
//! before see it.

use std::fs;
use std::time::Duration;

use crate::access::assert_policy_applied;
use crate::cluster::{Cluster, Format, assert_forms};
use crate::prometheus::Prometheus;
use crate::{e2e, restarts, support};

#[test]
fn rpm_cluster_forms_and_a_broken_config_fails() {
    support::require!(
        e2e::NODES,
        support::STANDIN,
        support::PROMETHEUS,
        support::CURL
    );
    let c = Cluster::install_with(
        "systemd-rpm",
        "127.0.5",
        Format::Rpm,
        "metrics: { listen: node }\n",
    );
    for i in 1..=3 {
        assert_eq!(
            installed(&c, i),
            format!("etcd-test-etcd-{i}-3.4.16-1.x86_64")
        );
    }
    // %post enabled and started etcd; the cluster forms, and once all three members run,
    // etcd-auth.service applies the access policy the packages carry.
    assert_forms(&c);
    c.log("formed");
    assert_policy_applied(&c, Duration::from_secs(120));
    c.log("access policy applied");
    members_down_alert(&c);
    c.log("members-down alert pending, then firing, with a member stopped");

    // Every node runs `rpm -U` at the same moment: each %post restarts its member under the
    // cluster's restart lock, only while the others are healthy.
    let config = fs::read_to_string(&c.generated.config).unwrap();
    fs::write(
        &c.generated.config,
        config + "tuning: { quota_backend_bytes: 4GiB }\n",
    )
    .unwrap();
    c.generated.run_ok(&[]);
    restarts::upgrade_all_at_once(
        &c,
        &c.generated.out.join("pki"),
        Format::Rpm,
        2,
        "ETCD_QUOTA_BACKEND_BYTES=4294967296",
    );
    for i in 1..=3 {
        assert_eq!(
            installed(&c, i),
            format!("etcd-test-etcd-{i}-3.4.16-2.x86_64")
        );
    }
    c.wait_healthy(1, &[1, 2, 3]);
    c.log("all-at-once rpm upgrade");

    // Negative control: the recipe's inline comment in the EnvironmentFile. systemd keeps it as
    // part of the value, etcd cannot parse it and exits; the checks that passed above fail.
    let node = c.node(1);
    let conf = node.exec_ok(&["cat", "/opt/etcd/cfg/etcd.conf"]);
    let broken: String = conf
        .lines()
        .map(|l| {
            if l.starts_with("ETCD_QUOTA_BACKEND_BYTES=") {
                "ETCD_QUOTA_BACKEND_BYTES=8589934592 # 8G\n".to_string()
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_ne!(broken, conf);
    node.write_file("/opt/etcd/cfg/etcd.conf", broken.as_bytes(), 0o644);
    let restart = node.exec(&["systemctl", "restart", "etcd.service"]);
    assert!(
        !restart.status.success(),
        "etcd started with a broken EnvironmentFile"
    );
    let result = c.unit_property(1, "Result");
    assert_ne!(result, "success");
    let restarts = e2e::wait_for(Duration::from_secs(20), || {
        let n: u32 = c.unit_property(1, "NRestarts").parse().ok()?;
        (n >= 1).then_some(n)
    });
    assert!(
        restarts.is_some(),
        "etcd was not restarted (Restart=on-failure)\n{}",
        c.diagnose()
    );
    assert_ne!(c.unit_property(1, "ActiveState"), "active");
    assert!(
        c.healthy(2, &[1]).is_err(),
        "a member with a broken config reports healthy"
    );
    let journal = node.exec_ok(&["journalctl", "--no-pager", "-u", "etcd", "-o", "cat"]);
    assert!(
        journal.contains("8589934592 # 8G") && journal.contains("ETCD_QUOTA_BACKEND_BYTES"),
        "the journal does not show the parse error:\n{journal}"
    );
    // The two others still form a quorum.
    c.etcdctl_at_ok(2, &[2, 3], &["put", "/e2e/quorum", "yes"]);
    c.tear_down();
}

/// Prometheus scrapes every member's metrics listener; with member 3 stopped, the generated
/// etcdMembersDown goes pending, then firing (its `for` shortened to 10s, a parameter of the
/// generator, from the mixin's 20m); member 3 is started again.
fn members_down_alert(c: &Cluster) {
    let p = Prometheus::start(c, "127.0.5.100:9090", Duration::from_secs(10));
    let all_up = e2e::wait_for(Duration::from_secs(60), || {
        let t = p.targets();
        (t.len() == 3 && t.iter().all(|(_, h)| h == "up")).then_some(t)
    });
    assert!(
        all_up.is_some(),
        "the three targets are not all up: {:?}\n{}",
        p.targets(),
        p.log()
    );
    assert_eq!(p.alert_state("etcdMembersDown"), None);
    c.node(3).exec_ok(&["systemctl", "stop", "etcd.service"]);
    p.wait_alert("etcdMembersDown", "pending", Duration::from_secs(30));
    let targets = p.targets();
    assert!(
        targets.contains(&("etcd-3".to_owned(), "down".to_owned())),
        "{targets:?}"
    );
    p.wait_alert("etcdMembersDown", "firing", Duration::from_secs(30));
    c.node(3).exec_ok(&["systemctl", "start", "etcd.service"]);
    c.wait_healthy(1, &[1, 2, 3]);
    let resolved = e2e::wait_for(Duration::from_secs(30), || {
        p.alert_state("etcdMembersDown").is_none().then_some(())
    });
    assert!(
        resolved.is_some(),
        "etcdMembersDown stays: {:?}",
        p.api("alerts")
    );
}

/// What rpm says is installed of node `i`'s package (name-version-release.arch).
fn installed(c: &Cluster, i: usize) -> String {
    let q = c.node(i).exec_ok(&[
        "rpm",
        "--dbpath=/var/lib/rpm",
        "-q",
        &format!("etcd-test-etcd-{i}"),
    ]);
    q.trim().to_owned()
}
