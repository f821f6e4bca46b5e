//! The dnf/yum half of `etcdpack publish`, checked by the real clients:
//! Debian's dnf (with a configuration, cache and root of its own) verifies
//! the signed metadata with `gpgcheck=1` and `repo_gpgcheck=1`, lists every
//! node package, installs one and upgrades it after a republish, and refuses
//! a tampered `repomd.xml`; rpm verifies each package's signature once the
//! published key is imported; `createrepo_c` finds the same packages,
//! checksums, files and dependencies. The repository of sealed packages
//! holds no private key in any file or stream.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use support::clients::Dnf;
use support::publishing::{generated_sealed, publish_command, rsa_key, tree};
use support::{Gen, HttpServer, both, ok_both, run_ok};

/// `etcdpack publish` of `g` into `repo`, signed with the RSA key, served
/// at `url`; what it printed.
fn publish(g: &Gen, repo: &Path, url: &str, extra: &[&str]) -> String {
    ok_both(
        publish_command(&g.out)
            .arg("--repo")
            .arg(repo)
            .arg("--sign-key")
            .arg(rsa_key())
            .arg("--url")
            .arg(url)
            .args(extra)
            .output()
            .unwrap(),
    )
}

/// What a Debian root provides that the packages require, as an rpm
/// database knows it: a package that provides exactly that, installed with
/// rpm, so that dnf resolves the node packages' dependencies.
fn provide_the_base(root: &Path, work: &Path) {
    let mut b = rpm::PackageBuilder::new("base-system", "1", "MIT", "x86_64", "the base system");
    for p in [
        "/bin/sh",
        "/usr/sbin/useradd",
        "/usr/sbin/groupadd",
        "age",
        "systemd",
    ] {
        b.provides(rpm::Dependency::any(p));
    }
    let pkg = b.build().unwrap();
    let file = work.join("base-system.rpm");
    pkg.write_file(&file).unwrap();
    run_ok(
        Command::new("rpm")
            .arg("--root")
            .arg(root)
            .args(["-i", "--nodeps", "--noscripts"])
            .arg(&file),
    );
}

/// The `kind` metadata that `repodata/repomd.xml` names, decompressed
/// (older generations stay beside it).
fn metadata(repodata: &Path, kind: &str) -> String {
    let repomd = fs::read_to_string(repodata.join("repomd.xml")).unwrap();
    let data = repomd
        .split(&format!("<data type=\"{kind}\">"))
        .nth(1)
        .unwrap_or_else(|| panic!("repomd.xml names no {kind}:\n{repomd}"));
    let href = data
        .split("<location href=\"")
        .nth(1)
        .and_then(|h| h.split('"').next())
        .unwrap();
    let file = repodata.parent().unwrap().join(href);
    gunzip(&fs::read(file).unwrap())
}

