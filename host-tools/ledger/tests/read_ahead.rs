//! Reading ahead changes no answer: lookups, scans, accounts and transfer checks answer the same with and without
//! it, across writes, scopes rolled back and ranges too crowded to read whole.

mod common;

use std::collections::BTreeMap;

use common::*;
use ledger::{LedgerError, LedgerTables, Transaction};
use proptest::prelude::*;

/// One step of a transaction on the keyed records.
#[derive(Debug, Clone)]
enum Step {
    Put(u8, u8),
    Delete(u8),
    Get(u8),
    Scan(u8),
    ReadAhead(Vec<u8>),
    ReadAheadPrefixes(Vec<u8>),
    /// A scope that writes these keys and is rolled back.
    Undone(Vec<u8>),
}

/// Keys in groups of ten under a one-byte prefix: `[group, 0, index]`; few keys, so that steps meet on them.
fn key(k: u8) -> Vec<u8> {
    vec![k / 10, 0, k % 10]
}

const KEYS: u8 = 30;
const GROUPS: u8 = KEYS / 10;

fn prefix(group: u8) -> Vec<u8> {
    vec![group, 0]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0..KEYS, any::<u8>()).prop_map(|(k, v)| Step::Put(k, v)),
        1 => (0..KEYS).prop_map(Step::Delete),
        2 => (0..KEYS).prop_map(Step::Get),
        2 => (0..GROUPS).prop_map(Step::Scan),
        2 => prop::collection::vec(0..KEYS, 0..12).prop_map(Step::ReadAhead),
        2 => prop::collection::vec(0..GROUPS, 0..3).prop_map(Step::ReadAheadPrefixes),
        1 => prop::collection::vec(0..KEYS, 1..4).prop_map(Step::Undone),
    ]
}

