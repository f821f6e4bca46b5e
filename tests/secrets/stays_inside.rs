//! `verify` reads nothing outside its output directory: a recorded path with `..`, an absolute
//! one, or one through a symbolic link is refused even when its hash matches, and a symbolic
//! link anywhere in the output is refused rather than followed.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::tamper::{assert_verify_fails, copy_of_dir, fresh_output};
use crate::support::{self, sha256};

/// Add an artifact at `path` (as SHA256SUMS and manifest.json spell it)
/// with the hash and size of `real`, the file it resolves to, so that the
/// records agree and only the path itself is wrong.
fn record_artifact(out: &Path, path: &str, real: &Path) {
    let bytes = fs::read(real).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let arts = m["nodes"][0]["artifacts"].as_array_mut().unwrap();
    arts.push(serde_json::json!({
        "format": "tar",
        "path": path,
        "sha256": sha256(&bytes),
        "size": bytes.len(),
    }));
    let mut sums: Vec<String> = arts
        .iter()
        .map(|a| {
            format!(
                "{}  {}\n",
                a["sha256"].as_str().unwrap(),
                a["path"].as_str().unwrap()
            )
        })
        .collect();
    sums.sort();
    fs::write(out.join("SHA256SUMS"), sums.concat()).unwrap();
    let mut json = serde_json::to_vec_pretty(&m).unwrap();
    json.push(b'\n');
    fs::write(out.join("manifest.json"), json).unwrap();
}

#[test]
fn verify_refuses_paths_that_leave_the_output_directory() {
    support::require!(support::STANDIN);
    let (_dir, out) = fresh_output();
    // As many `..` as it takes from the output directory to /.
    let up = "../".repeat(out.components().count() - 1);
    let dotdot = format!("{up}etc/passwd");
    assert_eq!(
        fs::canonicalize(out.join(&dotdot)).unwrap(),
        Path::new("/etc/passwd")
    );
    for (case, path) in [
        ("dotdot", dotdot.as_str()),
        ("absolute", "/etc/passwd"),
        ("dotdot inside", "dist/../dist/x"),
    ] {
        let (_dir, out) = copy_of_dir(&out);
        let real = if case == "dotdot inside" {
            let real = out.join("dist/x");
            fs::write(&real, b"x").unwrap();
            real
        } else {
            PathBuf::from("/etc/passwd")
        };
        record_artifact(&out, path, &real);
        eprintln!("case: {case}");
        assert_verify_fails(&out, path, "inside the output directory");
    }

    // A path through a symbolic link, to a file with the right hash.
    let (_dir, out) = copy_of_dir(&out);
    std::os::unix::fs::symlink("/etc", out.join("dist/etc")).unwrap();
    record_artifact(&out, "dist/etc/passwd", Path::new("/etc/passwd"));
    eprintln!("case: through a symlink");
    assert_verify_fails(&out, "dist/etc", "symbolic link");
}

#[test]
fn verify_refuses_symbolic_links_and_does_not_follow_them() {
    support::require!(support::STANDIN);
    for (case, link, target) in [
        ("dist", "dist/passwd", "/etc/passwd"),
        ("node file", "nodes/etcd-1/opt/etcd/passwd", "/etc/passwd"),
        ("node dir", "nodes/etcd-1/opt/etcd/etc", "/etc"),
        ("pki", "pki/clients/elsewhere", "/etc"),
    ] {
        let (_dir, out) = fresh_output();
        std::os::unix::fs::symlink(target, out.join(link)).unwrap();
        eprintln!("case: {case}");
        assert_verify_fails(&out, link, "symbolic link");
    }
    // A link to a FIFO: a verify that followed it would block on the read
    // (nothing ever writes), so it must finish, and say why.
    let (dir, out) = fresh_output();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    std::os::unix::fs::symlink(&fifo, out.join("dist/fifo")).unwrap();
    let mut child = support::etcdpack()
        .arg("verify")
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("verify followed the link and blocked reading the FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.lines().any(|l| l.starts_with("FAIL")
            && l.contains("dist/fifo")
            && l.contains("symbolic link")),
        "{said}"
    );

    // A node tree that is itself a link to a copy of itself.
    let (_dir, out) = fresh_output();
    let tree = out.join("nodes/etcd-1");
    let moved = out.join("elsewhere");
    fs::rename(&tree, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &tree).unwrap();
    eprintln!("case: node tree");
    assert_verify_fails(&out, "nodes/etcd-1", "symbolic link");
}
