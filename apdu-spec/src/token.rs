//! The payment token's envelope as the card sees it (normative spec: `docs/token.md`): the clear header, which
//! the card reads to list, expire and evict tokens and to refuse one meant for another card or credit company,
//! and the sealed body, which only the credit system can open. No cryptography happens here: the card never
//! verifies or opens a token, it stores and presents it.
//!
//! ```text
//! 7F71 L  token envelope
//!   A1 L  clear header: 80 version, 81 token id, 82 bank id, 83 credit company id, 84 issued, 85 expires,
//!         86 bank key id, 87 credit key id, 88 card binding
//!   A2 L  sealed body: 90 encapsulated key (HPKE enc), 91 ciphertext (body and bank signature, AES-128-GCM)
//!   5F37 40  the bank's signature (ECDSA P-256, r ‖ s) over ENVELOPE_LABEL ‖ A1 TLV ‖ A2 TLV
//! ```
//!
//! Every field is present, in this order, with minimal BER lengths, so a token has exactly one encoding.

use crate::scp11::cert::Date;
use crate::tlv;

/// The format version this crate reads and writes.
pub const VERSION: u8 = 1;
/// Largest encoded token the format allows (and a card must store).
pub const MAX_TOKEN: usize = 640;
/// Longest bank and credit company identifiers.
pub const MAX_PARTY_ID: usize = 16;
/// Length of a token identifier.
pub const TOKEN_ID_LENGTH: usize = 16;
/// Length of a key identifier (the first 8 bytes of SHA-256 over the key's uncompressed SEC1 point).
pub const KEY_ID_LENGTH: usize = 8;
/// Length of the card binding (SHA-256 over the credit applet's uncompressed public key).
pub const BINDING_LENGTH: usize = 32;
/// Length of the HPKE encapsulated key (an uncompressed P-256 point).
pub const ENCAPSULATED_KEY_LENGTH: usize = 65;
/// Length of a signature: r ‖ s, 32 bytes each.
pub const SIGNATURE_LENGTH: usize = 64;
/// AES-128-GCM's tag, the least a ciphertext holds.
pub const AEAD_TAG_LENGTH: usize = 16;
/// What the bank's outer signature covers comes after this label.
pub const ENVELOPE_LABEL: &[u8] = b"linkcard token envelope v1";

/// Tags of the envelope.
pub mod tag {
    /// The token envelope.
    pub const ENVELOPE: u16 = 0x7F71;
    /// The clear header.
    pub const HEADER: u16 = 0xA1;
    /// The sealed body.
    pub const SEALED: u16 = 0xA2;
    /// The bank's outer signature.
    pub const SIGNATURE: u16 = 0x5F37;
    /// Header: format version.
    pub const VERSION: u16 = 0x80;
    /// Header: token identifier.
    pub const TOKEN_ID: u16 = 0x81;
    /// Header: bank identifier.
    pub const BANK_ID: u16 = 0x82;
    /// Header: credit company identifier.
    pub const CREDIT_ID: u16 = 0x83;
    /// Header: issue date.
    pub const ISSUED: u16 = 0x84;
    /// Header: last day of validity.
    pub const EXPIRES: u16 = 0x85;
    /// Header: identifier of the bank's signing key.
    pub const BANK_KEY_ID: u16 = 0x86;
    /// Header: identifier of the credit system's HPKE key the body is sealed to.
    pub const CREDIT_KEY_ID: u16 = 0x87;
    /// Header: the card binding.
    pub const CARD_BINDING: u16 = 0x88;
    /// Sealed body: HPKE encapsulated key.
    pub const ENCAPSULATED_KEY: u16 = 0x90;
    /// Sealed body: ciphertext.
    pub const CIPHERTEXT: u16 = 0x91;
}

/// Why bytes are not a token envelope of this format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// Not BER-TLV, a field missing, out of order, of the wrong length, or bytes left over.
    Malformed,
    /// A version this format does not know.
    UnknownVersion(u8),
    /// A date that is not a BCD calendar date, or a validity that ends before it starts.
    BadDate,
    /// Longer than [`MAX_TOKEN`].
    TooLong,
}

