//! Secrets: the CA key stays in `OUT/pki`, every private key is 0600 in
//! every format, and the tool never prints a key. Artifacts are unpacked
//! with the real tools (tar, dpkg-deb, rpm2cpio | cpio) and every byte is
//! searched, and `etcdpack verify` must catch a CA key planted in any format
//! — and fail, never pass, on an artifact it cannot read.
//!
//! - [`artifact_hygiene`]: what `gen` writes holds no CA key, keeps every key
//!   0600, and no command prints a key;
//! - [`planted_keys`]: `verify` finds a CA key planted in each format, and
//!   fails on what it cannot read;
//! - [`key_encodings`]: `verify` knows the CA key in every encoding, and not
//!   the node's key for it;
//! - [`stays_inside`]: `verify` reads nothing outside its directory.
//!
//! One test crate: its modules share one generated output per kind
//! (`support::tamper`), made once per run.

mod support;

#[path = "secrets/artifact_hygiene.rs"]
mod artifact_hygiene;
#[path = "secrets/key_encodings.rs"]
mod key_encodings;
#[path = "secrets/planted_keys.rs"]
mod planted_keys;
#[path = "secrets/stays_inside.rs"]
mod stays_inside;
