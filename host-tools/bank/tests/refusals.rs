//! Every refusal changes nothing (ledger, records, balances; invariants hold), and requests are idempotent.

mod common;

use bank::{BankError, DepositRequest, NewCustomer, RequestId, Source};
use common::*;

/// Runs a request that must be refused; checks the message and that nothing changed.
fn refused(
    bank: &mut bank::Bank<ledger::SqliteStore>,
    attempt: impl FnOnce(&mut bank::Bank<ledger::SqliteStore>) -> Result<(), BankError>,
    expected: impl Fn(&BankError) -> bool,
) -> String {
    let before = snapshot(bank, "U-1");
    let balances = bank.balances("U-1").unwrap();
    let error = attempt(bank).expect_err("the request should be refused");
    assert!(expected(&error), "unexpected refusal: {error:?}");
    assert_eq!(snapshot(bank, "U-1"), before, "{error}");
    assert_eq!(bank.balances("U-1").unwrap(), balances);
    bank.ledger().check_invariants().unwrap();
    error.to_string()
}

fn refused_deposit(
    bank: &mut bank::Bank<ledger::SqliteStore>,
    request: &DepositRequest,
    expected: impl Fn(&BankError) -> bool,
) -> String {
    refused(
        bank,
        |bank| bank.deposit(RequestId(9_999), request).map(drop),
        expected,
    )
}

#[test]
fn a_deposit_for_a_credit_company_without_contract_is_refused_with_step_706() {
    let (mut bank, _clock, _requests) = funded_bank();
    let request = DepositRequest {
        credit_id: b"CRED0002".to_vec(),
        ..deposit("U-1", 100, Source::Cash)
    };
    let message = refused_deposit(&mut bank, &request, |e| {
        matches!(e, BankError::NoContract { .. })
    });
    assert_eq!(
        message,
        "no contract with credit company CRED0002: this bank cannot take an early payment for it; pay at the credit company"
    );
    // And the same request may be retried under its id once there is a contract: the refusal left no trace.
    let contract = bank::CreditContract {
        credit_id: b"CRED0002".to_vec(),
        ..contract()
    };
    bank.add_contract(RequestId(5_000), &contract).unwrap();
    bank.deposit(RequestId(9_999), &request).unwrap();
}

#[test]
fn a_deposit_under_a_suspended_or_ended_contract_is_refused() {
    let (mut bank, _clock, mut requests) = funded_bank();
    let ended = bank::CreditContract {
        valid_until: token::Date::from_ymd(2026, 11, 30).unwrap(),
        ..contract()
    };
    bank.add_contract(requests.next(), &ended).unwrap();
    let message = refused_deposit(&mut bank, &deposit("U-1", 100, Source::Cash), |e| {
        matches!(e, BankError::ContractExpired { .. })
    });
    assert!(message.contains("ended on 2026-11-30"), "{message}");
    let suspended = bank::CreditContract {
        active: false,
        ..contract()
    };
    bank.add_contract(requests.next(), &suspended).unwrap();
    assert_eq!(bank.contracts().unwrap(), [suspended]);
    refused_deposit(&mut bank, &deposit("U-1", 100, Source::Cash), |e| {
        matches!(e, BankError::ContractInactive { .. })
    });
    // Reactivated, the same settlement account serves it (no second one).
    bank.add_contract(requests.next(), &contract()).unwrap();
    bank.deposit(requests.next(), &deposit("U-1", 100, Source::Cash))
        .unwrap();
    let settlement = bank
        .ledger()
        .accounts()
        .unwrap()
        .into_iter()
        .filter(|a| a.code == 4)
        .count();
    assert_eq!(settlement, 1);
}

/// Which refusal a case expects.
type Expected = fn(&BankError) -> bool;

