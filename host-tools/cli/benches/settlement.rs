//! Settlement day for many users, end to end through the `linkcard` binary, durable: the credit company's
//! statement (deduction file written and signed), the bank's settlement (file verified, read, every user settled,
//! status report and transfer notice written and signed) and the credit company's reconciliation (both files
//! verified, checked whole, every user reconciled). Prints wall time, users per second and peak memory (RSS,
//! from `/usr/bin/time`) per phase; asserts nothing about time.
//!
//! The users are seeded beforehand through the libraries (untimed; the databases opened with
//! `synchronous=NORMAL` to seed faster, the timed commands open them as usual, `synchronous=FULL`): a customer with
//! money and a cardholder with a card, a mandate and one purchase each; one user in a hundred first deposited at
//! the ATM and presented the token (a reflection to confirm).
//!
//! `cargo bench -p linkcard-cli --bench settlement` (`-- --users N`, default 100,000; `-- --users 1000000` for the
//! issue's figure, whose seeding takes about ten minutes; `-- --seeded DIR` seeds DIR once for that many users and
//! runs every later time on a copy of it).

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Instant;

use bank::{Bank, BankConfig, CardRef, DepositRequest, NewCustomer, Source};
use credit::{AuthorizationRequest, Credit, CreditConfig, Mandate, NewCard, NewCardholder};
use ledger::{Durability, RequestId, SqliteStore};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha256};

const JPY: u16 = 392;
const NOW: u64 = 1_796_083_200;
const BATCH: usize = 256;

