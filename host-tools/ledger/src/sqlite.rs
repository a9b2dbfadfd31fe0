//! The SQLite store: WAL, `synchronous=FULL` by default, 16 KiB pages, `STRICT` tables, migrations from an
//! empty file under `PRAGMA user_version`, cached prepared statements.
//!
//! Integers wider than SQLite's signed 64 bits (ids, amounts, balances, timestamps) are fixed-width big-endian
//! `BLOB`s, which SQLite compares bytewise, so their order is the numeric order.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::config::DbConfig;
use rusqlite::types::{FromSql, FromSqlResult, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::error::{LedgerError, StorageError};
use crate::model::{
    Account, AccountFlags, AccountId, Currency, PendingState, RequestId, Timestamp, Transfer,
    TransferId, TransferKind,
};
use crate::read_ahead::{self, ReadAhead};
use crate::store::{Inserted, LedgerTables, Record, Store, StoredRequest, Transaction};

/// The accounts' columns in the order [`account_row`] reads them (a macro, so that the statements using them
/// are literals: prepared-statement lookups then cost no formatting).
macro_rules! account_columns {
    () => {
        "id, currency, code, flags, user_data, debits_pending, debits_posted, credits_pending, \
         credits_posted, timestamp"
    };
}
/// The transfers' columns in the order [`transfer_row`] reads them.
macro_rules! transfer_columns {
    () => {
        "id, debit_account_id, credit_account_id, amount, currency, code, user_data, kind, \
         expires_at, pending_id, timestamp, state"
    };
}

/// The schema, one migration per version: migration `i` takes `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE accounts (
    id              BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    currency        INTEGER NOT NULL CHECK (currency BETWEEN 0 AND 65535),
    code            INTEGER NOT NULL CHECK (code BETWEEN 0 AND 65535),
    flags           INTEGER NOT NULL CHECK (flags BETWEEN 0 AND 3),
    user_data       BLOB    NOT NULL CHECK (length(user_data) = 32),
    debits_pending  BLOB    NOT NULL CHECK (length(debits_pending) = 16),
    debits_posted   BLOB    NOT NULL CHECK (length(debits_posted) = 16),
    credits_pending BLOB    NOT NULL CHECK (length(credits_pending) = 16),
    credits_posted  BLOB    NOT NULL CHECK (length(credits_posted) = 16),
    timestamp       BLOB    NOT NULL UNIQUE CHECK (length(timestamp) = 8)
) STRICT, WITHOUT ROWID;

-- kind: 0 single, 1 pending, 2 post pending, 3 void pending.
-- state (pending transfers only): 0 pending, 1 posted, 2 voided, 3 expired.
CREATE TABLE transfers (
    id                BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    debit_account_id  BLOB    NOT NULL REFERENCES accounts (id),
    credit_account_id BLOB    NOT NULL REFERENCES accounts (id),
    amount            BLOB    NOT NULL CHECK (length(amount) = 16),
    currency          INTEGER NOT NULL CHECK (currency BETWEEN 0 AND 65535),
    code              INTEGER NOT NULL CHECK (code BETWEEN 0 AND 65535),
    user_data         BLOB    NOT NULL CHECK (length(user_data) = 32),
    kind              INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 3),
    expires_at        BLOB    CHECK ((kind = 1) = (expires_at IS NOT NULL)),
    pending_id        BLOB    REFERENCES transfers (id) CHECK ((kind IN (2, 3)) = (pending_id IS NOT NULL)),
    state             INTEGER CHECK ((kind = 1) = (state IS NOT NULL) AND state BETWEEN 0 AND 3),
    timestamp         BLOB    NOT NULL UNIQUE CHECK (length(timestamp) = 8)
) STRICT, WITHOUT ROWID;
CREATE INDEX transfers_pending_due ON transfers (expires_at, id) WHERE state = 0;

-- Idempotency: a request id, the SHA-256 of the request, the answer given.
CREATE TABLE requests (
    id     BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    hash   BLOB NOT NULL CHECK (length(hash) = 32),
    answer BLOB NOT NULL
) STRICT, WITHOUT ROWID;

-- The domain crates' keyed records (customers, contracts, spent tokens), in the ledger's transactions.
CREATE TABLE records (
    tbl   TEXT NOT NULL,
    key   BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (tbl, key)
) STRICT, WITHOUT ROWID;
",
    r"
-- Version 2: transfers lose their UNIQUE timestamp index, a B-tree write per transfer that only answered
-- max(timestamp); the latest timestamp assigned is kept in ledger_clock instead, written once per commit.
-- Timestamps stay unique by construction (assigned increasing under the write lock; check_invariants checks).
CREATE TABLE ledger_clock (
    id             INTEGER NOT NULL PRIMARY KEY CHECK (id = 0),
    last_timestamp BLOB    NOT NULL CHECK (length(last_timestamp) = 8)
) STRICT;
INSERT INTO ledger_clock (id, last_timestamp)
SELECT 0, max(coalesce((SELECT max(timestamp) FROM accounts), zeroblob(8)),
              coalesce((SELECT max(timestamp) FROM transfers), zeroblob(8)));
CREATE TABLE transfers_v2 (
    id                BLOB    NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    debit_account_id  BLOB    NOT NULL REFERENCES accounts (id),
    credit_account_id BLOB    NOT NULL REFERENCES accounts (id),
    amount            BLOB    NOT NULL CHECK (length(amount) = 16),
    currency          INTEGER NOT NULL CHECK (currency BETWEEN 0 AND 65535),
    code              INTEGER NOT NULL CHECK (code BETWEEN 0 AND 65535),
    user_data         BLOB    NOT NULL CHECK (length(user_data) = 32),
    kind              INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 3),
    expires_at        BLOB    CHECK ((kind = 1) = (expires_at IS NOT NULL)),
    pending_id        BLOB    REFERENCES transfers (id) CHECK ((kind IN (2, 3)) = (pending_id IS NOT NULL)),
    state             INTEGER CHECK ((kind = 1) = (state IS NOT NULL) AND state BETWEEN 0 AND 3),
    timestamp         BLOB    NOT NULL CHECK (length(timestamp) = 8)
) STRICT, WITHOUT ROWID;
INSERT INTO transfers_v2 SELECT * FROM transfers ORDER BY id;
DROP TABLE transfers;
ALTER TABLE transfers_v2 RENAME TO transfers;
CREATE INDEX transfers_pending_due ON transfers (expires_at, id) WHERE state = 0;
",
];

