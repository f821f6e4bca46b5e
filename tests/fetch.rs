//! `fetch::ensure_release` against a local server that fails in every way a
//! real mirror or network can, checking that the cache never holds a file
//! that was not verified and that a good run always recovers; then the same
//! through the built binary (`etcdpack fetch` and `gen`), for what a user
//! sees: exit code, message, cache and output directory.
//!
//! - [`faults`]: every fault as one table of cases;
//! - [`cache`]: what enters the cache, and when it is used instead of the network;
//! - [`standin`]: the stand-in release served here is faithful to the official one;
//! - [`through_the_cli`]: a bad checksum and a 404 as a user of `fetch` and `gen` sees them;
//! - [`https`]: https redirects, followed to https and refused to http.

mod support;

#[path = "fetch/cache.rs"]
mod cache;
#[path = "fetch/faults.rs"]
mod faults;
#[path = "fetch/https.rs"]
mod https;
#[path = "fetch/standin.rs"]
mod standin;
#[path = "fetch/through_the_cli.rs"]
mod through_the_cli;
