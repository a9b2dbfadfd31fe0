//! Journaled persistent store: byte-addressed data on top of page flash ([`Nvm`]), where every write and every
//! transaction is all-or-nothing across power loss.
//!
//! **Layout.** The first `1 + DIRTY` pages are the journal (a descriptor page, then `DIRTY` page images); the rest
//! hold the data, addressed from 0 to [`Store::capacity`].
//!
//! **Transactions** (Java Card style, one level): [`Store::begin`], writes, then [`Store::commit`] or
//! [`Store::abort`]. Writes inside a transaction go to page images in RAM (at most `DIRTY` pages: one more is
//! [`StoreError::BufferFull`], the BUFFER_FULL of Java Card); reads see them. A write outside a transaction is a
//! transaction of its own, so no single write is ever torn.
//!
//! **Commit** (a write-ahead journal of page images):
//! 1. each new page image is programmed into a journal page;
//! 2. the descriptor is programmed: magic, the target pages, and a CRC-32 over all of it and the images. Once it is
//!    complete and valid the transaction counts as done;
//! 3. each target data page is erased and programmed with its image;
//! 4. the descriptor page is erased.
//!
//! **Recovery** ([`Store::open`], at every power-on): a valid descriptor means step 3 may have been cut short, so
//! every image is written again (doing it twice changes nothing) and the descriptor erased; an invalid one (a
//! descriptor write or erase that was cut short) is erased and the data pages, untouched, stay as they were.
//! A power loss during recovery is recovered the same way at the next power-on. So after a power loss at any
//! write, the data is exactly as before the transaction or exactly as after it.

use heapless::Vec;

use crate::nvm::{Nvm, NvmError};

/// Marks a descriptor; the digit is the journal format version.
const MAGIC: [u8; 4] = *b"LCJ1";
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Why a store operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The memory failed (a power loss under test): the card answers 6581.
    Nvm(NvmError),
    /// The memory's page size or page count does not fit this store's parameters.
    Geometry,
    /// An address beyond the data area.
    OutOfRange,
    /// `begin` inside a transaction (Java Card allows one level).
    NestedTransaction,
    /// `commit` without a transaction.
    NoTransaction,
    /// The transaction would change more pages than the journal holds.
    BufferFull,
}

impl From<NvmError> for StoreError {
    fn from(error: NvmError) -> Self {
        Self::Nvm(error)
    }
}

/// What applets and the PIN need of a store, without its memory type or geometry: the runtime hands it out
/// as `&mut dyn StoreAccess`, so the applet API does not depend on the card's memory.
pub trait StoreAccess {
    /// Reads data, as the open transaction (if any) has changed it.
    fn read(&self, address: usize, buf: &mut [u8]) -> Result<(), StoreError>;
    /// Writes data: inside a transaction at its commit, otherwise at once and atomically.
    fn write(&mut self, address: usize, data: &[u8]) -> Result<(), StoreError>;
    /// Writes and commits at once even inside a transaction.
    fn write_now(&mut self, address: usize, data: &[u8]) -> Result<(), StoreError>;
    /// Opens a transaction.
    fn begin(&mut self) -> Result<(), StoreError>;
    /// Commits the open transaction.
    fn commit(&mut self) -> Result<(), StoreError>;
    /// Drops the open transaction.
    fn abort(&mut self);
    /// Whether a transaction is open.
    fn in_transaction(&self) -> bool;
}

impl<N: Nvm, const PAGE: usize, const DIRTY: usize> StoreAccess for Store<N, PAGE, DIRTY> {
    fn read(&self, address: usize, buf: &mut [u8]) -> Result<(), StoreError> {
        Store::read(self, address, buf)
    }
    fn write(&mut self, address: usize, data: &[u8]) -> Result<(), StoreError> {
        Store::write(self, address, data)
    }
    fn write_now(&mut self, address: usize, data: &[u8]) -> Result<(), StoreError> {
        Store::write_now(self, address, data)
    }
    fn begin(&mut self) -> Result<(), StoreError> {
        Store::begin(self)
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        Store::commit(self)
    }
    fn abort(&mut self) {
        Store::abort(self)
    }
    fn in_transaction(&self) -> bool {
        Store::in_transaction(self)
    }
}

/// A journaled store over `N`, with `PAGE`-byte pages and transactions of at most `DIRTY` pages.
#[derive(Debug)]
pub struct Store<N, const PAGE: usize, const DIRTY: usize> {
    nvm: N,
    /// Page images changed by the open transaction: (data page index, image).
    dirty: Vec<(usize, [u8; PAGE]), DIRTY>,
    in_transaction: bool,
}

