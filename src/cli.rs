//! Command-line surface. Users' scripts rely on these names: keep them stable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::package::Format;
use crate::report::Verbosity;

/// Turn one YAML description of an etcd cluster into per-node TLS-ready packages.
#[derive(Debug, Parser)]
#[command(name = "etcdpack", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Print only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail on stderr (reused certificates, cache hits).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

impl Cli {
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
    /// Print every artifact that `gen` would write, without writing anything.
    Plan(PlanArgs),
    /// Download and verify the etcd release into the cache, and nothing else.
    Fetch(FetchArgs),
    /// Generate certificates, configuration and per-node packages (the main job).
    Gen(GenArgs),
    /// Re-check an output directory: checksums, certificate chains and expiry,
    /// node certificates against their names and IPs, and that no artifact
    /// contains the CA key.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write the example; `-` for stdout. Refuses to overwrite.
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

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArg,

    /// Output directory the plan is for.
    #[arg(short, long, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,

    /// Package formats, comma-separated; overrides `packages.formats`.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub formats: Option<Vec<Format>>,

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
pub struct VerifyArgs {
    /// The output directory of a `gen` run.
    #[arg(value_name = "DIR", default_value = "out")]
    pub dir: PathBuf,

    /// Print the findings as one JSON document.
    #[arg(long)]
    pub json: bool,
}
