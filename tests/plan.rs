//! `plan` says exactly what `gen` then does. Over a sequence of changes
//! to one cluster (fresh, unchanged, a tuning change, an added SAN, an
//! added node, a removed node, the node added again) this runs `plan
//! --json`, snapshots every file of the output directory, runs `gen
//! --json`, snapshots again, and requires that the files created, changed
//! and removed are exactly those the plan named, and that `gen` used the
//! releases and artifact names the plan gave.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;
use support::{Gen, etcdpack, mirror, run_ok, standin};

/// relative path → sha256 of every file under `dir` (the lock file aside).
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut files);
    }
    files
}

fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path.strip_prefix(root).unwrap().display().to_string();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            walk(root, &path, files);
        } else if rel != ".etcdpack.lock" && rel != etcdpack::digests::FILE_NAME {
            let bytes = std::fs::read(&path).unwrap();
            files.insert(rel, etcdpack::fsutil::sha256_hex(&bytes));
        }
    }
}

fn config(g: &Gen, nodes: &[(&str, &str, &str)], heartbeat: &str) {
    let mut yaml = String::from("version: 1\ncluster: { name: test, token: test-token }\nnodes:\n");
    for (name, ip, sans) in nodes {
        yaml.push_str(&format!("  - {{ name: {name}, ip: \"{ip}\"{sans} }}\n"));
    }
    yaml.push_str("pki: { algorithm: ecdsa-p256 }\n");
    yaml.push_str("packages: { formats: [tar, deb] }\n");
    yaml.push_str(&format!(
        "tuning: {{ heartbeat_interval: {heartbeat}, election_timeout: 1500ms }}\n"
    ));
    std::fs::write(&g.config, yaml).unwrap();
}

fn plan_json(g: &Gen) -> Value {
    let s = standin();
    let out = run_ok(
        etcdpack()
            .args(["plan", "--json", "-c"])
            .arg(&g.config)
            .arg("-o")
            .arg(&g.out)
            .args(["--mirror", mirror(), "--etcd-sha256", &s.sha256]),
    );
    serde_json::from_str(&out).unwrap()
}

/// What the plan says happens to each path under `out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Created,
    Changed,
    Same,
    Gone,
}

/// Every path whose fate the plan states, with that fate.
fn expectations(plan: &Value) -> BTreeMap<String, Expect> {
    let mut e = BTreeMap::new();
    let ca = &plan["ca"];
    let ca_fate = match ca["action"].as_str().unwrap() {
        "create" => Expect::Created,
        "reuse" => Expect::Same,
        other => panic!("unexpected CA action {other}"),
    };
    e.insert(ca["cert"].as_str().unwrap().to_owned(), ca_fate);
    e.insert(ca["key"].as_str().unwrap().to_owned(), ca_fate);
    let bundle_fate = match ca["bundle_change"].as_str().unwrap() {
        "added" => Expect::Created,
        "changed" => Expect::Changed,
        "unchanged" => Expect::Same,
        other => panic!("unexpected bundle change {other}"),
    };
    e.insert(ca["bundle"].as_str().unwrap().to_owned(), bundle_fate);
    for f in plan["monitoring"].as_array().unwrap() {
        let fate = match f["change"].as_str().unwrap() {
            "added" => Expect::Created,
            "changed" => Expect::Changed,
            "unchanged" => Expect::Same,
            other => panic!("unexpected monitoring change {other}"),
        };
        e.insert(f["path"].as_str().unwrap().to_owned(), fate);
    }
    for c in plan["certificates"].as_array().unwrap() {
        let fate = match (c["action"].as_str().unwrap(), ca_fate) {
            ("reuse", _) => Expect::Same,
            ("issue", Expect::Created) => Expect::Created,
            // A certificate issued anew replaces its file, or creates it.
            ("issue", _) => Expect::Changed,
            (other, _) => panic!("unexpected certificate action {other}"),
        };
        e.insert(c["cert"].as_str().unwrap().to_owned(), fate);
        e.insert(c["key"].as_str().unwrap().to_owned(), fate);
    }
    for n in plan["nodes"].as_array().unwrap() {
        let tree = n["tree"].as_str().unwrap();
        for f in n["files"].as_array().unwrap() {
            let path = format!("{tree}{}", f["path"].as_str().unwrap());
            let fate = match f["change"].as_str().unwrap() {
                "added" => Expect::Created,
                "changed" => Expect::Changed,
                "unchanged" => Expect::Same,
                "removed" => Expect::Gone,
                other => panic!("unexpected file change {other}"),
            };
            e.insert(path, fate);
        }
        for a in n["artifacts"].as_array().unwrap() {
            let fate = match a["action"].as_str().unwrap() {
                "create" => Expect::Created,
                "replace" => Expect::Changed,
                "keep" => Expect::Same,
                other => panic!("unexpected artifact action {other}"),
            };
            e.insert(a["path"].as_str().unwrap().to_owned(), fate);
        }
    }
    e
}

