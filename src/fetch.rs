//! **fetch**: get the release tarball onto this machine, verified.
//!
//! The cache is keyed by the expected SHA-256, and a file only ever appears
//! under its final name after its hash matched: whatever is found there later
//! can be trusted as far as the hash goes (it is still re-hashed, because the
//! cache is user-writable). Downloads stream into a temporary file beside the
//! target, so a killed run, a bad mirror or a full disk leaves nothing that
//! looks finished. Air-gapped machines skip the network with a local tarball
//! or a copied cache directory; both are verified the same way.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Url;
use reqwest::blocking::Client;
use reqwest::redirect::Policy;
use sha2::{Digest, Sha256};

use crate::release;
use crate::release::Etcd;
use crate::report::{Reporter, Verbosity};

/// A loop or a misconfigured mirror fails instead of bouncing forever.
const MAX_REDIRECTS: usize = 5;
/// Wait before the second attempt; doubled for each one after.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Temporary files older than this were left by a killed run.
const STALE_PART: Duration = Duration::from_secs(3600);

const HELP: &str = "use --mirror URL to download from elsewhere, or run `etcdpack fetch` on a connected machine and copy its cache directory (--cache-dir) here, or pass --etcd-tarball FILE";

/// Where releases come from and how hard to try.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub cache_dir: PathBuf,
    pub mirror: Option<String>,
    pub local_tarball: Option<PathBuf>,
    /// For the TCP and TLS handshake.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of the response.
    pub idle_timeout: Duration,
    /// Attempts in total, including the first (0 counts as 1).
    pub retries: u32,
    /// A response larger than this is refused (the real release is ~20 MiB).
    pub max_bytes: u64,
}

impl FetchOptions {
    /// The defaults, caching in `cache_dir`.
    pub fn new(cache_dir: PathBuf) -> Self {
        FetchOptions {
            cache_dir,
            mirror: None,
            local_tarball: None,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            retries: 3,
            max_bytes: 512 << 20,
        }
    }
}

/// `$XDG_CACHE_HOME/etcdpack`, else `$HOME/.cache/etcdpack`. A relative
/// `XDG_CACHE_HOME` is ignored, as the XDG spec asks.
pub fn default_cache_dir(
    xdg_cache_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Result<PathBuf> {
    if let Some(xdg) = xdg_cache_home.map(PathBuf::from)
        && xdg.is_absolute()
    {
        return Ok(xdg.join("etcdpack"));
    }
    match home.filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("etcdpack")),
        None => bail!(
            "cannot choose a cache directory: neither XDG_CACHE_HOME nor HOME is set\n  help: pass --cache-dir DIR (or set ETCDPACK_CACHE_DIR)"
        ),
    }
}

/// Returns the path of a tarball whose SHA-256 equals `etcd.sha256`.
pub fn ensure_release(etcd: &Etcd, opts: &FetchOptions, reporter: &Reporter) -> Result<PathBuf> {
    let expected = etcd.sha256.to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "the expected SHA-256 {:?} is not 64 hex digits",
            etcd.sha256
        );
    }

    if let Some(local) = &opts.local_tarball {
        let actual = hash_file(local)?;
        if actual != expected {
            bail!(
                "{} is not the expected etcd {} {} release\n  expected sha256: {expected}\n  actual sha256:   {actual}\n  help: if it is a different release on purpose, pass --etcd-sha256 {actual} (or set etcd.sha256 in the config)",
                local.display(),
                etcd.version,
                etcd.arch.as_str(),
            );
        }
        reporter.status("Verified", format!("sha256 {actual} {}", local.display()));
        return Ok(local.clone());
    }

    let dir = opts.cache_dir.join(&expected);
    let path = dir.join(release::file_name(&etcd.version, etcd.arch));
    if path.exists() {
        match hash_file(&path) {
            Ok(actual) if actual == expected => {
                reporter.detail("Cached", path.display());
                return Ok(path);
            }
            Ok(actual) => reporter.warn(format!(
                "{} is damaged (sha256 {actual}, expected {expected}); downloading it again",
                path.display()
            )),
            Err(e) => reporter.warn(format!("{e:#}; downloading it again")),
        }
        fs::remove_file(&path)
            .with_context(|| format!("cannot remove the damaged {}", path.display()))?;
    }

    let url = release::url(etcd, opts.mirror.as_deref());
    download(&url, &path, &expected, opts, reporter)?;
    Ok(path)
}

