//! Random settlement days across both organisations (patent Fig. 7, 10, 8, 11), in process: users with cash
//! and pool deposits, purchases with and without tokens, deposits whose token reached the card but whose money
//! went back (the forged reflections), then the statement, the bank's settlement and the reconciliation.
//!
//! Properties: money is conserved across both organisations; every reflection of the statement ends posted,
//! kept for what is left of its deposit, or flagged; exactly the unbacked tokens are flagged; no user is
//! charged more than due, and running the bank's settlement again changes nothing.

use std::sync::Arc;

use bank::{
    AccountKind, Bank, BankConfig, CardRef, CreditContract, DepositRequest, NewCustomer,
    SettlementOrder, Source, account_id,
};
use credit::{
    AuthorizationRequest, Credit, CreditConfig, Mandate, NewCard, NewCardholder,
    ReconciliationOrder, StatementOrder,
};
use interchange::{Deduction, DeductionStatus};
use ledger::{ManualClock, RequestId, SqliteStore};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use token::{BankSigningKey, CreditPrivateKey, Date};

const BANK_ID: &[u8] = b"BANK0001";
const CREDIT_ID: &[u8] = b"CRED0001";
const JPY: u16 = 392;
/// 2026-12-01T00:00:00Z.
const NOW: u64 = 1_796_083_200;
const LIMIT: u64 = 10_000;

fn today() -> Date {
    Date::from_ymd(2026, 12, 1).unwrap()
}

/// One user's day, drawn at random.
#[derive(Debug, Clone)]
struct UserDay {
    cash: u64,
    /// Deposits at the ATM: (amount, from cash?, confirmed? — unconfirmed ones are cancelled after the card
    /// kept the token: a reflection no deposit backs).
    deposits: Vec<(u64, bool, bool)>,
    /// Purchases after the deposits; the first carries every token.
    purchases: Vec<u64>,
}

fn user_day() -> impl Strategy<Value = UserDay> {
    (
        0u64..20_000,
        prop::collection::vec(
            (1u64..9_000, any::<bool>(), prop::bool::weighted(0.8)),
            0..3,
        ),
        prop::collection::vec(1u64..12_000, 0..3),
    )
        .prop_map(|(cash, deposits, purchases)| UserDay {
            cash,
            deposits,
            purchases,
        })
}

struct World {
    bank: Bank<SqliteStore>,
    credit: Credit<SqliteStore>,
    cards: Vec<SigningKey>,
    requests: u128,
}

impl World {
    fn request(&mut self) -> RequestId {
        self.requests += 1;
        RequestId(self.requests)
    }

    fn new(users: usize) -> Self {
        let store = || {
            SqliteStore::open_in_memory()
                .unwrap()
                .with_clock(Arc::new(ManualClock::new(NOW * 1_000_000_000)))
        };
        let bank_key = BankSigningKey::from_slice(&[0x1A; 32]).unwrap();
        let credit_key = CreditPrivateKey::derive(b"settlement day test (TEST ONLY)");
        let config = BankConfig {
            bank_id: BANK_ID.to_vec(),
            currency: JPY,
            token_validity_days: 61,
            deposit_hold_seconds: 300,
        };
        let bank = Bank::open(store(), config, bank_key.clone()).unwrap();
        let credit_config = CreditConfig {
            credit_id: CREDIT_ID.to_vec(),
            currency: JPY,
            settlement_grace_days: 30,
        };
        let credit = Credit::open(store(), credit_config, vec![credit_key.clone()]).unwrap();
        let mut world = World {
            bank,
            credit,
            cards: Vec::new(),
            requests: 0,
        };
        let contract = CreditContract {
            credit_id: CREDIT_ID.to_vec(),
            hpke_key: credit_key.public_key().clone(),
            valid_until: Date::from_ymd(2030, 3, 31).unwrap(),
            active: true,
        };
        let request = world.request();
        world.bank.add_contract(request, &contract).unwrap();
        let request = world.request();
        world
            .credit
            .trust_bank(request, BANK_ID, *bank_key.verifying_key())
            .unwrap();
        for user in 0..users {
            world.add_user(user);
        }
        world
    }

