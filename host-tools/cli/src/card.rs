//! `linkcard card emulate` and `linkcard card firmware`: the card image, in this process or as the firmware under
//! QEMU, as virtual cards in pcscd's vpcd reader.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use card_client::hex;
use clap::{Args, Subcommand};
use emulator::VirtualCard;
use emulator::firmware::FirmwareCard;
use emulator::vpcd;
use emulator::vpcd::BridgedCard as _;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::EXIT_OK;

#[derive(Debug, Subcommand)]
pub enum CardCommand {
    /// Run the card image as a virtual card in pcscd's vpcd reader (package vsmartcard-vpcd).
    #[command(after_help = EMULATE_AFTER_HELP)]
    Emulate(EmulateArgs),
    /// Run the card firmware (firmware/, a Cortex-M4 image) under QEMU as a card in pcscd's vpcd reader, reached
    /// over ISO 7816-3 T=1 on the board's UART.
    #[command(after_help = FIRMWARE_AFTER_HELP)]
    Firmware(FirmwareArgs),
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

const FIRMWARE_AFTER_HELP: &str = "\
Each slot runs its own QEMU (qemu-system-arm -M mps2-an386 -cpu cortex-m4) with the firmware; the bridge speaks
T=1 to the firmware over the board's UART (a TCP port on 127.0.0.1) and APDUs to vpcd, so every PC/SC client
reaches the firmware card exactly as it reaches `linkcard card emulate`'s. A power-on or reset from pcscd resets
the board: the firmware starts again and sends its ATR.
The card keeps its memory in DIR/slot-N.nvm (the same card state file as `card emulate --state-dir` and
`card issue` write: an issued card runs here as it is) and its random generator's state in DIR/slot-N.seed,
created with a seed from this machine's generator when missing. Without --state-dir both live in a temporary
directory removed on exit.
Build the firmware first: cargo build --release --manifest-path firmware/Cargo.toml --target thumbv7em-none-eabihf";

#[derive(Debug, Args)]
pub struct FirmwareArgs {
    #[command(flatten)]
    vpcd: VpcdArgs,

    /// Keep each card's memory in DIR/slot-N.nvm and its seed file in DIR/slot-N.seed.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// The firmware ELF.
    #[arg(long, value_name = "ELF", default_value = FIRMWARE_ELF)]
    firmware: PathBuf,

    /// The QEMU program.
    #[arg(long, value_name = "PROGRAM", default_value = "qemu-system-arm")]
    qemu: PathBuf,

    /// Log how many instructions the card executes for each command (QEMU runs with -icount shift=0, which is
    /// slower): the figures of docs/PERFORMANCE.md.
    #[arg(long)]
    count_instructions: bool,
}

/// Where the cards meet vpcd, and how much they log: the same for `card emulate` and `card firmware`.
#[derive(Debug, Args)]
pub struct VpcdArgs {
    /// Host where vpcd (pcscd) listens.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// vpcd's port for slot 0; slot N uses PORT + N.
    #[arg(long, default_value_t = vpcd::DEFAULT_PORT)]
    port: u16,

    /// Slot to serve; repeat for several independent cards, each firmware card on its own QEMU: --slot 0 --slot 1.
    #[arg(long = "slot", default_values_t = [0u16], value_parser = clap::value_parser!(u16).range(0..=15))]
    slots: Vec<u16>,

    /// Log every APDU (debug level) on standard error; RUST_LOG works too.
    #[arg(short, long)]
    verbose: bool,
}

impl VpcdArgs {
    /// Where the card on `slot` connects.
    fn endpoint(&self, slot: u16) -> anyhow::Result<vpcd::Endpoint> {
        let port = self
            .port
            .checked_add(slot)
            .context("--port + --slot is beyond 65535")?;
        Ok(vpcd::Endpoint {
            host: self.host.clone(),
            port,
            slot,
        })
    }
}

/// Where the firmware's release build (`--target thumbv7em-none-eabihf`) leaves it, from the sources' root.
const FIRMWARE_ELF: &str = "firmware/target/thumbv7em-none-eabihf/release/linkcard-firmware";

#[derive(Debug, Args)]
pub struct EmulateArgs {
    #[command(flatten)]
    vpcd: VpcdArgs,

