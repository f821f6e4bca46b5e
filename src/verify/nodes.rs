//! Each node's tree: its one server certificate, checked against the CA (or,
//! in a CA rotation, the next CA), its name and IP, its uses and expiry; its
//! key's mode, or that the key is only sealed.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use time::OffsetDateTime;

use super::{Report, find_files, rel};
use crate::config::San;
use crate::output::NodeInfo;
use crate::pki;

/// Check every node's tree; the nodes whose key is sealed, with their
/// certificates (PEM).
pub(super) fn check_trees<'m>(
    r: &mut Report,
    dir: &Path,
    trees: &[(&'m NodeInfo, PathBuf)],
    ca_pem: &str,
    next_ca_pem: Option<&str>,
    now: OffsetDateTime,
) -> Result<Vec<(&'m NodeInfo, String)>> {
    let mut sealed = Vec::new();
    for (node, tree) in trees {
        let certs = find_files(tree, "server.pem");
        if !r.check(
            certs.len() == 1,
            format!("{}: one server certificate in {}", node.name, node.tree),
        ) {
            continue;
        }
        let leaf = fs::read_to_string(&certs[0])?;
        // During a CA rotation a leaf may be the next CA's.
        let checked = pki::check_leaf(ca_pem, &leaf, now).or_else(|e| match next_ca_pem {
            Some(next) => pki::check_leaf(next, &leaf, now),
            None => Err(e),
        });
        match checked {
            Ok(info) => {
                r.check(
                    info.common_name == node.name,
                    format!("{}: certificate CN is the node name", node.name),
                );
                let ip_ok = node
                    .ip
                    .parse()
                    .map(|ip| info.sans.contains(&San::Ip(ip)))
                    .unwrap_or(false);
                r.check(
                    ip_ok,
                    format!("{}: certificate names IP {}", node.name, node.ip),
                );
                r.check(
                    info.sans.contains(&San::Dns(node.name.clone())),
                    format!("{}: certificate names host {}", node.name, node.name),
                );
                r.check(
                    info.server && info.client,
                    format!("{}: certificate allows server and client auth", node.name),
                );
                let days = (info.not_after - now).whole_days();
                r.check(
                    days > 30,
                    format!("{}: certificate valid for {days} more days", node.name),
                );
            }
            Err(e) => {
                r.check(
                    false,
                    format!(
                        "{}: certificate chains to pki/ca.pem (or, in a CA rotation, pki/next-ca.pem) ({e:#})",
                        node.name
                    ),
                );
            }
        }
        let keys = find_files(tree, "server-key.pem");
        if !find_files(tree, "server-key.pem.age").is_empty() {
            r.check(
                keys.is_empty(),
                format!(
                    "{}: its key is sealed, and not also in clear in {}",
                    node.name, node.tree
                ),
            );
            sealed.push((*node, leaf.clone()));
        }
        for k in keys {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&k)?.permissions().mode() & 0o777;
            r.check(
                mode == 0o600,
                format!(
                    "{}: {} has mode 0600 (is {mode:04o})",
                    node.name,
                    rel(dir, &k)
                ),
            );
        }
    }

    Ok(sealed)
}
