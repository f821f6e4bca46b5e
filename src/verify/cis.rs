//! The CIS Kubernetes Benchmark's etcd items ([`cis::ITEMS`]) on each
//! node's configuration as the output renders it: the flags of
//! `etcd.service`'s `ExecStart=` and, for a flag not there, the variable
//! its `Environment=` or `EnvironmentFile=` (the node tree's `etcd.conf`)
//! gives — what the member will run with, judged as `etcd-maint cis`
//! judges the running member. The data directory is not in the tree: the
//! packages' scripts create it, so its mode and owner are read from the
//! `install -d` that creates it in each of the node's packages.

use std::fs;
use std::path::Path;

use super::{Artifact, Report, inside};
use crate::model::Layout;
use crate::model::cis::{self, Check};
use crate::output::NodeInfo;

/// The configuration etcd gets from the unit: its arguments (after the
/// program) and its environment, in the order systemd assigns it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Config {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Where the environment came from, for the messages.
    pub env_source: String,
    pub user: String,
    pub group: String,
}

/// A setting as etcd reads it: its value and how it is given.
struct Setting {
    value: String,
    shown: String,
}

impl Config {
    /// `flag` as etcd reads it: the last `-flag`/`--flag` on the command
    /// line (`=VALUE`, the next argument, or alone `true` when `boolean`),
    /// else its `ETCD_*` variable. An empty value is no value.
    fn setting(&self, flag: &str, boolean: bool) -> Option<Setting> {
        let mut found = None;
        let mut args = self.args.iter();
        while let Some(arg) = args.next() {
            if arg == "--" {
                break;
            }
            let Some(rest) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                continue;
            };
            if rest == flag {
                found = Some(if boolean {
                    "true".to_owned()
                } else {
                    args.next().cloned().unwrap_or_default()
                });
            } else if let Some(value) = rest.strip_prefix(flag).and_then(|v| v.strip_prefix('=')) {
                found = Some(value.to_owned());
            }
        }
        if let Some(value) = found {
            let shown = format!("--{flag}={value} in ExecStart");
            return (!value.is_empty()).then_some(Setting { value, shown });
        }
        let var = cis::env_name(flag);
        let value = self.env.iter().rev().find(|(k, _)| *k == var)?.1.clone();
        let shown = format!("{var}={value} in {}", self.env_source);
        (!value.is_empty()).then_some(Setting { value, shown })
    }
}

/// The CIS items of `node`, whose tree is at `tree`, as checks of `r`.
/// `cas` are the output's CA certificates (PEM), which alone etcd may
/// trust; `artifacts` the node's packages.
pub(super) fn check(
    r: &mut Report,
    node: &NodeInfo,
    tree: &Path,
    cas: &[&str],
    artifacts: &[&Artifact],
) {
    let name = &node.name;
    let config = match read_config(tree) {
        Ok(c) => c,
        Err(why) => {
            r.check(false, format!("{name}: CIS items can be judged ({why})"));
            return;
        }
    };
    let ours: Vec<String> = cas.iter().flat_map(|pem| pem_bodies(pem)).collect();
    let data_dir = config.setting(cis::DATA_DIR, false);
    for item in cis::ITEMS {
        let verdict = match item.check {
            Check::Set(flags) => {
                let mut seen = Vec::new();
                let mut missing = Vec::new();
                for flag in flags {
                    match config.setting(flag, false) {
                        Some(s) => seen.push(s.shown),
                        None => missing.push(format!(
                            "neither --{flag} nor {} is set",
                            cis::env_name(flag)
                        )),
                    }
                }
                if missing.is_empty() {
                    Ok(seen.join(", "))
                } else {
                    Err(missing.join("; "))
                }
            }
            Check::True(flag) => match config.setting(flag, true) {
                Some(s) if s.value.eq_ignore_ascii_case("true") => Ok(s.shown),
                Some(s) => Err(format!("{}, and only true passes", s.shown)),
                None => Err(format!(
                    "neither --{flag} nor {} is set, and etcd's default is false",
                    cis::env_name(flag)
                )),
            },
            Check::NotTrue(flag) => match config.setting(flag, true) {
                Some(s) if !s.value.eq_ignore_ascii_case("false") => Err(s.shown),
                Some(s) => Ok(s.shown),
                None => Ok(format!(
                    "neither --{flag} nor {} is set",
                    cis::env_name(flag)
                )),
            },
            Check::UniqueCa(flag) => unique_ca(&config, flag, tree, &ours),
            Check::DataDirMode | Check::DataDirOwner => match &data_dir {
                Some(d) if d.value.starts_with('/') => {
                    data_dir_created(item.check, &d.value, &config, artifacts)
                }
                Some(d) => Err(format!(
                    "{}: a relative data directory, under whatever directory etcd starts in",
                    d.shown
                )),
                None => Err(format!(
                    "neither --{0} nor {1} is set: etcd would make its data directory in the directory it starts in",
                    cis::DATA_DIR,
                    cis::env_name(cis::DATA_DIR)
                )),
            },
        };
        let head = format!("{name}: CIS {} {}", item.id, item.title);
        match verdict {
            Ok(why) => r.check(true, format!("{head} ({why})")),
            Err(why) => r.check(false, format!("{head} ({why})")),
        };
    }
}

