//! `packages.keys: sealed`: each node's key is in its packages only
//! encrypted to that machine's SSH host key (made here with ssh-keygen);
//! real `age` with the host key unseals it, a neighbour's host key does not;
//! no stream of any artifact holds a private key in clear, so `publish`
//! takes the packages without `--allow-cleartext-keys`; a rerun reuses the
//! sealed keys (nothing is rebuilt), and a changed host key seals again.
//! install.sh unseals into a root holding the right host key and refuses,
//! before placing anything, a root holding another.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use etcdpack::model::Format;
use support::{Gen, etcdpack, run_ok, unpack};

fn artifact(g: &Gen, name: &str) -> Vec<u8> {
    fs::read(g.out.join("dist").join(name)).unwrap()
}

fn unseal(sealed: &Path, host_root: &Path) -> std::process::Output {
    Command::new("age")
        .arg("--decrypt")
        .arg("--identity")
        .arg(host_root.join("etc/ssh/ssh_host_ed25519_key"))
        .arg(sealed)
        .output()
        .unwrap()
}

#[test]
fn sealed_keys_open_only_on_their_own_host_and_no_artifact_holds_a_key() {
    support::require!(
        support::STANDIN,
        support::SSH_KEYGEN,
        support::AGE,
        support::DPKG_DEB,
        support::RPM,
        support::RPM2CPIO,
        support::CPIO
    );
    let g = Gen::sealed(
        &["127.0.0.1", "127.0.0.2", "127.0.0.3"],
        "formats: [tar, deb, rpm]",
    );
    let first = g.run(&[]);
    assert!(first.status.success(), "{}", support::both(&first));
    // Progress goes to stderr: the first run seals each key, and says so.
    assert!(
        support::both(&first).contains("Sealing nodes/etcd-1 to SHA256:"),
        "{}",
        support::both(&first)
    );

    let keys: Vec<String> = (1..=3)
        .map(|i| fs::read_to_string(g.out.join(format!("pki/nodes/etcd-{i}-key.pem"))).unwrap())
        .collect();
    let ca_key = fs::read_to_string(g.out.join("pki/ca-key.pem")).unwrap();
    for i in 1..=3 {
        for (format, name) in [
            (
                Format::Tar,
                format!("etcd-test-etcd-{i}_3.4.16-1_amd64.tar.gz"),
            ),
            (
                Format::Deb,
                format!("etcd-test-etcd-{i}_3.4.16-1_amd64.deb"),
            ),
            (
                Format::Rpm,
                format!("etcd-test-etcd-{i}-3.4.16-1.x86_64.rpm"),
            ),
        ] {
            let file = g.out.join("dist").join(&name);
            assert_eq!(unpack::format_of(&file), format);
            for s in &unpack::streams(&file) {
                assert!(
                    memchr::memmem::find(s, b"PRIVATE KEY-----").is_none(),
                    "{name} holds a private key in clear"
                );
                for k in keys.iter().chain([&ca_key]) {
                    assert!(!etcdpack::pki::contains_key(s, k), "{name} holds a key");
                }
            }
            let entries = unpack::entries(&file);
            assert!(
                entries
                    .iter()
                    .any(|e| e.path == "/opt/etcd/ssl/server-key.pem.age"),
                "{name} has no sealed key"
            );
            // The .rpm owns the unsealed key's path as a %ghost: no bytes.
            assert!(
                !entries
                    .iter()
                    .any(|e| e.path == "/opt/etcd/ssl/server-key.pem" && !e.ghost),
                "{name} has the key file"
            );
        }
        // The sealed key as it ships, from the .deb's tree.
        let sealed = g
            .out
            .join(format!("nodes/etcd-{i}/opt/etcd/ssl/server-key.pem.age"));
        let own = unseal(&sealed, &g.host_root(&format!("etcd-{i}")));
        assert!(
            own.status.success(),
            "{}",
            String::from_utf8_lossy(&own.stderr)
        );
        assert_eq!(String::from_utf8(own.stdout).unwrap(), keys[i - 1]);
        let neighbour = unseal(&sealed, &g.host_root(&format!("etcd-{}", i % 3 + 1)));
        assert!(
            !neighbour.status.success(),
            "etcd-{i}'s key opened elsewhere"
        );
    }

    // Publishable without --allow-cleartext-keys.
    let repo = g.dir.path().join("repo");
    run_ok(
        etcdpack()
            .arg("publish")
            .arg("--out")
            .arg(&g.out)
            .arg("--repo")
            .arg(&repo)
            .arg("--unsigned")
            .env_remove("ETCDPACK_SIGN_KEY"),
    );

    // A rerun reuses every sealed key: nothing changes.
    let sums = fs::read(g.out.join("SHA256SUMS")).unwrap();
    let again = g.run(&[]);
    assert!(again.status.success(), "{}", support::both(&again));
    let said = support::both(&again);
    assert!(!said.contains("Sealing"), "{said}");
    assert_eq!(fs::read(g.out.join("SHA256SUMS")).unwrap(), sums);

    // A new host key for etcd-2: plan says so, and only etcd-2 changes.
    let config = fs::read_to_string(&g.config).unwrap();
    let old = config
        .lines()
        .find(|l| l.contains("etcd-2,"))
        .unwrap()
        .to_owned();
    let public = g.make_host_key("etcd-2");
    let start = old.find("ssh_host_key: \"").unwrap() + "ssh_host_key: \"".len();
    let end = old[start..].find('"').unwrap() + start;
    let new = format!("{}{public}{}", &old[..start], &old[end..]);
    fs::write(&g.config, config.replace(&old, &new)).unwrap();
    let plan = run_ok(
        etcdpack()
            .arg("plan")
            .arg("-c")
            .arg(&g.config)
            .arg("-o")
            .arg(&g.out)
            .arg("--etcd-sha256")
            .arg(&support::standin().sha256),
    );
    assert!(plan.contains("ssh_host_key changed"), "{plan}");
    g.run_ok(&[]);
    let sealed = g.out.join("nodes/etcd-2/opt/etcd/ssl/server-key.pem.age");
    let own = unseal(&sealed, &g.host_root("etcd-2"));
    assert!(
        own.status.success(),
        "{}",
        String::from_utf8_lossy(&own.stderr)
    );
    assert_eq!(String::from_utf8(own.stdout).unwrap(), keys[1]);
    assert!(
        g.out
            .join("dist/etcd-test-etcd-2_3.4.16-2_amd64.deb")
            .is_file()
    );
    assert!(
        g.out
            .join("dist/etcd-test-etcd-1_3.4.16-1_amd64.deb")
            .is_file()
    );
}

