//! The generated packages under real systemd: each node of a three-node cluster installs its own
//! .deb (with apt) or .rpm (with rpm) into a Debian root booted with systemd as PID 1
//! (tests/e2e), and the package's own scripts enable and start etcd. Nobody starts etcd by hand.
//!
//! - `deb_cluster_forms_survives_failures_and_upgrades` (127.0.3.1-3): the cluster forms; it keeps
//!   accepting writes with one member stopped, which then catches up; a powered-off node comes
//!   back by itself with its data; a rolling upgrade to a changed config restarts every member
//!   and keeps the cluster healthy and every key.
//! - `deb_cluster_refuses_strangers` (127.0.4.1-3, intruder on 127.0.4.9): clients without a
//!   certificate or with one from another CA are refused, a peer with another CA's certificate
//!   never joins, the CA key is on no node, keys are 0600 and the service user's, and etcd runs
//!   as that user.
//! - `rpm_cluster_forms_and_a_broken_config_fails` (127.0.5.1-3): the same from the .rpm
//!   packages, then the negative control: the recipe's inline comment in the EnvironmentFile
//!   makes the unit fail, and the checks used above see it.
//!
//! Each test uses its own addresses (tests/cluster.rs has 127.0.0.1-3), so all of them can run
//! at once. Every node is torn down at the end, also on failure (`Drop for Node`).

mod support;

#[path = "e2e/mod.rs"]
mod e2e;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use e2e::{Node, Scratch};
use support::{Gen, run_ok};

/// How long a member may take to (re)join and report healthy.
const HEALTHY_WITHIN: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Deb,
    Rpm,
}

/// Three booted nodes, each with its member's package installed, and the generator's output.
struct Cluster {
    // Fields drop in order: nodes first, then their roots, then the generator's temp dir.
    nodes: Vec<Node>,
    scratch: Scratch,
    generated: Gen,
    ips: Vec<String>,
    started: Instant,
}

impl Cluster {
    /// Generates packages for nodes on `{prefix}.1-3`, boots three nodes and installs on each its
    /// own package, the way an operator would. Returns before the cluster is necessarily healthy.
    fn install(label: &str, prefix: &str, format: Format) -> Cluster {
        let started = Instant::now();
        let ips: Vec<String> = (1..=3).map(|i| format!("{prefix}.{i}")).collect();
        let ip_refs: Vec<&str> = ips.iter().map(String::as_str).collect();
        let generated = Gen::new(&ip_refs, "packages: { formats: [deb, rpm] }\n");
        generated.run_ok(&[]);
        let scratch = Scratch::new(label);
        let base = e2e::base_root();
        let mut cluster = Cluster {
            nodes: Vec::new(),
            scratch,
            generated,
            ips,
            started,
        };
        cluster.log("generated");
        for i in 1..=3 {
            let name = format!("etcd-{i}");
            let node = Node::boot(&base, &cluster.scratch.join(&name), &name);
            cluster.nodes.push(node);
        }
        cluster.log("booted");
        for i in 1..=3 {
            cluster.install_package(i, format, 1);
        }
        cluster.log("installed");
        cluster
    }

    fn node(&self, i: usize) -> &Node {
        &self.nodes[i - 1]
    }

    fn endpoint(&self, i: usize) -> String {
        format!("https://{}:2379", self.ips[i - 1])
    }

    fn package(&self, i: usize, format: Format, release: u32) -> PathBuf {
        let name = match format {
            Format::Deb => format!("etcd-test-etcd-{i}_3.4.16-{release}_amd64.deb"),
            Format::Rpm => format!("etcd-test-etcd-{i}-3.4.16-{release}.x86_64.rpm"),
        };
        self.generated.out.join("dist").join(name)
    }

    /// Installs node `i`'s package with the distribution's own tool. /srv, not /tmp: services
    /// with PrivateTmp would not see it, and this keeps files where the harness says.
    fn install_package(&self, i: usize, format: Format, release: u32) {
        let node = self.node(i);
        let pkg = self.package(i, format, release);
        assert!(pkg.is_file(), "{} was not generated", pkg.display());
        match format {
            Format::Deb => {
                node.copy_in(&pkg, "/srv/etcd.deb");
                // apt with a local file and no repositories at all: the package's only
                // dependency (passwd, for useradd) is in every Debian root.
                node.exec_ok(&[
                    "env",
                    "DEBIAN_FRONTEND=noninteractive",
                    "apt-get",
                    "install",
                    "-y",
                    "--no-install-recommends",
                    "/srv/etcd.deb",
                ]);
            }
            Format::Rpm => {
                node.copy_in(&pkg, "/srv/etcd.rpm");
                // --nodeps: a Debian root's software is known to dpkg, not to rpm, whose
                // database here is empty, so even /bin/sh would count as missing. The
                // scriptlets themselves run with the node's useradd and systemctl.
                // Debian's rpm keeps its database in $HOME; an RPM distribution's is here.
                let op = if release == 1 { "-i" } else { "-U" };
                node.exec_ok(&[
                    "rpm",
                    "--dbpath=/var/lib/rpm",
                    op,
                    "--nodeps",
                    "/srv/etcd.rpm",
                ]);
            }
        }
    }

