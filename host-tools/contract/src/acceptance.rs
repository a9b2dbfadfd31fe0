//! The credit company's acceptance (credit company → bank, Fig. 9 step 901 / Fig. 6 step 601, with Fig. 15's
//! delivery certificate), and the contract the bank holds once it has imported one.

use apdu_spec::scp11::cert::{self, Certificate, Date, Role};
use card_client::scp11::{Anchor, OceCredentials};
use serde::{Deserialize, Serialize};
use token::{CreditPublicKey, KeyId};

use crate::bundle::{self, BundleError, ExportError, Kind, Mismatch};
use crate::files::Fingerprint;
use crate::offer::CreditContract;
use crate::org::{BankKeys, CreditKeys};
use crate::wire::{self, AnchorWire, Validity};

/// What the issuer needs to personalize the credit applet that belongs to the company rather than to one card
/// (the card's own data, PAN, cardholder, signing key, come with each card).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditAppletParameters {
    /// The highest ATC a card may reach (PRESENT is refused there): at least 1.
    pub atc_limit: u32,
    /// The cardholder PIN's try limit (1-15) if the company's cards require a PIN at PRESENT; `None`: no PIN.
    pub pin_try_limit: Option<u8>,
}

impl CreditAppletParameters {
    fn is_valid(&self) -> bool {
        self.atc_limit >= 1
            && self
                .pin_try_limit
                .is_none_or(|limit| (1..=15).contains(&limit))
    }
}

/// What a credit company answers a bank's offer with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditAcceptance {
    /// The credit company (the tokens' credit id; the credit applet's too).
    pub credit_id: Vec<u8>,
    /// The bank it answers.
    pub bank_id: Vec<u8>,
    /// The fingerprint of the credit company's identity key, which signs the bundle.
    pub credit_identity: Fingerprint,
    /// The key id of the bank's token-signing key it accepted (from the offer).
    pub bank_token_key_id: KeyId,
    /// The HPKE key tokens are sealed to.
    pub hpke_key: CreditPublicKey,
    /// The credit company's OCE CA: the issuer makes it a trust anchor of the credit applet, so the company's
    /// POS terminals can open sessions with it.
    pub oce_ca: Anchor,
    /// The GP certificate (`7F21`) of the bank's delivery key, role token-delivery, signed by `oce_ca`.
    pub delivery_certificate: Vec<u8>,
    /// The credit applet's company-wide parameters.
    pub credit_applet: CreditAppletParameters,
    /// The days the acceptance holds.
    pub validity: Validity,
}

/// The body on the wire, fields in this order (`docs/contract.md` §3.2).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptanceWire {
    credit_id: String,
    bank_id: String,
    credit_identity: String,
    bank_token_key_id: String,
    hpke_key: String,
    oce_ca: AnchorWire,
    delivery_certificate: String,
    credit_applet: CreditAppletParameters,
    valid_from: String,
    valid_until: String,
}

/// A GP certificate is a few hundred bytes; anything much longer is not one.
const MAX_CERTIFICATE: usize = 512;

impl CreditAcceptance {
    fn to_wire(&self) -> AcceptanceWire {
        AcceptanceWire {
            credit_id: hex::encode(&self.credit_id),
            bank_id: hex::encode(&self.bank_id),
            credit_identity: self.credit_identity.to_hex(),
            bank_token_key_id: hex::encode(self.bank_token_key_id),
            hpke_key: hex::encode(self.hpke_key.to_sec1()),
            oce_ca: AnchorWire::from_anchor(&self.oce_ca),
            delivery_certificate: hex::encode(&self.delivery_certificate),
            credit_applet: self.credit_applet,
            valid_from: wire::format_date(self.validity.from),
            valid_until: wire::format_date(self.validity.until),
        }
    }

    fn from_wire(body: &AcceptanceWire) -> Result<Self, BundleError> {
        let hpke_key = wire::point("hpke_key", &body.hpke_key)?;
        if !body.credit_applet.is_valid() {
            return Err(BundleError::InvalidField("credit_applet"));
        }
        Ok(Self {
            credit_id: wire::party_id("credit_id", &body.credit_id)?,
            bank_id: wire::party_id("bank_id", &body.bank_id)?,
            credit_identity: wire::fingerprint("credit_identity", &body.credit_identity)?,
            bank_token_key_id: wire::array("bank_token_key_id", &body.bank_token_key_id)?,
            hpke_key: CreditPublicKey::from_sec1(&hpke_key)
                .map_err(|_| BundleError::InvalidField("hpke_key"))?,
            oce_ca: body.oce_ca.decode("oce_ca")?,
            delivery_certificate: wire::bytes(
                "delivery_certificate",
                &body.delivery_certificate,
                1,
                MAX_CERTIFICATE,
            )?,
            credit_applet: body.credit_applet,
            validity: wire::validity(&body.valid_from, &body.valid_until)?,
        })
    }

    /// The delivery certificate is one certificate, a token-delivery leaf for `delivery_key`, signed by the OCE
    /// CA of this acceptance and valid `today`.
    fn check_delivery(
        &self,
        delivery_key: &apdu_spec::scp11::session::PublicKeyBytes,
        today: Date,
    ) -> Result<(), Mismatch> {
        let (certificate, rest) = Certificate::parse(&self.delivery_certificate)
            .map_err(Mismatch::DeliveryCertificate)?;
        if !rest.is_empty() {
            return Err(Mismatch::DeliveryCertificate(cert::CertError::Malformed));
        }
        if certificate.role() != Some(Role::TokenDelivery) || !certificate.is_key_agreement() {
            return Err(Mismatch::DeliveryRole);
        }
        if certificate.public_key_bytes() != delivery_key {
            return Err(Mismatch::DeliveryKey);
        }
        let issuer = self
            .oce_ca
            .issuer()
            .map_err(|_| Mismatch::DeliveryIssuer(cert::CertError::BadPublicKey))?;
        certificate
            .verify(&issuer, today)
            .map_err(Mismatch::DeliveryIssuer)
    }
}

