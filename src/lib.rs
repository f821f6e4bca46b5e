//! etcdpack turns one YAML description of an etcd cluster into everything each
//! machine needs: the verified etcd release, a CA and per-node TLS certificates,
//! a rendered `etcd.conf` and `etcd.service`, and one installable artifact per node.
//!
//! # The pipeline
//!
//! `gen` is one plan, executed. Each stage has its own module, and a module
//! imports only the ones listed before it (`tests/layers.rs` holds the
//! crate to that: no import cycles).
//!
//! 0. **vocabulary** ([`model`]) — what every stage names: [`model::Arch`],
//!    [`model::Format`], [`model::Identity`], the node [`model::Layout`], the
//!    output layout [`model::out`], [`model::CertId`]. Imports nothing of the
//!    crate. [`fsutil`], [`digests`], [`report`] and [`envfile`] are leaf helpers
//!    beside it.
//! 1. **load** ([`config`]) — parse `cluster.yaml` strictly (unknown keys are
//!    errors with line and column) and validate it into a [`config::Cluster`]
//!    with every default applied. Reads the YAML and nothing else.
//! 2. **release** ([`release`], [`fetch`], [`extract`]) — which release and
//!    its checksum (pinned or explicit); download it or take a local tarball,
//!    verify it, pull out `etcd` and `etcdctl`.
//! 3. **pki** ([`pki`]) — [`pki::check_import`] checks a CA to import (exit
//!    2, file:line, before anything is written); [`pki::inspect`] decides,
//!    reading `OUT/pki` only, whether the CA is created, reused or imported
//!    and which leaves are reused or issued and why; [`pki::apply`] carries
//!    that out. The CA key never leaves `OUT/pki`.
//! 4. **render** ([`render`]) — `etcd.conf`, `etcd.service`, the etcdctl
//!    profile and the maintenance timers from the templates in `templates/`;
//!    `etcd.conf` is checked by systemd's EnvironmentFile rules ([`envfile`]).
//!    The maintenance script `etcd-maint` carries the node certificate's
//!    expiry, so it is rendered once the PKI has decided it. The same templates
//!    render the bundle's installer and the deb/rpm maintainer scripts, which
//!    each format declares in its own module.
//! 5. **stage** ([`stage`]) — [`stage::node_files`] is the one list of what
//!    a node gets; a node's contents are normalised once (paths, parents,
//!    modes, owners, order) into a [`stage::NodeTree`].
//! 6. **package** ([`package`]) — serialise a tree into each requested
//!    format: the `.tar.gz` bundle, `.deb`, `.rpm`, each one module behind
//!    [`package::Packager`].
//! 7. **record** ([`output`], [`outdir`]) — `manifest.json` (every node's
//!    files, releases, artifacts, retired nodes) and `SHA256SUMS`; the output
//!    directory is claimed, private, and cleaned only of what a run recorded.
//! 8. **plan** ([`plan`]) — from the config, the templates, the previous
//!    manifest and the PKI decisions: per node added, changed or unchanged,
//!    which files change and why, the release that results, the artifact
//!    names, what is removed. Reads, never writes; `etcdpack plan` prints it.
//! 9. **execute** ([`execute`]) — carry out a plan: PKI, trees, artifacts,
//!    removals, and last the record. It re-derives no path or name, and
//!    checks that every file the plan knew the contents of comes out so.
//!
//! 10. **publish** ([`publish`]) — a finished run's `.deb` and `.rpm`
//!     packages as a signed apt and a signed dnf repository, both one
//!     [`publish::repository::Repository`]: what the repository lists now
//!     verified with the signing key before anything is written, the
//!     repository a tree of plain files it owns ([`publish::tree`]),
//!     incrementally and consistently for readers whenever it is killed,
//!     refusing packages that hold a key in clear ([`package::scan`]);
//!     [`publish::sign`] is the OpenPGP signing, in process.
//!
//! [`cli`] and [`app`] wire the commands to the stages; [`verify`] re-checks
//! a finished output directory. Everything is written through
//! [`fsutil::write_atomic`]: a killed run never leaves a half-written file
//! under its final name, and `.incomplete` marks a run that has not finished.

pub mod app;
pub mod cli;
pub mod config;
pub mod digests;
pub mod envfile;
pub mod execute;
pub mod extract;
pub mod fetch;
pub mod fsutil;
pub mod membership;
pub mod model;
pub mod outdir;
pub mod output;
pub mod package;
pub mod pki;
pub mod plan;
pub mod publish;
pub mod release;
pub mod render;
pub mod report;
pub mod stage;
pub mod status;
pub mod verify;
