//! What `etcdpack publish` signs, judged by Sequoia under its standard
//! policy, which refuses SHA-1: `sqv` (what Debian 13's apt verifies with)
//! verifies `Release.gpg` and `repomd.xml.asc` with the published key and
//! refuses a copy of the data one byte off; `sq` verifies the clearsigned
//! `InRelease`, finds the key valid and able to sign, and every signature
//! in the key and beside the indexes a v4 signature over SHA-256 or
//! SHA-512, as `sq packet dump` and the packets' own bytes say, made no
//! earlier than the self-signature that binds the key (Sequoia judges a
//! key as it was when it signed). Both key algorithms `etcdpack
//! signing-key` makes are judged. A key and signatures gpg makes with
//! SHA-1 show that the same check sees SHA-1, and that sqv and sq refuse
//! it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use base64::Engine as _;

use crate::support::publishing::{ed25519_key, generated, rsa_key};
use crate::support::{self, Gen, both, run, run_ok};

/// The hash algorithms etcdpack signs with, as `sq` names them and as
/// their OpenPGP ids (RFC 4880, 9.4).
const SHA_2: [(&str, u8); 2] = [("SHA256", 8), ("SHA512", 10)];

/// A repository per key algorithm, each published from the same three
/// nodes' .deb and .rpm packages.
struct Published {
    repos: Vec<Repo>,
    _gen: Gen,
}

struct Repo {
    /// `rsa-4096` or `ed25519`.
    algorithm: &'static str,
    /// The OpenPGP public-key algorithm id of its signatures (RFC 4880,
    /// 9.1; 22 is EdDSA).
    pk_algo: u8,
    root: PathBuf,
}

impl Repo {
    /// The public key clients import.
    fn cert(&self) -> PathBuf {
        self.root.join("etcd-test.asc")
    }

    /// The dnf/yum metadata directory of the one architecture published.
    fn repodata(&self) -> PathBuf {
        let stable = self.root.join("rpm/stable");
        let archs: Vec<PathBuf> = fs::read_dir(&stable)
            .unwrap_or_else(|e| panic!("{}: {e}", stable.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(archs.len(), 1, "{archs:?}");
        archs[0].join("repodata")
    }
}

fn published() -> &'static [Repo] {
    static PUBLISHED: OnceLock<Published> = OnceLock::new();
    &PUBLISHED
        .get_or_init(|| {
            let g = generated("deb, rpm");
            let ed25519 = ed25519_key(g.dir.path());
            let mut repos = Vec::new();
            for (algorithm, pk_algo, key) in [
                ("ed25519", 22, ed25519),
                ("rsa-4096", 1, rsa_key().to_owned()),
            ] {
                let root = g.dir.path().join(format!("repo-{algorithm}"));
                super::publish_signed(&g.out, &root, &key, &[]);
                repos.push(Repo {
                    algorithm,
                    pk_algo,
                    root,
                });
            }
            Published { repos, _gen: g }
        })
        .repos
}

#[test]
fn sqv_verifies_release_gpg_and_repomd_xml_asc_and_refuses_data_one_byte_off() {
    support::require!(support::STANDIN, support::SQV, support::SQ);
    let work = tempfile::tempdir().unwrap();
    for repo in published() {
        let fingerprint = fingerprint(&repo.cert());
        let dists = repo.root.join("dists/stable");
        let repodata = repo.repodata();
        for (signature, data) in [
            (dists.join("Release.gpg"), dists.join("Release")),
            (repodata.join("repomd.xml.asc"), repodata.join("repomd.xml")),
        ] {
            let what = format!(
                "{}: {}",
                repo.algorithm,
                signature.strip_prefix(&repo.root).unwrap().display()
            );
            let out = sqv(&repo.cert(), &signature, &data);
            assert!(out.status.success(), "{what}:\n{}", both(&out));
            // sqv names the key of each good signature.
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                fingerprint,
                "{what}"
            );

            // The same data with one byte changed.
            let mut changed = fs::read(&data).unwrap();
            let i = changed.len() / 2;
            changed[i] ^= 0x01;
            let copy = work.path().join(format!("{}-changed", repo.algorithm));
            fs::write(&copy, &changed).unwrap();
            let out = sqv(&repo.cert(), &signature, &copy);
            assert!(!out.status.success(), "{what}: accepted a changed byte");
            assert!(out.stdout.is_empty(), "{what}:\n{}", both(&out));
        }
    }
}

