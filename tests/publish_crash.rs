//! `etcdpack publish` killed, raced and read while it writes, judged by the
//! real clients. A publish killed with SIGKILL at any moment leaves a
//! repository that apt (`apt-get update`, with lists from before and from
//! nothing) and dnf (`makecache` from an empty cache, `repo_gpgcheck=1`)
//! accept, listing the release of before or the new one and nothing else,
//! and the same publish run again finishes it. apt run in a loop while
//! publishes change the index never fails and never sees a release go
//! back; two publishes started at once into one repository take turns and
//! both succeed.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use support::clients::{Apt, Dnf};
use support::publishing::{ed25519_key, generated, publish_command};
use support::random::Lcg;
use support::{Gen, HttpServer, both, ok_both, run_ok};

/// The node whose release every change raises.
const CHANGED: &str = "etcd-test-etcd-2";
/// The nodes no change touches.
const UNCHANGED: [&str; 2] = ["etcd-test-etcd-1", "etcd-test-etcd-3"];

/// Change etcd-2 (a SAN of its own for each release) and gen again: its
/// packages rise to `release`, the other nodes' stay.
fn raise(g: &Gen, release: u32) {
    let yaml: String = fs::read_to_string(&g.config)
        .unwrap()
        .lines()
        .map(|l| {
            if l.contains("name: etcd-2,") {
                format!(
                    "  - {{ name: etcd-2, ip: \"127.0.0.2\", sans: [etcd-2-r{release}.example.com] }}\n"
                )
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    fs::write(&g.config, yaml).unwrap();
    g.run_ok(&[]);
    for file in [
        format!("{CHANGED}_3.4.16-{release}_amd64.deb"),
        format!("{CHANGED}-3.4.16-{release}.x86_64.rpm"),
    ] {
        assert!(
            g.out.join("dist").join(&file).is_file(),
            "gen made no {file}"
        );
    }
}

/// `etcdpack publish` of `out` into `repo`, signed, served at `url`.
fn publish(out: &Path, repo: &Path, key: &Path, url: &str, keep: &str) -> Command {
    let mut c = publish_command(out);
    c.arg("--repo")
        .arg(repo)
        .arg("--sign-key")
        .arg(key)
        .arg("--allow-cleartext-keys")
        .args(["--url", url, "--keep", keep]);
    c
}

fn spawn_quiet(mut c: Command) -> Child {
    c.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The candidate version of each node's package.
fn candidates(apt: &Apt) -> BTreeMap<String, String> {
    let mut args = vec!["policy", CHANGED];
    args.extend(UNCHANGED);
    let out = ok_both(apt.run("apt-cache", &args));
    let mut found = BTreeMap::new();
    let mut package = None;
    for l in out.lines() {
        if !l.starts_with(' ') && l.ends_with(':') {
            package = Some(l.trim_end_matches(':').to_owned());
        } else if let (Some(p), Some(c)) = (&package, l.trim().strip_prefix("Candidate: ")) {
            found.insert(p.clone(), c.to_owned());
        }
    }
    found
}

/// Why an `apt-get update` is not a clean one, if it is not: it failed, or
/// it said `Hash Sum mismatch`, a warning or an error.
fn unclean(out: &Output) -> Option<String> {
    let said = both(out);
    let bad = !out.status.success()
        || said.contains("Hash Sum mismatch")
        || said
            .lines()
            .any(|l| l.starts_with("W:") || l.starts_with("E:"));
    bad.then(|| format!("apt-get update ({}):\n{said}", out.status))
}

/// Every `version-release` of each package the cached metadata lists.
fn listed(dnf: &Dnf) -> BTreeMap<String, Vec<String>> {
    let out = dnf.run(&[
        "-C",
        "repoquery",
        "--repo",
        "etcd-test",
        "--qf",
        "%{name} %{version}-%{release}",
    ]);
    ok_both(out.clone());
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((name, version)) = l.trim().split_once(' ')
            && name.starts_with("etcd-test-")
        {
            found
                .entry(name.to_owned())
                .or_default()
                .push(version.to_owned());
        }
    }
    found
}

/// The release number of `3.4.16-N`.
fn release_of(version: &str) -> u32 {
    version
        .strip_prefix("3.4.16-")
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("{version:?} is no release etcdpack made"))
}

/// Every entry under a directory, hidden ones too: whether it is a
/// directory, its size and its mtime.
type Listing = BTreeMap<String, (bool, u64, SystemTime)>;

/// The [`Listing`] of `dir`: what tells whether anything was written.
fn listing(dir: &Path) -> Listing {
    let mut map = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        // What a publish removes meanwhile is left out.
        for e in entries {
            let Ok(e) = e else { continue };
            let p = e.path();
            let Ok(meta) = fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(p.clone());
            }
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            map.insert(rel, (meta.is_dir(), meta.len(), meta.modified().unwrap()));
        }
    }
    map
}

