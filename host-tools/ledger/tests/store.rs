//! Idempotent requests, group commit with savepoints, the keyed records, and the SQLite file across reopens.

mod common;

use common::*;
use ledger::{
    Answer, Inserted, Ledger, LedgerError, Recorded, Request, RequestId, SCHEMA_VERSION,
    SqliteStore, StorageError, Transaction, TransferKind,
};

#[test]
fn a_replay_gets_the_first_answer_and_changes_nothing() {
    let (mut ledger, clock) = in_memory();
    let first = open(
        &mut ledger,
        1,
        &[new_account(1, EUR, NO_LIMIT), new_account(2, EUR, NO_LIMIT)],
    );
    let request = Request::CreateTransfers(vec![single(100, 1, 2, 40)]);
    let answer = ledger.submit(RequestId(2), &request).unwrap();
    let after_first = snapshot(&mut ledger);
    clock.set(T0 + 5_000);
    assert_eq!(
        ledger.submit(RequestId(2), &request).unwrap(),
        answer,
        "same answer, same timestamp"
    );
    assert_eq!(snapshot(&mut ledger), after_first, "not applied twice");
    // The account answer is the account as opened, though its balances have moved since.
    let replayed = ledger.submit(
        RequestId(1),
        &Request::CreateAccounts(first.iter().map(|a| a.as_new()).collect()),
    );
    assert_eq!(replayed.unwrap(), Answer::Accounts(first));
    assert_eq!(balances(&mut ledger, 2), [0, 0, 0, 40]);
}

#[test]
fn another_request_under_a_used_id_is_refused() {
    let (mut ledger, _) = in_memory();
    open(
        &mut ledger,
        1,
        &[new_account(1, EUR, NO_LIMIT), new_account(2, EUR, NO_LIMIT)],
    );
    submit_transfers(&mut ledger, 2, &[single(100, 1, 2, 40)]).unwrap();
    let before = snapshot(&mut ledger);
    for other in [
        Request::CreateTransfers(vec![single(100, 1, 2, 41)]),
        Request::CreateTransfers(vec![single(101, 1, 2, 40)]),
        Request::ExpirePending { now: 0 },
    ] {
        let error = ledger.submit(RequestId(2), &other).unwrap_err();
        assert!(
            matches!(
                error,
                LedgerError::IdempotencyConflict {
                    request: RequestId(2)
                }
            ),
            "{error:?}"
        );
    }
    assert_eq!(snapshot(&mut ledger), before);
}

#[test]
fn a_refused_request_leaves_no_trace_and_may_be_retried() {
    let (mut ledger, _) = in_memory();
    open(
        &mut ledger,
        1,
        &[
            new_account(1, EUR, DEBITS_LIMITED),
            new_account(2, EUR, NO_LIMIT),
        ],
    );
    let spend = Request::CreateTransfers(vec![single(100, 1, 2, 40)]);
    let error = ledger.submit(RequestId(2), &spend).unwrap_err();
    assert!(
        matches!(error, LedgerError::ExceedsCredits { account: 1 }),
        "{error:?}"
    );
    submit_transfers(&mut ledger, 3, &[single(99, 2, 1, 40)]).unwrap();
    // The same request under the same id now succeeds: the refusal was not recorded as its answer.
    assert!(ledger.submit(RequestId(2), &spend).is_ok());
    assert_eq!(balances(&mut ledger, 1), [0, 40, 0, 40]);
}

