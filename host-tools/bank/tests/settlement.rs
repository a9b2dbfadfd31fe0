//! Settlement day at the bank (patent Fig. 8): the pool first, then the personal account, shortfalls, tokens
//! confirmed or not, the batch transfer, and re-runs that change nothing.

mod common;

use bank::{AccountKind, Bank, BankError, SettlementOrder, SettlementSummary, Source, account_id};
use common::*;
use interchange::{Deduction, DeductionStatus, ReasonCode, TransactionStatus};
use ledger::SqliteStore;

fn order(message_id: &str) -> SettlementOrder {
    SettlementOrder {
        message_id: message_id.into(),
        credit_id: CREDIT_ID.to_vec(),
        collection_date: token::Date::from_ymd(2027, 1, 10).unwrap(),
        currency: JPY,
    }
}

fn deduction(end_to_end_id: &str, user_id: &str, amount: u64, tokens: &[[u8; 16]]) -> Deduction {
    Deduction {
        end_to_end_id: end_to_end_id.into(),
        mandate_id: format!("M-{user_id}"),
        user_id: user_id.into(),
        name: "Hanako Yamada".into(),
        debtor_account: format!("0001-234-{user_id}"),
        amount,
        token_ids: tokens.to_vec(),
    }
}

/// A confirmed deposit of `amount` from cash into `user_id`'s pool; answers its token id.
fn pool_deposit(
    bank: &mut Bank<SqliteStore>,
    requests: &mut Requests,
    user_id: &str,
    amount: u64,
) -> [u8; 16] {
    let taken = bank
        .deposit(requests.next(), &deposit(user_id, amount, Source::Cash))
        .unwrap();
    bank.confirm_deposit(requests.next(), &taken.token_id)
        .unwrap();
    taken.token_id
}

fn settle_all(
    bank: &mut Bank<SqliteStore>,
    order: &SettlementOrder,
    deductions: &[Deduction],
    chunk: usize,
) -> (Vec<DeductionStatus>, SettlementSummary) {
    let mut run = bank.begin_settlement(order, NOW).unwrap();
    let mut statuses = Vec::new();
    for part in deductions.chunks(chunk) {
        statuses.extend(run.settle(part).unwrap());
    }
    let summary = run.finish().unwrap();
    (statuses, summary)
}

fn company_balance(bank: &mut Bank<SqliteStore>) -> u128 {
    let account = bank
        .ledger()
        .account(account_id(AccountKind::CreditCompany, JPY, 1))
        .unwrap()
        .unwrap();
    account.credits_posted - account.debits_posted
}

#[test]
fn the_pool_pays_first_and_what_is_left_stays_a_prepayment() {
    let (mut bank, _clock, mut requests) = funded_bank();
    let token = pool_deposit(&mut bank, &mut requests, "U-1", 2_500);
    let (statuses, summary) = settle_all(
        &mut bank,
        &order("DD-1"),
        &[deduction("E-1", "U-1", 2_000, &[token])],
        10,
    );
    let status = &statuses[0];
    assert_eq!(status.status, TransactionStatus::Accepted);
    assert_eq!(status.reason, None);
    assert_eq!((status.from_pool, status.from_personal), (2_000, 0));
    assert_eq!(status.tokens.len(), 1);
    assert!(status.tokens[0].confirmed);
    assert_eq!(
        (status.tokens[0].drawn, status.tokens[0].remaining),
        (2_000, 500)
    );
    let balances = bank.balances("U-1").unwrap();
    assert_eq!((balances.pool, balances.personal), (500, 10_000));
    assert_eq!(company_balance(&mut bank), 2_000);
    assert_eq!(
        (summary.accepted, summary.from_pool, summary.collected()),
        (1, 2_000, 2_000)
    );
    bank.ledger().check_invariants().unwrap();
}