impl<N: Nvm, const PAGE: usize, const DIRTY: usize> Store<N, PAGE, DIRTY> {
    const JOURNAL_PAGES: usize = 1 + DIRTY;
    /// Descriptor: magic, count (u16), DIRTY targets (u16 each), CRC-32.
    const DESCRIPTOR_LEN: usize = 4 + 2 + 2 * DIRTY + 4;

    /// Opens the store on `nvm`, finishing or discarding a transaction a power loss interrupted.
    pub fn open(nvm: N) -> Result<Self, StoreError> {
        let mut slot = None;
        Self::open_in(&mut slot, nvm)?;
        slot.ok_or(StoreError::Geometry)
    }

    /// [`Self::open`] in place, into `slot` (left `None` on an error): a store carries `DIRTY` page images,
    /// which a card's small stack should not hold while they are moved.
    pub fn open_in(slot: &mut Option<Self>, nvm: N) -> Result<&mut Self, StoreError> {
        *slot = None;
        if nvm.page_size() != PAGE
            || nvm.page_count() <= Self::JOURNAL_PAGES
            || Self::DESCRIPTOR_LEN > PAGE
        {
            return Err(StoreError::Geometry);
        }
        let store = slot.insert(Self {
            nvm,
            dirty: Vec::new(),
            in_transaction: false,
        });
        if let Err(error) = store.recover() {
            *slot = None;
            return Err(error);
        }
        slot.as_mut().ok_or(StoreError::Geometry)
    }

    /// Hands the memory back (the card's power goes off; tests reboot from it).
    pub fn into_nvm(self) -> N {
        self.nvm
    }

    /// Bytes of data the store holds.
    pub fn capacity(&self) -> usize {
        (self.nvm.page_count() - Self::JOURNAL_PAGES) * PAGE
    }

    /// Whether a transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    /// Reads data, as the open transaction (if any) has changed it.
    pub fn read(&self, address: usize, buf: &mut [u8]) -> Result<(), StoreError> {
        let mut done = 0;
        while done < buf.len() {
            let (page, offset, len) = self.segment(address + done, buf.len() - done)?;
            let out = buf
                .get_mut(done..done + len)
                .ok_or(StoreError::OutOfRange)?;
            match self.dirty.iter().find(|(p, _)| *p == page) {
                Some((_, image)) => out.copy_from_slice(
                    image
                        .get(offset..offset + len)
                        .ok_or(StoreError::OutOfRange)?,
                ),
                None => self.nvm.read(self.data_address(page) + offset, out)?,
            }
            done += len;
        }
        Ok(())
    }

    /// Writes data: inside a transaction it waits for the commit; outside, it is committed at once, atomically.
    pub fn write(&mut self, address: usize, data: &[u8]) -> Result<(), StoreError> {
        if self.in_transaction {
            return self.stage(address, data);
        }
        self.begin()?;
        match self.stage(address, data) {
            Ok(()) => self.commit(),
            Err(error) => {
                self.abort();
                Err(error)
            }
        }
    }

    /// Writes data and commits it at once even while a transaction is open, which neither includes it nor can
    /// undo it (Java Card's non-atomic updates, used for PIN try counters). The open transaction, if it already
    /// changed the same bytes, sees the new value too. Needs a free page image in the transaction's budget for
    /// each page the write touches.
    pub fn write_now(&mut self, address: usize, data: &[u8]) -> Result<(), StoreError> {
        if !self.in_transaction {
            return self.write(address, data);
        }
        // Commit the write alone, in page images after the transaction's (loaded from the memory, not from the
        // transaction's images): journal and apply those only, then drop them. In place: the transaction's
        // images are never moved.
        let held = self.dirty.len();
        self.segment(address, data.len())?;
        let result = self
            .copy_to_images_from(held, address, data)
            .and_then(|()| self.write_journal(held))
            .and_then(|()| self.apply_journal(held));
        self.dirty.truncate(held);
        result?;
        // Pages the transaction holds in RAM must carry the new bytes too, or its commit would undo them.
        self.copy_to_images(address, data)
    }

    /// Opens a transaction.
    pub fn begin(&mut self) -> Result<(), StoreError> {
        if self.in_transaction {
            return Err(StoreError::NestedTransaction);
        }
        self.in_transaction = true;
        Ok(())
    }

