//! Runs a parsed command line: each command walks the pipeline stages it needs.

use std::collections::BTreeMap;

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cli::{
    self, Cli, Command, CompletionsArgs, FetchArgs, GenArgs, InitArgs, ManArgs, PlanArgs,
    SourceArgs, VerifyArgs,
};
use crate::config::{self, Cluster, ConfigError, Overrides};
use crate::fetch;
use crate::fsutil::{self, OutputLock};
use crate::model::out;
use crate::output::{
    self, Artifact, CaInfo, ClientInfo, EtcdInfo, HashingWriter, Manifest, NodeInfo,
};
use crate::package::{Format, Identity, PackageSpec};
use crate::plan;
use crate::render::{self, Templates};
use crate::report::Reporter;
use crate::{extract, outdir, pki, stage, verify};

/// Exit codes: 0 success, 1 failure, 2 invalid config or usage, 3 `verify`
/// found a problem or an incomplete run.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<ConfigError>().is_some() {
        2
    } else if err.downcast_ref::<verify::VerifyFailed>().is_some() {
        3
    } else {
        1
    }
}

pub fn run(cli: Cli, reporter: &Reporter) -> Result<()> {
    match cli.command {
        Command::Init(a) => init(&a, reporter),
        Command::Plan(a) => plan_cmd(&a, reporter),
        Command::Fetch(a) => fetch_cmd(&a, reporter),
        Command::Gen(a) => gen_cmd(&a, reporter).map(|_| ()),
        Command::Verify(a) => verify_cmd(&a),
        Command::Completions(a) => completions(&a),
        Command::Man(a) => man(&a, reporter),
        Command::Schema => std::io::stdout()
            .lock()
            .write_all(config::schema::text().as_bytes())
            .context("cannot write the schema to stdout"),
    }
}

fn completions(a: &CompletionsArgs) -> Result<()> {
    let mut cmd = cli::command();
    let shell: clap_complete::Shell = a.shell.into();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "etcdpack", &mut script);
    std::io::stdout()
        .lock()
        .write_all(&script)
        .context("cannot write the completion script to stdout")
}

/// One page per command, rendered from the same definitions as `--help`.
fn man(a: &ManArgs, reporter: &Reporter) -> Result<()> {
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let mut top = cli::command().disable_help_subcommand(true);
    top.build();
    let source = format!("etcdpack {}", env!("CARGO_PKG_VERSION"));
    let date = man_date()?;
    let mut pages = vec![top.clone()];
    pages.extend(top.get_subcommands().filter(|c| !c.is_hide_set()).cloned());
    for cmd in pages {
        let page = clap_mangen::Man::new(cmd)
            .date(&date)
            .source(&source)
            .manual("etcdpack manual");
        let path = a.out.join(page.get_filename());
        let mut text = Vec::new();
        page.render(&mut text)?;
        fsutil::write_atomic(&path, &text, 0o644)?;
        reporter.detail("Created", path.display());
    }
    reporter.status("Created", format!("man pages in {}", a.out.display()));
    println!("{}", a.out.display());
    Ok(())
}

/// The date on the pages: `SOURCE_DATE_EPOCH` when set (reproducible
/// builds), else today.
fn man_date() -> Result<String> {
    let when = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => {
            let secs: i64 = s
                .trim()
                .parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH={s:?} is not a number of seconds"))?;
            time::OffsetDateTime::from_unix_timestamp(secs)
                .with_context(|| format!("SOURCE_DATE_EPOCH={s:?} is out of range"))?
        }
        Err(_) => time::OffsetDateTime::now_utc(),
    };
    Ok(when
        .format(time::macros::format_description!("[year]-[month]-[day]"))
        .expect("a date formats"))
}

