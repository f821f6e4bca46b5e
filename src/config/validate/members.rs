//! `cluster` and `nodes`: names, addresses, and everything that must be unique.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{Checker, is_dns_label, is_dns_name};
use crate::config::error::{Position, Rule};
use crate::config::raw::*;
use crate::config::*;

pub(super) fn cluster(c: &mut Checker, raw_cluster: &RawCluster) -> (String, String) {
    let name = raw_cluster.name.value.clone();
    if !is_dns_label(&name) {
        let at = c.at(&raw_cluster.name);
        c.problem(
            Rule::ClusterName,
            at,
            format!("cluster name \"{name}\" is not a DNS label"),
            "use 1-63 lower-case letters, digits and '-', not starting or ending with '-' (it becomes part of package names)",
        );
    }
    let token = match &raw_cluster.token {
        Some(t) => {
            let ok = !t.value.is_empty()
                && t.value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !ok {
                let at = c.at(t);
                c.problem(
                    Rule::Token,
                    at,
                    format!("cluster token \"{}\" has characters an EnvironmentFile cannot carry safely", t.value),
                    "use letters, digits, '.', '_' and '-' only",
                );
            }
            t.value.clone()
        }
        None => format!("etcd-cluster-{name}"),
    };
    (name, token)
}

pub(super) fn nodes(c: &mut Checker, raw_nodes: &S<Vec<RawNode>>) -> Vec<Node> {
    if raw_nodes.value.is_empty() {
        let at = c.at(raw_nodes);
        c.problem(
            Rule::NoNodes,
            at,
            "the cluster has no nodes",
            "list at least one node under `nodes:` (three for a fault-tolerant cluster)",
        );
    }
    let mut names: HashMap<String, Position> = HashMap::new();
    let mut ips: HashMap<IpAddr, Position> = HashMap::new();
    let mut nodes = Vec::new();
    // Each node's extra SANs with their positions, for the check across nodes.
    let mut extra_sans: Vec<Vec<(San, Position)>> = Vec::new();
    for n in &raw_nodes.value {
        let name_at = c.at(&n.name);
        if !is_dns_label(&n.name.value) {
            c.problem(
                Rule::NodeName,
                name_at.clone(),
                format!("node name \"{}\" is not a DNS label", n.name.value),
                "use 1-63 lower-case letters, digits and '-', not starting or ending with '-'",
            );
        } else if let Some(first) = names.get(&n.name.value) {
            c.problem(
                Rule::DuplicateName,
                name_at.clone(),
                format!(
                    "node name \"{}\" is used twice (first at line {})",
                    n.name.value, first.line
                ),
                "give every node its own name",
            );
        } else {
            names.insert(n.name.value.clone(), name_at);
        }
        let ip_at = c.at(&n.ip);
        let ip = match n.ip.value.trim().parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() || ip.is_multicast() => {
                c.problem(
                    Rule::Ip,
                    ip_at.clone(),
                    format!("node ip {ip} cannot be a member address"),
                    "give the address the node is reached at by its peers",
                );
                ip
            }
            Ok(ip) => ip,
            Err(_) => {
                c.problem(
                    Rule::Ip,
                    ip_at.clone(),
                    format!("node ip \"{}\" is not an IPv4 or IPv6 address", n.ip.value),
                    "write an address such as 192.168.0.1 or fd00::1 (no port, no prefix length)",
                );
                IpAddr::from([0, 0, 0, 0])
            }
        };
        if !ip.is_unspecified() {
            if let Some(first) = ips.get(&ip) {
                c.problem(
                    Rule::DuplicateIp,
                    ip_at.clone(),
                    format!("node ip {ip} is used twice (first at line {})", first.line),
                    "give every node its own address",
                );
            } else {
                ips.insert(ip, ip_at);
            }
        }
        let mut sans = Vec::new();
        let mut sans_at = Vec::new();
        for s in &n.sans {
            let san = if let Ok(ip) = s.value.parse::<IpAddr>() {
                San::Ip(ip)
            } else if is_dns_name(&s.value) {
                San::Dns(s.value.clone())
            } else {
                let at = c.at(s);
                c.problem(
                    Rule::San,
                    at,
                    format!(
                        "SAN \"{}\" is neither an IP address nor a DNS name",
                        s.value
                    ),
                    "write an address or a lower-case host name such as etcd-1.example.org",
                );
                continue;
            };
            sans_at.push((san.clone(), c.at(s)));
            sans.push(san);
        }
        extra_sans.push(sans_at);
        let ssh_host_key = n.ssh_host_key.as_ref().and_then(|k| host_key(c, k));
        nodes.push(Node {
            name: n.name.value.clone(),
            ip,
            sans,
            ssh_host_key,
        });
    }
    foreign_sans(c, &nodes, &extra_sans);
    if nodes.len() % 2 == 0 && !nodes.is_empty() {
        let at = c.at(raw_nodes);
        c.warn(
            at,
            format!(
                "{} nodes tolerate no more failures than {}; an odd count is usual",
                nodes.len(),
                nodes.len() - 1
            ),
        );
    }
    nodes
}