    /// etcdctl inside node `i`, through a login shell: only the installed profile
    /// (/etc/profile.d/etcdctl.sh) tells it the endpoints, the CA and the node's certificate.
    fn etcdctl(&self, i: usize, args: &[&str]) -> Output {
        self.etcdctl_at(i, &[], args)
    }

    /// Like [`Cluster::etcdctl`], but talking to the given members only (1-based; all three
    /// when empty). etcdctl 3.4 refuses `--endpoints` next to the profile's ETCDCTL_ENDPOINTS
    /// ("conflicting environment variable"), so the variable itself is overridden.
    fn etcdctl_at(&self, i: usize, members: &[usize], args: &[&str]) -> Output {
        let endpoints: Vec<String> = members.iter().map(|&m| self.endpoint(m)).collect();
        let endpoints = endpoints.join(",");
        let script = r#"if [ -n "$1" ]; then export ETCDCTL_ENDPOINTS="$1"; fi
shift
exec etcdctl --command-timeout=5s "$@""#;
        let mut argv = vec!["bash", "-lc", script, "etcdctl", &endpoints];
        argv.extend_from_slice(args);
        self.node(i).exec(&argv)
    }

    fn etcdctl_ok(&self, i: usize, args: &[&str]) -> String {
        self.etcdctl_at_ok(i, &[], args)
    }

