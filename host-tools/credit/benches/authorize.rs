//! Authorizations per second on one core, on a durable file SQLite database (`synchronous=FULL`), each with a
//! fresh token: card signature verify, outer signature verify, HPKE open, inner signature verify, spent-token
//! insert, pending credit, purchase, decision. One commit per authorization, then group commits of 16, 64 and
//! 256 (`authorize_batch`); beside them the bound set by the cryptography alone (card verify + token open), with
//! AWS-LC (what the credit system uses) and with RustCrypto, and the share of the AWS-LC bound reached.
//! Tokens and card signatures are made beforehand, untimed. Prints a table; asserts nothing about time.
//!
//! Columns: authorizations per second of wall-clock time (the crypto bound measured in chunks alternating with
//! each row's authorizations, so that other work on the host slows both alike), per second of this thread's
//! on-CPU time (Linux `schedstat`; on a VM it includes steal), and each as a share of the AWS-LC bound.
//!
//! `cargo bench -p credit --bench authorize` (`-- --count N`: authorizations per group-commit row, default
//! 8192, so that each row runs for seconds and the host's noise averages out; `--single N`: for the one-commit row, default 512).

use std::sync::Arc;
use std::time::Instant;

use credit::{AuthorizationRequest, Credit, CreditConfig, NewCard, NewCardholder};
use ledger::{ManualClock, RequestId, SqliteStore};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha256};
use token::{
    AwsLc, BankKeyring, BankSigningKey, CreditPrivateKey, CreditRecipient, Date, OpenCrypto,
    RustCrypto, TokenBody,
};

const PAN: &str = "4111111111111111";
const JPY: u16 = 392;
/// 2026-12-01T00:00:00Z.
const NOW: u64 = 1_796_083_200;

struct Fixture {
    bank: BankSigningKey,
    credit_key: CreditPrivateKey,
    card: SigningKey,
    rng: chacha20::ChaCha20Rng,
    serial: u32,
}

fn date(year: u16, month: u8, day: u8) -> Date {
    Date::from_ymd(year, month, day).expect("a real day")
}

impl Fixture {
    fn body(&self, serial: u32) -> TokenBody {
        let mut token_id = *b"BENCH-0000000000";
        token_id[6..].copy_from_slice(format!("{serial:010}").as_bytes());
        TokenBody {
            user_name: "Hanako Yamada".into(),
            user_id: "U-000042".into(),
            sum: 500,
            currency: JPY,
            deposit_date: date(2026, 12, 1),
            token_id,
            valid_from: date(2026, 12, 1),
            valid_until: date(2027, 1, 31),
            bank_id: b"BANK0001".to_vec(),
            bank_account: "0001-234-5678901".into(),
            credit_id: b"CRED0001".to_vec(),
            pan: PAN.into(),
            card_binding: Sha256::digest(self.card.verifying_key().to_sec1_point(false).as_bytes())
                .into(),
        }
    }

    /// The next authorization: a fresh token, the next ATC, signed as the card signs PRESENT.
    fn next(&mut self) -> (RequestId, AuthorizationRequest) {
        self.serial += 1;
        let body = self.body(self.serial);
        let token = token::mint(
            &body,
            &self.bank,
            self.credit_key.public_key(),
            &mut self.rng,
        )
        .expect("mint");
        let nonce: [u8; 16] = Sha256::digest(self.serial.to_be_bytes())[..16]
            .try_into()
            .expect("16 bytes");
        let presentation = apdu_spec::credit::Presentation {
            nonce: &nonce,
            amount: 1_000,
            currency: JPY,
        };
        let digest: [u8; 32] = Sha256::digest(&token).into();
        let message = apdu_spec::credit::signed_message(&presentation, self.serial, &[digest]);
        let signature: Signature = self.card.sign(&message);
        let request = AuthorizationRequest {
            pan: PAN.into(),
            nonce,
            amount: 1_000,
            currency: JPY,
            atc: self.serial,
            tokens: vec![token],
            signature: signature.to_bytes().into(),
            merchant: "Tokyo Books".into(),
            today: date(2026, 12, 1),
            now_unix_seconds: NOW,
        };
        (RequestId(u128::from(self.serial)), request)
    }

    fn many(&mut self, count: usize) -> Vec<(RequestId, AuthorizationRequest)> {
        (0..count).map(|_| self.next()).collect()
    }
}

