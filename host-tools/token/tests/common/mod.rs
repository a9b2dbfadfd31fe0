//! Shared by the token tests: the checked-in test keys (TEST ONLY), sample bodies, and a token forger that
//! assembles tokens from their parts with the real keys (to reach each check of `open`).
#![allow(dead_code)]

use apdu_spec::token::{self as spec, ClearHeader, ENCAPSULATED_KEY_LENGTH};
use chacha20::rand_core::SeedableRng;
use hpke::{Deserializable, OpModeS, Serializable};
use p256::ecdsa::signature::Signer;
use token::{
    BankKeyring, BankSigningKey, CreditPrivateKey, CreditRecipient, Date, TokenBody, bank_key_id,
};

pub const BANK_ID: &[u8] = b"BANK0001";
pub const CREDIT_ID: &[u8] = b"CRED0001";
pub const LARGEST_BANK_ID: &[u8] = b"BANK0001-LARGEST";
pub const LARGEST_CREDIT_ID: &[u8] = b"CRED0001-LARGEST";
pub type Kem = hpke::kem::DhP256HkdfSha256;

fn read_hex_key(name: &str) -> [u8; 32] {
    let path = format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    hex::decode(text.trim()).unwrap().try_into().unwrap()
}

pub fn bank_key() -> BankSigningKey {
    BankSigningKey::from_slice(&read_hex_key("bank-signing.TEST-ONLY.hex")).unwrap()
}

pub fn credit_key() -> CreditPrivateKey {
    CreditPrivateKey::from_bytes(&read_hex_key("credit-hpke.TEST-ONLY.hex")).unwrap()
}

pub fn keyring() -> BankKeyring {
    keyring_for(BANK_ID)
}

pub fn keyring_for(bank_id: &[u8]) -> BankKeyring {
    let mut banks = BankKeyring::new();
    banks.insert(bank_id, *bank_key().verifying_key());
    banks
}

pub fn recipient() -> CreditRecipient {
    recipient_for(CREDIT_ID)
}

pub fn recipient_for(credit_id: &[u8]) -> CreditRecipient {
    let mut recipient = CreditRecipient::new(credit_id);
    recipient.add_key(credit_key());
    recipient
}

pub fn date(y: u16, m: u8, d: u8) -> Date {
    Date::from_ymd(y, m, d).unwrap()
}

/// The body of golden token 1.
pub fn golden_body() -> TokenBody {
    TokenBody {
        user_name: "Hanako Yamada".into(),
        user_id: "U-000042".into(),
        sum: 1_250_000,
        currency: 392,
        deposit_date: date(2026, 12, 1),
        token_id: *b"TOKEN-0000000001",
        valid_from: date(2026, 12, 1),
        valid_until: date(2027, 1, 31),
        bank_id: BANK_ID.to_vec(),
        bank_account: "0001-234-5678901".into(),
        credit_id: CREDIT_ID.to_vec(),
        pan: "4111111111111111".into(),
        card_binding: [0xCB; 32],
    }
}

/// The body of golden token 2: every field at its longest (a maximal token).
pub fn largest_body() -> TokenBody {
    TokenBody {
        user_name: format!("Ünïcödé Cardholder {}", "x".repeat(25)),
        user_id: "U".repeat(token::MAX_USER_ID),
        sum: u64::MAX,
        currency: 978,
        deposit_date: date(2026, 11, 30),
        token_id: [0xFF; 16],
        valid_from: date(2026, 12, 1),
        valid_until: date(2026, 12, 31),
        bank_id: LARGEST_BANK_ID.to_vec(),
        bank_account: "DE89370400440532013000XXXXXXXXXXXX".into(),
        credit_id: LARGEST_CREDIT_ID.to_vec(),
        pan: "4000000000000000002".into(),
        card_binding: [0x5A; 32],
    }
}

/// A deterministic generator, so a minted token is reproducible (ECDSA here is RFC 6979, HPKE takes `rng`).
pub fn seeded_rng(seed: u8) -> chacha20::ChaCha20Rng {
    chacha20::ChaCha20Rng::from_seed([seed; 32])
}

/// The parts of a token, each replaceable, assembled with real cryptography.
pub struct Forge {
    pub header: ClearHeaderOwned,
    pub body_tlv: Vec<u8>,
    pub inner_key: BankSigningKey,
    pub outer_key: BankSigningKey,
    pub info: Vec<u8>,
}

pub struct ClearHeaderOwned {
    pub token_id: [u8; 16],
    pub bank_id: Vec<u8>,
    pub credit_id: Vec<u8>,
    pub issued: Date,
    pub expires: Date,
    pub bank_key_id: [u8; 8],
    pub credit_key_id: [u8; 8],
    pub card_binding: [u8; 32],
}

impl Forge {
    /// The parts `mint` would use for `body`.
    pub fn of(body: &TokenBody) -> Self {
        let bank = bank_key();
        Self {
            header: ClearHeaderOwned {
                token_id: body.token_id,
                bank_id: body.bank_id.clone(),
                credit_id: body.credit_id.clone(),
                issued: body.valid_from,
                expires: body.valid_until,
                bank_key_id: bank_key_id(bank.verifying_key()),
                credit_key_id: credit_key().public_key().key_id(),
                card_binding: body.card_binding,
            },
            body_tlv: body.encode(),
            inner_key: bank.clone(),
            outer_key: bank,
            info: token::hpke_info(&body.bank_id, &body.credit_id),
        }
    }

    pub fn header_tlv(&self) -> Vec<u8> {
        let h = &self.header;
        ClearHeader {
            token_id: &h.token_id,
            bank_id: &h.bank_id,
            credit_id: &h.credit_id,
            issued: h.issued,
            expires: h.expires,
            bank_key_id: &h.bank_key_id,
            credit_key_id: &h.credit_key_id,
            card_binding: &h.card_binding,
        }
        .encode()
    }

    /// Seals `plaintext` and signs the envelope.
    pub fn build_with_plaintext(&self, plaintext: &[u8]) -> Vec<u8> {
        let header_tlv = self.header_tlv();
        let public =
            <Kem as hpke::Kem>::PublicKey::from_bytes(&credit_key().public_key().to_sec1())
                .unwrap();
        let (enc, ciphertext) =
            hpke::single_shot_seal_with_rng::<hpke::aead::AesGcm128, hpke::kdf::HkdfSha256, Kem>(
                &OpModeS::Base,
                &public,
                &self.info,
                plaintext,
                &header_tlv,
                &mut seeded_rng(9),
            )
            .unwrap();
        let mut encapsulated = [0u8; ENCAPSULATED_KEY_LENGTH];
        encapsulated.copy_from_slice(&enc.to_bytes());
        let sealed = spec::sealed_tlv(&encapsulated, &ciphertext);
        sign_envelope(&self.outer_key, &header_tlv, &sealed)
    }

    pub fn build(&self) -> Vec<u8> {
        let signature: p256::ecdsa::Signature = self
            .inner_key
            .sign(&token::body_signed_message(&self.body_tlv));
        let plaintext = token::plaintext(&self.body_tlv, &signature.to_bytes().into());
        self.build_with_plaintext(&plaintext)
    }
}

pub fn sign_envelope(key: &BankSigningKey, header_tlv: &[u8], sealed_tlv: &[u8]) -> Vec<u8> {
    let signature: p256::ecdsa::Signature = key.sign(&spec::signed_message(header_tlv, sealed_tlv));
    spec::envelope(
        &[header_tlv, sealed_tlv].concat(),
        &signature.to_bytes().into(),
    )
}
