//! Artifacts read back by the distributions' own tools, never by etcdpack's
//! reader: GNU tar for the bundle, `dpkg-deb` for the .deb, `rpm` and
//! `rpm2cpio` with `cpio` for the .rpm. What a test reads here is what a
//! machine installing the artifact would get.

use std::fs;
use std::path::Path;
use std::process::Command;

use etcdpack::package::Format;

use super::{run, run_ok, sha256};

/// One entry of an artifact's file tree as the real tools list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Absolute: `/opt/etcd/bin/etcd`.
    pub path: String,
    /// The permission bits, set-id and sticky bits included.
    pub mode: u32,
    pub dir: bool,
    /// SHA-256 of the extracted bytes; empty for a directory or a ghost.
    pub sha256: String,
    /// An .rpm's `%ghost`: the package owns the path but carries no bytes
    /// for it (a sealed node's unsealed key).
    pub ghost: bool,
}

/// The format of `artifact`, by its name.
pub fn format_of(artifact: &Path) -> Format {
    let name = artifact.to_string_lossy();
    if name.ends_with(".tar.gz") {
        Format::Tar
    } else if name.ends_with(".deb") {
        Format::Deb
    } else if name.ends_with(".rpm") {
        Format::Rpm
    } else {
        panic!("{name}: not an artifact")
    }
}

/// Every entry of `artifact`'s file tree (the .deb's data, the .rpm's
/// payload, what the bundle holds under `<name>/root/`: its `install.sh`
/// installs that tree and is not part of it), listed by the format's tool
/// and extracted by it, in the order the artifact holds them.
pub fn entries(artifact: &Path) -> Vec<Listed> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Where each listed path was extracted, below `root`.
    let mut under = String::new();
    let listed: Vec<(String, u32, bool, bool)> = match format_of(artifact) {
        Format::Tar => {
            run_ok(
                Command::new("tar")
                    .arg("-xzf")
                    .arg(artifact)
                    .arg("-C")
                    .arg(root),
            );
            let stem = artifact.file_name().unwrap().to_string_lossy();
            under = format!("{}/root", stem.trim_end_matches(".tar.gz"));
            let top = format!("/{under}");
            tar_listing(&run_ok(
                Command::new("tar")
                    .args(["--numeric-owner", "-tvzf"])
                    .arg(artifact),
            ))
            .into_iter()
            .filter_map(|(path, mode, dir)| match path.strip_prefix(&top)? {
                "" => Some(("/".to_owned(), mode, dir, false)),
                p if p.starts_with('/') => Some((p.to_owned(), mode, dir, false)),
                _ => None,
            })
            .collect()
        }
        Format::Deb => {
            run_ok(Command::new("dpkg-deb").arg("-x").arg(artifact).arg(root));
            tar_listing(&run_ok(Command::new("dpkg-deb").arg("-c").arg(artifact)))
                .into_iter()
                .map(|(path, mode, dir)| (path, mode, dir, false))
                .collect()
        }
        Format::Rpm => {
            run_ok(
                Command::new("bash")
                    .args([
                        "-c",
                        "set -o pipefail; rpm2cpio \"$1\" | cpio -idm --quiet",
                        "-",
                    ])
                    .arg(artifact)
                    .current_dir(root),
            );
            rpm_listing(&run_ok(
                Command::new("rpm")
                    .args(["-qp", "--nosignature", "--nodigest", "--qf", RPM_FILES])
                    .arg(artifact),
            ))
        }
    };
    let extracted = root.join(under);
    listed
        .into_iter()
        .map(|(path, mode, dir, ghost)| {
            let sha256 = if dir || ghost {
                String::new()
            } else {
                {
                    let file = extracted.join(path.trim_start_matches('/'));
                    let data = fs::read(&file).unwrap_or_else(|e| {
                        panic!("{}: {path} listed, not extracted: {e}", artifact.display())
                    });
                    sha256(&data)
                }
            };
            Listed {
                path,
                mode,
                dir,
                sha256,
                ghost,
            }
        })
        .collect()
}