/// Runs `steps` on a transaction over `initial`, checking every read against a model of the records.
fn run(initial: &BTreeMap<u8, u8>, steps: &[Step]) -> Result<(), TestCaseError> {
    let (mut ledger, _) = in_memory();
    let mut tx = ledger.transaction().unwrap();
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (k, v) in initial {
        tx.put("t", &key(*k), &[*v]).unwrap();
        model.insert(key(*k), vec![*v]);
    }
    // Another table between and around, with the same keys: never answered for "t".
    for k in 0..KEYS {
        tx.put("s", &key(k), b"other table").unwrap();
    }
    for step in steps {
        match step {
            Step::Put(k, v) => {
                tx.put("t", &key(*k), &[*v]).unwrap();
                model.insert(key(*k), vec![*v]);
            }
            Step::Delete(k) => {
                let had = tx.delete("t", &key(*k)).unwrap();
                prop_assert_eq!(had, model.remove(&key(*k)).is_some());
            }
            Step::Get(k) => {
                prop_assert_eq!(tx.get("t", &key(*k)).unwrap(), model.get(&key(*k)).cloned());
            }
            Step::Scan(group) => {
                let p = prefix(*group);
                let expected: Vec<(Vec<u8>, Vec<u8>)> = model
                    .iter()
                    .filter(|(k, _)| k.starts_with(&p))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                prop_assert_eq!(tx.scan_prefix("t", &p).unwrap(), expected);
            }
            Step::ReadAhead(keys) => {
                let keys: Vec<Vec<u8>> = keys.iter().map(|k| key(*k)).collect();
                tx.read_ahead("t", &keys).unwrap();
            }
            Step::ReadAheadPrefixes(groups) => {
                let prefixes: Vec<Vec<u8>> = groups.iter().map(|g| prefix(*g)).collect();
                tx.read_ahead_prefixes("t", &prefixes).unwrap();
            }
            Step::Undone(keys) => {
                let undone: Result<(), LedgerError> = tx.scope(|tx| {
                    for k in keys {
                        tx.put("t", &key(*k), b"undone")?;
                        let all: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
                        tx.read_ahead("t", &all)?;
                        tx.read_ahead_prefixes("t", &(0..GROUPS).map(prefix).collect::<Vec<_>>())?;
                    }
                    Err(LedgerError::AmountZero)
                });
                prop_assert!(undone.is_err());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn reading_ahead_answers_what_the_database_holds(
        initial in prop::collection::btree_map(0..KEYS, any::<u8>(), 0..20),
        steps in prop::collection::vec(step(), 1..40),
    ) {
        run(&initial, &steps)?;
    }
}

#[test]
fn a_crowded_range_is_read_in_part_and_the_rest_looked_up() {
    let (mut ledger, _) = in_memory();
    let mut tx = ledger.transaction().unwrap();
    // Two keys wanted, 10,000 records between them: more than a read-ahead scan passes.
    for i in 0u32..10_000 {
        tx.put("t", &i.to_be_bytes(), &i.to_le_bytes()).unwrap();
    }
    let wanted = [0u32.to_be_bytes().to_vec(), 9_999u32.to_be_bytes().to_vec()];
    tx.read_ahead("t", &wanted).unwrap();
    tx.read_ahead_prefixes("t", &wanted).unwrap();
    for key in &wanted {
        let i = u32::from_be_bytes(key.as_slice().try_into().unwrap());
        assert_eq!(tx.get("t", key).unwrap(), Some(i.to_le_bytes().to_vec()));
        assert_eq!(tx.scan_prefix("t", key).unwrap().len(), 1);
    }
}

#[test]
fn accounts_read_ahead_keep_the_balances_written_in_the_transaction() {
    let (mut ledger, _) = in_memory();
    let users: Vec<ledger::NewAccount> =
        (10..110).map(|id| new_account(id, EUR, NO_LIMIT)).collect();
    open(&mut ledger, 1, &[new_account(1, EUR, NO_LIMIT)]);
    open(&mut ledger, 2, &users);
    let mut tx = ledger.transaction().unwrap();
    tx.create_transfer_within(single(500, 10, 1, 7)).unwrap();
    // Account 10 is cached with an unwritten balance: reading ahead must not replace it with its row.
    tx.read_ahead_accounts(&(1..120).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(tx.load_account(10).unwrap().unwrap().debits_posted, 7);
    assert_eq!(tx.load_account(1).unwrap().unwrap().credits_posted, 7);
    assert_eq!(tx.load_account(115).unwrap(), None, "no such account");
    for (transfer, user) in (600..).zip(10..110u128) {
        tx.create_transfer_within(single(transfer, user, 1, 1))
            .unwrap();
    }
    tx.commit().unwrap();
    assert_eq!(balances(&mut ledger, 10), [0, 8, 0, 0]);
    assert_eq!(balances(&mut ledger, 1), [0, 0, 0, 107]);
    ledger.check_invariants().unwrap();
}

#[test]
fn transfers_announced_new_are_still_created_once() {
    let (mut ledger, _) = in_memory();
    open(
        &mut ledger,
        1,
        &[new_account(1, EUR, NO_LIMIT), new_account(2, EUR, NO_LIMIT)],
    );
    let mut tx = ledger.transaction().unwrap();
    tx.create_transfer_within(single(105, 1, 2, 1)).unwrap();
    assert!(!tx.expect_new_transfers(100, 110).unwrap(), "105 is there");
    assert!(matches!(
        tx.create_transfer_within(single(105, 1, 2, 1)),
        Err(LedgerError::TransferExists { transfer: 105 })
    ));
    assert!(tx.expect_new_transfers(200, 210).unwrap());
    tx.create_transfer_within(single(200, 1, 2, 1)).unwrap();
    assert!(matches!(
        tx.create_transfer_within(single(200, 1, 2, 1)),
        Err(LedgerError::TransferExists { transfer: 200 })
    ));
    assert!(matches!(
        tx.create_transfer_within(single(200, 2, 1, 1)),
        Err(LedgerError::TransferExistsWithDifferentFields { transfer: 200 })
    ));
    // Undone in a scope, an id is free again.
    let undone: Result<(), LedgerError> = tx.scope(|tx| {
        tx.create_transfer_within(single(201, 1, 2, 1))?;
        Err(LedgerError::AmountZero)
    });
    assert!(undone.is_err());
    assert_eq!(tx.load_transfer(201).unwrap(), None);
    tx.create_transfer_within(single(201, 1, 2, 2)).unwrap();
    assert_eq!(tx.load_transfer(201).unwrap().unwrap().amount, 2);
    tx.commit().unwrap();
    assert_eq!(balances(&mut ledger, 2), [0, 0, 0, 4]);
    ledger.check_invariants().unwrap();
}
