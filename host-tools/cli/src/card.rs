//! `linkcard card emulate`: the card image as virtual cards in pcscd's vpcd reader.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use card_client::{EntropyError, hex};
use clap::{Args, Subcommand};
use emulator::VirtualCard;
use emulator::vpcd;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::EXIT_OK;

#[derive(Debug, Subcommand)]
pub enum CardCommand {
    /// Run the card image as a virtual card in pcscd's vpcd reader (package vsmartcard-vpcd).
    #[command(after_help = EMULATE_AFTER_HELP)]
    Emulate(EmulateArgs),
    /// Issue a new in-process card: the bank installs and personalizes both applets, the credit company
    /// registers the card.
    #[command(after_help = crate::card_issue::ISSUE_AFTER_HELP)]
    Issue(crate::card_issue::IssueArgs),
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
pub struct EmulateArgs {
    /// Host where vpcd (pcscd) listens.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// vpcd's port for slot 0; slot N uses PORT + N.
    #[arg(long, default_value_t = vpcd::DEFAULT_PORT)]
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

pub fn run_command(command: &CardCommand, data_dir: Option<&Path>) -> anyhow::Result<u8> {
    match command {
        CardCommand::Emulate(args) => emulate(args),
        CardCommand::Issue(args) => {
            crate::card_issue::issue(&crate::datadir::DataDir::resolve(data_dir)?, args)
        }
    }
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

    status_line(&format!("ATR {}", hex::spaced(emulator::atr())));
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
        let card = match &args.state_dir {
            Some(dir) => {
                let path = dir.join(format!("slot-{slot}.nvm"));
                let card = VirtualCard::with_state_file(&path)
                    .with_context(|| format!("cannot use the card state file for slot {slot}"))?;
                status_line(&format!("slot {slot}: card state in {}", path.display()));
                card
            }
            None => VirtualCard::in_memory(),
        };
        cards.push(spawn_card(card, endpoint, Arc::clone(&stop)));
    }
    // A card that ends on its own (it panicked, or could not be seeded) stops the others.
    let mut failure = None;
    let mut panicked = false;
    for card in cards {
        match card.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                stop.request();
                failure.get_or_insert(error);
            }
            Err(_) => {
                stop.request();
                panicked = true;
            }
        }
    }
    signal_handle.close();
    if signal_thread.join().is_err() {
        // It only waits for a signal and requests the stop that already happened: nothing is lost.
        tracing::warn!("the signal thread panicked");
    }
    status_line("stopped");
    match failure {
        Some(error) => Err(error.into()),
        // A card that crashed is a failure however the others ended.
        None if panicked => Err(anyhow::anyhow!("a virtual card's thread panicked")),
        None => Ok(EXIT_OK),
    }
}

/// Runs one virtual card in its own thread until `stop`; a card that cannot be seeded stops every card.
fn spawn_card(
    mut card: VirtualCard,
    endpoint: vpcd::Endpoint,
    stop: Arc<vpcd::Stop>,
) -> std::thread::JoinHandle<Result<(), EntropyError>> {
    std::thread::spawn(move || {
        let announce = |e: &vpcd::Endpoint| {
            status_line(&format!(
                "virtual card on slot {} connected to {e} (reader \"Virtual PCD 00 {:02}\")",
                e.slot, e.slot
            ));
        };
        let result = card.serve_vpcd(&endpoint, &stop, &announce);
        if result.is_err() {
            stop.request();
        }
        result
    })
}

/// Prints a status line of the long-running emulator; a closed stdout (`| head -1`) must not stop the cards.
fn status_line(line: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
}
