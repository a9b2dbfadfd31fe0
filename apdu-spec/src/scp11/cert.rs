//! GlobalPlatform SCP11 certificates (Card Specification v2.3 Amendment F), ECDSA on NIST P-256 with
//! SHA-256, and the linkcard [`Role`] they carry.
//!
//! ```text
//! 7F21 L
//!   93   serial number                   1..=20 bytes
//!   42   CA-KLOC identifier              1..=20 bytes  (the issuer's subject identifier)
//!   5F20 subject identifier              1..=20 bytes
//!   95   key usage                       1..=2 bytes, big-endian
//!   5F25 effective date                  4 bytes YYYYMMDD (optional)
//!   5F24 expiration date                 4 bytes YYYYMMDD
//!   53   discretionary data              4C <role> (optional, linkcard)
//!   7F49 public key { B0 04||X||Y (65 bytes) ; F0 01 00 (optional: key parameter reference, P-256) }
//!   5F37 signature                       r||s (64 bytes) or ASN.1 DER
//! ```
//!
//! The signature covers the encodings of every field before `5F37` exactly as received. Parsing borrows from
//! the input, is strict (fixed order, no unknown or repeated tags) and never panics; [`verify_chain`] walks a
//! chain of at most [`MAX_CHAIN_LENGTH`] certificates from a trust anchor. With the `signing` feature,
//! `CertificateBuilder` creates certificates.

use core::fmt;

use p256::ecdsa::{Signature, VerifyingKey};

use crate::tlv;

/// Tag of the certificate template.
pub const TAG_CERTIFICATE: u16 = 0x7F21;
/// Tag of the certificate serial number.
pub const TAG_SERIAL: u16 = 0x93;
/// Tag of the CA-KLOC identifier: the subject identifier of the key that signed the certificate.
pub const TAG_CA_KLOC_ID: u16 = 0x42;
/// Tag of the subject identifier.
pub const TAG_SUBJECT_ID: u16 = 0x5F20;
/// Tag of the key usage.
pub const TAG_KEY_USAGE: u16 = 0x95;
/// Tag of the effective date.
pub const TAG_EFFECTIVE_DATE: u16 = 0x5F25;
/// Tag of the expiration date.
pub const TAG_EXPIRATION_DATE: u16 = 0x5F24;
/// Tag of the discretionary data (linkcard: the [`Role`]).
pub const TAG_DISCRETIONARY_DATA: u16 = 0x53;
/// Tag of the public key template.
pub const TAG_PUBLIC_KEY: u16 = 0x7F49;
/// Tag of the public key point inside [`TAG_PUBLIC_KEY`].
pub const TAG_PUBLIC_KEY_POINT: u16 = 0xB0;
/// Tag of the key parameter reference inside [`TAG_PUBLIC_KEY`].
pub const TAG_KEY_PARAMETER_REFERENCE: u16 = 0xF0;
/// Tag of the signature.
pub const TAG_SIGNATURE: u16 = 0x5F37;

/// Key parameter reference of NIST P-256, the only curve supported.
pub const KEY_PARAMETER_P256: u8 = 0x00;
/// Longest serial number and identifiers (`93`, `42`, `5F20`) allowed.
pub const MAX_ID_LEN: usize = 20;
/// Length of an uncompressed SEC1 P-256 point.
pub const PUBLIC_KEY_LEN: usize = 65;
/// Longest ASN.1 DER ECDSA P-256 signature (two 33-byte INTEGERs in a SEQUENCE).
pub const MAX_SIGNATURE_LEN: usize = 72;
/// Most certificates [`verify_chain`] walks: bounds the work a chain sent to the card can cause.
pub const MAX_CHAIN_LENGTH: usize = 4;

/// Key usage of a key used for key agreement (ECKA) in SCP11: an OCE's or a card's static key.
pub const KEY_AGREEMENT: u16 = 0x0080;
/// Key usage of an intermediate CA key that signs further certificates.
pub const CERTIFICATE_SIGNING: u16 = 0x0082;
/// The bit telling a signing key from a key-agreement key: [`CERTIFICATE_SIGNING`]'s encoding contains
/// [`KEY_AGREEMENT`]'s bit.
const SIGNING_BIT: u16 = CERTIFICATE_SIGNING & !KEY_AGREEMENT;

/// First byte of the discretionary data in linkcard's scheme ('L'), followed by the role byte.
pub const ROLE_MARKER: u8 = 0x4C;

/// Why a certificate or chain was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertError {
    /// The bytes are not well-formed TLV (truncated, or a length encoding this crate does not read).
    Malformed,
    /// A tag the format does not have where it appears (including an outer tag other than `7F21`).
    UnknownTag,
    /// A known field out of the prescribed order, or repeated.
    FieldOrder,
    /// A field's length is outside its limits.
    FieldLength,
    /// A mandatory field is absent.
    MissingField,
    /// The public key is not an uncompressed P-256 point, or another curve is referenced.
    BadPublicKey,
    /// The signature is neither 64 bytes r||s nor a DER ECDSA P-256 signature.
    BadSignatureEncoding,
    /// The signature does not verify with the issuer's key.
    SignatureInvalid,
    /// The CA-KLOC identifier is not the issuer's identifier.
    WrongIssuer,
    /// The expiration date is before today.
    Expired,
    /// The effective date is after today.
    NotYetValid,
    /// The key usage does not allow the certificate's place in the chain.
    KeyUsage,
    /// The discretionary data is not a linkcard role this version knows, or the role is not the one required.
    Role,
    /// The chain is empty or longer than [`MAX_CHAIN_LENGTH`].
    ChainLength,
    /// Creating a signature failed (host side, `signing` feature).
    SigningFailed,
}

impl CertError {
    /// A short English description.
    pub const fn message(self) -> &'static str {
        match self {
            Self::Malformed => "malformed TLV",
            Self::UnknownTag => "unknown tag",
            Self::FieldOrder => "field out of order or repeated",
            Self::FieldLength => "field length out of limits",
            Self::MissingField => "mandatory field missing",
            Self::BadPublicKey => "public key is not an uncompressed P-256 point",
            Self::BadSignatureEncoding => "signature is neither r||s nor DER",
            Self::SignatureInvalid => "signature invalid",
            Self::WrongIssuer => "CA-KLOC identifier does not name the issuer",
            Self::Expired => "certificate expired",
            Self::NotYetValid => "certificate not yet valid",
            Self::KeyUsage => "key usage does not fit the certificate's place in the chain",
            Self::Role => "unknown or unexpected role",
            Self::ChainLength => "certificate chain empty or too long",
            Self::SigningFailed => "signing failed",
        }
    }
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for CertError {}

/// A certificate date, YYYYMMDD in BCD as GP encodes it (`20 26 11 24` = 2026-11-24).
///
/// Ordering compares the bytes big-endian, which is date order for BCD. Parsing keeps whatever bytes it finds
/// (published GP test certificates use binary bytes such as `14 1C 0C 1F`); [`Date::from_ymd`] writes BCD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub [u8; 4]);

impl Date {
    /// The BCD date for `year`-`month`-`day`, or `None` if it is not a day of the Gregorian calendar in
    /// years 0..=9999.
    pub const fn from_ymd(year: u16, month: u8, day: u8) -> Option<Self> {
        if year > 9999 || month == 0 || month > 12 || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        // Both halves are below 100 after the range check above.
        let century = (year / 100) as u8;
        let year_in_century = (year % 100) as u8;
        Some(Self([
            to_bcd(century),
            to_bcd(year_in_century),
            to_bcd(month),
            to_bcd(day),
        ]))
    }

    /// Year, month and day, or `None` if the bytes are not a valid BCD date.
    pub fn ymd(self) -> Option<(u16, u8, u8)> {
        let [c, y, m, d] = self.0;
        let year = u16::from(from_bcd(c)?) * 100 + u16::from(from_bcd(y)?);
        let (month, day) = (from_bcd(m)?, from_bcd(d)?);
        // Round-trip through the validating constructor so impossible days (02-30) are refused too.
        Self::from_ymd(year, month, day).map(|_| (year, month, day))
    }