/// The schema version this program writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// When a commit counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: the commit survives a power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: survives a crash of the process, not of the machine (WAL mode).
    Normal,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// Where the ledger's timestamps come from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock, in nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock the caller sets, for deterministic tests.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<std::sync::atomic::AtomicU64>);

impl ManualClock {
    pub fn new(now: Timestamp) -> Self {
        Self(Arc::new(now.into()))
    }

    pub fn set(&self, now: Timestamp) {
        self.0.store(now, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A ledger database in one SQLite file (or in memory).
#[derive(Debug)]
pub struct SqliteStore {
    connection: Connection,
    clock: Arc<dyn Clock>,
    /// The latest timestamp assigned; the next is later even if the clock goes back.
    last_timestamp: Timestamp,
    /// Started by the first pause of a long import ([`Store::let_others_write`]).
    checkpointer: Option<Checkpointer>,
    sync: SyncState,
}

/// What the disk holds of the commits: [`Store::unsynced_transaction`] turns `synchronous` down before it begins
/// (SQLite refuses to change it inside a transaction), and the next transaction or [`Store::sync`] turns it back
/// up.
#[derive(Debug)]
struct SyncState {
    durability: Durability,
    /// The connection runs `synchronous=NORMAL` for an unsynced commit, though `durability` is `Full`.
    relaxed: bool,
    /// A commit since the last flush of the WAL is not on disk yet.
    unsynced: bool,
}

impl SyncState {
    /// Back to the durability the store was opened with, before a transaction begins.
    fn restore(&mut self, connection: &Connection) -> Result<(), LedgerError> {
        if self.relaxed {
            connection.pragma_update(None, "synchronous", self.durability.pragma())?;
            self.relaxed = false;
        }
        Ok(())
    }

    /// Commits without a flush until restored, if the store flushes at all.
    fn relax(&mut self, connection: &Connection) -> Result<(), LedgerError> {
        if self.durability == Durability::Full && !self.relaxed {
            connection.pragma_update(None, "synchronous", Durability::Normal.pragma())?;
            self.relaxed = true;
        }
        Ok(())
    }
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`, with durable commits.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        Self::open_with(path, Durability::Full)
    }

    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, LedgerError> {
        Self::set_up(Connection::open(path)?, durability)
    }

    /// A database that lives as long as the store: for tests.
    pub fn open_in_memory() -> Result<Self, LedgerError> {
        Self::set_up(Connection::open_in_memory()?, Durability::Full)
    }

    /// Takes timestamps from `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn set_up(mut connection: Connection, durability: Durability) -> Result<Self, LedgerError> {
        // Wait up to 5 s for the write lock, trying every millisecond (SQLite's own handler tries every 100 ms
        // after the first second, and would miss the moment a long import leaves between its commits).
        connection.busy_handler(Some(|attempt: i32| {
            let waited = BUSY_POLL.saturating_mul(u32::try_from(attempt).unwrap_or(u32::MAX));
            if waited >= BUSY_WAIT {
                return false;
            }
            std::thread::sleep(BUSY_POLL);
            true
        }))?;
        // 16 KiB pages for a new database (an existing one keeps its own): B-trees a level shallower and a
        // quarter of the page splits and WAL frames of 4 KiB pages, for rows of 100-200 bytes (settle 10 %
        // faster at 1,000,000 users).
        connection.pragma_update(None, "page_size", 16_384)?;
        // An in-memory database answers "memory": it has no WAL and needs none.
        let _mode: String =
            connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        connection.pragma_update(None, "synchronous", durability.pragma())?;
        // The schema names the transfers' accounts as foreign keys, but SQLite does not check them: the rules
        // load both accounts before every transfer (and `check_invariants` finds any transfer without them),
        // while SQLite's checks would seek both again at every insert (7 % of a settlement).
        connection.pragma_update(None, "foreign_keys", "OFF")?;
        // Savepoints copy each page they change into a statement journal; SQLite spills it to a temporary file
        // past 64 KiB (a write system call per page). In memory, a batch's savepoints cost a memcpy instead.
        connection.pragma_update(None, "temp_store", "MEMORY")?;
        // Checkpoint every 256 MiB of WAL rather than every 4 MiB: a page that a hot B-tree edge rewrites in
        // many group commits is copied into the database once per checkpoint, not once per few batches (a
        // settlement's chunks of 10,000 deductions each rewrite thousands of pages: 32 MiB checkpointed every
        // chunk or two).
        let page_size: i64 = connection.pragma_query_value(None, "page_size", |row| row.get(0))?;
        connection.pragma_update(
            None,
            "wal_autocheckpoint",
            WAL_CHECKPOINT_BYTES / page_size.max(512),
        )?;
        // The bundled SQLite is built with STAT4, under which a range over a bound parameter (the prefix scans)
        // marks its statement for re-preparation at every bind: a full parse per scan. This ledger never runs
        // ANALYZE, so the plans are the same anyway; the stability guarantee keeps them prepared.
        connection.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        // 64 MiB of page cache (SQLite's default is 2 MiB): batch runs (settlement, reconciliation, statements)
        // keep the B-trees' upper levels and their working set in memory instead of reading pages back.
        connection.pragma_update(None, "cache_size", -65_536)?;
        connection.set_prepared_statement_cache_capacity(64);
        migrate(&mut connection)?;
        let last_timestamp = latest_timestamp(&connection)?;
        Ok(Self {
            connection,
            clock: Arc::new(SystemClock),
            last_timestamp,
            checkpointer: None,
            sync: SyncState {
                durability,
                relaxed: false,
                unsynced: false,
            },
        })
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32, LedgerError> {
        Ok(self
            .connection
            .pragma_query_value(None, "user_version", |row| row.get(0))?)
    }
}

/// The latest timestamp the database assigned (0 when empty).
fn latest_timestamp(connection: &Connection) -> Result<Timestamp, LedgerError> {
    let latest: Option<Fixed<8>> = connection
        .prepare_cached("SELECT last_timestamp FROM ledger_clock WHERE id = 0")?
        .query_row([], |row| row.get(0))
        .optional()?;
    latest.map_or(Ok(0), u64_of)
}

/// Keeps `timestamp` as the latest assigned, in the transaction at hand.
fn store_latest_timestamp(
    connection: &Connection,
    timestamp: Timestamp,
) -> Result<(), LedgerError> {
    connection
        .prepare_cached("INSERT OR REPLACE INTO ledger_clock (id, last_timestamp) VALUES (0, ?1)")?
        .execute([timestamp.to_be_bytes()])?;
    Ok(())
}

fn migrate(connection: &mut Connection) -> Result<(), LedgerError> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let found: u32 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StorageError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        }
        .into());
    }
    for (version, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

/// The WAL's size at which a commit copies it into the database (in pages of the database's size).
const WAL_CHECKPOINT_BYTES: i64 = 1 << 30;

/// How long a connection waits for another's write lock, and how often it tries to take it meanwhile.
const BUSY_WAIT: Duration = Duration::from_secs(5);
const BUSY_POLL: Duration = Duration::from_millis(1);
/// How long a long import leaves the write lock free between two commits: a few of the waiters' tries.
const OTHERS_TURN: Duration = Duration::from_millis(3);

impl Store for SqliteStore {
    type Tx<'a> = SqliteTransaction<'a>;

    /// Also has the WAL copied into the database on another thread ([`Checkpointer`]).
    fn let_others_write(&mut self) {
        if self.checkpointer.is_none() {
            self.checkpointer = Checkpointer::start(&self.connection);
        }
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.nudge();
        }
        std::thread::sleep(OTHERS_TURN);
    }

    fn transaction(&mut self) -> Result<SqliteTransaction<'_>, LedgerError> {
        self.sync.restore(&self.connection)?;
        self.begin_write()
    }