#[test]
fn a_batch_commits_together_and_a_refusal_undoes_only_itself() {
    let (mut ledger, _) = in_memory();
    open(
        &mut ledger,
        1,
        &[
            new_account(1, EUR, NO_LIMIT),
            new_account(2, EUR, DEBITS_LIMITED),
        ],
    );
    let batch = vec![
        (
            RequestId(10),
            Request::CreateTransfers(vec![single(100, 1, 2, 30)]),
        ),
        // Refused in the middle of its chain: its first transfer is undone, the others stay.
        (
            RequestId(11),
            Request::CreateTransfers(vec![single(101, 1, 2, 5), single(102, 2, 1, 100)]),
        ),
        (
            RequestId(12),
            Request::CreateTransfers(vec![single(103, 2, 1, 30)]),
        ),
        // The same request again within the batch: a replay.
        (
            RequestId(10),
            Request::CreateTransfers(vec![single(100, 1, 2, 30)]),
        ),
        (
            RequestId(10),
            Request::CreateTransfers(vec![single(100, 1, 2, 31)]),
        ),
    ];
    let answers = ledger.submit_batch(&batch).unwrap();
    assert_eq!(answers.len(), 5);
    assert!(answers[0].is_ok() && answers[2].is_ok());
    assert!(
        matches!(answers[1], Err(LedgerError::InChain { index: 1, .. })),
        "{:?}",
        answers[1]
    );
    assert_eq!(answers[3].as_ref().unwrap(), answers[0].as_ref().unwrap());
    assert!(
        matches!(answers[4], Err(LedgerError::IdempotencyConflict { .. })),
        "{:?}",
        answers[4]
    );
    assert_eq!(ledger.transfer(101).unwrap(), None);
    assert_eq!(balances(&mut ledger, 2), [0, 30, 0, 30]);
    ledger.check_invariants().unwrap();
}

#[test]
fn an_uncommitted_transaction_leaves_nothing() {
    let (mut ledger, _) = in_memory();
    {
        let mut tx = ledger.transaction().unwrap();
        tx.create_account(RequestId(1), new_account(1, EUR, NO_LIMIT))
            .unwrap();
        tx.put("customers", b"c1", b"Alice").unwrap();
    }
    assert_eq!(ledger.account(1).unwrap(), None);
    let mut tx = ledger.transaction().unwrap();
    assert_eq!(tx.get("customers", b"c1").unwrap(), None);
    // The request id was not kept either: another request under it is accepted.
    tx.create_account(RequestId(1), new_account(2, EUR, NO_LIMIT))
        .unwrap();
}

#[test]
fn keyed_records() {
    let (mut ledger, _) = in_memory();
    let mut tx = ledger.transaction().unwrap();
    assert_eq!(
        tx.insert_unique("spent", b"bank1/token1", b"t0").unwrap(),
        Inserted::Inserted
    );
    assert_eq!(
        tx.insert_unique("spent", b"bank1/token1", b"t1").unwrap(),
        Inserted::AlreadyExists
    );
    assert_eq!(
        tx.get("spent", b"bank1/token1").unwrap().as_deref(),
        Some(&b"t0"[..]),
        "unchanged"
    );
    // Tables are separate namespaces.
    assert_eq!(tx.get("other", b"bank1/token1").unwrap(), None);
    assert_eq!(
        tx.insert_unique("other", b"bank1/token1", b"x").unwrap(),
        Inserted::Inserted
    );
    tx.put("spent", b"bank1/token1", b"t2").unwrap();
    tx.put("spent", b"bank1/token2", b"t3").unwrap();
    tx.put("spent", b"bank2/token1", b"t4").unwrap();
    tx.put("spent", &[0xFF, 0xFF], b"high").unwrap();
    tx.put("spent", &[0xFF, 0xFF, 0], b"higher").unwrap();
    let bank1 = tx.scan_prefix("spent", b"bank1/").unwrap();
    assert_eq!(
        bank1,
        vec![
            (b"bank1/token1".to_vec(), b"t2".to_vec()),
            (b"bank1/token2".to_vec(), b"t3".to_vec())
        ]
    );
    let high: Vec<_> = tx
        .scan_prefix("spent", &[0xFF, 0xFF])
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        high,
        vec![b"high".to_vec(), b"higher".to_vec()],
        "a prefix of 0xFF bytes has no successor"
    );
    assert_eq!(tx.scan_prefix("spent", b"").unwrap().len(), 5);
    assert!(tx.delete("spent", b"bank1/token1").unwrap());
    assert!(!tx.delete("spent", b"bank1/token1").unwrap());
    assert_eq!(tx.get("spent", b"bank1/token1").unwrap(), None);
}

