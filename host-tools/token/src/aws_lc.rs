//! The credit system's fast path (feature `aws-lc`): [`AwsLc`] does opening's public-key operations with AWS-LC
//! (`aws-lc-rs`): the three ECDSA P-256 verifications and HPKE's ECDH, several times faster on a host than
//! RustCrypto's portable arithmetic, which stays on the card. The rest of HPKE is RustCrypto's HKDF and AES-GCM,
//! composed as RFC 9180 §4.1 (DHKEM `ExtractAndExpand`) and §5.1 (`KeySchedule`, base mode) define it for the
//! token's suite: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, one message (sequence number 0).
//!
//! Checked against RFC 9180 §A.3.1 (`tests/rfc9180.rs`) and against [`crate::RustCrypto`] on the golden tokens
//! and on random tokens and mutations (`tests/aws_lc.rs`).

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Nonce};
use apdu_spec::token::{ENCAPSULATED_KEY_LENGTH, SIGNATURE_LENGTH};
use aws_lc_rs::agreement::{self, ECDH_P256, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::signature::{self, ECDSA_P256_SHA256_FIXED};
use hkdf::Hkdf;
use hpke::Serializable;
use p256::ecdsa::VerifyingKey;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::keys::{CreditPrivateKey, CreditRecipient, InvalidKey, KeyId};
use crate::open::OpenCrypto;
use crate::{AEAD_ID, KDF_ID, KEM_ID};

/// AES-128-GCM key length (Nk).
const KEY_LENGTH: usize = 16;
/// AES-GCM nonce length (Nn).
const NONCE_LENGTH: usize = 12;
/// HKDF-SHA256 output and the DHKEM shared secret length (Nh, Nsecret).
const HASH_LENGTH: usize = 32;

/// AWS-LC for the public-key operations, with the credit system's HPKE keys loaded once, and the verifying
/// keys it trusts (the banks') parsed once.
pub struct AwsLc {
    keys: BTreeMap<KeyId, Recipient>,
    /// Parsed verifying keys by uncompressed SEC1 point; any other key is parsed at each verification.
    parsed: BTreeMap<[u8; ENCAPSULATED_KEY_LENGTH], signature::ParsedPublicKey>,
}

/// One HPKE private key in AWS-LC's form, with the public key the KEM context needs.
struct Recipient {
    private: PrivateKey,
    public: [u8; ENCAPSULATED_KEY_LENGTH],
}

impl core::fmt::Debug for AwsLc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AwsLc")
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl AwsLc {
    /// Loads every private key of `recipient`.
    pub fn for_recipient(recipient: &CreditRecipient) -> Result<Self, InvalidKey> {
        let mut keys = BTreeMap::new();
        for key in recipient.keys() {
            let scalar = Zeroizing::new(key.secret().to_bytes());
            let private =
                PrivateKey::from_private_key(&ECDH_P256, &scalar).map_err(|_| InvalidKey)?;
            let public = key.public_key().to_sec1();
            keys.insert(key.public_key().key_id(), Recipient { private, public });
        }
        Ok(Self {
            keys,
            parsed: BTreeMap::new(),
        })
    }

    /// Parses `key` once for every later verification with it (a bank's token key; a card's key changes from
    /// one authorization to the next and is not worth keeping).
    pub fn keep_parsed(&mut self, key: &VerifyingKey) -> Result<(), InvalidKey> {
        let point = sec1(key);
        let parsed = signature::ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .map_err(|_| InvalidKey)?;
        self.parsed.insert(point, parsed);
        Ok(())
    }
}

fn sec1(key: &VerifyingKey) -> [u8; ENCAPSULATED_KEY_LENGTH] {
    let mut point = [0u8; ENCAPSULATED_KEY_LENGTH];
    point.copy_from_slice(key.to_sec1_point(false).as_bytes());
    point
}

impl OpenCrypto for AwsLc {
    fn verify(
        &self,
        key: &VerifyingKey,
        message: &[u8],
        signature: &[u8; SIGNATURE_LENGTH],
    ) -> bool {
        let point = sec1(key);
        match self.parsed.get(&point) {
            Some(parsed) => parsed.verify_sig(message, signature).is_ok(),
            None => signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature)
                .is_ok(),
        }
    }

    fn open_sealed(
        &self,
        key: &CreditPrivateKey,
        encapsulated: &[u8; ENCAPSULATED_KEY_LENGTH],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let recipient = self.keys.get(&key.public_key().key_id())?;
        open_base(
            &recipient.private,
            &recipient.public,
            encapsulated,
            info,
            aad,
            ciphertext,
        )
    }
}