/// The repository's indexes and what a killed publish may leave, for a
/// failure's message: every file but the packages with its size and
/// SHA-256, what `Release`, `InRelease` and `repomd.xml` list, each
/// history of generations; then the packages' names.
fn state_of(repo: &Path) -> String {
    let mut s = String::new();
    let mut pooled = Vec::new();
    for (rel, (dir, len, _)) in listing(repo) {
        if dir {
            continue;
        }
        if rel.ends_with(".deb") || rel.ends_with(".rpm") {
            pooled.push(rel);
            continue;
        }
        let bytes = fs::read(repo.join(&rel)).unwrap_or_default();
        s.push_str(&format!(
            "  {rel} ({len} bytes, sha256 {})\n",
            &support::sha256(&bytes)[..16]
        ));
        let text = String::from_utf8_lossy(&bytes);
        let name = rel.rsplit('/').next().unwrap();
        let shown: Vec<&str> = match name {
            "Release" | "InRelease" => text
                .lines()
                .filter(|l| l.starts_with("Date:") || l.contains(" main/"))
                .collect(),
            "repomd.xml" => text
                .lines()
                .filter(|l| l.contains("<revision>") || l.contains("<location"))
                .collect(),
            ".etcdpack-generations" => text.lines().collect(),
            _ => Vec::new(),
        };
        for l in shown {
            s.push_str(&format!("      {}\n", l.trim()));
        }
    }
    format!("{s}  packages: {pooled:?}\n")
}

/// Temporary files and staged directories a killed publish left.
fn leftovers(repo: &Path) -> Vec<String> {
    listing(repo)
        .into_keys()
        .filter(|k| {
            let name = k.rsplit('/').next().unwrap();
            name.starts_with('.') && (name.ends_with(".part") || name.ends_with(".staged"))
        })
        .collect()
}

/// Poll the repository while the publish `child` runs, until `enough`
/// says so of the parts it has written so far (a part counts once any
/// poll saw it changed), or until it exits; those parts, in the order
/// first seen.
fn watch(
    child: &mut Child,
    repo: &Path,
    before: &Listing,
    enough: impl Fn(&[&'static str]) -> bool,
) -> Vec<&'static str> {
    let t = Instant::now();
    let mut seen = Vec::new();
    while child.try_wait().unwrap().is_none() {
        for part in changed_parts(before, &listing(repo)) {
            if !seen.contains(&part) {
                seen.push(part);
            }
        }
        if enough(&seen) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "publish hangs");
        std::thread::sleep(Duration::from_micros(200));
    }
    seen
}

/// What changed between two listings of a repository, by part: apt's pool,
/// its indexes by hash and by name, `Release` and its signature,
/// `InRelease`; yum's pool, its staged and its live `repodata/`, and any
/// `repomd.xml` (staged or live) of its own; the client files; temporary
/// files; anything else (a directory's mtime, say).
fn changed_parts(before: &Listing, after: &Listing) -> Vec<&'static str> {
    let mut parts = std::collections::BTreeSet::new();
    let keys = before.keys().chain(after.keys());
    for k in keys.filter(|k| before.get(*k) != after.get(*k)) {
        let name = k.rsplit('/').next().unwrap();
        parts.insert(if name.ends_with(".part") {
            "temporaries"
        } else if k.starts_with("dists/") {
            if k.contains("/by-hash") {
                "apt by-hash"
            } else if name.starts_with("Packages") {
                "apt Packages"
            } else if name == "InRelease" {
                "InRelease"
            } else if name.starts_with("Release") {
                "Release"
            } else {
                "other"
            }
        } else if k.starts_with("pool/") {
            "apt pool"
        } else if k.starts_with("rpm/") {
            if name == "repomd.xml" {
                "yum repomd.xml"
            } else if k.contains(".staged") {
                "yum staged"
            } else if name == "repodata" || k.contains("/repodata/") {
                "yum repodata"
            } else if name == "Packages" || k.contains("/Packages/") {
                "yum pool"
            } else {
                "other"
            }
        } else if k.starts_with("etcd-test.") {
            "client files"
        } else {
            "other"
        });
    }
    parts.into_iter().collect()
}

