//! The TLS policy `etcd.conf` sets, proved against real members with
//! `openssl s_client`: Debian's etcd 3.4.23 (the stand-in release, as
//! 3.4.16) on 127.0.9.1 and trixie's 3.5 on 127.0.9.2, each started from a
//! copy of its node's tree with exactly its `etcd.conf`, with RSA and then
//! ECDSA keys. On the client port (2379, with a client certificate) and the
//! peer port (2380, with the node's own) each refuses TLS 1.1 and a TLS 1.2
//! CBC/SHA-1 suite, and accepts each AEAD suite etcd.conf names.
//!
//! The refusals would prove nothing if the client never offered what is
//! refused (Debian's OpenSSL 3 will not speak TLS 1.1 at its default
//! security level), so every refusal must be the server's alert, and the
//! same client arguments complete both handshakes with an `openssl
//! s_server` that allows them (127.0.9.3). Without `ETCD_CIPHER_SUITES`
//! the same members accept the CBC suite: the refusal is the policy's.

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use support::Gen;
use support::member::{Member, node_root, wait_healthy};

/// The key algorithms a cluster's certificates can have, with the OpenSSL
/// names of the suites that match them.
#[derive(Clone, Copy, Debug)]
enum Keys {
    Rsa,
    Ecdsa,
}

impl Keys {
    fn config(self) -> &'static str {
        match self {
            Keys::Rsa => "pki: { algorithm: rsa-2048 }\n",
            Keys::Ecdsa => "pki: { algorithm: ecdsa-p256 }\n",
        }
    }

    /// The TLS 1.2 CBC suite with SHA-1 (`TLS_ECDHE_*_WITH_AES_128_CBC_SHA`).
    fn cbc_sha1(self) -> &'static str {
        match self {
            Keys::Rsa => "ECDHE-RSA-AES128-SHA",
            Keys::Ecdsa => "ECDHE-ECDSA-AES128-SHA",
        }
    }

    /// The AEAD suites etcd.conf names for these keys.
    fn aead(self) -> [&'static str; 3] {
        match self {
            Keys::Rsa => [
                "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-RSA-AES256-GCM-SHA384",
                "ECDHE-RSA-CHACHA20-POLY1305",
            ],
            Keys::Ecdsa => [
                "ECDHE-ECDSA-AES128-GCM-SHA256",
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-CHACHA20-POLY1305",
            ],
        }
    }
}

/// s_client arguments offering TLS 1.1 only, with every suite OpenSSL has
/// (security level 0, below which OpenSSL 3 refuses TLS 1.1 itself).
const TLS_1_1: &[&str] = &["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"];

/// s_client arguments offering TLS 1.2 with `suite` alone.
fn tls_1_2(suite: &str) -> Vec<String> {
    vec![
        "-tls1_2".into(),
        "-cipher".into(),
        format!("{suite}:@SECLEVEL=0"),
    ]
}

/// What one `openssl s_client` handshake came to.
struct Handshake {
    ok: bool,
    protocol: String,
    cipher: String,
    text: String,
}

impl Handshake {
    /// Completed with `protocol` and `cipher`.
    fn assert_accepted(&self, what: &str, protocol: &str, cipher: &str) {
        assert!(
            self.ok && self.protocol == protocol && self.cipher == cipher,
            "{what}: not accepted with {protocol} {cipher}:\n{}",
            self.text
        );
    }

    /// Refused by the server's `alert`, not by the client's own rules.
    fn assert_refused(&self, what: &str, alert: &str) {
        assert!(!self.ok, "{what}: accepted:\n{}", self.text);
        assert!(
            self.text.contains(alert),
            "{what}: no {alert:?} from the server:\n{}",
            self.text
        );
        for own in ["no protocols available", "no ciphers available"] {
            assert!(!self.text.contains(own), "{what}: {own}:\n{}", self.text);
        }
    }
}

/// A TLS handshake with `addr` by `openssl s_client` with `args`: the CA of
/// the cluster `out` verifies the server (chain and IP address),
/// `cert`/`key` is the client's certificate.
fn handshake(addr: &str, out: &Path, cert: &Path, key: &Path, args: &[String]) -> Handshake {
    let ip = addr.rsplit_once(':').unwrap().0;
    let result = Command::new("openssl")
        .args(["s_client", "-brief", "-connect", addr, "-verify_ip", ip])
        .arg("-verify_return_error")
        .arg("-CAfile")
        .arg(out.join("pki/ca.pem"))
        .arg("-cert")
        .arg(cert)
        .arg("-key")
        .arg(key)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = support::both(&result);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    Handshake {
        ok: result.status.success(),
        protocol: field("Protocol version:"),
        cipher: field("Ciphersuite:"),
        text: format!("openssl s_client -connect {addr} {args:?}\n{text}"),
    }
}

