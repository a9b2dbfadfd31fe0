//! Shared by the bank tests: a bank on SQLite with a clock the test sets, test keys (TEST ONLY), sample
//! customers, contracts and deposits, and a snapshot of everything a refusal must leave unchanged.
#![allow(dead_code)]

use std::sync::Arc;

use bank::{
    Bank, BankConfig, CardRef, CreditContract, DepositRecord, DepositRequest, NewCustomer,
    RequestId, Source,
};
use ledger::{Account, ManualClock, PendingState, SqliteStore, Transfer};
use token::{BankKeyring, BankSigningKey, CreditPrivateKey, CreditRecipient, Date};

pub const BANK_ID: &[u8] = b"BANK0001";
pub const CREDIT_ID: &[u8] = b"CRED0001";
pub const JPY: u16 = 392;
pub const EUR: u16 = 978;
/// 2026-12-01T00:00:00Z.
pub const NOW: u64 = 1_796_083_200;
pub const HOLD: u64 = 300;
pub const VALIDITY_DAYS: u16 = 61;
pub const BINDING: [u8; 32] = [0xCB; 32];
pub const PAN: &str = "4111111111111111";

pub fn today() -> Date {
    Date::from_ymd(2026, 12, 1).unwrap()
}

pub fn config() -> BankConfig {
    BankConfig {
        bank_id: BANK_ID.to_vec(),
        currency: JPY,
        token_validity_days: VALIDITY_DAYS,
        deposit_hold_seconds: HOLD,
    }
}

pub fn bank_key() -> BankSigningKey {
    BankSigningKey::from_slice(&[0x1A; 32]).unwrap()
}

pub fn credit_key() -> CreditPrivateKey {
    CreditPrivateKey::derive(b"linkcard bank tests: credit HPKE key (TEST ONLY)")
}

pub fn recipient() -> CreditRecipient {
    let mut recipient = CreditRecipient::new(CREDIT_ID);
    recipient.add_key(credit_key());
    recipient
}

pub fn keyring() -> BankKeyring {
    let mut banks = BankKeyring::new();
    banks.insert(BANK_ID, *bank_key().verifying_key());
    banks
}

/// The store's clock in seconds, as the requests' `now_unix_seconds`.
pub struct Clock(pub ManualClock);

impl Clock {
    pub fn set(&self, seconds: u64) {
        self.0.set(seconds * 1_000_000_000);
    }
}

pub fn store_in_memory(clock: &Clock) -> SqliteStore {
    SqliteStore::open_in_memory()
        .unwrap()
        .with_clock(Arc::new(clock.0.clone()))
}

pub fn clock() -> Clock {
    let clock = Clock(ManualClock::default());
    clock.set(NOW);
    clock
}

pub fn bank_in_memory() -> (Bank<SqliteStore>, Clock) {
    let clock = clock();
    let bank = Bank::open(store_in_memory(&clock), config(), bank_key()).unwrap();
    (bank, clock)
}

pub fn customer(user_id: &str) -> NewCustomer {
    NewCustomer {
        user_id: user_id.into(),
        name: "Hanako Yamada".into(),
        account_number: format!("0001-234-{user_id}"),
        currency: JPY,
    }
}

pub fn contract() -> CreditContract {
    CreditContract {
        credit_id: CREDIT_ID.to_vec(),
        hpke_key: credit_key().public_key().clone(),
        valid_until: Date::from_ymd(2030, 3, 31).unwrap(),
        active: true,
    }
}

pub fn deposit(user_id: &str, amount: u64, source: Source) -> DepositRequest {
    DepositRequest {
        user_id: user_id.into(),
        credit_id: CREDIT_ID.to_vec(),
        amount,
        currency: JPY,
        source,
        card: CardRef {
            pan: PAN.into(),
            card_binding: BINDING,
        },
        today: today(),
        now_unix_seconds: NOW,
    }
}

/// Request ids for a test: each call a new one.
#[derive(Debug, Default)]
pub struct Requests(u128);

impl Requests {
    pub fn next(&mut self) -> RequestId {
        self.0 += 1;
        RequestId(self.0)
    }
}

/// A bank with one customer `U-1` (10 000 paid in) and the contract with CRED0001.
pub fn funded_bank() -> (Bank<SqliteStore>, Clock, Requests) {
    let (mut bank, clock) = bank_in_memory();
    let mut requests = Requests::default();
    bank.add_customer(requests.next(), &customer("U-1"))
        .unwrap();
    bank.cash_in(requests.next(), "U-1", 10_000).unwrap();
    bank.add_contract(requests.next(), &contract()).unwrap();
    (bank, clock, requests)
}

/// Everything a refused request must leave as it was.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    accounts: Vec<Account>,
    transfers: Vec<(Transfer, Option<PendingState>)>,
    deposits: Vec<DepositRecord>,
    contracts: Vec<CreditContract>,
}

pub fn snapshot(bank: &mut Bank<SqliteStore>, user_id: &str) -> Snapshot {
    Snapshot {
        accounts: bank.ledger().accounts().unwrap(),
        transfers: bank.ledger().transfers().unwrap(),
        deposits: bank.deposits_of(user_id).unwrap_or_default(),
        contracts: bank.contracts().unwrap(),
    }
}
