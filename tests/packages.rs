//! The .deb and .rpm formats, checked with the distributions' own tools:
//! dpkg-deb, lintian, rpm, rpmlint, and real installs with dpkg and rpm into
//! copies of a Debian root (upgrade, removal, purge).
//!
//! Packages are built through the library (no PKI or download needed), from
//! the real templates, with a small statically linked program standing in for
//! the Go binaries so that lintian sees what it would see in production.
//!
//! The install tests need root (chroot) and a Debian root with systemd
//! installed, made by `debootstrap --variant=minbase --include=systemd,systemd-sysv
//! bookworm DIR`; it is `$ETCDPACK_DEBIAN_ROOT`, or the root the end-to-end
//! harness builds and caches (tests/e2e). It is only copied, never changed. Without those
//! the install tests say why and pass, unless `CI` or `ETCDPACK_E2E_REQUIRED`
//! is set, where a skip would hide a gap.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};

#[path = "e2e/mod.rs"]
mod e2e;

use etcdpack::config::{self, Cluster, Overrides};
use etcdpack::extract::Binaries;
use etcdpack::package::{self, Format, Identity};
use etcdpack::render::{self, Templates};
use etcdpack::stage::{self, NodeCerts, NodeTree};

const MTIME: u64 = 1_700_000_000;
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nbm90IGEgcmVhbCBrZXk=\n-----END PRIVATE KEY-----\n";

// ---------------------------------------------------------------- fixtures

/// A three-node cluster `test`; `tuning` replaces the default tuning section.
fn cluster(tuning: &str) -> Cluster {
    let yaml = format!(
        "version: 1
cluster: {{ name: test, token: test-token }}
nodes:
  - {{ name: etcd-1, ip: 127.0.0.1 }}
  - {{ name: etcd-2, ip: 127.0.0.2 }}
  - {{ name: etcd-3, ip: 127.0.0.3 }}
pki: {{ algorithm: ecdsa-p256 }}
packages:
  formats: [tar, deb, rpm]
  maintainer: \"Platform Team <platform@example.org>\"
{tuning}"
    );
    config::parse(Path::new("cluster.yaml"), &yaml, &Overrides::default()).unwrap()
}

/// Two small statically linked programs, like the official Go binaries
/// (and, like them, different from each other).
fn static_binaries() -> Binaries {
    static BINS: OnceLock<Binaries> = OnceLock::new();
    let bins = BINS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let compile = |name: &str, status: u8| -> Arc<[u8]> {
            let src = dir.path().join(format!("{name}.c"));
            fs::write(&src, format!("int main(void) {{ return {status}; }}\n")).unwrap();
            let bin = dir.path().join(name);
            run_ok(
                Command::new("gcc")
                    .args(["-static", "-Os", "-s", "-o"])
                    .arg(&bin)
                    .arg(&src),
            );
            Arc::from(fs::read(&bin).unwrap())
        };
        Binaries {
            etcd: compile("etcd", 0),
            etcdctl: compile("etcdctl", 1),
        }
    });
    Binaries {
        etcd: bins.etcd.clone(),
        etcdctl: bins.etcdctl.clone(),
    }
}

/// The staged tree of `node`, with stand-in binaries and certificates.
fn tree(cluster: &Cluster, node: &str) -> NodeTree {
    let node = cluster.node(node).unwrap();
    let rendered = render::render_node(&Templates::new(None, &[]).unwrap(), cluster, node).unwrap();
    let bins = static_binaries();
    let cert = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        node.name
    );
    let certs = NodeCerts {
        ca_cert_pem: "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
        cert_pem: &cert,
        key_pem: KEY,
    };
    stage::assemble(cluster, node, &bins, certs, &rendered).unwrap()
}

/// `node`'s package in `format`, at `release`, and its file name.
fn build(format: Format, cluster: &Cluster, node: &str, release: u32) -> (String, Vec<u8>) {
    let tree = tree(cluster, node);
    let id = Identity {
        name: cluster.packages.name_for(&cluster.name, node),
        version: cluster.etcd.version.clone(),
        release,
        arch: cluster.etcd.arch,
    };
    let templates = Templates::new(None, &package::templates()).unwrap();
    let n = cluster.node(node).unwrap();
    let spec = etcdpack::package::spec(&templates, cluster, n, &tree, id.clone(), MTIME).unwrap();
    let mut bytes = Vec::new();
    format.write(&spec, &mut bytes).unwrap();
    (format.file_name(&id), bytes)
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Write `bytes` as `dir/name` and return the path.
fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The line of `listing` that ends with `suffix`.
fn line<'a>(listing: &'a str, suffix: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.trim_end().ends_with(suffix))
        .unwrap_or_else(|| panic!("no line ending in {suffix} in\n{listing}"))
}

