//! The database survives a kill -9 in the middle of a batch of authorizations: a child process (this test
//! binary, run again with an environment variable) commits batches against a file database and reports each
//! committed batch's authorization ids once `authorize_batch` has returned; the parent kills it with SIGKILL,
//! reopens the database, and finds every reported decision and no half-applied one.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use credit::Credit;
use ledger::RequestId;

const CHILD_DATABASE: &str = "CREDIT_KILL_CHILD_DATABASE";
const CHILD_ROUND: &str = "CREDIT_KILL_CHILD_ROUND";
const BATCH: usize = 16;

/// The child's work; does nothing in an ordinary test run.
#[test]
fn child_authorizes_batches_until_killed() {
    let (Ok(path), Ok(round)) = (std::env::var(CHILD_DATABASE), std::env::var(CHILD_ROUND)) else {
        return;
    };
    let round: u32 = round.parse().unwrap();
    let mut credit = Credit::open(file_store(path.as_ref()), config(), vec![credit_key()]).unwrap();
    let mut serial = round * 100_000;
    let mut stdout = std::io::stdout();
    loop {
        // Minted first, so that the kill most likely lands inside a batch.
        let batches: Vec<Vec<_>> = (0..8)
            .map(|_| {
                (0..BATCH)
                    .map(|_| {
                        serial += 1;
                        let token = mint(u64::from(serial), 50);
                        (
                            RequestId(u128::from(serial)),
                            purchase(100, serial, vec![token]),
                        )
                    })
                    .collect()
            })
            .collect();
        for batch in batches {
            let answers = credit.authorize_batch(&batch).unwrap();
            let ids: Vec<String> = answers
                .iter()
                .map(|answer| answer.as_ref().unwrap().authorization_id.to_string())
                .collect();
            writeln!(stdout, "committed {}", ids.join(" ")).unwrap();
            stdout.flush().unwrap();
        }
    }
}

#[test]
fn a_kill_9_in_the_middle_of_batches_loses_no_committed_decision() {
    if std::env::var(CHILD_DATABASE).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credit.sqlite");
    drop(set_up(file_store(&path)));
    let mut reported: Vec<u128> = Vec::new();
    for round in 1..=3u32 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_authorizes_batches_until_killed",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DATABASE, &path)
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut committed = |line: &str| {
            if let Some(ids) = line.strip_prefix("committed ") {
                reported.extend(ids.split(' ').map(|id| id.parse::<u128>().unwrap()));
                true
            } else {
                false
            }
        };
        // Wait for a couple of committed batches, then kill at a varying moment inside the next ones.
        let mut seen = 0;
        for line in lines.by_ref() {
            if committed(&line.unwrap()) {
                seen += 1;
                if seen == 2 {
                    break;
                }
            }
        }
        assert_eq!(seen, 2, "the child stopped before committing");
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        std::thread::sleep(Duration::from_millis(u64::from(nanos % 40)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // What the child reported before it died (each line after its commit returned).
        for line in lines {
            committed(&line.unwrap());
        }
        check_after_crash(&path, &reported);
    }
}

fn check_after_crash(path: &std::path::Path, reported: &[u128]) {
    let mut credit = Credit::open(file_store(path), config(), vec![credit_key()]).unwrap();
    for id in reported {
        assert!(
            credit.decision(*id).unwrap().is_some(),
            "reported decision {id} lost"
        );
    }
    // No half-applied authorization: the spent tokens, pending credits and reflections agree, the ledger balances,
    // and the decisions account for every pending credit and purchase.
    check(&mut credit);
    let (mut pending, mut outstanding, mut id) = (0, 0, 1);
    while let Some(decision) = credit.decision(id).unwrap() {
        pending += decision
            .accepted_tokens
            .iter()
            .map(|token| token.sum)
            .sum::<u64>();
        if decision.approved {
            outstanding += 100;
        }
        id += 1;
    }
    assert!(
        id > reported.len() as u128,
        "{} decisions for {} reported",
        id - 1,
        reported.len()
    );
    let account = credit.account(CARDHOLDER).unwrap();
    assert_eq!(
        (account.pending_credits, account.outstanding),
        (pending, outstanding)
    );
    assert_eq!(
        credit.pending_credits(CARDHOLDER).unwrap().len() as u128,
        id - 1
    );
}
