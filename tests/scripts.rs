//! The shell scripts a node runs as root — the bundle's `install.sh` and the
//! .deb's postinst and the .rpm's %post — against hostile file systems: a
//! symbolic link where a directory is expected must never lead them to chown
//! or write outside their target. Each case checks that the script fails with
//! a message that says what to fix, and that the link's target is untouched.
//!
//! The maintainer scripts run directly under `sh` with every path of the
//! cluster inside a temporary directory, `service.user: root` (so that no
//! user is created on the machine running the tests) and a `systemctl` that
//! does nothing.

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use etcdpack::config::{self, Cluster, Overrides};
use etcdpack::extract::Binaries;
use etcdpack::model::Blob;
use etcdpack::package;
use etcdpack::render::{self, Templates};
use etcdpack::stage::{self, NodeCerts};
use support::{Gen, run_ok};

/// Every path below `dir` with its type, mode, owner and size: what must not
/// change in a directory a script must not touch.
fn listing(dir: &Path) -> String {
    run_ok(
        Command::new("find")
            .arg(dir)
            .args(["-printf", "%P %y %m %U:%G %s\n"]),
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

// ------------------------------------------------------------- install.sh

/// A bundle of node etcd-1, unpacked, and an empty root with the files
/// useradd needs.
struct Bundle {
    work: tempfile::TempDir,
    installer: PathBuf,
    root: PathBuf,
}

impl Bundle {
    fn new(g: &Gen) -> Bundle {
        let work = tempfile::tempdir().unwrap();
        run_ok(
            Command::new("tar")
                .arg("-xzf")
                .arg(g.out.join("dist/etcd-test-etcd-1_3.4.16-1_amd64.tar.gz"))
                .arg("-C")
                .arg(work.path()),
        );
        let installer = work
            .path()
            .join("etcd-test-etcd-1_3.4.16-1_amd64/install.sh");
        let root = work.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
        fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
        fs::write(root.join("etc/gshadow"), "root:*::\n").unwrap();
        Bundle {
            work,
            installer,
            root,
        }
    }

    fn install(&self) -> Output {
        Command::new(&self.installer)
            .arg("--root")
            .arg(&self.root)
            .output()
            .unwrap()
    }

    /// A directory outside the root, standing in for one of the host's,
    /// with a file in it and a mode and owner to keep.
    fn host_dir(&self, name: &str) -> PathBuf {
        let d = self.work.path().join("host").join(name);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("keep"), "host file\n").unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        d
    }
}

fn one_node() -> Gen {
    let g = Gen::new(&["127.0.0.1"], "");
    g.run_ok(&[]);
    g
}

#[test]
fn install_sh_refuses_symlinks_out_of_the_root() {
    support::require!(support::ROOT, support::STANDIN);
    let g = one_node();
    for link in ["etc/profile.d", "var/lib/etcd/default.etcd", "opt"] {
        let b = Bundle::new(&g);
        let host = b.host_dir("target");
        let before = listing(&host);
        let at = b.root.join(link);
        fs::create_dir_all(at.parent().unwrap()).unwrap();
        symlink(&host, &at).unwrap();

        let out = b.install();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{link}: {err}");
        assert!(
            err.contains(&format!("{} is a symbolic link", at.display()))
                && err.contains("refusing"),
            "{link}: {err}"
        );
        assert_eq!(
            listing(&host),
            before,
            "{link}: the link's target is untouched"
        );
        // Refused before anything was placed.
        assert!(!b.root.join("usr").exists(), "{link}: nothing installed");
        let passwd = fs::read_to_string(b.root.join("etc/passwd")).unwrap();
        assert!(!passwd.contains("etcd:"), "{link}: no user created");
    }
}

#[test]
fn install_sh_refuses_a_data_dir_whose_parent_is_not_roots() {
    support::require!(support::ROOT, support::STANDIN);
    let g = one_node();
    let b = Bundle::new(&g);
    let parent = b.root.join("var/lib/etcd");
    fs::create_dir_all(&parent).unwrap();
    std::os::unix::fs::chown(&parent, Some(65534), Some(65534)).unwrap();
    let out = b.install();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("{} is owned by uid 65534", parent.display())),
        "{err}"
    );
    assert!(!parent.join("default.etcd").exists());

    // Given to root, the same root installs, with a real data directory.
    std::os::unix::fs::chown(&parent, Some(0), Some(0)).unwrap();
    let out = b.install();
    assert!(out.status.success(), "{}", stderr(&out));
    let data = fs::symlink_metadata(parent.join("default.etcd")).unwrap();
    assert!(data.is_dir() && data.mode() & 0o777 == 0o700);
}

