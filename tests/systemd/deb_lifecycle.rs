//! A .deb cluster through its life (127.0.3.1-3): it forms, with the daily certificate check
//! enabled, which passes and, inside its window, warns at journal priority warning; it keeps
//! accepting writes with one member stopped, which then catches up; a powered-off node comes
//! back by itself with its data; an upgrade to a changed config that also turns backups on,
//! installed on all three nodes at the same moment, restarts every member one at a time
//! (never fewer than two of three healthy), keeps every key, and enables the backup timer,
//! whose service writes a snapshot; `etcdpack renew` re-issues every leaf from the same CA,
//! and the renewed packages installed while a member is down defer their restarts until it is
//! back, then restart by themselves; no acknowledged write is lost, and each member then
//! serves its new certificate. Then it scales 3 → 5
//! (two learners joining one after the other, each promoted), 5 → 4, and takes the removed node
//! back, each step exactly as `etcdpack plan` prints it, while a writer writes.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::access::{assert_policy_applied, client_etcdctl};
use crate::cluster::{Cluster, Format, HEALTHY_WITHIN, Writer, assert_forms, served_pem};
use crate::support::both;
use crate::{e2e, restarts, rotation, support};

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
    // etcd's auth left off at first: release 2 turns it on under a writer.
    let mut c = Cluster::install_with(
        "systemd-deb",
        "127.0.3",
        Format::Deb,
        "auth: { enabled: false }\n",
    );
    assert_forms(&c);
    c.log("formed");
    let open = client_etcdctl(&c, "flannel", &["put", "/registry/secrets/x", "open"]);
    assert!(open.status.success(), "{}", both(&open));
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

    // A changed tuning value, backups and etcd's auth turned on, regenerated into the same
    // out dir (the PKI is reused), give release 2.
    let config = fs::read_to_string(&c.generated.config).unwrap();
    fs::write(
        &c.generated.config,
        config.replace("auth: { enabled: false }\n", "")
            + "tuning: { quota_backend_bytes: 4GiB }\nbackup: { enabled: true, interval: 6h }\n",
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
    // Every node installs release 2 at the same moment (unattended upgrades do): each
    // member's restart waits for the cluster's restart lock and for the others' health.
    let pki = c.generated.out.join("pki");
    restarts::upgrade_all_at_once(
        &c,
        &pki,
        Format::Deb,
        2,
        "ETCD_QUOTA_BACKEND_BYTES=4294967296",
    );
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
    let keys: Vec<&str> = all
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("/e2e/writer/"))
        .collect();
    assert_eq!(keys.len(), 1 + 6 + 1, "{all}");
    c.log("all-at-once upgrade");
    // The upgrade's etcd-auth.service turned auth on, with the writer of the upgrade running
    // (it lost no acknowledged write).
    assert_policy_applied(&c, Duration::from_secs(120));
    c.log("access policy applied");

    // Renewal: every leaf re-issued from the same CA, with a changed compaction retention,
    // gives release 3, installed while etcd-3's member is stopped. etcd-1's and etcd-2's
    // upgrades succeed without restarting their members (a restart would leave one member of
    // three): the restart is deferred, said on the install's output and in the journal, and
    // pending. Once etcd-3 runs again, each restarts by itself, one at a time, into its new
    // config. (etcd reads its certificate files at each handshake: the renewed certificate
    // is served at once, restart or not.)
    let served = |i: usize| served_certificate(&c.ips[i - 1], &pki);
    let config = fs::read_to_string(&c.generated.config).unwrap();
    let retention = "tuning: { quota_backend_bytes: 4GiB, auto_compaction_retention: 2h }";
    fs::write(
        &c.generated.config,
        config.replace("tuning: { quota_backend_bytes: 4GiB }", retention),
    )
    .unwrap();
    let renewed = c.generated.renew(&[]);
    assert!(
        renewed.status.success(),
        "{}",
        String::from_utf8_lossy(&renewed.stderr)
    );
    assert_eq!(fs::read(pki.join("ca.pem")).unwrap(), ca_before);
    let conf =
        fs::read_to_string(c.generated.out.join("nodes/etcd-1/opt/etcd/cfg/etcd.conf")).unwrap();
    let setting = conf
        .lines()
        .find(|l| l.starts_with("ETCD_AUTO_COMPACTION_RETENTION="))
        .unwrap()
        .to_owned();
    assert!(
        !restarts::running_environment(&c, 1)
            .lines()
            .any(|l| l == setting),
        "{setting} runs already"
    );
    let writer = Writer::start(&c, &pki);
    c.node(3).exec_ok(&["systemctl", "stop", "etcd.service"]);
    for i in 1..=2 {
        let pid = c.wait_active(i);
        let node = c.node(i);
        node.copy_in(&c.package(i, Format::Deb, 3), "/srv/etcd.deb");
        let out = node.exec(&["dpkg", "-i", "/srv/etcd.deb"]);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "etcd-{i}: {said}");
        assert!(
            said.contains(&format!(
                "the restart of etcd-{i} is deferred: the member(s) at {} are not healthy",
                c.endpoint(3)
            )) && said.contains("is installed; etcd on"),
            "etcd-{i}: {said}"
        );
        assert_eq!(
            c.wait_active(i),
            pid,
            "etcd-{i} restarted with a member down"
        );
        assert!(
            !restarts::running_environment(&c, i)
                .lines()
                .any(|l| l == setting)
        );
        let status = node.exec_ok(&["/opt/etcd/bin/etcd-maint", "status"]);
        assert!(
            status.contains("a restart is pending")
                && status.contains(&format!("etcd-test-etcd-{i} 3.4.16-3 installed"))
                && status.contains("it waits because the member(s) at"),
            "etcd-{i}: {status}"
        );
        let journal = node.exec_ok(&["journalctl", "--no-pager", "-o", "cat", "-t", "etcd-maint"]);
        assert!(
            journal.contains(&format!("the restart of etcd-{i} is deferred")),
            "etcd-{i}: {journal}"
        );
    }
    // etcd-3 back: within two minutes etcd-1 and etcd-2 run their new config.
    let pids: Vec<u32> = (1..=2).map(|i| c.wait_active(i)).collect();
    c.node(3).exec_ok(&["systemctl", "start", "etcd.service"]);
    for i in 1..=2 {
        restarts::wait_restarted_with(&c, i, pids[i - 1], &setting, Duration::from_secs(120));
        let file = fingerprint(&pki.join(format!("nodes/etcd-{i}.pem")));
        assert_eq!(served(i), Some(file), "etcd-{i} serves another certificate");
    }
    let pid = c.wait_active(3);
    c.install_package(3, Format::Deb, 3);
    restarts::wait_restarted_with(&c, 3, pid, &setting, HEALTHY_WITHIN);
    let file = fingerprint(&pki.join("nodes/etcd-3.pem"));
    let serving = e2e::wait_for(HEALTHY_WITHIN, || served(3).filter(|now| *now == file));
    assert!(
        serving.is_some(),
        "etcd-3 does not serve its renewed certificate"
    );
    c.wait_healthy(1, &[1, 2, 3]);
    for i in 1..=3 {
        let status = c.node(i).exec_ok(&["/opt/etcd/bin/etcd-maint", "status"]);
        assert!(status.contains("no restart pending"), "etcd-{i}: {status}");
        // The CIS etcd items, read from the running etcd.service's process (its MainPID,
        // through its sandbox), with the data directory owned by the etcd user.
        let cis = c.node(i).exec_ok(&["/opt/etcd/bin/etcd-maint", "cis"]);
        assert!(
            cis.contains("PASS 1.1.12") && cis.contains("PASS 2.7") && !cis.contains("FAIL "),
            "etcd-{i}: {cis}"
        );
    }
    let acked = writer.stop();
    c.assert_written(&acked);
    c.log("renewal");

    rotation::rotate_the_ca(&c, Format::Deb, &|phase| c.generated.rotate(phase, &[]));
    c.log("CA rotation");

    scale_out_and_in(&mut c, &pki);
    c.tear_down();
}

