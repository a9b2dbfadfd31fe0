//! The terminals' back ends, joined in this process as a network would join them: the ATM's [`DepositHost`] is
//! the bank system, the POS's [`AuthorizationHost`] the credit system.

use bank::{Bank, CardRef, DepositRequest, Source};
use credit::{AuthorizationRequest, Credit, Decision, DeclineReason};
use ledger::{RequestId, Store};
use terminal::atm::{CardHolder, DepositHost, MintedToken};
use terminal::pos::{AuthorizationAnswer, AuthorizationHost, AuthorizationMessage};

/// A fresh request id: the ledger makes each request idempotent under its id.
pub fn request_id() -> RequestId {
    let mut bytes = [0u8; 16];
    // An id only needs to be unique; a failing generator gives an id the ledger refuses as a duplicate at worst.
    let _ = getrandom::fill(&mut bytes);
    RequestId(u128::from_be_bytes(bytes))
}

/// The bank system behind one ATM transaction: the amount and credit company the user chose, and the card.
pub struct BankHost<'b, S> {
    /// The bank.
    pub bank: &'b mut Bank<S>,
    /// What the user asked for.
    pub credit_id: Vec<u8>,
    /// Amount in minor units.
    pub amount: u64,
    /// Currency (ISO 4217 numeric).
    pub currency: u16,
    /// Cash or the personal account.
    pub source: Source,
    /// The card (the bank issued it: it knows its PAN and card binding).
    pub card: CardRef,
    /// Today.
    pub today: token::Date,
    /// Now, seconds since the Unix epoch.
    pub now: u64,
}

impl<S: Store> DepositHost for BankHost<'_, S> {
    type Error = bank::BankError;

    fn deposit(&mut self, holder: &CardHolder) -> Result<MintedToken, bank::BankError> {
        let deposit = self.bank.deposit(
            request_id(),
            &DepositRequest {
                user_id: holder.user_id.clone(),
                credit_id: self.credit_id.clone(),
                amount: self.amount,
                currency: self.currency,
                source: self.source,
                card: self.card.clone(),
                today: self.today,
                now_unix_seconds: self.now,
            },
        )?;
        Ok(MintedToken {
            token: deposit.token,
            token_id: deposit.token_id,
        })
    }

    fn confirm(&mut self, token_id: &[u8; 16]) -> Result<(), bank::BankError> {
        self.bank.confirm_deposit(request_id(), token_id)
    }

    fn cancel(&mut self, token_id: &[u8; 16]) -> Result<(), bank::BankError> {
        self.bank.cancel_deposit(request_id(), token_id)
    }
}

/// The credit system behind one POS: its merchant name and the day.
pub struct CreditHost<'c, S> {
    /// The credit system.
    pub credit: &'c mut Credit<S>,
    /// The merchant.
    pub merchant: String,
    /// Today.
    pub today: token::Date,
    /// Now, seconds since the Unix epoch.
    pub now: u64,
    /// The last decision, with its evidence, for the report.
    pub last: Option<Decision>,
}

impl<S: Store> AuthorizationHost for CreditHost<'_, S> {
    type Error = credit::CreditError;

    fn authorize(
        &mut self,
        m: &AuthorizationMessage,
    ) -> Result<AuthorizationAnswer, credit::CreditError> {
        let decision = self.credit.authorize(
            request_id(),
            &AuthorizationRequest {
                pan: m.pan.clone(),
                nonce: m.nonce,
                amount: m.amount,
                currency: m.currency,
                atc: m.atc,
                tokens: m.tokens.clone(),
                signature: m.signature,
                merchant: self.merchant.clone(),
                today: self.today,
                now_unix_seconds: self.now,
            },
        )?;
        let answer = AuthorizationAnswer {
            approved: decision.approved,
            accepted_tokens: decision
                .accepted_tokens
                .iter()
                .map(|t| t.token_id)
                .collect(),
            message: match &decision.decline {
                None => format!(
                    "approved (authorization {:032x})",
                    decision.authorization_id
                ),
                Some(reason) => describe_decline(reason, m.currency),
            },
        };
        self.last = Some(decision);
        Ok(answer)
    }
}

/// A decline as the POS prints it.
pub fn describe_decline(reason: &DeclineReason, currency: u16) -> String {
    match reason {
        DeclineReason::InsufficientCredit { available, amount } => format!(
            "declined: insufficient credit ({} available, {} asked)",
            crate::money::format(*available, currency),
            crate::money::format(*amount, currency)
        ),
        DeclineReason::CardLost => "declined: the card is reported lost".into(),
        DeclineReason::CardStolen => "declined: the card is reported stolen".into(),
        DeclineReason::CardBlocked => "declined: the card is blocked".into(),
        DeclineReason::CardExpired => "declined: the card has expired".into(),
        DeclineReason::BadCardSignature => "declined: the card's signature does not verify".into(),
        DeclineReason::AtcNotIncreasing { last, presented } => {
            format!("declined: the card's counter did not advance ({presented} after {last})")
        }
        DeclineReason::WrongCurrency { expected, got } => {
            format!("declined: currency {got}, the account is in {expected}")
        }
    }
}
