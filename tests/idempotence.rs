//! Idempotence through the built binary: a rerun with the same input changes
//! no byte under OUT and issues no certificate; a change to one node touches
//! only that node's certificate and package; the CA is never rotated by a
//! config change.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::Gen;

const FORMATS: &str = "tar,deb,rpm";

/// Every path under `out` (the lock file and the digest record aside) with its mode and, for a
/// file, the SHA-256 of its contents.
fn snapshot(out: &Path) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut stack = vec![out.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(out).unwrap().to_string_lossy().into_owned();
            if rel == ".etcdpack.lock" || rel == etcdpack::digests::FILE_NAME {
                continue;
            }
            let meta = fs::symlink_metadata(&p).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let value = if meta.is_dir() {
                stack.push(p);
                format!("dir {mode:04o}")
            } else {
                assert!(meta.is_file(), "{rel} is neither file nor directory");
                use sha2::Digest;
                let hash = hex::encode(sha2::Sha256::digest(fs::read(&p).unwrap()));
                format!("{hash} {mode:04o}")
            };
            map.insert(rel, value);
        }
    }
    map
}

/// Paths whose entry differs between two snapshots (added, removed, changed).
fn changed(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// `gen -v` and its stderr.
fn gen_v(g: &Gen) -> String {
    let out = g.run(&["-v", "--formats", FORMATS]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// The certificate ids a run issued, from its `Issuing <id> (why)` lines.
fn issued(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Issuing "))
        .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
        .collect()
}

fn releases(out: &Path) -> Vec<(String, u64)> {
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    m["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_owned(),
                n["release"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_rerun_with_the_same_input_changes_no_byte_and_issues_nothing() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["127.0.0.1", "127.0.0.2"], "");
    let first = gen_v(&g);
    assert_eq!(
        issued(&first),
        [
            "nodes/etcd-1",
            "nodes/etcd-2",
            "clients/etcdctl",
            "clients/kube-apiserver",
            "clients/flannel"
        ],
        "{first}"
    );
    let before = snapshot(&g.out);
    assert!(before.contains_key("pki/ca-key.pem") && before.contains_key("manifest.json"));
    assert_eq!(
        before.keys().filter(|k| k.starts_with("dist/")).count(),
        6,
        "{before:#?}"
    );

    let second = gen_v(&g);
    assert_eq!(issued(&second), Vec::<String>::new(), "{second}");
    assert!(!second.contains("Creating"), "{second}");
    let reusing = second.lines().filter(|l| l.contains("Reusing")).count();
    assert_eq!(reusing, 6, "the CA and five leaves:\n{second}");
    // The only warnings are the config's own (two nodes; the v2 API, on by
    // default on 3.4, outside the restricted clients' roles) and the
    // stand-in release's --etcd-sha256 replacing the pinned checksum.
    let warnings: Vec<&str> = second
        .lines()
        .filter(|l| l.starts_with("warning"))
        .collect();
    assert_eq!(warnings.len(), 3, "{second}");
    assert!(
        warnings.iter().any(|w| w.contains("the v2 API is on")),
        "{second}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("2 nodes tolerate")),
        "{second}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("--etcd-sha256") && w.contains("pinned checksum")),
        "{second}"
    );
    assert_eq!(changed(&before, &snapshot(&g.out)), Vec::<String>::new());
}

/// An unchanged rerun builds nothing: it checks each node's tree and artifacts against the
/// manifest and keeps them. What was tampered with is built again, byte for byte what it was;
/// nothing else is touched. The node trees share one copy of each binary (hard links).
#[test]
fn an_unchanged_rerun_keeps_what_is_intact_and_rebuilds_only_what_was_tampered_with() {
    support::require!(support::STANDIN);
    // Five nodes: at most four are built at once, so a later tree links an earlier one's files.
    let ips = [
        "127.0.0.1",
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.4",
        "127.0.0.5",
    ];
    let g = Gen::new(&ips, "");
    gen_v(&g);
    let before = snapshot(&g.out);
    {
        use std::os::unix::fs::MetadataExt;
        let links: Vec<u64> = (1..=5)
            .map(|i| {
                let p = g.out.join(format!("nodes/etcd-{i}/opt/etcd/bin/etcd"));
                fs::metadata(p).unwrap().nlink()
            })
            .collect();
        assert!(
            links.iter().any(|&n| n > 1),
            "no tree links another's etcd: {links:?}"
        );
    }

    let kept = gen_v(&g);
    for verb in ["Staged", "Packaged", "Issuing"] {
        assert!(
            !kept.contains(verb),
            "an unchanged rerun built something:\n{kept}"
        );
    }
    let kept_lines = kept.lines().filter(|l| l.contains("Kept")).count();
    assert_eq!(kept_lines, 15, "every artifact checked and kept:\n{kept}");
    assert_eq!(changed(&before, &snapshot(&g.out)), Vec::<String>::new());

    // One artifact of etcd-1 and one file of etcd-2's tree damaged. The
    // artifact in place, with its size and modification time as they were:
    // only its change time tells (the digest record must not hide it).
    let rpm = before
        .keys()
        .find(|k| k.starts_with("dist/etcd-test-etcd-1-") && k.ends_with(".rpm"))
        .unwrap()
        .clone();
    let rpm_path = g.out.join(&rpm);
    let mtime = fs::metadata(&rpm_path).unwrap().modified().unwrap();
    let mut bytes = fs::read(&rpm_path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&rpm_path, &bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(&rpm_path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(fs::metadata(&rpm_path).unwrap().modified().unwrap(), mtime);
    fs::write(
        g.out.join("nodes/etcd-2/opt/etcd/cfg/etcd.conf"),
        "ETCD_NAME=someone-else\n",
    )
    .unwrap();
    let repaired = gen_v(&g);
    let built: Vec<&str> = repaired
        .lines()
        .filter(|l| l.contains("Staged") || l.contains("Packaged"))
        .collect();
    assert_eq!(built.len(), 3, "{repaired}");
    assert!(
        built
            .iter()
            .any(|l| l.contains("Packaged") && l.contains(&rpm)),
        "{repaired}"
    );
    assert!(
        built
            .iter()
            .any(|l| l.contains("Staged") && l.ends_with("nodes/etcd-1")),
        "{repaired}"
    );
    assert!(
        built
            .iter()
            .any(|l| l.contains("Staged") && l.ends_with("nodes/etcd-2")),
        "{repaired}"
    );
    assert_eq!(
        changed(&before, &snapshot(&g.out)),
        Vec::<String>::new(),
        "the rebuilt files are byte for byte what they were"
    );
}

#[test]
fn a_new_san_on_one_node_reissues_only_its_certificate_and_package() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["127.0.0.1", "127.0.0.2", "127.0.0.3"], "");
    gen_v(&g);
    let before = snapshot(&g.out);
    let yaml = fs::read_to_string(&g.config).unwrap();
    let node2 = "  - { name: etcd-2, ip: \"127.0.0.2\" }\n";
    assert!(yaml.contains(node2), "{yaml}");
    fs::write(
        &g.config,
        yaml.replace(
            node2,
            "  - { name: etcd-2, ip: \"127.0.0.2\", sans: [etcd-2.example.org] }\n",
        ),
    )
    .unwrap();

    let stderr = gen_v(&g);
    assert_eq!(issued(&stderr), ["nodes/etcd-2"], "{stderr}");
    let after = snapshot(&g.out);
    let diff = changed(&before, &after);

    // In pki/, only etcd-2's certificate (and its key, if a new one was made).
    let pki: Vec<&String> = diff.iter().filter(|p| p.starts_with("pki/")).collect();
    assert!(
        pki.contains(&&"pki/nodes/etcd-2.pem".to_owned()),
        "{diff:?}"
    );
    assert!(
        pki.iter()
            .all(|p| *p == "pki/nodes/etcd-2.pem" || *p == "pki/nodes/etcd-2-key.pem"),
        "{diff:?}"
    );
    // The other nodes' trees and packages are untouched.
    for other in ["etcd-1", "etcd-3"] {
        assert!(
            !diff.iter().any(|p| p.contains(other)),
            "{other} changed: {diff:?}"
        );
    }
    // etcd-2's package moved to release 2, under a new name.
    for format in [
        "_3.4.16-{}_amd64.tar.gz",
        "_3.4.16-{}_amd64.deb",
        "-3.4.16-{}.x86_64.rpm",
    ] {
        let old = format!("dist/etcd-test-etcd-2{}", format.replace("{}", "1"));
        let new = format!("dist/etcd-test-etcd-2{}", format.replace("{}", "2"));
        assert!(
            before.contains_key(&old) && !after.contains_key(&old),
            "{old}"
        );
        assert!(after.contains_key(&new), "{new}");
    }
    assert_eq!(
        releases(&g.out),
        [
            ("etcd-1".to_owned(), 1),
            ("etcd-2".to_owned(), 2),
            ("etcd-3".to_owned(), 1)
        ]
    );
    let cert = fs::read_to_string(g.out.join("nodes/etcd-2/opt/etcd/ssl/server.pem")).unwrap();
    assert_eq!(
        cert,
        fs::read_to_string(g.out.join("pki/nodes/etcd-2.pem")).unwrap()
    );

    // And once more: nothing left to do.
    let again = gen_v(&g);
    assert_eq!(issued(&again), Vec::<String>::new(), "{again}");
    assert_eq!(changed(&after, &snapshot(&g.out)), Vec::<String>::new());
}

#[test]
fn the_ca_is_never_rotated_by_a_config_change() {
    support::require!(support::STANDIN);
    let subject = |c: &str| {
        format!(
            "pki: {{ algorithm: ecdsa-p256, subject: {{ C: {c}, ST: Beijing, L: Beijing }} }}\n"
        )
    };
    let g = Gen::new(&["127.0.0.1"], &subject("CN"));
    gen_v(&g);
    let ca = fs::read(g.out.join("pki/ca.pem")).unwrap();
    let ca_key = fs::read(g.out.join("pki/ca-key.pem")).unwrap();

    let yaml = fs::read_to_string(&g.config).unwrap();
    fs::write(&g.config, yaml.replace(&subject("CN"), &subject("DE"))).unwrap();
    let stderr = gen_v(&g);
    assert!(
        stderr.contains("warning: pki.subject differs from the subject of the existing CA"),
        "{stderr}"
    );
    assert!(stderr.contains("the existing CA is kept"), "{stderr}");
    assert!(!stderr.contains("Creating"), "{stderr}");
    assert_eq!(fs::read(g.out.join("pki/ca.pem")).unwrap(), ca);
    assert_eq!(fs::read(g.out.join("pki/ca-key.pem")).unwrap(), ca_key);
    // Every node still gets that CA.
    assert_eq!(
        fs::read(g.out.join("nodes/etcd-1/opt/etcd/ssl/ca.pem")).unwrap(),
        ca
    );

    // Nor by a change of key algorithm: a warning again, same CA.
    let yaml = fs::read_to_string(&g.config).unwrap();
    fs::write(&g.config, yaml.replace("ecdsa-p256", "rsa-2048")).unwrap();
    let stderr = gen_v(&g);
    assert!(
        stderr.contains("warning: pki.algorithm is rsa-2048 but the existing CA's key is"),
        "{stderr}"
    );
    assert_eq!(fs::read(g.out.join("pki/ca.pem")).unwrap(), ca);
    assert_eq!(fs::read(g.out.join("pki/ca-key.pem")).unwrap(), ca_key);
}

/// `manifest.json` records how each member comes up the first time, and a
/// later run keeps that bootstrap from the record (not from the trees); a
/// manifest of an older etcdpack, which did not record it, still gives the
/// same packages (the bootstrap is then read from each tree's etcd.conf).
#[test]
fn each_members_bootstrap_is_recorded_and_kept_and_an_older_manifest_still_reads() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["127.0.0.1", "127.0.0.2"], "");
    g.run_ok(&[]);
    let manifest = || -> serde_json::Value {
        serde_json::from_slice(&fs::read(g.out.join("manifest.json")).unwrap()).unwrap()
    };
    let bootstrap = |m: &serde_json::Value, node: &str| {
        let n = m["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == node)
            .unwrap();
        n["bootstrap"].clone()
    };
    let first = "etcd-1=https://127.0.0.1:2380,etcd-2=https://127.0.0.2:2380";
    for n in ["etcd-1", "etcd-2"] {
        let b = bootstrap(&manifest(), n);
        assert_eq!(b["state"], "new", "{n}: {b}");
        assert_eq!(b["initial_cluster"], first, "{n}: {b}");
    }

    // A third node joins: the first two keep their bootstrap, the third's is `existing`.
    let config = fs::read_to_string(&g.config).unwrap();
    fs::write(
        &g.config,
        config.replace(
            "  - { name: etcd-2, ip: \"127.0.0.2\" }\n",
            "  - { name: etcd-2, ip: \"127.0.0.2\" }\n  - { name: etcd-3, ip: \"127.0.0.3\" }\n",
        ),
    )
    .unwrap();
    g.run_ok(&[]);
    let m = manifest();
    assert_eq!(bootstrap(&m, "etcd-1")["initial_cluster"], first);
    let third = bootstrap(&m, "etcd-3");
    assert_eq!(third["state"], "existing", "{third}");
    assert_eq!(
        third["initial_cluster"],
        format!("{first},etcd-3=https://127.0.0.3:2380")
    );

    // The record is what a run reads: a tree's etcd.conf edited by hand does not move the
    // bootstrap (it is written back as the record says).
    let conf = |n: &str| g.out.join(format!("nodes/{n}/opt/etcd/cfg/etcd.conf"));
    let kept = fs::read_to_string(conf("etcd-1")).unwrap();
    fs::write(
        conf("etcd-1"),
        kept.replace(
            "ETCD_INITIAL_CLUSTER_STATE=new",
            "ETCD_INITIAL_CLUSTER_STATE=existing",
        ),
    )
    .unwrap();
    g.run_ok(&[]);
    assert_eq!(fs::read_to_string(conf("etcd-1")).unwrap(), kept);

    // A manifest without the records (an older etcdpack's): the same packages, and the
    // records written back.
    let before = snapshot(&g.out);
    let mut old = manifest();
    for n in old["nodes"].as_array_mut().unwrap() {
        n.as_object_mut().unwrap().remove("bootstrap");
    }
    fs::write(
        g.out.join("manifest.json"),
        serde_json::to_vec_pretty(&old).unwrap(),
    )
    .unwrap();
    g.run_ok(&[]);
    let after = snapshot(&g.out);
    assert_eq!(changed(&before, &after), Vec::<String>::new());
    assert_eq!(bootstrap(&manifest(), "etcd-3"), third);
}