/// The clear header: what anyone, the card included, may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClearHeader<'a> {
    /// Token identifier, unique per bank.
    pub token_id: &'a [u8; TOKEN_ID_LENGTH],
    /// The minting bank (1-16 bytes).
    pub bank_id: &'a [u8],
    /// The credit company the token is for (1-16 bytes).
    pub credit_id: &'a [u8],
    /// Day the token was minted.
    pub issued: Date,
    /// Last day the token is valid.
    pub expires: Date,
    /// The bank's signing key.
    pub bank_key_id: &'a [u8; KEY_ID_LENGTH],
    /// The credit system's HPKE key the body is sealed to.
    pub credit_key_id: &'a [u8; KEY_ID_LENGTH],
    /// SHA-256 of the credit applet's public key: the card the token belongs to.
    pub card_binding: &'a [u8; BINDING_LENGTH],
}

/// A parsed token envelope, borrowing the bytes it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The clear header.
    pub header: ClearHeader<'a>,
    /// The header's whole TLV (`A1 …`): the HPKE AAD.
    pub header_tlv: &'a [u8],
    /// The HPKE encapsulated key.
    pub encapsulated_key: &'a [u8; ENCAPSULATED_KEY_LENGTH],
    /// The sealed body (at least the AEAD tag).
    pub ciphertext: &'a [u8],
    /// `A1 …` ‖ `A2 …`: what the outer signature covers, after [`ENVELOPE_LABEL`].
    pub signed: &'a [u8],
    /// The bank's outer signature, r ‖ s.
    pub signature: &'a [u8; SIGNATURE_LENGTH],
}

/// One field read: its value, its whole TLV, and the bytes after it.
type Field<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// Reads one TLV with `tag` whose length is minimally encoded.
fn read_exact(bytes: &[u8], tag: u16) -> Result<Field<'_>, FormatError> {
    let (tlv, rest) = tlv::read(bytes).map_err(|_| FormatError::Malformed)?;
    let whole = bytes
        .get(..bytes.len() - rest.len())
        .ok_or(FormatError::Malformed)?;
    if tlv.tag != tag || whole.len() != tlv::header_len(tag, tlv.value.len()) + tlv.value.len() {
        return Err(FormatError::Malformed);
    }
    Ok((tlv.value, whole, rest))
}

/// Reads a fixed-length field.
fn read_array<'a, const N: usize>(
    bytes: &mut &'a [u8],
    tag: u16,
) -> Result<&'a [u8; N], FormatError> {
    let (value, _, rest) = read_exact(bytes, tag)?;
    *bytes = rest;
    value.try_into().map_err(|_| FormatError::Malformed)
}

/// Reads a party identifier (1-16 bytes).
fn read_party<'a>(bytes: &mut &'a [u8], tag: u16) -> Result<&'a [u8], FormatError> {
    let (value, _, rest) = read_exact(bytes, tag)?;
    *bytes = rest;
    if value.is_empty() || value.len() > MAX_PARTY_ID {
        return Err(FormatError::Malformed);
    }
    Ok(value)
}

fn read_date(bytes: &mut &[u8], tag: u16) -> Result<Date, FormatError> {
    let date = Date(*read_array::<4>(bytes, tag)?);
    date.ymd().map(|_| date).ok_or(FormatError::BadDate)
}

impl<'a> ClearHeader<'a> {
    /// Parses the header's value (inside `A1`).
    pub fn parse(mut value: &'a [u8]) -> Result<Self, FormatError> {
        let rest = &mut value;
        let [version] = *read_array::<1>(rest, tag::VERSION)?;
        if version != VERSION {
            return Err(FormatError::UnknownVersion(version));
        }
        let header = Self {
            token_id: read_array(rest, tag::TOKEN_ID)?,
            bank_id: read_party(rest, tag::BANK_ID)?,
            credit_id: read_party(rest, tag::CREDIT_ID)?,
            issued: read_date(rest, tag::ISSUED)?,
            expires: read_date(rest, tag::EXPIRES)?,
            bank_key_id: read_array(rest, tag::BANK_KEY_ID)?,
            credit_key_id: read_array(rest, tag::CREDIT_KEY_ID)?,
            card_binding: read_array(rest, tag::CARD_BINDING)?,
        };
        if !rest.is_empty() {
            return Err(FormatError::Malformed);
        }
        if header.expires < header.issued {
            return Err(FormatError::BadDate);
        }
        Ok(header)
    }

