//! `linkcard`: host tools for linkcard cards.
//!
//! One module per command group; this is the only crate of the workspace that uses `anyhow`, and the only place
//! that turns errors into exit statuses (see [`exit_status`]).
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

/// The settlement commands read, settle and write on separate threads that hand batches to one another; glibc's
/// allocator serialises the frees of another thread's memory on its arena locks, mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bank_role;
mod card;
mod card_issue;
mod conformance;
mod credit_role;
mod datadir;
mod demo;
mod hosts;
mod money;
mod readers;
mod report;
mod scp11;
mod settlement;
mod terminals;

use std::path::PathBuf;
use std::process::ExitCode;

use card_client::{EntropyError, error_chain};
use clap::{Parser, Subcommand};

/// Every script passed (or parsed); the command did what it was asked.
const EXIT_OK: u8 = 0;
/// At least one script failed on the card (or a secured command, a verification failed).
const EXIT_FAILED: u8 = 1;
/// A purchase was declined (by the credit company, or the card refused the PIN): an answer, not an error.
const EXIT_DECLINED: u8 = 3;
/// Usage, I/O or script syntax errors: nothing trustworthy was run. Clap uses 2 for usage errors too.
const EXIT_ERROR: u8 = 2;
/// The operating system's random generator failed (EX_SOFTWARE): no card or secure channel can run safely.
const EXIT_NO_ENTROPY: u8 = 70;

const MAIN_AFTER_HELP: &str = "\
The story, one role at a time (state in the data directory):
    linkcard bank init --id BANK0001
    linkcard credit init --id CRED0001
    linkcard bank offer --credit CRED0001 --out offer.json
    linkcard credit accept offer.json --bank-identity DIR/bank/identity.pub --out acceptance.json
    linkcard bank import-acceptance acceptance.json --credit-identity DIR/credit/identity.pub
    linkcard bank customer add --user U-000042 --name \"Hanako Yamada\" --account 0001-234-5678901
    linkcard bank cash-in --user U-000042 100,000
    linkcard credit cardholder add --id CH-000042 --name \"Hanako Yamada\" --limit 10,000
    linkcard card issue --card hanako --user U-000042 --cardholder CH-000042 --pan 4111111111111111 --pin 2468
    linkcard pos purchase --card hanako --amount 30,000 --pin 2468      (DECLINED: exit 3)
    linkcard atm deposit --card hanako --amount 25,000
    linkcard pos purchase --card hanako --amount 30,000 --pin 2468      (APPROVED)

Data directory: --data-dir DIR, else $LINKCARD_DATA_DIR, else linkcard under the user's data directory
(~/.local/share/linkcard on Linux).

Exit status:
    0   done (a purchase: APPROVED)
    1   a check failed: a conformance script, a secured command, the demo's story
    2   an error: usage, input refused, a missing organisation, I/O, the card or a back end refused
    3   a purchase DECLINED (insufficient credit, card status, wrong PIN): an answer, not an error
    70  the operating system's random generator failed";

