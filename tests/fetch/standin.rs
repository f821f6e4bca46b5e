//! The stand-in release the other tests serve is faithful: the official layout, modes and
//! top directory, and Debian's etcd and etcdctl inside, as the release reader extracts them.

use etcdpack::extract;
use etcdpack::fsutil::sha256_hex;

use crate::support::fetching::{STEM, etcd};
use crate::support::{self, standin};

#[test]
fn standin_has_the_official_layout_and_the_system_programs() {
    support::require!(support::STANDIN);
    let standin = standin();
    assert_eq!((standin.version, standin.arch), ("3.4.16", "amd64"));
    let bytes = std::fs::read(&standin.path).unwrap();
    assert_eq!(sha256_hex(&bytes), standin.sha256);

    let mut archive = tar::Archive::new(flate2::read::MultiGzDecoder::new(&bytes[..]));
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if name == format!("{STEM}/etcd") || name == format!("{STEM}/etcdctl") {
            assert_eq!(entry.header().mode().unwrap(), 0o755, "{name}");
        }
        names.push(name);
    }
    for want in [
        "",
        "Documentation",
        "README.md",
        "README-etcdctl.md",
        "READMEv2-etcdctl.md",
        "etcd",
        "etcdctl",
    ] {
        let want = format!("{STEM}/{want}");
        assert!(
            names
                .iter()
                .any(|n| n.trim_end_matches('/') == want.trim_end_matches('/')),
            "{want} missing from {names:?}"
        );
    }
    assert!(
        names.iter().all(|n| n.starts_with(&format!("{STEM}/"))),
        "{names:?}"
    );

    let bins = extract::read_release(&standin.path, &etcd(&standin.sha256)).unwrap();
    assert_eq!(*bins.etcd, *std::fs::read("/usr/bin/etcd").unwrap());
    assert_eq!(*bins.etcdctl, *std::fs::read("/usr/bin/etcdctl").unwrap());
}