    fn add_user(&mut self, user: usize) {
        let customer = NewCustomer {
            user_id: user_id(user),
            name: format!("User {user}"),
            account_number: account(user),
            currency: JPY,
        };
        let request = self.request();
        self.bank.add_customer(request, &customer).unwrap();
        let request = self.request();
        let holder = NewCardholder {
            cardholder_id: holder_id(user),
            name: customer.name.clone(),
            credit_limit: LIMIT,
            currency: JPY,
        };
        self.credit.add_cardholder(request, &holder).unwrap();
        let card = SigningKey::from_slice(&Sha256::digest(format!("card {user}"))).unwrap();
        let request = self.request();
        let new_card = NewCard {
            pan: pan(user),
            expiry: Date::from_ymd(2030, 12, 31).unwrap(),
            cardholder_id: holder_id(user),
            signing_key: *card.verifying_key(),
        };
        self.credit.add_card(request, &new_card).unwrap();
        let mandate = Mandate {
            bank_id: BANK_ID.to_vec(),
            user_id: user_id(user),
            account_number: account(user),
            mandate_id: format!("M-{user}"),
        };
        let request = self.request();
        self.credit
            .set_mandate(request, &holder_id(user), &mandate)
            .unwrap();
        self.cards.push(card);
    }

    /// The user's day before settlement; answers the tokens whose deposit was cancelled and that the credit
    /// system reflected.
    fn live(&mut self, user: usize, day: &UserDay) -> Vec<[u8; 16]> {
        if day.cash > 0 {
            let request = self.request();
            self.bank
                .cash_in(request, &user_id(user), day.cash)
                .unwrap();
        }
        let mut tokens = Vec::new();
        let mut unbacked = Vec::new();
        for &(amount, from_cash, confirmed) in &day.deposits {
            let request = self.request();
            let deposit = DepositRequest {
                user_id: user_id(user),
                credit_id: CREDIT_ID.to_vec(),
                amount,
                currency: JPY,
                source: if from_cash {
                    Source::Cash
                } else {
                    Source::PersonalAccount
                },
                card: CardRef {
                    pan: pan(user),
                    card_binding: binding(&self.cards[user]),
                },
                today: today(),
                now_unix_seconds: NOW,
            };
            let Ok(taken) = self.bank.deposit(request, &deposit) else {
                continue; // not enough in the personal account: the ATM refuses, nothing happens
            };
            let request = self.request();
            if confirmed {
                self.bank.confirm_deposit(request, &taken.token_id).unwrap();
            } else {
                self.bank.cancel_deposit(request, &taken.token_id).unwrap();
                unbacked.push(taken.token_id);
            }
            tokens.push(taken.token);
        }
        let mut flagged = Vec::new();
        for (atc, &amount) in (1u32..).zip(&day.purchases) {
            let presented = if atc == 1 {
                std::mem::take(&mut tokens)
            } else {
                Vec::new()
            };
            let authorization = signed(&self.cards[user], &pan(user), amount, atc, presented);
            let request = self.request();
            let decision = self.credit.authorize(request, &authorization).unwrap();
            flagged.extend(
                decision
                    .accepted_tokens
                    .iter()
                    .map(|t| t.token_id)
                    .filter(|id| unbacked.contains(id)),
            );
        }
        flagged
    }
}

fn user_id(user: usize) -> String {
    format!("U-{user:04}")
}

fn holder_id(user: usize) -> String {
    format!("CH-{user:04}")
}

fn account(user: usize) -> String {
    format!("0001-234-{user:07}")
}

fn pan(user: usize) -> String {
    format!("41111111{user:08}")
}

fn binding(card: &SigningKey) -> [u8; 32] {
    Sha256::digest(card.verifying_key().to_sec1_point(false).as_bytes()).into()
}

fn signed(
    card: &SigningKey,
    pan: &str,
    amount: u64,
    atc: u32,
    tokens: Vec<Vec<u8>>,
) -> AuthorizationRequest {
    let nonce: [u8; 16] = Sha256::digest(atc.to_be_bytes())[..16].try_into().unwrap();
    let digests: Vec<[u8; 32]> = tokens.iter().map(|t| Sha256::digest(t).into()).collect();
    let presentation = apdu_spec::credit::Presentation {
        nonce: &nonce,
        amount,
        currency: JPY,
    };
    let message = apdu_spec::credit::signed_message(&presentation, atc, &digests);
    let signature: Signature = card.sign(&message);
    AuthorizationRequest {
        pan: pan.into(),
        nonce,
        amount,
        currency: JPY,
        atc,
        tokens,
        signature: signature.to_bytes().into(),
        merchant: "Tokyo Books".into(),
        today: today(),
        now_unix_seconds: NOW + 3_600,
    }
}

/// The user's money at the bank: personal account (available) and pool.
fn bank_money(world: &mut World, user: usize) -> u64 {
    let balances = world.bank.balances(&user_id(user)).unwrap();
    balances.personal + balances.pool
}

