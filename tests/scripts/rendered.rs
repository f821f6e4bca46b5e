//! Every script a node runs as root, rendered from the real templates: judged
//! by shellcheck for every kind of config, and rendered with hostile values
//! in every field that reaches one.

use super::*;

/// Every script a node runs, rendered for one config: the bundle's
/// installer, the .deb's maintainer scripts, the .rpm's scriptlets,
/// `etcd-maint` and the etcdctl profile; by name.
fn every_script(cluster: &Cluster) -> Vec<(String, String)> {
    every_script_or_refusal(cluster, cluster)
        .into_iter()
        .map(|(name, text)| (name, text.unwrap()))
        .collect()
}

/// [`every_script`], each one's text or why it could not be rendered; the
/// node's other files (its tree) from `files_of`.
fn every_script_or_refusal(
    cluster: &Cluster,
    files_of: &Cluster,
) -> Vec<(String, Result<String, String>)> {
    let node = &cluster.nodes[0];
    let templates = Templates::new(None, &package::templates()).unwrap();
    let err = |e: anyhow::Error| format!("{e:#}");
    let rendered = render::render_node(&templates, files_of, &files_of.nodes[0]).unwrap();
    let bins = Binaries {
        etcd: Blob::from(&b"etcd"[..]),
        etcdctl: Blob::from(&b"etcdctl"[..]),
        etcdutl: (cluster.etcd.version.as_str() >= "3.5").then(|| Blob::from(&b"etcdutl"[..])),
    };
    let certs = NodeCerts {
        ca_cert_pem: "ca\n",
        cert_pem: "cert\n",
        key_pem: "key\n",
        sealed_key: cluster
            .nodes
            .first()
            .and_then(|n| n.ssh_host_key.as_ref())
            .map(|_| "-----BEGIN AGE ENCRYPTED FILE-----\n"),
    };
    let not_after = time::OffsetDateTime::from_unix_timestamp(2_000_000_000).unwrap();
    let maint = render::render_maint(&templates, cluster, node, "cert\n", not_after).map_err(err);
    let tree = stage::assemble(
        files_of,
        &files_of.nodes[0],
        &bins,
        certs,
        &rendered,
        maint.as_deref().unwrap_or("#!/bin/sh\n"),
    )
    .unwrap();
    let version = format!("{}-1", cluster.etcd.version);
    let mut out = vec![
        ("etcd-maint".to_owned(), maint),
        (
            "etcdctl.sh".to_owned(),
            render::render_node(&templates, cluster, node)
                .map(|r| r.etcdctl_profile)
                .map_err(err),
        ),
    ];
    // A fragment renders only inside the scripts that include it.
    for t in package::templates() {
        if t.name.ends_with("lintian-overrides") || package::FRAGMENTS.contains(&t) {
            continue;
        }
        let text = render::render_script(
            &templates,
            t.name,
            cluster,
            node,
            &tree.script_entries(),
            &version,
        )
        .map_err(err);
        out.push((t.name.to_owned(), text));
    }
    out
}