/// Host tools for linkcard smart cards.
#[derive(Debug, Parser)]
#[command(name = "linkcard", version, after_help = MAIN_AFTER_HELP)]
struct Cli {
    /// The data directory of the role commands (bank/, credit/, cards/).
    #[arg(long, global = true, value_name = "DIR", env = "LINKCARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The bank system: keys, contracts with credit companies, customers, money.
    #[command(subcommand)]
    Bank(bank_role::BankCommand),
    /// The credit company: keys, contracts with banks, cardholders, credit.
    #[command(subcommand)]
    Credit(credit_role::CreditCommand),
    /// The ATM: a deposit for a credit bill, its token stored on the card.
    #[command(subcommand)]
    Atm(terminals::AtmCommand),
    /// The POS: a purchase, authorized by the credit company.
    #[command(subcommand)]
    Pos(terminals::PosCommand),
    /// Shell completions: `linkcard completions bash > ~/.local/share/bash-completion/completions/linkcard`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The whole story on the embedded default (the card in this process, SQLite): key exchange, card issue, a
    /// purchase declined, a deposit at the ATM, the same purchase approved at once, a replayed token refused.
    Demo(demo::DemoArgs),
    /// Conformance scripts (*.apdu): run them against a card, or check their syntax.
    #[command(subcommand)]
    Conformance(conformance::ConformanceCommand),
    /// List PC/SC readers, with the ATR of the card in each.
    #[command(after_help = readers::READERS_AFTER_HELP)]
    Readers,
    /// Cards: issue one (in process), or run the card image as a virtual card.
    #[command(subcommand)]
    Card(card::CardCommand),
    /// The SCP11 secure channel: CA keys, OCE certificates, card personalization, secured commands.
    #[command(subcommand, after_help = scp11::SCP11_AFTER_HELP)]
    Scp11(scp11::Scp11Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let data_dir = cli.data_dir.as_deref();
    let data = || datadir::DataDir::resolve(data_dir);
    let result = match cli.command {
        Command::Bank(command) => data().and_then(|d| bank_role::run_command(&d, &command)),
        Command::Credit(command) => data().and_then(|d| credit_role::run_command(&d, &command)),
        Command::Atm(command) => data().and_then(|d| terminals::run_atm(&d, &command)),
        Command::Pos(command) => data().and_then(|d| terminals::run_pos(&d, &command)),
        Command::Completions { shell } => completions(shell),
        Command::Demo(args) => demo::run(&args),
        Command::Conformance(command) => conformance::run_command(command),
        Command::Readers => readers::list(),
        Command::Card(command) => card::run_command(&command, data_dir),
        Command::Scp11(command) => scp11::run_command(command),
    };
    ExitCode::from(match result {
        Ok(code) => code,
        Err(error) => exit_status(&error),
    })
}

fn completions(shell: clap_complete::Shell) -> anyhow::Result<u8> {
    use clap::CommandFactory as _;
    use std::io::Write as _;
    // Generated whole, then written: clap_complete panics on a write error (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "linkcard", &mut script);
    match std::io::stdout().write_all(&script) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(EXIT_OK),
    }
}

/// Reports `error` on standard error and picks the exit status: 70 when the operating system's random generator
/// failed (anywhere in the chain), 2 for everything else.
fn exit_status(error: &anyhow::Error) -> u8 {
    if let Some(entropy) = error.chain().find_map(|e| e.downcast_ref::<EntropyError>()) {
        eprintln!("linkcard: {}", error_chain(entropy));
        return EXIT_NO_ENTROPY;
    }
    eprintln!("linkcard: error: {}", error_chain(error.as_ref()));
    EXIT_ERROR
}

#[cfg(test)]
mod tests {
    use super::*;
    use card_client::ChannelError;
    use card_client::scp11::Scp11Error;

    fn no_entropy() -> EntropyError {
        EntropyError::from(getrandom::Error::UNSUPPORTED)
    }

    #[test]
    fn a_failed_random_generator_exits_70_wherever_it_is_in_the_chain() {
        assert_eq!(
            exit_status(&anyhow::Error::from(no_entropy())),
            EXIT_NO_ENTROPY
        );
        let in_session =
            anyhow::Error::from(Scp11Error::from(no_entropy())).context("personalization");
        assert_eq!(exit_status(&in_session), EXIT_NO_ENTROPY);
        let through_a_channel =
            ChannelError::SecureChannel(Box::new(Scp11Error::from(no_entropy())));
        assert_eq!(
            exit_status(&anyhow::Error::from(through_a_channel)),
            EXIT_NO_ENTROPY
        );
        assert_eq!(exit_status(&anyhow::anyhow!("anything else")), EXIT_ERROR);
        assert!(
            error_chain(&no_entropy())
                .starts_with("the operating system's random generator failed: ")
        );
    }
}
