//! The floor of `etcdpack gen`: the work no implementation of it can skip,
//! done as fast as this machine does it, with the crates etcdpack uses.
//!
//!     floor --keys N --bytes B --streams S
//!
//! 1. generates N RSA-2048 keys (the CA's and one per node) as etcdpack does
//!    (`src/pki/x509.rs`, `generate_key`), in parallel on every core;
//! 2. then hashes B bytes with SHA-256 as S streams (one per artifact, B/S
//!    bytes each), in parallel on every core, from a buffer in memory: no
//!    file is read or written, and the content does not matter.
//!
//! Prints one line of JSON: the parameters, the thread count, and the time of
//! each part and their sum, in seconds.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use rayon::prelude::*;
use rcgen::{KeyPair, PKCS_RSA_SHA256, RsaKeySize};
use sha2::{Digest, Sha256};

/// The buffer every stream hashes over and over: small enough to stay in
/// the cache, large enough that a call into the hasher costs nothing.
const BUFFER: usize = 1 << 20;

struct Args {
    keys: u64,
    bytes: u64,
    streams: u64,
}

fn parse() -> Result<Args, String> {
    let mut keys = None;
    let mut bytes = None;
    let mut streams = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--keys" => &mut keys,
            "--bytes" => &mut bytes,
            "--streams" => &mut streams,
            "-h" | "--help" => {
                return Err("usage: floor --keys N --bytes B --streams S".into());
            }
            _ => return Err(format!("unknown argument {flag:?} (see --help)")),
        };
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a number"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag} needs a number, not {value:?}"))?;
        *slot = Some(n);
    }
    let args = Args {
        keys: keys.ok_or("--keys is required")?,
        bytes: bytes.ok_or("--bytes is required")?,
        streams: streams.ok_or("--streams is required")?,
    };
    if args.streams == 0 && args.bytes > 0 {
        return Err("--streams must be at least 1 when there are bytes to hash".into());
    }
    Ok(args)
}

/// N RSA-2048 keys, as `generate_key(Algorithm::Rsa2048)` makes them.
fn keygen(n: u64) -> Result<(), String> {
    (0..n).into_par_iter().try_for_each(|_| {
        let key = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)
            .map_err(|e| format!("cannot generate an RSA-2048 key: {e}"))?;
        black_box(key);
        Ok(())
    })
}

/// SHA-256 over `bytes` bytes as `streams` independent streams.
fn hash(bytes: u64, streams: u64) {
    if streams == 0 {
        return;
    }
    let buffer: Vec<u8> = (0..BUFFER).map(|i| (i * 31 + 7) as u8).collect();
    let (each, extra) = (bytes / streams, bytes % streams);
    (0..streams).into_par_iter().for_each(|i| {
        let mut left = each + u64::from(i < extra);
        let mut hasher = Sha256::new();
        while left > 0 {
            let n = left.min(BUFFER as u64) as usize;
            hasher.update(&buffer[..n]);
            left -= n as u64;
        }
        black_box(hasher.finalize());
    });
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("floor: {e}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    if let Err(e) = keygen(args.keys) {
        eprintln!("floor: {e}");
        return ExitCode::FAILURE;
    }
    let keygen_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    hash(args.bytes, args.streams);
    let hash_s = start.elapsed().as_secs_f64();
    println!(
        "{{\"keys\": {}, \"bytes\": {}, \"streams\": {}, \"threads\": {}, \
         \"keygen_s\": {keygen_s:.6}, \"hash_s\": {hash_s:.6}, \"total_s\": {:.6}}}",
        args.keys,
        args.bytes,
        args.streams,
        rayon::current_num_threads(),
        keygen_s + hash_s,
    );
    ExitCode::SUCCESS
}