#[test]
fn sq_verifies_in_release_and_finds_only_v4_sha_2_signatures_by_a_key_bound_before_them() {
    support::require!(support::STANDIN, support::SQ);
    for repo in published() {
        let cert = repo.cert();
        let fingerprint = fingerprint(&cert);
        let dists = repo.root.join("dists/stable");
        let repodata = repo.repodata();
        let about = |f: &Path| {
            let f = f.strip_prefix(&repo.root).unwrap_or(f);
            format!("{}: {}", repo.algorithm, f.display())
        };

        // The key: valid under the standard policy, certifying and
        // signing, every self-signature and binding v4 over SHA-2.
        let inspected = run_ok(sq(&["inspect"]).arg(&cert));
        assert!(!inspected.contains("Invalid"), "{inspected}");
        let flags: Vec<&str> = inspected
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Key flags: "))
            .collect();
        assert_eq!(flags, ["certification, signing"], "{inspected}");
        let in_cert = signatures(&run_ok(sq(&["packet", "dump"]).arg(&cert)));
        let (embedded, own): (Vec<&Sig>, Vec<&Sig>) = in_cert.iter().partition(|s| s.embedded);
        assert!(
            own.iter().any(|s| s.get("Type") == "PositiveCertification"),
            "{}: no self-signature of the user ID: {in_cert:#?}",
            about(&cert)
        );
        for s in &own {
            assert!(
                [
                    "PositiveCertification",
                    "GenericCertification",
                    "DirectKey",
                    "SubkeyBinding",
                ]
                .contains(&s.get("Type")),
                "{}: {s:#?}",
                about(&cert)
            );
        }
        for s in &embedded {
            assert_eq!(s.get("Type"), "PrimaryKeyBinding", "{}", about(&cert));
        }
        assert_eq!(
            not_v4_sha_2(&in_cert),
            Vec::<&Sig>::new(),
            "{}",
            about(&cert)
        );
        // When the key was bound to its user ID (and so could sign).
        let bound: Vec<&str> = own
            .iter()
            .filter(|s| s.get("Type") != "SubkeyBinding")
            .map(|s| s.hashed("Signature creation time"))
            .collect();
        assert!(bound.iter().all(|t| !t.is_empty()), "{in_cert:#?}");

        // Each published signature: one v4 signature by the key, of the
        // kind its client verifies (binary for the detached ones, text for
        // InRelease), over SHA-2, made when the key was bound: Sequoia
        // judges a key as it was when the signature was made, and refuses
        // a signature older than every self-signature of its key ("No
        // binding signature at time …").
        let in_release = dists.join("InRelease");
        for (file, kind) in [
            (in_release.clone(), "Text"),
            (dists.join("Release.gpg"), "Binary"),
            (repodata.join("repomd.xml.asc"), "Binary"),
        ] {
            let what = about(&file);
            let sigs = signatures(&run_ok(sq(&["packet", "dump"]).arg(&file)));
            assert_eq!(sigs.len(), 1, "{what}: {sigs:#?}");
            assert_eq!(not_v4_sha_2(&sigs), Vec::<&Sig>::new(), "{what}");
            assert_eq!(sigs[0].get("Type"), kind, "{what}: {sigs:#?}");
            assert_eq!(
                sigs[0].hashed("Issuer Fingerprint"),
                fingerprint,
                "{what}: {sigs:#?}"
            );
            let made = sigs[0].hashed("Signature creation time");
            assert!(
                !made.is_empty() && bound.iter().any(|&t| t <= made),
                "{what}: made at {made}, before the key's self-signature (made at {bound:?}) \
                 bound it to its user ID: sqv and sq find no binding signature at that time"
            );
        }

        // The same, from the packets' own bytes: the detached signatures
        // are one signature packet (tag 2), version 4, type 0x00 (a
        // signature of a binary document), by the key's algorithm, over
        // SHA-256 or SHA-512.
        for file in [dists.join("Release.gpg"), repodata.join("repomd.xml.asc")] {
            let what = about(&file);
            let packets = packets(&fs::read_to_string(&file).unwrap());
            assert_eq!(packets.len(), 1, "{what}");
            let (tag, body) = &packets[0];
            assert_eq!(*tag, 2, "{what}: not a signature packet");
            assert_eq!(body[0], 4, "{what}: version");
            assert_eq!(body[1], 0x00, "{what}: signature type");
            assert_eq!(body[2], repo.pk_algo, "{what}: public-key algorithm");
            assert!(
                SHA_2.iter().any(|&(_, id)| id == body[3]),
                "{what}: hash algorithm {}",
                body[3]
            );
        }

        // InRelease: its armor names SHA-2 only; sq verifies it and gives
        // back the text of Release; one byte changed, it is refused.
        let what = about(&in_release);
        let text = fs::read_to_string(&in_release).unwrap();
        let hashes: Vec<&str> = text
            .lines()
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.strip_prefix("Hash: "))
            .collect();
        assert!(
            !hashes.is_empty() && hashes.iter().all(|h| is_sha_2(h)),
            "{what}: armor headers {hashes:?}"
        );
        let out = run(sq(&["verify", "--signer-cert"]).arg(&cert).arg(&in_release));
        assert!(out.status.success(), "{what}:\n{}", both(&out));
        // The line break before the armor is the framework's, not the
        // text's: sq ends the text it gives back with one of its own.
        let release = fs::read_to_string(dists.join("Release")).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim_end_matches('\n'),
            release.trim_end_matches('\n'),
            "{what}"
        );
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains(&format!("Good signature from {}", &fingerprint[24..]))
                && said.contains("1 good signature."),
            "{what}: {said}"
        );
        let body = text.find("\n\n").unwrap() + 2;
        let mut changed = text.into_bytes();
        changed[body] ^= 0x20; // "Origin" becomes "origin"
        let copy = tempfile::NamedTempFile::new().unwrap();
        fs::write(copy.path(), &changed).unwrap();
        let out = run(sq(&["verify", "--signer-cert"]).arg(&cert).arg(copy.path()));
        assert!(!out.status.success(), "{what}: accepted a changed byte");
        assert!(out.stdout.is_empty(), "{what}: {}", both(&out));
    }
}

