//! The built binary against a stand-in release served on 127.0.0.1, checked
//! with real tools: openssl, tar, sha256sum, systemd-analyze.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::{COMMANDS, Gen, etcdpack, mode_of, run_ok, standin};

#[test]
fn init_writes_a_valid_example_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cluster.yaml");
    let out = etcdpack().args(["init", "-o"]).arg(&cfg).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        cfg.display().to_string()
    );
    let plan = etcdpack().args(["plan", "-c"]).arg(&cfg).output().unwrap();
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    let again = etcdpack().args(["init", "-o"]).arg(&cfg).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn help_is_complete_for_every_command() {
    for &cmd in COMMANDS {
        let out = etcdpack().args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        insta::assert_snapshot!(format!("help_{cmd}"), text);
    }
    let top = etcdpack().arg("--help").output().unwrap();
    insta::assert_snapshot!("help", String::from_utf8_lossy(&top.stdout));
}

#[test]
fn plan_lists_every_artifact_and_writes_nothing() {
    let g = Gen::new(&["192.168.0.1", "192.168.0.2", "192.168.0.3"], "");
    let out = etcdpack()
        .args(["plan", "-c"])
        .arg(&g.config)
        .arg("-o")
        .arg(&g.out)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let o = g.out.display();
    for want in [
        format!("CA: create {o}/pki/ca.pem"),
        "  issue  nodes/etcd-2 (new CA)".to_owned(),
        "  issue  clients/kube-apiserver (new CA)".to_owned(),
        "+ etcd-3 (192.168.0.3): etcd-test-etcd-3 3.4.16-1 (new)".to_owned(),
        format!("    create  {o}/dist/etcd-test-etcd-1_3.4.16-1_amd64.tar.gz"),
        "Plan (nodes): 3 to add, 0 to change, 0 unchanged, 0 to remove.".to_owned(),
    ] {
        assert!(
            text.lines().any(|l| l == want),
            "missing {want:?} in\n{text}"
        );
    }
    assert!(!g.out.exists(), "plan must not write");
}

#[test]
fn invalid_config_fails_with_position_and_writes_nothing() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["192.168.0.1", "192.168.0.1"], "");
    let out = g.run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:5:", g.config.display())) && err.contains("used twice"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    assert!(!g.out.exists());
}

