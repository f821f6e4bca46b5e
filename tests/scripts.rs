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
use etcdpack::render::ScriptEntry;
use etcdpack::render::{self, Templates};
use etcdpack::stage::{self, NodeCerts};
use support::{Gen, run_ok, stderr};

/// Every path below `dir` with its type, mode, owner and size: what must not
/// change in a directory a script must not touch.
fn listing(dir: &Path) -> String {
    run_ok(
        Command::new("find")
            .arg(dir)
            .args(["-printf", "%P %y %m %U:%G %s\n"]),
    )
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
        let installer = g.unpack_bundle(1, work.path()).join("install.sh");
        let root = work.path().join("root");
        support::bare_root(&root);
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
    cluster_of(dir, "")
}

/// [`cluster_in`] with `extra` appended to its config.
fn cluster_of(dir: &Path, extra: &str) -> Cluster {
    let d = dir.display();
    let yaml = format!(
        "version: 1
cluster: {{ name: test, token: test-token }}
nodes:
  - {{ name: etcd-1, ip: 127.0.0.1 }}
pki: {{ algorithm: ecdsa-p256 }}
paths: {{ install_dir: {d}/opt/etcd, data_dir: {d}/var/lib/etcd/default.etcd }}
service: {{ user: root }}
{extra}"
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
    run_rendered(dir, cluster, script, args, &tree.script_entries())
}

/// `script` rendered for `cluster`'s node (the files of its package being
/// `entries`) and run with `args` as [`run_script`] does, on the files
/// already in place.
fn run_rendered(
    dir: &Path,
    cluster: &Cluster,
    script: &str,
    args: &[&str],
    entries: &[ScriptEntry],
) -> Output {
    let node = &cluster.nodes[0];
    let templates = Templates::new(None, &package::templates()).unwrap();
    let version = format!("{}-1", cluster.etcd.version);
    let text = render::render_script(&templates, script, cluster, node, entries, &version).unwrap();
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

// ------------------------------------------------- the upgrade to 3.6

/// A real etcd of [`support::ETCD_3_5_LATE_DIR`] on 127.0.8.1, on `data`
/// (plain HTTP, a snapshot every 5 entries), stopped when dropped.
struct Member35(std::process::Child);

impl Member35 {
    fn start(data: &Path, v2: bool) -> Member35 {
        let mut cmd = Command::new(format!("{}/etcd", support::ETCD_3_5_LATE_DIR));
        cmd.arg("--data-dir")
            .arg(data)
            .args(["--name", "etcd-1", "--snapshot-count", "5"])
            .args(["--listen-client-urls", "http://127.0.8.1:2379"])
            .args(["--advertise-client-urls", "http://127.0.8.1:2379"])
            .args(["--listen-peer-urls", "http://127.0.8.1:2380"])
            .args(["--initial-advertise-peer-urls", "http://127.0.8.1:2380"])
            .args(["--initial-cluster", "etcd-1=http://127.0.8.1:2380"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if v2 {
            cmd.arg("--enable-v2");
        }
        let m = Member35(cmd.spawn().unwrap());
        let up = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            Member35::ctl(&["endpoint", "health"]).status.success()
        });
        assert!(up, "etcd 3.5 on 127.0.8.1 did not become healthy");
        m
    }

    fn ctl(args: &[&str]) -> Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", "http://127.0.8.1:2379"])
            .args(args)
            .output()
            .unwrap()
    }

    /// Enough v3 writes for a v2 snapshot, which `etcdutl check v2store` reads.
    fn write_v3(&self) {
        for i in 0..12 {
            let out = Member35::ctl(&["put", &format!("/v3/{i}"), "v"]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
    }
}

impl Drop for Member35 {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The scripts that run before a 3.6 package's files are unpacked over an
/// installed member, with the arguments of an upgrade.
const BEFORE_UNPACK: &[(&str, &[&str])] = &[
    ("deb/preinst", &["upgrade", "3.5.30-1"]),
    ("rpm/pre", &["2"]),
];

/// The member the scripts find installed: `etcd` (and etcdutl) of `dir`.
fn install_old(c: &Cluster, etcd_dir: &str) {
    let bin = Path::new(&c.paths.install_dir).join("bin");
    fs::create_dir_all(&bin).unwrap();
    for b in ["etcd", "etcdutl"] {
        let from = Path::new(etcd_dir).join(b);
        if from.exists() {
            fs::copy(&from, bin.join(b)).unwrap();
        } else {
            let _ = fs::remove_file(bin.join(b));
        }
    }
    fs::copy("/usr/bin/etcdctl", bin.join("etcdctl")).unwrap();
}

#[test]
fn a_3_6_package_replaces_only_a_member_on_a_late_3_5_with_a_clean_v2_store() {
    support::require!(support::ETCD_3_5_LATE, support::STANDIN_3_5, support::CURL);
    let dir = tempfile::tempdir().unwrap();
    let c = cluster_of(dir.path(), "etcd: { version: 3.6.14 }\n");
    let data = PathBuf::from(&c.paths.data_dir);
    let refused = |what: &str| {
        for (script, args) in BEFORE_UNPACK {
            let out = run_rendered(dir.path(), &c, script, args, &[]);
            let err = stderr(&out);
            assert!(!out.status.success(), "{script} passed ({what}): {err}");
            assert!(err.contains(what), "{script}: {err}");
        }
    };
    let passed = || {
        for (script, args) in BEFORE_UNPACK {
            let out = run_rendered(dir.path(), &c, script, args, &[]);
            assert!(out.status.success(), "{script}: {}", stderr(&out));
        }
    };

    // A first install, and an install over a data directory never used: nothing to check.
    passed();

    // A member written by 3.5.26 or later through the v3 API only: checked, and it passes.
    install_old(&c, support::ETCD_3_5_LATE_DIR);
    let m = Member35::start(&data, false);
    m.write_v3();
    assert!(
        data.join("member/snap")
            .read_dir()
            .unwrap()
            .next()
            .is_some()
    );
    passed();
    // Not the warning of a failed check: the one that the other members did not answer.
    let out = run_rendered(dir.path(), &c, "deb/preinst", &["upgrade", "3.5.30-1"], &[]);
    assert!(
        stderr(&out).contains("could not ask every member its etcd version"),
        "{}",
        stderr(&out)
    );
    drop(m);

    // The same member with a key written through the v2 API (flannel's way): refused while
    // it runs.
    let m = Member35::start(&data, true);
    let put = run_ok(Command::new("curl").args([
        "-sf",
        "-XPUT",
        "http://127.0.8.1:2379/v2/keys/coreos.com/network/config",
        "-d",
        "value={}",
    ]));
    assert!(put.contains("\"action\":\"set\""), "{put}");
    m.write_v3();
    refused("holds v2 store content");
    refused("check v2store --data-dir");
    drop(m);

    // A member on a 3.5 release before 3.5.26 (trixie's), and one on 3.4: refused by their
    // version, whatever their data.
    install_old(&c, support::ETCD_3_5_DIR);
    refused("needs every member on 3.5.26 or later first");
    install_old(&c, "/usr/bin");
    refused("runs etcd 3.4.");

    // The member's data without its etcd (the package removed first, or
    // another one): refused, not waved through unchecked.
    for b in ["etcd", "etcdutl"] {
        let _ = fs::remove_file(Path::new(&c.paths.install_dir).join("bin").join(b));
    }
    refused("but there is no etcd at");

    // install.sh --root never runs a program of that root: with a member's
    // data there it refuses (or, with --force, says it did not check), and
    // the root's etcd is never executed.
    let other = tempfile::tempdir().unwrap();
    let r = other.path();
    let inner = |p: &str| r.join(p.trim_start_matches('/'));
    fs::create_dir_all(inner(&c.paths.data_dir).join("member")).unwrap();
    let bin = inner(&c.paths.install_dir).join("bin");
    fs::create_dir_all(&bin).unwrap();
    let marker = r.join("ran");
    for b in ["etcd", "etcdutl", "etcdctl"] {
        fs::write(
            bin.join(b),
            format!(
                "#!/bin/sh
touch '{}'
echo 'etcd Version: 3.5.30'
",
                marker.display()
            ),
        )
        .unwrap();
        fs::set_permissions(bin.join(b), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let root = r.to_str().unwrap();
    let out = run_rendered(
        dir.path(),
        &c,
        "install.sh",
        &["--root", root, "--no-start"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("install.sh --root runs no program of"),
        "{}",
        stderr(&out)
    );
    let forced = run_rendered(
        dir.path(),
        &c,
        "install.sh",
        &["--root", root, "--no-start", "--force"],
        &[],
    );
    assert!(
        stderr(&forced).contains("was not checked for etcd 3.6.14"),
        "{}",
        stderr(&forced)
    );
    assert!(!marker.exists(), "a program of the root was run");

    // Scripts of a 3.5 package have no such check.
    let c35 = cluster_of(dir.path(), "etcd: { version: 3.5.33 }\n");
    for (script, args) in BEFORE_UNPACK {
        let out = run_rendered(dir.path(), &c35, script, args, &[]);
        assert!(out.status.success(), "{script}: {}", stderr(&out));
    }
}

#[path = "scripts/membership.rs"]
mod membership;
#[path = "scripts/rendered.rs"]
mod rendered;
#[path = "scripts/upgrade_cluster.rs"]
mod upgrade_cluster;