#[test]
fn a_domain_request_and_its_postings_share_one_transaction() {
    let (mut ledger, _) = in_memory();
    open(
        &mut ledger,
        1,
        &[new_account(1, EUR, NO_LIMIT), new_account(2, EUR, NO_LIMIT)],
    );
    // What the credit system does: spend a token and reserve its credit, all or nothing, once.
    let authorize = |tx: &mut ledger::SqliteTransaction<'_>, token: &[u8], transfer_id: u128| {
        tx.idempotent(RequestId(transfer_id), "authorize", token, |tx| {
            if tx.insert_unique("spent", token, b"")? == Inserted::AlreadyExists {
                return Err(LedgerError::TransferExists {
                    transfer: transfer_id,
                });
            }
            let pending = TransferKind::Pending {
                expires_at: u64::MAX,
            };
            tx.create_transfer(
                RequestId(transfer_id + 1000),
                transfer(transfer_id, 1, 2, 25, pending),
            )?;
            Ok(b"approved".to_vec())
        })
    };
    let mut tx = ledger.transaction().unwrap();
    assert_eq!(
        authorize(&mut tx, b"token-a", 100).unwrap(),
        Recorded::Applied(b"approved".to_vec())
    );
    assert_eq!(
        authorize(&mut tx, b"token-a", 100).unwrap(),
        Recorded::Replayed(b"approved".to_vec())
    );
    // Another request reusing the token: refused, and its own pending credit is gone with it.
    assert!(authorize(&mut tx, b"token-a", 200).is_err());
    assert_eq!(tx.load_transfer(200).unwrap(), None);
    // The same request id with another token: a conflict.
    let error = authorize(&mut tx, b"token-b", 100).unwrap_err();
    assert!(
        matches!(error, LedgerError::IdempotencyConflict { .. }),
        "{error:?}"
    );
    tx.commit().unwrap();
    assert_eq!(balances(&mut ledger, 1), [25, 0, 0, 0]);
    ledger.check_invariants().unwrap();
}

use ledger::LedgerTables as _;

#[test]
fn scopes_nest() {
    let (mut ledger, _) = in_memory();
    let mut tx = ledger.transaction().unwrap();
    let outer: Result<(), LedgerError> = tx.scope(|tx| {
        tx.put("t", b"outer", b"1")?;
        let inner: Result<(), LedgerError> = tx.scope(|tx| {
            tx.put("t", b"inner", b"1")?;
            Err(LedgerError::AmountZero)
        });
        assert!(inner.is_err());
        tx.put("t", b"after", b"1")?;
        Ok(())
    });
    outer.unwrap();
    let keys: Vec<_> = tx
        .scan_prefix("t", b"")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec![b"after".to_vec(), b"outer".to_vec()]);
    let failed: Result<(), LedgerError> = tx.scope(|tx| {
        tx.put("t", b"gone", b"1")?;
        tx.scope(|tx| tx.put("t", b"gone too", b"1"))?;
        Err(LedgerError::AmountZero)
    });
    assert!(failed.is_err());
    assert_eq!(tx.scan_prefix("t", b"gone").unwrap(), vec![]);
}

