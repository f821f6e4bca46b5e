//! The .deb and .rpm formats, checked with the distributions' own tools:
//! dpkg-deb, lintian, rpm, rpmlint, and real installs with dpkg and rpm into
//! copies of a Debian root (upgrade, removal, purge).
//!
//! Packages are built through the library (no PKI or download needed), from
//! the real templates, with a small statically linked program standing in for
//! the Go binaries so that lintian sees what it would see in production
//! (`support::packaging`).
//!
//! - [`deb_structure`]: the .deb's control fields, scripts and data, per dpkg-deb;
//! - [`rpm_structure`]: the .rpm's header, relations, scripts and payload, per rpm;
//! - [`across_formats`]: every format reads back as the node tree, reproducibly, with
//!   scripts that follow the service settings;
//! - [`lint`]: lintian and rpmlint pass with the shipped overrides;
//! - [`installs`]: dpkg and rpm install, refuse, upgrade, remove and purge for real in
//!   copies of a Debian root (root only; see the module);
//! - [`piuparts`]: Debian's piuparts installs, purges and reinstalls a node's .deb.
//!
//! One test crate, so that the slow install tests run alongside the others.

mod support;

#[path = "e2e/mod.rs"]
mod e2e;

#[path = "packages/across_formats.rs"]
mod across_formats;
#[path = "packages/deb_structure.rs"]
mod deb_structure;
#[path = "packages/installs.rs"]
mod installs;
#[path = "packages/lint.rs"]
mod lint;
#[path = "packages/piuparts.rs"]
mod piuparts;
#[path = "packages/rpm_structure.rs"]
mod rpm_structure;
