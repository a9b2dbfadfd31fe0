//! What the credit system keeps in the ledger's keyed records, and the ids it derives.
//!
//! Tables (`ledger::Transaction` records): `credit.meta` (configuration, counters), `credit.bank` (trusted bank
//! keys), `credit.cardholder`, `credit.card`, `credit.spent` (unique on bank id ‖ token id), `credit.pending`
//! (the temporary reflections by cardholder) and `credit.decision` (every decision with its evidence).

use ledger::{AccountId, Transaction, TransferId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::CreditError;
#[cfg(test)]
use crate::model::PendingCredit;
use crate::model::{CardStatus, Decision, date_bytes};

pub(crate) const META: &str = "credit.meta";
pub(crate) const BANKS: &str = "credit.bank";
pub(crate) const CARDHOLDERS: &str = "credit.cardholder";
pub(crate) const CARDS: &str = "credit.card";
pub(crate) const SPENT: &str = "credit.spent";
pub(crate) const PENDING: &str = "credit.pending";
pub(crate) const DECISIONS: &str = "credit.decision";

pub(crate) const CONFIG_KEY: &[u8] = b"config";
pub(crate) const NEXT_AUTHORIZATION_KEY: &[u8] = b"next authorization";
pub(crate) const NEXT_EXPIRY_RUN_KEY: &[u8] = b"next expiry run";
pub(crate) const NEXT_CARDHOLDER_KEY: &[u8] = b"next cardholder";

/// Ledger account codes.
pub(crate) mod code {
    /// A cardholder's credit account: debited by purchases, credited by payments and reflections.
    pub const CARDHOLDER: u16 = 1;
    /// What the company owes the merchants, per currency.
    pub const MERCHANTS: u16 = 2;
    /// What a bank owes the company for the tokens it minted (the pool deposits), per bank and currency.
    pub const BANK_RECEIVABLE: u16 = 3;
    /// The company's money at a bank (its account there), credited by the settlement transfers.
    pub const BANK_FUNDS: u16 = 4;
    /// Transfer code of a purchase.
    pub const PURCHASE: u16 = 1;
    /// Transfer code of a temporary reflection (a pending credit).
    pub const REFLECTION: u16 = 2;
    /// Transfer code of a payment collected at settlement beyond the reflected tokens.
    pub const PAYMENT: u16 = 3;
    /// Transfer code of a bank's settlement transfer received.
    pub const SETTLEMENT_RECEIVED: u16 = 4;
}

/// The configuration a database was created with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredConfig {
    #[serde(with = "crate::hex_serde")]
    pub credit_id: Vec<u8>,
    pub currency: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CardholderRecord {
    pub name: String,
    pub credit_limit: u64,
    pub currency: u16,
    pub account_id: AccountId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CardRecord {
    #[serde(with = "date_bytes")]
    pub expiry: token::Date,
    pub cardholder_id: String,
    /// The uncompressed SEC1 point of the card's signing key.
    #[serde(with = "crate::hex_serde")]
    pub signing_key: Vec<u8>,
    pub status: CardStatus,
    /// The ATC of the last authorization that passed the signature and ATC checks.
    pub last_atc: Option<u32>,
}

/// One token of an authorization's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TokenEvidence {
    /// SHA-256 of the envelope, as the card signed it.
    #[serde(with = "crate::hex_serde")]
    pub digest: [u8; 32],
    #[serde(with = "crate::hex_serde::option")]
    pub token_id: Option<[u8; 16]>,
    pub accepted_sum: Option<u64>,
}

/// What the decision was based on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Evidence {
    pub request_id: u128,
    pub pan: String,
    #[serde(with = "crate::hex_serde")]
    pub nonce: [u8; 16],
    pub amount: u64,
    pub currency: u16,
    pub atc: u32,
    #[serde(with = "crate::hex_serde")]
    pub signature: Vec<u8>,
    pub merchant: String,
    #[serde(with = "date_bytes")]
    pub today: token::Date,
    pub now_unix_seconds: u64,
    pub tokens: Vec<TokenEvidence>,
    /// The ledger transfer of the purchase, when approved.
    pub purchase_transfer: Option<TransferId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DecisionRecord {
    pub decision: Decision,
    pub evidence: Evidence,
}

/// What a spent token points to: the authorization that reflected it and the pending transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SpentRecord {
    pub authorization_id: u128,
    pub pending_transfer: TransferId,
}

