//! `linkcard`: host tools for linkcard cards.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use card_image::{LinkcardCard, LinkcardImage};
use card_os::Card;
use card_os::nvm::Nvm;
use card_os::runtime::{STORE_PAGE, STORE_PAGES};
use clap::{Args, Parser, Subcommand};
use host_tools::conformance::{self, collect_script_paths, default_script_dir};
use host_tools::file_nvm::FileNvm;
use host_tools::pcsc_channel::{self, PcscChannel, ReaderChoice};
use host_tools::script::{self, Script};
use host_tools::{Traced, hex, vpcd};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::sync::Arc;
use std::time::Duration;

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
    /// List PC/SC readers, with the ATR of the card in each.
    #[command(after_help = READERS_AFTER_HELP)]
    Readers,
    /// The card image itself: run it as a virtual card.
    #[command(subcommand)]
    Card(CardCommand),
}

const READERS_AFTER_HELP: &str = "\
Readers are numbered from 0; `--reader` options take a number, a full reader name, or a part of a name that
only one reader has (case-insensitive). Exit status: 0 (also with no readers), 2 when pcscd cannot be reached.";

#[derive(Debug, Subcommand)]
enum CardCommand {
    /// Run the card image as a virtual card in pcscd's vpcd reader (package vsmartcard-vpcd).
    #[command(after_help = EMULATE_AFTER_HELP)]
    Emulate(EmulateArgs),
}

const EMULATE_AFTER_HELP: &str = "\
The virtual card connects to vpcd, the pcscd reader driver, which then shows a card in the reader
\"Virtual PCD 00 00\" (slot 0) or \"Virtual PCD 00 01\" (slot 1). Any PC/SC client can use it:
    linkcard conformance run --reader \"Virtual PCD 00 00\"
    opensc-tool -r 0 -s 00A4040008A000000151000000
    scriptor -r \"Virtual PCD 00 00\" commands.txt
pcscd must be running (`pcscd -f` in another terminal, or the system service). The card reconnects on its
own when pcscd restarts, keeps its installed applets while it runs (and across restarts with
--state-dir), and stops on Ctrl-C or SIGTERM.

Security: vpcd listens on ALL network interfaces (port 35963 and up): whoever reaches that port can act as a
card to this machine's pcscd. Firewall it, or run pcscd with a reader configuration of its own (-c DIR).";

#[derive(Debug, Args)]
struct EmulateArgs {
    /// Host where vpcd (pcscd) listens.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// vpcd's port for slot 0; slot N uses PORT + N.
    #[arg(long, default_value_t = host_tools::vpcd::DEFAULT_PORT)]
    port: u16,

    /// Slot to serve (repeat for several independent cards: --slot 0 --slot 1).
    #[arg(long = "slot", default_values_t = [0u16], value_parser = clap::value_parser!(u16).range(0..=15))]
    slots: Vec<u16>,

    /// Keep each card's persistent memory in DIR/slot-N.nvm (created when missing), so installed applets,
    /// their data and the card life cycle survive restarts of the emulator. Without it a card lives in RAM.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// Log every APDU (debug level) on standard error; RUST_LOG works too.
    #[arg(short, long)]
    verbose: bool,
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
    /// Run on the card image in this process, a fresh card per script (the default).
    #[arg(long, conflicts_with = "reader")]
    in_process: bool,

    /// Run on the card in this PC/SC reader (number, name, or unique part of a name), with a warm reset
    /// before each script.
    #[arg(long, short = 'r')]
    reader: Option<String>,

    /// With --reader: how long to wait for a card, in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
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
        Command::Readers => readers(),
        Command::Card(CardCommand::Emulate(args)) => emulate(&args),
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
    let Some(scripts) = load_scripts(&args.paths)? else {
        return Ok(EXIT_ERROR);
    };
    let report = match &args.reader {
        Some(reader) => {
            let wait = Duration::try_from_secs_f64(args.wait)
                .context("--wait must be a number of seconds")?;
            let mut channel = PcscChannel::open(&ReaderChoice::parse(reader), wait)
                .with_context(|| format!("cannot use reader \"{reader}\""))?;
            if args.verbose {
                conformance::run_on_channel(&scripts, &mut Traced::new(&mut channel))
            } else {
                conformance::run_on_channel(&scripts, &mut channel)
            }
        }
        // In process is the default; `--in-process` lets scripts and CI say so explicitly.
        None => conformance::run_in_process(&scripts, args.verbose),
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

fn readers() -> anyhow::Result<u8> {
    let readers = pcsc_channel::list_readers().context("cannot list PC/SC readers")?;
    if readers.is_empty() {
        println!("no readers");
    }
    for (index, reader) in readers.iter().enumerate() {
        match &reader.atr {
            Some(atr) => println!(
                "{index}: {}  card present, ATR {}",
                reader.name,
                hex::spaced(atr)
            ),
            None => println!("{index}: {}  no card", reader.name),
        }
    }
    Ok(EXIT_OK)
}

fn emulate(args: &EmulateArgs) -> anyhow::Result<u8> {
    let default_level = if args.verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    if let Some(dir) = &args.state_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let stop = vpcd::Stop::new();
    let mut signals =
        Signals::new([SIGINT, SIGTERM]).context("cannot install the Ctrl-C/SIGTERM handler")?;
    let signal_handle = signals.handle();
    let on_signal = Arc::clone(&stop);
    let signal_thread = std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            tracing::info!("signal {signal}: stopping");
            on_signal.request();
        }
    });

    status_line(&format!(
        "ATR {}",
        hex::spaced(LinkcardCard::ATR.as_bytes())
    ));
    let mut cards = Vec::new();
    for &slot in &args.slots {
        let port = args
            .port
            .checked_add(slot)
            .context("--port + --slot is beyond 65535")?;
        let endpoint = vpcd::Endpoint {
            host: args.host.clone(),
            port,
            slot,
        };
        let stop = Arc::clone(&stop);
        let handle = match &args.state_dir {
            Some(dir) => {
                let path = dir.join(format!("slot-{slot}.nvm"));
                let nvm = FileNvm::open(&path, STORE_PAGE, STORE_PAGES)
                    .with_context(|| format!("cannot use the card state file for slot {slot}"))?;
                status_line(&format!("slot {slot}: card state in {}", path.display()));
                spawn_card(Box::new(Card::with_nvm(nvm)), endpoint, stop)
            }
            None => spawn_card(Box::new(LinkcardCard::new()), endpoint, stop),
        };
        cards.push(handle);
    }
    for card in cards {
        if card.join().is_err() {
            stop.request();
        }
    }
    signal_handle.close();
    let _ = signal_thread.join();
    status_line("stopped");
    Ok(EXIT_OK)
}

/// Runs one virtual card in its own thread until `stop`.
fn spawn_card<N: Nvm + Send + 'static>(
    mut card: Box<Card<LinkcardImage, N>>,
    endpoint: vpcd::Endpoint,
    stop: Arc<vpcd::Stop>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let announce = |e: &vpcd::Endpoint| {
            status_line(&format!(
                "virtual card on slot {} connected to {e} (reader \"Virtual PCD 00 {:02}\")",
                e.slot, e.slot
            ));
        };
        vpcd::run(&endpoint, &mut card, &stop, &announce);
    })
}

/// Prints a status line of the long-running emulator; a closed stdout (`| head -1`) must not stop the cards.
fn status_line(line: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
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
