//! Proves the end-to-end harness itself: real systemd boots in a copied Debian root, runs and
//! fails units the way a package's maintainer scripts will rely on, shares the host's network,
//! and leaves no process or mount behind — also when a test panics.

mod support;

#[path = "e2e/mod.rs"]
mod e2e;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::{Node, Scratch};

/// A Type=notify service as its own user: listens on ADDR:PORT, tells systemd it is ready
/// (from its main process, so READY=1 is never lost), then answers each connection with one
/// line naming its host and user. perl-base is in every Debian root; nothing is installed.
const PROBE: &str = r#"#!/usr/bin/perl
use strict;
use warnings;
use IO::Socket::INET;
use Socket;

my ($addr, $port) = @ARGV;
my $srv = IO::Socket::INET->new(LocalAddr => $addr, LocalPort => $port, Listen => 5,
                                ReuseAddr => 1, Proto => 'tcp') or die "listen $addr:$port: $!\n";
if (my $path = $ENV{NOTIFY_SOCKET}) {
    $path =~ s/^@/\0/;
    socket(my $sock, AF_UNIX, SOCK_DGRAM, 0) or die "socket: $!\n";
    send($sock, "READY=1", 0, pack_sockaddr_un($path)) or die "sd_notify: $!\n";
}
open(my $fh, '<', '/proc/sys/kernel/hostname') or die "hostname: $!\n";
chomp(my $host = <$fh>);
my $user = getpwuid($<);
while (my $conn = $srv->accept) {
    print $conn "probe $host $user\n";
    close $conn;
}
"#;

fn probe_unit(addr: Ipv4Addr, port: u16) -> String {
    format!(
        "[Unit]\nDescription=etcdpack harness probe\n\n\
         [Service]\nType=notify\nUser=e2e-probe\n\
         ExecStart=/usr/local/bin/e2e-probe {addr} {port}\n\n\
         [Install]\nWantedBy=multi-user.target\n"
    )
}

/// The negative control: Type=exec makes `systemctl start` itself report the failed exec.
const BAD_UNIT: &str = "[Unit]\nDescription=etcdpack harness negative control\n\n\
                        [Service]\nType=exec\nExecStart=/nonexistent/e2e-bad\n";

/// Installs the probe the way a package would: a dedicated system user, a unit file, then
/// `systemctl enable --now`.
fn install_probe(node: &Node, scratch: &Scratch, addr: Ipv4Addr, port: u16) {
    let script = scratch.join("e2e-probe");
    std::fs::write(&script, PROBE).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    node.copy_in(&script, "/usr/local/bin/e2e-probe");
    node.exec_ok(&[
        "useradd",
        "--system",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        "e2e-probe",
    ]);
    node.write_file(
        "/etc/systemd/system/e2e-probe.service",
        probe_unit(addr, port).as_bytes(),
        0o644,
    );
    node.exec_ok(&["systemctl", "daemon-reload"]);
    node.exec_ok(&["systemctl", "enable", "--now", "e2e-probe.service"]);
}

