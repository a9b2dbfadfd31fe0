//! The linkcard payment token (patent Fig. 12/13, `docs/token.md`): the bank **mints** a token (signs the body,
//! seals body and signature to the credit system with HPKE, signs the envelope), the credit system **opens** it
//! (checks the envelope signature, decrypts, checks the body signature and the body against the clear header,
//! the dates and the card). The envelope framing (`7F71`: clear header, sealed body, outer signature) is
//! [`apdu_spec::token`]'s, as the card reads it; this crate adds the body and the cryptography.
//!
//! Suite: ECDSA P-256 / SHA-256 (raw r ‖ s) for both signatures; HPKE (RFC 9180) base mode with
//! DHKEM(P-256, HKDF-SHA256), HKDF-SHA256 and AES-128-GCM.

#[cfg(feature = "aws-lc")]
pub mod aws_lc;
mod body;
mod keys;
mod mint;
mod open;
mod tlv;

pub use apdu_spec::scp11::cert::Date;
#[cfg(feature = "aws-lc")]
pub use aws_lc::AwsLc;
pub use body::{
    Field, MAX_BANK_ACCOUNT, MAX_CURRENCY, MAX_USER_ID, MAX_USER_NAME, PAN_DIGITS, TokenBody, tag,
};
pub use keys::{
    BankKeyring, CreditPrivateKey, CreditPublicKey, CreditRecipient, InvalidKey, KeyId,
    bank_key_id, key_id,
};
pub use mint::{MintError, mint, os_rng};
pub use open::{OpenCrypto, OpenError, RustCrypto, open, open_with};
pub use p256::ecdsa::{SigningKey as BankSigningKey, VerifyingKey as BankVerifyingKey};

/// What the bank's inner signature covers comes after this label: `BODY_LABEL ‖ body TLV (A3 …)`.
pub const BODY_LABEL: &[u8] = b"linkcard token body v1";
/// HPKE KEM id: DHKEM(P-256, HKDF-SHA256) (RFC 9180 §7.1).
pub const KEM_ID: u16 = 0x0010;
/// HPKE KDF id: HKDF-SHA256 (RFC 9180 §7.2).
pub const KDF_ID: u16 = 0x0001;
/// HPKE AEAD id: AES-128-GCM (RFC 9180 §7.3).
pub const AEAD_ID: u16 = 0x0001;

/// The HPKE `info`: version ‖ len(bank id) ‖ bank id ‖ len(credit id) ‖ credit id, each length one byte
/// (ids are 1-16 bytes), so no two (bank, credit) pairs share an `info`.
pub fn hpke_info(bank_id: &[u8], credit_id: &[u8]) -> Vec<u8> {
    let mut info = Vec::with_capacity(3 + bank_id.len() + credit_id.len());
    info.push(apdu_spec::token::VERSION);
    for id in [bank_id, credit_id] {
        // Ids are at most MAX_PARTY_ID (16) bytes: checked at mint and by the header parser.
        info.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
        info.extend_from_slice(id);
    }
    info
}

/// What the inner signature signs: [`BODY_LABEL`] ‖ body TLV.
pub fn body_signed_message(body_tlv: &[u8]) -> Vec<u8> {
    [BODY_LABEL, body_tlv].concat()
}

/// The HPKE plaintext: body TLV ‖ `5F37 40` inner signature.
pub fn plaintext(body_tlv: &[u8], signature: &[u8; apdu_spec::token::SIGNATURE_LENGTH]) -> Vec<u8> {
    let mut out = body_tlv.to_vec();
    tlv::push_tlv(&mut out, apdu_spec::token::tag::SIGNATURE, signature);
    out
}
