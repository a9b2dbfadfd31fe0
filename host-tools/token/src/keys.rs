//! The keys a token involves and their identifiers: the bank's ECDSA signing key (verifying keys on the credit
//! side, in a keyring keyed by key id and bound to a bank id), and the credit system's HPKE key pair.

use std::collections::BTreeMap;

use apdu_spec::token::{ENCAPSULATED_KEY_LENGTH, KEY_ID_LENGTH};
use hpke::{Deserializable, Kem as _, Serializable};
use p256::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};

/// The KEM of the token's HPKE suite: DHKEM(P-256, HKDF-SHA256), KEM id 0x0010.
pub(crate) type Kem = hpke::kem::DhP256HkdfSha256;
/// A key identifier: the first 8 bytes of SHA-256 over the uncompressed SEC1 point.
pub type KeyId = [u8; KEY_ID_LENGTH];

/// A key that is not a valid P-256 key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a valid P-256 key")]
pub struct InvalidKey;

/// The key id of an uncompressed SEC1 point (`04 ‖ X ‖ Y`).
pub fn key_id(uncompressed_point: &[u8; ENCAPSULATED_KEY_LENGTH]) -> KeyId {
    let digest = Sha256::digest(uncompressed_point);
    let mut id = [0u8; KEY_ID_LENGTH];
    id.copy_from_slice(digest.get(..KEY_ID_LENGTH).unwrap_or(&[0; KEY_ID_LENGTH]));
    id
}

/// The key id of a bank's verifying key.
pub fn bank_key_id(key: &VerifyingKey) -> KeyId {
    let point = key.to_sec1_point(false);
    let mut bytes = [0u8; ENCAPSULATED_KEY_LENGTH];
    if let Some(uncompressed) = point.as_bytes().get(..ENCAPSULATED_KEY_LENGTH) {
        bytes.copy_from_slice(uncompressed);
    }
    key_id(&bytes)
}

/// The credit system's HPKE public key: what a bank seals tokens to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditPublicKey(pub(crate) <Kem as hpke::Kem>::PublicKey);

impl CreditPublicKey {
    /// Reads an uncompressed SEC1 point.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, InvalidKey> {
        if bytes.len() != ENCAPSULATED_KEY_LENGTH {
            return Err(InvalidKey);
        }
        <Kem as hpke::Kem>::PublicKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| InvalidKey)
    }

    /// The uncompressed SEC1 point, `04 ‖ X ‖ Y`.
    pub fn to_sec1(&self) -> [u8; ENCAPSULATED_KEY_LENGTH] {
        self.0.to_bytes().into()
    }

    /// This key's id, as the header's credit key id names it.
    pub fn key_id(&self) -> KeyId {
        key_id(&self.to_sec1())
    }
}

/// The credit system's HPKE private key (zeroized on drop by the underlying p256 secret key).
#[derive(Clone)]
pub struct CreditPrivateKey {
    secret: <Kem as hpke::Kem>::PrivateKey,
    public: CreditPublicKey,
}

impl core::fmt::Debug for CreditPrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CreditPrivateKey")
            .field("key_id", &self.public.key_id())
            .finish_non_exhaustive()
    }
}

impl CreditPrivateKey {
    /// Reads a 32-byte big-endian scalar (RFC 9180 §7.1.2 SerializePrivateKey).
    pub fn from_bytes(scalar: &[u8; 32]) -> Result<Self, InvalidKey> {
        let secret = <Kem as hpke::Kem>::PrivateKey::from_bytes(scalar).map_err(|_| InvalidKey)?;
        let public = CreditPublicKey(Kem::sk_to_pk(&secret));
        Ok(Self { secret, public })
    }

    /// Derives a key pair from input keying material (RFC 9180 §7.1.3 DeriveKeyPair).
    pub fn derive(ikm: &[u8]) -> Self {
        let (secret, public) = Kem::derive_keypair(ikm);
        Self {
            secret,
            public: CreditPublicKey(public),
        }
    }

    /// A fresh key pair.
    pub fn generate(rng: &mut impl hpke::rand_core::CryptoRng) -> Self {
        let (secret, public) = Kem::gen_keypair_with_rng(rng);
        Self {
            secret,
            public: CreditPublicKey(public),
        }
    }

    /// The public half.
    pub fn public_key(&self) -> &CreditPublicKey {
        &self.public
    }

    pub(crate) fn secret(&self) -> &<Kem as hpke::Kem>::PrivateKey {
        &self.secret
    }
}

/// Who opens tokens: the credit company's id and its HPKE private keys (several while keys rotate).
#[derive(Clone, Debug)]
pub struct CreditRecipient {
    credit_id: Vec<u8>,
    keys: BTreeMap<KeyId, CreditPrivateKey>,
}

impl CreditRecipient {
    /// A recipient with the credit company id `credit_id` and no keys yet.
    pub fn new(credit_id: &[u8]) -> Self {
        Self {
            credit_id: credit_id.to_vec(),
            keys: BTreeMap::new(),
        }
    }

    /// Adds a private key; returns its key id.
    pub fn add_key(&mut self, key: CreditPrivateKey) -> KeyId {
        let id = key.public.key_id();
        self.keys.insert(id, key);
        id
    }

    /// The credit company id.
    pub fn credit_id(&self) -> &[u8] {
        &self.credit_id
    }

    pub(crate) fn key(&self, id: &KeyId) -> Option<&CreditPrivateKey> {
        self.keys.get(id)
    }

    /// Every private key.
    #[cfg_attr(not(feature = "aws-lc"), allow(dead_code))]
    pub(crate) fn keys(&self) -> impl Iterator<Item = &CreditPrivateKey> {
        self.keys.values()
    }
}

/// The banks' verifying keys, by key id, each bound to the bank id it may sign for.
#[derive(Clone, Debug, Default)]
pub struct BankKeyring {
    keys: BTreeMap<KeyId, (Vec<u8>, VerifyingKey)>,
}

impl BankKeyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `key` for tokens of bank `bank_id`; returns its key id.
    pub fn insert(&mut self, bank_id: &[u8], key: VerifyingKey) -> KeyId {
        let id = bank_key_id(&key);
        self.keys.insert(id, (bank_id.to_vec(), key));
        id
    }

    /// Every trusted key.
    pub fn keys(&self) -> impl Iterator<Item = &VerifyingKey> {
        self.keys.values().map(|(_, key)| key)
    }

    /// The key with id `id`, if it is registered for `bank_id`.
    pub(crate) fn key_for(&self, id: &KeyId, bank_id: &[u8]) -> Option<&VerifyingKey> {
        self.keys
            .get(id)
            .filter(|(bank, _)| bank.as_slice() == bank_id)
            .map(|(_, key)| key)
    }
}
