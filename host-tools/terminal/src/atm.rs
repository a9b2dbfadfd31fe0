//! The ATM deposit (patent Fig. 7, steps 701-705, then Fig. 14 or Fig. 15): the user pays a credit bill early;
//! the bank pools the money and the card carries the token that says so.
//!
//! 1. SELECT the bank applet; its certificate checked against the card CA; SCP11a as `bank-atm`;
//! 2. READ ACCOUNT: whose card this is (bank id, account, user id, user name);
//! 3. the bank deposits (held, not yet posted) and mints the token ([`DepositHost::deposit`]): refused when it
//!    has no contract with that credit company (step 706), and the ATM says so;
//! 4. STORE TOKEN: in the bank applet (Fig. 14: the credit applet takes it through the firewall at its next
//!    PRESENT), or, with the bank's delivery certificate, straight into the credit applet (Fig. 15);
//! 5. the bank posts the deposit if the card kept the token ([`DepositHost::confirm`]), and releases the money
//!    if the card refused it ([`DepositHost::cancel`]): nothing is lost either way. A channel that fails before
//!    the card answered leaves the deposit held; the bank's hold expires and releases it.

use apdu_spec::bank::Personalization;
use card_client::CardChannel;
use card_client::bank::BankAppletSession;
use card_client::card_manager::CardManagerError;
use card_client::credit::CreditAppletSession;
use card_client::scp11::OceCredentials;

use crate::{TerminalError, TerminalIdentity};
use apdu_spec::scp11::session::SecurityLevel;

/// Whose card is in the ATM, as its bank applet says (READ ACCOUNT).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardHolder {
    /// The bank the applet was personalized for.
    pub bank_id: Vec<u8>,
    /// The account number.
    pub account: String,
    /// The user id at the bank.
    pub user_id: String,
    /// The user's name.
    pub user_name: String,
}

/// The token the bank minted for a held deposit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MintedToken {
    /// The token envelope (`7F71 …`).
    pub token: Vec<u8>,
    /// Its id (the clear header's).
    pub token_id: [u8; 16],
}

/// The bank system as the ATM sees it.
pub trait DepositHost {
    /// What the bank answers when it refuses.
    type Error: std::error::Error + 'static;
    /// Holds the deposit for `holder` and mints its token (the amount, the credit company and the source are
    /// the host's: the ATM collected them from the user).
    fn deposit(&mut self, holder: &CardHolder) -> Result<MintedToken, Self::Error>;
    /// The card keeps the token: post the deposit.
    fn confirm(&mut self, token_id: &[u8; 16]) -> Result<(), Self::Error>;
    /// The card refused the token: release the money.
    fn cancel(&mut self, token_id: &[u8; 16]) -> Result<(), Self::Error>;
}

/// Where the token goes on the card.
#[derive(Clone, Copy, Debug)]
pub enum Delivery<'a> {
    /// Into the bank applet (Fig. 14).
    BankApplet,
    /// Into the credit applet `instance` (its AID), in a session with the bank's delivery certificate (Fig. 15).
    CreditApplet {
        /// The credit applet's AID.
        instance: &'a [u8],
        /// The certificate the credit company issued to the bank (role `token-delivery`).
        delivery: &'a OceCredentials,
    },
}

/// What the ATM prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The card's holder.
    pub holder: CardHolder,
    /// The token now on the card.
    pub token_id: [u8; 16],
    /// Fig. 14 (bank applet) or Fig. 15 (credit applet).
    pub stored_in: &'static str,
}

/// Runs the deposit on the card in `channel`, whose bank applet is `bank_applet` (its AID).
pub fn deposit<C: CardChannel, H: DepositHost>(
    channel: &mut C,
    bank_applet: &[u8],
    terminal: &TerminalIdentity<'_>,
    delivery: Delivery<'_>,
    host: &mut H,
) -> Result<Receipt, TerminalError<H::Error>> {
    let mut session = BankAppletSession::select(&mut *channel, bank_applet)?.open_scp11a(
        terminal.card_ca,
        terminal.today,
        terminal.oce,
        SecurityLevel::FULL,
    )?;
    let holder = card_holder(&session.read_account()?)?;
    let minted = host.deposit(&holder).map_err(TerminalError::Host)?;
    let stored = match delivery {
        Delivery::BankApplet => session.store_token(&minted.token).map(|()| "bank applet"),
        Delivery::CreditApplet { instance, delivery } => {
            drop(session);
            store_in_credit_applet(&mut *channel, instance, terminal, delivery, &minted.token)
                .map(|()| "credit applet")
        }
    };
    match stored {
        Ok(stored_in) => {
            host.confirm(&minted.token_id)
                .map_err(TerminalError::Host)?;
            Ok(Receipt {
                holder,
                token_id: minted.token_id,
                stored_in,
            })
        }
        // The card answered no, or the command was never sent: the money goes back. (A channel that failed
        // after sending leaves the deposit held until its hold expires: the card may have the token.)
        Err(refusal) if surely_not_stored(&refusal) => {
            host.cancel(&minted.token_id).map_err(TerminalError::Host)?;
            Err(refusal.into())
        }
        Err(failure) => Err(failure.into()),
    }
}

/// Whether the card certainly does not have the token after this failure.
fn surely_not_stored(error: &CardManagerError) -> bool {
    error.status().is_some()
        || matches!(
            error,
            CardManagerError::SecurityStatusNotSatisfied { status: None, .. }
        )
}

fn store_in_credit_applet<C: CardChannel>(
    channel: &mut C,
    instance: &[u8],
    terminal: &TerminalIdentity<'_>,
    delivery: &OceCredentials,
    token: &[u8],
) -> Result<(), CardManagerError> {
    CreditAppletSession::select(channel, instance)?
        .open_scp11a(
            terminal.card_ca,
            terminal.today,
            delivery,
            SecurityLevel::FULL,
        )?
        .store_token(token)
}

/// The account data READ ACCOUNT answers.
fn card_holder<E: std::error::Error>(data: &[u8]) -> Result<CardHolder, TerminalError<E>> {
    let bad = TerminalError::BadCardData {
        what: "account data",
    };
    let account = Personalization::parse(data).map_err(|_| bad)?;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    Ok(CardHolder {
        bank_id: account.bank_id.to_vec(),
        account: text(account.account),
        user_id: text(account.user_id),
        user_name: text(account.user_name),
    })
}
