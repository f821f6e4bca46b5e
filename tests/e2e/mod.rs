//! End-to-end test support: Debian roots booted with real systemd as PID 1, driven through
//! `tests/e2e/node.sh` (how it works, and how to run the tests: `tests/e2e/README.md`).
//!
//! ```ignore
//! let scratch = Scratch::new("cluster"); // declared first, so it is dropped last
//! let node = Node::boot(&base_root(), &scratch.join("n1"), "n1");
//! node.copy_in(&deb, "/srv/etcd.deb");
//! node.exec_ok(&["dpkg", "-i", "/srv/etcd.deb"]);
//! ```
//!
//! Locals drop in reverse order: declare the [`Scratch`] before the nodes living in it, so nodes
//! are torn down before their roots are deleted.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::support::{self, Need};

/// The script doing the real work.
pub fn node_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/node.sh")
}

/// Where the base root is cached between runs (`ETCDPACK_E2E_CACHE`, default
/// `/var/cache/etcdpack-e2e`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("ETCDPACK_E2E_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/etcdpack-e2e"))
}

/// Where [`Scratch`] directories go (`ETCDPACK_E2E_SCRATCH`, default `/var/tmp/etcdpack-e2e`);
/// never inside the source tree.
pub fn scratch_parent() -> PathBuf {
    std::env::var_os("ETCDPACK_E2E_SCRATCH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/etcdpack-e2e"))
}

/// What booting a node needs: root (namespaces, mounts, chroot), debootstrap for the base
/// root, util-linux's `unshare`, `nsenter` and `flock`, and `chroot`. A test starts with
/// `support::require!(e2e::NODES)`: the one skip policy (tests/support/prereq.rs).
pub const NODES: Need = Need::All(&[
    support::ROOT,
    support::DEBOOTSTRAP,
    support::UNSHARE,
    support::NSENTER,
    support::FLOCK,
    support::CHROOT,
]);

/// The cached Debian base root, built by `node.sh root` the first time (about a minute, needs
/// the Debian mirror). Called any number of times; runs the script once per process, under a
/// file lock so test binaries running at the same time never build it twice.
pub fn base_root() -> PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let cache = cache_dir();
        fs::create_dir_all(&cache).unwrap_or_else(|e| panic!("creating {}: {e}", cache.display()));
        let lock_path = cache.join(".base-root.lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", lock_path.display()));
        lock.lock()
            .unwrap_or_else(|e| panic!("locking {}: {e}", lock_path.display()));
        // Progress of a first build goes straight to the terminal.
        let out = run(Command::new(node_sh())
            .arg("root")
            .arg(&cache)
            .stderr(Stdio::inherit()));
        drop(lock);
        if !out.status.success() {
            panic!("node.sh root failed\n{}", describe(&out));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
    })
    .clone()
}

/// One booted (or stopped) Debian root: its own systemd as PID 1 in fresh pid, mount, uts, ipc
/// and cgroup namespaces, sharing the host's network.
pub struct Node {
    pub name: String,
    pub root: PathBuf,
    /// Host PID of the node's systemd (PID 1 inside): what `nsenter` targets. Kept after
    /// [`Node::stop`] so a test can check that it is gone.
    pub pid: u32,
    /// How long the last boot took, from spawn to `systemctl is-system-running` settling.
    pub boot_time: Duration,
    base: PathBuf,
    running: bool,
}

impl Node {
    /// Copies `base` to a fresh `root` (any previous one is deleted) and boots it with hostname
    /// `name`. Returns once the boot has finished ("running" or "degraded").
    pub fn boot(base: &Path, root: &Path, name: &str) -> Node {
        if root.exists() {
            node_sh_ok(&["rm".as_ref(), root.as_os_str()]);
        }
        let mut node = Node {
            name: name.to_string(),
            root: root.to_path_buf(),
            pid: 0,
            boot_time: Duration::ZERO,
            base: base.to_path_buf(),
            running: false,
        };
        node.start();
        node
    }

