use std::path::Path;

use super::*;

mod access;
mod host_key;
mod metrics;
mod publish;

const BASE: &str = "\
version: 1
cluster: { name: k8s, token: etcd_cluster }
nodes:
  - { name: etcd-1, ip: 192.168.0.1 }
  - { name: etcd-2, ip: 192.168.0.2 }
  - { name: etcd-3, ip: 192.168.0.3 }
";

fn parse_text(text: &str) -> Result<Cluster, ConfigError> {
    parse(Path::new("cluster.yaml"), text, &Overrides::default())
}

/// BASE with `extra` appended (top-level keys).
fn with(extra: &str) -> Result<Cluster, ConfigError> {
    parse_text(&format!("{BASE}{extra}"))
}

fn rules(r: Result<Cluster, ConfigError>) -> Vec<Rule> {
    r.expect_err("config should be rejected").rules()
}

fn message(r: Result<Cluster, ConfigError>) -> String {
    r.expect_err("config should be rejected").to_string()
}

#[test]
fn example_config_is_valid_and_matches_the_recipe() {
    let c = parse_text(EXAMPLE).unwrap();
    assert_eq!(c.name, "k8s");
    assert_eq!(c.token, "etcd_cluster");
    assert_eq!(c.nodes.len(), 3);
    assert_eq!(c.etcd.version, "3.4.16");
    assert_eq!(
        c.etcd.sha256,
        "2e2d5b3572e077e7641193ed07b4929b0eaf0dc2f9463e9b677765528acafb89"
    );
    assert_eq!(c.tuning.heartbeat_interval, Duration::from_millis(100));
    assert_eq!(c.tuning.election_timeout, Duration::from_millis(1000));
    assert_eq!(c.tuning.quota_backend_bytes, 8589934592);
    assert_eq!(
        c.tuning.auto_compaction_retention,
        Duration::from_secs(3600)
    );
    assert!(c.tuning.enable_v2);
    assert!(!c.tuning.insecure_localhost_listener);
    assert_eq!(c.pki.validity, Duration::from_secs(87600 * 3600));
    assert_eq!(c.pki.subject.country.as_deref(), Some("CN"));
    // The recipe serves v2 for flannel: outside etcd's roles, which is said.
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("v2 key"), "{:?}", c.warnings);
}

#[test]
fn defaults_apply_when_keys_are_absent() {
    let c = parse_text(BASE).unwrap();
    assert_eq!(c.etcd.arch, Arch::Amd64);
    assert_eq!(c.pki.algorithm, Algorithm::Rsa2048);
    assert_eq!(c.paths.install_dir, "/opt/etcd");
    assert_eq!(c.paths.data_dir, "/var/lib/etcd/default.etcd");
    assert_eq!(c.service.user, "etcd");
    assert!(c.service.start);
    assert_eq!(c.packages.name_for("k8s", "etcd-1"), "etcd-k8s-etcd-1");
    let names: Vec<_> = c.clients.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["etcdctl", "kube-apiserver", "flannel"]);
    assert_eq!(c.clients[1].organization.as_deref(), Some("system:masters"));
}

#[test]
fn unknown_key_names_file_line_and_column() {
    let m = message(with("tuning: { heartbeat: 100ms }\n"));
    assert!(m.starts_with("cluster.yaml"), "{m}");
    assert!(m.contains("heartbeat"), "{m}");
    assert!(m.contains("line 7") || m.contains(":7:"), "{m}");
    assert!(m.contains("help:"), "{m}");
}

#[test]
fn unknown_key_in_a_node_is_an_error() {
    let m = message(parse_text(
        &BASE.replace("ip: 192.168.0.2", "ip: 192.168.0.2, role: leader"),
    ));
    assert!(m.contains("role"), "{m}");
}

#[test]
fn wrong_type_is_an_error() {
    let m = message(with("tuning: { enable_v2: maybe }\n"));
    assert!(m.contains("cluster.yaml"), "{m}");
}

#[test]
fn missing_nodes_is_an_error() {
    let m = message(parse_text("version: 1\ncluster: { name: k8s }\n"));
    assert!(m.contains("nodes"), "{m}");
}

#[test]
fn rule_version() {
    assert_eq!(
        rules(parse_text(&BASE.replace("version: 1", "version: 2"))),
        [Rule::Version]
    );
}