/// gpg with the keyring of `home`, unattended, which must succeed; its stdout.
fn gpg_in(home: &Path, args: &[&str]) -> Vec<u8> {
    let out = run(Command::new("gpg")
        .env("GNUPGHOME", home)
        .args(["--batch", "--no-tty", "--passphrase", ""])
        .args(args));
    assert!(out.status.success(), "gpg {args:?}:\n{}", both(&out));
    out.stdout
}

/// The negative control of the checks above, with gpg's own SHA-1: a key
/// whose self-signature is SHA-1, and a SHA-1 signature by a key that is
/// fine, which the same key's SHA-256 signature of the same data shows.
#[test]
fn the_check_finds_gpg_sha_1_signatures_which_sqv_and_sq_refuse() {
    support::require!(support::GPG, support::SQV, support::SQ);
    let home = tempfile::tempdir().unwrap();
    let gpg = |args: &[&str]| gpg_in(home.path(), args);
    let file = |name: &str| home.path().join(name).to_str().unwrap().to_owned();
    let data = file("data");
    fs::write(&data, "Origin: etcdpack\n").unwrap();

    // A key certified with SHA-1.
    gpg(&[
        "--cert-digest-algo",
        "SHA1",
        "--quick-gen-key",
        "old <old@example.com>",
        "ed25519",
        "sign",
        "never",
    ]);
    fs::write(
        file("old.asc"),
        gpg(&["--armor", "--export", "old@example.com"]),
    )
    .unwrap();
    let sigs = signatures(&run_ok(sq(&["packet", "dump"]).arg(file("old.asc"))));
    let weak = not_v4_sha_2(&sigs);
    assert!(
        weak.len() == 1 && weak[0].get("Hash algo") == "SHA1",
        "{sigs:#?}"
    );
    let inspected = run_ok(sq(&["inspect"]).arg(file("old.asc")));
    assert!(
        inspected.contains("Invalid") && inspected.contains("SHA1"),
        "{inspected}"
    );

    // A key certified with SHA-512 (gpg's default), signing the same data
    // with SHA-256 and with SHA-1.
    gpg(&[
        "--quick-gen-key",
        "new <new@example.com>",
        "ed25519",
        "sign",
        "never",
    ]);
    let cert = file("new.asc");
    fs::write(&cert, gpg(&["--armor", "--export", "new@example.com"])).unwrap();
    let in_cert = signatures(&run_ok(sq(&["packet", "dump"]).arg(&cert)));
    assert_eq!(not_v4_sha_2(&in_cert), Vec::<&Sig>::new());
    for algo in ["SHA256", "SHA1"] {
        let sig = file(&format!("data.{algo}.sig"));
        gpg(&[
            "--local-user",
            "new@example.com",
            "--digest-algo",
            algo,
            "--output",
            &sig,
            "--detach-sign",
            &data,
        ]);
        let sigs = signatures(&run_ok(sq(&["packet", "dump"]).arg(&sig)));
        let by_sqv = sqv(Path::new(&cert), Path::new(&sig), Path::new(&data));
        let by_sq = run(&mut sq(&[
            "verify",
            "--signer-cert",
            &cert,
            "--detached",
            &sig,
            &data,
        ]));
        if algo == "SHA256" {
            assert_eq!(not_v4_sha_2(&sigs), Vec::<&Sig>::new());
            assert!(by_sqv.status.success(), "{}", both(&by_sqv));
            assert!(by_sq.status.success(), "{}", both(&by_sq));
        } else {
            let weak = not_v4_sha_2(&sigs);
            assert!(
                weak.len() == 1 && weak[0].get("Hash algo") == "SHA1",
                "{sigs:#?}"
            );
            for (tool, out) in [("sqv", &by_sqv), ("sq", &by_sq)] {
                assert!(!out.status.success(), "{tool} accepted SHA-1");
                assert!(both(out).contains("SHA1"), "{tool}: {}", both(out));
            }
        }
    }
}

