//! Storage behind traits: a [`Store`] opens [`Transaction`]s; the rules of the ledger are provided methods written
//! once over the primitives of [`LedgerTables`], so a new backend (PostgreSQL) implements only those.

use crate::codec::{self, RequestHash};
use crate::error::LedgerError;
use crate::model::{
    Account, AccountId, Answer, NewAccount, NewTransfer, PendingState, Request, RequestId,
    Timestamp, Transfer, TransferId,
};
use crate::rules;

/// A database holding one ledger and the domain crates' records.
pub trait Store {
    type Tx<'a>: Transaction
    where
        Self: 'a;

    /// Opens a write transaction. Dropping it without [`Transaction::commit`] rolls everything back.
    fn transaction(&mut self) -> Result<Self::Tx<'_>, LedgerError>;

    /// Called by a long import between two of its commits ([`crate::Ledger::import_while_reading`]): a store
    /// whose database takes one writer at a time lets the writers waiting for it (an ATM deposit, a purchase)
    /// in here, so that they are not kept waiting until the whole import is done.
    fn let_others_write(&mut self) {}

    /// Opens a transaction for reading only: it sees the database as committed when it first reads, and neither
    /// waits for nor holds up a writer in another connection. Do not write in it.
    fn read_transaction(&mut self) -> Result<Self::Tx<'_>, LedgerError>;

    /// A write transaction whose commit does not wait for the disk: the changes are in, in order after every
    /// earlier commit, and other connections see them, but a crash of the machine (not of the process) may take
    /// the commit back, with every unsynced commit after it and never a synced one. The next synced commit or
    /// [`Store::sync`] makes it durable. For the chunks of a long import, whose answer leaves only after its last
    /// commit is synced: a disk flush per chunk would stall it for nothing. A store without the distinction
    /// syncs.
    fn unsynced_transaction(&mut self) -> Result<Self::Tx<'_>, LedgerError> {
        self.transaction()
    }

    /// Makes every commit made so far durable, the [`Store::unsynced_transaction`] ones included.
    fn sync(&mut self) -> Result<(), LedgerError> {
        Ok(())
    }
}

/// A keyed record: (key, value).
pub type Record = (Vec<u8>, Vec<u8>);

/// Whether [`Transaction::insert_unique`] stored the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Inserted,
    /// A record with that key was there already; it is unchanged.
    AlreadyExists,
}

/// What a request stored under its id: the hash of the request and the answer given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    pub hash: RequestHash,
    pub answer: Vec<u8>,
}

/// Whether an idempotent request ran now or was answered from its first run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded<T> {
    Applied(T),
    Replayed(T),
}

impl<T> Recorded<T> {
    pub fn into_inner(self) -> T {
        match self {
            Self::Applied(value) | Self::Replayed(value) => value,
        }
    }

    pub fn was_replayed(&self) -> bool {
        matches!(self, Self::Replayed(_))
    }
}

/// The ledger's own tables, for storage implementations. They check nothing: bank and credit code goes through
/// [`Transaction`]'s rule-checked operations instead.
pub trait LedgerTables {
    /// A timestamp later than every one this store assigned before.
    fn next_timestamp(&mut self) -> Result<Timestamp, LedgerError>;
    fn load_account(&mut self, id: AccountId) -> Result<Option<Account>, LedgerError>;
    fn insert_account(&mut self, account: &Account) -> Result<(), LedgerError>;
    fn update_balances(&mut self, account: &Account) -> Result<(), LedgerError>;
    fn load_transfer(&mut self, id: TransferId) -> Result<Option<Transfer>, LedgerError>;
    /// Stores a transfer; a pending one starts in [`PendingState::Pending`].
    fn insert_transfer(&mut self, transfer: &Transfer) -> Result<(), LedgerError>;
    fn pending_state(&mut self, id: TransferId) -> Result<Option<PendingState>, LedgerError>;
    fn set_pending_state(&mut self, id: TransferId, state: PendingState)
    -> Result<(), LedgerError>;
    /// Pending transfers still [`PendingState::Pending`] whose expiry is ≤ `now`, by expiry then id.
    fn pending_due(&mut self, now: Timestamp) -> Result<Vec<Transfer>, LedgerError>;
    fn all_accounts(&mut self) -> Result<Vec<Account>, LedgerError>;
    /// Every transfer with the state of the pending ones, by timestamp.
    fn all_transfers(&mut self) -> Result<Vec<(Transfer, Option<PendingState>)>, LedgerError>;
    fn load_request(&mut self, id: RequestId) -> Result<Option<StoredRequest>, LedgerError>;
    fn insert_request(&mut self, id: RequestId, request: &StoredRequest)
    -> Result<(), LedgerError>;
}

