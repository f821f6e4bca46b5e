//! `etcdpack schema` against the loader, checked with a real JSON Schema
//! validator: every config the loader accepts is valid, and every config it
//! rejects for its shape (wrong type, unknown key, missing key) is invalid.
//! Rules that need more than the shape (duplicate IPs, the election timeout
//! against the heartbeat) are the loader's alone.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use etcdpack::config::{self, ConfigError, Overrides};
use serde_json::Value;
use support::{Gen, etcdpack, run_ok};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The schema as the binary prints it, compiled by the validator.
fn validator() -> jsonschema::Validator {
    let text = run_ok(etcdpack().arg("schema"));
    let schema: Value = serde_json::from_str(&text).expect("schema prints one JSON document");
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

/// The YAML as a JSON value, read by the YAML parser the loader uses.
fn as_json(text: &str) -> Result<Value, serde_saphyr::Error> {
    if text.trim().is_empty() {
        // An empty document is null to a YAML reader.
        return Ok(Value::Null);
    }
    serde_saphyr::from_str(text)
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn assert_valid(v: &jsonschema::Validator, what: &str, text: &str) {
    config::parse(Path::new(what), text, &Overrides::default())
        .unwrap_or_else(|e| panic!("{what}: the loader must accept it: {e}"));
    let instance = as_json(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    let errs = errors(v, &instance);
    assert!(errs.is_empty(), "{what}: the schema rejects it:\n{errs:#?}");
}

#[test]
fn the_schema_is_a_valid_draft_07_schema_and_forbids_unknown_keys() {
    let text = run_ok(etcdpack().arg("schema"));
    assert_eq!(text, config::schema::text());
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    jsonschema::meta::validate(&schema).expect("valid against its meta-schema");
    // deny_unknown_fields on every mapping of the loader.
    let mut objects = vec![&schema];
    objects.extend(schema["definitions"].as_object().unwrap().values());
    for o in objects {
        if o["type"] == "object" {
            assert_eq!(o["additionalProperties"], false, "{o:#}");
        }
    }
    // Settings with units say which.
    let tuning = &schema["definitions"]["RawTuning"]["properties"];
    let heartbeat = tuning["heartbeat_interval"]["description"]
        .as_str()
        .unwrap();
    assert!(
        heartbeat.contains("a bare number is milliseconds"),
        "{heartbeat}"
    );
    let quota = tuning["quota_backend_bytes"]["description"]
        .as_str()
        .unwrap();
    assert!(quota.contains("8GiB") && quota.contains("bytes"), "{quota}");
}

#[test]
fn every_example_and_good_config_is_valid() {
    let v = validator();
    assert_valid(&v, "templates/cluster.yaml", config::EXAMPLE);

    // The README's example config.
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let section = &readme[readme.find("## The config").expect("README has the config")..];
    let start = section.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    assert_valid(&v, "README.md", block);

    // The good seeds of the fuzzer's corpus.
    for name in ["example.yaml", "full.yaml", "minimal.yaml"] {
        let path = root().join("fuzz/corpus/config").join(name);
        assert_valid(&v, name, &fs::read_to_string(&path).unwrap());
    }

    // The configs the other tests generate, with each extra they append.
    for extra in [
        "",
        "tuning: { quota_backend_bytes: 4GiB }\n",
        "packages: { formats: [tar, deb, rpm] }\n",
        "pki: { algorithm: rsa-2048, validity: 8760h }\n",
        "clients: [ { name: etcdctl } ]\nservice: { user: root, start: false }\n",
        "etcd: { version: v3.4.16, arch: arm64 }\n",
        "service: { user: root }\nbackup: { enabled: true, interval: 6h, dir: /srv/etcd-backups, keep: 2 }\n",
    ] {
        let g = Gen::new(&["192.168.0.1", "192.168.0.2", "fd00::3"], extra);
        assert_valid(&v, extra, &fs::read_to_string(&g.config).unwrap());
    }
}

/// Every file under tests/configs/bad, by why the loader rejects it.
/// Not YAML (or not one mapping per key): nothing for a schema to check.
const NOT_YAML: &[&str] = &[
    "01-unclosed-bracket",
    "02-bad-indentation",
    "37-duplicate-yaml-key",
];
/// The shape is wrong: a wrong type, an unknown key, a missing key.
/// The schema must reject each.
const STRUCTURAL: &[&str] = &[
    "03-top-level-list",
    "04-empty",
    "05-unknown-top-level-key",
    "06-unknown-key-cluster",
    "07-unknown-key-etcd",
    "08-unknown-key-node",
    "09-unknown-key-tuning",
    "10-unknown-key-subject",
    "11-unknown-key-service",
    "12-nodes-not-a-list",
    "13-enable-v2-not-bool",
    "14-version-not-a-number",
    "15-missing-cluster",
    "16-missing-nodes",
];
/// Rejected by a validation rule that the schema states as well (a closed
/// list of values, at least one item): the schema must reject each too.
const CLOSED_VALUES: &[&str] = &[
    "17-empty-nodes",
    "27-unknown-arch",
    "30-bad-algorithm",
    "33-unsupported-config-version",
    "34-unknown-package-format",
];
/// Rejected by a rule beyond the shape: the schema may accept them.
const SEMANTIC: &[&str] = &[
    "18-duplicate-node-name",
    "19-duplicate-ip",
    "20-invalid-ip",
    "21-ip-with-port",
    "22-node-name-not-dns-label",
    "23-bad-duration",
    "24-bad-size",
    "25-election-under-5x-heartbeat",
    "26-election-over-50s",
    "28-unknown-version-without-sha256",
    "29-bad-sha256",
    "31-ca-cert-without-key",
    "32-unreadable-ca-files",
    "35-bad-service-user",
    "36-relative-install-dir",
    "38-several-problems",
    "39-ca-key-does-not-match",
    "40-ca-is-not-a-ca",
    "41-ca-expired",
    "42-ca-cert-not-pem",
    "43-install-dir-is-a-system-dir",
    "44-data-dir-is-a-system-dir",
    "45-data-dir-is-install-dir",
    "46-data-dir-inside-install-dir",
    "47-homepage-with-a-newline",
    "48-san-names-another-node",
    "49-ca-cert-holds-the-key",
    "50-publish-signed-and-unsigned",
    "51-backup-settings",
    "52-backup-recipients",
    "53-client-access",
];

#[test]
fn every_structurally_bad_config_is_invalid() {
    let dir = root().join("tests/configs/bad");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.file_stem().unwrap().to_str().unwrap().to_owned())
        .collect();
    names.sort();
    let lists = [NOT_YAML, STRUCTURAL, CLOSED_VALUES, SEMANTIC];
    for name in &names {
        let n = lists.iter().filter(|l| l.contains(&name.as_str())).count();
        assert_eq!(
            n, 1,
            "{name}: list it in exactly one of NOT_YAML, STRUCTURAL, CLOSED_VALUES, SEMANTIC"
        );
    }
    for l in lists {
        for name in l {
            assert!(names.iter().any(|n| n == name), "{name}: no such config");
        }
    }

    let v = validator();
    for name in names {
        let path = dir.join(format!("{name}.yaml"));
        let text = fs::read_to_string(&path).unwrap();
        // Loading reads only the YAML; the CA files to import are checked
        // next, still before anything is written, and count as its verdict.
        let loaded = config::parse(&path, &text, &Overrides::default()).and_then(|c| {
            etcdpack::pki::check_import(&c, time::OffsetDateTime::now_utc()).map(|()| c)
        });
        assert!(loaded.is_err(), "{name}: the loader accepts it");
        if NOT_YAML.contains(&name.as_str()) {
            assert!(as_json(&text).is_err(), "{name}: reads as YAML");
            continue;
        }
        if STRUCTURAL.contains(&name.as_str()) {
            // The loader says so while parsing, before any rule runs.
            assert!(
                matches!(loaded, Err(ConfigError::Syntax { .. })),
                "{name}: {loaded:?}"
            );
        }
        let instance = as_json(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        if !SEMANTIC.contains(&name.as_str()) {
            assert!(
                !v.is_valid(&instance),
                "{name}: the schema accepts a config the loader rejects for its shape"
            );
        }
    }
}

/// The closed lists of values in the schema are the loader's: each listed
/// value loads, and a value next to them does not.
#[test]
fn the_schemas_closed_lists_are_what_the_loader_accepts() {
    let schema = config::schema::schema();
    let defs = &schema["definitions"];
    let listed = |v: &Value| -> Vec<String> {
        v["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("no enum in {v:#}"))
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()
    };
    let base = "version: 1\ncluster: { name: t }\nnodes: [ { name: n1, ip: 10.0.0.1 } ]\n";
    let load = |extra: String| {
        config::parse(
            Path::new("t.yaml"),
            &format!("{base}{extra}"),
            &Overrides::default(),
        )
    };
    let arches = listed(&defs["RawEtcd"]["properties"]["arch"]);
    assert_eq!(arches, ["amd64", "arm64"]);
    for a in &arches {
        load(format!("etcd: {{ arch: {a} }}\n")).unwrap();
    }
    assert!(load("etcd: { arch: riscv64 }\n".into()).is_err());
    let algorithms = listed(&defs["RawPki"]["properties"]["algorithm"]);
    for a in &algorithms {
        load(format!("pki: {{ algorithm: {a} }}\n")).unwrap();
    }
    assert!(load("pki: { algorithm: ed25519 }\n".into()).is_err());
    let formats = listed(&defs["RawPackages"]["properties"]["formats"]["items"]);
    assert_eq!(formats, ["tar", "deb", "rpm"]);
    for f in &formats {
        load(format!("packages: {{ formats: [{f}] }}\n")).unwrap();
    }
    assert!(load("packages: { formats: [zip] }\n".into()).is_err());
    assert_eq!(
        schema["properties"]["version"]["enum"],
        serde_json::json!([1])
    );
}

#[test]
fn init_writes_the_schema_its_first_line_names() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(etcdpack().arg("init").current_dir(dir.path()));
    let yaml = fs::read_to_string(dir.path().join("cluster.yaml")).unwrap();
    let first = yaml.lines().next().unwrap();
    let name = first
        .strip_prefix("# yaml-language-server: $schema=")
        .unwrap_or_else(|| panic!("first line: {first}"));
    assert_eq!(name, config::schema::FILE_NAME);
    let written = fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(written, config::schema::text());

    // Another config in the same directory shares the schema.
    run_ok(
        etcdpack()
            .args(["init", "-o", "other.yaml"])
            .current_dir(dir.path()),
    );
    // A file of that name that is not this schema is the user's: refused.
    fs::remove_file(dir.path().join("other.yaml")).unwrap();
    fs::write(dir.path().join(name), "{}").unwrap();
    let out = etcdpack()
        .args(["init", "-o", "other.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cluster.schema.json already exists") && err.contains("etcdpack schema"),
        "{err}"
    );
    assert!(!dir.path().join("other.yaml").exists());
    assert_eq!(fs::read_to_string(dir.path().join(name)).unwrap(), "{}");
}