/// The certificate member `ip` serves on its client port, read on the wire with openssl
/// s_client (etcd asks for a client certificate: the node's own is given): its SHA-256
/// fingerprint, serial and notAfter, one per line.
fn served_certificate(ip: &str, pki: &Path) -> Option<String> {
    // None while the member restarts.
    let pem = served_pem(ip, pki)?;
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("served.pem");
    fs::write(&cert, pem).unwrap();
    Some(fingerprint(&cert))
}

fn fingerprint(cert: &Path) -> String {
    support::run_ok(
        Command::new("openssl")
            .args([
                "x509",
                "-noout",
                "-fingerprint",
                "-sha256",
                "-serial",
                "-enddate",
                "-in",
            ])
            .arg(cert),
    )
    .trim()
    .to_owned()
}

/// A membership step as `plan --json` prints it: node, action, and (where, command) pairs.
type Step = (String, String, Vec<(String, String)>);

/// The membership steps `etcdpack plan --json` prints for the current config.
fn planned_steps(c: &Cluster) -> Vec<Step> {
    let out = support::run_ok(
        support::etcdpack()
            .arg("plan")
            .arg("-c")
            .arg(&c.generated.config)
            .arg("-o")
            .arg(&c.generated.out)
            .arg("--etcd-sha256")
            .arg(&support::standin().sha256)
            .arg("--json"),
    );
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    plan["membership"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let commands = s["commands"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c[0].as_str().unwrap().to_owned(),
                        c[1].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            (
                s["node"].as_str().unwrap().to_owned(),
                s["action"].as_str().unwrap().to_owned(),
                commands,
            )
        })
        .collect()
}

