//! The cluster the scenarios run on: three Debian roots booted with systemd as PID 1, each
//! with its own member's package installed by the distribution's tool, and the checks that it
//! formed. Nobody starts etcd by hand: the packages' scripts do.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::e2e::{self, Node, Scratch};
use crate::support::publishing::ed25519_key;
use crate::support::{self, Gen, HttpServer, etcdpack, run_ok};

/// How long a member may take to (re)join and report healthy.
pub const HEALTHY_WITHIN: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq)]
pub enum Format {
    /// Each node's .deb copied in and installed with apt.
    Deb,
    /// Each node's .rpm copied in and installed with rpm.
    Rpm,
    /// The .deb packages, with each node's key sealed to its machine's SSH host key
    /// (`packages.keys: sealed`), published with `etcdpack publish` (signed) and served over
    /// HTTP on 127.0.0.1; each node gets its host key in /etc/ssh, adds the published `.sources`
    /// file and runs `apt-get update` and `apt-get install etcd-test-etcd-N`.
    Repository,
}

/// Three booted nodes, each with its member's package installed, and the generator's output.
pub struct Cluster {
    // Fields drop in order: nodes first, then their roots, then the generator's temp dir.
    pub nodes: Vec<Node>,
    /// The published repository's server, for [`Format::Repository`].
    pub server: Option<HttpServer>,
    pub scratch: Scratch,
    pub generated: Gen,
    pub ips: Vec<String>,
    /// The etcd version the packages to install are built with (`etcd.version`).
    pub etcd_version: String,
    pub started: Instant,
}

impl Cluster {
    /// Generates packages for nodes on `{prefix}.1-3`, boots three nodes and installs on each its
    /// own package, the way an operator would. Returns before the cluster is necessarily healthy.
    /// The .deb and .rpm files hold each node's key in clear; the repository's packages hold it
    /// sealed, so both layouts are installed.
    pub fn install(label: &str, prefix: &str, format: Format) -> Cluster {
        Cluster::install_with(label, prefix, format, "")
    }

