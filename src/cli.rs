//! Command-line surface. Users' scripts rely on these names: keep them stable.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::fetch::{self, FetchOptions};
use crate::model::Format;
use crate::report::Verbosity;

/// The exit codes, shown after `--help` of the commands that use them all.
/// Every exit code and what it means: the one list. [`EXIT_CODES`] shows it
/// in `--help`, [`crate::app::exit_code`] returns it, and the README's
/// list is held to it by a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    /// Download, I/O, certificates, packaging.
    Failure = 1,
    /// An invalid config or command line.
    Invalid = 2,
    /// `verify` found a problem, or the output is from an incomplete run.
    Unverified = 3,
    /// `status`: a certificate expires within the warning window.
    Expiring = 4,
}

impl Exit {
    pub const ALL: [Exit; 5] = [
        Exit::Success,
        Exit::Failure,
        Exit::Invalid,
        Exit::Unverified,
        Exit::Expiring,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    /// What the code means, as `--help` says it.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::Failure => "failure (download, I/O, certificates, packaging)",
            Exit::Invalid => "invalid config or usage",
            Exit::Unverified => "verify found a problem, or the output is from an incomplete run",
            Exit::Expiring => "status: a certificate expires within the warning window",
        }
    }
}

/// [`Exit`] as every command's `--help` ends (a constant, for clap).
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  failure (download, I/O, certificates, packaging)
  2  invalid config or usage
  3  verify found a problem, or the output is from an incomplete run
  4  status: a certificate expires within the warning window";

/// Turn one YAML description of an etcd cluster into per-node TLS-ready packages.
#[derive(Debug, Parser)]
#[command(name = "etcdpack", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Print only errors on stderr.
    // Shown after each command's own options.
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        display_order = 900
    )]
    pub quiet: bool,

    /// Print more detail on stderr (reused certificates, cache hits).
    #[arg(short, long, global = true, display_order = 901)]
    pub verbose: bool,
}

/// The command line as clap sees it: the derived command plus what cannot be
/// written as a constant (the pinned releases after `--version`). Parsing,
/// completions and man pages all start here.
pub fn command() -> clap::Command {
    Cli::command().long_version(long_version())
}

/// `--version`: this version, then the etcd releases whose checksums are pinned.
pub fn long_version() -> String {
    format!(
        "{}\npinned etcd releases: {}",
        env!("CARGO_PKG_VERSION"),
        crate::release::pinned_list()
    )
}