    /// Keep each card's persistent memory in DIR/slot-N.nvm (created when missing), so installed applets,
    /// their data and the card life cycle survive restarts of the emulator. Without it a card lives in RAM.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

pub fn run_command(command: &CardCommand, data_dir: Option<&Path>) -> anyhow::Result<u8> {
    match command {
        CardCommand::Emulate(args) => emulate(args),
        CardCommand::Firmware(args) => firmware(args),
        CardCommand::Issue(args) => {
            crate::card_issue::issue(&crate::datadir::DataDir::resolve(data_dir)?, args)
        }
    }
}

fn emulate(args: &EmulateArgs) -> anyhow::Result<u8> {
    init_logging(args.vpcd.verbose);
    if let Some(dir) = &args.state_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let stopping = StopOnSignal::install()?;
    status_line(&format!("ATR {}", hex::spaced(emulator::atr())));
    let mut cards = Vec::new();
    for &slot in &args.vpcd.slots {
        let endpoint = args.vpcd.endpoint(slot)?;
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
        let stop = Arc::clone(&stopping.stop);
        cards.push(spawn_card(
            endpoint,
            stop,
            move |endpoint, stop, announce| {
                let mut card = card;
                card.serve_vpcd(endpoint, stop, announce)
            },
        ));
    }
    stopping.join(cards)
}

fn firmware(args: &FirmwareArgs) -> anyhow::Result<u8> {
    init_logging(args.vpcd.verbose);
    anyhow::ensure!(
        args.firmware.is_file(),
        "no firmware at {}: build it with `cargo build --release --manifest-path firmware/Cargo.toml --target \
         thumbv7em-none-eabihf` (from the linkcard sources), or name it with --firmware",
        args.firmware.display()
    );
    // Without --state-dir: a new private directory (mode 0700), removed on exit, so nobody else can place a seed
    // file of their choosing for the card.
    let (dir, _temporary) = match &args.state_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            (dir.clone(), None)
        }
        None => {
            let temporary = tempfile::Builder::new()
                .prefix("linkcard-firmware-")
                .tempdir()
                .context("cannot create a temporary directory for the firmware cards")?;
            (temporary.path().to_path_buf(), Some(temporary))
        }
    };
    // Every QEMU starts before any bridge runs: a slot that cannot start stops those started (dropping a card
    // stops its QEMU) and nothing is left running.
    let mut started = Vec::new();
    for &slot in &args.vpcd.slots {
        let endpoint = args.vpcd.endpoint(slot)?;
        let config = emulator::firmware::qemu::QemuConfig {
            program: args.qemu.clone(),
            firmware: args.firmware.clone(),
            state_file: dir.join(format!("slot-{slot}.nvm")),
            seed_file: dir.join(format!("slot-{slot}.seed")),
            count_instructions: args.count_instructions,
        };
        let card = FirmwareCard::start(&config)
            .with_context(|| format!("cannot start the firmware card for slot {slot}"))?;
        status_line(&format!(
            "slot {slot}: firmware card on QEMU, ATR {}, card state in {}",
            hex::spaced(&card.atr()),
            config.state_file.display()
        ));
        started.push((endpoint, card));
    }
    let stopping = StopOnSignal::install()?;
    let mut cards = Vec::new();
    for (endpoint, card) in started {
        let stop = Arc::clone(&stopping.stop);
        cards.push(spawn_card(
            endpoint,
            stop,
            move |endpoint, stop, announce| {
                let mut card = card;
                vpcd::run(endpoint, &mut card, stop, announce).map_err(anyhow::Error::from)
            },
        ));
    }
    stopping.join(cards)
}

fn init_logging(verbose: bool) {
    let default_level = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// The stop every card watches, requested by Ctrl-C or SIGTERM.
struct StopOnSignal {
    stop: Arc<vpcd::Stop>,
    handle: signal_hook::iterator::Handle,
    thread: std::thread::JoinHandle<()>,
}

impl StopOnSignal {
    fn install() -> anyhow::Result<Self> {
        let stop = vpcd::Stop::new();
        let mut signals =
            Signals::new([SIGINT, SIGTERM]).context("cannot install the Ctrl-C/SIGTERM handler")?;
        let handle = signals.handle();
        let on_signal = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                tracing::info!("signal {signal}: stopping");
                on_signal.request();
            }
        });
        Ok(Self {
            stop,
            handle,
            thread,
        })
    }

    /// Waits for every card; a card that ends on its own (it panicked, or cannot go on) stops the others.
    fn join(self, cards: Vec<CardThread>) -> anyhow::Result<u8> {
        let mut failure = None;
        let mut panicked = false;
        for card in cards {
            match card.join() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    self.stop.request();
                    failure.get_or_insert(error);
                }
                Err(_) => {
                    self.stop.request();
                    panicked = true;
                }
            }
        }
        self.handle.close();
        if self.thread.join().is_err() {
            // It only waits for a signal and requests the stop that already happened: nothing is lost.
            tracing::warn!("the signal thread panicked");
        }
        status_line("stopped");
        match failure {
            Some(error) => Err(error),
            // A card that crashed is a failure however the others ended.
            None if panicked => Err(anyhow::anyhow!("a virtual card's thread panicked")),
            None => Ok(EXIT_OK),
        }
    }
}

type CardThread = std::thread::JoinHandle<anyhow::Result<()>>;

/// Runs one card's bridge in its own thread until `stop`; a card that cannot go on stops every card.
fn spawn_card<F, E>(endpoint: vpcd::Endpoint, stop: Arc<vpcd::Stop>, serve: F) -> CardThread
where
    F: FnOnce(&vpcd::Endpoint, &vpcd::Stop, &dyn Fn(&vpcd::Endpoint)) -> Result<(), E>
        + Send
        + 'static,
    E: Into<anyhow::Error>,
{
    std::thread::spawn(move || {
        let announce = |e: &vpcd::Endpoint| {
            status_line(&format!(
                "virtual card on slot {} connected to {e} (reader \"Virtual PCD 00 {:02}\")",
                e.slot, e.slot
            ));
        };
        let result = serve(&endpoint, &stop, &announce).map_err(Into::into);
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
