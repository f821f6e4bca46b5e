//! `backup:`: where `etcd-maint backup` keeps snapshots on a node, how many,
//! and how often the timer takes one.

use super::install::{is_within, system_dir};
use super::*;
use crate::config::raw::RawBackup;

pub const DEFAULT_DIR: &str = "/var/backups/etcd";
pub const DEFAULT_KEEP: u32 = 7;
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// A snapshot of a large member takes a while; more often than this is a
/// mistake, not a schedule.
const MIN_INTERVAL: Duration = Duration::from_secs(60);

pub(super) fn backup(c: &mut Checker, raw: &RawBackup, paths: &Paths) -> Backup {
    let interval = raw
        .interval
        .as_ref()
        .and_then(|v| interval(c, Rule::Backup, "backup.interval", v))
        .unwrap_or(DEFAULT_INTERVAL);
    let dir = match &raw.dir {
        None => DEFAULT_DIR.to_owned(),
        Some(d) => {
            if let Some(why) = dir_problem(&d.value, paths) {
                let at = c.at(d);
                c.problem(
                    Rule::Backup,
                    at,
                    format!("backup.dir \"{}\" {why}", d.value),
                    format!(
                        "give the snapshots a directory of their own, e.g. {DEFAULT_DIR}: not a system directory, and apart from paths.install_dir (the package's, removed with it) and paths.data_dir (etcd's)"
                    ),
                );
            }
            d.value.clone()
        }
    };
    let keep = match &raw.keep {
        None => DEFAULT_KEEP,
        Some(k) if k.value == 0 => {
            let at = c.at(k);
            c.problem(
                Rule::Backup,
                at,
                "backup.keep is 0: every snapshot would be removed as soon as it is written",
                format!("keep at least 1 snapshot (default: {DEFAULT_KEEP})"),
            );
            DEFAULT_KEEP
        }
        Some(k) => k.value,
    };
    let recipients = match &raw.recipients {
        None => Vec::new(),
        Some(list) => recipients(c, list),
    };
    Backup {
        enabled: raw.enabled.unwrap_or(false),
        interval,
        dir,
        keep,
        recipients,
    }
}

/// The bech32 alphabet, in which an `age1…` recipient is written.
const BECH32: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
/// `age1`, then 32 bytes (52 characters of 5 bits) and a 6-character
/// checksum.
const AGE_RECIPIENT_LEN: usize = 4 + 52 + 6;

/// `backup.recipients`, each in its canonical form; an empty list, a bad
/// entry or one listed twice is a problem.
fn recipients(c: &mut Checker, list: &S<Vec<S<String>>>) -> Vec<String> {
    const HELP: &str = "give the public half of a key kept off the nodes: an age recipient, \"age1…\" (age-keygen prints it; age-keygen -y FILE prints it again), or the line of an SSH public key, \"ssh-ed25519 AAAA…\" (a .pub file)";
    if list.value.is_empty() {
        let at = c.at(list);
        c.problem(
            Rule::Recipient,
            at,
            "backup.recipients is empty: no one could read the snapshots",
            format!("{HELP}; or leave backup.recipients out for snapshots in clear"),
        );
    }
    let mut out: Vec<String> = Vec::new();
    let mut lines: Vec<u32> = Vec::new();
    for (i, raw) in list.value.iter().enumerate() {
        let at = c.at(raw);
        match recipient(&raw.value) {
            Err(why) => c.problem(
                Rule::Recipient,
                at,
                format!("backup.recipients[{i}] {why}"),
                HELP,
            ),
            Ok(r) => {
                if let Some(first) = out.iter().position(|o| *o == r) {
                    c.problem(
                        Rule::Recipient,
                        at,
                        format!(
                            "backup.recipients[{i}] is the recipient of line {} again",
                            lines[first]
                        ),
                        "list each recipient once",
                    );
                } else {
                    lines.push(at.line);
                    out.push(r);
                }
            }
        }
    }
    out
}

