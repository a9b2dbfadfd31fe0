//! Persistent records owned by applet contexts: the persistent half of the firewall.
//!
//! A [`RecordTable`] is a run of fixed-size slots in the [`Store`]; each slot is `[owner, key, length (u16),
//! data]`, with owner `FF` meaning free. The runtime gives an applet a [`RecordSpace`] bound to the applet's own
//! owner number: every operation through it is for that owner, so an applet can neither name nor reach another
//! applet's records. Capacity is explicit: a record longer than a slot is [`RecordError::TooLarge`], and no free
//! slot is [`RecordError::Full`] (6A84). Each record write is one store write, so it is never torn; inside a store
//! transaction it commits or aborts with the rest.

use apdu_spec::StatusWord;

use crate::store::{StoreAccess, StoreError};

/// Slot header: owner, key, length.
const HEADER: usize = 4;
/// Owner byte of a free slot (erased flash reads FF).
const FREE: u8 = 0xFF;

/// Why a record operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// No record with that key for this owner (6A88).
    NotFound,
    /// No free slot left (6A84).
    Full,
    /// The record is longer than a slot holds (6A84: the card has no room for it).
    TooLarge,
    /// The caller's buffer is too small for the record (6F00: an applet bug).
    BufferTooSmall,
    /// The store failed (6581), or the transaction is full (BUFFER_FULL).
    Store(StoreError),
    /// A hand-over to a key the receiver already uses, or outside a shareable call (6985).
    Refused,
}

impl From<StoreError> for RecordError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<RecordError> for StatusWord {
    fn from(error: RecordError) -> Self {
        match error {
            RecordError::NotFound => StatusWord::REFERENCED_DATA_NOT_FOUND,
            RecordError::Full | RecordError::TooLarge => StatusWord::NOT_ENOUGH_MEMORY,
            RecordError::BufferTooSmall => StatusWord::UNKNOWN,
            RecordError::Store(StoreError::BufferFull) => StatusWord::NOT_ENOUGH_MEMORY,
            RecordError::Store(_) => StatusWord::MEMORY_FAILURE,
            RecordError::Refused => StatusWord::CONDITIONS_NOT_SATISFIED,
        }
    }
}

/// Where the records live in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordTable {
    /// Store address of the first slot.
    pub base: usize,
    /// Number of slots.
    pub slots: usize,
    /// Bytes per slot, header included.
    pub slot_size: usize,
}

impl RecordTable {
    /// Largest record a slot holds.
    pub const fn max_record(&self) -> usize {
        self.slot_size.saturating_sub(HEADER)
    }

    fn slot_address(&self, slot: usize) -> usize {
        self.base + slot * self.slot_size
    }

    fn header<S: StoreAccess + ?Sized>(
        &self,
        store: &S,
        slot: usize,
    ) -> Result<[u8; HEADER], RecordError> {
        let mut header = [0u8; HEADER];
        store.read(self.slot_address(slot), &mut header)?;
        Ok(header)
    }

    fn find<S: StoreAccess + ?Sized>(
        &self,
        store: &S,
        owner: u8,
        key: u8,
    ) -> Result<Option<usize>, RecordError> {
        for slot in 0..self.slots {
            let [slot_owner, slot_key, ..] = self.header(store, slot)?;
            if slot_owner == owner && slot_key == key {
                return Ok(Some(slot));
            }
        }
        Ok(None)
    }

    /// Frees every record of `owner` (its instance was deleted). Each slot is freed on its own write, so a
    /// power loss can leave some: the runtime calls this again before the owner number is reused.
    pub fn remove_all<S: StoreAccess + ?Sized>(
        &self,
        store: &mut S,
        owner: u8,
    ) -> Result<(), RecordError> {
        for slot in 0..self.slots {
            let [slot_owner, ..] = self.header(store, slot)?;
            if slot_owner == owner {
                store.write(self.slot_address(slot), &[FREE])?;
            }
        }
        Ok(())
    }

    /// Gives record `key` of `owner` to `receiver` as its record `receiver_key`: one write of the slot's owner
    /// and key bytes (part of the open store transaction, if any), the data stays where it is. Refused if the
    /// receiver already has a record `receiver_key`. Only the runtime names the two owners (the server of a
    /// shareable call and its stamped caller).
    pub fn hand_over<S: StoreAccess + ?Sized>(
        &self,
        store: &mut S,
        owner: u8,
        key: u8,
        receiver: u8,
        receiver_key: u8,
    ) -> Result<(), RecordError> {
        debug_assert!(owner != FREE && receiver != FREE);
        let slot = self.find(store, owner, key)?.ok_or(RecordError::NotFound)?;
        if self.find(store, receiver, receiver_key)?.is_some() {
            return Err(RecordError::Refused);
        }
        store.write(self.slot_address(slot), &[receiver, receiver_key])?;
        Ok(())
    }

