//! Properties over random sequences of account openings, transfers, chains, posts, voids, expiries, replays and
//! batches: money is conserved, every transfer balances, balances are the sums of the transfers, a refusal
//! changes nothing, a replay gets the first answer, and after `expire_pending(∞)` no transfer is left pending.

mod common;

use std::collections::HashMap;

use common::*;
use ledger::{
    AccountFlags, AccountId, Answer, Currency, LedgerError, NewAccount, NewTransfer, PendingState,
    Request, RequestId, Transfer, TransferKind,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Open {
        id: AccountId,
        currency: Currency,
        flags: u8,
    },
    Transfers(Vec<Move>),
    Advance(u64),
    Expire,
    /// Submits the request made `back` steps ago again, under its id.
    Replay {
        back: usize,
    },
    /// Several requests in one commit.
    Batch(Vec<Vec<Move>>),
}

#[derive(Debug, Clone)]
enum Move {
    Single {
        debit: AccountId,
        credit: AccountId,
        amount: u128,
    },
    Pending {
        debit: AccountId,
        credit: AccountId,
        amount: u128,
        lifetime: u64,
    },
    /// Posts `percent` % (maybe more than 100) of a pending transfer picked among those made so far.
    Post {
        pick: usize,
        percent: u128,
    },
    Void {
        pick: usize,
    },
}

fn amount() -> impl Strategy<Value = u128> {
    prop_oneof![30 => 1u128..500, 1 => Just(0), 1 => Just(u128::MAX / 2), 1 => Just(u128::MAX)]
}

/// Mostly the accounts opened at the start (1 to 4), sometimes one opened later or never (5 to 7).
fn account_id() -> impl Strategy<Value = AccountId> {
    prop_oneof![4 => 1u128..=4, 1 => 5u128..=7]
}

