//! A .deb cluster through its life (127.0.3.1-3): it forms, with the daily certificate check
//! enabled, which passes and, inside its window, warns at journal priority warning; it keeps
//! accepting writes with one member stopped, which then catches up; a powered-off node comes
//! back by itself with its data; a rolling upgrade to a changed config that also turns backups
//! on restarts every member, keeps the cluster healthy and every key, and enables the backup
//! timer, whose service writes a snapshot.

use std::fs;
use std::time::Duration;

use crate::cluster::{Cluster, Format, HEALTHY_WITHIN, assert_forms};
use crate::{e2e, support};

/// Whether `unit` on node `i` is enabled and active, as the install left it.
fn assert_timer_runs(c: &Cluster, i: usize, unit: &str) {
    let node = c.node(i);
    assert_eq!(
        node.exec_ok(&["systemctl", "is-enabled", unit]).trim(),
        "enabled",
        "{unit} on etcd-{i}"
    );
    let active = e2e::wait_for(Duration::from_secs(20), || {
        let out = node.exec(&["systemctl", "is-active", unit]);
        (String::from_utf8_lossy(&out.stdout).trim() == "active").then_some(())
    });
    assert!(
        active.is_some(),
        "{unit} on etcd-{i} is not active\n{}",
        c.diagnose()
    );
}

/// The lines of `unit`'s journal on `node` at priorities `range` (`warning..warning`).
fn journal(node: &e2e::Node, unit: &str, range: &str) -> String {
    node.exec_ok(&[
        "journalctl",
        "--no-pager",
        "-o",
        "cat",
        "-p",
        range,
        "-u",
        unit,
    ])
}

/// etcd-cert-check.service passes with the certificate's ten years ahead; with a window
/// longer than that it fails, and its warning is in the journal at priority warning.
fn certificate_check(c: &Cluster) {
    let node = c.node(1);
    let unit = "etcd-cert-check.service";
    node.exec_ok(&["systemctl", "start", unit]);
    let passed = journal(node, unit, "info..info");
    assert!(
        passed.contains("etcd-maint: the certificate of etcd-1")
            && passed.contains("is valid until"),
        "{passed}"
    );
    node.sh_ok(
        "mkdir -p /etc/systemd/system/etcd-cert-check.service.d && \
         printf '[Service]\\nEnvironment=ETCD_CERT_WARN_DAYS=36600\\n' \
           > /etc/systemd/system/etcd-cert-check.service.d/window.conf && \
         systemctl daemon-reload",
    );
    let out = node.exec(&["systemctl", "start", unit]);
    assert!(!out.status.success(), "the check passed inside its window");
    assert_eq!(
        node.exec_ok(&["systemctl", "show", "-P", "Result", unit])
            .trim(),
        "exit-code"
    );
    let warning = "etcd-maint: warning: the certificate of etcd-1";
    let logged = e2e::wait_for(Duration::from_secs(10), || {
        journal(node, unit, "warning..warning")
            .contains(warning)
            .then_some(())
    });
    assert!(
        logged.is_some(),
        "no warning at priority warning:\n{}",
        journal(node, unit, "debug")
    );
    let warned = journal(node, unit, "warning..warning");
    assert!(
        warned.contains("(within 36600)") && !warned.contains("<4>"),
        "{warned}"
    );
    assert!(!journal(node, unit, "info..info").contains(warning));
    assert!(!warned.contains("is valid until"), "{warned}");

    node.sh_ok(
        "rm -r /etc/systemd/system/etcd-cert-check.service.d && systemctl daemon-reload && \
         systemctl reset-failed etcd-cert-check.service",
    );
    node.exec_ok(&["systemctl", "start", unit]);
}