/// One signature as `sq packet dump` describes it.
#[derive(Debug, Default, PartialEq)]
struct Sig {
    /// Its own fields ("Version", "Type", "Hash algo"), by name.
    fields: BTreeMap<String, String>,
    /// The subpackets of its hashed area ("Signature creation time",
    /// "Issuer Fingerprint", "Key flags"), by name.
    hashed: BTreeMap<String, String>,
    /// Inside another signature (a primary key binding signature embedded
    /// in a signing subkey's binding signature).
    embedded: bool,
}

impl Sig {
    fn get(&self, field: &str) -> &str {
        self.fields.get(field).map_or("", String::as_str)
    }

    fn hashed(&self, subpacket: &str) -> &str {
        self.hashed.get(subpacket).map_or("", String::as_str)
    }
}

/// Every signature in a `sq packet dump`, embedded ones included. A line
/// belongs to the innermost signature above it that is indented less: at
/// the indentation of the first line under `Signature Packet`, it is one
/// of the signature's own fields ("    Hash algo: SHA256"); under its
/// `Hashed area:`, one level deeper, a hashed subpacket. Panics unless
/// each signature has one hash algorithm and every `Hash algo` line is a
/// signature's.
fn signatures(dump: &str) -> Vec<Sig> {
    struct Open {
        header: usize,
        own: Option<usize>,
        index: usize,
        in_hashed_area: bool,
    }
    let mut sigs: Vec<Sig> = Vec::new();
    // Open signatures, innermost last.
    let mut open: Vec<Open> = Vec::new();
    for line in dump.lines() {
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        while open.last().is_some_and(|o| indent <= o.header) {
            open.pop();
        }
        if text == "Signature Packet" || text.starts_with("Signature Packet,") {
            sigs.push(Sig {
                embedded: !open.is_empty(),
                ..Sig::default()
            });
            open.push(Open {
                header: indent,
                own: None,
                index: sigs.len() - 1,
                in_hashed_area: false,
            });
            continue;
        }
        let Some(o) = open.last_mut() else { continue };
        let own = *o.own.get_or_insert(indent);
        let sig = &mut sigs[o.index];
        let map = if indent == own {
            o.in_hashed_area = text == "Hashed area:";
            &mut sig.fields
        } else if o.in_hashed_area && indent > own {
            &mut sig.hashed
        } else {
            continue;
        };
        if let Some((name, value)) = text.split_once(": ") {
            if indent == own {
                let old = map.insert(name.to_owned(), value.to_owned());
                assert!(old.is_none(), "{name} twice in a signature:\n{dump}");
            } else {
                map.entry(name.to_owned())
                    .or_insert_with(|| value.to_owned());
            }
        }
    }
    let hash_lines = dump
        .lines()
        .filter(|l| l.trim_start().starts_with("Hash algo: "))
        .count();
    assert!(
        !sigs.is_empty()
            && hash_lines == sigs.len()
            && sigs.iter().all(|s| !s.get("Hash algo").is_empty()),
        "cannot read the signatures of:\n{dump}"
    );
    sigs
}