/// RFC 9180 base-mode single-shot open for the token's suite: decapsulate with `private` (whose public key is
/// `public`), derive key and nonce from `info`, decrypt `ciphertext` with `aad`.
pub fn open_base(
    private: &PrivateKey,
    public: &[u8; ENCAPSULATED_KEY_LENGTH],
    encapsulated: &[u8; ENCAPSULATED_KEY_LENGTH],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let peer = UnparsedPublicKey::new(&ECDH_P256, encapsulated);
    let dh = agreement::agree(private, peer, (), |dh| {
        Ok(Zeroizing::new(
            <[u8; HASH_LENGTH]>::try_from(dh).map_err(|_| ())?,
        ))
    })
    .ok()?;
    let shared_secret = decapsulated_secret(&dh, encapsulated, public)?;
    let (key, nonce) = key_schedule(&shared_secret, info)?;
    let cipher = Aes128Gcm::new_from_slice(key.as_slice()).ok()?;
    let nonce = Nonce::try_from(nonce.as_slice()).ok()?;
    cipher
        .decrypt(
            &nonce,
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// DHKEM `ExtractAndExpand(dh, enc ‖ pkRm)` (RFC 9180 §4.1), suite id `KEM ‖ kem_id`.
fn decapsulated_secret(
    dh: &[u8; HASH_LENGTH],
    encapsulated: &[u8; ENCAPSULATED_KEY_LENGTH],
    public: &[u8; ENCAPSULATED_KEY_LENGTH],
) -> Option<Zeroizing<[u8; HASH_LENGTH]>> {
    let suite = [b"KEM".as_slice(), &KEM_ID.to_be_bytes()].concat();
    let eae_prk = labeled_extract(&[], &suite, b"eae_prk", dh);
    let kem_context = [encapsulated.as_slice(), public.as_slice()].concat();
    let mut shared_secret = Zeroizing::new([0u8; HASH_LENGTH]);
    labeled_expand(
        &eae_prk,
        &suite,
        b"shared_secret",
        &kem_context,
        shared_secret.as_mut_slice(),
    )?;
    Some(shared_secret)
}

/// The base-mode `KeySchedule` (RFC 9180 §5.1, no PSK): the AEAD key and base nonce.
#[allow(clippy::type_complexity)]
fn key_schedule(
    shared_secret: &[u8; HASH_LENGTH],
    info: &[u8],
) -> Option<(Zeroizing<[u8; KEY_LENGTH]>, [u8; NONCE_LENGTH])> {
    let suite = [
        b"HPKE".as_slice(),
        &KEM_ID.to_be_bytes(),
        &KDF_ID.to_be_bytes(),
        &AEAD_ID.to_be_bytes(),
    ]
    .concat();
    let psk_id_hash = labeled_extract(&[], &suite, b"psk_id_hash", &[]);
    let info_hash = labeled_extract(&[], &suite, b"info_hash", info);
    // mode_base (0) ‖ psk_id_hash ‖ info_hash
    let context = [
        [0u8].as_slice(),
        psk_id_hash.as_slice(),
        info_hash.as_slice(),
    ]
    .concat();
    let secret = labeled_extract(shared_secret, &suite, b"secret", &[]);
    let mut key = Zeroizing::new([0u8; KEY_LENGTH]);
    labeled_expand(&secret, &suite, b"key", &context, key.as_mut_slice())?;
    let mut nonce = [0u8; NONCE_LENGTH];
    labeled_expand(&secret, &suite, b"base_nonce", &context, &mut nonce)?;
    Some((key, nonce))
}

/// `LabeledExtract(salt, label, ikm)` = HKDF-Extract(salt, "HPKE-v1" ‖ suite ‖ label ‖ ikm).
fn labeled_extract(
    salt: &[u8],
    suite: &[u8],
    label: &[u8],
    ikm: &[u8],
) -> Zeroizing<[u8; HASH_LENGTH]> {
    let input = Zeroizing::new([b"HPKE-v1".as_slice(), suite, label, ikm].concat());
    let (prk, _) = Hkdf::<Sha256>::extract(Some(salt), &input);
    Zeroizing::new(prk.into())
}

/// `LabeledExpand(prk, label, info, L)` = HKDF-Expand(prk, I2OSP(L, 2) ‖ "HPKE-v1" ‖ suite ‖ label ‖ info, L).
fn labeled_expand(
    prk: &[u8; HASH_LENGTH],
    suite: &[u8],
    label: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Option<()> {
    let length = u16::try_from(out.len()).ok()?.to_be_bytes();
    let labeled = [length.as_slice(), b"HPKE-v1", suite, label, info].concat();
    Hkdf::<Sha256>::from_prk(prk)
        .ok()?
        .expand(&labeled, out)
        .ok()
}
