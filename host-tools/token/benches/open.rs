//! Opening speed, RustCrypto against AWS-LC (feature `aws-lc`): one whole `open` (envelope signature, HPKE open,
//! body signature, checks) and its parts, on one core. Prints a table; asserts nothing about time.
//!
//! `cargo bench -p token --features aws-lc --bench open` (add `-- --count N` for N opens per row; default 2000).

use std::time::Instant;

use p256::ecdsa::Signature;
use p256::ecdsa::signature::Signer;
use token::{
    AwsLc, BankKeyring, CreditPrivateKey, CreditRecipient, OpenCrypto, RustCrypto, TokenBody,
};

fn body() -> TokenBody {
    let date = |y, m, d| token::Date::from_ymd(y, m, d).unwrap();
    TokenBody {
        user_name: "Hanako Yamada".into(),
        user_id: "U-000042".into(),
        sum: 50_000,
        currency: 392,
        deposit_date: date(2026, 12, 1),
        token_id: *b"BENCH-0000000001",
        valid_from: date(2026, 12, 1),
        valid_until: date(2027, 1, 31),
        bank_id: b"BANK0001".to_vec(),
        bank_account: "0001-234-5678901".into(),
        credit_id: b"CRED0001".to_vec(),
        pan: "4111111111111111".into(),
        card_binding: [7; 32],
    }
}

/// Operations per second of `op`, run `count` times.
fn rate(count: u32, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..count {
        op();
    }
    f64::from(count) / start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count = args
        .iter()
        .position(|a| a == "--count")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000u32);
    let mut rng = token::os_rng().unwrap();
    let bank = token::BankSigningKey::from_slice(&[0x42; 32]).unwrap();
    let credit = CreditPrivateKey::generate(&mut rng);
    let body = body();
    let minted = token::mint(&body, &bank, credit.public_key(), &mut rng).unwrap();
    let mut recipient = CreditRecipient::new(b"CRED0001");
    recipient.add_key(credit.clone());
    let mut banks = BankKeyring::new();
    banks.insert(b"BANK0001", *bank.verifying_key());
    let mut fast = AwsLc::for_recipient(&recipient).unwrap();
    // As the credit system does: the bank's key parsed once.
    fast.keep_parsed(bank.verifying_key()).unwrap();
    let message = b"linkcard benchmark message";
    let signature: Signature = bank.sign(message);
    let signature: [u8; 64] = signature.to_bytes().into();
    let envelope = apdu_spec::token::Envelope::parse(&minted).unwrap();
    let info = token::hpke_info(b"BANK0001", b"CRED0001");

    println!("| operation ({count} each, one core) | RustCrypto /s | AWS-LC /s |");
    println!("|---|---|---|");
    let row = |name: &str, slow: f64, fast: f64| println!("| {name} | {slow:.0} | {fast:.0} |");
    let verify = |crypto: &dyn OpenCrypto| {
        rate(count, || {
            assert!(crypto.verify(bank.verifying_key(), message, &signature))
        })
    };
    row("ECDSA P-256 verify", verify(&RustCrypto), verify(&fast));
    let open_sealed = |crypto: &dyn OpenCrypto| {
        rate(count, || {
            let opened = crypto.open_sealed(
                &credit,
                envelope.encapsulated_key,
                &info,
                envelope.header_tlv,
                envelope.ciphertext,
            );
            assert!(opened.is_some());
        })
    };
    row(
        "HPKE open (ECDH, HKDF, AES-GCM)",
        open_sealed(&RustCrypto),
        open_sealed(&fast),
    );
    let today = body.valid_from;
    let whole = |crypto: &dyn OpenCrypto| {
        rate(count, || {
            let opened = token::open_with(crypto, &minted, &recipient, &banks, today, None);
            assert!(opened.is_ok());
        })
    };
    row(
        "whole token open (2 verify + HPKE + checks)",
        whole(&RustCrypto),
        whole(&fast),
    );
}