/// The cryptography of one authorization alone: the card's signature, then the token's open.
fn crypto_only(
    crypto: &impl OpenCrypto,
    card: &p256::ecdsa::VerifyingKey,
    recipient: &CreditRecipient,
    banks: &BankKeyring,
    binding: &[u8; 32],
    request: &AuthorizationRequest,
) {
    let digests: Vec<[u8; 32]> = request
        .tokens
        .iter()
        .map(|t| Sha256::digest(t).into())
        .collect();
    let presentation = apdu_spec::credit::Presentation {
        nonce: &request.nonce,
        amount: request.amount,
        currency: request.currency,
    };
    let message = apdu_spec::credit::signed_message(&presentation, request.atc, &digests);
    assert!(crypto.verify(card, &message, &request.signature));
    for token in &request.tokens {
        let opened = token::open_with(
            crypto,
            token,
            recipient,
            banks,
            request.today,
            Some(binding),
        );
        assert!(opened.is_ok());
    }
}

/// Wall-clock and on-CPU time of this thread (`/proc/thread-self/schedstat`, Linux; zero elsewhere), so that
/// the figures can be read on a host shared with other work.
#[derive(Clone, Copy, Default)]
struct Spent {
    wall: f64,
    cpu: f64,
}

fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |nanos| nanos as f64 / 1e9)
}

/// Adds the wall-clock time of `work` to `spent`. (On-CPU time is read over whole phases only: the kernel
/// refreshes it at scheduler ticks, too coarsely for a chunk.)
fn timed(spent: &mut Spent, work: impl FnOnce()) {
    let wall = Instant::now();
    work();
    spent.wall += wall.elapsed().as_secs_f64();
}

/// The on-CPU seconds of `work`.
fn on_cpu(work: impl FnOnce()) -> f64 {
    let start = cpu_seconds();
    work();
    cpu_seconds() - start
}

/// One measured row: the authorizations and, alongside on the same requests, the cryptography alone.
#[derive(Clone, Copy, Default)]
struct Row {
    count: usize,
    authorize: Spent,
    crypto: Spent,
}