/// A record as the credit system writes it (binary: [`ledger::records`]).
pub(crate) fn encode(value: &impl Serialize) -> Vec<u8> {
    ledger::records::encode(value)
}

pub(crate) fn load<T: DeserializeOwned>(
    tx: &mut impl Transaction,
    table: &'static str,
    key: &[u8],
) -> Result<Option<T>, CreditError> {
    tx.get(table, key)?
        .map(|bytes| decode(table, &bytes))
        .transpose()
}

pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, CreditError> {
    ledger::records::decode(bytes).map_err(|source| CreditError::CorruptRecord {
        what,
        source: Some(source),
    })
}

/// `len ‖ bytes`: a prefix-free key part.
pub(crate) fn key_part(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(bytes);
}

/// The spent-token key: (bank id, token id).
pub(crate) fn spent_key(bank_id: &[u8], token_id: &[u8; 16]) -> Vec<u8> {
    let mut key = Vec::with_capacity(34);
    key_part(&mut key, bank_id);
    key.extend_from_slice(token_id);
    key
}

/// The prefix of a cardholder's pending-credit records; the pending transfer id follows.
pub(crate) fn pending_prefix(cardholder_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(cardholder_id.len() + 17);
    key_part(&mut key, cardholder_id.as_bytes());
    key
}

/// The pending transfer id a pending-credit key ends with (cardholder prefix ‖ 16-byte transfer id).
pub(crate) fn pending_transfer_id(key: &[u8]) -> Result<TransferId, CreditError> {
    key.len()
        .checked_sub(16)
        .and_then(|at| key.get(at..))
        .and_then(|id| <[u8; 16]>::try_from(id).ok())
        .map(u128::from_be_bytes)
        .ok_or(CreditError::corrupt("pending credit key"))
}

pub(crate) fn decision_key(authorization_id: u128) -> [u8; 16] {
    authorization_id.to_be_bytes()
}

