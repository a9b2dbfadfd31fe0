//! Every rule of the ledger and every refusal; after a refusal nothing has changed.

mod common;

use common::*;
use ledger::{
    AccountFlags, Answer, LedgerError, NewAccount, NewTransfer, PendingState, Request, RequestId,
    TransferKind,
};

/// Submits a request that must be refused, checks that it changed nothing, and returns the refusal.
fn refused(ledger: &mut TestLedger, request: &Request) -> LedgerError {
    let before = snapshot(ledger);
    let error = ledger
        .submit(RequestId(0xDEAD), request)
        .expect_err("the request must be refused");
    assert!(error.is_refusal(), "{error:?} is a refusal");
    assert_eq!(snapshot(ledger), before, "a refusal changes nothing");
    error
}

fn refused_transfer(ledger: &mut TestLedger, transfer: NewTransfer) -> LedgerError {
    refused(ledger, &Request::CreateTransfers(vec![transfer]))
}

/// Accounts 1, 2 (no limits), 3 (debits limited), 4 (credits limited) in EUR and 5 in JPY.
fn with_accounts() -> (TestLedger, ledger::ManualClock) {
    let (mut ledger, clock) = in_memory();
    open(
        &mut ledger,
        1,
        &[
            new_account(1, EUR, NO_LIMIT),
            new_account(2, EUR, NO_LIMIT),
            new_account(3, EUR, DEBITS_LIMITED),
            new_account(4, EUR, CREDITS_LIMITED),
            new_account(5, JPY, NO_LIMIT),
        ],
    );
    (ledger, clock)
}

#[test]
fn a_single_transfer_posts_on_both_sides() {
    let (mut ledger, _) = with_accounts();
    let applied = submit_transfers(&mut ledger, 10, &[single(100, 1, 2, 250)]).unwrap();
    assert_eq!(applied[0].amount, 250);
    assert!(applied[0].timestamp > T0 - 1);
    assert_eq!(balances(&mut ledger, 1), [0, 250, 0, 0]);
    assert_eq!(balances(&mut ledger, 2), [0, 0, 0, 250]);
    assert_eq!(ledger.transfer(100).unwrap(), Some(applied[0]));
    assert_eq!(
        ledger.pending_state(100).unwrap(),
        None,
        "a single transfer has no pending state"
    );
    ledger.check_invariants().unwrap();
}

#[test]
fn account_creation_is_checked() {
    let (mut ledger, _) = with_accounts();
    let both = AccountFlags {
        debits_must_not_exceed_credits: true,
        credits_must_not_exceed_debits: true,
    };
    let error = refused(
        &mut ledger,
        &Request::CreateAccounts(vec![new_account(9, EUR, both)]),
    );
    assert!(
        matches!(error, LedgerError::ConflictingFlags { account: 9 }),
        "{error:?}"
    );
    let error = refused(
        &mut ledger,
        &Request::CreateAccounts(vec![new_account(1, EUR, NO_LIMIT)]),
    );
    assert!(
        matches!(error, LedgerError::AccountExists { account: 1 }),
        "{error:?}"
    );
    let error = refused(
        &mut ledger,
        &Request::CreateAccounts(vec![new_account(1, JPY, NO_LIMIT)]),
    );
    assert!(
        matches!(
            error,
            LedgerError::AccountExistsWithDifferentFields { account: 1 }
        ),
        "{error:?}"
    );
    let error = refused(&mut ledger, &Request::CreateAccounts(vec![]));
    assert!(matches!(error, LedgerError::EmptyRequest), "{error:?}");
    // All or none: the new account 9 is not opened because account 2 exists.
    let error = refused(
        &mut ledger,
        &Request::CreateAccounts(vec![
            new_account(9, EUR, NO_LIMIT),
            new_account(2, EUR, NO_LIMIT),
        ]),
    );
    assert!(
        matches!(error, LedgerError::AccountExists { account: 2 }),
        "{error:?}"
    );
    assert_eq!(ledger.account(9).unwrap(), None);
}

