//! `etcdpack publish` and `etcdpack signing-key`, checked by the real
//! clients: apt (with a state, sources and keys of its own, nothing of the
//! host's) verifies the signed repository, refuses a tampered index and a
//! `Release` signed by another key, and upgrades to a republished node; gpg
//! reads the keys etcdpack makes, and a key gpg made signs a repository apt
//! accepts.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::clients::Apt;
use support::publishing::{ed25519_key, generated, publish_command, rsa_key, tree};
use support::{both, etcdpack, ok, ok_both};

/// `etcdpack publish` of `out` into `repo` with `args`.
fn publish(out: &Path, repo: &Path, args: &[&str]) -> Output {
    publish_command(out)
        .arg("--repo")
        .arg(repo)
        .args(args)
        .output()
        .unwrap()
}

fn publish_signed(out: &Path, repo: &Path, key: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "--sign-key",
        key.to_str().unwrap(),
        "--allow-cleartext-keys",
    ];
    args.extend_from_slice(extra);
    ok(publish(out, repo, &args))
}

#[test]
fn apt_installs_from_the_signed_repository_and_refuses_a_tampered_or_foreign_one() {
    support::require!(support::STANDIN, support::APT_GET);
    let g = generated("deb");
    let repo = g.dir.path().join("repo");
    let printed = publish_signed(&g.out, &repo, rsa_key(), &[]);
    let sources = repo.join("etcd-test.sources");
    assert_eq!(
        printed.lines().collect::<Vec<_>>(),
        [
            sources.display().to_string(),
            repo.join("etcd-test.asc").display().to_string()
        ]
    );
    let text = fs::read_to_string(&sources).unwrap();
    assert!(
        text.contains("\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n"),
        "{text}"
    );
    let release = fs::read_to_string(repo.join("dists/stable/Release")).unwrap();
    assert!(release.contains("Acquire-By-Hash: yes\n") && !release.contains("Valid-Until"));
    for f in ["InRelease", "Release.gpg"] {
        assert!(repo.join("dists/stable").join(f).is_file(), "{f}");
    }
    for (path, mode) in [("dists/stable/Release", 0o644), ("pool", 0o755)] {
        let m = fs::metadata(repo.join(path)).unwrap().permissions().mode() & 0o777;
        assert_eq!(m, mode, "{path}");
    }

    // apt verifies the signature and finds each node's package, byte for byte.
    let apt = Apt::new(&sources);
    let out = apt.update();
    assert!(out.status.success(), "{}", both(&out));
    assert!(!both(&out).contains("W:"), "{}", both(&out));
    for i in 1..=3 {
        assert_eq!(apt.candidate(&format!("etcd-test-etcd-{i}")), "3.4.16-1");
    }
    ok(apt.run("apt-get", &["download", "etcd-test-etcd-2"]));
    let deb = "etcd-test-etcd-2_3.4.16-1_amd64.deb";
    assert_eq!(
        fs::read(apt.dir.path().join(deb)).unwrap(),
        fs::read(g.out.join("dist").join(deb)).unwrap()
    );

    // A mirror that changed the index (every copy apt could fetch) is refused.
    let tampered = g.dir.path().join("tampered");
    copy_tree(&repo, &tampered);
    let bin = tampered.join("dists/stable/main/binary-amd64");
    let plain = fs::read_to_string(bin.join("Packages")).unwrap();
    let evil = plain.replacen("Version: 3.4.16-1", "Version: 3.4.16-9", 1);
    let evil_gz = gzip(evil.as_bytes());
    for e in fs::read_dir(bin.join("by-hash/SHA256")).unwrap() {
        let p = e.unwrap().path();
        if fs::read(&p).unwrap() == plain.as_bytes() {
            fs::write(&p, &evil).unwrap();
        } else if !p.ends_with(".etcdpack-generations") {
            fs::write(&p, &evil_gz).unwrap();
        }
    }
    fs::write(bin.join("Packages"), &evil).unwrap();
    fs::write(bin.join("Packages.gz"), &evil_gz).unwrap();
    let apt = Apt::new(&retarget(&sources, &repo, &tampered));
    let out = apt.update();
    assert!(!out.status.success(), "{}", both(&out));
    let said = both(&out);
    assert!(
        said.contains("Hash Sum mismatch") || said.contains("unexpected size"),
        "{said}"
    );

    // A Release signed by another key is refused.
    let foreign = g.dir.path().join("foreign");
    let other = ed25519_key(g.dir.path());
    publish_signed(&g.out, &foreign, &other, &[]);
    assert_eq!(
        fs::read(foreign.join("dists/stable/Release")).unwrap(),
        fs::read(repo.join("dists/stable/Release")).unwrap(),
        "the same packages and date give the same Release"
    );
    let apt = Apt::new(&retarget(&sources, &repo, &foreign));
    let out = apt.update();
    assert!(!out.status.success(), "{}", both(&out));
    assert!(both(&out).contains("NO_PUBKEY"), "{}", both(&out));
}

