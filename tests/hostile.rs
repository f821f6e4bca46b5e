//! Hostile release tarballs handed to the built binary with `--etcd-tarball`
//! and their own (matching) `--etcd-sha256`: a checksum proves only that the
//! file is the one the user named, so every trick inside must still be
//! refused — with a message naming the tarball and the entry, a non-zero exit,
//! no output or cache directory created, and no file written where the
//! archive says.
//!
//! The unit tests in src/extract/tests.rs cover the reader in detail; these
//! prove the whole command refuses before it writes anything.

mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use tar::{EntryType, Header};

use support::{Gen, etcdpack};

const STEM: &str = "etcd-v3.4.16-linux-amd64";

/// One member, written with a raw header so that `..`, absolute names and
/// outward links get through (the tar crate's setters refuse them).
struct Member {
    name: String,
    kind: EntryType,
    data: Vec<u8>,
    link: String,
}

fn file(name: impl Into<String>, data: &[u8]) -> Member {
    Member {
        name: name.into(),
        kind: EntryType::Regular,
        data: data.to_vec(),
        link: String::new(),
    }
}

fn link(name: impl Into<String>, kind: EntryType, target: impl Into<String>) -> Member {
    Member {
        name: name.into(),
        kind,
        data: Vec::new(),
        link: target.into(),
    }
}

fn inside(rest: &str) -> String {
    format!("{STEM}/{rest}")
}

fn targz(members: &[Member]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for m in members {
        let mut header = Header::new_gnu();
        {
            let raw = header.as_old_mut();
            assert!(m.name.len() < raw.name.len(), "{} is too long", m.name);
            raw.name[..m.name.len()].copy_from_slice(m.name.as_bytes());
            raw.linkname[..m.link.len()].copy_from_slice(m.link.as_bytes());
        }
        header.set_entry_type(m.kind);
        header.set_size(m.data.len() as u64);
        header.set_mode(0o755);
        header.set_mtime(0);
        header.set_cksum();
        builder.append(&header, &m.data[..]).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Every path under `dir`, directories included.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out.sort();
    out
}

/// A scratch cluster whose `gen` runs from a directory three levels deep,
/// so that a relative `..` name would land inside the scratch area, where
/// the test can see it.
struct Scene {
    g: Gen,
    cwd: PathBuf,
    /// Unique per process: the absolute names the archives aim at.
    evil: String,
}

impl Scene {
    fn new() -> Scene {
        let g = Gen::new(&["127.0.0.1"], "");
        let cwd = g.dir.path().join("a/b/c");
        fs::create_dir_all(&cwd).unwrap();
        Scene {
            g,
            cwd,
            evil: format!("/tmp/etcdpack-evil-{}", std::process::id()),
        }
    }

    /// `gen` with `archive` as the release; returns (exit code, stderr).
    fn gen_with(&self, case: &str, archive: &[u8]) -> (Option<i32>, String) {
        let tarball = self.g.dir.path().join(format!("{case}.tar.gz"));
        fs::write(&tarball, archive).unwrap();
        let before = tree(self.g.dir.path());
        let out = etcdpack()
            .current_dir(&self.cwd)
            .arg("gen")
            .arg("-c")
            .arg(&self.g.config)
            .arg("-o")
            .arg(&self.g.out)
            .arg("--cache-dir")
            .arg(&self.g.cache)
            .arg("--etcd-tarball")
            .arg(&tarball)
            .args(["--etcd-sha256", &sha256(archive)])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        eprintln!("--- {case}\n{stderr}");
        assert!(out.stdout.is_empty(), "{case}: stdout must stay empty");
        assert!(!self.g.out.exists(), "{case}: the output dir was created");
        assert!(!self.g.cache.exists(), "{case}: the cache dir was created");
        assert_eq!(
            tree(self.g.dir.path()),
            before,
            "{case}: something was written in the scratch area"
        );
        assert!(
            stderr.contains(&tarball.display().to_string()),
            "{case}: the message must name the tarball:\n{stderr}"
        );
        (out.status.code(), stderr)
    }

    /// Assert the refusal: exit code 1 and every `needles` in the message.
    fn refused(&self, case: &str, archive: &[u8], needles: &[&str]) {
        let (code, stderr) = self.gen_with(case, archive);
        assert_eq!(code, Some(1), "{case}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{case}: no {n:?} in:\n{stderr}");
        }
    }

    fn assert_nothing_escaped(&self) {
        let dir = Path::new(&self.evil).parent().unwrap();
        let prefix = Path::new(&self.evil).file_name().unwrap().to_str().unwrap();
        let escaped: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix))
            .collect();
        assert!(escaped.is_empty(), "written outside: {escaped:?}");
    }
}