#[test]
fn rule_cluster_name() {
    assert_eq!(
        rules(parse_text(&BASE.replace("name: k8s", "name: K8s_prod"))),
        [Rule::ClusterName]
    );
}

#[test]
fn rule_token() {
    assert_eq!(
        rules(parse_text(&BASE.replace("etcd_cluster", "\"a b#c\""))),
        [Rule::Token]
    );
}

#[test]
fn rule_no_nodes() {
    assert_eq!(
        rules(parse_text(
            "version: 1\ncluster: { name: k8s }\nnodes: []\n"
        )),
        [Rule::NoNodes]
    );
}

#[test]
fn rule_node_name_is_a_dns_label() {
    let r = parse_text(&BASE.replace("name: etcd-2", "name: etcd_2"));
    let m = message(parse_text(&BASE.replace("name: etcd-2", "name: etcd_2")));
    assert_eq!(rules(r), [Rule::NodeName]);
    assert!(m.contains("cluster.yaml:5:"), "{m}");
}

#[test]
fn rule_duplicate_name() {
    let text = BASE.replace("name: etcd-3", "name: etcd-1");
    let m = message(parse_text(&text));
    assert_eq!(rules(parse_text(&text)), [Rule::DuplicateName]);
    assert!(
        m.contains("cluster.yaml:6:") && m.contains("first at line 4"),
        "{m}"
    );
}

#[test]
fn rule_bad_ip() {
    let m = message(parse_text(&BASE.replace("192.168.0.2", "192.168.0.300")));
    assert!(
        m.contains("cluster.yaml:5:") && m.contains("192.168.0.300"),
        "{m}"
    );
    assert_eq!(
        rules(parse_text(&BASE.replace("192.168.0.2", "0.0.0.0"))),
        [Rule::Ip]
    );
}

#[test]
fn rule_duplicate_ip() {
    assert_eq!(
        rules(parse_text(&BASE.replace("192.168.0.3", "192.168.0.1"))),
        [Rule::DuplicateIp]
    );
}

#[test]
fn ipv6_nodes_are_accepted() {
    let c = parse_text(&BASE.replace("192.168.0.1", "\"fd00::1\"")).unwrap();
    assert_eq!(c.nodes[0].ip.to_string(), "fd00::1");
}

#[test]
fn rule_san() {
    let text = BASE.replace(
        "ip: 192.168.0.3 }",
        "ip: 192.168.0.3, sans: [\"not a name\"] }",
    );
    assert_eq!(rules(parse_text(&text)), [Rule::San]);
    let ok = BASE.replace(
        "ip: 192.168.0.3 }",
        "ip: 192.168.0.3, sans: [etcd.example.org, 10.0.0.9] }",
    );
    let c = parse_text(&ok).unwrap();
    assert_eq!(
        c.nodes[2].sans,
        vec![
            San::Dns("etcd.example.org".into()),
            San::Ip("10.0.0.9".parse().unwrap())
        ]
    );
}

#[test]
fn rule_arch() {
    let m = message(with("etcd: { arch: x86_64 }\n"));
    assert!(m.contains("amd64"), "{m}");
    assert_eq!(rules(with("etcd: { arch: mips }\n")), [Rule::Arch]);
}

#[test]
fn rule_etcd_version_format() {
    let text = format!(
        "etcd: {{ version: latest, sha256: \"{}\" }}\n",
        "a".repeat(64)
    );
    assert_eq!(rules(with(&text)), [Rule::EtcdVersion]);
}

#[test]
fn rule_unknown_release_without_checksum() {
    let m = message(with("etcd: { version: 3.5.0 }\n"));
    assert!(m.contains("3.5.0") && m.contains("sha256"), "{m}");
    assert_eq!(
        rules(with("etcd: { version: 3.5.0 }\n")),
        [Rule::UnknownRelease]
    );
    let hex = "ab".repeat(32);
    let c = with(&format!("etcd: {{ version: 3.5.0, sha256: \"{hex}\" }}\n")).unwrap();
    assert_eq!(c.etcd.sha256, hex);
    let o = Overrides {
        etcd_sha256: Some(hex.to_uppercase()),
        formats: None,
    };
    let c = parse(
        Path::new("c.yaml"),
        &format!("{BASE}etcd: {{ version: 3.5.0 }}\n"),
        &o,
    )
    .unwrap();
    assert_eq!(
        c.etcd.sha256, hex,
        "the command line supplies the checksum, lower-cased"
    );
}