#[test]
fn the_personal_account_pays_the_rest_and_a_shortfall_is_reported() {
    let (mut bank, _clock, mut requests) = funded_bank();
    bank.add_customer(requests.next(), &customer("U-2"))
        .unwrap();
    bank.cash_in(requests.next(), "U-2", 1_000).unwrap();
    bank.add_customer(requests.next(), &customer("U-3"))
        .unwrap();
    let token = pool_deposit(&mut bank, &mut requests, "U-1", 3_000);
    let deductions = [
        deduction("E-1", "U-1", 8_000, &[token]),
        deduction("E-2", "U-2", 4_000, &[]),
        deduction("E-3", "U-3", 700, &[]),
    ];
    let (statuses, summary) = settle_all(&mut bank, &order("DD-1"), &deductions, 2);
    assert_eq!(statuses[0].status, TransactionStatus::Accepted);
    assert_eq!(
        (statuses[0].from_pool, statuses[0].from_personal),
        (3_000, 5_000)
    );
    assert_eq!(statuses[1].status, TransactionStatus::Partial);
    assert_eq!(statuses[1].reason, Some(ReasonCode::InsufficientFunds));
    assert_eq!(
        (statuses[1].from_pool, statuses[1].from_personal),
        (0, 1_000)
    );
    assert_eq!(statuses[2].status, TransactionStatus::Rejected);
    assert_eq!(statuses[2].reason, Some(ReasonCode::InsufficientFunds));
    assert_eq!(bank.balances("U-1").unwrap().personal, 5_000);
    assert_eq!(bank.balances("U-2").unwrap().personal, 0);
    assert_eq!(summary.shortfall, 3_000 + 700);
    assert_eq!(summary.collected(), 9_000);
    assert_eq!(company_balance(&mut bank), 9_000);
    bank.ledger().check_invariants().unwrap();
}

#[test]
fn a_token_without_a_confirmed_deposit_of_this_user_and_company_is_not_confirmed() {
    let (mut bank, _clock, mut requests) = funded_bank();
    bank.add_customer(requests.next(), &customer("U-2"))
        .unwrap();
    let others = pool_deposit(&mut bank, &mut requests, "U-2", 1_000);
    let cancelled = bank
        .deposit(requests.next(), &deposit("U-1", 400, Source::Cash))
        .unwrap()
        .token_id;
    bank.cancel_deposit(requests.next(), &cancelled).unwrap();
    let forged = [0x66; 16];
    let (statuses, summary) = settle_all(
        &mut bank,
        &order("DD-1"),
        &[deduction("E-1", "U-1", 500, &[forged, cancelled, others])],
        10,
    );
    let tokens = &statuses[0].tokens;
    assert_eq!(
        tokens.iter().map(|t| t.token_id).collect::<Vec<_>>(),
        [forged, cancelled, others]
    );
    assert!(tokens.iter().all(|t| !t.confirmed && t.drawn == 0));
    assert_eq!(summary.unconfirmed_tokens, 3);
    // U-2's deposit is untouched; U-1 paid from the personal account.
    assert_eq!(bank.balances("U-2").unwrap().pool, 1_000);
    assert_eq!((statuses[0].from_pool, statuses[0].from_personal), (0, 500));
}

#[test]
fn unknown_users_and_wrong_accounts_are_rejected_and_nothing_is_taken() {
    let (mut bank, _clock, _requests) = funded_bank();
    let mut wrong_account = deduction("E-2", "U-1", 100, &[]);
    wrong_account.debtor_account = "9999-999-0000000".into();
    let (statuses, summary) = settle_all(
        &mut bank,
        &order("DD-1"),
        &[deduction("E-1", "U-404", 100, &[[1; 16]]), wrong_account],
        10,
    );
    for status in &statuses {
        assert_eq!(status.status, TransactionStatus::Rejected);
        assert_eq!(status.reason, Some(ReasonCode::IncorrectAccount));
    }
    assert!(!statuses[0].tokens[0].confirmed);
    assert_eq!(summary.collected(), 0);
    assert_eq!(bank.balances("U-1").unwrap().personal, 10_000);
}