    /// Whether the token is still valid on `today` (its last day included).
    pub fn valid_on(&self, today: Date) -> bool {
        self.issued <= today && today <= self.expires
    }
}

impl<'a> Envelope<'a> {
    /// Parses a whole token: exactly one envelope, nothing after it.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, FormatError> {
        if bytes.len() > MAX_TOKEN {
            return Err(FormatError::TooLong);
        }
        let (inside, _, rest) = read_exact(bytes, tag::ENVELOPE)?;
        if !rest.is_empty() {
            return Err(FormatError::Malformed);
        }
        let (header_value, header_tlv, after_header) = read_exact(inside, tag::HEADER)?;
        let header = ClearHeader::parse(header_value)?;
        let (sealed_value, sealed_tlv, after_sealed) = read_exact(after_header, tag::SEALED)?;
        let mut sealed = sealed_value;
        let encapsulated_key = read_array(&mut sealed, tag::ENCAPSULATED_KEY)?;
        let (ciphertext, _, sealed_rest) = read_exact(sealed, tag::CIPHERTEXT)?;
        if ciphertext.len() < AEAD_TAG_LENGTH || !sealed_rest.is_empty() {
            return Err(FormatError::Malformed);
        }
        let mut tail = after_sealed;
        let signature = read_array(&mut tail, tag::SIGNATURE)?;
        if !tail.is_empty() {
            return Err(FormatError::Malformed);
        }
        let signed_len = header_tlv.len() + sealed_tlv.len();
        let signed = inside.get(..signed_len).ok_or(FormatError::Malformed)?;
        Ok(Self {
            header,
            header_tlv,
            encapsulated_key,
            ciphertext,
            signed,
            signature,
        })
    }
}

#[cfg(feature = "alloc")]
mod encode {
    use alloc::vec::Vec;

    use super::*;

    fn push_tlv(out: &mut Vec<u8>, tag: u16, value: &[u8]) {
        let mut header = [0u8; 5];
        let mut writer = tlv::Writer::new(&mut header);
        let written = writer.header(tag, value.len());
        debug_assert!(
            written.is_ok(),
            "5 bytes hold any tag and length up to 65535"
        );
        let len = writer.len();
        out.extend_from_slice(header.get(..len).unwrap_or_default());
        out.extend_from_slice(value);
    }

    impl ClearHeader<'_> {
        /// The header's whole TLV (`A1 …`), as it goes into the envelope and the HPKE AAD.
        pub fn encode(&self) -> Vec<u8> {
            let mut value = Vec::new();
            push_tlv(&mut value, tag::VERSION, &[VERSION]);
            push_tlv(&mut value, tag::TOKEN_ID, self.token_id);
            push_tlv(&mut value, tag::BANK_ID, self.bank_id);
            push_tlv(&mut value, tag::CREDIT_ID, self.credit_id);
            push_tlv(&mut value, tag::ISSUED, &self.issued.to_bytes());
            push_tlv(&mut value, tag::EXPIRES, &self.expires.to_bytes());
            push_tlv(&mut value, tag::BANK_KEY_ID, self.bank_key_id);
            push_tlv(&mut value, tag::CREDIT_KEY_ID, self.credit_key_id);
            push_tlv(&mut value, tag::CARD_BINDING, self.card_binding);
            let mut out = Vec::new();
            push_tlv(&mut out, tag::HEADER, &value);
            out
        }
    }

    /// The sealed body's whole TLV (`A2 …`).
    pub fn sealed_tlv(
        encapsulated_key: &[u8; ENCAPSULATED_KEY_LENGTH],
        ciphertext: &[u8],
    ) -> Vec<u8> {
        let mut value = Vec::new();
        push_tlv(&mut value, tag::ENCAPSULATED_KEY, encapsulated_key);
        push_tlv(&mut value, tag::CIPHERTEXT, ciphertext);
        let mut out = Vec::new();
        push_tlv(&mut out, tag::SEALED, &value);
        out
    }

    /// What the outer signature signs: [`ENVELOPE_LABEL`] ‖ header TLV ‖ sealed TLV.
    pub fn signed_message(header_tlv: &[u8], sealed_tlv: &[u8]) -> Vec<u8> {
        [ENVELOPE_LABEL, header_tlv, sealed_tlv].concat()
    }

    /// The whole envelope from its signed part (header TLV ‖ sealed TLV) and the signature.
    pub fn envelope(signed: &[u8], signature: &[u8; SIGNATURE_LENGTH]) -> Vec<u8> {
        let mut value = signed.to_vec();
        push_tlv(&mut value, tag::SIGNATURE, signature);
        let mut out = Vec::new();
        push_tlv(&mut out, tag::ENVELOPE, &value);
        out
    }
}