    /// Slots in use and free.
    pub fn usage<S: StoreAccess + ?Sized>(&self, store: &S) -> Result<(usize, usize), RecordError> {
        let mut used = 0;
        for slot in 0..self.slots {
            let [owner, ..] = self.header(store, slot)?;
            if owner != FREE {
                used += 1;
            }
        }
        Ok((used, self.slots - used))
    }

    /// A view of the records of `owner` (only the runtime decides which owner a caller is).
    pub fn space<'a, S: StoreAccess + ?Sized>(
        &self,
        store: &'a mut S,
        owner: u8,
    ) -> RecordSpace<'a, S> {
        RecordSpace {
            store,
            table: *self,
            owner,
        }
    }
}

/// One applet's records: every operation is for the owner the runtime bound it to.
#[derive(Debug)]
pub struct RecordSpace<'a, S: ?Sized> {
    store: &'a mut S,
    table: RecordTable,
    owner: u8,
}

impl<S: StoreAccess + ?Sized> RecordSpace<'_, S> {
    /// Creates or replaces record `key` (inside the open store transaction, if any).
    pub fn put(&mut self, key: u8, data: &[u8]) -> Result<(), RecordError> {
        if data.len() > self.table.max_record() {
            return Err(RecordError::TooLarge);
        }
        let slot = match self.table.find(self.store, self.owner, key)? {
            Some(slot) => slot,
            None => self.first_free()?.ok_or(RecordError::Full)?,
        };
        let address = self.table.slot_address(slot);
        let [length_hi, length_lo] = u16::try_from(data.len())
            .map_err(|_| RecordError::TooLarge)?
            .to_be_bytes();
        let header = [self.owner, key, length_hi, length_lo];
        // Header and data in one transaction: the record appears whole or not at all.
        let own_transaction = !self.store.in_transaction();
        if own_transaction {
            self.store.begin()?;
        }
        let written = self
            .store
            .write(address, &header)
            .and_then(|()| self.store.write(address + HEADER, data));
        match written {
            Ok(()) if own_transaction => Ok(self.store.commit()?),
            Ok(()) => Ok(()),
            Err(error) => {
                if own_transaction {
                    self.store.abort();
                }
                Err(error.into())
            }
        }
    }

    fn first_free(&self) -> Result<Option<usize>, RecordError> {
        for slot in 0..self.table.slots {
            let [owner, ..] = self.table.header(self.store, slot)?;
            if owner == FREE {
                return Ok(Some(slot));
            }
        }
        Ok(None)
    }

    /// Reads record `key` into `buf`, returning its length.
    pub fn get(&self, key: u8, buf: &mut [u8]) -> Result<usize, RecordError> {
        let slot = self
            .table
            .find(self.store, self.owner, key)?
            .ok_or(RecordError::NotFound)?;
        let [_, _, hi, lo] = self.table.header(self.store, slot)?;
        let length = usize::from(u16::from_be_bytes([hi, lo]));
        let out = buf.get_mut(..length).ok_or(RecordError::BufferTooSmall)?;
        self.store
            .read(self.table.slot_address(slot) + HEADER, out)?;
        Ok(length)
    }

    /// Overwrites part of record `key` and commits it at once, even inside a transaction, which can neither
    /// include nor undo it (for try counters). The record keeps its length.
    pub fn write_now(&mut self, key: u8, offset: usize, data: &[u8]) -> Result<(), RecordError> {
        let slot = self
            .table
            .find(self.store, self.owner, key)?
            .ok_or(RecordError::NotFound)?;
        let [_, _, hi, lo] = self.table.header(self.store, slot)?;
        let end = offset
            .checked_add(data.len())
            .ok_or(RecordError::TooLarge)?;
        if end > usize::from(u16::from_be_bytes([hi, lo])) {
            return Err(RecordError::TooLarge);
        }
        self.store
            .write_now(self.table.slot_address(slot) + HEADER + offset, data)?;
        Ok(())
    }

    /// Deletes record `key`.
    pub fn remove(&mut self, key: u8) -> Result<(), RecordError> {
        let slot = self
            .table
            .find(self.store, self.owner, key)?
            .ok_or(RecordError::NotFound)?;
        self.store.write(self.table.slot_address(slot), &[FREE])?;
        Ok(())
    }

    /// The owner number this space is bound to.
    pub fn owner(&self) -> u8 {
        self.owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nvm::RamNvm;
    use crate::store::Store;

    type Memory = RamNvm<{ 24 * 128 }, 128>;
    type TestStore = Store<Memory, 128, 4>;
    const TABLE: RecordTable = RecordTable {
        base: 64,
        slots: 6,
        slot_size: 100,
    };

    #[test]
    fn owners_see_only_their_own_records() {
        let mut store = TestStore::open(Memory::default()).unwrap();
        TABLE.space(&mut store, 1).put(7, b"bank token").unwrap();
        TABLE.space(&mut store, 2).put(7, b"credit data").unwrap();
        let mut buf = [0u8; 96];
        let n = TABLE.space(&mut store, 1).get(7, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"bank token");
        let n = TABLE.space(&mut store, 2).get(7, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"credit data");
        // Owner 3 reaches neither, with the same key.
        assert_eq!(
            TABLE.space(&mut store, 3).get(7, &mut buf),
            Err(RecordError::NotFound)
        );
        assert_eq!(
            TABLE.space(&mut store, 3).remove(7),
            Err(RecordError::NotFound)
        );
        // Replacing keeps one slot; removing frees it.
        TABLE.space(&mut store, 1).put(7, b"second token").unwrap();
        assert_eq!(TABLE.usage(&store), Ok((2, 4)));
        TABLE.space(&mut store, 1).remove(7).unwrap();
        assert_eq!(
            TABLE.space(&mut store, 1).get(7, &mut buf),
            Err(RecordError::NotFound)
        );
        assert_eq!(TABLE.space(&mut store, 2).get(7, &mut buf), Ok(11));
    }

    #[test]
    fn capacity_is_accounted() {
        let mut store = TestStore::open(Memory::default()).unwrap();
        let mut space = TABLE.space(&mut store, 4);
        assert_eq!(space.put(0, &[0; 97]), Err(RecordError::TooLarge));
        space.put(0, &[0; 96]).unwrap();
        for key in 1..6 {
            space.put(key, &[key; 10]).unwrap();
        }
        assert_eq!(space.put(6, &[1]), Err(RecordError::Full));
        assert_eq!(
            StatusWord::from(RecordError::Full),
            StatusWord::NOT_ENOUGH_MEMORY
        );
        let mut small = [0u8; 4];
        assert_eq!(space.get(1, &mut small), Err(RecordError::BufferTooSmall));
        TABLE.remove_all(&mut store, 4).unwrap();
        assert_eq!(TABLE.usage(&store), Ok((0, 6)));
    }

    #[test]
    fn a_hand_over_moves_the_record_and_joins_the_transaction() {
        let mut store = TestStore::open(Memory::default()).unwrap();
        TABLE.space(&mut store, 1).put(3, b"token part").unwrap();
        TABLE.space(&mut store, 2).put(9, b"mine").unwrap();
        let mut buf = [0u8; 96];
        // Not onto a key the receiver uses, and not a record the giver lacks.
        assert_eq!(
            TABLE.hand_over(&mut store, 1, 3, 2, 9),
            Err(RecordError::Refused)
        );
        assert_eq!(
            TABLE.hand_over(&mut store, 1, 4, 2, 5),
            Err(RecordError::NotFound)
        );
        // Aborted: still the giver's.
        store.begin().unwrap();
        TABLE.hand_over(&mut store, 1, 3, 2, 5).unwrap();
        assert_eq!(TABLE.space(&mut store, 2).get(5, &mut buf), Ok(10));
        store.abort();
        assert_eq!(TABLE.space(&mut store, 1).get(3, &mut buf), Ok(10));
        assert_eq!(
            TABLE.space(&mut store, 2).get(5, &mut buf),
            Err(RecordError::NotFound)
        );
        // Committed: the receiver's, under its key, the same bytes; the slot count is unchanged.
        store.begin().unwrap();
        TABLE.hand_over(&mut store, 1, 3, 2, 5).unwrap();
        store.commit().unwrap();
        assert_eq!(
            TABLE.space(&mut store, 1).get(3, &mut buf),
            Err(RecordError::NotFound)
        );
        assert_eq!(TABLE.space(&mut store, 2).get(5, &mut buf), Ok(10));
        assert_eq!(&buf[..10], b"token part");
        assert_eq!(TABLE.usage(&store), Ok((2, 4)));
    }

    #[test]
    fn records_follow_the_store_transaction_and_survive_reboot() {
        let mut store = TestStore::open(Memory::default()).unwrap();
        store.begin().unwrap();
        TABLE.space(&mut store, 1).put(1, b"moved").unwrap();
        store.abort();
        let mut buf = [0u8; 96];
        assert_eq!(
            TABLE.space(&mut store, 1).get(1, &mut buf),
            Err(RecordError::NotFound)
        );
        store.begin().unwrap();
        TABLE.space(&mut store, 1).put(1, b"token").unwrap();
        TABLE.space(&mut store, 2).put(1, b"receipt").unwrap();
        store.commit().unwrap();
        let mut rebooted = TestStore::open(store.into_nvm()).unwrap();
        assert_eq!(TABLE.space(&mut rebooted, 2).get(1, &mut buf), Ok(7));
        assert_eq!(&buf[..7], b"receipt");
    }
}