fn statement(world: &mut World) -> Vec<Deduction> {
    let order = StatementOrder {
        message_id: "ST-2027-01".into(),
        bank_id: BANK_ID.to_vec(),
        collection_date: Date::from_ymd(2027, 1, 10).unwrap(),
    };
    let mut run = world.credit.begin_statement(&order, NOW).unwrap();
    run.collect_all(3, |_, _| Ok::<_, credit::CreditError>(()))
        .unwrap();
    run.finish().unwrap();
    world
        .credit
        .statement_items("ST-2027-01", "", 1_000)
        .unwrap()
}

fn settle(world: &mut World, deductions: &[Deduction]) -> Vec<DeductionStatus> {
    let order = SettlementOrder {
        message_id: "ST-2027-01".into(),
        credit_id: CREDIT_ID.to_vec(),
        collection_date: Date::from_ymd(2027, 1, 10).unwrap(),
        currency: JPY,
    };
    let mut run = world.bank.begin_settlement(&order, NOW).unwrap();
    let mut statuses = Vec::new();
    for chunk in deductions.chunks(2) {
        statuses.extend(run.settle(chunk).unwrap());
    }
    run.finish().unwrap();
    statuses
}

fn posted(account: Option<ledger::Account>) -> (u128, u128) {
    let account = account.unwrap();
    (account.debits_posted, account.credits_posted)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_settlement_day_conserves_money_and_settles_every_reflection(
        days in prop::collection::vec(user_day(), 1..5)
    ) {
        let mut world = World::new(days.len());
        let mut expected_flagged = Vec::new();
        for (user, day) in days.iter().enumerate() {
            expected_flagged.extend(world.live(user, day));
        }
        let before: Vec<u64> = (0..days.len()).map(|user| bank_money(&mut world, user)).collect();
        let owed: Vec<u64> = (0..days.len())
            .map(|user| world.credit.account(&holder_id(user)).unwrap().outstanding)
            .collect();

        let deductions = statement(&mut world);
        prop_assert_eq!(deductions.len(), owed.iter().filter(|&&o| o > 0).count());
        let statuses = settle(&mut world, &deductions);
        // Running the same file again answers the same and takes nothing more.
        prop_assert_eq!(&settle(&mut world, &deductions), &statuses);

        let collected: u64 = statuses.iter().map(|s| s.from_pool + s.from_personal).sum();
        let order = ReconciliationOrder {
            statement: "ST-2027-01".into(),
            bank_id: BANK_ID.to_vec(),
            notice_total: collected,
        };
        let mut run = world.credit.begin_reconciliation(&order).unwrap();
        let checked = run.check(statuses.clone()).unwrap();
        run.check_total().unwrap();
        run.reconcile(&checked).unwrap();
        let summary = run.finish().unwrap();

        // Money: what left the users at the bank reached the credit company's account there, and the credit
        // company booked exactly that as received.
        let after: Vec<u64> = (0..days.len()).map(|user| bank_money(&mut world, user)).collect();
        let taken: u64 = before.iter().zip(&after).map(|(b, a)| b - a).sum();
        prop_assert_eq!(taken, collected);
        let company = world.bank.ledger().account(account_id(AccountKind::CreditCompany, JPY, 1)).unwrap();
        let (debits, credits) = posted(company);
        prop_assert_eq!(credits - debits, u128::from(collected));
        prop_assert_eq!(summary.collected, collected);

        // Each user: charged at most what was due, and owes exactly what was not collected.
        for (user, due) in owed.iter().enumerate() {
            let status = statuses.iter().zip(&deductions).find(|(_, d)| d.user_id == user_id(user));
            let collected = status.map_or(0, |(s, _)| s.from_pool + s.from_personal);
            prop_assert!(collected <= *due);
            prop_assert_eq!(before[user] - after[user], collected);
            let account = world.credit.account(&holder_id(user)).unwrap();
            prop_assert_eq!(account.outstanding, due - collected);
        }

        // Reflections: exactly the unbacked ones flagged; every listed one posted, kept or flagged.
        let mut flagged: Vec<[u8; 16]> = summary.flagged.iter().map(|f| f.token_id).collect();
        flagged.sort_unstable();
        let listed: Vec<[u8; 16]> = deductions.iter().flat_map(|d| d.token_ids.clone()).collect();
        let mut expected: Vec<[u8; 16]> = expected_flagged.into_iter().filter(|id| listed.contains(id)).collect();
        expected.sort_unstable();
        prop_assert_eq!(flagged, expected);
        let settled = summary.reflections_posted + summary.flagged.len() as u64
            + statuses.iter().flat_map(|s| &s.tokens).filter(|t| t.confirmed && t.drawn == 0).count() as u64;
        prop_assert_eq!(settled, listed.len() as u64);

        world.bank.ledger().check_invariants().unwrap();
        world.credit.check_invariants().unwrap();
    }
}