    fn etcdctl_at_ok(&self, i: usize, members: &[usize], args: &[&str]) -> String {
        let out = self.etcdctl_at(i, members, args);
        assert!(
            out.status.success(),
            "etcdctl {args:?} on etcd-{i} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether `endpoint health` run on node `via` reports every endpoint in `members`
    /// (1-based) healthy.
    fn healthy(&self, via: usize, members: &[usize]) -> Result<(), String> {
        let out = self.etcdctl_at(via, members, &["endpoint", "health"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() && text.matches("is healthy").count() == members.len() {
            Ok(())
        } else {
            Err(text)
        }
    }

    /// Waits until every member in `members` is healthy, seen from node `via`; panics with the
    /// last answer and each node's diagnosis otherwise.
    fn wait_healthy(&self, via: usize, members: &[usize]) {
        let mut last = String::new();
        let ok = e2e::wait_for(HEALTHY_WITHIN, || match self.healthy(via, members) {
            Ok(()) => Some(()),
            Err(text) => {
                last = text;
                std::thread::sleep(Duration::from_millis(400));
                None
            }
        });
        if ok.is_none() {
            panic!(
                "members {members:?} not healthy within {HEALTHY_WITHIN:?}:\n{last}\n{}",
                self.diagnose()
            );
        }
    }

    /// Waits until node `i` itself (a serializable read: its own copy of the data, no
    /// quorum involved) has `key` = `value`.
    fn wait_local_value(&self, i: usize, key: &str, value: &str) {
        let mut last = String::new();
        let found = e2e::wait_for(HEALTHY_WITHIN, || {
            let out = self.etcdctl_at(
                i,
                &[i],
                &["get", "--consistency=s", "--print-value-only", key],
            );
            last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == value)
                .then_some(())
        });
        assert!(
            found.is_some(),
            "etcd-{i} does not have {key}={value}: {last}\n{}",
            self.diagnose()
        );
    }

    fn unit_property(&self, i: usize, property: &str) -> String {
        self.node(i)
            .exec_ok(&["systemctl", "show", "-P", property, "etcd.service"])
            .trim()
            .to_string()
    }

    /// The main PID of etcd.service on node `i`, once it is active.
    fn wait_active(&self, i: usize) -> u32 {
        let pid = e2e::wait_for(HEALTHY_WITHIN, || {
            let active = self
                .node(i)
                .exec(&["systemctl", "is-active", "etcd.service"]);
            if String::from_utf8_lossy(&active.stdout).trim() != "active" {
                return None;
            }
            self.unit_property(i, "MainPID")
                .parse::<u32>()
                .ok()
                .filter(|&p| p != 0)
        });
        pid.unwrap_or_else(|| panic!("etcd on etcd-{i} never became active\n{}", self.diagnose()))
    }

    fn diagnose(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| {
                let unit = n.exec(&["journalctl", "--no-pager", "-u", "etcd", "-n", "25"]);
                format!(
                    "=== {}\n{}\n--- etcd journal\n{}",
                    n.name,
                    n.diagnose(),
                    String::from_utf8_lossy(&unit.stdout)
                )
            })
            .collect()
    }

    fn log(&self, what: &str) {
        eprintln!(
            "{}: {what} after {:.1} s",
            self.scratch.path.file_name().unwrap().to_string_lossy(),
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Powers every node off and checks that nothing of them is left on the host.
    fn tear_down(mut self) {
        for node in &mut self.nodes {
            let pid = node.pid;
            node.stop();
            assert!(!e2e::pid_alive(pid), "{}'s systemd survived", node.name);
        }
        let left = e2e::processes_rooted_in(&self.scratch.path);
        assert!(left.is_empty(), "processes left in the roots: {left:?}");
        let mounts = e2e::mounts_under(&self.scratch.path);
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
        self.log("torn down");
    }
}

/// Checks shared by both formats, right after the installs: the scripts enabled and started
/// etcd, the cluster forms, and the installed profile alone drives etcdctl.
fn assert_forms(c: &Cluster) {
    for i in 1..=3 {
        let node = c.node(i);
        assert_eq!(
            node.exec_ok(&["systemctl", "is-enabled", "etcd.service"])
                .trim(),
            "enabled",
            "the package did not enable etcd on etcd-{i}"
        );
        // Started by the install (--no-block), not by this test.
        let state = c.unit_property(i, "ActiveState");
        assert!(
            state == "active" || state == "activating",
            "etcd on etcd-{i} is {state} after the install\n{}",
            c.diagnose()
        );
    }
    // Health of all three, asked on each node through its own profile.
    for i in 1..=3 {
        c.wait_healthy(i, &[1, 2, 3]);
    }
    // The profile's endpoints are the three members.
    let out = c.etcdctl(2, &["endpoint", "health"]);
    let health = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{health}");
    for i in 1..=3 {
        assert!(
            health.contains(&format!("{} is healthy", c.endpoint(i))),
            "{health}"
        );
    }
    let members = c.etcdctl_ok(1, &["member", "list"]);
    for i in 1..=3 {
        let ip = &c.ips[i - 1];
        let line = format!("started, etcd-{i}, https://{ip}:2380, https://{ip}:2379");
        assert!(members.contains(&line), "no {line:?} in\n{members}");
    }
    assert_eq!(members.lines().count(), 3, "{members}");

    c.etcdctl_ok(1, &["put", "/e2e/formed", "by-node-1"]);
    assert_eq!(
        c.etcdctl_ok(3, &["get", "--print-value-only", "/e2e/formed"])
            .trim(),
        "by-node-1"
    );
    for i in 1..=3 {
        c.wait_active(i);
    }
}

#[test]
fn deb_cluster_forms_survives_failures_and_upgrades() {
    support::require!(e2e::NODES, support::STANDIN);
    let mut c = Cluster::install("systemd-deb", "127.0.3", Format::Deb);
    assert_forms(&c);
    c.log("formed");
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

    // Rolling upgrade: a changed tuning value, regenerated into the same out dir (the PKI is
    // reused), gives release 2; each node installs it in turn while the others serve.
    let config = fs::read_to_string(&c.generated.config).unwrap();
    fs::write(
        &c.generated.config,
        config + "tuning: { quota_backend_bytes: 4GiB }\n",
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
    }
    // No key lost.
    let all = c.etcdctl_ok(2, &["get", "--prefix", "/e2e/", "--keys-only"]);
    let keys: Vec<&str> = all.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(keys.len(), 1 + 6 + 1 + 3, "{all}");
    c.log("rolling upgrade");
    c.tear_down();
}

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

/// A leaf certificate for `cn` with IP SANs, server and client auth, signed by `ca_cert` and
/// `ca_key` (the cluster's CA, or a foreign one); returns (cert, key).
fn issue(
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
    fs::write(
        &ext,
        format!(
            "subjectAltName={}\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth,clientAuth\n",
            sans.join(",")
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

#[test]
fn deb_cluster_refuses_strangers() {
    support::require!(e2e::NODES, support::STANDIN, support::OPENSSL);
    let c = Cluster::install("systemd-tls", "127.0.4", Format::Deb);
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

    // The CA's private key is on no node; the scan does find each node's own key.
    let ca_key = pem_fingerprint(&pki.join("ca-key.pem"));
    for i in 1..=3 {
        let root = &c.node(i).root;
        let found = files_containing(root, &ca_key);
        assert!(found.is_empty(), "the CA key is on etcd-{i}: {found:?}");
        let own = pem_fingerprint(&pki.join(format!("nodes/etcd-{i}-key.pem")));
        let found = files_containing(root, &own);
        assert_eq!(
            found,
            [root
                .join("opt/etcd/ssl/server-key.pem")
                .display()
                .to_string()]
        );
    }

    // Keys 0600 and the service user's; etcd runs as that user.
    for i in 1..=3 {
        let node = c.node(i);
        let keys = node.sh_ok("find / -xdev -path /proc -prune -o -name '*-key.pem' -print");
        let keys: Vec<&str> = keys.lines().collect();
        assert_eq!(keys, ["/opt/etcd/ssl/server-key.pem"], "etcd-{i}");
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

#[test]
fn rpm_cluster_forms_and_a_broken_config_fails() {
    support::require!(e2e::NODES, support::STANDIN);
    let c = Cluster::install("systemd-rpm", "127.0.5", Format::Rpm);
    for i in 1..=3 {
        let q = c.node(i).exec_ok(&[
            "rpm",
            "--dbpath=/var/lib/rpm",
            "-q",
            &format!("etcd-test-etcd-{i}"),
        ]);
        assert_eq!(q.trim(), format!("etcd-test-etcd-{i}-3.4.16-1.x86_64"));
    }
    // %post enabled and started etcd; the cluster forms.
    assert_forms(&c);
    c.log("formed");

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