#[test]
fn running_the_same_file_again_answers_the_same_and_changes_nothing() {
    let (mut bank, _clock, mut requests) = funded_bank();
    let token = pool_deposit(&mut bank, &mut requests, "U-1", 2_500);
    let deductions = [deduction("E-1", "U-1", 4_000, &[token])];
    let (first, first_summary) = settle_all(&mut bank, &order("DD-1"), &deductions, 10);
    let before = snapshot(&mut bank, "U-1");
    let (again, again_summary) = settle_all(&mut bank, &order("DD-1"), &deductions, 1);
    assert_eq!(again, first);
    assert_eq!(again_summary, first_summary);
    assert_eq!(snapshot(&mut bank, "U-1"), before);
}

#[test]
fn a_settlement_stopped_halfway_is_completed_by_a_rerun_without_taking_twice() {
    let (mut bank, _clock, mut requests) = funded_bank();
    bank.add_customer(requests.next(), &customer("U-2"))
        .unwrap();
    bank.cash_in(requests.next(), "U-2", 5_000).unwrap();
    let deductions = [
        deduction("E-1", "U-1", 1_000, &[]),
        deduction("E-2", "U-2", 2_000, &[]),
    ];
    {
        // The first chunk commits, then the process "dies" before the second and the batch.
        let mut run = bank.begin_settlement(&order("DD-1"), NOW).unwrap();
        run.settle(&deductions[..1]).unwrap();
    }
    assert_eq!(bank.balances("U-1").unwrap().personal, 9_000);
    let (statuses, summary) = settle_all(&mut bank, &order("DD-1"), &deductions, 10);
    assert!(
        statuses
            .iter()
            .all(|s| s.status == TransactionStatus::Accepted)
    );
    assert_eq!(bank.balances("U-1").unwrap().personal, 9_000);
    assert_eq!(bank.balances("U-2").unwrap().personal, 3_000);
    assert_eq!(summary.collected(), 3_000);
    assert_eq!(summary.started_unix_seconds, NOW);
    assert_eq!(company_balance(&mut bank), 3_000);
    bank.ledger().check_invariants().unwrap();
}

#[test]
fn a_deduction_sent_again_in_another_file_is_a_duplicate_and_takes_nothing() {
    let (mut bank, _clock, _requests) = funded_bank();
    settle_all(
        &mut bank,
        &order("DD-1"),
        &[deduction("E-1", "U-1", 1_000, &[])],
        10,
    );
    let same = deduction("E-1", "U-1", 1_000, &[]);
    let changed = deduction("E-1", "U-1", 9_000, &[]);
    for (message_id, deduction) in [("DD-2", same), ("DD-3", changed)] {
        let (statuses, summary) = settle_all(&mut bank, &order(message_id), &[deduction], 10);
        assert_eq!(statuses[0].status, TransactionStatus::Rejected);
        assert_eq!(statuses[0].reason, Some(ReasonCode::Duplicate));
        assert_eq!((summary.duplicates, summary.collected()), (1, 0));
    }
    assert_eq!(bank.balances("U-1").unwrap().personal, 9_000);
    assert_eq!(company_balance(&mut bank), 1_000);
}

#[test]
fn a_file_for_another_currency_or_without_a_contract_is_refused() {
    let (mut bank, _clock, _requests) = funded_bank();
    let mut euros = order("DD-1");
    euros.currency = EUR;
    assert!(matches!(
        bank.begin_settlement(&euros, NOW),
        Err(BankError::SettlementCurrency { currency: EUR, .. })
    ));
    let mut stranger = order("DD-1");
    stranger.credit_id = b"CRED9999".to_vec();
    assert!(matches!(
        bank.begin_settlement(&stranger, NOW),
        Err(BankError::NoContract { .. })
    ));
}