#[test]
fn the_same_packages_and_date_give_the_same_repository_and_a_republish_writes_nothing() {
    support::require!(support::STANDIN);
    let g = generated("deb");
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519_key(dir.path());
    let (a, b) = (g.dir.path().join("a"), g.dir.path().join("b"));
    publish_signed(&g.out, &a, &key, &[]);
    publish_signed(&g.out, &b, &key, &["--url", "http://127.0.0.1:1/repo"]);
    let (ta, tb) = (tree(&a), tree(&b));
    let differ: Vec<&String> = ta.keys().filter(|k| ta.get(*k) != tb.get(*k)).collect();
    // Only the client file names the URL.
    assert_eq!(differ, ["etcd-test.sources"]);
    assert_eq!(ta.len(), tb.len());

    let before = tree(&a);
    let again = publish(
        &g.out,
        &a,
        &[
            "--sign-key",
            key.to_str().unwrap(),
            "--allow-cleartext-keys",
        ],
    );
    ok(again.clone());
    assert!(
        both(&again).contains("0 new package(s), index unchanged"),
        "{}",
        both(&again)
    );
    assert_eq!(tree(&a), before);
}

#[test]
fn a_changed_node_adds_its_new_release_and_apt_upgrades_to_it() {
    support::require!(support::STANDIN, support::APT_GET);
    let g = generated("deb");
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519_key(dir.path());
    let repo = g.dir.path().join("repo");
    publish_signed(&g.out, &repo, &key, &[]);
    let apt = Apt::new(&repo.join("etcd-test.sources"));
    ok(apt.update());
    assert_eq!(apt.candidate("etcd-test-etcd-2"), "3.4.16-1");

    // etcd-2 gains a SAN: only its package changes.
    let yaml = fs::read_to_string(&g.config).unwrap().replace(
        "name: etcd-2, ip: \"127.0.0.2\"",
        "name: etcd-2, ip: \"127.0.0.2\", sans: [etcd-2.example.com]",
    );
    fs::write(&g.config, yaml).unwrap();
    g.run_ok(&[]);
    let out = ok_both(publish(
        &g.out,
        &repo,
        &[
            "--sign-key",
            key.to_str().unwrap(),
            "--allow-cleartext-keys",
            "--keep",
            "1",
        ],
    ));
    assert!(out.contains("1 new package(s)"), "{out}");
    ok(apt.update());
    assert_eq!(apt.candidate("etcd-test-etcd-2"), "3.4.16-2");
    assert_eq!(apt.candidate("etcd-test-etcd-1"), "3.4.16-1");

    // --keep 1: the index lists only the new release, but the old package
    // stays while an index still reachable by hash lists it.
    let bin = repo.join("dists/stable/main/binary-amd64");
    let index = fs::read_to_string(bin.join("Packages")).unwrap();
    assert!(
        !index.contains("etcd-test-etcd-2_3.4.16-1_amd64.deb"),
        "{index}"
    );
    let pool = repo.join("pool/main/e/etcd-test-etcd-2");
    assert!(pool.join("etcd-test-etcd-2_3.4.16-1_amd64.deb").is_file());
    let history = fs::read_to_string(bin.join("by-hash/SHA256/.etcdpack-generations")).unwrap();
    assert_eq!(history.lines().count(), 2, "{history}");
    for sha in history.split_whitespace() {
        assert!(bin.join("by-hash/SHA256").join(sha).is_file(), "{sha}");
    }
}