    fn unsynced_transaction(&mut self) -> Result<SqliteTransaction<'_>, LedgerError> {
        self.sync.relax(&self.connection)?;
        self.begin_write()
    }

    fn read_transaction(&mut self) -> Result<SqliteTransaction<'_>, LedgerError> {
        let Self {
            connection,
            clock,
            last_timestamp,
            sync,
            ..
        } = self;
        // Deferred: in WAL mode its reads see one snapshot and take no lock a writer waits for.
        let tx = connection.transaction_with_behavior(TransactionBehavior::Deferred)?;
        Ok(SqliteTransaction::new(tx, clock, last_timestamp, sync))
    }

    /// Flushes the WAL file, which holds every commit not yet checkpointed (a checkpoint flushes what it copies
    /// first): what a synced commit's flush does, without a commit.
    fn sync(&mut self) -> Result<(), LedgerError> {
        self.sync.restore(&self.connection)?;
        if !self.sync.unsynced {
            return Ok(());
        }
        if let Some(path) = self.connection.path().filter(|path| !path.is_empty()) {
            let wal = std::path::PathBuf::from(format!("{path}-wal"));
            let flushed = match std::fs::File::open(&wal) {
                Ok(file) => file.sync_data(),
                // No WAL: the last connection's checkpoint copied (and flushed) everything, then removed it.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(error) => Err(error),
            };
            flushed.map_err(|source| StorageError::Sync { path: wal, source })?;
        }
        self.sync.unsynced = false;
        Ok(())
    }
}

impl SqliteStore {
    /// A write transaction at whatever durability the connection is set to.
    fn begin_write(&mut self) -> Result<SqliteTransaction<'_>, LedgerError> {
        let Self {
            connection,
            clock,
            last_timestamp,
            sync,
            ..
        } = self;
        // Immediate: take the write lock now rather than fail to upgrade a read lock halfway.
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have written since: with the write lock held, start after its timestamps too.
        *last_timestamp = (*last_timestamp).max(latest_timestamp(&tx)?);
        Ok(SqliteTransaction::new(tx, clock, last_timestamp, sync))
    }
}

impl Drop for SqliteStore {
    /// Waits for the background checkpoint first: the connection's own checkpoint as it closes then copies
    /// what is left instead of finding the checkpoint lock taken and leaving the WAL behind.
    fn drop(&mut self) {
        self.checkpointer.take();
    }
}