    /// Drops every change of the open transaction (nothing if none is open).
    pub fn abort(&mut self) {
        self.dirty.clear();
        self.in_transaction = false;
    }

    /// Makes every change of the open transaction persistent, all or nothing.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if !self.in_transaction {
            return Err(StoreError::NoTransaction);
        }
        let result = self.write_journal(0).and_then(|()| self.apply_journal(0));
        self.dirty.clear();
        self.in_transaction = false;
        result
    }

    /// The data page, offset in it and length of the part of `address..address + len` in its first page.
    fn segment(&self, address: usize, len: usize) -> Result<(usize, usize, usize), StoreError> {
        let end = address.checked_add(len).ok_or(StoreError::OutOfRange)?;
        if end > self.capacity() {
            return Err(StoreError::OutOfRange);
        }
        let (page, offset) = (address / PAGE, address % PAGE);
        Ok((page, offset, len.min(PAGE - offset)))
    }

    fn data_address(&self, page: usize) -> usize {
        (Self::JOURNAL_PAGES + page) * PAGE
    }

    fn stage(&mut self, address: usize, data: &[u8]) -> Result<(), StoreError> {
        // Check the whole range first, so a refused write stages nothing.
        self.segment(address, data.len())?;
        self.copy_to_images_from(0, address, data)
    }

    /// Copies `data` into the page images from position `from` on, loading pages they do not hold yet
    /// (BUFFER_FULL beyond `DIRTY` images in all).
    fn copy_to_images_from(
        &mut self,
        from: usize,
        address: usize,
        data: &[u8],
    ) -> Result<(), StoreError> {
        let mut done = 0;
        while done < data.len() {
            let (page, offset, len) = self.segment(address + done, data.len() - done)?;
            self.dirty_image(from, page)?
                .get_mut(offset..offset + len)
                .ok_or(StoreError::OutOfRange)?
                .copy_from_slice(data.get(done..done + len).ok_or(StoreError::OutOfRange)?);
            done += len;
        }
        Ok(())
    }

    /// Copies `data` into the page images the transaction already holds (pages it has not touched are left).
    fn copy_to_images(&mut self, address: usize, data: &[u8]) -> Result<(), StoreError> {
        let mut done = 0;
        while done < data.len() {
            let (page, offset, len) = self.segment(address + done, data.len() - done)?;
            if let Some((_, image)) = self.dirty.iter_mut().find(|(p, _)| *p == page) {
                image
                    .get_mut(offset..offset + len)
                    .ok_or(StoreError::OutOfRange)?
                    .copy_from_slice(data.get(done..done + len).ok_or(StoreError::OutOfRange)?);
            }
            done += len;
        }
        Ok(())
    }

    /// The RAM image of data page `page` among the images from position `from` on, loaded on first use;
    /// BUFFER_FULL beyond `DIRTY` images.
    fn dirty_image(&mut self, from: usize, page: usize) -> Result<&mut [u8; PAGE], StoreError> {
        let found = self
            .dirty
            .iter()
            .skip(from)
            .position(|(p, _)| *p == page)
            .map(|position| from + position);
        let position = match found {
            Some(position) => position,
            None => {
                // Pushed first and filled in place: a page image never crosses the stack.
                self.dirty
                    .push((page, [0u8; PAGE]))
                    .map_err(|_| StoreError::BufferFull)?;
                let address = self.data_address(page);
                let (_, image) = self.dirty.last_mut().ok_or(StoreError::BufferFull)?;
                if let Err(error) = self.nvm.read(address, image) {
                    self.dirty.pop();
                    return Err(error.into());
                }
                self.dirty.len() - 1
            }
        };
        self.dirty
            .get_mut(position)
            .map(|(_, image)| image)
            .ok_or(StoreError::BufferFull)
    }

    /// Steps 1 and 2: the images from position `from` on into the journal, then the descriptor that makes them
    /// count.
    fn write_journal(&mut self, from: usize) -> Result<(), StoreError> {
        let images = self.dirty.get(from..).unwrap_or_default();
        if images.is_empty() {
            return Ok(());
        }
        // Descriptor: magic, count, targets (unused target slots stay FF), then the CRC.
        let mut descriptor = [0xFFu8; PAGE];
        descriptor
            .get_mut(..4)
            .ok_or(StoreError::Geometry)?
            .copy_from_slice(&MAGIC);
        let count = u16::try_from(images.len())
            .map_err(|_| StoreError::Geometry)?
            .to_be_bytes();
        descriptor
            .get_mut(4..6)
            .ok_or(StoreError::Geometry)?
            .copy_from_slice(&count);
        for (slot, (page, image)) in images.iter().enumerate() {
            self.nvm.erase_page(1 + slot)?;
            self.nvm.program((1 + slot) * PAGE, image)?;
            let target = u16::try_from(*page)
                .map_err(|_| StoreError::Geometry)?
                .to_be_bytes();
            descriptor
                .get_mut(6 + 2 * slot..8 + 2 * slot)
                .ok_or(StoreError::Geometry)?
                .copy_from_slice(&target);
        }
        let mut digest = CRC32.digest();
        digest.update(
            descriptor
                .get(..Self::DESCRIPTOR_LEN - 4)
                .ok_or(StoreError::Geometry)?,
        );
        for (_, image) in images {
            digest.update(image);
        }
        let crc = digest.finalize().to_be_bytes();
        descriptor
            .get_mut(Self::DESCRIPTOR_LEN - 4..Self::DESCRIPTOR_LEN)
            .ok_or(StoreError::Geometry)?
            .copy_from_slice(&crc);
        self.nvm.program(
            0,
            descriptor
                .get(..Self::DESCRIPTOR_LEN)
                .ok_or(StoreError::Geometry)?,
        )?;
        Ok(())
    }

    /// Steps 3 and 4: every journaled image (from position `from` on) to its data page, then the descriptor
    /// erased.
    fn apply_journal(&mut self, from: usize) -> Result<(), StoreError> {
        let images = self.dirty.get(from..).unwrap_or_default();
        for (page, image) in images {
            let physical = Self::JOURNAL_PAGES + page;
            self.nvm.erase_page(physical)?;
            self.nvm.program(physical * PAGE, image)?;
        }
        if !images.is_empty() {
            self.nvm.erase_page(0)?;
        }
        Ok(())
    }

    /// Reads the descriptor: `Some(targets)` when it is complete and its CRC matches the journaled images.
    fn valid_journal(&self) -> Result<Option<Vec<usize, DIRTY>>, StoreError> {
        let mut descriptor = [0u8; PAGE];
        self.nvm.read(0, &mut descriptor)?;
        let Some((header, rest)) = descriptor.split_at_checked(Self::DESCRIPTOR_LEN - 4) else {
            return Ok(None);
        };
        let (Some(magic), Some(count), Some(targets), Some(crc)) = (
            header.get(..4),
            header.get(4..6),
            header.get(6..),
            rest.get(..4),
        ) else {
            return Ok(None);
        };
        let count = usize::from(u16::from_be_bytes(
            count.try_into().map_err(|_| StoreError::Geometry)?,
        ));
        if magic != MAGIC || count == 0 || count > DIRTY {
            return Ok(None);
        }
        let data_pages = self.nvm.page_count() - Self::JOURNAL_PAGES;
        let mut pages = Vec::new();
        let mut digest = CRC32.digest();
        digest.update(header);
        let mut image = [0u8; PAGE];
        for (slot, target) in targets.chunks_exact(2).take(count).enumerate() {
            let page = usize::from(u16::from_be_bytes(
                target.try_into().map_err(|_| StoreError::Geometry)?,
            ));
            if page >= data_pages || pages.push(page).is_err() {
                return Ok(None);
            }
            self.nvm.read((1 + slot) * PAGE, &mut image)?;
            digest.update(&image);
        }
        let expected = u32::from_be_bytes(crc.try_into().map_err(|_| StoreError::Geometry)?);
        Ok((digest.finalize() == expected).then_some(pages))
    }

    fn recover(&mut self) -> Result<(), StoreError> {
        let mut first = [0u8; PAGE];
        self.nvm.read(0, &mut first)?;
        if first.iter().all(|b| *b == 0xFF) {
            return Ok(());
        }
        if let Some(pages) = self.valid_journal()? {
            let mut image = [0u8; PAGE];
            for (slot, page) in pages.iter().enumerate() {
                self.nvm.read((1 + slot) * PAGE, &mut image)?;
                let physical = Self::JOURNAL_PAGES + page;
                self.nvm.erase_page(physical)?;
                self.nvm.program(physical * PAGE, &image)?;
            }
        }
        self.nvm.erase_page(0)?;
        Ok(())
    }
}
