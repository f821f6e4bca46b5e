//! Stage 3c, **extract** (interface; implementation lands separately).
#![allow(unused_variables)]

use std::path::Path;
use std::sync::Arc;

pub struct Binaries {
    pub etcd: Arc<[u8]>,
    pub etcdctl: Arc<[u8]>,
}

pub fn read_release(tarball: &Path, etcd: &crate::config::Etcd) -> anyhow::Result<Binaries> {
    anyhow::bail!("extract not implemented yet")
}
