//! The Fig. 7 deposit end to end, in process: customers, cash, contracts, deposits from cash and from the
//! personal account, confirm, cancel, expire, balances, and the token as the credit system opens it.

mod common;

use bank::{Balances, Bank, BankError, DepositState, Source};
use common::*;
use ledger::{PendingState, SqliteStore};

fn balances(personal: u64, pool: u64, pool_held: u64) -> Balances {
    Balances {
        currency: JPY,
        personal,
        pool,
        pool_held,
    }
}

#[test]
fn deposit_from_cash_is_held_then_confirmed_into_the_pool() {
    let (mut bank, _clock, mut requests) = funded_bank();
    assert_eq!(bank.balances("U-1").unwrap(), balances(10_000, 0, 0));

    let deposit = bank
        .deposit(requests.next(), &deposit("U-1", 2_500, Source::Cash))
        .unwrap();
    assert_eq!((deposit.amount, deposit.currency), (2_500, JPY));
    assert_eq!(
        deposit.valid_until,
        token::Date::from_ymd(2027, 1, 31).unwrap()
    );
    // Cash does not touch the personal account; the pool holds the sum until the card stores the token.
    assert_eq!(bank.balances("U-1").unwrap(), balances(10_000, 0, 2_500));
    assert_eq!(bank.pool_total(JPY).unwrap(), 0);

    bank.confirm_deposit(requests.next(), &deposit.token_id)
        .unwrap();
    assert_eq!(bank.balances("U-1").unwrap(), balances(10_000, 2_500, 0));
    assert_eq!(bank.pool_total(JPY).unwrap(), 2_500);
    let records = bank.deposits_of("U-1").unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].state, DepositState::Confirmed);
    assert_eq!(records[0].token_id, deposit.token_id);
    assert_eq!(records[0].credit_id, CREDIT_ID);
    assert_eq!(records[0].deposit_date, today());
    bank.ledger().check_invariants().unwrap();
}

#[test]
fn deposit_from_the_personal_account_holds_then_cancel_gives_it_back() {
    let (mut bank, _clock, mut requests) = funded_bank();
    let held = bank
        .deposit(
            requests.next(),
            &deposit("U-1", 4_000, Source::PersonalAccount),
        )
        .unwrap();
    assert_eq!(bank.balances("U-1").unwrap(), balances(6_000, 0, 4_000));
    bank.cancel_deposit(requests.next(), &held.token_id)
        .unwrap();
    assert_eq!(bank.balances("U-1").unwrap(), balances(10_000, 0, 0));
    assert_eq!(
        bank.deposits_of("U-1").unwrap()[0].state,
        DepositState::Cancelled
    );

    let confirmed = bank
        .deposit(
            requests.next(),
            &deposit("U-1", 10_000, Source::PersonalAccount),
        )
        .unwrap();
    bank.confirm_deposit(requests.next(), &confirmed.token_id)
        .unwrap();
    assert_eq!(bank.balances("U-1").unwrap(), balances(0, 10_000, 0));
    bank.ledger().check_invariants().unwrap();
}

#[test]
fn holds_never_confirmed_expire_and_the_money_goes_back() {
    let (mut bank, clock, mut requests) = funded_bank();
    let first = bank
        .deposit(
            requests.next(),
            &deposit("U-1", 1_000, Source::PersonalAccount),
        )
        .unwrap();
    let later = DepositRequest {
        now_unix_seconds: NOW + 100,
        ..deposit("U-1", 2_000, Source::Cash)
    };
    clock.set(NOW + 100);
    let second = bank.deposit(requests.next(), &later).unwrap();

    assert_eq!(bank.expire_holds(NOW + HOLD - 1).unwrap(), 0);
    assert_eq!(bank.expire_holds(NOW + HOLD).unwrap(), 1);
    assert_eq!(bank.balances("U-1").unwrap(), balances(10_000, 0, 2_000));
    assert!(matches!(
        bank.confirm_deposit(requests.next(), &first.token_id),
        Err(BankError::DepositExpired { .. })
    ));
    // Cancelling an expired deposit asks for what already happened: the money is back.
    bank.cancel_deposit(requests.next(), &first.token_id)
        .unwrap();
    assert_eq!(bank.expire_holds(NOW + 100 + HOLD).unwrap(), 1);
    let states: Vec<_> = bank
        .deposits_of("U-1")
        .unwrap()
        .iter()
        .map(|d| (d.token_id, d.state))
        .collect();
    assert!(states.contains(&(first.token_id, DepositState::Expired)));
    assert!(states.contains(&(second.token_id, DepositState::Expired)));
    assert_eq!(bank.balances("U-1").unwrap(), balances(10_000, 0, 0));
    bank.ledger().check_invariants().unwrap();
}

