//! The canonical byte form of requests (hashed for idempotency) and answers (stored for replays): fixed-width
//! big-endian fields behind one tag byte per variant, so equal requests and only equal requests encode alike.

use sha2::{Digest, Sha256};

use crate::error::LedgerError;
use crate::model::{
    Account, AccountFlags, Answer, Currency, NewAccount, NewTransfer, Request, Transfer,
    TransferKind, UserData,
};

/// SHA-256 of a request's canonical form.
pub type RequestHash = [u8; 32];

const LEDGER_DOMAIN: &[u8] = b"linkcard-ledger request v1\0";
const RECORD_DOMAIN: &[u8] = b"linkcard-ledger domain request v1\0";

pub(crate) fn request_hash(request: &Request) -> RequestHash {
    let mut out = Writer::default();
    match request {
        Request::CreateAccounts(accounts) => {
            out.u8(1).len(accounts.len());
            accounts.iter().for_each(|account| out.new_account(account));
        }
        Request::CreateTransfers(transfers) => {
            out.u8(2).len(transfers.len());
            transfers
                .iter()
                .for_each(|transfer| out.new_transfer(transfer));
        }
        Request::ExpirePending { now } => {
            out.u8(3).u64(*now);
        }
    }
    Sha256::new()
        .chain_update(LEDGER_DOMAIN)
        .chain_update(&out.0)
        .finalize()
        .into()
}

/// The hash of a domain crate's own request: `kind` names it (so two kinds never collide), `body` is its
/// canonical bytes.
pub(crate) fn record_request_hash(kind: &str, body: &[u8]) -> RequestHash {
    let mut out = Writer::default();
    out.bytes(kind.as_bytes()).bytes(body);
    Sha256::new()
        .chain_update(RECORD_DOMAIN)
        .chain_update(&out.0)
        .finalize()
        .into()
}

pub(crate) fn encode_answer(answer: &Answer) -> Vec<u8> {
    let mut out = Writer::default();
    match answer {
        Answer::Accounts(accounts) => {
            out.u8(1).len(accounts.len());
            accounts.iter().for_each(|account| out.account(account));
        }
        Answer::Transfers(transfers) => {
            out.u8(2).len(transfers.len());
            transfers.iter().for_each(|transfer| out.transfer(transfer));
        }
        Answer::Expired(ids) => {
            out.u8(3).len(ids.len());
            ids.iter().for_each(|id| {
                out.u128(*id);
            });
        }
    }
    out.0
}

pub(crate) fn decode_answer(bytes: &[u8]) -> Result<Answer, LedgerError> {
    let mut input = Reader(bytes);
    let answer = match input.u8()? {
        1 => Answer::Accounts(input.list(Reader::account)?),
        2 => Answer::Transfers(input.list(Reader::transfer)?),
        3 => Answer::Expired(input.list(Reader::u128)?),
        _ => return Err(CORRUPT),
    };
    if !input.0.is_empty() {
        return Err(CORRUPT);
    }
    Ok(answer)
}