#[test]
fn a_file_database_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let (transfer_answer, last) = {
        let mut ledger = Ledger::new(SqliteStore::open(&path).unwrap());
        open(
            &mut ledger,
            1,
            &[new_account(1, EUR, NO_LIMIT), new_account(2, EUR, NO_LIMIT)],
        );
        let pending = TransferKind::Pending {
            expires_at: u64::MAX,
        };
        let request =
            Request::CreateTransfers(vec![single(100, 1, 2, 40), transfer(101, 1, 2, 2, pending)]);
        let answer = ledger.submit(RequestId(2), &request).unwrap();
        let mut tx = ledger.transaction().unwrap();
        tx.put("customers", b"c1", b"Alice").unwrap();
        tx.commit().unwrap();
        let Answer::Transfers(transfers) = &answer else {
            panic!("{answer:?}")
        };
        (answer.clone(), transfers[1].timestamp)
    };
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    let mut ledger = Ledger::new(store);
    assert_eq!(balances(&mut ledger, 1), [2, 40, 0, 0]);
    let replay = Request::CreateTransfers(vec![
        single(100, 1, 2, 40),
        transfer(
            101,
            1,
            2,
            2,
            TransferKind::Pending {
                expires_at: u64::MAX,
            },
        ),
    ]);
    assert_eq!(
        ledger.submit(RequestId(2), &replay).unwrap(),
        transfer_answer,
        "requests survive too"
    );
    assert_eq!(
        ledger
            .transaction()
            .unwrap()
            .get("customers", b"c1")
            .unwrap()
            .as_deref(),
        Some(&b"Alice"[..])
    );
    let next = submit_transfers(&mut ledger, 3, &[single(102, 1, 2, 1)]).unwrap()[0];
    assert!(
        next.timestamp > last,
        "timestamps keep increasing across a reopen"
    );
    ledger.check_invariants().unwrap();
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(SqliteStore::open(&path).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(raw);
    let error = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(error, LedgerError::Storage(StorageError::SchemaTooNew { found, supported: SCHEMA_VERSION })
            if found == SCHEMA_VERSION + 1),
        "{error:?}"
    );
}

#[test]
fn the_file_database_is_in_wal_mode_with_strict_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(SqliteStore::open(&path).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mode: String = raw
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // The tables refuse what the ledger never writes: a short id, a text where a blob belongs.
    assert!(
        raw.execute(
            "INSERT INTO records (tbl, key, value) VALUES ('t', 'k', 1)",
            []
        )
        .is_err()
    );
    let short =
        "INSERT INTO accounts VALUES (x'01', 978, 1, 0, zeroblob(32), zeroblob(16), zeroblob(16),
                 zeroblob(16), zeroblob(16), zeroblob(8))";
    assert!(raw.execute(short, []).is_err());
}

#[test]
fn two_stores_on_one_file_keep_one_order_of_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    // Both clocks stand still at the same time: only the ledger's own ordering keeps the timestamps apart.
    let clock = ledger::ManualClock::new(T0);
    let store = |clock: &ledger::ManualClock| {
        SqliteStore::open(&path)
            .unwrap()
            .with_clock(std::sync::Arc::new(clock.clone()))
    };
    let (mut first, mut second) = (Ledger::new(store(&clock)), Ledger::new(store(&clock)));
    open(
        &mut first,
        1,
        &[new_account(1, EUR, NO_LIMIT), new_account(2, EUR, NO_LIMIT)],
    );
    for id in 0..4 {
        let ledger = if id % 2 == 0 { &mut first } else { &mut second };
        submit_transfers(ledger, 10 + id, &[single(100 + id, 1, 2, 1)]).unwrap();
    }
    assert_eq!(balances(&mut second, 2), [0, 0, 0, 4]);
    let by_time: Vec<_> = second
        .transfers()
        .unwrap()
        .iter()
        .map(|(t, _)| t.id)
        .collect();
    assert_eq!(
        by_time,
        [100, 101, 102, 103],
        "timestamps follow the order of the commits"
    );
    second.check_invariants().unwrap();
}

#[test]
fn a_reader_beside_a_writer_neither_waits_nor_sees_what_is_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let (mut writer, mut reader) = (
        Ledger::new(SqliteStore::open(&path).unwrap()),
        Ledger::new(SqliteStore::open(&path).unwrap()),
    );
    let mut tx = writer.transaction().unwrap();
    tx.put("t", b"committed", b"1").unwrap();
    tx.commit().unwrap();
    let mut tx = writer.transaction().unwrap();
    tx.put("t", b"pending", b"2").unwrap();
    // The writer holds the write lock; the reader reads the committed state (waiting would end in "busy").
    let mut read = reader.read_transaction().unwrap();
    assert_eq!(read.get("t", b"committed").unwrap(), Some(b"1".to_vec()));
    assert_eq!(read.get("t", b"pending").unwrap(), None);
    drop(read);
    tx.commit().unwrap();
    let mut read = reader.read_transaction().unwrap();
    assert_eq!(read.get("t", b"pending").unwrap(), Some(b"2".to_vec()));
}

