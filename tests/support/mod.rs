//! Shared by the integration tests: a stand-in etcd release, a local HTTP
//! server that can misbehave on demand, the built binary, and the one policy
//! for a missing prerequisite ([`require!`]).
//!
//! The stand-in exists because the tests cannot reach the official release;
//! it has the official layout, with Debian's etcd programs inside, so the
//! packages built from it really run.

#![allow(dead_code)]

pub mod clients;
pub mod fetching;
mod generate;
pub mod member;
mod output;
pub mod packaging;
mod prereq;
pub mod publishing;
pub mod random;
pub mod scan;
pub mod tamper;
pub mod unpack;

/// Every subcommand, as `etcdpack CMD --help` names it.
pub const COMMANDS: &[&str] = &[
    "init",
    "plan",
    "fetch",
    "gen",
    "renew",
    "rotate-ca",
    "status",
    "verify",
    "publish",
    "signing-key",
    "completions",
    "man",
    "schema",
];
#[allow(unused_imports)]
pub use generate::{Gen, bare_root, mirror, mode_of};
#[allow(unused_imports)]
pub use output::{both, ok, ok_both, openssl_verifies, run, run_ok, stderr};
#[allow(unused_imports)]
pub use prereq::*;

/// Returns from the calling test unless the machine has every prerequisite
/// listed (`support::require!(ROOT, LINTIAN)`): in CI a missing one fails the
/// test, elsewhere the test says it is skipped and passes. See [`require`].
#[allow(unused_macros)]
macro_rules! require_all {
    ($($need:expr),+ $(,)?) => {
        if !$crate::support::require(&[$($need),+]) {
            return;
        }
    };
}
#[allow(unused_imports)]
pub(crate) use require_all as require;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

/// A release-shaped tarball and what a config needs to accept it.
#[derive(Debug)]
pub struct StandIn {
    pub path: PathBuf,
    pub sha256: String,
    pub version: &'static str,
    pub arch: &'static str,
}

const STANDIN_VERSION: &str = "3.4.16";
const STANDIN_ARCH: &str = "amd64";
const SYSTEM_ETCD: &str = "/usr/bin/etcd";
const SYSTEM_ETCDCTL: &str = "/usr/bin/etcdctl";
/// The official 3.4.16 release date, for entry mtimes.
const RELEASE_MTIME: u64 = 1_621_036_800;

/// Where `.ci/install-deps` unpacks etcd, etcdctl and etcdutl of Debian
/// trixie's etcd-server and etcd-client 3.5.x packages (not installed:
/// /usr/bin keeps the system's 3.4).
pub const ETCD_3_5_DIR: &str = "/usr/local/lib/etcdpack-tests/etcd-3.5";
/// etcd and etcdutl of a 3.5 release a member may leave for 3.6 (3.5.26 or
/// later), from Debian testing (`.ci/install-deps`).
pub const ETCD_3_5_LATE_DIR: &str = "/usr/local/lib/etcdpack-tests/etcd-3.5-late";
/// The official 3.5.16 release date (trixie's 3.5), for entry mtimes.
const RELEASE_3_5_MTIME: u64 = 1_725_926_400;

/// Built once per machine (cached under the target's tmp dir, keyed by the
/// system binaries' size and mtime) and once per test process.
pub fn standin() -> &'static StandIn {
    static STANDIN: OnceLock<StandIn> = OnceLock::new();
    STANDIN.get_or_init(|| {
        build_standin(
            STANDIN_VERSION,
            &[("etcd", SYSTEM_ETCD), ("etcdctl", SYSTEM_ETCDCTL)],
            RELEASE_MTIME,
        )
    })
}

/// A 3.5 release of the official layout (`etcd`, `etcdctl` and `etcdutl`),
/// made of the binaries under [`ETCD_3_5_DIR`]; its version is the one they
/// report. Cached like [`standin`].
pub fn standin_3_5() -> &'static StandIn {
    static STANDIN: OnceLock<StandIn> = OnceLock::new();
    STANDIN.get_or_init(|| {
        let etcd = format!("{ETCD_3_5_DIR}/etcd");
        let out = Command::new(&etcd)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("{etcd}: {e} (run .ci/install-deps)"));
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text
            .lines()
            .find_map(|l| l.strip_prefix("etcd Version: "))
            .map(str::trim)
            .filter(|v| v.starts_with("3.5."))
            .unwrap_or_else(|| panic!("{etcd} --version is not a 3.5 release:\n{text}"));
        let bins = ["etcd", "etcdctl", "etcdutl"].map(|b| (b, format!("{ETCD_3_5_DIR}/{b}")));
        let bins: Vec<(&str, &str)> = bins.iter().map(|(b, p)| (*b, p.as_str())).collect();
        build_standin(
            Box::leak(version.to_owned().into_boxed_str()),
            &bins,
            RELEASE_3_5_MTIME,
        )
    })
}

