//! `etcd-maint restore` run where its values could be read as globs.

use super::*;

/// An IPv6 peer URL (`https://[fd00::1]:2380`) is a shell glob when it
/// stands unquoted: run from a directory that holds a path it matches, the
/// restore handed etcdctl that path instead. Every value is passed quoted.
#[test]
fn restore_passes_an_ipv6_peer_url_as_it_is_wherever_it_runs() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["fd00::1"], "");
    g.run_ok(&[]);
    let work = tempfile::tempdir().unwrap();
    let root = node_root(&g, work.path(), "etcd-1");
    // etcdctl of the node: no member answers, and a restore records its
    // arguments, one a line.
    let args = work.path().join("args");
    let stub = format!(
        "#!/bin/sh\ncase \"$1\" in\n  endpoint) exit 1 ;;\n  snapshot) for a in \"$@\"; do printf '%s\\n' \"$a\"; done > '{}'; exit 0 ;;\nesac\nexit 0\n",
        args.display()
    );
    let ctl = root.join("opt/etcd/bin/etcdctl");
    fs::write(&ctl, stub).unwrap();
    fs::set_permissions(&ctl, fs::Permissions::from_mode(0o755)).unwrap();
    let snapshot = work.path().join("snapshot.db");
    fs::write(&snapshot, "not read by the stub").unwrap();
    // What the glob [fd00::1] matches, as the restore's working directory.
    let cwd = work.path().join("cwd");
    fs::create_dir_all(cwd.join("https:")).unwrap();
    fs::write(cwd.join("https:/0:2380"), "").unwrap();
    let out = Command::new(root.join("opt/etcd/bin/etcd-maint"))
        .args(["restore", snapshot.to_str().unwrap()])
        .env("ETCD_MAINT_ROOT", &root)
        .current_dir(&cwd)
        .output()
        .unwrap();
    let said = fs::read_to_string(&args).unwrap_or_else(|_| both(&out));
    assert!(
        said.contains("--initial-advertise-peer-urls\nhttps://[fd00::1]:2380\n"),
        "{said}"
    );
    assert!(
        said.contains("--initial-cluster\netcd-1=https://[fd00::1]:2380\n"),
        "{said}"
    );
}
