//! The generated packages under real systemd: each node of a three-node cluster installs its own
//! .deb (with apt) or .rpm (with rpm) into a Debian root booted with systemd as PID 1
//! (tests/e2e), and the package's own scripts enable and start etcd. Nobody starts etcd by hand.
//!
//! One test crate of several modules, so that the scenarios run at once (each test binary
//! runs after the previous one; the tests of one binary run in parallel):
//!
//! - [`cluster`]: the three booted nodes with their packages, and the checks that they formed;
//! - [`deb_lifecycle`] (127.0.3.1-3): the cluster forms with its certificate check timer
//!   running, survives a stopped member and a powered-off node, takes an upgrade installed on
//!   every node at the same moment (which also turns backups on) without ever losing quorum,
//!   and a renewal installed while a member is down, whose restarts wait until it is back;
//! - [`strangers`] (127.0.4.1-3, intruder on 127.0.4.9), installed with `apt-get install` from
//!   the signed repository `etcdpack publish` wrote of sealed packages (each node's key sealed to
//!   its machine's SSH host key), served over HTTP: clients and peers without a certificate of
//!   the cluster's CA are refused; a neighbour's package does not install; the CA key is on no
//!   node, nor a node's key on another; keys and the process belong to the service user;
//! - [`restarts`]: the all-at-once upgrade both of those run, with a writer and a sampler of
//!   every member's health;
//! - [`rotation`]: the CA rotated in three phases on a running cluster, each rolled out one
//!   node at a time (run on 3.4 by [`deb_lifecycle`] and on 3.5 by [`upgrade`]);
//! - [`rpm_broken_config`] (127.0.5.1-3): the same from the .rpm packages, upgraded on every
//!   node at once with `rpm -U`, and the recipe's inline comment in the EnvironmentFile makes the
//!   unit fail visibly;
//! - [`upgrade`] (127.0.6.1-3): a .deb cluster of 3.4 upgraded to 3.5 (trixie's etcd in the
//!   official layout) one node at a time while a writer writes; a 3.6 package's preinst then
//!   refuses to replace a member on that 3.5, in the journal too.
//!
//! Each test uses its own addresses (tests/cluster.rs has 127.0.0.1-3), so all of them can run
//! at once. Every node is torn down at the end, also on failure (`Drop for Node`).

mod support;

#[path = "e2e/mod.rs"]
mod e2e;

#[path = "systemd/access.rs"]
mod access;
#[path = "systemd/cluster.rs"]
mod cluster;
#[path = "systemd/deb_lifecycle.rs"]
mod deb_lifecycle;
#[path = "systemd/defrag.rs"]
mod defrag;
#[path = "systemd/prometheus.rs"]
mod prometheus;
#[path = "systemd/restarts.rs"]
mod restarts;
#[path = "systemd/rotation.rs"]
mod rotation;
#[path = "systemd/rpm_broken_config.rs"]
mod rpm_broken_config;
#[path = "systemd/strangers.rs"]
mod strangers;
#[path = "systemd/upgrade.rs"]
mod upgrade;
