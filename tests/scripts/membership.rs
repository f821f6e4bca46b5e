//! The membership steps `plan` and `gen` print, run for real against etcd.

use super::*;

/// The printed membership steps, run twice each against a real etcd 3.4
/// member: a learner added but not started (which has no name yet) is
/// found by its peer URL, so adding again stops at once instead of looping,
/// and removing removes it.
#[test]
fn the_join_and_remove_steps_run_again_do_nothing_even_for_an_unstarted_learner() {
    support::require!(support::STANDIN);
    let dir = tempfile::tempdir().unwrap();
    let mut etcd = Command::new("etcd")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--name", "etcd-1"])
        .args(["--listen-client-urls", "http://127.0.8.3:2379"])
        .args(["--advertise-client-urls", "http://127.0.8.3:2379"])
        .args(["--listen-peer-urls", "http://127.0.8.3:2380"])
        .args(["--initial-advertise-peer-urls", "http://127.0.8.3:2380"])
        .args(["--initial-cluster", "etcd-1=http://127.0.8.3:2380"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let sh = |command: &str| {
        Command::new("timeout")
            .args(["60", "sh", "-c", command])
            .env("ETCDCTL_API", "3")
            .env("ETCDCTL_ENDPOINTS", "http://127.0.8.3:2379")
            .output()
            .unwrap()
    };
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        sh("etcdctl endpoint health").status.success()
    });
    assert!(up, "etcd on 127.0.8.3 did not become healthy");
    let list = || String::from_utf8(sh("etcdctl member list").stdout).unwrap();
    let peer = "http://127.0.8.4:2380";
    let add = etcdpack::membership::add_command("etcd-2", peer);
    for round in 0..2 {
        let out = sh(&add);
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
    }
    let learners: Vec<String> = list()
        .lines()
        .filter(|l| l.contains(peer))
        .map(str::to_owned)
        .collect();
    assert_eq!(learners.len(), 1, "{learners:?}");
    assert!(
        learners[0].contains("unstarted, , ") && learners[0].ends_with("true"),
        "{learners:?}"
    );
    // The joining node's user, made twice: root, once.
    let user = etcdpack::membership::user_command("etcd-2");
    for round in 0..2 {
        let out = sh(&user);
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
    }
    let got = String::from_utf8(sh("etcdctl user get etcd-2").stdout).unwrap();
    assert_eq!(got, "User: etcd-2\nRoles: root\n");
    let remove = etcdpack::membership::remove_command(peer);
    for round in 0..2 {
        let out = sh(&remove);
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
    }
    assert!(!list().contains(peer), "{}", list());
    let _ = etcd.kill();
    let _ = etcd.wait();
}
