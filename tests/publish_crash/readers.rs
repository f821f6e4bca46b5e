//! apt reading in a loop while publishes change the index, and two
//! publishes started at once.

use super::*;

/// One `apt-get update` of the reader: when it ran, and whether it was clean.
struct Read {
    start: Instant,
    end: Instant,
    unclean: Option<String>,
    candidate: Option<u32>,
}

#[test]
fn apt_reading_during_publishes_never_fails_and_two_publishes_at_once_take_turns() {
    support::require!(
        support::ROOT,
        support::STANDIN,
        support::APT_GET,
        support::DNF,
        support::UNSHARE
    );
    let g = generated("deb, rpm");
    let keys = tempfile::tempdir().unwrap();
    let key = ed25519_key(keys.path());
    let repo = g.dir.path().join("repo");
    let server = HttpServer::serve_dir(&repo);
    let url = server.base_url.clone();
    ok_both(publish(&g.out, &repo, &key, &url, "2").output().unwrap());
    let sources = repo.join("etcd-test.sources");

    // The runs to publish, made first so that the publishes follow each
    // other closely: etcd-2 at releases 2 to 9, each in its own copy.
    let outs: Vec<PathBuf> = (2..=9)
        .map(|release| {
            raise(&g, release);
            let copy = g.dir.path().join(format!("out-{release}"));
            run_ok(Command::new("cp").arg("-a").arg(&g.out).arg(&copy));
            copy
        })
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, sources) = (stop.clone(), sources.clone());
        std::thread::spawn(move || {
            let apt = Apt::new(&sources);
            let deadline = Instant::now() + Duration::from_secs(90);
            let mut reads = Vec::new();
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && reads.len() < 500 {
                let start = Instant::now();
                let out = apt.update();
                let end = Instant::now();
                let why = unclean(&out);
                let candidate = why
                    .is_none()
                    .then(|| release_of(&candidates(&apt)[CHANGED]));
                reads.push(Read {
                    start,
                    end,
                    unclean: why,
                    candidate,
                });
            }
            reads
        })
    };
    std::thread::sleep(Duration::from_millis(300));

    // Six publishes, each raising etcd-2, keeping 1 or 3 releases in turn.
    let mut busy: Vec<(Instant, Instant)> = Vec::new();
    for (i, out) in outs[..6].iter().enumerate() {
        let keep = if i % 2 == 0 { "1" } else { "3" };
        let start = Instant::now();
        let done = publish(out, &repo, &key, &url, keep).output().unwrap();
        busy.push((start, Instant::now()));
        ok_both(done);
    }

    // Two publishes at once (releases 8 and 9): the second waits for the
    // first, and both succeed, in either order.
    let start = Instant::now();
    let spawn = |out: &Path, keep: &str| {
        let mut c = publish(out, &repo, &key, &url, keep);
        c.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = spawn(&outs[6], "2");
    let second = spawn(&outs[7], "1");
    let together = first.try_wait().unwrap().is_none();
    let (a, b) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    busy.push((start, Instant::now()));
    let a_said = ok_both(a);
    let b_said = ok_both(b);
    assert!(
        together,
        "the first publish had finished before the second started:\n{a_said}"
    );
    for said in [&a_said, &b_said] {
        assert!(said.contains("Published stable"), "{said}");
    }

    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let reads = reader.join().unwrap();

    let all_done = busy.last().unwrap().1;
    let mut during = 0;
    let mut last = 0;
    for (n, r) in reads.iter().enumerate() {
        if let Some(why) = &r.unclean {
            panic!(
                "apt-get update {n} of {}, during the publishes, was not clean: {why}\nthe repository now:\n{}",
                reads.len(),
                state_of(&repo)
            );
        }
        let seen = r.candidate.unwrap();
        assert!(
            seen >= last,
            "apt-get update {n} saw release {seen} of {CHANGED} after {last}"
        );
        last = seen;
        assert!(
            r.start < all_done || seen == 9,
            "apt-get update {n}, after the last publish, saw release {seen} of {CHANGED}"
        );
        if busy.iter().any(|(s, e)| r.start < *e && *s < r.end) {
            during += 1;
        }
    }
    eprintln!(
        "{} apt-get update runs, {during} of them during a publish",
        reads.len()
    );
    assert!(
        during >= 3,
        "only {during} of {} apt-get update runs overlapped a publish",
        reads.len()
    );

    // The repository both left: apt and dnf read it whole, the newest
    // release listed, and the next publish builds on it.
    let apt = Apt::new(&sources);
    apt_sees(&apt, &sources, &[9], &repo, "after two publishes at once");
    let dnf = Dnf::new(&repo.join("etcd-test.repo"));
    dnf_sees(&dnf, &[9], &repo, "after two publishes at once");
    ok_both(publish(&outs[7], &repo, &key, &url, "2").output().unwrap());
    assert_eq!(leftovers(&repo), Vec::<String>::new());
    apt_sees(&apt, &sources, &[9], &repo, "a publish after them");
}