#[test]
fn rule_sha256() {
    assert_eq!(rules(with("etcd: { sha256: abc }\n")), [Rule::Sha256]);
}

#[test]
fn rule_url() {
    assert_eq!(rules(with("etcd: { url: ftp://x/y }\n")), [Rule::Url]);
}

#[test]
fn rule_duration() {
    let m = message(with("tuning: { heartbeat_interval: 100 parsecs }\n"));
    assert!(m.contains("unknown unit"), "{m}");
}

#[test]
fn rule_size() {
    assert_eq!(
        rules(with("tuning: { quota_backend_bytes: 8 gigs }\n")),
        [Rule::Size]
    );
}

#[test]
fn rule_election_at_least_five_heartbeats() {
    let r = with("tuning: { heartbeat_interval: 300ms, election_timeout: 1000ms }\n");
    let m = message(with(
        "tuning: { heartbeat_interval: 300ms, election_timeout: 1000ms }\n",
    ));
    assert_eq!(rules(r), [Rule::ElectionTooShort]);
    assert!(m.contains("1500ms"), "{m}");
}

#[test]
fn rule_election_at_most_50s() {
    assert_eq!(
        rules(with(
            "tuning: { heartbeat_interval: 1s, election_timeout: 60s }\n"
        )),
        [Rule::ElectionTooLong]
    );
}

#[test]
fn rule_heartbeat_whole_milliseconds() {
    assert_eq!(
        rules(with(
            "tuning: { heartbeat_interval: 0, election_timeout: 1s }\n"
        )),
        [Rule::Heartbeat]
    );
}

#[test]
fn bare_numbers_use_etcds_units() {
    let c = with("tuning: { heartbeat_interval: 50, election_timeout: 500, quota_backend_bytes: 2147483648, auto_compaction_retention: 2 }\n").unwrap();
    assert_eq!(c.tuning.heartbeat_interval, Duration::from_millis(50));
    assert_eq!(c.tuning.quota_backend_bytes, 2 << 30);
    assert_eq!(
        c.tuning.auto_compaction_retention,
        Duration::from_secs(7200)
    );
}

#[test]
fn quota_above_8gib_and_even_count_are_warnings() {
    let c = with("tuning: { quota_backend_bytes: 16GiB }\n").unwrap();
    assert!(
        c.warnings.iter().any(|w| w.contains("above 8GiB")),
        "{:?}",
        c.warnings
    );
    let two = parse_text(&BASE.replace("  - { name: etcd-3, ip: 192.168.0.3 }\n", "")).unwrap();
    assert!(
        two.warnings.iter().any(|w| w.contains("odd")),
        "{:?}",
        two.warnings
    );
}

#[test]
fn rule_algorithm() {
    assert_eq!(
        rules(with("pki: { algorithm: dsa-1024 }\n")),
        [Rule::Algorithm]
    );
    assert_eq!(
        with("pki: { algorithm: ecdsa-p256 }\n")
            .unwrap()
            .pki
            .algorithm,
        Algorithm::EcdsaP256
    );
}

#[test]
fn rule_validity() {
    assert_eq!(rules(with("pki: { validity: 1h }\n")), [Rule::Validity]);
}

#[test]
fn rule_ca_files() {
    assert_eq!(rules(with("pki: { ca_cert: ca.pem }\n")), [Rule::CaFiles]);
    // Loading reads only the YAML: the files are checked later, before
    // anything is written (`pki::check_import`), with the same positions.
    let c = with("pki: { ca_cert: /nonexistent/ca.pem, ca_key: /nonexistent/ca-key.pem }\n")
        .expect("loading does not open the CA files");
    let err = crate::pki::check_import(&c, time::OffsetDateTime::now_utc()).unwrap_err();
    assert_eq!(err.rules(), [Rule::CaFiles, Rule::CaFiles]);
    let m = err.to_string();
    assert!(
        m.contains("cluster.yaml:7:17:") && m.contains("/nonexistent/ca.pem"),
        "{m}"
    );
    assert!(m.contains("/nonexistent/ca-key.pem"), "{m}");
}