    /// [`Cluster::install`] of a config with `extra` (top-level keys).
    pub fn install_with(label: &str, prefix: &str, format: Format, extra: &str) -> Cluster {
        let started = Instant::now();
        let ips: Vec<String> = (1..=3).map(|i| format!("{prefix}.{i}")).collect();
        let ip_refs: Vec<&str> = ips.iter().map(String::as_str).collect();
        let generated = if format == Format::Repository {
            Gen::sealed(&ip_refs, "formats: [deb, rpm]")
        } else {
            Gen::new(
                &ip_refs,
                &format!("packages: {{ formats: [deb, rpm] }}\n{extra}"),
            )
        };
        generated.run_ok(&[]);
        let scratch = Scratch::new(label);
        let base = e2e::base_root();
        let server = (format == Format::Repository).then(|| publish(&generated));
        let mut cluster = Cluster {
            nodes: Vec::new(),
            server,
            scratch,
            generated,
            ips,
            etcd_version: support::standin().version.to_owned(),
            started,
        };
        cluster.log("generated");
        for i in 1..=3 {
            let name = format!("etcd-{i}");
            let node = Node::boot(&base, &cluster.scratch.join(&name), &name);
            if format == Format::Repository {
                put_host_key(&cluster.generated, &node);
            }
            cluster.nodes.push(node);
        }
        cluster.log("booted");
        for i in 1..=3 {
            cluster.install_package(i, format, 1);
        }
        cluster.log("installed");
        cluster
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i - 1]
    }

    pub fn endpoint(&self, i: usize) -> String {
        format!("https://{}:2379", self.ips[i - 1])
    }

    pub fn package(&self, i: usize, format: Format, release: u32) -> PathBuf {
        let name = match format {
            Format::Deb | Format::Repository => {
                format!(
                    "etcd-test-etcd-{i}_{}-{release}_amd64.deb",
                    self.etcd_version
                )
            }
            Format::Rpm => format!(
                "etcd-test-etcd-{i}-{}-{release}.x86_64.rpm",
                self.etcd_version
            ),
        };
        self.generated.out.join("dist").join(name)
    }

    /// Installs node `i`'s package with the distribution's own tool. /srv, not /tmp: services
    /// with PrivateTmp would not see it, and this keeps files where the harness says.
    pub fn install_package(&self, i: usize, format: Format, release: u32) {
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
            Format::Repository => {
                let server = self.server.as_ref().expect("a published repository");
                let sources =
                    fs::read_to_string(self.generated.dir.path().join("repo/etcd-test.sources"))
                        .unwrap();
                node.write_file(
                    "/etc/apt/sources.list.d/etcd-test.sources",
                    sources.as_bytes(),
                    0o644,
                );
                // Only the published repository: the root's own sources name a mirror that
                // nodes cannot reach.
                let only = "Dir::Etc::SourceList=/dev/null";
                let update = node.exec(&["apt-get", "-o", only, "update"]);
                let said = format!(
                    "{}{}",
                    String::from_utf8_lossy(&update.stdout),
                    String::from_utf8_lossy(&update.stderr)
                );
                assert!(
                    update.status.success() && !said.contains("W:") && !said.contains("E:"),
                    "apt-get update on etcd-{i} against {}:\n{said}",
                    server.base_url
                );
                node.exec_ok(&[
                    "env",
                    "DEBIAN_FRONTEND=noninteractive",
                    "apt-get",
                    "-o",
                    only,
                    "install",
                    "-y",
                    "--no-install-recommends",
                    &format!("etcd-test-etcd-{i}={}", self.version(release)),
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

    /// The version of release `release` of every node's package.
    pub fn version(&self, release: u32) -> String {
        format!("{}-{release}", self.etcd_version)
    }

    /// etcdctl inside node `i`, through a login shell: only the installed profile
    /// (/etc/profile.d/etcdctl.sh) tells it the endpoints, the CA and the node's certificate.
    pub fn etcdctl(&self, i: usize, args: &[&str]) -> Output {
        self.etcdctl_at(i, &[], args)
    }

    /// Like [`Cluster::etcdctl`], but talking to the given members only (1-based; all three
    /// when empty). etcdctl 3.4 refuses `--endpoints` next to the profile's ETCDCTL_ENDPOINTS
    /// ("conflicting environment variable"), so the variable itself is overridden.
    pub fn etcdctl_at(&self, i: usize, members: &[usize], args: &[&str]) -> Output {
        let endpoints: Vec<String> = members.iter().map(|&m| self.endpoint(m)).collect();
        let endpoints = endpoints.join(",");
        let script = r#"if [ -n "$1" ]; then export ETCDCTL_ENDPOINTS="$1"; fi
shift
exec etcdctl --command-timeout=5s "$@""#;
        let mut argv = vec!["bash", "-lc", script, "etcdctl", &endpoints];
        argv.extend_from_slice(args);
        self.node(i).exec(&argv)
    }

    pub fn etcdctl_ok(&self, i: usize, args: &[&str]) -> String {
        self.etcdctl_at_ok(i, &[], args)
    }

    pub fn etcdctl_at_ok(&self, i: usize, members: &[usize], args: &[&str]) -> String {
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
    pub fn healthy(&self, via: usize, members: &[usize]) -> Result<(), String> {
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
    pub fn wait_healthy(&self, via: usize, members: &[usize]) {
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
    pub fn wait_local_value(&self, i: usize, key: &str, value: &str) {
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

    pub fn unit_property(&self, i: usize, property: &str) -> String {
        self.node(i)
            .exec_ok(&["systemctl", "show", "-P", property, "etcd.service"])
            .trim()
            .to_string()
    }

    /// The main PID of etcd.service on node `i`, once it is active.
    pub fn wait_active(&self, i: usize) -> u32 {
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

    pub fn diagnose(&self) -> String {
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

    pub fn log(&self, what: &str) {
        eprintln!(
            "{}: {what} after {:.1} s",
            self.scratch.path.file_name().unwrap().to_string_lossy(),
            self.started.elapsed().as_secs_f64()
        );
    }

    /// The release node `i`'s package has in the manifest of the last run.
    pub fn release(&self, i: usize) -> u32 {
        let m: serde_json::Value =
            serde_json::from_slice(&fs::read(self.generated.out.join("manifest.json")).unwrap())
                .unwrap();
        m["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == format!("etcd-{i}").as_str())
            .and_then(|n| n["release"].as_u64())
            .unwrap_or_else(|| panic!("etcd-{i} has no release in the manifest")) as u32
    }

    /// Every write in `acked` (a [`Writer`]'s) is in the cluster, read on etcd-2.
    pub fn assert_written(&self, acked: &[u32]) {
        assert!(acked.len() > 10, "the writer wrote {} keys", acked.len());
        let written = self.etcdctl_ok(2, &["get", "--prefix", "/e2e/writer/", "--keys-only"]);
        for n in acked {
            assert!(
                written.lines().any(|l| l == format!("/e2e/writer/{n:06}")),
                "acknowledged write {n} lost"
            );
        }
    }

    /// Powers every node off and checks that nothing of them is left on the host.
    pub fn tear_down(mut self) {
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

/// The certificate the member at `ip` serves on its client port, as PEM, read on the wire with
/// `openssl s_client` (etcd asks for a client certificate: node etcd-1's is given); `None`
/// while the member does not answer.
pub fn served_pem(ip: &str, pki: &Path) -> Option<String> {
    let shake = Command::new("openssl")
        .args(["s_client", "-connect", &format!("{ip}:2379")])
        .arg("-cert")
        .arg(pki.join("nodes/etcd-1.pem"))
        .arg("-key")
        .arg(pki.join("nodes/etcd-1-key.pem"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shake.stdout);
    let begin = text.find("-----BEGIN CERTIFICATE-----")?;
    let end = text[begin..].find("-----END CERTIFICATE-----").unwrap() + begin + 25;
    Some(format!("{}\n", &text[begin..end]))
}

/// etcdctl on the host against `endpoints`, with node etcd-1's certificate, trusting what
/// clients trust (`pki/clients/ca-bundle.pem`: during a CA rotation, both CAs). The host's
/// etcdctl (3.4) speaks to members of any release line the scenarios run.
pub fn host_etcdctl(endpoints: &str, pki: &Path) -> Command {
    let mut c = Command::new("etcdctl");
    c.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .arg(format!(
            "--cacert={}",
            pki.join("clients/ca-bundle.pem").display()
        ))
        .arg(format!("--cert={}", pki.join("nodes/etcd-1.pem").display()))
        .arg(format!(
            "--key={}",
            pki.join("nodes/etcd-1-key.pem").display()
        ));
    c
}

/// Rounds of `round` on a thread of its own, over its state, until stopped.
pub struct Background<T> {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<T>,
}

impl<T: Send + 'static> Background<T> {
    pub fn start(mut state: T, mut round: impl FnMut(&mut T) + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                round(&mut state);
            }
            state
        });
        Background { stop, thread }
    }

    /// Stops after the round under way, and gives the state back.
    pub fn stop(self) -> T {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// What a [`Writer`] has written: the numbers etcd acknowledged, when the last one was, and
/// the longest time between two.
struct Written {
    n: u32,
    acked: Vec<u32>,
    last: Instant,
    longest: Duration,
}

/// Puts `/e2e/writer/<n>` one after another from the host through every endpoint, keeping
/// the numbers etcd acknowledged.
pub struct Writer(Background<Written>);

impl Writer {
    pub fn start(c: &Cluster, pki: &Path) -> Writer {
        let endpoints: Vec<String> = (1..=3).map(|i| c.endpoint(i)).collect();
        let endpoints = endpoints.join(",");
        let pki = pki.to_owned();
        let written = Written {
            n: 0,
            acked: Vec::new(),
            last: Instant::now(),
            longest: Duration::ZERO,
        };
        Writer(Background::start(written, move |w| {
            w.n += 1;
            let put = host_etcdctl(&endpoints, &pki)
                .args(["--command-timeout=3s", "put"])
                .arg(format!("/e2e/writer/{:06}", w.n))
                .arg(w.n.to_string())
                .output()
                .unwrap();
            if put.status.success() {
                w.acked.push(w.n);
                w.longest = w.longest.max(w.last.elapsed());
                w.last = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(50));
        }))
    }

    pub fn stop(self) -> Vec<u32> {
        self.stop_timed().0
    }

    /// The acknowledged writes, and the longest time between two of them.
    pub fn stop_timed(self) -> (Vec<u32>, Duration) {
        let w = self.0.stop();
        let longest = w.longest.max(w.last.elapsed());
        (w.acked, longest)
    }
}

/// Checks shared by both formats, right after the installs: the scripts enabled and started
/// etcd, the cluster forms, and the installed profile alone drives etcdctl.
pub fn assert_forms(c: &Cluster) {
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

/// Publish `generated`'s .deb packages (their keys sealed), signed, into `repo/` beside its output, and serve that
/// directory on 127.0.0.1 (the nodes share the host's loopback); the client file points there.
fn publish(generated: &Gen) -> HttpServer {
    let repo = generated.dir.path().join("repo");
    let key = ed25519_key(generated.dir.path());
    let server = HttpServer::serve_dir(&repo);
    run_ok(
        etcdpack()
            .arg("publish")
            .arg("--out")
            .arg(&generated.out)
            .arg("--repo")
            .arg(&repo)
            .arg("--sign-key")
            .arg(&key)
            .arg("--url")
            .arg(&server.base_url),
    );
    server
}

/// Gives `node` the SSH host key its package's key was sealed to, where an SSH server keeps
/// it: the base root has no SSH server, hence no host key of its own.
fn put_host_key(generated: &Gen, node: &Node) {
    let ssh = generated.host_root(&node.name).join("etc/ssh");
    for (file, mode) in [
        ("ssh_host_ed25519_key", 0o600),
        ("ssh_host_ed25519_key.pub", 0o644),
    ] {
        let bytes = fs::read(ssh.join(file)).unwrap();
        node.write_file(&format!("/etc/ssh/{file}"), &bytes, mode);
    }
}
