//! Every branch of an authorization (Fig. 10), end to end in process: tokens minted by a bank, presentations
//! signed as the card signs them. Invariants are checked after every test; an `Err` changes nothing.

mod common;

use common::*;
use credit::{CardStatus, CreditError, DeclineReason};
use ledger::RequestId;

fn memory() -> TestCredit {
    set_up(memory_store())
}

#[test]
fn declined_for_lack_of_credit_then_approved_at_once_thanks_to_a_token() {
    let mut credit = memory();
    let declined = credit
        .authorize(RequestId(100), &purchase(15_000, 1, vec![]))
        .unwrap();
    assert!(!declined.approved);
    assert_eq!(
        declined.decline,
        Some(DeclineReason::InsufficientCredit {
            available: LIMIT,
            amount: 15_000
        })
    );
    assert_eq!(
        (declined.available_before, declined.available_after),
        (LIMIT, LIMIT)
    );

    let token = mint(1, 8_000);
    let approved = credit
        .authorize(RequestId(101), &purchase(15_000, 2, vec![token]))
        .unwrap();
    assert!(approved.approved, "{approved:?}");
    assert_eq!(approved.decline, None);
    assert_eq!(approved.available_before, LIMIT);
    assert_eq!(approved.available_after, LIMIT + 8_000 - 15_000);
    assert_eq!(approved.accepted_tokens.len(), 1);
    assert_eq!(approved.accepted_tokens[0].sum, 8_000);
    assert_eq!(approved.accepted_tokens[0].bank_id, BANK_ID);
    assert!(approved.refused_tokens.is_empty());
    assert!(approved.authorization_id > declined.authorization_id);

    let account = credit.account(CARDHOLDER).unwrap();
    assert_eq!(
        (
            account.limit,
            account.outstanding,
            account.pending_credits,
            account.available
        ),
        (LIMIT, 15_000, 8_000, 3_000)
    );
    let pending = credit.pending_credits(CARDHOLDER).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].amount, 8_000);
    assert_eq!(
        pending[0].expires,
        date(2027, 3, 2),
        "valid until 2027-01-31 + 30 days"
    );
    assert_eq!(pending[0].authorization_id, approved.authorization_id);
    assert_eq!(
        credit.decision(approved.authorization_id).unwrap(),
        Some(approved)
    );
    assert_eq!(
        credit.decision(declined.authorization_id).unwrap(),
        Some(declined)
    );
    check(&mut credit);
}

#[test]
fn a_token_is_reflected_even_when_the_purchase_is_declined() {
    let mut credit = memory();
    let decision = credit
        .authorize(RequestId(100), &purchase(30_000, 1, vec![mint(1, 5_000)]))
        .unwrap();
    assert_eq!(
        decision.decline,
        Some(DeclineReason::InsufficientCredit {
            available: LIMIT + 5_000,
            amount: 30_000
        })
    );
    assert_eq!(decision.accepted_tokens.len(), 1);
    assert_eq!(decision.available_after, LIMIT + 5_000);
    let account = credit.account(CARDHOLDER).unwrap();
    assert_eq!((account.outstanding, account.pending_credits), (0, 5_000));
    check(&mut credit);
}

#[test]
fn a_replayed_token_is_refused_and_not_counted() {
    let mut credit = memory();
    let token = mint(1, 5_000);
    let first = credit
        .authorize(RequestId(100), &purchase(1_000, 1, vec![token.clone()]))
        .unwrap();
    assert_eq!(first.accepted_tokens.len(), 1);
    let second = credit
        .authorize(RequestId(101), &purchase(1_000, 2, vec![token.clone()]))
        .unwrap();
    assert!(second.accepted_tokens.is_empty());
    assert_eq!(second.refused_tokens.len(), 1);
    assert_eq!(second.refused_tokens[0].reason, "already used");
    assert_eq!(
        second.refused_tokens[0].token_id,
        Some(*b"TOKEN-0000000001")
    );
    // Twice in one presentation: the second copy is refused.
    let twice = credit
        .authorize(
            RequestId(102),
            &purchase(1_000, 3, vec![mint(2, 700), mint(2, 700)]),
        )
        .unwrap();
    assert_eq!(
        (twice.accepted_tokens.len(), twice.refused_tokens.len()),
        (1, 1)
    );
    assert_eq!(credit.account(CARDHOLDER).unwrap().pending_credits, 5_700);
    check(&mut credit);
}

