//! `nodes[].ssh_host_key`, checked to the letter.

use super::*;

/// The `.pub` line of the ed25519 key made from the seed of 32 bytes of
/// `fill`, with `after` appended to its key blob (nothing for a valid one).
fn ed25519_line(fill: u8, after: &[u8]) -> String {
    use aws_lc_rs::signature::KeyPair;
    use base64::Engine;
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&[fill; 32]).unwrap();
    let public = pair.public_key().as_ref().to_vec();
    let mut blob = Vec::new();
    for f in [&b"ssh-ed25519"[..], &public[..]] {
        blob.extend_from_slice(&(f.len() as u32).to_be_bytes());
        blob.extend_from_slice(f);
    }
    blob.extend_from_slice(after);
    format!(
        "ssh-ed25519 {}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

fn sealed_with(host_key: &str) -> Result<Cluster, ConfigError> {
    let mut text = String::from(
        "version: 1\ncluster: { name: k8s, token: t }\npackages: { keys: sealed }\nnodes:\n",
    );
    for i in 1..=3u8 {
        let key = if i == 2 {
            host_key.to_owned()
        } else {
            ed25519_line(i, b"")
        };
        let quoted = key
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\u{7}', "\\a");
        text.push_str(&format!(
            "  - {{ name: etcd-{i}, ip: 192.168.0.{i}, ssh_host_key: \"{quoted}\" }}\n"
        ));
    }
    parse_text(&text)
}

#[test]
fn a_host_key_is_checked_to_the_letter_and_kept_in_its_canonical_encoding() {
    let good = ed25519_line(7, b"");
    let c = sealed_with(&format!("  {good}   root@etcd-2 (made by ssh-keygen)")).unwrap();
    assert_eq!(c.nodes[1].ssh_host_key.as_ref().unwrap().public(), good);

    // Shell code after the key (age's parser would ignore it, and the
    // packages' scripts would run it as root), bytes after the key in its
    // blob, a blob of another type: each an error at the node's line.
    for (bad, why) in [
        (format!("{good}$(id>/tmp/x)"), "is not base64"),
        (format!("{good}`id`"), "is not base64"),
        (format!("{good}\\"), "is not base64"),
        (ed25519_line(7, b"trailing"), "has 8 bytes after the key"),
        (
            good.replacen("ssh-ed25519", "ssh-rsa", 1),
            "is not of the type \"ssh-rsa\"",
        ),
        (format!("{good} tab\u{7}bell"), "holds a control character"),
    ] {
        let m = message(sealed_with(&bad));
        assert!(
            m.contains("cluster.yaml:6:") && m.contains(why) && m.contains("ssh_host_key"),
            "{bad}: {m}"
        );
        assert_eq!(rules(sealed_with(&bad)), [Rule::HostKey], "{bad}");
    }
}
