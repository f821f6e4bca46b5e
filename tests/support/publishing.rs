//! What the publish tests share: the signing keys `etcdpack signing-key`
//! makes, the generated output they publish, `etcdpack publish` at a fixed
//! date, and a repository's files to compare before and after.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{Gen, etcdpack, run_ok};

/// A fixed date, so that two publishes of the same packages compare.
pub const EPOCH: &str = "1796190883";

/// The nodes the publish tests package: etcd-1 to etcd-3.
const NODES: [&str; 3] = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];

/// The RSA-4096 key `etcdpack signing-key` makes (the default, and the one
/// EL's rpm verifies), once per test process (generating one takes
/// seconds).
pub fn rsa_key() -> &'static Path {
    static KEY: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &KEY.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("signing.asc");
        run_ok(etcdpack().args(["signing-key", "--out"]).arg(&key));
        (dir, key)
    })
    .1
}

/// An Ed25519 signing key made by `etcdpack signing-key` (quick to make),
/// as `dir/ed25519.asc`.
pub fn ed25519_key(dir: &Path) -> PathBuf {
    let key = dir.join("ed25519.asc");
    run_ok(
        etcdpack()
            .args(["signing-key", "--algorithm", "ed25519", "--out"])
            .arg(&key),
    );
    key
}

/// Three nodes packaged as `formats` (`"deb"`, `"deb, rpm"`), generated:
/// every node at release 1.
pub fn generated(formats: &str) -> Gen {
    let g = Gen::new(&NODES, &format!("packages: {{ formats: [{formats}] }}\n"));
    g.run_ok(&[]);
    g
}

/// The same with sealed keys: [`Gen::sealed`], generated.
pub fn generated_sealed(formats: &str) -> Gen {
    let g = Gen::sealed(&NODES, &format!("formats: [{formats}]"));
    g.run_ok(&[]);
    g
}

/// `etcdpack publish --out OUT` at [`EPOCH`], with no signing key from the
/// environment; the caller adds the rest.
pub fn publish_command(out: &Path) -> Command {
    let mut c = etcdpack();
    c.arg("publish")
        .arg("--out")
        .arg(out)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .env_remove("ETCDPACK_SIGN_KEY");
    c
}

/// Every entry under `dir` but its directories and the lock, by its path
/// below `dir`: a file's contents, a symbolic link's target (not followed),
/// and what any other kind of entry is.
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut map = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let kind = fs::symlink_metadata(&p).unwrap().file_type();
            if kind.is_dir() {
                stack.push(p);
                continue;
            }
            if p.ends_with(".etcdpack.lock") {
                continue;
            }
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let what = if kind.is_file() {
                fs::read(&p).unwrap()
            } else if kind.is_symlink() {
                format!("a link to {}", fs::read_link(&p).unwrap().display()).into_bytes()
            } else {
                format!("{kind:?}").into_bytes()
            };
            map.insert(rel, what);
        }
    }
    map
}