#[test]
fn bad_deposits_are_refused_and_change_nothing() {
    let (mut bank, _clock, _requests) = funded_bank();
    let cases: Vec<(DepositRequest, Expected)> = vec![
        (deposit("U-404", 100, Source::Cash), |e| {
            matches!(e, BankError::UnknownCustomer { .. })
        }),
        (deposit("U-1", 0, Source::Cash), |e| {
            matches!(e, BankError::AmountZero)
        }),
        (
            DepositRequest {
                currency: EUR,
                ..deposit("U-1", 100, Source::Cash)
            },
            |e| {
                matches!(
                    e,
                    BankError::CurrencyMismatch {
                        account_currency: JPY,
                        currency: EUR,
                        ..
                    }
                )
            },
        ),
        (deposit("U-1", 10_001, Source::PersonalAccount), |e| {
            matches!(
                e,
                BankError::InsufficientFunds {
                    available: 10_000,
                    amount: 10_001,
                    ..
                }
            )
        }),
        (
            DepositRequest {
                card: bank::CardRef {
                    pan: "4111-1111".into(),
                    card_binding: BINDING,
                },
                ..deposit("U-1", 100, Source::Cash)
            },
            |e| matches!(e, BankError::InvalidPan),
        ),
        (
            DepositRequest {
                today: token::Date([0x20, 0x26, 0x02, 0x30]),
                ..deposit("U-1", 100, Source::Cash)
            },
            |e| matches!(e, BankError::InvalidDate { .. }),
        ),
        (
            DepositRequest {
                now_unix_seconds: NOW - HOLD,
                ..deposit("U-1", 100, Source::Cash)
            },
            |e| matches!(e, BankError::ClockBehind { .. }),
        ),
    ];
    for (request, expected) in cases {
        let message = refused_deposit(&mut bank, &request, expected);
        assert!(
            message.contains(':'),
            "the message says what to do: {message}"
        );
    }
}

#[test]
fn a_pool_that_would_overflow_refuses_the_deposit() {
    let (mut bank, _clock, mut requests) = funded_bank();
    bank.deposit(requests.next(), &deposit("U-1", u64::MAX - 5, Source::Cash))
        .unwrap();
    refused_deposit(&mut bank, &deposit("U-1", 6, Source::Cash), |e| {
        matches!(
            e,
            BankError::AmountOverflow {
                account: "pool",
                ..
            }
        )
    });
    bank.deposit(requests.next(), &deposit("U-1", 5, Source::Cash))
        .unwrap();
}

#[test]
fn funds_held_by_a_deposit_cannot_be_spent_twice() {
    let (mut bank, _clock, mut requests) = funded_bank();
    bank.deposit(
        requests.next(),
        &deposit("U-1", 7_000, Source::PersonalAccount),
    )
    .unwrap();
    refused_deposit(
        &mut bank,
        &deposit("U-1", 3_001, Source::PersonalAccount),
        |e| {
            matches!(
                e,
                BankError::InsufficientFunds {
                    available: 3_000,
                    ..
                }
            )
        },
    );
}

#[test]
fn bad_customers_cash_ins_and_contracts_are_refused_and_change_nothing() {
    let (mut bank, _clock, _requests) = funded_bank();
    let bad_customers = [
        customer("U-1"),
        customer(""),
        customer(&"X".repeat(33)),
        NewCustomer {
            name: String::new(),
            ..customer("U-2")
        },
        NewCustomer {
            account_number: "\u{e9}".into(),
            ..customer("U-2")
        },
        NewCustomer {
            currency: 1000,
            ..customer("U-2")
        },
        NewCustomer {
            currency: 0,
            ..customer("U-2")
        },
    ];
    for bad in &bad_customers {
        refused(
            &mut bank,
            |bank| bank.add_customer(RequestId(9_000), bad),
            |e| {
                matches!(
                    e,
                    BankError::CustomerExists { .. } | BankError::InvalidCustomer { .. }
                )
            },
        );
    }
    refused(
        &mut bank,
        |bank| bank.cash_in(RequestId(9_001), "U-1", 0).map(drop),
        |e| matches!(e, BankError::AmountZero),
    );
    refused(
        &mut bank,
        |bank| bank.cash_in(RequestId(9_001), "U-404", 5).map(drop),
        |e| matches!(e, BankError::UnknownCustomer { .. }),
    );
    refused(
        &mut bank,
        |bank| bank.cash_in(RequestId(9_001), "U-1", u64::MAX).map(drop),
        |e| {
            matches!(
                e,
                BankError::AmountOverflow {
                    account: "personal",
                    ..
                }
            )
        },
    );
    for credit_id in [Vec::new(), vec![b'C'; 17]] {
        let bad = bank::CreditContract {
            credit_id,
            ..contract()
        };
        refused(
            &mut bank,
            |bank| bank.add_contract(RequestId(9_002), &bad),
            |e| matches!(e, BankError::InvalidCreditId { .. }),
        );
    }
    let bad = bank::CreditContract {
        valid_until: token::Date([0x20, 0x26, 0x13, 0x01]),
        ..contract()
    };
    refused(
        &mut bank,
        |bank| bank.add_contract(RequestId(9_002), &bad),
        |e| matches!(e, BankError::InvalidDate { .. }),
    );
}

