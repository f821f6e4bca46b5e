//! Stage 3b, **fetch** (interface; implementation lands separately).
#![allow(unused_variables)]

use std::path::PathBuf;
use std::time::Duration;

use crate::report::Reporter;

pub struct FetchOptions {
    pub cache_dir: PathBuf,
    pub mirror: Option<String>,
    pub local_tarball: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub retries: u32,
    pub max_bytes: u64,
}

impl FetchOptions {
    pub fn from_args(args: &crate::cli::SourceArgs) -> anyhow::Result<Self> {
        anyhow::bail!("fetch not implemented yet")
    }
}

pub fn ensure_release(
    etcd: &crate::config::Etcd,
    opts: &FetchOptions,
    reporter: &Reporter,
) -> anyhow::Result<PathBuf> {
    anyhow::bail!("fetch not implemented yet")
}