#[test]
fn a_hold_past_its_time_cannot_be_confirmed_and_a_cancel_expires_it() {
    let (mut bank, clock, mut requests) = funded_bank();
    let held = bank
        .deposit(
            requests.next(),
            &deposit("U-1", 1_000, Source::PersonalAccount),
        )
        .unwrap();
    clock.set(NOW + HOLD);
    assert!(matches!(
        bank.confirm_deposit(requests.next(), &held.token_id),
        Err(BankError::DepositExpired { .. })
    ));
    assert_eq!(
        bank.deposits_of("U-1").unwrap()[0].state,
        DepositState::Held
    );
    bank.cancel_deposit(requests.next(), &held.token_id)
        .unwrap();
    assert_eq!(
        bank.deposits_of("U-1").unwrap()[0].state,
        DepositState::Expired
    );
    assert_eq!(bank.balances("U-1").unwrap(), balances(10_000, 0, 0));
    assert_eq!(bank.expire_holds(NOW + HOLD).unwrap(), 0);
    bank.ledger().check_invariants().unwrap();
}

#[test]
fn confirm_and_cancel_are_idempotent_and_exclusive() {
    let (mut bank, _clock, mut requests) = funded_bank();
    let confirmed = bank
        .deposit(requests.next(), &deposit("U-1", 100, Source::Cash))
        .unwrap();
    let cancelled = bank
        .deposit(requests.next(), &deposit("U-1", 200, Source::Cash))
        .unwrap();
    bank.confirm_deposit(requests.next(), &confirmed.token_id)
        .unwrap();
    bank.confirm_deposit(requests.next(), &confirmed.token_id)
        .unwrap();
    bank.cancel_deposit(requests.next(), &cancelled.token_id)
        .unwrap();
    bank.cancel_deposit(requests.next(), &cancelled.token_id)
        .unwrap();
    let before = snapshot(&mut bank, "U-1");
    assert!(matches!(
        bank.cancel_deposit(requests.next(), &confirmed.token_id),
        Err(BankError::DepositConfirmed { .. })
    ));
    assert!(matches!(
        bank.confirm_deposit(requests.next(), &cancelled.token_id),
        Err(BankError::DepositCancelled { .. })
    ));
    for unknown in [[0u8; 16], [0xFF; 16]] {
        assert!(matches!(
            bank.confirm_deposit(requests.next(), &unknown),
            Err(BankError::UnknownDeposit { .. })
        ));
        assert!(matches!(
            bank.cancel_deposit(requests.next(), &unknown),
            Err(BankError::UnknownDeposit { .. })
        ));
    }
    assert_eq!(snapshot(&mut bank, "U-1"), before);
    assert_eq!(bank.balances("U-1").unwrap(), balances(10_000, 100, 0));
    let fates: Vec<_> = bank
        .ledger()
        .transfers()
        .unwrap()
        .into_iter()
        .filter_map(|(_, s)| s)
        .collect();
    assert_eq!(fates, [PendingState::Posted, PendingState::Voided]);
    bank.ledger().check_invariants().unwrap();
}

#[test]
fn the_token_opens_for_the_credit_system_with_the_deposit_fields() {
    let (mut bank, _clock, mut requests) = funded_bank();
    let deposit = bank
        .deposit(
            requests.next(),
            &deposit("U-1", 1_250, Source::PersonalAccount),
        )
        .unwrap();
    let body = token::open(
        &deposit.token,
        &recipient(),
        &keyring(),
        today(),
        Some(&BINDING),
    )
    .unwrap();
    assert_eq!(body.token_id, deposit.token_id);
    assert_eq!(body.user_name, "Hanako Yamada");
    assert_eq!(body.user_id, "U-1");
    assert_eq!((body.sum, body.currency), (1_250, JPY));
    assert_eq!(body.deposit_date, today());
    assert_eq!(body.valid_from, today());
    assert_eq!(body.valid_until, deposit.valid_until);
    assert_eq!(body.bank_id, BANK_ID);
    assert_eq!(body.bank_account, "0001-234-U-1");
    assert_eq!(body.credit_id, CREDIT_ID);
    assert_eq!(body.pan, PAN);
    assert_eq!(body.card_binding, BINDING);
    // Another credit company's key cannot open it.
    let mut other = token::CreditRecipient::new(CREDIT_ID);
    other.add_key(token::CreditPrivateKey::derive(b"another credit company"));
    assert!(matches!(
        token::open(&deposit.token, &other, &keyring(), today(), None),
        Err(token::OpenError::WrongRecipient)
    ));
}

#[test]
fn every_deposit_has_a_fresh_token_id() {
    let (mut bank, _clock, mut requests) = funded_bank();
    let ids: std::collections::BTreeSet<_> = (0..8)
        .map(|_| {
            bank.deposit(requests.next(), &deposit("U-1", 10, Source::Cash))
                .unwrap()
                .token_id
        })
        .collect();
    assert_eq!(ids.len(), 8);
    assert_eq!(bank.deposits_of("U-1").unwrap().len(), 8);
}

