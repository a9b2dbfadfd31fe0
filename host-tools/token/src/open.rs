//! Opening: the credit system's checks, in the order `docs/token.md` §7 fixes, each with its own error.

use apdu_spec::token::{self, ENCAPSULATED_KEY_LENGTH, Envelope, FormatError, SIGNATURE_LENGTH};
use hpke::{Deserializable, OpModeR};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use zeroize::Zeroizing;

use crate::body::{Field, TokenBody};
use crate::keys::{BankKeyring, CreditPrivateKey, CreditRecipient, Kem};
use crate::tlv::read_exact;
use crate::{Date, body_signed_message, hpke_info};

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not a token of this format: not strict BER-TLV, a field missing, out of order or out of bounds, bad dates.
    #[error("malformed token")]
    Malformed,
    /// A format version this crate does not know.
    #[error("unknown token format version {0}")]
    UnknownVersion(u8),
    /// The bank key id is not in the keyring, or the key is not registered for the header's bank id.
    #[error("unknown bank key")]
    UnknownBankKey,
    /// The envelope's signature does not verify under the bank's key.
    #[error("bad outer (envelope) signature")]
    BadOuterSignature,
    /// The token is sealed to another credit key or meant for another credit company.
    #[error("token is for another recipient")]
    WrongRecipient,
    /// HPKE decapsulation or AES-GCM decryption failed.
    #[error("decryption failed")]
    DecryptionFailed,
    /// The body's signature does not verify under the bank's key.
    #[error("bad inner (body) signature")]
    BadInnerSignature,
    /// A field the header repeats differs in the body.
    #[error("header and body disagree on {0:?}")]
    HeaderBodyMismatch(Field),
    /// Before the first day of validity.
    #[error("token is valid from {valid_from}, today is {today}")]
    NotYetValid {
        /// First day of validity.
        valid_from: Date,
        /// The day it was presented.
        today: Date,
    },
    /// After the last day of validity.
    #[error("token expired after {valid_until}, today is {today}")]
    Expired {
        /// Last day of validity.
        valid_until: Date,
        /// The day it was presented.
        today: Date,
    },
    /// The token belongs to another card.
    #[error("token is bound to another card")]
    CardBindingMismatch,
}

fn format_error(error: FormatError) -> OpenError {
    match error {
        FormatError::UnknownVersion(version) => OpenError::UnknownVersion(version),
        FormatError::Malformed | FormatError::BadDate | FormatError::TooLong => {
            OpenError::Malformed
        }
    }
}

/// The public-key operations opening needs, so that a faster implementation can stand in for RustCrypto's on a
/// host (the `aws-lc` feature's [`crate::AwsLc`]); every check around them is [`open_with`]'s, whatever the
/// implementation.
pub trait OpenCrypto {
    /// Whether `signature` (r ‖ s) is a valid ECDSA P-256 / SHA-256 signature of `message` under `key`.
    fn verify(
        &self,
        key: &VerifyingKey,
        message: &[u8],
        signature: &[u8; SIGNATURE_LENGTH],
    ) -> bool;
    /// HPKE base-mode open (the token's suite) of `ciphertext` sealed to `key` with the encapsulated key
    /// `encapsulated`, `info` and `aad`; `None` if decapsulation or decryption fails.
    fn open_sealed(
        &self,
        key: &CreditPrivateKey,
        encapsulated: &[u8; ENCAPSULATED_KEY_LENGTH],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>>;
}

/// RustCrypto's `p256` and `hpke`, as the card's own crates use them.
#[derive(Clone, Copy, Debug, Default)]
pub struct RustCrypto;

impl OpenCrypto for RustCrypto {
    fn verify(
        &self,
        key: &VerifyingKey,
        message: &[u8],
        signature: &[u8; SIGNATURE_LENGTH],
    ) -> bool {
        Signature::from_slice(signature)
            .is_ok_and(|signature| key.verify(message, &signature).is_ok())
    }

