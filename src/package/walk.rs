//! Reading the entries of a tar or `newc` cpio stream as it is inflated,
//! piece by piece, without holding it: what `verify` needs of a package's
//! files (each entry's path and mode, and the text of the small ones, where
//! scripts are) in the same pass that scans every byte for keys.
//!
//! A walker may let bytes pass unseen ([`Tap::can_skip`]) only while it is
//! inside the data of a large entry, whose bytes it does not keep: the
//! shared members holding the binaries (see `scan.rs`) are skipped that way
//! and never inflated again. Anywhere else — a header, a name, a small
//! file's data — it must see every byte, and the member is inflated.

use anyhow::{Context, Result, bail};

use super::archive::{SHARED_MIN, pad};

/// A reader of a decompressed stream.
pub trait Tap {
    fn push(&mut self, data: &[u8]) -> Result<()>;
    /// Whether the next `len` bytes may pass without being seen.
    fn can_skip(&self, len: u64) -> bool;
    /// `len` bytes passed unseen; only after [`Tap::can_skip`] said yes.
    fn skip(&mut self, len: u64);
}

/// A stream that is not an archive: nothing to read but the bytes, which
/// the key scan sees anyway.
pub struct Plain;

impl Tap for Plain {
    fn push(&mut self, _: &[u8]) -> Result<()> {
        Ok(())
    }
    fn can_skip(&self, _: u64) -> bool {
        true
    }
    fn skip(&mut self, _: u64) {}
}

/// An entry of an archive as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// As the archive names it (`./opt/…`, `top/root/opt/…`).
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// A regular file's contents, when smaller than [`SHARED_MIN`].
    pub text: Option<Vec<u8>>,
}

/// Where a walker is in its archive.
enum At {
    /// Gathering a header.
    Header,
    /// In an entry's data: `left` bytes of it, then `pad` bytes.
    Data { left: u64, pad: u64, keep: Keep },
    /// Past the end of the archive: whatever follows is not read.
    End,
}

impl At {
    /// Whether `len` bytes may pass unseen: past the end, or within the
    /// data (and padding) of an entry whose bytes are not kept.
    fn can_skip(&self, len: u64) -> bool {
        match *self {
            At::End => true,
            At::Data {
                left,
                pad,
                keep: Keep::No,
            } => left + pad >= len,
            _ => false,
        }
    }

    /// Up to `len` bytes of an entry's data and padding taken: how many,
    /// and how many of them are its data.
    fn take(&mut self, len: u64) -> (usize, usize) {
        let At::Data { left, pad, .. } = self else {
            return (0, 0);
        };
        let n = (*left + *pad).min(len);
        let own = (*left).min(n);
        *left -= own;
        *pad -= n - own;
        (n as usize, own as usize)
    }
}

/// `bytes` of the last entry listed, whose text is kept.
fn add_text(entries: &mut [Listed], bytes: &[u8]) {
    let last = entries.last_mut().and_then(|e| e.text.as_mut());
    last.expect("a text entry").extend_from_slice(bytes);
}

/// What happens to an entry's data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Kept as the text of the last entry listed.
    Text,
    /// Kept as the name of the entry after (a GNU long name, a pax header).
    Name,
    Pax,
    No,
}

/// The entries of a tar stream (ustar, GNU long names, pax paths).
pub struct TarWalk {
    at: At,
    buf: Vec<u8>,
    /// Bytes read so far, for the messages.
    offset: u64,
    next_name: Option<Vec<u8>>,
    pub entries: Vec<Listed>,
}

impl Default for TarWalk {
    fn default() -> Self {
        TarWalk {
            at: At::Header,
            buf: Vec::new(),
            offset: 0,
            next_name: None,
            entries: Vec::new(),
        }
    }
}

const BLOCK: usize = 512;

impl TarWalk {
    pub fn new() -> Self {
        Self::default()
    }

