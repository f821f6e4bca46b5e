//! The CIS Kubernetes Benchmark's etcd items: `etcd-maint cis` on real
//! members (127.0.10.x), judging the process — its command line and
//! environment, its data directory — not the etcd.conf beside it; and
//! `etcdpack verify` on an output whose etcd.conf or unit was edited.

use super::*;
use std::os::unix::fs::MetadataExt as _;

/// `etcd-maint cis --pid` of `member`: its exit code and stdout.
fn cis(root: &Path, member: &Member) -> (Option<i32>, String) {
    let out = maint(root, &["cis", "--pid", &member.child.id().to_string()]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.starts_with(&format!(
            "==> CIS etcd items of process {}",
            member.child.id()
        )),
        "{}",
        both(&out)
    );
    (out.status.code(), said)
}

/// The line of item `id` (`PASS 2.1 …`, `FAIL 2.1 …`).
fn item<'a>(said: &'a str, id: &str) -> &'a str {
    said.lines()
        .find(|l| {
            l.get(5..)
                .is_some_and(|rest| rest.starts_with(&format!("{id} ")))
        })
        .unwrap_or_else(|| panic!("no line for {id} in\n{said}"))
}

const IDS: [&str; 9] = [
    "2.1", "2.2", "2.3", "2.4", "2.5", "2.6", "2.7", "1.1.11", "1.1.12",
];

#[test]
fn cis_passes_a_member_as_generated_and_fails_its_data_directory_and_a_shared_ca() {
    support::require!(support::ROOT, support::STANDIN);
    let g = one_node("127.0.10.1", "");
    let work = tempfile::tempdir().unwrap();
    let root = node_root(&g, work.path(), "etcd-1");
    let member = Member::start(&root);
    wait_healthy(&root, "https://127.0.10.1:2379", &[&member]);

    let (code, said) = cis(&root, &member);
    assert_eq!(code, Some(0), "{said}");
    for id in IDS {
        assert!(item(&said, id).starts_with("PASS "), "{said}");
    }
    assert!(
        item(&said, "2.2").contains("ETCD_CLIENT_CERT_AUTH=true in the environment"),
        "{said}"
    );
    assert!(item(&said, "2.7").contains("no Kubernetes CA at"), "{said}");
    let data = root.join("var/lib/etcd/default.etcd");
    let meta = fs::metadata(&data).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
    assert_eq!((meta.uid(), meta.gid()), (0, 0), "the service user, root");
    assert!(
        item(&said, "1.1.12").contains("is owned by root:root"),
        "{said}"
    );

    // Group and others may read it: 1.1.11 fails, and only it.
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
    let (code, said) = cis(&root, &member);
    assert_eq!(code, Some(1), "{said}");
    let line = item(&said, "1.1.11");
    assert!(
        line.starts_with("FAIL 1.1.11") && line.contains("has mode 755; chmod 700"),
        "{said}"
    );
    assert_eq!(said.matches("\nFAIL ").count(), 1, "{said}");
    fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();

    // Another owner: 1.1.12.
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    let (code, said) = cis(&root, &member);
    assert_eq!(code, Some(1), "{said}");
    assert!(item(&said, "1.1.12").starts_with("FAIL 1.1.12"), "{said}");
    std::os::unix::fs::chown(&data, Some(0), Some(0)).unwrap();

    // etcd's CA is the Kubernetes CA: byte for byte, then as one
    // certificate of a differently written file.
    let k8s = root.join("etc/kubernetes/pki");
    fs::create_dir_all(&k8s).unwrap();
    let ca = fs::read_to_string(root.join("opt/etcd/ssl/ca.pem")).unwrap();
    fs::write(k8s.join("ca.crt"), &ca).unwrap();
    let (code, said) = cis(&root, &member);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        item(&said, "2.7").contains("byte for byte the Kubernetes CA"),
        "{said}"
    );
    fs::write(k8s.join("ca.crt"), ca.replace('\n', "\r\n")).unwrap();
    let (_, said) = cis(&root, &member);
    assert!(
        item(&said, "2.7").contains("holds the certificate of the Kubernetes CA"),
        "{said}"
    );
    // A Kubernetes CA of its own: etcd's is unique.
    fs::copy(g.out.join("pki/clients/etcdctl.pem"), k8s.join("ca.crt")).unwrap();
    let (code, said) = cis(&root, &member);
    assert_eq!(code, Some(0), "{said}");
    assert!(item(&said, "2.7").contains("its bytes differ"), "{said}");
    member.stop();
}

