//! The package scripts as the formats render them: each typed field from its
//! own template, overrides from a directory, and the service settings and
//! install dir they follow.

use std::path::Path;

use super::{Format, ScriptInput, Scripts, templates};
use crate::config::{self, Cluster, Overrides};
use crate::extract::Binaries;
use crate::model::Blob;
use crate::render::{self, Templates};
use crate::stage::{self, NodeCerts, NodeTree};

fn cluster(extra: &str) -> Cluster {
    let text = format!(
        "version: 1\ncluster: {{ name: k8s, token: etcd_cluster }}\nnodes:\n  - {{ name: etcd-1, ip: 192.168.0.1 }}\n  - {{ name: etcd-2, ip: 192.168.0.2 }}\n  - {{ name: etcd-3, ip: 192.168.0.3 }}\n{extra}"
    );
    config::parse(Path::new("cluster.yaml"), &text, &Overrides::default()).unwrap()
}

/// The staged tree of `c`'s first node, with stand-in binaries and keys.
fn tree(c: &Cluster) -> NodeTree {
    let r = render::render_node(&Templates::new(None, &[]).unwrap(), c, &c.nodes[0]).unwrap();
    let bins = Binaries {
        etcd: Blob::from(&b"etcd"[..]),
        etcdctl: Blob::from(&b"etcdctl"[..]),
        etcdutl: None,
    };
    let certs = NodeCerts {
        ca_cert_pem: "ca",
        cert_pem: "cert",
        key_pem: "key",
        sealed_key: None,
    };
    stage::assemble(c, &c.nodes[0], &bins, certs, &r, "#!/bin/sh\n").unwrap()
}

/// Every format's scripts for `c`'s first node, at version 3.4.16-1.
fn scripts(t: &Templates, c: &Cluster, tree: &NodeTree) -> Scripts {
    Scripts::render(&ScriptInput::new(
        t,
        c,
        &c.nodes[0],
        tree,
        "3.4.16-1".into(),
    ))
    .unwrap()
}

#[test]
fn every_field_is_rendered_from_its_own_template() {
    let dir = tempfile::tempdir().unwrap();
    for t in templates() {
        let path = dir.path().join(t.name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, t.name).unwrap();
    }
    let t = Templates::new(Some(dir.path()), &templates()).unwrap();
    let c = cluster("");
    let s = scripts(&t, &c, &tree(&c));
    let fields = [
        (&s.bundle.install_sh, "install.sh"),
        (&s.deb.preinst, "deb/preinst"),
        (&s.deb.postinst, "deb/postinst"),
        (&s.deb.prerm, "deb/prerm"),
        (&s.deb.postrm, "deb/postrm"),
        (&s.deb.lintian_overrides, "deb/lintian-overrides"),
        (&s.rpm.pre, "rpm/pre"),
        (&s.rpm.post, "rpm/post"),
        (&s.rpm.preun, "rpm/preun"),
        (&s.rpm.postun, "rpm/postun"),
    ];
    for (text, name) in fields {
        assert_eq!(text, name);
    }
    let mut sorted = fields.map(|(_, n)| (n, n)).to_vec();
    sorted.sort();
    assert_eq!(s.by_name(), sorted);
    // The scripts' templates, then the fragments they include.
    let names: Vec<_> = templates().iter().map(|t| t.name).collect();
    let mut expected = fields.map(|(_, n)| n).to_vec();
    expected.extend(super::FRAGMENTS.iter().map(|t| t.name));
    assert_eq!(names, expected);
    // Each format's templates live in its own directory (the bundle's at the top).
    for f in Format::ALL {
        for t in f.templates() {
            assert_eq!(
                t.name.split_once('/').map(|(d, _)| d),
                (*f != Format::Tar).then_some(f.as_str()),
                "{f}: {}",
                t.name
            );
        }
    }
}

#[test]
fn every_file_under_templates_is_registered() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut files = Vec::new();
    for e in std::fs::read_dir(&root).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            for sub in std::fs::read_dir(e.path()).unwrap() {
                let sub = sub.unwrap().file_name().to_string_lossy().into_owned();
                files.push(format!("{name}/{sub}"));
            }
        } else if name != "cluster.yaml" {
            // cluster.yaml is `init`'s example config, not a template.
            files.push(name);
        }
    }
    files.sort();
    let mut known: Vec<String> = render::TEMPLATES
        .iter()
        .chain(&templates())
        .map(|t| t.name.to_owned())
        // Its built-in text is packaging/lintian-overrides.
        .filter(|n| n != "deb/lintian-overrides")
        .collect();
    known.sort();
    assert_eq!(files, known);
}

