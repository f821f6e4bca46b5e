//! Raw YAML → [`Cluster`]: apply defaults, check every rule, collect every problem.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{ConfigError, Position, Problem, Rule};
use super::raw::{RawConfig, S};
use super::units::{self, Quantity};
use super::*;
use crate::release;

const MS: Duration = Duration::from_millis(1);
const HOUR: Duration = Duration::from_secs(3600);
/// etcd refuses an election timeout above this.
const MAX_ELECTION: Duration = Duration::from_millis(50_000);
/// etcd warns above this backend quota.
const SUGGESTED_MAX_QUOTA: u64 = 8 << 30;

struct Checker<'a> {
    file: &'a Path,
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

impl<'a> Checker<'a> {
    fn at<T>(&self, s: &S<T>) -> Position {
        Position {
            file: self.file.to_owned(),
            line: s.referenced.line() as u32,
            column: s.referenced.column() as u32,
        }
    }

    fn problem(
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

    fn warn(&mut self, at: Position, message: impl std::fmt::Display) {
        self.warnings.push(format!("{at}: {message}"));
    }

    fn duration(
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

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_name(s: &str) -> bool {
    let s = s.strip_prefix("*.").unwrap_or(s);
    s.len() <= 253
        && s.split('.')
            .all(|l| is_dns_label(&l.to_ascii_lowercase()) && l == l.to_ascii_lowercase())
}

fn is_unix_user(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_lowercase() || c == b'_')
        && s.len() <= 32
        && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

fn is_clean_abs_path(s: &str) -> bool {
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

fn is_package_name(s: &str) -> bool {
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

    // cluster
    let name = raw.cluster.name.value.clone();
    if !is_dns_label(&name) {
        let at = c.at(&raw.cluster.name);
        c.problem(
            Rule::ClusterName,
            at,
            format!("cluster name \"{name}\" is not a DNS label"),
            "use 1-63 lower-case letters, digits and '-', not starting or ending with '-' (it becomes part of package names)",
        );
    }
    let token = match &raw.cluster.token {
        Some(t) => {
            let ok = !t.value.is_empty()
                && t.value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !ok {
                let at = c.at(t);
                c.problem(
                    Rule::Token,
                    at,
                    format!("cluster token \"{}\" has characters an EnvironmentFile cannot carry safely", t.value),
                    "use letters, digits, '.', '_' and '-' only",
                );
            }
            t.value.clone()
        }
        None => format!("etcd-cluster-{name}"),
    };

    // etcd release
    let version = match &raw.etcd.version {
        Some(v) => {
            let text = v.value.strip_prefix('v').unwrap_or(&v.value).to_owned();
            let parts: Vec<&str> = text.split('.').collect();
            if parts.len() != 3
                || parts
                    .iter()
                    .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
            {
                let at = c.at(v);
                c.problem(
                    Rule::EtcdVersion,
                    at,
                    format!("etcd.version \"{}\" is not a release number", v.value),
                    format!(
                        "write MAJOR.MINOR.PATCH, e.g. \"{}\"",
                        release::DEFAULT_VERSION
                    ),
                );
            }
            text
        }
        None => release::DEFAULT_VERSION.to_owned(),
    };
    let arch = match &raw.etcd.arch {
        None => Arch::Amd64,
        Some(a) => match a.value.as_str() {
            "amd64" => Arch::Amd64,
            "arm64" => Arch::Arm64,
            other => {
                let at = c.at(a);
                let hint = match other {
                    "x86_64" | "x86-64" => " (etcd calls it amd64)",
                    "aarch64" => " (etcd calls it arm64)",
                    _ => "",
                };
                c.problem(
                    Rule::Arch,
                    at,
                    format!("etcd.arch \"{other}\" is not supported{hint}"),
                    "use amd64 or arm64",
                );
                Arch::Amd64
            }
        },
    };
    let mut sha256 = String::new();
    let check_hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(s) = &overrides.etcd_sha256 {
        if check_hex(s) {
            sha256 = s.to_ascii_lowercase();
        } else {
            c.problem(
                Rule::Sha256,
                Position::file(file),
                format!("--etcd-sha256 \"{s}\" is not a SHA-256 in hex"),
                "give the 64 hex digits of the tarball's SHA-256 (sha256sum prints it)",
            );
        }
    } else if let Some(s) = &raw.etcd.sha256 {
        if check_hex(&s.value) {
            sha256 = s.value.to_ascii_lowercase();
        } else {
            let at = c.at(s);
            c.problem(
                Rule::Sha256,
                at,
                format!("etcd.sha256 \"{}\" is not a SHA-256 in hex", s.value),
                "give the 64 hex digits of the tarball's SHA-256 (sha256sum prints it)",
            );
        }
    } else if let Some(pinned) = release::pinned_sha256(&version, arch) {
        sha256 = pinned.to_owned();
    } else {
        let at = raw
            .etcd
            .version
            .as_ref()
            .map(|v| c.at(v))
            .unwrap_or_else(|| Position::file(file));
        c.problem(
            Rule::UnknownRelease,
            at,
            format!(
                "etcd {version} linux-{} has no pinned checksum in this etcdpack (pinned: {})",
                arch.as_str(),
                release::pinned_list()
            ),
            "add `etcd.sha256: <hex>` (from the release's SHA256SUMS) or pass --etcd-sha256",
        );
    }
    let url = match &raw.etcd.url {
        Some(u) if u.value.starts_with("https://") || u.value.starts_with("http://") => {
            Some(u.value.clone())
        }
        Some(u) => {
            let at = c.at(u);
            c.problem(
                Rule::Url,
                at,
                format!("etcd.url \"{}\" is not an http(s) URL", u.value),
                "give the full URL of the release tarball, or remove the key to use the official release",
            );
            None
        }
        None => None,
    };

    // nodes
    if raw.nodes.value.is_empty() {
        let at = c.at(&raw.nodes);
        c.problem(
            Rule::NoNodes,
            at,
            "the cluster has no nodes",
            "list at least one node under `nodes:` (three for a fault-tolerant cluster)",
        );
    }
    let mut names: HashMap<String, Position> = HashMap::new();
    let mut ips: HashMap<IpAddr, Position> = HashMap::new();
    let mut nodes = Vec::new();
    for n in &raw.nodes.value {
        let name_at = c.at(&n.name);
        if !is_dns_label(&n.name.value) {
            c.problem(
                Rule::NodeName,
                name_at.clone(),
                format!("node name \"{}\" is not a DNS label", n.name.value),
                "use 1-63 lower-case letters, digits and '-', not starting or ending with '-'",
            );
        } else if let Some(first) = names.get(&n.name.value) {
            c.problem(
                Rule::DuplicateName,
                name_at.clone(),
                format!(
                    "node name \"{}\" is used twice (first at line {})",
                    n.name.value, first.line
                ),
                "give every node its own name",
            );
        } else {
            names.insert(n.name.value.clone(), name_at);
        }
        let ip_at = c.at(&n.ip);
        let ip = match n.ip.value.trim().parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() || ip.is_multicast() => {
                c.problem(
                    Rule::Ip,
                    ip_at.clone(),
                    format!("node ip {ip} cannot be a member address"),
                    "give the address the node is reached at by its peers",
                );
                ip
            }
            Ok(ip) => ip,
            Err(_) => {
                c.problem(
                    Rule::Ip,
                    ip_at.clone(),
                    format!("node ip \"{}\" is not an IPv4 or IPv6 address", n.ip.value),
                    "write an address such as 192.168.0.1 or fd00::1 (no port, no prefix length)",
                );
                IpAddr::from([0, 0, 0, 0])
            }
        };
        if !ip.is_unspecified() {
            if let Some(first) = ips.get(&ip) {
                c.problem(
                    Rule::DuplicateIp,
                    ip_at.clone(),
                    format!("node ip {ip} is used twice (first at line {})", first.line),
                    "give every node its own address",
                );
            } else {
                ips.insert(ip, ip_at);
            }
        }
        let mut sans = Vec::new();
        for s in &n.sans {
            if let Ok(ip) = s.value.parse::<IpAddr>() {
                sans.push(San::Ip(ip));
            } else if is_dns_name(&s.value) {
                sans.push(San::Dns(s.value.clone()));
            } else {
                let at = c.at(s);
                c.problem(
                    Rule::San,
                    at,
                    format!(
                        "SAN \"{}\" is neither an IP address nor a DNS name",
                        s.value
                    ),
                    "write an address or a lower-case host name such as etcd-1.example.org",
                );
            }
        }
        nodes.push(Node {
            name: n.name.value.clone(),
            ip,
            sans,
        });
    }
    if nodes.len() % 2 == 0 && !nodes.is_empty() {
        let at = c.at(&raw.nodes);
        c.warn(
            at,
            format!(
                "{} nodes tolerate no more failures than {}; an odd count is usual",
                nodes.len(),
                nodes.len() - 1
            ),
        );
    }

    // tuning
    let t = &raw.tuning;
    let heartbeat = c.duration(
        "tuning.heartbeat_interval",
        &t.heartbeat_interval,
        MS,
        Duration::from_millis(100),
    );
    let election = c.duration(
        "tuning.election_timeout",
        &t.election_timeout,
        MS,
        Duration::from_millis(1000),
    );
    let ms_at = |c: &Checker, v: &Option<S<Quantity>>| {
        v.as_ref()
            .map(|v| c.at(v))
            .unwrap_or_else(|| Position::file(file))
    };
    if heartbeat < MS || !heartbeat.subsec_nanos().is_multiple_of(1_000_000) {
        let at = ms_at(&c, &t.heartbeat_interval);
        c.problem(
            Rule::Heartbeat,
            at,
            format!("tuning.heartbeat_interval {heartbeat:?} is not a whole number of milliseconds of at least 1ms"),
            "etcd counts the heartbeat in milliseconds; 100ms suits a LAN",
        );
    } else if election < heartbeat * 5 {
        let at = ms_at(&c, &t.election_timeout);
        c.problem(
            Rule::ElectionTooShort,
            at,
            format!(
                "tuning.election_timeout {}ms is less than 5 x heartbeat_interval ({}ms); etcd refuses to start",
                election.as_millis(),
                heartbeat.as_millis()
            ),
            format!("raise election_timeout to at least {}ms (10x the heartbeat is usual)", (heartbeat * 5).as_millis()),
        );
    }
    if election > MAX_ELECTION {
        let at = ms_at(&c, &t.election_timeout);
        c.problem(
            Rule::ElectionTooLong,
            at,
            format!(
                "tuning.election_timeout {}ms is above 50000ms; etcd refuses to start",
                election.as_millis()
            ),
            "use at most 50000ms",
        );
    }
    let quota = match &t.quota_backend_bytes {
        None => SUGGESTED_MAX_QUOTA,
        Some(q) => match units::parse_size(&q.value) {
            Ok(0) => {
                let at = c.at(q);
                c.problem(
                    Rule::Size,
                    at,
                    "tuning.quota_backend_bytes is 0",
                    "give a size such as \"8GiB\"",
                );
                0
            }
            Ok(n) => {
                if n > SUGGESTED_MAX_QUOTA {
                    let at = c.at(q);
                    c.warn(at, format!("tuning.quota_backend_bytes {n} is above 8GiB, which etcd advises against"));
                }
                n
            }
            Err(e) => {
                let at = c.at(q);
                c.problem(
                    Rule::Size,
                    at,
                    format!("tuning.quota_backend_bytes: {e}"),
                    "give a size such as \"8GiB\" or \"2147483648\"",
                );
                0
            }
        },
    };
    let retention = c.duration(
        "tuning.auto_compaction_retention",
        &t.auto_compaction_retention,
        HOUR,
        HOUR,
    );

    // pki
    let algorithm = match &raw.pki.algorithm {
        None => Algorithm::Rsa2048,
        Some(a) => match a.value.as_str() {
            "rsa-2048" => Algorithm::Rsa2048,
            "ecdsa-p256" => Algorithm::EcdsaP256,
            other => {
                let at = c.at(a);
                c.problem(
                    Rule::Algorithm,
                    at,
                    format!("pki.algorithm \"{other}\" is not supported"),
                    "use rsa-2048 or ecdsa-p256",
                );
                Algorithm::Rsa2048
            }
        },
    };
    let validity = c.duration(
        "pki.validity",
        &raw.pki.validity,
        HOUR,
        Duration::from_secs(87600 * 3600),
    );
    if validity < Duration::from_secs(86400) {
        let at = ms_at(&c, &raw.pki.validity);
        c.problem(
            Rule::Validity,
            at,
            format!("pki.validity {validity:?} is shorter than a day"),
            "use e.g. \"8760h\" (a year) or \"87600h\" (ten years)",
        );
    }
    let rs = &raw.pki.subject;
    let subject = Subject {
        country: rs.country.clone(),
        state: rs.state.clone(),
        locality: rs.locality.clone(),
        organization: rs.organization.clone(),
        organizational_unit: rs.organizational_unit.clone(),
    };
    let import = match (&raw.pki.ca_cert, &raw.pki.ca_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let base = file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut resolve = |s: &S<String>, what: &str| -> PathBuf {
                let p = base.join(&s.value);
                if let Err(e) = std::fs::File::open(&p) {
                    let at = c.at(s);
                    c.problem(
                        Rule::CaFiles,
                        at,
                        format!("pki.{what} {}: {e}", p.display()),
                        "give a readable PEM file; relative paths are relative to the config file",
                    );
                }
                p
            };
            Some(CaImport {
                cert: resolve(cert, "ca_cert"),
                key: resolve(key, "ca_key"),
            })
        }
        (Some(one), None) | (None, Some(one)) => {
            let at = c.at(one);
            c.problem(
                Rule::CaFiles,
                at,
                "pki.ca_cert and pki.ca_key must be given together",
                "give both files of the CA to import, or neither to create a CA",
            );
            None
        }
    };

    // clients
    let clients = match &raw.clients {
        None => vec![
            Client {
                name: "etcdctl".into(),
                organization: None,
            },
            Client {
                name: "kube-apiserver".into(),
                organization: Some("system:masters".into()),
            },
            Client {
                name: "flannel".into(),
                organization: None,
            },
        ],
        Some(list) => {
            let mut seen: HashMap<&str, u32> = HashMap::new();
            let mut out = Vec::new();
            for cl in list {
                let at = c.at(&cl.name);
                if !is_dns_label(&cl.name.value) {
                    c.problem(
                        Rule::ClientName,
                        at,
                        format!(
                            "client name \"{}\" is not usable as a file name",
                            cl.name.value
                        ),
                        "use lower-case letters, digits and '-'",
                    );
                } else if let Some(line) = seen.get(cl.name.value.as_str()) {
                    c.problem(
                        Rule::DuplicateClient,
                        at,
                        format!(
                            "client \"{}\" is listed twice (first at line {line})",
                            cl.name.value
                        ),
                        "list each client once",
                    );
                } else {
                    seen.insert(&cl.name.value, at.line);
                }
                out.push(Client {
                    name: cl.name.value.clone(),
                    organization: cl.organization.clone(),
                });
            }
            out
        }
    };

    // paths
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
    let install_dir = path(&raw.paths.install_dir, "paths.install_dir", "/opt/etcd");
    let data_dir = path(
        &raw.paths.data_dir,
        "paths.data_dir",
        "/var/lib/etcd/default.etcd",
    );

    // service
    let user = match &raw.service.user {
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

    // packages
    let formats = match (&overrides.formats, &raw.packages.formats) {
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
    let name_pattern = raw
        .packages
        .name
        .as_ref()
        .map(|n| n.value.clone())
        .unwrap_or_else(|| "etcd-{cluster}-{node}".into());
    if let Some(n) = &raw.packages.name {
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
    let maintainer = match &raw.packages.maintainer {
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
    let homepage = raw
        .packages
        .homepage
        .clone()
        .unwrap_or_else(|| "https://etcd.io".into());

    if !c.problems.is_empty() {
        c.problems.sort_by_key(|p| (p.at.line, p.at.column));
        return Err(ConfigError::Invalid(c.problems));
    }
    Ok(Cluster {
        source: file.to_owned(),
        name,
        token,
        etcd: Etcd {
            version,
            arch,
            sha256,
            url,
        },
        nodes,
        tuning: Tuning {
            heartbeat_interval: heartbeat,
            election_timeout: election,
            quota_backend_bytes: quota,
            auto_compaction_retention: retention,
            enable_v2: t.enable_v2.unwrap_or(true),
            insecure_localhost_listener: t.insecure_localhost_listener.unwrap_or(false),
        },
        pki: Pki {
            algorithm,
            validity,
            subject,
            import,
        },
        clients,
        paths: Paths {
            install_dir,
            data_dir,
        },
        service: Service {
            user,
            start: raw.service.start.unwrap_or(true),
        },
        packages: Packages {
            formats,
            name: name_pattern,
            maintainer,
            homepage,
        },
        warnings: c.warnings,
    })
}
