//! `publish:`: the defaults of `etcdpack publish`, checked as the command
//! line's own values are.

use super::*;
use crate::config::raw::RawPublish;

pub(super) fn publish(c: &mut Checker, raw: &RawPublish) -> Publish {
    let base = c
        .file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let path = |c: &mut Checker, key: &str, v: &Option<S<String>>| {
        let v = v.as_ref()?;
        if v.value.trim().is_empty() {
            let at = c.at(v);
            c.problem(
                Rule::Publish,
                at,
                format!("publish.{key} is empty"),
                format!(
                    "name a path (relative to the config's directory), or leave publish.{key} out"
                ),
            );
            return None;
        }
        Some(base.join(&v.value))
    };
    let repo = path(c, "repo", &raw.repo);
    let sign_key = path(c, "sign_key", &raw.sign_key);
    let suite = raw
        .suite
        .as_ref()
        .and_then(|s| match suite_problem(&s.value) {
            None => Some(s.value.clone()),
            Some(why) => {
                let at = c.at(s);
                c.problem(
                    Rule::Publish,
                    at,
                    format!("publish.suite {:?} {why}", s.value),
                    "write a name of letters, digits, '.', '_' and '-', e.g. stable",
                );
                None
            }
        });
    let url = raw.url.as_ref().and_then(|u| match url_problem(&u.value) {
        None => Some(u.value.trim_end_matches('/').to_owned()),
        Some(why) => {
            let at = c.at(u);
            c.problem(
                Rule::Publish,
                at,
                format!("publish.url {:?} {why}", u.value),
                "write the URL machines reach the repository at, e.g. https://mirror.example.com/etcd or file:///srv/repo",
            );
            None
        }
    });
    let keep = raw.keep.as_ref().and_then(|k| {
        if k.value == 0 {
            let at = c.at(k);
            c.problem(
                Rule::Publish,
                at,
                "publish.keep is 0: the indexes would list no package",
                "keep at least 1 release of each package (default: 3)",
            );
            None
        } else {
            Some(k.value)
        }
    });
    let unsigned = raw.unsigned.as_ref().is_some_and(|u| u.value);
    if let (Some(u), Some(_)) = (&raw.unsigned, &raw.sign_key)
        && u.value
    {
        let at = c.at(u);
        c.problem(
            Rule::Publish,
            at,
            "publish.unsigned is true and publish.sign_key is given",
            "keep one: sign_key to sign the repository (what machines should trust), or unsigned: true to publish without signatures",
        );
    }
    Publish {
        repo,
        suite,
        url,
        sign_key,
        unsigned,
        keep,
    }
}
