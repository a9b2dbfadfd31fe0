//! Store tests: transactions, and power loss at every write point of several scenarios (with a second power loss
//! at every write point of the recovery that follows), each with a half-done and a garbage tear.

extern crate std;

use std::println;
use std::vec::Vec;

use crate::nvm::{Nvm, NvmError, RamNvm, Tear, TearingNvm};
use crate::store::{Store, StoreError};

const PAGE: usize = 128;
const DIRTY: usize = 4;
type Memory = RamNvm<{ 16 * PAGE }, PAGE>;
type TestStore<N> = Store<N, PAGE, DIRTY>;

fn data_of<N: Nvm>(store: &TestStore<N>) -> Vec<u8> {
    let mut data = std::vec![0u8; store.capacity()];
    store.read(0, &mut data).unwrap();
    data
}

#[test]
fn writes_transactions_and_their_errors() {
    let mut store = TestStore::open(Memory::default()).unwrap();
    assert_eq!(store.capacity(), (16 - 1 - DIRTY) * PAGE);
    store.write(120, &[7; 20]).unwrap(); // crosses a page boundary
    let mut back = [0u8; 20];
    store.read(120, &mut back).unwrap();
    assert_eq!(back, [7; 20]);

    // Abort restores; reads inside the transaction see its writes.
    store.begin().unwrap();
    assert_eq!(store.begin(), Err(StoreError::NestedTransaction));
    store.write(0, b"inside").unwrap();
    let mut seen = [0u8; 6];
    store.read(0, &mut seen).unwrap();
    assert_eq!(&seen, b"inside");
    store.abort();
    store.read(0, &mut seen).unwrap();
    assert_eq!(seen, [0xFF; 6]);
    assert_eq!(store.commit(), Err(StoreError::NoTransaction));

    // More pages than the journal holds: BUFFER_FULL, and the transaction can still be aborted cleanly.
    store.begin().unwrap();
    for page in 0..DIRTY {
        store.write(page * PAGE, &[1]).unwrap();
    }
    assert_eq!(store.write(DIRTY * PAGE, &[1]), Err(StoreError::BufferFull));
    store.abort();
    // A single write spanning too many pages is refused whole.
    let unchanged = data_of(&store);
    assert_eq!(
        store.write(0, &[2; (DIRTY + 1) * PAGE]),
        Err(StoreError::BufferFull)
    );
    assert_eq!(data_of(&store), unchanged);
    // Beyond the data area.
    assert_eq!(
        store.write(store.capacity() - 1, &[0, 0]),
        Err(StoreError::OutOfRange)
    );

    // Committed data survives a reboot.
    store.begin().unwrap();
    store.write(300, b"persist").unwrap();
    store.write(900, b"both").unwrap();
    store.commit().unwrap();
    let rebooted = TestStore::open(store.into_nvm()).unwrap();
    let data = data_of(&rebooted);
    assert_eq!(&data[300..307], b"persist");
    assert_eq!(&data[900..904], b"both");
    assert_eq!(&data[120..140], &[7; 20]);
}

#[test]
fn write_now_escapes_the_transaction() {
    let mut store = TestStore::open(Memory::default()).unwrap();
    store.begin().unwrap();
    store.write(10, &[1, 1]).unwrap();
    store.write_now(11, &[5]).unwrap(); // same page as the transaction's write
    store.write_now(700, &[6]).unwrap(); // another page
    store.abort();
    let data = data_of(&store);
    assert_eq!(
        (data[10], data[11], data[700]),
        (0xFF, 5, 6),
        "the abort undid only the transaction"
    );
    store.begin().unwrap();
    store.write(10, &[2, 2]).unwrap();
    store.write_now(12, &[7]).unwrap();
    store.commit().unwrap();
    let data = data_of(&TestStore::open(store.into_nvm()).unwrap());
    assert_eq!(
        &data[10..13],
        &[2, 2, 7],
        "the commit kept the write_now value"
    );
}

#[test]
fn write_now_goes_through_however_full_the_transaction_is() {
    let mut store = TestStore::open(Memory::default()).unwrap();
    store.begin().unwrap();
    for page in 0..DIRTY {
        store.write(page * PAGE, &[1]).unwrap();
    }
    // The transaction holds every image it may: a write_now still commits, on one page or across two.
    store.write_now(PAGE + 1, &[9]).unwrap();
    let across = (DIRTY + 1) * PAGE - 1;
    store.write_now(across, &[3, 3]).unwrap();
    // More pages than the journal holds: refused, nothing written.
    let wide = 2 * PAGE;
    assert_eq!(
        store.write_now(wide, &[6; (DIRTY + 1) * PAGE]),
        Err(StoreError::BufferFull)
    );
    store.commit().unwrap();
    let data = data_of(&TestStore::open(store.into_nvm()).unwrap());
    assert_eq!(
        (
            data[0],
            data[PAGE],
            data[PAGE + 1],
            &data[across..across + 2]
        ),
        (1, 1, 9, &[3, 3][..]),
        "the transaction and the write_nows all landed"
    );
    assert_eq!(data[wide + 1], 0xFF, "the refused write_now wrote nothing");
}