/// A credit company's acceptance as the bank imported it: checked against the bank's own keys, with the bundle
/// and the credit company's identity key kept so it can be saved and checked again.
#[derive(Clone, Debug)]
pub struct BankContract {
    acceptance: CreditAcceptance,
    bundle: Vec<u8>,
    credit_identity: p256::PublicKey,
}

impl BankContract {
    /// What the credit company answered.
    pub fn acceptance(&self) -> &CreditAcceptance {
        &self.acceptance
    }

    /// The credit company id.
    pub fn credit_id(&self) -> &[u8] {
        &self.acceptance.credit_id
    }

    /// The HPKE key to seal tokens to (`token::mint`).
    pub fn hpke_key(&self) -> &CreditPublicKey {
        &self.acceptance.hpke_key
    }

    /// The credit OCE CA, a trust anchor of the credit applet at issuing.
    pub fn oce_ca(&self) -> &Anchor {
        &self.acceptance.oce_ca
    }

    /// The credit applet's company-wide parameters.
    pub fn credit_applet(&self) -> &CreditAppletParameters {
        &self.acceptance.credit_applet
    }

    /// The days the contract holds.
    pub fn validity(&self) -> Validity {
        self.acceptance.validity
    }

    /// The bank's delivery OCE for this credit company (Fig. 15): the bank's delivery key with the certificate
    /// the credit company issued; it opens SCP11a with the credit applet only to store tokens.
    pub fn delivery_credentials(&self, bank: &BankKeys) -> OceCredentials {
        OceCredentials {
            static_key: bank.delivery_key().to_nonzero_scalar(),
            chain: vec![self.acceptance.delivery_certificate.clone()],
        }
    }

    /// The bundle as received.
    pub fn bundle(&self) -> &[u8] {
        &self.bundle
    }

    /// The credit company's identity key it was verified against.
    pub fn credit_identity(&self) -> &p256::PublicKey {
        &self.credit_identity
    }
}

impl CreditKeys {
    /// The acceptance of the offer in `contract`: the delivery key certified (role token-delivery, subject the
    /// bank id) by this company's OCE CA for `validity` (within the offer's), signed by this company's identity
    /// key.
    pub fn export_acceptance(
        &self,
        contract: &CreditContract,
        credit_applet: CreditAppletParameters,
        validity: Validity,
    ) -> Result<Vec<u8>, ExportError> {
        let offer = contract.offer();
        // The delivery certificate is not to outlive what the bank offered.
        if validity.from < offer.validity.from || validity.until > offer.validity.until {
            return Err(ExportError::OutlastsOffer);
        }
        let delivery_certificate = self
            .organisation()
            .oce_ca()
            .certify(
                &offer.bank_id,
                &offer.delivery_key,
                Some(Role::TokenDelivery),
                validity.from,
                validity.until,
            )
            .map_err(ExportError::Certificate)?;
        let acceptance = CreditAcceptance {
            credit_id: self.id().to_vec(),
            bank_id: offer.bank_id.clone(),
            credit_identity: self.organisation().fingerprint(),
            bank_token_key_id: token::bank_key_id(&offer.token_key),
            hpke_key: self.hpke_key().public_key().clone(),
            oce_ca: self.organisation().oce_ca().anchor(),
            delivery_certificate,
            credit_applet,
            validity,
        };
        let body = bundle::encode_body(&acceptance.to_wire())?;
        bundle::seal(Kind::CreditAcceptance, body, self.organisation().identity())
    }
}

impl BankKeys {
    /// Imports a credit company's acceptance: signed by `credit_identity` (handed over out of band), addressed
    /// to this bank, answering this bank's keys, valid `today`. Writes nothing.
    pub fn import_acceptance(
        &self,
        bytes: &[u8],
        credit_identity: &p256::PublicKey,
        today: Date,
    ) -> Result<BankContract, BundleError> {
        let body = bundle::open(bytes, Kind::CreditAcceptance, credit_identity)?;
        let acceptance = CreditAcceptance::from_wire(&bundle::decode_body(&body)?)?;
        let expected = Fingerprint::of(credit_identity);
        if acceptance.credit_identity != expected {
            return Err(BundleError::WrongSigner {
                expected,
                found: acceptance.credit_identity.to_hex(),
            });
        }
        if acceptance.bank_id != self.id() {
            return Err(BundleError::NotForUs {
                expected: hex::encode(self.id()),
                found: hex::encode(&acceptance.bank_id),
            });
        }
        if acceptance.bank_token_key_id
            != token::bank_key_id(self.token_signing_key().verifying_key())
        {
            return Err(BundleError::OfferMismatch(Mismatch::TokenKey));
        }
        acceptance
            .check_delivery(&self.delivery_public_key(), today)
            .map_err(BundleError::OfferMismatch)?;
        acceptance.validity.check(today)?;
        Ok(BankContract {
            acceptance,
            bundle: bytes.to_vec(),
            credit_identity: *credit_identity,
        })
    }
}
