use std::path::Path;

use super::*;
use crate::config::{self, Overrides};

fn cluster(extra: &str) -> Cluster {
    let text = format!(
        "version: 1\ncluster: {{ name: k8s, token: etcd_cluster }}\nnodes:\n  - {{ name: etcd-1, ip: 192.168.0.1 }}\n  - {{ name: etcd-2, ip: 192.168.0.2 }}\n  - {{ name: etcd-3, ip: 192.168.0.3 }}\n{extra}"
    );
    config::parse(Path::new("cluster.yaml"), &text, &Overrides::default()).unwrap()
}

fn render(c: &Cluster, node: usize) -> Rendered {
    render_node(&Templates::new(None, &[]).unwrap(), c, &c.nodes[node]).unwrap()
}

/// Pin the generator version so snapshots survive a version bump.
fn stable(text: &str) -> String {
    text.replace(env!("CARGO_PKG_VERSION"), "VERSION")
}

#[test]
fn etcd_conf_snapshot() {
    insta::assert_snapshot!(stable(&render(&cluster(""), 0).etcd_conf));
}

#[test]
fn etcd_service_snapshot() {
    insta::assert_snapshot!(stable(&render(&cluster(""), 0).etcd_service));
}

#[test]
fn etcdctl_profile_snapshot() {
    insta::assert_snapshot!(stable(&render(&cluster(""), 1).etcdctl_profile));
}

#[test]
fn every_node_agrees_on_the_cluster_and_differs_only_in_itself() {
    let c = cluster("");
    let confs: Vec<Vec<(String, String)>> = (0..3)
        .map(|i| envfile::lint(&render(&c, i).etcd_conf).unwrap())
        .collect();
    let get = |vars: &Vec<(String, String)>, k: &str| {
        vars.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let ic = "etcd-1=https://192.168.0.1:2380,etcd-2=https://192.168.0.2:2380,etcd-3=https://192.168.0.3:2380";
    for (i, vars) in confs.iter().enumerate() {
        assert_eq!(get(vars, "ETCD_INITIAL_CLUSTER"), ic);
        assert_eq!(get(vars, "ETCD_NAME"), format!("etcd-{}", i + 1));
        assert_eq!(
            get(vars, "ETCD_LISTEN_CLIENT_URLS"),
            format!("https://192.168.0.{}:2379", i + 1)
        );
        assert_eq!(get(vars, "ETCD_CLIENT_CERT_AUTH"), "true");
        assert_eq!(get(vars, "ETCD_PEER_CLIENT_CERT_AUTH"), "true");
        assert!(vars.iter().all(|(k, _)| k != "ETCD_UNSUPPORTED_ARCH"));
    }
}

#[test]
fn unit_start_line_has_no_flags() {
    let unit = render(&cluster(""), 0).etcd_service;
    let exec: Vec<_> = unit
        .lines()
        .filter(|l| l.starts_with("ExecStart="))
        .collect();
    assert_eq!(exec, ["ExecStart=/opt/etcd/bin/etcd"]);
    assert!(
        unit.contains("Type=notify")
            && unit.contains("User=etcd")
            && unit.contains("LimitNOFILE=65536")
    );
}

#[test]
fn ipv6_addresses_are_bracketed_in_urls() {
    let text = "version: 1\ncluster: { name: v6 }\nnodes:\n  - { name: a, ip: \"fd00::1\" }\n";
    let c = config::parse(Path::new("c.yaml"), text, &Overrides::default()).unwrap();
    let conf = render(&c, 0).etcd_conf;
    assert!(
        conf.contains("ETCD_LISTEN_PEER_URLS=https://[fd00::1]:2380\n"),
        "{conf}"
    );
    assert!(
        conf.contains("ETCD_INITIAL_CLUSTER=a=https://[fd00::1]:2380\n"),
        "{conf}"
    );
}

#[test]
fn arm64_sets_unsupported_arch() {
    let conf = render(&cluster("etcd: { arch: arm64 }\n"), 0).etcd_conf;
    assert!(conf.contains("\nETCD_UNSUPPORTED_ARCH=arm64\n"), "{conf}");
}

#[test]
fn plaintext_listener_only_when_asked() {
    let off = render(&cluster(""), 0).etcd_conf;
    assert!(
        off.contains("\nETCD_LISTEN_CLIENT_URLS=https://192.168.0.1:2379\n"),
        "{off}"
    );
    let on = render(
        &cluster("tuning: { insecure_localhost_listener: true }\n"),
        0,
    )
    .etcd_conf;
    assert!(
        on.contains("ETCD_LISTEN_CLIENT_URLS=https://192.168.0.1:2379,http://127.0.0.1:2379\n"),
        "{on}"
    );
}

#[test]
fn the_metrics_listener_binds_where_the_config_says() {
    let local = render(&cluster(""), 0).etcd_conf;
    assert!(
        local.contains("\nETCD_LISTEN_METRICS_URLS=http://127.0.0.1:2381\n"),
        "{local}"
    );
    assert!(!local.contains("ETCD_METRICS="), "{local}");
    let node = render(
        &cluster("metrics: { listen: node, port: 9379, extensive: true }\n"),
        0,
    )
    .etcd_conf;
    assert!(
        node.contains("\nETCD_LISTEN_METRICS_URLS=http://192.168.0.1:9379\n"),
        "{node}"
    );
    assert!(node.contains("\nETCD_METRICS=extensive\n"), "{node}");
}

#[test]
fn retention_is_hours_when_whole() {
    let conf = render(&cluster("tuning: { auto_compaction_retention: 30m }\n"), 0).etcd_conf;
    assert!(
        conf.contains("ETCD_AUTO_COMPACTION_RETENTION=30m\n"),
        "{conf}"
    );
    let conf = render(&cluster("tuning: { auto_compaction_retention: 2h }\n"), 0).etcd_conf;
    assert!(
        conf.contains("ETCD_AUTO_COMPACTION_RETENTION=2\n"),
        "{conf}"
    );
}

#[test]
fn user_templates_replace_built_ins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("etcd.service"),
        "[Service]\nExecStart={{ etcd_bin }}\n",
    )
    .unwrap();
    let t = Templates::new(Some(dir.path()), &[]).unwrap();
    let c = cluster("");
    let r = render_node(&t, &c, &c.nodes[0]).unwrap();
    assert_eq!(r.etcd_service, "[Service]\nExecStart=/opt/etcd/bin/etcd\n");
}