    fn open_sealed(
        &self,
        key: &CreditPrivateKey,
        encapsulated: &[u8; ENCAPSULATED_KEY_LENGTH],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let encapsulated = <Kem as hpke::Kem>::EncappedKey::from_bytes(encapsulated).ok()?;
        hpke::single_shot_open::<hpke::aead::AesGcm128, hpke::kdf::HkdfSha256, Kem>(
            &OpModeR::Base,
            key.secret(),
            &encapsulated,
            info,
            ciphertext,
            aad,
        )
        .ok()
        .map(Zeroizing::new)
    }
}

/// Opens `token` for `recipient`, trusting the banks in `banks`, on `today`; when `expected_binding` is given
/// (the digest of the presenting card's credit-applet key), the token must be bound to that card.
pub fn open(
    token: &[u8],
    recipient: &CreditRecipient,
    banks: &BankKeyring,
    today: Date,
    expected_binding: Option<&[u8; 32]>,
) -> Result<TokenBody, OpenError> {
    open_with(
        &RustCrypto,
        token,
        recipient,
        banks,
        today,
        expected_binding,
    )
}

/// [`open`] with the public-key operations of `crypto`: the same checks, in the same order, with the same
/// errors.
pub fn open_with(
    crypto: &(impl OpenCrypto + ?Sized),
    token: &[u8],
    recipient: &CreditRecipient,
    banks: &BankKeyring,
    today: Date,
    expected_binding: Option<&[u8; 32]>,
) -> Result<TokenBody, OpenError> {
    // Framing and version (apdu-spec's parser, the card's own).
    let envelope = Envelope::parse(token).map_err(format_error)?;
    let header = &envelope.header;
    let bank_key = banks
        .key_for(header.bank_key_id, header.bank_id)
        .ok_or(OpenError::UnknownBankKey)?;
    // The outer signature first, so junk costs one verification and no decryption.
    let signed = [token::ENVELOPE_LABEL, envelope.signed].concat();
    if !crypto.verify(bank_key, &signed, envelope.signature) {
        return Err(OpenError::BadOuterSignature);
    }
    let credit_key = recipient
        .key(header.credit_key_id)
        .filter(|_| header.credit_id == recipient.credit_id())
        .ok_or(OpenError::WrongRecipient)?;
    let info = hpke_info(header.bank_id, header.credit_id);
    let plaintext = crypto
        .open_sealed(
            credit_key,
            envelope.encapsulated_key,
            &info,
            envelope.header_tlv,
            envelope.ciphertext,
        )
        .ok_or(OpenError::DecryptionFailed)?;
    let (body_tlv, inner_signature) = split_plaintext(&plaintext)?;
    if !crypto.verify(bank_key, &body_signed_message(body_tlv), inner_signature) {
        return Err(OpenError::BadInnerSignature);
    }
    let body = TokenBody::decode(body_tlv).ok_or(OpenError::Malformed)?;
    check_consistency(&envelope, &body)?;
    check_dates(&body, today)?;
    match expected_binding {
        Some(binding) if *binding != body.card_binding => Err(OpenError::CardBindingMismatch),
        _ => Ok(body),
    }
}

/// Splits the plaintext into the body TLV and the inner signature.
fn split_plaintext(plaintext: &[u8]) -> Result<(&[u8], &[u8; SIGNATURE_LENGTH]), OpenError> {
    let (_, body_tlv, rest) =
        read_exact(plaintext, crate::tag::BODY).ok_or(OpenError::Malformed)?;
    let (signature, _, rest) =
        read_exact(rest, token::tag::SIGNATURE).ok_or(OpenError::Malformed)?;
    if !rest.is_empty() {
        return Err(OpenError::Malformed);
    }
    let signature = signature.try_into().map_err(|_| OpenError::Malformed)?;
    Ok((body_tlv, signature))
}

fn check_consistency(envelope: &Envelope<'_>, body: &TokenBody) -> Result<(), OpenError> {
    let header = &envelope.header;
    let pairs = [
        (header.token_id == &body.token_id, Field::TokenId),
        (header.bank_id == body.bank_id.as_slice(), Field::BankId),
        (
            header.credit_id == body.credit_id.as_slice(),
            Field::CreditId,
        ),
        (header.issued == body.valid_from, Field::ValidFrom),
        (header.expires == body.valid_until, Field::ValidUntil),
        (
            header.card_binding == &body.card_binding,
            Field::CardBinding,
        ),
    ];
    match pairs.into_iter().find(|(same, _)| !same) {
        Some((_, field)) => Err(OpenError::HeaderBodyMismatch(field)),
        None => Ok(()),
    }
}

fn check_dates(body: &TokenBody, today: Date) -> Result<(), OpenError> {
    if today < body.valid_from {
        return Err(OpenError::NotYetValid {
            valid_from: body.valid_from,
            today,
        });
    }
    if today > body.valid_until {
        return Err(OpenError::Expired {
            valid_until: body.valid_until,
            today,
        });
    }
    Ok(())
}
