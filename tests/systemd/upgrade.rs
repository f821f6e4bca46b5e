//! A rolling upgrade from etcd 3.4 to 3.5 through the packages (127.0.6.1-3): a .deb cluster
//! of 3.4.16 forms and a writer on the host writes; `etcd.version` moves to the 3.5 stand-in
//! (trixie's etcd, etcdctl and etcdutl), `etcdpack plan` states the minor upgrade, `gen` into the
//! same output builds release 2, and each node installs it in turn: the cluster is healthy and
//! the upgraded member reports 3.5 after each node. At the end no acknowledged write is lost,
//! every member runs 3.5, the cluster version (each member's `/version`) is 3.5, and etcdutl is
//! packaged on every node and runs.

use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::cluster::{Cluster, Format, HEALTHY_WITHIN, Writer, assert_forms};
use crate::support::{self, HttpServer};
use crate::{defrag, e2e, rotation};

#[test]
fn deb_cluster_upgrades_from_3_4_to_3_5_one_node_at_a_time() {
    support::require!(
        e2e::NODES,
        support::STANDIN,
        support::STANDIN_3_5,
        support::CURL
    );
    let next = support::standin_3_5();
    // Defragmentation's timer in every package, with thresholds a test database crosses.
    let mut c = Cluster::install_with(
        "systemd-upgrade",
        "127.0.6",
        Format::Deb,
        "defrag: { enabled: true, threshold: 40, min_size: 2MiB }\n",
    );
    assert_forms(&c);
    c.log("formed");
    // The 3.4.16 stand-in holds bookworm's etcd, which reports its own 3.4 patch release.
    for i in 1..=3 {
        let v = member_version(&c, i);
        assert!(v.starts_with("3.4."), "etcd-{i} before the upgrade: {v}");
    }
    let pki = c.generated.out.join("pki");
    let writer = Writer::start(&c, &pki);

    // The next release line, served where the stand-in is expected to be.
    let server = HttpServer::serve_file(
        &format!("/v{0}/etcd-v{0}-linux-{1}.tar.gz", next.version, next.arch),
        &next.path,
    );
    let config = fs::read_to_string(&c.generated.config).unwrap();
    assert!(!config.contains("etcd:"), "{config}");
    fs::write(
        &c.generated.config,
        format!(
            "{config}etcd: {{ version: \"{}\", sha256: \"{}\" }}\n",
            next.version, next.sha256
        ),
    )
    .unwrap();

    // The plan, before the gen, says what the move is.
    let plan = support::run_ok(
        support::etcdpack()
            .arg("plan")
            .arg("-c")
            .arg(&c.generated.config)
            .arg("-o")
            .arg(&c.generated.out)
            .arg("--mirror")
            .arg(&server.base_url),
    );
    let upgrade = plan
        .lines()
        .find(|l| l.trim_start().starts_with("upgrade:"))
        .unwrap_or_else(|| panic!("the plan states no upgrade:\n{plan}"));
    assert!(
        upgrade.contains("3.5") && upgrade.contains("one node at a time"),
        "{upgrade}"
    );

    let generated = c.generated.run_raw(&["--mirror", &server.base_url]);
    assert!(
        generated.status.success(),
        "gen to {}: {}",
        next.version,
        String::from_utf8_lossy(&generated.stderr)
    );
    assert!(
        server.hits() >= 1,
        "the 3.5 release was not downloaded from the mirror"
    );
    c.etcd_version = next.version.to_owned();
    for i in 1..=3 {
        let pkg = c.package(i, Format::Deb, 2);
        assert!(pkg.is_file(), "{} was not generated", pkg.display());
    }
    c.log("generated 3.5");

    for i in 1..=3 {
        c.install_package(i, Format::Deb, 2);
        c.wait_healthy(i % 3 + 1, &[1, 2, 3]);
        let running = e2e::wait_for(HEALTHY_WITHIN, || {
            let v = member_version(&c, i);
            if v == next.version {
                Some(v)
            } else {
                std::thread::sleep(Duration::from_millis(400));
                None
            }
        });
        assert!(
            running.is_some(),
            "etcd-{i} does not run {} after its upgrade\n{}",
            next.version,
            c.diagnose()
        );
        c.log(&format!("etcd-{i} upgraded"));
    }

    let acked = writer.stop();
    c.assert_written(&acked);
    assert_eq!(
        c.etcdctl_ok(3, &["get", "--print-value-only", "/e2e/formed"])
            .trim(),
        "by-node-1"
    );

    for i in 1..=3 {
        assert_eq!(member_version(&c, i), next.version, "etcd-{i}");
        let status = c.node(i).exec_ok(&[
            "dpkg-query",
            "-W",
            "-f=${Version}",
            &format!("etcd-test-etcd-{i}"),
        ]);
        assert_eq!(status, format!("{}-2", next.version));
        let etcdutl = c.node(i).exec_ok(&["/opt/etcd/bin/etcdutl", "version"]);
        assert!(
            etcdutl.contains(&format!("etcdutl version: {}", next.version)),
            "etcd-{i}: {etcdutl}"
        );
    }
    // The cluster version moves to 3.5 once every member runs it (the leader decides it
    // within a few seconds); every member says so on its /version endpoint.
    for i in 1..=3 {
        let mut last = String::new();
        let agreed = e2e::wait_for(HEALTHY_WITHIN, || {
            last = version_endpoint(&c, i);
            let v: serde_json::Value = serde_json::from_str(&last).ok()?;
            if v["etcdcluster"] == "3.5.0" && v["etcdserver"] == next.version {
                Some(())
            } else {
                std::thread::sleep(Duration::from_millis(500));
                None
            }
        });
        assert!(
            agreed.is_some(),
            "etcd-{i}'s /version after the upgrade: {last}"
        );
    }
    c.log("rolling upgrade to 3.5");

    // The CA rotated on 3.5 (the release already in the cache, verified by its sha256).
    rotation::rotate_the_ca(&c, Format::Deb, &|phase| {
        c.generated
            .rotate_raw(phase, &["--mirror", &server.base_url])
    });
    c.log("CA rotation on 3.5");
    drop(server);

    // Every node's etcd-defrag.service at the same moment: one member at a time, the leader
    // last, nothing lost.
    defrag::defragment_all_at_once(&c, &c.generated.out.join("pki"));
    c.log("defragmentation on 3.5");

    refuses_3_6_before_3_5_26(&c, next.version);
    c.tear_down();
}