#[test]
fn package_scripts_are_overridden_from_a_subdirectory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("deb")).unwrap();
    std::fs::write(
        dir.path().join("deb/postinst"),
        "#!/bin/sh\n# {{ package }} {{ version }}\n",
    )
    .unwrap();
    let t = Templates::new(Some(dir.path()), &templates()).unwrap();
    let c = cluster("");
    let s = scripts(&t, &c, &tree(&c));
    assert_eq!(s.deb.postinst, "#!/bin/sh\n# etcd-k8s-etcd-1 3.4.16-1\n");
    // The others stay built in.
    let prerm = &s.deb.prerm;
    assert!(prerm.contains("systemctl disable etcd.service"), "{prerm}");

    std::fs::write(dir.path().join("deb/postinstall"), "x").unwrap();
    let err = Templates::new(Some(dir.path()), &templates())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("deb/postinstall") && err.contains("deb/postinst"),
        "{err}"
    );
}

#[test]
fn a_fragment_is_overridden_in_every_script_that_includes_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("fragments")).unwrap();
    std::fs::write(
        dir.path().join("fragments/service-user"),
        "{# mine #}\nuseradd-of-my-own {{ format }} \"$user\"",
    )
    .unwrap();
    let t = Templates::new(Some(dir.path()), &templates()).unwrap();
    let c = cluster("");
    let s = scripts(&t, &c, &tree(&c));
    for (name, text, format) in [
        ("deb/postinst", &s.deb.postinst, "deb"),
        ("rpm/pre", &s.rpm.pre, "rpm"),
    ] {
        assert!(
            text.contains("user=etcd\nuseradd-of-my-own ") && !text.contains("getent passwd"),
            "{name}:\n{text}"
        );
        assert!(
            text.contains(&format!(" {format} \"$user\"\n")),
            "{name}:\n{text}"
        );
    }

    // A script that includes a fragment without setting what it needs is
    // refused, naming the fragment.
    std::fs::remove_file(dir.path().join("fragments/service-user")).unwrap();
    std::fs::create_dir(dir.path().join("deb")).unwrap();
    std::fs::write(
        dir.path().join("deb/postinst"),
        "#!/bin/sh\nuser=etcd\n{%- include \"fragments/service-user\" %}\n",
    )
    .unwrap();
    let t = Templates::new(Some(dir.path()), &templates()).unwrap();
    let tree = tree(&c);
    let input = ScriptInput::new(&t, &c, &c.nodes[0], &tree, "3.4.16-1".into());
    let err = format!("{:#}", Scripts::render(&input).err().unwrap());
    assert!(
        err.contains("deb/postinst") && err.contains("fragments/service-user"),
        "{err}"
    );
}

#[test]
fn maintainer_scripts_follow_the_service_settings() {
    let c = cluster("service: { user: root, start: false }\n");
    let t = Templates::new(None, &templates()).unwrap();
    let s = scripts(&t, &c, &tree(&c));
    for (name, s) in [
        ("deb/postinst", &s.deb.postinst),
        ("rpm/pre", &s.rpm.pre),
        ("rpm/post", &s.rpm.post),
    ] {
        assert!(!s.contains("useradd"), "{name}:\n{s}");
        assert!(!s.contains("systemctl start"), "{name}:\n{s}");
    }
    let c = cluster("");
    let s = scripts(&t, &c, &tree(&c));
    let post = &s.deb.postinst;
    assert!(post.contains("useradd --system"), "{post}");
    // A first install enables and starts etcd, the certificate check and the watch for a
    // pending restart.
    assert!(
        post.contains(
            "units=\"etcd.service etcd-cert-check.timer etcd-restart.path etcd-auth.path\""
        ) && post.contains("systemctl start --no-block $units"),
        "{post}"
    );
    assert!(
        post.contains("chown -h \"$user:$user\" \"/opt/etcd/ssl/server-key.pem\""),
        "{post}"
    );
    let overrides = &s.deb.lintian_overrides;
    assert!(
        overrides.contains("dir-or-file-in-opt [opt/etcd/*]"),
        "{overrides}"
    );
    assert!(
        overrides.contains("non-standard-file-perm 0600 != 0644 [opt/etcd/ssl/server-key.pem]"),
        "{overrides}"
    );
}

