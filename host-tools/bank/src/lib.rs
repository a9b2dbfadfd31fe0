//! The bank system (patent Fig. 7): customers and their personal accounts, the pool account, cash, credit
//! contracts, and the deposit for a credit bill that becomes a payment token for the card.
//!
//! # Accounts (in the [`ledger`])
//!
//! An account id is `kind << 112 | currency << 96 | serial` (a `u128`; the ledger `code` is the kind):
//!
//! | kind | [`AccountKind`] | serial | flags |
//! |---|---|---|---|
//! | 1 | the bank's **cash** in one currency | 0 | none (an asset: its debits grow with the cash taken in) |
//! | 2 | a customer's **personal account** | the customer's number | `debits_must_not_exceed_credits` |
//! | 3 | the customer's **pool sub-account** (code POOL) | the customer's number | `debits_must_not_exceed_credits` |
//! | 4 | a credit company's **settlement account** | the contract's number | `debits_must_not_exceed_credits` |
//!
//! Customer and contract numbers come from a counter record, assigned once at [`Bank::add_customer`] and at a
//! contract's first [`Bank::add_contract`]; so an id says what it is when read in hex, and no lookup table is
//! needed. The pool account is the sum of the pool sub-accounts ([`Bank::pool_total`]): each deposit touches
//! only its customer's row, never one hot row. A customer has one currency (their personal and pool accounts);
//! cash exists per currency, created with the first customer of that currency; settlement accounts are in the
//! bank's currency ([`BankConfig::currency`]).
//!
//! # Deposit (Fig. 7)
//!
//! [`Bank::deposit`] checks the contract (step 702, else step 706: [`BankError::NoContract`]), the customer, the
//! amount and the funds, then in one ledger transaction makes a **pending** transfer source → pool sub-account
//! (transfer id = the token id), mints the token (`token::mint`) and writes the deposit record. The terminal
//! stores the token on the card, then [`Bank::confirm_deposit`] posts the hold or [`Bank::cancel_deposit`] voids
//! it; a hold neither confirmed nor cancelled within [`BankConfig::deposit_hold_seconds`] is voided by
//! [`Bank::expire_holds`]. Hold times are on the store's clock (`ledger::Clock`, nanoseconds), which must be the
//! clock the `now_unix_seconds` of the requests come from.
//!
//! The token is valid from the deposit day for [`BankConfig::token_validity_days`] more days, whatever the
//! contract's own term (a contract ending does not void tokens already minted). [`Bank::deposit_batch`] takes
//! several deposits in one durable commit. The read calls (`balances`, `pool_total`, `contracts`,
//! `deposits_of`) run in a transaction of their own and change nothing.
//!
//! ```
//! use bank::{Bank, BankConfig, CardRef, CreditContract, DepositRequest, NewCustomer, RequestId, Source};
//! use token::{BankSigningKey, CreditPrivateKey, Date};
//!
//! let config = BankConfig { bank_id: b"BANK0001".to_vec(), currency: 392, token_validity_days: 61,
//!                           deposit_hold_seconds: 300 };
//! let mut bank = Bank::open(ledger::SqliteStore::open_in_memory()?, config,
//!                           BankSigningKey::from_slice(&[0x1A; 32]).unwrap())?;
//! let customer = NewCustomer { user_id: "U-1".into(), name: "Hanako Yamada".into(),
//!                              account_number: "0001-234-5678901".into(), currency: 392 };
//! bank.add_customer(RequestId(1), &customer)?;
//! bank.cash_in(RequestId(2), "U-1", 10_000)?;
//! let credit_key = CreditPrivateKey::derive(b"example only");
//! let today = Date::from_ymd(2026, 12, 1).unwrap();
//! let contract = CreditContract { credit_id: b"CRED0001".to_vec(), hpke_key: credit_key.public_key().clone(),
//!                                 valid_until: Date::from_ymd(2030, 3, 31).unwrap(), active: true };
//! bank.add_contract(RequestId(3), &contract)?;
//! let now_unix_seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
//! let deposit = bank.deposit(RequestId(4), &DepositRequest {
//!     user_id: "U-1".into(), credit_id: b"CRED0001".to_vec(), amount: 2_500, currency: 392,
//!     source: Source::PersonalAccount, card: CardRef { pan: "4111111111111111".into(), card_binding: [0xCB; 32] },
//!     today, now_unix_seconds,
//! })?;
//! // … the ATM stores deposit.token on the card, then:
//! bank.confirm_deposit(RequestId(5), &deposit.token_id)?;
//! assert_eq!(bank.balances("U-1")?.pool, 2_500);
//! assert_eq!(bank.balances("U-1")?.personal, 7_500);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Requests
//!
//! Every mutating call takes a [`RequestId`] and runs as one idempotent request of the ledger
//! ([`ledger::Transaction::idempotent`]): a replay gets the first answer (a deposit replay the same token bytes),
//! another request under the same id is refused ([`BankError::RequestConflict`]), a refused request changes
//! nothing and may be retried. The ledger postings a call makes run under request ids derived from it. Nothing
//! is answered before its commit is durable.
//!
//! The bank's own records (tables `bank.meta`, `bank.customers`, `bank.contracts`, `bank.deposits`,
//! `bank.deposits_by_user`) are JSON values in the ledger's keyed records, written in the same transactions.

