//! Minting: sign the body, seal body ‖ signature to the credit system, sign the envelope.

use apdu_spec::token::{self, ClearHeader, ENCAPSULATED_KEY_LENGTH, MAX_TOKEN, SIGNATURE_LENGTH};
use hpke::rand_core::CryptoRng;
use hpke::{OpModeS, Serializable};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use zeroize::Zeroizing;

use crate::body::{Field, TokenBody};
use crate::keys::{CreditPublicKey, Kem, bank_key_id};
use crate::{body_signed_message, hpke_info, plaintext};

/// Why a token could not be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// A body field is out of its bounds (`docs/token.md` §4).
    #[error("body field {0:?} is out of its bounds")]
    InvalidField(Field),
    /// The signature could not be made.
    #[error("ECDSA signing failed")]
    Signing,
    /// HPKE encapsulation or sealing failed.
    #[error("HPKE sealing failed")]
    Seal(#[source] hpke::HpkeError),
    /// The token would exceed `apdu_spec::token::MAX_TOKEN` (cannot happen with bounded fields).
    #[error("token of {0} bytes exceeds the format's maximum")]
    TooLong(usize),
    /// The operating system's random generator failed.
    #[error("the operating system's random generator failed")]
    Entropy(#[source] getrandom::Error),
}

/// A generator seeded from the operating system, for [`mint`].
pub fn os_rng() -> Result<chacha20::ChaCha20Rng, MintError> {
    use chacha20::rand_core::SeedableRng;
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(MintError::Entropy)?;
    Ok(chacha20::ChaCha20Rng::from_seed(*seed))
}

fn sign(key: &SigningKey, message: &[u8]) -> Result<[u8; SIGNATURE_LENGTH], MintError> {
    let signature: Signature = key.try_sign(message).map_err(|_| MintError::Signing)?;
    Ok(signature.to_bytes().into())
}

/// Mints a token for `body`: signed by `bank_key`, sealed to `credit_key`, with fresh HPKE randomness from `rng`.
/// The clear header repeats the body's token id, bank and credit ids, validity (issued = valid from, expires =
/// valid until) and card binding, and names both keys by id.
pub fn mint(
    body: &TokenBody,
    bank_key: &SigningKey,
    credit_key: &CreditPublicKey,
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, MintError> {
    if let Some(field) = body.invalid_field() {
        return Err(MintError::InvalidField(field));
    }
    let bank_key_id = bank_key_id(bank_key.verifying_key());
    let credit_key_id = credit_key.key_id();
    let header_tlv = ClearHeader {
        token_id: &body.token_id,
        bank_id: &body.bank_id,
        credit_id: &body.credit_id,
        issued: body.valid_from,
        expires: body.valid_until,
        bank_key_id: &bank_key_id,
        credit_key_id: &credit_key_id,
        card_binding: &body.card_binding,
    }
    .encode();

    let body_tlv = Zeroizing::new(body.encode());
    let inner_signature = sign(bank_key, &body_signed_message(&body_tlv))?;
    let sealed_plaintext = Zeroizing::new(plaintext(&body_tlv, &inner_signature));
    let info = hpke_info(&body.bank_id, &body.credit_id);
    let (encapsulated, ciphertext) =
        hpke::single_shot_seal_with_rng::<hpke::aead::AesGcm128, hpke::kdf::HkdfSha256, Kem>(
            &OpModeS::Base,
            &credit_key.0,
            &info,
            &sealed_plaintext,
            &header_tlv,
            rng,
        )
        .map_err(MintError::Seal)?;
    let encapsulated_key: [u8; ENCAPSULATED_KEY_LENGTH] = encapsulated.to_bytes().into();

    let sealed_tlv = token::sealed_tlv(&encapsulated_key, &ciphertext);
    let outer_signature = sign(bank_key, &token::signed_message(&header_tlv, &sealed_tlv))?;
    let envelope = token::envelope(&[header_tlv, sealed_tlv].concat(), &outer_signature);
    if envelope.len() > MAX_TOKEN {
        return Err(MintError::TooLong(envelope.len()));
    }
    Ok(envelope)
}
