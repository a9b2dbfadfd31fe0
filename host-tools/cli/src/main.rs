//! `linkcard`: host tools for linkcard cards.
//!
//! One module per command group; this is the only crate of the workspace that uses `anyhow`, and the only place
//! that turns errors into exit statuses (see [`exit_status`]).
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod card;
mod conformance;
mod demo;
mod hosts;
mod money;
mod readers;
mod scp11;

use std::process::ExitCode;

use card_client::{EntropyError, error_chain};
use clap::{Parser, Subcommand};

/// Every script passed (or parsed); the command did what it was asked.
const EXIT_OK: u8 = 0;
/// At least one script failed on the card (or a secured command, a verification failed).
const EXIT_FAILED: u8 = 1;
/// Usage, I/O or script syntax errors: nothing trustworthy was run. Clap uses 2 for usage errors too.
const EXIT_ERROR: u8 = 2;
/// The operating system's random generator failed (EX_SOFTWARE): no card or secure channel can run safely.
const EXIT_NO_ENTROPY: u8 = 70;

/// Host tools for linkcard smart cards.
#[derive(Debug, Parser)]
#[command(name = "linkcard", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole story on the embedded default (the card in this process, SQLite): key exchange, card issue, a
    /// purchase declined, a deposit at the ATM, the same purchase approved at once, a replayed token refused.
    Demo(demo::DemoArgs),
    /// Conformance scripts (*.apdu): run them against a card, or check their syntax.
    #[command(subcommand)]
    Conformance(conformance::ConformanceCommand),
    /// List PC/SC readers, with the ATR of the card in each.
    #[command(after_help = readers::READERS_AFTER_HELP)]
    Readers,
    /// The card image itself: run it as a virtual card.
    #[command(subcommand)]
    Card(card::CardCommand),
    /// The SCP11 secure channel: CA keys, OCE certificates, card personalization, secured commands.
    #[command(subcommand, after_help = scp11::SCP11_AFTER_HELP)]
    Scp11(scp11::Scp11Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Conformance(command) => conformance::run_command(command),
        Command::Readers => readers::list(),
        Command::Card(command) => card::run_command(&command),
        Command::Scp11(command) => scp11::run_command(command),
    };
    ExitCode::from(match result {
        Ok(code) => code,
        Err(error) => exit_status(&error),
    })
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
