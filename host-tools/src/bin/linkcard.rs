//! `linkcard`: host tools for linkcard cards.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use host_tools::conformance::{self, collect_script_paths, default_script_dir};
use host_tools::script::{self, Script};

/// Every script passed (or parsed).
const EXIT_OK: u8 = 0;
/// At least one script failed on the card.
const EXIT_FAILED: u8 = 1;
/// Usage, I/O or script syntax errors: nothing trustworthy was run. Clap uses 2 for usage errors too.
const EXIT_ERROR: u8 = 2;

/// Host tools for linkcard smart cards.
#[derive(Debug, Parser)]
#[command(name = "linkcard", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Conformance scripts (*.apdu): run them against a card, or check their syntax.
    #[command(subcommand)]
    Conformance(ConformanceCommand),
}

const RUN_AFTER_HELP: &str = "\
With no SCRIPTS_OR_DIRS, runs every *.apdu in tests/conformance under the current directory, or in this
workspace's tests/conformance when there is none. Directories run their *.apdu files sorted by name.
Every script runs on a fresh card, powered on, and stops at its first mismatch.

The text report has one line per script (PASS or FAIL, with details under a failure) and ends with the
line `N passed, M failed`. The script format is described in tests/conformance/README.md.

Exit status: 0 when every script passes, 1 when any fails, 2 on usage, I/O or script syntax errors.";

const CHECK_AFTER_HELP: &str = "\
Only parses the scripts: the card is never touched. Every error is reported as FILE:LINE: message.
With no SCRIPTS_OR_DIRS, checks the same default directory as `run`.

Exit status: 0 when every script parses, 2 on any syntax or I/O error.";

#[derive(Debug, Subcommand)]
enum ConformanceCommand {
    /// Run conformance scripts against a card and report which pass.
    #[command(after_help = RUN_AFTER_HELP)]
    Run(RunArgs),
    /// Check the syntax of conformance scripts without running them.
    #[command(after_help = CHECK_AFTER_HELP)]
    Check(CheckArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Run on the card image in this process, a fresh card per script (the default; the only transport yet).
    #[arg(long)]
    in_process: bool,

    /// Print the report as JSON on standard output instead of text.
    #[arg(long)]
    json: bool,

    /// Trace every APDU exchange on standard error.
    #[arg(short, long)]
    verbose: bool,

    /// Script files, or directories of *.apdu scripts.
    #[arg(value_name = "SCRIPTS_OR_DIRS")]
    paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Script files, or directories of *.apdu scripts.
    #[arg(value_name = "SCRIPTS_OR_DIRS")]
    paths: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Conformance(ConformanceCommand::Run(args)) => run(&args),
        Command::Conformance(ConformanceCommand::Check(args)) => check(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("linkcard: error: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(args: &RunArgs) -> anyhow::Result<u8> {
    // In process is the only transport so far; `--in-process` exists so scripts and CI can say so
    // explicitly, and keep working when other transports arrive.
    let _ = args.in_process;
    let Some(scripts) = load_scripts(&args.paths)? else {
        return Ok(EXIT_ERROR);
    };
    let report = conformance::run_in_process(&scripts, args.verbose);
    if args.json {
        println!(
            "{}",
            report.to_json().context("cannot serialise the report")?
        );
    } else {
        print!("{}", report.human());
    }
    Ok(if report.all_passed() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

fn check(args: &CheckArgs) -> anyhow::Result<u8> {
    let Some(scripts) = load_scripts(&args.paths)? else {
        return Ok(EXIT_ERROR);
    };
    for script in &scripts {
        println!(
            "OK {} ({} steps, {} commands)",
            script.path.display(),
            script.steps.len(),
            script.command_count()
        );
    }
    println!("{} scripts checked, no errors", scripts.len());
    Ok(EXIT_OK)
}

/// Finds and parses the scripts `paths` name (the default directory when empty). Syntax errors are printed
/// and give `None`; a missing path or an empty directory is an error.
fn load_scripts(paths: &[PathBuf]) -> anyhow::Result<Option<Vec<Script>>> {
    let paths = if paths.is_empty() {
        vec![default_script_dir()]
    } else {
        paths.to_vec()
    };
    let files = collect_script_paths(&paths).context("cannot find the scripts")?;
    match script::parse_files(&files) {
        Ok(scripts) => Ok(Some(scripts)),
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!(
                "linkcard: error: {} of {} scripts have errors; nothing was run",
                errors.len(),
                files.len()
            );
            Ok(None)
        }
    }
}