fn one_move() -> impl Strategy<Value = Move> {
    prop_oneof![
        3 => (account_id(), account_id(), amount()).prop_map(|(debit, credit, amount)| Move::Single { debit, credit, amount }),
        3 => (account_id(), account_id(), amount(), 0u64..2_000)
            .prop_map(|(debit, credit, amount, lifetime)| Move::Pending { debit, credit, amount, lifetime }),
        2 => (any::<usize>(), 0u128..=120).prop_map(|(pick, percent)| Move::Post { pick, percent }),
        1 => any::<usize>().prop_map(|pick| Move::Void { pick }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (prop_oneof![4 => 5u128..=7, 1 => 1u128..=4], prop_oneof![Just(EUR), Just(JPY)], prop_oneof![6 => 0u8..3, 1 => Just(3)])
            .prop_map(|(id, currency, flags)| Step::Open { id, currency, flags }),
        5 => one_move().prop_map(|one| Step::Transfers(vec![one])),
        2 => proptest::collection::vec(one_move(), 2..4).prop_map(Step::Transfers),
        1 => (0u64..1_500).prop_map(Step::Advance),
        1 => Just(Step::Expire),
        1 => (1usize..10).prop_map(|back| Step::Replay { back }),
        1 => proptest::collection::vec(proptest::collection::vec(one_move(), 1..3), 1..5).prop_map(Step::Batch),
    ]
}

struct Run {
    ledger: TestLedger,
    clock: ledger::ManualClock,
    now: u64,
    next_id: u128,
    /// Every request submitted, with its id and the answer it got (refusals were not recorded).
    history: Vec<(RequestId, Request, Option<Answer>)>,
}

impl Run {
    fn fresh_id(&mut self) -> u128 {
        self.next_id += 1;
        self.next_id
    }

    fn request_for(&mut self, moves: &[Move]) -> Request {
        let pendings: Vec<_> = snapshot(&mut self.ledger)
            .transfers
            .into_iter()
            .filter(|(t, _)| matches!(t.kind, TransferKind::Pending { .. }))
            .collect();
        let chain = moves
            .iter()
            .map(|one| {
                let id = self.fresh_id();
                self.new_transfer(id, one, &pendings)
            })
            .collect();
        Request::CreateTransfers(chain)
    }

    fn new_transfer(
        &self,
        id: u128,
        one: &Move,
        pendings: &[(Transfer, Option<PendingState>)],
    ) -> NewTransfer {
        let eur = |debit, credit, amount, kind| NewTransfer {
            currency: EUR,
            ..transfer(id, debit, credit, amount, kind)
        };
        match *one {
            Move::Single {
                debit,
                credit,
                amount,
            } => eur(debit, credit, amount, TransferKind::Single),
            Move::Pending {
                debit,
                credit,
                amount,
                lifetime,
            } => eur(
                debit,
                credit,
                amount,
                TransferKind::Pending {
                    expires_at: self.now + lifetime,
                },
            ),
            Move::Post { pick, percent } => match pick_pending(pendings, pick) {
                Some(pending) => {
                    NewTransfer::post(id, &pending, (pending.amount / 100).saturating_mul(percent))
                }
                None => eur(
                    1,
                    2,
                    1,
                    TransferKind::PostPending {
                        pending_id: pick as u128,
                    },
                ),
            },
            Move::Void { pick } => match pick_pending(pendings, pick) {
                Some(pending) => NewTransfer::void(id, &pending),
                None => eur(
                    1,
                    2,
                    1,
                    TransferKind::VoidPending {
                        pending_id: pick as u128,
                    },
                ),
            },
        }
    }

    fn submit(&mut self, request_id: RequestId, request: Request) -> Result<(), TestCaseError> {
        let before = snapshot(&mut self.ledger);
        let answer = self.ledger.submit(request_id, &request);
        match &answer {
            Err(error) => {
                prop_assert!(error.is_refusal(), "{:?}", error);
                prop_assert_eq!(
                    snapshot(&mut self.ledger),
                    before,
                    "a refusal changes nothing"
                );
            }
            Ok(Answer::Transfers(transfers)) => {
                let Request::CreateTransfers(asked) = &request else {
                    panic!("answer to {request:?}")
                };
                prop_assert_eq!(
                    transfers.iter().map(|t| t.as_new()).collect::<Vec<_>>(),
                    asked.clone()
                );
            }
            Ok(_) => {}
        }
        self.history.push((request_id, request, answer.ok()));
        Ok(())
    }

    fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        match step {
            Step::Open {
                id,
                currency,
                flags,
            } => {
                let flags = AccountFlags {
                    debits_must_not_exceed_credits: flags & 1 != 0,
                    credits_must_not_exceed_debits: flags & 2 != 0,
                };
                let account = NewAccount {
                    id: *id,
                    currency: *currency,
                    code: 0,
                    flags,
                    user_data: [0; 32],
                };
                let request_id = RequestId(self.fresh_id());
                self.submit(request_id, Request::CreateAccounts(vec![account]))?;
            }
            Step::Transfers(moves) => {
                let request = self.request_for(moves);
                let request_id = RequestId(self.fresh_id());
                self.submit(request_id, request)?;
            }
            Step::Advance(by) => {
                self.now += by;
                self.clock.set(self.now);
            }
            Step::Expire => {
                let request_id = RequestId(self.fresh_id());
                self.submit(request_id, Request::ExpirePending { now: self.now })?;
            }
            Step::Replay { back } => self.replay(*back)?,
            Step::Batch(requests) => self.batch(requests)?,
        }
        Ok(())
    }

    fn replay(&mut self, back: usize) -> Result<(), TestCaseError> {
        let Some((request_id, request, Some(answer))) =
            self.history.iter().rev().nth(back - 1).cloned()
        else {
            return Ok(());
        };
        let before = snapshot(&mut self.ledger);
        prop_assert_eq!(
            self.ledger.submit(request_id, &request).unwrap(),
            answer,
            "a replay gets the first answer"
        );
        prop_assert_eq!(
            snapshot(&mut self.ledger),
            before,
            "a replay changes nothing"
        );
        Ok(())
    }

    fn batch(&mut self, requests: &[Vec<Move>]) -> Result<(), TestCaseError> {
        // The requests are built from the state before the batch: picks may name transfers the batch resolves.
        let batch: Vec<_> = requests
            .iter()
            .map(|moves| {
                let request = self.request_for(moves);
                (RequestId(self.fresh_id()), request)
            })
            .collect();
        let answers = self.ledger.submit_batch(&batch).unwrap();
        prop_assert_eq!(answers.len(), batch.len());
        for ((request_id, request), answer) in batch.into_iter().zip(answers) {
            if let Err(error) = &answer {
                prop_assert!(error.is_refusal(), "{:?}", error);
            }
            self.history.push((request_id, request, answer.ok()));
        }
        Ok(())
    }
}

/// Three picks in four among the transfers still pending, the others among all, resolved ones too.
fn pick_pending(pendings: &[(Transfer, Option<PendingState>)], pick: usize) -> Option<Transfer> {
    let open: Vec<_> = pendings
        .iter()
        .filter(|(_, s)| *s == Some(PendingState::Pending))
        .collect();
    let among: Vec<_> = if pick.is_multiple_of(4) || open.is_empty() {
        pendings.iter().collect()
    } else {
        open
    };
    (!among.is_empty()).then(|| among[pick / 4 % among.len()].0)
}