/// 2.7: the trusted CA file is set, shipped in the tree, and holds only
/// certificates of the output's CAs.
fn unique_ca(config: &Config, flag: &str, tree: &Path, ours: &[String]) -> Result<String, String> {
    let Some(s) = config.setting(flag, false) else {
        return Err(format!(
            "neither --{flag} nor {} is set",
            cis::env_name(flag)
        ));
    };
    let rel = s.value.trim_start_matches('/');
    let text = inside(tree, rel)
        .ok()
        .and_then(|p| fs::read_to_string(p).ok())
        .ok_or_else(|| format!("{}, a file the node's tree does not hold", s.shown))?;
    let certs = pem_bodies(&text);
    if certs.is_empty() {
        return Err(format!("{}, which holds no certificate", s.shown));
    }
    let foreign = certs.iter().filter(|c| !ours.contains(c)).count();
    if foreign > 0 {
        return Err(format!(
            "{}: {foreign} of its {} certificate(s) are of no CA of this output (pki/ca.pem, pki/next-ca.pem), so etcd would trust another CA",
            s.shown,
            certs.len()
        ));
    }
    Ok(format!(
        "{}: its {} certificate(s) are this output's own CA",
        s.shown,
        certs.len()
    ))
}

/// 1.1.11 and 1.1.12: every package of the node creates `data_dir` (an
/// `install -d` of it in its scripts) with a mode of 700 or less, owned by
/// the user and group etcd runs as.
fn data_dir_created(
    check: Check,
    data_dir: &str,
    config: &Config,
    artifacts: &[&Artifact],
) -> Result<String, String> {
    if artifacts.is_empty() {
        return Err("no package of the node creates the data directory".into());
    }
    let mut said = Vec::new();
    for a in artifacts {
        let Some(format) = a.format() else {
            continue;
        };
        let texts = a
            .texts()
            .map_err(|e| format!("{}: cannot read its scripts ({e})", a.rel))?;
        let creates: Vec<Creation> = texts.iter().flat_map(|s| creations(s, data_dir)).collect();
        if creates.is_empty() {
            return Err(format!(
                "{}: no script of it creates {data_dir} (install -d)",
                a.rel
            ));
        }
        for c in creates {
            match check {
                Check::DataDirMode => {
                    let mode = u32::from_str_radix(&c.mode, 8).unwrap_or(u32::MAX);
                    if !cis::mode_ok(mode) {
                        return Err(format!(
                            "{}: creates {data_dir} with mode {}",
                            a.rel, c.mode
                        ));
                    }
                    said.push(format!("{} creates it {}", format, c.mode));
                }
                _ => {
                    let owner = format!("{}:{}", c.owner, c.group);
                    let runs_as = format!("{}:{}", config.user, config.group);
                    if owner != runs_as {
                        return Err(format!(
                            "{}: creates {data_dir} owned by {owner}, and etcd runs as {runs_as}",
                            a.rel
                        ));
                    }
                    said.push(format!("{format} gives it to {owner}"));
                }
            }
        }
    }
    said.sort();
    said.dedup();
    Ok(format!("{data_dir}: {}", said.join(", ")))
}

/// An `install -d -m MODE -o OWNER -g GROUP DIR` of a script, its owner
/// and group resolved (`$user`, `$uid`, `$gid`: the script's `user=`).
#[derive(Debug, PartialEq, Eq)]
struct Creation {
    mode: String,
    owner: String,
    group: String,
}

/// The lines of `script` that [`creations`] reads (its `user=` and its
/// `install` commands): all a package's text is kept for, once read.
pub(super) fn script_lines(script: &str) -> String {
    let read = |l: &&str| {
        let l = l.trim();
        l.starts_with("user=") || l.split_whitespace().next() == Some("install")
    };
    script
        .lines()
        .filter(read)
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Every `install -d` of `dir` in `script`.
fn creations(script: &str, dir: &str) -> Vec<Creation> {
    let user = script
        .lines()
        .find_map(|l| l.trim().strip_prefix("user="))
        .map(|u| u.trim_matches('"').to_owned())
        .unwrap_or_default();
    let resolve = |v: &str| match v.trim_matches('"') {
        "$user" | "$uid" | "$gid" => user.clone(),
        other => other.to_owned(),
    };
    let mut out = Vec::new();
    for line in script.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() < 3 || words[0] != "install" || words[1] != "-d" {
            continue;
        }
        let target = words[words.len() - 1].trim_matches('"');
        if target.strip_prefix("$root").unwrap_or(target) != dir {
            continue;
        }
        let opt = |name: &str| {
            words
                .windows(2)
                .find(|w| w[0] == name)
                .map(|w| resolve(w[1]))
        };
        out.push(Creation {
            // install's default mode.
            mode: opt("-m").unwrap_or_else(|| "0755".into()),
            owner: opt("-o").unwrap_or_else(|| "root".into()),
            group: opt("-g").unwrap_or_else(|| "root".into()),
        });
    }
    out
}