    /// Boots the same root again, after [`Node::stop`]: what was enabled comes back by itself.
    pub fn start(&mut self) {
        assert!(!self.running, "{} is already running", self.name);
        let started = Instant::now();
        // The watchdog stops the node should this process die without dropping it (SIGKILL,
        // Ctrl-C), and boot gives up if this process dies while it waits.
        let out = run(Command::new(node_sh())
            .arg("boot")
            .arg(&self.base)
            .arg(&self.root)
            .arg(&self.name)
            .env("ETCDPACK_E2E_OWNER", std::process::id().to_string()));
        if !out.status.success() {
            panic!("booting {} failed\n{}", self.root.display(), describe(&out));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        self.pid = stdout
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("node.sh boot printed no PID: {stdout:?}"));
        self.boot_time = started.elapsed();
        self.running = true;
    }

    /// Powers the node off (SIGKILL after a bounded wait), removes its cgroup and unmounts
    /// anything left under the root. The root stays on disk.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        let out = self
            .node_sh_stop()
            .unwrap_or_else(|e| panic!("running node.sh: {e}"));
        self.running = false;
        if !out.status.success() {
            panic!(
                "stopping {} (PID {}) failed\n{}",
                self.name,
                self.pid,
                describe(&out)
            );
        }
    }

    /// Power off and boot the same root again.
    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }

    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Runs a command inside the node (root's PATH, a clean environment, cwd /, stdin empty).
    pub fn exec(&self, args: &[&str]) -> Output {
        self.exec_with_stdin(args, Stdio::null())
    }

    /// Like [`Node::exec`], but panics with the status, stdout and stderr unless it succeeds.
    /// Returns stdout.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        if !out.status.success() {
            panic!("in {}: {args:?} failed\n{}", self.name, describe(&out));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `sh -c script` inside the node.
    pub fn sh(&self, script: &str) -> Output {
        self.exec(&["sh", "-c", script])
    }

    /// `sh -c script` inside the node; panics unless it succeeds; returns stdout.
    pub fn sh_ok(&self, script: &str) -> String {
        self.exec_ok(&["sh", "-c", script])
    }

    /// Copies a host file to the absolute path `dest` inside the node, keeping its mode.
    /// Parent directories are created. Works booted (through the node's own view, so /run
    /// works too) or stopped (through `chroot`, so symlinks in the root resolve inside it).
    pub fn copy_in(&self, host_file: &Path, dest: &str) {
        let file = fs::File::open(host_file)
            .unwrap_or_else(|e| panic!("opening {}: {e}", host_file.display()));
        let mode = file
            .metadata()
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
            .unwrap_or(0o644);
        self.put(dest, Stdio::from(file), mode);
    }

    /// Writes `contents` to the absolute path `dest` inside the node, with `mode`.
    pub fn write_file(&self, dest: &str, contents: &[u8], mode: u32) {
        let mut child = self
            .put_command(dest, mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("running node.sh: {e}"));
        let written = child.stdin.take().expect("stdin").write_all(contents);
        let out = child.wait_with_output().expect("waiting for node.sh");
        if written.is_err() || !out.status.success() {
            panic!("writing {dest} in {} failed\n{}", self.name, describe(&out));
        }
    }

    /// What usually explains a failure: failed units and the end of the journal.
    pub fn diagnose(&self) -> String {
        if !self.running {
            return format!("{} is not running", self.name);
        }
        let out = self.sh(
            "systemctl --no-pager --failed; systemctl --no-pager list-jobs; \
             journalctl --no-pager -b -n 60",
        );
        describe(&out)
    }

    fn exec_with_stdin(&self, args: &[&str], stdin: Stdio) -> Output {
        assert!(self.running, "{} is not running", self.name);
        assert!(!args.is_empty(), "exec needs a command");
        run(Command::new(node_sh())
            .arg("exec")
            .arg(self.pid.to_string())
            .args(args)
            .stdin(stdin))
    }

    fn put(&self, dest: &str, stdin: Stdio, mode: u32) {
        let out = run(self.put_command(dest, mode).stdin(stdin));
        if !out.status.success() {
            panic!(
                "copying to {dest} in {} failed\n{}",
                self.name,
                describe(&out)
            );
        }
    }

    fn put_command(&self, dest: &str, mode: u32) -> Command {
        assert!(
            dest.starts_with('/'),
            "{dest}: the path inside the node must be absolute"
        );
        let script = r#"mkdir -p -- "$(dirname -- "$1")" && cat >"$1" && chmod "$2" "$1""#;
        let mode = format!("{mode:o}");
        let mut cmd;
        if self.running {
            cmd = Command::new(node_sh());
            cmd.arg("exec").arg(self.pid.to_string());
        } else {
            cmd = Command::new("chroot");
            cmd.arg(&self.root)
                .arg("/usr/bin/env")
                .arg("-i")
                .arg("PATH=/usr/bin:/bin");
        }
        cmd.args(["sh", "-c", script, "sh", dest, &mode]);
        cmd
    }

    fn node_sh_stop(&self) -> std::io::Result<Output> {
        Command::new(node_sh())
            .arg("stop")
            .arg(self.pid.to_string())
            .arg(&self.root)
            .output()
    }
}

