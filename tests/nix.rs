//! The Nix files against the Rust code they mirror, evaluated with plain
//! `nix-instantiate` and no nixpkgs: every .nix file parses, nix/pins.nix is
//! `release::PINNED`, nix/args.nix resolves a config as the Rust validation
//! does, and nix/lib.nix feeds them to fetchurl and `etcdpack gen` (checked
//! against a stub of nixpkgs). Building the flake needs nixpkgs: see docs/nix.md.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use etcdpack::config::{Arch, Etcd};
use etcdpack::release::{self, PINNED};
use serde_json::{Value, json};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `nix-instantiate` as any user can run it without a daemon or an initialised
/// /nix: state and logs in a temp dir, nothing written to the store
/// (`--readonly-mode`), no nix.conf, and no NIX_PATH, so a stray `<nixpkgs>`
/// is an error rather than whatever channel the machine has.
struct Nix {
    home: tempfile::TempDir,
}

impl Nix {
    /// None, after saying why, when nix-instantiate is missing; in CI that fails.
    fn new() -> Option<Nix> {
        if !support::require(&[support::NIX_INSTANTIATE]) {
            return None;
        }
        Some(Nix {
            home: tempfile::tempdir().unwrap(),
        })
    }

    fn command(&self) -> Command {
        let h = self.home.path();
        let mut c = Command::new("nix-instantiate");
        c.current_dir(root())
            .env("NIX_STATE_DIR", h.join("state"))
            .env("NIX_LOG_DIR", h.join("log"))
            .env("NIX_CONF_DIR", h)
            .env("HOME", h)
            .env("XDG_CACHE_HOME", h.join("cache"))
            .env_remove("NIX_PATH")
            .env_remove("NIX_REMOTE")
            .arg("--readonly-mode");
        c
    }

    /// Evaluates `expr` strictly to JSON, with `arg` bound to `value`. Relative
    /// paths in `expr` are from the repository root. Err is nix's stderr.
    fn eval(&self, expr: &str, value: &Value) -> Result<Value, String> {
        let out = self
            .command()
            .args(["--eval", "--strict", "--json", "--argstr", "json"])
            .arg(value.to_string())
            .arg("--expr")
            .arg(format!(
                "{{ json }}: let arg = builtins.fromJSON json; in {expr}"
            ))
            .output()
            .unwrap();
        if out.status.success() {
            Ok(serde_json::from_slice(&out.stdout).expect("nix prints one JSON value"))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn eval_ok(&self, expr: &str, value: &Value) -> Value {
        self.eval(expr, value)
            .unwrap_or_else(|e| panic!("evaluating {expr} on {value}: {e}"))
    }

    fn args(&self, config: &Value) -> Result<Value, String> {
        self.eval("import ./nix/args.nix arg", config)
    }
}

/// Standard base64 with padding, as in SRI hashes.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn sri(hex_digest: &str) -> String {
    format!("sha256-{}", base64(&hex::decode(hex_digest).unwrap()))
}

/// What nix/args.nix must return for a pinned release, from the Rust side.
fn expected_pinned(version: &str, arch: Arch) -> Value {
    let hex = release::pinned_sha256(version, arch).unwrap();
    let etcd = Etcd {
        version: version.into(),
        arch,
        sha256: hex.into(),
        url: None,
    };
    let url = release::url(&etcd, None);
    let file_name = release::file_name(version, arch);
    json!({
        "version": version,
        "arch": arch.as_str(),
        "sha256Hex": hex,
        "sri": sri(hex),
        "url": url,
        "fileName": file_name,
        "stem": release::stem(version, arch),
        "pinned": true,
        "fetchurl": { "name": file_name, "url": url, "hash": sri(hex) },
    })
}

fn nix_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with('.') || path == root().join("target") {
            continue;
        }
        if path.is_dir() {
            nix_files(&path, found);
        } else if name.ends_with(".nix") {
            found.push(path);
        }
    }
}