    /// The header block in `buf`, read.
    fn header(&mut self) -> Result<()> {
        let block = std::mem::take(&mut self.buf);
        let at = self.offset - BLOCK as u64;
        if block.iter().all(|&b| b == 0) {
            self.at = At::End;
            return Ok(());
        }
        let h = tar::Header::from_byte_slice(&block);
        let sum: u32 = block
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(b)
                }
            })
            .sum();
        if h.cksum().ok() != Some(sum) {
            bail!("corrupt tar header at byte {at} (its checksum is wrong)");
        }
        let size = h
            .entry_size()
            .with_context(|| format!("corrupt tar header at byte {at}"))?;
        let kind = h.entry_type();
        let keep = match kind {
            tar::EntryType::GNULongName => Keep::Name,
            tar::EntryType::XHeader => Keep::Pax,
            tar::EntryType::GNULongLink | tar::EntryType::XGlobalHeader => Keep::No,
            _ => {
                let path = match self.next_name.take() {
                    Some(name) => name,
                    None => h.path_bytes().into_owned(),
                };
                let path = String::from_utf8_lossy(&path).into_owned();
                let mode = h
                    .mode()
                    .with_context(|| format!("{path}: corrupt tar header"))?;
                let small = kind.is_file() && size < SHARED_MIN as u64;
                self.entries.push(Listed {
                    path,
                    mode: mode & 0o7777,
                    text: small.then(Vec::new),
                });
                if small { Keep::Text } else { Keep::No }
            }
        };
        if matches!(keep, Keep::Name | Keep::Pax) && size >= SHARED_MIN as u64 {
            bail!("a tar header of {size} bytes at byte {at}");
        }
        self.at = At::Data {
            left: size,
            pad: pad(size as usize, BLOCK) as u64,
            keep,
        };
        self.end_of_data();
        Ok(())
    }

    /// After an entry's data: the next header.
    fn end_of_data(&mut self) {
        let At::Data {
            left: 0,
            pad: 0,
            keep,
        } = self.at
        else {
            return;
        };
        let data = std::mem::take(&mut self.buf);
        match keep {
            Keep::Name => {
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                self.next_name = Some(data[..end].to_vec());
            }
            Keep::Pax => {
                if let Some(path) = pax_path(&data) {
                    self.next_name = Some(path);
                }
            }
            Keep::Text | Keep::No => {}
        }
        self.at = At::Header;
    }
}

/// The `path` record of a pax extended header.
fn pax_path(data: &[u8]) -> Option<Vec<u8>> {
    let mut path = None;
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
        let record = rest.get(space + 1..len)?;
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(value) = record.strip_prefix(b"path=") {
            path = Some(value.to_vec());
        }
        rest = &rest[len..];
    }
    path
}

impl Tap for TarWalk {
    fn push(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            match &mut self.at {
                At::End => return Ok(()),
                At::Header => {
                    let n = (BLOCK - self.buf.len()).min(data.len());
                    self.buf.extend_from_slice(&data[..n]);
                    self.offset += n as u64;
                    data = &data[n..];
                    if self.buf.len() == BLOCK {
                        self.header()?;
                    }
                }
                At::Data { keep, .. } => {
                    let keep = *keep;
                    let (n, own) = self.at.take(data.len() as u64);
                    match keep {
                        Keep::Text => add_text(&mut self.entries, &data[..own]),
                        Keep::Name | Keep::Pax => self.buf.extend_from_slice(&data[..own]),
                        Keep::No => {}
                    }
                    self.offset += n as u64;
                    data = &data[n..];
                    self.end_of_data();
                }
            }
        }
        Ok(())
    }

    fn can_skip(&self, len: u64) -> bool {
        self.at.can_skip(len)
    }

    fn skip(&mut self, len: u64) {
        let (n, _) = self.at.take(len);
        self.offset += n as u64;
        self.end_of_data();
    }
}

/// The entries of a `newc` cpio stream (an .rpm's payload).
pub struct CpioWalk {
    at: At,
    buf: Vec<u8>,
    /// The length of the header being gathered: 110 bytes, then the name
    /// and its padding too.
    want: usize,
    offset: u64,
    pub entries: Vec<Listed>,
}