// ------------------------------------------------------------ structure

#[test]
fn deb_metadata_contents_and_scripts() {
    let c = cluster("");
    let dir = tempfile::tempdir().unwrap();
    let (name, bytes) = build(Format::Deb, &c, "etcd-1", 2);
    assert_eq!(name, "etcd-test-etcd-1_3.4.16-2_amd64.deb");
    let deb = put(dir.path(), &name, &bytes);

    let info = run_ok(Command::new("dpkg-deb").arg("--info").arg(&deb));
    for want in [
        " Package: etcd-test-etcd-1\n",
        " Version: 3.4.16-2\n",
        " Architecture: amd64\n",
        " Maintainer: Platform Team <platform@example.org>\n",
        " Depends: passwd\n",
        " Conflicts: etcd-server, etcdpack-member\n",
        " Provides: etcdpack-member, etcdpack-test-member\n",
        " Homepage: https://etcd.io\n",
        " Description: etcd member etcd-1 of cluster test\n",
    ] {
        assert!(info.contains(want), "missing {want:?} in\n{info}");
    }
    let words = info.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("member etcd-1 (127.0.0.1) of the 3-member"),
        "{info}"
    );
    // Scripts are executable; there are no conffiles (see the deb module docs).
    assert!(!info.contains("conffiles"), "{info}");
    let size: u64 = run_ok(
        Command::new("dpkg-deb")
            .args(["--field"])
            .arg(&deb)
            .arg("Installed-Size"),
    )
    .trim()
    .parse()
    .unwrap();
    assert!(
        size * 1024 >= 2 * static_binaries().etcd.len() as u64,
        "Installed-Size {size}"
    );

    let ctrl = dir.path().join("control");
    run_ok(
        Command::new("dpkg-deb")
            .arg("--control")
            .arg(&deb)
            .arg(&ctrl),
    );
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        let meta = fs::metadata(ctrl.join(script)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o755, "{script}");
        let text = fs::read_to_string(ctrl.join(script)).unwrap();
        assert!(
            text.starts_with("#!/bin/sh\n") && text.contains("\nset -e\n"),
            "{script}:\n{text}"
        );
        run_ok(Command::new("sh").arg("-n").arg(ctrl.join(script)));
    }
    let postinst = fs::read_to_string(ctrl.join("postinst")).unwrap();
    assert!(
        postinst.contains("chown -h \"$user:$user\" \"/opt/etcd/ssl/server-key.pem\""),
        "{postinst}"
    );
    assert!(
        postinst.contains("systemctl start --no-block etcd.service"),
        "{postinst}"
    );
    let md5sums = fs::read_to_string(ctrl.join("md5sums")).unwrap();
    assert!(md5sums.contains("  opt/etcd/bin/etcd\n"), "{md5sums}");

    let contents = run_ok(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    assert!(
        line(&contents, "opt/etcd/ssl/server-key.pem").starts_with("-rw------- root/root"),
        "{contents}"
    );
    assert!(
        line(&contents, "opt/etcd/bin/etcd").starts_with("-rwxr-xr-x root/root"),
        "{contents}"
    );
    assert!(
        line(&contents, "opt/etcd/cfg/etcd.conf").starts_with("-rw-r--r-- root/root"),
        "{contents}"
    );
    assert!(line(&contents, "usr/lib/systemd/system/etcd.service").starts_with("-rw-r--r--"));
    assert!(
        contents.contains("2023-11-14 22:13 opt/etcd/\n"),
        "every entry at the spec's mtime:\n{contents}"
    );
}

#[test]
fn deb_and_rpm_read_back_exactly_the_node_tree() {
    let c = cluster("");
    let t = tree(&c, "etcd-1");
    assert!(!t.entries.iter().any(|e| e.path.starts_with("/usr/share")));
    for format in [Format::Tar, Format::Deb, Format::Rpm] {
        let (_, bytes) = build(format, &c, "etcd-1", 1);
        let read = package::read_entries(format, &bytes).unwrap();
        let read: Vec<_> = read
            .iter()
            .filter(|e| e.path != "/")
            // The .deb's own copyright and lintian overrides (see its docs).
            .filter(|e| {
                !(format == Format::Deb
                    && (e.path == "/usr/share" || e.path.starts_with("/usr/share/")))
            })
            .map(|e| {
                (
                    e.path.clone(),
                    format!("{:o}", e.mode),
                    e.dir,
                    sha256(&e.data),
                )
            })
            .collect();
        let want: Vec<_> = t
            .entries
            .iter()
            // The .rpm claims only the directories the package owns.
            .filter(|e| format != Format::Rpm || !e.is_dir() || e.owned)
            .map(|e| {
                (
                    e.path.clone(),
                    format!("{:o}", e.mode),
                    e.is_dir(),
                    sha256(e.data()),
                )
            })
            .collect();
        for (r, w) in read.iter().zip(&want) {
            assert_eq!(r, w, "{format}");
        }
        assert_eq!(read.len(), want.len(), "{format}: {read:#?}");
    }
}

