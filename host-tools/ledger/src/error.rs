//! Why the ledger refused a request, or could not answer it.

use crate::model::{AccountId, Currency, RequestId, Timestamp, TransferId};

/// Every way a ledger call can fail. A refusal ([`LedgerError::is_refusal`]) changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the request is empty")]
    EmptyRequest,
    #[error("a transfer's amount must be greater than zero")]
    AmountZero,
    #[error("transfer {transfer:#x} debits and credits the same account {account:#x}")]
    SameAccount {
        transfer: TransferId,
        account: AccountId,
    },
    #[error("account {account:#x} cannot both limit its debits and its credits")]
    ConflictingFlags { account: AccountId },
    #[error("account {account:#x} does not exist")]
    AccountNotFound { account: AccountId },
    #[error("account {account:#x} already exists")]
    AccountExists { account: AccountId },
    #[error("account {account:#x} already exists with different fields")]
    AccountExistsWithDifferentFields { account: AccountId },
    #[error("transfer {transfer:#x} already exists")]
    TransferExists { transfer: TransferId },
    #[error("transfer {transfer:#x} already exists with different fields")]
    TransferExistsWithDifferentFields { transfer: TransferId },
    #[error("account {account:#x} keeps currency {}, not {}", account_currency.0, currency.0)]
    CurrencyMismatch {
        account: AccountId,
        account_currency: Currency,
        currency: Currency,
    },
    #[error("the transfer would make account {account:#x}'s debits exceed its credits")]
    ExceedsCredits { account: AccountId },
    #[error("the transfer would make account {account:#x}'s credits exceed its debits")]
    ExceedsDebits { account: AccountId },
    #[error("the transfer would overflow a balance of account {account:#x}")]
    Overflow { account: AccountId },
    #[error(
        "pending transfer {pending:#x} would expire at {expires_at}, not after the transfer's time {now}"
    )]
    ExpiryNotInFuture {
        pending: TransferId,
        expires_at: Timestamp,
        now: Timestamp,
    },
    #[error("pending transfer {pending:#x} does not exist")]
    PendingNotFound { pending: TransferId },
    #[error("transfer {pending:#x} is not a pending transfer")]
    NotPending { pending: TransferId },
    #[error("pending transfer {pending:#x} is already posted")]
    PendingAlreadyPosted { pending: TransferId },
    #[error("pending transfer {pending:#x} is already voided")]
    PendingAlreadyVoided { pending: TransferId },
    #[error("pending transfer {pending:#x} has expired")]
    PendingExpired { pending: TransferId },
    #[error(
        "the transfer names other accounts or another currency than pending transfer {pending:#x}"
    )]
    PendingMismatch { pending: TransferId },
    #[error("cannot post {amount} of pending transfer {pending:#x}, which holds {pending_amount}")]
    ExceedsPendingAmount {
        pending: TransferId,
        pending_amount: u128,
        amount: u128,
    },
    #[error(
        "voiding pending transfer {pending:#x} must name its amount {pending_amount}, not {amount}"
    )]
    VoidAmountMismatch {
        pending: TransferId,
        pending_amount: u128,
        amount: u128,
    },
    #[error("request {:#x} was already answered for a different request", request.0)]
    IdempotencyConflict { request: RequestId },
    #[error("transfer {index} of the linked chain was refused")]
    InChain {
        index: usize,
        #[source]
        source: Box<LedgerError>,
    },
    #[error(
        "request {:#x} failed after it had written; its transaction must be abandoned",
        request.0
    )]
    FailedAfterWriting {
        request: RequestId,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the ledger's invariants do not hold")]
    InvariantViolated(#[from] Violation),
    #[error("the stored {what} cannot be decoded")]
    Corrupt { what: &'static str },
    #[error("storage failed")]
    Storage(#[from] StorageError),
}

impl LedgerError {
    /// Whether the ledger refused the request on its merits (and changed nothing), as opposed to a storage
    /// failure or a broken invariant, after which the transaction must be abandoned.
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::InChain { source, .. } => source.is_refusal(),
            Self::InvariantViolated(_)
            | Self::Corrupt { .. }
            | Self::Storage(_)
            | Self::FailedAfterWriting { .. } => false,
            _ => true,
        }
    }
}

/// The storage underneath failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("SQLite")]
    Sqlite(#[from] rusqlite::Error),
    #[error("no savepoint is open to release or roll back to")]
    NoSavepoint,
    #[error(
        "the database has schema version {found}; this program knows versions up to {supported}"
    )]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("could not flush the write-ahead log {path} to disk")]
    Sync {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<rusqlite::Error> for LedgerError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Storage(StorageError::Sqlite(error))
    }
}

/// A broken invariant, found by [`Ledger::check_invariants`](crate::Ledger::check_invariants).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("in currency {}, debits {debits:?} (posted: {posted}) differ from credits {credits:?}", currency.0)]
    Unbalanced {
        currency: Currency,
        posted: bool,
        debits: (u128, u128),
        credits: (u128, u128),
    },
    #[error("account {account:#x}'s balances differ from the sum of its transfers")]
    BalanceMismatch { account: AccountId },
    #[error("account {account:#x} breaks its own debit or credit limit")]
    LimitBroken { account: AccountId },
    #[error(
        "transfer {transfer:#x} names a missing account, another currency, a zero amount or one account twice"
    )]
    MalformedTransfer { transfer: TransferId },
    #[error(
        "transfer {transfer:#x} disagrees with its pending transfer, or a pending transfer with its fate"
    )]
    PendingInconsistent { transfer: TransferId },
    #[error("transfer {transfer:#x} has the timestamp of the transfer before it")]
    TimestampReused { transfer: TransferId },
}
