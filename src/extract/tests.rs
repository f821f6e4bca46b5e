use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use tar::{Builder, EntryType, Header};

use super::*;
use crate::model::Arch;

const STEM: &str = "etcd-v3.4.16-linux-amd64";

/// One archive member, described by hand so that hostile names get through:
/// the tar crate's own setters refuse `..` and absolute paths.
struct Member<'a> {
    name: &'a str,
    kind: EntryType,
    data: &'a [u8],
    link: &'a str,
    /// Declared size when it should differ from `data.len()`.
    size: Option<u64>,
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Member<'a> {
    Member {
        name,
        kind: EntryType::Regular,
        data,
        link: "",
        size: None,
    }
}

fn link<'a>(name: &'a str, kind: EntryType, target: &'a str) -> Member<'a> {
    Member {
        name,
        kind,
        data: b"",
        link: target,
        size: None,
    }
}

fn dir(name: &str) -> Member<'_> {
    Member {
        name,
        kind: EntryType::Directory,
        data: b"",
        link: "",
        size: None,
    }
}

fn tar_bytes(members: &[Member]) -> Vec<u8> {
    let mut builder = Builder::new(Vec::new());
    for m in members {
        let mut header = Header::new_gnu();
        {
            let raw = header.as_old_mut();
            raw.name[..m.name.len()].copy_from_slice(m.name.as_bytes());
            raw.linkname[..m.link.len()].copy_from_slice(m.link.as_bytes());
        }
        header.set_entry_type(m.kind);
        header.set_size(m.size.unwrap_or(m.data.len() as u64));
        header.set_mode(if m.kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        header.set_mtime(0);
        header.set_cksum();
        builder.append(&header, m.data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn targz(members: &[Member]) -> Vec<u8> {
    gz(&tar_bytes(members))
}

fn n(rest: &str) -> String {
    format!("{STEM}/{rest}")
}

fn err(members: &[Member]) -> String {
    format!("{:#}", extract(&targz(members), STEM).unwrap_err())
}

#[test]
fn happy_path_takes_only_the_two_programs() {
    let (d, e, c, r, doc, l) = (
        format!("{STEM}/"),
        n("etcd"),
        n("etcdctl"),
        n("README.md"),
        n("Documentation/"),
        n("Documentation/link.md"),
    );
    let bins = extract(
        &targz(&[
            dir(&d),
            file(&r, b"# etcd"),
            dir(&doc),
            // A link that stays inside the archive is harmless.
            link(&l, EntryType::Symlink, "../README.md"),
            file(&e, b"ETCD"),
            file(&c, b"ETCDCTL"),
        ]),
        STEM,
    )
    .unwrap();
    assert_eq!(&*bins.etcd, b"ETCD");
    assert_eq!(&*bins.etcdctl, b"ETCDCTL");
    // A 3.4 release has no etcdutl.
    assert!(bins.etcdutl.is_none());
}

#[test]
fn etcdutl_is_taken_when_the_release_has_it() {
    let bins = extract(
        &targz(&[
            file(&n("etcd"), b"ETCD"),
            file(&n("etcdctl"), b"ETCDCTL"),
            file(&n("etcdutl"), b"ETCDUTL"),
        ]),
        STEM,
    )
    .unwrap();
    assert_eq!(bins.etcdutl.as_deref(), Some(&b"ETCDUTL"[..]));
}

#[test]
fn leading_dot_slash_is_the_same_entry() {
    let (e, c) = (format!("./{STEM}/etcd"), format!("./{STEM}/etcdctl"));
    let bins = extract(&targz(&[file(&e, b"1"), file(&c, b"2")]), STEM).unwrap();
    assert_eq!(&*bins.etcd, b"1");
}

#[test]
fn absolute_path_anywhere_is_refused() {
    let (e, c) = (n("etcd"), n("etcdctl"));
    let msg = err(&[file(&e, b"1"), file("/etc/cron.d/x", b"x"), file(&c, b"2")]);
    assert!(msg.contains("\"/etc/cron.d/x\""), "{msg}");
    assert!(msg.contains("absolute path"), "{msg}");
}

#[test]
fn dot_dot_anywhere_is_refused() {
    let (e, c) = (n("etcd"), n("etcdctl"));
    let evil = n("Documentation/../../../x");
    let msg = err(&[file(&e, b"1"), file(&c, b"2"), file(&evil, b"x")]);
    assert!(msg.contains("Documentation/../../../x"), "{msg}");
    assert!(msg.contains("`..`"), "{msg}");
    // Even one that would stay inside.
    let inside = n("a/../README.md");
    let msg = err(&[file(&inside, b"x"), file(&e, b"1"), file(&c, b"2")]);
    assert!(msg.contains("`..`"), "{msg}");
}

#[test]
fn wanted_entries_must_be_regular_files() {
    let (e, c) = (n("etcd"), n("etcdctl"));
    let msg = err(&[link(&e, EntryType::Symlink, "etcdctl"), file(&c, b"2")]);
    assert!(msg.contains(&e) && msg.contains("symbolic link"), "{msg}");

    let msg = err(&[file(&e, b"1"), link(&c, EntryType::Link, &e)]);
    assert!(msg.contains(&c) && msg.contains("hard link"), "{msg}");

    let e_dir = format!("{e}/");
    let msg = err(&[dir(&e_dir), file(&c, b"2")]);
    assert!(msg.contains("directory"), "{msg}");
}

#[test]
fn links_leaving_the_archive_are_refused() {
    let (e, c, l) = (n("etcd"), n("etcdctl"), n("Documentation/x"));
    let msg = err(&[
        file(&e, b"1"),
        file(&c, b"2"),
        link(&l, EntryType::Symlink, "/etc/shadow"),
    ]);
    assert!(
        msg.contains("/etc/shadow") && msg.contains("absolute link target"),
        "{msg}"
    );

    let msg = err(&[
        link(&l, EntryType::Symlink, "../../../etc"),
        file(&e, b"1"),
        file(&c, b"2"),
    ]);
    assert!(msg.contains(&l) && msg.contains("escapes"), "{msg}");

    let msg = err(&[
        file(&e, b"1"),
        file(&c, b"2"),
        link(&l, EntryType::Link, "../outside"),
    ]);
    assert!(msg.contains("escapes"), "{msg}");

    let msg = err(&[
        file(&e, b"1"),
        file(&c, b"2"),
        link(&l, EntryType::Link, "/etc/passwd"),
    ]);
    assert!(msg.contains("absolute link target"), "{msg}");
}

#[test]
fn duplicate_wanted_entries_are_refused() {
    let (e, c) = (n("etcd"), n("etcdctl"));
    let msg = err(&[file(&e, b"1"), file(&c, b"2"), file(&e, b"evil")]);
    assert!(msg.contains(&e) && msg.contains("more than once"), "{msg}");

    let other = format!("./{STEM}//etcdctl");
    let msg = err(&[file(&e, b"1"), file(&c, b"2"), file(&other, b"evil")]);
    assert!(msg.contains("more than once"), "{msg}");
}

#[test]
fn missing_programs_mean_not_a_release() {
    let (e, c) = (n("etcd"), n("etcdctl"));
    let msg = err(&[file(&e, b"1")]);
    assert!(msg.contains("not an etcd release"), "{msg}");
    assert!(msg.contains(&format!("{c} missing")), "{msg}");

    // The right files under another release's directory.
    let msg = format!(
        "{:#}",
        extract(
            &targz(&[
                file("etcd-v3.4.15-linux-amd64/etcd", b"1"),
                file("etcd-v3.4.15-linux-amd64/etcdctl", b"2"),
            ]),
            STEM
        )
        .unwrap_err()
    );
    assert!(msg.contains("not an etcd release"), "{msg}");
    assert!(msg.contains("etcd-v3.4.15-linux-amd64"), "{msg}");

    let msg = err(&[]);
    assert!(
        msg.contains("not an etcd release") && msg.contains("empty"),
        "{msg}"
    );
}

#[test]
fn oversized_member_is_refused_before_reading_it() {
    let (e, c) = (n("etcd"), n("etcdctl"));
    // The header alone claims 300 MiB; no data follows.
    let big = Member {
        size: Some(300 << 20),
        ..file(&e, b"")
    };
    let msg = err(&[file(&c, b"2"), big]);
    assert!(msg.contains(&e) && msg.contains("256 MiB"), "{msg}");
}

#[test]
fn decompression_bomb_stops_at_the_limit() {
    let (e, c, pad) = (n("etcd"), n("etcdctl"), n("padding"));
    let zeros = vec![0u8; 3 << 20];
    let archive = targz(&[file(&e, b"1"), file(&pad, &zeros), file(&c, b"2")]);
    assert!(archive.len() < 64 << 10, "compresses well");
    let msg = format!(
        "{:#}",
        extract_limited(&archive, STEM, MAX_MEMBER_BYTES, 1 << 20).unwrap_err()
    );
    assert!(msg.contains("more than 1 MiB"), "{msg}");
    // The same archive is fine under a limit it fits in.
    extract_limited(&archive, STEM, MAX_MEMBER_BYTES, 4 << 20).unwrap();
}

#[test]
fn not_gzip_and_corrupt_archives_are_refused() {
    let msg = format!("{:#}", extract(b"PK\x03\x04 a zip file", STEM).unwrap_err());
    assert!(msg.contains("not a gzip file"), "{msg}");

    let (e, c) = (n("etcd"), n("etcdctl"));
    let good = targz(&[file(&e, b"1"), file(&c, b"2")]);
    let msg = format!("{:#}", extract(&good[..good.len() / 2], STEM).unwrap_err());
    assert!(msg.contains("corrupt"), "{msg}");

    let mut flipped = good.clone();
    let at = flipped.len() - 6; // inside the CRC trailer
    flipped[at] ^= 0xff;
    let msg = format!("{:#}", extract(&flipped, STEM).unwrap_err());
    assert!(msg.contains("corrupt"), "{msg}");

    // gzip around something that is not tar.
    let msg = format!("{:#}", extract(&gz(&[7u8; 2048]), STEM).unwrap_err());
    assert!(
        msg.contains("corrupt") || msg.contains("not an etcd release"),
        "{msg}"
    );
}

#[test]
fn read_release_checks_the_hash_first() {
    let (e, c) = (n("etcd"), n("etcdctl"));
    let bytes = targz(&[file(&e, b"1"), file(&c, b"2")]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{STEM}.tar.gz"));
    std::fs::write(&path, &bytes).unwrap();
    let mut etcd = Etcd {
        version: "3.4.16".into(),
        arch: Arch::Amd64,
        sha256: sha256_hex(&bytes),
        url: None,
    };
    let bins = read_release(&path, &etcd).unwrap();
    assert_eq!(&*bins.etcdctl, b"2");

    let actual = etcd.sha256.clone();
    etcd.sha256 = "ab".repeat(32);
    let msg = format!("{:#}", read_release(&path, &etcd).unwrap_err());
    assert!(
        msg.contains(&actual) && msg.contains(&"ab".repeat(32)),
        "{msg}"
    );
    assert!(msg.contains("--etcd-sha256"), "{msg}");
}

/// A raw header of `kind` declaring `size` bytes, followed by `data` (which
/// may be shorter: the reader must refuse before it needs the rest).
fn raw_header(name: &str, kind: EntryType, size: u64, data: &[u8]) -> Vec<u8> {
    let mut header = Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

#[test]
fn a_huge_long_name_or_pax_header_is_refused_before_it_is_read() {
    for (kind, what) in [
        (EntryType::GNULongName, "GNU long name"),
        (EntryType::GNULongLink, "GNU long link name"),
        (EntryType::XHeader, "PAX header"),
        (EntryType::XGlobalHeader, "PAX header"),
    ] {
        // 300 MiB declared; only a little of it follows.
        let mut tar = raw_header("././@LongLink", kind, 300 << 20, &[b'a'; 4096]);
        tar.extend_from_slice(&tar_bytes(&[
            file(&n("etcd"), b"1"),
            file(&n("etcdctl"), b"2"),
        ]));
        let msg = format!("{:#}", extract(&gz(&tar), STEM).unwrap_err());
        assert!(msg.contains(what), "{kind:?}: {msg}");
        assert!(msg.contains("314572800 bytes"), "{kind:?}: {msg}");
        assert!(!msg.contains("corrupt"), "{kind:?}: {msg}");
    }
}

#[test]
fn paths_longer_than_the_limit_are_refused() {
    let long = n(&format!("{}/x", "d".repeat(MAX_PATH_BYTES)));
    // In a PAX header that is itself small enough.
    let mut b = Builder::new(Vec::new());
    b.append_pax_extensions([("path", long.as_bytes())])
        .unwrap();
    let mut h = Header::new_gnu();
    h.set_path("short").unwrap();
    h.set_size(1);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    for m in [file(&n("etcd"), b"1"), file(&n("etcdctl"), b"2")] {
        let mut h = Header::new_gnu();
        h.set_path(m.name).unwrap();
        h.set_size(m.data.len() as u64);
        h.set_cksum();
        b.append(&h, m.data).unwrap();
    }
    let msg = format!(
        "{:#}",
        extract(&gz(&b.into_inner().unwrap()), STEM).unwrap_err()
    );
    assert!(msg.contains("longer than 4096 bytes"), "{msg}");
    // Shown shortened, not all 4 KiB of it.
    assert!(msg.len() < 1024, "{msg}");
}

#[test]
fn long_names_and_pax_paths_within_the_limit_still_work() {
    let mut b = Builder::new(Vec::new());
    // etcd by a GNU long name (the builder writes one past 100 bytes) ...
    let long_etcd = format!("{}{STEM}/etcd", "./".repeat(80));
    let mut h = Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o755);
    b.append_data(&mut h, &long_etcd, &b"ETCD"[..]).unwrap();
    // ... etcdctl by a PAX path over a bogus header name.
    b.append_pax_extensions([("path", n("etcdctl").as_bytes())])
        .unwrap();
    let mut h = Header::new_gnu();
    h.set_path("bogus").unwrap();
    h.set_size(7);
    h.set_cksum();
    b.append(&h, &b"ETCDCTL"[..]).unwrap();
    let bins = extract(&gz(&b.into_inner().unwrap()), STEM).unwrap();
    assert_eq!(&*bins.etcd, b"ETCD");
    assert_eq!(&*bins.etcdctl, b"ETCDCTL");
}

#[test]
fn too_many_entries_are_refused() {
    let names: Vec<String> = (0..20_000).map(|i| format!("top-{i}")).collect();
    let mut members: Vec<Member> = names.iter().map(|n| file(n, b"")).collect();
    let (e, c) = (n("etcd"), n("etcdctl"));
    members.push(file(&e, b"1"));
    members.push(file(&c, b"2"));
    let msg = err(&members);
    assert!(msg.contains("more than 10000 entries"), "{msg}");
    // Just under the limit is fine, and the missing-program message does
    // not list thousands of names.
    let msg = err(&members[..9_999]);
    assert!(msg.contains("not an etcd release"), "{msg}");
    assert!(msg.len() < 1024, "{} bytes: {msg:.200}", msg.len());
}
