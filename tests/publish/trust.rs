//! What publish builds on is verified, and the repository is a tree it
//! owns: an index entry or a package that publish did not write is
//! refused before anything is signed, a symbolic link anywhere below the
//! repository is refused before anything is written, and a package's name
//! never becomes a path outside it. Each refusal is checked by its exit
//! status, its message and the absence of its effect.

use super::*;

/// `publish` failed with exit status 1 and said `what`.
fn refused(out: &Output, what: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", both(out));
    assert!(both(out).contains(what), "{}", both(out));
}

/// A stanza for etcd-1 at release 99, pointing at a package of the
/// attacker's, appended to `Packages` (and its by-hash and .gz copies, and
/// `Release`: everything but the signature).
fn inject_stanza(repo: &Path) {
    let bin = repo.join("dists/stable/main/binary-amd64");
    let plain = fs::read_to_string(bin.join("Packages")).unwrap();
    let theirs = "pool/main/e/etcd-test-etcd-1/etcd-test-etcd-1_3.4.16-99_amd64.deb";
    let foreign = b"!<arch>\nnot etcdpack's\n";
    fs::write(repo.join(theirs), foreign).unwrap();
    let stanza = format!(
        "\nPackage: etcd-test-etcd-1\nVersion: 3.4.16-99\nArchitecture: amd64\nFilename: {theirs}\nSize: {}\nSHA256: {}\nDescription: theirs\n",
        foreign.len(),
        support::sha256(foreign)
    );
    let evil = format!("{plain}{stanza}");
    let evil_gz = gzip(evil.as_bytes());
    fs::write(bin.join("Packages"), &evil).unwrap();
    fs::write(bin.join("Packages.gz"), &evil_gz).unwrap();
    let by_hash = bin.join("by-hash/SHA256");
    fs::write(by_hash.join(support::sha256(evil.as_bytes())), &evil).unwrap();
    fs::write(by_hash.join(support::sha256(&evil_gz)), &evil_gz).unwrap();
    let release = fs::read_to_string(repo.join("dists/stable/Release")).unwrap();
    let release = release
        .replace(
            &support::sha256(plain.as_bytes()),
            &support::sha256(evil.as_bytes()),
        )
        .replace(&format!(" {} ", plain.len()), &format!(" {} ", evil.len()));
    fs::write(repo.join("dists/stable/Release"), release).unwrap();
}

#[test]
fn an_entry_or_a_package_publish_did_not_write_is_refused_and_nothing_is_signed() {
    support::require!(support::STANDIN);
    let g = generated("deb");
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519_key(dir.path());
    let signed = |repo: &Path| {
        publish(
            &g.out,
            repo,
            &[
                "--sign-key",
                key.to_str().unwrap(),
                "--allow-cleartext-keys",
            ],
        )
    };

    // A stanza appended to every unsigned copy of the index.
    let repo = g.dir.path().join("repo");
    ok(signed(&repo));
    inject_stanza(&repo);
    let before = tree(&repo);
    let out = signed(&repo);
    refused(&out, "is not the index the signed Release lists");
    refused(&out, "dists/stable/main/binary-amd64/Packages");
    assert_eq!(tree(&repo), before, "nothing changed, nothing signed");

    // A pooled package replaced by another of the same name.
    let repo = g.dir.path().join("repo2");
    ok(signed(&repo));
    let pooled = repo.join("pool/main/e/etcd-test-etcd-2/etcd-test-etcd-2_3.4.16-1_amd64.deb");
    let mut bytes = fs::read(&pooled).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0xff;
    fs::write(&pooled, &bytes).unwrap();
    let before = tree(&repo);
    let out = signed(&repo);
    refused(
        &out,
        "etcd-test-etcd-2_3.4.16-1_amd64.deb is not the package",
    );
    assert_eq!(tree(&repo), before);

    // An index signed by another key, or no longer signed at all.
    let repo = g.dir.path().join("repo3");
    let other = dir.path().join("other");
    fs::create_dir(&other).unwrap();
    let other_key = ed25519_key(&other);
    ok(publish(
        &g.out,
        &repo,
        &[
            "--sign-key",
            other_key.to_str().unwrap(),
            "--allow-cleartext-keys",
        ],
    ));
    let before = tree(&repo);
    refused(&signed(&repo), "InRelease is not signed by the signing key");
    assert_eq!(tree(&repo), before);
    fs::remove_file(repo.join("dists/stable/InRelease")).unwrap();
    let before = tree(&repo);
    refused(&signed(&repo), "Release is there without an InRelease");
    assert_eq!(tree(&repo), before);
}

