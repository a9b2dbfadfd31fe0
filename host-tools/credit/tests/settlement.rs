//! Settlement day at the credit company (patent Fig. 11): the statement with the reflected tokens, and the
//! reconciliation of the bank's answer (posted, kept, flagged), resumable and refusing answers that do not fit.

mod common;

use common::*;
use credit::{
    CheckedStatus, CreditError, Mandate, ReconciliationOrder, StatementOrder, StatementSummary,
};
use interchange::{Deduction, DeductionStatus, TokenConfirmation, TransactionStatus};
use ledger::RequestId;

fn mandate() -> Mandate {
    Mandate {
        bank_id: BANK_ID.to_vec(),
        user_id: "U-000042".into(),
        account_number: "0001-234-5678901".into(),
        mandate_id: "M-000042".into(),
    }
}

fn statement_order(message_id: &str) -> StatementOrder {
    StatementOrder {
        message_id: message_id.into(),
        bank_id: BANK_ID.to_vec(),
        collection_date: date(2027, 1, 10),
    }
}

/// A cardholder with a mandate who bought 15,000 with an 8,000 token reflected (outstanding 15,000).
fn after_a_purchase_with_a_token() -> (TestCredit, [u8; 16]) {
    let mut credit = set_up(memory_store());
    credit
        .set_mandate(RequestId(90), CARDHOLDER, &mandate())
        .unwrap();
    let decision = credit
        .authorize(RequestId(100), &purchase(15_000, 1, vec![mint(1, 8_000)]))
        .unwrap();
    assert!(decision.approved);
    (credit, decision.accepted_tokens[0].token_id)
}

fn make_statement(credit: &mut TestCredit, message_id: &str) -> (StatementSummary, Vec<Deduction>) {
    let mut run = credit
        .begin_statement(&statement_order(message_id), NOW)
        .unwrap();
    run.collect_all(1, |_, _| Ok::<_, CreditError>(())).unwrap();
    let summary = run.finish().unwrap();
    let items = credit.statement_items(message_id, "", 100).unwrap();
    (summary, items)
}

fn answer(
    deduction: &Deduction,
    from_pool: u64,
    from_personal: u64,
    tokens: Vec<TokenConfirmation>,
) -> DeductionStatus {
    let collected = from_pool + from_personal;
    DeductionStatus {
        end_to_end_id: deduction.end_to_end_id.clone(),
        status: if collected == deduction.amount {
            TransactionStatus::Accepted
        } else if collected > 0 {
            TransactionStatus::Partial
        } else {
            TransactionStatus::Rejected
        },
        reason: (collected < deduction.amount)
            .then_some(interchange::ReasonCode::InsufficientFunds),
        due: deduction.amount,
        from_pool,
        from_personal,
        tokens,
    }
}

fn reconcile(
    credit: &mut TestCredit,
    statement: &str,
    statuses: &[DeductionStatus],
    notice_total: u64,
) -> Result<credit::ReconciliationSummary, CreditError> {
    let order = ReconciliationOrder {
        statement: statement.into(),
        bank_id: BANK_ID.to_vec(),
        notice_total,
    };
    let mut run = credit.begin_reconciliation(&order)?;
    let checked = run.check(statuses.to_vec())?;
    run.check_total()?;
    for status in &checked {
        run.reconcile(std::slice::from_ref(status))?;
    }
    run.finish()
}

#[test]
fn the_statement_asks_for_the_outstanding_balance_with_the_reflected_tokens() {
    let (mut credit, token_id) = after_a_purchase_with_a_token();
    let (summary, items) = make_statement(&mut credit, "ST-1");
    assert!(summary.complete);
    assert_eq!(
        (summary.items, summary.total, summary.tokens),
        (1, 15_000, 1)
    );
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item.amount, 15_000);
    assert_eq!(item.token_ids, [token_id]);
    assert_eq!(
        (item.user_id.as_str(), item.debtor_account.as_str()),
        ("U-000042", "0001-234-5678901")
    );
    assert!(item.end_to_end_id.len() <= 35);
    // A second statement for the same bank waits for the first's reconciliation; the same one resumes.
    assert!(matches!(
        credit.begin_statement(&statement_order("ST-2"), NOW),
        Err(CreditError::StatementOpen { .. })
    ));
    let (again, again_items) = make_statement(&mut credit, "ST-1");
    assert_eq!((again, again_items), (summary, items));
}

