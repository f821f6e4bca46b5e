//! Raw YAML → [`Cluster`]: apply defaults, check every rule, collect every
//! problem. One module per part of the config; [`resolve`] puts them together.

mod access;
mod backup;
mod defrag;
mod install;
mod members;
mod metrics;
mod pki;
mod publish;
mod release_source;
mod tuning;

use std::path::Path;
use std::time::Duration;

use super::error::{ConfigError, Position, Problem, Rule};
use super::raw::{RawConfig, S};
use super::units::{self, Quantity};
use super::*;

pub(super) const MS: Duration = Duration::from_millis(1);
pub(super) const HOUR: Duration = Duration::from_secs(3600);
/// etcd refuses an election timeout above this.
pub(super) const MAX_ELECTION: Duration = Duration::from_millis(50_000);
/// etcd warns above this backend quota.
pub(super) const SUGGESTED_MAX_QUOTA: u64 = 8 << 30;

pub(super) struct Checker<'a> {
    file: &'a Path,
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

impl<'a> Checker<'a> {
    /// The position of `v` if the key was written, else the file itself.
    pub(super) fn at_or_file<T>(&self, v: &Option<S<T>>) -> Position {
        v.as_ref()
            .map(|v| self.at(v))
            .unwrap_or_else(|| Position::file(self.file))
    }

    pub(super) fn at<T>(&self, s: &S<T>) -> Position {
        Position {
            file: self.file.to_owned(),
            line: s.referenced.line() as u32,
            column: s.referenced.column() as u32,
        }
    }

    pub(super) fn problem(
        &mut self,
        rule: Rule,
        at: Position,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.problems.push(Problem {
            rule,
            at,
            message: message.into(),
            help: help.into(),
        });
    }

    pub(super) fn warn(&mut self, at: Position, message: impl std::fmt::Display) {
        self.warnings.push(format!("{at}: {message}"));
    }

    pub(super) fn duration(
        &mut self,
        key: &str,
        v: &Option<S<Quantity>>,
        bare: Duration,
        default: Duration,
    ) -> Duration {
        let Some(v) = v else { return default };
        match units::parse_duration(&v.value, bare) {
            Ok(d) => d,
            Err(e) => {
                let at = self.at(v);
                self.problem(
                    Rule::Duration,
                    at,
                    format!("{key}: {e}"),
                    "write a duration such as \"100ms\", \"5s\", \"1h\" or \"87600h\"",
                );
                default
            }
        }
    }
}

pub(super) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub(super) fn is_dns_name(s: &str) -> bool {
    let s = s.strip_prefix("*.").unwrap_or(s);
    s.len() <= 253
        && s.split('.')
            .all(|l| is_dns_label(&l.to_ascii_lowercase()) && l == l.to_ascii_lowercase())
}

pub(super) fn is_unix_user(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_lowercase() || c == b'_')
        && s.len() <= 32
        && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

pub(super) fn is_clean_abs_path(s: &str) -> bool {
    s.starts_with('/')
        && s.len() > 1
        && !s.ends_with('/')
        && s.split('/').skip(1).all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
        })
}

pub(super) fn is_package_name(s: &str) -> bool {
    s.len() >= 2
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+.-".contains(&b))
}

pub(super) fn resolve(
    file: &Path,
    raw: RawConfig,
    overrides: &Overrides,
) -> Result<Cluster, ConfigError> {
    let mut c = Checker {
        file,
        problems: Vec::new(),
        warnings: Vec::new(),
    };

    if raw.version.value != 1 {
        let at = c.at(&raw.version);
        c.problem(
            Rule::Version,
            at,
            format!("config version {} is not supported", raw.version.value),
            "set `version: 1`",
        );
    }

    let (name, token) = members::cluster(&mut c, &raw.cluster);
    let etcd = release_source::etcd(&mut c, &raw.etcd, overrides);
    let nodes = members::nodes(&mut c, &raw.nodes);
    let tuning = tuning::tuning(&mut c, &raw.tuning, etcd.line());
    let pki = pki::pki(&mut c, &raw.pki);
    let clients = pki::clients(&mut c, &raw.clients);
    pki::admin_clients_of_an_imported_ca(&mut c, &raw.pki, &raw.clients, &pki, &clients);
    let paths = install::paths(&mut c, &raw.paths);
    let service = install::service(&mut c, &raw.service);
    let packages = install::packages(&mut c, &raw.packages, overrides, &name);
    members::sealing(&mut c, &raw.nodes, &nodes, packages.keys);
    let publish = publish::publish(&mut c, &raw.publish);
    let backup = backup::backup(&mut c, &raw.backup, &paths);
    let defrag = defrag::defrag(&mut c, &raw.defrag);
    let auth = access::auth(&mut c, &raw, &nodes, &clients, &tuning);
    let metrics = metrics::metrics(&mut c, &raw.metrics, &tuning);

    if !c.problems.is_empty() {
        c.problems.sort_by_key(|p| (p.at.line, p.at.column));
        return Err(ConfigError::Invalid(c.problems));
    }
    Ok(Cluster {
        source: file.to_owned(),
        name,
        token,
        etcd,
        nodes,
        tuning,
        pki,
        clients,
        paths,
        service,
        packages,
        publish,
        backup,
        defrag,
        auth,
        metrics,
        warnings: c.warnings,
    })
}