#[test]
fn install_sh_unseals_with_the_right_host_key_and_refuses_another_before_placing_anything() {
    support::require!(
        support::ROOT,
        support::STANDIN,
        support::SSH_KEYGEN,
        support::AGE
    );
    let g = Gen::sealed(&["127.0.0.1", "127.0.0.2", "127.0.0.3"], "formats: [tar]");
    g.run_ok(&[]);
    let work = tempfile::tempdir().unwrap();
    let installer = g.unpack_bundle(1, work.path()).join("install.sh");
    let root_of = |host: &str| {
        let root = work.path().join(format!("root-{host}"));
        support::bare_root(&root);
        fs::create_dir_all(root.join("etc/ssh")).unwrap();
        for f in ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"] {
            fs::copy(
                g.host_root(host).join("etc/ssh").join(f),
                root.join("etc/ssh").join(f),
            )
            .unwrap();
        }
        root
    };

    let right = root_of("etcd-1");
    let out = Command::new(&installer)
        .arg("--root")
        .arg(&right)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = right.join("opt/etcd/ssl/server-key.pem");
    assert_eq!(
        fs::read_to_string(&key).unwrap(),
        fs::read_to_string(g.out.join("pki/nodes/etcd-1-key.pem")).unwrap()
    );
    assert_eq!(support::mode_of(&key) & 0o7777, 0o600);

    let wrong = root_of("etcd-2");
    let out = Command::new(&installer)
        .arg("--root")
        .arg(&wrong)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "installed on the wrong host");
    assert!(
        err.contains("is for node etcd-1")
            && err.contains("SHA256:")
            && err.contains("ssh_host_ed25519_key.pub is another key."),
        "{err}"
    );
    assert!(
        !wrong.join("opt").exists(),
        "files placed before the refusal"
    );
}

/// `verify` on a sealed output: it passes as gen wrote it, and fails when a node's key is in
/// clear beside its sealed copy, in the node's tree or in one of its artifacts (as DER, which
/// no text search for "PRIVATE KEY" finds), naming the node.
#[test]
fn verify_finds_a_sealed_nodes_key_in_clear() {
    support::require!(support::STANDIN, support::SSH_KEYGEN, support::OPENSSL);
    let g = Gen::sealed(&["127.0.0.1"], "formats: [tar]");
    g.run_ok(&[]);
    support::tamper::assert_verify_passes(&g.out);

    let pem = g.out.join("pki/nodes/etcd-1-key.pem");
    let clear = g.out.join("nodes/etcd-1/opt/etcd/ssl/server-key.pem");
    fs::copy(&pem, &clear).unwrap();
    support::tamper::assert_verify_fails(
        &g.out,
        "etcd-1",
        "its key is sealed, and not also in clear",
    );
    fs::remove_file(&clear).unwrap();
    support::tamper::assert_verify_passes(&g.out);

    let der = g.dir.path().join("etcd-1-key.der");
    run_ok(
        Command::new("openssl")
            .args(["pkey", "-outform", "DER", "-in"])
            .arg(&pem)
            .arg("-out")
            .arg(&der),
    );
    let der = fs::read(&der).unwrap();
    let name = support::tamper::artifact_name(&g.out, ".tar.gz");
    let bytes = support::tamper::repack_tarball(
        &artifact(&g, &name),
        &[("opt/etcd/ssl/backup.der".to_owned(), der)],
    );
    support::tamper::substitute(&g.out, &name, &bytes);
    support::tamper::assert_verify_fails(&g.out, &name, "holds etcd-1's key only sealed");
}