#[test]
fn closing_a_scope_that_is_not_open_is_an_error() {
    let (mut ledger, _) = in_memory();
    let mut tx = ledger.transaction().unwrap();
    for result in [tx.release_savepoint(), tx.rollback_to_savepoint()] {
        assert!(
            matches!(result, Err(LedgerError::Storage(StorageError::NoSavepoint))),
            "{result:?}"
        );
    }
    tx.savepoint().unwrap();
    tx.put("t", b"k", b"v").unwrap();
    tx.rollback_to_savepoint().unwrap();
    assert!(
        tx.release_savepoint().is_err(),
        "the savepoint was closed by the rollback"
    );
    assert_eq!(tx.get("t", b"k").unwrap(), None);
}

/// A request that refuses before writing, with the error a domain crate would return.
#[derive(Debug, thiserror::Error)]
enum DomainError {
    #[error("refused before writing")]
    Refused,
    #[error("refused after writing")]
    RefusedLate,
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

#[test]
fn an_unscoped_request_is_applied_once_and_refuses_cleanly_before_writing() {
    let (mut ledger, _) = in_memory();
    open(
        &mut ledger,
        1,
        &[new_account(1, EUR, NO_LIMIT), new_account(2, EUR, NO_LIMIT)],
    );
    let mut tx = ledger.transaction().unwrap();
    let refused = tx.idempotent_unscoped(RequestId(10), "pay", b"body", |_| {
        Err::<Vec<u8>, _>(DomainError::Refused)
    });
    assert!(matches!(refused, Err(DomainError::Refused)), "{refused:?}");
    // Nothing was recorded: the same id may be used again.
    let pay = |tx: &mut ledger::SqliteTransaction<'_>| {
        tx.idempotent_unscoped(RequestId(10), "pay", b"body", |tx| {
            tx.create_transfer_within(single(100, 1, 2, 30))?;
            Ok::<_, DomainError>(b"paid".to_vec())
        })
    };
    assert_eq!(pay(&mut tx).unwrap(), Recorded::Applied(b"paid".to_vec()));
    assert_eq!(pay(&mut tx).unwrap(), Recorded::Replayed(b"paid".to_vec()));
    let conflict = tx.idempotent_unscoped(RequestId(10), "pay", b"other", |_| {
        Ok::<_, DomainError>(Vec::new())
    });
    assert!(
        matches!(
            conflict,
            Err(DomainError::Ledger(LedgerError::IdempotencyConflict { .. }))
        ),
        "{conflict:?}"
    );
    tx.commit().unwrap();
    assert_eq!(balances(&mut ledger, 1), [0, 30, 0, 0]);
    ledger.check_invariants().unwrap();
}

#[test]
fn an_unscoped_request_that_fails_after_writing_says_the_transaction_must_go() {
    let (mut ledger, _) = in_memory();
    open(
        &mut ledger,
        1,
        &[new_account(1, EUR, NO_LIMIT), new_account(2, EUR, NO_LIMIT)],
    );
    let before = snapshot(&mut ledger);
    let mut tx = ledger.transaction().unwrap();
    let error = tx
        .idempotent_unscoped(RequestId(10), "pay", b"body", |tx| {
            tx.create_transfer_within(single(100, 1, 2, 30))?;
            Err::<Vec<u8>, _>(DomainError::RefusedLate)
        })
        .unwrap_err();
    let DomainError::Ledger(error) = error else {
        panic!("expected the ledger's error, got {error:?}");
    };
    assert!(!error.is_refusal());
    assert!(
        matches!(&error, LedgerError::FailedAfterWriting { request, source }
            if *request == RequestId(10) && source.to_string() == "refused after writing"),
        "{error:?}"
    );
    drop(tx);
    assert_eq!(snapshot(&mut ledger), before);
}