#[test]
fn rule_clients() {
    assert_eq!(
        rules(with("clients: [{ name: \"Bad Name\" }]\n")),
        [Rule::ClientName]
    );
    assert_eq!(
        rules(with("clients: [{ name: a }, { name: a }]\n")),
        [Rule::DuplicateClient]
    );
}

#[test]
fn rule_paths() {
    assert_eq!(
        rules(with("paths: { install_dir: opt/etcd }\n")),
        [Rule::Path]
    );
    assert_eq!(
        rules(with("paths: { data_dir: /var/lib/../etc }\n")),
        [Rule::Path]
    );
}

#[test]
fn rule_user() {
    assert_eq!(
        rules(with("service: { user: \"Etcd User\" }\n")),
        [Rule::User]
    );
    assert_eq!(
        with("service: { user: root }\n").unwrap().service.user,
        "root"
    );
}

#[test]
fn rule_formats() {
    assert_eq!(
        rules(with("packages: { formats: [zip] }\n")),
        [Rule::Format]
    );
    assert_eq!(rules(with("packages: { formats: [] }\n")), [Rule::Format]);
}

#[test]
fn rule_package_name() {
    assert_eq!(
        rules(with("packages: { name: \"etcd-{cluster}\" }\n")),
        [Rule::PackageName]
    );
    assert_eq!(
        rules(with("packages: { name: \"Etcd_{node}\" }\n")),
        [Rule::PackageName]
    );
}