// ------------------------------------------------------ maintainer scripts

/// A one-node cluster whose every path is under `dir`.
fn cluster_in(dir: &Path) -> Cluster {
    let d = dir.display();
    let yaml = format!(
        "version: 1
cluster: {{ name: test, token: test-token }}
nodes:
  - {{ name: etcd-1, ip: 127.0.0.1 }}
pki: {{ algorithm: ecdsa-p256 }}
paths: {{ install_dir: {d}/opt/etcd, data_dir: {d}/var/lib/etcd/default.etcd }}
service: {{ user: root }}
"
    );
    config::parse(Path::new("cluster.yaml"), &yaml, &Overrides::default()).unwrap()
}

/// `script` (a template name) rendered for `cluster`'s node, written to
/// `dir` and run with `args`, with a `systemctl` that does nothing. The
/// files the script hands to the service user are put in place first.
fn run_script(dir: &Path, cluster: &Cluster, script: &str, args: &[&str]) -> Output {
    let node = &cluster.nodes[0];
    let templates = Templates::new(None, &package::templates()).unwrap();
    let rendered = render::render_node(&templates, cluster, node).unwrap();
    let bins = Binaries {
        etcd: Blob::from(&b"etcd"[..]),
        etcdctl: Blob::from(&b"etcdctl"[..]),
        etcdutl: None,
    };
    let certs = NodeCerts {
        ca_cert_pem: "ca\n",
        cert_pem: "cert\n",
        key_pem: "key\n",
        sealed_key: None,
    };
    let tree = stage::assemble(cluster, node, &bins, certs, &rendered, "#!/bin/sh\n").unwrap();
    for e in tree.files() {
        let p = Path::new(&e.path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, e.data()).unwrap();
    }
    let text = render::render_script(
        &templates,
        script,
        cluster,
        node,
        &tree.script_entries(),
        "3.4.16-1",
    )
    .unwrap();
    let file = dir.join(script.replace('/', "-"));
    fs::write(&file, text).unwrap();
    let bin = dir.join("stub-bin");
    fs::create_dir_all(&bin).unwrap();
    fs::write(bin.join("systemctl"), "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(bin.join("systemctl"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    Command::new("sh")
        .arg(&file)
        .args(args)
        .env("PATH", path)
        .output()
        .unwrap()
}

const SCRIPTS: &[(&str, &[&str])] = &[("deb/postinst", &["configure", ""]), ("rpm/post", &["1"])];

#[test]
fn package_scripts_refuse_a_symlinked_data_dir() {
    for (script, args) in SCRIPTS {
        let dir = tempfile::tempdir().unwrap();
        let c = cluster_in(dir.path());
        let host = dir.path().join("host");
        fs::create_dir_all(&host).unwrap();
        fs::write(host.join("keep"), "host file\n").unwrap();
        let before = listing(&host);
        let data = PathBuf::from(&c.paths.data_dir);
        fs::create_dir_all(data.parent().unwrap()).unwrap();
        symlink(&host, &data).unwrap();

        let out = run_script(dir.path(), &c, script, args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{script}: {err}");
        assert!(
            err.contains(&format!("{} is a symbolic link", data.display()))
                && err.contains("refusing"),
            "{script}: {err}"
        );
        assert_eq!(
            listing(&host),
            before,
            "{script}: the link's target is untouched"
        );
        assert_eq!(fs::metadata(&host).unwrap().mode() & 0o777, 0o755);
    }
}

#[test]
fn package_scripts_refuse_a_data_dir_whose_parent_is_not_roots() {
    support::require!(support::ROOT);
    for (script, args) in SCRIPTS {
        let dir = tempfile::tempdir().unwrap();
        let c = cluster_in(dir.path());
        let data = PathBuf::from(&c.paths.data_dir);
        let parent = data.parent().unwrap();
        fs::create_dir_all(parent).unwrap();
        std::os::unix::fs::chown(parent, Some(65534), Some(65534)).unwrap();
        let out = run_script(dir.path(), &c, script, args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{script}: {err}");
        assert!(
            err.contains(&format!("{} is owned by uid 65534", parent.display())),
            "{script}: {err}"
        );
        assert!(!data.exists(), "{script}");

        // Given to root, the script creates the data directory.
        std::os::unix::fs::chown(parent, Some(0), Some(0)).unwrap();
        let out = run_script(dir.path(), &c, script, args);
        assert!(out.status.success(), "{script}: {}", stderr(&out));
        let m = fs::symlink_metadata(&data).unwrap();
        assert!(m.is_dir() && m.mode() & 0o777 == 0o700, "{script}");
    }
}