    /// The four encoded bytes.
    pub const fn to_bytes(self) -> [u8; 4] {
        self.0
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ymd() {
            Some((y, m, d)) => write!(f, "{y:04}-{m:02}-{d:02}"),
            None => {
                let [a, b, c, d] = self.0;
                write!(f, "{a:02X}{b:02X}{c:02X}{d:02X}")
            }
        }
    }
}

/// Days in `month` (1..=12) of `year`, Gregorian leap years.
const fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Two BCD digits of `value` (below 100).
const fn to_bcd(value: u8) -> u8 {
    ((value / 10) << 4) | (value % 10)
}

/// The value of two BCD digits, or `None` for a nibble above 9.
const fn from_bcd(byte: u8) -> Option<u8> {
    let (hi, lo) = (byte >> 4, byte & 0x0F);
    if hi > 9 || lo > 9 {
        None
    } else {
        Some(hi * 10 + lo)
    }
}

/// What a certificate's holder is to linkcard, carried in the discretionary data (`53 02 4C <role>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Role {
    /// The card issuer's personalization system: card-manager content management and key loading.
    Issuer = 0x01,
    /// The bank system's ATM or back end, talking to the bank applet.
    BankAtm = 0x02,
    /// The credit system's point of sale, talking to the credit applet.
    CreditPos = 0x03,
    /// The bank system authenticating straight to the credit applet with a certificate the credit system
    /// issued (patent Fig. 15); it may only store tokens.
    TokenDelivery = 0x04,
    /// An intermediate certificate authority.
    CertificateAuthority = 0x05,
}

impl Role {
    /// Every role, in byte order.
    pub const ALL: [Self; 5] = [
        Self::Issuer,
        Self::BankAtm,
        Self::CreditPos,
        Self::TokenDelivery,
        Self::CertificateAuthority,
    ];

    /// The role a byte encodes, if any.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0x01 => Some(Self::Issuer),
            0x02 => Some(Self::BankAtm),
            0x03 => Some(Self::CreditPos),
            0x04 => Some(Self::TokenDelivery),
            0x05 => Some(Self::CertificateAuthority),
            _ => None,
        }
    }

    /// The byte encoding the role.
    pub const fn to_byte(self) -> u8 {
        self as u8
    }

    /// The role's name in tools and configuration ("issuer", "bank-atm", "credit-pos", "token-delivery", "ca").
    pub const fn name(self) -> &'static str {
        match self {
            Self::Issuer => "issuer",
            Self::BankAtm => "bank-atm",
            Self::CreditPos => "credit-pos",
            Self::TokenDelivery => "token-delivery",
            Self::CertificateAuthority => "ca",
        }
    }

    /// The role with this [`name`](Self::name), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.name() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the signature field (`5F37`) was encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureEncoding {
    /// 64 bytes: r || s, big-endian.
    Raw,
    /// An ASN.1 DER `ECDSA-Sig-Value`.
    Der,
}

/// The fields of `7F21` in the one order allowed.
const CERTIFICATE_FIELDS: [u16; 9] = [
    TAG_SERIAL,
    TAG_CA_KLOC_ID,
    TAG_SUBJECT_ID,
    TAG_KEY_USAGE,
    TAG_EFFECTIVE_DATE,
    TAG_EXPIRATION_DATE,
    TAG_DISCRETIONARY_DATA,
    TAG_PUBLIC_KEY,
    TAG_SIGNATURE,
];

/// The fields of `7F49` in the one order allowed.
const PUBLIC_KEY_FIELDS: [u16; 2] = [TAG_PUBLIC_KEY_POINT, TAG_KEY_PARAMETER_REFERENCE];

/// Reads the next TLV of `rest` and checks it comes after the fields already read: `next` is the index in
/// `order` of the first field still allowed. Strictly increasing indices refuse repeats and reordering alike.
fn next_field<'a>(
    order: &[u16],
    next: &mut usize,
    rest: &mut &'a [u8],
) -> Result<tlv::Tlv<'a>, CertError> {
    let (field, after) = tlv::read(rest).map_err(|_| CertError::Malformed)?;
    let index = order
        .iter()
        .position(|&tag| tag == field.tag)
        .ok_or(CertError::UnknownTag)?;
    if index < *next {
        return Err(CertError::FieldOrder);
    }
    *next = index.saturating_add(1);
    *rest = after;
    Ok(field)
}

/// An identifier field (`93`, `42`, `5F20`) within its length limits.
fn id_field(value: &[u8]) -> Result<&[u8], CertError> {
    if (1..=MAX_ID_LEN).contains(&value.len()) {
        Ok(value)
    } else {
        Err(CertError::FieldLength)
    }
}

/// A date field.
fn date_field(value: &[u8]) -> Result<Date, CertError> {
    <[u8; 4]>::try_from(value)
        .map(Date)
        .map_err(|_| CertError::FieldLength)
}

/// The public key template's value: the point (checked to be on the curve) and its encoding.
fn public_key_field(value: &[u8]) -> Result<(&[u8; PUBLIC_KEY_LEN], p256::PublicKey), CertError> {
    let mut rest = value;
    let mut next = 0;
    let mut point = None;
    while !rest.is_empty() {
        let field = next_field(&PUBLIC_KEY_FIELDS, &mut next, &mut rest)?;
        match field.tag {
            TAG_PUBLIC_KEY_POINT => {
                let bytes = <&[u8; PUBLIC_KEY_LEN]>::try_from(field.value)
                    .map_err(|_| CertError::BadPublicKey)?;
                // Only the uncompressed form: compressed points would need a square root on the card.
                if bytes.first() != Some(&0x04) {
                    return Err(CertError::BadPublicKey);
                }
                let key =
                    p256::PublicKey::from_sec1_bytes(bytes).map_err(|_| CertError::BadPublicKey)?;
                point = Some((bytes, key));
            }
            // TAG_KEY_PARAMETER_REFERENCE, the only other tag next_field lets through.
            _ => {
                if field.value != [KEY_PARAMETER_P256] {
                    return Err(CertError::BadPublicKey);
                }
            }
        }
    }
    point.ok_or(CertError::MissingField)
}

/// The signature field, decoded.
fn signature_field(value: &[u8]) -> Result<(Signature, SignatureEncoding), CertError> {
    // Bounded before DER decoding: the decoder copies into a fixed 72-byte buffer.
    if value.len() > MAX_SIGNATURE_LEN {
        return Err(CertError::FieldLength);
    }
    // 64 bytes is r||s: a 64-byte DER signature needs r and s 6+ bytes shorter than usual together (odds
    // below 2^-40), and the builder writes r||s.
    let (signature, encoding) = if value.len() == 64 {
        (Signature::from_slice(value), SignatureEncoding::Raw)
    } else {
        (Signature::from_der(value), SignatureEncoding::Der)
    };
    signature
        .map(|signature| (signature, encoding))
        .map_err(|_| CertError::BadSignatureEncoding)
}

/// A parsed SCP11 certificate: views into the bytes it was parsed from, plus the decoded key and signature.
///
/// Parsing checks the structure, the field lengths, the role, that the public key is a P-256 point and that the
/// signature decodes; [`Certificate::verify`] and [`verify_chain`] check trust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Certificate<'a> {
    encoded: &'a [u8],
    signed_data: &'a [u8],
    serial: &'a [u8],
    ca_kloc_id: &'a [u8],
    subject_id: &'a [u8],
    key_usage: u16,
    effective: Option<Date>,
    expiration: Date,
    role: Option<Role>,
    public_key_bytes: &'a [u8; PUBLIC_KEY_LEN],
    public_key: p256::PublicKey,
    signature_bytes: &'a [u8],
    signature: Signature,
    signature_encoding: SignatureEncoding,
}

