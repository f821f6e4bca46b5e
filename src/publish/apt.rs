//! The apt repository's indexes: `Packages` stanzas from each `.deb`'s own
//! `control` file, and the suite's `Release`, laid out as apt expects:
//!
//! ```text
//! pool/main/<first letter>/<package>/<file>.deb
//! dists/<suite>/Release, Release.gpg, InRelease
//! dists/<suite>/main/binary-<arch>/Packages, Packages.gz
//! dists/<suite>/main/binary-<arch>/by-hash/SHA256/<sha256>
//! ```
//!
//! Everything here is a pure function of the packages and the date: the
//! same inputs give the same bytes.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use anyhow::{Result, bail};

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
    pub md5: String,
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
            "Filename: {}\nSize: {}\nMD5sum: {}\nSHA256: {}\n",
            self.filename, self.size, self.md5, self.sha256
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
                md5: get("MD5sum")?,
                sha256: get("SHA256")?,
                control: p
                    .iter()
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "Filename" | "Size" | "MD5sum" | "SHA256")
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

/// The newest `keep` versions of each package and architecture.
pub fn retain_newest(entries: Vec<DebEntry>, keep: usize) -> Vec<DebEntry> {
    let mut sorted = entries;
    sorted.sort_by(|a, b| {
        (a.package(), a.architecture())
            .cmp(&(b.package(), b.architecture()))
            .then_with(|| compare_versions(b.version(), a.version()))
    });
    let mut out: Vec<DebEntry> = Vec::new();
    let mut count = 0;
    for e in sorted {
        let same = out
            .last()
            .is_some_and(|l| l.package() == e.package() && l.architecture() == e.architecture());
        count = if same { count + 1 } else { 1 };
        if count <= keep {
            out.push(e);
        }
    }
    out
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

/// Debian version order (`dpkg --compare-versions`): epoch, then upstream
/// version, then revision, each compared as dpkg's `verrevcmp` does.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (u64, &str, &str) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) if e.bytes().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, v),
        };
        match rest.rsplit_once('-') {
            Some((u, r)) => (epoch, u, r),
            None => (epoch, rest, ""),
        }
    }
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(ua, ub))
        .then_with(|| verrevcmp(ra, rb))
}

/// dpkg's `order`: `~` before everything, even the end; then the end and
/// digits; then letters; then everything else.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // The non-digit prefix, compared by `order`.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            if i < a.len() && !a[i].is_ascii_digit() {
                i += 1;
            }
            if j < b.len() && !b[j].is_ascii_digit() {
                j += 1;
            }
        }
        // Then the digits, as numbers.
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (si, sj) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (da, db) = (&a[si..i], &b[sj..j]);
        let c = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
        if c != Ordering::Equal {
            return c;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_as_dpkg_orders_them() {
        // Each pair from dpkg's own test suite or Debian policy §5.6.12.
        for (a, b) in [
            ("1.0", "1.1"),
            ("1.0~rc1", "1.0"),
            ("1.0", "1.0-1"),
            ("3.4.16-2", "3.4.16-10"),
            ("3.4.16-9", "3.5.0-1"),
            ("2.0", "1:0.1"),
            ("1.0a", "1.0b"),
            ("1.0", "1.0a"),
            ("1.0+b1", "1.0.1"),
            ("1.0~~", "1.0~"),
        ] {
            assert_eq!(compare_versions(a, b), Ordering::Less, "{a} < {b}");
            assert_eq!(compare_versions(b, a), Ordering::Greater, "{b} > {a}");
        }
        assert_eq!(compare_versions("1.01", "1.1"), Ordering::Equal);
        assert_eq!(compare_versions("0:1.0", "1.0"), Ordering::Equal);
    }

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
            md5: "0".repeat(32),
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

        let kept = retain_newest(back, 2);
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
