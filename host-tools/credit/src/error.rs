//! Why the credit system refused a call, each message saying what to do.

use ledger::LedgerError;

/// Every way a credit-system call can fail. An error other than [`CreditError::Storage`] and
/// [`CreditError::CorruptRecord`] is a refusal of that request: nothing of it was recorded.
#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    #[error("no card ending in {pan_tail} is registered: register it with add_card first")]
    UnknownCard { pan_tail: String },
    #[error(
        "no cardholder {cardholder_id:?} is registered: register them with add_cardholder first"
    )]
    UnknownCardholder { cardholder_id: String },
    #[error("cardholder {cardholder_id:?} is already registered: use another id")]
    CardholderExists { cardholder_id: String },
    #[error("a card ending in {pan_tail} is already registered: use set_card_status to change it")]
    CardExists { pan_tail: String },
    #[error("the amount must be greater than zero")]
    ZeroAmount,
    #[error(
        "a purchase of {amount} on an outstanding balance of {outstanding} overflows 64 bits: check the amount"
    )]
    AmountOverflow { amount: u64, outstanding: u64 },
    #[error("{field} {problem}: correct it and send the request again")]
    Malformed {
        field: &'static str,
        problem: &'static str,
    },
    #[error("{count} tokens presented, at most {max} are accepted in one authorization")]
    TooManyTokens { count: usize, max: usize },
    #[error(
        "request {request:#x} was already used for a different request: use a fresh request id"
    )]
    IdempotencyConflict { request: u128 },
    #[error(
        "the database belongs to another credit system ({what} differs): open the right database"
    )]
    ConfigMismatch { what: &'static str },
    #[error("the credit system needs at least one HPKE private key to open tokens")]
    NoHpkeKeys,
    #[error("an HPKE private key is not usable: give the P-256 keys the banks seal tokens to")]
    InvalidHpkeKey(#[source] token::InvalidKey),
    #[error("the ledger refused the change, nothing was recorded: the cause says why")]
    Ledger(#[source] LedgerError),
    #[error("statement {message_id:?} already exists for another bank: choose another message id")]
    StatementExists { message_id: String },
    #[error(
        "statement {message_id:?} for this bank is not reconciled yet: reconcile the bank's answer to it before the next statement"
    )]
    StatementOpen { message_id: String },
    #[error("no statement {message_id:?}: check the deduction file the answer refers to")]
    UnknownStatement { message_id: String },
    #[error("statement {message_id:?} was sent to another bank: check which bank's answer this is")]
    WrongBank { message_id: String },
    #[error("statement {message_id:?} is not complete: run the statement again to finish it")]
    StatementIncomplete { message_id: String },
    #[error(
        "deduction {end_to_end_id:?} was reconciled before with a different answer from the bank: this report is not the one reconciled; nothing more was reconciled"
    )]
    ReconciliationChanged { end_to_end_id: String },
    #[error(
        "the bank's answer to statement {statement:?} stopped before it was read and checked whole: nothing of it was reconciled"
    )]
    AnswerNotCheckedWhole { statement: String },
    #[error(
        "statement {message_id:?} was being reconciled by an earlier version of linkcard, which kept its progress elsewhere: finish it with that version"
    )]
    ReconciliationOfEarlierVersion { message_id: String },
    #[error(
        "deduction {end_to_end_id:?} is not part of statement {statement:?}: the bank's answer is for another file; nothing was reconciled"
    )]
    UnknownDeduction {
        end_to_end_id: String,
        statement: String,
    },
    #[error(
        "the bank's answer to deduction {end_to_end_id:?} does not match it (amounts or tokens): nothing was reconciled; ask the bank"
    )]
    AmountsDisagree { end_to_end_id: String },
    #[error(
        "the transfer notice says {notice} was transferred, the status report adds up to {report}: nothing was reconciled; ask the bank"
    )]
    NoticeDisagrees { notice: u64, report: u64 },
    #[error(
        "the stored {what} cannot be decoded: the database is damaged, restore it from a backup"
    )]
    CorruptRecord {
        what: &'static str,
        #[source]
        source: Option<ledger::records::RecordDecodeError>,
    },
    #[error(
        "the credit records disagree with the ledger ({what}): restore the database from a backup"
    )]
    Inconsistent { what: &'static str },
    #[error("the database failed: check the disk and retry")]
    Storage(#[source] LedgerError),
}

impl CreditError {
    /// Whether the request was refused on its merits (nothing of it recorded), as opposed to a failure after
    /// which the transaction must be abandoned.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, Self::Storage(_) | Self::CorruptRecord { .. })
    }

    pub(crate) fn corrupt(what: &'static str) -> Self {
        Self::CorruptRecord { what, source: None }
    }

    pub(crate) fn malformed(field: &'static str, problem: &'static str) -> Self {
        Self::Malformed { field, problem }
    }
}

impl From<LedgerError> for CreditError {
    fn from(error: LedgerError) -> Self {
        match error {
            LedgerError::IdempotencyConflict { request } => {
                Self::IdempotencyConflict { request: request.0 }
            }
            error if error.is_refusal() => Self::Ledger(error),
            error => Self::Storage(error),
        }
    }
}

/// The last four digits of a PAN, for messages (the rest stays out of logs).
pub(crate) fn pan_tail(pan: &str) -> String {
    pan.get(pan.len().saturating_sub(4)..)
        .unwrap_or("")
        .to_owned()
}
