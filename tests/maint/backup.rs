//! `etcd-maint backup` and `restore` on a real three-member cluster: first
//! with snapshots in clear, then, once `backup.recipients` is set and the
//! nodes have the new `etcd-maint`, with only age encryptions reaching the
//! backup directory; the cluster is then restored from an encrypted one.

use super::*;

/// The magic of a bbolt database (etcd's backend, and so a snapshot): a
/// little-endian u32 after the 16-byte header of each of its two meta
/// pages, the first two pages of the file.
const BBOLT_MAGIC: [u8; 4] = 0xED0C_DAEDu32.to_le_bytes();

/// Whether `file` is a bbolt database: the magic in either meta page (page
/// 0 at offset 0; page 1 after it, at the page size, 4096 on these hosts).
fn is_bbolt(file: &Path) -> bool {
    let bytes = fs::read(file).unwrap();
    [16, 4096 + 16]
        .iter()
        .any(|&at| bytes.get(at..at + 4) == Some(&BBOLT_MAGIC[..]))
}

/// The files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// etcd-maint of the node at `root` with `args`, its temporary files under
/// `tmp` (`TMPDIR`).
fn maint_in(root: &Path, tmp: &Path, args: &[&str]) -> Output {
    Command::new(root.join("opt/etcd/bin/etcd-maint"))
        .args(args)
        .env("ETCD_MAINT_ROOT", root)
        .env("TMPDIR", tmp)
        .output()
        .unwrap()
}

/// A new age identity file in `dir`, and its recipient.
fn age_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let file = dir.join(name);
    run_ok(Command::new("age-keygen").arg("-o").arg(&file));
    let public = run_ok(Command::new("age-keygen").arg("-y").arg(&file));
    (file, public.trim().to_owned())
}