/// etcd.conf says client-cert-auth true and no auto-tls; the member runs
/// with `--client-cert-auth=false --auto-tls=true` on its command line
/// (its ETCD_CLIENT_CERT_AUTH left out: etcd refuses a setting given
/// both ways) and ETCD_PEER_CLIENT_CERT_AUTH=False in its environment.
#[test]
fn cis_judges_the_running_process_not_its_etcd_conf() {
    support::require!(support::ROOT, support::STANDIN);
    let g = one_node("127.0.10.2", "");
    let work = tempfile::tempdir().unwrap();
    let root = node_root(&g, work.path(), "etcd-1");
    let member = Member::start_with(
        &root,
        &["--client-cert-auth=false", "--auto-tls=true"],
        |env| {
            env.retain(|(k, _)| k != "ETCD_CLIENT_CERT_AUTH");
            for (k, v) in env.iter_mut() {
                if k == "ETCD_PEER_CLIENT_CERT_AUTH" {
                    *v = "False".into();
                }
            }
        },
    );
    wait_healthy(&root, "https://127.0.10.2:2379", &[&member]);
    let conf = fs::read_to_string(root.join("opt/etcd/cfg/etcd.conf")).unwrap();
    assert!(conf.contains("\nETCD_CLIENT_CERT_AUTH=true\n"), "{conf}");

    let (code, said) = cis(&root, &member);
    assert_eq!(code, Some(1), "{said}");
    let fails: Vec<&str> = said.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert_eq!(fails.len(), 3, "{said}");
    let auth = item(&said, "2.2");
    assert!(
        auth.starts_with("FAIL 2.2")
            && auth.contains("--client-cert-auth=false on the command line")
            && auth.contains("give --client-cert-auth=true instead"),
        "{said}"
    );
    let tls = item(&said, "2.3");
    assert!(
        tls.starts_with("FAIL 2.3") && tls.contains("--auto-tls=true on the command line"),
        "{said}"
    );
    let peer = item(&said, "2.5");
    assert!(
        peer.starts_with("FAIL 2.5")
            && peer.contains("ETCD_PEER_CLIENT_CERT_AUTH=False in the environment")
            && peer.contains("set ETCD_PEER_CLIENT_CERT_AUTH=true in /opt/etcd/cfg/etcd.conf"),
        "{said}"
    );
    for id in ["2.1", "2.4", "2.6", "2.7", "1.1.11", "1.1.12"] {
        assert!(item(&said, id).starts_with("PASS "), "{said}");
    }

    // Not etcd, or no such process: refused.
    let me = maint(&root, &["cis", "--pid", &std::process::id().to_string()]);
    assert_eq!(me.status.code(), Some(1));
    assert!(both(&me).contains("not etcd"), "{}", both(&me));
    let bad = maint(&root, &["cis", "--pid", "soon"]);
    assert_eq!(bad.status.code(), Some(1));
    member.stop();
}

#[test]
fn verify_fails_naming_the_cis_item_an_edited_node_tree_breaks() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["127.0.10.3"], "packages: { formats: [tar, deb, rpm] }\n");
    g.run_ok(&[]);
    support::tamper::assert_verify_passes(&g.out);
    let said = run_ok(support::etcdpack().arg("verify").arg(&g.out));
    for id in IDS {
        assert!(said.contains(&format!("ok   etcd-1: CIS {id} ")), "{said}");
    }
    assert!(
        said.contains("deb creates it 0700, rpm creates it 0700, tar creates it 0700"),
        "{said}"
    );

    let tree = g.out.join("nodes/etcd-1");
    let conf = tree.join("opt/etcd/cfg/etcd.conf");
    let text = fs::read_to_string(&conf).unwrap();
    fs::write(
        &conf,
        text.replace(
            "\nETCD_CLIENT_CERT_AUTH=true\n",
            "\nETCD_CLIENT_CERT_AUTH=false\n",
        ),
    )
    .unwrap();
    support::tamper::assert_verify_fails(&g.out, "CIS 2.2", "ETCD_CLIENT_CERT_AUTH=false");
    fs::write(&conf, &text).unwrap();

    // A flag in the unit's ExecStart counts as much as the variable.
    let unit = tree.join("usr/lib/systemd/system/etcd.service");
    let text = fs::read_to_string(&unit).unwrap();
    fs::write(
        &unit,
        text.replace(
            "ExecStart=/opt/etcd/bin/etcd\n",
            "ExecStart=/opt/etcd/bin/etcd --peer-auto-tls\n",
        ),
    )
    .unwrap();
    support::tamper::assert_verify_fails(&g.out, "CIS 2.6", "--peer-auto-tls=true in ExecStart");
    fs::write(&unit, &text).unwrap();
    support::tamper::assert_verify_passes(&g.out);
}