#[cfg(feature = "alloc")]
pub use encode::{envelope, sealed_tlv, signed_message};

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use alloc::vec::Vec;

    use super::*;

    fn header() -> ClearHeader<'static> {
        ClearHeader {
            token_id: &[0x11; TOKEN_ID_LENGTH],
            bank_id: b"BANK0001",
            credit_id: b"CRED0001",
            issued: Date::from_ymd(2026, 12, 1).unwrap(),
            expires: Date::from_ymd(2027, 1, 31).unwrap(),
            bank_key_id: &[0x22; KEY_ID_LENGTH],
            credit_key_id: &[0x33; KEY_ID_LENGTH],
            card_binding: &[0x44; BINDING_LENGTH],
        }
    }

    fn token(ciphertext_len: usize) -> Vec<u8> {
        let header_tlv = header().encode();
        let sealed = sealed_tlv(
            &[0x04; ENCAPSULATED_KEY_LENGTH],
            &alloc::vec![0x55; ciphertext_len],
        );
        envelope(&[header_tlv, sealed].concat(), &[0x66; SIGNATURE_LENGTH])
    }

    #[test]
    fn envelopes_round_trip_and_expose_the_signed_part() {
        let bytes = token(300);
        let parsed = Envelope::parse(&bytes).unwrap();
        assert_eq!(parsed.header, header());
        assert_eq!(parsed.header_tlv, header().encode());
        assert_eq!(parsed.ciphertext.len(), 300);
        assert_eq!(
            parsed.signed.len(),
            parsed.header_tlv.len() + 2 + 3 + 67 + 3 + 300
        );
        let sealed = sealed_tlv(parsed.encapsulated_key, parsed.ciphertext);
        assert_eq!(
            envelope(&[parsed.header_tlv, &sealed].concat(), parsed.signature),
            bytes
        );
        assert!(parsed.header.valid_on(Date::from_ymd(2027, 1, 31).unwrap()));
        assert!(!parsed.header.valid_on(Date::from_ymd(2027, 2, 1).unwrap()));
    }

    #[test]
    fn every_cut_or_changed_framing_byte_is_refused() {
        let bytes = token(40);
        for len in 0..bytes.len() {
            assert!(Envelope::parse(&bytes[..len]).is_err(), "cut at {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Envelope::parse(&longer).is_err());
        let mut other_version = bytes.clone();
        let at = other_version
            .windows(3)
            .position(|w| w == [0x80, 0x01, VERSION])
            .unwrap();
        other_version[at + 2] = 2;
        assert_eq!(
            Envelope::parse(&other_version),
            Err(FormatError::UnknownVersion(2))
        );
        assert_eq!(
            Envelope::parse(&token(MAX_TOKEN)),
            Err(FormatError::TooLong)
        );
    }

    #[test]
    fn a_non_minimal_length_is_refused() {
        // `80 81 01 01` is a second encoding of the version field `80 01 01`: a token has only one.
        let header_tlv = header().encode();
        let (inner, _) = tlv::read(&header_tlv).unwrap();
        assert_eq!(&inner.value[..3], [0x80, 0x01, VERSION]);
        let value = [&[0x80, 0x81, 0x01, VERSION][..], &inner.value[3..]].concat();
        let mut padded_header = alloc::vec![0u8; value.len() + 3];
        let mut writer = tlv::Writer::new(&mut padded_header);
        writer.tlv(tag::HEADER, &value).unwrap();
        let len = writer.len();
        padded_header.truncate(len);
        let sealed = sealed_tlv(&[0x04; ENCAPSULATED_KEY_LENGTH], &[0x55; 20]);
        let bytes = envelope(&[padded_header, sealed].concat(), &[0x66; SIGNATURE_LENGTH]);
        assert_eq!(Envelope::parse(&bytes), Err(FormatError::Malformed));
    }
}
