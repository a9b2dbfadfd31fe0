//! The field encodings of the bundle bodies (`docs/contract.md` §3): lowercase hex for bytes, `YYYY-MM-DD` for
//! dates. Each decoder accepts exactly one spelling of a value, so a body has one encoding.

use apdu_spec::scp11::cert::{Date, MAX_ID_LEN};
use apdu_spec::scp11::session::PublicKeyBytes;
use apdu_spec::token::MAX_PARTY_ID;
use card_client::scp11::Anchor;
use serde::{Deserialize, Serialize};

use crate::bundle::BundleError;
use crate::files::Fingerprint;

/// The days a contract holds: from the first to the last (inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// First day.
    pub from: Date,
    /// Last day (inclusive).
    pub until: Date,
}

impl Validity {
    /// `from`-`until`, or `None` if either is not a calendar date or `until` is before `from`.
    pub fn new(from: Date, until: Date) -> Option<Self> {
        (from.ymd().is_some() && until.ymd().is_some() && from <= until)
            .then_some(Self { from, until })
    }

    /// Whether `today` is within.
    pub fn contains(&self, today: Date) -> bool {
        self.from <= today && today <= self.until
    }

    /// Refuses a `today` outside.
    pub(crate) fn check(&self, today: Date) -> Result<(), BundleError> {
        if today < self.from {
            return Err(BundleError::NotYetValid {
                valid_from: self.from,
                today,
            });
        }
        if today > self.until {
            return Err(BundleError::Expired {
                valid_until: self.until,
                today,
            });
        }
        Ok(())
    }
}

/// A trust anchor as a body carries it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnchorWire {
    pub id: String,
    pub key: String,
}

impl AnchorWire {
    pub fn from_anchor(anchor: &Anchor) -> Self {
        Self {
            id: hex::encode(&anchor.id),
            key: hex::encode(anchor.key),
        }
    }

    pub fn decode(&self, field: &'static str) -> Result<Anchor, BundleError> {
        Ok(Anchor {
            id: bytes(field, &self.id, 1, MAX_ID_LEN)?,
            key: point(field, &self.key)?,
        })
    }
}

/// Lowercase hex of `min..=max` bytes.
pub(crate) fn bytes(
    field: &'static str,
    text: &str,
    min: usize,
    max: usize,
) -> Result<Vec<u8>, BundleError> {
    let decoded = hex::decode(text).map_err(|_| BundleError::InvalidField(field))?;
    if decoded.len() < min || decoded.len() > max || hex::encode(&decoded) != text {
        return Err(BundleError::InvalidField(field));
    }
    Ok(decoded)
}

/// Lowercase hex of exactly `N` bytes.
pub(crate) fn array<const N: usize>(
    field: &'static str,
    text: &str,
) -> Result<[u8; N], BundleError> {
    bytes(field, text, N, N)?
        .try_into()
        .map_err(|_| BundleError::InvalidField(field))
}

/// A party id: 1-16 bytes, as the token carries it.
pub(crate) fn party_id(field: &'static str, text: &str) -> Result<Vec<u8>, BundleError> {
    bytes(field, text, 1, MAX_PARTY_ID)
}

/// An uncompressed P-256 point that is on the curve.
pub(crate) fn point(field: &'static str, text: &str) -> Result<PublicKeyBytes, BundleError> {
    let point: PublicKeyBytes = array(field, text)?;
    p256::PublicKey::from_sec1_bytes(&point).map_err(|_| BundleError::InvalidField(field))?;
    Ok(point)
}

pub(crate) fn fingerprint(field: &'static str, text: &str) -> Result<Fingerprint, BundleError> {
    array(field, text).map(Fingerprint)
}

/// `YYYY-MM-DD`.
pub(crate) fn format_date(date: Date) -> String {
    date.to_string()
}

/// A calendar date written `YYYY-MM-DD`, and nothing else.
pub(crate) fn date(field: &'static str, text: &str) -> Result<Date, BundleError> {
    let invalid = || BundleError::InvalidField(field);
    let parts: Vec<&str> = text.split('-').collect();
    let [year, month, day] = parts.as_slice() else {
        return Err(invalid());
    };
    let number = |part: &str, len: usize| {
        (part.len() == len && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u16>().ok())
            .flatten()
            .ok_or_else(invalid)
    };
    let (year, month, day) = (number(year, 4)?, number(month, 2)?, number(day, 2)?);
    let month = u8::try_from(month).map_err(|_| invalid())?;
    let day = u8::try_from(day).map_err(|_| invalid())?;
    Date::from_ymd(year, month, day).ok_or_else(invalid)
}

/// The validity fields of a body.
pub(crate) fn validity(from: &str, until: &str) -> Result<Validity, BundleError> {
    Validity::new(date("valid_from", from)?, date("valid_until", until)?)
        .ok_or(BundleError::InvalidField("valid_until"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_have_one_spelling() {
        assert_eq!(
            date("d", "2028-02-29").unwrap(),
            Date::from_ymd(2028, 2, 29).unwrap()
        );
        for bad in [
            "2027-02-29",
            "2027-2-01",
            "2027-02-1",
            "+027-02-01",
            "2027-02-01-",
            "2027/02/01",
            "",
        ] {
            assert!(date("d", bad).is_err(), "{bad}");
        }
        let day = Date::from_ymd(2026, 12, 1).unwrap();
        assert_eq!(date("d", &format_date(day)).unwrap(), day);
    }

    #[test]
    fn hex_is_lowercase_and_bounded() {
        assert_eq!(bytes("h", "00ff", 1, 2).unwrap(), vec![0, 0xFF]);
        for bad in ["00FF", "0", "", "00ff00", "zz"] {
            assert!(bytes("h", bad, 1, 2).is_err(), "{bad}");
        }
    }
}