/// shellcheck, Debian's, finds nothing at severity warning or above in any
/// script a node runs as root, for every release line, both key layouts,
/// backups on and off (in clear or encrypted), the defrag timer, IPv4 and IPv6, one member or
/// three, the service as root or its own user, started or not, the default
/// install_dir or another.
#[test]
fn every_rendered_script_passes_shellcheck() {
    support::require!(support::SHELLCHECK);
    let host_key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINs8qipbFuh0bFcUDOmVyv7rN9t23ATzSC+ib3Y25/6z";
    let configs = [
        ("3.4, cleartext, IPv4".to_owned(), String::new()),
        (
            "3.5, sealed, backups, IPv6".to_owned(),
            format!(
                "etcd: {{ version: 3.5.33 }}\npackages: {{ keys: sealed }}\nbackup: {{ enabled: true }}\n__IPV6__ __HOST_KEY__{host_key}"
            ),
        ),
        (
            "3.6, cleartext, backups encrypted".to_owned(),
            "etcd: { version: 3.6.14 }\nbackup: { enabled: true, recipients: [age1t4asd03a2awsq54yeq0pfvtz2fncqyvfnze32s7q8hn675zxmvaslpk8cq, \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK5HG+WK7EqnxuuTn2AgsYSGepNUXlPyehUg2SGzYT6q\"] }\n".to_owned(),
        ),
        // The other side of every switch a script template has: more than one member
        // (the restart lock), the service as root, nothing started, another install_dir,
        // the defrag timer.
        (
            "3.5, three members, root, no start, another install_dir".to_owned(),
            "etcd: { version: 3.5.33 }\nservice: { user: root, start: false }\npaths: { install_dir: /srv/etcd-x }\ndefrag: { enabled: true }\n__MORE_NODES__".to_owned(),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut findings = Vec::new();
    for (what, extra) in configs {
        let mut yaml = format!(
            "version: 1\ncluster: {{ name: test, token: test-token }}\nnodes:\n  - {{ name: etcd-1, ip: 127.0.0.1 }}\npki: {{ algorithm: ecdsa-p256 }}\n{extra}"
        );
        if let Some(i) = yaml.find("__MORE_NODES__") {
            yaml.truncate(i);
            yaml = yaml.replace(
                "  - { name: etcd-1, ip: 127.0.0.1 }\n",
                "  - { name: etcd-1, ip: 127.0.0.1 }\n  - { name: etcd-2, ip: 127.0.0.2 }\n  - { name: etcd-3, ip: 127.0.0.3 }\n",
            );
        }
        if let Some(i) = yaml.find("__IPV6__ __HOST_KEY__") {
            let key = yaml[i + "__IPV6__ __HOST_KEY__".len()..].to_owned();
            yaml.truncate(i);
            yaml = yaml.replace(
                "{ name: etcd-1, ip: 127.0.0.1 }",
                &format!("{{ name: etcd-1, ip: \"::1\", ssh_host_key: \"{key}\" }}"),
            );
        }
        let cluster = config::parse(Path::new("cluster.yaml"), &yaml, &Overrides::default())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        for (name, text) in every_script(&cluster) {
            if what.contains("three members") && name == "etcd-maint" {
                // The config is what its name says.
                assert!(
                    text.contains("\nlocked=1\n") && text.contains("/srv/etcd-x/bin/etcdctl"),
                    "{what}: {text}"
                );
            }
            let file = dir.path().join(name.replace('/', "-"));
            fs::write(&file, &text).unwrap();
            let out = Command::new("shellcheck")
                .args(["--shell=sh", "--severity=warning", "--format=gcc"])
                .arg(&file)
                .output()
                .unwrap();
            if !out.status.success() {
                findings.push(format!(
                    "{what}: {name}:\n{}",
                    String::from_utf8_lossy(&out.stdout)
                ));
            }
        }
    }
    assert!(findings.is_empty(), "{}", findings.join("\n"));
}

/// Every string field of the config that reaches a script, given a value
/// that validation would refuse (shell code, quotes, a newline): no script
/// is rendered with it, each refusal says why, and the field reaches at
/// least one script (so the check is not vacuous).
#[test]
fn a_hostile_value_in_any_field_never_reaches_a_rendered_script() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = [
        "x$(touch /tmp/etcdpack-pwned)",
        "x`touch /tmp/etcdpack-pwned`",
        "x\";touch /tmp/etcdpack-pwned;\"",
        "x';touch /tmp/etcdpack-pwned;'",
        "x\ntouch /tmp/etcdpack-pwned",
        "x\\",
    ];
    type Poison = fn(&mut Cluster, &str);
    let fields: [(&str, Poison); 11] = [
        ("cluster.name", |c, v| c.name = v.to_owned()),
        ("cluster.token", |c, v| c.token = v.to_owned()),
        ("nodes[].name", |c, v| c.nodes[0].name = v.to_owned()),
        ("paths.install_dir", |c, v| {
            c.paths.install_dir = format!("/opt/{v}")
        }),
        ("paths.data_dir", |c, v| {
            c.paths.data_dir = format!("/var/lib/{v}")
        }),
        ("service.user", |c, v| c.service.user = v.to_owned()),
        ("backup.dir", |c, v| c.backup.dir = format!("/srv/{v}")),
        ("backup.recipients", |c, v| {
            c.backup.recipients = vec![format!(
                "age1t4asd03a2awsq54yeq0pfvtz2fncqyvfnze32s7q8hn675zxmvaslpk8cq{v}"
            )]
        }),
        ("clients[].name", |c, v| c.clients[2].name = v.to_owned()),
        ("clients[].access", |c, v| {
            c.clients[2].access = config::Access::Prefixes {
                read: vec![format!("/a/{v}")],
                readwrite: Vec::new(),
            }
        }),
        ("nodes[].ssh_host_key", |c, v| {
            c.nodes[0].ssh_host_key = Some(config::HostKey::new(&format!(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINs8qipbFuh0bFcUDOmVyv7rN9t23ATzSC+ib3Y25/6z{v}"
            )))
        }),
    ];
    let mut base = cluster_of(dir.path(), "backup: { enabled: true }\n");
    base.packages.keys = config::Keys::Sealed;
    base.nodes[0].ssh_host_key = Some(config::HostKey::new(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINs8qipbFuh0bFcUDOmVyv7rN9t23ATzSC+ib3Y25/6z",
    ));
    for (field, poison) in fields {
        for value in hostile {
            let mut c = base.clone();
            poison(&mut c, value);
            let scripts = every_script_or_refusal(&c, &base);
            let mut refused = 0;
            for (name, text) in scripts {
                match text {
                    Ok(text) => assert!(
                        !text.contains("touch /tmp/etcdpack-pwned") && !text.contains("x\\"),
                        "{field} = {value:?} reached {name}:\n{text}"
                    ),
                    // etcd.conf's own check may refuse the node's files
                    // first (the profile comes with them).
                    Err(why) => {
                        assert!(
                            why.contains("refusing to put") || name == "etcdctl.sh",
                            "{field}: {name}: {why}"
                        );
                        refused += 1;
                    }
                }
            }
            // Shell code after a word reaches every field as it is.
            if value == hostile[0] {
                assert!(refused > 0, "{field} = {value:?} reaches no script");
            }
        }
    }
}
