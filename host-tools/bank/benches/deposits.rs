//! Deposits per second on one core, on a durable file database (WAL, synchronous=FULL): the mint alone (the
//! bound the cryptography sets), one commit per deposit (hold + token + record), one commit per batch, and the
//! whole ATM round (deposit, then confirm: two commits). Prints a table; no timing is asserted.
//!
//! `flock /tmp/linkcard-cargo.lock cargo bench -p bank --bench deposits` (`BANK_BENCH_DEPOSITS=n` to change the
//! count, default 512).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bank::{
    Bank, BankConfig, CardRef, CreditContract, DepositRequest, NewCustomer, RequestId, Source,
};
use ledger::SqliteStore;
use token::{BankSigningKey, CreditPrivateKey, Date, TokenBody};

const CUSTOMERS: usize = 64;
const BATCH: usize = 64;
const JPY: u16 = 392;

struct Setup {
    bank: Bank<SqliteStore>,
    next_request: u128,
    today: Date,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn request(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    fn deposit(&self, index: usize) -> DepositRequest {
        DepositRequest {
            user_id: format!("U-{:04}", index % CUSTOMERS),
            credit_id: b"CRED0001".to_vec(),
            amount: 1_000 + index as u64 % 7,
            currency: JPY,
            source: if index.is_multiple_of(2) {
                Source::Cash
            } else {
                Source::PersonalAccount
            },
            card: CardRef {
                pan: "4111111111111111".into(),
                card_binding: [0xCB; 32],
            },
            today: self.today,
            now_unix_seconds: now_seconds(),
        }
    }
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn credit_key() -> CreditPrivateKey {
    CreditPrivateKey::derive(b"linkcard bank bench: credit HPKE key (TEST ONLY)")
}

fn bank_key() -> BankSigningKey {
    BankSigningKey::from_slice(&[0x1A; 32]).expect("a valid scalar")
}

fn set_up() -> Setup {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(dir.path().join("bank.sqlite")).expect("the database");
    let config = BankConfig {
        bank_id: b"BANK0001".to_vec(),
        currency: JPY,
        token_validity_days: 61,
        deposit_hold_seconds: 3_600,
    };
    let bank = Bank::open(store, config, bank_key()).expect("the bank");
    let mut setup = Setup {
        bank,
        next_request: 0,
        today: Date::from_ymd(2026, 12, 1).expect("a day"),
        _dir: dir,
    };
    for index in 0..CUSTOMERS {
        let customer = NewCustomer {
            user_id: format!("U-{index:04}"),
            name: "Hanako Yamada".into(),
            account_number: format!("0001-234-{index:07}"),
            currency: JPY,
        };
        let (add, cash) = (setup.request(), setup.request());
        setup.bank.add_customer(add, &customer).expect("customer");
        setup
            .bank
            .cash_in(cash, &customer.user_id, 1 << 40)
            .expect("cash in");
    }
    let contract = CreditContract {
        credit_id: b"CRED0001".to_vec(),
        hpke_key: credit_key().public_key().clone(),
        valid_until: Date::from_ymd(2030, 3, 31).expect("a day"),
        active: true,
    };
    let request = setup.request();
    setup
        .bank
        .add_contract(request, &contract)
        .expect("contract");
    setup
}

fn mint_only(count: usize) -> Duration {
    let (key, credit) = (bank_key(), credit_key());
    let mut rng = token::os_rng().expect("entropy");
    let start = Instant::now();
    for index in 0..count {
        let mut token_id = [0u8; 16];
        token_id[..8].copy_from_slice(&(index as u64).to_be_bytes());
        let body = TokenBody {
            user_name: "Hanako Yamada".into(),
            user_id: "U-0001".into(),
            sum: 1_000,
            currency: JPY,
            deposit_date: Date::from_ymd(2026, 12, 1).expect("a day"),
            token_id,
            valid_from: Date::from_ymd(2026, 12, 1).expect("a day"),
            valid_until: Date::from_ymd(2027, 1, 31).expect("a day"),
            bank_id: b"BANK0001".to_vec(),
            bank_account: "0001-234-0000001".into(),
            credit_id: b"CRED0001".to_vec(),
            pan: "4111111111111111".into(),
            card_binding: [0xCB; 32],
        };
        std::hint::black_box(
            token::mint(&body, &key, credit.public_key(), &mut rng).expect("mint"),
        );
    }
    start.elapsed()
}

fn one_commit_each(count: usize, confirm: bool) -> Duration {
    let mut setup = set_up();
    let start = Instant::now();
    for index in 0..count {
        let (request, deposit) = (setup.request(), setup.deposit(index));
        let taken = setup.bank.deposit(request, &deposit).expect("deposit");
        if confirm {
            let request = setup.request();
            setup
                .bank
                .confirm_deposit(request, &taken.token_id)
                .expect("confirm");
        }
    }
    let elapsed = start.elapsed();
    setup.bank.ledger().check_invariants().expect("invariants");
    elapsed
}

fn batched(count: usize) -> Duration {
    let mut setup = set_up();
    let mut elapsed = Duration::ZERO;
    for first in (0..count).step_by(BATCH) {
        let batch: Vec<_> = (first..count.min(first + BATCH))
            .map(|index| (setup.request(), setup.deposit(index)))
            .collect();
        let start = Instant::now();
        let answers = setup.bank.deposit_batch(&batch).expect("batch");
        elapsed += start.elapsed();
        assert!(answers.iter().all(Result::is_ok));
    }
    setup.bank.ledger().check_invariants().expect("invariants");
    elapsed
}

fn main() {
    let count: usize = std::env::var("BANK_BENCH_DEPOSITS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(512)
        .clamp(1, 100_000);
    println!(
        "deposits on one core, file SQLite (WAL, synchronous=FULL), {count} deposits per row\n"
    );
    println!(
        "{:<44} {:>10} {:>12} {:>10}",
        "variant", "seconds", "deposits/s", "µs each"
    );
    let rows = [
        ("mint only (2 ECDSA signs + HPKE seal)", mint_only(count)),
        ("deposit, one commit each", one_commit_each(count, false)),
        (
            &*format!("deposit, one commit per batch of {BATCH}"),
            batched(count),
        ),
        (
            "deposit + confirm, two commits each",
            one_commit_each(count, true),
        ),
    ];
    for (name, elapsed) in rows {
        let seconds = elapsed.as_secs_f64();
        println!(
            "{name:<44} {seconds:>10.3} {:>12.0} {:>10.1}",
            count as f64 / seconds,
            seconds * 1e6 / count as f64
        );
    }
}