#[test]
fn malformed_transfers_are_refused() {
    let (mut ledger, _) = with_accounts();
    let error = refused_transfer(&mut ledger, single(100, 1, 2, 0));
    assert!(matches!(error, LedgerError::AmountZero), "{error:?}");
    let error = refused_transfer(&mut ledger, single(100, 1, 1, 5));
    assert!(
        matches!(error, LedgerError::SameAccount { account: 1, .. }),
        "{error:?}"
    );
    let error = refused_transfer(&mut ledger, single(100, 8, 2, 5));
    assert!(
        matches!(error, LedgerError::AccountNotFound { account: 8 }),
        "{error:?}"
    );
    let error = refused_transfer(&mut ledger, single(100, 1, 8, 5));
    assert!(
        matches!(error, LedgerError::AccountNotFound { account: 8 }),
        "{error:?}"
    );
    let error = refused_transfer(&mut ledger, single(100, 5, 2, 5));
    assert!(
        matches!(
            error,
            LedgerError::CurrencyMismatch {
                account: 5,
                account_currency: JPY,
                currency: EUR
            }
        ),
        "{error:?}"
    );
    let error = refused_transfer(
        &mut ledger,
        NewTransfer {
            currency: JPY,
            ..single(100, 5, 2, 5)
        },
    );
    assert!(
        matches!(error, LedgerError::CurrencyMismatch { account: 2, .. }),
        "{error:?}"
    );
    let error = refused(&mut ledger, &Request::CreateTransfers(vec![]));
    assert!(matches!(error, LedgerError::EmptyRequest), "{error:?}");
}

#[test]
fn a_transfer_id_is_used_once() {
    let (mut ledger, _) = with_accounts();
    submit_transfers(&mut ledger, 10, &[single(100, 1, 2, 5)]).unwrap();
    let error = refused_transfer(&mut ledger, single(100, 1, 2, 5));
    assert!(
        matches!(error, LedgerError::TransferExists { transfer: 100 }),
        "{error:?}"
    );
    let error = refused_transfer(&mut ledger, single(100, 1, 2, 6));
    assert!(
        matches!(
            error,
            LedgerError::TransferExistsWithDifferentFields { transfer: 100 }
        ),
        "{error:?}"
    );
}

#[test]
fn account_limits_hold() {
    let (mut ledger, clock) = with_accounts();
    // Account 3 may spend only what it was credited.
    submit_transfers(&mut ledger, 10, &[single(100, 1, 3, 100)]).unwrap();
    let error = refused_transfer(&mut ledger, single(101, 3, 2, 101));
    assert!(
        matches!(error, LedgerError::ExceedsCredits { account: 3 }),
        "{error:?}"
    );
    // A pending debit counts against the limit too.
    let pending = TransferKind::Pending {
        expires_at: T0 + 1_000,
    };
    submit_transfers(&mut ledger, 11, &[transfer(102, 3, 2, 60, pending)]).unwrap();
    let error = refused_transfer(&mut ledger, single(103, 3, 2, 41));
    assert!(
        matches!(error, LedgerError::ExceedsCredits { account: 3 }),
        "{error:?}"
    );
    submit_transfers(&mut ledger, 12, &[single(103, 3, 2, 40)]).unwrap();
    // Account 4 may be credited only what it was debited.
    let error = refused_transfer(&mut ledger, single(104, 1, 4, 1));
    assert!(
        matches!(error, LedgerError::ExceedsDebits { account: 4 }),
        "{error:?}"
    );
    submit_transfers(
        &mut ledger,
        13,
        &[single(104, 4, 1, 30), single(105, 1, 4, 30)],
    )
    .unwrap();
    clock.set(T0 + 2_000);
    ledger.check_invariants().unwrap();
}

#[test]
fn overflow_is_refused_never_wrapped() {
    let (mut ledger, _) = with_accounts();
    submit_transfers(&mut ledger, 10, &[single(100, 1, 2, u128::MAX)]).unwrap();
    let error = refused_transfer(&mut ledger, single(101, 1, 2, 1));
    assert!(
        matches!(error, LedgerError::Overflow { account: 1 }),
        "{error:?}"
    );
    // Pending plus posted overflowing is refused as well.
    let error = refused_transfer(
        &mut ledger,
        transfer(
            101,
            1,
            2,
            1,
            TransferKind::Pending {
                expires_at: u64::MAX,
            },
        ),
    );
    assert!(
        matches!(error, LedgerError::Overflow { account: 1 }),
        "{error:?}"
    );
    ledger.check_invariants().unwrap();
}