#[test]
fn a_symbolic_link_anywhere_in_the_repository_is_refused_and_its_target_is_untouched() {
    support::require!(support::STANDIN);
    let g = generated("deb");
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519_key(dir.path());
    let repo = g.dir.path().join("repo");
    let args = [
        "--sign-key",
        key.to_str().unwrap(),
        "--allow-cleartext-keys",
    ];
    ok(publish(&g.out, &repo, &args));

    let elsewhere = g.dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::write(elsewhere.join("precious"), "keep me").unwrap();
    let by_hash = repo.join("dists/stable/main/binary-amd64/by-hash/SHA256");
    fs::remove_dir_all(&by_hash).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &by_hash).unwrap();
    let out = publish(&g.out, &repo, &args);
    refused(&out, "by-hash/SHA256 is a symbolic link");
    let left: Vec<_> = fs::read_dir(&elsewhere)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["precious"], "nothing written or removed there");
    assert_eq!(fs::read(elsewhere.join("precious")).unwrap(), b"keep me");
}

/// `deb` with the `Package:` of its control file replaced by `name`.
fn renamed_deb(deb: &[u8], name: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut members = Vec::new();
    let mut a = ar::Archive::new(deb);
    while let Some(e) = a.next_entry() {
        let mut e = e.unwrap();
        let id = String::from_utf8(e.header().identifier().to_vec()).unwrap();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        members.push((id, data));
    }
    let control = &mut members
        .iter_mut()
        .find(|(n, _)| n == "control.tar.gz")
        .unwrap()
        .1;
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&control[..])
        .read_to_end(&mut plain)
        .unwrap();
    let mut out = tar::Builder::new(Vec::new());
    for e in tar::Archive::new(&plain[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let mut header = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if e.path().unwrap().ends_with("control") {
            let text = String::from_utf8(data).unwrap();
            let old = text.lines().find(|l| l.starts_with("Package: ")).unwrap();
            data = text.replace(old, &format!("Package: {name}")).into_bytes();
            header.set_size(data.len() as u64);
            header.set_cksum();
        }
        out.append(&header, &data[..]).unwrap();
    }
    *control = gzip(&out.into_inner().unwrap());
    let mut b = ar::Builder::new(Vec::new());
    for (id, data) in &members {
        let h = ar::Header::new(id.as_bytes().to_vec(), data.len() as u64);
        b.append(&h, &data[..]).unwrap();
    }
    let mut bytes = b.into_inner().unwrap();
    bytes.flush().unwrap();
    bytes
}

#[test]
fn a_package_name_that_is_a_path_never_becomes_one() {
    support::require!(support::STANDIN);
    let g = generated("deb");
    let file = "etcd-test-etcd-1_3.4.16-1_amd64.deb";
    let path = g.out.join("dist").join(file);
    let deb = fs::read(&path).unwrap();
    let evil = renamed_deb(&deb, "../../../../../../../tmp/etcdpack-escaped");
    fs::write(&path, &evil).unwrap();
    let manifest = g.out.join("manifest.json");
    let text = fs::read_to_string(&manifest)
        .unwrap()
        .replace(&support::sha256(&deb), &support::sha256(&evil));
    fs::write(&manifest, text).unwrap();

    let repo = g.dir.path().join("repo");
    let out = publish(&g.out, &repo, &["--unsigned", "--allow-cleartext-keys"]);
    refused(
        &out,
        "the Package \"../../../../../../../tmp/etcdpack-escaped\" holds '/'",
    );
    assert!(!Path::new("/tmp/etcdpack-escaped").exists());
    assert!(!repo.join("pool").exists(), "nothing pooled");
}