fn linkcard(data: &Path, args: &[&str]) -> (f64, u64, String) {
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%e %M"])
        .arg(env!("CARGO_BIN_EXE_linkcard"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .expect("/usr/bin/time and linkcard run");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{args:?}: {stderr}");
    let last = stderr.lines().last().unwrap_or_default().to_owned();
    let mut fields = last.split_whitespace();
    let seconds = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0.0);
    let kib = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
    (
        seconds,
        kib,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn argument(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn card_key(user: usize) -> SigningKey {
    SigningKey::from_slice(&Sha256::digest(format!("bench card {user}"))).expect("a scalar")
}

fn pan(user: usize) -> String {
    format!("41{user:014}")
}

fn today() -> token::Date {
    card_client::scp11::date_from_today(0)
}

/// Both organisations and their contract, through the binary.
fn organisations(data: &Path) {
    let path = |name: &str| data.join(name).display().to_string();
    linkcard(data, &["bank", "init", "--id", "BANK0001"]);
    linkcard(data, &["credit", "init", "--id", "CRED0001"]);
    linkcard(
        data,
        &[
            "bank",
            "offer",
            "--credit",
            "CRED0001",
            "--out",
            &path("offer.json"),
        ],
    );
    linkcard(
        data,
        &[
            "credit",
            "accept",
            &path("offer.json"),
            "--bank-identity",
            &path("bank/identity.pub"),
            "--out",
            &path("acceptance.json"),
        ],
    );
    linkcard(
        data,
        &[
            "bank",
            "import-acceptance",
            &path("acceptance.json"),
            "--credit-identity",
            &path("credit/identity.pub"),
        ],
    );
}

/// Seeds the bank's users, handing each user's token (if any) to the credit seeding as it goes.
fn seed_bank(data: &Path, users: usize, tokens: mpsc::SyncSender<Option<Vec<u8>>>) {
    let keys = contract::BankKeys::load(&data.join("bank")).expect("bank keys");
    let store =
        SqliteStore::open_with(data.join("bank/bank.sqlite"), Durability::Normal).expect("bank db");
    let config = BankConfig {
        bank_id: b"BANK0001".to_vec(),
        currency: JPY,
        token_validity_days: 61,
        deposit_hold_seconds: 3_600,
    };
    let mut bank = Bank::open(store, config, keys.token_signing_key().clone()).expect("bank");
    let mut request = 0u128;
    let mut next = || {
        request += 1;
        RequestId(request)
    };
    for user in 0..users {
        let customer = NewCustomer {
            user_id: format!("U{user:07}"),
            name: format!("User {user}"),
            account_number: format!("A{user:07}"),
            currency: JPY,
        };
        bank.add_customer(next(), &customer).expect("customer");
        bank.cash_in(next(), &customer.user_id, 1_000 + (user as u64 % 7) * 1_000)
            .expect("cash");
        let token = (user % 100 == 0).then(|| {
            let deposit = DepositRequest {
                user_id: customer.user_id.clone(),
                credit_id: b"CRED0001".to_vec(),
                amount: 2_000,
                currency: JPY,
                source: Source::Cash,
                card: CardRef {
                    pan: pan(user),
                    card_binding: Sha256::digest(
                        card_key(user)
                            .verifying_key()
                            .to_sec1_point(false)
                            .as_bytes(),
                    )
                    .into(),
                },
                today: today(),
                now_unix_seconds: now(),
            };
            let taken = bank.deposit(next(), &deposit).expect("deposit");
            bank.confirm_deposit(next(), &taken.token_id)
                .expect("confirm");
            taken.token
        });
        tokens.send(token).expect("the credit seeding runs");
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(NOW, |d| d.as_secs())
}

fn purchase(user: usize, tokens: Vec<Vec<u8>>) -> AuthorizationRequest {
    let amount = 3_000 + (user as u64 % 5) * 1_000;
    let nonce: [u8; 16] = Sha256::digest(user.to_be_bytes())[..16]
        .try_into()
        .expect("16 bytes");
    let digests: Vec<[u8; 32]> = tokens.iter().map(|t| Sha256::digest(t).into()).collect();
    let presentation = apdu_spec::credit::Presentation {
        nonce: &nonce,
        amount,
        currency: JPY,
    };
    let message = apdu_spec::credit::signed_message(&presentation, 1, &digests);
    let signature: Signature = card_key(user).sign(&message);
    AuthorizationRequest {
        pan: pan(user),
        nonce,
        amount,
        currency: JPY,
        atc: 1,
        tokens,
        signature: signature.to_bytes().into(),
        merchant: "Bench".into(),
        today: today(),
        now_unix_seconds: now(),
    }
}

fn seed_credit(data: &Path, tokens: mpsc::Receiver<Option<Vec<u8>>>) {
    let keys = contract::CreditKeys::load(&data.join("credit")).expect("credit keys");
    let store = SqliteStore::open_with(data.join("credit/credit.sqlite"), Durability::Normal)
        .expect("credit db");
    let config = CreditConfig {
        credit_id: b"CRED0001".to_vec(),
        currency: JPY,
        settlement_grace_days: 30,
    };
    let mut credit = Credit::open(store, config, vec![keys.hpke_key().clone()]).expect("credit");
    let mut request = 1u128 << 64;
    let mut next = || {
        request += 1;
        RequestId(request)
    };
    let mut batch = Vec::with_capacity(BATCH);
    for (user, token) in tokens.into_iter().enumerate() {
        let holder = format!("H{user:07}");
        let cardholder = NewCardholder {
            cardholder_id: holder.clone(),
            name: format!("User {user}"),
            credit_limit: 100_000,
            currency: JPY,
        };
        credit
            .add_cardholder(next(), &cardholder)
            .expect("cardholder");
        let card = NewCard {
            pan: pan(user),
            expiry: card_client::scp11::date_from_today(365),
            cardholder_id: holder.clone(),
            signing_key: *card_key(user).verifying_key(),
        };
        credit.add_card(next(), &card).expect("card");
        let mandate = Mandate {
            bank_id: b"BANK0001".to_vec(),
            user_id: format!("U{user:07}"),
            account_number: format!("A{user:07}"),
            mandate_id: format!("M{user:07}"),
        };
        credit
            .set_mandate(next(), &holder, &mandate)
            .expect("mandate");
        batch.push((next(), purchase(user, token.into_iter().collect())));
        if batch.len() == BATCH {
            authorize(&mut credit, &mut batch);
        }
    }
    authorize(&mut credit, &mut batch);
}

fn authorize(credit: &mut Credit<SqliteStore>, batch: &mut Vec<(RequestId, AuthorizationRequest)>) {
    for answer in credit.authorize_batch(batch).expect("authorizations") {
        assert!(answer.expect("a decision").approved);
    }
    batch.clear();
}

fn text_argument(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let index = args.iter().position(|a| a == name)?;
    args.get(index + 1).cloned()
}

fn seed(data: &Path, users: usize) {
    let seeding = Instant::now();
    organisations(data);
    // The two organisations' databases are independent: each seeds on its own core.
    let (tokens, received) = mpsc::sync_channel(4_096);
    std::thread::scope(|scope| {
        scope.spawn(|| seed_bank(data, users, tokens));
        seed_credit(data, received);
    });
    eprintln!(
        "seeded {users} users in {:.0} s",
        seeding.elapsed().as_secs_f64()
    );
}

/// Seeds `seeded` (kept between runs, for this many users) unless it already is, then copies it to `data`:
/// the timed commands change what they run on.
fn seed_once(seeded: &Path, data: &Path, users: usize) {
    let marker = seeded.join(format!("seeded-{users}-users"));
    if !marker.exists() {
        if seeded.exists() {
            std::fs::remove_dir_all(seeded).expect("the old seeded directory removed");
        }
        std::fs::create_dir_all(seeded).expect("the seeded directory");
        seed(seeded, users);
        std::fs::write(&marker, b"").expect("the marker");
    }
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", seeded.display()))
        .arg(data)
        .status()
        .expect("cp runs");
    assert!(status.success(), "copying {}", seeded.display());
    // The copy's gigabytes go to disk now, not while a timed command runs beside the kernel's write-back.
    let synced = Command::new("sync").status().expect("sync runs");
    assert!(synced.success(), "sync");
}

fn main() {
    let users = argument("--users", 100_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data = dir.path();
    match text_argument("--seeded") {
        Some(seeded) => seed_once(Path::new(&seeded), data, users),
        None => seed(data, users),
    }
    let out = data.join("files").display().to_string();
    let (statement_s, statement_kib, made) = linkcard(
        data,
        &[
            "credit",
            "statement",
            "--bank",
            "BANK0001",
            "--out",
            &out,
            "--json",
        ],
    );
    let made: serde_json::Value = serde_json::from_str(&made).expect("JSON");
    let file = made["file"].as_str().expect("a deduction file").to_owned();
    let (settle_s, settle_kib, settled) =
        linkcard(data, &["bank", "settle", &file, "--out", &out, "--json"]);
    let settled: serde_json::Value = serde_json::from_str(&settled).expect("JSON");
    let report = settled["report"].as_str().expect("a report").to_owned();
    let notice = settled["notice"].as_str().expect("a notice").to_owned();
    let (reconcile_s, reconcile_kib, reconciled) = linkcard(
        data,
        &[
            "credit",
            "reconcile",
            "--report",
            &report,
            "--notice",
            &notice,
            "--json",
        ],
    );
    let reconciled: serde_json::Value = serde_json::from_str(&reconciled).expect("JSON");
    assert_eq!(reconciled["deductions"].as_u64(), Some(users as u64));
    let size = |path: &str| std::fs::metadata(path).map_or(0, |m| m.len()) / (1 << 20);
    println!(
        "| {users} users, durable SQLite, each command on the machine's cores | seconds | users/s | peak RSS MiB | files MiB |"
    );
    println!("|---|---|---|---|---|");
    let row = |name: &str, seconds: f64, kib: u64, files: Option<u64>| {
        let files = files.map_or_else(|| "—".to_owned(), |mib| mib.to_string());
        println!(
            "| {name} | {seconds:.1} | {:.0} | {} | {files} |",
            users as f64 / seconds.max(1e-9),
            kib / 1024
        );
    };
    row(
        "statement (pain.008 written, signed)",
        statement_s,
        statement_kib,
        Some(size(&file)),
    );
    row(
        "bank settle (verified, read, settled, pain.002 + camt.054)",
        settle_s,
        settle_kib,
        Some(size(&report) + size(&notice)),
    );
    row(
        "credit reconcile (verified, checked, reconciled)",
        reconcile_s,
        reconcile_kib,
        None,
    );
    let total = statement_s + settle_s + reconcile_s;
    row(
        "end to end",
        total,
        statement_kib.max(settle_kib).max(reconcile_kib),
        None,
    );
    println!(
        "\ncollected {} of {} due; {} reflections posted; flagged {}",
        settled["collected"],
        settled["due"],
        reconciled["reflections_posted"],
        reconciled["flagged"].as_array().map_or(0, Vec::len)
    );
}
