//! The relations and files of a package as createrepo_c lists them in
//! primary.xml and filelists.xml.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use anyhow::{Context, Result};
use rpm::{DependencyFlags, FileFlags, FileType, PackageMetadata};

use super::xml_attr;

/// A dependency as the metadata lists it.
pub(super) struct Dep {
    pub(super) name: String,
    pub(super) flags: Option<&'static str>,
    pub(super) evr: Option<(String, String, Option<String>)>,
    pub(super) pre: bool,
}

/// createrepo_c's `cr_flag_to_str`.
pub(super) fn flag_str(flags: u32) -> Option<&'static str> {
    match flags & 0xf {
        2 => Some("LT"),
        4 => Some("GT"),
        8 => Some("EQ"),
        10 => Some("LE"),
        12 => Some("GE"),
        _ => None,
    }
}

/// `[epoch:]version[-release]`, the epoch 0 when there is none; `None`
/// for an epoch that is no number (createrepo_c skips such a dependency).
pub(super) fn split_evr(v: &str) -> Option<Option<(String, String, Option<String>)>> {
    if v.is_empty() {
        return Some(None);
    }
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) => {
            if e.is_empty() || !e.bytes().all(|c| c.is_ascii_digit()) {
                if e.is_empty() {
                    ("0".to_owned(), rest)
                } else {
                    return None;
                }
            } else {
                (e.to_owned(), rest)
            }
        }
        None => ("0".to_owned(), v),
    };
    let (ver, rel) = match rest.split_once('-') {
        Some((ver, rel)) => (ver.to_owned(), Some(rel.to_owned())),
        None => (rest.to_owned(), None),
    };
    Some(Some((epoch, ver, rel)))
}

/// Whether createrepo_c lists a file in primary.xml.
pub fn is_primary_file(path: &str) -> bool {
    path.starts_with("/etc/") || path == "/usr/lib/sendmail" || path.contains("bin/")
}

/// A file as the metadata lists it: its path and `dir`/`ghost`/none.
pub(super) struct File {
    pub(super) path: String,
    pub(super) kind: Option<&'static str>,
}

pub(super) fn files_of(m: &PackageMetadata) -> Result<Vec<File>> {
    Ok(m.get_file_entries()
        .context("cannot read the file list")?
        .iter()
        .map(|f| File {
            path: format!("{}{}", f.dirname(), f.basename()),
            kind: if f.mode().file_type() == FileType::Dir {
                Some("dir")
            } else if f.flags().contains(FileFlags::GHOST) {
                Some("ghost")
            } else {
                None
            },
        })
        .collect())
}

/// The relations of a package as createrepo_c reads them: rpmlib()
/// requires, requires of its own primary files and of what it provides,
/// and repeats left out; `pre` for what scriptlets need; legacy weak
/// requires (MISSINGOK) listed as recommends.
pub(super) struct Relations {
    pub(super) provides: Vec<Dep>,
    pub(super) requires: Vec<Dep>,
    pub(super) conflicts: Vec<Dep>,
    pub(super) obsoletes: Vec<Dep>,
    pub(super) suggests: Vec<Dep>,
    pub(super) enhances: Vec<Dep>,
    pub(super) recommends: Vec<Dep>,
    pub(super) supplements: Vec<Dep>,
}

pub(super) fn relations_of(m: &PackageMetadata, files: &[File]) -> Result<Relations> {
    const PRE: u32 = DependencyFlags::PREREQ.bits()
        | DependencyFlags::SCRIPT_PRE.bits()
        | DependencyFlags::POSTTRANS.bits()
        | DependencyFlags::PRETRANS.bits()
        | DependencyFlags::SCRIPT_POST.bits();
    const MISSINGOK: u32 = 1 << 19;
    let own: HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let convert = |d: &rpm::Dependency| -> Option<(Dep, String)> {
        let flags = flag_str(d.flags.bits());
        let evr = split_evr(&d.version)?;
        let nfv = format!("{}{}{}", d.name, flags.unwrap_or(""), d.version);
        Some((
            Dep {
                name: d.name.clone(),
                flags,
                evr,
                pre: false,
            },
            nfv,
        ))
    };
    let simple = |list: Vec<rpm::Dependency>| -> Vec<Dep> {
        list.iter()
            .filter_map(|d| convert(d).map(|c| c.0))
            .collect()
    };
    let read = |r: Result<Vec<rpm::Dependency>, rpm::Error>, what: &str| {
        r.with_context(|| format!("cannot read the {what}"))
    };
    let provides_raw = read(m.get_provides(), "provides")?;
    let mut provided = HashSet::new();
    let mut provides = Vec::new();
    for d in &provides_raw {
        if let Some((dep, nfv)) = convert(d) {
            provided.insert(nfv);
            provides.push(dep);
        }
    }
    let mut requires = Vec::new();
    let mut recommends = Vec::new();
    let mut seen: HashMap<String, (Option<&'static str>, String, bool)> = HashMap::new();
    for d in read(m.get_requires(), "requires")? {
        let bits = d.flags.bits();
        if d.name.starts_with("rpmlib(") {
            continue;
        }
        if d.name.starts_with('/') && own.contains(d.name.as_str()) && is_primary_file(&d.name) {
            continue;
        }
        let Some((mut dep, nfv)) = convert(&d) else {
            continue;
        };
        if provided.contains(&nfv) {
            continue;
        }
        if bits & MISSINGOK != 0 {
            recommends.push(dep);
            continue;
        }
        dep.pre = bits & PRE != 0;
        let this = (dep.flags, d.version.clone(), dep.pre);
        if seen.get(&d.name) == Some(&this) {
            continue;
        }
        seen.insert(d.name.clone(), this);
        requires.push(dep);
    }
    recommends.extend(simple(read(m.get_recommends(), "recommends")?));
    Ok(Relations {
        provides,
        requires,
        conflicts: simple(read(m.get_conflicts(), "conflicts")?),
        obsoletes: simple(read(m.get_obsoletes(), "obsoletes")?),
        suggests: simple(read(m.get_suggests(), "suggests")?),
        enhances: simple(read(m.get_enhances(), "enhances")?),
        recommends,
        supplements: simple(read(m.get_supplements(), "supplements")?),
    })
}

pub(super) fn write_deps(out: &mut String, element: &str, deps: &[Dep], requires: bool) {
    if deps.is_empty() {
        return;
    }
    let _ = writeln!(out, "    <rpm:{element}>");
    for d in deps.iter().filter(|d| !d.name.is_empty()) {
        let _ = write!(out, "      <rpm:entry name=\"{}\"", xml_attr(&d.name));
        if let Some(f) = d.flags {
            let _ = write!(out, " flags=\"{f}\"");
            if let Some((e, v, r)) = &d.evr {
                for (k, val) in [("epoch", Some(e)), ("ver", Some(v)), ("rel", r.as_ref())] {
                    if let Some(val) = val.filter(|s| !s.is_empty()) {
                        let _ = write!(out, " {k}=\"{}\"", xml_attr(val));
                    }
                }
            }
        }
        if requires && d.pre {
            out.push_str(" pre=\"1\"");
        }
        out.push_str("/>\n");
    }
    let _ = writeln!(out, "    </rpm:{element}>");
}
