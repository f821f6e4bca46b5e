//! Runs a parsed command line: each command walks the pipeline stages it needs.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cli::{
    self, Cli, Command, CompletionsArgs, Exit, FetchArgs, GenArgs, InitArgs, ManArgs, PlanArgs,
    PublishArgs, RenewArgs, RotateCaArgs, RotatePhase, SigningKeyArgs, SourceArgs, StatusArgs,
    VerifyArgs,
};
use crate::clock::Clock;
use crate::config::{self, Cluster, ConfigError, Overrides};
use crate::fetch;
use crate::fsutil::{self, OutputLock};
use crate::model::Format;
use crate::output::Manifest;
use crate::package;
use crate::plan::{self, Run, RunOptions};
use crate::render::Templates;
use crate::report::Reporter;
use crate::{execute, extract, outdir, pki, publish, status, verify};

/// The exit code of a command that failed with `err` (see [`Exit`]).
pub fn exit_code(err: &anyhow::Error) -> Exit {
    if err.downcast_ref::<ConfigError>().is_some()
        || err.downcast_ref::<UsageError>().is_some()
        || err.downcast_ref::<plan::OutOfOrder>().is_some()
    {
        Exit::Invalid
    } else if err.downcast_ref::<verify::VerifyFailed>().is_some() {
        Exit::Unverified
    } else if err.downcast_ref::<status::Expiring>().is_some() {
        Exit::Expiring
    } else {
        Exit::Failure
    }
}

/// Options that do not fit together, or one missing that nothing else
/// gives: exit code 2, as for clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

