//! The 3.6 package's question to the other members, asked of a real TLS
//! cluster: three members of mixed 3.5 releases, each serving the
//! certificate the cluster's PKI issued it, and the node's own certificate
//! and etcdctl asking them.

use super::*;

use etcdpack::model::Layout;
use etcdpack::pki;
use etcdpack::report::{Reporter, Verbosity};

/// A real etcd member of a three-member TLS cluster on 127.0.8.21–23,
/// stopped when dropped.
struct TlsMember(std::process::Child);

const IPS: [&str; 3] = ["127.0.8.21", "127.0.8.22", "127.0.8.23"];

impl TlsMember {
    /// Member `i` (0-based) running the etcd under `etcd_dir` on `data`,
    /// with the certificate and key in `ssl`.
    fn start(etcd_dir: &str, i: usize, data: &Path, ssl: &Path) -> TlsMember {
        let ip = IPS[i];
        let initial: Vec<String> = IPS
            .iter()
            .enumerate()
            .map(|(n, ip)| format!("etcd-{}=https://{ip}:2380", n + 1))
            .collect();
        let ca = ssl.join("ca.pem");
        let cert = ssl.join(format!("member-{i}.pem"));
        let key = ssl.join(format!("member-{i}-key.pem"));
        let child = Command::new(format!("{etcd_dir}/etcd"))
            .arg("--data-dir")
            .arg(data)
            .args(["--name", &format!("etcd-{}", i + 1)])
            .args(["--listen-client-urls", &format!("https://{ip}:2379")])
            .args(["--advertise-client-urls", &format!("https://{ip}:2379")])
            .args(["--listen-peer-urls", &format!("https://{ip}:2380")])
            .args([
                "--initial-advertise-peer-urls",
                &format!("https://{ip}:2380"),
            ])
            .args(["--initial-cluster", &initial.join(",")])
            .args(["--initial-cluster-token", "upgrade-cluster"])
            .args(["--client-cert-auth", "--peer-client-cert-auth"])
            .arg("--trusted-ca-file")
            .arg(&ca)
            .arg("--peer-trusted-ca-file")
            .arg(&ca)
            .arg("--cert-file")
            .arg(&cert)
            .arg("--key-file")
            .arg(&key)
            .arg("--peer-cert-file")
            .arg(&cert)
            .arg("--peer-key-file")
            .arg(&key)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        TlsMember(child)
    }
}

impl Drop for TlsMember {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether every member answers `endpoint health` over TLS with `ssl`'s
/// first member's certificate.
fn all_healthy(ssl: &Path) -> bool {
    let endpoints: Vec<String> = IPS.iter().map(|ip| format!("https://{ip}:2379")).collect();
    Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", endpoints.join(",")))
        .arg(format!("--cacert={}", ssl.join("ca.pem").display()))
        .arg(format!("--cert={}", ssl.join("member-0.pem").display()))
        .arg(format!("--key={}", ssl.join("member-0-key.pem").display()))
        .args(["--dial-timeout=2s", "endpoint", "health"])
        .output()
        .unwrap()
        .status
        .success()
}

fn wait_healthy(ssl: &Path, what: &str) {
    let up = (0..150).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        all_healthy(ssl)
    });
    assert!(
        up,
        "{what}: the TLS cluster on 127.0.8.21–23 did not become healthy"
    );
}

