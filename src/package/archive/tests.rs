use super::*;
use std::io::Read;

#[test]
fn modes_owners_and_times_are_exact() {
    let mut t = TarWriter::new(Vec::new(), 1_600_000_000);
    t.dir("opt/etcd", 0o755).unwrap();
    t.file("opt/etcd/ssl/key.pem", 0o600, b"k").unwrap();
    let long = format!("{}/x", "d".repeat(120));
    t.file(&long, 0o644, b"long").unwrap();
    let bytes = t.finish().unwrap();
    let mut a = tar::Archive::new(&bytes[..]);
    let mut seen = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut s = String::new();
        e.read_to_string(&mut s).unwrap();
        seen.push((
            e.path().unwrap().to_string_lossy().into_owned(),
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.mtime().unwrap(),
            s,
        ));
    }
    assert_eq!(
        seen[0],
        ("opt/etcd/".into(), 0o755, 0, 1_600_000_000, "".into())
    );
    assert_eq!(
        seen[1],
        (
            "opt/etcd/ssl/key.pem".into(),
            0o600,
            0,
            1_600_000_000,
            "k".into()
        )
    );
    assert_eq!(seen[2].0, long);
}

/// A tar.gz of one small and one large file, through `shared` or not.
fn tar_gz(big: &Blob, name: &str, shared: Option<&Shared>) -> Vec<u8> {
    let mut t = TarWriter::new(GzMembers::new(Vec::new(), shared), 1_600_000_000);
    t.file(&format!("{name}/small"), 0o644, b"small").unwrap();
    t.large_file(&format!("{name}/big"), 0o755, big).unwrap();
    t.file(&format!("{name}/after"), 0o600, b"after").unwrap();
    t.finish().unwrap().finish().unwrap()
}

#[test]
fn a_large_file_is_a_member_of_its_own_compressed_once() {
    let big = Blob::from(
        (0..SHARED_MIN + 1000)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let shared = Shared::new();
    let a = tar_gz(&big, "node-a", Some(&shared));
    let b = tar_gz(&big, "node-b", Some(&shared));
    // The same bytes with or without the cache.
    assert_eq!(a, tar_gz(&big, "node-a", None));
    // The big file's member is the same in both archives.
    let m = shared.member(&big);
    let find = |hay: &[u8]| hay.windows(m.len()).position(|w| w == &m[..]);
    assert!(find(&a).is_some() && find(&b).is_some());
    // Three members: before, the big file's data, after.
    let members = a.windows(3).filter(|w| w == &[0x1f, 0x8b, 8]).count();
    assert!(members >= 3, "{members} members");
    // Read on through every member.
    let mut ar = tar::Archive::new(flate2::read::MultiGzDecoder::new(&b[..]));
    let mut seen = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        seen.push((e.path().unwrap().display().to_string(), data));
    }
    assert_eq!(seen[0], ("node-b/small".into(), b"small".to_vec()));
    assert_eq!(seen[1], ("node-b/big".into(), big.to_vec()));
    assert_eq!(seen[2], ("node-b/after".into(), b"after".to_vec()));
}

/// The memo gives each stream its own digest, whether its state after a
/// shared piece was remembered or not, and remembers it only for
/// exactly the same bytes before.
#[test]
fn a_memoized_digest_is_the_plain_digest() {
    let big = Blob::from(vec![9u8; 3 << 20]);
    let other = Blob::from(vec![8u8; 3 << 20]);
    let plain = |parts: &[&[u8]]| {
        let mut h = Sha256::new();
        parts.iter().for_each(|p| h.update(p));
        hex::encode(h.finalize())
    };
    let shared = Shared::new();
    let memo = |head: &[u8], b: &Blob, tail: &[u8]| {
        let mut h = MemoSha256::new(Some(&shared));
        h.update(head);
        h.shared(b.id(), b);
        h.update(tail);
        h.finish()
    };
    for (head, b, tail) in [
        (&b"head"[..], &big, &b"tail-1"[..]),
        (b"head", &big, b"tail-2"),
        (b"head", &other, b"tail-2"),
        (b"hea", &big, b"dtail-2"),
        (b"", &big, b""),
    ] {
        // Twice: the second time from the memo.
        assert_eq!(memo(head, b, tail), plain(&[head, b, tail]));
        assert_eq!(memo(head, b, tail), plain(&[head, b, tail]));
    }
    let long = vec![1u8; MEMO_PREFIX_MAX + 1];
    assert_eq!(memo(&long, &big, b"x"), plain(&[&long, &big, b"x"]));
    assert_eq!(shared.digests.lock().unwrap().len(), 4);
}

#[test]
fn a_large_file_is_chunked_alike_on_one_thread_or_many() {
    let data: Vec<u8> = (0..CHUNK * 2 + 77).map(|i| (i % 241) as u8).collect();
    let one = member(&data, false);
    assert_eq!(one, member(&data, true));
    let members = one.windows(3).filter(|w| w == &[0x1f, 0x8b, 8]).count();
    assert!(members >= 3, "{members} members");
    let mut back = Vec::new();
    flate2::read::MultiGzDecoder::new(&one[..])
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == data);
}

#[test]
fn gzip_is_reproducible_and_has_no_time() {
    let z = |data: &[u8]| {
        let mut g = gzip(Vec::new());
        g.write_all(data).unwrap();
        g.finish().unwrap()
    };
    let a = z(b"hello");
    assert_eq!(a, z(b"hello"));
    assert_eq!(&a[4..8], &[0, 0, 0, 0], "MTIME field must be zero");
    assert_eq!(a[3] & 0x08, 0, "no FNAME");
    let mut out = String::new();
    flate2::read::GzDecoder::new(&a[..])
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "hello");
}

/// A file is compressed once however packages and `prepare` ask for it
/// at the same time: whoever comes second waits for the first, whether a
/// package asks while `prepare` compresses or before it starts.
#[test]
fn a_file_is_compressed_once_while_packages_ask_during_prepare() {
    // Hardly compressible, so that compressing it takes long enough for
    // the second asker to come while the first compresses.
    let mut x = 1u64;
    let big = Blob::from(
        (0..CHUNK * 3)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect::<Vec<u8>>(),
    );
    let pause = std::time::Duration::from_millis(20);
    for packages_first in [false, true] {
        let shared = Shared::new();
        let expected = member(&big, false);
        std::thread::scope(|s| {
            let prepare = || shared.prepare(&[&big], false);
            let ask = || shared.member(&big);
            let mut askers = Vec::new();
            let preparing = if packages_first {
                askers.extend((0..3).map(|_| s.spawn(ask)));
                std::thread::sleep(pause);
                s.spawn(prepare)
            } else {
                let p = s.spawn(prepare);
                std::thread::sleep(pause);
                askers.extend((0..3).map(|_| s.spawn(ask)));
                p
            };
            preparing.join().unwrap();
            for a in askers {
                assert!(*a.join().unwrap() == expected);
            }
        });
        assert_eq!(
            shared.compressed.load(Ordering::Relaxed),
            1,
            "packages first: {packages_first}"
        );
    }
}
