//! A real etcd member started from a copy of a node's tree as `gen` wrote
//! it, with exactly the environment its `etcd.conf` gives (every absolute
//! path in it taken under the copy), and etcdctl with that node's own
//! certificate.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Gen, both, run_ok};

/// A running member, killed when dropped (also when a test fails).
pub struct Member {
    pub child: Child,
    log: PathBuf,
}

impl Member {
    /// etcd of the node tree copied at `root`, with its etcd.conf's
    /// environment, every absolute path in it taken under `root`.
    pub fn start(root: &Path) -> Member {
        Member::start_with(root, &[], |_| {})
    }

    /// [`Member::start`] with `args` on etcd's command line and its
    /// environment changed by `edit` first.
    pub fn start_with(
        root: &Path,
        args: &[&str],
        edit: impl FnOnce(&mut Vec<(String, String)>),
    ) -> Member {
        let conf = fs::read_to_string(root.join("opt/etcd/cfg/etcd.conf")).unwrap();
        let mut env: Vec<(String, String)> = etcdpack::envfile::parse(&conf)
            .unwrap()
            .into_iter()
            .map(|(k, v)| {
                let v = match v.strip_prefix('/') {
                    Some(rest) => root.join(rest).display().to_string(),
                    None => v,
                };
                (k, v)
            })
            .collect();
        edit(&mut env);
        let log = root.with_extension("log");
        let out = fs::File::create(&log).unwrap();
        let child = Command::new(root.join("opt/etcd/bin/etcd"))
            .args(args)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Member { child, log }
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What etcd wrote so far (stdout and stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The copy of node `node`'s tree that a member runs from: `work/<node>`.
pub fn node_root(g: &Gen, work: &Path, node: &str) -> PathBuf {
    let root = work.join(node);
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(g.out.join("nodes").join(node))
            .arg(&root),
    );
    root
}

/// etcdctl with node `root`'s own certificate (server and client auth),
/// talking to `endpoints`.
pub fn etcdctl(root: &Path, endpoints: &str) -> Command {
    let ssl = root.join("opt/etcd/ssl");
    let mut c = Command::new("etcdctl");
    c.env("ETCDCTL_API", "3")
        .env("ETCDCTL_ENDPOINTS", endpoints)
        .env("ETCDCTL_CACERT", ssl.join("ca.pem"))
        .env("ETCDCTL_CERT", ssl.join("server.pem"))
        .env("ETCDCTL_KEY", ssl.join("server-key.pem"))
        .env("ETCDCTL_COMMAND_TIMEOUT", "10s");
    c
}

/// Waits until `endpoints` answer `endpoint health`; panics after 60 s
/// with etcdctl's answer and the members' logs.
pub fn wait_healthy(root: &Path, endpoints: &str, members: &[&Member]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = etcdctl(root, endpoints)
            .args(["endpoint", "health"])
            .output()
            .unwrap();
        if out.status.success() {
            return;
        }
        if Instant::now() > deadline {
            let logs: String = members.iter().map(|m| m.log()).collect();
            panic!("{endpoints} not healthy:\n{}\n{logs}", both(&out));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Three members of `g`'s output (nodes etcd-1..3 on `ips`), each started
/// from its own copy of its node's tree under `work`, healthy.
pub struct Three {
    pub roots: Vec<PathBuf>,
    /// Each member's client URL.
    pub eps: Vec<String>,
    /// All three, comma-separated.
    pub all: String,
    pub members: Vec<Member>,
}

impl Three {
    pub fn start(g: &Gen, work: &Path, ips: &[&str; 3]) -> Three {
        let roots: Vec<PathBuf> = (1..=3)
            .map(|i| node_root(g, work, &format!("etcd-{i}")))
            .collect();
        let eps: Vec<String> = ips.iter().map(|ip| format!("https://{ip}:2379")).collect();
        let all = eps.join(",");
        let members: Vec<Member> = roots.iter().map(|r| Member::start(r)).collect();
        wait_healthy(&roots[0], &all, &members.iter().collect::<Vec<_>>());
        Three {
            roots,
            eps,
            all,
            members,
        }
    }
}
