//! What the contract tests share: a bank and a credit company in a temporary directory, and a way to re-sign a
//! changed bundle (to reach the checks behind the signature).
#![allow(dead_code)]

use std::path::Path;

use contract::{BankKeys, CreditAppletParameters, CreditKeys, Date, Fingerprint, Kind, Validity};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde::{Deserialize, Serialize};

pub const BANK_ID: &[u8] = b"BANK0001";
pub const CREDIT_ID: &[u8] = b"CRED0001";

pub fn date(year: u16, month: u8, day: u8) -> Date {
    Date::from_ymd(year, month, day).unwrap()
}

/// The day every test runs on.
pub fn today() -> Date {
    date(2026, 12, 1)
}

/// A year from today.
pub fn validity() -> Validity {
    Validity::new(date(2026, 11, 1), date(2027, 11, 30)).unwrap()
}

pub const APPLET: CreditAppletParameters = CreditAppletParameters {
    atc_limit: 65_535,
    pin_try_limit: Some(3),
};

/// Two organisations in their own directories under a fresh temporary directory.
pub struct Parties {
    pub dir: tempfile::TempDir,
    pub bank: BankKeys,
    pub credit: CreditKeys,
}

impl Parties {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bank = BankKeys::create(&dir.path().join("bank"), BANK_ID, validity()).unwrap();
        let credit = CreditKeys::create(&dir.path().join("credit"), CREDIT_ID).unwrap();
        Self { dir, bank, credit }
    }

    pub fn bank_identity(&self) -> p256::PublicKey {
        p256::PublicKey::from(self.bank.organisation().identity().verifying_key())
    }

    pub fn credit_identity(&self) -> p256::PublicKey {
        p256::PublicKey::from(self.credit.organisation().identity().verifying_key())
    }

    pub fn offer(&self) -> Vec<u8> {
        self.bank.export_offer(CREDIT_ID, validity()).unwrap()
    }

    pub fn acceptance(&self) -> Vec<u8> {
        let contract = self
            .credit
            .import_offer(&self.offer(), &self.bank_identity(), today())
            .unwrap();
        self.credit
            .export_acceptance(&contract, APPLET, validity())
            .unwrap()
    }
}

/// Every file under `dir`, with its contents, sorted: to show that a refused import wrote nothing.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

/// The outer object as `docs/contract.md` §2 lays it out, written here from the spec.
#[derive(Serialize, Deserialize)]
struct Envelope {
    format: String,
    version: u64,
    kind: String,
    signer: String,
    body: String,
    signature: String,
}

/// `bundle` with its body changed by `change` and signed again by `key` (named as signer `signer`, or `key`'s
/// own fingerprint): a bundle a key holder really made.
pub fn resign(
    bundle: &[u8],
    kind: Kind,
    key: &SigningKey,
    signer: Option<Fingerprint>,
    change: impl FnOnce(String) -> String,
) -> Vec<u8> {
    let mut envelope: Envelope = serde_json::from_slice(bundle).unwrap();
    envelope.body = change(envelope.body);
    let message = [kind.label(), envelope.body.as_bytes()].concat();
    let signature: Signature = key.sign(&message);
    envelope.signature = hex::encode(signature.normalize_s().to_bytes());
    let own = Fingerprint::of(&p256::PublicKey::from(key.verifying_key()));
    envelope.signer = signer.unwrap_or(own).to_hex();
    let mut bytes = serde_json::to_vec_pretty(&envelope).unwrap();
    bytes.push(b'\n');
    bytes
}

/// `text` with the value of JSON field `field` (a string) replaced by `value`.
pub fn replace_field(text: &str, field: &str, value: &str) -> String {
    let start = text.find(&format!("\"{field}\":\"")).unwrap() + field.len() + 4;
    let end = start + text[start..].find('"').unwrap();
    format!("{}{value}{}", &text[..start], &text[end..])
}