/// A 128-bit id from a domain label and parts (account ids, the ledger requests the crate makes itself).
pub(crate) fn derived_id(label: &str, parts: &[&[u8]]) -> u128 {
    let mut hash = Sha256::new();
    hash.update(b"linkcard credit ");
    hash.update(label.as_bytes());
    for part in parts {
        hash.update(u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
    u128::from_be_bytes(id)
}

/// The account of the `serial`-th cardholder: a fixed stem and the serial, so cardholders' accounts sit in the
/// order they were added (a statement's or reconciliation's updates touch neighbouring pages, not random ones).
pub(crate) fn cardholder_account_id(serial: u64) -> AccountId {
    derived_id("cardholder accounts", &[]) >> 64 << 64 | u128::from(serial)
}

pub(crate) fn merchants_account_id(currency: u16) -> AccountId {
    derived_id("merchants account", &[&currency.to_be_bytes()])
}

pub(crate) fn bank_funds_account_id(bank_id: &[u8], currency: u16) -> AccountId {
    derived_id("bank funds account", &[bank_id, &currency.to_be_bytes()])
}

pub(crate) fn receivable_account_id(bank_id: &[u8], currency: u16) -> AccountId {
    derived_id(
        "bank receivable account",
        &[bank_id, &currency.to_be_bytes()],
    )
}

/// Transfers of an authorization: slot 0 is the purchase, slot 1 + i the reflection of its i-th token.
pub(crate) fn authorization_transfer_id(authorization_id: u128, slot: u8) -> TransferId {
    authorization_id << 8 | u128::from(slot)
}

/// Reads and advances a counter of `credit.meta` (starting at 1).
pub(crate) fn next_counter(tx: &mut impl Transaction, key: &[u8]) -> Result<u64, CreditError> {
    let current = match tx.get(META, key)? {
        None => 1,
        Some(bytes) => u64::from_be_bytes(
            bytes
                .try_into()
                .map_err(|_| CreditError::corrupt("counter"))?,
        ),
    };
    let next = current
        .checked_add(1)
        .ok_or(CreditError::corrupt("counter"))?;
    tx.put(META, key, &next.to_be_bytes())?;
    Ok(current)
}

/// Days since 1970-01-01 of a Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Seconds since the Unix epoch of the first moment after `date` + `extra_days` (the end of that day), or
/// `None` for a date that is not a real day.
pub(crate) fn end_of_day_after(date: token::Date, extra_days: u16) -> Option<u64> {
    let (year, month, day) = date.ymd()?;
    let days = days_from_civil(i64::from(year), month, day) + i64::from(extra_days) + 1;
    u64::try_from(days.checked_mul(86_400)?).ok()
}

/// The civil date `days` after `date`.
pub(crate) fn add_days(date: token::Date, days: u16) -> Option<token::Date> {
    let (year, month, day) = date.ymd()?;
    let mut day_number = days_from_civil(i64::from(year), month, day) + i64::from(days);
    // civil_from_days (H. Hinnant).
    day_number += 719_468;
    let era = day_number.div_euclid(146_097);
    let day_of_era = day_number - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = u8::try_from(day_of_year - (153 * month_from_march + 2) / 5 + 1).ok()?;
    let month = u8::try_from(if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    })
    .ok()?;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    token::Date::from_ymd(u16::try_from(year).ok()?, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: u16, m: u8, d: u8) -> token::Date {
        token::Date::from_ymd(y, m, d).unwrap()
    }

    fn card() -> CardRecord {
        CardRecord {
            expiry: date(2030, 12, 31),
            cardholder_id: "CH-000042".into(),
            signing_key: vec![0x04, 0xAB, 0xCD],
            status: CardStatus::Lost,
            last_atc: Some(7),
        }
    }

    #[test]
    fn records_are_binary_and_round_trip() {
        let bytes = encode(&card());
        assert_eq!(bytes.first(), Some(&ledger::records::BINARY_RECORD));
        // Bytes stay bytes: the key is 3 bytes long, not 6 hex digits.
        assert!(bytes.windows(3).any(|w| w == [0x04, 0xAB, 0xCD]));
        assert!(bytes.len() < serde_json::to_vec(&card()).unwrap().len() / 2);
        assert_eq!(decode::<CardRecord>("card", &bytes).unwrap(), card());
        let pending = PendingCredit {
            token_id: [9; 16],
            bank_id: b"BANK0001".to_vec(),
            amount: 25_000,
            expires: date(2027, 3, 2),
            authorization_id: 3,
        };
        assert_eq!(
            decode::<PendingCredit>("pending", &encode(&pending)).unwrap(),
            pending
        );
    }

    #[test]
    fn json_records_of_earlier_versions_are_still_read() {
        let json = br#"{"expiry":[32,48,18,49],"cardholder_id":"CH-000042","signing_key":"04abcd","status":"Lost","last_atc":7}"#;
        assert_eq!(decode::<CardRecord>("card", json).unwrap(), card());
        assert_eq!(serde_json::to_vec(&card()).unwrap(), json.to_vec());
    }

    #[test]
    fn damaged_records_are_reported() {
        for bytes in [
            &b""[..],
            b"\x02junk",
            b"{\"expiry\"",
            &[ledger::records::BINARY_RECORD, 0xFF],
        ] {
            let error = decode::<CardRecord>("card", bytes).unwrap_err();
            assert!(
                matches!(error, CreditError::CorruptRecord { what: "card", .. }),
                "{error:?}"
            );
            assert!(!error.is_refusal());
        }
    }

    #[test]
    fn civil_days() {
        assert_eq!(end_of_day_after(date(1970, 1, 1), 0), Some(86_400));
        // 2026-12-01T00:00:00Z = 1796083200.
        assert_eq!(end_of_day_after(date(2026, 11, 30), 0), Some(1_796_083_200));
        assert_eq!(add_days(date(2027, 1, 31), 30), Some(date(2027, 3, 2)));
        assert_eq!(add_days(date(2028, 2, 28), 1), Some(date(2028, 2, 29)));
        assert_eq!(add_days(date(2026, 12, 31), 0), Some(date(2026, 12, 31)));
    }
}