/// Copies the WAL into the database (a passive checkpoint, which never blocks the writer) on a connection and
/// a thread of its own, each time a long import pauses between two commits. The copy then overlaps the import,
/// on the core the import leaves idle, rather than following it as the checkpoint the last connection runs as it
/// closes (seconds for a settlement of a million users). Nothing depends on it: a failed or skipped checkpoint
/// leaves the pages in the WAL, where every reader finds them and the next checkpoint copies them.
#[derive(Debug)]
struct Checkpointer {
    nudges: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// `None` for a database without a file (in memory) or if the thread cannot start.
    fn start(connection: &Connection) -> Option<Self> {
        let path = connection
            .path()
            .filter(|path| !path.is_empty())?
            .to_owned();
        // One nudge waiting is enough: a checkpoint copies everything committed before it starts.
        let (nudges, pending) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("wal-checkpoint".to_owned())
            .spawn(move || {
                let Ok(connection) = Connection::open(&path) else {
                    return;
                };
                while pending.recv().is_ok() {
                    // Busy or failed: the next nudge, or the close, tries again.
                    let _ = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .ok()?;
        Some(Self {
            nudges: Some(nudges),
            thread: Some(thread),
        })
    }

    fn nudge(&self) {
        if let Some(nudges) = &self.nudges {
            // Full: a checkpoint is already due, which will copy this commit too.
            let _ = nudges.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.nudges.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accounts a transaction keeps in memory at most (about 4 MiB): more than a batch reads ahead.
const ACCOUNT_CACHE_ENTRIES: usize = 32_768;

/// A write transaction on a [`SqliteStore`]. Dropping it rolls back.
#[derive(Debug)]
pub struct SqliteTransaction<'a> {
    tx: rusqlite::Transaction<'a>,
    clock: Arc<dyn Clock>,
    last_timestamp: &'a mut Timestamp,
    savepoints: usize,
    /// Accounts as this transaction last read or wrote them (it holds the write lock, so no one else changes
    /// them), and whether their balances wait to be written: hot accounts (a merchant, a bank's receivable, a
    /// settlement account) are read once per group commit and written once, not per transfer.
    accounts: HashMap<AccountId, (Account, Dirty)>,
    /// Balance updates kept in `accounts` so far: writes as much as the rows changed.
    deferred_writes: u64,
    /// Records read ahead for the batch at hand.
    read_ahead: ReadAhead,
    /// A range of transfer ids found empty, and the transfers this transaction created in it since.
    new_transfers: Option<NewTransfers>,
    sync: &'a mut SyncState,
    /// Opened by [`Store::unsynced_transaction`] on a store that syncs otherwise.
    unsynced_commit: bool,
    /// Whether `last_timestamp` moved, to be kept in `ledger_clock` at commit.
    assigned_timestamps: bool,
    /// The connection's count of changed rows when this transaction began: a commit that changed none writes
    /// nothing to the WAL, and so flushes nothing.
    changes_at_begin: u64,
}

/// Transfer ids known to be new: none was in `first..=last` when the range was announced, and only `created`
/// were added since (by this transaction, which holds the write lock).
#[derive(Debug)]
struct NewTransfers {
    first: TransferId,
    last: TransferId,
    created: HashSet<TransferId>,
}

impl NewTransfers {
    fn surely_absent(&self, id: TransferId) -> bool {
        (self.first..=self.last).contains(&id) && !self.created.contains(&id)
    }
}

/// Whether a cached account's balances are newer than its row.
type Dirty = bool;

impl Transaction for SqliteTransaction<'_> {
    fn writes(&self) -> u64 {
        self.tx.total_changes() + self.deferred_writes
    }

    fn commit(mut self) -> Result<(), LedgerError> {
        self.write_balances()?;
        if self.assigned_timestamps {
            store_latest_timestamp(&self.tx, *self.last_timestamp)?;
        }
        let wrote = self.tx.total_changes() > self.changes_at_begin;
        self.tx.commit()?;
        if self.unsynced_commit {
            self.sync.unsynced = true;
        } else if wrote {
            // A synced commit that wrote flushes the whole WAL, earlier unsynced commits with it; a read-only
            // or empty one flushes nothing.
            self.sync.unsynced = false;
        }
        Ok(())
    }

    fn savepoint(&mut self) -> Result<(), LedgerError> {
        // What the scope changes in memory is dropped with it on a rollback; what came before must stay.
        self.write_balances()?;
        let depth = self.savepoints + 1;
        self.run(&format!("SAVEPOINT s{depth}"))?;
        self.savepoints = depth;
        Ok(())
    }

    fn release_savepoint(&mut self) -> Result<(), LedgerError> {
        let depth = self.innermost_savepoint()?;
        self.run(&format!("RELEASE s{depth}"))?;
        self.savepoints = depth - 1;
        Ok(())
    }

    fn rollback_to_savepoint(&mut self) -> Result<(), LedgerError> {
        let depth = self.innermost_savepoint()?;
        // ROLLBACK TO keeps the savepoint open: release it too, so scopes nest like calls.
        self.run(&format!("ROLLBACK TO s{depth}"))?;
        self.run(&format!("RELEASE s{depth}"))?;
        // The rollback undid balances the cache may hold, and the scope's unwritten ones go with them; what was
        // read ahead inside the scope may have been undone too. (Transfers it created stay in `created`: those
        // ids are merely looked up again.)
        self.accounts.clear();
        self.read_ahead.clear();
        self.savepoints = depth - 1;
        Ok(())
    }

    fn insert_unique(
        &mut self,
        table: &str,
        key: &[u8],
        value: &[u8],
    ) -> Result<Inserted, LedgerError> {
        self.read_ahead.forget(table, key);
        let changed = self
            .tx
            .prepare_cached(
                "INSERT INTO records (tbl, key, value) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?
            .execute(params![table, key, value])?;
        Ok(if changed == 1 {
            Inserted::Inserted
        } else {
            Inserted::AlreadyExists
        })
    }

    fn get(&mut self, table: &str, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        if let Some(value) = self.read_ahead.record(table, key) {
            return Ok(value);
        }
        Ok(self
            .tx
            .prepare_cached("SELECT value FROM records WHERE tbl = ?1 AND key = ?2")?
            .query_row(params![table, key], |row| row.get(0))
            .optional()?)
    }

    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<(), LedgerError> {
        self.read_ahead.forget(table, key);
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO records (tbl, key, value) VALUES (?1, ?2, ?3)")?
            .execute(params![table, key, value])?;
        Ok(())
    }

    fn delete(&mut self, table: &str, key: &[u8]) -> Result<bool, LedgerError> {
        self.read_ahead.forget(table, key);
        let changed = self
            .tx
            .prepare_cached("DELETE FROM records WHERE tbl = ?1 AND key = ?2")?
            .execute(params![table, key])?;
        Ok(changed == 1)
    }

    fn scan_prefix_page(
        &mut self,
        table: &str,
        prefix: &[u8],
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<Record>, LedgerError> {
        if !after.is_empty() && !after.starts_with(prefix) {
            return Err(LedgerError::Corrupt {
                what: "page start outside its prefix",
            });
        }
        self.page(table, prefix, after, limit)
    }

    fn first_key_from(&mut self, table: &str, from: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT key FROM records WHERE tbl = ?1 AND key >= ?2 ORDER BY key LIMIT 1",
            )?
            .query_row(params![table, from], |row| row.get(0))
            .optional()?)
    }

    fn scan_prefix(&mut self, table: &str, prefix: &[u8]) -> Result<Vec<Record>, LedgerError> {
        if let Some(records) = self.read_ahead.scan(table, prefix) {
            return Ok(records);
        }
        let pair = |row: &Row<'_>| Ok((row.get(0)?, row.get(1)?));
        let records = match prefix_successor(prefix) {
            Some(end) => self
                .tx
                .prepare_cached("SELECT key, value FROM records WHERE tbl = ?1 AND key >= ?2 AND key < ?3 ORDER BY key")?
                .query_map(params![table, prefix, end], pair)?
                .collect::<Result<_, _>>()?,
            None => self
                .tx
                .prepare_cached("SELECT key, value FROM records WHERE tbl = ?1 AND key >= ?2 ORDER BY key")?
                .query_map(params![table, prefix], pair)?
                .collect::<Result<_, _>>()?,
        };
        Ok(records)
    }

    fn read_ahead(&mut self, table: &str, keys: &[Vec<u8>]) -> Result<(), LedgerError> {
        let mut wanted: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let (Some(first), Some(last)) = (wanted.first(), wanted.last()) else {
            return Ok(());
        };
        let limit = read_ahead::scan_limit(wanted.len());
        // The least key after `last` is `last` ‖ 0: up to it, excluded, is up to `last`, included.
        let end = [*last, &[0]].concat();
        let rows = self.range(table, first, Some(&end), limit)?;
        let complete = rows.len() < limit;
        let found = read_ahead::join_records(&wanted, rows, complete);
        self.read_ahead.set_records(table, found);
        Ok(())
    }

    fn read_ahead_prefixes(
        &mut self,
        table: &str,
        prefixes: &[Vec<u8>],
    ) -> Result<(), LedgerError> {
        let Some(wanted) = read_ahead::sorted_prefixes(prefixes) else {
            return Ok(());
        };
        let (Some(first), Some(last)) = (wanted.first(), wanted.last()) else {
            return Ok(());
        };
        let limit = read_ahead::scan_limit(wanted.len());
        let end = prefix_successor(last);
        let rows = self.range(table, first, end.as_deref(), limit)?;
        let complete = rows.len() < limit;
        let found = read_ahead::join_prefixes(&wanted, rows, complete);
        self.read_ahead.set_scans(table, found);
        Ok(())
    }

    fn read_ahead_accounts(&mut self, ids: &[AccountId]) -> Result<(), LedgerError> {
        let mut wanted: Vec<AccountId> = ids
            .iter()
            .copied()
            .filter(|id| !self.accounts.contains_key(id))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let (Some(first), Some(last)) = (wanted.first(), wanted.last()) else {
            return Ok(());
        };
        let limit = read_ahead::scan_limit(wanted.len());
        let sql = concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE id >= ?1 AND id <= ?2 ORDER BY id LIMIT ?3"
        );
        let rows: Vec<Account> = self
            .tx
            .prepare_cached(sql)?
            .query_map(
                params![first.to_be_bytes(), last.to_be_bytes(), sql_limit(limit)],
                account_row,
            )?
            .map(|row| row?)
            .collect::<Result<_, _>>()?;
        let wanted: HashSet<AccountId> = wanted.into_iter().collect();
        for account in rows {
            // An account cached meanwhile (the cache emptied to make room) may hold unwritten balances.
            if wanted.contains(&account.id) && !self.accounts.contains_key(&account.id) {
                self.remember(account)?;
            }
        }
        Ok(())
    }

    fn expect_new_transfers(
        &mut self,
        first: TransferId,
        last: TransferId,
    ) -> Result<bool, LedgerError> {
        let any: Option<i64> = self
            .tx
            .prepare_cached("SELECT 1 FROM transfers WHERE id >= ?1 AND id <= ?2 LIMIT 1")?
            .query_row([first.to_be_bytes(), last.to_be_bytes()], |row| row.get(0))
            .optional()?;
        let empty = any.is_none() && first <= last;
        self.new_transfers = empty.then(|| NewTransfers {
            first,
            last,
            created: HashSet::new(),
        });
        Ok(empty)
    }
}

/// A row limit as SQLite takes it.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl SqliteTransaction<'_> {
    /// Up to `limit` records of `table` with keys from `first` up to `end` (excluded; no end when `None`), by key.
    fn range(
        &mut self,
        table: &str,
        first: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Record>, LedgerError> {
        let pair = |row: &Row<'_>| Ok((row.get(0)?, row.get(1)?));
        // Two statements: an `OR` on the bound would keep SQLite from ending the index range there.
        let records = match end {
            Some(end) => self
                .tx
                .prepare_cached("SELECT key, value FROM records WHERE tbl = ?1 AND key >= ?2 AND key < ?3 ORDER BY key LIMIT ?4")?
                .query_map(params![table, first, end, sql_limit(limit)], pair)?
                .collect::<Result<_, _>>()?,
            None => self
                .tx
                .prepare_cached("SELECT key, value FROM records WHERE tbl = ?1 AND key >= ?2 ORDER BY key LIMIT ?3")?
                .query_map(params![table, first, sql_limit(limit)], pair)?
                .collect::<Result<_, _>>()?,
        };
        Ok(records)
    }

    /// Up to `limit` records of `table` whose key starts with `prefix` and sorts after `after`, by key.
    fn page(
        &mut self,
        table: &str,
        prefix: &[u8],
        after: &[u8],
        limit: usize,
    ) -> Result<Vec<Record>, LedgerError> {
        let pair = |row: &Row<'_>| Ok((row.get(0)?, row.get(1)?));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // An empty `after` starts at the prefix itself (`key >= prefix`), any other after it.
        let (start, strict) = if after.is_empty() {
            (prefix, false)
        } else {
            (after, true)
        };
        let end = prefix_successor(prefix);
        let sql = match (strict, end.is_some()) {
            (false, true) => {
                "SELECT key, value FROM records WHERE tbl = ?1 AND key >= ?2 AND key < ?3 ORDER BY key LIMIT ?4"
            }
            (true, true) => {
                "SELECT key, value FROM records WHERE tbl = ?1 AND key > ?2 AND key < ?3 ORDER BY key LIMIT ?4"
            }
            (false, false) => {
                "SELECT key, value FROM records WHERE tbl = ?1 AND key >= ?2 AND ?3 IS NULL ORDER BY key LIMIT ?4"
            }
            (true, false) => {
                "SELECT key, value FROM records WHERE tbl = ?1 AND key > ?2 AND ?3 IS NULL ORDER BY key LIMIT ?4"
            }
        };
        let records = self
            .tx
            .prepare_cached(sql)?
            .query_map(params![table, start, end, limit], pair)?
            .collect::<Result<_, _>>()?;
        Ok(records)
    }
}

/// The least key greater than every key starting with `prefix`; `None` when there is none (all bytes 0xFF).
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&byte| byte != 0xFF)?;
    let mut end = prefix[..=last].to_vec();
    end[last] += 1;
    Some(end)
}

fn corrupt(what: &'static str) -> impl Fn(Vec<u8>) -> LedgerError {
    move |_| LedgerError::Corrupt { what }
}

/// A fixed-width BLOB column read in place, without a `Vec` per column; `None` if its length is not `N`.
struct Fixed<const N: usize>(Option<[u8; N]>);

impl<const N: usize> FromSql for Fixed<N> {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Ok(Self(value.as_blob()?.try_into().ok()))
    }
}