pub fn run(cli: Cli, reporter: &Reporter) -> Result<()> {
    match cli.command {
        Command::Init(a) => init(&a, reporter),
        Command::Plan(a) => plan_cmd(&a, reporter),
        Command::Fetch(a) => fetch_cmd(&a, reporter),
        Command::Gen(a) => gen_cmd(&a, reporter).map(|_| ()),
        Command::Renew(a) => renew_cmd(&a, reporter),
        Command::RotateCa(a) => rotate_ca_cmd(&a, reporter),
        Command::Status(a) => status_cmd(&a),
        Command::Verify(a) => verify_cmd(&a),
        Command::Publish(a) => publish_cmd(&a, reporter),
        Command::SigningKey(a) => signing_key(&a, reporter),
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
    Ok(Clock::from_env()?
        .date()?
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

fn load(path: &Path, overrides: &Overrides, clock: &Clock, reporter: &Reporter) -> Result<Cluster> {
    let cluster = config::load(path, overrides)?;
    pki::check_import(&cluster, clock.now())?;
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
    let clock = Clock::from_env()?;
    let cluster = load(
        &a.config.config,
        &overrides(Some(&a.source), a.formats.as_ref()),
        &clock,
        reporter,
    )?;
    let templates = Templates::new(a.templates.as_deref(), &package::templates())?;
    let renewal = pki::Renewal::default();
    let options = RunOptions {
        mirror: a.source.mirror.as_deref(),
        clock,
        renewal: &renewal,
        rotate: None,
    };
    let run = Run::new(&cluster, &templates, &a.out, options, reporter)?;
    print_plan(&plan::build(&run)?, a.json)
}

/// The plan of `gen` with `g`'s options, renewing what `renewal` asks for
/// and taking the CA rotation to `rotate`, printed; nothing written.
fn print_gen_plan(
    g: &GenArgs,
    renewal: &pki::Renewal,
    rotate: Option<pki::RotationStep>,
    reporter: &Reporter,
) -> Result<()> {
    let clock = Clock::from_env()?;
    let cluster = load(
        &g.config.config,
        &overrides(Some(&g.source), g.formats.as_ref()),
        &clock,
        reporter,
    )?;
    check_renewed_nodes(&cluster, renewal, &g.config.config)?;
    let templates = Templates::new(g.templates.as_deref(), &package::templates())?;
    let options = RunOptions {
        mirror: g.source.mirror.as_deref(),
        clock,
        renewal,
        rotate,
    };
    let run = Run::new(&cluster, &templates, &g.out, options, reporter)?;
    print_plan(&plan::build(&run)?, g.json)
}

/// `gen` taking the CA rotation to the phase asked for; `--plan` only
/// prints its plan.
fn rotate_ca_cmd(a: &RotateCaArgs, reporter: &Reporter) -> Result<()> {
    let step = match a.phase {
        RotatePhase::Trust => pki::RotationStep::Trust,
        RotatePhase::Issue => pki::RotationStep::Issue,
        RotatePhase::Retire => pki::RotationStep::Retire,
    };
    let renewal = pki::Renewal::default();
    if a.plan {
        return print_gen_plan(&a.gen_args, &renewal, Some(step), reporter);
    }
    gen_with(&a.gen_args, &renewal, Some(step), reporter).map(|_| ())
}

fn print_plan(p: &plan::Plan, json: bool) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    if json {
        let mut json = serde_json::to_vec_pretty(p)?;
        json.push(b'\n');
        stdout.write_all(&json)
    } else {
        stdout.write_all(plan::render_text(p).as_bytes())
    }
    .context("cannot write the plan to stdout")
}

/// `gen` with the renewal asked for; `--plan` only prints its plan.
fn renew_cmd(a: &RenewArgs, reporter: &Reporter) -> Result<()> {
    let within = match a.within {
        Some(w) => Some(time::Duration::try_from(w).map_err(|_| {
            UsageError(format!(
                "--within {w:?} is out of range\n  help: give e.g. 30d"
            ))
        })?),
        None => None,
    };
    let renewal = pki::Renewal {
        requested: true,
        within,
        nodes: a.nodes.clone(),
        rotation: pki::RotationStep::None,
    };
    if a.plan {
        return print_gen_plan(&a.gen_args, &renewal, None, reporter);
    }
    gen_with(&a.gen_args, &renewal, None, reporter).map(|_| ())
}

/// Every `--node` of a renewal names a node of the config.
fn check_renewed_nodes(cluster: &Cluster, renewal: &pki::Renewal, config: &Path) -> Result<()> {
    for n in &renewal.nodes {
        if cluster.node(n).is_none() {
            let names: Vec<&str> = cluster.nodes.iter().map(|n| n.name.as_str()).collect();
            return Err(UsageError(format!(
                "--node {n:?} is not a node of {}\n  help: name one of: {}",
                config.display(),
                names.join(", ")
            ))
            .into());
        }
    }
    Ok(())
}

fn status_cmd(a: &StatusArgs) -> Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let window = time::Duration::try_from(a.warn).map_err(|_| {
        UsageError(format!(
            "--warn {:?} is out of range\n  help: give e.g. 30d",
            a.warn
        ))
    })?;
    let report = status::read(&a.dir, now, window)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    report.into_result()
}

fn fetch_cmd(a: &FetchArgs, reporter: &Reporter) -> Result<()> {
    let cluster = load(
        &a.config.config,
        &overrides(Some(&a.source), None),
        &Clock::from_env()?,
        reporter,
    )?;
    let opts = a.source.fetch_options()?;
    let path = fetch::ensure_release(&cluster.etcd, &opts, reporter)?;
    println!("{}", path.display());
    Ok(())
}

/// The main job: build the plan, then carry it out. Returns the manifest
/// it wrote.
pub fn gen_cmd(a: &GenArgs, reporter: &Reporter) -> Result<Manifest> {
    gen_with(a, &pki::Renewal::default(), None, reporter)
}

/// `gen`, renewing what `renewal` asks for and taking the CA rotation to
/// `rotate`.
fn gen_with(
    a: &GenArgs,
    renewal: &pki::Renewal,
    rotate: Option<pki::RotationStep>,
    reporter: &Reporter,
) -> Result<Manifest> {
    let clock = Clock::from_env()?;
    let cluster = load(
        &a.config.config,
        &overrides(Some(&a.source), a.formats.as_ref()),
        &clock,
        reporter,
    )?;
    check_renewed_nodes(&cluster, renewal, &a.config.config)?;
    let templates = Templates::new(a.templates.as_deref(), &package::templates())?;
    let out_dir = &a.out;
    let options = RunOptions {
        mirror: a.source.mirror.as_deref(),
        clock,
        renewal,
        rotate,
    };
    // Everything that can be checked without writing is checked first: a
    // refused upgrade before the release is downloaded.
    let run = Run::new(&cluster, &templates, out_dir, options, reporter)?;
    let opts = a.source.fetch_options()?;
    // The release is verified before the output directory is touched.
    let tarball = fetch::ensure_release(&cluster.etcd, &opts, reporter)?;
    let bins = extract::OnDemand::new(&tarball, &cluster.etcd);
    // The release is read before the output directory is touched, unless
    // the last run there used this very release: then a run that only
    // keeps what is there does not need it (and it was read fine before).
    let same_release = run
        .previous()
        .is_some_and(|m| m.etcd.sha256.eq_ignore_ascii_case(&cluster.etcd.sha256));
    if !same_release {
        bins.get()?;
    }

    outdir::claim(out_dir, a.force, reporter)?;
    let _lock = OutputLock::acquire(out_dir)?;
    // The record read before the lock is still the one there.
    run.previous.check_unchanged(out_dir)?;
    let plan = plan::build(&run)?;
    // A run that builds anything reads the release before it writes.
    if plan.builds() {
        bins.get()?;
    }
    let membership = plan.membership.clone();
    let manifest = execute::run(plan, &run, &bins)?;
    reporter.status(
        "Finished",
        format!("{} node(s) in {}", manifest.nodes.len(), out_dir.display()),
    );
    if !membership.is_empty() {
        // The running cluster changes by hand (or by a pipeline): say how,
        // exactly as `plan` does. stdout stays the list of artifacts.
        reporter.status(
            "Next",
            format!(
                "change the running cluster's membership (run as root, in order):\n{}",
                crate::membership::render_text(&membership).trim_end()
            ),
        );
    }

    if a.json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    } else {
        for art in manifest.artifacts() {
            println!("{}", out_dir.join(&art.path).display());
        }
    }
    Ok(manifest)
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

fn publish_cmd(a: &PublishArgs, reporter: &Reporter) -> Result<()> {
    let clock = Clock::from_env()?;
    // The config's publish: section, under the command line's options.
    let cluster = match &a.config {
        Some(path) => Some(load(path, &Overrides::default(), &clock, reporter)?),
        None => None,
    };
    let defaults = cluster
        .as_ref()
        .map(|c| c.publish.clone())
        .unwrap_or_default();
    let shown = a
        .config
        .as_ref()
        .map_or("the config".to_owned(), |p| p.display().to_string());
    let flags = config::PublishFlags {
        repo: a.repo.clone(),
        suite: a.suite.clone(),
        url: a.url.clone(),
        sign_key: a.sign_key.clone(),
        unsigned: a.unsigned,
        keep: a.keep,
    };
    let settings = match defaults.resolve(flags, &shown) {
        Ok(s) => s,
        Err(config::PublishProblem::Missing(why)) => return Err(UsageError(why).into()),
        Err(config::PublishProblem::Invalid(why)) => bail!(why),
    };
    let repo_arg = settings.repo.clone();
    let suite = settings.suite.clone();
    let sign_key = settings.sign_key.clone();
    let keep = settings.keep;
    let repo = std::path::absolute(&repo_arg)
        .with_context(|| format!("cannot resolve {}", repo_arg.display()))?;
    let signer = match &sign_key {
        Some(path) => {
            let key = std::path::absolute(path)
                .with_context(|| format!("cannot resolve {}", path.display()))?;
            let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
            if real(&key).starts_with(real(&repo)) {
                bail!(
                    "the signing key {} is inside the repository {}, which is served to anyone\n  help: keep the secret key outside --repo",
                    path.display(),
                    repo_arg.display()
                );
            }
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key)
                .with_context(|| format!("cannot read the signing key {}", path.display()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                reporter.warn(format!(
                    "the signing key {} can be read by others (mode {:04o}); chmod 600 it",
                    path.display(),
                    mode & 0o7777
                ));
            }
            Some(publish::sign::Signer::load(path)?)
        }
        None => {
            reporter.warn(
                "publishing an UNSIGNED repository (--unsigned): machines cannot tell its packages from anyone else's; its client file says `Trusted: yes`",
            );
            None
        }
    };
    let url = settings
        .url
        .clone()
        .unwrap_or_else(|| format!("file://{}", repo.display()));
    let options = publish::Options {
        out: &a.out,
        repo: &repo,
        suite: &suite,
        signer: signer.as_ref(),
        url: &url,
        keep: keep as usize,
        cluster: cluster.as_ref().map(|c| c.name.as_str()),
        allow_cleartext_keys: a.allow_cleartext_keys,
        date: clock.stamp(clock.now().unix_timestamp().max(0) as u64),
    };
    let published = publish::publish(&options, reporter)?;
    reporter.status(
        "Published",
        format!(
            "{} in {} ({} new package(s){})",
            suite,
            repo_arg.display(),
            published.added.len(),
            if published.changed {
                ""
            } else {
                ", index unchanged"
            }
        ),
    );
    for f in &published.client_files {
        println!("{}", f.display());
    }
    Ok(())
}

fn signing_key(a: &SigningKeyArgs, reporter: &Reporter) -> Result<()> {
    let public = {
        let mut p = a.out.clone().into_os_string();
        p.push(".pub");
        std::path::PathBuf::from(p)
    };
    for p in [&a.out, &public] {
        if p.exists() {
            bail!(
                "{} already exists\n  help: remove it first, or write elsewhere with --out FILE",
                p.display()
            );
        }
    }
    reporter.status(
        "Generating",
        format!("an {} signing key", a.algorithm.label()),
    );
    let key = publish::sign::generate(&a.name, a.algorithm)?;
    let secret = publish::sign::armored_secret(&key)?;
    let signer = publish::sign::Signer::new(key)?;
    fsutil::write_atomic(&a.out, secret.as_bytes(), 0o600)?;
    fsutil::write_atomic(&public, signer.public_armored()?.as_bytes(), 0o644)?;
    reporter.status("Created", a.out.display());
    reporter.status("Created", public.display());
    println!("{}", signer.fingerprint());
    Ok(())
}