/// The signatures that are not v4 signatures over SHA-256 or SHA-512.
fn not_v4_sha_2(sigs: &[Sig]) -> Vec<&Sig> {
    sigs.iter()
        .filter(|s| s.get("Version") != "4" || !is_sha_2(s.get("Hash algo")))
        .collect()
}

fn is_sha_2(name: &str) -> bool {
    SHA_2.iter().any(|&(n, _)| n == name)
}

/// The packets of an ASCII-armored block, as their tag and body (RFC 4880,
/// 4.2: old and new packet headers, no partial lengths).
fn packets(armored: &str) -> Vec<(u8, Vec<u8>)> {
    let base64: String = armored
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN PGP "))
        .skip(1)
        .skip_while(|l| !l.trim().is_empty())
        .skip(1)
        .take_while(|l| !l.starts_with('=') && !l.starts_with("-----"))
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64.trim())
        .unwrap();
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    while let Some(&ctb) = rest.first() {
        assert!(ctb & 0x80 != 0, "not a packet header: {ctb:#04x}");
        let be = |b: &[u8]| b.iter().fold(0usize, |n, &x| n << 8 | usize::from(x));
        let (tag, header, len) = if ctb & 0x40 != 0 {
            match rest[1] {
                l @ 0..=191 => (ctb & 0x3f, 2, usize::from(l)),
                l @ 192..=223 => (
                    ctb & 0x3f,
                    3,
                    (usize::from(l) - 192) * 256 + usize::from(rest[2]) + 192,
                ),
                255 => (ctb & 0x3f, 6, be(&rest[2..6])),
                _ => panic!("a partial body length"),
            }
        } else {
            match ctb & 0x03 {
                0 => ((ctb >> 2) & 0x0f, 2, be(&rest[1..2])),
                1 => ((ctb >> 2) & 0x0f, 3, be(&rest[1..3])),
                2 => ((ctb >> 2) & 0x0f, 5, be(&rest[1..5])),
                _ => panic!("an indeterminate length"),
            }
        };
        out.push((tag, rest[header..header + len].to_vec()));
        rest = &rest[header + len..];
    }
    out
}

/// The fingerprint `sq inspect` gives the certificate in `cert`.
fn fingerprint(cert: &Path) -> String {
    let inspected = run_ok(sq(&["inspect"]).arg(cert));
    let fingerprints: Vec<&str> = inspected
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Fingerprint: "))
        .collect();
    assert_eq!(fingerprints.len(), 1, "{inspected}");
    assert_eq!(fingerprints[0].len(), 40, "{inspected}");
    fingerprints[0].to_owned()
}

/// `sqv --keyring CERT SIG DATA`.
fn sqv(cert: &Path, signature: &Path, data: &Path) -> Output {
    run(Command::new("sqv")
        .env_remove("SEQUOIA_CRYPTO_POLICY")
        .arg("--keyring")
        .arg(cert)
        .arg(signature)
        .arg(data))
}

/// `sq ARGS…` under Sequoia's standard policy, whatever the caller's
/// environment says.
fn sq(args: &[&str]) -> Command {
    let mut c = Command::new("sq");
    c.env_remove("SEQUOIA_CRYPTO_POLICY").args(args);
    c
}

/// A signing key from gpg whose user ID is certified with SHA-1 is refused
/// before anything is written: what it signed, today's verifiers refuse.
#[test]
fn a_signing_key_bound_with_sha_1_is_refused_with_help() {
    support::require!(support::GPG, support::STANDIN);
    let home = tempfile::tempdir().unwrap();
    let gpg = |args: &[&str]| gpg_in(home.path(), args);
    gpg(&[
        "--cert-digest-algo",
        "SHA1",
        "--quick-gen-key",
        "old <old@example.com>",
        "rsa2048",
        "sign",
        "never",
    ]);
    let key = home.path().join("old-secret.asc");
    fs::write(
        &key,
        gpg(&["--armor", "--export-secret-keys", "old@example.com"]),
    )
    .unwrap();
    let g = generated("deb");
    let repo = g.dir.path().join("repo");
    let out = super::publish(
        &g.out,
        &repo,
        &[
            "--sign-key",
            key.to_str().unwrap(),
            "--allow-cleartext-keys",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let said = both(&out);
    assert!(
        said.contains("is bound to its user ID with a SHA-1 signature"),
        "{said}"
    );
    assert!(said.contains("--cert-digest-algo SHA256"), "{said}");
    assert!(!repo.join("dists").exists(), "nothing published");
}