impl<const N: usize> Fixed<N> {
    fn bytes(self, what: &'static str) -> Result<[u8; N], LedgerError> {
        self.0.ok_or(LedgerError::Corrupt { what })
    }
}

fn u128_of(column: Fixed<16>) -> Result<u128, LedgerError> {
    Ok(u128::from_be_bytes(column.bytes("amount or id")?))
}

fn u64_of(column: Fixed<8>) -> Result<u64, LedgerError> {
    Ok(u64::from_be_bytes(column.bytes("timestamp")?))
}

impl<'a> SqliteTransaction<'a> {
    fn new(
        tx: rusqlite::Transaction<'a>,
        clock: &Arc<dyn Clock>,
        last_timestamp: &'a mut Timestamp,
        sync: &'a mut SyncState,
    ) -> Self {
        let changes_at_begin = tx.total_changes();
        Self {
            tx,
            clock: Arc::clone(clock),
            last_timestamp,
            savepoints: 0,
            accounts: HashMap::new(),
            deferred_writes: 0,
            read_ahead: ReadAhead::default(),
            unsynced_commit: sync.relaxed,
            assigned_timestamps: false,
            changes_at_begin,
            new_transfers: None,
            sync,
        }
    }

    /// Runs a statement without parameters, prepared once (savepoint names repeat by depth).
    fn run(&self, sql: &str) -> Result<(), LedgerError> {
        self.tx.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    /// Keeps an account as last read. When the cache is full its balances are written and it is emptied, which
    /// keeps a transaction of a million transfers small while its hot accounts are read back once per few
    /// thousand.
    fn remember(&mut self, account: Account) -> Result<(), LedgerError> {
        if self.accounts.len() >= ACCOUNT_CACHE_ENTRIES && !self.accounts.contains_key(&account.id)
        {
            self.write_balances()?;
            self.accounts.clear();
        }
        self.accounts.insert(account.id, (account, false));
        Ok(())
    }

    /// Writes the balances updated in memory, in the order of the accounts' ids.
    fn write_balances(&mut self) -> Result<(), LedgerError> {
        let mut dirty: Vec<Account> = self
            .accounts
            .values_mut()
            .filter(|(_, dirty)| *dirty)
            .map(|(account, dirty)| {
                *dirty = false;
                *account
            })
            .collect();
        dirty.sort_unstable_by_key(|account| account.id);
        for account in &dirty {
            self.write_row_balances(account)?;
        }
        Ok(())
    }

    fn write_row_balances(&mut self, a: &Account) -> Result<(), LedgerError> {
        let changed = self
            .tx
            .prepare_cached(
                "UPDATE accounts SET debits_pending = ?2, debits_posted = ?3, credits_pending = ?4, credits_posted = ?5
                 WHERE id = ?1",
            )?
            .execute(params![
                a.id.to_be_bytes(),
                a.debits_pending.to_be_bytes(),
                a.debits_posted.to_be_bytes(),
                a.credits_pending.to_be_bytes(),
                a.credits_posted.to_be_bytes(),
            ])?;
        if changed == 1 {
            Ok(())
        } else {
            Err(LedgerError::AccountNotFound { account: a.id })
        }
    }

    fn innermost_savepoint(&self) -> Result<usize, LedgerError> {
        match self.savepoints {
            0 => Err(StorageError::NoSavepoint.into()),
            depth => Ok(depth),
        }
    }
}

/// Reads an account row in [`account_columns`] order; decoding errors surface after the query.
fn account_row(row: &Row<'_>) -> rusqlite::Result<Result<Account, LedgerError>> {
    let wide = |i| row.get::<_, Fixed<16>>(i);
    let (id, dp, dpo, cp, cpo) = (wide(0)?, wide(5)?, wide(6)?, wide(7)?, wide(8)?);
    let (user_data, ts): (Fixed<32>, Fixed<8>) = (row.get(4)?, row.get(9)?);
    let (currency, code, flags): (u16, u16, u16) = (row.get(1)?, row.get(2)?, row.get(3)?);
    Ok((|| {
        Ok(Account {
            id: u128_of(id)?,
            currency: Currency(currency),
            code,
            flags: AccountFlags::from_bits(flags).ok_or(LedgerError::Corrupt {
                what: "account flags",
            })?,
            user_data: user_data.bytes("user data")?,
            debits_pending: u128_of(dp)?,
            debits_posted: u128_of(dpo)?,
            credits_pending: u128_of(cp)?,
            credits_posted: u128_of(cpo)?,
            timestamp: u64_of(ts)?,
        })
    })())
}

type TransferRow = Result<(Transfer, Option<PendingState>), LedgerError>;

/// Reads a transfer row in [`transfer_columns`] order, with its pending state.
fn transfer_row(row: &Row<'_>) -> rusqlite::Result<TransferRow> {
    let wide = |i| row.get::<_, Fixed<16>>(i);
    let (id, debit, credit, amount) = (wide(0)?, wide(1)?, wide(2)?, wide(3)?);
    let (user_data, ts): (Fixed<32>, Fixed<8>) = (row.get(6)?, row.get(10)?);
    let (currency, code, kind): (u16, u16, u8) = (row.get(4)?, row.get(5)?, row.get(7)?);
    let (expires_at, pending_id): (Option<Fixed<8>>, Option<Fixed<16>>) =
        (row.get(8)?, row.get(9)?);
    let state: Option<u8> = row.get(11)?;
    Ok((|| {
        let kind = match (kind, expires_at, pending_id) {
            (0, None, None) => TransferKind::Single,
            (1, Some(expires_at), None) => TransferKind::Pending {
                expires_at: u64_of(expires_at)?,
            },
            (2, None, Some(pending_id)) => TransferKind::PostPending {
                pending_id: u128_of(pending_id)?,
            },
            (3, None, Some(pending_id)) => TransferKind::VoidPending {
                pending_id: u128_of(pending_id)?,
            },
            _ => {
                return Err(LedgerError::Corrupt {
                    what: "transfer kind",
                });
            }
        };
        let state = state.map(state_of).transpose()?;
        let transfer = Transfer {
            id: u128_of(id)?,
            debit_account_id: u128_of(debit)?,
            credit_account_id: u128_of(credit)?,
            amount: u128_of(amount)?,
            currency: Currency(currency),
            code,
            user_data: user_data.bytes("user data")?,
            kind,
            timestamp: u64_of(ts)?,
        };
        Ok((transfer, state))
    })())
}

fn state_of(code: u8) -> Result<PendingState, LedgerError> {
    Ok(match code {
        0 => PendingState::Pending,
        1 => PendingState::Posted,
        2 => PendingState::Voided,
        3 => PendingState::Expired,
        _ => {
            return Err(LedgerError::Corrupt {
                what: "pending state",
            });
        }
    })
}

fn state_code(state: PendingState) -> u8 {
    match state {
        PendingState::Pending => 0,
        PendingState::Posted => 1,
        PendingState::Voided => 2,
        PendingState::Expired => 3,
    }
}

impl LedgerTables for SqliteTransaction<'_> {
    fn next_timestamp(&mut self) -> Result<Timestamp, LedgerError> {
        let next = self.clock.now().max(self.last_timestamp.saturating_add(1));
        *self.last_timestamp = next;
        self.assigned_timestamps = true;
        Ok(next)
    }

