//! Every way a mirror or the network can fail, as one table: for each case, what the local
//! server does, what `fetch::ensure_release` must say (or that it must still get the
//! release), how many requests it may make, and that the cache then holds nothing unverified
//! and a good server afterwards fills it. The cases run at once, each on a thread named after
//! it; every failure names its case, and the test lists the cases that failed.

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use etcdpack::fetch::{FetchOptions, ensure_release};
use etcdpack::fsutil::sha256_hex;
use etcdpack::report::Reporter;

use crate::support::fetching::{URL_PATH, assert_recovers, etcd, files_under, opts, small_release};
use crate::support::{HttpServer, Response};

/// What the server does with every request.
#[derive(Clone, Copy, Debug)]
enum Mirror {
    /// This status, with a short text body.
    Status(u16),
    /// This status for the first request, then the release.
    StatusThenRelease(u16),
    /// 200 with a file that is not the release.
    WrongFile(&'static [u8]),
    /// 200 announcing more than it sends: this many bytes, then a TCP reset.
    ResetAfter(usize),
    /// 200 announcing `declared_len` bytes, sending `sent` ones, then closing cleanly.
    Truncated { declared_len: u64, sent: usize },
    /// 200 without a length, zeros until the client hangs up.
    Endless,
    /// 200 with this many zeros, announced.
    Zeros(usize),
    /// 200 announcing 1 MiB, sending 1 KiB, then silence for this long.
    Stall(Duration),
    /// A redirect of every request to itself.
    RedirectLoop,
    /// A redirect from the release URL to where the release is.
    RedirectToRelease,
}

/// What `ensure_release` must make of it.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// The release, fetched and cached.
    Fetched,
    /// An error holding each fragment — `{sha}` stands for the expected checksum, `{served}`
    /// for that of the file served, `{url}` for the release's URL on this server — and an
    /// empty cache, which a good server then fills.
    Fails(&'static [&'static str]),
}

struct Case {
    name: &'static str,
    mirror: Mirror,
    expect: Expect,
    /// How many requests the server may answer.
    requests: RangeInclusive<usize>,
    /// Fetch options the case changes; the others are the tests' (`fetching::opts`).
    max_bytes: Option<u64>,
    idle_timeout: Option<Duration>,
    retries: Option<u32>,
    /// The whole fetch must end within this.
    within: Option<Duration>,
}

/// What a case does not say: the tests' fetch options, and no time limit.
const CASE: Case = Case {
    name: "",
    mirror: Mirror::Status(404),
    expect: Expect::Fetched,
    requests: 1..=1,
    max_bytes: None,
    idle_timeout: None,
    retries: None,
    within: None,
};

const CASES: &[Case] = &[
    Case {
        name: "checksum mismatch fails closed, and the wrong file is not fetched again",
        mirror: Mirror::WrongFile(b"not the release you pinned"),
        expect: Expect::Fails(&["{sha}", "{served}", "checksum mismatch", URL_PATH]),
        requests: 1..=1,
        ..CASE
    },
    Case {
        name: "not found fails at once (no retry) with the fix",
        mirror: Mirror::Status(404),
        expect: Expect::Fails(&["404", "{url}", "--mirror", "--etcd-tarball"]),
        requests: 1..=1,
        ..CASE
    },
    Case {
        name: "a server error is retried",
        mirror: Mirror::StatusThenRelease(500),
        expect: Expect::Fetched,
        requests: 2..=2,
        ..CASE
    },
    Case {
        name: "a persistent server error gives up after three attempts",
        mirror: Mirror::Status(503),
        expect: Expect::Fails(&["503", "3 attempts"]),
        requests: 3..=3,
        ..CASE
    },
    Case {
        name: "a connection reset mid-body is retried, then fails cleanly",
        mirror: Mirror::ResetAfter(20_000),
        expect: Expect::Fails(&["3 attempts"]),
        requests: 3..=3,
        ..CASE
    },
    Case {
        name: "a truncated body is retried, then fails cleanly",
        mirror: Mirror::Truncated {
            declared_len: 10_000,
            sent: 100,
        },
        expect: Expect::Fails(&["3 attempts"]),
        requests: 3..=3,
        ..CASE
    },
    Case {
        name: "an endless body is stopped at max_bytes",
        mirror: Mirror::Endless,
        expect: Expect::Fails(&["larger than the limit of 1048576 bytes"]),
        requests: 1..=1,
        max_bytes: Some(1 << 20),
        ..CASE
    },
    Case {
        name: "an announced size over max_bytes is refused before reading",
        mirror: Mirror::Zeros(4096),
        expect: Expect::Fails(&["announces 4096 bytes"]),
        requests: 1..=1,
        max_bytes: Some(1000),
        ..CASE
    },
    Case {
        name: "a stalled transfer is stopped by the idle timeout",
        mirror: Mirror::Stall(Duration::from_secs(30)),
        expect: Expect::Fails(&["idle timeout"]),
        requests: 1..=1,
        idle_timeout: Some(Duration::from_secs(1)),
        retries: Some(1),
        within: Some(Duration::from_secs(10)),
        ..CASE
    },
    Case {
        name: "a redirect loop fails",
        mirror: Mirror::RedirectLoop,
        expect: Expect::Fails(&["redirect"]),
        requests: 0..=7,
        ..CASE
    },
    Case {
        name: "a redirect to the file is followed",
        mirror: Mirror::RedirectToRelease,
        expect: Expect::Fetched,
        requests: 2..=2,
        ..CASE
    },
];