/// A 3.6 package's scripts that run before its files are unpacked ask every
/// member its version through the node's own etcdctl, certificate and
/// client URL: with one member still on 3.5.16 they refuse, naming that
/// member and its version; once it runs 3.5.26 or later they pass, and
/// without the warning that some member did not answer.
#[test]
fn a_3_6_package_asks_every_member_of_a_tls_cluster_its_version() {
    support::require!(support::ETCD_3_5_LATE, support::STANDIN_3_5);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let yaml = format!(
        "version: 1
cluster: {{ name: test, token: upgrade-cluster }}
nodes:
  - {{ name: etcd-1, ip: {} }}
  - {{ name: etcd-2, ip: {} }}
  - {{ name: etcd-3, ip: {} }}
pki: {{ algorithm: ecdsa-p256 }}
paths: {{ install_dir: {d}/opt/etcd, data_dir: {d}/var/lib/etcd/default.etcd }}
service: {{ user: root }}
etcd: {{ version: 3.6.14 }}
",
        IPS[0], IPS[1], IPS[2]
    );
    let c = config::parse(Path::new("cluster.yaml"), &yaml, &Overrides::default()).unwrap();

    // The cluster's own PKI: the CA and each node's leaf, as gen issues them.
    let reporter = Reporter::new(Verbosity::Quiet);
    let now = time::OffsetDateTime::now_utc();
    let issued = pki::ensure(&dir.path().join("pki"), &c, now, &reporter).unwrap();
    let ssl = dir.path().join("members-ssl");
    fs::create_dir_all(&ssl).unwrap();
    fs::write(ssl.join("ca.pem"), &issued.ca_cert_pem).unwrap();
    let specs = pki::leaf_specs(&c);
    for (i, spec) in specs.iter().take(3).enumerate() {
        let leaf = issued.leaf(&spec.id).unwrap();
        assert_eq!(spec.common_name, format!("etcd-{}", i + 1));
        fs::write(ssl.join(format!("member-{i}.pem")), &leaf.cert_pem).unwrap();
        fs::write(ssl.join(format!("member-{i}-key.pem")), &leaf.key_pem).unwrap();
        fs::set_permissions(
            ssl.join(format!("member-{i}-key.pem")),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    // Node 1 as its package installed it: the late 3.5 etcd and etcdutl,
    // etcdctl, and its certificate where the layout puts them.
    install_old(&c, support::ETCD_3_5_LATE_DIR);
    let layout = Layout::new(&c.paths.install_dir);
    fs::create_dir_all(&layout.ssl_dir).unwrap();
    fs::copy(ssl.join("ca.pem"), &layout.ca_file).unwrap();
    fs::copy(ssl.join("member-0.pem"), &layout.cert_file).unwrap();
    fs::copy(ssl.join("member-0-key.pem"), &layout.key_file).unwrap();

    let data = [
        PathBuf::from(&c.paths.data_dir),
        dir.path().join("data-2"),
        dir.path().join("data-3"),
    ];
    let _m1 = TlsMember::start(support::ETCD_3_5_LATE_DIR, 0, &data[0], &ssl);
    let _m2 = TlsMember::start(support::ETCD_3_5_LATE_DIR, 1, &data[1], &ssl);
    let m3 = TlsMember::start(support::ETCD_3_5_DIR, 2, &data[2], &ssl);
    wait_healthy(&ssl, "mixed 3.5 releases");

    // The third member runs trixie's 3.5.16: refused, naming it.
    for (script, args) in BEFORE_UNPACK {
        let out = run_rendered(dir.path(), &c, script, args, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{script}: {err}");
        assert!(
            err.contains(&format!(
                "the member at https://{}:2379 runs etcd 3.5.16; etcd 3.6.14 needs every member on 3.5.26 or later first",
                IPS[2]
            )),
            "{script}: {err}"
        );
        for ip in &IPS[..2] {
            assert!(
                !err.contains(&format!("member at https://{ip}")),
                "{script}: {err}"
            );
        }
        assert!(
            !err.contains("could not ask every member"),
            "{script}: {err}"
        );
    }

    // The same member on 3.5.30, its data kept: every member answers, and it passes.
    drop(m3);
    let _m3 = TlsMember::start(support::ETCD_3_5_LATE_DIR, 2, &data[2], &ssl);
    wait_healthy(&ssl, "every member on 3.5.30");
    for (script, args) in BEFORE_UNPACK {
        let out = run_rendered(dir.path(), &c, script, args, &[]);
        let err = stderr(&out);
        assert!(out.status.success(), "{script}: {err}");
        assert!(
            !err.contains("could not ask every member"),
            "{script}: {err}"
        );
        assert!(!err.contains("runs etcd"), "{script}: {err}");
    }
}