#[test]
fn base64_matches_known_sri() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    // `nix hash to-sri --type sha256` of the empty file's digest.
    assert_eq!(
        sri("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
}

#[test]
fn every_nix_file_parses() {
    let Some(nix) = Nix::new() else { return };
    let mut files = Vec::new();
    nix_files(root(), &mut files);
    for expected in [
        "flake.nix",
        "nix/pins.nix",
        "nix/args.nix",
        "nix/lib.nix",
        "nix/module.nix",
    ] {
        assert!(
            files.contains(&root().join(expected)),
            "{expected} not found in {files:?}"
        );
    }
    for file in &files {
        let out = nix.command().arg("--parse").arg(file).output().unwrap();
        assert!(
            out.status.success(),
            "{} does not parse: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn pins_nix_is_the_rust_pinned_table() {
    let Some(nix) = Nix::new() else { return };
    let pins = nix.eval_ok("import ./nix/pins.nix", &Value::Null);
    let mut from_nix = Vec::new();
    for (version, arches) in pins.as_object().unwrap() {
        for (arch, pin) in arches.as_object().unwrap() {
            from_nix.push((
                version.clone(),
                arch.clone(),
                pin["hex"].as_str().unwrap().to_owned(),
                pin["sri"].as_str().unwrap().to_owned(),
            ));
        }
    }
    let mut from_rust: Vec<_> = PINNED
        .iter()
        .map(|(v, a, hex)| {
            (
                v.to_string(),
                a.as_str().to_owned(),
                hex.to_string(),
                sri(hex),
            )
        })
        .collect();
    from_nix.sort();
    from_rust.sort();
    assert_eq!(
        from_nix, from_rust,
        "nix/pins.nix and PINNED in src/release.rs differ; change both together"
    );
}

#[test]
fn args_defaults_are_the_rust_defaults() {
    let Some(nix) = Nix::new() else { return };
    let expected = expected_pinned(release::DEFAULT_VERSION, Arch::Amd64);
    assert_eq!(nix.args(&json!({})).unwrap(), expected);
    assert_eq!(
        nix.args(&json!({ "version": 1, "etcd": {} })).unwrap(),
        expected
    );
    // The shipped example, read as etcdpack reads it.
    let text = std::fs::read_to_string(root().join("templates/cluster.yaml")).unwrap();
    let example: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(nix.args(&example).unwrap(), expected);
}

#[test]
fn args_arm64_with_a_v_prefix() {
    let Some(nix) = Nix::new() else { return };
    let got = nix.args(&json!({ "etcd": { "version": "v3.4.16", "arch": "arm64" } }));
    assert_eq!(got.unwrap(), expected_pinned("3.4.16", Arch::Arm64));
}

#[test]
fn args_unknown_release_fails_evaluation_and_names_the_fix() {
    let Some(nix) = Nix::new() else { return };
    let err = nix
        .args(&json!({ "etcd": { "version": "3.4.15" } }))
        .unwrap_err();
    assert!(
        err.contains("etcd 3.4.15 linux-amd64 has no pinned checksum"),
        "{err}"
    );
    assert!(
        err.contains(&format!("(pinned: {})", release::pinned_list())),
        "{err}"
    );
    assert!(err.contains("add `etcd.sha256`"), "{err}");
}

#[test]
fn args_rejects_what_the_rust_validation_rejects() {
    let Some(nix) = Nix::new() else { return };
    let err = nix
        .args(&json!({ "etcd": { "arch": "aarch64" } }))
        .unwrap_err();
    assert!(
        err.contains("etcd.arch \"aarch64\" is not supported (etcd calls it arm64)"),
        "{err}"
    );
    let err = nix
        .args(&json!({ "etcd": { "version": "3.4" } }))
        .unwrap_err();
    assert!(
        err.contains("etcd.version \"3.4\" is not a release number"),
        "{err}"
    );
    let err = nix
        .args(&json!({ "etcd": { "version": "3.5.0", "sha256": "abc" } }))
        .unwrap_err();
    assert!(
        err.contains("etcd.sha256 \"abc\" is not a SHA-256 in hex"),
        "{err}"
    );
}

#[test]
fn args_explicit_sha256_and_url_win_like_in_the_config() {
    let Some(nix) = Nix::new() else { return };
    let hex = "AB".repeat(32);
    let got = nix
        .args(&json!({ "etcd": {
            "version": "3.5.0",
            "sha256": hex,
            "url": "https://mirror.example.org/etcd.tgz",
        } }))
        .unwrap();
    let lower = hex.to_ascii_lowercase();
    assert_eq!(got["sha256Hex"], lower.as_str());
    assert_eq!(got["sri"], Value::Null);
    assert_eq!(got["pinned"], false);
    assert_eq!(
        got["fetchurl"],
        json!({
            "name": "etcd-v3.5.0-linux-amd64.tar.gz",
            "url": "https://mirror.example.org/etcd.tgz",
            "sha256": lower,
        })
    );
}

const STUB: &str = "import ./tests/fixtures/stub-pkgs.nix";

#[test]
fn lib_fetches_the_pinned_release() {
    let Some(nix) = Nix::new() else { return };
    let got = nix.eval_ok(
        &format!(
            "((import ./nix/lib.nix {{ self = {{ }}; }}).etcdRelease {{ pkgs = {STUB}; arch = \"arm64\"; }}).fetchurl"
        ),
        &Value::Null,
    );
    assert_eq!(got, expected_pinned("3.4.16", Arch::Arm64)["fetchurl"]);
}

#[test]
fn lib_refuses_keys_in_the_store_unless_asked() {
    let Some(nix) = Nix::new() else { return };
    let err = nix
        .eval(
            &format!(
                "(import ./nix/lib.nix {{ self = {{ }}; }}).mkClusterArtifacts {{ pkgs = {STUB}; config = {{ }}; }}"
            ),
            &Value::Null,
        )
        .unwrap_err();
    let err = err.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(err.contains("allowKeysInStore = true"), "{err}");
    assert!(err.contains("readable by every user"), "{err}");
}

#[test]
fn lib_runs_gen_on_the_pinned_tarball_with_a_json_config() {
    let Some(nix) = Nix::new() else { return };
    // The docs' example, as Nix.
    let config = r#"{
      version = 1;
      cluster.name = "lab";
      etcd = { version = "3.4.16"; arch = "arm64"; };
      nodes = [
        { name = "etcd-1"; ip = "10.0.0.1"; }
        { name = "etcd-2"; ip = "10.0.0.2"; }
        { name = "etcd-3"; ip = "10.0.0.3"; sans = [ "etcd-3.lab.example.org" ]; }
      ];
      pki.algorithm = "ecdsa-p256";
      packages.formats = [ "tar" ];
    }"#;
    let drv = nix.eval_ok(
        &format!(
            "let d = (import ./nix/lib.nix {{ self = {{ }}; }}).mkClusterArtifacts {{
               pkgs = {STUB}; config = {config}; allowKeysInStore = true;
               etcdpack = \"/stub/etcdpack\"; formats = [ \"tar\" ];
             }}; in {{ inherit (d) name script; yaml = d.passthru.configFile.text; }}"
        ),
        &Value::Null,
    );
    let script = drv["script"].as_str().unwrap();
    let hex = release::pinned_sha256("3.4.16", Arch::Arm64).unwrap();
    for part in [
        "etcdpack gen",
        "--config /stub/cluster.yaml",
        "--etcd-tarball /stub/etcd-v3.4.16-linux-arm64.tar.gz",
        &format!("--etcd-sha256 {hex}"),
        "--formats tar",
        "etcdpack verify \"$out\"",
    ] {
        assert!(script.contains(part), "{part:?} not in {script}");
    }

    // builtins.toJSON output is YAML that etcdpack accepts as a config.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.yaml");
    std::fs::write(&file, drv["yaml"].as_str().unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_etcdpack"))
        .args(["plan", "--json", "--config"])
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "etcdpack plan on {}: {}",
        drv["yaml"],
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(plan.contains("etcd-3") && plan.contains("arm64"), "{plan}");
}