#[test]
fn a_replayed_request_returns_the_same_decision_and_a_different_one_is_refused() {
    let mut credit = memory();
    let request = purchase(1_000, 1, vec![mint(1, 5_000)]);
    let first = credit.authorize(RequestId(100), &request).unwrap();
    let before = snapshot(&mut credit);
    assert_eq!(credit.authorize(RequestId(100), &request).unwrap(), first);
    assert_eq!(snapshot(&mut credit), before);
    let batch = credit
        .authorize_batch(&[(RequestId(100), request.clone())])
        .unwrap();
    assert_eq!(batch[0].as_ref().unwrap(), &first);

    let other = purchase(2_000, 2, vec![]);
    let error = credit.authorize(RequestId(100), &other).unwrap_err();
    assert!(
        matches!(error, CreditError::IdempotencyConflict { request: 100 }),
        "{error}"
    );
    assert_eq!(snapshot(&mut credit), before);
    check(&mut credit);
}

#[test]
fn a_token_of_an_unknown_bank_is_refused() {
    let mut credit = memory();
    let token = mint_with(&body(1, 5_000), &other_bank_key());
    let decision = credit
        .authorize(RequestId(100), &purchase(1_000, 1, vec![token]))
        .unwrap();
    assert!(decision.approved);
    assert!(decision.accepted_tokens.is_empty());
    assert!(
        decision.refused_tokens[0]
            .reason
            .starts_with("unknown bank"),
        "{decision:?}"
    );
    assert_eq!(credit.account(CARDHOLDER).unwrap().pending_credits, 0);
    check(&mut credit);
}

#[test]
fn a_tampered_token_is_refused() {
    let mut credit = memory();
    let mut token = mint(1, 5_000);
    let middle = token.len() / 2;
    token[middle] ^= 0x01;
    // The card signs what it presents: the signature is good, the token is not.
    let decision = credit
        .authorize(RequestId(100), &purchase(1_000, 1, vec![token]))
        .unwrap();
    assert!(decision.accepted_tokens.is_empty());
    assert!(
        decision.refused_tokens[0].reason.starts_with("tampered"),
        "{decision:?}"
    );
    check(&mut credit);
}

#[test]
fn tokens_for_another_card_company_currency_or_time_are_refused() {
    let mut credit = memory();
    let mut other_card = body(1, 100);
    other_card.card_binding = [9; 32];
    let mut other_pan = body(2, 100);
    other_pan.pan = "4000000000000002".into();
    let mut other_currency = body(3, 100);
    other_currency.currency = EUR;
    let mut expired = body(4, 100);
    expired.valid_from = date(2026, 10, 1);
    expired.valid_until = date(2026, 11, 30);
    let mut other_company = body(5, 100);
    other_company.credit_id = b"CRED0002".to_vec();
    let tokens = [
        other_card,
        other_pan,
        other_currency,
        expired,
        other_company,
    ]
    .iter()
    .map(|body| mint_with(body, &bank_key()))
    .collect();
    let decision = credit
        .authorize(RequestId(100), &purchase(1_000, 1, tokens))
        .unwrap();
    let reasons: Vec<&str> = decision
        .refused_tokens
        .iter()
        .map(|t| t.reason.as_str())
        .collect();
    assert_eq!(reasons[0], "bound to another card");
    assert_eq!(reasons[1], "issued for another card number");
    assert_eq!(reasons[2], "in currency 978, the account keeps 392");
    assert!(reasons[3].starts_with("token expired"), "{reasons:?}");
    assert_eq!(reasons[4], "sealed for another credit company");
    assert!(decision.accepted_tokens.is_empty() && decision.approved);
    check(&mut credit);
}

