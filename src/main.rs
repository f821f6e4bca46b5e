//! `etcdpack` binary: parse the command line, run it, map failure to an exit code.

use std::process::ExitCode;

use etcdpack::{app, cli::Cli, report::Reporter};

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let reporter = Reporter::new(cli.verbosity());
    match app::run(cli, &reporter) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            reporter.error(&err);
            ExitCode::from(app::exit_code(&err).code())
        }
    }
}
