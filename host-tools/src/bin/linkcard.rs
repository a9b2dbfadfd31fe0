//! `linkcard`: host tools for linkcard cards.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use card_image::{LinkcardCard, LinkcardImage};
use card_os::Card;
use card_os::layout::{STORE_PAGE, STORE_PAGES};
use card_os::nvm::Nvm;
use clap::{Args, Parser, Subcommand};
use host_tools::conformance::{self, collect_script_paths, default_script_dir};
use host_tools::file_nvm::FileNvm;
use host_tools::pcsc_channel::{self, PcscChannel, ReaderChoice};
use host_tools::script::{self, Script};
use host_tools::{CardChannel as _, Traced, hex, vpcd};
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
    /// The SCP11 secure channel: CA keys, OCE certificates, card personalization, secured commands.
    #[command(subcommand, after_help = SCP11_AFTER_HELP)]
    Scp11(Scp11Command),
}

const SCP11_AFTER_HELP: &str = "\
A typical sequence, on a card before issuance in reader 0 (see docs/SECURE-CHANNEL.md):
    linkcard scp11 ca --out card-ca.key                  # certifies cards
    linkcard scp11 ca --out issuer-ca.key                # certifies the issuer's systems
    linkcard scp11 issue --ca issuer-ca.key --role issuer --subject \"issuer system\" --out issuer
    linkcard scp11 personalize -r 0 --card-ca card-ca.key --anchor issuer-ca.key
    linkcard scp11 send -r 0 --card-ca card-ca.key --oce issuer 80F24002024F0000

