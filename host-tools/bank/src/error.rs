//! Why the bank refused a request, or could not answer it. A refusal changed nothing.

use ledger::{LedgerError, RequestId};

fn hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

fn party(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec())
        .ok()
        .filter(|text| text.bytes().all(|b| (0x20..=0x7E).contains(&b)))
        .unwrap_or_else(|| hex(bytes))
}

/// Every way a bank call can fail.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    #[error(
        "no contract with credit company {}: this bank cannot take an early payment for it; pay at the credit company",
        party(credit_id)
    )]
    NoContract { credit_id: Vec<u8> },
    #[error(
        "the contract with credit company {} is suspended: this bank cannot take an early payment for it now; pay at the credit company",
        party(credit_id)
    )]
    ContractInactive { credit_id: Vec<u8> },
    #[error(
        "the contract with credit company {} ended on {valid_until}, before today {today}: renew it, or pay at the credit company",
        party(credit_id)
    )]
    ContractExpired {
        credit_id: Vec<u8>,
        valid_until: token::Date,
        today: token::Date,
    },
    #[error(
        "a credit company id must be 1-16 bytes, not {length}: use the id of the contract bundle"
    )]
    InvalidCreditId { length: usize },
    #[error("customer {user_id:?} is unknown: open their account first (add_customer)")]
    UnknownCustomer { user_id: String },
    #[error("customer {user_id:?} already exists: choose another user id")]
    CustomerExists { user_id: String },
    #[error("the customer's {field} is invalid: it must be {rule}")]
    InvalidCustomer {
        field: &'static str,
        rule: &'static str,
    },
    #[error("the amount is zero: give an amount of at least one minor unit")]
    AmountZero,
    #[error(
        "an amount of {amount} would overflow the {account} balance of customer {user_id:?}: split it, or settle first"
    )]
    AmountOverflow {
        user_id: String,
        account: &'static str,
        amount: u64,
    },
    #[error(
        "customer {user_id:?} keeps their account in currency {account_currency}, not {currency}: deposit in {account_currency}"
    )]
    CurrencyMismatch {
        user_id: String,
        account_currency: u16,
        currency: u16,
    },
    #[error(
        "customer {user_id:?} has {available} available in their personal account, less than {amount}: pay in cash or a smaller sum"
    )]
    InsufficientFunds {
        user_id: String,
        available: u64,
        amount: u64,
    },
    #[error("the card number is not 12-19 decimal digits: read it from the card again")]
    InvalidPan,
    #[error(
        "{what} is not a valid date, or the token's validity would end after 9999-12-31: check the terminal's date"
    )]
    InvalidDate { what: &'static str },
    #[error(
        "the hold would end at {hold_ends_unix_seconds}s, not after the bank's clock: check the terminal's clock (now_unix_seconds)"
    )]
    ClockBehind { hold_ends_unix_seconds: u64 },
    #[error("no deposit has token id {}: check the token id", hex(token_id))]
    UnknownDeposit { token_id: [u8; 16] },
    #[error(
        "deposit {} is already confirmed: it cannot be cancelled",
        hex(token_id)
    )]
    DepositConfirmed { token_id: [u8; 16] },
    #[error(
        "deposit {} is already cancelled (its money went back): take a new deposit",
        hex(token_id)
    )]
    DepositCancelled { token_id: [u8; 16] },
    #[error(
        "deposit {} was not confirmed within its hold and has expired (its money went back): take a new deposit",
        hex(token_id)
    )]
    DepositExpired { token_id: [u8; 16] },
    #[error("the bank's configuration is invalid: {reason}")]
    InvalidConfig { reason: &'static str },
    #[error(
        "this database belongs to bank {} in currency {stored_currency}, not bank {} in currency {currency}: open the right database",
        party(stored_bank_id),
        party(bank_id)
    )]
    ConfigMismatch {
        stored_bank_id: Vec<u8>,
        stored_currency: u16,
        bank_id: Vec<u8>,
        currency: u16,
    },
    #[error("request {:#x} was already answered for a different request: use a new request id", request.0)]
    RequestConflict { request: RequestId },
    #[error(
        "the pool total of currency {currency} exceeds 2^64 - 1 minor units: settle before taking more"
    )]
    PoolTotalOverflow { currency: u16 },
    #[error("the token could not be minted: nothing was taken; retry, or check the bank's keys")]
    Mint(#[from] token::MintError),
    #[error(
        "the deduction file is in currency {currency}, but this bank settles in {bank_currency}: ask the credit company for a file in {bank_currency}"
    )]
    SettlementCurrency { currency: u16, bank_currency: u16 },
    #[error(
        "settlement {message_id:?} already transferred {posted}, but its deductions now add up to {total}: the file changed; check it with the credit company"
    )]
    SettlementChanged {
        message_id: String,
        posted: u64,
        total: u64,
    },
    #[error(
        "the deduction file {message_id:?} stopped before its end was read: nothing of it was settled"
    )]
    FileNotReadWhole { message_id: String },
    #[error(
        "settlement {message_id:?} was begun by an earlier version of linkcard, which kept its deductions elsewhere: run or finish it with that version"
    )]
    SettlementOfEarlierVersion { message_id: String },
    #[error("the bank's stored {what} cannot be read: the database is damaged")]
    Corrupt { what: &'static str },
    #[error("the ledger failed: nothing was answered; retry, or check the database")]
    Ledger(#[source] LedgerError),
}

impl From<LedgerError> for BankError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::IdempotencyConflict { request } => Self::RequestConflict { request },
            other => Self::Ledger(other),
        }
    }
}