/// apt (`lists`, which has read the repository before, and one from
/// nothing) updates cleanly; the release of etcd-2 each finds, asserted to
/// be one of `expected`; the other nodes' stay at 1.
fn apt_sees(lists: &Apt, sources: &Path, expected: &[u32], repo: &Path, when: &str) -> u32 {
    let mut seen = 0;
    for apt in [lists, &Apt::new(sources)] {
        if let Some(why) = unclean(&apt.update()) {
            panic!("{when}: {why}\nthe repository:\n{}", state_of(repo));
        }
        let candidates = candidates(apt);
        let candidate = release_of(&candidates[CHANGED]);
        assert!(
            expected.contains(&candidate),
            "{when}: apt's candidate for {CHANGED} is release {candidate}, not one of {expected:?}\nthe repository:\n{}",
            state_of(repo)
        );
        for p in UNCHANGED {
            assert_eq!(candidates[p], "3.4.16-1", "{when}: {p}");
        }
        seen = candidate;
    }
    seen
}

/// dnf makes its cache from nothing, verifying `repomd.xml`; the newest
/// release of etcd-2 it lists, asserted to be one of `expected`.
fn dnf_sees(dnf: &Dnf, expected: &[u32], repo: &Path, when: &str) -> u32 {
    let out = dnf.makecache();
    assert!(
        out.status.success(),
        "{when}: dnf makecache ({}):\n{}\nthe repository:\n{}",
        out.status,
        both(&out),
        state_of(repo)
    );
    let listed = listed(dnf);
    let newest = listed
        .get(CHANGED)
        .and_then(|vs| vs.iter().map(|v| release_of(v)).max())
        .unwrap_or_else(|| {
            panic!(
                "{when}: dnf lists no {CHANGED}: {listed:?}\n{}",
                state_of(repo)
            )
        });
    assert!(
        expected.contains(&newest),
        "{when}: dnf's newest {CHANGED} is release {newest}, not one of {expected:?}\nthe repository:\n{}",
        state_of(repo)
    );
    for p in UNCHANGED {
        assert_eq!(
            listed.get(p).map(Vec::as_slice),
            Some(&["3.4.16-1".to_owned()][..]),
            "{when}: {p}"
        );
    }
    newest
}