/// A node's extra SANs must not name another member: that node's key would
/// then be accepted as the other member too, so one leaked key impersonates
/// two. (Names shared by no node, such as a load balancer's, are fine.)
fn foreign_sans(c: &mut Checker, nodes: &[Node], extra_sans: &[Vec<(San, Position)>]) {
    for (node, sans) in nodes.iter().zip(extra_sans) {
        for (san, at) in sans {
            // A duplicate name or IP is its own problem; do not report it twice.
            let other = nodes.iter().find_map(|o| {
                let same_node = o.name == node.name || o.ip == node.ip;
                match san {
                    San::Ip(ip) if !same_node && *ip == o.ip => Some((o, format!("IP {ip}"))),
                    San::Dns(d) if !same_node && *d == o.name => Some((o, format!("name {d}"))),
                    _ => None,
                }
            });
            if let Some((other, what)) = other {
                c.problem(
                    Rule::ForeignSan,
                    at.clone(),
                    format!("sans of {} names {}'s {what}", node.name, other.name),
                    format!(
                        "remove it: list only names and addresses of {} itself; with it, a leaked key of {} would pass for {}",
                        node.name, node.name, other.name
                    ),
                );
            }
        }
    }
}

/// The SSH public key of a `.pub` line (`TYPE BASE64 [COMMENT]`), checked
/// to the letter and in its canonical form, if age can encrypt to it; why
/// not, if it cannot. Host keys and backup recipients both pass here.
pub(super) fn ssh_recipient(line: &str) -> Result<HostKey, String> {
    use age::ssh::ParseRecipientKeyError as E;
    let key = HostKey::parse(line)?;
    match key.public().parse::<age::ssh::Recipient>() {
        Ok(_) => Ok(key),
        Err(E::Unsupported(kind)) => Err(format!("is an {kind} key, which age cannot encrypt to")),
        Err(E::RsaModulusTooSmall) => Err("is an RSA key of fewer than 2048 bits".to_owned()),
        Err(E::RsaModulusTooLarge) => Err("is an RSA key of more than 4096 bits".to_owned()),
        Err(_) => Err("is not an SSH public key line".to_owned()),
    }
}

/// A node's `ssh_host_key`, if age can seal to it.
fn host_key(c: &mut Checker, raw: &S<String>) -> Option<HostKey> {
    let why = match ssh_recipient(&raw.value) {
        Ok(key) => return Some(key),
        Err(why) => why,
    };
    let at = c.at(raw);
    c.problem(
        Rule::HostKey,
        at,
        format!("ssh_host_key {why}"),
        "give the machine's ed25519 host key: the line of /etc/ssh/ssh_host_ed25519_key.pub on it, \"ssh-ed25519 AAAA…\"",
    );
    None
}

/// With sealed keys, every node needs a host key of its own: a key two
/// machines share would let each unseal the other's member key.
pub(super) fn sealing(c: &mut Checker, raw_nodes: &S<Vec<RawNode>>, nodes: &[Node], keys: Keys) {
    let mut seen: HashMap<&str, (&str, Position)> = HashMap::new();
    for (raw, node) in raw_nodes.value.iter().zip(nodes) {
        match (&raw.ssh_host_key, keys) {
            (None, Keys::Sealed) => {
                let at = c.at(&raw.name);
                c.problem(
                    Rule::HostKey,
                    at,
                    format!(
                        "node {} has no ssh_host_key, which packages.keys: sealed needs",
                        node.name
                    ),
                    "add `ssh_host_key: \"ssh-ed25519 AAAA…\"` to the node: the line of /etc/ssh/ssh_host_ed25519_key.pub on that machine (or from `ssh-keyscan -t ed25519 HOST`, checked against its console)",
                );
            }
            (Some(k), Keys::Cleartext) => {
                let at = c.at(k);
                c.warn(
                    at,
                    format!(
                        "ssh_host_key of {} is unused: packages.keys is cleartext (set `packages: {{ keys: sealed }}` to seal the key to it)",
                        node.name
                    ),
                );
            }
            _ => {}
        }
        if let (Some(raw_key), Some(key)) = (&raw.ssh_host_key, &node.ssh_host_key) {
            let at = c.at(raw_key);
            if let Some((other, first)) = seen.get(key.public()) {
                let (other, line) = (other.to_string(), first.line);
                c.problem(
                    Rule::HostKey,
                    at,
                    format!(
                        "node {} has the ssh_host_key of {other} (line {line}): each could unseal the other's key",
                        node.name
                    ),
                    "give each node its own machine's host key; machines cloned from one image share keys until they are regenerated (`ssh-keygen -A` after removing /etc/ssh/ssh_host_*)",
                );
            } else {
                seen.insert(key.public(), (&node.name, at));
            }
        }
    }
}