/// Balances recomputed here from the transfers, independently of the ledger's own invariant check.
fn check_balances(ledger: &mut TestLedger) -> Result<(), TestCaseError> {
    let state = snapshot(ledger);
    let mut sums: HashMap<AccountId, [u128; 4]> = HashMap::new();
    for (t, pending_state) in &state.transfers {
        let (posts, reserves) = match t.kind {
            TransferKind::Single | TransferKind::PostPending { .. } => (true, false),
            TransferKind::Pending { .. } => (false, *pending_state == Some(PendingState::Pending)),
            TransferKind::VoidPending { .. } => (false, false),
        };
        let debit = sums.entry(t.debit_account_id).or_default();
        if posts {
            debit[1] += t.amount;
        }
        if reserves {
            debit[0] += t.amount;
        }
        let credit = sums.entry(t.credit_account_id).or_default();
        if posts {
            credit[3] += t.amount;
        }
        if reserves {
            credit[2] += t.amount;
        }
    }
    let mut totals: HashMap<Currency, [u128; 4]> = HashMap::new();
    for account in &state.accounts {
        let stored = [
            account.debits_pending,
            account.debits_posted,
            account.credits_pending,
            account.credits_posted,
        ];
        prop_assert_eq!(
            sums.get(&account.id).copied().unwrap_or_default(),
            stored,
            "account {}",
            account.id
        );
        let total = totals.entry(account.currency).or_default();
        for (sum, balance) in total.iter_mut().zip(stored) {
            // Wrapping is fine here: equal sums modulo 2^128 of the same multiset.
            *sum = sum.wrapping_add(balance);
        }
    }
    for (
        currency,
        [
            debits_pending,
            debits_posted,
            credits_pending,
            credits_posted,
        ],
    ) in totals
    {
        prop_assert_eq!(
            debits_posted,
            credits_posted,
            "posted money is conserved in {:?}",
            currency
        );
        prop_assert_eq!(
            debits_pending,
            credits_pending,
            "pending money is conserved in {:?}",
            currency
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_the_books(steps in proptest::collection::vec(step(), 5..50)) {
        let (ledger, clock) = in_memory();
        let mut run = Run { ledger, clock, now: T0, next_id: 0, history: Vec::new() };
        // A few accounts to start with, so that most transfers have somewhere to go.
        let start = [
            new_account(1, EUR, NO_LIMIT),
            new_account(2, EUR, NO_LIMIT),
            new_account(3, EUR, DEBITS_LIMITED),
            new_account(4, EUR, CREDITS_LIMITED),
        ];
        open(&mut run.ledger, u128::MAX, &start);
        for step in &steps {
            run.step(step)?;
            run.ledger.check_invariants().map_err(|e| TestCaseError::fail(format!("{e}: {e:?}")))?;
            check_balances(&mut run.ledger)?;
        }
        let expired = run.ledger.submit(RequestId(u128::MAX - 1), &Request::ExpirePending { now: u64::MAX });
        prop_assert!(matches!(expired, Ok(Answer::Expired(_))), "{:?}", expired);
        let state = snapshot(&mut run.ledger);
        for (transfer, pending_state) in &state.transfers {
            if matches!(transfer.kind, TransferKind::Pending { .. }) {
                prop_assert!(
                    matches!(pending_state, Some(PendingState::Posted | PendingState::Voided | PendingState::Expired)),
                    "transfer {} ended {:?}", transfer.id, pending_state
                );
            }
        }
        for account in &state.accounts {
            prop_assert_eq!((account.debits_pending, account.credits_pending), (0, 0));
        }
        run.ledger.check_invariants().map_err(|e| TestCaseError::fail(format!("{e}: {e:?}")))?;
        check_balances(&mut run.ledger)?;
    }
}

#[test]
fn the_generator_reaches_every_outcome() {
    // Guards the property above against vacuity: a fixed walk through the same steps sees posts, voids,
    // expiries and refusals of several kinds.
    let (ledger, clock) = in_memory();
    let mut run = Run {
        ledger,
        clock,
        now: T0,
        next_id: 0,
        history: Vec::new(),
    };
    open(
        &mut run.ledger,
        u128::MAX,
        &[new_account(1, EUR, NO_LIMIT), new_account(2, EUR, NO_LIMIT)],
    );
    let steps = [
        Step::Transfers(vec![Move::Pending {
            debit: 1,
            credit: 2,
            amount: 100,
            lifetime: 500,
        }]),
        Step::Transfers(vec![Move::Pending {
            debit: 1,
            credit: 2,
            amount: 100,
            lifetime: 500,
        }]),
        Step::Transfers(vec![Move::Pending {
            debit: 1,
            credit: 2,
            amount: 100,
            lifetime: 500,
        }]),
        Step::Transfers(vec![Move::Post {
            pick: 0,
            percent: 50,
        }]),
        Step::Transfers(vec![Move::Void { pick: 1 }]),
        Step::Transfers(vec![Move::Single {
            debit: 1,
            credit: 2,
            amount: 0,
        }]),
        Step::Advance(600),
        Step::Expire,
        // Pick 8: among all the pending transfers (8 % 4 == 0), the third (8 / 4 == 2), which has expired.
        Step::Transfers(vec![Move::Post {
            pick: 8,
            percent: 10,
        }]),
    ];
    for step in &steps {
        run.step(step).unwrap();
    }
    let states: Vec<_> = snapshot(&mut run.ledger)
        .transfers
        .iter()
        .filter_map(|(_, s)| *s)
        .collect();
    assert_eq!(
        states,
        [
            PendingState::Posted,
            PendingState::Voided,
            PendingState::Expired
        ]
    );
    let refusals = run
        .history
        .iter()
        .filter(|(_, _, answer)| answer.is_none())
        .count();
    assert_eq!(
        refusals, 2,
        "the zero amount and the post of an expired transfer"
    );
    let error = run
        .ledger
        .submit(RequestId(9_999), &run.history.last().unwrap().1.clone())
        .unwrap_err();
    assert!(
        matches!(error, LedgerError::PendingExpired { .. }),
        "{error:?}"
    );
}
