//! etcdpack turns one YAML description of an etcd cluster into everything each
//! machine needs: the verified etcd release, a CA and per-node TLS certificates,
//! a rendered `etcd.conf` and `etcd.service`, and one installable artifact per node.
//!
//! # The pipeline
//!
//! `gen` is one plan, executed. Each stage has its own module, and the
//! modules form the layers numbered here, bottom first: a module imports
//! only modules of the layers listed before its own, none of its own layer.
//! `tests/layers.rs` holds the crate to that order with a table of these
//! layers, which this list and the README's layer table must match.
//!
//! 0. **vocabulary** ([`model`], [`fsutil`], [`report`], [`envfile`], [`clock`]) — what
//!    every stage names: [`model::Arch`], [`model::Format`],
//!    [`model::Identity`], the node [`model::Layout`], the output layout
//!    [`model::out`], [`model::CertId`]; and the leaf helpers beside it:
//!    atomic writes, private directories and the output-directory lock
//!    ([`fsutil`]), the one writer to stderr ([`report`]), systemd's
//!    EnvironmentFile rules ([`envfile`]), the one source of time and of
//!    `SOURCE_DATE_EPOCH` ([`clock`]). None of them imports another module
//!    of the crate.
//! 1. **digests** ([`digests`]) — what a run knows of a file's SHA-256
//!    without reading it again.
//! 2. **release** ([`release`]) — the etcd releases etcdpack knows: their
//!    minor lines, the default version, the pinned checksums, where one is
//!    downloaded from, which upgrades etcd allows; and [`release::Etcd`], the
//!    release a cluster runs. The config is validated against it.
//! 3. **load** ([`config`]) — parse `cluster.yaml` strictly (unknown keys are
//!    errors with line and column) and validate it into a [`config::Cluster`]
//!    with every default applied. Reads the YAML and nothing else.
//! 4. **fetch** ([`fetch`], [`extract`]) — download the release or take a
//!    local tarball, verify it against its checksum (pinned or explicit),
//!    pull out `etcd` and `etcdctl`.
//! 5. **pki** ([`pki`]) — [`pki::check_import`] checks a CA to import (exit
//!    2, file:line, before anything is written); [`pki::inspect`] decides,
//!    reading `OUT/pki` only, whether the CA is created, reused or imported
//!    and which leaves are reused or issued and why; [`pki::apply`] carries
//!    that out, or [`pki::begin`] the CA part and then [`pki::Issuing`] each
//!    leaf as a node needs it. The CA key never leaves `OUT/pki`. [`pki::rotation`] replaces
//!    the CA in three phases (trust, issue, retire), each rolled out first.
//! 6. **render** ([`render`]) — `etcd.conf`, `etcd.service`, the etcdctl
//!    profile and the maintenance timers from the templates in `templates/`;
//!    `etcd.conf` is checked by systemd's EnvironmentFile rules ([`envfile`]).
//!    The maintenance script `etcd-maint` carries the node certificate's
//!    expiry, so it is rendered once the PKI has decided it. The same templates
//!    render the bundle's installer and the deb/rpm maintainer scripts, which
//!    each format declares in its own module.
//! 7. **stage** ([`stage`]) — [`stage::node_files`] is the one list of what
//!    a node gets, and [`stage::contents`] the one place that says what
//!    fills each file (bytes known, or only the run's to make, and why); a
//!    node's contents are normalised once (paths, parents, modes, owners,
//!    order) into a [`stage::NodeTree`].
//! 8. **package** ([`package`]) — serialise a tree into each requested
//!    format: the `.tar.gz` bundle, `.deb`, `.rpm`, each one module behind
//!    [`package::Packager`].
//! 9. **record** ([`output`]) — `manifest.json` (every node's files,
//!    releases, artifacts, retired nodes) and `SHA256SUMS`.
//! 10. **claim** ([`outdir`]) — the output directory is claimed, private,
//!     and cleaned only of what a run recorded.
//! 11. **membership** ([`membership`]) — how each node's member comes up:
//!     it bootstraps the cluster with the others, keeps the bootstrap its
//!     package was built with, or joins as a learner; and the steps that
//!     change a running cluster's membership.
//! 12. **plan** ([`plan`]) — one [`plan::Run`] gathers what a run reads,
//!     once: the config, the templates, the output directory, the
//!     [`clock`], and the previous run's manifest (an upgrade etcd does not
//!     allow is refused there). From it and the PKI decisions: per node
//!     added, changed or unchanged, which files change and why, the release
//!     that results, the artifact names, what is removed. Reads, never
//!     writes; `etcdpack plan` prints it.
//! 13. **execute** ([`execute`]) — carry out a plan: PKI, trees, artifacts,
//!     removals, and last the record. It re-derives no path, name or
//!     contents: it makes only what the plan left to the run (certificates
//!     issued, the release's programs) and takes the rest as planned.
//! 14. **finished run** ([`publish`], [`verify`], [`status`]) — what takes a
//!     finished output directory. [`publish`] puts its `.deb` and `.rpm`
//!     packages in a signed apt and a signed dnf repository, both one
//!     [`publish::repository::Repository`]: what the repository lists now
//!     verified with the signing key before anything is written, the
//!     repository a tree of plain files it owns ([`publish::tree`]),
//!     incrementally and consistently for readers whenever it is killed,
//!     refusing packages that hold a key in clear ([`package::scan`]);
//!     [`publish::sign`] is the OpenPGP signing, in process. [`verify`]
//!     re-checks the directory without trusting the run that wrote it;
//!     [`status`] lists its certificates, soonest expiry first.
//! 15. **command line** ([`cli`]) — the commands, their flags and exit
//!     codes.
//! 16. **commands** ([`app`]) — runs a parsed command line: each command
//!     walks the stages it needs.
//!
//! Everything is written through [`fsutil::write_atomic`]: a killed run
//! never leaves a half-written file under its final name, and `.incomplete`
//! marks a run that has not finished.

pub mod app;
pub mod cli;
pub mod clock;
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