/// `etcdctl member list` on etcd-1: (name, is learner), by name.
fn members(c: &Cluster) -> Vec<(String, bool)> {
    let list = c.etcdctl_ok(1, &["member", "list"]);
    let mut out: Vec<(String, bool)> = list
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(", ").collect();
            (f[2].to_owned(), f[5].trim() == "true")
        })
        .collect();
    out.sort();
    out
}

fn named(names: &[&str]) -> Vec<(String, bool)> {
    names.iter().map(|n| (n.to_string(), false)).collect()
}

/// Carry out `steps` (planned before the gen that built their packages): commands for "a member" run on etcd-1 through its etcdctl
/// profile; a node's own commands run on it, except that the package is installed from its
/// file (there is no repository here), at the release the manifest records.
fn carry_out(c: &Cluster, steps: Vec<Step>) {
    assert!(!steps.is_empty(), "the plan names no membership step");
    for (node, action, commands) in steps {
        let i: usize = node.trim_start_matches("etcd-").parse().unwrap();
        for (on, command) in commands {
            if on != "a member" && command.starts_with("apt-get install") {
                c.install_package(i, Format::Deb, c.release(i));
                continue;
            }
            let target = if on == "a member" { 1 } else { i };
            let out = c
                .node(target)
                .exec(&["timeout", "180", "bash", "-lc", &command]);
            assert!(
                out.status.success(),
                "{action} {node}: `{command}` on {on} failed:\n{}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                c.diagnose()
            );
        }
        c.log(&format!("{action} {node}"));
    }
}

fn scale_out_and_in(c: &mut Cluster, pki: &Path) {
    let base = e2e::base_root();
    let prefix = c.ips[0].rsplit_once('.').unwrap().0.to_owned();
    for i in 4..=5 {
        let name = format!("etcd-{i}");
        let node = e2e::Node::boot(&base, &c.scratch.join(&name), &name);
        c.nodes.push(node);
        c.ips.push(format!("{prefix}.{i}"));
    }
    let conf_1 = c.generated.out.join("nodes/etcd-1/opt/etcd/cfg/etcd.conf");
    let before = fs::read(&conf_1).unwrap();
    let config = fs::read_to_string(&c.generated.config).unwrap();
    let last = format!("  - {{ name: etcd-3, ip: \"{prefix}.3\" }}\n");
    let with_5 = config.replace(
        &last,
        &format!(
            "{last}  - {{ name: etcd-4, ip: \"{prefix}.4\" }}\n  - {{ name: etcd-5, ip: \"{prefix}.5\" }}\n"
        ),
    );
    assert_ne!(with_5, config, "etcd-3 is the last node of the test config");
    fs::write(&c.generated.config, &with_5).unwrap();
    let writer = Writer::start(c, pki);

    // 3 → 5: two learners, one after the other, each promoted.
    let steps = planned_steps(c);
    c.generated.run_ok(&[]);
    // The members' etcd.conf stays as it was: only their etcdctl profile changes.
    assert_eq!(fs::read(&conf_1).unwrap(), before);
    let conf_5 =
        fs::read_to_string(c.generated.out.join("nodes/etcd-5/opt/etcd/cfg/etcd.conf")).unwrap();
    assert!(
        conf_5.contains("ETCD_INITIAL_CLUSTER_STATE=existing"),
        "{conf_5}"
    );
    assert!(conf_5.contains("etcd-4=https://"), "{conf_5}");
    carry_out(c, steps);
    assert_eq!(
        members(c),
        named(&["etcd-1", "etcd-2", "etcd-3", "etcd-4", "etcd-5"])
    );
    c.wait_healthy(1, &[1, 2, 3, 4, 5]);

    // 5 → 4: etcd-5 leaves.
    fs::write(
        &c.generated.config,
        with_5.replace(&format!("  - {{ name: etcd-5, ip: \"{prefix}.5\" }}\n"), ""),
    )
    .unwrap();
    let steps = planned_steps(c);
    c.generated.run_ok(&[]);
    carry_out(c, steps);
    assert_eq!(members(c), named(&["etcd-1", "etcd-2", "etcd-3", "etcd-4"]));
    c.wait_healthy(1, &[1, 2, 3, 4]);

    // etcd-5 comes back (its old data directory still on the machine): it joins anew.
    fs::write(&c.generated.config, &with_5).unwrap();
    let steps = planned_steps(c);
    c.generated.run_ok(&[]);
    carry_out(c, steps);
    assert_eq!(
        members(c),
        named(&["etcd-1", "etcd-2", "etcd-3", "etcd-4", "etcd-5"])
    );
    c.wait_healthy(1, &[1, 2, 3, 4, 5]);

    let acked = writer.stop();
    assert!(acked.len() > 10, "the writer wrote {} keys", acked.len());
    let written = c.etcdctl_ok(5, &["get", "--prefix", "/e2e/writer/", "--keys-only"]);
    for n in &acked {
        assert!(
            written.lines().any(|l| l == format!("/e2e/writer/{n:06}")),
            "acknowledged write {n} lost"
        );
    }
    c.log("scale out and in");
}