#[test]
fn a_settlement_begun_by_an_earlier_version_is_refused_not_settled_twice() {
    use ledger::Transaction as _;
    let (mut bank, _clock, _requests) = funded_bank();
    // What earlier versions kept: the progress record without a format (their deductions were ledger requests).
    let key = [CREDIT_ID, &[0], b"DD-OLD"].concat();
    let mut tx = bank.ledger().transaction().unwrap();
    tx.put(
        "bank.settlements",
        &key,
        br#"{"started_unix_seconds":1796083200,"transferred":null}"#,
    )
    .unwrap();
    tx.commit().unwrap();
    let refused = bank.begin_settlement(&order("DD-OLD"), NOW).unwrap_err();
    assert!(
        matches!(refused, BankError::SettlementOfEarlierVersion { ref message_id } if message_id == "DD-OLD"),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("earlier version"));
    // A new file is settled as usual.
    let (statuses, _) = settle_all(
        &mut bank,
        &order("DD-NEW"),
        &[deduction("E-9", "U-1", 100, &[])],
        10,
    );
    assert_eq!(statuses[0].status, TransactionStatus::Accepted);
}

#[test]
fn chunks_of_any_size_settle_alike_and_a_rerun_in_other_chunks_replays() {
    let deductions: Vec<_> = (0..7)
        .map(|n| deduction(&format!("E-{n}"), "U-1", 100 + n, &[]))
        .collect();
    let (mut one, _clock, _requests) = funded_bank();
    let (by_one, summary_one) = settle_all(&mut one, &order("DD-1"), &deductions, 1);
    let (mut three, _clock, _requests) = funded_bank();
    let (by_three, summary_three) = settle_all(&mut three, &order("DD-1"), &deductions, 3);
    assert_eq!(by_one, by_three);
    assert_eq!(summary_one, summary_three);
    assert_eq!(company_balance(&mut one), company_balance(&mut three));
    // The same file again, chunked differently: every answer replayed, nothing taken twice.
    let before = company_balance(&mut three);
    let (again, _) = settle_all(&mut three, &order("DD-1"), &deductions, 7);
    assert_eq!(again, by_three);
    assert_eq!(company_balance(&mut three), before);
}

/// Settles `deductions` as a file read on another thread: `chunk` per chunk, `read_whole` as the reader says,
/// `failure` sent after the chunks when given.
fn settle_as_file(
    bank: &mut Bank<SqliteStore>,
    deductions: &[Deduction],
    chunk: usize,
    read_whole: bool,
    failure: Option<&str>,
) -> Result<(Vec<DeductionStatus>, SettlementSummary), String> {
    let run = bank.begin_settlement(&order("DD-1"), NOW).unwrap();
    let mut chunks: Vec<Result<Vec<Deduction>, Box<dyn std::error::Error>>> =
        deductions.chunks(chunk).map(|c| Ok(c.to_vec())).collect();
    chunks.extend(failure.map(|reason| Err(reason.into())));
    let mut statuses = Vec::new();
    let summary = run
        .settle_file(
            chunks,
            || read_whole,
            |answered| {
                statuses.extend(answered);
                Ok(())
            },
        )
        .map_err(|error| error.to_string())?;
    Ok((statuses, summary))
}

fn two_users_file(bank: &mut Bank<SqliteStore>, requests: &mut Requests) -> Vec<Deduction> {
    bank.add_customer(requests.next(), &customer("U-2"))
        .unwrap();
    bank.cash_in(requests.next(), "U-2", 5_000).unwrap();
    vec![
        deduction("E-1", "U-1", 1_000, &[]),
        deduction("E-2", "U-2", 2_000, &[]),
        deduction("E-3", "U-1", 500, &[]),
    ]
}

