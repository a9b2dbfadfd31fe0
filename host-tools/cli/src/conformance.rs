//! `linkcard conformance run | check`.

use std::path::PathBuf;

use anyhow::Context as _;
use card_client::Traced;
use card_client::pcsc_channel::DEFAULT_CARD_WAIT;
use clap::{Args, Subcommand};
use conformance::runner::{self, collect_script_paths, default_script_dir};
use conformance::script::{self, Script};
use emulator::{IN_PROCESS_DESCRIPTION, InProcessChannel};

use crate::{EXIT_ERROR, EXIT_FAILED, EXIT_OK};

const RUN_AFTER_HELP: &str = "\
With no SCRIPTS_OR_DIRS, runs every *.apdu in tests/conformance under the current directory, or in this
workspace's tests/conformance when there is none. Directories run their *.apdu files sorted by name.
Every script runs on a fresh card, powered on, and stops at its first mismatch. With --reader, the card gets
a warm reset before each script instead and keeps its state (scripts numbered 90 and above consume it).

Scripts may include other files, define named steps, capture response bytes into variables, and run their
commands through SCP11 sessions with the test keys they name (`keys`, `personalize`, `open`, `close`).

The text report has one line per script (PASS or FAIL, with details under a failure) and ends with the
line `N passed, M failed`. The script format is described in tests/conformance/README.md.

Exit status: 0 when every script passes, 1 when any fails, 2 on usage, I/O or script syntax errors.";

const CHECK_AFTER_HELP: &str = "\
Only parses the scripts (included files and test keys are read too): the card is never touched. Every error is
reported as FILE:LINE: message, with the file and line inside an included file or a definition.
With no SCRIPTS_OR_DIRS, checks the same default directory as `run`.

Exit status: 0 when every script parses, 2 on any syntax or I/O error.";

#[derive(Debug, Subcommand)]
pub enum ConformanceCommand {
    /// Run conformance scripts against a card and report which pass.
    #[command(after_help = RUN_AFTER_HELP)]
    Run(RunArgs),
    /// Check the syntax of conformance scripts without running them.
    #[command(after_help = CHECK_AFTER_HELP)]
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run on the card image in this process, a fresh card per script (the default).
    #[arg(long, conflicts_with = "reader")]
    in_process: bool,

    /// Run on the card in this PC/SC reader (number, name, or unique part of a name), with a warm reset
    /// before each script.
    #[arg(long, short = 'r')]
    reader: Option<String>,

    /// With --reader: how long to wait for a card, in seconds.
    #[arg(long, default_value_t = DEFAULT_CARD_WAIT.as_secs_f64(), value_name = "SECONDS")]
    wait: f64,

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
pub struct CheckArgs {
    /// Script files, or directories of *.apdu scripts.
    #[arg(value_name = "SCRIPTS_OR_DIRS")]
    paths: Vec<PathBuf>,
}

pub fn run_command(command: ConformanceCommand) -> anyhow::Result<u8> {
    match command {
        ConformanceCommand::Run(args) => run(&args),
        ConformanceCommand::Check(args) => check(&args),
    }
}

fn run(args: &RunArgs) -> anyhow::Result<u8> {
    let Some(scripts) = load_scripts(&args.paths)? else {
        return Ok(EXIT_ERROR);
    };
    let report = match &args.reader {
        Some(reader) => {
            let mut channel = crate::readers::open(reader, args.wait)?;
            if args.verbose {
                runner::run_on_channel(&scripts, &mut Traced::new(&mut channel))
            } else {
                runner::run_on_channel(&scripts, &mut channel)
            }
        }
        // In process is the default; `--in-process` lets scripts and CI say so explicitly.
        None => runner::run_each(
            &scripts,
            IN_PROCESS_DESCRIPTION,
            args.verbose,
            InProcessChannel::new,
        )?,
    };
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
                // Include and test-key errors keep their reason as a source.
                eprintln!("{}", card_client::error_chain(error));
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
