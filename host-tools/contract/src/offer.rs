//! The bank's offer (bank → credit company, Fig. 6 step 601 / Fig. 9 step 901), and the contract the credit
//! company holds once it has imported one.

use apdu_spec::scp11::cert::Date;
use apdu_spec::scp11::session::PublicKeyBytes;
use card_client::scp11::Anchor;
use serde::{Deserialize, Serialize};
use token::{BankKeyring, BankVerifyingKey, KeyId};

use crate::bundle::{self, BundleError, ExportError, Kind};
use crate::files::Fingerprint;
use crate::org::{BankKeys, CreditKeys};
use crate::wire::{self, AnchorWire, Validity};

/// What a bank offers a credit company.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankOffer {
    /// The bank (the tokens' bank id).
    pub bank_id: Vec<u8>,
    /// The credit company the offer is for.
    pub credit_id: Vec<u8>,
    /// The fingerprint of the bank's identity key, which signs the bundle.
    pub bank_identity: Fingerprint,
    /// The key that verifies the bank's tokens (`token::BankKeyring::insert`).
    pub token_key: BankVerifyingKey,
    /// The CA that certifies the cards' domain keys: the POS verifies a card's certificate against it.
    pub card_ca: Anchor,
    /// The bank's delivery OCE public key, for the credit company to certify (role token-delivery, Fig. 15).
    pub delivery_key: PublicKeyBytes,
    /// The days the offer holds.
    pub validity: Validity,
}

/// The body on the wire, fields in this order (`docs/contract.md` §3.1).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OfferWire {
    bank_id: String,
    credit_id: String,
    bank_identity: String,
    token_key: String,
    card_ca: AnchorWire,
    delivery_key: String,
    valid_from: String,
    valid_until: String,
}

impl BankOffer {
    fn to_wire(&self) -> OfferWire {
        OfferWire {
            bank_id: hex::encode(&self.bank_id),
            credit_id: hex::encode(&self.credit_id),
            bank_identity: self.bank_identity.to_hex(),
            token_key: hex::encode(self.token_key.to_sec1_point(false).as_bytes()),
            card_ca: AnchorWire::from_anchor(&self.card_ca),
            delivery_key: hex::encode(self.delivery_key),
            valid_from: wire::format_date(self.validity.from),
            valid_until: wire::format_date(self.validity.until),
        }
    }

    fn from_wire(body: &OfferWire) -> Result<Self, BundleError> {
        let token_key = wire::point("token_key", &body.token_key)?;
        Ok(Self {
            bank_id: wire::party_id("bank_id", &body.bank_id)?,
            credit_id: wire::party_id("credit_id", &body.credit_id)?,
            bank_identity: wire::fingerprint("bank_identity", &body.bank_identity)?,
            token_key: BankVerifyingKey::from_sec1_bytes(&token_key)
                .map_err(|_| BundleError::InvalidField("token_key"))?,
            card_ca: body.card_ca.decode("card_ca")?,
            delivery_key: wire::point("delivery_key", &body.delivery_key)?,
            validity: wire::validity(&body.valid_from, &body.valid_until)?,
        })
    }
}

/// A bank's offer as the credit company imported it: checked, with the bundle and the bank's identity key kept
/// so it can be saved and checked again.
#[derive(Clone, Debug)]
pub struct CreditContract {
    offer: BankOffer,
    bundle: Vec<u8>,
    bank_identity: p256::PublicKey,
}

impl CreditContract {
    /// What the bank offered.
    pub fn offer(&self) -> &BankOffer {
        &self.offer
    }

    /// The bank id.
    pub fn bank_id(&self) -> &[u8] {
        &self.offer.bank_id
    }

    /// The key that verifies the bank's tokens.
    pub fn token_key(&self) -> &BankVerifyingKey {
        &self.offer.token_key
    }

    /// Trusts the bank's token key for its bank id (`token::open` then accepts its tokens); returns the key id.
    pub fn register(&self, keyring: &mut BankKeyring) -> KeyId {
        keyring.insert(&self.offer.bank_id, self.offer.token_key)
    }

    /// The card CA, to verify a card's certificate at the POS (`card_client::scp11::card_key`).
    pub fn card_ca(&self) -> &Anchor {
        &self.offer.card_ca
    }

    /// The days the contract holds.
    pub fn validity(&self) -> Validity {
        self.offer.validity
    }

    /// The bundle as received.
    pub fn bundle(&self) -> &[u8] {
        &self.bundle
    }

    /// The bank's identity key it was verified against.
    pub fn bank_identity(&self) -> &p256::PublicKey {
        &self.bank_identity
    }
}

impl BankKeys {
    /// The offer to credit company `credit_id`, signed by this bank's identity key: the bytes of the file to send.
    pub fn export_offer(
        &self,
        credit_id: &[u8],
        validity: Validity,
    ) -> Result<Vec<u8>, ExportError> {
        if credit_id.is_empty() || credit_id.len() > apdu_spec::token::MAX_PARTY_ID {
            return Err(ExportError::InvalidId);
        }
        let offer = BankOffer {
            bank_id: self.id().to_vec(),
            credit_id: credit_id.to_vec(),
            bank_identity: self.organisation().fingerprint(),
            token_key: *self.token_signing_key().verifying_key(),
            card_ca: self.card_ca().anchor(),
            delivery_key: self.delivery_public_key(),
            validity,
        };
        let body = bundle::encode_body(&offer.to_wire())?;
        bundle::seal(Kind::BankOffer, body, self.organisation().identity())
    }
}

impl CreditKeys {
    /// Imports a bank's offer: signed by `bank_identity` (the key the bank handed over out of band), addressed to
    /// this company, valid `today`. Writes nothing.
    pub fn import_offer(
        &self,
        bytes: &[u8],
        bank_identity: &p256::PublicKey,
        today: Date,
    ) -> Result<CreditContract, BundleError> {
        let body = bundle::open(bytes, Kind::BankOffer, bank_identity)?;
        let offer = BankOffer::from_wire(&bundle::decode_body(&body)?)?;
        let expected = Fingerprint::of(bank_identity);
        if offer.bank_identity != expected {
            return Err(BundleError::WrongSigner {
                expected,
                found: offer.bank_identity.to_hex(),
            });
        }
        if offer.credit_id != self.id() {
            return Err(BundleError::NotForUs {
                expected: hex::encode(self.id()),
                found: hex::encode(&offer.credit_id),
            });
        }
        offer.validity.check(today)?;
        Ok(CreditContract {
            offer,
            bundle: bytes.to_vec(),
            bank_identity: *bank_identity,
        })
    }
}