#[test]
fn a_tampered_card_signature_is_declined_without_considering_any_token() {
    let mut credit = memory();
    let token = mint(1, 5_000);
    let mut request = purchase(1_000, 5, vec![token.clone()]);
    request.signature[10] ^= 0x80;
    let decision = credit.authorize(RequestId(100), &request).unwrap();
    assert_eq!(decision.decline, Some(DeclineReason::BadCardSignature));
    assert!(decision.accepted_tokens.is_empty() && decision.refused_tokens.is_empty());
    // Signed by another key, or over another amount: the same.
    let foreign = purchase_signed(&bank_key(), PAN, 1_000, 6, vec![]);
    let decision = credit.authorize(RequestId(101), &foreign).unwrap();
    assert_eq!(decision.decline, Some(DeclineReason::BadCardSignature));
    let mut changed = purchase(1_000, 7, vec![]);
    changed.amount = 1;
    let decision = credit.authorize(RequestId(102), &changed).unwrap();
    assert_eq!(decision.decline, Some(DeclineReason::BadCardSignature));
    // The forged ATCs were not stored, and the token is still unused.
    let good = credit
        .authorize(RequestId(103), &purchase(1_000, 5, vec![token]))
        .unwrap();
    assert!(good.approved && good.accepted_tokens.len() == 1, "{good:?}");
    check(&mut credit);
}

#[test]
fn an_atc_that_does_not_increase_is_declined() {
    let mut credit = memory();
    let first = credit
        .authorize(RequestId(100), &purchase(50_000, 7, vec![]))
        .unwrap();
    assert!(matches!(
        first.decline,
        Some(DeclineReason::InsufficientCredit { .. })
    ));
    // Declined for credit, the ATC is still used up.
    for (request, atc) in [(101, 7), (102, 3)] {
        let decision = credit
            .authorize(
                RequestId(request),
                &purchase(1_000, atc, vec![mint(9, 100)]),
            )
            .unwrap();
        assert_eq!(
            decision.decline,
            Some(DeclineReason::AtcNotIncreasing {
                last: 7,
                presented: atc
            })
        );
        assert!(decision.accepted_tokens.is_empty() && decision.refused_tokens.is_empty());
    }
    assert_eq!(credit.account(CARDHOLDER).unwrap().pending_credits, 0);
    assert!(
        credit
            .authorize(RequestId(103), &purchase(1_000, 8, vec![]))
            .unwrap()
            .approved
    );
    check(&mut credit);
}

#[test]
fn lost_stolen_and_blocked_cards_are_declined_and_recorded() {
    let mut credit = memory();
    let token = mint(1, 5_000);
    let cases = [
        (CardStatus::Lost, DeclineReason::CardLost),
        (CardStatus::Stolen, DeclineReason::CardStolen),
        (CardStatus::Blocked, DeclineReason::CardBlocked),
    ];
    for (index, (status, reason)) in cases.into_iter().enumerate() {
        let index = index as u32;
        set_status(&mut credit, 200 + u128::from(index), status);
        let decision = credit
            .authorize(
                RequestId(100 + u128::from(index)),
                &purchase(1_000, 1 + index, vec![token.clone()]),
            )
            .unwrap();
        assert_eq!(decision.decline, Some(reason));
        assert!(decision.accepted_tokens.is_empty());
        assert_eq!(
            credit.decision(decision.authorization_id).unwrap(),
            Some(decision)
        );
    }
    assert_eq!(credit.account(CARDHOLDER).unwrap().outstanding, 0);
    set_status(&mut credit, 210, CardStatus::Active);
    let decision = credit
        .authorize(RequestId(110), &purchase(1_000, 4, vec![token]))
        .unwrap();
    assert!(decision.approved && decision.accepted_tokens.len() == 1);
    check(&mut credit);
}