/// Where a port is reached from and with which certificate: the client
/// port with the `etcdctl` client certificate, the peer port with the
/// node's own (the only kind it admits).
fn ports(g: &Gen, root: &Path, ip: &str) -> [(String, PathBuf, PathBuf); 2] {
    let clients = g.out.join("pki/clients");
    let ssl = root.join("opt/etcd/ssl");
    [
        (
            format!("{ip}:2379"),
            clients.join("etcdctl.pem"),
            clients.join("etcdctl-key.pem"),
        ),
        (
            format!("{ip}:2380"),
            ssl.join("server.pem"),
            ssl.join("server-key.pem"),
        ),
    ]
}

/// gen of one node on `ip` with `keys`, on the 3.4 stand-in or, with
/// `release_3_5`, on the 3.5 one (its configured version is the one its
/// etcd reports); the copy of its tree a member runs from.
fn node(ip: &str, keys: Keys, release_3_5: bool, work: &Path) -> (Gen, PathBuf) {
    let g = if release_3_5 {
        let s = support::standin_3_5();
        let g = Gen::new(
            &[ip],
            &format!(
                "{}etcd: {{ version: \"{}\", sha256: \"{}\" }}\n",
                keys.config(),
                s.version,
                s.sha256
            ),
        );
        let tarball = s.path.to_str().unwrap();
        g.run_ok(&["--etcd-tarball", tarball, "--etcd-sha256", &s.sha256]);
        g
    } else {
        let g = Gen::new(&[ip], keys.config());
        g.run_ok(&[]);
        g
    };
    let root = node_copy(&g, work, keys);
    (g, root)
}

/// The copy of the node's tree under `work/<keys>/`.
fn node_copy(g: &Gen, work: &Path, keys: Keys) -> PathBuf {
    let dir = work.join(format!("{keys:?}"));
    fs::create_dir_all(&dir).unwrap();
    node_root(g, &dir, "etcd-1")
}

/// Starts the member of `root` and waits for it, on `ip`.
fn start(root: &Path, ip: &str) -> Member {
    let member = Member::start(root);
    wait_healthy(root, &format!("https://{ip}:2379"), &[&member]);
    member
}

/// Both ports of the member on `ip` (cluster `g`, tree `root`) refuse TLS
/// 1.1 and the CBC/SHA-1 suite and accept every AEAD suite of `keys`.
fn assert_policy(g: &Gen, root: &Path, ip: &str, keys: Keys, line: &str) {
    for (addr, cert, key) in ports(g, root, ip) {
        let what = |w: &str| format!("etcd {line} {keys:?} {addr}: {w}");
        let old: Vec<String> = TLS_1_1.iter().map(|a| a.to_string()).collect();
        handshake(&addr, &g.out, &cert, &key, &old)
            .assert_refused(&what("TLS 1.1"), "alert protocol version");
        handshake(&addr, &g.out, &cert, &key, &tls_1_2(keys.cbc_sha1()))
            .assert_refused(&what(keys.cbc_sha1()), "alert handshake failure");
        for suite in keys.aead() {
            handshake(&addr, &g.out, &cert, &key, &tls_1_2(suite)).assert_accepted(
                &what(suite),
                "TLSv1.2",
                suite,
            );
        }
    }
}

/// The member runs with every variable of its etcd.conf known to it: etcd
/// only warns at an `ETCD_*` variable it does not know.
fn assert_no_unknown_variable(member: &Member, line: &str) {
    let log = member.log();
    assert!(
        !log.contains("unrecognized environment variable"),
        "etcd {line}:\n{log}"
    );
}

