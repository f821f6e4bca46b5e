//! What users of other command-line tools expect: completions the real
//! shells accept, man pages that `mandoc` accepts and that say what `--help`
//! says, short defaults, exit codes and the pinned releases in the help.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::support::{self, COMMANDS, Gen, etcdpack, run_ok, standin};

#[test]
fn each_shell_accepts_its_completion_script() {
    support::require!(support::ZSH, support::FISH);
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let script = run_ok(etcdpack().args(["completions", shell]));
        for cmd in COMMANDS {
            assert!(script.contains(cmd), "{shell}: {cmd} is not completed");
        }
        assert!(
            script.contains("config"),
            "{shell}: --config is not completed"
        );
        let file = dir.path().join(format!("etcdpack.{shell}"));
        fs::write(&file, &script).unwrap();
        // -n: read and parse the script without running it.
        let out = Command::new(shell).arg("-n").arg(&file).output().unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{shell} -n: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // bash: loading the script registers the completion.
    let file = dir.path().join("etcdpack.bash");
    let registered = run_ok(
        Command::new("bash")
            .arg("-c")
            .arg(format!(". {} && complete -p etcdpack", file.display())),
    );
    assert!(registered.contains("etcdpack"), "{registered}");

    let bad = etcdpack().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// The options `--help` lists: each `--long` name and the first words of its
/// description.
fn help_options(help: &str) -> Vec<(String, String)> {
    let mut options = Vec::new();
    for line in help.lines() {
        let line = line.trim_start();
        if !line.starts_with('-') {
            continue;
        }
        let Some(long) = line
            .split([' ', ','])
            .find(|w| w.starts_with("--"))
            .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        else {
            continue;
        };
        // "  -c, --config <FILE>  The cluster description ..."
        let description = line
            .split("  ")
            .map(str::trim)
            .find(|p| !p.is_empty() && !p.starts_with('-'))
            .unwrap_or("");
        let first_words: Vec<&str> = description.split_whitespace().take(3).collect();
        options.push((long.to_owned(), first_words.join(" ")));
    }
    options
}

/// The text of a man page, the roff escapes taken out, whitespace collapsed.
fn man_text(roff: &str) -> String {
    let text = roff
        .replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fR", "")
        .replace("\\fI", "")
        .replace("\\(aq", "'")
        .replace("\\*(Aq", "'");
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('.')).collect();
    lines
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn man_writes_a_checked_page_per_command_with_the_help_text() {
    support::require!(support::MANDOC);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man");
    run_ok(etcdpack().args(["man", "--out"]).arg(&out));
    let mut pages: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    let mut want: Vec<String> = COMMANDS
        .iter()
        .map(|c| format!("etcdpack-{c}.1"))
        .chain(["etcdpack.1".to_owned()])
        .collect();
    want.sort();
    assert_eq!(pages, want);

    for cmd in std::iter::once(None).chain(COMMANDS.iter().map(Some)) {
        let (page, help) = match cmd {
            None => ("etcdpack.1".to_owned(), run_ok(etcdpack().arg("--help"))),
            Some(c) => (
                format!("etcdpack-{c}.1"),
                run_ok(etcdpack().args([c, "--help"])),
            ),
        };
        let path = out.join(&page);
        // mandoc's checker: nothing at level "warning" or above.
        let lint = Command::new("mandoc")
            .args(["-T", "lint", "-W", "warning"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            lint.status.success() && lint.stdout.is_empty() && lint.stderr.is_empty(),
            "{page}: {}{}",
            String::from_utf8_lossy(&lint.stdout),
            String::from_utf8_lossy(&lint.stderr)
        );
        let text = man_text(&fs::read_to_string(&path).unwrap());
        let options = help_options(&help);
        assert!(options.iter().any(|(o, _)| o == "--help"), "{help}");
        for (option, words) in options {
            assert!(text.contains(&option), "{page} lacks {option}:\n{text}");
            assert!(
                text.contains(&words),
                "{page} lacks the help of {option} ({words:?}):\n{text}"
            );
        }
        // The description and what follows the options are the help's too.
        let about = help.lines().next().unwrap().trim_end_matches('.');
        assert!(text.contains(about), "{page} lacks {about:?}");
        if matches!(cmd, None | Some(&"gen") | Some(&"verify")) {
            assert!(
                text.contains("Exit codes: 0 success"),
                "{page} lacks the exit codes"
            );
        }
    }
    // The top page lists every command and the version.
    let top = fs::read_to_string(out.join("etcdpack.1")).unwrap();
    for c in COMMANDS {
        // roff escapes every hyphen.
        let name = c.replace('-', "\\-");
        assert!(top.contains(&format!("etcdpack\\-{name}(1)")), "{c}");
    }
    assert!(top.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_lists_the_exit_codes() {
    for args in [&["--help"][..], &["gen", "--help"], &["verify", "--help"]] {
        let help = run_ok(etcdpack().args(args));
        for line in [
            "Exit codes:",
            "0  success",
            "1  failure",
            "2  invalid config or usage",
            "3  verify found a problem, or the output is from an incomplete run",
        ] {
            assert!(help.contains(line), "{args:?} lacks {line:?}:\n{help}");
        }
    }
}

#[test]
fn version_names_the_pinned_etcd_releases() {
    let text = run_ok(etcdpack().arg("--version"));
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(format!("etcdpack {}", env!("CARGO_PKG_VERSION")).as_str())
    );
    let pinned = lines.next().expect("a second line");
    assert_eq!(
        pinned,
        format!("pinned etcd releases: {}", etcdpack::release::pinned_list())
    );
    for (version, arch, _) in etcdpack::release::PINNED {
        assert!(
            pinned.contains(&format!("{version} {}", arch.as_str())),
            "{pinned}"
        );
    }
    // -V stays one line, for scripts.
    assert_eq!(
        run_ok(etcdpack().arg("-V")).trim(),
        format!("etcdpack {}", env!("CARGO_PKG_VERSION"))
    );
}

/// In a directory with cluster.yaml, `etcdpack gen` alone does the main job
/// into ./out; `plan` and `verify` default to the same places.
#[test]
fn gen_defaults_to_cluster_yaml_and_out_in_the_current_directory() {
    support::require!(support::STANDIN);
    let g = Gen::new(&["10.0.0.1", "10.0.0.2", "10.0.0.3"], "");
    assert_eq!(g.config, g.dir.path().join("cluster.yaml"));
    let s = standin();
    let out = etcdpack()
        .current_dir(g.dir.path())
        .args(["gen", "--etcd-tarball"])
        .arg(&s.path)
        .args(["--etcd-sha256", &s.sha256, "--cache-dir"])
        .arg(&g.cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listed.lines().count(), 3, "{listed}");
    for line in listed.lines() {
        assert!(line.starts_with("out/dist/"), "{line}");
        assert!(g.dir.path().join(line).is_file(), "{line}");
    }
    assert!(g.out.join("SHA256SUMS").is_file());
    run_ok(etcdpack().current_dir(g.dir.path()).arg("verify"));
    let plan = run_ok(etcdpack().current_dir(g.dir.path()).arg("plan"));
    assert!(
        plan.lines().any(|l| l == "CA: reuse out/pki/ca.pem"),
        "{plan}"
    );
}

#[test]
fn without_cluster_yaml_the_error_says_to_run_init() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["gen", "plan", "fetch"] {
        let out = etcdpack()
            .current_dir(dir.path())
            .arg(cmd)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err,
            "error: no cluster.yaml here\n  help: run `etcdpack init` to write one (or pass --config FILE)\n",
            "{cmd}"
        );
        assert!(out.stdout.is_empty());
    }
    assert!(!dir.path().join("out").exists(), "nothing is written");

    // A path given with --config that does not exist is a typo, most likely.
    let out = etcdpack()
        .current_dir(dir.path())
        .args(["gen", "-c", "prod.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config prod.yaml does not exist")
            && err.contains("etcdpack init -o prod.yaml"),
        "{err}"
    );

    // Following the advice works.
    run_ok(etcdpack().current_dir(dir.path()).arg("init"));
    run_ok(etcdpack().current_dir(dir.path()).arg("plan"));
    assert!(Path::new(&dir.path().join("cluster.schema.json")).is_file());
}