impl<'a> Certificate<'a> {
    /// Parses one certificate (`7F21`) from the front of `bytes`, returning it and the bytes after it (the rest
    /// of a chain).
    pub fn parse(bytes: &'a [u8]) -> Result<(Self, &'a [u8]), CertError> {
        let (outer, rest) = tlv::read(bytes).map_err(|_| CertError::Malformed)?;
        if outer.tag != TAG_CERTIFICATE {
            return Err(CertError::UnknownTag);
        }
        let encoded = bytes
            .get(..bytes.len().saturating_sub(rest.len()))
            .ok_or(CertError::Malformed)?;
        let inner = outer.value;

        let mut fields = inner;
        let mut next = 0;
        let mut serial = None;
        let mut ca_kloc_id = None;
        let mut subject_id = None;
        let mut key_usage = None;
        let mut effective = None;
        let mut expiration = None;
        let mut role = None;
        let mut public_key = None;
        let mut signature = None;
        let mut signed_data = None;
        while !fields.is_empty() {
            let field_start = fields;
            let field = next_field(&CERTIFICATE_FIELDS, &mut next, &mut fields)?;
            let value = field.value;
            match field.tag {
                TAG_SERIAL => serial = Some(id_field(value)?),
                TAG_CA_KLOC_ID => ca_kloc_id = Some(id_field(value)?),
                TAG_SUBJECT_ID => subject_id = Some(id_field(value)?),
                TAG_KEY_USAGE => {
                    key_usage = Some(match *value {
                        [usage] => u16::from(usage),
                        [hi, lo] => u16::from_be_bytes([hi, lo]),
                        _ => return Err(CertError::FieldLength),
                    });
                }
                TAG_EFFECTIVE_DATE => effective = Some(date_field(value)?),
                TAG_EXPIRATION_DATE => expiration = Some(date_field(value)?),
                TAG_DISCRETIONARY_DATA => {
                    role = Some(match *value {
                        [ROLE_MARKER, byte] => Role::from_byte(byte).ok_or(CertError::Role)?,
                        _ => return Err(CertError::Role),
                    });
                }
                TAG_PUBLIC_KEY => public_key = Some(public_key_field(value)?),
                // TAG_SIGNATURE, the last field: everything before its tag is what was signed.
                _ => {
                    signature = Some((value, signature_field(value)?));
                    signed_data = inner.get(..inner.len().saturating_sub(field_start.len()));
                }
            }
        }

        let (public_key_bytes, public_key) = public_key.ok_or(CertError::MissingField)?;
        let (signature_bytes, (signature, signature_encoding)) =
            signature.ok_or(CertError::MissingField)?;
        let certificate = Self {
            encoded,
            signed_data: signed_data.ok_or(CertError::MissingField)?,
            serial: serial.ok_or(CertError::MissingField)?,
            ca_kloc_id: ca_kloc_id.ok_or(CertError::MissingField)?,
            subject_id: subject_id.ok_or(CertError::MissingField)?,
            key_usage: key_usage.ok_or(CertError::MissingField)?,
            effective,
            expiration: expiration.ok_or(CertError::MissingField)?,
            role,
            public_key_bytes,
            public_key,
            signature_bytes,
            signature,
            signature_encoding,
        };
        Ok((certificate, rest))
    }

    /// The serial number (`93`).
    pub fn serial(&self) -> &'a [u8] {
        self.serial
    }

    /// The CA-KLOC identifier (`42`): the subject identifier of the key that signed this certificate.
    pub fn ca_kloc_id(&self) -> &'a [u8] {
        self.ca_kloc_id
    }

    /// The subject identifier (`5F20`).
    pub fn subject_id(&self) -> &'a [u8] {
        self.subject_id
    }

    /// The key usage (`95`), a one-byte encoding read as `00xx`.
    pub fn key_usage(&self) -> u16 {
        self.key_usage
    }

    /// Whether every bit of `usage` is set in the key usage.
    pub fn has_key_usage(&self, usage: u16) -> bool {
        self.key_usage & usage == usage
    }

    /// Whether the key may sign further certificates ([`CERTIFICATE_SIGNING`]).
    pub fn is_certificate_signing(&self) -> bool {
        self.has_key_usage(CERTIFICATE_SIGNING)
    }

    /// Whether the key is a key-agreement key ([`KEY_AGREEMENT`]) and not a CA key: [`CERTIFICATE_SIGNING`]'s
    /// encoding includes the key-agreement bit, and a key that signs certificates is kept out of ECKA.
    pub fn is_key_agreement(&self) -> bool {
        self.has_key_usage(KEY_AGREEMENT) && self.key_usage & SIGNING_BIT == 0
    }

    /// The effective date (`5F25`), if given.
    pub fn effective(&self) -> Option<Date> {
        self.effective
    }

    /// The expiration date (`5F24`).
    pub fn expiration(&self) -> Date {
        self.expiration
    }

    /// Whether `today` lies within the effective date (if any) and the expiration date, both inclusive.
    pub fn check_validity(&self, today: Date) -> Result<(), CertError> {
        if self.effective.is_some_and(|effective| today < effective) {
            return Err(CertError::NotYetValid);
        }
        if today > self.expiration {
            return Err(CertError::Expired);
        }
        Ok(())
    }

    /// The linkcard role, or `None` if the certificate has no discretionary data.
    pub fn role(&self) -> Option<Role> {
        self.role
    }

    /// Succeeds if the certificate carries `role`.
    pub fn require_role(&self, role: Role) -> Result<(), CertError> {
        if self.role == Some(role) {
            Ok(())
        } else {
            Err(CertError::Role)
        }
    }

    /// The public key as encoded: `04 || X || Y`.
    pub fn public_key_bytes(&self) -> &'a [u8; PUBLIC_KEY_LEN] {
        self.public_key_bytes
    }

    /// The public key (checked to be a P-256 point when parsing).
    pub fn public_key(&self) -> p256::PublicKey {
        self.public_key
    }

    /// The public key as an ECDSA verifying key, for a certificate that signs the next one.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::from(self.public_key)
    }

    /// The whole certificate TLV (`7F21 L ...`).
    pub fn encoded(&self) -> &'a [u8] {
        self.encoded
    }

    /// The bytes the signature covers: every field before `5F37`, as received.
    pub fn signed_data(&self) -> &'a [u8] {
        self.signed_data
    }

    /// The signature field's value, as received.
    pub fn signature_bytes(&self) -> &'a [u8] {
        self.signature_bytes
    }

    /// The decoded signature.
    pub fn signature(&self) -> Signature {
        self.signature
    }

    /// How the signature field was encoded.
    pub fn signature_encoding(&self) -> SignatureEncoding {
        self.signature_encoding
    }

    /// Checks the signature (ECDSA P-256, SHA-256 over [`signed_data`](Self::signed_data)) with `issuer`.
    pub fn verify_signature(&self, issuer: &VerifyingKey) -> Result<(), CertError> {
        match crate::curve::verify(issuer, self.signed_data, &self.signature) {
            true => Ok(()),
            false => Err(CertError::SignatureInvalid),
        }
    }

    /// Checks, in this order, that the CA-KLOC identifier names `issuer` (when the issuer's identifier is known),
    /// that `issuer`'s key signed the certificate, and that `today` lies within its validity. Key usage and role
    /// are left to the caller (or [`verify_chain`]).
    pub fn verify(&self, issuer: &Issuer<'_>, today: Date) -> Result<(), CertError> {
        if let Some(id) = issuer.id
            && id != self.ca_kloc_id
        {
            return Err(CertError::WrongIssuer);
        }
        self.verify_signature(&issuer.key)?;
        // Dates only after the signature: before it they are the sender's word.
        self.check_validity(today)
    }
}

/// A key that signs certificates: a trust anchor (a CA-KLOC public key and its identifier) or a verified
/// certificate acting as issuer of the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Issuer<'a> {
    /// The identifier certificates it signs carry as CA-KLOC identifier (`42`); `None` when an anchor was
    /// provisioned without one, in which case only the key binds the certificate to it.
    pub id: Option<&'a [u8]>,
    /// The issuer's public key.
    pub key: VerifyingKey,
}

impl<'a> Issuer<'a> {
    /// An issuer with identifier `id`.
    pub fn new(id: &'a [u8], key: VerifyingKey) -> Self {
        Self { id: Some(id), key }
    }

    /// The subject of `certificate` as the issuer of the next certificate (verify it first).
    pub fn from_certificate(certificate: &Certificate<'a>) -> Self {
        Self {
            id: Some(certificate.subject_id()),
            key: certificate.verifying_key(),
        }
    }
}

