//! One `gen` over HTTP, then everything checked with the real tools: `sha256sum -c`, the
//! modes of pki/, `openssl verify` of every certificate and its names and usages, the staged
//! tree, `tar -tvz` of the bundle, manifest.json, `systemd-analyze verify` and `security`
//! (an exposure of 2.0 or less), and `etcdpack verify`.

use std::fs;
use std::path::Path;

use crate::support::{self, Gen, etcdpack, mode_of, run_ok};

#[test]
fn gen_over_http_then_check_everything_with_real_tools() {
    support::require!(support::STANDIN, support::OPENSSL, support::SYSTEMD_ANALYZE);
    let g = Gen::new(
        &["192.168.0.1", "192.168.0.2", "192.168.0.3"],
        "backup: { enabled: true }\n",
    );
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
    // The backup service makes its directory with the node's mkdir.
    fs::create_dir_all(sroot.join("bin")).unwrap();
    fs::copy("/bin/mkdir", sroot.join("bin/mkdir")).unwrap();
    let v = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", sroot.display()))
        .args([
            "/usr/lib/systemd/system/etcd.service",
            "/usr/lib/systemd/system/etcd-cert-check.service",
            "/usr/lib/systemd/system/etcd-cert-check.timer",
            "/usr/lib/systemd/system/etcd-backup.service",
            "/usr/lib/systemd/system/etcd-backup.timer",
        ])
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
