//! Artifact hygiene: unpacked with the real tools (tar, dpkg-deb, rpm2cpio | cpio), no
//! artifact and no staged tree holds the CA key, and each node gets its own key and no other
//! node's; every private key is 0600 in every format and under pki/; and no command ever
//! prints a key, not even one line of one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::support::scan::{body, body_lines, contains, files, holders, strip_ws};
use crate::support::tamper::{FORMATS, artifacts, ca_key};
use crate::support::{self, Gen, etcdpack, mode_of, run_ok};

/// One `gen --formats tar,deb,rpm -v --json` of a two-node cluster, shared
/// by the tests that only read it.
struct Generated {
    g: Gen,
    stdout: String,
    stderr: String,
}

fn generated() -> &'static Generated {
    static G: OnceLock<Generated> = OnceLock::new();
    G.get_or_init(|| {
        let g = Gen::new(&["127.0.0.1", "127.0.0.2"], "");
        let out = g.run(&["-v", "--json", "--formats", FORMATS]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        Generated {
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr,
            g,
        }
    })
}

/// Every private key etcdpack wrote, CA first.
fn all_keys(out: &Path) -> Vec<(PathBuf, String)> {
    files(&out.join("pki"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("-key.pem"))
        .map(|p| {
            let text = fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

/// Unpack `artifact` into `dest` with the format's own tools: the tarball
/// with tar, the .deb's data and control with dpkg-deb, the .rpm's payload
/// with rpm2cpio and cpio (its scripts with `rpm -qp --scripts`).
fn unpack(artifact: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    let name = artifact.to_string_lossy();
    if name.ends_with(".tar.gz") {
        run_ok(
            Command::new("tar")
                .arg("-xzf")
                .arg(artifact)
                .arg("-C")
                .arg(dest),
        );
    } else if name.ends_with(".deb") {
        run_ok(
            Command::new("dpkg-deb")
                .arg("-x")
                .arg(artifact)
                .arg(dest.join("data")),
        );
        run_ok(
            Command::new("dpkg-deb")
                .arg("-e")
                .arg(artifact)
                .arg(dest.join("control")),
        );
    } else if name.ends_with(".rpm") {
        let mut rpm2cpio = Command::new("rpm2cpio")
            .arg(artifact)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let payload = dest.join("payload");
        fs::create_dir_all(&payload).unwrap();
        let status = Command::new("cpio")
            .args(["-idm", "--quiet", "--no-absolute-filenames"])
            .current_dir(&payload)
            .stdin(rpm2cpio.stdout.take().unwrap())
            .status()
            .unwrap();
        // rpm2cpio (4.18) exits 1 after writing the whole payload when the
        // header has no archive size, which the rpm crate does not write; so
        // its status is not the check: cpio's is, and the count of files.
        rpm2cpio.wait().unwrap();
        assert!(status.success(), "cpio failed on {name}");
        let modes = run_ok(
            Command::new("rpm")
                .args(["-qp", "--qf", "[%{FILEMODES:perms}\\n]"])
                .arg(artifact),
        );
        let regular = modes.lines().filter(|l| l.starts_with('-')).count();
        assert_eq!(files(&payload).len(), regular, "{name}: payload incomplete");
        let scripts = run_ok(Command::new("rpm").args(["-qp", "--scripts"]).arg(artifact));
        fs::write(dest.join("scripts"), scripts).unwrap();
    } else {
        panic!("unknown artifact {name}");
    }
}

/// The listing lines of private keys, from each format's own lister.
fn key_lines(artifact: &Path) -> Vec<String> {
    let name = artifact.to_string_lossy();
    let listing = if name.ends_with(".tar.gz") {
        run_ok(Command::new("tar").arg("-tvzf").arg(artifact))
    } else if name.ends_with(".deb") {
        run_ok(Command::new("dpkg-deb").arg("-c").arg(artifact))
    } else {
        run_ok(Command::new("rpm").arg("-qlvp").arg(artifact))
    };
    listing
        .lines()
        .filter(|l| l.contains("-key.pem") || l.contains("PRIVATE"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn no_artifact_or_staged_tree_holds_the_ca_key() {
    support::require!(
        support::STANDIN,
        support::DPKG_DEB,
        support::RPM,
        support::RPM2CPIO,
        support::CPIO
    );
    let gen_ = generated();
    let out = &gen_.g.out;
    let ca = ca_key(out);
    assert!(ca.contains("PRIVATE KEY"), "{ca}");
    // The scanner finds the key where it is, so "not found" below means something.
    assert_eq!(
        holders(&out.join("pki"), &ca),
        vec![out.join("pki/ca-key.pem")]
    );

    let arts = artifacts(out);
    assert_eq!(arts.len(), 6, "{arts:?}");
    let scratch = tempfile::tempdir().unwrap();
    for (i, art) in arts.iter().enumerate() {
        let dest = scratch.path().join(i.to_string());
        unpack(art, &dest);
        let unpacked = files(&dest);
        assert!(unpacked.len() >= 8, "{}: {unpacked:?}", art.display());
        assert!(
            unpacked
                .iter()
                .any(|f| f.ends_with("opt/etcd/ssl/server-key.pem")),
            "{}: no node key unpacked: {unpacked:?}",
            art.display()
        );
        assert_eq!(
            holders(&dest, &ca),
            Vec::<PathBuf>::new(),
            "{}",
            art.display()
        );
        assert!(
            !unpacked.iter().any(|f| f.ends_with("ca-key.pem")),
            "{}",
            art.display()
        );
        // And the artifact's own bytes (headers, uncompressed members).
        let raw = fs::read(art).unwrap();
        assert!(!contains(&strip_ws(&raw), body(&ca).as_bytes()));
    }
    for node in ["etcd-1", "etcd-2"] {
        let tree = out.join("nodes").join(node);
        assert!(tree.join("opt/etcd/ssl/ca.pem").is_file());
        assert_eq!(holders(&tree, &ca), Vec::<PathBuf>::new(), "{node}");
    }
    // Each node gets its own key and no other node's.
    let k1 = fs::read_to_string(out.join("pki/nodes/etcd-1-key.pem")).unwrap();
    assert_eq!(
        holders(&out.join("nodes/etcd-2"), &k1),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn every_private_key_is_0600_in_every_format_and_in_pki() {
    support::require!(support::STANDIN, support::DPKG_DEB, support::RPM);
    let gen_ = generated();
    let out = &gen_.g.out;
    for dir in ["pki", "pki/nodes", "pki/clients"] {
        assert_eq!(mode_of(&out.join(dir)), 0o700, "{dir}");
    }
    let keys = all_keys(out);
    // CA, two nodes, three clients.
    assert_eq!(keys.len(), 6, "{keys:?}");
    for (path, _) in &keys {
        assert_eq!(mode_of(path), 0o600, "{}", path.display());
    }
    for node in ["etcd-1", "etcd-2"] {
        let key = out
            .join("nodes")
            .join(node)
            .join("opt/etcd/ssl/server-key.pem");
        assert_eq!(mode_of(&key), 0o600, "{}", key.display());
    }
    for art in artifacts(out) {
        let lines = key_lines(&art);
        assert_eq!(lines.len(), 1, "{}: {lines:?}", art.display());
        for l in &lines {
            assert!(l.starts_with("-rw------- "), "{}: {l}", art.display());
            assert!(l.ends_with("opt/etcd/ssl/server-key.pem"), "{l}");
        }
        if art.to_string_lossy().ends_with(".rpm") {
            // The service user owns it in the header; nobody else reads it.
            assert!(lines[0].contains(" etcd "), "{}", lines[0]);
        }
    }
}

/// No key is ever printed: not its PEM, not one line of its body.
fn assert_no_key_in(what: &str, text: &str, keys: &[(PathBuf, String)]) {
    assert!(
        !text.contains("PRIVATE KEY"),
        "{what} prints a key:\n{text}"
    );
    let flat = strip_ws(text.as_bytes());
    for (path, key) in keys {
        for line in body_lines(key) {
            assert!(
                !text.contains(&line),
                "{what} prints a line of {}:\n{text}",
                path.display()
            );
        }
        assert!(
            !contains(&flat, body(key).as_bytes()),
            "{what} prints {}",
            path.display()
        );
    }
}

#[test]
fn the_tool_never_prints_a_key() {
    support::require!(support::STANDIN);
    let gen_ = generated();
    let g = &gen_.g;
    let keys = all_keys(&g.out);
    assert!(gen_.stderr.contains("Issuing"), "{}", gen_.stderr);
    assert_no_key_in(
        "gen -v --json",
        &(gen_.stdout.clone() + &gen_.stderr),
        &keys,
    );

    let mut runs = Vec::new();
    for json in [false, true] {
        let mut plan = etcdpack();
        plan.args(["-v", "plan", "-c"])
            .arg(&g.config)
            .arg("-o")
            .arg(&g.out);
        plan.args(["--formats", FORMATS]);
        let mut verify = etcdpack();
        verify.args(["verify", "-v"]).arg(&g.out);
        if json {
            plan.arg("--json");
            verify.arg("--json");
        }
        runs.push((format!("plan (json: {json})"), plan.output().unwrap()));
        runs.push((format!("verify (json: {json})"), verify.output().unwrap()));
    }
    // A rerun takes the reuse path, which reads every key back. It runs on a
    // copy: the other tests read the shared output meanwhile.
    let copy = tempfile::tempdir().unwrap();
    run_ok(Command::new("cp").arg("-a").arg(&g.out).arg(copy.path()));
    let s = support::standin();
    let mut rerun = etcdpack();
    rerun.args(["-v", "gen", "-c"]).arg(&g.config);
    rerun.arg("-o").arg(copy.path().join("out"));
    rerun.arg("--cache-dir").arg(&g.cache);
    rerun.args(["--mirror", support::mirror(), "--etcd-sha256", &s.sha256]);
    rerun.args(["--formats", FORMATS]);
    runs.push(("gen -v rerun".into(), rerun.output().unwrap()));
    for (what, o) in runs {
        let text =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{what}: {text}");
        assert_no_key_in(&what, &text, &keys);
    }
}
