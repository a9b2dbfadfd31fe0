//! The bank's own records, binary values in the ledger's keyed records ([`ledger::records`]; the JSON that earlier
//! versions wrote is still read), and the canonical request bodies (JSON, hashed for idempotency).

use ledger::Transaction;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{BankError, DepositRecord, DepositState, Source};

pub(crate) const META: &str = "bank.meta";
pub(crate) const CUSTOMERS: &str = "bank.customers";
pub(crate) const CONTRACTS: &str = "bank.contracts";
pub(crate) const DEPOSITS: &str = "bank.deposits";
/// Key user id ‖ 00 ‖ token id, empty value: a customer's deposits by prefix (user ids are printable ASCII).
pub(crate) const DEPOSITS_BY_USER: &str = "bank.deposits_by_user";
/// Key credit id ‖ 00 ‖ message id: a settlement's progress.
pub(crate) const SETTLEMENTS: &str = "bank.settlements";
/// Key credit id ‖ 00 ‖ end-to-end id: a settled deduction's request hash and answer. Keyed by what the credit
/// company names it, so the same deduction in a re-sent file is recognised, and one file's deductions (whose ids
/// share a stem) are stored side by side.
pub(crate) const SETTLED: &str = "bank.settled";
pub(crate) const META_KEY: &[u8] = b"meta";

/// Bytes as raw bytes in binary records, hex in JSON (earlier versions wrote uppercase).
pub(crate) use ledger::records::hex_bytes;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Meta {
    #[serde(with = "hex_bytes")]
    pub bank_id: Vec<u8>,
    pub currency: u16,
    pub customers: u64,
    pub contracts: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CustomerRecord {
    pub user_id: String,
    pub name: String,
    pub account_number: String,
    pub currency: u16,
    pub serial: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ContractRecord {
    #[serde(with = "hex_bytes")]
    pub credit_id: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub hpke_key: Vec<u8>,
    pub valid_until: [u8; 4],
    pub active: bool,
    pub serial: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredDeposit {
    #[serde(with = "hex_bytes")]
    pub token_id: [u8; 16],
    pub user_id: String,
    #[serde(with = "hex_bytes")]
    pub credit_id: Vec<u8>,
    pub amount: u64,
    pub currency: u16,
    pub source: Source,
    pub deposit_date: [u8; 4],
    pub valid_until: [u8; 4],
    pub state: DepositState,
    /// How much of a confirmed deposit settlements have taken from the pool so far.
    #[serde(default)]
    pub settled: u64,
}

impl StoredDeposit {
    /// What is left of a confirmed deposit in the pool (nothing of one held, cancelled or expired).
    pub fn remaining(&self) -> u64 {
        match self.state {
            DepositState::Confirmed => self.amount.saturating_sub(self.settled),
            _ => 0,
        }
    }

    pub fn public(&self) -> DepositRecord {
        DepositRecord {
            token_id: self.token_id,
            credit_id: self.credit_id.clone(),
            amount: self.amount,
            currency: self.currency,
            deposit_date: token::Date(self.deposit_date),
            valid_until: token::Date(self.valid_until),
            state: self.state,
        }
    }
}

/// A deposit's answer, kept for replays.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DepositAnswer {
    #[serde(with = "hex_bytes")]
    pub token: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub token_id: [u8; 16],
    pub amount: u64,
    pub currency: u16,
    pub valid_until: [u8; 4],
}

/// The canonical body of a request, hashed for idempotency: JSON, as every version wrote it (a replay after an
/// upgrade must hash alike).
pub(crate) fn request_body(value: &impl Serialize) -> Result<Vec<u8>, BankError> {
    serde_json::to_vec(value).map_err(|_| BankError::Corrupt { what: "request" })
}

/// A record or a stored answer.
pub(crate) fn encode(value: &impl Serialize) -> Vec<u8> {
    ledger::records::encode(value)
}

pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, BankError> {
    ledger::records::decode(bytes).map_err(|_| BankError::Corrupt { what })
}

pub(crate) fn load<T: DeserializeOwned>(
    tx: &mut impl Transaction,
    table: &'static str,
    key: &[u8],
) -> Result<Option<T>, BankError> {
    tx.get(table, key)?
        .map(|bytes| decode(&bytes, table))
        .transpose()
}

pub(crate) fn save(
    tx: &mut impl Transaction,
    table: &'static str,
    key: &[u8],
    value: &impl Serialize,
) -> Result<(), BankError> {
    tx.put(table, key, &encode(value))?;
    Ok(())
}

pub(crate) fn deposit_index_key(user_id: &str, token_id: &[u8; 16]) -> Vec<u8> {
    [user_id.as_bytes(), &[0], token_id].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_written_binary_and_the_json_of_earlier_versions_is_still_read() {
        let answer = DepositAnswer {
            token: vec![0xAB; 40],
            token_id: [0x0F; 16],
            amount: 25_000,
            currency: 392,
            valid_until: [0x20, 0x27, 0x01, 0x31],
        };
        let binary = encode(&answer);
        assert_eq!(binary.first(), Some(&ledger::records::BINARY_RECORD));
        // Earlier versions wrote JSON, with uppercase hex.
        let json = format!(
            r#"{{"token":"{}","token_id":"{}","amount":25000,"currency":392,"valid_until":[32,39,1,49]}}"#,
            "AB".repeat(40),
            "0F".repeat(16)
        )
        .into_bytes();
        assert!(
            binary.len() < json.len() / 2,
            "{} vs {}",
            binary.len(),
            json.len()
        );
        for bytes in [&binary, &json] {
            let read: DepositAnswer = decode(bytes, "answer").unwrap();
            assert_eq!(
                (read.token, read.token_id, read.amount, read.valid_until),
                (
                    answer.token.clone(),
                    answer.token_id,
                    25_000,
                    answer.valid_until
                )
            );
        }
        assert!(matches!(
            decode::<DepositAnswer>(b"junk", "answer"),
            Err(BankError::Corrupt { what: "answer" })
        ));
    }
}
