//! Running a command and reading what it did: one helper for each way the
//! tests ask, whatever the command.

use std::process::{Command, Output};

/// Run a command and return what it did (stdin is empty unless the caller set
/// it: `output` does not inherit it); panics only when it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Run a command, panic with its output unless it succeeds, return stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `out` succeeded (else a panic with what it printed); its stdout, which
/// must be UTF-8.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed ({}):\n{}",
        out.status,
        both(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `out` succeeded (else a panic with what it printed); its stdout, then its
/// stderr.
pub fn ok_both(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed ({}):\n{}",
        out.status,
        both(&out)
    );
    both(&out)
}

/// What a command printed: its stdout, then its stderr.
pub fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What a command printed on stderr, also echoed to the test's own output:
/// a test that fails on something else shows it too.
pub fn stderr(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("{text}");
    text
}

/// Whether `openssl verify -x509_strict` accepts `cert` against exactly the CA certificates
/// in `cafile`.
pub fn openssl_verifies(cafile: &std::path::Path, cert: &std::path::Path) -> bool {
    std::process::Command::new("openssl")
        .args(["verify", "-x509_strict", "-CAfile"])
        .arg(cafile)
        .arg(cert)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}"))
        .status
        .success()
}
