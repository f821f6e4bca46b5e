//! The `metrics:` section: where the plain-http listener binds.

use super::*;

#[test]
fn metrics_default_to_localhost_on_2381() {
    let c = with("").unwrap();
    assert_eq!(c.metrics.listen, MetricsListen::Localhost);
    assert_eq!(c.metrics.port, 2381);
    assert!(!c.metrics.extensive);
    assert_eq!(
        c.metrics.textfile_dir,
        "/var/lib/node_exporter/textfile_collector"
    );
}

#[test]
fn the_metrics_listener_keeps_off_the_tls_ports() {
    for port in [2379, 2380, 0] {
        let r = with(&format!("metrics: {{ port: {port} }}\n"));
        assert_eq!(rules(r), [Rule::Metrics], "port {port}");
    }
    let m = message(with("metrics: { port: 2379 }\n"));
    assert!(m.contains("client port 2379") && m.contains(":"), "{m}");
    assert!(with("metrics: { listen: node, port: 9379 }\n").is_ok());
}

#[test]
fn a_bad_listen_or_textfile_dir_is_refused_with_its_line() {
    let r = with("metrics: { listen: everywhere }\n");
    assert_eq!(rules(r), [Rule::Metrics]);
    let m = message(with("metrics:\n  textfile_dir: var/lib/x\n"));
    assert!(m.contains("textfile_dir") && m.contains("help:"), "{m}");
}
