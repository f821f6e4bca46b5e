//! A file's data, shared by every node that has it, with its digests
//! computed once.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use md5::Md5;
use sha2::{Digest, Sha256};

/// The bytes of one file. Cloning shares them: the ~38 MB of binaries exist
/// once in memory however many nodes hold them, and their SHA-256 (the
/// manifest, the tree digest, the .rpm header) and MD5 (the .deb's
/// `md5sums`) are computed on first use, once per run, not once per node
/// and format.
#[derive(Clone)]
pub struct Blob(Arc<Inner>);

struct Inner {
    data: Box<[u8]>,
    sha256: OnceLock<String>,
    md5: OnceLock<String>,
}

impl Blob {
    pub fn new(data: impl Into<Box<[u8]>>) -> Self {
        Blob(Arc::new(Inner {
            data: data.into(),
            sha256: OnceLock::new(),
            md5: OnceLock::new(),
        }))
    }

    /// SHA-256 of the data, lowercase hex.
    pub fn sha256(&self) -> &str {
        self.0
            .sha256
            .get_or_init(|| hex::encode(Sha256::digest(&self.0.data)))
    }

    /// MD5 of the data, lowercase hex (what `md5sums` and dpkg record).
    pub fn md5(&self) -> &str {
        self.0
            .md5
            .get_or_init(|| hex::encode(Md5::digest(&self.0.data)))
    }

    /// This blob's identity, the same for every clone while one lives.
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// Whether `other` is this very blob (not merely equal bytes).
    pub fn same(&self, other: &Blob) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Deref for Blob {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0.data
    }
}

impl AsRef<[u8]> for Blob {
    fn as_ref(&self) -> &[u8] {
        &self.0.data
    }
}

impl PartialEq for Blob {
    fn eq(&self, other: &Self) -> bool {
        self.same(other) || self.0.data == other.0.data
    }
}

impl Eq for Blob {}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.data.len())
    }
}

impl From<&[u8]> for Blob {
    fn from(d: &[u8]) -> Self {
        Blob::new(d)
    }
}

impl From<Vec<u8>> for Blob {
    fn from(d: Vec<u8>) -> Self {
        Blob::new(d)
    }
}

impl From<&str> for Blob {
    fn from(s: &str) -> Self {
        Blob::new(s.as_bytes())
    }
}

impl From<String> for Blob {
    fn from(s: String) -> Self {
        Blob::new(s.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_the_datas_and_clones_share() {
        let b = Blob::from("abc");
        assert_eq!(
            b.sha256(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(b.md5(), "900150983cd24fb0d6963f7d28e17f72");
        let c = b.clone();
        assert!(c.same(&b));
        assert!(!Blob::from("abc").same(&b));
        assert_eq!(Blob::from("abc"), b);
        assert_eq!(&*c, b"abc");
    }
}
