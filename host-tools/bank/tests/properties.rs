//! Random sequences of cash-ins, deposits, confirms, cancels, replays and expiries against a model: balances
//! follow the model, money is conserved (only cash-ins and confirmed cash deposits add to customers' money),
//! every hold ends confirmed, cancelled or expired, and the ledger's invariants hold after every step.

mod common;

use bank::{Bank, BankError, DepositState, RequestId, Source};
use common::*;
use ledger::{PendingState, SqliteStore};
use proptest::prelude::*;

const USERS: [&str; 3] = ["U-1", "U-2", "U-3"];

#[derive(Debug, Clone)]
enum Step {
    CashIn {
        user: usize,
        amount: u64,
    },
    Deposit {
        user: usize,
        amount: u64,
        from_personal: bool,
    },
    Confirm {
        deposit: usize,
    },
    Cancel {
        deposit: usize,
    },
    ReplayDeposit {
        deposit: usize,
    },
    Wait {
        seconds: u64,
    },
    Expire,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0..USERS.len(), 1..5_000u64).prop_map(|(user, amount)| Step::CashIn { user, amount }),
        3 => (0..USERS.len(), 0..3_000u64, any::<bool>())
            .prop_map(|(user, amount, from_personal)| Step::Deposit { user, amount, from_personal }),
        2 => (0..64usize).prop_map(|deposit| Step::Confirm { deposit }),
        1 => (0..64usize).prop_map(|deposit| Step::Cancel { deposit }),
        1 => (0..64usize).prop_map(|deposit| Step::ReplayDeposit { deposit }),
        1 => (0..(HOLD * 2)).prop_map(|seconds| Step::Wait { seconds }),
        1 => Just(Step::Expire),
    ]
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Money {
    personal_posted: u64,
    personal_held: u64,
    pool: u64,
    pool_held: u64,
}

#[derive(Debug, Clone)]
struct Held {
    request: RequestId,
    request_body: bank::DepositRequest,
    token: Vec<u8>,
    token_id: [u8; 16],
    user: usize,
    amount: u64,
    source: Source,
    hold_ends: u64,
    state: DepositState,
}

struct World {
    bank: Bank<SqliteStore>,
    clock: Clock,
    requests: Requests,
    now: u64,
    money: [Money; 3],
    deposits: Vec<Held>,
    cash_taken: u64,
}

impl World {
    fn new() -> Self {
        let (mut bank, clock) = bank_in_memory();
        let mut requests = Requests::default();
        for user in USERS {
            bank.add_customer(requests.next(), &customer(user)).unwrap();
        }
        bank.add_contract(requests.next(), &contract()).unwrap();
        Self {
            bank,
            clock,
            requests,
            now: NOW,
            money: [Money::default(); 3],
            deposits: Vec::new(),
            cash_taken: 0,
        }
    }

    /// Releases a hold in the model: `posted` moves it into the pool, otherwise back to its source.
    fn release(&mut self, index: usize, state: DepositState) {
        let held = &mut self.deposits[index];
        held.state = state;
        let money = &mut self.money[held.user];
        money.pool_held -= held.amount;
        if held.source == Source::PersonalAccount {
            money.personal_held -= held.amount;
        }
        if state == DepositState::Confirmed {
            money.pool += held.amount;
            if held.source == Source::PersonalAccount {
                money.personal_posted -= held.amount;
            } else {
                self.cash_taken += held.amount;
            }
        }
    }

    fn deposit(&mut self, user: usize, amount: u64, source: Source) {
        let request = self.requests.next();
        let body = bank::DepositRequest {
            now_unix_seconds: self.now,
            ..deposit(USERS[user], amount, source)
        };
        let money = self.money[user];
        let available = money.personal_posted - money.personal_held;
        match self.bank.deposit(request, &body) {
            Ok(taken) => {
                assert!(amount > 0 && (source == Source::Cash || amount <= available));
                let money = &mut self.money[user];
                money.pool_held += amount;
                if source == Source::PersonalAccount {
                    money.personal_held += amount;
                }
                let hold_ends = self.now + HOLD;
                self.deposits.push(Held {
                    request,
                    request_body: body,
                    token: taken.token,
                    token_id: taken.token_id,
                    user,
                    amount,
                    source,
                    hold_ends,
                    state: DepositState::Held,
                });
            }
            Err(BankError::AmountZero) => assert_eq!(amount, 0),
            Err(BankError::InsufficientFunds {
                available: said, ..
            }) => {
                assert!(
                    source == Source::PersonalAccount && amount > available && said == available
                );
            }
            Err(other) => panic!("unexpected refusal: {other}"),
        }
    }

