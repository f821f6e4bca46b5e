//! A .deb cluster, installed with apt from the repository `etcdpack publish` made of sealed
//! packages (each node's key sealed to its machine's SSH host key), refuses strangers
//! (127.0.4.1-3, intruder on 127.0.4.9): clients without a certificate or with one from another
//! CA are refused, a peer with another CA's certificate never joins (while the same peer with a
//! cluster certificate does), a neighbour's package from the same repository does not install,
//! the CA key is on no node and no node holds another's key in clear, the sealed key is root's,
//! the unsealed one 0600 and the service user's, and etcd runs as that user.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::cluster::{Cluster, Format};
use crate::e2e;
use crate::support::{self, run_ok};

/// A certificate authority that is not the cluster's, made with openssl.
struct ForeignCa {
    dir: PathBuf,
}

impl ForeignCa {
    fn new(dir: PathBuf) -> ForeignCa {
        fs::create_dir_all(&dir).unwrap();
        run_ok(
            Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
                .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
                .args(["-subj", "/CN=etcd CA"])
                .arg("-keyout")
                .arg(dir.join("ca-key.pem"))
                .arg("-out")
                .arg(dir.join("ca.pem")),
        );
        ForeignCa { dir }
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("ca-key.pem")
    }
}

/// A leaf certificate for `cn` with IP SANs (none when `sans` is empty), server and client
/// auth, signed by `ca_cert` and `ca_key` (the cluster's CA, or a foreign one); returns
/// (cert, key).
pub fn issue(
    dir: &Path,
    name: &str,
    cn: &str,
    sans: &[&str],
    ca_cert: &Path,
    ca_key: &Path,
) -> (PathBuf, PathBuf) {
    let (cert, key, csr, ext) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}-key.pem")),
        dir.join(format!("{name}.csr")),
        dir.join(format!("{name}.ext")),
    );
    let sans: Vec<String> = sans
        .iter()
        .map(|san| match san.parse::<std::net::IpAddr>() {
            Ok(ip) => format!("IP:{ip}"),
            Err(_) => format!("DNS:{san}"),
        })
        .collect();
    let san_line = if sans.is_empty() {
        String::new()
    } else {
        format!("subjectAltName={}\n", sans.join(","))
    };
    fs::write(
        &ext,
        format!(
            "{san_line}keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth,clientAuth\n"
        ),
    )
    .unwrap();
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-subj", &format!("/CN={cn}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr),
    );
    run_ok(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-set_serial", "7"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(ca_cert)
            .arg("-CAkey")
            .arg(ca_key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert),
    );
    (cert, key)
}

/// etcdctl on the host against one endpoint, with exactly the TLS files given.
fn host_etcdctl(endpoint: &str, tls: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut cmd = Command::new("etcdctl");
    cmd.env_clear()
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg("--command-timeout=4s")
        .arg("--dial-timeout=3s");
    for (flag, path) in tls {
        cmd.arg(format!("--{flag}={}", path.display()));
    }
    cmd.args(args).output().unwrap()
}

/// A fourth etcd, started by hand on the host: it is the test's intruder, not a member.
/// Killed when dropped.
struct Intruder {
    child: Child,
    log: PathBuf,
}