#[test]
fn wrong_geometry_is_refused() {
    let small: RamNvm<{ 4 * PAGE }, PAGE> = RamNvm::default();
    assert!(matches!(TestStore::open(small), Err(StoreError::Geometry)));
    let mut slot = Some(TestStore::open(Memory::default()).unwrap());
    let small: RamNvm<{ 4 * PAGE }, PAGE> = RamNvm::default();
    let mut other_slot: Option<Store<_, PAGE, DIRTY>> = None;
    assert!(Store::open_in(&mut other_slot, small).is_err());
    assert!(
        other_slot.is_none(),
        "a refused memory leaves the slot empty"
    );
    assert!(TestStore::open_in(&mut slot, Memory::default()).is_ok());
    let other_page: RamNvm<{ 32 * 64 }, 64> = RamNvm::default();
    assert!(matches!(
        TestStore::open(other_page),
        Err(StoreError::Geometry)
    ));
}

type Scenario = fn(&mut TestStore<TearingNvm<Memory>>) -> Result<(), StoreError>;

/// Runs `scenario` on a copy of `base`, cutting the power at every write point (then again at every write point
/// of the recovery), and checks each reboot finds the data exactly before or exactly after. Returns the number of
/// write points and of reboots checked.
fn tear_everywhere(name: &str, base: &Memory, scenario: Scenario) -> (usize, usize) {
    let before = data_of(&TestStore::open(base.clone()).unwrap());
    let mut counting = TestStore::open(TearingNvm::new(base.clone(), None, Tear::Half)).unwrap();
    scenario(&mut counting).unwrap();
    let after = data_of(&counting);
    assert_ne!(before, after, "{name}: the scenario must change something");
    let write_points = counting.into_nvm().writes();
    assert!(write_points > 0);

    let check = |memory: Memory, context: &str| {
        let data = data_of(&TestStore::open(memory).unwrap());
        assert!(
            data == before || data == after,
            "{name}: {context}: data is neither before nor after"
        );
    };
    let mut reboots = 0;
    for tear in [Tear::Half, Tear::Garbage] {
        for at in 0..write_points {
            let mut store = TestStore::open(TearingNvm::new(base.clone(), Some(at), tear)).unwrap();
            assert_eq!(
                scenario(&mut store),
                Err(StoreError::Nvm(NvmError::PowerLost)),
                "{name}: write {at}"
            );
            let torn = store.into_nvm().into_inner();
            check(torn.clone(), &std::format!("{tear:?} tear at write {at}"));
            reboots += 1;
            // Lose power again during the recovery, at each of its writes.
            let mut recovery = TearingNvm::new(torn.clone(), None, tear);
            let recovered = TestStore::open(&mut recovery).map(|_| ());
            assert_eq!(recovered, Ok(()));
            for again in 0..recovery.writes() {
                let mut twice = TearingNvm::new(torn.clone(), Some(again), tear);
                assert!(TestStore::open(&mut twice).is_err());
                check(
                    twice.into_inner(),
                    &std::format!("{tear:?} tear at write {at}, then at recovery write {again}"),
                );
                reboots += 1;
            }
        }
    }
    println!("tear scenario {name}: {write_points} write points, {reboots} torn reboots checked");
    (write_points, reboots)
}

fn base_memory() -> Memory {
    let mut store = TestStore::open(Memory::default()).unwrap();
    store.write(0, b"applet A: token #1").unwrap();
    store.write(5 * PAGE, b"applet B: no token").unwrap();
    store.write(9 * PAGE, &[3]).unwrap(); // a try counter
    store.into_nvm()
}

#[test]
fn record_update_is_all_or_nothing() {
    let (points, _) = tear_everywhere("record update", &base_memory(), |s| {
        s.write(PAGE - 10, b"a record across two pages")
    });
    assert!(
        points >= 6,
        "two pages: images, descriptor, data pages, descriptor erase"
    );
}

#[test]
fn transfer_between_two_applets_is_all_or_nothing() {
    tear_everywhere("two-applet transfer", &base_memory(), |s| {
        s.begin()?;
        s.write(0, b"applet A: no token")?;
        s.write(5 * PAGE, b"applet B: token #1")?;
        s.commit()
    });
}

#[test]
fn try_counter_decrement_is_all_or_nothing() {
    tear_everywhere("try counter", &base_memory(), |s| s.write(9 * PAGE, &[2]));
}

/// Opens a transaction and changes as many pages as the journal holds (`DIRTY`, four).
fn begin_a_full_transaction(s: &mut TestStore<TearingNvm<Memory>>) -> Result<(), StoreError> {
    s.begin()?;
    for page in [0, 3, 5, 9] {
        s.write(page * PAGE + 7, &[page as u8; 40])?;
    }
    Ok(())
}

#[test]
fn full_journal_transaction_is_all_or_nothing() {
    tear_everywhere("four pages", &base_memory(), |s| {
        begin_a_full_transaction(s)?;
        s.commit()
    });
}

#[test]
fn write_now_beside_a_full_transaction_is_all_or_nothing() {
    tear_everywhere("write_now beside a transaction", &base_memory(), |s| {
        begin_a_full_transaction(s)?;
        // A try counter across two pages, committed at once; the transaction is then dropped.
        s.write_now(9 * PAGE - 1, &[2, 2])?;
        s.abort();
        Ok(())
    });
}
