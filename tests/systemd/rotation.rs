//! The CA rotated on a running cluster: `etcdpack rotate-ca trust`, `issue` and `retire`, each
//! phase's packages installed one node at a time while a writer writes and a sampler asks every
//! member's health. Run by the .deb scenario on 3.4 and by the upgrade scenario once it runs 3.5.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use crate::cluster::{Cluster, Format, Writer, served_pem};
use crate::restarts::Sampler;
use crate::strangers;
use crate::support;

/// `etcdctl put` from the host to every member with `cert`/`key`, trusting `cafile`.
fn put_with(c: &Cluster, cafile: &Path, cert: &Path, key: &Path, what: &str) -> Output {
    put_at(c, &[1, 2, 3], cafile, cert, key, what)
}

/// [`put_with`] to `members` only.
fn put_at(
    c: &Cluster,
    members: &[usize],
    cafile: &Path,
    cert: &Path,
    key: &Path,
    what: &str,
) -> Output {
    let endpoints: Vec<String> = members.iter().map(|&i| c.endpoint(i)).collect();
    Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", endpoints.join(",")))
        .arg(format!("--cacert={}", cafile.display()))
        .arg(format!("--cert={}", cert.display()))
        .arg(format!("--key={}", key.display()))
        .args(["--dial-timeout=3s", "--command-timeout=5s", "put"])
        // Under /registry/, which kube-apiserver's role may write (auth is on).
        .arg(format!("/registry/e2e-rotation/{what}"))
        .arg(what)
        .output()
        .unwrap()
}

/// etcd reads its trusted CA file when it starts (etcd#11555): the trust bundle written onto
/// node 1 by hand leaves a client of the next CA refused there, until the trust phase's
/// package restarts the member, and then it is let in.
fn a_bundle_counts_once_its_member_restarted(c: &Cluster, pki: &Path, dir: &Path) {
    // Named etcdctl, a root user of the access policy: refused or let in by TLS alone.
    let (cert, key) = strangers::issue(
        dir,
        "probe",
        "etcdctl",
        &[],
        &pki.join("next-ca.pem"),
        &pki.join("next-ca-key.pem"),
    );
    let bundle = fs::read(c.generated.out.join("nodes/etcd-1/opt/etcd/ssl/ca.pem")).unwrap();
    let cafile = pki.join("clients/ca-bundle.pem");
    let before = put_at(c, &[1], &cafile, &cert, &key, "probe-before");
    assert!(
        !before.status.success(),
        "etcd-1 let a client of the next CA in already"
    );
    c.node(1).write_file("/opt/etcd/ssl/ca.pem", &bundle, 0o644);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let unreloaded = put_at(c, &[1], &cafile, &cert, &key, "probe-unreloaded");
    assert!(
        !unreloaded.status.success(),
        "etcd-1 took the new trust bundle without a restart: the workaround may go"
    );
    c.install_package(1, Format::Deb, c.release(1));
    let after = put_at(c, &[1], &cafile, &cert, &key, "probe-after");
    assert!(
        after.status.success(),
        "etcd-1 refuses a client of the next CA after the trust phase: {}",
        String::from_utf8_lossy(&after.stderr)
    );
}

/// Rotates the CA of `c` through its three phases (`run` runs `rotate-ca PHASE` against the
/// cluster's output), each rolled out one node at a time; then checks that every member serves
/// a certificate of the new CA only, that a client of the old CA is refused while the new
/// etcdctl and kube-apiserver certificates work, and that no node holds the old CA's key.
pub fn rotate_the_ca(c: &Cluster, format: Format, run: &dyn Fn(&str) -> Output) {
    let pki = c.generated.out.join("pki");
    let scratch = tempfile::tempdir().unwrap();
    // A client of the old CA, kept aside: its certificate and key, and the old CA.
    let keep = |from: &str, to: &str| {
        let to = scratch.path().join(to);
        fs::copy(pki.join(from), &to).unwrap();
        to
    };
    let old_ca = keep("ca.pem", "old-ca.pem");
    let old_cert = keep("clients/etcdctl.pem", "old-etcdctl.pem");
    let old_key = keep("clients/etcdctl-key.pem", "old-etcdctl-key.pem");
    let old_ca_key = fs::read_to_string(pki.join("ca-key.pem")).unwrap();

    let writer = Writer::start(c, &pki);
    let sampler = Sampler::start(c, &pki);
    for phase in ["trust", "issue", "retire"] {
        let out = run(phase);
        assert!(
            out.status.success(),
            "rotate-ca {phase}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if phase == "trust" && format == Format::Deb {
            a_bundle_counts_once_its_member_restarted(c, &pki, scratch.path());
        }
        for i in 1..=3 {
            c.install_package(i, format, c.release(i));
            c.wait_healthy(i % 3 + 1, &[1, 2, 3]);
        }
        c.log(&format!("CA rotation: {phase} rolled out"));
    }
    let samples = sampler.stop();
    let acked = writer.stop();
    for (at, healthy, text) in &samples {
        assert!(
            *healthy >= 2,
            "{healthy} of 3 members healthy {at:?} into the CA rotation:\n{text}\n{}",
            c.diagnose()
        );
    }
    c.assert_written(&acked);

    let new_ca = pki.join("ca.pem");
    assert_ne!(fs::read(&new_ca).unwrap(), fs::read(&old_ca).unwrap());
    for i in 1..=3 {
        let cert = scratch.path().join(format!("served-{i}.pem"));
        let pem = served_pem(&c.ips[i - 1], &pki)
            .unwrap_or_else(|| panic!("etcd-{i} serves no certificate"));
        fs::write(&cert, pem).unwrap();
        assert!(
            support::openssl_verifies(&new_ca, &cert),
            "etcd-{i} serves no certificate of the new CA"
        );
        assert!(
            !support::openssl_verifies(&old_ca, &cert),
            "etcd-{i}'s certificate chains to the old CA"
        );
        let trusted = c.node(i).exec_ok(&["cat", "/opt/etcd/ssl/ca.pem"]);
        assert_eq!(
            trusted,
            fs::read_to_string(&new_ca).unwrap(),
            "etcd-{i} trusts more"
        );
    }
    // A client of the old CA is refused; the new etcdctl and kube-apiserver certificates work.
    let refused = put_with(c, &new_ca, &old_cert, &old_key, "old-client");
    assert!(
        !refused.status.success(),
        "a client of the old CA was let in"
    );
    for client in ["etcdctl", "kube-apiserver"] {
        let out = put_with(
            c,
            &new_ca,
            &pki.join(format!("clients/{client}.pem")),
            &pki.join(format!("clients/{client}-key.pem")),
            client,
        );
        assert!(
            out.status.success(),
            "{client}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // No file of any node holds the old CA's key.
    let body_line = old_ca_key
        .lines()
        .find(|l| !l.starts_with("-----"))
        .unwrap()
        .to_owned();
    for i in 1..=3 {
        let found = c.node(i).exec(&[
            "grep",
            "-rlF",
            "--",
            &body_line,
            "/opt",
            "/etc",
            "/var/lib",
            "/usr/lib/systemd",
            "/srv",
        ]);
        assert_eq!(
            found.status.code(),
            Some(1),
            "etcd-{i} holds the old CA's key: {}",
            String::from_utf8_lossy(&found.stdout)
        );
    }
    eprintln!(
        "CA rotated: {} samples, none below 2 of 3 healthy; {} writes acknowledged",
        samples.len(),
        acked.len()
    );
}