/// Run one step: plan, gen, and hold the plan to what gen did. Returns the plan.
fn step(g: &Gen, what: &str) -> Value {
    let plan = plan_json(g);
    let before = snapshot(&g.out);
    let manifest: Value = serde_json::from_str(&g.run_ok(&["--json"])).unwrap();
    let after = snapshot(&g.out);

    let mut expect = expectations(&plan);
    let removed: Vec<&str> = plan["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for r in &removed {
        let under: Vec<String> = before
            .keys()
            .filter(|p| *p == r || p.starts_with(&format!("{r}/")))
            .cloned()
            .collect();
        assert!(
            !under.is_empty(),
            "{what}: the plan removes {r}, which is not there"
        );
        for p in under {
            expect.insert(p, Expect::Gone);
        }
    }
    for (path, fate) in &expect {
        let (b, a) = (before.get(path), after.get(path));
        let ok = match fate {
            Expect::Created => b.is_none() && a.is_some(),
            Expect::Changed => a.is_some() && b != a,
            Expect::Same => b.is_some() && a == b,
            Expect::Gone => b.is_some() && a.is_none(),
        };
        assert!(
            ok,
            "{what}: the plan says {path} is {fate:?}; before {b:?}, after {a:?}"
        );
    }
    // Nothing else changed but the record of the run.
    let records: BTreeSet<String> = plan["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let paths: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for path in paths {
        if before.get(path) != after.get(path) {
            assert!(
                expect.contains_key(path) || records.contains(path),
                "{what}: {path} changed ({:?} → {:?}) but the plan did not say so",
                before.get(path),
                after.get(path)
            );
        }
    }
    // gen used the plan's releases and names.
    assert_eq!(
        versions(&plan),
        versions(&manifest),
        "{what}: releases and artifacts"
    );
    // And a plan right after gen finds nothing to do.
    let again = plan_json(g);
    for n in again["nodes"].as_array().unwrap() {
        assert_eq!(n["status"], "unchanged", "{what}: after gen: {n}");
    }
    assert_eq!(again["removed"], Value::Array(vec![]), "{what}");
    plan
}

