//! The card's persistent memory: emulated flash with flash semantics, kept in a host file.
//!
//! The board has no flash controller QEMU models, so the memory is a region of the code SSRAM outside the
//! firmware image (`.nvm` in `memory.x`), written only the way flash is: a page is erased to `FF`, a program
//! clears bits (a bit that would go from 0 to 1 is refused, as a real controller would leave it). Every erase and
//! program is also written through to a host file at the same offset, synchronously, before the operation
//! returns: that file is the card's flash across restarts of QEMU, and the board's RAM copy survives a reset
//! of the card. A real chip swaps this module for its flash controller's driver behind the same [`Nvm`] trait.

use card_os::nvm::{Nvm, NvmError, flash_bytes};

use crate::host::HostFile;

/// The bytes of the region, in pages of `page_size`, mirrored at an offset in a host file (if there is one).
pub struct FlashNvm {
    bytes: &'static mut [u8],
    page_size: usize,
    mirror: Option<(HostFile, usize)>,
}

impl FlashNvm {
    /// The memory in `bytes`, loaded from the mirror: a new (empty) file gets erased pages written to it; a file
    /// that cannot be read is not used (the card runs without persistence rather than erase a card it could not
    /// read). Without a mirror the memory starts erased: QEMU's RAM is not flash that was erased.
    pub fn new(
        bytes: &'static mut [u8],
        page_size: usize,
        mirror: Option<(HostFile, usize)>,
    ) -> Self {
        debug_assert!(page_size > 0 && bytes.len().is_multiple_of(page_size));
        let mirror = match mirror {
            Some((file, offset)) if file.read_at(offset, bytes) => Some((file, offset)),
            Some((file, offset)) if file.len().is_some_and(|length| length <= offset) => {
                bytes.fill(0xFF);
                file.write_at(offset, bytes).then_some((file, offset))
            }
            Some(_) | None => {
                bytes.fill(0xFF);
                None
            }
        };
        Self {
            bytes,
            page_size,
            mirror,
        }
    }

    /// Whether the memory is kept in a host file.
    pub fn is_kept(&self) -> bool {
        self.mirror.is_some()
    }

    /// Writes what `start..start + bytes.len()` is about to hold to the file first: a write the file does not
    /// take fails as a power loss before the card's memory changes, so the two never disagree.
    fn mirror(&self, start: usize, bytes: &[u8]) -> Result<(), NvmError> {
        match &self.mirror {
            Some((file, offset)) if !file.write_at(offset + start, bytes) => {
                Err(NvmError::PowerLost)
            }
            _ => Ok(()),
        }
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
        flash_bytes::read(self.bytes, address, buf)
    }

    fn erase_page(&mut self, page: usize) -> Result<(), NvmError> {
        let range = flash_bytes::page(self.bytes.len(), self.page_size, page)?;
        let erased = [0xFFu8; 256];
        let mut at = range.start;
        while at < range.end {
            let chunk = (range.end - at).min(erased.len());
            self.mirror(at, erased.get(..chunk).ok_or(NvmError::OutOfRange)?)?;
            at += chunk;
        }
        self.bytes
            .get_mut(range)
            .ok_or(NvmError::OutOfRange)?
            .fill(0xFF);
        Ok(())
    }

    fn program(&mut self, address: usize, data: &[u8]) -> Result<(), NvmError> {
        let range = flash_bytes::program(self.bytes, self.page_size, address, data)?;
        self.mirror(range.start, data)?;
        self.bytes
            .get_mut(range)
            .ok_or(NvmError::OutOfRange)?
            .copy_from_slice(data);
        Ok(())
    }
}