#[test]
fn pending_then_partial_post_releases_the_rest() {
    let (mut ledger, _) = with_accounts();
    let pending = submit_transfers(
        &mut ledger,
        10,
        &[transfer(
            100,
            1,
            2,
            500,
            TransferKind::Pending {
                expires_at: T0 + 1_000_000,
            },
        )],
    )
    .unwrap()[0];
    assert_eq!(balances(&mut ledger, 1), [500, 0, 0, 0]);
    assert_eq!(balances(&mut ledger, 2), [0, 0, 500, 0]);
    assert_eq!(
        ledger.pending_state(100).unwrap(),
        Some(PendingState::Pending)
    );
    let error = refused_transfer(&mut ledger, NewTransfer::post(101, &pending, 501));
    assert!(
        matches!(
            error,
            LedgerError::ExceedsPendingAmount {
                pending: 100,
                pending_amount: 500,
                amount: 501
            }
        ),
        "{error:?}"
    );
    submit_transfers(&mut ledger, 11, &[NewTransfer::post(101, &pending, 300)]).unwrap();
    assert_eq!(balances(&mut ledger, 1), [0, 300, 0, 0]);
    assert_eq!(balances(&mut ledger, 2), [0, 0, 0, 300]);
    assert_eq!(
        ledger.pending_state(100).unwrap(),
        Some(PendingState::Posted)
    );
    let error = refused_transfer(&mut ledger, NewTransfer::post(102, &pending, 100));
    assert!(
        matches!(error, LedgerError::PendingAlreadyPosted { pending: 100 }),
        "{error:?}"
    );
    let error = refused_transfer(&mut ledger, NewTransfer::void(102, &pending));
    assert!(
        matches!(error, LedgerError::PendingAlreadyPosted { pending: 100 }),
        "{error:?}"
    );
    ledger.check_invariants().unwrap();
}

#[test]
fn void_releases_the_whole_reservation() {
    let (mut ledger, _) = with_accounts();
    let pending = submit_transfers(
        &mut ledger,
        10,
        &[transfer(
            100,
            1,
            2,
            500,
            TransferKind::Pending {
                expires_at: T0 + 1_000_000,
            },
        )],
    )
    .unwrap()[0];
    let error = refused_transfer(
        &mut ledger,
        NewTransfer {
            amount: 499,
            ..NewTransfer::void(101, &pending)
        },
    );
    assert!(
        matches!(error, LedgerError::VoidAmountMismatch { pending: 100, .. }),
        "{error:?}"
    );
    submit_transfers(&mut ledger, 11, &[NewTransfer::void(101, &pending)]).unwrap();
    assert_eq!(balances(&mut ledger, 1), [0; 4]);
    assert_eq!(balances(&mut ledger, 2), [0; 4]);
    assert_eq!(
        ledger.pending_state(100).unwrap(),
        Some(PendingState::Voided)
    );
    let error = refused_transfer(&mut ledger, NewTransfer::post(102, &pending, 1));
    assert!(
        matches!(error, LedgerError::PendingAlreadyVoided { pending: 100 }),
        "{error:?}"
    );
    ledger.check_invariants().unwrap();
}

