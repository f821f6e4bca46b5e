//! `pki` and `clients`: the CA (created or imported) and who gets certificates.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::{Checker, HOUR, is_dns_label};
use crate::config::error::Rule;
use crate::config::raw::*;
use crate::config::*;

pub(super) fn pki(c: &mut Checker, raw_pki: &RawPki) -> Pki {
    let algorithm = match &raw_pki.algorithm {
        None => Algorithm::Rsa2048,
        Some(a) => match a.value.as_str() {
            "rsa-2048" => Algorithm::Rsa2048,
            "ecdsa-p256" => Algorithm::EcdsaP256,
            other => {
                let at = c.at(a);
                c.problem(
                    Rule::Algorithm,
                    at,
                    format!("pki.algorithm \"{other}\" is not supported"),
                    "use rsa-2048 or ecdsa-p256",
                );
                Algorithm::Rsa2048
            }
        },
    };
    let validity = c.duration(
        "pki.validity",
        &raw_pki.validity,
        HOUR,
        Duration::from_secs(87600 * 3600),
    );
    if validity < Duration::from_secs(86400) {
        let at = c.at_or_file(&raw_pki.validity);
        c.problem(
            Rule::Validity,
            at,
            format!("pki.validity {validity:?} is shorter than a day"),
            "use e.g. \"8760h\" (a year) or \"87600h\" (ten years)",
        );
    }
    let rs = &raw_pki.subject;
    let subject = Subject {
        country: rs.country.clone(),
        state: rs.state.clone(),
        locality: rs.locality.clone(),
        organization: rs.organization.clone(),
        organizational_unit: rs.organizational_unit.clone(),
    };
    let import = match (&raw_pki.ca_cert, &raw_pki.ca_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let base = c.file.parent().unwrap_or(Path::new(""));
            let import = CaImport {
                cert: base.join(&cert.value),
                key: base.join(&key.value),
            };
            let mut readable = true;
            for (s, p, what) in [
                (cert, &import.cert, "ca_cert"),
                (key, &import.key, "ca_key"),
            ] {
                if let Err(e) = std::fs::File::open(p) {
                    readable = false;
                    let at = c.at(s);
                    c.problem(
                        Rule::CaFiles,
                        at,
                        format!("pki.{what} {}: {e}", p.display()),
                        "give a readable PEM file; relative paths are relative to the config file",
                    );
                }
            }
            if readable
                && let Err(e) = crate::pki::check_import(
                    &import.cert,
                    &import.key,
                    time::OffsetDateTime::now_utc(),
                )
            {
                let at = c.at(cert);
                let text = format!("{e:#}");
                let (message, help) = text
                    .split_once("\n  help: ")
                    .map(|(m, h)| (m.to_owned(), h.to_owned()))
                    .unwrap_or((
                        text.clone(),
                        "give the certificate and key of a CA that is still valid".into(),
                    ));
                c.problem(
                    Rule::CaFiles,
                    at,
                    format!("the CA to import is unusable: {message}"),
                    help,
                );
            }
            Some(import)
        }
        (Some(one), None) | (None, Some(one)) => {
            let at = c.at(one);
            c.problem(
                Rule::CaFiles,
                at,
                "pki.ca_cert and pki.ca_key must be given together",
                "give both files of the CA to import, or neither to create a CA",
            );
            None
        }
    };
    Pki {
        algorithm,
        validity,
        subject,
        import,
    }
}

pub(super) fn clients(c: &mut Checker, raw_clients: &Option<Vec<RawClient>>) -> Vec<Client> {
    match raw_clients {
        None => vec![
            Client {
                name: "etcdctl".into(),
                organization: None,
            },
            Client {
                name: "kube-apiserver".into(),
                organization: Some("system:masters".into()),
            },
            Client {
                name: "flannel".into(),
                organization: None,
            },
        ],
        Some(list) => {
            let mut seen: HashMap<&str, u32> = HashMap::new();
            let mut out = Vec::new();
            for cl in list {
                let at = c.at(&cl.name);
                if !is_dns_label(&cl.name.value) {
                    c.problem(
                        Rule::ClientName,
                        at,
                        format!(
                            "client name \"{}\" is not usable as a file name",
                            cl.name.value
                        ),
                        "use lower-case letters, digits and '-'",
                    );
                } else if let Some(line) = seen.get(cl.name.value.as_str()) {
                    c.problem(
                        Rule::DuplicateClient,
                        at,
                        format!(
                            "client \"{}\" is listed twice (first at line {line})",
                            cl.name.value
                        ),
                        "list each client once",
                    );
                } else {
                    seen.insert(&cl.name.value, at.line);
                }
                out.push(Client {
                    name: cl.name.value.clone(),
                    organization: cl.organization.clone(),
                });
            }
            out
        }
    }
}