impl Drop for Node {
    /// Always tears the node down, also while a failing test unwinds. Never panics.
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        match self.node_sh_stop() {
            Ok(out) if out.status.success() => return,
            Ok(out) => eprintln!(
                "stopping {} (PID {}) failed\n{}",
                self.name,
                self.pid,
                describe(&out)
            ),
            Err(e) => eprintln!(
                "stopping {} (PID {}): running node.sh: {e}",
                self.name, self.pid
            ),
        }
        // Last resort, and only if the PID is still one of ours: killing a pid namespace's
        // init kills everything in it, and the mount namespace goes with it.
        let cgroup = fs::read_to_string(format!("/proc/{}/cgroup", self.pid)).unwrap_or_default();
        if cgroup.contains("/etcdpack-e2e/node-") {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
        }
    }
}

/// A directory for roots and other files under [`scratch_parent`], deleted on drop (through
/// `node.sh rm`, which refuses while a node runs in it and never crosses a mount). Set
/// `ETCDPACK_E2E_KEEP=1` to keep it for a look afterwards.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = scratch_parent().join(format!("{label}-{}-{n}", std::process::id()));
        if let Err(e) = fs::create_dir_all(&path) {
            panic!("creating {}: {e}", path.display());
        }
        Scratch { path }
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("ETCDPACK_E2E_KEEP").is_some() {
            eprintln!("keeping {}", self.path.display());
            return;
        }
        match Command::new(node_sh()).arg("rm").arg(&self.path).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "removing {} failed\n{}",
                self.path.display(),
                describe(&out)
            ),
            Err(e) => eprintln!("removing {}: running node.sh: {e}", self.path.display()),
        }
    }
}

/// Whether a process exists (zombies count as gone).
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Host PIDs of live processes whose root directory is `root` or below it.
pub fn processes_rooted_in(root: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_link(format!("/proc/{pid}/root")).is_ok_and(|r| r.starts_with(root))
                && pid_alive(*pid)
        })
        .collect()
}

/// Mount points at or below `dir` in this (the host's) mount namespace, but for the overlay
/// a node's root is made of (`node.sh`: it stays mounted while the root exists, so that a
/// stopped node's files can be read, and goes with the root).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .filter_map(|l| {
            let point = PathBuf::from(unescape_mountinfo(l.split(' ').nth(4)?));
            let fstype = l.split(" - ").nth(1)?.split(' ').next()?;
            let mut layer = point.clone().into_os_string();
            layer.push(".overlay");
            let root_overlay = fstype == "overlay" && Path::new(&layer).is_dir();
            (point.starts_with(dir) && !root_overlay).then_some(point)
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4);
        match code.and_then(|c| u8::from_str_radix(c, 8).ok()) {
            Some(b) => {
                out.push(char::from(b));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Retries `f` every 100 ms until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn node_sh_ok(args: &[&std::ffi::OsStr]) -> String {
    let out = run(Command::new(node_sh()).args(args));
    if !out.status.success() {
        panic!("node.sh {args:?} failed\n{}", describe(&out));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run(cmd: &mut Command) -> Output {
    match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("{:?} not found: {e}", cmd.get_program())
        }
        Err(e) => panic!("running {:?}: {e}", cmd.get_program()),
    }
}

fn describe(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}