    fn resolve(&mut self, index: usize, confirm: bool) {
        let Some(index) = index.checked_rem(self.deposits.len()) else {
            return;
        };
        let held = self.deposits[index].clone();
        let request = self.requests.next();
        let answer = if confirm {
            self.bank.confirm_deposit(request, &held.token_id)
        } else {
            self.bank.cancel_deposit(request, &held.token_id)
        };
        let timed_out = self.now >= held.hold_ends;
        match (held.state, confirm, timed_out) {
            (DepositState::Held, true, false) => {
                answer.unwrap();
                self.release(index, DepositState::Confirmed);
            }
            (DepositState::Held, true, true) | (DepositState::Expired, true, _) => {
                assert!(
                    matches!(answer, Err(BankError::DepositExpired { .. })),
                    "{answer:?}"
                );
            }
            (DepositState::Held, false, false) => {
                answer.unwrap();
                self.release(index, DepositState::Cancelled);
            }
            (DepositState::Held, false, true) => {
                // The cancel expires every hold due by this one's end, this one included.
                answer.unwrap();
                self.expire_until(held.hold_ends);
            }
            (DepositState::Confirmed, true, _)
            | (DepositState::Cancelled | DepositState::Expired, false, _) => answer.unwrap(),
            (DepositState::Confirmed, false, _) => {
                assert!(
                    matches!(answer, Err(BankError::DepositConfirmed { .. })),
                    "{answer:?}"
                )
            }
            (DepositState::Cancelled, true, _) => {
                assert!(
                    matches!(answer, Err(BankError::DepositCancelled { .. })),
                    "{answer:?}"
                )
            }
        }
    }

    fn expire_until(&mut self, now: u64) -> usize {
        let due: Vec<usize> = (0..self.deposits.len())
            .filter(|&i| {
                self.deposits[i].state == DepositState::Held && self.deposits[i].hold_ends <= now
            })
            .collect();
        for &index in &due {
            self.release(index, DepositState::Expired);
        }
        due.len()
    }

    fn apply(&mut self, step: &Step) {
        match *step {
            Step::CashIn { user, amount } => {
                let balances = self
                    .bank
                    .cash_in(self.requests.next(), USERS[user], amount)
                    .unwrap();
                self.money[user].personal_posted += amount;
                self.cash_taken += amount;
                assert_eq!(
                    balances.personal,
                    self.money[user].personal_posted - self.money[user].personal_held
                );
            }
            Step::Deposit {
                user,
                amount,
                from_personal,
            } => {
                let source = if from_personal {
                    Source::PersonalAccount
                } else {
                    Source::Cash
                };
                self.deposit(user, amount, source);
            }
            Step::Confirm { deposit } => self.resolve(deposit, true),
            Step::Cancel { deposit } => self.resolve(deposit, false),
            Step::ReplayDeposit { deposit } => {
                let Some(index) = deposit.checked_rem(self.deposits.len()) else {
                    return;
                };
                let held = self.deposits[index].clone();
                let replay = self.bank.deposit(held.request, &held.request_body).unwrap();
                assert_eq!((replay.token, replay.token_id), (held.token, held.token_id));
            }
            Step::Wait { seconds } => {
                self.now += seconds;
                self.clock.set(self.now);
            }
            Step::Expire => {
                let expected = self.expire_until(self.now);
                assert_eq!(self.bank.expire_holds(self.now).unwrap(), expected);
            }
        }
    }

    fn check(&mut self) {
        let mut pool_total = 0;
        for (user, money) in USERS.iter().zip(self.money) {
            let balances = self.bank.balances(user).unwrap();
            assert_eq!(
                balances.personal,
                money.personal_posted - money.personal_held,
                "{user}"
            );
            assert_eq!(
                (balances.pool, balances.pool_held),
                (money.pool, money.pool_held),
                "{user}"
            );
            pool_total += money.pool;
            let mut states: Vec<_> = self
                .bank
                .deposits_of(user)
                .unwrap()
                .iter()
                .map(|d| (d.token_id, d.state))
                .collect();
            let mut expected: Vec<_> = self
                .deposits
                .iter()
                .filter(|d| USERS[d.user] == *user)
                .map(|d| (d.token_id, d.state))
                .collect();
            states.sort_by_key(|(id, _)| *id);
            expected.sort_by_key(|(id, _)| *id);
            assert_eq!(states, expected);
        }
        assert_eq!(self.bank.pool_total(JPY).unwrap(), pool_total);
        self.bank.ledger().check_invariants().unwrap();
        // Conservation: what customers hold (posted) is exactly the cash the bank took in.
        let accounts = self.bank.ledger().accounts().unwrap();
        let net = |code| -> i128 {
            accounts
                .iter()
                .filter(|a| a.code == code)
                .map(|a| a.credits_posted as i128 - a.debits_posted as i128)
                .sum()
        };
        assert_eq!(net(1), -(self.cash_taken as i128));
        assert_eq!(net(2) + net(3), self.cash_taken as i128);
        assert_eq!(net(4), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn money_is_conserved_and_every_hold_ends(steps in proptest::collection::vec(step(), 1..30)) {
        let mut world = World::new();
        for step in &steps {
            world.apply(step);
            world.check();
        }
        // In the end every hold is resolved: past the last hold, expiry takes the rest.
        world.now += HOLD;
        world.clock.set(world.now);
        let expected = world.expire_until(world.now);
        prop_assert_eq!(world.bank.expire_holds(world.now).unwrap(), expected);
        world.check();
        prop_assert!(world.deposits.iter().all(|d| d.state != DepositState::Held));
        let transfers = world.bank.ledger().transfers().unwrap();
        prop_assert!(transfers.iter().all(|(_, state)| *state != Some(PendingState::Pending)));
        for user in USERS {
            prop_assert_eq!(world.bank.balances(user).unwrap().pool_held, 0);
        }
    }
}