#[test]
fn rule_maintainer() {
    assert_eq!(
        rules(with("packages: { maintainer: nobody }\n")),
        [Rule::Maintainer]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = BASE
        .replace("192.168.0.2", "nope")
        .replace("name: etcd-3", "name: etcd-1");
    assert_eq!(rules(parse_text(&text)), [Rule::Ip, Rule::DuplicateName]);
}

#[test]
fn rule_system_dirs_are_refused() {
    for dir in [
        "/",
        "/etc",
        "/usr",
        "/usr/lib",
        "/usr/local",
        "/usr/bin",
        "/var",
        "/var/lib",
        "/tmp",
        "/opt",
        "/home",
        "/root",
        "/bin",
        "/sbin",
        "/lib",
        "/lib64",
        "/boot",
        "/dev",
        "/proc",
        "/sys",
        "/run",
        "/srv",
        "/mnt",
        "/media",
        "/var/tmp",
        "/usr/lib/systemd/system",
    ] {
        for key in ["install_dir", "data_dir"] {
            let r = with(&format!("paths: {{ {key}: \"{dir}\" }}\n"));
            let m = message(with(&format!("paths: {{ {key}: \"{dir}\" }}\n")));
            let rules = rules(r);
            assert!(
                rules.contains(&Rule::SystemDir) || (dir == "/" && rules == [Rule::Path]),
                "{key}: {dir}: {rules:?}"
            );
            assert!(m.contains("cluster.yaml:7:") && m.contains("help:"), "{m}");
        }
    }
    let m = message(with("paths: { data_dir: /etc }\n"));
    assert!(
        m.contains("paths.data_dir \"/etc\"") && m.contains("system directory"),
        "{m}"
    );
    // Below a system directory is where etcd belongs.
    let c = with("paths: { install_dir: /opt/etcd-k8s, data_dir: /srv/etcd }\n").unwrap();
    assert_eq!(c.paths.data_dir, "/srv/etcd");
    with("paths: { install_dir: /usr/local/etcd, data_dir: /var/lib/etcd }\n").unwrap();
}

#[test]
fn rule_paths_must_not_overlap() {
    for (install, data) in [
        ("/opt/etcd", "/opt/etcd"),
        ("/opt/etcd", "/opt/etcd/data"),
        ("/var/lib/etcd", "/var/lib/etcd/default.etcd"),
        ("/srv/etcd/bin", "/srv/etcd"),
    ] {
        let text = format!("paths:\n  install_dir: {install}\n  data_dir: {data}\n");
        assert_eq!(rules(with(&text)), [Rule::PathOverlap], "{install} {data}");
        let m = message(with(&text));
        assert!(m.contains("cluster.yaml:9:") && m.contains("help:"), "{m}");
    }
    // A shared prefix that is no parent is fine.
    with("paths: { install_dir: /opt/etcd, data_dir: /opt/etcd-data }\n").unwrap();
}

#[test]
fn rule_homepage() {
    for bad in [
        "\"https://x\\nEssential: yes\"",
        "\"https://etcd.io/ docs\"",
        "ftp://etcd.io",
        "etcd.io",
        "\"https://\"",
        "\"https://x\\tEssential\"",
    ] {
        let text = format!("packages: {{ homepage: {bad} }}\n");
        assert_eq!(rules(with(&text)), [Rule::Homepage], "{bad}");
        let m = message(with(&text));
        assert!(m.contains("cluster.yaml:7:") && m.contains("help:"), "{m}");
    }
    let c = with("packages: { homepage: \"https://git.example.org/etcd?x=1#y\" }\n").unwrap();
    assert_eq!(c.packages.homepage, "https://git.example.org/etcd?x=1#y");
}

#[test]
fn rule_sans_must_not_name_another_node() {
    let text = BASE.replace(
        "ip: 192.168.0.1 }",
        "ip: 192.168.0.1, sans: [etcd-1.example.org, 192.168.0.2] }",
    );
    assert_eq!(rules(parse_text(&text)), [Rule::ForeignSan]);
    let m = message(parse_text(&text));
    assert!(
        m.contains("cluster.yaml:4:") && m.contains("sans of etcd-1 names etcd-2's IP 192.168.0.2"),
        "{m}"
    );
    let by_name = BASE.replace("ip: 192.168.0.3 }", "ip: 192.168.0.3, sans: [etcd-2] }");
    assert_eq!(rules(parse_text(&by_name)), [Rule::ForeignSan]);
    assert!(message(parse_text(&by_name)).contains("sans of etcd-3 names etcd-2's name etcd-2"));
    // Its own IP and name, and other hosts, are fine.
    let own = BASE.replace(
        "ip: 192.168.0.3 }",
        "ip: 192.168.0.3, sans: [etcd-3, 192.168.0.3, 10.0.0.3] }",
    );
    parse_text(&own).unwrap();
}

const SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[test]
fn the_v2_api_follows_the_release_line() {
    // Served by default on 3.4 only.
    assert!(with("").unwrap().tuning.enable_v2);
    let c = with(&format!("etcd: {{ version: 3.5.21, sha256: \"{SHA}\" }}\n")).unwrap();
    assert!(!c.tuning.enable_v2);
    // Asked for on 3.5: allowed, with a warning that 3.6 drops it.
    let c = with(&format!(
        "etcd: {{ version: 3.5.21, sha256: \"{SHA}\" }}\ntuning: {{ enable_v2: true }}\n"
    ))
    .unwrap();
    assert!(c.tuning.enable_v2);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("deprecated in etcd 3.5")),
        "{:?}",
        c.warnings
    );
    // Asked for on 3.6: an error that keeps flannel's v2 users on 3.5.
    let r = with(&format!(
        "etcd: {{ version: 3.6.4, sha256: \"{SHA}\" }}\ntuning: {{ enable_v2: true }}\n"
    ));
    let m = r.as_ref().map(|_| ()).unwrap_err().to_string();
    assert_eq!(rules(r), vec![Rule::EnableV2]);
    assert!(
        m.contains("cluster.yaml:") && m.contains("flannel") && m.contains("3.5"),
        "{m}"
    );
    // false on 3.6 is fine.
    with(&format!(
        "etcd: {{ version: 3.6.4, sha256: \"{SHA}\" }}\ntuning: {{ enable_v2: false }}\n"
    ))
    .unwrap();
}

#[test]
fn only_the_3_4_3_5_and_3_6_lines_are_rendered() {
    for v in ["3.3.27", "3.7.0", "4.0.0"] {
        let r = with(&format!("etcd: {{ version: {v}, sha256: \"{SHA}\" }}\n"));
        let m = r.as_ref().map(|_| ()).unwrap_err().to_string();
        assert_eq!(rules(r), vec![Rule::EtcdVersion], "{v}");
        assert!(m.contains("3.4, 3.5, 3.6"), "{m}");
    }
}
