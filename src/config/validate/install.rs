//! `paths`, `service` and `packages`: how a node's package installs and is named.

use super::{Checker, is_clean_abs_path, is_package_name, is_unix_user};
use crate::config::error::Rule;
use crate::config::raw::*;
use crate::config::*;

/// Directories of the operating system. The package scripts create, chown and
/// chmod `paths.install_dir` and `paths.data_dir`, and removal deletes what the
/// package owns, so neither may be one of these nor an ancestor of one (a
/// trailing `*` matches any name that starts so: `/lib*` is `/lib`, `/lib64`,
/// `/libx32`, ...). A directory below them, such as `/opt/etcd`, is fine.
pub const SYSTEM_DIRS: &[&str] = &[
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/etc/profile.d",
    "/etc/systemd/system",
    "/home",
    "/lib*",
    "/lib/systemd/system",
    "/lost+found",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/snap",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/usr/bin",
    "/usr/games",
    "/usr/include",
    "/usr/lib*",
    "/usr/lib/systemd/system",
    "/usr/libexec",
    "/usr/local",
    "/usr/local/bin",
    "/usr/local/etc",
    "/usr/local/include",
    "/usr/local/lib*",
    "/usr/local/sbin",
    "/usr/local/share",
    "/usr/local/src",
    "/usr/sbin",
    "/usr/share",
    "/usr/src",
    "/var",
    "/var/backups",
    "/var/cache",
    "/var/lib",
    "/var/local",
    "/var/lock",
    "/var/log",
    "/var/mail",
    "/var/opt",
    "/var/run",
    "/var/spool",
    "/var/tmp",
];

/// The entry of [`SYSTEM_DIRS`] that `path` is, or is an ancestor of.
pub(super) fn system_dir(path: &str) -> Option<&'static str> {
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    SYSTEM_DIRS.iter().copied().find(|dir| {
        let sys: Vec<&str> = dir.split('/').skip(1).collect();
        parts.len() <= sys.len()
            && parts
                .iter()
                .zip(&sys)
                .all(|(p, s)| match s.strip_suffix('*') {
                    Some(prefix) => p.starts_with(prefix),
                    None => p == s,
                })
    })
}

/// Whether `inner` is `outer` or below it (component-wise: /opt/etcd-data is
/// not below /opt/etcd).
pub(super) fn is_within(inner: &str, outer: &str) -> bool {
    inner == outer
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
}

pub(super) fn paths(c: &mut Checker, raw_paths: &RawPaths) -> Paths {
    let mut path = |v: &Option<S<String>>, key: &str, default: &str| -> String {
        match v {
            None => default.to_owned(),
            Some(p) => {
                let at = c.at(p);
                if !is_clean_abs_path(&p.value) {
                    c.problem(
                        Rule::Path,
                        at,
                        format!("{key} \"{}\" is not a clean absolute path", p.value),
                        "write an absolute path without '..', '.', spaces or a trailing '/'",
                    );
                } else if let Some(sys) = system_dir(&p.value) {
                    let what = if sys.trim_end_matches('*') == p.value {
                        String::new()
                    } else {
                        format!(" holding {sys}")
                    };
                    c.problem(
                        Rule::SystemDir,
                        at,
                        format!(
                            "{key} \"{}\" is a system directory{what}; the package would take it over (chown, chmod, remove)",
                            p.value
                        ),
                        format!("give etcd a directory of its own below it, e.g. {default}"),
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
    let relation = if install_dir == data_dir {
        Some("is the same directory as")
    } else if is_within(&data_dir, &install_dir) {
        Some("is inside")
    } else if is_within(&install_dir, &data_dir) {
        Some("holds")
    } else {
        None
    };
    if let Some(relation) = relation {
        // Point at the key that was written; the data directory when both were.
        let at = match &raw_paths.data_dir {
            Some(d) => c.at(d),
            None => c.at_or_file(&raw_paths.install_dir),
        };
        c.problem(
            Rule::PathOverlap,
            at,
            format!(
                "paths.data_dir \"{data_dir}\" {relation} paths.install_dir \"{install_dir}\""
            ),
            "keep them apart, e.g. install_dir: /opt/etcd and data_dir: /var/lib/etcd/default.etcd: the data directory belongs to the service user, the install directory to root",
        );
    }
    Paths {
        install_dir,
        data_dir,
    }
}

/// `packages.homepage` goes into the .deb's control file and the .rpm's
/// header as one line: an http(s) URL of printable ASCII, nothing else.
fn is_homepage_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| {
        !r.is_empty() && !r.starts_with('/') && r.bytes().all(|b| b.is_ascii_graphic())
    })
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
                && !m.value.chars().any(char::is_control);
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
    let homepage = match &raw_packages.homepage {
        None => "https://etcd.io".to_owned(),
        Some(h) => {
            if !is_homepage_url(&h.value) {
                let at = c.at(h);
                c.problem(
                    Rule::Homepage,
                    at,
                    format!(
                        "packages.homepage {:?} is not an http(s) URL on one line",
                        h.value
                    ),
                    "write e.g. \"https://etcd.io\": no spaces, line breaks or other control characters (percent-encode them)",
                );
            }
            h.value.clone()
        }
    };
    let keys = match &raw_packages.keys {
        None => Keys::Cleartext,
        Some(k) => match Keys::ALL.iter().find(|l| l.as_str() == k.value) {
            Some(l) => *l,
            None => {
                let at = c.at(k);
                c.problem(
                    Rule::KeyLayout,
                    at,
                    format!("packages.keys {:?} is not a key layout", k.value),
                    "write `cleartext` (each package holds its key; copy it to its own machine only) or `sealed` (the key sealed to the node's ssh_host_key; packages safe to publish)",
                );
                Keys::Cleartext
            }
        },
    };
    Packages {
        formats,
        name: name_pattern,
        maintainer,
        homepage,
        keys,
    }
}
