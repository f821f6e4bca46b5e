//! The built binary against a stand-in release served on 127.0.0.1, checked
//! with real tools: openssl, tar, sha256sum, systemd-analyze, the shells and
//! mandoc.
//!
//! - [`first_steps`]: init, help, plan, and an invalid config;
//! - [`conventions`]: what users of other command-line tools expect:
//!   completions, man pages, defaults, exit codes and `--version`;
//! - [`real_tools`]: one `gen`, checked with the real tools;
//! - [`release_sources`]: an offline tarball, a cache filled by `fetch`, and
//!   a replaced pinned checksum;
//! - [`reruns`]: byte-identical reruns and a raised release;
//! - [`install_sh`]: the bundle's installer (root only);
//! - [`output_directory`]: private modes and removing only what was written.

mod support;

#[path = "cli/conventions.rs"]
mod conventions;
#[path = "cli/first_steps.rs"]
mod first_steps;
#[path = "cli/install_sh.rs"]
mod install_sh;
#[path = "cli/output_directory.rs"]
mod output_directory;
#[path = "cli/real_tools.rs"]
mod real_tools;
#[path = "cli/release_sources.rs"]
mod release_sources;
#[path = "cli/reruns.rs"]
mod reruns;
