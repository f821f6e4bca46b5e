//! The `.tar.gz` bundle: `<package>_<version>_<arch>/install.sh` and the
//! node's tree under `root/`, for machines without dpkg or rpm, and for
//! air-gapped hand installs. `install.sh` places each file with its owner and
//! mode (the archive itself records everything as root).

use std::io::{Read, Write};

use anyhow::{Context, Result};

use super::archive::{self, TarWriter, gzip};
use super::{PackageSpec, ReadEntry};

pub fn top_dir(spec: &PackageSpec) -> String {
    format!(
        "{}_{}_{}",
        spec.id.name,
        spec.id.full_version(),
        spec.id.arch.as_str()
    )
}

pub fn write(spec: &PackageSpec, w: &mut dyn Write) -> Result<()> {
    let top = top_dir(spec);
    let mut t = TarWriter::new(gzip(w), spec.mtime);
    t.dir(&top, 0o755)?;
    let installer = spec
        .scripts
        .get("install.sh")
        .context("internal: no install.sh rendered for the bundle")?;
    t.file(&format!("{top}/install.sh"), 0o755, installer.as_bytes())?;
    t.dir(&format!("{top}/root"), 0o755)?;
    t.tree(&format!("{top}/root"), spec.tree)?;
    t.finish()?
        .finish()
        .context("cannot finish the gzip stream")?;
    Ok(())
}

/// The node entries of a bundle (those under `<top>/root/`), as installed.
pub fn read(bytes: &[u8]) -> Result<Vec<ReadEntry>> {
    archive::read_tar_gz(bytes, |raw| {
        raw.split_once("/root/")
            .map(|(_, rest)| format!("/{}", rest.trim_end_matches('/')))
    })
}

/// The whole decompressed tar stream: every member, inside `root/` or not.
pub fn streams(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut tar)
        .context("not a gzip stream")?;
    Ok(vec![tar])
}