const CORRUPT: LedgerError = LedgerError::Corrupt { what: "answer" };

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, value: u8) -> &mut Self {
        self.0.push(value);
        self
    }
    fn u16(&mut self, value: u16) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
    fn u64(&mut self, value: u64) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
    fn u128(&mut self, value: u128) -> &mut Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
    fn len(&mut self, len: usize) -> &mut Self {
        self.u64(len as u64)
    }
    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.len(bytes.len());
        self.0.extend_from_slice(bytes);
        self
    }
    fn kind(&mut self, kind: &TransferKind) -> &mut Self {
        match *kind {
            TransferKind::Single => self.u8(0),
            TransferKind::Pending { expires_at } => self.u8(1).u64(expires_at),
            TransferKind::PostPending { pending_id } => self.u8(2).u128(pending_id),
            TransferKind::VoidPending { pending_id } => self.u8(3).u128(pending_id),
        }
    }
    fn new_account(&mut self, account: &NewAccount) {
        self.u128(account.id)
            .u16(account.currency.0)
            .u16(account.code)
            .u16(account.flags.bits());
        self.0.extend_from_slice(&account.user_data);
    }
    fn account(&mut self, account: &Account) {
        self.new_account(&account.as_new());
        self.u128(account.debits_pending)
            .u128(account.debits_posted);
        self.u128(account.credits_pending)
            .u128(account.credits_posted)
            .u64(account.timestamp);
    }
    fn new_transfer(&mut self, transfer: &NewTransfer) {
        self.u128(transfer.id)
            .u128(transfer.debit_account_id)
            .u128(transfer.credit_account_id);
        self.u128(transfer.amount)
            .u16(transfer.currency.0)
            .u16(transfer.code);
        self.0.extend_from_slice(&transfer.user_data);
        self.kind(&transfer.kind);
    }
    fn transfer(&mut self, transfer: &Transfer) {
        self.new_transfer(&transfer.as_new());
        self.u64(transfer.timestamp);
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], LedgerError> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(CORRUPT)?;
        self.0 = rest;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, LedgerError> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, LedgerError> {
        Ok(u16::from_be_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, LedgerError> {
        Ok(u64::from_be_bytes(self.take()?))
    }
    fn u128(&mut self) -> Result<u128, LedgerError> {
        Ok(u128::from_be_bytes(self.take()?))
    }
    fn user_data(&mut self) -> Result<UserData, LedgerError> {
        self.take()
    }
    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, LedgerError>,
    ) -> Result<Vec<T>, LedgerError> {
        let len = usize::try_from(self.u64()?).map_err(|_| CORRUPT)?;
        // Each item takes at least 16 bytes: a corrupt length cannot make us reserve much.
        let mut items = Vec::with_capacity(len.min(self.0.len() / 16));
        for _ in 0..len {
            items.push(item(self)?);
        }
        Ok(items)
    }
    fn kind(&mut self) -> Result<TransferKind, LedgerError> {
        Ok(match self.u8()? {
            0 => TransferKind::Single,
            1 => TransferKind::Pending {
                expires_at: self.u64()?,
            },
            2 => TransferKind::PostPending {
                pending_id: self.u128()?,
            },
            3 => TransferKind::VoidPending {
                pending_id: self.u128()?,
            },
            _ => return Err(CORRUPT),
        })
    }
    fn account(&mut self) -> Result<Account, LedgerError> {
        Ok(Account {
            id: self.u128()?,
            currency: Currency(self.u16()?),
            code: self.u16()?,
            flags: AccountFlags::from_bits(self.u16()?).ok_or(CORRUPT)?,
            user_data: self.user_data()?,
            debits_pending: self.u128()?,
            debits_posted: self.u128()?,
            credits_pending: self.u128()?,
            credits_posted: self.u128()?,
            timestamp: self.u64()?,
        })
    }
    fn transfer(&mut self) -> Result<Transfer, LedgerError> {
        Ok(Transfer {
            id: self.u128()?,
            debit_account_id: self.u128()?,
            credit_account_id: self.u128()?,
            amount: self.u128()?,
            currency: Currency(self.u16()?),
            code: self.u16()?,
            user_data: self.user_data()?,
            kind: self.kind()?,
            timestamp: self.u64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(kind: TransferKind) -> Transfer {
        Transfer {
            id: 7,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: u128::MAX,
            currency: Currency(978),
            code: 3,
            user_data: [9; 32],
            kind,
            timestamp: 55,
        }
    }

    #[test]
    fn answers_round_trip() {
        let account = Account {
            debits_posted: 5,
            credits_pending: u128::MAX,
            ..Account::opened(
                &NewAccount {
                    id: 1,
                    currency: Currency(392),
                    code: 4,
                    flags: AccountFlags {
                        debits_must_not_exceed_credits: true,
                        credits_must_not_exceed_debits: false,
                    },
                    user_data: [1; 32],
                },
                9,
            )
        };
        let answers = [
            Answer::Accounts(vec![account, account]),
            Answer::Transfers(vec![
                transfer(TransferKind::Single),
                transfer(TransferKind::Pending {
                    expires_at: u64::MAX,
                }),
                transfer(TransferKind::PostPending { pending_id: 3 }),
                transfer(TransferKind::VoidPending { pending_id: 4 }),
            ]),
            Answer::Expired(vec![1, u128::MAX]),
            Answer::Transfers(vec![]),
        ];
        for answer in answers {
            let bytes = encode_answer(&answer);
            assert_eq!(decode_answer(&bytes).unwrap(), answer);
            assert!(
                decode_answer(&bytes[..bytes.len() - 1]).is_err(),
                "a truncated answer is refused"
            );
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(
                decode_answer(&longer).is_err(),
                "trailing bytes are refused"
            );
        }
    }

    #[test]
    fn equal_requests_and_only_equal_requests_hash_alike() {
        let one = transfer(TransferKind::Single).as_new();
        let request = Request::CreateTransfers(vec![one]);
        assert_eq!(request_hash(&request), request_hash(&request.clone()));
        let other_kind = Request::CreateTransfers(vec![NewTransfer {
            kind: TransferKind::PostPending { pending_id: 0 },
            ..one
        }]);
        let other_amount = Request::CreateTransfers(vec![NewTransfer { amount: 1, ..one }]);
        let two = Request::CreateTransfers(vec![one, one]);
        let hashes = [
            &request,
            &other_kind,
            &other_amount,
            &two,
            &Request::ExpirePending { now: 0 },
        ]
        .map(request_hash);
        for (i, a) in hashes.iter().enumerate() {
            for b in &hashes[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Length prefixes keep the kind and the body apart.
        assert_ne!(
            record_request_hash("ab", b"c"),
            record_request_hash("a", b"bc")
        );
    }
}
