//! Data objects of the card manager's STORE DATA that personalize a security domain (the card manager itself,
//! or the instance named by a preceding INSTALL [for personalization]), typed: the card parses them, hosts
//! encode them. One object per command:
//!
//! | object | meaning | answer |
//! |---|---|---|
//! | `DF20 20 <scalar>` | the domain's static private key SK.SD.ECKA | — |
//! | `DF23 00` | generate the static key pair on the card | `B0 41 <PK.SD.ECKA>` |
//! | `BF21 L { 7F21 … }` | the domain's certificate chain, leaf last (the leaf must certify its key) | — |
//! | `BF22 L { 42 <id>, B0 41 <key> }` | a trust anchor: a CA-KLOC public key and its identifier (1-20 bytes) | — |
//! | `DF22 04 <YYYYMMDD>` | the card date (it only moves forward) | — |

use super::TAG_CERTIFICATE_STORE;
use super::cert::Date;
use super::session::PUBLIC_KEY_LENGTH;
use crate::{StatusWord, tlv};

/// The static private key.
pub const TAG_STATIC_KEY: u16 = 0xDF20;
/// Generate the static key pair on the card.
pub const TAG_GENERATE_KEY: u16 = 0xDF23;
/// A trust anchor.
pub const TAG_TRUST_ANCHOR: u16 = 0xBF22;
/// The card date.
pub const TAG_CARD_DATE: u16 = 0xDF22;
/// A public key inside these objects (as in the certificate's `7F49`).
pub const TAG_PUBLIC_KEY: u16 = 0xB0;
/// The identifier of a trust anchor (its CA-KLOC identifier, as in certificates).
pub const TAG_ANCHOR_ID: u16 = 0x42;
/// Longest trust-anchor identifier.
pub const MAX_ANCHOR_ID: usize = 20;

/// One personalization data object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataObject<'a> {
    /// `DF20`: import the domain's static private key (32 bytes; in a session only with C-DEC). It waits aside
    /// until a chain that certifies it arrives. [`DataObject::GenerateKey`], a key that never leaves the card,
    /// is the better practice.
    StaticKey(&'a [u8; 32]),
    /// `DF23`: generate the domain's static key pair on the card; the card answers the public key.
    GenerateKey,
    /// `BF21`: the domain's certificate chain, leaf last, certificates back to back.
    Certificates(&'a [u8]),
    /// `BF22`: a trust anchor for OCE certificates.
    TrustAnchor {
        /// Its identifier, 1-20 bytes (the CA-KLOC identifier certificates name).
        id: &'a [u8],
        /// Its public key, uncompressed SEC1 (65 bytes; the card checks it is on the curve).
        key: &'a [u8; PUBLIC_KEY_LENGTH],
    },
    /// `DF22`: the card date, a BCD calendar date.
    CardDate(Date),
}

impl<'a> DataObject<'a> {
    /// Parses STORE DATA's data field: exactly one object. 6A80 for a malformed one, 6A88 for an unknown tag.
    pub fn parse(data: &'a [u8]) -> Result<Self, StatusWord> {
        let (object, rest) = tlv::read(data).map_err(|_| StatusWord::WRONG_DATA)?;
        if !rest.is_empty() {
            return Err(StatusWord::WRONG_DATA);
        }
        let value = object.value;
        match object.tag {
            TAG_STATIC_KEY => value
                .try_into()
                .map(Self::StaticKey)
                .map_err(|_| StatusWord::WRONG_DATA),
            TAG_GENERATE_KEY if value.is_empty() => Ok(Self::GenerateKey),
            TAG_GENERATE_KEY => Err(StatusWord::WRONG_DATA),
            TAG_CERTIFICATE_STORE => Ok(Self::Certificates(value)),
            TAG_TRUST_ANCHOR => parse_anchor(value),
            TAG_CARD_DATE => {
                let date = Date(value.try_into().map_err(|_| StatusWord::WRONG_DATA)?);
                if date.ymd().is_none() {
                    return Err(StatusWord::WRONG_DATA);
                }
                Ok(Self::CardDate(date))
            }
            _ => Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
        }
    }
}

fn parse_anchor(value: &[u8]) -> Result<DataObject<'_>, StatusWord> {
    let field = |tag| {
        tlv::find(value, tag)
            .map_err(|_| StatusWord::WRONG_DATA)?
            .ok_or(StatusWord::WRONG_DATA)
    };
    let id = field(TAG_ANCHOR_ID)?;
    let key = field(TAG_PUBLIC_KEY)?
        .try_into()
        .map_err(|_| StatusWord::WRONG_DATA)?;
    if id.is_empty() || id.len() > MAX_ANCHOR_ID {
        return Err(StatusWord::WRONG_DATA);
    }
    Ok(DataObject::TrustAnchor { id, key })
}

