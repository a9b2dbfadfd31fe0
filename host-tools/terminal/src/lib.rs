//! The terminals that drive the card (patent Fig. 7, 10, 14 and 15), over any [`CardChannel`]: the card in this
//! process (its memory in a file), or a PC/SC reader. Each terminal verifies the card's certificates against the
//! card CA, opens an SCP11a session with its own OCE certificate, and talks to its back end through a trait of
//! this crate ([`atm::DepositHost`], [`pos::AuthorizationHost`]) whose messages are plain data: the bank and
//! credit systems never link the card, and the terminals never link them (the `linkcard` command joins them, as
//! a network would).
//!
//! * [`atm`]: the deposit for an early credit-bill payment: READ ACCOUNT, the bank mints a token (held), STORE
//!   TOKEN in the bank applet (Fig. 14: the credit applet takes it at the next PRESENT) or in the credit applet
//!   with the bank's delivery certificate (Fig. 15); the bank posts the deposit once the card keeps the token,
//!   and releases it if the card refused.
//! * [`pos`]: the purchase: VERIFY (when the card has a PIN), PRESENT with a fresh nonce, the credit system
//!   decides, CONFIRM drops the tokens it accepted. 6 APDUs, 7 with the PIN.

pub mod atm;
pub mod pos;

use apdu_spec::scp11::cert::{Date, Issuer};
use card_client::card_manager::CardManagerError;
use card_client::scp11::OceCredentials;

/// What a terminal needs to open its session: the CA that certifies the cards' keys, the day (certificates are
/// checked against it), and its own OCE credentials.
#[derive(Clone, Copy, Debug)]
pub struct TerminalIdentity<'a> {
    /// Verifies the card's certificate (GET DATA BF21).
    pub card_ca: &'a Issuer<'a>,
    /// Today.
    pub today: Date,
    /// The terminal's certificate and key (role `bank-atm` for the ATM, `credit-pos` for the POS).
    pub oce: &'a OceCredentials,
}

/// Why a terminal operation stopped.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError<E: std::error::Error + 'static> {
    /// The card refused a command or the channel failed (the card's status word and what the command needed).
    #[error("the card: {0}")]
    Card(#[from] CardManagerError),
    /// The back end refused or failed.
    #[error("the back end: {0}")]
    Host(#[source] E),
    /// The card's answer is not what the protocol says.
    #[error("the card answered {what} that does not parse")]
    BadCardData {
        /// What did not parse.
        what: &'static str,
    },
    /// No randomness for the terminal's nonce.
    #[error("no randomness from the operating system: {0}")]
    Entropy(#[from] getrandom::Error),
}
