//! `metrics`: each member's plain-http metrics listener, kept off the
//! ports that carry TLS.

use super::{Checker, is_clean_abs_path};
use crate::config::error::Rule;
use crate::config::raw::*;
use crate::config::*;
use crate::model::{CLIENT_PORT, PEER_PORT};

/// The listener's port when the config names none (etcd's own example).
pub const DEFAULT_PORT: u16 = 2381;
const DEFAULT_TEXTFILE_DIR: &str = "/var/lib/node_exporter/textfile_collector";

pub(super) fn metrics(c: &mut Checker, m: &RawMetrics, tuning: &Tuning) -> Metrics {
    let listen = match &m.listen {
        None => MetricsListen::Localhost,
        Some(l) => match MetricsListen::ALL.iter().find(|k| k.as_str() == l.value) {
            Some(k) => *k,
            None => {
                let at = c.at(l);
                c.problem(
                    Rule::Metrics,
                    at,
                    format!("metrics.listen {:?} is neither localhost nor node", l.value),
                    "write `localhost` (127.0.0.1, for an agent on the node) or `node` (the node's IP, for a central Prometheus)",
                );
                MetricsListen::Localhost
            }
        },
    };
    let port = match &m.port {
        None => DEFAULT_PORT,
        Some(p) => {
            let why = match p.value {
                0 => Some("is 0".to_owned()),
                CLIENT_PORT => Some(format!(
                    "is the client port {CLIENT_PORT}, which serves TLS with client certificates{}",
                    if tuning.insecure_localhost_listener {
                        " (and http on 127.0.0.1)"
                    } else {
                        ""
                    }
                )),
                PEER_PORT => Some(format!("is the peer port {PEER_PORT}")),
                _ => None,
            };
            if let Some(why) = why {
                let at = c.at(p);
                c.problem(
                    Rule::Metrics,
                    at,
                    format!("metrics.port {why}: the metrics listener is plain http and needs a port of its own"),
                    format!("use another port, e.g. {DEFAULT_PORT} (the default)"),
                );
            }
            p.value
        }
    };
    let textfile_dir = match &m.textfile_dir {
        None => DEFAULT_TEXTFILE_DIR.to_owned(),
        Some(d) => {
            if !is_clean_abs_path(&d.value) {
                let at = c.at(d);
                c.problem(
                    Rule::Metrics,
                    at,
                    format!("metrics.textfile_dir {:?} is not a clean absolute path", d.value),
                    format!("write an absolute path of letters, digits, '.', '_', '-' and '+', e.g. {DEFAULT_TEXTFILE_DIR}"),
                );
            }
            d.value.clone()
        }
    };
    Metrics {
        listen,
        port,
        extensive: m.extensive.unwrap_or(false),
        textfile_dir,
    }
}