/// The policy on one line: for RSA and ECDSA keys, etcd.conf holds the
/// suites (and `ETCD_TLS_MIN_VERSION` exactly when `min_version`), the
/// member knows all it is given, and both ports keep to the policy. Then,
/// as a control, the RSA member without `ETCD_CIPHER_SUITES` (and with a
/// variable no etcd knows) accepts the CBC suite on both ports and warns
/// about that variable: the checks above can fail.
fn policy_holds(ip: &str, release_3_5: bool, min_version: bool) {
    let line = if release_3_5 { "3.5" } else { "3.4" };
    let work = tempfile::tempdir().unwrap();
    let mut rsa = None;
    for keys in [Keys::Rsa, Keys::Ecdsa] {
        let (g, root) = node(ip, keys, release_3_5, work.path());
        let conf = fs::read_to_string(root.join("opt/etcd/cfg/etcd.conf")).unwrap();
        assert!(
            conf.contains("\nETCD_CIPHER_SUITES=TLS_ECDHE_"),
            "etcd {line}:\n{conf}"
        );
        assert_eq!(
            conf.contains("\nETCD_TLS_MIN_VERSION=TLS1.2\n"),
            min_version,
            "etcd {line}:\n{conf}"
        );
        let member = start(&root, ip);
        assert_policy(&g, &root, ip, keys, line);
        assert_no_unknown_variable(&member, line);
        member.stop();
        if let Keys::Rsa = keys {
            rsa = Some((g, root));
        }
    }

    let (g, root) = rsa.unwrap();
    let path = root.join("opt/etcd/cfg/etcd.conf");
    let conf = fs::read_to_string(&path).unwrap();
    let without: String = conf
        .lines()
        .filter(|l| !l.starts_with("ETCD_CIPHER_SUITES="))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, conf);
    fs::write(&path, format!("{without}ETCD_NO_SUCH_SETTING=1\n")).unwrap();
    let member = start(&root, ip);
    for (addr, cert, key) in ports(&g, &root, ip) {
        handshake(&addr, &g.out, &cert, &key, &tls_1_2(Keys::Rsa.cbc_sha1())).assert_accepted(
            &format!("etcd {line} without the policy, {addr}"),
            "TLSv1.2",
            Keys::Rsa.cbc_sha1(),
        );
    }
    let log = member.log();
    assert!(
        log.contains("unrecognized environment variable") && log.contains("ETCD_NO_SUCH_SETTING"),
        "etcd {line} did not warn about ETCD_NO_SUCH_SETTING:\n{log}"
    );
}

#[test]
fn etcd_3_4_refuses_tls_1_1_and_cbc_suites_on_both_ports() {
    support::require!(support::STANDIN, support::OPENSSL);
    policy_holds("127.0.9.1", false, false);
}

#[test]
fn etcd_3_5_refuses_tls_1_1_and_cbc_suites_on_both_ports() {
    support::require!(support::STANDIN, support::STANDIN_3_5, support::OPENSSL);
    policy_holds("127.0.9.2", true, true);
}

/// `openssl s_server` on 127.0.9.3 with `args`, stopped when dropped.
struct Server(Child);

impl Server {
    fn start(port: u16, cert: &Path, key: &Path, args: &[String]) -> Server {
        let mut server = Server(
            Command::new("openssl")
                .args(["s_server", "-www", "-accept"])
                .arg(format!("127.0.9.3:{port}"))
                .arg("-cert")
                .arg(cert)
                .arg("-key")
                .arg(key)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // It says ACCEPT once it listens.
        let ready = BufReader::new(server.0.stdout.as_mut().unwrap())
            .lines()
            .map_while(Result::ok)
            .any(|l| l == "ACCEPT");
        assert!(ready, "s_server {args:?} did not start");
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The client arguments the refusals above use really offer TLS 1.1 and
/// the CBC/SHA-1 suites: a server that allows them completes both
/// handshakes, for RSA and ECDSA keys.
#[test]
fn the_client_offers_what_the_members_refuse() {
    support::require!(support::STANDIN, support::OPENSSL);
    let work = tempfile::tempdir().unwrap();
    for (keys, port) in [(Keys::Rsa, 4431), (Keys::Ecdsa, 4432)] {
        let g = Gen::new(&["127.0.9.3"], keys.config());
        g.run_ok(&[]);
        let root = node_copy(&g, work.path(), keys);
        let ssl = root.join("opt/etcd/ssl");
        let (cert, key) = (ssl.join("server.pem"), ssl.join("server-key.pem"));
        let addr = format!("127.0.9.3:{port}");
        let old: Vec<String> = TLS_1_1.iter().map(|a| a.to_string()).collect();

        let server = Server::start(port, &cert, &key, &old);
        let h = handshake(&addr, &g.out, &cert, &key, &old);
        assert_eq!(h.protocol, "TLSv1.1", "{}", h.text);
        assert!(h.ok, "{}", h.text);
        drop(server);

        let cbc = tls_1_2(keys.cbc_sha1());
        let _server = Server::start(port + 10, &cert, &key, &cbc);
        let addr = format!("127.0.9.3:{}", port + 10);
        handshake(&addr, &g.out, &cert, &key, &cbc).assert_accepted(
            &format!("s_server {keys:?}"),
            "TLSv1.2",
            keys.cbc_sha1(),
        );
    }
}