fn hash_file(path: &Path) -> Result<String> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    crate::fsutil::sha256_reader(file).with_context(|| format!("cannot read {}", path.display()))
}

/// Why an attempt failed, and whether another one could help.
enum Failure {
    /// The network or the server had a bad moment.
    Transient(anyhow::Error),
    /// The same request would fail the same way (404, checksum, size, disk).
    Final(anyhow::Error),
}

fn download(
    url: &str,
    dest: &Path,
    expected: &str,
    opts: &FetchOptions,
    reporter: &Reporter,
) -> Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let created_dir = !dir.exists();
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    sweep_stale_parts(dir);

    let result = download_with_retries(url, dest, expected, opts, reporter);
    if result.is_err() && created_dir {
        // Leave the cache as it was; fails harmlessly if anything is in it.
        let _ = fs::remove_dir(dir);
    }
    result
}

fn download_with_retries(
    url: &str,
    dest: &Path,
    expected: &str,
    opts: &FetchOptions,
    reporter: &Reporter,
) -> Result<()> {
    let client = Client::builder()
        .connect_timeout(opts.connect_timeout)
        // Per read in the blocking client: an idle timeout, not a deadline.
        .timeout(opts.idle_timeout)
        .redirect(redirect_policy())
        .user_agent(concat!("etcdpack/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client")?;

    reporter.status("Downloading", url);
    let attempts = opts.retries.max(1);
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=attempts {
        match attempt_once(&client, url, dest, expected, opts, reporter) {
            Ok(actual) => {
                reporter.status("Verified", format!("sha256 {actual}"));
                return Ok(());
            }
            Err(Failure::Final(e)) => return Err(explain(url, e)),
            Err(Failure::Transient(e)) if attempt < attempts => {
                reporter.warn(format!(
                    "{e:#}; retrying in {:.1}s (attempt {}/{attempts})",
                    backoff.as_secs_f64(),
                    attempt + 1
                ));
                std::thread::sleep(backoff);
                backoff *= 2;
            }
            Err(Failure::Transient(e)) => {
                let tries = if attempts == 1 { "attempt" } else { "attempts" };
                return Err(explain(
                    url,
                    e.context(format!("gave up after {attempts} {tries}")),
                ));
            }
        }
    }
    unreachable!("the last attempt returns")
}

fn explain(url: &str, err: anyhow::Error) -> anyhow::Error {
    let text = format!("{err:#}");
    if text.contains("help:") {
        // The cause knows its own fix better than the general one.
        anyhow!("cannot download {url}: {text}")
    } else {
        anyhow!("cannot download {url}: {text}\n  help: {HELP}")
    }
}

/// One GET streamed into a temporary file; on success the file is renamed to
/// `dest` and the hash returned. Any early return drops (deletes) the file.
fn attempt_once(
    client: &Client,
    url: &str,
    dest: &Path,
    expected: &str,
    opts: &FetchOptions,
    reporter: &Reporter,
) -> Result<String, Failure> {
    let mut resp = client.get(url).send().map_err(classify_send)?;
    let status = resp.status();
    if !status.is_success() {
        let err = anyhow!("HTTP {status}");
        let retry = status.is_server_error()
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
        return Err(if retry {
            Failure::Transient(err)
        } else {
            Failure::Final(err)
        });
    }
    let declared = resp.content_length();
    if let Some(len) = declared
        && len > opts.max_bytes
    {
        return Err(Failure::Final(anyhow!(
            "the server announces {len} bytes, more than the limit of {} bytes",
            opts.max_bytes
        )));
    }

    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("etcd");
    let local = |e: io::Error, what: &str| {
        Failure::Final(anyhow::Error::new(e).context(format!("{what} in {}", dir.display())))
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| local(e, "cannot create a temporary file"))?;

    let bar = Bar::new(reporter, declared);
    let mut hasher = Sha256::new();
    let mut total: u64 = 0;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match resp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let cause = if is_timeout(&e) {
                    anyhow!(
                        "no data for {}s (idle timeout)",
                        opts.idle_timeout.as_secs_f64()
                    )
                } else {
                    anyhow::Error::new(e)
                };
                return Err(Failure::Transient(
                    cause.context(format!("connection lost after {total} bytes")),
                ));
            }
        };
        total += n as u64;
        if total > opts.max_bytes {
            return Err(Failure::Final(anyhow!(
                "the response is larger than the limit of {} bytes; stopped",
                opts.max_bytes
            )));
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n])
            .map_err(|e| local(e, "cannot write"))?;
        bar.0.inc(n as u64);
    }
    drop(bar);
    if let Some(len) = declared
        && total != len
    {
        return Err(Failure::Transient(anyhow!(
            "the body ended after {total} of {len} bytes"
        )));
    }

    let actual = hex::encode(hasher.finalize());
    if actual != expected {
        return Err(Failure::Final(anyhow!(
            "checksum mismatch, the file was not kept\n  expected sha256: {expected}\n  actual sha256:   {actual}\n  help: if the mirror serves a different build on purpose, pass --etcd-sha256 {actual} (or set etcd.sha256); otherwise do not trust this source"
        )));
    }
    let file = tmp.as_file();
    file.set_permissions(fs::Permissions::from_mode(0o644))
        .and_then(|()| file.sync_all())
        .map_err(|e| local(e, "cannot flush the download"))?;
    tmp.persist(dest)
        .map_err(|e| local(e.error, "cannot rename the download into place"))?;
    Ok(actual)
}

