//! The ledger's data: accounts, transfers, requests and their answers.

/// An account's identifier, chosen by the caller (unique in the ledger).
pub type AccountId = u128;
/// A transfer's identifier, chosen by the caller (unique in the ledger).
pub type TransferId = u128;
/// Nanoseconds since the Unix epoch. The ledger assigns every account and transfer a strictly increasing one.
pub type Timestamp = u64;
/// Bytes the caller keeps with an account or a transfer for its own references (a token id, a customer number).
pub type UserData = [u8; 32];

/// An ISO 4217 numeric currency code (978 = EUR, 392 = JPY). Amounts are integer minor units of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency(pub u16);

/// A request's identifier, chosen by the caller: the same id with the same request is answered once, for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u128);

/// Limits an account keeps on its own balance (TigerBeetle's account flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct AccountFlags {
    /// Debits (pending + posted) may never exceed posted credits: an asset the holder owns, such as a deposit.
    pub debits_must_not_exceed_credits: bool,
    /// Credits (pending + posted) may never exceed posted debits: a limit granted, such as a credit line.
    pub credits_must_not_exceed_debits: bool,
}

impl AccountFlags {
    pub(crate) fn bits(self) -> u16 {
        u16::from(self.debits_must_not_exceed_credits)
            | u16::from(self.credits_must_not_exceed_debits) << 1
    }

    pub(crate) fn from_bits(bits: u16) -> Option<Self> {
        (bits <= 0b11).then_some(Self {
            debits_must_not_exceed_credits: bits & 1 != 0,
            credits_must_not_exceed_debits: bits & 2 != 0,
        })
    }
}

/// What the caller asks for when it opens an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NewAccount {
    pub id: AccountId,
    pub currency: Currency,
    /// The caller's kind of account (cash, pool, settlement, credit line …); the ledger does not interpret it.
    pub code: u16,
    pub flags: AccountFlags,
    pub user_data: UserData,
}

/// An account with its four balances, in minor units of its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Account {
    pub id: AccountId,
    pub currency: Currency,
    pub code: u16,
    pub flags: AccountFlags,
    pub user_data: UserData,
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
    /// When the ledger created it.
    pub timestamp: Timestamp,
}

impl Account {
    pub(crate) fn opened(new: &NewAccount, timestamp: Timestamp) -> Self {
        Self {
            id: new.id,
            currency: new.currency,
            code: new.code,
            flags: new.flags,
            user_data: new.user_data,
            debits_pending: 0,
            debits_posted: 0,
            credits_pending: 0,
            credits_posted: 0,
            timestamp,
        }
    }

    /// The fields the caller chose, to compare a second creation with the first.
    pub fn as_new(&self) -> NewAccount {
        NewAccount {
            id: self.id,
            currency: self.currency,
            code: self.code,
            flags: self.flags,
            user_data: self.user_data,
        }
    }
}

/// How a transfer moves money (TigerBeetle's transfer flags, one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferKind {
    /// Posted at once.
    Single,
    /// Reserved on both accounts until posted, voided, or expired by [`expire_pending`](crate::Transaction::expire_pending)
    /// at or after `expires_at`.
    Pending { expires_at: Timestamp },
    /// Posts `amount` (≤ the pending amount) of a pending transfer; the rest of the reservation is released.
    PostPending { pending_id: TransferId },
    /// Releases a pending transfer's whole reservation; its `amount` must be the pending amount.
    VoidPending { pending_id: TransferId },
}

/// What the caller asks for when it moves money. Post and void name the pending transfer's accounts, currency and
/// amount: [`NewTransfer::post`] and [`NewTransfer::void`] copy them from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NewTransfer {
    pub id: TransferId,
    pub debit_account_id: AccountId,
    pub credit_account_id: AccountId,
    /// Minor units, > 0.
    pub amount: u128,
    pub currency: Currency,
    pub code: u16,
    pub user_data: UserData,
    pub kind: TransferKind,
}

impl NewTransfer {
    /// Posts `amount` of `pending` (its accounts and currency copied), under the new transfer id `id`.
    pub fn post(id: TransferId, pending: &Transfer, amount: u128) -> Self {
        Self {
            id,
            amount,
            kind: TransferKind::PostPending {
                pending_id: pending.id,
            },
            ..pending.as_new()
        }
    }

    /// Voids `pending` (its accounts, currency and amount copied), under the new transfer id `id`.
    pub fn void(id: TransferId, pending: &Transfer) -> Self {
        Self {
            id,
            kind: TransferKind::VoidPending {
                pending_id: pending.id,
            },
            ..pending.as_new()
        }
    }
}

/// A transfer as the ledger recorded it. Transfers never change; a pending one's fate is its [`PendingState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transfer {
    pub id: TransferId,
    pub debit_account_id: AccountId,
    pub credit_account_id: AccountId,
    pub amount: u128,
    pub currency: Currency,
    pub code: u16,
    pub user_data: UserData,
    pub kind: TransferKind,
    /// When the ledger applied it.
    pub timestamp: Timestamp,
}

impl Transfer {
    /// The fields the caller chose, to compare a second creation with the first.
    pub fn as_new(&self) -> NewTransfer {
        NewTransfer {
            id: self.id,
            debit_account_id: self.debit_account_id,
            credit_account_id: self.credit_account_id,
            amount: self.amount,
            currency: self.currency,
            code: self.code,
            user_data: self.user_data,
            kind: self.kind,
        }
    }
}

/// The fate of a [`TransferKind::Pending`] transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PendingState {
    Pending,
    Posted,
    Voided,
    Expired,
}

/// One mutating request: applied all-or-nothing, answered once per [`RequestId`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Request {
    /// Opens accounts, all or none.
    CreateAccounts(Vec<NewAccount>),
    /// A linked chain (TigerBeetle's `linked` flag on all but the last): applied in order, all or none; a later
    /// transfer may post or void a pending one made earlier in the chain. Independent transfers are separate
    /// requests, which a batch ([`Ledger::submit_batch`](crate::Ledger::submit_batch)) commits together.
    CreateTransfers(Vec<NewTransfer>),
    /// Expires every pending transfer whose `expires_at` is ≤ `now`, oldest expiry first.
    ExpirePending { now: Timestamp },
}

/// The answer to a [`Request`], the same on every replay.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Answer {
    Accounts(Vec<Account>),
    Transfers(Vec<Transfer>),
    /// The pending transfers this request expired, in the order it expired them.
    Expired(Vec<TransferId>),
}