fn good_programs() -> [Member; 2] {
    [
        file(inside("etcd"), b"ETCD"),
        file(inside("etcdctl"), b"ETCDCTL"),
    ]
}

#[test]
fn a_valid_tarball_of_the_same_shape_is_accepted() {
    support::require!(support::STANDIN);
    // The control: the builder above makes archives etcdpack accepts, so the
    // refusals below are about the trick and nothing else.
    let s = Scene::new();
    let archive = targz(&good_programs());
    let tarball = s.g.dir.path().join("good.tar.gz");
    fs::write(&tarball, &archive).unwrap();
    s.g.run_ok(&[
        "--etcd-tarball",
        tarball.to_str().unwrap(),
        "--etcd-sha256",
        &sha256(&archive),
    ]);
    assert_eq!(
        fs::read(s.g.out.join("nodes/etcd-1/opt/etcd/bin/etcd")).unwrap(),
        b"ETCD"
    );
}

#[test]
fn path_tricks_are_refused_and_write_nothing() {
    let s = Scene::new();
    let [etcd, etcdctl] = good_programs();
    let evil = &s.evil;

    // `..` climbing out of the extraction directory (and out of the cwd).
    let dotdot = format!("{STEM}/../../../../../../../..{evil}-dotdot");
    s.refused(
        "dotdot",
        &targz(&[
            file(inside("etcd"), b"ETCD"),
            file(&dotdot, b"owned"),
            file(inside("etcdctl"), b"ETCDCTL"),
        ]),
        &[&dotdot, "`..`"],
    );
    // Relative `..` with no leading directory: would land next to the cwd.
    s.refused(
        "dotdot-relative",
        &targz(&[
            file("../../escaped-relative", b"owned"),
            file(inside("etcd"), b"ETCD"),
            file(inside("etcdctl"), b"ETCDCTL"),
        ]),
        &["../../escaped-relative", "`..`"],
    );
    assert!(!s.g.dir.path().join("a/escaped-relative").exists());

    let abs = format!("{evil}-absolute");
    s.refused(
        "absolute",
        &targz(&[etcd, file(&abs, b"owned"), etcdctl]),
        &[&abs, "absolute path"],
    );
    s.assert_nothing_escaped();
}

#[test]
fn link_tricks_are_refused_and_write_nothing() {
    let s = Scene::new();
    let evil = &s.evil;

    // A symlink named etcd pointing out, absolutely and relatively.
    let target = format!("{evil}-symlink");
    s.refused(
        "symlink-absolute",
        &targz(&[
            link(inside("etcd"), EntryType::Symlink, &target),
            file(inside("etcdctl"), b"ETCDCTL"),
        ]),
        &[&inside("etcd"), &target, "absolute link target"],
    );
    let rel = format!("../../../../../../..{evil}-symlink-rel");
    s.refused(
        "symlink-relative",
        &targz(&[
            link(inside("etcd"), EntryType::Symlink, &rel),
            file(inside("etcdctl"), b"ETCDCTL"),
        ]),
        &[&inside("etcd"), "escapes the archive"],
    );
    // Even a symlink named etcd that stays inside: etcd must be a real file.
    s.refused(
        "symlink-inside",
        &targz(&[
            file(inside("etcdctl"), b"ETCDCTL"),
            link(inside("etcd"), EntryType::Symlink, "etcdctl"),
        ]),
        &[&inside("etcd"), "symbolic link"],
    );

    // A hard link pointing out of the archive.
    let hard = format!("{evil}-hardlink");
    s.refused(
        "hardlink-absolute",
        &targz(&[
            file(inside("etcd"), b"ETCD"),
            link(inside("etcdctl"), EntryType::Link, "/etc/shadow"),
        ]),
        &[&inside("etcdctl"), "/etc/shadow", "absolute link target"],
    );
    s.refused(
        "hardlink-relative",
        &targz(&[
            file(inside("etcd"), b"ETCD"),
            file(inside("etcdctl"), b"ETCDCTL"),
            link(
                inside("Documentation"),
                EntryType::Link,
                format!("../../..{hard}"),
            ),
        ]),
        &[&inside("Documentation"), "escapes the archive"],
    );
    s.assert_nothing_escaped();
}