#[test]
fn gen_over_http_then_check_everything_with_real_tools() {
    support::require!(support::STANDIN, support::OPENSSL, support::SYSTEMD_ANALYZE);
    let g = Gen::new(&["192.168.0.1", "192.168.0.2", "192.168.0.3"], "");
    let out = g.run_ok(&[]);
    let listed: Vec<&str> = out.lines().collect();
    assert_eq!(listed.len(), 3, "{out}");
    for (i, path) in listed.iter().enumerate() {
        assert!(
            path.ends_with(&format!("etcd-test-etcd-{}_3.4.16-1_amd64.tar.gz", i + 1)),
            "{path}"
        );
        assert!(Path::new(path).is_file());
    }
    let o = &g.out;

    // Checksums, as a user would check them.
    run_ok(
        std::process::Command::new("sha256sum")
            .arg("-c")
            .arg("SHA256SUMS")
            .current_dir(o),
    );

    // Modes of the PKI directory.
    assert_eq!(mode_of(&o.join("pki")), 0o700);
    assert_eq!(mode_of(&o.join("pki/ca-key.pem")), 0o600);
    assert_eq!(mode_of(&o.join("pki/nodes/etcd-1-key.pem")), 0o600);
    assert_eq!(mode_of(&o.join("pki/clients/etcdctl-key.pem")), 0o600);

    // Every certificate chains to the CA, per openssl.
    let ca = o.join("pki/ca.pem");
    for leaf in [
        "nodes/etcd-1",
        "nodes/etcd-2",
        "nodes/etcd-3",
        "clients/etcdctl",
        "clients/flannel",
    ] {
        run_ok(
            std::process::Command::new("openssl")
                .arg("verify")
                .arg("-CAfile")
                .arg(&ca)
                .arg(o.join(format!("pki/{leaf}.pem"))),
        );
    }
    let text = run_ok(
        std::process::Command::new("openssl")
            .args(["x509", "-noout", "-text", "-in"])
            .arg(o.join("nodes/etcd-2/opt/etcd/ssl/server.pem")),
    );
    assert!(text.contains("IP Address:192.168.0.2"), "{text}");
    assert!(
        text.contains("DNS:etcd-2") && text.contains("DNS:localhost"),
        "{text}"
    );
    assert!(
        text.contains("TLS Web Server Authentication")
            && text.contains("TLS Web Client Authentication"),
        "{text}"
    );
    let kube = run_ok(
        std::process::Command::new("openssl")
            .args(["x509", "-noout", "-subject", "-in"])
            .arg(o.join("pki/clients/kube-apiserver.pem")),
    );
    assert!(kube.contains("O = system:masters"), "{kube}");

    // The staged tree is what the node gets, and holds no CA key.
    let tree = o.join("nodes/etcd-1");
    for f in [
        "opt/etcd/bin/etcd",
        "opt/etcd/bin/etcdctl",
        "opt/etcd/cfg/etcd.conf",
        "opt/etcd/ssl/ca.pem",
        "opt/etcd/ssl/server.pem",
        "opt/etcd/ssl/server-key.pem",
        "usr/lib/systemd/system/etcd.service",
        "etc/profile.d/etcdctl.sh",
    ] {
        assert!(tree.join(f).is_file(), "missing {f}");
    }
    assert_eq!(mode_of(&tree.join("opt/etcd/ssl/server-key.pem")), 0o600);
    assert_eq!(mode_of(&tree.join("opt/etcd/bin/etcd")), 0o755);
    assert_eq!(
        fs::read(tree.join("opt/etcd/bin/etcd")).unwrap(),
        fs::read("/usr/bin/etcd").unwrap()
    );
    assert_eq!(
        fs::read(tree.join("opt/etcd/ssl/server-key.pem")).unwrap(),
        fs::read(o.join("pki/nodes/etcd-1-key.pem")).unwrap()
    );

    // The tarball, listed by tar itself: owners, modes, no CA key, install.sh.
    let listing = run_ok(
        std::process::Command::new("tar")
            .args(["-tvzf"])
            .arg(listed[0]),
    );
    let top = "etcd-test-etcd-1_3.4.16-1_amd64";
    assert!(
        listing.contains("-rwxr-xr-x root/root") && listing.contains(&format!("{top}/install.sh")),
        "{listing}"
    );
    let key_line = listing
        .lines()
        .find(|l| l.ends_with("/root/opt/etcd/ssl/server-key.pem"))
        .unwrap();
    assert!(key_line.starts_with("-rw------- root/root"), "{key_line}");
    assert!(!listing.contains("ca-key"), "{listing}");
    for line in listing.lines() {
        assert!(line.contains(" root/root "), "{line}");
    }

    // manifest.json agrees with what is on disk.
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(o.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(m["nodes"][1]["ip"], "192.168.0.2");
    let art = &m["nodes"][0]["artifacts"][0];
    let bytes = fs::read(o.join(art["path"].as_str().unwrap())).unwrap();
    assert_eq!(art["size"].as_u64().unwrap(), bytes.len() as u64);
    assert!(
        m["nodes"][0]["cert_not_after"]
            .as_str()
            .unwrap()
            .starts_with("20")
    );

    // systemd accepts the unit, checked inside a copy of the node's tree
    // (so ExecStart resolves) that also has the host's targets.
    let scratch = tempfile::tempdir().unwrap();
    let sroot = scratch.path().join("root");
    run_ok(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&tree)
            .arg(&sroot),
    );
    for t in fs::read_dir("/usr/lib/systemd/system").unwrap() {
        let p = t.unwrap().path();
        if p.extension().is_some_and(|e| e == "target") {
            fs::copy(
                &p,
                sroot
                    .join("usr/lib/systemd/system")
                    .join(p.file_name().unwrap()),
            )
            .unwrap();
        }
    }
    let v = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", sroot.display()))
        .arg("/usr/lib/systemd/system/etcd.service")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&v.stderr);
    assert!(
        v.status.success() && err.trim().is_empty(),
        "systemd-analyze verify: {err}"
    );

    // The unit's sandbox, scored by systemd itself: an exposure of 2.0 or less.
    let unit = tree.join("usr/lib/systemd/system/etcd.service");
    let sec = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&sec.stdout);
    let exposure: f64 = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for etcd.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in: {text}{}",
                String::from_utf8_lossy(&sec.stderr)
            )
        });
    assert!(exposure <= 2.0, "exposure {exposure} > 2.0:\n{text}");

    // verify agrees.
    let v = etcdpack().arg("verify").arg(o).output().unwrap();
    assert!(
        v.status.success(),
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
}