    fn load_account(&mut self, id: AccountId) -> Result<Option<Account>, LedgerError> {
        if let Some((account, _)) = self.accounts.get(&id) {
            return Ok(Some(*account));
        }
        let sql = concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE id = ?1"
        );
        let account = self
            .tx
            .prepare_cached(sql)?
            .query_row([id.to_be_bytes()], account_row)
            .optional()?
            .transpose()?;
        if let Some(account) = &account {
            self.remember(*account)?;
        }
        Ok(account)
    }

    fn insert_account(&mut self, a: &Account) -> Result<(), LedgerError> {
        let sql = concat!(
            "INSERT INTO accounts (",
            account_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        );
        self.tx.prepare_cached(sql)?.execute(params![
            a.id.to_be_bytes(),
            a.currency.0,
            a.code,
            a.flags.bits(),
            a.user_data,
            a.debits_pending.to_be_bytes(),
            a.debits_posted.to_be_bytes(),
            a.credits_pending.to_be_bytes(),
            a.credits_posted.to_be_bytes(),
            a.timestamp.to_be_bytes(),
        ])?;
        Ok(())
    }

    fn update_balances(&mut self, a: &Account) -> Result<(), LedgerError> {
        // A cached account's row exists in this transaction: its balances are written once, at the latest on
        // commit. Any other is written now.
        if let Some((cached, dirty)) = self.accounts.get_mut(&a.id) {
            *cached = *a;
            *dirty = true;
            self.deferred_writes += 1;
            return Ok(());
        }
        self.write_row_balances(a)?;
        self.remember(*a)
    }

    fn load_transfer(&mut self, id: TransferId) -> Result<Option<Transfer>, LedgerError> {
        if self
            .new_transfers
            .as_ref()
            .is_some_and(|new| new.surely_absent(id))
        {
            return Ok(None);
        }
        let sql = concat!(
            "SELECT ",
            transfer_columns!(),
            " FROM transfers WHERE id = ?1"
        );
        let row = self
            .tx
            .prepare_cached(sql)?
            .query_row([id.to_be_bytes()], transfer_row)
            .optional()?;
        Ok(row.transpose()?.map(|(transfer, _)| transfer))
    }

    fn insert_transfer(&mut self, t: &Transfer) -> Result<(), LedgerError> {
        if let Some(new) = &mut self.new_transfers {
            new.created.insert(t.id);
        }
        let (kind, expires_at, pending_id, state) = match t.kind {
            TransferKind::Single => (0u8, None, None, None),
            TransferKind::Pending { expires_at } => {
                (1, Some(expires_at.to_be_bytes()), None, Some(0u8))
            }
            TransferKind::PostPending { pending_id } => {
                (2, None, Some(pending_id.to_be_bytes()), None)
            }
            TransferKind::VoidPending { pending_id } => {
                (3, None, Some(pending_id.to_be_bytes()), None)
            }
        };
        let sql = concat!(
            "INSERT INTO transfers (",
            transfer_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        );
        self.tx.prepare_cached(sql)?.execute(params![
            t.id.to_be_bytes(),
            t.debit_account_id.to_be_bytes(),
            t.credit_account_id.to_be_bytes(),
            t.amount.to_be_bytes(),
            t.currency.0,
            t.code,
            t.user_data,
            kind,
            expires_at,
            pending_id,
            t.timestamp.to_be_bytes(),
            state,
        ])?;
        Ok(())
    }

    fn pending_state(&mut self, id: TransferId) -> Result<Option<PendingState>, LedgerError> {
        let state: Option<Option<u8>> = self
            .tx
            .prepare_cached("SELECT state FROM transfers WHERE id = ?1")?
            .query_row([id.to_be_bytes()], |row| row.get(0))
            .optional()?;
        state.flatten().map(state_of).transpose()
    }

    fn set_pending_state(
        &mut self,
        id: TransferId,
        state: PendingState,
    ) -> Result<(), LedgerError> {
        let changed = self
            .tx
            .prepare_cached("UPDATE transfers SET state = ?2 WHERE id = ?1 AND kind = 1")?
            .execute(params![id.to_be_bytes(), state_code(state)])?;
        if changed == 1 {
            Ok(())
        } else {
            Err(LedgerError::PendingNotFound { pending: id })
        }
    }

    fn pending_due(&mut self, now: Timestamp) -> Result<Vec<Transfer>, LedgerError> {
        let sql = concat!(
            "SELECT ",
            transfer_columns!(),
            " FROM transfers WHERE state = 0 AND expires_at <= ?1 ORDER BY expires_at, id"
        );
        let mut statement = self.tx.prepare_cached(sql)?;
        let rows = statement.query_map([now.to_be_bytes()], transfer_row)?;
        rows.map(|row| Ok(row??.0)).collect()
    }

    fn all_accounts(&mut self) -> Result<Vec<Account>, LedgerError> {
        self.write_balances()?;
        let sql = concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts ORDER BY timestamp"
        );
        let mut statement = self.tx.prepare_cached(sql)?;
        let rows = statement.query_map([], account_row)?;
        rows.map(|row| row?).collect()
    }

    fn all_transfers(&mut self) -> Result<Vec<(Transfer, Option<PendingState>)>, LedgerError> {
        let sql = concat!(
            "SELECT ",
            transfer_columns!(),
            " FROM transfers ORDER BY timestamp"
        );
        let mut statement = self.tx.prepare_cached(sql)?;
        let rows = statement.query_map([], transfer_row)?;
        rows.map(|row| row?).collect()
    }

    fn load_request(&mut self, id: RequestId) -> Result<Option<StoredRequest>, LedgerError> {
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .tx
            .prepare_cached("SELECT hash, answer FROM requests WHERE id = ?1")?
            .query_row([id.0.to_be_bytes()], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        row.map(|(hash, answer)| {
            Ok(StoredRequest {
                hash: hash.try_into().map_err(corrupt("request hash"))?,
                answer,
            })
        })
        .transpose()
    }

    fn insert_request(
        &mut self,
        id: RequestId,
        request: &StoredRequest,
    ) -> Result<(), LedgerError> {
        self.tx
            .prepare_cached("INSERT INTO requests (id, hash, answer) VALUES (?1, ?2, ?3)")?
            .execute(params![id.0.to_be_bytes(), request.hash, request.answer])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(store: &SqliteStore) -> i64 {
        store
            .connection
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap()
    }

    const NORMAL: i64 = 1;
    const FULL: i64 = 2;

    #[test]
    fn an_unsynced_transaction_relaxes_one_commit_and_the_next_sync_flushes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let mut store = SqliteStore::open(&path).unwrap();
        let mut tx = store.unsynced_transaction().unwrap();
        assert_eq!(synchronous_of(&tx), NORMAL);
        tx.put("t", b"unsynced", b"1").unwrap();
        tx.commit().unwrap();
        assert!(store.sync.unsynced);
        // Committed all the same: another connection reads it.
        let other = Connection::open(&path).unwrap();
        let read = |key: &[u8]| -> Option<Vec<u8>> {
            other
                .query_row(
                    "SELECT value FROM records WHERE tbl = 't' AND key = ?1",
                    [key],
                    |row| row.get(0),
                )
                .optional()
                .unwrap()
        };
        assert_eq!(read(b"unsynced"), Some(b"1".to_vec()));

        // The next transaction runs at the store's own durability again, and its commit flushes the WAL.
        let mut tx = store.transaction().unwrap();
        assert_eq!(synchronous_of(&tx), FULL);
        tx.put("t", b"synced", b"2").unwrap();
        tx.commit().unwrap();
        assert!(!store.sync.unsynced);

        let mut tx = store.unsynced_transaction().unwrap();
        tx.put("t", b"later", b"3").unwrap();
        tx.commit().unwrap();
        assert!(store.sync.unsynced);
        store.sync().unwrap();
        assert!(!store.sync.unsynced);
        assert_eq!(synchronous(&store), FULL);
        assert_eq!(read(b"later"), Some(b"3".to_vec()));
    }

    #[test]
    fn a_version_1_database_keeps_its_transfers_and_its_clock_through_the_migration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let raw = Connection::open(&path).unwrap();
            raw.execute_batch(MIGRATIONS[0]).unwrap();
            raw.pragma_update(None, "user_version", 1).unwrap();
            let account = |id: u8, timestamp: u64| {
                raw.execute(
                    "INSERT INTO accounts VALUES (?1, 978, 1, 0, zeroblob(32), zeroblob(16), ?2, zeroblob(16), ?3, ?4)",
                    params![
                        u128::from(id).to_be_bytes(),
                        u128::from(if id == 1 { 9u8 } else { 0 }).to_be_bytes(),
                        u128::from(if id == 2 { 9u8 } else { 0 }).to_be_bytes(),
                        timestamp.to_be_bytes()
                    ],
                )
                .unwrap();
            };
            account(1, 5);
            account(2, 6);
            raw.execute(
                "INSERT INTO transfers VALUES (?1, ?2, ?3, ?4, 978, 1, zeroblob(32), 0, NULL, NULL, NULL, ?5)",
                params![
                    100u128.to_be_bytes(),
                    1u128.to_be_bytes(),
                    2u128.to_be_bytes(),
                    9u128.to_be_bytes(),
                    9u64.to_be_bytes()
                ],
            )
            .unwrap();
        }
        let mut store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let indexes: Vec<String> = store
            .connection
            .prepare("SELECT origin FROM pragma_index_list('transfers') ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // The primary key and the pending transfers by expiry; no UNIQUE constraint's index.
        assert_eq!(indexes, ["pk", "c"], "{indexes:?}");
        let mut tx = store.transaction().unwrap();
        assert_eq!(tx.load_transfer(100).unwrap().unwrap().amount, 9);
        assert!(
            tx.next_timestamp().unwrap() > 9,
            "the clock starts after the migrated transfers"
        );
        tx.commit().unwrap();
        let mut ledger = crate::Ledger::new(store);
        ledger.check_invariants().unwrap();
    }

    #[test]
    fn the_clock_survives_a_reopen_without_any_transfer_to_read_it_from() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock.db");
        let assigned = {
            let mut store = SqliteStore::open(&path).unwrap();
            let mut tx = store.transaction().unwrap();
            let assigned = tx.next_timestamp().unwrap();
            tx.commit().unwrap();
            assigned
        };
        let mut store = SqliteStore::open(&path)
            .unwrap()
            .with_clock(Arc::new(ManualClock::new(1)));
        let mut tx = store.transaction().unwrap();
        assert!(tx.next_timestamp().unwrap() > assigned);
    }

    #[test]
    fn a_commit_that_wrote_nothing_leaves_the_flush_owed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path().join("owed.db")).unwrap();
        let mut tx = store.unsynced_transaction().unwrap();
        tx.put("t", b"unsynced", b"1").unwrap();
        tx.commit().unwrap();
        // Neither an empty synced commit nor a read-only one writes (and flushes) the WAL.
        store.transaction().unwrap().commit().unwrap();
        let mut read = store.read_transaction().unwrap();
        assert_eq!(read.get("t", b"unsynced").unwrap(), Some(b"1".to_vec()));
        read.commit().unwrap();
        assert!(store.sync.unsynced);
        store.sync().unwrap();
        assert!(!store.sync.unsynced);
    }

    fn synchronous_of(tx: &SqliteTransaction<'_>) -> i64 {
        tx.tx
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn a_store_opened_for_normal_durability_stays_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            SqliteStore::open_with(dir.path().join("l.db"), Durability::Normal).unwrap();
        store.unsynced_transaction().unwrap().commit().unwrap();
        assert!(!store.sync.relaxed && !store.sync.unsynced);
        assert_eq!(synchronous(&store), NORMAL);
        store.sync().unwrap();
        assert_eq!(synchronous(&store), NORMAL);
    }
}