impl Intruder {
    /// Joins the cluster as member `intruder` on `ip`, presenting `cert`/`key` to clients and
    /// peers. It trusts the cluster's CA itself, so only the members' verdict on its
    /// certificate decides whether it gets in.
    fn start(c: &Cluster, dir: &Path, ip: &str, cert: &Path, key: &Path) -> Intruder {
        fs::create_dir_all(dir).unwrap();
        let data = dir.join("data");
        let ca = c.generated.out.join("pki/ca.pem");
        let mut initial: Vec<String> = (1..=3)
            .map(|i| format!("etcd-{i}=https://{}:2380", c.ips[i - 1]))
            .collect();
        initial.push(format!("intruder=https://{ip}:2380"));
        let log = dir.join("intruder.log");
        let out = fs::File::create(&log).unwrap();
        let child = Command::new("etcd")
            .env_clear()
            .arg("--name=intruder")
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-peer-urls=https://{ip}:2380"))
            .arg(format!("--initial-advertise-peer-urls=https://{ip}:2380"))
            .arg(format!("--listen-client-urls=https://{ip}:2379"))
            .arg(format!("--advertise-client-urls=https://{ip}:2379"))
            .arg(format!("--initial-cluster={}", initial.join(",")))
            .arg("--initial-cluster-state=existing")
            .arg("--initial-cluster-token=test-token")
            .arg(format!("--cert-file={}", cert.display()))
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--trusted-ca-file={}", ca.display()))
            .arg("--client-cert-auth")
            .arg(format!("--peer-cert-file={}", cert.display()))
            .arg(format!("--peer-key-file={}", key.display()))
            .arg(format!("--peer-trusted-ca-file={}", ca.display()))
            .arg("--peer-client-cert-auth")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Intruder { child, log }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Intruder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first base64 line of a PEM file: enough to recognise a copy of it anywhere.
fn pem_fingerprint(pem: &Path) -> String {
    let text = fs::read_to_string(pem).unwrap();
    let line = text
        .lines()
        .find(|l| !l.starts_with("-----") && l.len() >= 40)
        .unwrap_or_else(|| panic!("{}: no base64 line", pem.display()));
    line.to_string()
}

/// Files under `root` (a node's root, seen from the host) holding `needle`.
fn files_containing(root: &Path, needle: &str) -> Vec<String> {
    let out = Command::new("grep")
        .args(["-rlF", "--devices=skip", "--no-messages", "-e", needle])
        .arg(root)
        .output()
        .unwrap();
    // 0: found, 1: not found; anything else is an error of grep's own.
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "grep in {} failed: {}",
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// On etcd-1, `apt-get install` of its neighbour etcd-2's package, from the same repository,
/// fails: that package's key is sealed to etcd-2's host key, and its preinst refuses this
/// machine's before anything of it is unpacked. Node packages conflict (`etcdpack-member`), and
/// apt removes a conflicting package before it unpacks the new one: etcd-1's own package is
/// gone by the time preinst refuses, and its member stopped (its data stays). Installing its
/// own package again brings the member back with the same key.
fn neighbour_package_refused(c: &Cluster) {
    let node = c.node(1);
    let key = "/opt/etcd/ssl/server-key.pem";
    let key_before = node.exec_ok(&["sha256sum", key]);
    c.wait_active(1);
    let out = node.exec(&[
        "env",
        "DEBIAN_FRONTEND=noninteractive",
        "apt-get",
        "-o",
        "Dir::Etc::SourceList=/dev/null",
        "install",
        "-y",
        "--no-install-recommends",
        "etcd-test-etcd-2",
    ]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "etcd-2's package installed on etcd-1:\n{said}"
    );
    assert!(
        said.contains(
            "etcd-test-etcd-2: this package is for node etcd-2, whose key is sealed to the SSH \
             host key SHA256:"
        ) && said.contains("this machine's /etc/ssh/ssh_host_ed25519_key.pub is another key."),
        "apt-get did not say why:\n{said}"
    );
    let status = |package: &str| {
        let out = node.exec(&["dpkg-query", "-W", "-f", "${db:Status-Status}", package]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(status("etcd-test-etcd-2"), "not-installed", "{said}");
    // None of its files is there (etcd-1's, at the same paths, went with its package).
    let contents = node.exec_ok(&[
        "dpkg-deb",
        "--contents",
        "/var/cache/apt/archives/etcd-test-etcd-2_3.4.16-1_amd64.deb",
    ]);
    let files: Vec<String> = contents
        .lines()
        .filter(|l| !l.starts_with('d'))
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|path| format!("/{}", path.trim_start_matches("./")))
        .collect();
    assert!(
        files
            .iter()
            .any(|f| f == "/opt/etcd/ssl/server-key.pem.age"),
        "{contents}"
    );
    let mut argv = vec![
        "sh",
        "-c",
        r#"for f; do if [ -e "$f" ]; then echo "$f"; fi; done"#,
        "sh",
    ];
    argv.extend(files.iter().map(String::as_str));
    let left = node.exec_ok(&argv);
    assert_eq!(left, "", "files of etcd-2's package on etcd-1\n{said}");
    // What apt did first (see above).
    assert_eq!(status("etcd-test-etcd-1"), "config-files", "{said}");
    let active = node.exec(&["systemctl", "is-active", "etcd.service"]);
    assert_ne!(String::from_utf8_lossy(&active.stdout).trim(), "active");

    c.install_package(1, Format::Repository, 1);
    assert_eq!(status("etcd-test-etcd-1"), "installed");
    assert_eq!(node.exec_ok(&["sha256sum", key]), key_before);
    c.wait_active(1);
    c.wait_healthy(1, &[1, 2, 3]);
}

#[test]
fn deb_cluster_refuses_strangers() {
    support::require!(e2e::NODES, support::STANDIN, support::OPENSSL);
    // Installed from the signed repository etcdpack published, as machines of a team would.
    let c = Cluster::install("systemd-tls", "127.0.4", Format::Repository);
    for i in 1..=3 {
        c.wait_healthy(i, &[1, 2, 3]);
    }
    c.etcdctl_ok(1, &["put", "/e2e/secret", "s3cret"]);
    let pki = c.generated.out.join("pki");
    let ca = pki.join("ca.pem");
    let (client, client_key) = (
        pki.join("clients/etcdctl.pem"),
        pki.join("clients/etcdctl-key.pem"),
    );
    let work = c.scratch.join("host");
    fs::create_dir_all(&work).unwrap();

    // Positive control: the generated client certificate is served, from the host too.
    for i in 1..=3 {
        let out = host_etcdctl(
            &c.endpoint(i),
            &[("cacert", &ca), ("cert", &client), ("key", &client_key)],
            &["get", "--print-value-only", "/e2e/secret"],
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "s3cret",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // No client certificate: refused.
    let anon = host_etcdctl(&c.endpoint(2), &[("cacert", &ca)], &["get", "/e2e/secret"]);
    assert!(!anon.status.success(), "served without a certificate");
    assert!(!String::from_utf8_lossy(&anon.stdout).contains("s3cret"));
    // A certificate from another CA, with the same name as the real client's: refused.
    let foreign = ForeignCa::new(work.join("foreign-ca"));
    let (fake, fake_key) = issue(
        &work,
        "fake-etcdctl",
        "etcdctl",
        &["127.0.0.1"],
        &foreign.cert(),
        &foreign.key(),
    );
    let out = host_etcdctl(
        &c.endpoint(2),
        &[("cacert", &ca), ("cert", &fake), ("key", &fake_key)],
        &["get", "/e2e/secret"],
    );
    assert!(!out.status.success(), "served a foreign client certificate");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("s3cret"));

    // A peer with a foreign certificate cannot join. The member is announced with
    // `member add` (as an operator would), then an etcd on the host tries to join as it.
    let intruder_ip = "127.0.4.9";
    let added = c.etcdctl_ok(
        1,
        &[
            "member",
            "add",
            "intruder",
            &format!("--peer-urls=https://{intruder_ip}:2380"),
        ],
    );
    assert!(
        added.contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\""),
        "{added}"
    );
    // 127.0.0.1 too: nodes share the host's network, so connections leave from 127.0.0.1, and
    // etcd checks a peer's certificate against the address it connects from. The members'
    // own certificates name it as well; only the CA differs.
    let (bad, bad_key) = issue(
        &work,
        "intruder-foreign",
        "etcd-1",
        &[intruder_ip, "127.0.0.1"],
        &foreign.cert(),
        &foreign.key(),
    );
    let intruder = Intruder::start(&c, &work.join("foreign"), intruder_ip, &bad, &bad_key);
    // Every member refuses its certificate in the TLS handshake, so it cannot even learn the
    // cluster's membership and gives up; the members log why.
    let mut intruder = intruder;
    let exited = e2e::wait_for(Duration::from_secs(30), || {
        intruder.child.try_wait().unwrap()
    });
    let log = intruder.log();
    assert!(
        exited.is_some_and(|s| !s.success()),
        "the foreign peer kept running: {exited:?}\n{log}"
    );
    // TLS 1.3: the client learns of the refusal as an alert, or as a reset connection.
    for i in 1..=3 {
        let refused = format!(
            "could not get cluster response from https://{}:2380",
            c.ips[i - 1]
        );
        assert!(
            log.contains(&refused),
            "etcd-{i} answered the foreign peer:\n{log}"
        );
    }
    assert!(log.contains("remote error: tls: bad certificate"), "{log}");
    assert!(
        log.contains("could not retrieve cluster information"),
        "{log}"
    );
    let rejections: Vec<String> = (1..=3)
        .flat_map(|i| {
            let journal =
                c.node(i)
                    .exec_ok(&["journalctl", "--no-pager", "-u", "etcd", "-o", "cat"]);
            journal
                .lines()
                .filter(|l| {
                    l.contains("rejected connection from") && l.contains("unknown authority")
                })
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        !rejections.is_empty(),
        "no member logged rejecting the foreign certificate\n{}",
        c.diagnose()
    );
    std::thread::sleep(Duration::from_secs(3));
    let members = c.etcdctl_ok(1, &["member", "list"]);
    let line = members
        .lines()
        .find(|l| l.contains(intruder_ip))
        .unwrap_or_else(|| panic!("{members}"));
    assert!(
        line.contains("unstarted"),
        "the foreign peer joined: {members}\n{}",
        intruder.log()
    );
    c.wait_healthy(1, &[1, 2, 3]);
    intruder.stop();

    // Control: the very same intruder with a peer certificate from the cluster's CA (its key
    // is on the generating machine, here) does join — so it was the CA that kept it out above.
    // A peer certificate is one that carries the cluster's peer name, as node certificates do
    // (a client certificate of the same CA is refused on the peer port: tests/cluster.rs).
    let conf =
        fs::read_to_string(c.generated.out.join("nodes/etcd-1/opt/etcd/cfg/etcd.conf")).unwrap();
    let peer_name = conf
        .lines()
        .find_map(|l| l.strip_prefix("ETCD_PEER_CERT_ALLOWED_HOSTNAME="))
        .expect("etcd.conf restricts the peer port");
    let (good, good_key) = issue(
        &work,
        "intruder-cluster",
        "intruder",
        &[intruder_ip, "127.0.0.1", peer_name],
        &ca,
        &pki.join("ca-key.pem"),
    );
    let member = Intruder::start(&c, &work.join("cluster"), intruder_ip, &good, &good_key);
    let joined = e2e::wait_for(Duration::from_secs(30), || {
        let list = c.etcdctl_ok(1, &["member", "list"]);
        list.contains(&format!("started, intruder, https://{intruder_ip}:2380"))
            .then_some(())
    });
    assert!(
        joined.is_some(),
        "the control peer did not join:\n{}\n{}",
        member.log(),
        c.diagnose()
    );
    let id = c.etcdctl_ok(1, &["member", "list"]);
    let id = id
        .lines()
        .find(|l| l.contains("intruder"))
        .and_then(|l| l.split(',').next())
        .unwrap()
        .trim()
        .to_string();
    c.etcdctl_ok(1, &["member", "remove", &id]);
    member.stop();
    c.wait_healthy(2, &[1, 2, 3]);
    assert_eq!(c.etcdctl_ok(3, &["member", "list"]).lines().count(), 3);

    neighbour_package_refused(&c);

    // The CA's private key is on no node, nor another node's key in clear; the scan does find
    // each node's own key, unsealed.
    let ca_key = pem_fingerprint(&pki.join("ca-key.pem"));
    let node_key = |i: usize| pem_fingerprint(&pki.join(format!("nodes/etcd-{i}-key.pem")));
    for i in 1..=3 {
        let root = &c.node(i).root;
        let found = files_containing(root, &ca_key);
        assert!(found.is_empty(), "the CA key is on etcd-{i}: {found:?}");
        for j in (1..=3).filter(|&j| j != i) {
            let found = files_containing(root, &node_key(j));
            assert!(found.is_empty(), "etcd-{j}'s key is on etcd-{i}: {found:?}");
        }
        let found = files_containing(root, &node_key(i));
        assert_eq!(
            found,
            [root
                .join("opt/etcd/ssl/server-key.pem")
                .display()
                .to_string()]
        );
    }

    // The sealed key is root's, 0600; the unsealed one 0600 and the service user's; etcd runs
    // as that user.
    for i in 1..=3 {
        let node = c.node(i);
        let keys = node.sh_ok("find / -xdev -path /proc -prune -o -name '*-key.pem' -print");
        let keys: Vec<&str> = keys.lines().collect();
        assert_eq!(keys, ["/opt/etcd/ssl/server-key.pem"], "etcd-{i}");
        assert_eq!(
            node.exec_ok(&["stat", "-c", "%a %U:%G", "/opt/etcd/ssl/server-key.pem.age"])
                .trim(),
            "600 root:root",
            "etcd-{i}"
        );
        assert_eq!(
            node.exec_ok(&["stat", "-c", "%a %U:%G", "/opt/etcd/ssl/server-key.pem"])
                .trim(),
            "600 etcd:etcd"
        );
        assert_eq!(
            node.exec_ok(&["stat", "-c", "%a %U", "/var/lib/etcd/default.etcd"])
                .trim(),
            "700 etcd"
        );
        let uid = node.exec_ok(&["id", "-u", "etcd"]).trim().to_string();
        assert_ne!(uid, "0");
        let pid = c.wait_active(i);
        let status = node.exec_ok(&["cat", &format!("/proc/{pid}/status")]);
        let uids = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap();
        let uids: Vec<&str> = uids.split_whitespace().collect();
        assert_eq!(uids, [uid.as_str(); 4], "etcd-{i}: {status}");
        assert_eq!(
            node.exec_ok(&["cat", &format!("/proc/{pid}/comm")]).trim(),
            "etcd"
        );
    }
    c.tear_down();
}