#[test]
fn a_transfer_within_a_request_refuses_without_a_trace() {
    let (mut ledger, _) = in_memory();
    open(
        &mut ledger,
        1,
        &[
            new_account(1, EUR, DEBITS_LIMITED),
            new_account(2, EUR, NO_LIMIT),
        ],
    );
    let mut tx = ledger.transaction().unwrap();
    let writes = tx.writes();
    // Account 1 may not go below zero.
    let refused = tx
        .create_transfer_within(single(100, 1, 2, 30))
        .unwrap_err();
    assert!(
        matches!(refused, LedgerError::ExceedsCredits { account: 1 }),
        "{refused:?}"
    );
    assert_eq!(tx.writes(), writes);
    assert_eq!(tx.load_transfer(100).unwrap(), None);
    tx.create_transfer_within(single(101, 2, 1, 50)).unwrap();
    tx.create_transfer_within(single(102, 1, 2, 30)).unwrap();
    assert_eq!(tx.writes(), writes + 6, "2 transfers and 4 balances");
    tx.commit().unwrap();
    assert_eq!(balances(&mut ledger, 1), [0, 30, 0, 50]);
    ledger.check_invariants().unwrap();
}

#[test]
fn balances_read_after_a_rolled_back_scope_are_the_database_s() {
    let (mut ledger, _) = in_memory();
    open(
        &mut ledger,
        1,
        &[new_account(1, EUR, NO_LIMIT), new_account(2, EUR, NO_LIMIT)],
    );
    let mut tx = ledger.transaction().unwrap();
    tx.create_transfer_within(single(100, 1, 2, 10)).unwrap();
    let undone: Result<(), LedgerError> = tx.scope(|tx| {
        tx.create_transfer_within(single(101, 1, 2, 5))?;
        assert_eq!(tx.load_account(1)?.unwrap().debits_posted, 15);
        Err(LedgerError::AmountZero)
    });
    assert!(undone.is_err());
    // The account read again is the one the rollback left, not the one cached inside the scope.
    assert_eq!(tx.load_account(1).unwrap().unwrap().debits_posted, 10);
    tx.create_transfer_within(single(102, 1, 2, 1)).unwrap();
    tx.commit().unwrap();
    assert_eq!(balances(&mut ledger, 1), [0, 11, 0, 0]);
    ledger.check_invariants().unwrap();
}

#[test]
fn a_prefix_is_read_page_by_page() {
    let (mut ledger, _) = in_memory();
    let mut tx = ledger.transaction().unwrap();
    for i in 0u8..7 {
        tx.put("t", &[b'a', i], &[i]).unwrap();
    }
    tx.put("t", b"b", b"other prefix").unwrap();
    tx.put("u", &[b'a', 9], b"other table").unwrap();
    let mut seen = Vec::new();
    let mut after = Vec::new();
    loop {
        let page = tx.scan_prefix_page("t", b"a", &after, 3).unwrap();
        assert!(page.len() <= 3);
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        seen.extend(page.into_iter().map(|(_, value)| value[0]));
    }
    assert_eq!(seen, (0..7).collect::<Vec<u8>>());
    assert_eq!(tx.scan_prefix_page("t", b"", b"b", 10).unwrap(), vec![]);
    assert_eq!(tx.scan_prefix_page("t", b"", &[], 100).unwrap().len(), 8);
    assert!(tx.scan_prefix_page("t", b"a", b"b", 1).is_err());
}