fn gunzip(gz: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// Each `<package>` element of a metadata file, by its name.
fn packages(xml: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for chunk in xml.split("<package ").skip(1) {
        let body = chunk.split("</package>").next().unwrap();
        let name = body
            .split("<name>")
            .nth(1)
            .map(|n| n.split("</name>").next().unwrap().to_owned())
            .or_else(|| {
                body.split("name=\"")
                    .nth(1)
                    .map(|n| n.split('"').next().unwrap().to_owned())
            })
            .unwrap();
        out.insert(name, body.to_owned());
    }
    out
}

/// `<time file="…">` is the file's mtime for createrepo_c, which no two
/// copies of a file share; everything else must agree.
fn without_file_time(package: &str) -> String {
    match package.find("<time file=\"") {
        Some(start) => {
            let rest = &package[start + "<time file=\"".len()..];
            let end = rest.find('"').unwrap();
            format!("{}<time file=\"-\"{}", &package[..start], &rest[end + 1..])
        }
        None => package.to_owned(),
    }
}

#[test]
fn dnf_verifies_lists_and_installs_from_the_signed_repository_and_refuses_a_tampered_one() {
    support::require!(
        support::ROOT,
        support::STANDIN,
        support::SSH_KEYGEN,
        support::DNF,
        support::RPM,
        support::CREATEREPO_C
    );
    let g = generated_sealed("deb, rpm");
    let repo = g.dir.path().join("repo");
    let server = HttpServer::serve_dir(&repo);
    let out = publish(&g, &repo, &server.base_url, &[]);
    assert!(out.contains("6 new package(s)"), "{out}");
    let arch_dir = repo.join("rpm/stable/x86_64");
    let repo_file = repo.join("etcd-test.repo");
    let text = fs::read_to_string(&repo_file).unwrap();
    for line in ["gpgcheck=1", "repo_gpgcheck=1", "gpgkey="] {
        assert!(text.contains(line), "{text}");
    }

    // dnf verifies repomd.xml with the published key and lists every node.
    let dnf = Dnf::new(&repo_file);
    ok_both(dnf.makecache());
    let listed = ok_both(dnf.run(&[
        "repoquery",
        "--repo",
        "etcd-test",
        "--qf",
        "%{name} %{version}-%{release} %{arch}",
    ]));
    for i in 1..=3 {
        assert!(
            listed.contains(&format!("etcd-test-etcd-{i} 3.4.16-1 x86_64")),
            "{listed}"
        );
    }

    // Each pooled package carries a header signature rpm verifies once the
    // published key is imported, and not before.
    let pooled = arch_dir.join("Packages/etcd-test-etcd-1-3.4.16-1.x86_64.rpm");
    let db = tempfile::tempdir().unwrap();
    let rpm = |args: &[&str]| {
        Command::new("rpm")
            .arg("--dbpath")
            .arg(db.path())
            .args(args)
            .output()
            .unwrap()
    };
    let unknown = rpm(&["-K", pooled.to_str().unwrap()]);
    assert!(!unknown.status.success(), "{}", both(&unknown));
    ok_both(rpm(&[
        "--import",
        repo.join("etcd-test.asc").to_str().unwrap(),
    ]));
    let checked = ok_both(rpm(&["-Kv", pooled.to_str().unwrap()]));
    assert!(
        checked.contains("Header V4 RSA/SHA256 Signature") && checked.contains(": OK"),
        "{checked}"
    );
    assert!(
        !checked.contains("NOKEY") && !checked.contains("BAD"),
        "{checked}"
    );
    // Signing touched only the signature header: the payload is the one gen built.
    let built = g.out.join("dist/etcd-test-etcd-1-3.4.16-1.x86_64.rpm");
    let payload_of = |f: &Path| {
        let bytes = fs::read(f).unwrap();
        let m = rpm::PackageMetadata::parse(&mut &bytes[..]).unwrap();
        let o = m.get_package_segment_offsets();
        bytes[o.header as usize..].to_vec()
    };
    assert_eq!(payload_of(&pooled), payload_of(&built));

    // dnf installs a node's package, checking its signature.
    provide_the_base(&dnf.root(), g.dir.path());
    ok_both(dnf.run(&["install", "etcd-test-etcd-2"]));
    assert_eq!(dnf.installed("etcd-test-etcd-2"), "3.4.16-1");

    // createrepo_c, over the same packages, lists the same packages with the
    // same checksums, sizes, header ranges, files and dependencies.
    let theirs = g.dir.path().join("createrepo");
    fs::create_dir_all(theirs.join("Packages")).unwrap();
    for e in fs::read_dir(arch_dir.join("Packages")).unwrap() {
        let p = e.unwrap().path();
        fs::copy(&p, theirs.join("Packages").join(p.file_name().unwrap())).unwrap();
    }
    run_ok(
        Command::new("createrepo_c")
            .args(["--no-database", "--general-compress-type=gz"])
            .arg(&theirs),
    );
    for kind in ["primary", "filelists", "other"] {
        let ours = packages(&metadata(&arch_dir.join("repodata"), kind));
        let reference = packages(&metadata(&theirs.join("repodata"), kind));
        assert_eq!(ours.len(), 3, "{kind}");
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            reference.keys().collect::<Vec<_>>(),
            "{kind}"
        );
        for (name, package) in &ours {
            assert_eq!(
                without_file_time(package),
                without_file_time(&reference[name]),
                "{kind} of {name}"
            );
        }
    }

    // A tampered repomd.xml (one more byte) is refused, as is one whose
    // signature is gone.
    let repomd = arch_dir.join("repodata/repomd.xml");
    let original = fs::read(&repomd).unwrap();
    let mut tampered = original.clone();
    tampered.extend_from_slice(b"\n");
    fs::write(&repomd, &tampered).unwrap();
    let refused = dnf.makecache();
    assert!(!refused.status.success(), "{}", both(&refused));
    assert!(
        both(&refused).contains("GPG signature verification error"),
        "{}",
        both(&refused)
    );
    fs::write(&repomd, &original).unwrap();
    ok_both(dnf.makecache());
    // Its signature removed: refused too (repo_gpgcheck=1 in the .repo).
    let asc = arch_dir.join("repodata/repomd.xml.asc");
    let signature = fs::read(&asc).unwrap();
    fs::remove_file(&asc).unwrap();
    let refused = dnf.makecache();
    assert!(!refused.status.success(), "{}", both(&refused));
    assert!(
        both(&refused).contains("repomd.xml.asc"),
        "{}",
        both(&refused)
    );
    fs::write(&asc, signature).unwrap();
    ok_both(dnf.makecache());
}

