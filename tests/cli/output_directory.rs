//! The output directory's rules: every directory 0700 and every package 0600 whatever the
//! umask, and `gen` removes only what an earlier run recorded (a stranger's directory is
//! refused unless `--force`, which still removes nothing).

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::support::{self, Gen, mode_of};

/// Every directory of the output is 0700 and every package (each holds a
/// node key) 0600, whatever the umask; an existing directory is made private.
#[test]
fn the_output_is_private_whatever_the_umask() {
    support::require!(support::STANDIN);
    let g = Gen::new(
        &["10.0.0.1", "10.0.0.2"],
        "packages: { formats: [tar, deb, rpm] }\n",
    );
    fs::create_dir(&g.out).unwrap();
    fs::set_permissions(&g.out, fs::Permissions::from_mode(0o755)).unwrap();
    let out = g.run_with_umask("000", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o = &g.out;
    for d in [
        "",
        "pki",
        "pki/nodes",
        "pki/clients",
        "nodes",
        "nodes/etcd-1",
        "nodes/etcd-2",
        "dist",
    ] {
        assert_eq!(mode_of(&o.join(d)), 0o700, "{d}/");
    }
    let packages: Vec<_> = fs::read_dir(o.join("dist"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(packages.len(), 6, "{packages:?}");
    for p in &packages {
        assert_eq!(mode_of(p), 0o600, "{}", p.display());
    }
    assert_eq!(mode_of(&o.join("pki/ca-key.pem")), 0o600);
    assert_eq!(mode_of(&o.join("pki/nodes/etcd-1-key.pem")), 0o600);
    // A rerun under the same umask keeps it so.
    let again = g.run_with_umask("000", &[]);
    assert!(again.status.success());
    for p in &packages {
        assert_eq!(mode_of(p), 0o600, "{}", p.display());
    }
}

/// `gen` removes only what an earlier run recorded in its manifest: a file of
/// the user's in `dist/` or `nodes/` survives, and a directory that is not
/// etcdpack's is refused unless `--force`, which still removes nothing.
#[test]
fn gen_removes_only_what_it_wrote() {
    support::require!(support::STANDIN);
    // A directory of the user's: refused, untouched.
    let g = Gen::new(&["10.0.0.1"], "");
    fs::create_dir_all(g.out.join("dist")).unwrap();
    fs::create_dir_all(g.out.join("nodes/notes")).unwrap();
    fs::write(g.out.join("dist/keep.txt"), "mine").unwrap();
    fs::write(g.out.join("nodes/notes/todo"), "mine").unwrap();
    fs::write(g.out.join("README"), "mine").unwrap();
    let out = g.run(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&g.out.display().to_string())
            && err.contains("holds no manifest.json")
            && err.contains("--force"),
        "{err}"
    );
    assert!(!g.out.join("pki").exists() && !g.out.join(".etcdpack.lock").exists());

    // --force writes beside them and removes none of them.
    g.run_ok(&["--force"]);
    for f in ["dist/keep.txt", "nodes/notes/todo", "README"] {
        assert_eq!(fs::read_to_string(g.out.join(f)).unwrap(), "mine", "{f}");
    }

    // A superseded artifact and a removed node's tree go; the user's stay.
    let two = Gen::new(&["10.0.0.1", "10.0.0.2"], "");
    two.run_ok(&[]);
    fs::write(two.out.join("dist/keep.txt"), "mine").unwrap();
    fs::create_dir_all(two.out.join("nodes/notes")).unwrap();
    let old = two.out.join("dist/etcd-test-etcd-2_3.4.16-1_amd64.tar.gz");
    assert!(old.is_file());
    let yaml = fs::read_to_string(&two.config).unwrap();
    fs::write(
        &two.config,
        yaml.replace("  - { name: etcd-2, ip: \"10.0.0.2\" }\n", ""),
    )
    .unwrap();
    two.run_ok(&[]);
    assert!(!old.exists());
    assert!(!two.out.join("nodes/etcd-2").exists());
    assert_eq!(
        fs::read_to_string(two.out.join("dist/keep.txt")).unwrap(),
        "mine"
    );
    assert!(two.out.join("nodes/notes").is_dir());

    // A manifest edited to aim elsewhere removes nothing outside its own names.
    let outside = two.dir.path().join("precious");
    fs::write(&outside, "mine").unwrap();
    let manifest = two.out.join("manifest.json");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        text.replace("\"tree\": \"nodes/etcd-1\"", "\"tree\": \"../precious\""),
    )
    .unwrap();
    two.run_ok(&[]);
    assert_eq!(fs::read_to_string(&outside).unwrap(), "mine");
}