/// (name, version, artifact paths) of every node of a plan or a manifest:
/// both spell them the same.
fn versions(doc: &Value) -> Vec<(String, String, Vec<String>)> {
    doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_owned(),
                n["version"].as_str().unwrap().to_owned(),
                n["artifacts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["path"].as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

fn node<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node {name} in the plan"))
}

fn changed_files(n: &Value) -> Vec<String> {
    n["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["change"] != "unchanged")
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect()
}

const A: (&str, &str, &str) = ("etcd-a", "127.0.0.11", "");
const B: (&str, &str, &str) = ("etcd-b", "127.0.0.12", "");
const C: (&str, &str, &str) = ("etcd-c", "127.0.0.13", "");
const D: (&str, &str, &str) = ("etcd-d", "127.0.0.14", "");
const B_SAN: (&str, &str, &str) = ("etcd-b", "127.0.0.12", ", sans: [etcd-b.example.org]");

#[test]
fn plan_names_exactly_what_gen_writes_changes_and_removes() {
    support::require!(support::STANDIN);
    let g = Gen::new(&[], "");

    config(&g, &[A, B, C], "100ms");
    let p = step(&g, "fresh");
    assert_eq!(p["ca"]["action"], "create");
    for n in ["etcd-a", "etcd-b", "etcd-c"] {
        assert_eq!(node(&p, n)["status"], "added");
        assert_eq!(node(&p, n)["version"], "3.4.16-1");
    }

    let p = step(&g, "unchanged rerun");
    assert_eq!(p["summary"]["unchanged"], 3, "{p}");
    for n in p["nodes"].as_array().unwrap() {
        for a in n["artifacts"].as_array().unwrap() {
            assert_eq!(a["action"], "keep", "{a}");
        }
    }

    config(&g, &[A, B, C], "150ms");
    let p = step(&g, "tuning change");
    for n in ["etcd-a", "etcd-b", "etcd-c"] {
        let n = node(&p, n);
        assert_eq!(n["status"], "changed");
        assert_eq!(n["previous_version"], "3.4.16-1");
        assert_eq!(n["version"], "3.4.16-2");
        assert_eq!(changed_files(n), ["/opt/etcd/cfg/etcd.conf"], "{n}");
        let why = n["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == "/opt/etcd/cfg/etcd.conf")
            .unwrap()["why"]
            .to_string();
        assert!(why.contains("ETCD_HEARTBEAT_INTERVAL 100 → 150"), "{why}");
    }
    assert_eq!(
        p["removed"].as_array().unwrap().len(),
        6,
        "old artifacts: {p}"
    );

    config(&g, &[A, B_SAN, C], "150ms");
    let p = step(&g, "added SAN");
    assert_eq!(node(&p, "etcd-a")["status"], "unchanged");
    assert_eq!(node(&p, "etcd-c")["status"], "unchanged");
    let b = node(&p, "etcd-b");
    assert_eq!(b["version"], "3.4.16-3");
    // etcd-maint names the certificate it checks.
    assert_eq!(
        changed_files(b),
        [
            "/opt/etcd/bin/etcd-maint",
            "/opt/etcd/ssl/server-key.pem",
            "/opt/etcd/ssl/server.pem"
        ]
    );
    let cert = p["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "nodes/etcd-b")
        .unwrap();
    assert_eq!(cert["action"], "issue");
    assert!(
        cert["reason"]
            .as_str()
            .unwrap()
            .contains("+DNS:etcd-b.example.org"),
        "{cert}"
    );

    config(&g, &[A, B_SAN, C, D], "150ms");
    let p = step(&g, "added node");
    assert_eq!(node(&p, "etcd-d")["status"], "added");
    assert_eq!(node(&p, "etcd-d")["version"], "3.4.16-1");
    // The members learn of it only through their etcdctl endpoints: their etcd.conf (the
    // bootstrap they were installed with) stays.
    for n in ["etcd-a", "etcd-b", "etcd-c"] {
        let n = node(&p, n);
        assert_eq!(n["status"], "changed", "{n}");
        assert!(
            changed_files(n).contains(&"/etc/profile.d/etcdctl.sh".to_owned())
                && !changed_files(n).contains(&"/opt/etcd/cfg/etcd.conf".to_owned()),
            "{n}"
        );
    }
    // It joins the running cluster as a learner, and the plan says how.
    let join = &p["membership"][0];
    assert_eq!(join["node"], "etcd-d");
    assert_eq!(join["action"], "join");
    let commands = join["commands"].to_string();
    assert!(
        commands.contains("etcdctl member add etcd-d --learner --peer-urls=https://")
            && commands.contains("etcdctl member promote"),
        "{commands}"
    );
    let conf = std::fs::read_to_string(g.out.join("nodes/etcd-d/opt/etcd/cfg/etcd.conf")).unwrap();
    assert!(
        conf.contains("ETCD_INITIAL_CLUSTER_STATE=existing"),
        "{conf}"
    );

    config(&g, &[A, B_SAN, C], "150ms");
    let p = step(&g, "removed node");
    assert_eq!(p["summary"]["removed"], 1);
    assert_eq!(
        p["membership"][0]["action"], "remove",
        "{}",
        p["membership"]
    );
    assert!(
        p["membership"][0]["commands"]
            .to_string()
            .contains("etcdctl member remove"),
        "{}",
        p["membership"]
    );
    let removed = p["removed"].to_string();
    assert!(
        removed.contains("\"nodes/etcd-d\"")
            && removed.contains("dist/etcd-test-etcd-d_3.4.16-1_amd64.deb"),
        "{removed}"
    );

    config(&g, &[A, B_SAN, C, D], "150ms");
    let p = step(&g, "node added again");
    assert_eq!(node(&p, "etcd-d")["status"], "added");
    assert_eq!(
        node(&p, "etcd-d")["version"],
        "3.4.16-2",
        "a node added again continues its releases"
    );
    // Its old data directory must not come back with it.
    assert!(
        p["membership"][0]["commands"]
            .to_string()
            .contains(".removed-"),
        "{}",
        p["membership"]
    );
}

#[test]
fn a_corrupt_manifest_is_an_error_for_plan_and_gen() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["127.0.0.1"], "");
    g.run_ok(&[]);
    let manifest = g.out.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, &text[..text.len() / 2]).unwrap();
    let before = snapshot(&g.out);
    let s = standin();
    let plan = etcdpack()
        .args(["plan", "-c"])
        .arg(&g.config)
        .arg("-o")
        .arg(&g.out)
        .args(["--etcd-sha256", &s.sha256])
        .output()
        .unwrap();
    let gen_out = g.run(&[]);
    for (cmd, out) in [("plan", plan), ("gen", gen_out)] {
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is not an etcdpack manifest") && err.contains("help: restore"),
            "{cmd}: {err}"
        );
    }
    assert_eq!(snapshot(&g.out), before, "nothing may change");
}