#[test]
fn a_changed_node_adds_its_new_release_dnf_upgrades_to_it_and_republishing_is_reproducible() {
    support::require!(
        support::ROOT,
        support::STANDIN,
        support::SSH_KEYGEN,
        support::DNF,
        support::RPM
    );
    let g = generated_sealed("deb, rpm");
    let repo = g.dir.path().join("repo");
    let server = HttpServer::serve_dir(&repo);
    publish(&g, &repo, &server.base_url, &[]);

    // The same packages and date: the same repository, and a republish
    // writes nothing.
    let again = g.dir.path().join("again");
    publish(&g, &again, &server.base_url, &[]);
    assert_eq!(tree(&repo), tree(&again));
    let before = tree(&repo);
    let out = publish(&g, &repo, &server.base_url, &[]);
    assert!(out.contains("0 new package(s), index unchanged"), "{out}");
    assert_eq!(tree(&repo), before);

    let dnf = Dnf::new(&repo.join("etcd-test.repo"));
    ok_both(dnf.makecache());
    provide_the_base(&dnf.root(), g.dir.path());
    ok_both(dnf.run(&["install", "etcd-test-etcd-2"]));
    assert_eq!(dnf.installed("etcd-test-etcd-2"), "3.4.16-1");

    // etcd-2 gains a SAN: only its package changes.
    let yaml = fs::read_to_string(&g.config).unwrap().replace(
        "name: etcd-2, ip: \"127.0.0.2\"",
        "name: etcd-2, ip: \"127.0.0.2\", sans: [etcd-2.example.com]",
    );
    fs::write(&g.config, yaml).unwrap();
    g.run_ok(&[]);
    // This time from the config's publish: section (the repository
    // relative to the config's directory).
    let mut yaml = fs::read_to_string(&g.config).unwrap();
    yaml.push_str(&format!(
        "publish: {{ repo: repo, sign_key: \"{}\", url: \"{}\", keep: 1 }}\n",
        rsa_key().display(),
        server.base_url
    ));
    fs::write(&g.config, yaml).unwrap();
    let out = ok_both(
        publish_command(&g.out)
            .arg("--config")
            .arg(&g.config)
            .output()
            .unwrap(),
    );
    // Its .deb and its .rpm, into the same repository.
    assert!(out.contains("2 new package(s)"), "{out}");

    ok_both(dnf.makecache());
    let upgraded = ok_both(dnf.run(&["upgrade"]));
    assert!(upgraded.contains("etcd-test-etcd-2"), "{upgraded}");
    assert_eq!(dnf.installed("etcd-test-etcd-2"), "3.4.16-2");

    // --keep 1: the metadata lists only the new release of etcd-2, but the
    // old package stays while metadata still kept lists it.
    let arch_dir = repo.join("rpm/stable/x86_64");
    let primary = metadata(&arch_dir.join("repodata"), "primary");
    assert!(
        !primary.contains("etcd-test-etcd-2-3.4.16-1.x86_64.rpm"),
        "{primary}"
    );
    assert!(primary.contains("etcd-test-etcd-1-3.4.16-1.x86_64.rpm"));
    assert!(
        arch_dir
            .join("Packages/etcd-test-etcd-2-3.4.16-1.x86_64.rpm")
            .is_file()
    );
    let data_files = fs::read_dir(arch_dir.join("repodata"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".xml.gz")
        })
        .count();
    assert_eq!(
        data_files, 6,
        "two generations of primary, filelists, other"
    );
}