/// `tar -tv` lines (`drwxr-xr-x 0/0 0 2023-11-14 22:13 ./opt/etcd/`) as
/// (absolute path, mode, is a directory). Only directories and regular files
/// are expected in an artifact: anything else fails the test.
fn tar_listing(text: &str) -> Vec<(String, u32, bool)> {
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert!(fields.len() == 6, "an unexpected tar entry: {line}");
            let perms = fields[0];
            let dir = match perms.as_bytes()[0] {
                b'd' => true,
                b'-' => false,
                _ => panic!("neither a file nor a directory: {line}"),
            };
            let path = format!("/{}", fields[5].trim_start_matches("./"));
            let path = match path.trim_end_matches('/') {
                "" => "/".to_owned(),
                p => p.to_owned(),
            };
            (path, mode_of_perms(&perms[1..]), dir)
        })
        .collect()
}

/// `rwsr-x--T` as 0o5754.
fn mode_of_perms(p: &str) -> u32 {
    let b = p.as_bytes();
    assert_eq!(b.len(), 9, "{p}");
    let mut mode = 0;
    for (i, c) in b.iter().enumerate() {
        let bit = 1 << (8 - i);
        match c {
            b'r' | b'w' | b'x' => mode |= bit,
            b's' | b't' => mode |= bit,
            _ => {}
        }
    }
    for (i, special) in [(2, 0o4000), (5, 0o2000), (8, 0o1000)] {
        if matches!(b[i], b's' | b'S' | b't' | b'T') {
            mode |= special;
        }
    }
    mode
}

/// Each file of an .rpm's header as `rpm -q --qf` gives it: its mode
/// (octal, with the type), its flags (`c` config, `g` ghost, …) and path.
const RPM_FILES: &str = "[%{FILEMODES:octal}|%{FILEFLAGS:fflags}|%{FILENAMES}\\n]";

/// [`RPM_FILES`] lines as (path, mode, is a directory, is a ghost).
fn rpm_listing(text: &str) -> Vec<(String, u32, bool, bool)> {
    text.lines()
        .map(|line| {
            let mut fields = line.splitn(3, '|');
            let (Some(mode), Some(flags), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                panic!("an unexpected rpm entry: {line}")
            };
            let mode = u32::from_str_radix(mode, 8).unwrap();
            let kind = mode & 0o170000;
            assert!(
                kind == 0o040000 || kind == 0o100000,
                "neither a file nor a directory: {line}"
            );
            (
                path.to_owned(),
                mode & 0o7777,
                kind == 0o040000,
                flags.contains('g'),
            )
        })
        .collect()
}

/// What can hold a secret in `artifact`, as the real tools give it: the
/// file's own bytes, then every stream inside decompressed (the .deb's
/// control and data archives by `dpkg-deb`, the .rpm's payload by
/// `rpm2cpio`, the bundle's tar by `gzip`). The .rpm's header is in the
/// file's own bytes uncompressed.
pub fn streams(artifact: &Path) -> Vec<Vec<u8>> {
    let mut streams = vec![fs::read(artifact).unwrap()];
    let mut inflated = |cmd: &mut Command| {
        let out = run(cmd);
        assert!(
            out.status.success(),
            "{:?}: {}",
            cmd,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty(), "{cmd:?} gave nothing");
        streams.push(out.stdout);
    };
    match format_of(artifact) {
        Format::Tar => inflated(Command::new("gzip").arg("-dc").arg(artifact)),
        Format::Deb => {
            inflated(Command::new("dpkg-deb").arg("--ctrl-tarfile").arg(artifact));
            inflated(Command::new("dpkg-deb").arg("--fsys-tarfile").arg(artifact));
        }
        Format::Rpm => inflated(Command::new("rpm2cpio").arg(artifact)),
    }
    streams
}
