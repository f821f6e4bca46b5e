//! Crash safety and concurrency: a `gen` killed with SIGKILL at random
//! moments never leaves an output that `verify` accepts while it is corrupt,
//! a rerun completes, and two runs never interleave in one directory.

mod support;

use std::fs;
use std::time::{Duration, Instant};

use support::random::Lcg;
use support::{Gen, etcdpack};

fn verify(g: &Gen) -> (Option<i32>, String) {
    let out = etcdpack().arg("verify").arg(&g.out).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn killed_runs_are_never_mistaken_for_finished_ones() {
    support::require!(support::STANDIN);
    let (mut rng, seed) = Lcg::seeded();

    // How long an uninterrupted run takes here, to aim the kills.
    let probe = Gen::new(&["127.0.0.1"], "");
    let t = Instant::now();
    probe.run_ok(&[]);
    let full = t.elapsed().as_millis() as u64 + 1;

    let mut g = Gen::new(&["127.0.0.1"], "");
    let rounds = 30;
    // Kills that found gen running, and those of them that found it
    // writing (its `.incomplete` marker there).
    let (mut landed, mut writing) = (0, 0);
    let mut outcomes = [0usize; 2];
    for round in 0..rounds {
        if round % 6 == 0 {
            // Kill fresh directories too: first runs create the CA.
            g = Gen::new(&["127.0.0.1"], "");
        }
        // What a finished earlier run wrote: a rerun after the kill must
        // come back to exactly these bytes (nothing in the config changed).
        let before = fs::read_to_string(g.out.join("SHA256SUMS")).ok();
        let marker = g.out.join(".incomplete");
        let mut child = g.spawn(&[]);
        // Half the rounds aim anywhere in a run; the others wait until
        // gen has begun to write, then strike within a few milliseconds.
        if round % 2 == 0 {
            std::thread::sleep(Duration::from_millis(rng.next() % full));
        } else {
            let until = Instant::now() + Duration::from_millis(full * 5);
            while !marker.exists() && Instant::now() < until {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            std::thread::sleep(Duration::from_micros(rng.next() % 3000));
        }
        let running = child.try_wait().unwrap().is_none();
        let was_writing = running && marker.exists();
        child.kill().unwrap_or(());
        let _ = child.wait();
        landed += usize::from(running);
        writing += usize::from(was_writing);

        let mut finished = None;
        if !g.out.exists() {
            outcomes[0] += 1;
        } else {
            let (code, text) = verify(&g);
            match code {
                Some(0) => {
                    outcomes[1] += 1;
                    finished = Some(fs::read_to_string(g.out.join("SHA256SUMS")).unwrap());
                }
                Some(3) if text.contains("did not finish") => outcomes[0] += 1,
                _ => {
                    panic!("round {round} (seed {seed}): verify reported a corrupt output:\n{text}")
                }
            }
        }

        // A rerun completes and verifies; one more run changes no byte.
        g.run_ok(&[]);
        let (code, text) = verify(&g);
        assert_eq!(code, Some(0), "round {round}, seed {seed}: {text}");
        let sums = fs::read_to_string(g.out.join("SHA256SUMS")).unwrap();
        // What verify accepted after the kill was a finished run: the rerun
        // keeps it byte for byte. And a directory that held a finished run
        // comes back to it.
        if let Some(f) = &finished {
            assert_eq!(
                &sums, f,
                "round {round}, seed {seed}: verify took a kill for finished"
            );
        }
        if let Some(b) = &before {
            assert_eq!(
                &sums, b,
                "round {round}, seed {seed}: the rerun differs from before the kill"
            );
        }
        g.run_ok(&[]);
        assert_eq!(
            fs::read_to_string(g.out.join("SHA256SUMS")).unwrap(),
            sums,
            "round {round}, seed {seed}"
        );
    }
    eprintln!(
        "kills that found gen running: {landed} of {rounds}, writing: {writing}; incomplete or nothing written: {}, finished: {}",
        outcomes[0], outcomes[1]
    );
    assert!(
        landed >= rounds / 2,
        "only {landed} of {rounds} kills found gen running (seed {seed})"
    );
    assert!(
        writing >= rounds / 4,
        "only {writing} of {rounds} kills found gen writing (seed {seed})"
    );
}

#[test]
fn a_second_run_on_the_same_directory_refuses() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["127.0.0.1"], "");
    g.run_ok(&[]);
    // Hold the lock as a running gen would.
    let lock = fs::OpenOptions::new()
        .write(true)
        .open(g.out.join(".etcdpack.lock"))
        .unwrap();
    lock.lock().unwrap();
    let before = fs::read_to_string(g.out.join("SHA256SUMS")).unwrap();
    let out = g.run(&[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in use by another etcdpack run") && err.contains("help:"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(g.out.join("SHA256SUMS")).unwrap(),
        before
    );
    assert!(!g.out.join(".incomplete").exists());
    lock.unlock().unwrap();
    g.run_ok(&[]);
}