#[test]
fn a_replayed_deposit_returns_the_same_token_and_mints_nothing() {
    let (mut bank, _clock, mut requests) = funded_bank();
    let request = requests.next();
    let first = bank
        .deposit(request, &deposit("U-1", 1_000, Source::PersonalAccount))
        .unwrap();
    let after_first = snapshot(&mut bank, "U-1");
    let replay = bank
        .deposit(request, &deposit("U-1", 1_000, Source::PersonalAccount))
        .unwrap();
    assert_eq!(replay, first);
    assert_eq!(snapshot(&mut bank, "U-1"), after_first);
    // The same id for another request is refused, and changes nothing.
    for other in [
        deposit("U-1", 1_001, Source::PersonalAccount),
        deposit("U-1", 1_000, Source::Cash),
        DepositRequest {
            now_unix_seconds: NOW + 1,
            ..deposit("U-1", 1_000, Source::PersonalAccount)
        },
    ] {
        let error = bank.deposit(request, &other).unwrap_err();
        assert!(
            matches!(error, BankError::RequestConflict { request: r } if r == request),
            "{error}"
        );
    }
    let error = bank.confirm_deposit(request, &first.token_id).unwrap_err();
    assert!(
        matches!(error, BankError::RequestConflict { .. }),
        "{error}"
    );
    assert_eq!(snapshot(&mut bank, "U-1"), after_first);
}

#[test]
fn replays_answer_as_the_first_time() {
    let (mut bank, _clock, mut requests) = funded_bank();
    let cash_in = requests.next();
    let first = bank.cash_in(cash_in, "U-1", 500).unwrap();
    bank.cash_in(requests.next(), "U-1", 1).unwrap();
    assert_eq!(bank.cash_in(cash_in, "U-1", 500).unwrap(), first);
    assert_eq!(bank.balances("U-1").unwrap().personal, 10_501);
    assert!(matches!(
        bank.cash_in(cash_in, "U-1", 501),
        Err(BankError::RequestConflict { .. })
    ));

    let add = requests.next();
    bank.add_customer(add, &customer("U-2")).unwrap();
    let before = snapshot(&mut bank, "U-2");
    bank.add_customer(add, &customer("U-2")).unwrap();
    assert_eq!(snapshot(&mut bank, "U-2"), before);
    assert!(matches!(
        bank.add_customer(add, &customer("U-3")),
        Err(BankError::RequestConflict { .. })
    ));

    let held = bank
        .deposit(requests.next(), &deposit("U-1", 100, Source::Cash))
        .unwrap();
    let confirm = requests.next();
    bank.confirm_deposit(confirm, &held.token_id).unwrap();
    let before = snapshot(&mut bank, "U-1");
    bank.confirm_deposit(confirm, &held.token_id).unwrap();
    assert_eq!(snapshot(&mut bank, "U-1"), before);
    bank.ledger().check_invariants().unwrap();
}

#[test]
fn opening_twice_changes_nothing_and_a_bad_config_is_refused() {
    let clock = clock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.sqlite");
    let open = || {
        ledger::SqliteStore::open(&path)
            .unwrap()
            .with_clock(std::sync::Arc::new(clock.0.clone()))
    };
    let mut bank = bank::Bank::open(open(), config(), bank_key()).unwrap();
    let accounts = bank.ledger().accounts().unwrap();
    assert_eq!(accounts.len(), 1, "the cash account");
    drop(bank);
    let mut bank = bank::Bank::open(open(), config(), bank_key()).unwrap();
    assert_eq!(bank.ledger().accounts().unwrap(), accounts);
    drop(bank);
    for bad in [
        bank::BankConfig {
            bank_id: Vec::new(),
            ..config()
        },
        bank::BankConfig {
            currency: 0,
            ..config()
        },
        bank::BankConfig {
            deposit_hold_seconds: 0,
            ..config()
        },
    ] {
        assert!(matches!(
            bank::Bank::open(open(), bad, bank_key()),
            Err(BankError::InvalidConfig { .. })
        ));
    }
}