#[cfg(feature = "alloc")]
mod encode {
    use alloc::vec::Vec;

    use super::*;

    /// One BER-TLV (tags here are at most 2 bytes, lengths at most 3).
    fn tlv_bytes(tag: u16, value: &[u8]) -> Vec<u8> {
        let mut out = alloc::vec![0u8; value.len() + 5];
        let mut writer = tlv::Writer::new(&mut out);
        let written = writer.tlv(tag, value);
        debug_assert!(
            written.is_ok(),
            "5 bytes hold any tag and length up to 65535"
        );
        let len = writer.len();
        out.truncate(len);
        out
    }

    impl DataObject<'_> {
        /// The object as STORE DATA carries it.
        pub fn encode(&self) -> Vec<u8> {
            match *self {
                Self::StaticKey(scalar) => tlv_bytes(TAG_STATIC_KEY, scalar),
                Self::GenerateKey => tlv_bytes(TAG_GENERATE_KEY, &[]),
                Self::Certificates(chain) => tlv_bytes(TAG_CERTIFICATE_STORE, chain),
                Self::TrustAnchor { id, key } => {
                    let mut value = tlv_bytes(TAG_ANCHOR_ID, id);
                    value.extend(tlv_bytes(TAG_PUBLIC_KEY, key));
                    tlv_bytes(TAG_TRUST_ANCHOR, &value)
                }
                Self::CardDate(date) => tlv_bytes(TAG_CARD_DATE, &date.to_bytes()),
            }
        }
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;

    #[test]
    fn objects_round_trip() {
        let key = [0x04; PUBLIC_KEY_LENGTH];
        let certificates = [0x7F, 0x21, 0x01, 0x00];
        for object in [
            DataObject::StaticKey(&[0x11; 32]),
            DataObject::GenerateKey,
            DataObject::Certificates(&certificates),
            DataObject::TrustAnchor {
                id: b"issuer CA",
                key: &key,
            },
            DataObject::CardDate(Date::from_ymd(2026, 12, 1).unwrap()),
        ] {
            assert_eq!(DataObject::parse(&object.encode()), Ok(object));
        }
    }

    #[test]
    fn malformed_objects() {
        for (bytes, status) in [
            (&[0xDF, 0x20, 0x01, 0x00][..], StatusWord::WRONG_DATA),
            (&[0xDF, 0x23, 0x01, 0x00], StatusWord::WRONG_DATA),
            (
                &[0xDF, 0x22, 0x04, 0x20, 0x26, 0x13, 0x01],
                StatusWord::WRONG_DATA,
            ),
            (&[0xDF, 0x15, 0x00], StatusWord::REFERENCED_DATA_NOT_FOUND),
            (&[0xDF, 0x23, 0x00, 0x00], StatusWord::WRONG_DATA),
            (&[0xBF, 0x22, 0x02, 0x42, 0x00], StatusWord::WRONG_DATA),
        ] {
            assert_eq!(DataObject::parse(bytes), Err(status), "{bytes:02X?}");
        }
    }
}