impl Mirror {
    /// A server behaving so, with `release` as the real file; and the SHA-256 of the wrong
    /// file it serves, if it serves one.
    fn serve(self, release: Vec<u8>) -> (HttpServer, Option<String>) {
        let served = match self {
            Mirror::WrongFile(body) => Some(sha256_hex(body)),
            _ => None,
        };
        let server = HttpServer::with_handler(move |path, n| match self {
            Mirror::Status(code) => Response::Status(code),
            Mirror::StatusThenRelease(code) if n == 0 => Response::Status(code),
            Mirror::StatusThenRelease(_) => Response::Ok(release.clone()),
            Mirror::WrongFile(body) if path == URL_PATH => Response::Ok(body.to_vec()),
            Mirror::WrongFile(_) => Response::Status(404),
            Mirror::ResetAfter(n) => Response::ResetAfter(n),
            Mirror::Truncated { declared_len, sent } => Response::Truncated {
                declared_len,
                bytes: vec![1; sent],
            },
            Mirror::Endless => Response::Endless,
            Mirror::Zeros(n) => Response::Ok(vec![0; n]),
            Mirror::Stall(quiet) => Response::Stall(quiet),
            Mirror::RedirectLoop => Response::Redirect(path.to_string()),
            Mirror::RedirectToRelease => match path {
                URL_PATH => Response::Redirect("/storage/blob".into()),
                "/storage/blob" => Response::Ok(release.clone()),
                _ => Response::Status(404),
            },
        });
        (server, served)
    }
}

/// Runs one case; panics, naming it, where it does not hold.
fn check(case: &Case) {
    let name = case.name;
    let release = small_release();
    let sha = sha256_hex(&release);
    let (server, served) = case.mirror.serve(release.clone());
    let cache = tempfile::tempdir().unwrap();
    let defaults = opts(cache.path(), &server);
    let opts = FetchOptions {
        max_bytes: case.max_bytes.unwrap_or(defaults.max_bytes),
        idle_timeout: case.idle_timeout.unwrap_or(defaults.idle_timeout),
        retries: case.retries.unwrap_or(defaults.retries),
        ..defaults
    };

    let start = Instant::now();
    let result = ensure_release(&etcd(&sha), &opts, &Reporter::silent());
    let took = start.elapsed();

    match case.expect {
        Expect::Fetched => {
            let path =
                result.unwrap_or_else(|e| panic!("{name}: the fetch should have succeeded: {e:#}"));
            assert_eq!(
                std::fs::read(&path).unwrap(),
                release,
                "{name}: not the release"
            );
            assert_eq!(files_under(cache.path()), vec![path], "{name}: the cache");
        }
        Expect::Fails(says) => {
            let msg = match result {
                Ok(path) => panic!("{name}: the fetch should have failed: {}", path.display()),
                Err(e) => format!("{e:#}"),
            };
            // Shown with --nocapture, to read the messages a user would get.
            eprintln!("{name}: {msg}");
            let url = format!("{}{URL_PATH}", server.base_url);
            for fragment in says {
                let want = fragment
                    .replace("{sha}", &sha)
                    .replace("{served}", served.as_deref().unwrap_or("{served}"))
                    .replace("{url}", &url);
                assert!(msg.contains(&want), "{name}: no {want:?} in: {msg}");
            }
            assert_eq!(
                files_under(cache.path()),
                Vec::<PathBuf>::new(),
                "{name}: the cache holds a file that was not verified"
            );
        }
    }
    assert!(
        case.requests.contains(&server.hits()),
        "{name}: {} requests, expected {:?}",
        server.hits(),
        case.requests
    );
    if let Some(limit) = case.within {
        assert!(took < limit, "{name}: took {took:?}, more than {limit:?}");
    }
    if let Expect::Fails(_) = case.expect {
        assert_recovers(name, cache.path());
    }
}

#[test]
fn every_mirror_fault_fails_closed_or_is_recovered_from() {
    let failed: Vec<&str> = std::thread::scope(|scope| {
        let running: Vec<_> = CASES
            .iter()
            .map(|case| {
                let thread = std::thread::Builder::new().name(case.name.to_string());
                (
                    case.name,
                    thread.spawn_scoped(scope, || check(case)).unwrap(),
                )
            })
            .collect();
        running
            .into_iter()
            .filter_map(|(name, thread)| thread.join().is_err().then_some(name))
            .collect()
    });
    assert!(
        failed.is_empty(),
        "{} of {} cases failed (their panics are above):\n  {}",
        failed.len(),
        CASES.len(),
        failed.join("\n  ")
    );
}
