//! Secrets: the CA key stays in `OUT/pki`, every private key is 0600 in
//! every format, and the tool never prints a key. Artifacts are unpacked
//! with the real tools (tar, dpkg-deb, rpm2cpio | cpio) and every byte is
//! searched, and `etcdpack verify` must catch a CA key planted in any format
//! — and fail, never pass, on an artifact it cannot read.

mod support;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use support::{Gen, etcdpack, mode_of, run_ok};

const FORMATS: &str = "tar,deb,rpm";

/// The base64 body of a PEM text, on one line.
fn body(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
}

/// The base64 lines of a PEM text (each 64 characters but maybe the last).
fn body_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_owned)
        .collect()
}

fn strip_ws(data: &[u8]) -> Vec<u8> {
    data.iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every regular file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Files under `dir` holding the body of `key` (whitespace ignored, so a
/// re-wrapped key is found too).
fn holders(dir: &Path, key: &str) -> Vec<PathBuf> {
    let needle = body(key).into_bytes();
    files(dir)
        .into_iter()
        .filter(|f| contains(&strip_ws(&fs::read(f).unwrap()), &needle))
        .collect()
}

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

fn ca_key(out: &Path) -> String {
    fs::read_to_string(out.join("pki/ca-key.pem")).unwrap()
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

fn artifacts(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(out.join("dist"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
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

// ------------------------------------------------ verify catches a plant

/// A finished one-node output with every format (ECDSA keys), copied per case.
fn fresh_output() -> (tempfile::TempDir, PathBuf) {
    static BASE: OnceLock<Gen> = OnceLock::new();
    copy_of(BASE.get_or_init(|| base_output("")))
}

/// The same with RSA keys.
fn fresh_rsa_output() -> (tempfile::TempDir, PathBuf) {
    static BASE: OnceLock<Gen> = OnceLock::new();
    copy_of(BASE.get_or_init(|| base_output("pki: { algorithm: rsa-2048 }\n")))
}

fn base_output(extra: &str) -> Gen {
    let g = Gen::new(&["127.0.0.1"], extra);
    g.run_ok(&["--formats", FORMATS]);
    g
}

fn copy_of(base: &Gen) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    run_ok(Command::new("cp").arg("-a").arg(&base.out).arg(dir.path()));
    let out = dir.path().join("out");
    (dir, out)
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Replace the artifact `name` under dist/ by `bytes` and bring
/// manifest.json and SHA256SUMS up to date, as someone covering their tracks
/// would: the only thing wrong is then what is inside.
fn substitute(out: &Path, name: &str, bytes: &[u8]) {
    let rel = format!("dist/{name}");
    fs::write(out.join(&rel), bytes).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let mut sums = Vec::new();
    for a in m["nodes"][0]["artifacts"].as_array_mut().unwrap() {
        if a["path"] == rel.as_str() {
            a["sha256"] = sha256(bytes).into();
            a["size"] = (bytes.len() as u64).into();
        }
        sums.push(format!(
            "{}  {}\n",
            a["sha256"].as_str().unwrap(),
            a["path"].as_str().unwrap()
        ));
    }
    sums.sort();
    fs::write(out.join("SHA256SUMS"), sums.concat()).unwrap();
    let mut json = serde_json::to_vec_pretty(&m).unwrap();
    json.push(b'\n');
    fs::write(out.join("manifest.json"), json).unwrap();
}

fn artifact_name(out: &Path, suffix: &str) -> String {
    artifacts(out)
        .into_iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .find(|n| n.ends_with(suffix))
        .unwrap()
}

/// `verify` on `out`: it must fail (exit 3) with a FAIL line naming `name`
/// and containing `why`; every other check must still pass.
fn assert_verify_fails(out: &Path, name: &str, why: &str) {
    let o = etcdpack().arg("verify").arg(out).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(3), "{name}:\n{stdout}{stderr}");
    let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        !failed.is_empty() && failed.iter().all(|l| l.contains(name)),
        "{name}: {failed:?}\n{stdout}"
    );
    assert!(
        failed.iter().any(|l| l.contains(why)),
        "{name}: no FAIL line with {why:?}:\n{stdout}"
    );
    assert!(stderr.contains(name), "{stderr}");
}

fn assert_verify_passes(out: &Path) {
    let o = etcdpack().arg("verify").arg(out).output().unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The bundle re-packed with `extra` (path, data) entries appended.
fn repack_tarball(bytes: &[u8], extra: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut src = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut dst = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut top = String::new();
    for e in src.entries().unwrap() {
        let mut e = e.unwrap();
        let mut header = e.header().clone();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        if top.is_empty() {
            top = path.trim_end_matches('/').to_owned();
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        dst.append_data(&mut header, &path, &data[..]).unwrap();
    }
    for (path, data) in extra {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        dst.append_data(&mut h, format!("{top}/{path}"), &data[..])
            .unwrap();
    }
    dst.into_inner().unwrap().finish().unwrap()
}

#[test]
fn verify_catches_a_ca_key_planted_in_a_tarball() {
    support::require!(support::STANDIN);
    for (case, path) in [
        ("installed", "root/opt/etcd/ssl/ca-key.pem"),
        ("beside the installer", "notes.txt"),
    ] {
        let (_dir, out) = fresh_output();
        assert_verify_passes(&out);
        let ca = ca_key(&out);
        let name = artifact_name(&out, ".tar.gz");
        let bytes = fs::read(out.join("dist").join(&name)).unwrap();
        let planted = repack_tarball(&bytes, &[(path.to_owned(), ca.into_bytes())]);
        substitute(&out, &name, &planted);
        eprintln!("case: {case}");
        assert_verify_fails(&out, &name, "does not contain the CA key");
    }
}

/// Re-pack the .deb with dpkg-deb itself, after `edit` changed its tree.
fn repack_deb(out: &Path, name: &str, edit: impl FnOnce(&Path)) -> Vec<u8> {
    let scratch = tempfile::tempdir().unwrap();
    let tree = scratch.path().join("tree");
    run_ok(
        Command::new("dpkg-deb")
            .arg("-R")
            .arg(out.join("dist").join(name))
            .arg(&tree),
    );
    edit(&tree);
    let deb = scratch.path().join("new.deb");
    run_ok(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "-b"])
            .arg(&tree)
            .arg(&deb),
    );
    fs::read(deb).unwrap()
}

#[test]
fn verify_catches_a_ca_key_planted_in_a_deb() {
    support::require!(support::STANDIN, support::DPKG_DEB);
    // In the data the package installs.
    let (_dir, out) = fresh_output();
    let ca = ca_key(&out);
    let name = artifact_name(&out, ".deb");
    let planted = repack_deb(&out, &name, |tree| {
        fs::write(tree.join("opt/etcd/ssl/ca-key.pem"), &ca).unwrap();
    });
    substitute(&out, &name, &planted);
    eprintln!("case: data");
    assert_verify_fails(&out, &name, "does not contain the CA key");

    // In the control member, where a maintainer script would carry it.
    let (_dir, out) = fresh_output();
    let ca = ca_key(&out);
    let planted = repack_deb(&out, &name, |tree| {
        let postinst = tree.join("DEBIAN/postinst");
        let script = fs::read_to_string(&postinst).unwrap();
        let script = script.replacen(
            '\n',
            &format!("\ncat > /root/ca-key.pem <<'EOF'\n{ca}EOF\n"),
            1,
        );
        fs::write(&postinst, script).unwrap();
    });
    substitute(&out, &name, &planted);
    assert_verify_fails(&out, &name, "does not contain the CA key");
}

/// The .rpm `name` re-built with the rpm crate, its regular files and
/// `extra` (absolute path, data, mode) added.
fn repack_rpm(out: &Path, name: &str, extra: &[(&str, Vec<u8>, u16)]) -> Vec<u8> {
    let original =
        rpm::Package::parse(&mut &fs::read(out.join("dist").join(name)).unwrap()[..]).unwrap();
    let mut b = rpm::PackageBuilder::new("etcd-test-etcd-1", "3.4.16", "Apache-2.0", "x86_64", "x");
    b.using_config(rpm::BuildConfig::default().compression(rpm::CompressionType::Gzip));
    for f in original.files().unwrap() {
        let f = f.unwrap();
        if f.metadata.file_type() != rpm::FileType::Regular {
            continue;
        }
        let path = f.metadata.path().to_string_lossy().into_owned();
        let mode = f.metadata.permissions();
        b.with_file_contents(
            f.into_content().unwrap_or_default(),
            rpm::FileOptions::new(path).permissions(mode),
        )
        .unwrap();
    }
    for (path, data, mode) in extra {
        b.with_file_contents(
            data.clone(),
            rpm::FileOptions::new(*path).permissions(*mode),
        )
        .unwrap();
    }
    let mut planted = Vec::new();
    b.build().unwrap().write(&mut planted).unwrap();
    // The real tools agree the files are inside, compressed.
    let scratch = tempfile::tempdir().unwrap();
    let rpm_path = scratch.path().join("planted.rpm");
    fs::write(&rpm_path, &planted).unwrap();
    let listing = run_ok(Command::new("rpm").arg("-qlp").arg(&rpm_path));
    for (path, _, _) in extra {
        assert!(listing.contains(path), "{listing}");
    }
    planted
}

#[test]
fn verify_catches_a_ca_key_planted_in_an_rpm() {
    support::require!(support::STANDIN, support::RPM);
    let (_dir, out) = fresh_output();
    let ca = ca_key(&out);
    let name = artifact_name(&out, ".rpm");
    let planted = repack_rpm(
        &out,
        &name,
        &[("/opt/etcd/ssl/ca-key.pem", ca.into_bytes(), 0o600)],
    );
    substitute(&out, &name, &planted);
    assert_verify_fails(&out, &name, "does not contain the CA key");
}

#[test]
fn verify_fails_on_an_artifact_it_cannot_read() {
    support::require!(support::STANDIN, support::DPKG_DEB);
    for (suffix, why) in [(".deb", "readable as deb"), (".rpm", "readable as rpm")] {
        let (_dir, out) = fresh_output();
        let name = artifact_name(&out, suffix);
        let bytes = fs::read(out.join("dist").join(&name)).unwrap();
        // Cut in half: the checksums are updated, so only reading can tell.
        substitute(&out, &name, &bytes[..bytes.len() / 2]);
        assert_verify_fails(&out, &name, why);
    }
    // A .deb whose data member is in a compression verify cannot read (xz,
    // dpkg-deb's default) must not pass unscanned.
    let (_dir, out) = fresh_output();
    let name = artifact_name(&out, ".deb");
    let scratch = tempfile::tempdir().unwrap();
    let tree = scratch.path().join("tree");
    run_ok(
        Command::new("dpkg-deb")
            .arg("-R")
            .arg(out.join("dist").join(&name))
            .arg(&tree),
    );
    let deb = scratch.path().join("xz.deb");
    run_ok(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "-b"])
            .arg(&tree)
            .arg(&deb),
    );
    substitute(&out, &name, &fs::read(&deb).unwrap());
    assert_verify_fails(&out, &name, "readable as deb");
}

// ------------------------------------- verify knows the key in any encoding

/// `key_file` re-encoded by `openssl <args>` (the key on stdout).
fn openssl(key_file: &Path, args: &[&str]) -> Vec<u8> {
    let o = Command::new("openssl")
        .args(args)
        .arg("-in")
        .arg(key_file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// The encodings openssl gives an ECDSA key: PKCS#8 and SEC1, PEM and DER.
const EC_ENCODINGS: &[(&str, &[&str])] = &[
    ("pkcs8-pem", &["pkey"]),
    ("pkcs8-der", &["pkey", "-outform", "DER"]),
    ("sec1-pem", &["ec"]),
    ("sec1-der", &["ec", "-outform", "DER"]),
];

/// The encodings openssl gives an RSA key: PKCS#8 and PKCS#1, PEM and DER.
const RSA_ENCODINGS: &[(&str, &[&str])] = &[
    ("pkcs8-pem", &["pkey"]),
    ("pkcs8-der", &["pkey", "-outform", "DER"]),
    ("pkcs1-pem", &["rsa", "-traditional"]),
    ("pkcs1-der", &["rsa", "-traditional", "-outform", "DER"]),
];

/// The key file `key` under pki/ in each encoding, each checked by openssl
/// to be the same key. PKCS#8 is what etcdpack writes; the traditional
/// encodings (PKCS#1, SEC1) share no bytes with it that a search could find.
fn reencoded(out: &Path, key: &str, encodings: &[(&str, &[&str])]) -> Vec<(String, Vec<u8>)> {
    let file = out.join("pki").join(key);
    let original = fs::read(&file).unwrap();
    let modulus = |data: &[u8]| {
        let scratch = tempfile::NamedTempFile::new().unwrap();
        fs::write(scratch.path(), data).unwrap();
        let form = if data.starts_with(b"-----") {
            "PEM"
        } else {
            "DER"
        };
        openssl(scratch.path(), &["pkey", "-pubout", "-inform", form])
    };
    let public = modulus(&original);
    encodings
        .iter()
        .map(|(what, args)| {
            let bytes = openssl(&file, args);
            if !what.starts_with("pkcs8") {
                assert_ne!(bytes, original, "{what}");
            }
            assert_eq!(modulus(&bytes), public, "{what}: not the same key");
            (what.to_string(), bytes)
        })
        .collect()
}

#[test]
fn verify_knows_the_ca_key_in_every_encoding_in_a_tarball() {
    support::require!(support::STANDIN, support::OPENSSL);
    for (fresh, encodings) in [
        (fresh_output as fn() -> _, EC_ENCODINGS),
        (fresh_rsa_output, RSA_ENCODINGS),
    ] {
        let (_dir, out) = fresh();
        for (what, bytes) in reencoded(&out, "ca-key.pem", encodings) {
            let (_dir, out) = copy_of_dir(&out);
            let name = artifact_name(&out, ".tar.gz");
            let tarball = fs::read(out.join("dist").join(&name)).unwrap();
            // Neither under root/ nor named like a key.
            let planted = repack_tarball(&tarball, &[("backup.bin".to_owned(), bytes)]);
            substitute(&out, &name, &planted);
            eprintln!("case: {what}");
            assert_verify_fails(&out, &name, "does not contain the CA key");
        }
    }
}

#[test]
fn verify_knows_the_ca_key_re_encoded_in_a_deb_an_rpm_and_a_node_tree() {
    support::require!(
        support::STANDIN,
        support::OPENSSL,
        support::DPKG_DEB,
        support::RPM
    );
    let (_dir, base) = fresh_output();
    let keys = reencoded(&base, "ca-key.pem", EC_ENCODINGS);
    let key = |what: &str| keys.iter().find(|(w, _)| w == what).unwrap().1.clone();

    // SEC1 DER in the control member of the .deb, beside the scripts.
    let (_dir, out) = copy_of_dir(&base);
    let name = artifact_name(&out, ".deb");
    let planted = repack_deb(&out, &name, |tree| {
        fs::write(tree.join("DEBIAN/extra"), key("sec1-der")).unwrap();
    });
    substitute(&out, &name, &planted);
    eprintln!("case: deb control");
    assert_verify_fails(&out, &name, "does not contain the CA key");

    // SEC1 PEM in the data member.
    let (_dir, out) = copy_of_dir(&base);
    let planted = repack_deb(&out, &name, |tree| {
        fs::write(tree.join("opt/etcd/ssl/extra.txt"), key("sec1-pem")).unwrap();
    });
    substitute(&out, &name, &planted);
    eprintln!("case: deb data");
    assert_verify_fails(&out, &name, "does not contain the CA key");

    // PKCS#8 DER in the .rpm's payload.
    let (_dir, out) = copy_of_dir(&base);
    let name = artifact_name(&out, ".rpm");
    let planted = repack_rpm(&out, &name, &[("/opt/etcd/extra", key("pkcs8-der"), 0o644)]);
    substitute(&out, &name, &planted);
    eprintln!("case: rpm payload");
    assert_verify_fails(&out, &name, "does not contain the CA key");

    // SEC1 PEM in a staged node tree (no artifact changes).
    let (_dir, out) = copy_of_dir(&base);
    fs::write(out.join("nodes/etcd-1/opt/etcd/notes"), key("sec1-pem")).unwrap();
    eprintln!("case: node tree");
    assert_verify_fails(&out, "nodes/etcd-1", "does not contain the CA key");
}

#[test]
fn verify_does_not_take_a_node_key_for_the_ca_key() {
    support::require!(support::STANDIN, support::OPENSSL);
    // The control: the same plants with the node's own key, which the
    // artifacts carry anyway, are no CA key.
    for (fresh, encodings) in [
        (fresh_output as fn() -> _, EC_ENCODINGS),
        (fresh_rsa_output, RSA_ENCODINGS),
    ] {
        let (_dir, base) = fresh();
        let keys = reencoded(&base, "nodes/etcd-1-key.pem", encodings);
        let (_dir, out) = copy_of_dir(&base);
        let name = artifact_name(&out, ".tar.gz");
        let tarball = fs::read(out.join("dist").join(&name)).unwrap();
        let extra: Vec<_> = keys
            .iter()
            .map(|(what, bytes)| (format!("backup-{what}"), bytes.clone()))
            .collect();
        substitute(&out, &name, &repack_tarball(&tarball, &extra));
        fs::write(
            out.join("nodes/etcd-1/opt/etcd/notes"),
            &keys.iter().find(|(w, _)| w.ends_with("pem")).unwrap().1,
        )
        .unwrap();
        assert_verify_passes(&out);
    }
}

/// A copy of the output directory `out`.
fn copy_of_dir(out: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(out)
            .arg(dir.path().join("out")),
    );
    let out = dir.path().join("out");
    (dir, out)
}

// ------------------------------- verify reads nothing outside its directory

/// Add an artifact at `path` (as SHA256SUMS and manifest.json spell it)
/// with the hash and size of `real`, the file it resolves to, so that the
/// records agree and only the path itself is wrong.
fn record_artifact(out: &Path, path: &str, real: &Path) {
    let bytes = fs::read(real).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let arts = m["nodes"][0]["artifacts"].as_array_mut().unwrap();
    arts.push(serde_json::json!({
        "format": "tar",
        "path": path,
        "sha256": sha256(&bytes),
        "size": bytes.len(),
    }));
    let mut sums: Vec<String> = arts
        .iter()
        .map(|a| {
            format!(
                "{}  {}\n",
                a["sha256"].as_str().unwrap(),
                a["path"].as_str().unwrap()
            )
        })
        .collect();
    sums.sort();
    fs::write(out.join("SHA256SUMS"), sums.concat()).unwrap();
    let mut json = serde_json::to_vec_pretty(&m).unwrap();
    json.push(b'\n');
    fs::write(out.join("manifest.json"), json).unwrap();
}

#[test]
fn verify_refuses_paths_that_leave_the_output_directory() {
    support::require!(support::STANDIN);
    let (_dir, out) = fresh_output();
    // As many `..` as it takes from the output directory to /.
    let up = "../".repeat(out.components().count() - 1);
    let dotdot = format!("{up}etc/passwd");
    assert_eq!(
        fs::canonicalize(out.join(&dotdot)).unwrap(),
        Path::new("/etc/passwd")
    );
    for (case, path) in [
        ("dotdot", dotdot.as_str()),
        ("absolute", "/etc/passwd"),
        ("dotdot inside", "dist/../dist/x"),
    ] {
        let (_dir, out) = copy_of_dir(&out);
        let real = if case == "dotdot inside" {
            let real = out.join("dist/x");
            fs::write(&real, b"x").unwrap();
            real
        } else {
            PathBuf::from("/etc/passwd")
        };
        record_artifact(&out, path, &real);
        eprintln!("case: {case}");
        assert_verify_fails(&out, path, "inside the output directory");
    }

    // A path through a symbolic link, to a file with the right hash.
    let (_dir, out) = copy_of_dir(&out);
    std::os::unix::fs::symlink("/etc", out.join("dist/etc")).unwrap();
    record_artifact(&out, "dist/etc/passwd", Path::new("/etc/passwd"));
    eprintln!("case: through a symlink");
    assert_verify_fails(&out, "dist/etc", "symbolic link");
}

#[test]
fn verify_refuses_symbolic_links_and_does_not_follow_them() {
    support::require!(support::STANDIN);
    for (case, link, target) in [
        ("dist", "dist/passwd", "/etc/passwd"),
        ("node file", "nodes/etcd-1/opt/etcd/passwd", "/etc/passwd"),
        ("node dir", "nodes/etcd-1/opt/etcd/etc", "/etc"),
        ("pki", "pki/clients/elsewhere", "/etc"),
    ] {
        let (_dir, out) = fresh_output();
        std::os::unix::fs::symlink(target, out.join(link)).unwrap();
        eprintln!("case: {case}");
        assert_verify_fails(&out, link, "symbolic link");
    }
    // A node tree that is itself a link to a copy of itself.
    let (_dir, out) = fresh_output();
    let tree = out.join("nodes/etcd-1");
    let moved = out.join("elsewhere");
    fs::rename(&tree, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &tree).unwrap();
    eprintln!("case: node tree");
    assert_verify_fails(&out, "nodes/etcd-1", "symbolic link");
}