#[test]
fn rpm_metadata_contents_scripts_and_digests() {
    let c = cluster("");
    let dir = tempfile::tempdir().unwrap();
    let (name, bytes) = build(Format::Rpm, &c, "etcd-1", 2);
    assert_eq!(name, "etcd-test-etcd-1-3.4.16-2.x86_64.rpm");
    let rpm = put(dir.path(), &name, &bytes);
    let q = |args: &[&str]| run_ok(Command::new("rpm").arg("-qp").args(args).arg(&rpm));

    let fmt = "%{NAME}|%{VERSION}|%{RELEASE}|%{ARCH}|%{LICENSE}|%{URL}|%{PACKAGER}|%{PAYLOADCOMPRESSOR}|%{BUILDTIME}|%{SUMMARY}";
    assert_eq!(
        q(&["--qf", fmt]),
        "etcd-test-etcd-1|3.4.16|2|x86_64|Apache-2.0|https://etcd.io|Platform Team <platform@example.org>|gzip|1700000000|etcd member etcd-1 of cluster test"
    );
    let description = q(&["--qf", "%{DESCRIPTION}"]);
    assert!(description.lines().all(|l| l.len() <= 79), "{description}");
    assert!(
        description
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains("member etcd-1 (127.0.0.1)")
    );
    let provides = q(&["--provides"]);
    assert!(
        provides.contains("etcdpack-member\n") && provides.contains("etcdpack-test-member\n"),
        "{provides}"
    );
    assert_eq!(q(&["--conflicts"]), "etcd\netcdpack-member\n");
    assert!(q(&["--requires"]).contains("/usr/sbin/useradd"));
    // %config without noreplace: upgrades install the new etcd.conf.
    assert_eq!(q(&["--configfiles"]), "/opt/etcd/cfg/etcd.conf\n");
    assert_eq!(
        q(&["--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]"])
            .lines()
            .find(|l| l.starts_with("/opt/etcd/cfg/etcd.conf")),
        Some("/opt/etcd/cfg/etcd.conf c")
    );
    // SHA-256 file digests (algorithm 8).
    assert_eq!(q(&["--qf", "%{FILEDIGESTALGO}"]), "8");

    let list = q(&["-lv"]);
    assert!(
        line(&list, "/opt/etcd/ssl/server-key.pem").starts_with("-rw-------    1 etcd     etcd"),
        "{list}"
    );
    assert!(
        line(&list, "/opt/etcd/bin/etcd").starts_with("-rwxr-xr-x    1 root     root"),
        "{list}"
    );
    assert!(
        line(&list, " /opt/etcd").starts_with("drwxr-xr-x"),
        "{list}"
    );
    for distro_dir in [
        "/opt",
        "/usr/lib",
        "/usr/lib/systemd/system",
        "/etc",
        "/etc/profile.d",
    ] {
        assert!(
            !list.lines().any(|l| l.ends_with(&format!(" {distro_dir}"))),
            "{distro_dir} claimed:\n{list}"
        );
    }

    let scripts = q(&["--scripts"]);
    for want in [
        "preinstall scriptlet (using /bin/sh):",
        "postinstall scriptlet (using /bin/sh):",
        "preuninstall scriptlet (using /bin/sh):",
        "postuninstall scriptlet (using /bin/sh):",
        "useradd --system",
        "install -d -m 0700 -o \"$user\" -g \"$user\" \"/var/lib/etcd/default.etcd\"",
        "systemctl try-restart --no-block etcd.service",
        "systemctl disable etcd.service",
    ] {
        assert!(scripts.contains(want), "missing {want:?} in\n{scripts}");
    }

    let k = run_ok(Command::new("rpm").arg("-K").arg(&rpm));
    assert!(k.trim_end().ends_with("digests OK"), "{k}");
}

