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
    /// changed the same bytes, sees the new value too. It takes none of the transaction's page images: a write of
    /// up to `DIRTY` pages goes through the journal however full the transaction is.
    pub fn write_now(&mut self, address: usize, data: &[u8]) -> Result<(), StoreError> {
        if !self.in_transaction {
            return self.write(address, data);
        }
        self.commit_beside(address, data)?;
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
        let result = self.write_journal().and_then(|()| self.apply_journal());
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
        self.stage_images(address, data)
    }

    /// Copies `data` into the transaction's page images, loading pages it has not touched yet (BUFFER_FULL
    /// beyond `DIRTY` pages).
    fn stage_images(&mut self, address: usize, data: &[u8]) -> Result<(), StoreError> {
        let mut done = 0;
        while done < data.len() {
            let (page, offset, len) = self.segment(address + done, data.len() - done)?;
            self.dirty_image(page)?
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

    /// The RAM image of data page `page`, loaded on first use; BUFFER_FULL beyond `DIRTY` pages.
    fn dirty_image(&mut self, page: usize) -> Result<&mut [u8; PAGE], StoreError> {
        let position = match self.dirty.iter().position(|(p, _)| *p == page) {
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

    /// Steps 1 and 2: the transaction's images into the journal, then the descriptor that makes them count.
    fn write_journal(&mut self) -> Result<(), StoreError> {
        if self.dirty.is_empty() {
            return Ok(());
        }
        let (mut descriptor, mut digest) =
            Self::descriptor(self.dirty.iter().map(|(page, _)| *page))?;
        for (slot, (_, image)) in self.dirty.iter().enumerate() {
            self.nvm.erase_page(1 + slot)?;
            self.nvm.program((1 + slot) * PAGE, image)?;
            digest.update(image);
        }
        self.program_descriptor(&mut descriptor, digest.finalize())
    }

    /// Steps 3 and 4: every journaled image to its data page, then the descriptor erased.
    fn apply_journal(&mut self) -> Result<(), StoreError> {
        for (page, image) in &self.dirty {
            let physical = Self::JOURNAL_PAGES + page;
            self.nvm.erase_page(physical)?;
            self.nvm.program(physical * PAGE, image)?;
        }
        if !self.dirty.is_empty() {
            self.nvm.erase_page(0)?;
        }
        Ok(())
    }

    /// Commits one write, all or nothing, while a transaction is open: its page images go from the data pages
    /// straight to the journal through one page buffer (none of the transaction's images, no RAM of its own),
    /// then the descriptor, then the journal is applied as recovery applies it.
    fn commit_beside(&mut self, address: usize, data: &[u8]) -> Result<(), StoreError> {
        let Some(last_byte) = data.len().checked_sub(1) else {
            return Ok(());
        };
        let (first, _, _) = self.segment(address, data.len())?;
        let pages = first..(address + last_byte) / PAGE + 1;
        if pages.len() > DIRTY {
            return Err(StoreError::BufferFull);
        }
        let (mut descriptor, mut digest) = Self::descriptor(pages.clone())?;
        let mut image = [0u8; PAGE];
        for (slot, page) in pages.clone().enumerate() {
            self.nvm.read(self.data_address(page), &mut image)?;
            overlay(&mut image, page * PAGE, address, data);
            self.nvm.erase_page(1 + slot)?;
            self.nvm.program((1 + slot) * PAGE, &image)?;
            digest.update(&image);
        }
        self.program_descriptor(&mut descriptor, digest.finalize())?;
        self.replay_journal(pages)?;
        self.nvm.erase_page(0)?;
        Ok(())
    }

    /// A descriptor naming `targets` (magic, count, targets, unused target slots FF), with the CRC digest of its
    /// header begun: the journaled images go into the digest next, then [`Self::program_descriptor`] seals it.
    fn descriptor(
        targets: impl ExactSizeIterator<Item = usize>,
    ) -> Result<([u8; PAGE], crc::Digest<'static, u32>), StoreError> {
        let mut descriptor = [0xFFu8; PAGE];
        descriptor
            .get_mut(..4)
            .ok_or(StoreError::Geometry)?
            .copy_from_slice(&MAGIC);
        let count = u16::try_from(targets.len())
            .map_err(|_| StoreError::Geometry)?
            .to_be_bytes();
        descriptor
            .get_mut(4..6)
            .ok_or(StoreError::Geometry)?
            .copy_from_slice(&count);
        for (slot, page) in targets.enumerate() {
            let target = u16::try_from(page)
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
        Ok((descriptor, digest))
    }

    /// The end of step 2: the descriptor with its CRC (over its header and the journaled images) programmed.
    fn program_descriptor(
        &mut self,
        descriptor: &mut [u8; PAGE],
        crc: u32,
    ) -> Result<(), StoreError> {
        descriptor
            .get_mut(Self::DESCRIPTOR_LEN - 4..Self::DESCRIPTOR_LEN)
            .ok_or(StoreError::Geometry)?
            .copy_from_slice(&crc.to_be_bytes());
        self.nvm.program(
            0,
            descriptor
                .get(..Self::DESCRIPTOR_LEN)
                .ok_or(StoreError::Geometry)?,
        )?;
        Ok(())
    }

    /// Step 3 from the journal itself: the image in journal page 1, 2, … to data page `targets` in that order.
    fn replay_journal(&mut self, targets: impl Iterator<Item = usize>) -> Result<(), StoreError> {
        let mut image = [0u8; PAGE];
        for (slot, page) in targets.enumerate() {
            self.nvm.read((1 + slot) * PAGE, &mut image)?;
            let physical = Self::JOURNAL_PAGES + page;
            self.nvm.erase_page(physical)?;
            self.nvm.program(physical * PAGE, &image)?;
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
            self.replay_journal(pages.iter().copied())?;
        }
        self.nvm.erase_page(0)?;
        Ok(())
    }
}

/// Copies into `image`, the page that starts at data address `page_start`, the bytes of `data` (written at
/// `address`) that fall in it.
fn overlay(image: &mut [u8], page_start: usize, address: usize, data: &[u8]) {
    let start = address.max(page_start);
    let end = (address + data.len()).min(page_start + image.len());
    if start >= end {
        return;
    }
    if let (Some(destination), Some(source)) = (
        image.get_mut(start - page_start..end - page_start),
        data.get(start - address..end - address),
    ) {
        destination.copy_from_slice(source);
    }
}
