//! Helpers shared by the ledger's tests.
#![allow(dead_code)]

use std::sync::Arc;

use ledger::{
    Account, AccountFlags, AccountId, Currency, Ledger, LedgerError, ManualClock, NewAccount,
    NewTransfer, PendingState, Request, RequestId, SqliteStore, Transfer, TransferId, TransferKind,
};

pub const EUR: Currency = Currency(978);
pub const JPY: Currency = Currency(392);
/// The manual clock's starting time.
pub const T0: u64 = 1_000_000;

pub type TestLedger = Ledger<SqliteStore>;

pub fn in_memory() -> (TestLedger, ManualClock) {
    let clock = ManualClock::new(T0);
    let store = SqliteStore::open_in_memory()
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    (Ledger::new(store), clock)
}

pub fn new_account(id: AccountId, currency: Currency, flags: AccountFlags) -> NewAccount {
    NewAccount {
        id,
        currency,
        code: 1,
        flags,
        user_data: [id as u8; 32],
    }
}

pub const NO_LIMIT: AccountFlags = AccountFlags {
    debits_must_not_exceed_credits: false,
    credits_must_not_exceed_debits: false,
};
pub const DEBITS_LIMITED: AccountFlags = AccountFlags {
    debits_must_not_exceed_credits: true,
    credits_must_not_exceed_debits: false,
};
pub const CREDITS_LIMITED: AccountFlags = AccountFlags {
    debits_must_not_exceed_credits: false,
    credits_must_not_exceed_debits: true,
};

pub fn open(ledger: &mut TestLedger, request: u128, accounts: &[NewAccount]) -> Vec<Account> {
    match ledger
        .submit(
            RequestId(request),
            &Request::CreateAccounts(accounts.to_vec()),
        )
        .unwrap()
    {
        ledger::Answer::Accounts(accounts) => accounts,
        other => panic!("unexpected answer {other:?}"),
    }
}

pub fn transfer(
    id: TransferId,
    debit: AccountId,
    credit: AccountId,
    amount: u128,
    kind: TransferKind,
) -> NewTransfer {
    NewTransfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        currency: EUR,
        code: 7,
        user_data: [0xA5; 32],
        kind,
    }
}

pub fn single(id: TransferId, debit: AccountId, credit: AccountId, amount: u128) -> NewTransfer {
    transfer(id, debit, credit, amount, TransferKind::Single)
}

pub fn submit_transfers(
    ledger: &mut TestLedger,
    request: u128,
    chain: &[NewTransfer],
) -> Result<Vec<Transfer>, LedgerError> {
    match ledger.submit(
        RequestId(request),
        &Request::CreateTransfers(chain.to_vec()),
    )? {
        ledger::Answer::Transfers(transfers) => Ok(transfers),
        other => panic!("unexpected answer {other:?}"),
    }
}

/// Everything the ledger holds that a request could change, to compare before and after.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub accounts: Vec<Account>,
    pub transfers: Vec<(Transfer, Option<PendingState>)>,
}

pub fn snapshot(ledger: &mut TestLedger) -> Snapshot {
    Snapshot {
        accounts: ledger.accounts().unwrap(),
        transfers: ledger.transfers().unwrap(),
    }
}

pub fn balances(ledger: &mut TestLedger, id: AccountId) -> [u128; 4] {
    let a = ledger.account(id).unwrap().unwrap();
    [
        a.debits_pending,
        a.debits_posted,
        a.credits_pending,
        a.credits_posted,
    ]
}