#[test]
fn the_backup_timer_is_enabled_and_removed_with_the_rest_when_backups_are_on() {
    let t = Templates::new(None, &templates()).unwrap();
    let c = cluster("backup: { enabled: true }\n");
    let s = scripts(&t, &c, &tree(&c));
    let timers =
        "etcd.service etcd-cert-check.timer etcd-backup.timer etcd-restart.path etcd-auth.path";
    for (name, text) in [("deb/postinst", &s.deb.postinst), ("rpm/post", &s.rpm.post)] {
        assert!(
            text.contains(&format!("units=\"{timers}\"")),
            "{name}:\n{text}"
        );
        // Nothing of the backups to retire.
        assert!(
            !text.contains("systemctl disable etcd-backup.timer"),
            "{name}:\n{text}"
        );
    }
    for (name, text) in [("deb/prerm", &s.deb.prerm), ("rpm/preun", &s.rpm.preun)] {
        assert!(
            text.contains(&format!("systemctl disable {timers}"))
                && text.contains(
                    "systemctl stop etcd-cert-check.service etcd-cert-check.timer etcd-backup.service etcd-backup.timer etcd-restart.service etcd-restart.path etcd-auth.service etcd-auth.path"
                ),
            "{name}:\n{text}"
        );
    }
    for (name, text) in [("deb/preinst", &s.deb.preinst), ("rpm/pre", &s.rpm.pre)] {
        assert!(
            text.contains(
                "for timer in etcd-cert-check.timer etcd-backup.timer etcd-restart.path etcd-auth.path; do"
            ),
            "{name}:\n{text}"
        );
    }
    let install = &s.bundle.install_sh;
    assert!(
        install.contains(&format!("units=\"{timers}\"")),
        "{install}"
    );

    // Without backups, an upgrade from a package that had them retires the timer.
    let c = cluster("");
    let s = scripts(&t, &c, &tree(&c));
    for (name, text) in [("deb/postinst", &s.deb.postinst), ("rpm/post", &s.rpm.post)] {
        assert!(
            text.contains("systemctl disable etcd-backup.timer")
                && text.contains("systemctl stop etcd-backup.timer"),
            "{name}:\n{text}"
        );
    }
}

#[test]
fn the_defrag_timer_is_enabled_with_defrag_on_and_retired_without() {
    let t = Templates::new(None, &templates()).unwrap();
    let c = cluster("defrag: { enabled: true }\n");
    let s = scripts(&t, &c, &tree(&c));
    let units =
        "etcd.service etcd-cert-check.timer etcd-defrag.timer etcd-restart.path etcd-auth.path";
    for (name, text) in [
        ("deb/postinst", &s.deb.postinst),
        ("rpm/post", &s.rpm.post),
        ("install.sh", &s.bundle.install_sh),
    ] {
        assert!(
            text.contains(&format!("units=\"{units}\"")),
            "{name}:\n{text}"
        );
    }
    assert!(
        s.deb.prerm.contains(&format!("systemctl disable {units}")),
        "{}",
        s.deb.prerm
    );
    let c = cluster("");
    let s = scripts(&t, &c, &tree(&c));
    for (name, text) in [("deb/postinst", &s.deb.postinst), ("rpm/post", &s.rpm.post)] {
        assert!(
            text.contains("systemctl disable etcd-defrag.timer")
                && text.contains("systemctl stop etcd-defrag.timer"),
            "{name}:\n{text}"
        );
    }
}

#[test]
fn lintian_overrides_follow_the_install_dir() {
    let c = cluster("paths: { install_dir: /usr/local/etcd }\n");
    let t = Templates::new(None, &templates()).unwrap();
    let o = &scripts(&t, &c, &tree(&c)).deb.lintian_overrides;
    assert!(!o.contains("dir-or-file-in-opt"), "{o}");
    assert!(
        o.contains("statically-linked-binary [usr/local/etcd/bin/*]"),
        "{o}"
    );
}

#[test]
fn only_3_6_packages_check_the_member_they_replace() {
    let t = Templates::new(None, &templates()).unwrap();
    for (version, checked) in [("3.4.16", false), ("3.5.33", false), ("3.6.14", true)] {
        let c = cluster(&format!("etcd: {{ version: {version} }}\n"));
        let s = scripts(&t, &c, &tree(&c));
        for (name, text) in [
            ("deb/preinst", &s.deb.preinst),
            ("rpm/pre", &s.rpm.pre),
            ("install.sh", &s.bundle.install_sh),
        ] {
            assert_eq!(
                text.contains("check v2store --data-dir \"$old_data\""),
                checked,
                "{version} {name}"
            );
            assert_eq!(
                text.contains("needs every member on 3.5.26 or later"),
                checked,
                "{version} {name}"
            );
        }
        // On a .deb, only for an install or an upgrade, never while one is undone.
        if checked {
            let guard = s.deb.preinst.find("upgrade_refuse()").unwrap();
            let cond = s.deb.preinst[..guard]
                .rfind("if [ \"$1\" = install ] || [ \"$1\" = upgrade ]; then");
            assert!(cond.is_some(), "{}", s.deb.preinst);
        }
    }
}
