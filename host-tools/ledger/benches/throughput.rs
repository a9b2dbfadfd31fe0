//! Transfers per second on a temporary file database: one durable commit per transfer against group commits of
//! 10, 100 and 1000 requests, each request one transfer from a customer account to one hot pool account.
//! Prints a table; asserts nothing about time. Each run stops after its transfer count or its time budget.
//!
//! `cargo bench -p ledger` (or `cargo run --release -p ledger --bench throughput`)

use std::time::{Duration, Instant};

use ledger::{
    AccountFlags, Currency, Durability, Ledger, NewAccount, NewTransfer, Request, RequestId,
    SqliteStore, TransferKind,
};

const EUR: Currency = Currency(978);
const CUSTOMERS: u128 = 1_000;
const POOL: u128 = 1;
const BUDGET: Duration = Duration::from_secs(4);
const MAX_TRANSFERS: u128 = 200_000;

struct Row {
    label: &'static str,
    batch: u128,
    transfers: u128,
    elapsed: Duration,
}

fn run(label: &'static str, durability: Durability, batch: u128) -> Row {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open_with(dir.path().join("bench.db"), durability)
        .expect("the database opens");
    let mut ledger = Ledger::new(store);
    let accounts = (POOL..=CUSTOMERS + 1)
        .map(|id| NewAccount {
            id,
            currency: EUR,
            code: 1,
            flags: AccountFlags::default(),
            user_data: [0; 32],
        })
        .collect();
    ledger
        .submit(RequestId(0), &Request::CreateAccounts(accounts))
        .expect("accounts open");
    let start = Instant::now();
    let mut transfers = 0;
    while transfers < MAX_TRANSFERS && start.elapsed() < BUDGET {
        let requests: Vec<_> = (transfers..transfers + batch)
            .map(|id| {
                let transfer = NewTransfer {
                    id: id + 1,
                    debit_account_id: POOL + 1 + id % CUSTOMERS,
                    credit_account_id: POOL,
                    amount: 1 + id % 97,
                    currency: EUR,
                    code: 1,
                    user_data: [0; 32],
                    kind: TransferKind::Single,
                };
                (RequestId(id + 1), Request::CreateTransfers(vec![transfer]))
            })
            .collect();
        let answers = ledger.submit_batch(&requests).expect("the batch commits");
        assert!(answers.iter().all(Result::is_ok), "every transfer applies");
        transfers += batch;
    }
    let elapsed = start.elapsed();
    ledger.check_invariants().expect("the books balance");
    Row {
        label,
        batch,
        transfers,
        elapsed,
    }
}

fn main() {
    let mut rows = Vec::new();
    for batch in [1, 10, 100, 1000] {
        rows.push(run("synchronous=FULL (durable)", Durability::Full, batch));
    }
    for batch in [1, 100] {
        rows.push(run("synchronous=NORMAL (WAL)", Durability::Normal, batch));
    }
    println!(
        "ledger throughput: single transfers into one pool account, one request each, temp file database"
    );
    println!(
        "{:<28} {:>6} {:>10} {:>9} {:>13} {:>10}",
        "durability", "batch", "transfers", "seconds", "transfers/s", "commits/s"
    );
    for row in rows {
        let seconds = row.elapsed.as_secs_f64();
        println!(
            "{:<28} {:>6} {:>10} {:>9.2} {:>13.0} {:>10.0}",
            row.label,
            row.batch,
            row.transfers,
            seconds,
            row.transfers as f64 / seconds,
            (row.transfers / row.batch) as f64 / seconds,
        );
    }
}