/// `etcd-v{version}-linux-amd64.tar.gz` of `bins` (name in the release, file
/// on this machine) and stand-in documentation, cached under the target's
/// tmp dir, keyed by the version and the binaries' size and mtime.
fn build_standin(version: &'static str, bins: &[(&str, &str)], mtime: u64) -> StandIn {
    let stem = format!("etcd-v{version}-linux-{STANDIN_ARCH}");
    let mut key = Sha256::new();
    key.update(b"standin-v1");
    if version != STANDIN_VERSION {
        key.update(format!("{version}\n"));
    }
    for (name, bin) in bins {
        let meta = fs::metadata(bin).unwrap_or_else(|e| {
            panic!("{bin}: {e} (the tests need Debian's etcd-server and etcd-client packages; see .ci/install-deps)")
        });
        let mtime = meta.modified().unwrap().duration_since(UNIX_EPOCH).unwrap();
        if version == STANDIN_VERSION {
            key.update(format!("{bin} {} {}\n", meta.len(), mtime.as_nanos()));
        } else {
            key.update(format!(
                "{name} {bin} {} {}\n",
                meta.len(),
                mtime.as_nanos()
            ));
        }
    }
    let key = hex::encode(&key.finalize()[..8]);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("standin-{key}"));
    let path = dir.join(format!("{stem}.tar.gz"));
    if !path.exists() {
        fs::create_dir_all(&dir).unwrap();
        let bytes = standin_bytes(&stem, bins, mtime);
        // Racing builders write identical bytes; the last rename wins harmlessly.
        let tmp = dir.join(format!(
            ".{stem}.{}.{:?}.part",
            std::process::id(),
            std::thread::current().id()
        ));
        fs::write(&tmp, &bytes).unwrap();
        fs::rename(&tmp, &path).unwrap();
    }
    let sha256 = hex::encode(Sha256::digest(fs::read(&path).unwrap()));
    StandIn {
        path,
        sha256,
        version,
        arch: STANDIN_ARCH,
    }
}

