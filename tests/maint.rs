//! `etcd-maint`, the maintenance script every node package ships, run as
//! rendered against real members: Debian's etcd 3.4 (the stand-in release's
//! binaries), each started from a copy of its node's tree as `gen` wrote it,
//! with exactly the environment its `etcd.conf` gives (every path under the
//! copy), on 127.0.7.x. The script finds the node's files under the copy
//! through `ETCD_MAINT_ROOT`; everything else it does is what it does on a
//! node.
//!
//! - `quota-recover` brings a member whose database is over its quota
//!   (alarm NOSPACE, writes refused) back to accepting writes, and changes
//!   nothing on a healthy member, run twice; it fails clearly when etcd is
//!   down;
//! - `backup` writes verified snapshots and keeps the newest N; with
//!   `backup.recipients` only their age encryptions reach the backup
//!   directory (`maint/backup.rs`); `restore` makes, from one of them
//!   (decrypted with `--identity`), the data directories of a fresh
//!   three-member cluster that serves every key of the snapshot and none
//!   written after it;
//! - `cert-check` passes far from the certificate's expiry and warns and
//!   fails inside the window;
//! - `defrag`, run on three members at once, defragments one at a time,
//!   the leader last, losing no write; it leaves a member below the
//!   threshold alone and defers while a member is down (`maint/defrag.rs`);
//! - `cis` passes every CIS item on a member as generated, and fails the
//!   item a member's own command line or environment breaks (see
//!   `maint/cis.rs`).

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::member::{Member, Three, etcdctl, node_root, wait_healthy};
use support::{Gen, both, run_ok};

/// etcdctl `args`, which must succeed; its stdout.
fn ctl_ok(root: &Path, endpoints: &str, args: &[&str]) -> String {
    run_ok(etcdctl(root, endpoints).args(args))
}

/// The rendered etcd-maint of the node at `root`, run there with `args`.
fn maint(root: &Path, args: &[&str]) -> Output {
    Command::new(root.join("opt/etcd/bin/etcd-maint"))
        .args(args)
        .env("ETCD_MAINT_ROOT", root)
        .output()
        .unwrap()
}