const CPIO_HEADER: usize = 110;

impl Default for CpioWalk {
    fn default() -> Self {
        CpioWalk {
            at: At::Header,
            buf: Vec::new(),
            want: CPIO_HEADER,
            offset: 0,
            entries: Vec::new(),
        }
    }
}

impl CpioWalk {
    pub fn new() -> Self {
        Self::default()
    }

    fn field(&self, i: usize) -> Result<u64> {
        let s = std::str::from_utf8(&self.buf[6 + 8 * i..14 + 8 * i]).ok();
        s.and_then(|s| u64::from_str_radix(s, 16).ok())
            .with_context(|| format!("corrupt cpio header at byte {}", self.offset))
    }

    /// The header in `buf` complete up to `want`: on to the name, or to the data.
    fn header(&mut self) -> Result<()> {
        if &self.buf[..6] != b"070701" {
            bail!("not a newc cpio archive at byte {}", self.offset);
        }
        let namesize = self.field(11)? as usize;
        if namesize == 0 || namesize > 4096 {
            bail!("corrupt cpio header at byte {}", self.offset);
        }
        let whole = CPIO_HEADER + namesize;
        let whole = whole + pad(whole, 4);
        if self.want < whole {
            self.want = whole;
            return Ok(());
        }
        let mode = self.field(1)? as u32;
        let size = self.field(6)?;
        let name = &self.buf[CPIO_HEADER..CPIO_HEADER + namesize - 1];
        let path = String::from_utf8_lossy(name).into_owned();
        self.offset += whole as u64;
        self.buf.clear();
        self.want = CPIO_HEADER;
        if path == "TRAILER!!!" {
            self.at = At::End;
            return Ok(());
        }
        let small = mode & 0o170000 == 0o100000 && size < SHARED_MIN as u64;
        self.entries.push(Listed {
            path,
            mode: mode & 0o7777,
            text: small.then(Vec::new),
        });
        self.at = At::Data {
            left: size,
            pad: pad(size as usize, 4) as u64,
            keep: if small { Keep::Text } else { Keep::No },
        };
        self.end_of_data();
        Ok(())
    }

    fn end_of_data(&mut self) {
        if let At::Data {
            left: 0, pad: 0, ..
        } = self.at
        {
            self.at = At::Header;
        }
    }
}

impl Tap for CpioWalk {
    fn push(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            match &mut self.at {
                At::End => return Ok(()),
                At::Header => {
                    let n = (self.want - self.buf.len()).min(data.len());
                    self.buf.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if self.buf.len() == self.want {
                        self.header()?;
                    }
                }
                At::Data { keep, .. } => {
                    let keep = *keep;
                    let (n, own) = self.at.take(data.len() as u64);
                    if keep == Keep::Text {
                        add_text(&mut self.entries, &data[..own]);
                    }
                    self.offset += n as u64;
                    data = &data[n..];
                    self.end_of_data();
                }
            }
        }
        Ok(())
    }

    fn can_skip(&self, len: u64) -> bool {
        self.at.can_skip(len)
    }

    fn skip(&mut self, len: u64) {
        let (n, _) = self.at.take(len);
        self.offset += n as u64;
        self.end_of_data();
    }
}

impl TarWalk {
    /// Whether the stream ended between entries.
    pub fn complete(&self) -> bool {
        matches!(self.at, At::End) || (matches!(self.at, At::Header) && self.buf.is_empty())
    }
}