#[test]
fn an_expired_card_is_declined() {
    let mut credit = memory();
    let mut request = purchase(1_000, 1, vec![]);
    request.today = date(2030, 1, 1);
    let decision = credit.authorize(RequestId(100), &request).unwrap();
    assert_eq!(decision.decline, Some(DeclineReason::CardExpired));
    // The last day is still valid.
    request.today = date(2029, 12, 31);
    assert!(credit.authorize(RequestId(101), &request).unwrap().approved);
    check(&mut credit);
}

#[test]
fn a_purchase_in_another_currency_is_declined() {
    let mut credit = memory();
    let mut request = purchase(1_000, 1, vec![]);
    request.currency = EUR;
    let decision = credit.authorize(RequestId(100), &request).unwrap();
    assert_eq!(
        decision.decline,
        Some(DeclineReason::WrongCurrency {
            expected: JPY,
            got: EUR
        })
    );
    check(&mut credit);
}

fn assert_refused_and_unchanged(
    credit: &mut TestCredit,
    request: &credit::AuthorizationRequest,
) -> CreditError {
    let before = snapshot(credit);
    let error = credit.authorize(RequestId(900), request).unwrap_err();
    assert!(error.is_refusal());
    let batch = credit
        .authorize_batch(&[(RequestId(901), request.clone())])
        .unwrap();
    assert!(batch[0].is_err());
    assert_eq!(snapshot(credit), before, "{error}");
    // Nothing kept the request id either: it is free for a good request.
    assert!(
        credit
            .authorize(RequestId(900), &purchase(1, 1_000, vec![]))
            .is_ok()
    );
    check(credit);
    error
}

#[test]
fn a_zero_amount_is_refused_and_changes_nothing() {
    let mut credit = memory();
    let error = assert_refused_and_unchanged(&mut credit, &purchase(0, 1, vec![mint(1, 5_000)]));
    assert!(matches!(error, CreditError::ZeroAmount));
    assert!(error.to_string().contains("greater than zero"));
}

#[test]
fn an_overflowing_amount_is_refused_and_changes_nothing() {
    let mut credit = memory();
    add_cardholder(&mut credit, 10, "C-RICH", u64::MAX, JPY);
    add_card(&mut credit, 11, "4222222222222222", "C-RICH", &card_key());
    let first = purchase_signed(&card_key(), "4222222222222222", 10, 1, vec![]);
    assert!(credit.authorize(RequestId(100), &first).unwrap().approved);
    let huge = purchase_signed(&card_key(), "4222222222222222", u64::MAX, 2, vec![]);
    let error = assert_refused_and_unchanged(&mut credit, &huge);
    assert!(
        matches!(
            error,
            CreditError::AmountOverflow {
                amount: u64::MAX,
                outstanding: 10
            }
        ),
        "{error}"
    );
}

#[test]
fn an_unknown_card_is_refused_and_changes_nothing() {
    let mut credit = memory();
    let request = purchase_signed(
        &card_key(),
        "4999999999999999",
        1_000,
        1,
        vec![mint(1, 5_000)],
    );
    let error = assert_refused_and_unchanged(&mut credit, &request);
    assert!(
        matches!(error, CreditError::UnknownCard { ref pan_tail } if pan_tail == "9999"),
        "{error}"
    );
    assert!(error.to_string().contains("add_card"));
}