#[test]
fn a_confirmed_token_becomes_a_payment_and_the_account_is_settled() {
    let (mut credit, token_id) = after_a_purchase_with_a_token();
    let (_, items) = make_statement(&mut credit, "ST-1");
    let token = TokenConfirmation {
        token_id,
        confirmed: true,
        drawn: 8_000,
        remaining: 0,
    };
    let status = answer(&items[0], 8_000, 7_000, vec![token]);
    let summary = reconcile(&mut credit, "ST-1", &[status], 15_000).unwrap();
    assert_eq!(
        (summary.reflections_posted, summary.reflected_amount_posted),
        (1, 8_000)
    );
    assert!(summary.flagged.is_empty());
    let account = credit.account(CARDHOLDER).unwrap();
    assert_eq!(
        (
            account.outstanding,
            account.pending_credits,
            account.available
        ),
        (0, 0, LIMIT)
    );
    assert!(credit.pending_credits(CARDHOLDER).unwrap().is_empty());
    check(&mut credit);
    // The next statement may now be made; this cardholder owes nothing.
    let (next, _) = make_statement(&mut credit, "ST-2");
    assert_eq!(next.items, 0);
}

#[test]
fn what_is_left_of_a_deposit_stays_reflected() {
    let mut credit = set_up(memory_store());
    credit
        .set_mandate(RequestId(90), CARDHOLDER, &mandate())
        .unwrap();
    let decision = credit
        .authorize(RequestId(100), &purchase(3_000, 1, vec![mint(1, 8_000)]))
        .unwrap();
    let token_id = decision.accepted_tokens[0].token_id;
    let (_, items) = make_statement(&mut credit, "ST-1");
    // The bank drew 3,000 of the 8,000 deposit: 5,000 stays in the pool as a prepayment.
    let token = TokenConfirmation {
        token_id,
        confirmed: true,
        drawn: 3_000,
        remaining: 5_000,
    };
    let summary = reconcile(
        &mut credit,
        "ST-1",
        &[answer(&items[0], 3_000, 0, vec![token])],
        3_000,
    )
    .unwrap();
    assert_eq!(
        (summary.reflections_posted, summary.reflections_kept),
        (1, 1)
    );
    let account = credit.account(CARDHOLDER).unwrap();
    assert_eq!((account.outstanding, account.pending_credits), (0, 5_000));
    assert_eq!(account.available, LIMIT + 5_000);
    let pending = credit.pending_credits(CARDHOLDER).unwrap();
    assert_eq!(
        (pending.len(), pending[0].amount, pending[0].token_id),
        (1, 5_000, token_id)
    );
    check(&mut credit);
}

#[test]
fn a_reflection_no_deposit_confirms_is_flagged_and_withdrawn() {
    let (mut credit, token_id) = after_a_purchase_with_a_token();
    let (_, items) = make_statement(&mut credit, "ST-1");
    let token = TokenConfirmation {
        token_id,
        confirmed: false,
        drawn: 0,
        remaining: 0,
    };
    let summary = reconcile(
        &mut credit,
        "ST-1",
        &[answer(&items[0], 0, 4_000, vec![token])],
        4_000,
    )
    .unwrap();
    assert_eq!(summary.flagged.len(), 1);
    let flagged = &summary.flagged[0];
    assert_eq!(flagged.token_id, token_id);
    assert_eq!(flagged.bank_id, BANK_ID);
    assert_eq!(
        (flagged.pan.as_str(), flagged.cardholder_id.as_str()),
        (PAN, CARDHOLDER)
    );
    assert_eq!(flagged.amount, 8_000);
    assert_eq!(credit.flagged().unwrap(), summary.flagged);
    let account = credit.account(CARDHOLDER).unwrap();
    // 15,000 bought, 4,000 paid, the 8,000 reflection gone: 11,000 outstanding, over the limit.
    assert_eq!(
        (
            account.outstanding,
            account.pending_credits,
            account.available
        ),
        (11_000, 0, 0)
    );
    check(&mut credit);
}