#[test]
fn a_file_settled_while_it_is_read_is_settled_like_one_read_first() {
    let (mut bank, _clock, mut requests) = funded_bank();
    let deductions = two_users_file(&mut bank, &mut requests);
    let (statuses, summary) = settle_as_file(&mut bank, &deductions, 2, true, None).unwrap();
    assert_eq!(statuses.len(), 3);
    assert!(
        statuses
            .iter()
            .all(|s| s.status == TransactionStatus::Accepted)
    );
    assert_eq!(summary.collected(), 3_500);
    assert_eq!(company_balance(&mut bank), 3_500);
    let (again, again_summary) = settle_all(&mut bank, &order("DD-1"), &deductions, 1);
    assert_eq!((again, again_summary), (statuses, summary));
    assert_eq!(bank.balances("U-1").unwrap().personal, 8_500);
    bank.ledger().check_invariants().unwrap();
}

#[test]
fn a_file_found_malformed_after_some_chunks_were_settled_changes_nothing() {
    let (mut bank, _clock, mut requests) = funded_bank();
    let deductions = two_users_file(&mut bank, &mut requests);
    // Beginning opens the company's account and records the settlement: the state to compare against.
    drop(bank.begin_settlement(&order("DD-1"), NOW).unwrap());
    let before = (snapshot(&mut bank, "U-1"), snapshot(&mut bank, "U-2"));
    let refused = settle_as_file(
        &mut bank,
        &deductions,
        1,
        false,
        Some("item 4 is malformed"),
    );
    assert_eq!(refused.unwrap_err(), "item 4 is malformed");
    assert_eq!(
        (snapshot(&mut bank, "U-1"), snapshot(&mut bank, "U-2")),
        before
    );
    assert_eq!(company_balance(&mut bank), 0);
    // The reader stopping without saying why is refused the same way.
    let stopped = settle_as_file(&mut bank, &deductions, 1, false, None).unwrap_err();
    assert!(stopped.contains("stopped before its end"), "{stopped}");
    assert_eq!(
        (snapshot(&mut bank, "U-1"), snapshot(&mut bank, "U-2")),
        before
    );
    // Once mended, the same file settles in full.
    let (statuses, summary) = settle_as_file(&mut bank, &deductions, 1, true, None).unwrap();
    assert_eq!((statuses.len(), summary.collected()), (3, 3_500));
    bank.ledger().check_invariants().unwrap();
}

#[test]
fn once_the_file_is_read_whole_each_chunk_is_committed_and_a_rerun_completes_it() {
    let (mut bank, _clock, mut requests) = funded_bank();
    let deductions = two_users_file(&mut bank, &mut requests);
    // Read whole, then the settlement fails after its first chunk (a full disk, say): that chunk stays.
    let failed = settle_as_file(&mut bank, &deductions[..1], 1, true, Some("disk full"));
    assert_eq!(failed.unwrap_err(), "disk full");
    assert_eq!(bank.balances("U-1").unwrap().personal, 9_000);
    let (statuses, summary) = settle_as_file(&mut bank, &deductions, 2, true, None).unwrap();
    assert_eq!((statuses.len(), summary.collected()), (3, 3_500));
    assert_eq!(bank.balances("U-1").unwrap().personal, 8_500);
    assert_eq!(company_balance(&mut bank), 3_500);
    bank.ledger().check_invariants().unwrap();
}

#[test]
fn a_deduction_twice_in_one_chunk_takes_its_money_once() {
    let (mut bank, _clock, _requests) = funded_bank();
    let twice = [
        deduction("E-1", "U-1", 1_000, &[]),
        deduction("E-1", "U-1", 1_000, &[]),
    ];
    let mut run = bank.begin_settlement(&order("DD-1"), NOW).unwrap();
    let statuses = run.settle(&twice).unwrap();
    assert_eq!(statuses[0], statuses[1]);
    drop(run);
    assert_eq!(bank.balances("U-1").unwrap().personal, 9_000);
}