#[test]
fn registration_errors_say_what_to_do_and_change_nothing() {
    let mut credit = memory();
    let before = snapshot(&mut credit);
    let card = credit::NewCard {
        pan: "4333333333333333".into(),
        expiry: date(2029, 12, 31),
        cardholder_id: "C-NOBODY".into(),
        signing_key: *card_key().verifying_key(),
    };
    let error = credit.add_card(RequestId(50), &card).unwrap_err();
    assert!(
        matches!(error, CreditError::UnknownCardholder { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("add_cardholder"));
    let duplicate = credit::NewCard {
        pan: PAN.into(),
        cardholder_id: CARDHOLDER.into(),
        ..card
    };
    assert!(matches!(
        credit.add_card(RequestId(51), &duplicate),
        Err(CreditError::CardExists { .. })
    ));
    assert!(matches!(
        credit.set_card_status(RequestId(52), "4999999999999999", CardStatus::Lost),
        Err(CreditError::UnknownCard { .. })
    ));
    assert!(matches!(
        credit.account("C-NOBODY"),
        Err(CreditError::UnknownCardholder { .. })
    ));
    assert_eq!(snapshot(&mut credit), before);
    // A replayed registration is answered again; another one under its id is refused.
    add_cardholder(&mut credit, 2, CARDHOLDER, LIMIT, JPY);
    let other = credit::NewCardholder {
        cardholder_id: "C-2".into(),
        name: "B".into(),
        credit_limit: 1,
        currency: JPY,
    };
    assert!(matches!(
        credit.add_cardholder(RequestId(2), &other),
        Err(CreditError::IdempotencyConflict { .. })
    ));
    assert_eq!(snapshot(&mut credit), before);
    check(&mut credit);
}

#[test]
fn expired_reflections_withdraw_their_credit() {
    let mut credit = memory();
    let decision = credit
        .authorize(RequestId(100), &purchase(12_000, 1, vec![mint(1, 5_000)]))
        .unwrap();
    assert!(decision.approved);
    // 2027-03-02 is the reflection's last day; it expires when it ends.
    assert_eq!(
        credit.expire(1_804_032_000 - 1).unwrap(),
        0,
        "2027-03-02T23:59:59Z"
    );
    assert_eq!(credit.expire(1_804_032_000).unwrap(), 1);
    assert!(credit.pending_credits(CARDHOLDER).unwrap().is_empty());
    let account = credit.account(CARDHOLDER).unwrap();
    assert_eq!(
        (
            account.outstanding,
            account.pending_credits,
            account.available
        ),
        (12_000, 0, 0)
    );
    assert_eq!(credit.expire(u64::MAX).unwrap(), 0);
    check(&mut credit);
}

#[test]
fn a_batch_commits_once_and_a_refused_request_undoes_only_itself() {
    let mut credit = memory();
    let batch = vec![
        (RequestId(100), purchase(1_000, 1, vec![mint(1, 2_000)])),
        (RequestId(101), purchase(0, 2, vec![mint(2, 3_000)])),
        (RequestId(102), purchase(1_000, 3, vec![mint(1, 2_000)])),
        (RequestId(100), purchase(1_000, 1, vec![])),
    ];
    let answers = credit.authorize_batch(&batch).unwrap();
    assert!(answers[0].as_ref().unwrap().approved);
    assert!(matches!(answers[1], Err(CreditError::ZeroAmount)));
    let third = answers[2].as_ref().unwrap();
    assert_eq!(third.refused_tokens[0].reason, "already used");
    assert!(matches!(
        answers[3],
        Err(CreditError::IdempotencyConflict { .. })
    ));
    let account = credit.account(CARDHOLDER).unwrap();
    assert_eq!(
        (account.outstanding, account.pending_credits),
        (2_000, 2_000)
    );
    check(&mut credit);
}

#[test]
fn a_file_database_keeps_everything_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credit.sqlite");
    let decision = {
        let mut credit = set_up(file_store(&path));
        credit
            .authorize(RequestId(100), &purchase(12_000, 1, vec![mint(1, 5_000)]))
            .unwrap()
    };
    let mut credit = credit::Credit::open(file_store(&path), config(), vec![credit_key()]).unwrap();
    assert_eq!(
        credit.decision(decision.authorization_id).unwrap(),
        Some(decision)
    );
    // The trusted bank was kept: a new token opens.
    let next = credit
        .authorize(RequestId(101), &purchase(100, 2, vec![mint(2, 5_000)]))
        .unwrap();
    assert_eq!(next.accepted_tokens.len(), 1);
    check(&mut credit);
    drop(credit);
    let mut other = config();
    other.credit_id = b"CRED0002".to_vec();
    let error = credit::Credit::open(file_store(&path), other, vec![credit_key()]).unwrap_err();
    assert!(matches!(
        error,
        CreditError::ConfigMismatch { what: "credit id" }
    ));
}