fn standin_bytes(stem: &str, bins: &[(&str, &str)], mtime: u64) -> Vec<u8> {
    let doc =
        |title: &str| format!("# {title}\n\nStand-in for the etcd documentation.\n").into_bytes();
    let mut entries: Vec<(String, Option<Vec<u8>>, u32)> = vec![
        (format!("{stem}/"), None, 0o755),
        (format!("{stem}/Documentation/"), None, 0o755),
        (
            format!("{stem}/Documentation/README.md"),
            Some(doc("Documentation")),
            0o644,
        ),
        (format!("{stem}/Documentation/dev-guide/"), None, 0o755),
        (
            format!("{stem}/Documentation/dev-guide/interacting_v3.md"),
            Some(doc("Interacting with etcd")),
            0o644,
        ),
        (format!("{stem}/Documentation/op-guide/"), None, 0o755),
        (
            format!("{stem}/Documentation/op-guide/clustering.md"),
            Some(doc("Clustering Guide")),
            0o644,
        ),
        (
            format!("{stem}/README-etcdctl.md"),
            Some(doc("etcdctl")),
            0o644,
        ),
        (format!("{stem}/README.md"), Some(doc("etcd")), 0o644),
        (
            format!("{stem}/READMEv2-etcdctl.md"),
            Some(doc("etcdctl v2")),
            0o644,
        ),
    ];
    for (name, bin) in bins {
        entries.push((
            format!("{stem}/{name}"),
            Some(fs::read(bin).unwrap()),
            0o755,
        ));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));

    let gz = GzEncoder::new(Vec::new(), Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, data, mode) in &entries {
        let mut header = tar::Header::new_gnu();
        header.set_path(name).unwrap();
        header.set_mode(*mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        match data {
            Some(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                header.set_cksum();
                tar.append(&header, data.as_slice()).unwrap();
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_cksum();
                tar.append(&header, std::io::empty()).unwrap();
            }
        }
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Response {
    /// 200 with this body and its length.
    Ok(Vec<u8>),
    /// This status with a short text body.
    Status(u16),
    /// 302 to this location.
    Redirect(String),
    /// 200 announcing more than it sends: this many bytes, then a TCP reset.
    ResetAfter(usize),
    /// 200 announcing `declared_len` bytes, sending `bytes`, then closing cleanly.
    Truncated { declared_len: u64, bytes: Vec<u8> },
    /// 200 without a length, zeros until the client hangs up.
    Endless,
    /// 200 announcing 1 MiB, sending 1 KiB, then silence for this long.
    Stall(Duration),
}

type Handler = dyn Fn(&str, usize) -> Response + Send + Sync;

/// A tiny HTTP/1.1 server on 127.0.0.1, one request per connection, stopped on drop.
pub struct HttpServer {
    pub base_url: String,
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Serves `file` at `url_path`; every other path is a 404.
    pub fn serve_file(url_path: &str, file: &Path) -> HttpServer {
        let body = fs::read(file).unwrap();
        let url_path = url_path.to_string();
        HttpServer::with_handler(move |path, _| {
            if path == url_path {
                Response::Ok(body.clone())
            } else {
                Response::Status(404)
            }
        })
    }

    /// Serves the files under `root` (a published repository), read at
    /// each request; a path leaving it, or naming no file, is a 404.
    pub fn serve_dir(root: &Path) -> HttpServer {
        let root = root.to_owned();
        HttpServer::with_handler(move |path, _| {
            let rel = path.split('?').next().unwrap_or("").trim_start_matches('/');
            if rel.split('/').any(|c| c == ".." || c.is_empty()) {
                return Response::Status(404);
            }
            match fs::read(root.join(rel)) {
                Ok(bytes) => Response::Ok(bytes),
                Err(_) => Response::Status(404),
            }
        })
    }

    /// `f` gets the request path and the request's index (0 for the first).
    pub fn with_handler(f: impl Fn(&str, usize) -> Response + Send + Sync + 'static) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(f);
        let thread = {
            let (hits, stop) = (hits.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (hits, stop, handler) = (hits.clone(), stop.clone(), handler.clone());
                    std::thread::spawn(move || {
                        let _ = serve_one(stream, &hits, &stop, &*handler);
                    });
                }
            })
        };
        HttpServer {
            base_url: format!("http://{addr}"),
            addr,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    /// Requests answered so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_one(
    mut stream: TcpStream,
    hits: &AtomicUsize,
    stop: &AtomicBool,
    handler: &Handler,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(()); // the wake-up connection from Drop
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let index = hits.fetch_add(1, Ordering::SeqCst);

    let head = |status: u16, headers: &str| {
        format!(
            "HTTP/1.1 {status} {}\r\nConnection: close\r\n{headers}\r\n",
            reason(status)
        )
    };
    match handler(&path, index) {
        Response::Ok(body) => {
            stream
                .write_all(head(200, &format!("Content-Length: {}\r\n", body.len())).as_bytes())?;
            stream.write_all(&body)?;
        }
        Response::Status(code) => {
            let body = reason(code);
            stream
                .write_all(head(code, &format!("Content-Length: {}\r\n", body.len())).as_bytes())?;
            stream.write_all(body.as_bytes())?;
        }
        Response::Redirect(location) => {
            stream.write_all(
                head(
                    302,
                    &format!("Location: {location}\r\nContent-Length: 0\r\n"),
                )
                .as_bytes(),
            )?;
        }
        Response::ResetAfter(n) => {
            stream.write_all(
                head(200, &format!("Content-Length: {}\r\n", n * 2 + 4096)).as_bytes(),
            )?;
            stream.write_all(&vec![0u8; n])?;
            stream.flush()?;
            std::thread::sleep(Duration::from_millis(50));
            reset(&stream);
        }
        Response::Truncated {
            declared_len,
            bytes,
        } => {
            stream
                .write_all(head(200, &format!("Content-Length: {declared_len}\r\n")).as_bytes())?;
            stream.write_all(&bytes)?;
            stream.shutdown(std::net::Shutdown::Write)?;
        }
        Response::Endless => {
            stream.write_all(head(200, "").as_bytes())?;
            let chunk = vec![0u8; 64 << 10];
            while !stop.load(Ordering::SeqCst) {
                stream.write_all(&chunk)?;
            }
        }
        Response::Stall(quiet) => {
            stream.write_all(head(200, &format!("Content-Length: {}\r\n", 1 << 20)).as_bytes())?;
            stream.write_all(&[0u8; 1024])?;
            stream.flush()?;
            let until = Instant::now() + quiet;
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Close with RST instead of FIN: SO_LINGER with a zero timeout. std has no
/// stable setter for it, so this calls the C library directly.
#[cfg(target_os = "linux")]
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd;

    #[repr(C)]
    struct Linger {
        l_onoff: i32,
        l_linger: i32,
    }
    unsafe extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    let linger = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid open socket and a correctly sized, live option value.
    let rc = unsafe {
        setsockopt(
            stream.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            &linger,
            std::mem::size_of::<Linger>() as u32,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER) failed");
}

#[cfg(not(target_os = "linux"))]
fn reset(_stream: &TcpStream) {}

/// The built binary, isolated from the caller's cache setting and colours.
pub fn etcdpack() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etcdpack"));
    cmd.env_remove("ETCDPACK_CACHE_DIR").env("NO_COLOR", "1");
    cmd
}

/// The SHA-256 of `bytes`, in hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// insta settings for the calling scope: snapshots in `tests/snapshots/`, whichever file of a
/// test crate asserts them, named after the module path (`cli__first_steps__help.snap`).
pub fn snapshots_in_tests_dir() -> insta::internals::SettingsBindDropGuard {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots"));
    settings.bind_to_scope()
}

/// The number after `"key":` in `json`, first occurrence.
pub fn json_number(json: &str, key: &str) -> u64 {
    json.split(&format!("\"{key}\":"))
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {json}"))
}