#[test]
fn the_yum_half_carries_forward_only_what_its_signature_covers() {
    support::require!(support::STANDIN);
    let g = support::Gen::new(
        &["127.0.0.1", "127.0.0.2"],
        "packages: { formats: [rpm] }\n",
    );
    g.run_ok(&[]);
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519_key(dir.path());
    let signed = |repo: &Path| {
        publish(
            &g.out,
            repo,
            &[
                "--sign-key",
                key.to_str().unwrap(),
                "--allow-cleartext-keys",
            ],
        )
    };
    let arch = "rpm/stable/x86_64";

    // A pooled package changed after it was signed and listed.
    let repo = g.dir.path().join("repo");
    ok(signed(&repo));
    let pooled = repo
        .join(arch)
        .join("Packages/etcd-test-etcd-1-3.4.16-1.x86_64.rpm");
    let mut bytes = fs::read(&pooled).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0xff;
    fs::write(&pooled, &bytes).unwrap();
    let before = tree(&repo);
    refused(
        &signed(&repo),
        "etcd-test-etcd-1-3.4.16-1.x86_64.rpm is not the package",
    );
    assert_eq!(tree(&repo), before);

    // repomd.xml rewritten (to name metadata of someone else's).
    let repo = g.dir.path().join("repo2");
    ok(signed(&repo));
    let repomd = repo.join(arch).join("repodata/repomd.xml");
    let text = fs::read_to_string(&repomd).unwrap();
    fs::write(&repomd, text.replace("<revision>", "<revision>1")).unwrap();
    let before = tree(&repo);
    refused(
        &signed(&repo),
        "repomd.xml is not signed by the signing key",
    );
    assert_eq!(tree(&repo), before);
}

#[test]
fn suites_share_the_pool_and_a_publish_into_one_keeps_what_the_other_lists() {
    support::require!(support::STANDIN, support::APT_GET);
    let g = generated("deb");
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519_key(dir.path());
    let repo = g.dir.path().join("repo");
    let args = |suite: &'static str| {
        vec![
            "--sign-key".to_owned(),
            key.to_str().unwrap().to_owned(),
            "--allow-cleartext-keys".to_owned(),
            "--suite".to_owned(),
            suite.to_owned(),
        ]
    };
    let run = |suite| {
        let a = args(suite);
        ok(publish(
            &g.out,
            &repo,
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        ))
    };
    run("stable");
    let stable_sources = repo.join("etcd-test.sources");
    let kept = fs::read(&stable_sources).unwrap();

    // etcd-2 changes; only the testing suite gets its new release.
    let yaml = fs::read_to_string(&g.config).unwrap().replace(
        "name: etcd-2, ip: \"127.0.0.2\"",
        "name: etcd-2, ip: \"127.0.0.2\", sans: [etcd-2.example.com]",
    );
    fs::write(&g.config, yaml).unwrap();
    g.run_ok(&[]);
    run("testing");
    let old = repo.join("pool/main/e/etcd-test-etcd-2/etcd-test-etcd-2_3.4.16-1_amd64.deb");
    assert!(
        old.is_file(),
        "the stable suite's package stays in the shared pool"
    );

    let sources = dir.path().join("stable.sources");
    fs::write(&sources, kept).unwrap();
    let apt = Apt::new(&sources);
    ok(apt.update());
    assert_eq!(apt.candidate("etcd-test-etcd-2"), "3.4.16-1");
    ok(apt.run("apt-get", &["download", "etcd-test-etcd-2"]));
}