/// The example config, and next to it the schema its first line names.
fn init(a: &InitArgs, reporter: &Reporter) -> Result<()> {
    if a.output == Path::new("-") {
        print!("{}", config::EXAMPLE);
        return Ok(());
    }
    if a.output.exists() {
        bail!(
            "{} already exists\n  help: remove it first, or write elsewhere with -o FILE",
            a.output.display()
        );
    }
    let schema_path = a.output.with_file_name(config::schema::FILE_NAME);
    let schema = config::schema::text();
    // An identical schema (from an earlier `init`) is kept; any other file is
    // the user's.
    let write_schema = match std::fs::read(&schema_path) {
        Ok(existing) if existing == schema.as_bytes() => false,
        Ok(_) => bail!(
            "{} already exists and is not this version's schema\n  help: remove it, or refresh it with `etcdpack schema > {}`",
            schema_path.display(),
            schema_path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(e).context(format!("cannot read {}", schema_path.display())),
    };
    if write_schema {
        fsutil::write_atomic(&schema_path, schema.as_bytes(), 0o644)?;
        reporter.status("Created", schema_path.display());
    }
    fsutil::write_atomic(&a.output, config::EXAMPLE.as_bytes(), 0o644)?;
    reporter.status("Created", a.output.display());
    println!("{}", a.output.display());
    Ok(())
}

fn load(path: &Path, overrides: &Overrides, reporter: &Reporter) -> Result<Cluster> {
    let cluster = config::load(path, overrides)?;
    pki::check_import(&cluster, time::OffsetDateTime::now_utc())?;
    for w in &cluster.warnings {
        reporter.warn(w);
    }
    Ok(cluster)
}

fn overrides(source: Option<&SourceArgs>, formats: Option<&Vec<Format>>) -> Overrides {
    Overrides {
        etcd_sha256: source.and_then(|s| s.etcd_sha256.clone()),
        formats: formats.cloned(),
    }
}

fn plan_cmd(a: &PlanArgs, reporter: &Reporter) -> Result<()> {
    let cluster = load(
        &a.config.config,
        &overrides(None, a.formats.as_ref()),
        reporter,
    )?;
    let previous = Manifest::read(&a.out).ok().flatten();
    let p = plan::plan(&cluster, &a.out, None, |node| {
        previous
            .as_ref()
            .and_then(|m| m.nodes.iter().find(|n| n.name == node))
            .map_or(1, |n| n.release)
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        reporter.status(
            "Release",
            format!("{} sha256 {}", p.release.url, p.release.sha256),
        );
        for path in p.paths() {
            println!("{}", path.display());
        }
    }
    Ok(())
}

fn fetch_cmd(a: &FetchArgs, reporter: &Reporter) -> Result<()> {
    let cluster = load(
        &a.config.config,
        &overrides(Some(&a.source), None),
        reporter,
    )?;
    let opts = a.source.fetch_options()?;
    let path = fetch::ensure_release(&cluster.etcd, &opts, reporter)?;
    println!("{}", path.display());
    Ok(())
}

/// The main job. Returns the manifest it wrote.
pub fn gen_cmd(a: &GenArgs, reporter: &Reporter) -> Result<Manifest> {
    let cluster = load(
        &a.config.config,
        &overrides(Some(&a.source), a.formats.as_ref()),
        reporter,
    )?;
    // Everything that can be checked without writing is checked first.
    let templates = Templates::new(a.templates.as_deref())?;
    let opts = a.source.fetch_options()?;
    // The release is verified before the output directory is touched.
    let tarball = fetch::ensure_release(&cluster.etcd, &opts, reporter)?;
    let bins = extract::read_release(&tarball, &cluster.etcd)?;

    let out_dir = &a.out;
    outdir::claim(out_dir, a.force, reporter)?;
    let _lock = OutputLock::acquire(out_dir)?;
    let previous = Manifest::read(out_dir).unwrap_or_else(|e| {
        reporter.warn(format!("{e:#}; package releases start again at 1"));
        None
    });
    let declared = outdir::begin(out_dir)?;

    let pki_dir = out_dir.join(out::PKI);
    let now = time::OffsetDateTime::now_utc();
    let pki = pki::ensure(&pki_dir, &cluster, now, reporter)?;
    let ca_not_before = verify::not_before(&pki.ca_cert_pem)?;
    let mtime = output::source_date_epoch(ca_not_before)?;

    // Every node's contents and name first, so that the marker declares
    // every output before the first one is written.
    let mut staged = Vec::new();
    for node in &cluster.nodes {
        let rendered = render::render_node(&templates, &cluster, node)?;
        let tree = stage::node_tree(&cluster, node, &bins, &pki, &rendered)?;
        let digest = tree.digest();
        let id = Identity {
            name: cluster.packages.name_for(&cluster.name, &node.name),
            version: cluster.etcd.version.clone(),
            release: Manifest::next_release(previous.as_ref(), &node.name, &digest),
            arch: cluster.etcd.arch,
        };
        staged.push((node, tree, digest, id));
    }
    let mut outputs = Vec::new();
    for (node, _, _, id) in &staged {
        outputs.push(format!("{}/{}", out::NODES, node.name));
        for format in &cluster.packages.formats {
            outputs.push(format!("{}/{}", out::DIST, format.file_name(id)));
        }
    }
    outdir::declare(out_dir, &outputs)?;

    let dist = out_dir.join(out::DIST);
    outdir::create_private(&dist)?;
    outdir::create_private(&out_dir.join(out::NODES))?;
    let mut nodes = Vec::new();
    for (node, tree, digest, id) in staged {
        let tree_dir = out_dir.join(out::NODES).join(&node.name);
        tree.write_to(&tree_dir)?;
        reporter.status("Staged", tree_dir.display());

        let spec = package_spec(&templates, &cluster, node, &tree, id.clone(), mtime)?;
        let mut artifacts = Vec::new();
        for &format in &cluster.packages.formats {
            let name = format.file_name(&id);
            let path = dist.join(&name);
            let mut sum = None;
            fsutil::write_atomic_with(&path, outdir::ARTIFACT_MODE, |f| {
                let mut w = HashingWriter::new(BufWriter::new(f));
                format.write(&spec, &mut w)?;
                let (hash, size, mut inner) = w.finish();
                inner.flush()?;
                sum = Some((hash, size));
                Ok(())
            })?;
            let (sha256, size) = sum.expect("set by the writer");
            reporter.status("Packaged", path.display());
            artifacts.push(Artifact {
                format: format.as_str().to_owned(),
                path: format!("{}/{name}", out::DIST),
                sha256,
                size,
            });
        }
        let leaf = pki
            .leaf(&format!("nodes/{}", node.name))
            .context("internal: node certificate missing")?;
        nodes.push(NodeInfo {
            name: node.name.clone(),
            ip: node.ip.to_string(),
            package: id.name.clone(),
            version: id.full_version(),
            release: id.release,
            content_sha256: digest,
            tree: format!("{}/{}", out::NODES, node.name),
            cert_not_after: rfc3339(leaf.not_after),
            artifacts,
        });
    }
    outdir::remove_stale(out_dir, previous.as_ref(), &declared, &outputs, reporter)?;

    let manifest = Manifest {
        generator: format!("etcdpack {}", env!("CARGO_PKG_VERSION")),
        cluster: cluster.name.clone(),
        source_date_epoch: mtime,
        etcd: EtcdInfo {
            version: cluster.etcd.version.clone(),
            arch: cluster.etcd.arch.as_str().to_owned(),
            sha256: cluster.etcd.sha256.clone(),
        },
        ca: CaInfo {
            cert: format!("{}/{}", out::PKI, pki::CA_CERT),
            not_after: rfc3339(pki.ca_not_after),
        },
        nodes,
        clients: cluster
            .clients
            .iter()
            .map(|c| {
                let id = format!("clients/{}", c.name);
                let not_after = pki
                    .leaf(&id)
                    .map(|l| rfc3339(l.not_after))
                    .unwrap_or_default();
                ClientInfo {
                    name: c.name.clone(),
                    cert: rel(out_dir, &pki::cert_path(&pki_dir, &id)),
                    key: rel(out_dir, &pki::key_path(&pki_dir, &id)),
                    not_after,
                }
            })
            .collect(),
    };
    manifest.write(out_dir)?;
    outdir::finish(out_dir)?;
    reporter.status(
        "Finished",
        format!("{} node(s) in {}", manifest.nodes.len(), out_dir.display()),
    );

    if a.json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    } else {
        for art in manifest.artifacts() {
            println!("{}", out_dir.join(&art.path).display());
        }
    }
    Ok(manifest)
}

/// What every format needs to package `node`: its tree, identity, metadata,
/// and the scripts of each format in `packages.formats`, rendered for `tree`.
pub fn package_spec<'a>(
    templates: &Templates,
    cluster: &Cluster,
    node: &config::Node,
    tree: &'a stage::NodeTree,
    id: Identity,
    mtime: u64,
) -> Result<PackageSpec<'a>> {
    let mut scripts = BTreeMap::new();
    for format in &cluster.packages.formats {
        for &name in format.template_names() {
            let text = render::render_script(
                templates,
                name,
                cluster,
                node,
                &tree.script_entries(),
                &id.full_version(),
            )?;
            scripts.insert(name, text);
        }
    }
    Ok(PackageSpec {
        id,
        tree,
        scripts,
        summary: format!("etcd member {} of cluster {}", node.name, cluster.name),
        description: format!(
            "etcd {} with TLS certificates and configuration for member {} ({}) of the {}-member cluster {}, and its systemd unit.",
            cluster.etcd.version,
            node.name,
            node.ip,
            cluster.nodes.len(),
            cluster.name
        ),
        maintainer: cluster.packages.maintainer.clone(),
        homepage: cluster.packages.homepage.clone(),
        // etcd's licence; etcdpack's generated files are under the same.
        license: "Apache-2.0",
        cluster: cluster.name.clone(),
        service_user: cluster.service.user.clone(),
        mtime,
    })
}

fn rel(base: &Path, path: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn verify_cmd(a: &VerifyArgs) -> Result<()> {
    let report = verify::verify(&a.dir)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for c in &report.checks {
            println!("{} {}", if c.ok { "ok  " } else { "FAIL" }, c.what);
        }
    }
    report.into_result()
}
