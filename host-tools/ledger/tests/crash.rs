//! kill -9 in the middle of a run of group commits: a child process (this test binary again) applies batches to
//! a file database and reports each batch after its commit; the parent kills it with SIGKILL, reopens the
//! database, and finds every reported batch whole, no batch in part, and the invariants holding. Three rounds on
//! the same file: each child starts over from batch 0, so the batches already there are replays.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use common::*;
use ledger::{Ledger, NewTransfer, Request, RequestId, SqliteStore, TransferKind};

const CHILD_DATABASE: &str = "LEDGER_CRASH_CHILD_DATABASE";
const REQUESTS_PER_BATCH: u128 = 20;
/// The request of each batch that is refused (its third transfer names an account that does not exist).
const REFUSED_REQUEST: u128 = 7;
const MAX_BATCHES: u128 = 100_000;
const ACCOUNTS: u128 = 4;

fn pending_id(batch: u128, request: u128) -> u128 {
    (batch * REQUESTS_PER_BATCH + request) * 4 + 1_000
}

/// Request `request` of batch `batch`: a pending transfer and its post, linked.
fn request(batch: u128, request: u128) -> (RequestId, Request) {
    let id = pending_id(batch, request);
    let debit = request % ACCOUNTS + 1;
    let credit = (request + 1) % ACCOUNTS + 1;
    let pending = transfer(
        id,
        debit,
        credit,
        10 + request,
        TransferKind::Pending {
            expires_at: u64::MAX,
        },
    );
    let post = NewTransfer {
        amount: 5,
        kind: TransferKind::PostPending { pending_id: id },
        ..single(id + 1, debit, credit, 0)
    };
    let chain = if request == REFUSED_REQUEST {
        vec![pending, post, single(id + 2, 1, ACCOUNTS + 1, 1)]
    } else {
        vec![pending, post]
    };
    (RequestId(id), Request::CreateTransfers(chain))
}

fn open_ledger(path: &str) -> TestLedger {
    Ledger::new(SqliteStore::open(path).unwrap())
}

#[test]
#[ignore = "the child process of kill_nine_mid_batch_loses_nothing_committed, which runs it"]
fn crash_child() {
    // Run by hand without the parent, there is nothing to do.
    let Ok(path) = std::env::var(CHILD_DATABASE) else {
        return;
    };
    let mut ledger = open_ledger(&path);
    let accounts = (1..=ACCOUNTS).map(|id| new_account(id, EUR, NO_LIMIT));
    ledger
        .submit(RequestId(1), &Request::CreateAccounts(accounts.collect()))
        .unwrap();
    for batch in 0..MAX_BATCHES {
        let requests: Vec<_> = (0..REQUESTS_PER_BATCH).map(|r| request(batch, r)).collect();
        let answers = ledger.submit_batch(&requests).unwrap();
        let applied: Vec<_> = answers.iter().map(Result::is_ok).collect();
        let expected: Vec<_> = (0..REQUESTS_PER_BATCH)
            .map(|r| r != REFUSED_REQUEST)
            .collect();
        assert_eq!(applied, expected, "{answers:?}");
        // Reported only once durable; the parent parses the marker wherever the test harness puts it.
        println!("<committed {batch}>");
    }
}

/// Runs the child until it has reported `target` batches, kills it, and returns the last batch it reported.
fn run_child_until(path: &str, target: u128) -> u128 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DATABASE, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut last = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("<committed ").nth(1) {
            last = Some(rest.trim_end_matches('>').parse::<u128>().unwrap());
        }
        if last >= Some(target) {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no rollback, no close.
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the child died of SIGKILL, not of its own accord"
    );
    last.unwrap_or_else(|| panic!("the child reported no batch ({status})"))
}

/// Whether batch `batch` is there whole (`Some(true)`), not at all (`Some(false)`), or in part (`None`).
fn batch_presence(ledger: &mut TestLedger, batch: u128) -> Option<bool> {
    let mut there = Vec::new();
    for r in 0..REQUESTS_PER_BATCH {
        let id = pending_id(batch, r);
        if r == REFUSED_REQUEST {
            for refused in [id, id + 1, id + 2] {
                assert_eq!(
                    ledger.transfer(refused).unwrap(),
                    None,
                    "a refused request is never there"
                );
            }
        } else {
            there.extend([id, id + 1].map(|transfer| ledger.transfer(transfer).unwrap().is_some()));
        }
    }
    match (there.iter().all(|&t| t), there.iter().all(|&t| !t)) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

#[test]
fn kill_nine_mid_batch_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db").to_str().unwrap().to_owned();
    let mut reported = 0;
    for target in [3, 25, 60] {
        reported = reported.max(run_child_until(&path, target));
        let mut ledger = open_ledger(&path);
        ledger.check_invariants().unwrap();
        for batch in 0..=reported {
            assert_eq!(
                batch_presence(&mut ledger, batch),
                Some(true),
                "batch {batch} was reported committed"
            );
        }
        // The batch after the last report may have committed before the kill, whole or not at all; none after it.
        assert!(
            batch_presence(&mut ledger, reported + 1).is_some(),
            "batch {} is half there",
            reported + 1
        );
        assert_eq!(batch_presence(&mut ledger, reported + 2), Some(false));
        let pending = ledger
            .transfers()
            .unwrap()
            .into_iter()
            .filter(|(_, s)| s.is_some())
            .count() as u128;
        assert!(pending >= (reported + 1) * (REQUESTS_PER_BATCH - 1));
    }
}
