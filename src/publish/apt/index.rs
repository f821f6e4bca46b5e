//! The apt repository's index formats: `Packages` stanzas from each
//! `.deb`'s own `control` file, and the suite's `Release`. A pure function
//! of the packages and the date: the same inputs give the same bytes. What
//! is read back (a `Release`, a `Packages`) is read only after its digest or
//! signature was checked, and its fields are checked before they become
//! paths ([`check_control`]).

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};

use super::super::tree::check_name;
use super::super::versions::compare_versions;

/// The one component etcdpack publishes.
pub const COMPONENT: &str = "main";

/// One package in the pool, as an index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebEntry {
    /// The control fields, in the package's order; a value keeps its
    /// continuation lines (`\n ` …).
    pub control: Vec<(String, String)>,
    /// `pool/…`, relative to the repository.
    pub filename: String,
    pub size: u64,
    /// apt checks SHA-256 only: no MD5 (nor SHA-1) is computed or listed.
    pub sha256: String,
}

impl DebEntry {
    pub fn field(&self, name: &str) -> Option<&str> {
        field(&self.control, name)
    }

    pub fn package(&self) -> &str {
        self.field("Package").unwrap_or_default()
    }

    pub fn version(&self) -> &str {
        self.field("Version").unwrap_or_default()
    }

    pub fn architecture(&self) -> &str {
        self.field("Architecture").unwrap_or_default()
    }

