//! `etcdpack status`: every certificate of an output directory with its
//! expiry, soonest first, as the manifest of the last `gen` records it; a
//! certificate inside the warning window makes the command fail (exit 4),
//! so that a pipeline can alert. `etcdpack renew` is the remedy it names.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::{CertId, Rotation, out};
use crate::output::Manifest;

/// A certificate expires within the warning window (exit code 4).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Expiring(pub String);

#[derive(Debug, Serialize)]
pub struct Entry {
    /// `CA`, `node etcd-1`, `client etcdctl`.
    pub what: String,
    /// Relative to the output directory.
    pub file: String,
    /// RFC 3339, UTC.
    pub not_after: String,
    /// Whole days left (negative once expired).
    pub days_left: i64,
    /// Inside the warning window (or expired).
    pub warn: bool,
}

#[derive(Debug, Serialize)]
pub struct Status {
    #[serde(skip)]
    dir: PathBuf,
    pub window_days: i64,
    /// The phase of a CA rotation under way (`rotate-ca`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_rotation: Option<Rotation>,
    /// Soonest first.
    pub certificates: Vec<Entry>,
}

/// The certificates the manifest in `dir` records, at `now`.
pub fn read(dir: &Path, now: OffsetDateTime, window: time::Duration) -> Result<Status> {
    let Some(m) = Manifest::read(dir)? else {
        bail!(
            "{} holds no {} of a gen run\n  help: pass the output directory of `etcdpack gen` (default: out)",
            dir.display(),
            out::MANIFEST
        );
    };
    let pki = |rel: &str| format!("{}/{rel}", out::PKI);
    let mut raw: Vec<(String, String, String)> =
        vec![("CA".to_owned(), m.ca.cert.clone(), m.ca.not_after.clone())];
    for n in &m.nodes {
        raw.push((
            format!("node {}", n.name),
            pki(&CertId::Node(n.name.clone()).cert_file()),
            n.cert_not_after.clone(),
        ));
    }
    for c in &m.clients {
        raw.push((
            format!("client {}", c.name),
            c.cert.clone(),
            c.not_after.clone(),
        ));
    }
    let mut certificates = Vec::new();
    for (what, file, not_after) in raw {
        let t = OffsetDateTime::parse(&not_after, &Rfc3339).with_context(|| {
            format!(
                "{}: the expiry {not_after:?} of {what} is not an RFC 3339 time\n  help: run `etcdpack verify {}`, then gen again",
                dir.join(out::MANIFEST).display(),
                dir.display()
            )
        })?;
        let left = t - now;
        certificates.push(Entry {
            what,
            file,
            not_after,
            days_left: left.whole_days(),
            warn: left < window,
        });
    }
    certificates.sort_by(|a, b| {
        (a.not_after.as_str(), a.what.as_str()).cmp(&(b.not_after.as_str(), b.what.as_str()))
    });
    Ok(Status {
        dir: dir.to_owned(),
        window_days: window.whole_days(),
        ca_rotation: m.ca.rotation,
        certificates,
    })
}

impl Status {
    pub fn render_text(&self) -> String {
        let mut s = format!("{:<22} {:>6}  CERTIFICATE\n", "EXPIRES", "DAYS");
        for e in &self.certificates {
            let days = if e.days_left < 0 || e.not_after.is_empty() {
                "expired".to_owned()
            } else {
                e.days_left.to_string()
            };
            let mark = if e.warn { "  <- renew" } else { "" };
            s.push_str(&format!(
                "{:<22} {days:>6}  {} ({}){mark}\n",
                e.not_after, e.what, e.file
            ));
        }
        if let Some(phase) = self.ca_rotation {
            s.push_str(&format!("\n{}\n", crate::plan::rotation_text(phase)));
        }
        s
    }

    /// An error (exit 4) when a certificate is inside the warning window.
    pub fn into_result(self) -> Result<()> {
        let warned: Vec<&Entry> = self.certificates.iter().filter(|e| e.warn).collect();
        if warned.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = warned
            .iter()
            .map(|e| format!("{} ({})", e.what, e.not_after))
            .collect();
        let ca = warned.iter().any(|e| e.what == "CA");
        let help = if ca {
            "the CA itself is expiring: leaves cannot outlive it; plan a CA rotation (a new CA means new certificates on every node)".to_owned()
        } else {
            format!(
                "run `etcdpack renew --config FILE --out {} --within {}d`, then install the new packages one node at a time",
                self.dir.display(),
                self.window_days
            )
        };
        Err(Expiring(format!(
            "{} certificate(s) expire within {} days: {}\n  help: {help}",
            warned.len(),
            self.window_days,
            list.join(", ")
        ))
        .into())
    }
}
