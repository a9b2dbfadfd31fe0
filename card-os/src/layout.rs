//! Where everything the card keeps lives in its persistent memory, and the owner numbers that divide the record
//! table. A leaf module: the numbers here are checked against each other at compile time.
//!
//! | store addresses | what |
//! |---|---|
//! | `0 .. REGISTRY_AREA` | the card life cycle and the registry ([`crate::persistence`]) |
//! | `REGISTRY_AREA ..` | the record table: [`RECORDS`] slots shared by every owner |
//!
//! Record owners: an applet instance's own records are under its owner number (below [`SD_OWNER_BIT`]); its
//! security domain's (static key, certificates, anchors) under the same number with that bit set, which the
//! applet's record space can never name; the card manager's domain is [`CARD_MANAGER_SD`]; [`FREE`] marks an
//! empty slot.

use crate::nvm::RamNvm;
use crate::records::RecordTable;
use crate::registry::MAX_INSTANCES;
use crate::store::Store;

/// Page size of the card's persistent store.
pub const STORE_PAGE: usize = 256;
/// Most pages one store transaction may change (the journal's page images).
pub const STORE_DIRTY: usize = 8;
/// Pages of persistent memory, journal included (32 KiB). Earlier cards had 56 pages: the addresses of
/// everything they kept are unchanged, and the pages added since read as erased, so as free record slots (a
/// host that keeps the memory in a file grows an older file by erased pages).
pub const STORE_PAGES: usize = 128;
/// The page count of the first card format (version 1 state files), whose records still load.
pub const STORE_PAGES_V1: usize = 56;
/// Journal pages at the start of the memory: a descriptor, then the page images.
pub const JOURNAL_PAGES: usize = 1 + STORE_DIRTY;
/// Bytes of data the store holds (addresses `0 .. STORE_CAPACITY`).
pub const STORE_CAPACITY: usize = (STORE_PAGES - JOURNAL_PAGES) * STORE_PAGE;

/// The default non-volatile memory: flash semantics in RAM (a card object lives as long as the process).
pub type CardNvm = RamNvm<{ STORE_PAGES * STORE_PAGE }, STORE_PAGE>;
/// The card's persistent store over memory `N`.
pub type CardStore<N> = Store<N, STORE_PAGE, STORE_DIRTY>;

/// Bytes reserved for the registry at the start of the store; the records follow.
pub const REGISTRY_AREA: usize = 1024;

/// Where applet records live, after the registry: 96 slots of 300 bytes. The first 32 are where the first
/// card format had them; the bank applet alone needs 25 for its 8 tokens (3 records each) and its account data.
pub const RECORDS: RecordTable = RecordTable {
    base: REGISTRY_AREA,
    slots: 96,
    slot_size: 300,
};

/// Record slots of the first card format (32, all within its 56 pages).
pub const RECORD_SLOTS_V1: usize = 32;

/// Largest record an applet can keep (bytes of data in one slot).
pub const MAX_RECORD: usize = RECORDS.max_record();

/// Set in the owner number of a security domain's records.
pub const SD_OWNER_BIT: u8 = 0x80;
/// The record owner of the card manager's security domain.
pub const CARD_MANAGER_SD: u8 = 0xFE;
/// The owner byte of a free record slot.
pub const FREE: u8 = 0xFF;

/// The record owner of the security domain of the instance whose own records are under `owner`.
pub const fn sd_owner(owner: u8) -> u8 {
    owner | SD_OWNER_BIT
}

const _: () = {
    // The record table fits the store, after the registry.
    assert!(RECORDS.base >= REGISTRY_AREA);
    assert!(RECORDS.base + RECORDS.slots * RECORDS.slot_size <= STORE_CAPACITY);
    // The first format's slots lie where they always did, inside its memory: an older card keeps its records.
    assert!(RECORD_SLOTS_V1 <= RECORDS.slots);
    assert!(
        RECORDS.base + RECORD_SLOTS_V1 * RECORDS.slot_size
            <= (STORE_PAGES_V1 - JOURNAL_PAGES) * STORE_PAGE
    );
    assert!(STORE_PAGES_V1 <= STORE_PAGES);
    // Every instance's owner number is below the domain bit, and its domain owner is neither the card
    // manager's nor a free slot.
    assert!(MAX_INSTANCES <= SD_OWNER_BIT as usize);
    assert!(sd_owner((MAX_INSTANCES - 1) as u8) < CARD_MANAGER_SD);
    assert!(CARD_MANAGER_SD & SD_OWNER_BIT != 0 && CARD_MANAGER_SD != FREE);
};