#[test]
fn a_publish_killed_at_any_moment_leaves_a_repository_apt_and_dnf_accept() {
    support::require!(
        support::ROOT,
        support::STANDIN,
        support::APT_GET,
        support::DNF,
        support::UNSHARE
    );
    const ROUNDS: u32 = 24;
    let (mut rng, seed) = Lcg::seeded();
    let g = generated("deb, rpm");
    let keys = tempfile::tempdir().unwrap();
    let key = ed25519_key(keys.path());
    let repo = g.dir.path().join("repo");
    let server = HttpServer::serve_dir(&repo);
    let url = server.base_url.clone();
    ok_both(publish(&g.out, &repo, &key, &url, "2").output().unwrap());
    let sources = repo.join("etcd-test.sources");
    let apt = Apt::new(&sources);
    let dnf = Dnf::new(&repo.join("etcd-test.repo"));
    apt_sees(&apt, &sources, &[1], &repo, "first publish");
    dnf_sees(&dnf, &[1], &repo, "first publish");

    // How long an uninterrupted publish of a change takes here, and the
    // parts it writes, in order (most of its time goes to reading and
    // checking the run's packages and what the repository lists): the
    // longer and every part of two publishes, one keeping 1 release, one 2.
    let mut full = Duration::ZERO;
    let mut stages: Vec<&'static str> = Vec::new();
    for (release, keep) in [(2, "1"), (3, "2")] {
        raise(&g, release);
        let before = listing(&repo);
        let t = Instant::now();
        let mut child = spawn_quiet(publish(&g.out, &repo, &key, &url, keep));
        let parts = watch(&mut child, &repo, &before, |_| false);
        let status = child.wait().unwrap();
        full = full.max(t.elapsed());
        assert!(status.success(), "publish of release {release}: {status}");
        for part in parts {
            // A temporary file may come and go between two polls.
            if part != "temporaries" && !stages.contains(&part) {
                stages.push(part);
            }
        }
    }
    apt_sees(&apt, &sources, &[3], &repo, "timed publishes");
    eprintln!("an uninterrupted publish takes up to {full:?}, and writes {stages:?}");
    assert!(
        stages.contains(&"InRelease") && stages.contains(&"yum repodata"),
        "{stages:?}"
    );

    // Some kills land after a delay anywhere in [0, 1.0] × that time, each
    // in a slice of its own. The others land as the publish writes,
    // however the machine's load stretches it: once it has been seen
    // writing a part (each part in turn), 0 to 1 ms later.
    let anywhere = ROUNDS / 3;
    let mut aims: Vec<Option<f64>> = (0..anywhere)
        .map(|i| Some((f64::from(i) + rng.unit()) / f64::from(anywhere)))
        .collect();
    aims.resize(ROUNDS as usize, None);
    for i in (1..aims.len()).rev() {
        aims.swap(i, (rng.next() as usize) % (i + 1));
    }
    let mut next_stage = (rng.next() as usize) % stages.len();

    let mut landed = 0;
    let mut wrote = 0;
    for (round, fraction) in aims.into_iter().enumerate() {
        let release = round as u32 + 4;
        raise(&g, release);
        let keep = if round % 2 == 0 { "1" } else { "2" };
        let before = listing(&repo);

        let mut child = spawn_quiet(publish(&g.out, &repo, &key, &url, keep));
        let t = Instant::now();
        let aim = match fraction {
            Some(fraction) => {
                let delay = full.mul_f64(fraction);
                std::thread::sleep(delay);
                format!("after {delay:?}")
            }
            None => {
                let stage = stages[next_stage % stages.len()];
                next_stage += 1;
                watch(&mut child, &repo, &before, |seen| seen.contains(&stage));
                let delay = Duration::from_micros(rng.next() % 1000);
                std::thread::sleep(delay);
                format!("{delay:?} after it was seen writing {stage}")
            }
        };
        // A kill counts only if it found the publish still running.
        let running = child.try_wait().unwrap().is_none();
        child.kill().unwrap(); // SIGKILL

        let status = child.wait().unwrap();
        let at = t.elapsed();
        let changed = changed_parts(&before, &listing(&repo));
        if running {
            landed += 1;
            wrote += u32::from(!changed.is_empty());
        }
        let when = format!(
            "round {round} (release {release}, --keep {keep}, killed {aim}, at {at:?}, seed {seed})"
        );
        eprintln!(
            "{when}: {} ({status}); it had written: {}",
            if running { "killed" } else { "had exited" },
            if changed.is_empty() {
                "nothing".to_owned()
            } else {
                changed.join(", ")
            }
        );

        // What the killed publish left: the release of before, or the new one.
        let previous = release - 1;
        apt_sees(&apt, &sources, &[previous, release], &repo, &when);
        dnf_sees(&dnf, &[previous, release], &repo, &when);

        // The same publish again finishes it.
        let out = publish(&g.out, &repo, &key, &url, keep).output().unwrap();
        assert!(
            out.status.success(),
            "{when}: the publish after the kill failed ({}):\n{}\nthe repository:\n{}",
            out.status,
            both(&out),
            state_of(&repo)
        );
        assert_eq!(
            leftovers(&repo),
            Vec::<String>::new(),
            "{when}: a finished publish leaves no temporaries"
        );
        let done = format!("{when}, then published again");
        apt_sees(&apt, &sources, &[release], &repo, &done);
        dnf_sees(&dnf, &[release], &repo, &done);
    }
    eprintln!(
        "{landed} of {ROUNDS} kills landed while publish ran, {wrote} of them after it had written"
    );
    assert!(
        landed >= ROUNDS / 2,
        "only {landed} of {ROUNDS} kills landed while publish ran (seed {seed})"
    );
    assert!(
        wrote >= ROUNDS / 4,
        "only {wrote} kills landed after publish had begun writing (seed {seed})"
    );
}

#[path = "publish_crash/readers.rs"]
mod readers;
