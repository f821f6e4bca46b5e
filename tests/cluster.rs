//! End to end without systemd: three members from three generated bundles,
//! each started with exactly the environment systemd would give it from its
//! etcd.conf, form a TLS cluster on 127.0.0.1-3.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::Gen;

/// A running member; killed when dropped, also when a test fails.
struct Member {
    child: Child,
    log: PathBuf,
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Make `root` able to run the release's binaries under chroot (Debian's
/// builds link libc dynamically; the official ones are static).
fn add_runtime_libs(root: &Path, binary: &Path) {
    let ldd = Command::new("ldd").arg(binary).output().unwrap();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let lib = line.split_whitespace().find(|w| w.starts_with('/'));
        if let Some(lib) = lib {
            let dest = root.join(lib.trim_start_matches('/'));
            fs::create_dir_all(dest.parent().unwrap()).unwrap();
            fs::copy(lib, &dest).unwrap();
        }
    }
}

fn start(root: &Path, log: PathBuf) -> Member {
    let conf = fs::read_to_string(root.join("opt/etcd/cfg/etcd.conf")).unwrap();
    let env = etcdpack::envfile::parse(&conf).unwrap();
    let out = fs::File::create(&log).unwrap();
    let child = Command::new("/usr/sbin/chroot")
        .arg(root)
        .arg("/opt/etcd/bin/etcd")
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    Member { child, log }
}

fn etcdctl(pki: &Path, endpoints: &str, args: &[&str]) -> std::process::Output {
    Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .arg(format!("--cacert={}", pki.join("ca.pem").display()))
        .arg(format!(
            "--cert={}",
            pki.join("clients/etcdctl.pem").display()
        ))
        .arg(format!(
            "--key={}",
            pki.join("clients/etcdctl-key.pem").display()
        ))
        .arg("--command-timeout=5s")
        .args(args)
        .output()
        .unwrap()
}

fn logs(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| {
            format!(
                "--- {}\n{}",
                m.log.display(),
                fs::read_to_string(&m.log).unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn three_bundles_form_a_tls_cluster() {
    support::require!(
        support::ROOT,
        support::CHROOT,
        support::CURL,
        support::STANDIN
    );
    let g = Gen::new(&["127.0.0.1", "127.0.0.2", "127.0.0.3"], "");
    g.run_ok(&[]);
    let work = tempfile::tempdir().unwrap();
    let mut members = Vec::new();
    for i in 1..=3 {
        let root = g.unpack_bundle(i, work.path()).join("root");
        add_runtime_libs(&root, &root.join("opt/etcd/bin/etcd"));
        fs::create_dir_all(root.join("var/lib/etcd")).unwrap();
        members.push(start(&root, work.path().join(format!("etcd-{i}.log"))));
    }
    let pki = g.out.join("pki");
    let all = "https://127.0.0.1:2379,https://127.0.0.2:2379,https://127.0.0.3:2379";

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = etcdctl(&pki, all, &["endpoint", "health"]);
        if h.status.success() {
            let text = String::from_utf8_lossy(&h.stdout).into_owned()
                + &String::from_utf8_lossy(&h.stderr);
            assert_eq!(text.matches("is healthy").count(), 3, "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cluster did not become healthy:\n{}\n{}",
            String::from_utf8_lossy(&h.stderr),
            logs(&members)
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let list = etcdctl(&pki, all, &["member", "list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    for i in 1..=3 {
        assert!(
            text.contains(&format!(
                "etcd-{i}, https://127.0.0.{i}:2380, https://127.0.0.{i}:2379"
            )),
            "{text}"
        );
    }

    let put = etcdctl(
        &pki,
        "https://127.0.0.1:2379",
        &["put", "/recipe/works", "yes"],
    );
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let get = etcdctl(
        &pki,
        "https://127.0.0.3:2379",
        &["get", "/recipe/works", "--print-value-only"],
    );
    assert_eq!(
        String::from_utf8_lossy(&get.stdout).trim(),
        "yes",
        "{}",
        String::from_utf8_lossy(&get.stderr)
    );

    // The peer port admits node certificates only. A node's certificate gets
    // the member list there (the control); every client certificate, signed
    // by the same CA, is refused by the TLS handshake.
    let peer = |cert: &str, key: &str| {
        Command::new("curl")
            .args(["--silent", "--show-error", "--http1.1", "--max-time", "10"])
            .arg("--cacert")
            .arg(pki.join("ca.pem"))
            .arg("--cert")
            .arg(pki.join(cert))
            .arg("--key")
            .arg(pki.join(key))
            .arg("https://127.0.0.2:2380/members")
            .output()
            .expect("curl is installed")
    };
    let node = peer("nodes/etcd-1.pem", "nodes/etcd-1-key.pem");
    let members_json = String::from_utf8_lossy(&node.stdout);
    assert!(
        node.status.success() && members_json.contains("https://127.0.0.3:2380"),
        "a node certificate was refused on the peer port: {members_json}{}",
        String::from_utf8_lossy(&node.stderr)
    );
    for client in ["etcdctl", "kube-apiserver", "flannel"] {
        let out = peer(
            &format!("clients/{client}.pem"),
            &format!("clients/{client}-key.pem"),
        );
        assert!(
            !out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("2380"),
            "client certificate {client} was served by the peer port: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    // No client certificate: refused by the TLS handshake.
    let anon = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg("--endpoints=https://127.0.0.2:2379")
        .arg(format!("--cacert={}", pki.join("ca.pem").display()))
        .args(["--command-timeout=3s", "get", "/recipe/works"])
        .output()
        .unwrap();
    assert!(
        !anon.status.success(),
        "a client without a certificate was served: {}",
        String::from_utf8_lossy(&anon.stdout)
    );
    assert!(!String::from_utf8_lossy(&anon.stdout).contains("yes"));

    // The plaintext listener of the recipe is not there.
    assert!(
        std::net::TcpStream::connect("127.0.0.1:2379").is_ok(),
        "TLS port is up"
    );
    for m in &members {
        let log = fs::read_to_string(&m.log).unwrap();
        assert!(
            !log.contains("http://127.0.0.1:2379"),
            "plaintext listener in {}",
            m.log.display()
        );
        assert!(
            !log.contains("shadowed by"),
            "a setting given twice in {}",
            m.log.display()
        );
    }
}
