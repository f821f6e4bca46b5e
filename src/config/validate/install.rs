//! `paths`, `service` and `packages`: how a node's package installs and is named.

use super::{Checker, is_clean_abs_path, is_package_name, is_unix_user};
use crate::config::error::Rule;
use crate::config::raw::*;
use crate::config::*;

pub(super) fn paths(c: &mut Checker, raw_paths: &RawPaths) -> Paths {
    let mut path = |v: &Option<S<String>>, key: &str, default: &str| -> String {
        match v {
            None => default.to_owned(),
            Some(p) => {
                if !is_clean_abs_path(&p.value) {
                    let at = c.at(p);
                    c.problem(
                        Rule::Path,
                        at,
                        format!("{key} \"{}\" is not a clean absolute path", p.value),
                        "write an absolute path without '..', '.', spaces or a trailing '/'",
                    );
                }
                p.value.clone()
            }
        }
    };
    let install_dir = path(&raw_paths.install_dir, "paths.install_dir", "/opt/etcd");
    let data_dir = path(
        &raw_paths.data_dir,
        "paths.data_dir",
        "/var/lib/etcd/default.etcd",
    );
    Paths {
        install_dir,
        data_dir,
    }
}

pub(super) fn service(c: &mut Checker, raw_service: &RawService) -> Service {
    let user = match &raw_service.user {
        None => "etcd".to_owned(),
        Some(u) => {
            if !is_unix_user(&u.value) {
                let at = c.at(u);
                c.problem(
                    Rule::User,
                    at,
                    format!("service.user \"{}\" is not a valid user name", u.value),
                    "use a lower-case name such as etcd (or root)",
                );
            }
            u.value.clone()
        }
    };
    Service {
        user,
        start: raw_service.start.unwrap_or(true),
    }
}

pub(super) fn packages(
    c: &mut Checker,
    raw_packages: &RawPackages,
    overrides: &Overrides,
    name: &str,
) -> Packages {
    let formats = match (&overrides.formats, &raw_packages.formats) {
        (Some(f), _) => f.clone(),
        (None, None) => Format::ALL.to_vec(),
        (None, Some(list)) => {
            let mut out = Vec::new();
            for f in &list.value {
                match f.parse::<Format>() {
                    Ok(f) if !out.contains(&f) => out.push(f),
                    Ok(_) => {}
                    Err(e) => {
                        let at = c.at(list);
                        c.problem(
                            Rule::Format,
                            at,
                            format!("packages.formats: {e}"),
                            format!("use a list of {}", Format::names()),
                        );
                    }
                }
            }
            if out.is_empty() && list.value.is_empty() {
                let at = c.at(list);
                c.problem(
                    Rule::Format,
                    at,
                    "packages.formats is empty",
                    format!("list at least one of {}", Format::names()),
                );
            }
            out
        }
    };
    let name_pattern = raw_packages
        .name
        .as_ref()
        .map(|n| n.value.clone())
        .unwrap_or_else(|| "etcd-{cluster}-{node}".into());
    if let Some(n) = &raw_packages.name {
        let sample = n.value.replace("{cluster}", "c").replace("{node}", "n");
        if !n.value.contains("{node}") || !is_package_name(&sample) {
            let at = c.at(n);
            c.problem(
                Rule::PackageName,
                at,
                format!("packages.name \"{}\" does not give a valid, per-node package name", n.value),
                "use lower-case letters, digits, '+', '.', '-' and the placeholders {cluster} and {node}; {node} is required",
            );
        }
    }
    let maintainer = match &raw_packages.maintainer {
        None => format!("{name} etcd operators <root@localhost>"),
        Some(m) => {
            let ok = m.value.contains('<')
                && m.value.ends_with('>')
                && m.value.contains('@')
                && !m.value.contains('\n');
            if !ok {
                let at = c.at(m);
                c.problem(
                    Rule::Maintainer,
                    at,
                    format!("packages.maintainer \"{}\" is not `Name <email>`", m.value),
                    "write e.g. \"Platform Team <platform@example.org>\"",
                );
            }
            m.value.clone()
        }
    };
    let homepage = raw_packages
        .homepage
        .clone()
        .unwrap_or_else(|| "https://etcd.io".into());
    Packages {
        formats,
        name: name_pattern,
        maintainer,
        homepage,
    }
}
