//! The `.tar.gz` bundle: `<package>_<version>_<arch>/install.sh` and the
//! node's tree under `root/`, for machines without dpkg or rpm, and for
//! air-gapped hand installs. `install.sh` places each file with its owner and
//! mode (the archive itself records everything as root).

use std::io::{Read, Write};

use anyhow::{Context, Result};

use super::archive::{self, GzMembers, TarWriter};
use super::{Identity, PackageSpec, Packager, ReadEntry, ScriptInput};
use crate::render::Template;

/// The installer, at the top of the bundle under its template's name.
pub const INSTALL_SH: Template = Template {
    name: "install.sh",
    text: include_str!("../../templates/install.sh"),
};

/// The bundle's rendered scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scripts {
    pub install_sh: String,
}

impl Scripts {
    pub fn render(input: &ScriptInput) -> Result<Self> {
        Ok(Scripts {
            install_sh: input.render(&INSTALL_SH)?,
        })
    }

    /// Each text with its template's name.
    pub fn named(&self) -> [(&'static str, &str); 1] {
        [(INSTALL_SH.name, &self.install_sh)]
    }
}

/// The `.tar.gz` bundle.
pub struct Bundle;

impl Packager for Bundle {
    fn extension(&self) -> &'static str {
        "tar.gz"
    }

    /// `<top dir>.tar.gz`: `etcd-k8s-etcd-1_3.4.16-1_amd64.tar.gz`.
    fn file_name(&self, id: &Identity) -> String {
        format!("{}.{}", top_dir(id), self.extension())
    }

    fn templates(&self) -> &'static [Template] {
        &[INSTALL_SH]
    }

    fn write(&self, spec: &PackageSpec, w: &mut dyn Write) -> Result<()> {
        write(spec, w)
    }

    fn read(&self, bytes: &[u8]) -> Result<Vec<ReadEntry>> {
        read(bytes)
    }

    fn streams(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        streams(bytes)
    }
}

/// The one directory at the top of the archive:
/// `<package>_<version>-<release>_<arch>`.
fn top_dir(id: &Identity) -> String {
    format!("{}_{}_{}", id.name, id.full_version(), id.arch.as_str())
}

fn write(spec: &PackageSpec, w: &mut dyn Write) -> Result<()> {
    let top = top_dir(&spec.id);
    let mut t = TarWriter::new(GzMembers::new(w, spec.shared), spec.mtime);
    t.dir(&top, 0o755)?;
    let installer = &spec.scripts.bundle.install_sh;
    t.file(
        &format!("{top}/{}", INSTALL_SH.name),
        0o755,
        installer.as_bytes(),
    )?;
    t.dir(&format!("{top}/root"), 0o755)?;
    t.tree(&format!("{top}/root"), spec.tree, &[])?;
    t.finish()?
        .finish()
        .context("cannot finish the gzip stream")?;
    Ok(())
}

/// The node entries of a bundle (those under `<top>/root/`), as installed.
fn read(bytes: &[u8]) -> Result<Vec<ReadEntry>> {
    archive::read_tar_gz(bytes, |raw| {
        raw.split_once("/root/")
            .map(|(_, rest)| format!("/{}", rest.trim_end_matches('/')))
    })
}

/// The whole decompressed tar stream: every member, inside `root/` or not.
fn streams(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut tar = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut tar)
        .context("not a gzip stream")?;
    Ok(vec![tar])
}
