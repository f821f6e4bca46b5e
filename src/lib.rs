//! etcdpack turns one YAML description of an etcd cluster into everything each
//! machine needs: the verified etcd release, a CA and per-node TLS certificates,
//! a rendered `etcd.conf` and `etcd.service`, and one installable artifact per node.
//!
//! # The pipeline
//!
//! Every `gen` run walks these stages in order; each has its own module.
//!
//! 1. **load** ([`config`]) — parse `cluster.yaml` strictly (unknown keys are
//!    errors with line and column) and validate it into a [`config::Cluster`]
//!    with every default applied.
//! 2. **plan** ([`plan`]) — a pure function from the cluster to the list of
//!    artifacts, their inputs and output paths. `etcdpack plan` prints it.
//! 3. **fetch/verify** ([`release`], [`fetch`], [`extract`]) — download the
//!    official release (or take a local tarball), check its SHA-256 against the
//!    pinned table or an explicit hash, and pull out `etcd` and `etcdctl` only.
//! 4. **pki** ([`pki`]) — create or reuse the CA and the per-node and client
//!    certificates under `OUT/pki`. The CA key never leaves that directory.
//! 5. **render** ([`render`]) — `etcd.conf`, `etcd.service`, the etcdctl
//!    profile, the bundle's installer and the deb/rpm maintainer scripts from
//!    the templates in `templates/`; `etcd.conf` is checked by systemd's
//!    EnvironmentFile rules ([`envfile`]).
//! 6. **stage** ([`stage`]) — normalise each node's contents once (paths,
//!    parents, modes, owners, order) and write `OUT/nodes/<name>/`.
//! 7. **package** ([`package`]) — serialise each node's contents into each
//!    requested [`package::Format`]: the `.tar.gz` bundle, `.deb`, `.rpm`.
//! 8. **publish** ([`output`]) — `SHA256SUMS` and `manifest.json`, written last,
//!    so that an interrupted run is recognisable ([`verify`] checks it).
//!
//! Before anything is written, [`outdir`] claims the output directory: a
//! stranger's non-empty directory is refused, every directory is made 0700
//! and every package 0600, and only what an earlier run recorded is ever
//! removed. Everything is written through [`fsutil::write_atomic`]: a killed
//! run never leaves a half-written file under its final name. [`app`] wires the stages
//! to the commands; [`report`] is the one writer of stderr.

pub mod app;
pub mod cli;
pub mod config;
pub mod envfile;
pub mod execute;
pub mod extract;
pub mod fetch;
pub mod fsutil;
pub mod model;
pub mod outdir;
pub mod output;
pub mod package;
pub mod pki;
pub mod plan;
pub mod release;
pub mod render;
pub mod report;
pub mod stage;
pub mod verify;