/// The preinst of a 3.6 package for node 1, run there as dpkg runs it for an upgrade, refuses
/// to replace its member, which runs a 3.5 release before 3.5.26 (trixie's): on stderr and in
/// the journal, and the member keeps running. (`gen` refuses such a move in the first place;
/// the package refuses it too, for one installed whichever way.)
fn refuses_3_6_before_3_5_26(c: &Cluster, running: &str) {
    assert!(
        etcdpack::release::parse_version(running) < Some(etcdpack::release::BEFORE_3_6),
        "the 3.5 stand-in is {running}, which may move to 3.6"
    );
    let config = fs::read_to_string(&c.generated.config).unwrap();
    let config: String = config
        .lines()
        .map(|l| match l.starts_with("etcd:") {
            true => "etcd: { version: \"3.6.14\" }\n".to_owned(),
            false => format!("{l}\n"),
        })
        .collect();
    let cluster = etcdpack::config::parse(
        &c.generated.config,
        &config,
        &etcdpack::config::Overrides::default(),
    )
    .unwrap();
    let templates =
        etcdpack::render::Templates::new(None, &etcdpack::package::templates()).unwrap();
    let preinst = etcdpack::render::render_script(
        &templates,
        "deb/preinst",
        &cluster,
        &cluster.nodes[0],
        &[],
        "3.6.14-3",
    )
    .unwrap();
    let n = c.node(1);
    n.write_file("/root/preinst-3.6", preinst.as_bytes(), 0o755);
    let out = n.exec(&["/root/preinst-3.6", "upgrade", &c.version(2)]);
    let err = String::from_utf8_lossy(&out.stderr);
    let refusal = format!("this member runs etcd {running}");
    assert!(
        !out.status.success() && err.contains(&refusal) && err.contains("3.5.26 or later"),
        "{err}"
    );
    let package = "etcd-test-etcd-1";
    let journal = e2e::wait_for(HEALTHY_WITHIN, || {
        let text = n.exec_ok(&["journalctl", "--no-pager", "-t", package, "-p", "err"]);
        if text.contains("refused to install etcd 3.6.14") && text.contains(&refusal) {
            Some(text)
        } else {
            std::thread::sleep(Duration::from_millis(300));
            None
        }
    });
    assert!(journal.is_some(), "no refusal of {package} in the journal");
    assert_eq!(member_version(c, 1), running, "etcd-1 after the refusal");
    c.log("a 3.6 package refused");
}

/// The server version member `i` reports itself (`etcdctl endpoint status -w json` on its node,
/// against its own endpoint), or what etcdctl said instead.
fn member_version(c: &Cluster, i: usize) -> String {
    let out = c.etcdctl_at(i, &[i], &["endpoint", "status", "-w", "json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v[0]["Status"]["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
}

/// Member `i`'s `/version` document, read from the host with curl and the cluster's client
/// certificate (the base roots have no curl).
fn version_endpoint(c: &Cluster, i: usize) -> String {
    let pki = c.generated.out.join("pki");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(pki.join("ca.pem"))
        .arg("--cert")
        .arg(pki.join("nodes/etcd-1.pem"))
        .arg("--key")
        .arg(pki.join("nodes/etcd-1-key.pem"))
        .arg(format!("{}/version", c.endpoint(i)))
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
