//! The signed outer layer of every bundle (`docs/contract.md` §2): a JSON object naming the format, its version,
//! the kind of bundle and the signer's fingerprint, with the body as the exact text that was signed and an
//! ECDSA P-256 / SHA-256 signature over a per-kind label followed by those bytes.

use apdu_spec::scp11::cert::{CertError, Date};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::files::Fingerprint;

/// The value of a bundle's `format` field.
pub const FORMAT: &str = "linkcard-contract";
/// The bundle format version this crate writes and reads.
pub const VERSION: u64 = 1;

/// Which bundle: who sends it to whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Bank → credit company.
    BankOffer,
    /// Credit company → bank.
    CreditAcceptance,
}

impl Kind {
    /// What the signature covers before the body: distinct per kind (and neither a prefix of the other), so an
    /// offer's signature never verifies as an acceptance's, nor as anything else the identity key signs.
    pub const fn label(self) -> &'static [u8] {
        match self {
            Self::BankOffer => b"linkcard contract bank-offer v1",
            Self::CreditAcceptance => b"linkcard contract credit-acceptance v1",
        }
    }
}

/// What in an acceptance does not answer the bank's offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// It accepts another token-signing key than this bank's.
    #[error("it accepts another token-signing key than ours")]
    TokenKey,
    /// The delivery certificate is not a single GP certificate.
    #[error("the delivery certificate does not parse")]
    DeliveryCertificate(#[source] CertError),
    /// The delivery certificate certifies another key than this bank's delivery key.
    #[error("the delivery certificate certifies another key than our delivery key")]
    DeliveryKey,
    /// The delivery certificate's role is not token-delivery (or it is not a key-agreement leaf).
    #[error("the delivery certificate is not a token-delivery leaf certificate")]
    DeliveryRole,
    /// The delivery certificate is not signed by the credit OCE CA of the bundle, or not valid today.
    #[error("the delivery certificate does not verify against the credit company's OCE CA")]
    DeliveryIssuer(#[source] CertError),
}

/// Why a bundle was refused. Nothing is written when an import fails.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The file ends early (cut short in transit, say).
    #[error("the bundle is truncated")]
    Truncated,
    /// Not JSON, or not the fields of this format.
    #[error("the bundle is not well-formed")]
    Malformed(#[source] serde_json::Error),
    /// JSON, but not a linkcard contract bundle (`format` is something else).
    #[error("not a linkcard contract bundle")]
    NotABundle,
    /// A format version this crate does not read.
    #[error("unknown bundle format version {0}")]
    UnknownVersion(u64),
    /// Not in the one encoding the format allows (spacing, escapes, field order, hex case...).
    #[error("the bundle is not in its canonical encoding")]
    NotCanonical,
    /// Another kind of bundle than the one expected.
    #[error("expected a {expected:?} bundle, found a {found:?}")]
    WrongKind {
        /// What the importer asked for.
        expected: Kind,
        /// What the file is.
        found: Kind,
    },
    /// Signed (or claimed to be signed) by another key than the sender's identity key given to the importer.
    #[error("signed by {found}, not by the expected sender {expected}")]
    WrongSigner {
        /// The fingerprint of the identity key the importer was given.
        expected: Fingerprint,
        /// The fingerprint the bundle names.
        found: String,
    },
    /// The signature does not verify under the sender's identity key.
    #[error("bad signature")]
    BadSignature,
    /// A body field is out of its bounds or not in its encoding.
    #[error("invalid field {0}")]
    InvalidField(&'static str),
    /// The bundle is addressed to another organisation.
    #[error("the bundle is for {found}, we are {expected}")]
    NotForUs {
        /// Our id (hex).
        expected: String,
        /// The id the bundle names (hex).
        found: String,
    },
    /// The acceptance does not answer our offer.
    #[error("the acceptance does not match our offer")]
    OfferMismatch(#[source] Mismatch),
    /// Before its first day.
    #[error("the contract is valid from {valid_from}, today is {today}")]
    NotYetValid {
        /// First day of validity.
        valid_from: Date,
        /// Today.
        today: Date,
    },
    /// After its last day.
    #[error("the contract expired after {valid_until}, today is {today}")]
    Expired {
        /// Last day of validity.
        valid_until: Date,
        /// Today.
        today: Date,
    },
}

/// Why a bundle could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The identity key could not sign.
    #[error("signing failed")]
    Signing,
    /// A party id is not 1-16 bytes.
    #[error("a party id must be 1-16 bytes")]
    InvalidId,
    /// An acceptance would hold on days the offer does not.
    #[error("the acceptance must hold within the offer's days")]
    OutlastsOffer,
    /// The delivery certificate could not be made.
    #[error("cannot certify the bank's delivery key")]
    Certificate(#[source] card_client::scp11::Scp11Error),
    /// The bundle could not be encoded (cannot happen with the types here).
    #[error("cannot encode the bundle")]
    Encode(#[source] serde_json::Error),
}

/// The outer object, fields in file order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    format: String,
    version: u64,
    kind: Kind,
    signer: String,
    body: String,
    signature: String,
}

/// What is read before anything else: a bundle of another version may have other fields.
#[derive(Deserialize)]
struct Probe {
    format: String,
    version: u64,
}

fn json_error(error: serde_json::Error) -> BundleError {
    if error.classify() == serde_json::error::Category::Eof {
        BundleError::Truncated
    } else {
        BundleError::Malformed(error)
    }
}

/// The one encoding of an envelope: pretty JSON, two-space indent, a final newline.
fn encode(envelope: &Envelope) -> Result<Vec<u8>, serde_json::Error> {
    let mut bytes = serde_json::to_vec_pretty(envelope)?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn signed_message(kind: Kind, body: &str) -> Vec<u8> {
    [kind.label(), body.as_bytes()].concat()
}

/// Signs `body` (already in its canonical encoding) as a `kind` bundle with `identity`.
pub(crate) fn seal(
    kind: Kind,
    body: String,
    identity: &SigningKey,
) -> Result<Vec<u8>, ExportError> {
    let signature: Signature = identity
        .try_sign(&signed_message(kind, &body))
        .map_err(|_| ExportError::Signing)?;
    // Low S: the one signature of the two (s, n - s) that verifiers accept, so a bundle has one encoding.
    let signature = signature.normalize_s();
    let signer = Fingerprint::of(&p256::PublicKey::from(identity.verifying_key()));
    let envelope = Envelope {
        format: FORMAT.to_owned(),
        version: VERSION,
        kind,
        signer: signer.to_hex(),
        body,
        signature: hex::encode(signature.to_bytes()),
    };
    encode(&envelope).map_err(ExportError::Encode)
}

/// Checks a `kind` bundle from `sender` and returns its body text, verified; the caller decodes the body.
pub(crate) fn open(
    bytes: &[u8],
    kind: Kind,
    sender: &p256::PublicKey,
) -> Result<String, BundleError> {
    let probe: Probe = serde_json::from_slice(bytes).map_err(json_error)?;
    if probe.format != FORMAT {
        return Err(BundleError::NotABundle);
    }
    if probe.version != VERSION {
        return Err(BundleError::UnknownVersion(probe.version));
    }
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(json_error)?;
    if encode(&envelope).map_err(BundleError::Malformed)? != bytes {
        return Err(BundleError::NotCanonical);
    }
    if envelope.kind != kind {
        return Err(BundleError::WrongKind {
            expected: kind,
            found: envelope.kind,
        });
    }
    let expected = Fingerprint::of(sender);
    if envelope.signer != expected.to_hex() {
        return Err(BundleError::WrongSigner {
            expected,
            found: envelope.signer,
        });
    }
    let signature = crate::wire::array::<64>("signature", &envelope.signature)
        .ok()
        .and_then(|raw| Signature::from_slice(&raw).ok())
        .filter(|signature| signature.normalize_s() == *signature)
        .ok_or(BundleError::BadSignature)?;
    VerifyingKey::from(sender)
        .verify(&signed_message(kind, &envelope.body), &signature)
        .map_err(|_| BundleError::BadSignature)?;
    Ok(envelope.body)
}

/// Decodes a verified body into its wire struct, refusing any other spelling than the one it re-encodes to.
pub(crate) fn decode_body<W>(body: &str) -> Result<W, BundleError>
where
    W: serde::de::DeserializeOwned + Serialize,
{
    let wire: W = serde_json::from_str(body).map_err(json_error)?;
    if serde_json::to_string(&wire).map_err(BundleError::Malformed)? != body {
        return Err(BundleError::NotCanonical);
    }
    Ok(wire)
}

/// The one encoding of a body: compact JSON, fields in declaration order.
pub(crate) fn encode_body<W: Serialize>(wire: &W) -> Result<String, ExportError> {
    serde_json::to_string(wire).map_err(ExportError::Encode)
}