#[test]
fn without_a_service_user_or_autostart_the_scripts_say_so() {
    let c = cluster("service: { user: root, start: false }\n");
    let (_, bytes) = build(Format::Deb, &c, "etcd-1", 1);
    let dir = tempfile::tempdir().unwrap();
    let deb = put(dir.path(), "x.deb", &bytes);
    let info = run_ok(Command::new("dpkg-deb").arg("--info").arg(&deb));
    assert!(!info.contains("Depends:"), "{info}");
    let postinst = run_ok(
        Command::new("dpkg-deb")
            .args(["--info"])
            .arg(&deb)
            .arg("postinst"),
    );
    assert!(
        !postinst.contains("useradd") && !postinst.contains("systemctl start"),
        "{postinst}"
    );
    assert!(
        postinst.contains("systemctl enable etcd.service"),
        "{postinst}"
    );
    let (_, bytes) = build(Format::Rpm, &c, "etcd-1", 1);
    let rpm = put(dir.path(), "x.rpm", &bytes);
    let scripts = run_ok(Command::new("rpm").args(["-qp", "--scripts"]).arg(&rpm));
    assert!(
        !scripts.contains("useradd") && !scripts.contains("systemctl start"),
        "{scripts}"
    );
    let list = run_ok(Command::new("rpm").args(["-qlvp"]).arg(&rpm));
    assert!(
        line(&list, "server-key.pem").contains(" root     root "),
        "{list}"
    );
}

#[test]
fn two_builds_are_byte_identical() {
    let c = cluster("");
    for format in [Format::Tar, Format::Deb, Format::Rpm] {
        let (_, a) = build(format, &c, "etcd-2", 3);
        let (_, b) = build(format, &c, "etcd-2", 3);
        assert!(a == b, "{format}: two builds differ");
    }
}

#[test]
fn lintian_and_rpmlint_pass_with_the_shipped_overrides() {
    let c = cluster("");
    let dir = tempfile::tempdir().unwrap();
    let (name, bytes) = build(Format::Deb, &c, "etcd-1", 1);
    let deb = put(dir.path(), &name, &bytes);
    let (name, bytes) = build(Format::Rpm, &c, "etcd-1", 1);
    let rpm = put(dir.path(), &name, &bytes);

    // Warnings fail too; info-level tags are shown, so an unused override is.
    let out = run(Command::new("lintian")
        .args([
            "--allow-root",
            "--fail-on",
            "error,warning",
            "--display-info",
        ])
        .arg(&deb));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lintian: {}\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("unused-override"), "{text}");

    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/rpmlint.toml");
    let out = run(Command::new("rpmlint")
        .arg("--config")
        .arg(&config)
        .arg(&rpm));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "rpmlint: {}\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(" 0 errors, 0 warnings"), "{text}");
}

// ------------------------------------------------------------- installs

/// Why installs cannot be tested here, or `None` when they can.
fn install_prerequisites() -> Result<PathBuf, String> {
    if let Some(why) = e2e::missing_prerequisites() {
        return Err(why);
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
    /// `None` (after saying why) when installs cannot be tested here.
    fn copy(tag: &str) -> Option<Root> {
        let base = match install_prerequisites() {
            Ok(b) => b,
            Err(why) => {
                if std::env::var_os("CI").is_some()
                    || std::env::var_os("ETCDPACK_E2E_REQUIRED").is_some()
                {
                    panic!("install test cannot run: {why}");
                }
                eprintln!("SKIPPED: install test {why}");
                return None;
            }
        };
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

fn tuned() -> Cluster {
    cluster("tuning: { heartbeat_interval: 150ms, election_timeout: 1500ms }\n")
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
    assert!(
        !root.path("/var/lib/etcdpack").exists(),
        "preinst's marker is consumed"
    );
    root.chroot_ok(&["dpkg", "--purge", "etcd-test-etcd-1"]);
    root.assert_removed_but_data_kept(&db);
    let status = root.chroot(&["dpkg-query", "-W", "etcd-test-etcd-1"]);
    assert!(!status.status.success(), "purged packages are forgotten");
}

#[test]
fn rpm_installs_conflicts_upgrades_and_removes_in_a_root() {
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
    // rpm runs the scriptlets chrooted into the root, with its useradd and
    // systemctl. --nodeps: the root's software is known to dpkg, not rpm.
    let rpm = |args: &[&str]| -> Output {
        run(Command::new("rpm")
            .arg("--root")
            .arg(&root.0)
            .args(["--dbpath", "/var/lib/rpm"])
            .args(args))
    };
    let rpm_ok = |args: &[&str]| -> String {
        let out = rpm(args);
        assert!(
            out.status.success(),
            "rpm {args:?} failed: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let p = |path: &Path| path.to_str().unwrap().to_owned();

    rpm_ok(&["--initdb"]);
    rpm_ok(&["-i", "--nodeps", &p(&r1)]);
    root.assert_member_installed(&conf1);
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
}