/// One recipient in its canonical form, or why it is none. A secret key
/// given by mistake is named, never repeated.
fn recipient(value: &str) -> Result<String, String> {
    let v = value.trim();
    if v.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
        return Err("is an age secret key, which must never be in the config: give its public key (age-keygen -y FILE prints it), and make a new key if this file was shared".to_owned());
    }
    if v.contains("PRIVATE KEY") {
        return Err("is a private key, which must never be in the config: give its public key (the .pub file beside it), and make a new key if this file was shared".to_owned());
    }
    if v.starts_with("ssh-") || v.starts_with("ecdsa-") || v.starts_with("sk-") {
        return super::members::ssh_recipient(v).map(|key| key.public().to_owned());
    }
    if let Some(data) = v.strip_prefix("age1") {
        if v.len() != AGE_RECIPIENT_LEN {
            return Err(format!(
                "is not an X25519 age recipient: \"age1\" and {} characters, not {} (age plugin recipients, such as age1yubikey1…, are not supported)",
                AGE_RECIPIENT_LEN - 4,
                data.chars().count()
            ));
        }
        if let Some(bad) = data.chars().find(|ch| !BECH32.contains(*ch)) {
            return Err(format!(
                "is not an age recipient: {bad:?} is not a lower-case bech32 character"
            ));
        }
        return match v.parse::<age::x25519::Recipient>() {
            Ok(r) => Ok(r.to_string()),
            Err(e) => Err(format!(
                "is not an age recipient ({e}): a character is wrong or missing"
            )),
        };
    }
    Err(
        "is neither an age recipient (age1…) nor an SSH public key (ssh-ed25519 …, ssh-rsa …)"
            .to_owned(),
    )
}

/// A timer's interval, `key`: a duration with a unit, whole seconds, at
/// least [`MIN_INTERVAL`]; `None` after a problem (of `rule`) is recorded.
pub(super) fn interval(
    c: &mut Checker,
    rule: Rule,
    key: &str,
    v: &S<Quantity>,
) -> Option<Duration> {
    let shown = match &v.value {
        Quantity::Int(n) => n.to_string(),
        Quantity::Text(t) => format!("{t:?}"),
    };
    let bare = match &v.value {
        Quantity::Int(_) => true,
        Quantity::Text(t) => t.trim().parse::<u64>().is_ok(),
    };
    let problem = if bare {
        Err(format!("{key} {shown} has no unit"))
    } else {
        match units::parse_duration(&v.value, Duration::from_secs(1)) {
            Err(e) => Err(format!("{key}: {e}")),
            Ok(d) if d.subsec_nanos() != 0 => {
                Err(format!("{key} {shown} is not a whole number of seconds"))
            }
            Ok(d) if d < MIN_INTERVAL => Err(format!("{key} {shown} is shorter than a minute")),
            Ok(d) => Ok(d),
        }
    };
    match problem {
        Ok(d) => Some(d),
        Err(message) => {
            let at = c.at(v);
            c.problem(
                rule,
                at,
                message,
                "write a duration with its unit, such as \"6h\", \"30m\" or \"1d\" (at least 1m)",
            );
            None
        }
    }
}