#[test]
fn offline_tarball_and_json_summary() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["10.0.0.1"], "");
    let s = standin();
    let out = g.run_ok(&["--json", "--etcd-tarball", s.path.to_str().unwrap()]);
    let m: serde_json::Value = serde_json::from_str(&out).expect("stdout is one JSON document");
    assert_eq!(m["cluster"], "test");
    assert_eq!(m["etcd"]["sha256"], s.sha256.as_str());

    let wrong = Gen::new(&["10.0.0.1"], "");
    let out = wrong.run_raw(&[
        "--etcd-tarball",
        s.path.to_str().unwrap(),
        "--etcd-sha256",
        &"0".repeat(64),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&s.sha256) && err.contains(&"0".repeat(64)),
        "{err}"
    );
    assert!(
        !wrong.out.exists(),
        "nothing is written when the release does not verify"
    );
}

#[test]
fn rerun_is_byte_identical_and_reuses_the_pki() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["192.168.0.1", "192.168.0.2", "192.168.0.3"], "");
    g.run_ok(&[]);
    let first = fs::read_to_string(g.out.join("SHA256SUMS")).unwrap();
    let ca = fs::read(g.out.join("pki/ca.pem")).unwrap();
    g.run_ok(&[]);
    assert_eq!(fs::read_to_string(g.out.join("SHA256SUMS")).unwrap(), first);
    assert_eq!(fs::read(g.out.join("pki/ca.pem")).unwrap(), ca);

    // Same inputs and the same pki in a fresh output directory: same bytes.
    let other = tempfile::tempdir().unwrap();
    let out2 = other.path().join("out");
    fs::create_dir_all(&out2).unwrap();
    run_ok(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(g.out.join("pki"))
            .arg(&out2),
    );
    g.run_ok_into(&out2, &[]);
    assert_eq!(fs::read_to_string(out2.join("SHA256SUMS")).unwrap(), first);

    // SOURCE_DATE_EPOCH sets every timestamp.
    g.run_ok_env(&[], &[("SOURCE_DATE_EPOCH", "1234567890")]);
    let tgz = g.out.join("dist/etcd-test-etcd-1_3.4.16-1_amd64.tar.gz");
    let listing = run_ok(
        std::process::Command::new("tar")
            .args(["--full-time", "-tvzf"])
            .arg(&tgz),
    );
    assert!(
        listing.lines().all(|l| l.contains("2009-02-13 23:31:30")),
        "{listing}"
    );
}

#[test]
fn changed_tuning_raises_the_release_and_replaces_the_old_artifact() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["192.168.0.1"], "");
    g.run_ok(&[]);
    fs::write(
        &g.config,
        fs::read_to_string(&g.config).unwrap() + "tuning: { quota_backend_bytes: 4GiB }\n",
    )
    .unwrap();
    let out = g.run_ok(&[]);
    assert!(
        out.trim()
            .ends_with("etcd-test-etcd-1_3.4.16-2_amd64.tar.gz"),
        "{out}"
    );
    let names: Vec<_> = fs::read_dir(g.out.join("dist"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn install_sh_places_files_is_idempotent_and_refuses_another_node() {
    support::require!(support::ROOT, support::STANDIN);
    let g = Gen::new(&["192.168.0.1", "192.168.0.2", "192.168.0.3"], "");
    g.run_ok(&[]);
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    fs::write(root.join("etc/gshadow"), "root:*::\n").unwrap();
    for i in 1..=2 {
        let tgz = g
            .out
            .join(format!("dist/etcd-test-etcd-{i}_3.4.16-1_amd64.tar.gz"));
        run_ok(
            std::process::Command::new("tar")
                .arg("-xzf")
                .arg(&tgz)
                .arg("-C")
                .arg(work.path()),
        );
    }
    let installer = |i: u32| {
        work.path()
            .join(format!("etcd-test-etcd-{i}_3.4.16-1_amd64/install.sh"))
    };
    let first = run_ok(
        std::process::Command::new(installer(1))
            .arg("--root")
            .arg(&root),
    );
    assert!(first.contains("installed etcd-test-etcd-1"), "{first}");
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    let etcd_uid: u32 = passwd
        .lines()
        .find(|l| l.starts_with("etcd:"))
        .expect("etcd user created")
        .split(':')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    use std::os::unix::fs::MetadataExt;
    let key = root.join("opt/etcd/ssl/server-key.pem");
    assert_eq!(mode_of(&key), 0o600);
    assert_eq!(fs::metadata(&key).unwrap().uid(), etcd_uid);
    assert_eq!(
        fs::metadata(root.join("opt/etcd/cfg/etcd.conf"))
            .unwrap()
            .uid(),
        0
    );
    let data = root.join("var/lib/etcd/default.etcd");
    assert_eq!(mode_of(&data), 0o700);
    assert_eq!(fs::metadata(&data).unwrap().uid(), etcd_uid);
    assert_eq!(mode_of(&root.join("opt/etcd/bin/etcd")), 0o755);
    assert!(root.join("usr/lib/systemd/system/etcd.service").is_file());

    // Idempotent: a second run changes nothing.
    let before = run_ok(
        std::process::Command::new("find")
            .arg(&root)
            .args(["-printf", "%p %m %U %s %T@\n"]),
    );
    run_ok(
        std::process::Command::new(installer(1))
            .arg("--root")
            .arg(&root),
    );
    let after = run_ok(
        std::process::Command::new("find")
            .arg(&root)
            .args(["-printf", "%p %m %U %s %T@\n"]),
    );
    assert_eq!(before, after);

    // Another node's bundle refuses to overwrite this install.
    let other = std::process::Command::new(installer(2))
        .arg("--root")
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(1));
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("etcd-1") && err.contains("refusing"), "{err}");
    assert!(
        fs::read_to_string(root.join("opt/etcd/cfg/etcd.conf"))
            .unwrap()
            .contains("ETCD_NAME=etcd-1\n")
    );
}

