//! The release reader on arbitrary bytes. Input that is already gzip goes in
//! as it is; anything else is wrapped in gzip first, so that the fuzzer
//! spends its time on the tar structure (names, links, sizes, duplicates)
//! rather than on rediscovering the gzip header and CRC.

#![no_main]

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;

const STEM: &str = "etcd-v3.4.16-linux-amd64";

fuzz_target!(|data: &[u8]| {
    let wrapped;
    let input = if data.starts_with(&[0x1f, 0x8b]) {
        data
    } else {
        let mut gz = GzEncoder::new(Vec::new(), Compression::none());
        gz.write_all(data).unwrap();
        wrapped = gz.finish().unwrap();
        &wrapped
    };
    match etcdpack::extract::extract(input, STEM) {
        Ok(bins) => {
            let _ = (bins.etcd.len(), bins.etcdctl.len());
        }
        Err(e) => {
            let _ = format!("{e:#}");
        }
    }
});
