//! Random sequences of authorizations — some with fresh tokens, some reusing a token, some replaying an earlier
//! request, some refused — checked against a model: money is conserved, the available credit never goes below
//! zero, and after `expire(∞)` every pending credit has ended.

mod common;

use common::*;
use credit::{CreditError, Decision};
use ledger::{PendingState, RequestId, TransferKind};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Step {
    /// 0 is refused (zero amount).
    amount: u64,
    /// 0: no token; 1: a fresh one; 2: one used before (refused).
    token: u8,
    token_sum: u64,
    /// Replay the previous authorization under its request id instead.
    replay: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop_oneof![Just(0u64), 1u64..20_000],
        0u8..3,
        1u64..10_000,
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(amount, token, token_sum, replay)| Step {
            amount,
            token,
            token_sum,
            replay,
        })
}

#[derive(Default)]
struct Model {
    outstanding: u64,
    pending: u64,
    accepted_tokens: usize,
    atc: u32,
    tokens_minted: u64,
    used_token: Option<Vec<u8>>,
    last: Option<(RequestId, credit::AuthorizationRequest, Decision)>,
}

fn run_step(credit: &mut TestCredit, model: &mut Model, index: usize, step: &Step) {
    if let (true, Some((request_id, request, decision))) = (step.replay, model.last.clone()) {
        let before = snapshot(credit);
        assert_eq!(credit.authorize(request_id, &request).unwrap(), decision);
        assert_eq!(snapshot(credit), before);
        return;
    }
    model.atc += 1;
    let mut tokens = Vec::new();
    let mut fresh_sum = 0;
    match (step.token, &model.used_token) {
        (1, _) | (2, None) => {
            model.tokens_minted += 1;
            let token = mint(model.tokens_minted, step.token_sum);
            fresh_sum = step.token_sum;
            tokens.push(token);
        }
        (2, Some(used)) => tokens.push(used.clone()),
        _ => {}
    }
    let request_id = RequestId(1_000 + index as u128);
    let request = purchase(step.amount, model.atc, tokens.clone());
    let available = LIMIT + model.pending - model.outstanding;
    match credit.authorize(request_id, &request) {
        Err(CreditError::ZeroAmount) => assert_eq!(step.amount, 0),
        Err(error) => panic!("{error}"),
        Ok(decision) => {
            assert_eq!(decision.available_before, available);
            assert_eq!(decision.accepted_tokens.len(), usize::from(fresh_sum > 0));
            assert_eq!(
                decision.refused_tokens.len(),
                tokens.len() - usize::from(fresh_sum > 0)
            );
            let with_tokens = available + fresh_sum;
            assert_eq!(decision.approved, step.amount <= with_tokens);
            model.pending += fresh_sum;
            model.accepted_tokens += usize::from(fresh_sum > 0);
            if decision.approved {
                model.outstanding += step.amount;
            }
            assert_eq!(
                decision.available_after,
                LIMIT + model.pending - model.outstanding
            );
            if let Some(token) = tokens.pop() {
                model.used_token = Some(token);
            }
            model.last = Some((request_id, request, decision));
        }
    }
    let account = credit.account(CARDHOLDER).unwrap();
    assert_eq!(
        (account.outstanding, account.pending_credits),
        (model.outstanding, model.pending)
    );
    assert_eq!(account.available, LIMIT + model.pending - model.outstanding);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn random_authorizations_keep_the_books(steps in proptest::collection::vec(step(), 1..14)) {
        let mut credit = set_up(memory_store());
        let mut model = Model::default();
        for (index, step) in steps.iter().enumerate() {
            run_step(&mut credit, &mut model, index, step);
        }
        check(&mut credit);
        assert_eq!(credit.pending_credits(CARDHOLDER).unwrap().len(), model.accepted_tokens);

        assert_eq!(credit.expire(u64::MAX).unwrap(), model.accepted_tokens);
        assert!(credit.pending_credits(CARDHOLDER).unwrap().is_empty());
        let transfers = credit.ledger().transfers().unwrap();
        for (transfer, state) in &transfers {
            if matches!(transfer.kind, TransferKind::Pending { .. }) {
                assert!(matches!(state, Some(PendingState::Posted | PendingState::Voided | PendingState::Expired)));
            }
        }
        let account = credit.account(CARDHOLDER).unwrap();
        assert_eq!(account.pending_credits, 0);
        assert_eq!(account.available, LIMIT.saturating_sub(model.outstanding));
        // Money is conserved: in every currency debits equal credits (and every balance is its transfers' sum).
        let accounts = credit.ledger().accounts().unwrap();
        let debits: u128 = accounts.iter().map(|a| a.debits_posted + a.debits_pending).sum();
        let credits: u128 = accounts.iter().map(|a| a.credits_posted + a.credits_pending).sum();
        assert_eq!(debits, credits);
        check(&mut credit);
    }
}