    /// Its stanza in `Packages`: the control fields, then where the file is
    /// and its digests, `Description` last (as dpkg-scanpackages writes).
    pub fn stanza(&self) -> String {
        let mut s = String::new();
        let mut description = None;
        for (k, v) in &self.control {
            match k.as_str() {
                "Description" => description = Some(v),
                // Fields of the index, never taken from a package.
                "Filename" | "Size" | "MD5sum" | "SHA1" | "SHA256" | "SHA512" => {}
                _ => s.push_str(&format!("{k}: {v}\n")),
            }
        }
        s.push_str(&format!(
            "Filename: {}\nSize: {}\nSHA256: {}\n",
            self.filename, self.size, self.sha256
        ));
        if let Some(d) = description {
            s.push_str(&format!("Description: {d}\n"));
        }
        s
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The paragraphs of a control file or an index (RFC 822-like: `Field:
/// value`, continuation lines begin with a space or tab, paragraphs are
/// separated by blank lines). `what` names the input in errors.
pub fn paragraphs(text: &str, what: &str) -> Result<Vec<Vec<(String, String)>>> {
    let mut out = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else if line.starts_with([' ', '\t']) {
            let Some((_, v)) = cur.last_mut() else {
                bail!(
                    "{what}, line {}: a continuation line before any field",
                    n + 1
                );
            };
            v.push('\n');
            v.push_str(line);
        } else {
            let Some((k, v)) = line.split_once(':') else {
                bail!(
                    "{what}, line {}: not a `Field: value` line: {line:?}",
                    n + 1
                );
            };
            cur.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// Read back a `Packages` index written by [`packages`].
pub fn parse_packages(text: &str, what: &str) -> Result<Vec<DebEntry>> {
    paragraphs(text, what)?
        .into_iter()
        .map(|p| {
            let get = |k: &str| {
                field(&p, k)
                    .map(str::to_owned)
                    .ok_or_else(|| anyhow::anyhow!("{what}: a stanza has no {k}"))
            };
            Ok(DebEntry {
                filename: get("Filename")?,
                size: get("Size")?
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{what}: a Size is not a number"))?,
                sha256: get("SHA256")?,
                control: p
                    .iter()
                    .filter(|(k, _)| {
                        !matches!(
                            k.as_str(),
                            "Filename" | "Size" | "MD5sum" | "SHA1" | "SHA256"
                        )
                    })
                    .cloned()
                    .collect(),
            })
        })
        .collect()
}

/// The `Packages` index of `entries` (all of one architecture): sorted by
/// package name, then version.
pub fn packages(entries: &[DebEntry]) -> String {
    let mut sorted: Vec<&DebEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| {
        a.package()
            .cmp(b.package())
            .then_with(|| compare_versions(a.version(), b.version()))
    });
    sorted
        .iter()
        .map(|e| e.stanza())
        .collect::<Vec<_>>()
        .join("\n")
}

/// One file a `Release` lists: path relative to `dists/<suite>/`, size,
/// SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// The suite's `Release`. `date` is seconds since the epoch.
pub fn release(
    label: &str,
    suite: &str,
    architectures: &BTreeSet<String>,
    date: u64,
    files: &[Listed],
    signed: bool,
) -> String {
    let archs: Vec<&str> = architectures.iter().map(String::as_str).collect();
    let mut s = format!(
        "Origin: etcdpack\nLabel: {label}\nSuite: {suite}\nCodename: {suite}\nDate: {}\nArchitectures: {}\nComponents: {COMPONENT}\nDescription: {label}, published by etcdpack{}\nAcquire-By-Hash: yes\nSHA256:\n",
        rfc1123(date),
        archs.join(" "),
        if signed { "" } else { " (UNSIGNED)" }
    );
    let width = files
        .iter()
        .map(|f| f.size.to_string().len())
        .max()
        .unwrap_or(0);
    for f in files {
        s.push_str(&format!(" {} {:>width$} {}\n", f.sha256, f.size, f.path));
    }
    s
}

/// `Wed, 02 Dec 2026 06:00:00 UTC`: the date format of `Release` files.
pub fn rfc1123(secs: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs.min(253_402_300_799) as i64)
        .expect("a date before 10000");
    t.format(time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] UTC"
    ))
    .expect("a date formats")
}

/// `pool/main/<first letter>/<package>/<file>`, or `lib?` for `lib…`
/// packages, as Debian lays out its pool.
pub fn pool_path(package: &str, file: &str) -> String {
    let prefix = if package.starts_with("lib") && package.len() > 3 {
        &package[..4]
    } else {
        &package[..1.min(package.len())]
    };
    format!("pool/{COMPONENT}/{prefix}/{package}/{file}")
}

/// The `Date` and the files a `Release` lists (its `SHA256:` field).
pub fn parse_release(text: &str, what: &str) -> Result<(Option<u64>, Vec<Listed>)> {
    let mut date = None;
    let mut files = Vec::new();
    let mut in_sha256 = false;
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("Date: ") {
            date = parse_rfc1123(d);
        }
        if line.starts_with([' ', '\t']) {
            if in_sha256 {
                let f: Vec<&str> = line.split_whitespace().collect();
                let [sha256, size, path] = f[..] else {
                    bail!("{what}: a SHA256 line is not `<sha256> <size> <path>`: {line:?}");
                };
                files.push(Listed {
                    path: path.to_owned(),
                    size: size
                        .parse()
                        .with_context(|| format!("{what}: the size {size:?} is not a number"))?,
                    sha256: sha256.to_owned(),
                });
            }
        } else {
            in_sha256 = line.trim_end() == "SHA256:";
        }
    }
    Ok((date, files))
}

fn parse_rfc1123(date: &str) -> Option<u64> {
    let t = time::PrimitiveDateTime::parse(
        date.trim().trim_end_matches(" UTC"),
        time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second]"
        ),
    )
    .ok()?;
    u64::try_from(t.assume_utc().unix_timestamp()).ok()
}

/// Check the fields of a .deb or an index stanza that become paths or
/// index lines: `Package`, `Version`, `Architecture`, each to its grammar
/// (Debian policy §5.6.1, §5.6.12, §5.6.8).
pub fn check_control(fields: &[(String, String)], what: &str) -> Result<()> {
    let get = |k: &str| field(fields, k).with_context(|| format!("{what} has no {k} field"));
    let package = get("Package")?;
    let ok_name = package.len() >= 2
        && package.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && package
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !ok_name {
        check_name("Package", package).with_context(|| what.to_owned())?;
        bail!(
            "{what}: the Package {package:?} is not a Debian package name (lower-case letters, digits, '+', '-', '.')"
        );
    }
    let version = get("Version")?;
    let ok_version = version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".+~:-".contains(c));
    if !ok_version {
        bail!("{what}: the Version {version:?} is not a Debian version");
    }
    let arch = get("Architecture")?;
    if arch.is_empty()
        || !arch
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        bail!("{what}: the Architecture {arch:?} is not a Debian architecture");
    }
    for (k, v) in fields {
        if k.is_empty() || k.contains(char::is_whitespace) || v.contains("\n\n") {
            bail!("{what}: the field {k:?} cannot be put in an index");
        }
    }
    Ok(())
}