#![forbid(unsafe_code)]

mod bank;
mod dates;
mod error;
mod ids;
mod records;
mod settlement;

pub use bank::Bank;
pub use dates::add_days;
pub use error::BankError;
pub use ids::{AccountKind, account_id};
pub use ledger::RequestId;
pub use settlement::{Settlement, SettlementOrder, SettlementSummary};

use serde::{Deserialize, Serialize};

/// How the bank runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankConfig {
    /// The bank's id in tokens (1-16 bytes).
    pub bank_id: Vec<u8>,
    /// The bank's currency (ISO 4217 numeric): its first cash account and the settlement accounts.
    pub currency: u16,
    /// A token is valid from its deposit day until that day plus this many days (inclusive).
    pub token_validity_days: u16,
    /// How long a deposit's hold waits for the card to store the token (> 0).
    pub deposit_hold_seconds: u64,
}

/// A customer to open: their personal and pool accounts are opened with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    /// 1-32 printable ASCII characters (the token's user id).
    pub user_id: String,
    /// 1-48 bytes of UTF-8 (the token's user name).
    pub name: String,
    /// 1-34 printable ASCII characters (the token's bank account number).
    pub account_number: String,
    /// ISO 4217 numeric, 1-999.
    pub currency: u16,
}

/// A contract with a credit company (Fig. 6): its HPKE key tokens are sealed to, its term and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditContract {
    /// 1-16 bytes.
    pub credit_id: Vec<u8>,
    pub hpke_key: token::CreditPublicKey,
    /// The last day deposits may be taken for it.
    pub valid_until: token::Date,
    pub active: bool,
}

/// Where a deposit's money comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    /// Notes paid in at the ATM (the bank's cash account).
    Cash,
    /// A transfer from the customer's personal account.
    PersonalAccount,
}

/// The card the token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRef {
    /// 12-19 decimal digits.
    pub pan: String,
    /// SHA-256 of the credit applet's uncompressed public key.
    pub card_binding: [u8; 32],
}

/// A deposit for a credit bill, as the ATM asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositRequest {
    pub user_id: String,
    pub credit_id: Vec<u8>,
    /// Minor units of `currency`, > 0.
    pub amount: u64,
    pub currency: u16,
    pub source: Source,
    pub card: CardRef,
    /// The deposit date and first day of the token's validity.
    pub today: token::Date,
    /// When the hold starts (the store's clock, in seconds).
    pub now_unix_seconds: u64,
}

/// A deposit taken and held: the token to store on the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposit {
    pub token: Vec<u8>,
    pub token_id: [u8; 16],
    pub amount: u64,
    pub currency: u16,
    pub valid_until: token::Date,
}

/// A customer's money, in minor units of `currency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balances {
    pub currency: u16,
    /// Available in the personal account: posted credits less posted debits and holds.
    pub personal: u64,
    /// Confirmed deposits in the pool, waiting for settlement.
    pub pool: u64,
    /// Deposits held for the pool, not yet confirmed.
    pub pool_held: u64,
}

/// What became of a deposit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DepositState {
    /// Taken, waiting for the card to store the token.
    Held,
    /// The card stored the token: the money is in the pool.
    Confirmed,
    /// The card refused the token: the money went back to its source.
    Cancelled,
    /// Never confirmed within its hold: the money went back to its source.
    Expired,
}

/// A deposit as the bank keeps it (for settlement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositRecord {
    pub token_id: [u8; 16],
    pub credit_id: Vec<u8>,
    pub amount: u64,
    pub currency: u16,
    pub deposit_date: token::Date,
    pub valid_until: token::Date,
    pub state: DepositState,
}
