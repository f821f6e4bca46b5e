//! Finding a key in bytes: its PEM body with whitespace ignored (so a re-wrapped copy is found
//! too), in any file under a directory.

use std::fs;
use std::path::{Path, PathBuf};

/// The base64 body of a PEM text, on one line.
pub fn body(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
}

/// The base64 lines of a PEM text (each 64 characters but maybe the last).
pub fn body_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_owned)
        .collect()
}

pub fn strip_ws(data: &[u8]) -> Vec<u8> {
    data.iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect()
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every regular file under `dir`.
pub fn files(dir: &Path) -> Vec<PathBuf> {
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
pub fn holders(dir: &Path, key: &str) -> Vec<PathBuf> {
    let needle = body(key).into_bytes();
    files(dir)
        .into_iter()
        .filter(|f| contains(&strip_ws(&fs::read(f).unwrap()), &needle))
        .collect()
}