#[test]
fn a_reconciliation_stopped_halfway_completes_without_posting_twice() {
    let (mut credit, token_id) = after_a_purchase_with_a_token();
    let (_, items) = make_statement(&mut credit, "ST-1");
    let token = TokenConfirmation {
        token_id,
        confirmed: true,
        drawn: 8_000,
        remaining: 0,
    };
    let status = answer(&items[0], 8_000, 7_000, vec![token]);
    let order = ReconciliationOrder {
        statement: "ST-1".into(),
        bank_id: BANK_ID.to_vec(),
        notice_total: 15_000,
    };
    {
        let mut run = credit.begin_reconciliation(&order).unwrap();
        let checked = run.check(vec![status.clone()]).unwrap();
        run.reconcile(&checked).unwrap();
        // Stopped before the transfer is posted.
    }
    let before = credit.account(CARDHOLDER).unwrap();
    let summary = reconcile(&mut credit, "ST-1", std::slice::from_ref(&status), 15_000).unwrap();
    assert_eq!(summary.reflections_posted, 1);
    assert_eq!(credit.account(CARDHOLDER).unwrap(), before);
    // Once more, all of it: nothing changes.
    let snapshot_before = snapshot(&mut credit);
    reconcile(&mut credit, "ST-1", &[status], 15_000).unwrap();
    assert_eq!(snapshot(&mut credit), snapshot_before);
    check(&mut credit);
}

#[test]
fn answers_that_do_not_fit_the_statement_are_refused_whole() {
    let (mut credit, token_id) = after_a_purchase_with_a_token();
    let (_, items) = make_statement(&mut credit, "ST-1");
    let before = snapshot(&mut credit);
    let good = TokenConfirmation {
        token_id,
        confirmed: true,
        drawn: 8_000,
        remaining: 0,
    };
    let mut unknown = answer(&items[0], 8_000, 7_000, vec![good]);
    unknown.end_to_end_id = "not-ours-0000000001".into();
    let mut too_much = answer(&items[0], 8_000, 7_000, vec![good]);
    too_much.from_personal = 9_000;
    let other_token = TokenConfirmation {
        token_id: [9; 16],
        ..good
    };
    let wrong_tokens = answer(&items[0], 8_000, 7_000, vec![other_token]);
    for (status, total) in [
        (unknown, 15_000),
        (too_much, 17_000),
        (wrong_tokens, 15_000),
    ] {
        let error = reconcile(&mut credit, "ST-1", &[status], total).unwrap_err();
        assert!(
            matches!(
                error,
                CreditError::UnknownDeduction { .. } | CreditError::AmountsDisagree { .. }
            ),
            "{error:?}"
        );
    }
    let right = answer(&items[0], 8_000, 7_000, vec![good]);
    let error = reconcile(&mut credit, "ST-1", &[right], 14_000).unwrap_err();
    assert!(matches!(
        error,
        CreditError::NoticeDisagrees {
            notice: 14_000,
            report: 15_000
        }
    ));
    assert!(matches!(
        reconcile(&mut credit, "ST-9", &[], 0),
        Err(CreditError::UnknownStatement { .. })
    ));
    assert_eq!(snapshot(&mut credit), before);
}