/// A port free on every given loopback address (the probes bind it a moment later).
fn free_port(addrs: &[Ipv4Addr]) -> u16 {
    for _ in 0..50 {
        let port = TcpListener::bind((addrs[0], 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if addrs[1..]
            .iter()
            .all(|a| TcpListener::bind((*a, port)).is_ok())
        {
            return port;
        }
    }
    panic!("no port free on all of {addrs:?}");
}

/// The probe's greeting, read from the host through the shared network.
fn greeting(addr: Ipv4Addr, port: u16) -> Option<String> {
    let target = SocketAddr::from((addr, port));
    let stream = TcpStream::connect_timeout(&target, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    Some(line.trim_end().to_string())
}

fn system_state(node: &Node) -> String {
    let out = node.exec(&["systemctl", "is-system-running"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn assert_state(node: &Node, want: &str) {
    let state = system_state(node);
    assert_eq!(state, want, "{} is {state}\n{}", node.name, node.diagnose());
}

fn assert_torn_down(pid: u32, root: &Path) {
    assert!(!e2e::pid_alive(pid), "systemd PID {pid} still runs");
    let procs = e2e::processes_rooted_in(root);
    assert!(
        procs.is_empty(),
        "processes still run in {}: {procs:?}",
        root.display()
    );
    let mounts = e2e::mounts_under(root);
    assert!(
        mounts.is_empty(),
        "still mounted under {}: {mounts:?}",
        root.display()
    );
    assert_host_dev_untouched();
}

/// A node's systemd chowns its console and other device nodes at boot; none
/// of that may reach the host's /dev (a host /dev/null that only root can
/// open breaks apt and every unprivileged program on the host).
fn assert_host_dev_untouched() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for dev in ["/dev/null", "/dev/zero", "/dev/urandom"] {
        let m = std::fs::metadata(dev).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o666, "{dev} mode changed");
        assert_eq!((m.uid(), m.gid()), (0, 0), "{dev} owner changed");
    }
}

#[test]
fn a_node_boots_runs_units_and_boots_again() {
    support::require!(e2e::NODES);
    let started = Instant::now();
    let scratch = Scratch::new("harness-one");
    let base = e2e::base_root();
    let root = scratch.join("n1");
    let mut node = Node::boot(&base, &root, "e2e-n1");
    eprintln!("e2e-n1 booted in {:?}", node.boot_time);
    assert_state(&node, "running");

    // Its own identity, though made from the base.
    assert_eq!(node.exec_ok(&["hostname"]).trim(), "e2e-n1");
    let machine_id = node.exec_ok(&["cat", "/etc/machine-id"]);
    let base_id = std::fs::read_to_string(base.join("etc/machine-id")).unwrap();
    assert_eq!(machine_id.trim().len(), 32);
    assert_ne!(machine_id, base_id, "each copy gets its own machine-id");
    // The node sees only its own processes; systemd is its PID 1.
    assert_eq!(node.exec_ok(&["cat", "/proc/1/comm"]).trim(), "systemd");

    // A Type=notify service as a dedicated user, enabled and started like a postinst does.
    let addr = Ipv4Addr::new(127, 0, 0, 2);
    let port = free_port(&[addr]);
    install_probe(&node, &scratch, addr, port);
    assert_eq!(
        node.exec_ok(&["systemctl", "is-active", "e2e-probe"])
            .trim(),
        "active"
    );
    let main_pid = node.exec_ok(&["systemctl", "show", "-P", "MainPID", "e2e-probe"]);
    let owner = node.exec_ok(&["stat", "-c", "%U", &format!("/proc/{}", main_pid.trim())]);
    assert_eq!(owner.trim(), "e2e-probe");
    // Listening on 127.0.0.2 inside the node, reached from the host.
    let hello = e2e::wait_for(Duration::from_secs(5), || greeting(addr, port));
    assert_eq!(hello.as_deref(), Some("probe e2e-n1 e2e-probe"));

    // Negative control: a unit that cannot start fails, visibly.
    node.write_file(
        "/etc/systemd/system/e2e-bad.service",
        BAD_UNIT.as_bytes(),
        0o644,
    );
    node.exec_ok(&["systemctl", "daemon-reload"]);
    let start = node.exec(&["systemctl", "start", "e2e-bad.service"]);
    assert!(!start.status.success(), "e2e-bad started");
    assert_eq!(
        node.exec_ok(&["systemctl", "is-failed", "e2e-bad"]).trim(),
        "failed"
    );
    assert!(
        !node
            .exec(&["systemctl", "is-failed", "e2e-probe"])
            .status
            .success()
    );
    assert_state(&node, "degraded");

    // Power off: nothing of the node remains.
    let pid = node.pid;
    node.stop();
    assert_torn_down(pid, &root);
    assert_eq!(
        greeting(addr, port),
        None,
        "the probe still answers after stop"
    );

    // The same root boots again; the enabled service comes back by itself, the failure does not.
    node.start();
    eprintln!("e2e-n1 booted again in {:?}", node.boot_time);
    assert_ne!(node.pid, pid);
    assert_state(&node, "running");
    assert_eq!(
        node.exec_ok(&["systemctl", "is-active", "e2e-probe"])
            .trim(),
        "active"
    );
    assert_eq!(node.exec_ok(&["cat", "/etc/machine-id"]), machine_id);
    let hello = e2e::wait_for(Duration::from_secs(5), || greeting(addr, port));
    assert_eq!(hello.as_deref(), Some("probe e2e-n1 e2e-probe"));

    let pid = node.pid;
    node.stop();
    assert_torn_down(pid, &root);

    // The root is an overlay on the base wherever the kernel has overlayfs (as in CI): what the
    // node wrote is in its own layer, never in the base every node shares; removing the root
    // takes the overlay with it.
    let overlayfs = std::fs::read_to_string("/proc/filesystems")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
        && std::env::var("ETCDPACK_E2E_ROOTS").as_deref() != Ok("copy");
    let mut layer = root.clone().into_os_string();
    layer.push(".overlay");
    let layer = std::path::PathBuf::from(layer);
    assert_eq!(layer.join("upper").is_dir(), overlayfs, "overlay layer");
    assert!(root.join("etc/systemd/system/e2e-bad.service").exists());
    assert!(!base.join("etc/systemd/system/e2e-bad.service").exists());
    let rm = std::process::Command::new(e2e::node_sh())
        .arg("rm")
        .arg(&root)
        .output()
        .unwrap();
    assert!(rm.status.success(), "{rm:?}");
    assert!(!root.exists() && !layer.exists());
    assert_eq!(
        e2e::mounts_under(&scratch.path),
        Vec::<std::path::PathBuf>::new()
    );
    eprintln!(
        "a_node_boots_runs_units_and_boots_again took {:?}",
        started.elapsed()
    );
}

#[test]
fn two_nodes_run_at_once_without_seeing_each_other() {
    support::require!(e2e::NODES);
    let started = Instant::now();
    let scratch = Scratch::new("harness-two");
    let base = e2e::base_root();
    let (addr_a, addr_b) = (Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3));
    let port = free_port(&[addr_a, addr_b]);
    let a = Node::boot(&base, &scratch.join("a"), "e2e-a");
    let b = Node::boot(&base, &scratch.join("b"), "e2e-b");
    eprintln!(
        "e2e-a booted in {:?}, e2e-b in {:?}",
        a.boot_time, b.boot_time
    );
    assert_state(&a, "running");
    assert_state(&b, "running");
    assert_ne!(
        a.exec_ok(&["cat", "/etc/machine-id"]),
        b.exec_ok(&["cat", "/etc/machine-id"])
    );

    // The same port on two loopback addresses: one network, two listeners.
    install_probe(&a, &scratch, addr_a, port);
    install_probe(&b, &scratch, addr_b, port);
    let hello_a = e2e::wait_for(Duration::from_secs(5), || greeting(addr_a, port));
    let hello_b = e2e::wait_for(Duration::from_secs(5), || greeting(addr_b, port));
    assert_eq!(hello_a.as_deref(), Some("probe e2e-a e2e-probe"));
    assert_eq!(hello_b.as_deref(), Some("probe e2e-b e2e-probe"));

    // Each systemd owns its own cgroup tree: stopping a's service leaves b's running.
    a.exec_ok(&["systemctl", "stop", "e2e-probe"]);
    assert_eq!(greeting(addr_a, port), None);
    assert_eq!(
        b.exec_ok(&["systemctl", "is-active", "e2e-probe"]).trim(),
        "active"
    );
    assert_eq!(
        greeting(addr_b, port).as_deref(),
        Some("probe e2e-b e2e-probe")
    );

    // Dropping the nodes tears them down.
    let (pid_a, root_a, pid_b, root_b) = (a.pid, a.root.clone(), b.pid, b.root.clone());
    drop(a);
    assert!(e2e::pid_alive(pid_b), "dropping a took b down");
    drop(b);
    assert_torn_down(pid_a, &root_a);
    assert_torn_down(pid_b, &root_b);
    eprintln!(
        "two_nodes_run_at_once_without_seeing_each_other took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_panicking_test_still_tears_its_node_down() {
    support::require!(e2e::NODES);
    let scratch = Scratch::new("harness-panic");
    let base = e2e::base_root();
    let root = scratch.join("p");
    let mut seen_pid = 0;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let node = Node::boot(&base, &root, "e2e-p");
        seen_pid = node.pid;
        node.exec_ok(&["false"]);
    }));
    let message = result.expect_err("exec_ok of a failing command must panic");
    let message = message
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or_default();
    assert!(
        message.contains("[\"false\"] failed"),
        "unexpected panic: {message}"
    );
    assert_ne!(seen_pid, 0, "the node never booted");
    assert_torn_down(seen_pid, &root);
}
