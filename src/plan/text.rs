//! A plan as a person reads it.

use super::*;

/// The plan as a person reads it, `terraform plan`-like: `+` added, `~`
/// changed, `=` unchanged, `-` removed.
pub fn render_text(plan: &Plan) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let r = &plan.release;
    let _ = writeln!(s, "etcd {} {} from {}", r.version, r.arch, r.url);
    let _ = writeln!(s, "  sha256 {}", r.sha256);
    if let Some(c) = &r.change {
        let _ = writeln!(s, "  changed: {c}");
    }
    if let Some(u) = &r.upgrade {
        let _ = writeln!(s, "  upgrade: {u}");
    }
    let _ = writeln!(
        s,
        "\nCA: {} {}",
        match plan.ca.action {
            CaAction::Create => "create",
            CaAction::Reuse => "reuse",
            CaAction::Import => "import",
        },
        plan.out.join(&plan.ca.cert).display()
    );
    if let Some(phase) = plan.ca_rotation {
        let _ = writeln!(s, "{}", rotation_text(phase));
    }
    let _ = writeln!(s, "\nCertificates:");
    for c in &plan.certificates {
        match (&c.action, &c.reason) {
            (CertAction::Issue, Some(why)) => {
                let _ = writeln!(s, "  issue  {} ({why})", c.id);
            }
            _ => {
                let _ = writeln!(s, "  reuse  {}", c.id);
            }
        }
        if let Some(seal) = &c.sealed {
            let why = seal
                .reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            let _ = writeln!(s, "    {} its key sealed to {}{why}", seal.action, seal.to);
        }
    }
    let _ = writeln!(s, "\nNodes:");
    for n in &plan.nodes {
        let (mark, what) = match n.status {
            Change::Added => ("+", format!("{} (new)", n.version)),
            Change::Changed => (
                "~",
                format!(
                    "{} → {}",
                    n.previous_version.as_deref().unwrap_or("?"),
                    n.version
                ),
            ),
            _ => ("=", format!("{} (unchanged)", n.version)),
        };
        let _ = writeln!(s, "{mark} {} ({}): {} {what}", n.name, n.ip, n.package);
        if n.status == Change::Changed {
            for f in n.files.iter().filter(|f| f.change != Change::Unchanged) {
                let mark = match f.change {
                    Change::Added => "+",
                    Change::Removed => "-",
                    _ => "~",
                };
                if f.why.is_empty() {
                    let _ = writeln!(s, "    {mark} {}", f.path);
                } else {
                    let _ = writeln!(s, "    {mark} {}: {}", f.path, f.why.join("; "));
                }
            }
            for c in &n.package_changes {
                let _ = writeln!(s, "    ~ {c}");
            }
        }
        for a in &n.artifacts {
            let verb = match a.action {
                ArtifactAction::Create => "create ",
                ArtifactAction::Replace => "replace",
                ArtifactAction::Keep => "keep   ",
            };
            let _ = writeln!(s, "    {verb} {}", plan.out.join(&a.path).display());
        }
    }
    if !plan.removed.is_empty() {
        let _ = writeln!(s, "\nRemoved:");
        for r in &plan.removed {
            let _ = writeln!(s, "  - {}", plan.out.join(r).display());
        }
    }
    let changed: Vec<_> = plan
        .monitoring
        .iter()
        .filter(|f| f.change != Change::Unchanged)
        .collect();
    if !changed.is_empty() {
        let _ = writeln!(s, "\nMonitoring (copy to the Prometheus server):");
        for f in changed {
            let mark = if f.change == Change::Added { "+" } else { "~" };
            let _ = writeln!(s, "  {mark} {}", plan.out.join(&f.path).display());
        }
    }
    let a = &plan.access;
    if !a.changes.is_empty() {
        let _ = writeln!(
            s,
            "\nAccess policy{}, which etcd-auth.service applies once a node's package is installed (on a node, `etcd-maint auth plan` shows what it would change in the running cluster):",
            if a.recorded {
                ""
            } else {
                " (the previous run recorded none: all of it)"
            }
        );
        for c in &a.changes {
            let _ = writeln!(s, "  {c}");
        }
    }
    if !plan.membership.is_empty() {
        let _ = writeln!(
            s,
            "\nMembership of the running cluster, once the packages are built (run as root, in order):"
        );
        s.push_str(&membership::render_text(&plan.membership));
    }
    let m = &plan.summary;
    let _ = writeln!(
        s,
        "\nPlan (nodes): {} to add, {} to change, {} unchanged, {} to remove.",
        m.added, m.changed, m.unchanged, m.removed
    );
    s
}

/// Where a CA rotation stands and what comes next, as `status` and `plan`
/// say it.
pub fn rotation_text(phase: crate::model::Rotation) -> String {
    let (now, next) = match phase {
        crate::model::Rotation::Trust => (
            "every node trusts the current CA and the next one; certificates are the current CA's",
            "issue",
        ),
        crate::model::Rotation::Issue => (
            "every certificate is the next CA's; nodes still trust both",
            "retire",
        ),
    };
    format!(
        "CA rotation: phase {} ({now}). Next, once every node runs this phase's package: etcdpack rotate-ca {next}",
        phase.as_str()
    )
}