#[test]
fn undefined_variable_in_a_template_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("etcd.service"),
        "ExecStart={{ etcd_binary }}\n",
    )
    .unwrap();
    let t = Templates::new(Some(dir.path()), &[]).unwrap();
    let c = cluster("");
    let err = format!("{:#}", render_node(&t, &c, &c.nodes[0]).unwrap_err());
    assert!(
        err.contains("etcd.service") && err.contains("etcd_binary"),
        "{err}"
    );
}

#[test]
fn a_user_template_with_inline_comments_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("etcd.conf"),
        "ETCD_NAME={{ node }}   # the member name\n",
    )
    .unwrap();
    let t = Templates::new(Some(dir.path()), &[]).unwrap();
    let c = cluster("");
    let err = format!("{:#}", render_node(&t, &c, &c.nodes[0]).unwrap_err());
    assert!(err.contains("EnvironmentFile"), "{err}");
}

#[test]
fn unknown_override_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("etcd.cfg"), "x").unwrap();
    let err = Templates::new(Some(dir.path()), &[])
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("etcd.cfg") && err.contains("etcd.conf"),
        "{err}"
    );
}

/// etcd.conf of the first node of a cluster on release `version` for `arch`.
fn conf_of(version: &str, arch: &str, extra: &str) -> String {
    let sha = "0000000000000000000000000000000000000000000000000000000000000000";
    let c = cluster(&format!(
        "etcd: {{ version: {version}, arch: {arch}, sha256: \"{sha}\" }}\n{extra}"
    ));
    stable(&render(&c, 0).etcd_conf)
}