/// The control fields of the `.deb` in `bytes`.
pub fn control_fields(bytes: &[u8], what: &str) -> Result<Vec<(String, String)>> {
    let control = crate::package::deb::control_of(bytes)
        .with_context(|| format!("cannot read the control file of {what}"))?;
    let fields = paragraphs(&control, &format!("the control file of {what}"))?
        .into_iter()
        .next()
        .with_context(|| format!("the control file of {what} is empty"))?;
    check_control(&fields, &format!("the control file of {what}"))?;
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(package: &str, version: &str) -> DebEntry {
        DebEntry {
            control: vec![
                ("Package".into(), package.into()),
                ("Version".into(), version.into()),
                ("Architecture".into(), "amd64".into()),
                ("Description".into(), "etcd member\n second line".into()),
            ],
            filename: pool_path(package, &format!("{package}_{version}_amd64.deb")),
            size: 12,
            sha256: "1".repeat(64),
        }
    }

    #[test]
    fn an_index_reads_back_and_keeps_the_newest_releases() {
        let all = vec![
            entry("etcd-b", "3.4.16-2"),
            entry("etcd-a", "3.4.16-10"),
            entry("etcd-a", "3.4.16-9"),
            entry("etcd-a", "3.4.16-11"),
        ];
        let text = packages(&all);
        assert!(
            text.starts_with("Package: etcd-a\nVersion: 3.4.16-9\n"),
            "{text}"
        );
        assert!(
            text.contains("Filename: pool/main/e/etcd-a/etcd-a_3.4.16-9_amd64.deb\nSize: 12\n")
        );
        assert!(text.contains("Description: etcd member\n second line\n\nPackage: etcd-a\n"));
        let back = parse_packages(&text, "Packages").unwrap();
        assert_eq!(packages(&back), text);

        let kept = crate::publish::repository::retain_newest(back, 2);
        let names: Vec<String> = kept
            .iter()
            .map(|e| format!("{} {}", e.package(), e.version()))
            .collect();
        assert_eq!(
            names,
            ["etcd-a 3.4.16-11", "etcd-a 3.4.16-10", "etcd-b 3.4.16-2"]
        );
    }

    #[test]
    fn a_release_lists_every_index_with_its_size() {
        let archs = BTreeSet::from(["amd64".to_owned()]);
        let files = [
            Listed {
                path: "main/binary-amd64/Packages".into(),
                size: 1234,
                sha256: "a".repeat(64),
            },
            Listed {
                path: "main/binary-amd64/Packages.gz".into(),
                size: 56,
                sha256: "b".repeat(64),
            },
        ];
        let r = release("etcd-test", "stable", &archs, 1_796_190_883, &files, true);
        assert!(r.contains("Date: Wed, 02 Dec 2026 05:54:43 UTC\n"), "{r}");
        assert!(r.contains("Acquire-By-Hash: yes\n"));
        assert!(!r.contains("Valid-Until"));
        assert!(r.ends_with(&format!(
            "SHA256:\n {} 1234 main/binary-amd64/Packages\n {}   56 main/binary-amd64/Packages.gz\n",
            "a".repeat(64),
            "b".repeat(64)
        )));
    }

    #[test]
    fn a_bad_line_is_an_error_naming_it() {
        let err = paragraphs("Package: a\nnonsense\n", "control").unwrap_err();
        assert_eq!(
            err.to_string(),
            "control, line 2: not a `Field: value` line: \"nonsense\""
        );
    }
}