#[test]
fn post_and_void_must_name_a_matching_pending_transfer() {
    let (mut ledger, _) = with_accounts();
    let pending = submit_transfers(
        &mut ledger,
        10,
        &[
            transfer(
                100,
                1,
                2,
                500,
                TransferKind::Pending {
                    expires_at: T0 + 1_000_000,
                },
            ),
            single(101, 1, 2, 5),
        ],
    )
    .unwrap()[0];
    let unknown = NewTransfer {
        kind: TransferKind::PostPending { pending_id: 999 },
        ..single(102, 1, 2, 5)
    };
    let error = refused_transfer(&mut ledger, unknown);
    assert!(
        matches!(error, LedgerError::PendingNotFound { pending: 999 }),
        "{error:?}"
    );
    let not_pending = NewTransfer {
        kind: TransferKind::VoidPending { pending_id: 101 },
        ..single(102, 1, 2, 5)
    };
    let error = refused_transfer(&mut ledger, not_pending);
    assert!(
        matches!(error, LedgerError::NotPending { pending: 101 }),
        "{error:?}"
    );
    let other_account = NewTransfer {
        credit_account_id: 3,
        ..NewTransfer::post(102, &pending, 5)
    };
    let error = refused_transfer(&mut ledger, other_account);
    assert!(
        matches!(error, LedgerError::PendingMismatch { pending: 100 }),
        "{error:?}"
    );
    let error = refused_transfer(
        &mut ledger,
        transfer(102, 1, 2, 5, TransferKind::Pending { expires_at: T0 }),
    );
    assert!(
        matches!(
            error,
            LedgerError::ExpiryNotInFuture {
                pending: 102,
                expires_at: T0,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn pending_transfers_expire_in_time_and_by_expire_pending() {
    let (mut ledger, clock) = with_accounts();
    let chain = [
        transfer(
            100,
            1,
            2,
            10,
            TransferKind::Pending {
                expires_at: T0 + 300,
            },
        ),
        transfer(
            101,
            1,
            2,
            20,
            TransferKind::Pending {
                expires_at: T0 + 100,
            },
        ),
        transfer(
            102,
            1,
            2,
            40,
            TransferKind::Pending {
                expires_at: T0 + 900,
            },
        ),
    ];
    let pending = submit_transfers(&mut ledger, 10, &chain).unwrap();
    clock.set(T0 + 300);
    // Due but not yet swept: refused all the same.
    let error = refused_transfer(&mut ledger, NewTransfer::post(103, &pending[0], 10));
    assert!(
        matches!(error, LedgerError::PendingExpired { pending: 100 }),
        "{error:?}"
    );
    let answer = ledger
        .submit(RequestId(11), &Request::ExpirePending { now: T0 + 300 })
        .unwrap();
    assert_eq!(
        answer,
        Answer::Expired(vec![101, 100]),
        "oldest expiry first"
    );
    assert_eq!(
        ledger.pending_state(100).unwrap(),
        Some(PendingState::Expired)
    );
    assert_eq!(
        ledger.pending_state(102).unwrap(),
        Some(PendingState::Pending)
    );
    assert_eq!(balances(&mut ledger, 1), [40, 0, 0, 0]);
    let error = refused_transfer(&mut ledger, NewTransfer::void(103, &pending[1]));
    assert!(
        matches!(error, LedgerError::PendingExpired { pending: 101 }),
        "{error:?}"
    );
    // Nothing left due: an empty answer, nothing changed.
    assert_eq!(
        ledger
            .submit(RequestId(12), &Request::ExpirePending { now: T0 + 300 })
            .unwrap(),
        Answer::Expired(vec![])
    );
    submit_transfers(&mut ledger, 13, &[NewTransfer::post(103, &pending[2], 40)]).unwrap();
    assert_eq!(balances(&mut ledger, 1), [0, 40, 0, 0]);
    ledger.check_invariants().unwrap();
}

#[test]
fn a_linked_chain_applies_all_or_nothing() {
    let (mut ledger, _) = with_accounts();
    submit_transfers(&mut ledger, 10, &[single(100, 1, 3, 50)]).unwrap();
    // The third transfer overdraws account 3: the first two are undone with it.
    let chain = [
        single(101, 1, 2, 5),
        single(102, 3, 2, 50),
        single(103, 3, 2, 1),
    ];
    let error = refused(&mut ledger, &Request::CreateTransfers(chain.to_vec()));
    let LedgerError::InChain { index: 2, source } = error else {
        panic!("{error:?}")
    };
    assert!(
        matches!(*source, LedgerError::ExceedsCredits { account: 3 }),
        "{source:?}"
    );
    assert_eq!(ledger.transfer(101).unwrap(), None);
    // A chain may post a pending transfer made earlier in it.
    let pending = transfer(
        104,
        1,
        2,
        70,
        TransferKind::Pending {
            expires_at: u64::MAX,
        },
    );
    let post = NewTransfer {
        amount: 70,
        kind: TransferKind::PostPending { pending_id: 104 },
        ..single(105, 1, 2, 0)
    };
    let applied = submit_transfers(&mut ledger, 11, &[pending, post]).unwrap();
    assert_eq!(applied.len(), 2);
    assert!(applied[0].timestamp < applied[1].timestamp);
    assert_eq!(
        ledger.pending_state(104).unwrap(),
        Some(PendingState::Posted)
    );
    ledger.check_invariants().unwrap();
}

#[test]
fn timestamps_strictly_increase_even_when_the_clock_goes_back() {
    let (mut ledger, clock) = with_accounts();
    let first = submit_transfers(&mut ledger, 10, &[single(100, 1, 2, 1)]).unwrap()[0];
    clock.set(5);
    let second = submit_transfers(&mut ledger, 11, &[single(101, 1, 2, 1)]).unwrap()[0];
    assert!(second.timestamp > first.timestamp);
}

/// The invariants' verdict on a file ledger with two accounts and a transfer of 9 (id 100) between them,
/// after `tamper` changed the file behind the ledger's back.
fn invariants_after(tamper: impl FnOnce(&rusqlite::Connection)) -> LedgerError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    {
        let mut ledger = ledger::Ledger::new(ledger::SqliteStore::open(&path).unwrap());
        let mut tx = ledger.transaction().unwrap();
        use ledger::Transaction;
        for id in [1, 2] {
            tx.create_account(RequestId(id), new_account(id, EUR, NO_LIMIT))
                .unwrap();
        }
        tx.create_transfer(RequestId(3), single(100, 1, 2, 9))
            .unwrap();
        tx.commit().unwrap();
        ledger.check_invariants().unwrap();
    }
    tamper(&rusqlite::Connection::open(&path).unwrap());
    let mut ledger = ledger::Ledger::new(ledger::SqliteStore::open(&path).unwrap());
    let error = ledger.check_invariants().unwrap_err();
    assert!(!error.is_refusal(), "{error:?}");
    error
}

#[test]
fn a_tampered_database_breaks_the_invariants() {
    let error = invariants_after(|raw| {
        raw.execute(
            "UPDATE accounts SET credits_posted = ?1 WHERE id = ?2",
            (10u128.to_be_bytes(), 2u128.to_be_bytes()),
        )
        .unwrap();
    });
    assert!(
        matches!(
            error,
            LedgerError::InvariantViolated(ledger::Violation::BalanceMismatch { account: 2 })
        ),
        "{error:?}"
    );
}

#[test]
fn a_transfer_whose_account_was_removed_breaks_the_invariants() {
    // SQLite does not check the transfers' foreign keys (the rules load both accounts first): the invariants do.
    let error = invariants_after(|raw| {
        // By hand: this connection would refuse the removal (rusqlite's SQLite checks foreign keys).
        raw.pragma_update(None, "foreign_keys", "OFF").unwrap();
        let removed = raw
            .execute("DELETE FROM accounts WHERE id = ?1", [2u128.to_be_bytes()])
            .unwrap();
        assert_eq!(removed, 1);
    });
    assert!(
        matches!(
            error,
            LedgerError::InvariantViolated(ledger::Violation::MalformedTransfer { transfer: 100 })
        ),
        "{error:?}"
    );
}

#[test]
fn two_transfers_with_one_timestamp_break_the_invariants() {
    // No index keeps transfers' timestamps unique (the ledger assigns them increasing): the invariants check.
    let error = invariants_after(|raw| {
        raw.execute(
            "INSERT INTO transfers SELECT ?1, debit_account_id, credit_account_id, amount, currency, code,
                    user_data, kind, expires_at, pending_id, state, timestamp FROM transfers WHERE id = ?2",
            (101u128.to_be_bytes(), 100u128.to_be_bytes()),
        )
        .unwrap();
    });
    assert!(
        matches!(
            error,
            LedgerError::InvariantViolated(ledger::Violation::TimestampReused { .. })
        ),
        "{error:?}"
    );
}

#[test]
fn answers_copy_what_was_asked() {
    let (mut ledger, _) = in_memory();
    let asked = NewAccount {
        id: 42,
        currency: EUR,
        code: 9,
        flags: DEBITS_LIMITED,
        user_data: [3; 32],
    };
    let opened = open(&mut ledger, 1, &[asked]);
    assert_eq!(opened[0].as_new(), asked);
    assert_eq!(ledger.account(42).unwrap(), Some(opened[0]));
}