#[test]
fn ambiguous_and_incomplete_archives_are_refused() {
    let s = Scene::new();
    s.refused(
        "duplicate",
        &targz(&[
            file(inside("etcd"), b"ETCD"),
            file(inside("etcdctl"), b"ETCDCTL"),
            file(inside("etcd"), b"the second one wins in tar -x"),
        ]),
        &[&inside("etcd"), "more than once"],
    );
    s.refused(
        "missing-etcdctl",
        &targz(&[
            file(inside("etcd"), b"ETCD"),
            file(inside("README.md"), b"#"),
        ]),
        &[
            "not an etcd release",
            &format!("{} missing", inside("etcdctl")),
            "help:",
        ],
    );
    s.refused(
        "not-gzip",
        b"PK\x03\x04 this is a zip file, not a release",
        &["not a gzip file"],
    );
    let good = targz(&good_programs());
    s.refused("truncated", &good[..good.len() / 2], &["corrupt archive"]);
}

/// 1.25 GiB of zeros in five 250 MiB members (each under the per-member
/// limit, together over the 1 GiB total), about 1.3 MB compressed. Built
/// once per machine under the target's tmp dir.
fn gzip_bomb() -> Vec<u8> {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-bomb-v2.tar.gz");
    if let Ok(bytes) = fs::read(&path) {
        return bytes;
    }
    // Level 9: zeros shrink about 1000-fold (level 1 only about 100-fold).
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::best()));
    for m in good_programs() {
        let mut h = Header::new_gnu();
        h.set_path(&m.name).unwrap();
        h.set_size(m.data.len() as u64);
        h.set_mode(0o755);
        h.set_cksum();
        builder.append(&h, &m.data[..]).unwrap();
    }
    for i in 0..5 {
        let size = 250u64 << 20;
        let mut h = Header::new_gnu();
        h.set_path(inside(&format!("padding-{i}"))).unwrap();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        builder
            .append(&h, std::io::Read::take(std::io::repeat(0), size))
            .unwrap();
    }
    let bytes = builder.into_inner().unwrap().finish().unwrap();
    let tmp = path.with_extension(format!("{}.part", std::process::id()));
    fs::File::create(&tmp).unwrap().write_all(&bytes).unwrap();
    fs::rename(&tmp, &path).unwrap();
    bytes
}

#[test]
fn a_decompression_bomb_is_refused_at_the_limit() {
    let s = Scene::new();
    let bomb = gzip_bomb();
    assert!(bomb.len() < 4 << 20, "{} bytes on disk", bomb.len());
    let t = std::time::Instant::now();
    s.refused(
        "bomb",
        &bomb,
        &["decompresses to more than 1024 MiB", "refusing it"],
    );
    eprintln!("refused the bomb in {:?}", t.elapsed());
}

/// A raw GNU long-name header declaring `size` bytes of name, with only a
/// little of it present, then the two programs: refused on the header alone.
fn long_name_claiming(size: u64) -> Vec<u8> {
    let mut header = Header::new_gnu();
    let name = b"././@LongLink";
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_entry_type(EntryType::GNULongName);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    let mut tar = header.as_bytes().to_vec();
    tar.extend_from_slice(&[b'a'; 8192]);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&tar).unwrap();
    let programs = targz(&good_programs());
    let mut plain = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(&programs[..]),
        &mut plain,
    )
    .unwrap();
    gz.write_all(&plain).unwrap();
    gz.finish().unwrap()
}

#[test]
fn a_huge_long_name_is_refused_before_it_is_read() {
    let s = Scene::new();
    // 300 MiB of name would cost gigabytes once read.
    s.refused(
        "long-name",
        &long_name_claiming(300 << 20),
        &["GNU long name of 314572800 bytes", "refusing"],
    );
}

#[test]
fn an_archive_of_too_many_entries_is_refused() {
    let s = Scene::new();
    let mut members: Vec<Member> = (0..20_000).map(|i| file(format!("top-{i}"), b"")).collect();
    members.extend(good_programs());
    let t = std::time::Instant::now();
    s.refused(
        "many-entries",
        &targz(&members),
        &["more than 10000 entries", "refusing"],
    );
    eprintln!("refused 20 000 entries in {:?}", t.elapsed());
}
