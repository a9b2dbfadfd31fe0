//! The card's persistent memory: emulated flash with flash semantics, kept in a host file.
//!
//! The board has no flash controller QEMU models, so the memory is a region of the code SSRAM outside the
//! firmware image (`.nvm` in `memory.x`), written only the way flash is: a page is erased to `FF`, a program
//! clears bits (a bit that would go from 0 to 1 is refused, as a real controller would leave it). Every erase and
//! program is also written through to a host file at the same offset, synchronously, before the operation
//! returns: that file is the card's flash across restarts of QEMU, and the board's RAM copy survives a reset
//! of the card. A real chip swaps this module for its flash controller's driver behind the same [`Nvm`] trait.

use card_os::nvm::{Nvm, NvmError};

use crate::host::HostFile;

/// The bytes of the region, in pages of `page_size`, mirrored at `file_offset` in `mirror` (if there is one).
pub struct FlashNvm {
    bytes: &'static mut [u8],
    page_size: usize,
    mirror: Option<(HostFile, usize)>,
}

impl FlashNvm {
    /// The memory in `bytes`; with a mirror, its content is loaded from the file first (a file too short, a new
    /// one, is given erased pages); without one, it starts erased.
    pub fn new(
        bytes: &'static mut [u8],
        page_size: usize,
        mirror: Option<(HostFile, usize)>,
    ) -> Self {
        debug_assert!(page_size > 0 && bytes.len().is_multiple_of(page_size));
        let flash = Self {
            bytes,
            page_size,
            mirror,
        };
        match mirror {
            Some((file, offset)) if file.read_at(offset, flash.bytes) => {}
            Some((file, offset)) => {
                flash.bytes.fill(0xFF);
                // A file that cannot be written fails the first write the card makes, which says so.
                let _ = file.write_at(offset, flash.bytes);
            }
            // Without a file the memory is new at every start: QEMU's RAM is not flash that was erased.
            None => flash.bytes.fill(0xFF),
        }
        flash
    }

    /// Writes `range` through to the file.
    fn mirror(&self, start: usize, end: usize) -> Result<(), NvmError> {
        let Some((file, offset)) = self.mirror else {
            return Ok(());
        };
        let bytes = self.bytes.get(start..end).ok_or(NvmError::OutOfRange)?;
        // The card cannot go on as if a write it cannot keep had happened.
        if file.write_at(offset + start, bytes) {
            Ok(())
        } else {
            Err(NvmError::PowerLost)
        }
    }

    /// The range of a write at `address` of `len` bytes, within one page.
    fn page_range(&self, address: usize, len: usize) -> Result<(usize, usize), NvmError> {
        let end = address.checked_add(len).ok_or(NvmError::OutOfRange)?;
        let same_page = len == 0 || address / self.page_size == (end - 1) / self.page_size;
        if end > self.bytes.len() || !same_page {
            return Err(NvmError::OutOfRange);
        }
        Ok((address, end))
    }
}

impl Nvm for FlashNvm {
    fn page_size(&self) -> usize {
        self.page_size
    }

    fn page_count(&self) -> usize {
        self.bytes.len() / self.page_size
    }

    fn read(&self, address: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        let end = address.checked_add(buf.len()).ok_or(NvmError::OutOfRange)?;
        buf.copy_from_slice(self.bytes.get(address..end).ok_or(NvmError::OutOfRange)?);
        Ok(())
    }

    fn erase_page(&mut self, page: usize) -> Result<(), NvmError> {
        let start = page
            .checked_mul(self.page_size)
            .ok_or(NvmError::OutOfRange)?;
        let (start, end) = self.page_range(start, self.page_size)?;
        self.bytes
            .get_mut(start..end)
            .ok_or(NvmError::OutOfRange)?
            .fill(0xFF);
        self.mirror(start, end)
    }

    fn program(&mut self, address: usize, data: &[u8]) -> Result<(), NvmError> {
        let (start, end) = self.page_range(address, data.len())?;
        let target = self.bytes.get_mut(start..end).ok_or(NvmError::OutOfRange)?;
        if target.iter().zip(data).any(|(old, new)| old & new != *new) {
            return Err(NvmError::NotErased);
        }
        target.copy_from_slice(data);
        self.mirror(start, end)
    }
}