/// Walks a chain of certificates sent back to back (leaf last) from `anchor` and returns the leaf.
///
/// Each certificate's CA-KLOC identifier must name its issuer (the anchor's identifier, then the previous
/// certificate's subject identifier), its signature must verify with the issuer's key, and `today` must lie
/// within its validity; every certificate but the leaf must have [`CERTIFICATE_SIGNING`] usage and the leaf
/// must be a [`KEY_AGREEMENT`] key ([`Certificate::is_key_agreement`]). At most [`MAX_CHAIN_LENGTH`]
/// certificates are accepted, so a chain cannot make the card work without bound. The leaf's role is left to
/// the caller ([`Certificate::require_role`]).
pub fn verify_chain<'a>(
    anchor: &Issuer<'_>,
    chain: &'a [u8],
    today: Date,
) -> Result<Certificate<'a>, CertError> {
    if chain.is_empty() {
        return Err(CertError::ChainLength);
    }
    let mut issuer = *anchor;
    let mut rest = chain;
    for _ in 0..MAX_CHAIN_LENGTH {
        let (certificate, after) = Certificate::parse(rest)?;
        certificate.verify(&issuer, today)?;
        if after.is_empty() {
            if !certificate.is_key_agreement() {
                return Err(CertError::KeyUsage);
            }
            return Ok(certificate);
        }
        if !certificate.is_certificate_signing() {
            return Err(CertError::KeyUsage);
        }
        issuer = Issuer::from_certificate(&certificate);
        rest = after;
    }
    Err(CertError::ChainLength)
}

#[cfg(feature = "signing")]
pub use builder::CertificateBuilder;