#[test]
fn no_file_or_stream_of_the_published_repository_holds_a_private_key() {
    support::require!(
        support::STANDIN,
        support::SSH_KEYGEN,
        support::AGE,
        support::DPKG_DEB,
        support::RPM2CPIO
    );
    let g = generated_sealed("deb, rpm");
    let repo = g.dir.path().join("repo");
    publish(&g, &repo, "http://127.0.0.1:1", &[]);

    let mut keys: Vec<(String, String)> = (1..=3)
        .map(|i| {
            let name = format!("etcd-{i}");
            let pem = fs::read_to_string(g.out.join(format!("pki/nodes/{name}-key.pem"))).unwrap();
            (name, pem)
        })
        .collect();
    keys.push((
        "the CA".into(),
        fs::read_to_string(g.out.join("pki/ca-key.pem")).unwrap(),
    ));
    // The signing key's secret packets, as bytes and as their armor lines.
    let armored = fs::read_to_string(rsa_key()).unwrap();
    let body: String = armored
        .lines()
        .skip_while(|l| !l.trim().is_empty())
        .skip(1)
        .take_while(|l| !l.starts_with('=') && !l.starts_with("-----"))
        .collect();
    use base64::Engine as _;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    // The public key's armor may share lines with the secret key's; none
    // of the others may appear anywhere.
    let public = fs::read_to_string(repo.join("etcd-test.asc")).unwrap();
    let armor_lines: Vec<&str> = armored
        .lines()
        .filter(|l| l.len() >= 60 && !l.starts_with("-----") && !public.contains(*l))
        .collect();
    assert!(!armor_lines.is_empty());

    let mut scanned = 0;
    for file in support::scan::files(&repo) {
        let bytes = fs::read(&file).unwrap();
        let name = file.strip_prefix(&repo).unwrap().display().to_string();
        let streams = if name.ends_with(".deb") || name.ends_with(".rpm") {
            // What dpkg-deb and rpm2cpio unpack, besides the file's own bytes.
            support::unpack::streams(&file)
        } else if name.ends_with(".gz") {
            vec![bytes.clone(), gunzip(&bytes).into_bytes()]
        } else {
            vec![bytes]
        };
        for s in &streams {
            scanned += 1;
            assert!(
                memchr::memmem::find(s, b"PRIVATE KEY-----").is_none()
                    && memchr::memmem::find(s, b"PRIVATE KEY BLOCK").is_none(),
                "{name} holds a private key block"
            );
            for (whose, pem) in &keys {
                assert!(
                    !etcdpack::pki::contains_key(s, pem),
                    "{name} holds {whose}'s key"
                );
            }
            assert!(
                memchr::memmem::find(s, &secret).is_none(),
                "{name} holds the signing key"
            );
            let text = String::from_utf8_lossy(s);
            for line in &armor_lines {
                assert!(!text.contains(line), "{name} holds the signing key");
            }
        }
    }
    // The .debs, the .rpms and the indexes, each with its streams.
    assert!(scanned > 30, "{scanned} streams scanned");
}
