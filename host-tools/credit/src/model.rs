//! The credit system's public data: configuration, cardholders, cards, authorization requests and decisions.

use serde::{Deserialize, Serialize};

/// The credit company this system runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditConfig {
    /// The credit company id tokens are sealed for (1-16 bytes, `docs/token.md` header `83`).
    pub credit_id: Vec<u8>,
    /// The company's ISO 4217 numeric currency (1-999).
    pub currency: u16,
    /// Days after a token's last valid day during which its temporary reflection waits for the bank's transfer
    /// (patent Fig. 11) before it expires.
    pub settlement_grace_days: u16,
}

/// A cardholder to register, with the credit limit granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCardholder {
    /// The credit company's id of the cardholder (1-64 bytes of UTF-8).
    pub cardholder_id: String,
    /// The cardholder's name (1-128 bytes of UTF-8).
    pub name: String,
    /// The credit limit, minor units of `currency`.
    pub credit_limit: u64,
    /// ISO 4217 numeric currency of the account (1-999).
    pub currency: u16,
}

/// A card to register for a cardholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCard {
    /// The card number (12-19 ASCII digits).
    pub pan: String,
    /// The last day the card is valid.
    pub expiry: token::Date,
    /// The cardholder it belongs to (registered before).
    pub cardholder_id: String,
    /// The credit applet's public signing key (what PERSONALIZE answered): it signs every PRESENT, and tokens
    /// are bound to its digest.
    pub signing_key: p256::ecdsa::VerifyingKey,
}

/// Whether a card may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CardStatus {
    Active,
    Lost,
    Stolen,
    Blocked,
}

/// What the POS sends after PRESENT: the card's answer and the purchase.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The card number the card presented.
    pub pan: String,
    /// The terminal's nonce given to PRESENT.
    pub nonce: [u8; 16],
    /// The purchase amount, minor units of `currency` (> 0).
    pub amount: u64,
    /// ISO 4217 numeric currency of the purchase.
    pub currency: u16,
    /// The card's application transaction counter of this PRESENT.
    pub atc: u32,
    /// The token envelopes the card presented, in the order presented.
    pub tokens: Vec<Vec<u8>>,
    /// The card's ECDSA P-256 signature (r ‖ s) over `apdu_spec::credit::signed_message`.
    pub signature: [u8; 64],
    /// Who sells (kept as evidence).
    pub merchant: String,
    /// The day of the purchase (card expiry, token validity).
    pub today: token::Date,
    /// The time of the purchase, seconds since the Unix epoch.
    pub now_unix_seconds: u64,
}

impl core::fmt::Debug for AuthorizationRequest {
    // The PAN stays out of logs: only its last four digits show.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let token_lengths: Vec<usize> = self.tokens.iter().map(Vec::len).collect();
        f.debug_struct("AuthorizationRequest")
            .field(
                "pan",
                &format_args!("…{}", crate::error::pan_tail(&self.pan)),
            )
            .field("amount", &self.amount)
            .field("currency", &self.currency)
            .field("atc", &self.atc)
            .field("token_lengths", &token_lengths)
            .field("merchant", &self.merchant)
            .field("today", &self.today)
            .field("now_unix_seconds", &self.now_unix_seconds)
            .finish_non_exhaustive()
    }
}

/// The answer to an authorization, recorded with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// This decision's id (fresh, increasing).
    pub authorization_id: u128,
    pub approved: bool,
    /// Why it was declined (`None` when approved).
    pub decline: Option<DeclineReason>,
    /// The credit available before this authorization (before its tokens).
    pub available_before: u64,
    /// The credit available after it: with the accepted tokens reflected, less the purchase if approved.
    pub available_after: u64,
    /// Tokens reflected as pending credits, approved or not: the POS CONFIRMs them on the card.
    pub accepted_tokens: Vec<AcceptedToken>,
    /// Tokens not counted, each with its reason.
    pub refused_tokens: Vec<RefusedToken>,
}

/// A token accepted and reflected at once as a pending credit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedToken {
    #[serde(with = "crate::hex_serde")]
    pub token_id: [u8; 16],
    #[serde(with = "crate::hex_serde")]
    pub bank_id: Vec<u8>,
    /// Its sum, minor units of the account's currency.
    pub sum: u64,
}

/// A token not counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedToken {
    /// Its id, when its clear header could be read.
    #[serde(with = "crate::hex_serde::option")]
    pub token_id: Option<[u8; 16]>,
    /// Why, for the cardholder and the operator.
    pub reason: String,
}

/// Why a purchase was declined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeclineReason {
    InsufficientCredit { available: u64, amount: u64 },
    CardLost,
    CardStolen,
    CardBlocked,
    CardExpired,
    BadCardSignature,
    AtcNotIncreasing { last: u32, presented: u32 },
    WrongCurrency { expected: u16, got: u16 },
}

/// A cardholder's financial status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditAccount {
    pub currency: u16,
    pub limit: u64,
    /// Purchases not yet paid (posted).
    pub outstanding: u64,
    /// Temporary reflections of tokens, waiting for the bank's transfer.
    pub pending_credits: u64,
    /// `limit − outstanding + pending_credits` (a paid-ahead balance counts too), never below zero.
    pub available: u64,
}

/// A temporary reflection waiting for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCredit {
    #[serde(with = "crate::hex_serde")]
    pub token_id: [u8; 16],
    #[serde(with = "crate::hex_serde")]
    pub bank_id: Vec<u8>,
    pub amount: u64,
    /// The last day it waits for the bank's transfer (the token's last valid day + the grace days).
    #[serde(with = "date_bytes")]
    pub expires: token::Date,
    /// The authorization that reflected it.
    pub authorization_id: u128,
}

/// `token::Date` as its four BCD bytes.
pub(crate) mod date_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(date: &token::Date, serializer: S) -> Result<S::Ok, S::Error> {
        date.0.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<token::Date, D::Error> {
        <[u8; 4]>::deserialize(deserializer).map(token::Date)
    }
}
