//! Keys stay secret: `contains_key` finds a key in every form it may take, and no Debug output
//! shows one.

use super::*;

#[test]
fn contains_key_finds_the_key_in_every_form() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(Algorithm::EcdsaP256);
    ensure(dir.path(), &c, now(), &quiet()).unwrap();
    let key = fs::read_to_string(dir.path().join(CA_KEY)).unwrap();
    let cert = fs::read(dir.path().join(CA_CERT)).unwrap();
    let other = KeyPair::generate().unwrap().serialize_pem();

    let embed = |inner: &[u8]| {
        let mut v = b"\x7fELF binary junk \x00\x01\x02".to_vec();
        v.extend_from_slice(inner);
        v.extend_from_slice(b"\x00trailing");
        v
    };
    assert!(contains_key(&embed(key.as_bytes()), &key));
    assert!(contains_key(&embed(&der_of(&key)), &key));
    let json = serde_json::to_string(&serde_json::json!({ "key": key })).unwrap();
    assert!(contains_key(json.as_bytes(), &key), "{json}");
    let one_line: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let rewrapped: Vec<u8> = one_line
        .as_bytes()
        .chunks(76)
        .flat_map(|c| c.iter().copied().chain(*b"\r\n"))
        .collect();
    assert!(contains_key(&embed(&rewrapped), &key));
    // Escaped as a shell or JSON writer may (`\/`, `\n` between lines),
    // between binary bytes on both sides.
    let escaped: String = one_line
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).replace('/', "\\/"))
        .collect::<Vec<_>>()
        .join("\\n");
    assert!(contains_key(&embed(escaped.as_bytes()), &key));
    // Cut by a byte no wrapping or escaping puts there, it is not the body.
    let mut cut = one_line.clone().into_bytes();
    cut.insert(one_line.len() / 2, 0);
    assert!(!contains_key(&embed(&cut), &key));

    assert!(!contains_key(&embed(&cert), &key));
    assert!(!contains_key(&embed(other.as_bytes()), &key));
    assert!(!contains_key(b"", &key));
    assert!(!contains_key(&embed(key.as_bytes()), ""));
}

#[test]
fn debug_output_never_shows_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ensure(dir.path(), &cluster(Algorithm::EcdsaP256), now(), &quiet()).unwrap();
    let shown = format!("{pki:?}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(shown.contains("nodes/etcd-1"));
}

/// The stretches a body can hide in are found by looking at every
/// `min`-th byte first: exactly those a look at every byte finds.
#[test]
fn runs_finds_every_long_enough_stretch() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut data = Vec::new();
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Mostly base64 letters, in stretches of every length.
        let b = if x.is_multiple_of(23) {
            0
        } else {
            b"Ab9+/= \n\\"[(x >> 8) as usize % 9]
        };
        data.push(b);
    }
    for min in [1, 2, 7, 30, 64, 200] {
        let naive: Vec<&[u8]> = data.split(|b| *b == 0).filter(|r| r.len() >= min).collect();
        let fast: Vec<&[u8]> = super::super::runs(&data, min).collect();
        assert_eq!(fast, naive, "min {min}");
    }
}
