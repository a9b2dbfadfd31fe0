//! Double-entry bookkeeping as TigerBeetle models it, on SQLite, with the storage behind a trait.
//!
//! # Model
//!
//! An [`Account`] has a caller-chosen id, an ISO 4217 numeric [`Currency`], a `code` (the caller's kind of
//! account), [`AccountFlags`] and four balances in integer minor units: `debits_pending`, `debits_posted`,
//! `credits_pending`, `credits_posted` (`u128`; overflow is refused, never wrapped).
//!
//! A [`Transfer`] moves `amount` (> 0) of one currency from a debit account to a credit account of that currency.
//! Its [`TransferKind`] is one of:
//! - `Single`: posted at once;
//! - `Pending { expires_at }`: reserved (the pending balances) until posted, voided or expired;
//! - `PostPending { pending_id }`: posts up to the pending amount, releasing the reservation;
//! - `VoidPending { pending_id }`: releases the whole reservation.
//!
//! A pending transfer's fate is its [`PendingState`]. It expires when its time has come (a post or void at or
//! after `expires_at` is refused) and its reservation is released by an explicit [`Transaction::expire_pending`]
//! call: deterministic, no background thread. Timestamps are assigned by the ledger, strictly increasing
//! (nanoseconds since the Unix epoch from a [`Clock`]). Transfers are never changed or deleted.
//!
//! # Requests
//!
//! Every change is a [`Request`] under a caller-chosen [`RequestId`], applied all-or-nothing. A request of
//! several transfers is a *linked chain* (TigerBeetle's `linked` flag). The ledger keeps (request id → SHA-256 of
//! the canonical request → answer): a replay gets the first [`Answer`] and changes nothing; another request
//! under the same id is refused ([`LedgerError::IdempotencyConflict`]). A refused request changes nothing and
//! leaves no trace. Domain crates make their own requests idempotent the same way with
//! [`Transaction::idempotent`].
//!
//! # Invariants ([`Ledger::check_invariants`])
//!
//! - every transfer is balanced: one amount, debited from and credited to two distinct accounts of its currency,
//!   so in every currency the sum of all debits equals the sum of all credits, pending and posted;
//! - every account's balances are the sums of its transfers (posted: single and post-pending transfers; pending:
//!   pending transfers still pending), and every account keeps its flags' limit;
//! - every pending transfer is pending, or posted or voided by exactly one later transfer, or expired.
//!
//! # Storage
//!
//! A [`Store`] opens [`Transaction`]s. The rules are provided methods of [`Transaction`] written once over the
//! primitives of [`LedgerTables`], so another backend (PostgreSQL) implements only the primitives and the bank and
//! credit code does not change. A transaction also carries a keyed-record API for the domain crates' own tables
//! ([`Transaction::insert_unique`], `get`, `put`, `delete`, `scan_prefix`), written in the same database
//! transaction as the postings, and savepoints ([`Transaction::scope`]) so that a batch of independent requests
//! shares one durable commit while a refused request undoes only its own changes
//! ([`Ledger::submit_batch`]). Nothing is answered before its commit is durable.
//!
//! [`SqliteStore`] is the embedded implementation: WAL, `synchronous=FULL` by default, 16 KiB pages, `STRICT`
//! tables, `PRAGMA user_version` migrations from an empty file, cached prepared statements. Its schema
//! (tables `accounts`, `transfers`, `requests`, `records`) is in `src/sqlite.rs`; `README.md` beside this crate
//! shows it.
//!
//! ```
//! use ledger::{AccountFlags, Currency, Ledger, NewAccount, NewTransfer, RequestId, SqliteStore, Transaction,
//!              TransferKind};
//!
//! let mut ledger = Ledger::new(SqliteStore::open_in_memory()?);
//! let mut tx = ledger.transaction()?;
//! let eur = Currency(978);
//! for id in [1, 2] {
//!     let account = NewAccount { id, currency: eur, code: 1, flags: AccountFlags::default(), user_data: [0; 32] };
//!     tx.create_account(RequestId(id), account)?;
//! }
//! let transfer = NewTransfer {
//!     id: 10, debit_account_id: 1, credit_account_id: 2, amount: 500, currency: eur, code: 1,
//!     user_data: [0; 32], kind: TransferKind::Single,
//! };
//! tx.create_transfer(RequestId(3), transfer)?;
//! tx.commit()?;
//! assert_eq!(ledger.account(2)?.unwrap().credits_posted, 500);
//! ledger.check_invariants()?;
//! # Ok::<(), ledger::LedgerError>(())
//! ```

#![forbid(unsafe_code)]

mod codec;
mod error;
mod invariants;
mod ledger;
mod model;
mod read_ahead;
#[cfg(feature = "records")]
pub mod records;
mod rules;
mod sqlite;
mod store;

pub use codec::RequestHash;
pub use error::{LedgerError, StorageError, Violation};
pub use ledger::{ImportError, Imported, Ledger};
pub use model::{
    Account, AccountFlags, AccountId, Answer, Currency, NewAccount, NewTransfer, PendingState,
    Request, RequestId, Timestamp, Transfer, TransferId, TransferKind, UserData,
};
pub use sqlite::{
    Clock, Durability, ManualClock, SCHEMA_VERSION, SqliteStore, SqliteTransaction, SystemClock,
};
pub use store::{Inserted, LedgerTables, Record, Recorded, Store, StoredRequest, Transaction};