#[test]
fn a_cache_filled_by_fetch_makes_gen_work_without_a_network() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["10.0.0.1"], "");
    let s = standin();
    let server = support::HttpServer::serve_file(
        &format!("/v{0}/etcd-v{0}-linux-{1}.tar.gz", s.version, s.arch),
        &s.path,
    );
    let mirror = server.base_url.clone();
    let fetched = run_ok(
        etcdpack()
            .args(["fetch", "-c"])
            .arg(&g.config)
            .args([
                "--mirror",
                &mirror,
                "--etcd-sha256",
                &s.sha256,
                "--cache-dir",
            ])
            .arg(&g.cache),
    );
    assert!(Path::new(fetched.trim()).starts_with(&g.cache), "{fetched}");
    assert_eq!(server.hits(), 1);
    drop(server);

    // The mirror is gone: only the cache can serve the release now.
    let out = g.run_raw(&["--mirror", &mirror, "--etcd-sha256", &s.sha256]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(g.out.join("SHA256SUMS").is_file());
}

/// Every directory of the output is 0700 and every package (each holds a
/// node key) 0600, whatever the umask; an existing directory is made private.
#[test]
fn the_output_is_private_whatever_the_umask() {
    support::require!(support::STANDIN);
    let g = Gen::new(
        &["10.0.0.1", "10.0.0.2"],
        "packages: { formats: [tar, deb, rpm] }\n",
    );
    fs::create_dir(&g.out).unwrap();
    fs::set_permissions(&g.out, fs::Permissions::from_mode(0o755)).unwrap();
    let out = g.run_with_umask("000", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o = &g.out;
    for d in [
        "",
        "pki",
        "pki/nodes",
        "pki/clients",
        "nodes",
        "nodes/etcd-1",
        "nodes/etcd-2",
        "dist",
    ] {
        assert_eq!(mode_of(&o.join(d)), 0o700, "{d}/");
    }
    let packages: Vec<_> = fs::read_dir(o.join("dist"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(packages.len(), 6, "{packages:?}");
    for p in &packages {
        assert_eq!(mode_of(p), 0o600, "{}", p.display());
    }
    assert_eq!(mode_of(&o.join("pki/ca-key.pem")), 0o600);
    assert_eq!(mode_of(&o.join("pki/nodes/etcd-1-key.pem")), 0o600);
    // A rerun under the same umask keeps it so.
    let again = g.run_with_umask("000", &[]);
    assert!(again.status.success());
    for p in &packages {
        assert_eq!(mode_of(p), 0o600, "{}", p.display());
    }
}

/// `gen` removes only what an earlier run recorded in its manifest: a file of
/// the user's in `dist/` or `nodes/` survives, and a directory that is not
/// etcdpack's is refused unless `--force`, which still removes nothing.
#[test]
fn gen_removes_only_what_it_wrote() {
    support::require!(support::STANDIN);
    // A directory of the user's: refused, untouched.
    let g = Gen::new(&["10.0.0.1"], "");
    fs::create_dir_all(g.out.join("dist")).unwrap();
    fs::create_dir_all(g.out.join("nodes/notes")).unwrap();
    fs::write(g.out.join("dist/keep.txt"), "mine").unwrap();
    fs::write(g.out.join("nodes/notes/todo"), "mine").unwrap();
    fs::write(g.out.join("README"), "mine").unwrap();
    let out = g.run(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&g.out.display().to_string())
            && err.contains("holds no manifest.json")
            && err.contains("--force"),
        "{err}"
    );
    assert!(!g.out.join("pki").exists() && !g.out.join(".etcdpack.lock").exists());

    // --force writes beside them and removes none of them.
    g.run_ok(&["--force"]);
    for f in ["dist/keep.txt", "nodes/notes/todo", "README"] {
        assert_eq!(fs::read_to_string(g.out.join(f)).unwrap(), "mine", "{f}");
    }

    // A superseded artifact and a removed node's tree go; the user's stay.
    let two = Gen::new(&["10.0.0.1", "10.0.0.2"], "");
    two.run_ok(&[]);
    fs::write(two.out.join("dist/keep.txt"), "mine").unwrap();
    fs::create_dir_all(two.out.join("nodes/notes")).unwrap();
    let old = two.out.join("dist/etcd-test-etcd-2_3.4.16-1_amd64.tar.gz");
    assert!(old.is_file());
    let yaml = fs::read_to_string(&two.config).unwrap();
    fs::write(
        &two.config,
        yaml.replace("  - { name: etcd-2, ip: \"10.0.0.2\" }\n", ""),
    )
    .unwrap();
    two.run_ok(&[]);
    assert!(!old.exists());
    assert!(!two.out.join("nodes/etcd-2").exists());
    assert_eq!(
        fs::read_to_string(two.out.join("dist/keep.txt")).unwrap(),
        "mine"
    );
    assert!(two.out.join("nodes/notes").is_dir());

    // A manifest edited to aim elsewhere removes nothing outside its own names.
    let outside = two.dir.path().join("precious");
    fs::write(&outside, "mine").unwrap();
    let manifest = two.out.join("manifest.json");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        text.replace("\"tree\": \"nodes/etcd-1\"", "\"tree\": \"../precious\""),
    )
    .unwrap();
    two.run_ok(&[]);
    assert_eq!(fs::read_to_string(&outside).unwrap(), "mine");
}

/// The official 3.4.16 amd64 checksum, pinned in etcdpack.
const PINNED_3_4_16_AMD64: &str =
    "2e2d5b3572e077e7641193ed07b4929b0eaf0dc2f9463e9b677765528acafb89";

/// stderr of a successful `plan` of a one-node cluster with `etcd` as the
/// config's etcd section.
fn plan_stderr(etcd: &str) -> String {
    let g = Gen::new(&["127.0.0.1"], etcd);
    let out = etcdpack()
        .args(["plan", "-c"])
        .arg(&g.config)
        .arg("-o")
        .arg(&g.out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[test]
fn replacing_a_pinned_checksum_is_warned_about() {
    support::require!(support::STANDIN);
    let other = "ab".repeat(32);
    let stderr = plan_stderr(&format!(
        "etcd: {{ version: 3.4.16, arch: amd64, sha256: \"{other}\" }}\n"
    ));
    let warning = stderr
        .lines()
        .position(|l| l.starts_with("warning:") && l.contains("etcd.sha256"))
        .unwrap_or_else(|| panic!("no warning about etcd.sha256:\n{stderr}"));
    let text = stderr
        .lines()
        .skip(warning)
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("cluster.yaml")
            && text.contains(&other)
            && text.contains(PINNED_3_4_16_AMD64),
        "{text}"
    );
    assert!(text.contains("help: remove etcd.sha256"), "{text}");

    // The pinned value itself, or a release without a pin, is no replacement.
    for etcd in [
        format!(
            "etcd: {{ version: 3.4.16, sha256: \"{}\" }}\n",
            PINNED_3_4_16_AMD64.to_uppercase()
        ),
        format!("etcd: {{ version: 3.5.0, sha256: \"{other}\" }}\n"),
    ] {
        let stderr = plan_stderr(&etcd);
        assert!(!stderr.contains("warning"), "{etcd}: {stderr}");
    }

    // --etcd-sha256 replacing the pin says so, and how to undo it.
    let g = Gen::new(&["127.0.0.1"], "");
    let s = standin();
    let out = etcdpack()
        .args(["fetch", "-c"])
        .arg(&g.config)
        .arg("--cache-dir")
        .arg(&g.cache)
        .arg("--etcd-tarball")
        .arg(&s.path)
        .args(["--etcd-sha256", &s.sha256])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning:")
            && stderr.contains(&format!("--etcd-sha256 {}", s.sha256))
            && stderr.contains(PINNED_3_4_16_AMD64)
            && stderr.contains("help: drop --etcd-sha256"),
        "{stderr}"
    );
}
