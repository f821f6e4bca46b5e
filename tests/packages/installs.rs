//! Real installs into private copies of a Debian root with systemd: dpkg and rpm install each
//! member's package (files, modes, owners, the service user, the data directory, the enabled
//! unit), refuse another member's package, upgrade to a new etcd.conf without asking, and
//! remove (and purge) the package while keeping the member's data and its user.
//!
//! They need root (chroot) and a Debian root with systemd installed, made by
//! `debootstrap --variant=minbase --include=systemd,systemd-sysv bookworm DIR`; it is
//! `$ETCDPACK_DEBIAN_ROOT`, or the root the end-to-end harness builds and caches (tests/e2e).
//! It is only copied, never changed. Without those the tests are skipped, or fail in CI
//! (`support::require`).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use etcdpack::config::Cluster;
use etcdpack::package::Format;

use crate::e2e;
use crate::support::packaging::{build, cluster, put, tree};
use crate::support::{self, run, run_ok};

/// The Debian root to copy, or why installs cannot be tested here.
fn install_prerequisites() -> Result<PathBuf, String> {
    let lacking = support::missing(&[e2e::NODES, support::GCC_STATIC]);
    if !lacking.is_empty() {
        return Err(format!("needs {}", lacking.join(", ")));
    }
    // The end-to-end harness builds (once) and caches the Debian root.
    let root = match std::env::var_os("ETCDPACK_DEBIAN_ROOT") {
        Some(p) => PathBuf::from(p),
        None => e2e::base_root(),
    };
    if root.join("usr/sbin/useradd").exists() && root.join("usr/bin/systemctl").exists() {
        Ok(root)
    } else {
        Err(format!(
            "needs a Debian root with systemd; {} is not one",
            root.display()
        ))
    }
}

/// A private copy of the Debian root under /var/tmp, deleted on drop.
struct Root(PathBuf);