#[test]
fn deposits_and_their_records_survive_reopening_a_file_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.sqlite");
    let clock = clock();
    let open = |clock: &Clock| {
        let store = SqliteStore::open(&path)
            .unwrap()
            .with_clock(std::sync::Arc::new(clock.0.clone()));
        Bank::open(store, config(), bank_key()).unwrap()
    };
    let mut requests = Requests::default();
    let (confirmed, held) = {
        let mut bank = open(&clock);
        bank.add_customer(requests.next(), &customer("U-1"))
            .unwrap();
        bank.cash_in(requests.next(), "U-1", 5_000).unwrap();
        bank.add_contract(requests.next(), &contract()).unwrap();
        let confirmed = bank
            .deposit(
                requests.next(),
                &deposit("U-1", 1_000, Source::PersonalAccount),
            )
            .unwrap();
        bank.confirm_deposit(requests.next(), &confirmed.token_id)
            .unwrap();
        let held = bank
            .deposit(requests.next(), &deposit("U-1", 500, Source::Cash))
            .unwrap();
        (confirmed, held)
    };
    let mut bank = open(&clock);
    assert_eq!(bank.balances("U-1").unwrap(), balances(4_000, 1_000, 500));
    assert_eq!(bank.contracts().unwrap(), [contract()]);
    bank.cancel_deposit(requests.next(), &held.token_id)
        .unwrap();
    let states: Vec<_> = bank
        .deposits_of("U-1")
        .unwrap()
        .iter()
        .map(|d| (d.token_id, d.state))
        .collect();
    assert!(states.contains(&(confirmed.token_id, DepositState::Confirmed)));
    assert!(states.contains(&(held.token_id, DepositState::Cancelled)));
    bank.ledger().check_invariants().unwrap();
    drop(bank);
    // Another bank's configuration is refused on this database.
    let store = SqliteStore::open(&path).unwrap();
    let other = bank::BankConfig {
        bank_id: b"BANK0002".to_vec(),
        ..config()
    };
    assert!(matches!(
        Bank::open(store, other, bank_key()),
        Err(BankError::ConfigMismatch { .. })
    ));
}

#[test]
fn customers_of_several_currencies_have_their_own_cash_and_pool() {
    let (mut bank, _clock, mut requests) = funded_bank();
    let euro = bank::NewCustomer {
        currency: EUR,
        ..customer("U-EUR")
    };
    bank.add_customer(requests.next(), &euro).unwrap();
    bank.cash_in(requests.next(), "U-EUR", 700).unwrap();
    let deposit = bank
        .deposit(
            requests.next(),
            &DepositRequest {
                currency: EUR,
                ..deposit("U-EUR", 300, Source::PersonalAccount)
            },
        )
        .unwrap();
    bank.confirm_deposit(requests.next(), &deposit.token_id)
        .unwrap();
    assert_eq!(bank.pool_total(EUR).unwrap(), 300);
    assert_eq!(bank.pool_total(JPY).unwrap(), 0);
    assert_eq!(
        bank.balances("U-EUR").unwrap(),
        Balances {
            currency: EUR,
            personal: 400,
            pool: 300,
            pool_held: 0
        }
    );
    bank.ledger().check_invariants().unwrap();
}

use bank::DepositRequest;

#[test]
fn a_batch_commits_its_deposits_together_and_a_refusal_undoes_only_itself() {
    let (mut bank, _clock, mut requests) = funded_bank();
    let (first, refused, last) = (requests.next(), requests.next(), requests.next());
    let batch = [
        (first, deposit("U-1", 6_000, Source::PersonalAccount)),
        (refused, deposit("U-1", 6_000, Source::PersonalAccount)),
        (last, deposit("U-1", 4_000, Source::PersonalAccount)),
    ];
    let answers = bank.deposit_batch(&batch).unwrap();
    assert!(answers[0].is_ok() && answers[2].is_ok());
    assert!(matches!(
        answers[1],
        Err(BankError::InsufficientFunds {
            available: 4_000,
            ..
        })
    ));
    assert_eq!(bank.balances("U-1").unwrap(), balances(0, 0, 10_000));
    assert_eq!(bank.deposits_of("U-1").unwrap().len(), 2);
    // Replayed in a batch or alone, a deposit answers its first token.
    let replayed = bank.deposit_batch(&batch[..1]).unwrap();
    assert_eq!(replayed[0].as_ref().unwrap(), answers[0].as_ref().unwrap());
    let alone = bank.deposit(last, &batch[2].1).unwrap();
    assert_eq!(&alone, answers[2].as_ref().unwrap());
    assert_eq!(bank.deposits_of("U-1").unwrap().len(), 2);
    bank.ledger().check_invariants().unwrap();
}