/// Certificate creation for hosts.
#[cfg(feature = "signing")]
mod builder {
    use alloc::vec;
    use alloc::vec::Vec;

    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature, SigningKey};

    use super::*;

    /// The fields of a certificate to create; [`sign`](Self::sign) encodes and signs them.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct CertificateBuilder {
        /// Serial number, 1..=20 bytes.
        pub serial: Vec<u8>,
        /// The issuer's subject identifier, 1..=20 bytes.
        pub ca_kloc_id: Vec<u8>,
        /// The subject identifier, 1..=20 bytes.
        pub subject_id: Vec<u8>,
        /// Key usage ([`KEY_AGREEMENT`] or [`CERTIFICATE_SIGNING`]), always written as two bytes.
        pub key_usage: u16,
        /// Effective date, if any.
        pub effective: Option<Date>,
        /// Expiration date.
        pub expiration: Date,
        /// linkcard role, if any.
        pub role: Option<Role>,
        /// The subject's public key.
        pub public_key: p256::PublicKey,
    }

    impl CertificateBuilder {
        /// The certificate TLV (`7F21`), signed by `issuer_key` (RFC 6979 deterministic ECDSA, 64-byte r||s).
        /// Refuses identifiers outside 1..=20 bytes, which [`Certificate::parse`] would refuse.
        pub fn sign(&self, issuer_key: &SigningKey) -> Result<Vec<u8>, CertError> {
            sign_fields(&self.encode_fields()?, issuer_key)
        }

        /// The fields before the signature, encoded.
        pub(super) fn encode_fields(&self) -> Result<Vec<u8>, CertError> {
            let ids = [&self.serial, &self.ca_kloc_id, &self.subject_id];
            if ids.iter().any(|id| !(1..=MAX_ID_LEN).contains(&id.len())) {
                return Err(CertError::FieldLength);
            }
            let point = crate::scp11::session::encode_public_key(&self.public_key);
            let full = |_| CertError::FieldLength;
            // Ample: the longest field set is 162 bytes.
            let mut buf = [0u8; 256];
            let mut w = tlv::Writer::new(&mut buf);
            w.tlv(TAG_SERIAL, &self.serial).map_err(full)?;
            w.tlv(TAG_CA_KLOC_ID, &self.ca_kloc_id).map_err(full)?;
            w.tlv(TAG_SUBJECT_ID, &self.subject_id).map_err(full)?;
            w.tlv(TAG_KEY_USAGE, &self.key_usage.to_be_bytes())
                .map_err(full)?;
            if let Some(effective) = self.effective {
                w.tlv(TAG_EFFECTIVE_DATE, &effective.0).map_err(full)?;
            }
            w.tlv(TAG_EXPIRATION_DATE, &self.expiration.0)
                .map_err(full)?;
            if let Some(role) = self.role {
                w.tlv(TAG_DISCRETIONARY_DATA, &[ROLE_MARKER, role.to_byte()])
                    .map_err(full)?;
            }
            let key_parameter = [KEY_PARAMETER_P256];
            let template_len = tlv::header_len(TAG_PUBLIC_KEY_POINT, PUBLIC_KEY_LEN)
                + PUBLIC_KEY_LEN
                + tlv::header_len(TAG_KEY_PARAMETER_REFERENCE, 1)
                + 1;
            w.header(TAG_PUBLIC_KEY, template_len).map_err(full)?;
            w.tlv(TAG_PUBLIC_KEY_POINT, &point).map_err(full)?;
            w.tlv(TAG_KEY_PARAMETER_REFERENCE, &key_parameter)
                .map_err(full)?;
            Ok(w.written().to_vec())
        }
    }

    /// Signs already-encoded `fields` and wraps them with the signature in `7F21`.
    pub(super) fn sign_fields(
        fields: &[u8],
        issuer_key: &SigningKey,
    ) -> Result<Vec<u8>, CertError> {
        let signature: Signature = issuer_key
            .try_sign(fields)
            .map_err(|_| CertError::SigningFailed)?;
        wrap(fields, &signature.to_bytes())
    }

    /// `7F21 { fields ; 5F37 signature }`.
    pub(super) fn wrap(fields: &[u8], signature: &[u8]) -> Result<Vec<u8>, CertError> {
        let inner_len =
            fields.len() + tlv::header_len(TAG_SIGNATURE, signature.len()) + signature.len();
        let mut out = vec![0u8; tlv::header_len(TAG_CERTIFICATE, inner_len) + inner_len];
        let mut w = tlv::Writer::new(&mut out);
        let full = |_| CertError::FieldLength;
        w.header(TAG_CERTIFICATE, inner_len).map_err(full)?;
        w.raw(fields).map_err(full)?;
        w.tlv(TAG_SIGNATURE, signature).map_err(full)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::format;
    use std::string::String;
    use std::vec::Vec;

    use proptest::prelude::*;

    use super::*;

    /// Published GP SCP11 certificate of an OCE ECKA key, from Samsung/OpenSCP-Java (Apache-2.0),
    /// `src/test/java/com/samsung/openscp/testdata/Scp11TestData.java`, constant `GP_CERT_OCE_ECKA_P256`,
    /// commit 6696c01834b7b234c9d3f93378b34872747e2dfc.
    const GP_CERT_OCE_P256_HEX: &str = include_str!("../../tests/data/scp11/gp-cert-oce-p256.hex");

    /// Decodes hex, skipping `#` comment lines and whitespace.
    fn unhex(text: &str) -> Vec<u8> {
        let digits: String = text
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .flat_map(|line| line.chars())
            .filter(|c| !c.is_whitespace())
            .collect();
        assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
        (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
            .collect()
    }

    fn gp_cert() -> Vec<u8> {
        unhex(GP_CERT_OCE_P256_HEX)
    }

    fn ymd(y: u16, m: u8, d: u8) -> Date {
        Date::from_ymd(y, m, d).unwrap()
    }

    #[test]
    fn gp_published_certificate_parses() {
        let bytes = gp_cert();
        let (cert, rest) = Certificate::parse(&bytes).unwrap();
        assert!(rest.is_empty());
        assert_eq!(cert.encoded(), &bytes[..]);
        assert_eq!(
            cert.serial(),
            &unhex("6DBC19AFE3782C7C0053F19E86DF2F0F00B559EA")[..]
        );
        assert_eq!(
            cert.ca_kloc_id(),
            &unhex("851A6F60A6B45534647260877A357F3676C35686")[..]
        );
        assert_eq!(
            cert.subject_id(),
            &unhex("E225C62F5E33CA02D23D9D83D0685B4EB2FEBC11")[..]
        );
        assert_eq!(cert.key_usage(), KEY_AGREEMENT);
        assert!(cert.is_key_agreement());
        assert!(!cert.is_certificate_signing());
        assert_eq!(cert.effective(), None);
        // Binary, not BCD: 0x14 0x1C 0x0C 0x1F (20, 28, 12, 31).
        assert_eq!(cert.expiration(), Date([0x14, 0x1C, 0x0C, 0x1F]));
        assert_eq!(cert.expiration().ymd(), None);
        assert_eq!(cert.role(), None);
        // The same key as the published X.509 OCE certificate (X509_CERT_OCE_ECKA_P256) of that file.
        let key = unhex(
            "04B5C2598092609EFEFBA7A2FBED2F6E9142CA3882E7DE69D47D29476E7F0CE850\
             77480CAC6AD5C156CE459F2592DA0EECDCB0DE2E8F112C9E49C4655A11C59620",
        );
        assert_eq!(&cert.public_key_bytes()[..], &key[..]);
        assert_eq!(cert.signature_encoding(), SignatureEncoding::Der);
        assert_eq!(cert.signature_bytes().len(), 0x47);
        // Signed data: from the 93 tag up to the 5F37 tag.
        assert_eq!(cert.signed_data().first(), Some(&0x93));
        assert_eq!(cert.signed_data().len(), 0xE1 - 3 - 0x47);
        // The issuer's (CA-KLOC's) public key is not published, so the signature cannot be checked here; it
        // must at least not verify with an unrelated key.
        assert_eq!(
            cert.verify_signature(&cert.verifying_key()),
            Err(CertError::SignatureInvalid)
        );
    }

    #[test]
    fn gp_certificate_chain_rest_is_returned() {
        let mut bytes = gp_cert();
        let one = bytes.len();
        bytes.extend_from_slice(&gp_cert());
        bytes.extend_from_slice(&[0xAA, 0xBB]);
        let (first, rest) = Certificate::parse(&bytes).unwrap();
        assert_eq!(first.encoded().len(), one);
        let (second, rest) = Certificate::parse(rest).unwrap();
        assert_eq!(first, second);
        assert_eq!(rest, &[0xAA, 0xBB]);
    }

    #[test]
    fn dates() {
        let date = ymd(2026, 11, 24);
        assert_eq!(date, Date([0x20, 0x26, 0x11, 0x24]));
        assert_eq!(date.ymd(), Some((2026, 11, 24)));
        assert_eq!(format!("{date}"), "2026-11-24");
        assert_eq!(format!("{}", Date([0x14, 0x1C, 0x0C, 0x1F])), "141C0C1F");
        assert!(ymd(2026, 11, 24) < ymd(2026, 11, 25));
        assert!(ymd(2026, 12, 1) > ymd(2026, 11, 30));
        assert!(ymd(2027, 1, 1) > ymd(2026, 12, 31));
        assert!(ymd(2100, 1, 1) > ymd(2099, 12, 31));
        assert_eq!(
            Date::from_ymd(2024, 2, 29).map(Date::to_bytes),
            Some([0x20, 0x24, 0x02, 0x29])
        );
        for (y, m, d) in [
            (2025, 2, 29),
            (1900, 2, 29),
            (2026, 4, 31),
            (2026, 13, 1),
            (2026, 0, 1),
            (2026, 1, 0),
            (10000, 1, 1),
        ] {
            assert_eq!(Date::from_ymd(y, m, d), None, "{y}-{m}-{d}");
        }
        assert!(Date::from_ymd(2000, 2, 29).is_some());
        assert_eq!(Date([0x20, 0x26, 0x02, 0x30]).ymd(), None);
        assert_eq!(Date([0x20, 0x2A, 0x01, 0x01]).ymd(), None);
    }

    #[test]
    fn roles() {
        for role in Role::ALL {
            assert_eq!(Role::from_byte(role.to_byte()), Some(role));
            assert_eq!(Role::from_name(role.name()), Some(role));
            assert_eq!(format!("{role}"), role.name());
        }
        assert_eq!(Role::TokenDelivery.to_byte(), 0x04);
        assert_eq!(Role::from_name("bank-atm"), Some(Role::BankAtm));
        assert_eq!(Role::from_byte(0x00), None);
        assert_eq!(Role::from_byte(0x06), None);
        assert_eq!(Role::from_name("admin"), None);
    }

    /// Fields of a certificate in order, for building bodies by hand: a valid leaf unless changed.
    fn fields(tags: &[(u16, &[u8])]) -> Vec<u8> {
        let mut buf = [0u8; 1024];
        let mut w = tlv::Writer::new(&mut buf);
        for &(tag, value) in tags {
            w.tlv(tag, value).unwrap();
        }
        w.written().to_vec()
    }

    /// The GP certificate's public key template value.
    fn gp_key_template() -> Vec<u8> {
        let bytes = gp_cert();
        let (cert, _) = Certificate::parse(&bytes).unwrap();
        fields(&[
            (TAG_PUBLIC_KEY_POINT, &cert.public_key_bytes()[..]),
            (TAG_KEY_PARAMETER_REFERENCE, &[0x00]),
        ])
    }

    /// `7F21 { body ; 5F37 <64 bytes> }` with a well-formed (not valid) raw signature.
    fn wrap_unsigned(body: &[u8]) -> Vec<u8> {
        let mut inner = body.to_vec();
        inner.extend_from_slice(&fields(&[(TAG_SIGNATURE, &[0x11; 64])]));
        let mut buf = [0u8; 1024];
        let mut w = tlv::Writer::new(&mut buf);
        w.tlv(TAG_CERTIFICATE, &inner).unwrap();
        w.written().to_vec()
    }

    fn parse_err(body: &[u8]) -> CertError {
        Certificate::parse(&wrap_unsigned(body)).unwrap_err()
    }

    #[test]
    fn structure_is_strict() {
        let key = gp_key_template();
        let ok: [(u16, &[u8]); 6] = [
            (TAG_SERIAL, &[1]),
            (TAG_CA_KLOC_ID, &[2]),
            (TAG_SUBJECT_ID, &[3]),
            (TAG_KEY_USAGE, &[0x80]),
            (TAG_EXPIRATION_DATE, &[0x20, 0x30, 0x01, 0x01]),
            (TAG_PUBLIC_KEY, &key),
        ];
        let encoded = wrap_unsigned(&fields(&ok));
        let (cert, _) = Certificate::parse(&encoded).unwrap();
        assert_eq!(cert.key_usage(), 0x0080);
        assert_eq!(cert.signature_encoding(), SignatureEncoding::Raw);

        // Out of order, repeated, unknown, missing.
        let mut swapped = ok;
        swapped.swap(0, 1);
        assert_eq!(parse_err(&fields(&swapped)), CertError::FieldOrder);
        let mut repeated = ok.to_vec();
        repeated.insert(1, (TAG_SERIAL, &[9]));
        assert_eq!(parse_err(&fields(&repeated)), CertError::FieldOrder);
        let mut unknown = ok.to_vec();
        unknown.insert(4, (0x99, &[0]));
        assert_eq!(parse_err(&fields(&unknown)), CertError::UnknownTag);
        for missing in 0..ok.len() {
            let mut body = ok.to_vec();
            body.remove(missing);
            assert_eq!(
                parse_err(&fields(&body)),
                CertError::MissingField,
                "{missing}"
            );
        }
        // Nothing after the signature.
        let mut inner = fields(&ok);
        inner.extend_from_slice(&fields(&[(TAG_SIGNATURE, &[0x11; 64]), (TAG_SERIAL, &[1])]));
        let trailing = fields(&[(TAG_CERTIFICATE, &inner)]);
        assert_eq!(
            Certificate::parse(&trailing).unwrap_err(),
            CertError::FieldOrder
        );
        let mut inner = fields(&ok);
        inner.extend_from_slice(&fields(&[(TAG_SIGNATURE, &[0x11; 64]), (0x99, &[1])]));
        let trailing = fields(&[(TAG_CERTIFICATE, &inner)]);
        assert_eq!(
            Certificate::parse(&trailing).unwrap_err(),
            CertError::UnknownTag
        );
        // Not a certificate.
        assert_eq!(
            Certificate::parse(&[0x7F, 0x49, 0x00]).unwrap_err(),
            CertError::UnknownTag
        );
        assert_eq!(Certificate::parse(&[]).unwrap_err(), CertError::Malformed);

        // Lengths.
        let with = |index: usize, value: &'static [u8]| {
            let mut body = ok;
            body[index].1 = value;
            parse_err(&fields(&body))
        };
        assert_eq!(with(0, &[]), CertError::FieldLength);
        assert_eq!(with(0, &[0; 21]), CertError::FieldLength);
        assert_eq!(with(1, &[0; 21]), CertError::FieldLength);
        assert_eq!(with(2, &[]), CertError::FieldLength);
        assert_eq!(with(3, &[0, 0x80, 0]), CertError::FieldLength);
        assert_eq!(with(3, &[]), CertError::FieldLength);
        assert_eq!(with(4, &[0x20, 0x30, 0x01]), CertError::FieldLength);
        let mut max = ok;
        max[0].1 = &[0xFF; 20];
        assert!(Certificate::parse(&wrap_unsigned(&fields(&max))).is_ok());

        // Roles.
        let mut with_role = ok.to_vec();
        with_role.insert(5, (TAG_DISCRETIONARY_DATA, &[ROLE_MARKER, 0x03]));
        let encoded = wrap_unsigned(&fields(&with_role));
        let (cert, _) = Certificate::parse(&encoded).unwrap();
        assert_eq!(cert.role(), Some(Role::CreditPos));
        assert_eq!(cert.require_role(Role::CreditPos), Ok(()));
        assert_eq!(cert.require_role(Role::BankAtm), Err(CertError::Role));
        for bad in [
            &[ROLE_MARKER, 0x09][..],
            &[ROLE_MARKER, 0x00],
            &[0x4D, 0x01],
            &[ROLE_MARKER],
            &[ROLE_MARKER, 1, 0],
        ] {
            let mut body = ok.to_vec();
            body.insert(5, (TAG_DISCRETIONARY_DATA, bad));
            assert_eq!(parse_err(&fields(&body)), CertError::Role, "{bad:02X?}");
        }

        // Public key template.
        let gp = gp_cert();
        let (gp, _) = Certificate::parse(&gp).unwrap();
        let point = &gp.public_key_bytes()[..];
        let mut compressed = point[..33].to_vec();
        compressed[0] = 0x02 | (point[64] & 1);
        let mut off_curve = point.to_vec();
        off_curve[64] ^= 1;
        let templates: [(Vec<u8>, CertError); 7] = [
            (
                fields(&[(TAG_KEY_PARAMETER_REFERENCE, &[0x00])]),
                CertError::MissingField,
            ),
            (
                fields(&[(TAG_PUBLIC_KEY_POINT, &compressed)]),
                CertError::BadPublicKey,
            ),
            (
                fields(&[(TAG_PUBLIC_KEY_POINT, &off_curve)]),
                CertError::BadPublicKey,
            ),
            (
                fields(&[
                    (TAG_PUBLIC_KEY_POINT, point),
                    (TAG_KEY_PARAMETER_REFERENCE, &[0x03]),
                ]),
                CertError::BadPublicKey,
            ),
            (
                fields(&[
                    (TAG_KEY_PARAMETER_REFERENCE, &[0x00]),
                    (TAG_PUBLIC_KEY_POINT, point),
                ]),
                CertError::FieldOrder,
            ),
            (
                fields(&[(TAG_PUBLIC_KEY_POINT, point), (TAG_PUBLIC_KEY_POINT, point)]),
                CertError::FieldOrder,
            ),
            (
                fields(&[(TAG_PUBLIC_KEY_POINT, point), (0x86, &[0x00])]),
                CertError::UnknownTag,
            ),
        ];
        for (template, error) in templates {
            let mut body = ok;
            body[5].1 = &template;
            assert_eq!(parse_err(&fields(&body)), error, "{template:02X?}");
        }
        let mut body = ok;
        body[5] = (TAG_PUBLIC_KEY_POINT, point);
        assert_eq!(
            parse_err(&fields(&body)),
            CertError::UnknownTag,
            "point outside 7F49"
        );

        // Signature encodings.
        let body = fields(&ok);
        for (signature, error) in [
            (&[0u8; 64][..], CertError::BadSignatureEncoding),
            (&[0x11; 63], CertError::BadSignatureEncoding),
            (&[0x30; 73], CertError::FieldLength),
            (&[], CertError::BadSignatureEncoding),
        ] {
            let mut inner = body.clone();
            inner.extend_from_slice(&fields(&[(TAG_SIGNATURE, signature)]));
            let cert = fields(&[(TAG_CERTIFICATE, &inner)]);
            assert_eq!(Certificate::parse(&cert).unwrap_err(), error);
        }
    }

    #[test]
    fn key_usage_bits() {
        let key = gp_key_template();
        let usage = |usage: &[u8]| {
            let body = fields(&[
                (TAG_SERIAL, &[1]),
                (TAG_CA_KLOC_ID, &[2]),
                (TAG_SUBJECT_ID, &[3]),
                (TAG_KEY_USAGE, usage),
                (TAG_EXPIRATION_DATE, &[0x20, 0x30, 0x01, 0x01]),
                (TAG_PUBLIC_KEY, &key),
            ]);
            let encoded = wrap_unsigned(&body);
            let (cert, _) = Certificate::parse(&encoded).unwrap();
            (cert.is_key_agreement(), cert.is_certificate_signing())
        };
        assert_eq!(usage(&[0x00, 0x80]), (true, false));
        assert_eq!(usage(&[0x80]), (true, false));
        assert_eq!(usage(&[0x00, 0x82]), (false, true));
        assert_eq!(usage(&[0x82]), (false, true));
        assert_eq!(usage(&[0x01, 0x80]), (true, false));
        assert_eq!(usage(&[0x00, 0x02]), (false, false));
        assert_eq!(usage(&[0x00, 0x00]), (false, false));
    }

    /// A chain where `verify_chain` must not panic: the GP certificate, anchored at its own (wrong) key.
    fn gp_anchor() -> Issuer<'static> {
        let bytes = gp_cert();
        let (cert, _) = Certificate::parse(&bytes).unwrap();
        Issuer {
            id: Some(&[
                0x85, 0x1A, 0x6F, 0x60, 0xA6, 0xB4, 0x55, 0x34, 0x64, 0x72, 0x60, 0x87, 0x7A, 0x35,
                0x7F, 0x36, 0x76, 0xC3, 0x56, 0x86,
            ]),
            key: cert.verifying_key(),
        }
    }

    #[test]
    fn gp_certificate_in_verify_chain() {
        let anchor = gp_anchor();
        assert_eq!(
            anchor.id,
            Some(&unhex("851A6F60A6B45534647260877A357F3676C35686")[..])
        );
        assert_eq!(
            verify_chain(&anchor, &gp_cert(), ymd(2020, 1, 1)).unwrap_err(),
            CertError::SignatureInvalid
        );
        let other = Issuer {
            id: Some(b"other"),
            key: anchor.key,
        };
        assert_eq!(
            verify_chain(&other, &gp_cert(), ymd(2020, 1, 1)).unwrap_err(),
            CertError::WrongIssuer
        );
        assert_eq!(
            verify_chain(&anchor, &[], ymd(2020, 1, 1)).unwrap_err(),
            CertError::ChainLength
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Certificate::parse(&bytes);
            let _ = verify_chain(&gp_anchor(), &bytes, Date([0x20, 0x26, 0x01, 0x01]));
        }

        #[test]
        fn mutated_gp_certificate_never_panics(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
            cut in any::<usize>(),
        ) {
            let mut bytes = gp_cert();
            for (at, byte, kind) in edits {
                let at = at % (bytes.len() + 1);
                match kind {
                    0 if at < bytes.len() => bytes[at] ^= byte | 1,
                    1 => bytes.insert(at, byte),
                    _ if at < bytes.len() => { bytes.remove(at); }
                    _ => {}
                }
            }
            bytes.truncate(bytes.len() - cut % (bytes.len() / 8 + 1));
            let _ = Certificate::parse(&bytes);
            prop_assert!(verify_chain(&gp_anchor(), &bytes, Date([0x20, 0x26, 0x01, 0x01])).is_err());
        }
    }

    #[cfg(feature = "signing")]
    mod signing {
        use std::vec;

        use super::*;
        use p256::ecdsa::SigningKey;
        use p256::ecdsa::signature::Signer;

        use crate::scp11::cert::builder::{sign_fields, wrap};

        const TODAY: Date = match Date::from_ymd(2026, 6, 1) {
            Some(date) => date,
            None => panic!(),
        };

        fn key(n: u8) -> SigningKey {
            SigningKey::from_slice(&[n; 32]).unwrap()
        }

        fn public(key: &SigningKey) -> p256::PublicKey {
            p256::PublicKey::from(key.verifying_key())
        }

        /// A certificate of `subject_key` named `subject`, issued by `issuer`.
        fn builder(
            issuer: &[u8],
            subject: &[u8],
            usage: u16,
            role: Option<Role>,
            subject_key: &SigningKey,
        ) -> CertificateBuilder {
            CertificateBuilder {
                serial: vec![subject[0], 0x01],
                ca_kloc_id: issuer.to_vec(),
                subject_id: subject.to_vec(),
                key_usage: usage,
                effective: Some(ymd(2025, 1, 1)),
                expiration: ymd(2030, 12, 31),
                role,
                public_key: public(subject_key),
            }
        }

        fn anchor(ca: &SigningKey) -> Issuer<'static> {
            Issuer::new(b"CA", *ca.verifying_key())
        }

        /// CA (key 1, id "CA") -> intermediate (key 2, id "INT", CA) -> leaf (key 3, id "OCE", issuer).
        fn chain() -> (Vec<u8>, Vec<u8>) {
            let intermediate = builder(
                b"CA",
                b"INT",
                CERTIFICATE_SIGNING,
                Some(Role::CertificateAuthority),
                &key(2),
            )
            .sign(&key(1))
            .unwrap();
            let leaf = builder(b"INT", b"OCE", KEY_AGREEMENT, Some(Role::Issuer), &key(3))
                .sign(&key(2))
                .unwrap();
            (intermediate, leaf)
        }

        fn concat(parts: &[&[u8]]) -> Vec<u8> {
            parts.concat()
        }

        #[test]
        fn builder_round_trip_and_chain() {
            let (intermediate, leaf) = chain();
            let (cert, rest) = Certificate::parse(&intermediate).unwrap();
            assert!(rest.is_empty());
            assert_eq!(cert.serial(), b"I\x01");
            assert_eq!(cert.ca_kloc_id(), b"CA");
            assert_eq!(cert.subject_id(), b"INT");
            assert_eq!(cert.key_usage(), CERTIFICATE_SIGNING);
            assert_eq!(cert.effective(), Some(ymd(2025, 1, 1)));
            assert_eq!(cert.expiration(), ymd(2030, 12, 31));
            assert_eq!(cert.role(), Some(Role::CertificateAuthority));
            assert_eq!(cert.public_key(), public(&key(2)));
            assert_eq!(cert.signature_encoding(), SignatureEncoding::Raw);
            assert_eq!(cert.verify(&anchor(&key(1)), TODAY), Ok(()));

            let both = concat(&[&intermediate, &leaf]);
            let verified = verify_chain(&anchor(&key(1)), &both, TODAY).unwrap();
            assert_eq!(verified.subject_id(), b"OCE");
            assert_eq!(verified.role(), Some(Role::Issuer));
            assert_eq!(verified.public_key(), public(&key(3)));
            assert_eq!(verified.encoded(), &leaf[..]);

            // An anchor without identifier: only the key binds.
            let no_id = Issuer {
                id: None,
                key: *key(1).verifying_key(),
            };
            assert!(verify_chain(&no_id, &both, TODAY).is_ok());
            // A leaf straight under the anchor.
            let direct = builder(b"CA", b"OCE", KEY_AGREEMENT, None, &key(3))
                .sign(&key(1))
                .unwrap();
            assert_eq!(
                verify_chain(&anchor(&key(1)), &direct, TODAY)
                    .unwrap()
                    .role(),
                None
            );
        }

        #[test]
        fn without_effective_date_or_role() {
            let mut b = builder(b"CA", b"OCE", KEY_AGREEMENT, None, &key(3));
            b.effective = None;
            let cert = b.sign(&key(1)).unwrap();
            let leaf = verify_chain(&anchor(&key(1)), &cert, ymd(1999, 1, 1)).unwrap();
            assert_eq!(leaf.effective(), None);
            assert_eq!(leaf.role(), None);
        }

        #[test]
        fn der_signature_verifies() {
            let b = builder(b"CA", b"OCE", KEY_AGREEMENT, Some(Role::BankAtm), &key(3));
            let fields = b.encode_fields().unwrap();
            let signature: Signature = key(1).sign(&fields);
            let der = signature.to_der();
            let cert = wrap(&fields, der.as_bytes()).unwrap();
            let leaf = verify_chain(&anchor(&key(1)), &cert, TODAY).unwrap();
            assert_eq!(leaf.signature_encoding(), SignatureEncoding::Der);
            assert_eq!(leaf.signature(), signature);
        }

        #[test]
        fn wrong_ca_key() {
            let (intermediate, leaf) = chain();
            let both = concat(&[&intermediate, &leaf]);
            assert_eq!(
                verify_chain(&anchor(&key(9)), &both, TODAY),
                Err(CertError::SignatureInvalid)
            );
            // The leaf signed by the CA key rather than the intermediate's.
            let forged = builder(b"INT", b"OCE", KEY_AGREEMENT, Some(Role::Issuer), &key(3))
                .sign(&key(1))
                .unwrap();
            let both = concat(&[&intermediate, &forged]);
            assert_eq!(
                verify_chain(&anchor(&key(1)), &both, TODAY),
                Err(CertError::SignatureInvalid)
            );
        }

        #[test]
        fn wrong_ca_kloc_id() {
            let (intermediate, leaf) = chain();
            let both = concat(&[&intermediate, &leaf]);
            let other = Issuer::new(b"CB", *key(1).verifying_key());
            assert_eq!(
                verify_chain(&other, &both, TODAY),
                Err(CertError::WrongIssuer)
            );
            // The leaf names an issuer other than the intermediate's subject.
            let stray = builder(b"XYZ", b"OCE", KEY_AGREEMENT, Some(Role::Issuer), &key(3))
                .sign(&key(2))
                .unwrap();
            let both = concat(&[&intermediate, &stray]);
            assert_eq!(
                verify_chain(&anchor(&key(1)), &both, TODAY),
                Err(CertError::WrongIssuer)
            );
        }

        #[test]
        fn every_flipped_byte_of_signed_data_is_refused() {
            let (intermediate, leaf) = chain();
            let both = concat(&[&intermediate, &leaf]);
            let (leaf_cert, _) = Certificate::parse(&leaf).unwrap();
            let start = intermediate.len() + (leaf.len() - leaf_cert.signed_data().len() - 3 - 64);
            assert_eq!(
                &both[start..start + leaf_cert.signed_data().len()],
                leaf_cert.signed_data()
            );
            let mut signature_failures = 0;
            for i in 0..leaf_cert.signed_data().len() {
                let mut bytes = both.clone();
                bytes[start + i] ^= 1 << (i % 8);
                let error = verify_chain(&anchor(&key(1)), &bytes, TODAY).unwrap_err();
                // Whenever the mutated leaf still parses and still names its issuer, only the signature can
                // catch the change.
                if let Ok((mutated, _)) = Certificate::parse(&bytes[intermediate.len()..])
                    && mutated.ca_kloc_id() == b"INT"
                {
                    assert_eq!(error, CertError::SignatureInvalid, "byte {i}");
                    signature_failures += 1;
                }
            }
            // Serial, subject identifier, key usage and dates: the fields whose every value parses. (Flipping a
            // coordinate of the public key takes it off the curve, which parsing refuses.)
            assert_eq!(signature_failures, 2 + 3 + 2 + 4 + 4);
            // Same for the intermediate, verified alone.
            let (cert, _) = Certificate::parse(&intermediate).unwrap();
            let start = intermediate.len() - cert.signed_data().len() - 3 - 64;
            for i in 0..cert.signed_data().len() {
                let mut bytes = intermediate.clone();
                bytes[start + i] ^= 0x80 >> (i % 8);
                if let Ok((mutated, _)) = Certificate::parse(&bytes) {
                    assert!(mutated.verify(&anchor(&key(1)), TODAY).is_err(), "byte {i}");
                }
            }
        }

        #[test]
        fn every_truncation_is_refused() {
            let (intermediate, leaf) = chain();
            let both = concat(&[&intermediate, &leaf]);
            for len in 0..intermediate.len() {
                assert!(Certificate::parse(&intermediate[..len]).is_err(), "{len}");
            }
            for len in 0..both.len() {
                let result = verify_chain(&anchor(&key(1)), &both[..len], TODAY);
                assert!(result.is_err(), "{len}");
            }
            // Cut right after the intermediate: a CA certificate is no leaf.
            assert_eq!(
                verify_chain(&anchor(&key(1)), &intermediate, TODAY),
                Err(CertError::KeyUsage)
            );
        }

        #[test]
        fn validity_period() {
            let (intermediate, leaf) = chain();
            let both = concat(&[&intermediate, &leaf]);
            let at = |date| verify_chain(&anchor(&key(1)), &both, date).map(|_| ());
            assert_eq!(at(ymd(2025, 1, 1)), Ok(()));
            assert_eq!(at(ymd(2030, 12, 31)), Ok(()));
            assert_eq!(at(ymd(2031, 1, 1)), Err(CertError::Expired));
            assert_eq!(at(ymd(2024, 12, 31)), Err(CertError::NotYetValid));
            // A leaf whose own period is narrower than its issuer's.
            let mut short = builder(b"INT", b"OCE", KEY_AGREEMENT, Some(Role::Issuer), &key(3));
            short.expiration = ymd(2026, 5, 31);
            let both = concat(&[&intermediate, &short.sign(&key(2)).unwrap()]);
            assert_eq!(
                verify_chain(&anchor(&key(1)), &both, TODAY),
                Err(CertError::Expired)
            );
            let mut late = builder(b"INT", b"OCE", KEY_AGREEMENT, Some(Role::Issuer), &key(3));
            late.effective = Some(ymd(2026, 6, 2));
            let both = concat(&[&intermediate, &late.sign(&key(2)).unwrap()]);
            assert_eq!(
                verify_chain(&anchor(&key(1)), &both, TODAY),
                Err(CertError::NotYetValid)
            );
        }

        #[test]
        fn key_usage_by_place_in_chain() {
            let (intermediate, _) = chain();
            let signing_leaf = builder(
                b"INT",
                b"OCE",
                CERTIFICATE_SIGNING,
                Some(Role::Issuer),
                &key(3),
            )
            .sign(&key(2))
            .unwrap();
            let both = concat(&[&intermediate, &signing_leaf]);
            assert_eq!(
                verify_chain(&anchor(&key(1)), &both, TODAY),
                Err(CertError::KeyUsage)
            );

            let agreement_ca = builder(
                b"CA",
                b"INT",
                KEY_AGREEMENT,
                Some(Role::CertificateAuthority),
                &key(2),
            )
            .sign(&key(1))
            .unwrap();
            let leaf = builder(b"INT", b"OCE", KEY_AGREEMENT, Some(Role::Issuer), &key(3))
                .sign(&key(2))
                .unwrap();
            let both = concat(&[&agreement_ca, &leaf]);
            assert_eq!(
                verify_chain(&anchor(&key(1)), &both, TODAY),
                Err(CertError::KeyUsage)
            );
        }

        #[test]
        fn chain_length_is_bounded() {
            // CA -> C1 -> C2 -> ... -> leaf, `cas` intermediates.
            let build = |cas: u8| {
                let mut chain = Vec::new();
                let mut issuer: Vec<u8> = b"CA".to_vec();
                for n in 0..cas {
                    let subject = vec![b'C', b'0' + n];
                    chain.extend(
                        builder(
                            &issuer,
                            &subject,
                            CERTIFICATE_SIGNING,
                            Some(Role::CertificateAuthority),
                            &key(10 + n),
                        )
                        .sign(&key(if n == 0 { 1 } else { 9 + n }))
                        .unwrap(),
                    );
                    issuer = subject;
                }
                let signer = if cas == 0 { key(1) } else { key(9 + cas) };
                chain.extend(
                    builder(
                        &issuer,
                        b"OCE",
                        KEY_AGREEMENT,
                        Some(Role::CreditPos),
                        &key(3),
                    )
                    .sign(&signer)
                    .unwrap(),
                );
                chain
            };
            for cas in 0..=3 {
                assert!(
                    verify_chain(&anchor(&key(1)), &build(cas), TODAY).is_ok(),
                    "{cas}"
                );
            }
            assert_eq!(
                verify_chain(&anchor(&key(1)), &build(4), TODAY),
                Err(CertError::ChainLength)
            );
            assert_eq!(
                verify_chain(&anchor(&key(1)), &build(6), TODAY),
                Err(CertError::ChainLength)
            );
        }

        #[test]
        fn signed_but_malformed_bodies() {
            let b = builder(b"CA", b"OCE", KEY_AGREEMENT, Some(Role::Issuer), &key(3));
            let good = b.encode_fields().unwrap();
            assert!(
                verify_chain(
                    &anchor(&key(1)),
                    &sign_fields(&good, &key(1)).unwrap(),
                    TODAY
                )
                .is_ok()
            );

            // Unknown role byte, signed by the right key.
            let role_at = good
                .windows(4)
                .position(|w| w == [0x53, 0x02, ROLE_MARKER, 0x01])
                .unwrap();
            let mut unknown_role = good.clone();
            unknown_role[role_at + 3] = 0x7E;
            let cert = sign_fields(&unknown_role, &key(1)).unwrap();
            assert_eq!(
                verify_chain(&anchor(&key(1)), &cert, TODAY),
                Err(CertError::Role)
            );

            // Serial and CA-KLOC identifier swapped, signed by the right key.
            let (serial, rest) = tlv::read(&good).unwrap();
            let (kloc, rest) = tlv::read(rest).unwrap();
            let mut swapped = fields(&[(kloc.tag, kloc.value), (serial.tag, serial.value)]);
            swapped.extend_from_slice(rest);
            let cert = sign_fields(&swapped, &key(1)).unwrap();
            assert_eq!(
                verify_chain(&anchor(&key(1)), &cert, TODAY),
                Err(CertError::FieldOrder)
            );

            // Expiration before the effective date.
            let date_at = good
                .windows(3)
                .position(|w| w == [0x5F, 0x24, 0x04])
                .unwrap();
            let effective_at = good
                .windows(3)
                .position(|w| w == [0x5F, 0x25, 0x04])
                .unwrap();
            assert!(effective_at < date_at);
            let mut swapped_dates = good.clone();
            swapped_dates[effective_at + 1] = 0x24;
            swapped_dates[date_at + 1] = 0x25;
            let cert = sign_fields(&swapped_dates, &key(1)).unwrap();
            assert_eq!(
                verify_chain(&anchor(&key(1)), &cert, TODAY),
                Err(CertError::FieldOrder)
            );
        }

        #[test]
        fn builder_refuses_bad_lengths() {
            let mut b = builder(b"CA", b"OCE", KEY_AGREEMENT, None, &key(3));
            b.serial = vec![0; 21];
            assert_eq!(b.sign(&key(1)), Err(CertError::FieldLength));
            b.serial = vec![];
            assert_eq!(b.sign(&key(1)), Err(CertError::FieldLength));
            b.serial = vec![0; 20];
            b.ca_kloc_id = vec![1; 20];
            b.subject_id = vec![2; 20];
            let cert = b.sign(&key(1)).unwrap();
            assert!(cert.len() > 0x80 + 4, "long form length");
            assert_eq!(&cert[..3], &[0x7F, 0x21, 0x81]);
            assert!(
                verify_chain(
                    &Issuer::new(&[1; 20], *key(1).verifying_key()),
                    &cert,
                    TODAY
                )
                .is_ok()
            );
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn mutated_chain_never_panics(
                edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..4),
            ) {
                let (intermediate, leaf) = chain();
                let mut bytes = concat(&[&intermediate, &leaf]);
                for (at, byte, kind) in edits {
                    let at = at % (bytes.len() + 1);
                    match kind {
                        0 if at < bytes.len() => bytes[at] ^= byte | 1,
                        1 => bytes.insert(at, byte),
                        _ if at < bytes.len() => { bytes.remove(at); }
                        _ => {}
                    }
                }
                let _ = Certificate::parse(&bytes);
                let _ = verify_chain(&anchor(&key(1)), &bytes, TODAY);
            }
        }
    }
}