#[test]
fn plan_and_gen_refuse_a_skipped_minor_release_and_a_downgrade() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["127.0.0.1"], "");
    g.run_ok(&[]);
    let base = std::fs::read_to_string(&g.config).unwrap();
    let sums = std::fs::read(g.out.join("SHA256SUMS")).unwrap();
    for (version, says) in [
        ("3.6.4", "skips the 3.5 line"),
        ("3.4.15", "downgrades are refused"),
    ] {
        std::fs::write(
            &g.config,
            format!(
                "{base}etcd: {{ version: {version}, sha256: \"{}\" }}\n",
                "0".repeat(64)
            ),
        )
        .unwrap();
        for sub in ["plan", "gen"] {
            let out = etcdpack()
                .arg(sub)
                .arg("-c")
                .arg(&g.config)
                .arg("-o")
                .arg(&g.out)
                .args(["--mirror", mirror()])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && err.contains(says),
                "{sub} {version}: {err}"
            );
            assert!(err.contains("help:"), "{err}");
        }
    }
    assert_eq!(std::fs::read(g.out.join("SHA256SUMS")).unwrap(), sums);
}

/// The access policy's lines of `plan --json`.
fn access_changes(plan: &Value) -> Vec<String> {
    plan["access"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn plan_says_what_a_changed_access_policy_does() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["10.0.0.1"], "auth: { enabled: false }\n");
    let base = std::fs::read_to_string(&g.config).unwrap();
    let base = base.replace("auth: { enabled: false }\n", "");
    g.run_ok(&[]);
    // Auth off, and it stays off: nothing to say.
    assert_eq!(access_changes(&plan_json(&g)), Vec::<String>::new());

    // Turned on: the whole policy is new.
    std::fs::write(&g.config, &base).unwrap();
    let on = access_changes(&plan_json(&g));
    for line in [
        "+ etcd's auth turned on",
        "+ user root (role root)",
        "+ user etcd-1 (role root)",
        "+ user flannel (role flannel)",
        "+ role kube-apiserver: compact_rev_key readwrite",
    ] {
        assert!(on.iter().any(|l| l == line), "no {line:?} in {on:#?}");
    }
    g.run_ok(&[]);
    assert_eq!(access_changes(&plan_json(&g)), Vec::<String>::new());

    // flannel narrowed to reading, a client added, kube-apiserver dropped.
    std::fs::write(
        &g.config,
        format!(
            "{base}clients:\n  - {{ name: etcdctl }}\n  - {{ name: flannel, access: {{ read: [/coreos.com/network/] }} }}\n  - {{ name: mon, access: {{ read: [/] }} }}\n"
        ),
    )
    .unwrap();
    let changed = access_changes(&plan_json(&g));
    assert_eq!(
        changed,
        [
            "+ user mon (role mon)",
            "- user kube-apiserver",
            "~ role flannel: /coreos.com/network/ readwrite → read",
            "+ role mon: / read",
            "- role kube-apiserver: /registry/ readwrite",
            "- role kube-apiserver: compact_rev_key readwrite",
            "- role kube-apiserver",
        ]
    );
    // The text names it too.
    let text = run_ok(
        etcdpack()
            .args(["plan", "-c"])
            .arg(&g.config)
            .arg("-o")
            .arg(&g.out)
            .arg("--mirror")
            .arg(mirror())
            .arg("--etcd-sha256")
            .arg(&standin().sha256),
    );
    assert!(
        text.contains("\nAccess policy, which etcd-auth.service applies")
            && text.contains("\n  ~ role flannel: /coreos.com/network/ readwrite → read\n"),
        "{text}"
    );
}
