//! Account and transfer ids: readable account ids (kind, currency, serial) and derived ids for the ledger
//! requests and transfers a bank call makes.

use ledger::{AccountId, RequestId, TransferId};
use sha2::{Digest, Sha256};

/// What an account is for; its number is the ledger `code` and the top bits of its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum AccountKind {
    Cash = 1,
    Personal = 2,
    Pool = 3,
    Settlement = 4,
    /// The credit company's own account at the bank, credited by each settlement's batch transfer.
    CreditCompany = 5,
}

impl AccountKind {
    pub fn code(self) -> u16 {
        self as u16
    }
}

/// `kind << 112 | currency << 96 | serial` (serial 0 for cash, the customer's or contract's number otherwise).
pub fn account_id(kind: AccountKind, currency: u16, serial: u64) -> AccountId {
    u128::from(kind.code()) << 112 | u128::from(currency) << 96 | u128::from(serial)
}

/// Ledger codes of the bank's transfers.
pub(crate) mod transfer_code {
    pub const CASH_IN: u16 = 1;
    pub const DEPOSIT: u16 = 2;
    /// A user's due sum taken from their pool sub-account or personal account (settlement, Fig. 8).
    pub const SETTLEMENT: u16 = 3;
    /// A settlement's batch transfer to the credit company.
    pub const BATCH: u16 = 4;
}

fn derive(label: &str, parts: &[&[u8]]) -> u128 {
    let mut hash = Sha256::new();
    hash.update(b"linkcard-bank id v1\0");
    hash.update(label.as_bytes());
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    let digest = hash.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(id)
}

/// The id of the ledger request a bank request makes for `step`: distinct from the bank request's own id, and
/// the same on every retry of it.
pub(crate) fn ledger_request(request: RequestId, step: &str) -> RequestId {
    RequestId(derive(step, &[&request.0.to_be_bytes()]))
}

/// A deposit's hold is the pending transfer whose id is the token id.
pub(crate) fn hold_transfer(token_id: &[u8; 16]) -> TransferId {
    u128::from_be_bytes(*token_id)
}

/// The transfer that posts or voids a deposit's hold.
pub(crate) fn resolution_transfer(token_id: &[u8; 16]) -> TransferId {
    derive("resolve hold", &[token_id])
}

/// The transfers of a deduction file's settlement (`source`: 0 pool, 1 personal), the same on every run of the
/// file. The file's hash leads and the deduction's position follows, so a settlement's transfers land side by side
/// in the ledger's index instead of on random pages; the hash is taken once per settlement, not per transfer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SettlementTransfers {
    file: u128,
}

impl SettlementTransfers {
    pub(crate) fn of(credit_id: &[u8], message_id: &str) -> Self {
        Self {
            file: derive("settlement file", &[credit_id, message_id.as_bytes()]) >> 64 << 64,
        }
    }

    /// The transfer from `source` of the deduction at `position` in the file.
    pub(crate) fn id(self, position: u64, source: u8) -> TransferId {
        assert!(position < 1 << 56, "a deduction file is shorter than 2^56");
        self.file | u128::from(position) << 8 | u128::from(source)
    }
}

/// A settlement's batch transfer, and the request that makes it.
pub(crate) fn batch_transfer(credit_id: &[u8], message_id: &str) -> TransferId {
    derive("settlement batch", &[credit_id, message_id.as_bytes()])
}

pub(crate) fn cash_in_transfer(request: RequestId) -> TransferId {
    derive("cash in", &[&request.0.to_be_bytes()])
}

/// Account user data: the owner's id (user id ≤ 32 bytes, credit id ≤ 16), zero-padded.
pub(crate) fn user_data(owner: &[u8]) -> [u8; 32] {
    let mut data = [0u8; 32];
    let length = owner.len().min(32);
    data[..length].copy_from_slice(&owner[..length]);
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_read_in_hex() {
        assert_eq!(
            format!("{:032x}", account_id(AccountKind::Pool, 392, 7)),
            "00030188000000000000000000000007"
        );
    }
}
