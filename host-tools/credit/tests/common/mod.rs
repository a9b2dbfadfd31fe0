//! What the credit system's tests share: keys, a credit system with a cardholder and a card, tokens minted by
//! a bank, presentations signed as the card signs them, and a snapshot of everything stored.
#![allow(dead_code)]

use std::sync::Arc;

use credit::{AuthorizationRequest, CardStatus, Credit, CreditConfig, NewCard, NewCardholder};
use ledger::{ManualClock, RequestId, SqliteStore, Store, Transaction};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha256};
use token::{BankSigningKey, CreditPrivateKey, Date, TokenBody};

pub const JPY: u16 = 392;
pub const EUR: u16 = 978;
pub const CREDIT_ID: &[u8] = b"CRED0001";
pub const BANK_ID: &[u8] = b"BANK0001";
pub const CARDHOLDER: &str = "C-000042";
pub const PAN: &str = "4111111111111111";
pub const LIMIT: u64 = 10_000;
pub const GRACE_DAYS: u16 = 30;
/// 2026-12-01T00:00:00Z.
pub const NOW: u64 = 1_796_083_200;

pub type TestCredit = Credit<SqliteStore>;

pub fn date(year: u16, month: u8, day: u8) -> Date {
    Date::from_ymd(year, month, day).unwrap()
}

pub fn today() -> Date {
    date(2026, 12, 1)
}

pub fn bank_key() -> BankSigningKey {
    BankSigningKey::from_slice(&[0x42; 32]).unwrap()
}

pub fn other_bank_key() -> BankSigningKey {
    BankSigningKey::from_slice(&[0x43; 32]).unwrap()
}

pub fn credit_key() -> CreditPrivateKey {
    CreditPrivateKey::derive(b"linkcard credit tests: the credit system's HPKE key")
}

pub fn card_key() -> SigningKey {
    SigningKey::from_slice(&[0x17; 32]).unwrap()
}

pub fn config() -> CreditConfig {
    CreditConfig {
        credit_id: CREDIT_ID.to_vec(),
        currency: JPY,
        settlement_grace_days: GRACE_DAYS,
    }
}

/// A store with a manual clock at [`NOW`].
pub fn memory_store() -> SqliteStore {
    SqliteStore::open_in_memory()
        .unwrap()
        .with_clock(Arc::new(ManualClock::new(NOW * 1_000_000_000)))
}

pub fn file_store(path: &std::path::Path) -> SqliteStore {
    SqliteStore::open(path)
        .unwrap()
        .with_clock(Arc::new(ManualClock::new(NOW * 1_000_000_000)))
}

/// A credit system trusting [`BANK_ID`], with one cardholder (limit [`LIMIT`], JPY) holding card [`PAN`].
pub fn set_up<S: Store>(store: S) -> Credit<S> {
    let mut credit = Credit::open(store, config(), vec![credit_key()]).unwrap();
    credit
        .trust_bank(RequestId(1), BANK_ID, *bank_key().verifying_key())
        .unwrap();
    add_cardholder(&mut credit, 2, CARDHOLDER, LIMIT, JPY);
    add_card(&mut credit, 3, PAN, CARDHOLDER, &card_key());
    credit
}

pub fn add_cardholder<S: Store>(
    credit: &mut Credit<S>,
    request: u128,
    id: &str,
    limit: u64,
    currency: u16,
) {
    let cardholder = NewCardholder {
        cardholder_id: id.into(),
        name: "Hanako Yamada".into(),
        credit_limit: limit,
        currency,
    };
    credit
        .add_cardholder(RequestId(request), &cardholder)
        .unwrap();
}

pub fn add_card<S: Store>(
    credit: &mut Credit<S>,
    request: u128,
    pan: &str,
    cardholder: &str,
    key: &SigningKey,
) {
    let card = NewCard {
        pan: pan.into(),
        expiry: date(2029, 12, 31),
        cardholder_id: cardholder.into(),
        signing_key: *key.verifying_key(),
    };
    credit.add_card(RequestId(request), &card).unwrap();
}

pub fn binding(key: &SigningKey) -> [u8; 32] {
    Sha256::digest(key.verifying_key().to_sec1_point(false).as_bytes()).into()
}

/// A token body for card [`PAN`] / [`card_key`], valid 2026-12-01 to 2027-01-31.
pub fn body(token_number: u64, sum: u64) -> TokenBody {
    let mut token_id = *b"TOKEN-0000000000";
    token_id[6..].copy_from_slice(format!("{:010}", token_number % 10_000_000_000).as_bytes());
    TokenBody {
        user_name: "Hanako Yamada".into(),
        user_id: "U-000042".into(),
        sum,
        currency: JPY,
        deposit_date: today(),
        token_id,
        valid_from: today(),
        valid_until: date(2027, 1, 31),
        bank_id: BANK_ID.to_vec(),
        bank_account: "0001-234-5678901".into(),
        credit_id: CREDIT_ID.to_vec(),
        pan: PAN.into(),
        card_binding: binding(&card_key()),
    }
}

pub fn mint_with(body: &TokenBody, bank: &BankSigningKey) -> Vec<u8> {
    let mut rng = token::os_rng().unwrap();
    token::mint(body, bank, credit_key().public_key(), &mut rng).unwrap()
}

pub fn mint(token_number: u64, sum: u64) -> Vec<u8> {
    mint_with(&body(token_number, sum), &bank_key())
}

/// A purchase at [`NOW`] on card [`PAN`], signed by `key` as the card signs PRESENT.
pub fn purchase_signed(
    key: &SigningKey,
    pan: &str,
    amount: u64,
    atc: u32,
    tokens: Vec<Vec<u8>>,
) -> AuthorizationRequest {
    let nonce: [u8; 16] = Sha256::digest(atc.to_be_bytes()).as_slice()[..16]
        .try_into()
        .unwrap();
    let digests: Vec<[u8; 32]> = tokens
        .iter()
        .map(|token| Sha256::digest(token).into())
        .collect();
    let presentation = apdu_spec::credit::Presentation {
        nonce: &nonce,
        amount,
        currency: JPY,
    };
    let message = apdu_spec::credit::signed_message(&presentation, atc, &digests);
    let signature: Signature = key.sign(&message);
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
        now_unix_seconds: NOW + 3600,
    }
}

pub fn purchase(amount: u64, atc: u32, tokens: Vec<Vec<u8>>) -> AuthorizationRequest {
    purchase_signed(&card_key(), PAN, amount, atc, tokens)
}

/// Everything stored: the ledger's accounts and transfers, and every record of the credit system's tables.
pub fn snapshot<S: Store>(credit: &mut Credit<S>) -> String {
    let ledger = credit.ledger();
    let accounts = ledger.accounts().unwrap();
    let transfers = ledger.transfers().unwrap();
    let mut tx = ledger.transaction().unwrap();
    let mut records = Vec::new();
    for table in [
        "credit.meta",
        "credit.bank",
        "credit.cardholder",
        "credit.card",
        "credit.spent",
        "credit.pending",
        "credit.decision",
    ] {
        records.push(tx.scan_prefix(table, &[]).unwrap());
    }
    format!("{accounts:?}\n{transfers:?}\n{records:?}")
}

/// The credit system's and the ledger's invariants.
pub fn check<S: Store>(credit: &mut Credit<S>) {
    credit.check_invariants().unwrap();
}

pub fn set_status<S: Store>(credit: &mut Credit<S>, request: u128, status: CardStatus) {
    credit
        .set_card_status(RequestId(request), PAN, status)
        .unwrap();
}
