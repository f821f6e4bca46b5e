//! The .rpm's payload: the `newc` cpio archive the `rpm` crate writes,
//! recompressed by us so that large files are shared gzip members.
//!
//! The crate compresses its payload itself, as one stream, so every node's
//! .rpm would compress the binaries again. Instead the crate builds the
//! package uncompressed, with each large file as an empty placeholder;
//! [`recompress`] walks that archive, gives each placeholder its real size
//! and data (the large files first: rpm finds each entry by its name, and
//! every node's payload then starts with the same bytes), and writes the
//! result as a multi-member gzip stream whose large members come from
//! [`Shared`] (compressed once per run). rpm, rpm2cpio and
//! dnf read on through gzip members (rpmio's gzdio uses zlib's `gzread`).
//! The header is then corrected to match (see `rpm.rs`).
//!
//! `newc`: a 110-byte ASCII header (`070701` and 13 eight-digit hex
//! fields), the name with its NUL, padding to 4 bytes, the data, padding to
//! 4 bytes; the archive ends with an entry named `TRAILER!!!`.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use anyhow::{Context, Result, bail};

use super::archive::{Chunks, DataSink, GzMembers, MemoSha256, Shared, pad};
use crate::model::Blob;

const MAGIC: &[u8] = b"070701";
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";

/// One entry's header fields that matter here.
struct Header {
    mode: u32,
    filesize: usize,
    namesize: usize,
}

fn field(h: &[u8], i: usize) -> Result<u32> {
    let s = std::str::from_utf8(&h[6 + 8 * i..14 + 8 * i]).context("corrupt cpio header")?;
    u32::from_str_radix(s, 16).context("corrupt cpio header")
}

fn header(h: &[u8]) -> Result<Header> {
    if h.len() < HEADER_LEN || &h[..6] != MAGIC {
        bail!("not a newc cpio archive");
    }
    Ok(Header {
        mode: field(h, 1)?,
        filesize: field(h, 6)? as usize,
        namesize: field(h, 11)? as usize,
    })
}

/// An entry of an archive, borrowed from it.
struct Raw<'a> {
    /// The header and the name with its padding.
    head: &'a [u8],
    /// The path on the node: the archive's `./opt/…` without its dot.
    path: String,
    mode: u32,
    data: &'a [u8],
    /// The whole entry, padding included.
    len: usize,
}

fn entries(archive: &[u8]) -> impl Iterator<Item = Result<Raw<'_>>> {
    let mut at = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let one = || -> Result<Raw<'_>> {
            let rest = &archive[at..];
            let h = header(rest)?;
            let name_end = HEADER_LEN + h.namesize;
            let data_at = name_end + pad(name_end, 4);
            let end = data_at + h.filesize;
            if h.namesize == 0 || rest.len() < end {
                bail!("truncated cpio archive");
            }
            let name = std::str::from_utf8(&rest[HEADER_LEN..name_end - 1])
                .context("a cpio name is not UTF-8")?;
            Ok(Raw {
                head: &rest[..data_at],
                path: name.trim_start_matches('.').to_owned(),
                mode: h.mode,
                data: &rest[data_at..end],
                len: (end + pad(end, 4)).min(rest.len()),
            })
        };
        match one() {
            Ok(e) if e.path == TRAILER => {
                done = true;
                None
            }
            Ok(e) => {
                at += e.len;
                Some(Ok(e))
            }
            Err(e) => {
                done = true;
                Some(Err(e))
            }
        }
    })
}

/// The payload for the package: compressed, with its SHA-256 before
/// compression (the header's `PAYLOADSHA256ALT`).
pub struct Payload {
    pub compressed: Chunks,
    pub raw_sha256: String,
    /// The length of the cpio archive, uncompressed (the signature
    /// header's `PAYLOADSIZE`, which rpm2cpio checks what it copies against).
    pub raw_len: u64,
}

/// `archive` (as the crate wrote it, uncompressed) with every file in
/// `large` put in its placeholder's place, as a multi-member gzip stream.
/// Each placeholder must be there, empty.
pub fn recompress(
    archive: &[u8],
    large: &BTreeMap<String, Blob>,
    shared: Option<&Shared>,
) -> Result<Payload> {
    let mut raw = MemoSha256::new(shared);
    let mut out = GzMembers::new(Chunks::new(), shared);
    let mut filled = 0;
    let mut consumed = 0;
    // Every placeholder is empty, so its data takes no room (nor padding).
    let mut raw_len = archive.len() as u64;
    // The large files first, then the rest in the crate's order: rpm finds
    // each entry of the payload by its name, in any order, and every
    // node's payload then starts with the same bytes, the binaries, so
    // their digests are computed once per run (see `MemoSha256`), not
    // once per package after the node's own files.
    let mut rest = Vec::new();
    for e in entries(archive) {
        let e = e?;
        consumed += e.len;
        let Some(blob) = large.get(&e.path) else {
            rest.push(consumed - e.len..consumed);
            continue;
        };
        if !e.data.is_empty() {
            bail!("internal: the placeholder for {} is not empty", e.path);
        }
        let size = u32::try_from(blob.len())
            .with_context(|| format!("{} is too large for a cpio archive", e.path))?;
        let mut head = e.head.to_vec();
        head[54..62].copy_from_slice(format!("{size:08X}").as_bytes());
        raw.update(&head);
        out.write_all(&head)?;
        raw.shared(blob.id(), blob);
        raw.update(&[0u8; 4][..pad(blob.len(), 4)]);
        raw_len += (blob.len() + pad(blob.len(), 4)) as u64;
        out.data(blob, 4)?;
        filled += 1;
    }
    for r in rest {
        raw.update(&archive[r.clone()]);
        out.write_all(&archive[r])?;
    }
    if filled != large.len() {
        bail!("internal: the .rpm payload lacks a placeholder for a large file");
    }
    // The trailer and its padding.
    let rest = &archive[consumed..];
    raw.update(rest);
    out.write_all(rest)?;
    Ok(Payload {
        compressed: out.finish()?,
        raw_sha256: raw.finish(),
        raw_len,
    })
}

/// Every entry of a (multi-member) gzip-compressed payload: path on the
/// node, mode with its file type bits, data.
pub fn read(payload: &[u8]) -> Result<Vec<(String, u32, Vec<u8>)>> {
    let mut archive = Vec::new();
    flate2::read::MultiGzDecoder::new(payload)
        .read_to_end(&mut archive)
        .context("the .rpm payload is not gzip")?;
    entries(&archive)
        .map(|e| e.map(|e| (e.path, e.mode, e.data.to_vec())))
        .collect()
}