#[test]
fn etcd_conf_follows_the_release_line() {
    // 3.4 on arm64 runs only when told to; 3.5 and 3.6 support it.
    assert!(conf_of("3.4.16", "arm64", "").contains("\nETCD_UNSUPPORTED_ARCH=arm64\n"));
    for v in ["3.5.21", "3.6.4"] {
        assert!(
            !conf_of(v, "arm64", "").contains("ETCD_UNSUPPORTED_ARCH"),
            "{v}"
        );
    }
    // ETCD_ENABLE_V2: 3.4 serves it by default, 3.5 only when asked, 3.6 has no such flag.
    assert!(conf_of("3.4.16", "amd64", "").contains("\nETCD_ENABLE_V2=true\n"));
    assert!(conf_of("3.5.21", "amd64", "").contains("\nETCD_ENABLE_V2=false\n"));
    assert!(
        conf_of("3.5.21", "amd64", "tuning: { enable_v2: true }\n")
            .contains("\nETCD_ENABLE_V2=true\n")
    );
    assert!(!conf_of("3.6.4", "amd64", "").contains("ETCD_ENABLE_V2"));
    // ETCD_TLS_MIN_VERSION only where the release knows it; the suites everywhere.
    let suites = "\nETCD_CIPHER_SUITES=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305\n";
    for v in ["3.4.16", "3.4.23", "3.5.7"] {
        let conf = conf_of(v, "amd64", "");
        assert!(conf.contains(suites), "{v}: {conf}");
        assert!(!conf.contains("ETCD_TLS_MIN_VERSION"), "{v}: {conf}");
    }
    for v in ["3.4.25", "3.5.8", "3.5.21", "3.6.4"] {
        let conf = conf_of(v, "amd64", "");
        assert!(conf.contains(suites), "{v}: {conf}");
        assert!(
            conf.contains("\nETCD_TLS_MIN_VERSION=TLS1.2\n"),
            "{v}: {conf}"
        );
    }
    // Every line's file is a clean EnvironmentFile.
    for v in ["3.4.16", "3.5.21", "3.6.4"] {
        envfile::lint(&conf_of(v, "arm64", "")).unwrap();
    }
}

#[test]
fn etcd_conf_snapshot_3_5() {
    insta::assert_snapshot!(conf_of("3.5.21", "arm64", ""));
}

#[test]
fn etcd_conf_snapshot_3_6() {
    insta::assert_snapshot!(conf_of("3.6.4", "arm64", ""));
}

#[test]
fn releases_from_3_5_ship_etcdutl() {
    let sha = "0000000000000000000000000000000000000000000000000000000000000000";
    let has = |version: &str| {
        let c = cluster(&format!(
            "etcd: {{ version: {version}, sha256: \"{sha}\" }}\n"
        ));
        crate::stage::node_files(&c)
            .iter()
            .any(|f| f.path == "/opt/etcd/bin/etcdutl" && f.mode == 0o755)
    };
    assert!(!has("3.4.16"));
    assert!(has("3.5.21"));
    assert!(has("3.6.4"));
}

/// 2033-11-11 22:13:20 UTC.
fn not_after() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(2_015_360_000).unwrap()
}

fn maint(c: &Cluster, node: usize) -> String {
    render_maint(
        &Templates::new(None, &[]).unwrap(),
        c,
        &c.nodes[node],
        "-----BEGIN CERTIFICATE-----\nnode\n-----END CERTIFICATE-----\n",
        not_after(),
    )
    .unwrap()
}

#[test]
fn etcd_maint_snapshot() {
    insta::assert_snapshot!(stable(&maint(&cluster(""), 0)));
}

