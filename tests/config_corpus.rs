//! Every file under tests/configs/bad is a config a user could write by
//! mistake. Each must fail with exit code 2, a message naming the file (and
//! the line and column where there is one) and the fix, and write nothing.
//! The messages are snapshots: a change in wording is a reviewed change.

mod support;

use std::path::Path;

use support::etcdpack;

#[test]
fn every_bad_config_is_refused_clearly_and_writes_nothing() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "the corpus has {} configs", files.len());
    let scratch = tempfile::tempdir().unwrap();
    for file in files {
        let name = file.file_name().unwrap().to_str().unwrap().to_owned();
        let out_dir = scratch.path().join(&name).join("out");
        let out = etcdpack()
            .current_dir(&dir)
            .args(["gen", "--config", &name, "--out"])
            .arg(&out_dir)
            .args(["--cache-dir"])
            .arg(scratch.path().join("cache"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(out.stdout.is_empty(), "{name}: stdout must stay empty");
        assert!(
            stderr.contains(&name),
            "{name}: the message must name the file:\n{stderr}"
        );
        assert!(
            stderr.contains("help: "),
            "{name}: the message must say what to do:\n{stderr}"
        );
        assert!(!out_dir.exists(), "{name}: nothing may be written");
        assert!(
            !scratch.path().join("cache").exists(),
            "{name}: nothing may be downloaded"
        );
        insta::assert_snapshot!(name.trim_end_matches(".yaml"), stderr);
    }
}