impl Root {
    /// `None` (after saying why) when installs cannot be tested here; in CI that fails.
    fn copy(tag: &str) -> Option<Root> {
        let base = install_prerequisites();
        if !support::require_that(base.as_ref().err().cloned()) {
            return None;
        }
        let base = base.unwrap();
        let dir = PathBuf::from(format!(
            "/var/tmp/etcdpack-packages-{}-{tag}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        let root = Root(dir);
        run_ok(Command::new("cp").arg("-a").arg(&base).arg(&root.0));
        Some(root)
    }

    fn path(&self, abs: &str) -> PathBuf {
        self.0.join(abs.trim_start_matches('/'))
    }

    fn put(&self, name: &str, bytes: &[u8]) -> String {
        fs::write(self.path("/srv").join(name), bytes).unwrap();
        format!("/srv/{name}")
    }

    /// `args` run inside the root, with no terminal to answer questions.
    fn chroot(&self, args: &[&str]) -> Output {
        run(Command::new("chroot")
            .arg(&self.0)
            .args(args)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"))
    }

    /// rpm on the root: it runs the scriptlets chrooted into it, with its useradd and
    /// systemctl. (Installs need --nodeps: the root's software is known to dpkg, not rpm.)
    fn rpm_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("rpm");
        c.arg("--root")
            .arg(&self.0)
            .args(["--dbpath", "/var/lib/rpm"])
            .args(args);
        c
    }

    fn rpm(&self, args: &[&str]) -> Output {
        run(&mut self.rpm_command(args))
    }

    fn rpm_ok(&self, args: &[&str]) -> String {
        run_ok(&mut self.rpm_command(args))
    }

    fn chroot_ok(&self, args: &[&str]) -> String {
        let out = self.chroot(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// uid and gid of `user` in the root's passwd.
    fn ids(&self, user: &str) -> Option<(u32, u32)> {
        let passwd = fs::read_to_string(self.path("/etc/passwd")).unwrap();
        passwd
            .lines()
            .find(|l| l.starts_with(&format!("{user}:")))
            .map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f[2].parse().unwrap(), f[3].parse().unwrap())
            })
    }

    fn meta(&self, abs: &str) -> fs::Metadata {
        fs::symlink_metadata(self.path(abs)).unwrap_or_else(|e| panic!("{abs}: {e}"))
    }

    fn enabled(&self) -> bool {
        self.path("/etc/systemd/system/multi-user.target.wants/etcd.service")
            .symlink_metadata()
            .is_ok()
    }

    /// Whether the maintenance timer `name` is enabled (wanted by timers.target).
    fn timer_enabled(&self, name: &str) -> bool {
        self.path(&format!("/etc/systemd/system/timers.target.wants/{name}"))
            .symlink_metadata()
            .is_ok()
    }

    /// Whether the backup timer is installed and enabled (both or neither).
    fn backups(&self) -> bool {
        let unit = self
            .path("/usr/lib/systemd/system/etcd-backup.timer")
            .is_file();
        assert_eq!(
            unit,
            self.timer_enabled("etcd-backup.timer"),
            "etcd-backup.timer is enabled exactly when it is installed"
        );
        unit
    }

    /// What a member's install must look like: files, modes, owners, the
    /// user, the data directory, the enabled unit.
    fn assert_member_installed(&self, conf: &str) {
        let (uid, gid) = self
            .ids("etcd")
            .expect("postinst/%pre created the etcd user");
        let passwd = fs::read_to_string(self.path("/etc/passwd")).unwrap();
        let entry = passwd.lines().find(|l| l.starts_with("etcd:")).unwrap();
        assert!(entry.ends_with("/sbin/nologin"), "{entry}");
        let key = self.meta("/opt/etcd/ssl/server-key.pem");
        assert_eq!(
            (key.mode() & 0o7777, key.uid(), key.gid()),
            (0o600, uid, gid),
            "key"
        );
        let bin = self.meta("/opt/etcd/bin/etcd");
        assert_eq!((bin.mode() & 0o7777, bin.uid()), (0o755, 0), "etcd binary");
        let cert = self.meta("/opt/etcd/ssl/server.pem");
        assert_eq!(
            (cert.mode() & 0o7777, cert.uid()),
            (0o644, 0),
            "certificate"
        );
        let data = self.meta("/var/lib/etcd/default.etcd");
        assert!(data.is_dir());
        assert_eq!(
            (data.mode() & 0o7777, data.uid(), data.gid()),
            (0o700, uid, gid),
            "data dir"
        );
        assert_eq!(
            fs::read_to_string(self.path("/opt/etcd/cfg/etcd.conf")).unwrap(),
            conf
        );
        assert!(self.path("/usr/lib/systemd/system/etcd.service").is_file());
        assert!(
            self.enabled(),
            "etcd.service is enabled (systemd is not running: not started)"
        );
        assert!(self.timer_enabled("etcd-cert-check.timer"));
        let maint = self.meta("/opt/etcd/bin/etcd-maint");
        assert_eq!(
            (maint.mode() & 0o7777, maint.uid()),
            (0o755, 0),
            "etcd-maint"
        );
    }

    /// Simulates a member's data, which nothing may delete.
    fn put_member_data(&self) -> PathBuf {
        let db = self.path("/var/lib/etcd/default.etcd/member/snap/db");
        fs::create_dir_all(db.parent().unwrap()).unwrap();
        fs::write(&db, "raft").unwrap();
        db
    }

    fn assert_removed_but_data_kept(&self, db: &Path) {
        assert!(
            !self.path("/opt/etcd").exists(),
            "the package's own dirs are removed"
        );
        assert!(!self.path("/usr/lib/systemd/system/etcd.service").exists());
        assert!(!self.enabled(), "etcd.service disabled on removal");
        for timer in ["etcd-cert-check.timer", "etcd-backup.timer"] {
            assert!(!self.timer_enabled(timer), "{timer} disabled on removal");
            assert!(
                !self
                    .path(&format!("/usr/lib/systemd/system/{timer}"))
                    .exists()
            );
        }
        assert_eq!(fs::read_to_string(db).unwrap(), "raft", "member data kept");
        assert!(
            self.ids("etcd").is_some(),
            "the user owning the data is kept"
        );
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The etcd.conf the package for `c`'s etcd-1 installs.
fn conf_of(c: &Cluster) -> String {
    let t = tree(c, "etcd-1");
    String::from_utf8(t.get("/opt/etcd/cfg/etcd.conf").unwrap().data().to_vec()).unwrap()
}

/// A changed etcd.conf, and backups turned on: the upgrade to it brings the
/// backup timer.
fn tuned() -> Cluster {
    cluster(
        "tuning: { heartbeat_interval: 150ms, election_timeout: 1500ms }\nbackup: { enabled: true }\n",
    )
}

#[test]
fn deb_installs_conflicts_upgrades_removes_and_purges_in_a_debian_root() {
    let Some(root) = Root::copy("deb") else {
        return;
    };
    let (c1, c2) = (cluster(""), tuned());
    let (conf1, conf2) = (conf_of(&c1), conf_of(&c2));
    assert_ne!(conf1, conf2);
    let r1 = root.put("r1.deb", &build(Format::Deb, &c1, "etcd-1", 1).1);
    let r2 = root.put("r2.deb", &build(Format::Deb, &c2, "etcd-1", 2).1);
    let other = root.put("other.deb", &build(Format::Deb, &c1, "etcd-2", 1).1);

    root.chroot_ok(&["dpkg", "-i", &r1]);
    root.assert_member_installed(&conf1);
    assert!(!root.backups());
    let status = root.chroot_ok(&[
        "dpkg-query",
        "-W",
        "-f",
        "${Status} ${Version}",
        "etcd-test-etcd-1",
    ]);
    assert_eq!(status, "install ok installed 3.4.16-1");

    // Another member's package is refused, and this one is untouched.
    let out = root.chroot(&["dpkg", "-i", &other]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("conflicts with etcdpack-member"), "{err}");
    root.assert_member_installed(&conf1);

    // An upgrade replaces etcd.conf, even edited locally, without asking.
    fs::write(
        root.path("/opt/etcd/cfg/etcd.conf"),
        format!("{conf1}ETCD_DEBUG=true\n"),
    )
    .unwrap();
    let db = root.put_member_data();
    root.chroot_ok(&["dpkg", "-i", &r2]);
    root.assert_member_installed(&conf2);
    assert!(root.backups(), "the upgrade enables the timer it brings");
    let cfg_dir: Vec<_> = fs::read_dir(root.path("/opt/etcd/cfg"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(cfg_dir, ["etcd.conf"]);

    root.chroot_ok(&["dpkg", "--remove", "etcd-test-etcd-1"]);
    root.assert_removed_but_data_kept(&db);
    // Installed again after removal, it is enabled again.
    root.chroot_ok(&["dpkg", "-i", &r2]);
    root.assert_member_installed(&conf2);
    assert!(root.backups());
    // preinst's marker is consumed; what is left is the access policy's
    // request, for etcd-auth.path (no systemd runs here to take it).
    assert_eq!(
        ls(&root.path("/var/lib/etcdpack")),
        ["auth-pending"],
        "preinst's marker is consumed"
    );
    // Backups turned off again: the upgrade retires the timer.
    let r3 = root.put("r3.deb", &build(Format::Deb, &c1, "etcd-1", 3).1);
    root.chroot_ok(&["dpkg", "-i", &r3]);
    root.assert_member_installed(&conf1);
    assert!(!root.backups(), "the upgrade disables the timer it drops");
    assert_eq!(ls(&root.path("/var/lib/etcdpack")), ["auth-pending"]);
    root.chroot_ok(&["dpkg", "--purge", "etcd-test-etcd-1"]);
    root.assert_removed_but_data_kept(&db);
    // A member removed has no policy to apply.
    assert!(!root.path("/var/lib/etcdpack/auth-pending").exists());
    let status = root.chroot(&["dpkg-query", "-W", "etcd-test-etcd-1"]);
    assert!(!status.status.success(), "purged packages are forgotten");
    // The package never owned the system's /opt, so purging it leaves it.
    assert!(root.path("/opt").is_dir(), "purging removed /opt");
}

#[test]
fn rpm_installs_conflicts_upgrades_and_removes_in_a_root() {
    support::require!(support::RPM);
    let Some(root) = Root::copy("rpm") else {
        return;
    };
    let (c1, c2) = (cluster(""), tuned());
    let (conf1, conf2) = (conf_of(&c1), conf_of(&c2));
    let dir = tempfile::tempdir().unwrap();
    let r1 = put(
        dir.path(),
        "r1.rpm",
        &build(Format::Rpm, &c1, "etcd-1", 1).1,
    );
    let r2 = put(
        dir.path(),
        "r2.rpm",
        &build(Format::Rpm, &c2, "etcd-1", 2).1,
    );
    let other = put(
        dir.path(),
        "other.rpm",
        &build(Format::Rpm, &c1, "etcd-2", 1).1,
    );
    let rpm = |args: &[&str]| root.rpm(args);
    let rpm_ok = |args: &[&str]| root.rpm_ok(args);
    let p = |path: &Path| path.to_str().unwrap().to_owned();

    rpm_ok(&["--initdb"]);
    rpm_ok(&["-i", "--nodeps", &p(&r1)]);
    root.assert_member_installed(&conf1);
    assert!(!root.backups());
    // Owners and modes on disk are what the header says.
    assert_eq!(rpm_ok(&["-V", "--nodeps", "etcd-test-etcd-1"]), "");

    // Another member's package conflicts (checked without --nodeps, which
    // would skip conflicts too; the missing useradd is reported alongside).
    let out = rpm(&["-i", "--test", &p(&other)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("etcdpack-member conflicts with (installed) etcd-test-etcd-1-3.4.16-1.x86_64"),
        "{err}"
    );

    // An upgrade replaces etcd.conf without asking; a local edit is kept aside.
    fs::write(
        root.path("/opt/etcd/cfg/etcd.conf"),
        format!("{conf1}ETCD_DEBUG=true\n"),
    )
    .unwrap();
    let db = root.put_member_data();
    rpm_ok(&["-U", "--nodeps", &p(&r2)]);
    root.assert_member_installed(&conf2);
    assert!(root.backups(), "the upgrade enables the timer it brings");
    assert_eq!(ls(&root.path("/var/lib/etcdpack")), ["auth-pending"]);
    let saved = fs::read_to_string(root.path("/opt/etcd/cfg/etcd.conf.rpmsave")).unwrap();
    assert!(saved.ends_with("ETCD_DEBUG=true\n"), "{saved}");
    assert_eq!(
        rpm_ok(&["-q", "etcd-test-etcd-1"]).trim(),
        "etcd-test-etcd-1-3.4.16-2.x86_64"
    );

    fs::remove_file(root.path("/opt/etcd/cfg/etcd.conf.rpmsave")).unwrap();
    rpm_ok(&["-e", "--nodeps", "etcd-test-etcd-1"]);
    root.assert_removed_but_data_kept(&db);
    // Installed again after removal, it is enabled again.
    rpm_ok(&["-i", "--nodeps", &p(&r2)]);
    root.assert_member_installed(&conf2);
    assert!(root.backups());
    // Backups turned off again: the upgrade retires the timer.
    let r3 = put(
        dir.path(),
        "r3.rpm",
        &build(Format::Rpm, &c1, "etcd-1", 3).1,
    );
    rpm_ok(&["-U", "--nodeps", &p(&r3)]);
    root.assert_member_installed(&conf1);
    assert!(!root.backups(), "the upgrade disables the timer it drops");
}

/// A cluster moved from `packages.keys: cleartext` to `sealed`: rpm erases the files of the
/// package an upgrade replaces after the new one's %post, and the cleartext package's key file
/// is where the sealed one's %post unseals the key. The sealed package owns that file (%ghost),
/// so the key stays: the same key, 0600, the service user's. Removing the package removes it.
#[test]
fn rpm_upgrade_from_cleartext_to_sealed_keeps_the_unsealed_key() {
    support::require!(
        support::RPM,
        support::STANDIN,
        support::SSH_KEYGEN,
        support::AGE
    );
    let Some(root) = Root::copy("rpm-sealed") else {
        return;
    };
    let g = support::Gen::new(&["127.0.0.1"], "packages: { formats: [rpm] }\n");
    let dist = |release: u32| {
        let name = format!("etcd-test-etcd-1-3.4.16-{release}.x86_64.rpm");
        root.put(&name, &fs::read(g.out.join("dist").join(&name)).unwrap());
        root.path("/srv").join(name).display().to_string()
    };
    g.run_ok(&[]);
    let cleartext = dist(1);
    let public = g.make_host_key("etcd-1");
    let config = fs::read_to_string(&g.config).unwrap();
    let sealed = config
        .replace(
            "packages: { formats: [rpm] }",
            "packages: { keys: sealed, formats: [rpm] }",
        )
        .replace(
            "  - { name: etcd-1, ip: \"127.0.0.1\" }",
            &format!("  - {{ name: etcd-1, ip: \"127.0.0.1\", ssh_host_key: \"{public}\" }}"),
        );
    assert_ne!(sealed, config);
    fs::write(&g.config, sealed).unwrap();
    g.run_ok(&[]);
    let ssh = root.path("/etc/ssh");
    fs::create_dir_all(&ssh).unwrap();
    for f in ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"] {
        fs::copy(g.host_root("etcd-1").join("etc/ssh").join(f), ssh.join(f)).unwrap();
    }
    let sealed = dist(2);

    root.rpm_ok(&["--initdb"]);
    root.rpm_ok(&["-i", "--nodeps", &cleartext]);
    let key_file = root.path("/opt/etcd/ssl/server-key.pem");
    let key = fs::read_to_string(&key_file).unwrap();
    assert_eq!(
        key,
        fs::read_to_string(g.out.join("pki/nodes/etcd-1-key.pem")).unwrap()
    );

    root.rpm_ok(&["-U", "--nodeps", &sealed]);
    assert!(root.path("/opt/etcd/ssl/server-key.pem.age").is_file());
    let after = fs::read_to_string(&key_file)
        .unwrap_or_else(|e| panic!("no key after the upgrade to the sealed package: {e}"));
    assert_eq!(after, key, "the unsealed key is the member's own");
    let m = fs::metadata(&key_file).unwrap();
    let passwd = fs::read_to_string(root.path("/etc/passwd")).unwrap();
    let etcd_uid: u32 = passwd
        .lines()
        .find_map(|l| l.strip_prefix("etcd:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|u| u.parse().ok())
        .expect("the service user etcd");
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o600, etcd_uid));
    // rpm's own record of the file agrees with it.
    assert_eq!(root.rpm_ok(&["-V", "--nodeps", "etcd-test-etcd-1"]), "");

    root.rpm_ok(&["-e", "--nodeps", "etcd-test-etcd-1"]);
    assert!(!key_file.exists(), "the unsealed key outlives its package");
}

/// The same move with dpkg, which removes the cleartext package's key file when it unpacks the
/// sealed one, before its postinst unseals: when the unseal fails (here: age is missing,
/// then the host's private key is not the one its .pub says), the member keeps the key it
/// ran with; once the machine is put right, configuring the package unseals the same key.
#[test]
fn deb_upgrade_from_cleartext_to_sealed_never_leaves_the_member_without_its_key() {
    support::require!(support::STANDIN, support::SSH_KEYGEN, support::AGE);
    let Some(root) = Root::copy("deb-sealed") else {
        return;
    };
    let g = support::Gen::new(&["127.0.0.1"], "packages: { formats: [deb] }\n");
    let dist = |release: u32| {
        let name = format!("etcd-test-etcd-1_3.4.16-{release}_amd64.deb");
        root.put(&name, &fs::read(g.out.join("dist").join(&name)).unwrap())
    };
    g.run_ok(&[]);
    let cleartext = dist(1);
    let public = g.make_host_key("etcd-1");
    g.make_host_key("someone-else");
    let config = fs::read_to_string(&g.config).unwrap();
    let sealed = config
        .replace(
            "packages: { formats: [deb] }",
            "packages: { keys: sealed, formats: [deb] }",
        )
        .replace(
            "  - { name: etcd-1, ip: \"127.0.0.1\" }",
            &format!("  - {{ name: etcd-1, ip: \"127.0.0.1\", ssh_host_key: \"{public}\" }}"),
        );
    fs::write(&g.config, sealed).unwrap();
    g.run_ok(&[]);
    let sealed = dist(2);

    root.chroot_ok(&["dpkg", "-i", &cleartext]);
    let key_file = root.path("/opt/etcd/ssl/server-key.pem");
    let key = fs::read_to_string(&key_file).unwrap();

    // The machine's .pub is the one sealed to, so preinst lets the package in; but the
    // root has no age, and then a private key that is not that .pub's.
    let ssh = root.path("/etc/ssh");
    fs::create_dir_all(&ssh).unwrap();
    let own = g.host_root("etcd-1").join("etc/ssh");
    let other = g.host_root("someone-else").join("etc/ssh");
    fs::copy(
        own.join("ssh_host_ed25519_key.pub"),
        ssh.join("ssh_host_ed25519_key.pub"),
    )
    .unwrap();
    fs::copy(
        other.join("ssh_host_ed25519_key"),
        ssh.join("ssh_host_ed25519_key"),
    )
    .unwrap();
    let failed = root.chroot(&["dpkg", "-i", "--force-depends", &sealed]);
    assert!(!failed.status.success());
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("the member keeps the key it had"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    assert_eq!(fs::read_to_string(&key_file).unwrap(), key, "age missing");

    let age = std::process::Command::new("sh")
        .args(["-c", "command -v age"])
        .output()
        .unwrap();
    let age = String::from_utf8(age.stdout).unwrap();
    fs::copy(age.trim(), root.path("/usr/bin/age")).unwrap();
    let failed = root.chroot(&["dpkg", "--configure", "-a"]);
    assert!(!failed.status.success());
    assert_eq!(
        fs::read_to_string(&key_file).unwrap(),
        key,
        "a wrong host key"
    );

    // The machine put right: the same key, unsealed, and nothing kept aside.
    fs::copy(
        own.join("ssh_host_ed25519_key"),
        ssh.join("ssh_host_ed25519_key"),
    )
    .unwrap();
    root.chroot_ok(&["dpkg", "--configure", "-a"]);
    assert_eq!(fs::read_to_string(&key_file).unwrap(), key);
    assert!(
        !root
            .path("/opt/etcd/ssl/server-key.pem.etcdpack-kept")
            .exists()
    );
    assert_eq!(fs::metadata(&key_file).unwrap().mode() & 0o7777, 0o600);
}

/// The names in directory `dir`, sorted.
fn ls(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