fn maint_ok(root: &Path, args: &[&str]) -> String {
    let out = maint(root, args);
    assert!(
        out.status.success(),
        "etcd-maint {args:?} failed ({}):\n{}",
        out.status,
        both(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The keys under `prefix` with their values, as `k=v` lines, read from
/// `endpoint` alone (a serializable read: that member's own copy).
fn local_keys(root: &Path, endpoint: &str, prefix: &str) -> Vec<String> {
    let out = ctl_ok(
        root,
        endpoint,
        &["get", "--consistency=s", "--prefix", prefix, "-w", "simple"],
    );
    out.lines()
        .collect::<Vec<_>>()
        .chunks(2)
        .map(|kv| kv.join("="))
        .collect()
}

/// A single-node cluster on `ip` with `extra` config, generated.
fn one_node(ip: &str, extra: &str) -> Gen {
    let g = Gen::new(&[ip], &format!("service: {{ user: root }}\n{extra}"));
    g.run_ok(&[]);
    g
}

#[test]
fn quota_recover_brings_a_member_over_its_quota_back_to_writes() {
    support::require!(support::ROOT, support::STANDIN);
    let g = one_node("127.0.7.1", "tuning: { quota_backend_bytes: 16MiB }\n");
    let work = tempfile::tempdir().unwrap();
    let root = node_root(&g, work.path(), "etcd-1");
    let ep = "https://127.0.7.1:2379";
    let member = Member::start(&root);
    wait_healthy(&root, ep, &[&member]);
    ctl_ok(&root, ep, &["put", "/keep/me", "yes"]);

    // One key written over and over: its history fills the database until
    // etcd raises NOSPACE and refuses writes.
    let value = vec![b'x'; 1 << 20];
    let mut refused = None;
    for i in 0..200 {
        let mut put = etcdctl(&root, ep)
            .args(["put", "/fill"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        put.stdin.take().unwrap().write_all(&value).unwrap();
        let out = put.wait_with_output().unwrap();
        if !out.status.success() {
            refused = Some((i, both(&out)));
            break;
        }
    }
    let (puts, why) = refused.expect("16 MiB of quota never ran out");
    assert!(why.contains("database space exceeded"), "{why}");
    assert!(puts > 5, "refused after {puts} puts: {why}");
    let alarms = ctl_ok(&root, ep, &["alarm", "list"]);
    assert!(alarms.contains("alarm:NOSPACE"), "{alarms}");
    let small = etcdctl(&root, ep)
        .args(["put", "/small", "1"])
        .output()
        .unwrap();
    assert!(!small.status.success(), "a put succeeded under NOSPACE");

    let said = maint_ok(&root, &["quota-recover"]);
    for step in [
        "==> endpoint status of https://127.0.7.1:2379",
        "==> compaction ",
        "==> defrag of https://127.0.7.1:2379",
        "Finished defragmenting etcd member[https://127.0.7.1:2379]",
        "==> alarm disarm",
        "alarm:NOSPACE",
        "no alarm",
    ] {
        assert!(said.contains(step), "no {step:?} in\n{said}");
    }
    assert_eq!(ctl_ok(&root, ep, &["alarm", "list"]), "");
    ctl_ok(&root, ep, &["put", "/small", "1"]);
    assert_eq!(
        ctl_ok(&root, ep, &["get", "--print-value-only", "/keep/me"]).trim(),
        "yes"
    );
    // Compacted and defragmented: the history is gone, the database small.
    let status = ctl_ok(&root, ep, &["endpoint", "status", "-w", "json"]);
    let db = status
        .split("\"dbSize\":")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap();
    assert!(db < 8 << 20, "database still {db} bytes: {status}");
    member.stop();
}

#[test]
fn quota_recover_on_a_healthy_member_keeps_every_key_and_fails_without_etcd() {
    support::require!(support::ROOT, support::STANDIN);
    let g = one_node("127.0.7.2", "");
    let work = tempfile::tempdir().unwrap();
    let root = node_root(&g, work.path(), "etcd-1");
    let ep = "https://127.0.7.2:2379";
    let member = Member::start(&root);
    wait_healthy(&root, ep, &[&member]);
    for k in 0..10 {
        ctl_ok(&root, ep, &["put", &format!("/k/{k}"), &format!("v{k}")]);
    }
    ctl_ok(&root, ep, &["put", "/k/0", "v0-again"]);
    let before = local_keys(&root, ep, "/k/");
    assert_eq!(before.len(), 10, "{before:?}");

    let first = maint_ok(&root, &["quota-recover"]);
    assert!(first.contains("==> defrag"), "{first}");
    // Again, with nothing written since: already compacted there, still fine.
    let second = maint_ok(&root, &["quota-recover"]);
    assert!(second.contains("already compacted to revision"), "{second}");
    assert_eq!(local_keys(&root, ep, "/k/"), before);
    ctl_ok(&root, ep, &["put", "/after", "yes"]);
    // The profile's variables of a login shell (all members, another
    // certificate) do not lead it astray.
    let out = Command::new(root.join("opt/etcd/bin/etcd-maint"))
        .arg("quota-recover")
        .env("ETCD_MAINT_ROOT", &root)
        .env("ETCDCTL_ENDPOINTS", "https://127.0.7.99:2379")
        .env("ETCDCTL_WRITE_OUT", "table")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", both(&out));

    member.stop();
    let started = Instant::now();
    let out = maint(&root, &["quota-recover"]);
    let said = both(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("cannot reach etcd at https://127.0.7.2:2379"),
        "{said}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_snapshot_that_cannot_be_written_leaves_nothing_behind() {
    support::require!(support::ROOT, support::STANDIN);
    let g = one_node("127.0.7.3", "");
    let work = tempfile::tempdir().unwrap();
    let root = node_root(&g, work.path(), "etcd-1");
    let ep = "https://127.0.7.3:2379";
    let member = Member::start(&root);
    wait_healthy(&root, ep, &[&member]);
    let value = "x".repeat(100_000);
    for k in 0..10 {
        ctl_ok(&root, ep, &["put", &format!("/big/{k}"), &value]);
    }
    // A file system too small for the snapshot.
    let full = work.path().join("full");
    fs::create_dir(&full).unwrap();
    run_ok(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(&full),
    );
    let out = maint(&root, &["backup", full.to_str().unwrap()]);
    let listing: Vec<_> = fs::read_dir(&full).unwrap().collect();
    let _ = Command::new("umount").arg(&full).status();
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        both(&out).contains("the snapshot of https://127.0.7.3:2379 failed; nothing was written"),
        "{}",
        both(&out)
    );
    assert!(listing.is_empty(), "{listing:?}");
    member.stop();
}

#[test]
fn cert_check_passes_far_from_expiry_and_warns_inside_the_window() {
    support::require!(support::ROOT, support::STANDIN);
    let work = tempfile::tempdir().unwrap();
    // The default validity (ten years): valid, unless the window is longer.
    let g = one_node("127.0.7.4", "");
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(g.out.join("manifest.json")).unwrap()).unwrap();
    let not_after = manifest["nodes"][0]["cert_not_after"]
        .as_str()
        .unwrap()
        .to_owned();
    let root = node_root(&g, work.path(), "etcd-1");
    let ok = maint(&root, &["cert-check"]);
    assert_eq!(ok.status.code(), Some(0), "{}", both(&ok));
    let said = String::from_utf8_lossy(&ok.stdout);
    assert!(
        said.contains(&format!("is valid until {not_after} (36")) && ok.stderr.is_empty(),
        "{said}"
    );
    // No textfile directory, no textfile; with one, the expiry for node_exporter,
    // replaced whole, also when the check fails.
    let textfile = root.join("var/lib/node_exporter/textfile_collector");
    assert!(!textfile.exists());
    fs::create_dir_all(&textfile).unwrap();
    let within = maint(&root, &["cert-check", "4000"]);
    assert_eq!(within.status.code(), Some(1));
    let prom = fs::read_to_string(textfile.join("etcdpack-cert.prom")).unwrap();
    assert!(
        prom.contains("\netcdpack_cert_not_after_seconds{cluster=\"test\",node=\"etcd-1\"} "),
        "{prom}"
    );
    assert_eq!(
        fs::read_dir(&textfile).unwrap().count(),
        1,
        "a temporary file stays"
    );
    let warned = String::from_utf8_lossy(&within.stderr);
    assert!(
        warned.starts_with("etcd-maint: warning: the certificate of etcd-1")
            && warned.contains(&format!("expires on {not_after}"))
            && warned.contains("within 4000")
            && within.stdout.is_empty(),
        "{warned}"
    );

    // Its stderr the journal stream systemd names (JOURNAL_STREAM, dev:inode), the
    // warning carries the prefix that makes journald log it at priority warning.
    let stream = work.path().join("stream");
    let file = fs::File::create(&stream).unwrap();
    let meta = fs::metadata(&stream).unwrap();
    use std::os::unix::fs::MetadataExt as _;
    let out = Command::new(root.join("opt/etcd/bin/etcd-maint"))
        .args(["cert-check", "4000"])
        .env("ETCD_MAINT_ROOT", &root)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stderr(file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let logged = fs::read_to_string(&stream).unwrap();
    assert!(
        logged.starts_with("<4>etcd-maint: warning: the certificate of etcd-1"),
        "{logged}"
    );

    // A certificate valid for a day: inside the default window of 30 days.
    let g = Gen::new(
        &["127.0.7.5"],
        "service: { user: root }\npki: { algorithm: ecdsa-p256, validity: 24h }\n",
    );
    g.run_ok(&[]);
    let work = tempfile::tempdir().unwrap();
    let root = node_root(&g, work.path(), "etcd-1");
    let out = maint(&root, &["cert-check"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("(within 30): run etcdpack gen"),
        "{}",
        both(&out)
    );
    assert_eq!(maint(&root, &["cert-check", "0"]).status.code(), Some(0));

    let bad = maint(&root, &["cert-check", "soon"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(both(&bad).contains("DAYS is a whole number of days"));

    // Another certificate in place: its expiry is not the one written in.
    let cert = root.join("opt/etcd/ssl/server.pem");
    fs::copy(g.out.join("pki/ca.pem"), &cert).unwrap();
    let other = maint(&root, &["cert-check", "0"]);
    assert_eq!(other.status.code(), Some(1));
    assert!(
        both(&other).contains("is not the certificate this package installed"),
        "{}",
        both(&other)
    );
}

#[test]
fn usage_is_printed_for_help_and_without_a_command() {
    support::require!(support::STANDIN);
    let g = one_node("127.0.7.6", "");
    let root = g.out.join("nodes/etcd-1");
    let help = maint(&root, &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let usage = String::from_utf8_lossy(&help.stdout).into_owned();
    for command in [
        "quota-recover",
        "cert-check [DAYS]",
        "backup [DIR]",
        "restore SNAPSHOT [--identity FILE]",
    ] {
        assert!(usage.contains(command), "{usage}");
    }
    assert!(usage.starts_with("Usage: etcd-maint COMMAND"), "{usage}");
    let none = maint(&root, &[]);
    assert_eq!(none.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&none.stderr), usage);
    let unknown = maint(&root, &["restore-help"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(both(&unknown).contains("unknown command restore-help"));
}

#[test]
fn from_3_5_on_snapshots_are_verified_and_restored_with_etcdutl() {
    support::require!(support::ROOT, support::STANDIN, support::STANDIN_3_5);
    let next = support::standin_3_5();
    let g = Gen::new(
        &["127.0.7.21"],
        &format!(
            "service: {{ user: root }}\netcd: {{ version: \"{}\", sha256: \"{}\" }}\n",
            next.version, next.sha256
        ),
    );
    g.run_ok(&[
        "--etcd-tarball",
        next.path.to_str().unwrap(),
        "--etcd-sha256",
        &next.sha256,
    ]);
    let work = tempfile::tempdir().unwrap();
    let root = node_root(&g, work.path(), "etcd-1");
    let maint_text = fs::read_to_string(root.join("opt/etcd/bin/etcd-maint")).unwrap();
    assert!(
        maint_text.contains("snapshot_tool=\"$root/opt/etcd/bin/etcdutl\""),
        "{maint_text}"
    );
    let ep = "https://127.0.7.21:2379";
    let member = Member::start(&root);
    wait_healthy(&root, ep, &[&member]);
    for k in 0..5 {
        ctl_ok(&root, ep, &["put", &format!("/v35/{k}"), &format!("v{k}")]);
    }
    let dir = work.path().join("backups");
    let said = maint_ok(&root, &["backup", dir.to_str().unwrap()]);
    assert!(said.contains("REVISION"), "{said}");
    assert!(!said.to_lowercase().contains("deprecated"), "{said}");
    let snapshot = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    ctl_ok(&root, ep, &["put", "/v35/after", "late"]);
    member.stop();

    let said = maint_ok(&root, &["restore", snapshot.to_str().unwrap()]);
    assert!(!said.to_lowercase().contains("deprecated"), "{said}");
    let member = Member::start(&root);
    wait_healthy(&root, ep, &[&member]);
    let expected: Vec<String> = (0..5).map(|k| format!("/v35/{k}=v{k}")).collect();
    assert_eq!(local_keys(&root, ep, "/v35/"), expected);
    member.stop();
}

#[path = "maint/auth.rs"]
mod auth;
#[path = "maint/backup.rs"]
mod backup;
#[path = "maint/cis.rs"]
mod cis;
#[path = "maint/defrag.rs"]
mod defrag;
#[path = "maint/restore.rs"]
mod restore;