/// A redirect that is not followed, and why.
#[derive(Debug, thiserror::Error)]
pub enum Redirect {
    #[error("too many redirects (more than {MAX_REDIRECTS}; a redirect loop?)")]
    TooMany,
    #[error(
        "refusing the redirect from {from} to {to}: a download that started over https must stay on https\n  help: point --mirror (or etcd.url) at the final https URL, or fix the server's redirect"
    )]
    Downgrade { from: String, to: String },
}

/// Whether a redirect from `from` to `to` may be followed: from https only
/// to https, so that a redirect cannot strip the transport's protection.
pub fn allow_redirect(from: &Url, to: &Url) -> Result<(), Redirect> {
    if from.scheme() == "https" && to.scheme() != "https" {
        return Err(Redirect::Downgrade {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    Ok(())
}

/// At most [`MAX_REDIRECTS`] redirects, none of them a downgrade from https
/// (checked against the URL just left, at every hop).
fn redirect_policy() -> Policy {
    Policy::custom(|attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(Redirect::TooMany);
        }
        let verdict = match attempt.previous().last() {
            Some(from) => allow_redirect(from, attempt.url()),
            None => Ok(()),
        };
        match verdict {
            Ok(()) => attempt.follow(),
            Err(e) => attempt.error(e),
        }
    })
}

fn classify_send(err: reqwest::Error) -> Failure {
    if err.is_redirect() {
        let mut source = std::error::Error::source(&err);
        while let Some(e) = source {
            if let Some(r) = e.downcast_ref::<Redirect>() {
                return Failure::Final(anyhow!("{r}"));
            }
            source = e.source();
        }
        return Failure::Final(anyhow!("{}", Redirect::TooMany));
    }
    if err.is_builder() {
        return Failure::Final(anyhow::Error::new(err).context("invalid URL"));
    }
    let timeout = err.is_timeout();
    let err = anyhow::Error::new(err);
    Failure::Transient(if timeout {
        err.context("timed out")
    } else {
        err
    })
}

fn is_timeout(err: &io::Error) -> bool {
    if err.kind() == io::ErrorKind::TimedOut {
        return true;
    }
    // `io::Error::source` skips the wrapped error itself; start from it.
    let mut source: Option<&(dyn std::error::Error + 'static)> = err
        .get_ref()
        .map(|e| e as &(dyn std::error::Error + 'static));
    while let Some(e) = source {
        if let Some(r) = e.downcast_ref::<reqwest::Error>()
            && r.is_timeout()
        {
            return true;
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::TimedOut
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// Temporary files from killed runs would otherwise pile up in the cache.
/// Young ones may belong to a concurrent run and are left alone.
fn sweep_stale_parts(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with('.') && name.ends_with(".part")) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_PART);
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// A progress bar on an interactive stderr, nothing otherwise; cleared
/// however the download ends.
struct Bar(ProgressBar);

impl Bar {
    fn new(reporter: &Reporter, len: Option<u64>) -> Self {
        if !reporter.is_terminal() || reporter.verbosity() < Verbosity::Normal {
            return Bar(ProgressBar::hidden());
        }
        let template = if len.is_some() {
            "{spinner} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{spinner} {bytes} {bytes_per_sec}"
        };
        let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Bar(bar)
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_follows_xdg_then_home() {
        let d = |x: Option<&str>, h: Option<&str>| {
            default_cache_dir(x.map(Into::into), h.map(Into::into))
        };
        assert_eq!(
            d(Some("/xdg"), Some("/home/u")).unwrap(),
            PathBuf::from("/xdg/etcdpack")
        );
        assert_eq!(
            d(Some("relative"), Some("/home/u")).unwrap(),
            PathBuf::from("/home/u/.cache/etcdpack")
        );
        assert_eq!(
            d(None, Some("/home/u")).unwrap(),
            PathBuf::from("/home/u/.cache/etcdpack")
        );
        let msg = d(None, None).unwrap_err().to_string();
        assert!(msg.contains("--cache-dir"), "{msg}");
    }

    #[test]
    fn a_malformed_hash_never_becomes_a_cache_path() {
        let etcd = Etcd {
            version: "3.4.16".into(),
            arch: crate::model::Arch::Amd64,
            sha256: "../../etc".into(),
            url: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let opts = FetchOptions::new(dir.path().into());
        let msg = ensure_release(&etcd, &opts, &Reporter::silent())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("not 64 hex digits"), "{msg}");
    }

    #[test]
    fn redirects_may_not_leave_https() {
        let u = |s: &str| Url::parse(s).unwrap();
        let https = u("https://github.com/etcd-io/etcd/releases/download/v3.4.16/x.tar.gz");
        assert!(allow_redirect(&https, &u("https://objects.example/blob")).is_ok());
        assert!(allow_redirect(&u("http://127.0.0.1/x"), &u("http://127.0.0.1/y")).is_ok());
        assert!(allow_redirect(&u("http://127.0.0.1/x"), &u("https://mirror/y")).is_ok());
        for to in ["http://objects.example/blob", "ftp://objects.example/blob"] {
            let msg = allow_redirect(&https, &u(to)).unwrap_err().to_string();
            assert!(msg.contains(https.as_str()) && msg.contains(to), "{msg}");
            assert!(msg.contains("help:"), "{msg}");
        }
    }

    #[test]
    fn stale_temporary_files_are_swept_young_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(".x.tar.gz.abc.part");
        let young = dir.path().join(".x.tar.gz.def.part");
        fs::write(&old, b"").unwrap();
        fs::write(&young, b"").unwrap();
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(SystemTime::now() - 2 * STALE_PART)
            .unwrap();
        sweep_stale_parts(dir.path());
        assert!(!old.exists());
        assert!(young.exists());
    }
}