/// The backup with `backup.recipients`: from its comment to restore's.
#[test]
fn etcd_maint_backup_with_recipients_snapshot() {
    let c = cluster(
        "backup:\n  recipients:\n    - age1t4asd03a2awsq54yeq0pfvtz2fncqyvfnze32s7q8hn675zxmvaslpk8cq\n    - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK5HG+WK7EqnxuuTn2AgsYSGepNUXlPyehUg2SGzYT6q ops@example.org\n",
    );
    let text = maint(&c, 0);
    assert!(
        text.contains("keeping the newest 7; encrypted\n#                     to backup.recipients (.db.age)\n"),
        "{text}"
    );
    // The unit's private /var/tmp holds the snapshot in clear.
    let mut on = c.clone();
    on.backup.enabled = true;
    let r = render(&on, 0);
    let unit = r.maint_unit(MaintUnit::BackupService).unwrap();
    assert!(
        unit.contains("\n# even after a kill.\nPrivateTmp=yes\nPrivateDevices=yes\n"),
        "{unit}"
    );
    let from = text.find("# The snapshots a backup keeps").unwrap();
    let to = text.find("# restore SNAPSHOT [--identity FILE]").unwrap();
    insta::assert_snapshot!(&text[from..to]);
}

#[test]
fn maintenance_unit_snapshots() {
    let r = render(
        &cluster(
            "backup: { enabled: true, interval: 6h }\ndefrag: { enabled: true, interval: 12h }\n",
        ),
        0,
    );
    for (unit, text) in &r.maint_units {
        insta::assert_snapshot!(unit.name(), stable(text));
    }
}

#[test]
fn the_maintenance_script_is_the_nodes_own_and_names_its_certificates_expiry() {
    let c = cluster("backup: { dir: /srv/etcd-snapshots, keep: 3 }\n");
    let (one, two) = (maint(&c, 0), maint(&c, 1));
    assert!(one.contains("cert_not_after=2015360000\n"), "{one}");
    assert!(
        one.contains("cert_not_after_date=\"2033-11-11T22:13:20Z\""),
        "{one}"
    );
    assert!(one.contains("export ETCDCTL_ENDPOINTS=\"https://192.168.0.1:2379\"\n"));
    assert!(two.contains("export ETCDCTL_ENDPOINTS=\"https://192.168.0.2:2379\"\n"));
    assert!(one.contains("--initial-advertise-peer-urls \"https://192.168.0.1:2380\""));
    assert!(one.contains(&format!("--initial-cluster \"{}\"", initial_cluster(&c))));
    assert!(one.contains("dir=${1:-\"$root/srv/etcd-snapshots\"}\n  keep=3\n"));
}

#[test]
fn the_backup_units_come_with_backup_enabled_only() {
    let names =
        |r: &Rendered| -> Vec<&str> { r.maint_units.iter().map(|(u, _)| u.name()).collect() };
    let off = render(&cluster("backup: { keep: 3 }\n"), 0);
    assert_eq!(
        names(&off),
        [
            "etcd-cert-check.service",
            "etcd-cert-check.timer",
            "etcd-restart.service",
            "etcd-restart.path",
            "etcd-auth.service",
            "etcd-auth.path"
        ]
    );
    let on = render(&cluster("backup: { enabled: true, interval: 90m }\n"), 0);
    assert_eq!(
        names(&on),
        [
            "etcd-cert-check.service",
            "etcd-cert-check.timer",
            "etcd-backup.service",
            "etcd-backup.timer",
            "etcd-restart.service",
            "etcd-restart.path",
            "etcd-auth.service",
            "etcd-auth.path"
        ]
    );
    let timer = on.maint_unit(MaintUnit::BackupTimer).unwrap();
    assert!(timer.contains("\nOnUnitActiveSec=90min\n"), "{timer}");
}

#[test]
fn time_spans_are_systemds() {
    use std::time::Duration;
    assert_eq!(time_span(Duration::from_secs(86400)), "1d");
    assert_eq!(time_span(Duration::from_secs(6 * 3600)), "6h");
    assert_eq!(time_span(Duration::from_secs(90 * 60)), "90min");
    assert_eq!(time_span(Duration::from_secs(61)), "61s");
}