/// The ledger request under which earlier versions reconciled a deduction: `derived_id` of the credit system.
fn earlier_reconcile_request(bank_id: &[u8], end_to_end_id: &str) -> RequestId {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"linkcard credit reconcile deduction");
    for part in [bank_id, end_to_end_id.as_bytes()] {
        hash.update((part.len() as u32).to_be_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    RequestId(u128::from_be_bytes(digest[..16].try_into().unwrap()))
}

#[test]
fn a_reconciliation_begun_by_an_earlier_version_is_refused_not_posted_twice() {
    use ledger::{LedgerTables as _, StoredRequest, Transaction as _};
    let (mut credit, token_id) = after_a_purchase_with_a_token();
    let (summary, items) = make_statement(&mut credit, "ST-OLD");
    // What an earlier version left after reconciling the first deduction.
    let mut tx = credit.ledger().transaction().unwrap();
    let legacy = earlier_reconcile_request(BANK_ID, &items[0].end_to_end_id);
    let stored = StoredRequest {
        hash: [7; 32],
        answer: Vec::new(),
    };
    tx.insert_request(legacy, &stored).unwrap();
    tx.commit().unwrap();
    let status = answer(
        &items[0],
        8_000,
        7_000,
        vec![TokenConfirmation {
            token_id,
            confirmed: true,
            drawn: 8_000,
            remaining: 0,
        }],
    );
    let refused = reconcile(&mut credit, "ST-OLD", &[status], summary.total).unwrap_err();
    assert!(
        matches!(refused, CreditError::ReconciliationOfEarlierVersion { ref message_id } if message_id == "ST-OLD"),
        "{refused:?}"
    );
    let account = credit.account(CARDHOLDER).unwrap();
    assert_eq!(
        (account.outstanding, account.pending_credits),
        (15_000, 8_000),
        "nothing was posted"
    );
}

/// The bank's confirmation of the purchase's 8,000 token, all of it drawn.
fn drawn_whole(token_id: [u8; 16]) -> TokenConfirmation {
    TokenConfirmation {
        token_id,
        confirmed: true,
        drawn: 8_000,
        remaining: 0,
    }
}

/// Reconciles `statuses` as an answer checked on another thread: one status per chunk, `checked_whole` as the
/// checker says, `failure` after the chunks when given.
fn reconcile_as_file(
    credit: &mut TestCredit,
    statuses: &[DeductionStatus],
    notice_total: u64,
    checked_whole: bool,
    failure: Option<&str>,
) -> Result<credit::ReconciliationSummary, String> {
    let order = ReconciliationOrder {
        statement: "ST-1".into(),
        bank_id: BANK_ID.to_vec(),
        notice_total,
    };
    let mut run = credit
        .begin_reconciliation(&order)
        .map_err(|e| e.to_string())?;
    let checked = run.check(statuses.to_vec()).map_err(|e| e.to_string())?;
    let mut chunks: Vec<Result<Vec<CheckedStatus>, Box<dyn std::error::Error>>> =
        checked.into_iter().map(|s| Ok(vec![s])).collect();
    chunks.extend(failure.map(|reason| Err(reason.into())));
    run.reconcile_file(chunks, || checked_whole, |_, _| Ok(()))
        .map_err(|error| error.to_string())
}

#[test]
fn an_answer_reconciled_while_it_is_checked_is_refused_whole_until_checked() {
    let (mut credit, token_id) = after_a_purchase_with_a_token();
    let (_, items) = make_statement(&mut credit, "ST-1");
    let status = answer(&items[0], 8_000, 7_000, vec![drawn_whole(token_id)]);
    let before = snapshot(&mut credit);
    let statuses = std::slice::from_ref(&status);
    let refused = reconcile_as_file(
        &mut credit,
        statuses,
        15_000,
        false,
        Some("item 2 is wrong"),
    );
    assert_eq!(refused.unwrap_err(), "item 2 is wrong");
    assert_eq!(snapshot(&mut credit), before);
    let stopped = reconcile_as_file(&mut credit, statuses, 15_000, false, None).unwrap_err();
    assert!(stopped.contains("read and checked whole"), "{stopped}");
    assert_eq!(snapshot(&mut credit), before);
    // Checked whole: reconciled, the same as an answer checked before it is reconciled.
    let summary = reconcile_as_file(&mut credit, statuses, 15_000, true, None).unwrap();
    assert_eq!((summary.reflections_posted, summary.collected), (1, 15_000));
    let after = snapshot(&mut credit);
    let again = reconcile(&mut credit, "ST-1", statuses, 15_000).unwrap();
    assert_eq!(again, summary);
    assert_eq!(snapshot(&mut credit), after);
    check(&mut credit);
}