/// One database transaction: the ledger's operations, the domain crates' keyed records, and savepoints, all
/// committed together and durably by [`Transaction::commit`].
pub trait Transaction: LedgerTables + Sized {
    /// Makes everything done in this transaction durable. Answer no one before it returns `Ok`.
    fn commit(self) -> Result<(), LedgerError>;

    /// Opens a nested scope: [`Transaction::rollback_to_savepoint`] undoes what was done since. Prefer
    /// [`Transaction::scope`], which always closes it.
    fn savepoint(&mut self) -> Result<(), LedgerError>;
    /// Closes the innermost scope, keeping its changes (they still wait for the commit).
    fn release_savepoint(&mut self) -> Result<(), LedgerError>;
    /// Closes the innermost scope, undoing its changes.
    fn rollback_to_savepoint(&mut self) -> Result<(), LedgerError>;

    /// Stores `value` under (`table`, `key`) unless that key exists (then nothing changes).
    fn insert_unique(
        &mut self,
        table: &str,
        key: &[u8],
        value: &[u8],
    ) -> Result<Inserted, LedgerError>;
    fn get(&mut self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError>;
    /// Stores `value` under (`table`, `key`), replacing any record there.
    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<(), LedgerError>;
    /// Removes the record; `true` if there was one.
    fn delete(&mut self, table: &str, key: &[u8]) -> Result<bool, LedgerError>;
    /// Up to `limit` records of `table` whose key starts with `prefix`, by key, after the key `after` (empty:
    /// from the first); a page of a table too big to read at once. `after` must start with `prefix`.
    fn scan_prefix_page(
        &mut self,
        table: &str,
        prefix: &[u8],
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<Record>, LedgerError>;
    /// Every record of `table` whose key starts with `prefix`, by key.
    fn scan_prefix(&mut self, table: &str, prefix: &[u8]) -> Result<Vec<Record>, LedgerError>;
    /// The least key of `table` that is ≥ `from`, if any: whether a range holds records at all, in one look.
    fn first_key_from(&mut self, table: &str, from: &[u8]) -> Result<Option<Vec<u8>>, LedgerError>;

    /// Whether `table` may hold a record under any of `keys`, so that each must be looked up; `false` when none
    /// is there, which one look at the range between the least and the greatest key tells for a whole batch (a
    /// batch of new, ordered keys). A key twice in `keys` counts as held: the second is the first's replay.
    fn may_hold_any(&mut self, table: &str, keys: &[Vec<u8>]) -> Result<bool, LedgerError> {
        let mut sorted: Vec<&Vec<u8>> = keys.iter().collect();
        sorted.sort_unstable();
        if sorted.windows(2).any(|pair| pair[0] == pair[1]) {
            return Ok(true);
        }
        match (sorted.first(), sorted.last()) {
            (Some(first), Some(last)) => self.any_between(table, first, last),
            _ => Ok(false),
        }
    }

    /// Whether `table` holds any record whose key is between `first` and `last` (both included).
    fn any_between(&mut self, table: &str, first: &[u8], last: &[u8]) -> Result<bool, LedgerError> {
        Ok(self
            .first_key_from(table, first)?
            .is_some_and(|key| key.as_slice() <= last))
    }

    /// Reads the records under `keys` in one ordered range scan for the lookups ([`Transaction::get`]) that
    /// follow: a hint for a batch of neighbouring keys, which a store may ignore. It replaces the table's earlier
    /// read-ahead; a write to a key drops what was read ahead under it.
    fn read_ahead(&mut self, _table: &str, _keys: &[Vec<u8>]) -> Result<(), LedgerError> {
        Ok(())
    }

    /// Likewise for the scans ([`Transaction::scan_prefix`]) under each of `prefixes`.
    fn read_ahead_prefixes(
        &mut self,
        _table: &str,
        _prefixes: &[Vec<u8>],
    ) -> Result<(), LedgerError> {
        Ok(())
    }

    /// Likewise for the accounts `ids` ([`LedgerTables::load_account`]).
    fn read_ahead_accounts(&mut self, _ids: &[AccountId]) -> Result<(), LedgerError> {
        Ok(())
    }

    /// Says that the transfers created next in this transaction have new ids between `first` and `last`
    /// (included). A store that finds no transfer in that range may skip the existence check of each (creating
    /// one twice is still refused); answers whether the range held none.
    fn expect_new_transfers(
        &mut self,
        _first: TransferId,
        _last: TransferId,
    ) -> Result<bool, LedgerError> {
        Ok(false)
    }

    /// Runs `work` all-or-nothing inside this transaction: if it fails, its changes are undone and the rest of
    /// the transaction is kept (one request of a group commit).
    fn scope<T, E: From<LedgerError>>(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        self.savepoint()?;
        match work(self) {
            Ok(value) => {
                self.release_savepoint()?;
                Ok(value)
            }
            Err(error) => {
                self.rollback_to_savepoint()?;
                Err(error)
            }
        }
    }

    /// Applies a ledger request once: a replay of the same request under `request_id` gets the first answer and
    /// changes nothing; another request under the same id is refused ([`LedgerError::IdempotencyConflict`]); a
    /// refused request leaves no trace (it may be retried under its id).
    fn apply(&mut self, request_id: RequestId, request: &Request) -> Result<Answer, LedgerError> {
        let hash = codec::request_hash(request);
        let answer = once::<_, LedgerError>(self, request_id, hash, |tx| {
            let answer = rules::execute(tx, request)?;
            Ok(codec::encode_answer(&answer))
        })?;
        codec::decode_answer(&answer.into_inner())
    }

    /// A domain crate's own idempotent request (a deposit, an authorization): `work` runs all-or-nothing and
    /// its answer bytes are kept under `request_id`, bound to the hash of (`kind`, `body`). Same rules as
    /// [`Transaction::apply`], sharing its request ids.
    fn idempotent<E: From<LedgerError>>(
        &mut self,
        request_id: RequestId,
        kind: &str,
        body: &[u8],
        work: impl FnOnce(&mut Self) -> Result<Vec<u8>, E>,
    ) -> Result<Recorded<Vec<u8>>, E> {
        once(
            self,
            request_id,
            codec::record_request_hash(kind, body),
            work,
        )
    }

    /// Rows this transaction has inserted, updated or deleted so far.
    fn writes(&self) -> u64;

    /// [`Transaction::idempotent`] without a savepoint, for hot paths (an authorization in a group commit) whose
    /// `work` refuses only before its first write: a savepoint copies every page the work touches. Should `work`
    /// fail after writing, its changes cannot be undone alone: the answer is then
    /// [`LedgerError::FailedAfterWriting`] (keeping `work`'s error), and the transaction must be abandoned.
    fn idempotent_unscoped<E>(
        &mut self,
        request_id: RequestId,
        kind: &str,
        body: &[u8],
        work: impl FnOnce(&mut Self) -> Result<Vec<u8>, E>,
    ) -> Result<Recorded<Vec<u8>>, E>
    where
        E: From<LedgerError> + std::error::Error + Send + Sync + 'static,
    {
        let hash = codec::record_request_hash(kind, body);
        if let Some(replayed) = replayed(self, request_id, &hash)? {
            return Ok(replayed);
        }
        let writes_before = self.writes();
        let answer = match work(self) {
            Ok(answer) => answer,
            Err(error) if self.writes() == writes_before => return Err(error),
            Err(error) => {
                return Err(LedgerError::FailedAfterWriting {
                    request: request_id,
                    source: Box::new(error),
                }
                .into());
            }
        };
        let stored = StoredRequest {
            hash,
            answer: answer.clone(),
        };
        self.insert_request(request_id, &stored)?;
        Ok(Recorded::Applied(answer))
    }

    /// Opens one account ([`Request::CreateAccounts`]).
    fn create_account(
        &mut self,
        request_id: RequestId,
        account: NewAccount,
    ) -> Result<Account, LedgerError> {
        match self.apply(request_id, &Request::CreateAccounts(vec![account]))? {
            Answer::Accounts(mut accounts) if accounts.len() == 1 => Ok(accounts.remove(0)),
            _ => Err(LedgerError::Corrupt { what: "answer" }),
        }
    }

    /// Applies one transfer ([`Request::CreateTransfers`] of one).
    fn create_transfer(
        &mut self,
        request_id: RequestId,
        transfer: NewTransfer,
    ) -> Result<Transfer, LedgerError> {
        match self.apply(request_id, &Request::CreateTransfers(vec![transfer]))? {
            Answer::Transfers(mut transfers) if transfers.len() == 1 => Ok(transfers.remove(0)),
            _ => Err(LedgerError::Corrupt { what: "answer" }),
        }
    }

    /// Applies one transfer as part of an enclosing request (inside [`Transaction::idempotent`], whose record
    /// already makes the whole request happen once): no request record and no savepoint of its own. A single
    /// transfer runs every check before its first write, so a refusal changes nothing here either; its id must
    /// be one the enclosing request derives, so that a replay of that request never reaches it.
    fn create_transfer_within(&mut self, transfer: NewTransfer) -> Result<Transfer, LedgerError> {
        rules::create_transfer(self, &transfer)
    }

    /// Applies a linked chain, all or none ([`Request::CreateTransfers`]).
    fn create_linked_transfers(
        &mut self,
        request_id: RequestId,
        chain: Vec<NewTransfer>,
    ) -> Result<Vec<Transfer>, LedgerError> {
        match self.apply(request_id, &Request::CreateTransfers(chain))? {
            Answer::Transfers(transfers) => Ok(transfers),
            _ => Err(LedgerError::Corrupt { what: "answer" }),
        }
    }

    /// Expires the pending transfers due at `now` ([`Request::ExpirePending`]); returns their ids.
    fn expire_pending(
        &mut self,
        request_id: RequestId,
        now: Timestamp,
    ) -> Result<Vec<TransferId>, LedgerError> {
        match self.apply(request_id, &Request::ExpirePending { now })? {
            Answer::Expired(ids) => Ok(ids),
            _ => Err(LedgerError::Corrupt { what: "answer" }),
        }
    }
}

/// The idempotency protocol shared by ledger and domain requests.
fn once<Tx: Transaction, E: From<LedgerError>>(
    tx: &mut Tx,
    request_id: RequestId,
    hash: RequestHash,
    work: impl FnOnce(&mut Tx) -> Result<Vec<u8>, E>,
) -> Result<Recorded<Vec<u8>>, E> {
    if let Some(replayed) = replayed(tx, request_id, &hash)? {
        return Ok(replayed);
    }
    tx.scope(|tx| {
        let answer = work(tx)?;
        tx.insert_request(
            request_id,
            &StoredRequest {
                hash,
                answer: answer.clone(),
            },
        )?;
        Ok(Recorded::Applied(answer))
    })
}

/// The first answer to `request_id` if it was applied before; a conflict if it was applied for another request.
fn replayed<Tx: Transaction>(
    tx: &mut Tx,
    request_id: RequestId,
    hash: &RequestHash,
) -> Result<Option<Recorded<Vec<u8>>>, LedgerError> {
    match tx.load_request(request_id)? {
        None => Ok(None),
        Some(stored) if stored.hash == *hash => Ok(Some(Recorded::Replayed(stored.answer))),
        Some(_) => Err(LedgerError::IdempotencyConflict {
            request: request_id,
        }),
    }
}
