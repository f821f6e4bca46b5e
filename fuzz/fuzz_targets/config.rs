//! The config loader on arbitrary text: it may refuse anything, but never
//! panic, hang or overflow the stack, and its error must render (the
//! messages quote the offending line, a classic place for slicing bugs).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match etcdpack::config::parse(Path::new("fuzz.yaml"), text, &Default::default()) {
        Ok(cluster) => {
            let _ = format!("{cluster:?}");
        }
        Err(e) => {
            let _ = format!("{e}\n{e:?}");
        }
    }
});
