//! Finished `gen` outputs to tamper with, one copy per case, and tampering as someone covering
//! their tracks would: an artifact replaced (re-packed with the format's own tools, or the rpm
//! crate) and manifest.json and SHA256SUMS brought up to date, so that only what is inside is
//! wrong. Then `verify`'s verdict.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{Gen, etcdpack, run_ok, sha256};

/// Every format, as `--formats` takes them.
pub const FORMATS: &str = "tar,deb,rpm";

pub fn ca_key(out: &Path) -> String {
    fs::read_to_string(out.join("pki/ca-key.pem")).unwrap()
}

pub fn artifacts(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(out.join("dist"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// A finished one-node output with every format (ECDSA keys), copied per case.
pub fn fresh_output() -> (tempfile::TempDir, PathBuf) {
    static BASE: OnceLock<Gen> = OnceLock::new();
    copy_of(BASE.get_or_init(|| base_output("")))
}

/// The same with RSA keys.
pub fn fresh_rsa_output() -> (tempfile::TempDir, PathBuf) {
    static BASE: OnceLock<Gen> = OnceLock::new();
    copy_of(BASE.get_or_init(|| base_output("pki: { algorithm: rsa-2048 }\n")))
}

pub fn base_output(extra: &str) -> Gen {
    let g = Gen::new(&["127.0.0.1"], extra);
    g.run_ok(&["--formats", FORMATS]);
    g
}

pub fn copy_of(base: &Gen) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    run_ok(Command::new("cp").arg("-a").arg(&base.out).arg(dir.path()));
    let out = dir.path().join("out");
    (dir, out)
}

/// Replace the artifact `name` under dist/ by `bytes` and bring
/// manifest.json and SHA256SUMS up to date, as someone covering their tracks
/// would: the only thing wrong is then what is inside.
pub fn substitute(out: &Path, name: &str, bytes: &[u8]) {
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

pub fn artifact_name(out: &Path, suffix: &str) -> String {
    artifacts(out)
        .into_iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .find(|n| n.ends_with(suffix))
        .unwrap()
}

/// `verify` on `out`: it must fail (exit 3) with a FAIL line naming `name`
/// and containing `why`; every other check must still pass.
pub fn assert_verify_fails(out: &Path, name: &str, why: &str) {
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

pub fn assert_verify_passes(out: &Path) {
    let o = etcdpack().arg("verify").arg(out).output().unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The bundle re-packed with `extra` (path, data) entries appended.
pub fn repack_tarball(bytes: &[u8], extra: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut src = tar::Archive::new(flate2::read::MultiGzDecoder::new(bytes));
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

/// Re-pack the .deb with dpkg-deb itself, after `edit` changed its tree.
pub fn repack_deb(out: &Path, name: &str, edit: impl FnOnce(&Path)) -> Vec<u8> {
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

/// The .rpm `name` re-built with the rpm crate, its regular files and
/// `extra` (absolute path, data, mode) added.
pub fn repack_rpm(out: &Path, name: &str, extra: &[(&str, Vec<u8>, u16)]) -> Vec<u8> {
    // etcdpack's reader: the crate's stops after the payload's first gzip
    // member.
    let original = etcdpack::package::read_entries(
        etcdpack::package::Format::Rpm,
        &fs::read(out.join("dist").join(name)).unwrap(),
    )
    .unwrap();
    let mut b = rpm::PackageBuilder::new("etcd-test-etcd-1", "3.4.16", "Apache-2.0", "x86_64", "x");
    b.using_config(rpm::BuildConfig::default().compression(rpm::CompressionType::Gzip));
    for f in original.into_iter().filter(|f| !f.dir) {
        let mode = u16::try_from(f.mode).unwrap();
        b.with_file_contents(f.data, rpm::FileOptions::new(f.path).permissions(mode))
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

/// A copy of the output directory `out`.
pub fn copy_of_dir(out: &Path) -> (tempfile::TempDir, PathBuf) {
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