#[test]
fn publish_refuses_keys_in_clear_unfinished_runs_and_keys_inside_the_repository() {
    support::require!(support::STANDIN, support::APT_GET);
    let g = generated("deb");
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519_key(dir.path());
    let repo = g.dir.path().join("repo");

    let out = publish(&g.out, &repo, &["--sign-key", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to publish packages that hold a private key in clear"),
        "{err}"
    );
    assert!(
        err.contains("dist/etcd-test-etcd-1_3.4.16-1_amd64.deb"),
        "{err}"
    );
    assert!(!repo.join("dists").exists(), "nothing published");

    let out = publish(&g.out, &repo, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));

    let inside = repo.join("key.asc");
    fs::create_dir_all(&repo).unwrap();
    fs::copy(&key, &inside).unwrap();
    let out = publish(
        &g.out,
        &repo,
        &[
            "--sign-key",
            inside.to_str().unwrap(),
            "--allow-cleartext-keys",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is inside the repository"),
        "{}",
        both(&out)
    );
    assert!(!repo.join("dists").exists(), "nothing published");
    fs::remove_file(&inside).unwrap();

    fs::write(g.out.join(".incomplete"), "").unwrap();
    let out = publish(&g.out, &repo, &["--unsigned", "--allow-cleartext-keys"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unfinished gen run"),
        "{}",
        both(&out)
    );
    assert!(!repo.join("dists").exists(), "nothing published");
    fs::remove_file(g.out.join(".incomplete")).unwrap();

    // Unsigned, and loud about it; apt takes it only as `Trusted: yes`.
    let out = ok_both(publish(
        &g.out,
        &repo,
        &["--unsigned", "--allow-cleartext-keys"],
    ));
    assert!(out.contains("UNSIGNED"), "{out}");
    assert!(out.contains("PUBLISHING PRIVATE KEYS IN CLEAR"), "{out}");
    assert!(!repo.join("dists/stable/InRelease").exists());
    let sources = repo.join("etcd-test.sources");
    assert!(
        fs::read_to_string(&sources)
            .unwrap()
            .contains("\nTrusted: yes\n")
    );
    let apt = Apt::new(&sources);
    ok(apt.update());
    assert_eq!(apt.candidate("etcd-test-etcd-3"), "3.4.16-1");
}

#[test]
fn signing_keys_are_rsa_4096_private_and_sha_1_free_and_a_key_from_gpg_signs_too() {
    support::require!(support::STANDIN, support::GPG, support::APT_GET);
    let key = rsa_key();
    let mode = fs::metadata(key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let mut public = key.as_os_str().to_owned();
    public.push(".pub");
    let public = PathBuf::from(public);
    let home = tempfile::tempdir().unwrap();
    let gpg = |args: &[&str]| {
        Command::new("gpg")
            .env("GNUPGHOME", home.path())
            .args(["--batch", "--no-tty"])
            .args(args)
            .output()
            .unwrap()
    };
    let shown = ok(gpg(&[
        "--with-colons",
        "--show-keys",
        public.to_str().unwrap(),
    ]));
    // pub:<validity>:<bits>:<algorithm, 1 = RSA>:
    let line = shown.lines().find(|l| l.starts_with("pub:")).unwrap();
    let f: Vec<&str> = line.split(':').collect();
    assert_eq!((f[2], f[3]), ("4096", "1"), "{shown}");
    assert!(f[11].contains('s'), "the key may sign: {shown}");
    let packets = ok(gpg(&["--list-packets", key.to_str().unwrap()]));
    assert!(
        packets.contains("digest algo 10") || packets.contains("digest algo 8"),
        "{packets}"
    );
    assert!(
        !packets.contains("digest algo 2,"),
        "a SHA-1 signature:\n{packets}"
    );
    let before = (
        fs::read(key).unwrap(),
        fs::read(key.with_extension("asc.pub")).ok(),
    );
    let again = etcdpack()
        .args(["signing-key", "--out"])
        .arg(key)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "{}", both(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    assert_eq!(
        (
            fs::read(key).unwrap(),
            fs::read(key.with_extension("asc.pub")).ok()
        ),
        before,
        "the key and its public half are as they were"
    );

    // A key as a team has it: made by gpg (primary RSA key that signs, an
    // encryption subkey), exported armored.
    ok(gpg(&[
        "--passphrase",
        "",
        "--pinentry-mode",
        "loopback",
        "--quick-gen-key",
        "ops <ops@example.com>",
        "default",
        "default",
        "never",
    ]));
    let exported = ok(gpg(&["--armor", "--export-secret-keys", "ops@example.com"]));
    let team = home.path().join("team.asc");
    fs::write(&team, exported).unwrap();
    fs::set_permissions(&team, fs::Permissions::from_mode(0o600)).unwrap();
    let g = generated("deb");
    let repo = g.dir.path().join("repo");
    publish_signed(&g.out, &repo, &team, &[]);
    let apt = Apt::new(&repo.join("etcd-test.sources"));
    let out = apt.update();
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(apt.candidate("etcd-test-etcd-1"), "3.4.16-1");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    g.write_all(data).unwrap();
    g.finish().unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// The client file of `repo`, pointing at `other` instead.
fn retarget(sources: &Path, repo: &Path, other: &Path) -> PathBuf {
    let text = fs::read_to_string(sources).unwrap().replace(
        &format!("file://{}\n", repo.display()),
        &format!("file://{}\n", other.display()),
    );
    let path = other.join("etcd-test.sources");
    fs::write(&path, text).unwrap();
    path
}

#[path = "publish/judges.rs"]
mod judges;

#[path = "publish/trust.rs"]
mod trust;