Keys are PEM files as OpenSSL writes them (PKCS#8 private keys, SPKI public keys); a CA goes by the first 20
bytes of the SHA-256 of its public key. Files are never overwritten.";

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
        Command::Scp11(command) => scp11_command(command),
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

#[derive(Debug, Subcommand)]
enum Scp11Command {
    /// Create a CA key (PKCS#8 PEM, readable by its owner only) and print its identifier.
    Ca {
        /// Where to write the key (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Create an off-card entity: a key pair and its GP certificate signed by a CA, with a role.
    Issue(IssueArgs),
    /// Print a GP certificate's fields; with --ca, verify it too.
    Show {
        /// The certificate (binary 7F21, as `issue` writes it).
        certificate: PathBuf,
        /// The CA key (public or private PEM) to verify the signature against.
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
    },
    /// Personalize a security domain on a card: key pair generated on the card, certificate, trust anchors.
    Personalize(PersonalizeArgs),
    /// Open an SCP11 session with the selected security domain and send APDUs inside it.
    Send(SendArgs),
}

#[derive(Debug, Args)]
struct IssueArgs {
    /// The CA key (private, PEM) that signs the certificate.
    #[arg(long, value_name = "FILE")]
    ca: PathBuf,
    /// What the certificate lets its holder do on a card.
    #[arg(long, value_parser = ["issuer", "bank-atm", "credit-pos", "token-delivery"])]
    role: String,
    /// The subject: who holds the key (1-20 bytes of text).
    #[arg(long)]
    subject: String,
    /// Days of validity from today.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    days: u32,
    /// Prefix of the files to write: PREFIX.key (private key) and PREFIX.cert (certificate); neither may exist.
    #[arg(long, value_name = "PREFIX")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct ReaderArgs {
    /// The PC/SC reader (number, name, or unique part of a name).
    #[arg(long, short = 'r')]
    reader: String,
    /// How long to wait for a card, in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    wait: f64,
}

impl ReaderArgs {
    fn open(&self) -> anyhow::Result<PcscChannel> {
        let wait =
            Duration::try_from_secs_f64(self.wait).context("--wait must be a number of seconds")?;
        PcscChannel::open(&ReaderChoice::parse(&self.reader), wait)
            .with_context(|| format!("cannot use reader \"{}\"", self.reader))
    }
}

#[derive(Debug, Args)]
struct PersonalizeArgs {
    #[command(flatten)]
    reader: ReaderArgs,
    /// The card CA key (private, PEM): it certifies the key the card generates.
    #[arg(long, value_name = "FILE")]
    card_ca: PathBuf,
    /// A CA (public or private PEM) whose OCE certificates the domain will accept; repeat for up to 3.
    #[arg(long = "anchor", value_name = "FILE", required = true)]
    anchors: Vec<PathBuf>,
    /// Personalize this instance's security domain (AID in hex) instead of the card manager's.
    #[arg(long, value_name = "AID")]
    instance: Option<String>,
    /// The domain's subject identifier in its certificate (1-20 bytes of text).
    #[arg(long, default_value = "linkcard card")]
    subject: String,
    /// Days of validity of the domain's certificate.
    #[arg(long, default_value_t = 1826, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    days: u32,
    /// Once the card is issued (SECURED), personalization goes through an issuer session: the OCE's files
    /// prefix (PREFIX.key, PREFIX.cert), with an issuer-role certificate.
    #[arg(long, value_name = "PREFIX")]
    oce: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct SendArgs {
    #[command(flatten)]
    reader: ReaderArgs,
    /// The card CA key (public or private PEM): the card's certificate must verify against it.
    #[arg(long, value_name = "FILE")]
    card_ca: PathBuf,
    /// SCP11a: the OCE's files prefix (PREFIX.key, PREFIX.cert).
    #[arg(long, value_name = "PREFIX", required_unless_present = "scp11b")]
    oce: Option<PathBuf>,
    /// SCP11b instead: the card authenticates, the host stays anonymous (no role).
    #[arg(long, conflicts_with = "oce")]
    scp11b: bool,
    /// Protections: C-MAC only, with C-DEC, with R-MAC, or all four.
    #[arg(long, default_value = "full", value_parser = ["mac", "mac-enc", "mac-rmac", "full"])]
    level: String,
    /// Select this application (AID in hex) first; by default the card manager.
    #[arg(long, value_name = "AID")]
    select: Option<String>,
    /// Command APDUs in hex (spaces allowed inside quotes), sent unsecured-form: the session secures them.
    #[arg(required = true, value_name = "APDU")]
    apdus: Vec<String>,
}

fn parse_hex(what: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    ::hex::decode(digits).map_err(|_| anyhow::anyhow!("{what}: \"{text}\" is not hex bytes"))
}

fn identifier_text(id: &[u8]) -> String {
    if id.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("\"{}\" ({})", String::from_utf8_lossy(id), hex::spaced(id))
    } else {
        hex::spaced(id)
    }
}

fn scp11_command(command: Scp11Command) -> anyhow::Result<u8> {
    use host_tools::keyfile;
    use host_tools::scp11::{self, Anchor, Authority};
    match command {
        Scp11Command::Ca { out } => {
            let key = p256::SecretKey::from(scp11::random_scalar());
            keyfile::write_secret(&out, &key)?;
            let authority = Authority::from_key(&key);
            println!("CA key written to {}", out.display());
            println!("identifier (CA-KLOC): {}", hex::spaced(&authority.id));
            Ok(EXIT_OK)
        }
        Scp11Command::Issue(args) => {
            let role =
                apdu_spec::scp11::cert::Role::from_name(&args.role).context("unknown role")?;
            if args.subject.is_empty() || args.subject.len() > 20 {
                anyhow::bail!("--subject must be 1 to 20 bytes");
            }
            let authority = Authority::from_key(&keyfile::read_secret(&args.ca)?);
            let (key_path, cert_path) = scp11::oce_paths(&args.out);
            for path in [&key_path, &cert_path] {
                if path.exists() {
                    anyhow::bail!("{} exists: choose another --out", path.display());
                }
            }
            let oce = authority.issue_oce(
                args.subject.as_bytes(),
                role,
                scp11::date_from_today(0),
                scp11::date_from_today(i64::from(args.days)),
            )?;
            keyfile::write_secret(&key_path, &p256::SecretKey::from(oce.static_key))?;
            let certificate = oce.chain.first().context("no certificate")?;
            keyfile::write_new(&cert_path, certificate, 0o644)?;
            println!("{} and {} written", key_path.display(), cert_path.display());
            show_certificate(certificate)?;
            Ok(EXIT_OK)
        }
        Scp11Command::Show { certificate, ca } => {
            let bytes = std::fs::read(&certificate)
                .with_context(|| format!("cannot read {}", certificate.display()))?;
            let parsed = show_certificate(&bytes)?;
            if let Some(ca) = ca {
                let anchor = Anchor::from_public_key(&keyfile::read_public(&ca)?);
                match parsed.verify(&anchor.issuer()?, scp11::date_from_today(0)) {
                    Ok(()) => println!("verified against {} as of today", ca.display()),
                    Err(e) => {
                        println!("NOT valid against {}: {e}", ca.display());
                        return Ok(EXIT_FAILED);
                    }
                }
            }
            Ok(EXIT_OK)
        }
        Scp11Command::Personalize(args) => personalize(&args),
        Scp11Command::Send(args) => send_secured(&args),
    }
}

fn show_certificate(bytes: &[u8]) -> anyhow::Result<apdu_spec::scp11::cert::Certificate<'_>> {
    use apdu_spec::scp11::cert::{self, Certificate};
    let (certificate, rest) =
        Certificate::parse(bytes).map_err(|e| anyhow::anyhow!("not a GP certificate: {e}"))?;
    if !rest.is_empty() {
        anyhow::bail!("{} bytes after the certificate", rest.len());
    }
    let usage = match certificate.key_usage() {
        cert::KEY_AGREEMENT => "key agreement (0080)",
        cert::CERTIFICATE_SIGNING => "certificate signing (0082)",
        _ => "other",
    };
    println!("serial:      {}", hex::spaced(certificate.serial()));
    println!("issuer id:   {}", identifier_text(certificate.ca_kloc_id()));
    println!("subject:     {}", identifier_text(certificate.subject_id()));
    println!("key usage:   {usage}");
    if let Some(effective) = certificate.effective() {
        println!("effective:   {effective}");
    }
    println!("expires:     {}", certificate.expiration());
    println!(
        "role:        {}",
        certificate.role().map_or("none", |r| r.name())
    );
    println!(
        "public key:  {}",
        hex::spaced(certificate.public_key_bytes())
    );
    Ok(certificate)
}

fn personalize(args: &PersonalizeArgs) -> anyhow::Result<u8> {
    use host_tools::keyfile;
    use host_tools::scp11::{self, Anchor, Authority, Personalization};
    if args.subject.is_empty() || args.subject.len() > 20 {
        anyhow::bail!("--subject must be 1 to 20 bytes");
    }
    let card_ca = Authority::from_key(&keyfile::read_secret(&args.card_ca)?);
    let anchors = args
        .anchors
        .iter()
        .map(|path| keyfile::read_public(path).map(|key| Anchor::from_public_key(&key)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let instance = args
        .instance
        .as_deref()
        .map(|aid| parse_hex("--instance", aid))
        .transpose()?;
    let mut channel = args.reader.open()?;
    let select = [
        0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00, 0x00,
    ];
    let answer = channel.transmit(&select).context("SELECT card manager")?;
    if !answer.ends_with(&[0x90, 0x00]) {
        anyhow::bail!("SELECT card manager answered {}", hex::spaced(&answer));
    }
    let personalization = Personalization {
        instance: instance.as_deref(),
        card_authority: &card_ca,
        subject: args.subject.as_bytes(),
        anchors: &anchors,
        today: scp11::date_from_today(0),
        expiration: scp11::date_from_today(i64::from(args.days)),
    };
    let key = match &args.oce {
        None => scp11::personalize(&mut channel, &personalization),
        Some(prefix) => {
            let oce = scp11::load_oce(prefix)?;
            let card_key =
                scp11::card_key(&mut channel, &card_ca.issuer(), scp11::date_from_today(0))?;
            let mut session = scp11::open_scp11a(
                &mut channel,
                &card_key,
                &oce,
                apdu_spec::scp11::session::SecurityLevel::FULL,
                None,
            )?;
            scp11::personalize(&mut session, &personalization)
        }
    }
    .context(
        "personalization failed (a card after issuance needs --oce with an issuer certificate)",
    )?;
    println!(
        "personalized the security domain of {}",
        instance
            .as_deref()
            .map_or("the card manager".into(), hex::spaced)
    );
    println!("its public key: {}", hex::spaced(&key));
    println!("trust anchors:  {}", anchors.len());
    Ok(EXIT_OK)
}

fn send_secured(args: &SendArgs) -> anyhow::Result<u8> {
    use apdu_spec::StatusWord;
    use apdu_spec::scp11::session::SecurityLevel;
    use host_tools::keyfile;
    use host_tools::scp11::{self, Anchor};
    let level = match args.level.as_str() {
        "mac" => SecurityLevel::MAC,
        "mac-enc" => SecurityLevel::MAC_ENC,
        "mac-rmac" => SecurityLevel::MAC_RMAC,
        _ => SecurityLevel::FULL,
    };
    let apdus = args
        .apdus
        .iter()
        .map(|apdu| parse_hex("APDU", apdu))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let card_ca = Anchor::from_public_key(&keyfile::read_public(&args.card_ca)?);
    let oce = args.oce.as_deref().map(scp11::load_oce).transpose()?;
    let mut channel = args.reader.open()?;
    let aid = match &args.select {
        Some(aid) => parse_hex("--select", aid)?,
        None => vec![0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00],
    };
    let mut select = vec![0x00, 0xA4, 0x04, 0x00, aid.len() as u8];
    select.extend(&aid);
    select.push(0x00);
    let answer = channel.transmit(&select).context("SELECT")?;
    if !(answer.ends_with(&[0x90, 0x00]) || answer.starts_with(&[0x61])) {
        anyhow::bail!(
            "SELECT {} answered {}",
            hex::spaced(&aid),
            hex::spaced(&answer)
        );
    }
    let card_key = scp11::card_key(&mut channel, &card_ca.issuer()?, scp11::date_from_today(0))
        .context("the card's certificate")?;
    let mut session = match &oce {
        Some(oce) => scp11::open_scp11a(&mut channel, &card_key, oce, level, None)?,
        None => scp11::open_scp11b(&mut channel, &card_key, level)?,
    };
    println!(
        "SCP11{} session open with {} ({})",
        if oce.is_some() { "a" } else { "b" },
        hex::spaced(&aid),
        args.level
    );
    let mut all_succeeded = true;
    for apdu in &apdus {
        println!("> {}", hex::spaced(apdu));
        let response = session.transmit_secured(apdu)?;
        let (data, sw) = response.split_at(response.len().saturating_sub(2));
        let status = match sw {
            [sw1, sw2] => StatusWord::from_bytes(*sw1, *sw2),
            _ => StatusWord::UNKNOWN,
        };
        if !data.is_empty() {
            println!("< {}", hex::spaced(data));
        }
        println!("< {status}");
        all_succeeded &= status.is_success() || status.is_warning();
    }
    Ok(if all_succeeded { EXIT_OK } else { EXIT_FAILED })
}