#[test]
fn a_range_is_known_empty_or_not_in_one_look() {
    let (mut ledger, _) = in_memory();
    let mut tx = ledger.transaction().unwrap();
    tx.put("t", b"k3", b"").unwrap();
    tx.put("t", b"k7", b"").unwrap();
    tx.put("u", b"k5", b"other table").unwrap();
    assert_eq!(tx.first_key_from("t", b"k4").unwrap(), Some(b"k7".to_vec()));
    assert_eq!(tx.first_key_from("t", b"k8").unwrap(), None);
    assert!(!tx.any_between("t", b"k4", b"k6").unwrap());
    assert!(tx.any_between("t", b"k4", b"k7").unwrap());
    assert!(tx.any_between("t", b"k3", b"k3").unwrap());
    assert!(!tx.any_between("t", b"k0", b"k2").unwrap());
    let keys = |names: &[&str]| {
        names
            .iter()
            .map(|n| n.as_bytes().to_vec())
            .collect::<Vec<_>>()
    };
    assert!(!tx.may_hold_any("t", &keys(&["k6", "k4", "k5"])).unwrap());
    assert!(tx.may_hold_any("t", &keys(&["k6", "k8", "k4"])).unwrap());
    assert!(tx.may_hold_any("t", &keys(&["k5", "k5"])).unwrap());
    assert!(!tx.may_hold_any("t", &[]).unwrap());
}

#[test]
fn balances_kept_in_memory_are_all_written_however_many_accounts_a_transaction_touches() {
    let (mut ledger, _) = in_memory();
    // More accounts than a transaction keeps in memory, all paying one hot account.
    let users: Vec<ledger::NewAccount> = (10..10_010)
        .map(|id| new_account(id, EUR, NO_LIMIT))
        .collect();
    open(&mut ledger, 1, &[new_account(1, EUR, NO_LIMIT)]);
    open(&mut ledger, 2, &users);
    let mut tx = ledger.transaction().unwrap();
    for (transfer, user) in (1_000..).zip(10..10_010u128) {
        tx.create_transfer_within(single(transfer, user, 1, user))
            .unwrap();
    }
    let expected: u128 = (10..10_010u128).sum();
    assert_eq!(
        tx.load_account(1).unwrap().unwrap().credits_posted,
        expected
    );
    tx.commit().unwrap();
    assert_eq!(balances(&mut ledger, 1), [0, 0, 0, expected]);
    for user in [10u128, 5_000, 10_009] {
        assert_eq!(balances(&mut ledger, user), [0, user, 0, 0]);
    }
    ledger.check_invariants().unwrap();
}

/// Imports `chunks` of record keys into table "t" while `read_whole` is set after `whole_after` chunks; answers how
/// the import ended and the keys now in the table.
fn import(
    ledger: &mut TestLedger,
    chunks: Vec<Result<Vec<u8>, String>>,
    whole_after: Option<usize>,
) -> (Result<ledger::Imported, String>, Vec<u8>) {
    type Error = ledger::ImportError<LedgerError, String>;
    let seen = std::cell::Cell::new(0usize);
    let imported = ledger
        .import_while_reading(
            chunks.into_iter().map(|chunk| chunk.map_err(Error::Caller)),
            || whole_after.is_some_and(|after| seen.get() >= after),
            |tx, chunk: Vec<u8>| {
                for key in &chunk {
                    tx.put("t", &[*key], b"")?;
                }
                seen.set(seen.get() + 1);
                Ok::<_, Error>(chunk.len())
            },
            |_| Ok(()),
        )
        .map_err(|error| match error {
            ledger::ImportError::Domain(error) => error.to_string(),
            ledger::ImportError::Caller(error) => error,
        });
    let mut tx = ledger.transaction().unwrap();
    let keys = tx
        .scan_prefix("t", &[])
        .unwrap()
        .into_iter()
        .map(|(key, _)| key[0])
        .collect();
    (imported, keys)
}

