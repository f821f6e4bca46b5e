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