fn argument(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn open_credit(path: &std::path::Path, fixture: &Fixture) -> Credit<SqliteStore> {
    let store = SqliteStore::open(path)
        .expect("open the database")
        .with_clock(Arc::new(ManualClock::new(NOW * 1_000_000_000)));
    let config = CreditConfig {
        credit_id: b"CRED0001".to_vec(),
        currency: JPY,
        settlement_grace_days: 30,
    };
    let mut credit = Credit::open(store, config, vec![fixture.credit_key.clone()]).expect("open");
    credit
        .trust_bank(
            RequestId(u128::MAX),
            b"BANK0001",
            *fixture.bank.verifying_key(),
        )
        .expect("trust");
    let cardholder = NewCardholder {
        cardholder_id: "C-000042".into(),
        name: "Hanako Yamada".into(),
        credit_limit: u64::MAX / 2,
        currency: JPY,
    };
    credit
        .add_cardholder(RequestId(u128::MAX - 1), &cardholder)
        .expect("cardholder");
    let card = NewCard {
        pan: PAN.into(),
        expiry: date(2029, 12, 31),
        cardholder_id: "C-000042".into(),
        signing_key: *fixture.card.verifying_key(),
    };
    credit
        .add_card(RequestId(u128::MAX - 2), &card)
        .expect("card");
    credit
}

/// What the cryptography alone needs: the credit system's keys, the trusted bank, the card's key.
struct Verifier {
    recipient: CreditRecipient,
    banks: BankKeyring,
    aws_lc: AwsLc,
    card_key: p256::ecdsa::VerifyingKey,
    binding: [u8; 32],
}

impl Verifier {
    fn new(fixture: &Fixture) -> Self {
        let mut recipient = CreditRecipient::new(b"CRED0001");
        recipient.add_key(fixture.credit_key.clone());
        let mut banks = BankKeyring::new();
        banks.insert(b"BANK0001", *fixture.bank.verifying_key());
        let mut aws_lc = AwsLc::for_recipient(&recipient).expect("keys");
        // As the credit system does: the bank's key parsed once.
        aws_lc
            .keep_parsed(fixture.bank.verifying_key())
            .expect("a valid key");
        let card_key = *fixture.card.verifying_key();
        let binding = Sha256::digest(card_key.to_sec1_point(false).as_bytes()).into();
        Self {
            recipient,
            banks,
            aws_lc,
            card_key,
            binding,
        }
    }

    fn check(&self, crypto: &impl OpenCrypto, request: &AuthorizationRequest) {
        crypto_only(
            crypto,
            &self.card_key,
            &self.recipient,
            &self.banks,
            &self.binding,
            request,
        );
    }
}

/// One row over `requests` in chunks of `chunk`. Chunks alternate between the cryptography alone and the
/// authorizations, so that whatever else runs on the host slows both alike (wall clock); the on-CPU time of the
/// cryptography is read over one pass of its own, and the authorizations' is the rest of the alternating phase.
fn measure_row(
    requests: &[(RequestId, AuthorizationRequest)],
    chunk: usize,
    verifier: &Verifier,
    mut authorize: impl FnMut(&[(RequestId, AuthorizationRequest)]),
) -> Row {
    let crypto = |chunk: &[(RequestId, AuthorizationRequest)]| {
        for (_, request) in chunk {
            verifier.check(&verifier.aws_lc, request);
        }
    };
    let mut row = Row {
        count: requests.len(),
        ..Row::default()
    };
    row.crypto.cpu = on_cpu(|| crypto(requests));
    let both = on_cpu(|| {
        for chunk in requests.chunks(chunk) {
            timed(&mut row.crypto, || crypto(chunk));
            timed(&mut row.authorize, || authorize(chunk));
        }
    });
    row.authorize.cpu = both - row.crypto.cpu;
    row
}

/// The authorization rows: one commit each, then group commits of 16, 64 and 256.
fn measure_rows(
    credit: &mut Credit<SqliteStore>,
    fixture: &mut Fixture,
    verifier: &Verifier,
    single: usize,
    count: usize,
) -> Vec<(String, Row)> {
    let singles = fixture.many(single);
    let row = measure_row(&singles, 16, verifier, |chunk| {
        for (request_id, request) in chunk {
            let decision = credit.authorize(*request_id, request).expect("authorize");
            assert!(decision.approved && decision.accepted_tokens.len() == 1);
        }
    });
    let mut rows = vec![(
        format!("authorize, one durable commit each ({single})"),
        row,
    )];
    for size in [16, 64, 256] {
        let requests = fixture.many(count);
        let row = measure_row(&requests, size, verifier, |chunk| {
            let answers = credit.authorize_batch(chunk).expect("batch");
            assert!(answers.iter().all(|a| a.as_ref().is_ok_and(|d| d.approved)));
        });
        let name = format!("authorize_batch of {size}, one durable commit per batch ({count})");
        rows.push((name, row));
    }
    rows
}

fn print_row(name: &str, count: usize, spent: Spent, bound: Spent) {
    println!(
        "| {name} | {:.0} | {:.0} | {:.0} % | {:.0} % |",
        count as f64 / spent.wall,
        count as f64 / spent.cpu,
        100.0 * bound.wall / spent.wall,
        100.0 * bound.cpu / spent.cpu,
    );
}

/// The table: the AWS-LC bound from every row's interleaved measurement, RustCrypto's from `slow` over
/// `sample` authorizations, then the rows.
fn print_table(rows: &[(String, Row)], slow: Spent, sample: usize) {
    let mut fast = Row::default();
    for (_, row) in rows {
        fast.count += row.count;
        fast.crypto.wall += row.crypto.wall;
        fast.crypto.cpu += row.crypto.cpu;
    }
    println!(
        "| one core, durable SQLite, a fresh token each | per second | per second of CPU time | % of the AWS-LC crypto bound | (CPU time) |"
    );
    println!("|---|---|---|---|---|");
    let bound = "(card verify + token open)";
    print_row(
        &format!("crypto bound, AWS-LC {bound}"),
        fast.count,
        fast.crypto,
        fast.crypto,
    );
    let share = sample as f64 / fast.count as f64;
    let fast_sample = Spent {
        wall: fast.crypto.wall * share,
        cpu: fast.crypto.cpu * share,
    };
    print_row(
        &format!("crypto bound, RustCrypto {bound}"),
        sample,
        slow,
        fast_sample,
    );
    for (name, row) in rows {
        print_row(name, row.count, row.authorize, row.crypto);
    }
}

fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split(':').nth(1))
        .unwrap_or("")
        .trim();
    let cpus = info
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!(
        "{model}, {cpus} CPUs; load average at the end: {}",
        load.join(" ")
    )
}

fn main() {
    let count = argument("--count", 8192);
    let single = argument("--single", 512);
    let mut fixture = Fixture {
        bank: BankSigningKey::from_slice(&[0x42; 32]).expect("key"),
        credit_key: CreditPrivateKey::derive(b"linkcard credit bench"),
        card: SigningKey::from_slice(&[0x17; 32]).expect("key"),
        rng: token::os_rng().expect("entropy"),
        serial: 0,
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut credit = open_credit(&dir.path().join("credit.sqlite"), &fixture);
    let verifier = Verifier::new(&fixture);
    let rows = measure_rows(&mut credit, &mut fixture, &verifier, single, count);
    let sample = fixture.many(256);
    let start = (Instant::now(), cpu_seconds());
    for (_, request) in &sample {
        verifier.check(&RustCrypto, request);
    }
    let slow = Spent {
        wall: start.0.elapsed().as_secs_f64(),
        cpu: cpu_seconds() - start.1,
    };
    print_table(&rows, slow, sample.len());
    println!("\n{}", machine());
    credit.check_invariants().expect("invariants");
}