/// Why `dir` cannot hold the snapshots, if it cannot.
fn dir_problem(dir: &str, paths: &Paths) -> Option<String> {
    if !is_clean_abs_path(dir) {
        return Some(
            "is not a clean absolute path (no '..', '.', spaces or trailing '/')".to_owned(),
        );
    }
    if let Some(sys) = system_dir(dir) {
        return Some(if sys.trim_end_matches('*') == dir {
            "is a system directory".to_owned()
        } else {
            format!("is a system directory holding {sys}")
        });
    }
    for (key, other) in [
        ("paths.install_dir", &paths.install_dir),
        ("paths.data_dir", &paths.data_dir),
    ] {
        if is_within(dir, other) {
            return Some(format!("is inside {key} \"{other}\""));
        }
        if is_within(other, dir) {
            return Some(format!("holds {key} \"{other}\""));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{Cluster, ConfigError, Overrides, Rule, parse};

    fn with(backup: &str) -> Result<Cluster, ConfigError> {
        let text = format!(
            "version: 1\ncluster: {{ name: k8s }}\nnodes:\n  - {{ name: etcd-1, ip: 192.168.0.1 }}\n{backup}"
        );
        parse(Path::new("cluster.yaml"), &text, &Overrides::default())
    }

    fn problems(backup: &str) -> Vec<(Rule, String)> {
        match with(backup) {
            Err(ConfigError::Invalid(p)) => p
                .into_iter()
                .map(|p| {
                    (
                        p.rule,
                        format!("{}: {}\n  help: {}", p.at, p.message, p.help),
                    )
                })
                .collect(),
            other => panic!("{backup}: {other:?}"),
        }
    }

    #[test]
    fn defaults_and_accepted_values() {
        let b = with("").unwrap().backup;
        assert!(!b.enabled);
        assert_eq!(b.interval, Duration::from_secs(86400));
        assert_eq!(b.dir, "/var/backups/etcd");
        assert_eq!(b.keep, 7);
        let b =
            with("backup: { enabled: true, interval: 1h30m, dir: /srv/etcd-backups, keep: 1 }\n")
                .unwrap()
                .backup;
        assert!(b.enabled);
        assert_eq!(b.interval, Duration::from_secs(5400));
        assert_eq!(b.dir, "/srv/etcd-backups");
        assert_eq!(b.keep, 1);
        assert_eq!(
            with("backup: { interval: 1m }\n").unwrap().backup.interval,
            Duration::from_secs(60)
        );
    }

    #[test]
    fn the_interval_needs_a_unit_whole_seconds_and_a_minute() {
        for (interval, says) in [
            ("6", "backup.interval 6 has no unit"),
            ("\"6\"", "backup.interval \"6\" has no unit"),
            ("30s", "backup.interval \"30s\" is shorter than a minute"),
            (
                "90500ms",
                "backup.interval \"90500ms\" is not a whole number of seconds",
            ),
            ("daily", "backup.interval: \"daily\" is not a duration"),
            ("6 hours", "has an unknown unit"),
        ] {
            let p = problems(&format!("backup:\n  interval: {interval}\n"));
            assert_eq!(p.len(), 1, "{interval}: {p:?}");
            assert_eq!(p[0].0, Rule::Backup);
            assert!(
                p[0].1.starts_with("cluster.yaml:6:13: ") && p[0].1.contains(says),
                "{interval}: {}",
                p[0].1
            );
            assert!(p[0].1.contains("help: write a duration with its unit"));
        }
    }

    #[test]
    fn the_directory_is_clean_absolute_and_nobody_elses() {
        for (dir, says) in [
            ("var/backups/etcd", "is not a clean absolute path"),
            ("/var/backups/../etcd", "is not a clean absolute path"),
            ("/var/backups", "is a system directory"),
            ("/usr", "is a system directory"),
            (
                "/opt/etcd/backups",
                "is inside paths.install_dir \"/opt/etcd\"",
            ),
            (
                "/var/lib/etcd/default.etcd",
                "is inside paths.data_dir \"/var/lib/etcd/default.etcd\"",
            ),
            ("/var/lib/etcd", "holds paths.data_dir"),
        ] {
            let p = problems(&format!("backup: {{ dir: {dir} }}\n"));
            assert_eq!(p.len(), 1, "{dir}: {p:?}");
            assert_eq!(p[0].0, Rule::Backup);
            assert!(
                p[0].1.contains(&format!("backup.dir \"{dir}\" {says}"))
                    && p[0]
                        .1
                        .contains("help: give the snapshots a directory of their own"),
                "{dir}: {}",
                p[0].1
            );
        }
    }

    #[test]
    fn at_least_one_snapshot_is_kept() {
        let p = problems("backup: { keep: 0 }\n");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, Rule::Backup);
        assert!(
            p[0].1.contains("cluster.yaml:5:17: backup.keep is 0"),
            "{}",
            p[0].1
        );
    }

    const AGE: &str = "age1t4asd03a2awsq54yeq0pfvtz2fncqyvfnze32s7q8hn675zxmvaslpk8cq";
    const SSH: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK5HG+WK7EqnxuuTn2AgsYSGepNUXlPyehUg2SGzYT6q";

    #[test]
    fn recipients_are_kept_canonical_and_without_comments() {
        assert!(with("").unwrap().backup.recipients.is_empty());
        let b = with(&format!(
            "backup:\n  recipients:\n    - {AGE}\n    - \"{SSH} ops@example.org; $(reboot)\"\n"
        ))
        .unwrap()
        .backup;
        assert_eq!(b.recipients, [AGE, SSH]);
    }

    #[test]
    fn a_bad_recipient_is_named_with_its_line_and_the_fix() {
        let flipped = format!("{}p", &AGE[..AGE.len() - 1]);
        let ssh_short = SSH.replace("AAAAIK5", "AAAAHK5");
        for (entry, says) in [
            (
                flipped.as_str(),
                "is not an age recipient (invalid Bech32 encoding)",
            ),
            (&AGE[..40], "\"age1\" and 58 characters, not 36"),
            (&AGE.to_uppercase(), "is neither an age recipient"),
            (
                "age1yubikey1qwe7ytd6dse0k6s2ck4xfdzq2f0dvkzzx3n9k2hyl6yq2w9f6kv2g8ytj",
                "age plugin recipients",
            ),
            (
                "\"age1t4asd03a2awsq54yeq0pfvtz2fncqyvfnze32s7q8hn675zxmvasl'k8cq\"",
                "'\\'' is not a lower-case bech32 character",
            ),
            (
                "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ",
                "is an age secret key",
            ),
            (
                "\"-----BEGIN OPENSSH PRIVATE KEY-----\"",
                "is a private key",
            ),
            (
                &format!("\"{ssh_short}\""),
                "ed25519 key that is not 32 bytes",
            ),
            (
                "\"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHeQ4RTt7md6n3WWUmCNm28K942ntyPAMn2h3XIOGYof1WRkH8TQUVwHEL3V1ZFrsF5ttWPAUYh8ObNDaUmeh6s=\"",
                "which age cannot encrypt to",
            ),
            ("\"$(reboot)\"", "is neither an age recipient"),
        ] {
            let p = problems(&format!(
                "backup:\n  recipients:\n    - {AGE}\n    - {entry}\n"
            ));
            assert_eq!(p.len(), 1, "{entry}: {p:?}");
            assert_eq!(p[0].0, Rule::Recipient);
            assert!(
                p[0].1
                    .starts_with("cluster.yaml:8:7: backup.recipients[1] ")
                    && p[0].1.contains(says)
                    && p[0]
                        .1
                        .contains("help: give the public half of a key kept off the nodes"),
                "{entry}: {}",
                p[0].1
            );
            assert!(!p[0].1.contains("AGE-SECRET-KEY-1Q"), "{}", p[0].1);
        }
    }

    #[test]
    fn recipients_are_listed_once_and_at_least_one() {
        let p = problems("backup: { recipients: [] }\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, Rule::Recipient);
        assert!(
            p[0].1
                .contains("cluster.yaml:5:23: backup.recipients is empty"),
            "{}",
            p[0].1
        );
        let p = problems(&format!(
            "backup:\n  recipients:\n    - {SSH}\n    - {AGE}\n    - \"{SSH} again\"\n"
        ));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].1.contains(
                "cluster.yaml:9:7: backup.recipients[2] is the recipient of line 7 again"
            ),
            "{}",
            p[0].1
        );
    }
}