/// Every file under `dir` with its bytes, to tell that nothing changed.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(contents(&p));
        } else {
            out.push((p.clone(), fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn backups_are_verified_kept_encrypted_and_restore_a_fresh_three_member_cluster() {
    support::require!(
        support::ROOT,
        support::STANDIN,
        support::AGE,
        support::SSH_KEYGEN
    );
    let ips = ["127.0.7.11", "127.0.7.12", "127.0.7.13"];
    let g = Gen::new(&ips, "service: { user: root }\nbackup: { keep: 2 }\n");
    g.run_ok(&[]);
    let work = tempfile::tempdir().unwrap();
    let Three {
        roots,
        eps,
        all,
        members,
    } = Three::start(&g, work.path(), &ips);
    for k in 0..20 {
        ctl_ok(
            &roots[0],
            &all,
            &["put", &format!("/data/{k:02}"), &format!("v{k}")],
        );
    }

    // Three backups into one directory, keeping two: each verified, 0600.
    let dir = work.path().join("backups");
    let mut said = String::new();
    for _ in 0..3 {
        said = maint_ok(&roots[1], &["backup", dir.to_str().unwrap()]);
    }
    assert!(
        said.contains("==> snapshot save of https://127.0.7.12:2379")
            && said.contains("==> snapshot status")
            && said.contains("removed "),
        "{said}"
    );
    let kept = listing(&dir);
    assert_eq!(kept.len(), 2, "{kept:?}");
    for f in &kept {
        let name = f.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("snapshot-") && name.ends_with("Z.db") && name.len() == 28,
            "{name}"
        );
        assert_eq!(fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(
            is_bbolt(f),
            "{name}: a snapshot in clear is a bbolt database"
        );
        let status = run_ok(
            etcdctl(&roots[1], &eps[1])
                .args(["snapshot", "status", "-w", "json"])
                .arg(f),
        );
        assert!(status.contains("\"totalKey\""), "{status}");
    }
    let clear_snapshot = kept.last().unwrap().clone();

    // A snapshot dated in the future (a clock once wrong) never pushes out
    // the one just written: it is left alone, with a warning, and not
    // counted among those kept.
    let future = dir.join("snapshot-20991231T000000Z.db");
    fs::copy(&kept[0], &future).unwrap();
    let out = maint(&roots[1], &["backup", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        both(&out).contains("is dated after the snapshot just written"),
        "{}",
        both(&out)
    );
    let now = listing(&dir);
    assert_eq!(now.len(), 3, "{now:?}");
    assert_eq!(
        now[0], clear_snapshot,
        "the newer of the two before it is kept"
    );
    assert_eq!(now[2], future);
    assert!(now[1] > clear_snapshot && now[1] < future, "{now:?}");

    // backup.recipients set: an age key and an SSH key, kept off the nodes;
    // each node gets the etcd-maint gen writes now.
    let keys = work.path().join("keys");
    fs::create_dir(&keys).unwrap();
    let (age_identity, age_recipient) = age_key(&keys, "age.key");
    let ssh_identity = keys.join("id_ed25519");
    run_ok(
        Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "ops@example.org",
                "-f",
            ])
            .arg(&ssh_identity),
    );
    let ssh_recipient = fs::read_to_string(ssh_identity.with_extension("pub")).unwrap();
    let config = fs::read_to_string(&g.config).unwrap().replace(
        "backup: { keep: 2 }\n",
        &format!(
            "backup:\n  keep: 2\n  recipients:\n    - {age_recipient}\n    - \"{}\"\n",
            ssh_recipient.trim()
        ),
    );
    fs::write(&g.config, config).unwrap();
    g.run_ok(&[]);
    for (i, root) in roots.iter().enumerate() {
        fs::copy(
            g.out
                .join(format!("nodes/etcd-{}/opt/etcd/bin/etcd-maint", i + 1)),
            root.join("opt/etcd/bin/etcd-maint"),
        )
        .unwrap();
    }
    ctl_ok(&roots[0], &all, &["put", "/data/20", "v20"]);

    // Without age on the node, no snapshot at all, and the way to get it.
    let out = Command::new(roots[1].join("opt/etcd/bin/etcd-maint"))
        .args(["backup", work.path().join("none").to_str().unwrap()])
        .env("ETCD_MAINT_ROOT", &roots[1])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        both(&out).contains("backup (encrypting to backup.recipients) needs age, which is not installed: apt-get install age (Debian, Ubuntu) or dnf install age"),
        "{}",
        both(&out)
    );
    assert!(!work.path().join("none").exists());

    // Three encrypted backups, keeping two: only .age files, no bbolt
    // database, and no snapshot in clear left in the private directory.
    let sealed = work.path().join("encrypted");
    let tmp = work.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    for _ in 0..3 {
        let out = maint_in(&roots[1], &tmp, &["backup", sealed.to_str().unwrap()]);
        assert!(out.status.success(), "{}", both(&out));
        said = both(&out);
        assert!(listing(&tmp).is_empty(), "{:?}", listing(&tmp));
    }
    assert!(
        said.contains("==> snapshot status")
            && said.contains("==> encryption to the 2 recipients of backup.recipients")
            && said.contains("removed the snapshot in clear")
            && said.contains("(keeping the newest 2)"),
        "{said}"
    );
    let encrypted = listing(&sealed);
    assert_eq!(encrypted.len(), 2, "{encrypted:?}");
    for f in &encrypted {
        let name = f.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("snapshot-") && name.ends_with("Z.db.age") && name.len() == 32,
            "{name}"
        );
        assert_eq!(fs::metadata(f).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(
            fs::read(f).unwrap().starts_with(b"age-encryption.org/v1\n"),
            "{name}"
        );
        assert!(!is_bbolt(f), "{name} is a database in clear");
    }
    let snapshot = encrypted.last().unwrap().clone();
    // A snapshot in clear from before the recipients: named, never removed.
    let old_clear = sealed.join("snapshot-20000101T000000Z.db");
    fs::copy(&clear_snapshot, &old_clear).unwrap();
    let out = maint_in(&roots[1], &tmp, &["backup", sealed.to_str().unwrap()]);
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        both(&out)
            .contains("holds 1 snapshots in clear (snapshot-*.db, from before backup.recipients)"),
        "{}",
        both(&out)
    );
    let now = listing(&sealed);
    assert_eq!(now.len(), 3, "{now:?}");
    assert_eq!(now[0], old_clear);
    assert_eq!(now[1], snapshot, "the newer of the two before it is kept");

    // Written after the snapshot: gone after the restore.
    ctl_ok(&roots[0], &all, &["put", "/data/after", "late"]);
    let refused = maint(&roots[0], &["restore", snapshot.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1), "{}", both(&refused));
    assert!(
        both(&refused).contains("is encrypted with age: give the identity that decrypts it"),
        "{}",
        both(&refused)
    );
    let refused = maint(
        &roots[0],
        &[
            "restore",
            snapshot.to_str().unwrap(),
            "-i",
            age_identity.to_str().unwrap(),
        ],
    );
    assert!(
        both(&refused).contains("etcd answers at https://127.0.7.11:2379"),
        "{}",
        both(&refused)
    );
    for m in members {
        m.stop();
    }

    // The wrong identity: a clear error, and the data directory as it was.
    let (stranger, _) = age_key(&keys, "stranger.key");
    let data = roots[0].join("var/lib/etcd/default.etcd");
    let before = contents(&data);
    let out = maint_in(
        &roots[0],
        &tmp,
        &[
            "restore",
            snapshot.to_str().unwrap(),
            "--identity",
            stranger.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        both(&out).contains(&format!(
            "cannot decrypt {} with {} (not the identity of one of its recipients?); nothing was changed",
            snapshot.display(),
            stranger.display()
        )),
        "{}",
        both(&out)
    );
    assert!(contents(&data) == before, "the data directory changed");
    assert_eq!(
        listing(data.parent().unwrap()),
        std::slice::from_ref(&data),
        "nothing beside the data directory"
    );
    assert!(listing(&tmp).is_empty(), "{:?}", listing(&tmp));

    // Every member restored from the same encrypted snapshot, with its own
    // name and peer URL, the old data kept aside; decrypted with the age
    // identity or the SSH key, each a recipient; then started as before.
    let ssh = ssh_identity.to_str().unwrap();
    let with_age = format!("--identity={}", age_identity.display());
    let identities: [&[&str]; 3] = [&[&with_age], &["-i", ssh], &["--identity", ssh]];
    for (i, root) in roots.iter().enumerate() {
        let mut args = vec!["restore", snapshot.to_str().unwrap()];
        args.extend(identities[i]);
        let out = maint_in(root, &tmp, &args);
        assert!(out.status.success(), "{args:?}: {}", both(&out));
        let said = both(&out);
        assert!(
            said.contains(&format!("as member etcd-{}", i + 1))
                && said.contains("==> decryption of ")
                && said.contains("removed the decrypted snapshot")
                && said.contains("moved the old data directory aside"),
            "{said}"
        );
        assert!(listing(&tmp).is_empty(), "{:?}", listing(&tmp));
        let data = root.join("var/lib/etcd/default.etcd");
        assert_eq!(
            fs::metadata(&data).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(data.join("member/snap/db").is_file());
    }
    let members: Vec<Member> = roots.iter().map(|r| Member::start(r)).collect();
    let refs: Vec<&Member> = members.iter().collect();
    wait_healthy(&roots[0], &all, &refs);
    let list = ctl_ok(&roots[0], &all, &["member", "list"]);
    for (i, ip) in ips.iter().enumerate() {
        let line = format!(
            "started, etcd-{}, https://{ip}:2380, https://{ip}:2379",
            i + 1
        );
        assert!(list.contains(&line), "no {line:?} in\n{list}");
    }
    let expected: Vec<String> = (0..21).map(|k| format!("/data/{k:02}=v{k}")).collect();
    for (i, ep) in eps.iter().enumerate() {
        assert_eq!(local_keys(&roots[i], ep, "/data/"), expected, "{ep}");
    }
    ctl_ok(&roots[2], &all, &["put", "/data/restored", "yes"]);
}