impl CpioWalk {
    /// Whether the stream reached its trailer.
    pub fn complete(&self) -> bool {
        matches!(self.at, At::End)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::archive::TarWriter;

    /// Fed in pieces of every size, the walker lists what tar wrote.
    #[test]
    fn a_tar_stream_read_in_pieces_lists_every_entry() {
        let long = format!("./{}/server-key.pem", "d".repeat(120));
        let mut t = TarWriter::new(Vec::new(), 1_600_000_000);
        t.dir("./opt/etcd", 0o755).unwrap();
        t.file("./opt/etcd/cfg/etcd.conf", 0o644, b"ETCD_NAME=a\n")
            .unwrap();
        t.file(&long, 0o600, b"key").unwrap();
        t.file("./big", 0o755, &vec![7u8; SHARED_MIN]).unwrap();
        let bytes = t.finish().unwrap();
        for piece in [1, 100, 511, 512, 4096, bytes.len()] {
            let mut w = TarWalk::new();
            for c in bytes.chunks(piece) {
                w.push(c).unwrap();
            }
            assert!(w.complete());
            let got: Vec<_> = w
                .entries
                .iter()
                .map(|e| (e.path.as_str(), e.mode, e.text.as_deref()))
                .collect();
            assert_eq!(
                got,
                [
                    // The tar crate drops a leading `./`, but from a long name.
                    ("opt/etcd/", 0o755, None),
                    ("opt/etcd/cfg/etcd.conf", 0o644, Some(&b"ETCD_NAME=a\n"[..])),
                    (long.as_str(), 0o600, Some(&b"key"[..])),
                    ("big", 0o755, None),
                ],
                "pieces of {piece}"
            );
        }
        // A broken checksum is an error, never a wrong listing.
        let mut bad = bytes.clone();
        bad[512 + 100] ^= 1;
        assert!(TarWalk::new().push(&bad).is_err());
        // Truncated inside an entry.
        let mut w = TarWalk::new();
        w.push(&bytes[..512 + 100]).unwrap();
        assert!(!w.complete());
    }

    #[test]
    fn a_large_entry_may_be_skipped_and_nothing_else() {
        let mut t = TarWriter::new(Vec::new(), 0);
        t.file("./small", 0o644, b"s").unwrap();
        t.file("./big", 0o755, &vec![1u8; SHARED_MIN + 10]).unwrap();
        t.file("./after", 0o600, b"a").unwrap();
        let bytes = t.finish().unwrap();
        let mut w = TarWalk::new();
        assert!(!w.can_skip(1), "not inside a header");
        let big_data = 512 * 3;
        w.push(&bytes[..big_data]).unwrap();
        let len = (SHARED_MIN + 10) as u64;
        assert!(!w.can_skip(len + 512), "past the entry's padding");
        assert!(w.can_skip(len));
        w.skip(len);
        w.push(&bytes[big_data + len as usize..]).unwrap();
        assert!(w.complete());
        assert_eq!(w.entries[2].path, "after");
        assert_eq!(w.entries[2].text.as_deref(), Some(&b"a"[..]));
    }

    #[test]
    fn a_cpio_stream_read_in_pieces_lists_every_entry() {
        let entry = |name: &str, mode: u32, data: &[u8]| {
            let mut h = format!("070701{:08x}{mode:08x}", 1);
            for v in [0, 0, 1, 0, data.len(), 0, 0, 0, 0, name.len() + 1, 0] {
                h.push_str(&format!("{v:08x}"));
            }
            let mut out = h.into_bytes();
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            out.resize(out.len() + pad(out.len(), 4), 0);
            out.extend_from_slice(data);
            out.resize(out.len() + pad(out.len(), 4), 0);
            out
        };
        let bytes = [
            entry("./opt/etcd/ssl", 0o040755, b""),
            entry("./opt/etcd/ssl/server-key.pem", 0o100600, b"key!!"),
            entry("TRAILER!!!", 0, b""),
        ]
        .concat();
        for piece in [1, 3, 110, bytes.len()] {
            let mut w = CpioWalk::new();
            for c in bytes.chunks(piece) {
                w.push(c).unwrap();
            }
            assert!(w.complete());
            assert_eq!(w.entries.len(), 2);
            assert_eq!(w.entries[1].path, "./opt/etcd/ssl/server-key.pem");
            assert_eq!(w.entries[1].mode, 0o600);
            assert_eq!(w.entries[1].text.as_deref(), Some(&b"key!!"[..]));
        }
        assert!(CpioWalk::new().push(&[b'x'; 200]).is_err());
    }
}