/// The certificates of a PEM text, each its base64 without whitespace.
fn pem_bodies(pem: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            body = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            out.extend(body.take());
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    out
}

/// etcd's configuration as the node tree's `etcd.service` gives it.
pub(super) fn read_config(tree: &Path) -> Result<Config, String> {
    let unit_rel = Layout::UNIT_FILE.trim_start_matches('/');
    let unit = inside(tree, unit_rel)
        .ok()
        .and_then(|p| fs::read_to_string(p).ok())
        .ok_or_else(|| format!("cannot read {unit_rel} in the node's tree"))?;
    let mut config = Config {
        env_source: unit_rel.to_owned(),
        user: "root".into(),
        ..Config::default()
    };
    let mut group = None;
    let mut exec = None;
    let mut files = Vec::new();
    let mut section = "";
    for line in unit.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section != "[Service]" || line.starts_with(['#', ';']) {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            // An empty ExecStart= resets the list; etcd's is the last.
            "ExecStart" => exec = (!value.is_empty()).then(|| value.to_owned()),
            "Environment" => config.env.extend(words(value).into_iter().filter_map(|w| {
                let (k, v) = w.split_once('=')?;
                Some((k.to_owned(), v.to_owned()))
            })),
            "EnvironmentFile" if !value.is_empty() => files.push(value.to_owned()),
            "User" => config.user = value.to_owned(),
            "Group" => group = Some(value.to_owned()),
            _ => {}
        }
    }
    config.group = group.unwrap_or_else(|| config.user.clone());
    let exec = exec.ok_or_else(|| format!("{unit_rel} has no ExecStart="))?;
    let exec = exec.trim_start_matches(['-', '@', ':', '+', '!']);
    config.args = words(exec).into_iter().skip(1).collect();
    // An EnvironmentFile's variables override Environment='s.
    for file in files {
        let (optional, path) = match file.strip_prefix('-') {
            Some(p) => (true, p),
            None => (false, file.as_str()),
        };
        let rel = path.trim_start_matches('/');
        match inside(tree, rel)
            .ok()
            .and_then(|p| fs::read_to_string(p).ok())
        {
            Some(text) => {
                let vars = crate::envfile::parse(&text)
                    .map_err(|e| format!("{rel} is no EnvironmentFile systemd reads ({e:#})"))?;
                config.env.extend(vars);
                config.env_source = rel.to_owned();
            }
            None if optional => {}
            None => {
                return Err(format!(
                    "{unit_rel} reads {path}, which the node's tree does not hold"
                ));
            }
        }
    }
    Ok(config)
}

/// A systemd command line or assignment list, split into words: white
/// space separates, double or single quotes group.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut started = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            (None, c) => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
        Config {
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            env_source: "etcd.conf".into(),
            ..Config::default()
        }
    }

    #[test]
    fn a_flag_wins_over_the_environment_as_etcd_reads_them() {
        let c = config(
            &[
                "--auto-tls",
                "-cert-file",
                "/c.pem",
                "--client-cert-auth=false",
            ],
            &[
                ("ETCD_CLIENT_CERT_AUTH", "true"),
                ("ETCD_KEY_FILE", "/k.pem"),
            ],
        );
        assert_eq!(c.setting("auto-tls", true).unwrap().value, "true");
        assert_eq!(c.setting("cert-file", false).unwrap().value, "/c.pem");
        let auth = c.setting("client-cert-auth", true).unwrap();
        assert_eq!(auth.value, "false");
        assert!(auth.shown.contains("ExecStart"), "{}", auth.shown);
        assert_eq!(c.setting("key-file", false).unwrap().value, "/k.pem");
        assert!(c.setting("peer-auto-tls", true).is_none());
        // Not a prefix of another flag.
        assert!(c.setting("auto", true).is_none());
    }

    #[test]
    fn scripts_creating_the_data_directory_are_read() {
        let script = "user=etcd\ninstall -d -m 0700 -o \"$user\" -g \"$user\" \"/var/lib/etcd\"\ninstall -d -m 0755 \"$root/var/lib/etcd\"\ninstall -d -m 0700 /var/lib/other\n";
        let c = creations(script, "/var/lib/etcd");
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].mode.as_str(), c[0].owner.as_str()), ("0700", "etcd"));
        assert_eq!((c[1].mode.as_str(), c[1].group.as_str()), ("0755", "root"));
        assert_eq!(
            words(r#"/bin/etcd --name "a b" 'c'"#),
            ["/bin/etcd", "--name", "a b", "c"]
        );
    }
}
