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
    let leaf_validity = match &raw_pki.leaf_validity {
        None => validity,
        Some(_) => {
            let leaf = c.duration("pki.leaf_validity", &raw_pki.leaf_validity, HOUR, validity);
            let at = c.at_or_file(&raw_pki.leaf_validity);
            if leaf < Duration::from_secs(86400) {
                c.problem(
                    Rule::Validity,
                    at,
                    format!("pki.leaf_validity {leaf:?} is shorter than a day"),
                    "use e.g. \"8760h\" (a year); renew with `etcdpack renew` before it ends",
                );
            } else if leaf > validity {
                c.problem(
                    Rule::Validity,
                    at,
                    format!(
                        "pki.leaf_validity {leaf:?} is longer than pki.validity {validity:?}: no certificate outlives its CA"
                    ),
                    "make leaf_validity shorter than validity, or leave it out (leaves then live as long as the CA)",
                );
            }
            leaf
        }
    };
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
                cert_at: c.at(cert),
                key_at: c.at(key),
            };
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
        leaf_validity,
        subject,
        import,
    }
}

/// Kubernetes' group of cluster administrators: a certificate with this
/// organization that Kubernetes' CA signed is cluster-admin there.
const KUBERNETES_ADMINS: &str = "system:masters";

pub(super) fn clients(c: &mut Checker, raw_clients: &Option<Vec<RawClient>>) -> Vec<Client> {
    match raw_clients {
        // kube-apiserver's etcd client certificate carries system:masters in
        // kubeadm-style setups, and tooling written for those expects it. etcd
        // ignores the organization, so with the CA etcdpack creates (trusted
        // by nothing else) it grants nothing outside etcd; with an imported
        // CA that Kubernetes trusts it is cluster-admin: see
        // `admin_clients_of_an_imported_ca`.
        None => [
            ("etcdctl", None),
            ("kube-apiserver", Some(KUBERNETES_ADMINS)),
            ("flannel", None),
        ]
        .into_iter()
        .map(|(name, organization)| Client {
            name: name.into(),
            organization: organization.map(Into::into),
            access: super::access::client(c, name, None),
        })
        .collect(),
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
                    access: super::access::client(c, &cl.name.value, Some(cl)),
                });
            }
            out
        }
    }
}

/// Warn when an imported CA signs a client certificate in `system:masters`:
/// if that CA is Kubernetes' too (the usual reason to import one), the
/// certificate is a Kubernetes cluster-admin credential, not only an etcd one.
pub(super) fn admin_clients_of_an_imported_ca(
    c: &mut Checker,
    raw_pki: &RawPki,
    raw_clients: &Option<Vec<RawClient>>,
    pki: &Pki,
    clients: &[Client],
) {
    if pki.import.is_none() {
        return;
    }
    for (i, client) in clients.iter().enumerate() {
        if client.organization.as_deref() != Some(KUBERNETES_ADMINS) {
            continue;
        }
        // A listed client is named where it is written; a default one at the CA.
        let at = match raw_clients {
            Some(list) => c.at(&list[i].name),
            None => c.at_or_file(&raw_pki.ca_cert),
        };
        let listed = if raw_clients.is_some() {
            ""
        } else {
            " (a default client)"
        };
        c.warn(
            at,
            format!(
                "client {}{listed} has organization {KUBERNETES_ADMINS} and is signed by the imported CA (pki.ca_cert): if Kubernetes trusts that CA, this certificate is a Kubernetes cluster-admin credential\n  help: etcd ignores the organization: drop it from the client (list `clients:` with {{ name: {} }}), or remove pki.ca_cert and pki.ca_key so that etcdpack creates a CA of etcd's own",
                client.name, client.name
            ),
        );
    }
}
