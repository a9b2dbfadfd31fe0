//! The POS purchase (patent Fig. 10): the credit system sees the card's tokens and raises the available credit
//! at once.
//!
//! 1. SELECT the credit applet; its certificate checked against the card CA; SCP11a as `credit-pos`;
//! 2. VERIFY the cardholder PIN, when the user gave one (cards personalized with a PIN need it);
//! 3. PRESENT with a fresh 16-byte nonce, the amount and the currency: the card counts its ATC up, collects its
//!    tokens from the bank applet (Fig. 14), and answers the card data, the tokens and its signature;
//! 4. the credit system verifies and decides ([`AuthorizationHost::authorize`]);
//! 5. CONFIRM with the ids of the tokens the credit system accepted: the card drops them (it keeps the others).

use apdu_spec::credit::{Presentation, tag};
use apdu_spec::tlv;
use card_client::CardChannel;
use card_client::credit::{CreditAppletSession, PinState};

use crate::{TerminalError, TerminalIdentity};
use apdu_spec::scp11::session::SecurityLevel;

/// What the POS sends its credit system: the card's evidence and the purchase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationMessage {
    /// The card number (from the card data, `C2`), as digits.
    pub pan: String,
    /// The POS's nonce the card signed.
    pub nonce: [u8; 16],
    /// Amount in minor units.
    pub amount: u64,
    /// ISO 4217 numeric currency.
    pub currency: u16,
    /// The card's ATC for this presentation.
    pub atc: u32,
    /// The presented token envelopes, in the order signed.
    pub tokens: Vec<Vec<u8>>,
    /// The card's signature (r ‖ s).
    pub signature: [u8; 64],
    /// The card data TLVs as presented.
    pub card_data: Vec<u8>,
}

/// What the credit system answers the POS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationAnswer {
    /// Approved or declined.
    pub approved: bool,
    /// The tokens the credit system reflected: the POS CONFIRMs them so the card drops them.
    pub accepted_tokens: Vec<[u8; 16]>,
    /// For the receipt: why declined, or the approval code.
    pub message: String,
}

/// The credit system as the POS sees it.
pub trait AuthorizationHost {
    /// What the credit system answers when it cannot decide (an unknown card, a broken request, its storage).
    type Error: std::error::Error + 'static;
    /// Verifies the presentation and decides.
    fn authorize(
        &mut self,
        message: &AuthorizationMessage,
    ) -> Result<AuthorizationAnswer, Self::Error>;
}

/// The purchase asked for at the POS.
#[derive(Clone, Copy, Debug)]
pub struct Purchase<'a> {
    /// Amount in minor units.
    pub amount: u64,
    /// ISO 4217 numeric currency.
    pub currency: u16,
    /// The PIN the cardholder typed, if any.
    pub pin: Option<&'a [u8]>,
}

/// What the POS prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The presentation the credit system saw.
    pub message: AuthorizationMessage,
    /// Its decision.
    pub answer: AuthorizationAnswer,
    /// APDUs the purchase took.
    pub apdus: usize,
}

/// Why the card refused the PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PinRefused {
    /// Wrong PIN; tries left.
    #[error("wrong PIN: {0} tries left")]
    Wrong(u8),
    /// No tries left.
    #[error("the PIN is blocked: the card refuses every PIN (see the card issuer)")]
    Blocked,
}

/// Runs the purchase on the card in `channel`, whose credit applet is `credit_applet` (its AID). A wrong or
/// blocked PIN stops it before PRESENT (`Ok(Err(…))`), with the card's ATC untouched.
pub fn purchase<C: CardChannel, H: AuthorizationHost>(
    channel: &mut C,
    credit_applet: &[u8],
    terminal: &TerminalIdentity<'_>,
    purchase: &Purchase<'_>,
    host: &mut H,
) -> Result<Result<Receipt, PinRefused>, TerminalError<H::Error>> {
    let mut counted = Counted {
        inner: channel,
        apdus: 0,
    };
    let mut session = CreditAppletSession::select(&mut counted, credit_applet)?.open_scp11a(
        terminal.card_ca,
        terminal.today,
        terminal.oce,
        SecurityLevel::FULL,
    )?;
    if let Some(pin) = purchase.pin {
        match session.verify_pin(pin)? {
            PinState::Verified => {}
            PinState::TriesLeft(left) => return Ok(Err(PinRefused::Wrong(left))),
            PinState::Blocked => return Ok(Err(PinRefused::Blocked)),
        }
    }
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce)?;
    let presented = session.present(&Presentation {
        nonce: &nonce,
        amount: purchase.amount,
        currency: purchase.currency,
    })?;
    let message = AuthorizationMessage {
        pan: pan(&presented.card_data).ok_or(TerminalError::BadCardData { what: "card data" })?,
        nonce,
        amount: purchase.amount,
        currency: purchase.currency,
        atc: presented.atc,
        tokens: presented.tokens,
        signature: presented.signature,
        card_data: presented.card_data,
    };
    let answer = host.authorize(&message).map_err(TerminalError::Host)?;
    session.confirm(message.atc, &answer.accepted_tokens)?;
    drop(session);
    Ok(Ok(Receipt {
        message,
        answer,
        apdus: counted.apdus,
    }))
}

/// The PAN's digits from the card data's `C2` (BCD, `F` padding).
pub fn pan(card_data: &[u8]) -> Option<String> {
    let field = tlv::iter(card_data)
        .filter_map(Result::ok)
        .find(|field| field.tag == tag::PAN)?;
    let mut digits = String::with_capacity(field.value.len() * 2);
    for nibble in field.value.iter().flat_map(|b| [b >> 4, b & 0x0F]) {
        match nibble {
            0..=9 => digits.push(char::from(b'0' + nibble)),
            0x0F => break,
            _ => return None,
        }
    }
    (!digits.is_empty()).then_some(digits)
}

/// Counts the APDUs a purchase takes.
struct Counted<'c, C> {
    inner: &'c mut C,
    apdus: usize,
}

impl<C: CardChannel> CardChannel for Counted<'_, C> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, card_client::ChannelError> {
        self.apdus += 1;
        self.inner.transmit(apdu)
    }
    fn transmit_extended(&mut self, apdu: &[u8]) -> Result<Vec<u8>, card_client::ChannelError> {
        self.apdus += 1;
        self.inner.transmit_extended(apdu)
    }
    fn reset(&mut self) -> Result<Vec<u8>, card_client::ChannelError> {
        self.inner.reset()
    }
    fn power_off(&mut self) -> Result<(), card_client::ChannelError> {
        self.inner.power_off()
    }
    fn power_on(&mut self) -> Result<Vec<u8>, card_client::ChannelError> {
        self.inner.power_on()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn security(&self) -> Option<apdu_spec::scp11::Security> {
        self.inner.security()
    }
}