#[test]
fn an_import_commits_nothing_before_its_file_is_read_whole() {
    let (mut ledger, _) = in_memory();
    let chunks = |tail: Option<&str>| {
        let mut chunks: Vec<Result<Vec<u8>, String>> =
            vec![Ok(vec![1, 2]), Ok(vec![3]), Ok(vec![4])];
        chunks.extend(tail.map(|error| Err(error.to_owned())));
        chunks
    };
    // The reader fails after three chunks it had not yet read whole: nothing stays.
    let (imported, keys) = import(&mut ledger, chunks(Some("malformed")), None);
    assert_eq!((imported, keys), (Err("malformed".to_owned()), vec![]));
    // The chunks end, the reader never said "whole": nothing stays either.
    let (imported, keys) = import(&mut ledger, chunks(None), None);
    assert_eq!((imported, keys), (Ok(ledger::Imported::Stopped), vec![]));
    // Read whole after the second chunk: what came until then is committed, and each chunk after.
    let (imported, keys) = import(&mut ledger, chunks(Some("disk full")), Some(2));
    assert_eq!(
        (imported, keys),
        (Err("disk full".to_owned()), vec![1, 2, 3, 4])
    );
    let (mut fresh, _) = in_memory();
    let (imported, keys) = import(&mut fresh, chunks(None), Some(0));
    assert_eq!(
        (imported, keys),
        (Ok(ledger::Imported::Whole), vec![1, 2, 3, 4])
    );
}

#[test]
fn another_writer_gets_its_turn_between_the_commits_of_a_long_import() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let mut importer = Ledger::new(SqliteStore::open(&path).unwrap());
    let mut terminal = Ledger::new(SqliteStore::open(&path).unwrap());
    type Error = ledger::ImportError<LedgerError, LedgerError>;
    let chunks: Vec<Result<u8, Error>> = (0..40u8).map(Ok).collect();
    // The chunk at which the import first saw the terminal's write, if it did before it ended.
    let mut seen_at = None;
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let mut tx = terminal.transaction().unwrap();
            tx.put("terminal", b"deposit", b"").unwrap();
            tx.commit().unwrap();
        });
        importer
            .import_while_reading(
                chunks,
                || true,
                |tx, chunk| {
                    tx.put("import", &[chunk], b"")?;
                    if seen_at.is_none() && tx.get("terminal", b"deposit")?.is_some() {
                        seen_at = Some(chunk);
                    }
                    // A chunk of real work: the write lock is held all the while.
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    Ok::<_, Error>(())
                },
                |()| Ok(()),
            )
            .unwrap();
        writer.join().unwrap();
    });
    let seen_at = seen_at.expect("the terminal wrote while the import ran, not after it");
    assert!(seen_at < 39, "seen at chunk {seen_at}");
}

/// The size in bytes of the file at `path` with `suffix` (0 when it does not exist).
fn file_size(path: &std::path::Path, suffix: &str) -> u64 {
    let mut file = path.as_os_str().to_owned();
    file.push(suffix);
    std::fs::metadata(file).map_or(0, |metadata| metadata.len())
}

#[test]
fn a_long_import_has_its_wal_copied_while_it_runs_and_closes_with_none_left() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let mut importer = Ledger::new(SqliteStore::open(&path).unwrap());
    let empty_database = file_size(&path, "");
    type Error = ledger::ImportError<LedgerError, LedgerError>;
    let chunks: Vec<Result<u8, Error>> = (0..30u8).map(Ok).collect();
    let value = vec![7u8; 64 * 1024];
    // The database file grows only when a checkpoint copies pages from the WAL into it.
    let mut largest_database = 0;
    let imported = importer
        .import_while_reading(
            chunks,
            || true,
            |tx, chunk| {
                for key in 0..16u8 {
                    tx.put("import", &[chunk, key], &value)?;
                }
                Ok::<_, Error>(())
            },
            |()| {
                // Time for the checkpoint nudged by the commit before this one.
                std::thread::sleep(std::time::Duration::from_millis(50));
                largest_database = largest_database.max(file_size(&path, ""));
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(imported, ledger::Imported::Whole);
    assert!(
        largest_database > empty_database + (16 << 20),
        "the database grew from {empty_database} to only {largest_database} bytes while the import ran"
    );
    drop(importer);
    assert_eq!(
        file_size(&path, "-wal"),
        0,
        "the last connection checkpointed as it closed"
    );
    let mut reopened = Ledger::new(SqliteStore::open(&path).unwrap());
    let mut tx = reopened.transaction().unwrap();
    assert_eq!(tx.scan_prefix("import", &[]).unwrap().len(), 30 * 16);
}