impl Cli {
    /// Parse the process's arguments; on `--help`, `--version` or a usage
    /// error, print and exit (usage errors with code 2).
    pub fn parse_args() -> Self {
        let matches = command().get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    pub fn verbosity(&self) -> Verbosity {
        if self.quiet {
            Verbosity::Quiet
        } else if self.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented example config for a 3-node cluster.
    Init(InitArgs),
    /// Show what `gen` would change, node by node, without writing anything.
    Plan(PlanArgs),
    /// Download and verify the etcd release into the cache, and nothing else.
    Fetch(FetchArgs),
    /// Generate certificates, configuration and per-node packages (the main job).
    Gen(GenArgs),
    /// Re-issue leaf certificates from the same CA (never the CA itself) and
    /// rebuild only the packages they are in; those packages' releases rise.
    Renew(RenewArgs),
    /// Rotate the CA with no downtime, one phase at a time (trust, issue,
    /// retire), each rolled out to every node before the next.
    RotateCa(RotateCaArgs),
    /// List every certificate of an output directory with its expiry,
    /// soonest first; exit 4 if one expires within the warning window.
    Status(StatusArgs),
    /// Re-check an output directory: checksums, certificate chains and expiry,
    /// node certificates against their names and IPs, and that no artifact
    /// contains the CA key.
    Verify(VerifyArgs),
    /// Publish the packages of a gen run as signed apt and dnf/yum repositories.
    Publish(PublishArgs),
    /// Create an OpenPGP key that signs published repositories.
    SigningKey(SigningKeyArgs),
    /// Print a shell completion script on stdout.
    Completions(CompletionsArgs),
    /// Write a man page for etcdpack and for each of its commands.
    Man(ManArgs),
    /// Print the JSON Schema of cluster.yaml on stdout, for editors and linters.
    Schema,
}

/// The shells `completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl From<Shell> for clap_complete::Shell {
    fn from(s: Shell) -> Self {
        match s {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = "\
Where the script goes:
  bash  /usr/share/bash-completion/completions/etcdpack
        or ~/.local/share/bash-completion/completions/etcdpack
  zsh   _etcdpack in a directory of $fpath
  fish  ~/.config/fish/completions/etcdpack.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for: bash, zsh or fish.
    #[arg(value_enum, hide_possible_values = true)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write the pages to (etcdpack.1, etcdpack-gen.1, …);
    /// created if missing.
    #[arg(short, long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the example; `-` for stdout. Refuses to overwrite.
    /// The JSON Schema editors use to check it goes next to it, as
    /// cluster.schema.json.
    #[arg(short, long, default_value = "cluster.yaml")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The cluster description.
    #[arg(short, long, value_name = "FILE", default_value = "cluster.yaml")]
    pub config: PathBuf,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SourceArgs {
    /// Use this local release tarball instead of downloading (air-gapped installs).
    /// It is still verified against the pinned or given SHA-256.
    #[arg(long, value_name = "FILE")]
    pub etcd_tarball: Option<PathBuf>,

    /// Expected SHA-256 of the release tarball (hex); overrides the pinned value
    /// and `etcd.sha256` in the config.
    #[arg(long, value_name = "HEX")]
    pub etcd_sha256: Option<String>,

    /// Base URL to download releases from instead of the official GitHub
    /// releases; the file is fetched from `URL/v{VERSION}/etcd-v{VERSION}-linux-{ARCH}.tar.gz`.
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,

    /// Where verified release tarballs are kept
    /// [default: $XDG_CACHE_HOME/etcdpack or ~/.cache/etcdpack].
    #[arg(long, value_name = "DIR", env = "ETCDPACK_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl SourceArgs {
    /// Where this command line says releases come from.
    pub fn fetch_options(&self) -> anyhow::Result<FetchOptions> {
        let cache_dir = match &self.cache_dir {
            Some(dir) => dir.clone(),
            None => fetch::default_cache_dir(
                std::env::var_os("XDG_CACHE_HOME"),
                std::env::var_os("HOME"),
            )?,
        };
        Ok(FetchOptions {
            mirror: self.mirror.clone(),
            local_tarball: self.etcd_tarball.clone(),
            ..FetchOptions::new(cache_dir)
        })
    }
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArg,

    /// Output directory the plan is for: what a `gen` into it would do.
    #[arg(short, long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,

    /// Where the release comes from, as for `gen` (the plan downloads nothing).
    #[command(flatten)]
    pub source: SourceArgs,

    /// Package formats, comma-separated; overrides `packages.formats`.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub formats: Option<Vec<Format>>,

    /// Templates that replace the built-in ones, as for `gen`.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,

    /// Print the plan as one JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub config: ConfigArg,

    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct GenArgs {
    #[command(flatten)]
    pub config: ConfigArg,

    /// Output directory (created if missing; `pki/` inside it is reused on reruns).
    #[arg(short, long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,

    #[command(flatten)]
    pub source: SourceArgs,

    /// Package formats, comma-separated; overrides `packages.formats`.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub formats: Option<Vec<Format>>,

    /// A directory whose templates replace the built-in ones of the same
    /// relative name: etcd.conf, etcd.service, etcdctl.sh, install.sh,
    /// deb/{preinst,postinst,prerm,postrm,lintian-overrides},
    /// rpm/{pre,post,preun,postun}.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,

    /// Print a JSON summary of what was written on stdout instead of paths.
    #[arg(long)]
    pub json: bool,

    /// Write into a non-empty directory that holds no manifest.json of an
    /// earlier run. Files etcdpack did not write are never removed.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct RenewArgs {
    #[command(flatten)]
    pub gen_args: GenArgs,

    /// Renew only the certificates that expire within this long, e.g. 30d or
    /// 720h [default: every leaf certificate].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub within: Option<std::time::Duration>,

    /// Renew only this node's certificate (repeatable, or comma-separated);
    /// clients' certificates are then left alone.
    #[arg(long = "node", value_name = "NAME", value_delimiter = ',')]
    pub nodes: Vec<String>,

    /// Print the plan of the renewal, as `etcdpack plan` does, and write
    /// nothing.
    #[arg(long)]
    pub plan: bool,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct RotateCaArgs {
    /// The phase: trust (a new CA, trusted beside the current one), issue
    /// (every certificate from the new CA), retire (the old CA archived and
    /// trusted no more).
    #[arg(value_enum, hide_possible_values = true)]
    pub phase: RotatePhase,

    #[command(flatten)]
    pub gen_args: GenArgs,

    /// Print the plan of the phase, as `etcdpack plan` does, and write
    /// nothing.
    #[arg(long)]
    pub plan: bool,
}

/// A phase of a CA rotation, in the order they go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RotatePhase {
    Trust,
    Issue,
    Retire,
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct StatusArgs {
    /// The output directory of a `gen` run.
    #[arg(value_name = "DIR", default_value = "out")]
    pub dir: PathBuf,

    /// The warning window: exit 4 when a certificate expires within it.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = parse_duration)]
    pub warn: std::time::Duration,

    /// Print the certificates as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// A duration as the config writes one: 30d, 12h, 1h30m.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::config::units::parse_duration(
        &crate::config::units::Quantity::Text(s.to_owned()),
        std::time::Duration::from_secs(1),
    )
}

#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct VerifyArgs {
    /// The output directory of a `gen` run.
    #[arg(value_name = "DIR", default_value = "out")]
    pub dir: PathBuf,

    /// Print the findings as one JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = EXIT_CODES,
    group(clap::ArgGroup::new("signing").args(["sign_key", "unsigned"]))
)]
pub struct PublishArgs {
    /// The output directory of a finished gen run, whose .deb and .rpm
    /// packages are published.
    #[arg(short, long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,

    /// The cluster's config, whose `publish:` section gives the defaults of
    /// the options below (each option given here wins).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The repository directory, created if missing; serve it with any
    /// static web server. Publishing again adds what changed. Required,
    /// here or as publish.repo.
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,

    /// The suite to publish into: apt's distribution name, and the
    /// directory of the dnf repository [default: stable].
    #[arg(long, value_name = "NAME")]
    pub suite: Option<String>,

    /// Armored OpenPGP secret key that signs the repository (from `gpg
    /// --export-secret-keys --armor`, or `etcdpack signing-key`); never
    /// inside --repo. A passphrase is read from $ETCDPACK_SIGN_PASSPHRASE.
    /// This or --unsigned is required, here or in the config.
    #[arg(long, value_name = "FILE", env = "ETCDPACK_SIGN_KEY")]
    pub sign_key: Option<PathBuf>,

    /// Publish without signatures: clients can then not tell these packages
    /// from anyone else's.
    #[arg(long)]
    pub unsigned: bool,

    /// The repository's URL as machines reach it, for the client files
    /// [default: file:// and the repository's absolute path].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Releases of each package the indexes keep; older ones are pruned
    /// [default: 3].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,

    /// Publish packages that hold a node's private key in clear. Only for a
    /// repository that no one but the nodes themselves can read.
    #[arg(long)]
    pub allow_cleartext_keys: bool,
}

#[derive(Debug, Args)]
pub struct SigningKeyArgs {
    /// Where to write the armored secret key (0600); refuses to overwrite.
    /// The public key goes next to it, with `.pub` appended.
    #[arg(short, long, value_name = "FILE")]
    pub out: PathBuf,

    /// The key's user ID, e.g. "ops repository <ops@example.com>".
    #[arg(
        long,
        value_name = "TEXT",
        default_value = "etcdpack repository signing key"
    )]
    pub name: String,

    /// rsa-4096 (rpm on EL9 verifies only RSA), or ed25519.
    #[arg(
        long,
        value_enum,
        default_value = "rsa-4096",
        hide_possible_values = true
    )]
    pub algorithm: crate::publish::sign::KeyAlgorithm,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_lists_every_exit_code_and_the_readme_too() {
        let listed: Vec<String> = Exit::ALL
            .iter()
            .map(|e| format!("  {}  {}", e.code(), e.meaning()))
            .collect();
        assert_eq!(EXIT_CODES, format!("Exit codes:\n{}", listed.join("\n")));
        let readme = include_str!("../README.md");
        let line = readme
            .lines()
            .find(|l| l.starts_with("Exit codes (also listed by `--help`):"))
            .expect("the README lists the exit codes");
        let paragraph: String = readme[readme.find(line).unwrap()..]
            .split("\n\n")
            .next()
            .unwrap()
            .replace('\n', " ");
        for e in Exit::ALL {
            assert!(
                paragraph.contains(&format!("{} {}", e.code(), e.meaning())),
                "the README's exit codes lack {} {}: {paragraph}",
                e.code(),
                e.meaning()
            );
        }
    }

    #[test]
    fn explicit_cache_dir_and_sources_come_from_the_args() {
        let args = SourceArgs {
            etcd_tarball: Some("etcd.tgz".into()),
            etcd_sha256: None,
            mirror: Some("http://mirror".into()),
            cache_dir: Some("/c".into()),
        };
        let opts = args.fetch_options().unwrap();
        assert_eq!(opts.cache_dir, PathBuf::from("/c"));
        assert_eq!(opts.mirror.as_deref(), Some("http://mirror"));
        assert_eq!(opts.local_tarball, Some(PathBuf::from("etcd.tgz")));
        assert_eq!(opts.retries, 3);
        assert_eq!(opts.max_bytes, 512 << 20);
    }
}