#[test]
fn deb_cluster_forms_survives_failures_and_upgrades() {
    support::require!(e2e::NODES, support::STANDIN);
    let mut c = Cluster::install("systemd-deb", "127.0.3", Format::Deb);
    assert_forms(&c);
    c.log("formed");
    for i in 1..=3 {
        assert_timer_runs(&c, i, "etcd-cert-check.timer");
        // No backups asked for: no backup units (list-unit-files fails on finding none).
        let units = c
            .node(i)
            .exec(&["systemctl", "list-unit-files", "etcd-backup*"]);
        let listed = String::from_utf8_lossy(&units.stdout);
        assert!(listed.contains("0 unit files listed"), "{listed}");
    }
    certificate_check(&c);
    c.log("certificate check");
    for i in 1..=3 {
        let status = c.node(i).exec_ok(&[
            "dpkg-query",
            "-W",
            "-f=${Status} ${Version}",
            &format!("etcd-test-etcd-{i}"),
        ]);
        assert_eq!(status, "install ok installed 3.4.16-1");
    }

    // One member stopped: the other two are a quorum and keep accepting writes.
    c.node(2).exec_ok(&["systemctl", "stop", "etcd.service"]);
    assert_eq!(c.unit_property(2, "ActiveState"), "inactive");
    assert!(
        c.healthy(1, &[2]).is_err(),
        "a stopped member reports healthy"
    );
    for k in 0..5 {
        c.etcdctl_at_ok(
            1,
            &[1, 3],
            &["put", &format!("/e2e/while-2-down/{k}"), &format!("v{k}")],
        );
    }
    c.etcdctl_at_ok(3, &[3], &["put", "/e2e/while-2-down/last", "from-3"]);
    // Started again, it rejoins and catches up on everything written meanwhile.
    c.node(2).exec_ok(&["systemctl", "start", "etcd.service"]);
    c.wait_healthy(1, &[1, 2, 3]);
    for k in 0..5 {
        c.wait_local_value(2, &format!("/e2e/while-2-down/{k}"), &format!("v{k}"));
    }
    c.wait_local_value(2, "/e2e/while-2-down/last", "from-3");
    c.log("member stop/start");

    // A whole machine powered off: the other two carry on; booted again, the enabled unit
    // brings etcd back by itself, with its data.
    let before = c.nodes[2].pid;
    c.nodes[2].stop();
    assert!(!e2e::pid_alive(before));
    c.wait_healthy(1, &[1, 2]);
    c.etcdctl_at_ok(1, &[1], &["put", "/e2e/while-3-off", "yes"]);
    c.nodes[2].start();
    c.wait_active(3);
    c.wait_healthy(3, &[1, 2, 3]);
    c.wait_local_value(3, "/e2e/formed", "by-node-1");
    c.wait_local_value(3, "/e2e/while-2-down/last", "from-3");
    c.wait_local_value(3, "/e2e/while-3-off", "yes");
    c.log("node power cycle");

    // Rolling upgrade: a changed tuning value and backups turned on, regenerated into the same
    // out dir (the PKI is reused), give release 2; each node installs it in turn while the
    // others serve.
    let config = fs::read_to_string(&c.generated.config).unwrap();
    fs::write(
        &c.generated.config,
        config + "tuning: { quota_backend_bytes: 4GiB }\nbackup: { enabled: true, interval: 6h }\n",
    )
    .unwrap();
    let ca_before = fs::read(c.generated.out.join("pki/ca.pem")).unwrap();
    c.generated.run_ok(&[]);
    assert_eq!(
        fs::read(c.generated.out.join("pki/ca.pem")).unwrap(),
        ca_before
    );
    let manifest = fs::read_to_string(c.generated.out.join("manifest.json")).unwrap();
    assert!(
        manifest.contains("etcd-test-etcd-1_3.4.16-2_amd64.deb"),
        "{manifest}"
    );
    for i in 1..=3 {
        let pid = c.wait_active(i);
        let entered = c.unit_property(i, "ActiveEnterTimestamp");
        c.install_package(i, Format::Deb, 2);
        let conf = c.node(i).exec_ok(&["cat", "/opt/etcd/cfg/etcd.conf"]);
        assert!(
            conf.lines()
                .any(|l| l == "ETCD_QUOTA_BACKEND_BYTES=4294967296"),
            "etcd-{i}: {conf}"
        );
        let restarted = e2e::wait_for(HEALTHY_WITHIN, || {
            let now = c.wait_active(i);
            (now != pid).then_some(now)
        });
        assert!(
            restarted.is_some(),
            "etcd on etcd-{i} was not restarted by the upgrade\n{}",
            c.diagnose()
        );
        assert_ne!(c.unit_property(i, "ActiveEnterTimestamp"), entered);
        // Healthy after each node, before the next one goes.
        c.wait_healthy(i % 3 + 1, &[1, 2, 3]);
        c.etcdctl_ok(i % 3 + 1, &["put", &format!("/e2e/upgraded/{i}"), "yes"]);
    }
    for i in 1..=3 {
        let status = c.node(i).exec_ok(&[
            "dpkg-query",
            "-W",
            "-f=${Version}",
            &format!("etcd-test-etcd-{i}"),
        ]);
        assert_eq!(status, "3.4.16-2");
        // Still enabled: an upgrade keeps the operator's choice.
        assert_eq!(
            c.node(i)
                .exec_ok(&["systemctl", "is-enabled", "etcd"])
                .trim(),
            "enabled"
        );
        // The backup timer, new in release 2, is enabled and started by the upgrade; its
        // service writes a snapshot that etcdctl verifies.
        assert_timer_runs(&c, i, "etcd-backup.timer");
        assert_timer_runs(&c, i, "etcd-cert-check.timer");
        c.node(i)
            .exec_ok(&["systemctl", "start", "etcd-backup.service"]);
        let listing = c.node(i).sh_ok(
            "cd /var/backups/etcd && stat -c '%a %U %n' . snapshot-*.db && \
             /opt/etcd/bin/etcdctl snapshot status -w simple \"$(ls snapshot-*.db | tail -n 1)\"",
        );
        assert!(
            listing.starts_with("700 root .\n600 root snapshot-") && listing.contains(", "),
            "etcd-{i}: {listing}"
        );
    }
    // No key lost.
    let all = c.etcdctl_ok(2, &["get", "--prefix", "/e2e/", "--keys-only"]);
    let keys: Vec<&str> = all.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(keys.len(), 1 + 6 + 1 + 3, "{all}");
    c.log("rolling upgrade");
    c.tear_down();
}
