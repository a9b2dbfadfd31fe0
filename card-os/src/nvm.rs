//! Non-volatile memory as the card's flash presents it: pages that are erased as a whole (every byte becomes
//! `FF`) and programmed by clearing bits (a programmed byte is the AND of what was there and what is written).
//! Any erase or program can be interrupted by a power loss, leaving the page partly written.
//!
//! * [`Nvm`]: the backend trait the journaled store ([`crate::store`]) runs on;
//! * [`flash_bytes`]: the checks of flash semantics over a memory kept as bytes, for every backend that keeps one
//!   (in RAM, mirrored in a file, or in a firmware's emulated flash);
//! * [`RamNvm`]: flash semantics in RAM, for tests and the in-process card;
//! * [`TearingNvm`]: wraps a backend and cuts the power at the k-th erase or program, leaving that page half
//!   written or filled with garbage, so tests can tear at every write point.

/// Why an NVM operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NvmError {
    /// The address range is outside the memory or crosses a page boundary.
    OutOfRange,
    /// Programming would set a bit that is 0 (flash needs an erase first): a bug in the caller.
    NotErased,
    /// Power was lost during or before this operation (only [`TearingNvm`] reports it).
    PowerLost,
}

impl core::fmt::Display for NvmError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::OutOfRange => "address outside the memory or across a page",
            Self::NotErased => "programming would set a bit that is not erased",
            Self::PowerLost => "power lost during the write",
        })
    }
}

impl core::error::Error for NvmError {}

/// A page-erasable, bit-clearing memory.
pub trait Nvm {
    /// Bytes per erase page.
    fn page_size(&self) -> usize;
    /// Number of pages.
    fn page_count(&self) -> usize;
    /// Reads `buf.len()` bytes at `address`.
    fn read(&self, address: usize, buf: &mut [u8]) -> Result<(), NvmError>;
    /// Sets every byte of page `page` to `FF`.
    fn erase_page(&mut self, page: usize) -> Result<(), NvmError>;
    /// Programs `data` at `address` (within one page): each byte becomes `old & new`, and a bit that would go
    /// from 0 to 1 is [`NvmError::NotErased`].
    fn program(&mut self, address: usize, data: &[u8]) -> Result<(), NvmError>;
}

impl<N: Nvm + ?Sized> Nvm for &mut N {
    fn page_size(&self) -> usize {
        (**self).page_size()
    }
    fn page_count(&self) -> usize {
        (**self).page_count()
    }
    fn read(&self, address: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        (**self).read(address, buf)
    }
    fn erase_page(&mut self, page: usize) -> Result<(), NvmError> {
        (**self).erase_page(page)
    }
    fn program(&mut self, address: usize, data: &[u8]) -> Result<(), NvmError> {
        (**self).program(address, data)
    }
}

/// The byte range of a write, checked to lie within one page of a memory of `size` bytes.
fn page_range(
    address: usize,
    len: usize,
    page_size: usize,
    size: usize,
) -> Result<core::ops::Range<usize>, NvmError> {
    let end = address.checked_add(len).ok_or(NvmError::OutOfRange)?;
    if end > size || page_size == 0 || (len > 0 && address / page_size != (end - 1) / page_size) {
        return Err(NvmError::OutOfRange);
    }
    Ok(address..end)
}

/// Flash semantics over a memory kept as a byte slice: what each operation may touch, checked. A backend applies
/// the answer to its bytes (and to wherever else it keeps them).
pub mod flash_bytes {
    use super::{NvmError, page_range};
    use core::ops::Range;

    /// Copies `buf.len()` bytes at `address` of `bytes` into `buf`.
    pub fn read(bytes: &[u8], address: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        let end = address.checked_add(buf.len()).ok_or(NvmError::OutOfRange)?;
        buf.copy_from_slice(bytes.get(address..end).ok_or(NvmError::OutOfRange)?);
        Ok(())
    }

    /// The bytes of page `page` in a memory of `size` bytes.
    pub fn page(size: usize, page_size: usize, page: usize) -> Result<Range<usize>, NvmError> {
        let start = page.checked_mul(page_size).ok_or(NvmError::OutOfRange)?;
        page_range(start, page_size, page_size, size)
    }

    /// Where programming `data` at `address` goes: within one page, and setting no bit that is 0
    /// ([`NvmError::NotErased`]). Those bytes then hold exactly `data`.
    pub fn program(
        bytes: &[u8],
        page_size: usize,
        address: usize,
        data: &[u8],
    ) -> Result<Range<usize>, NvmError> {
        let range = page_range(address, data.len(), page_size, bytes.len())?;
        let target = bytes.get(range.clone()).ok_or(NvmError::OutOfRange)?;
        if target.iter().zip(data).any(|(old, new)| old & new != *new) {
            return Err(NvmError::NotErased);
        }
        Ok(range)
    }
}

/// The header of a card state file: the format a host keeps a card's memory in (`emulator::file_nvm`), which the
/// firmware also uses for the host file behind its flash. All numbers big-endian:
/// magic (8) | format version (2) | reserved, 0 (2) | page size (4) | page count (4), then the memory.
pub mod state_file {
    /// Identifies a linkcard card state file.
    pub const MAGIC: [u8; 8] = *b"LCNVM\0\0\0";
    /// The format version written.
    pub const VERSION: u16 = 1;
    /// Where the memory starts.
    pub const HEADER_LEN: usize = 20;

    /// What a header says.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Header {
        pub version: u16,
        pub page_size: usize,
        pub pages: usize,
    }

    /// The header's fields; `None` when the magic is not a card state file's.
    pub fn parse(header: &[u8; HEADER_LEN]) -> Option<Header> {
        let [
            m0,
            m1,
            m2,
            m3,
            m4,
            m5,
            m6,
            m7,
            v0,
            v1,
            _,
            _,
            s0,
            s1,
            s2,
            s3,
            p0,
            p1,
            p2,
            p3,
        ] = *header;
        if [m0, m1, m2, m3, m4, m5, m6, m7] != MAGIC {
            return None;
        }
        Some(Header {
            version: u16::from_be_bytes([v0, v1]),
            page_size: u32::from_be_bytes([s0, s1, s2, s3]) as usize,
            pages: u32::from_be_bytes([p0, p1, p2, p3]) as usize,
        })
    }

    /// The header of a memory of `pages` pages of `page_size` bytes, at [`VERSION`].
    pub fn encode(page_size: usize, pages: usize) -> [u8; HEADER_LEN] {
        let mut header = [0u8; HEADER_LEN];
        let fields = MAGIC
            .into_iter()
            .chain(VERSION.to_be_bytes())
            .chain([0, 0])
            .chain((page_size as u32).to_be_bytes())
            .chain((pages as u32).to_be_bytes());
        for (byte, field) in header.iter_mut().zip(fields) {
            *byte = field;
        }
        header
    }
}

/// Flash semantics in RAM: `SIZE` bytes in pages of `PAGE` bytes. New memory is erased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RamNvm<const SIZE: usize, const PAGE: usize> {
    bytes: [u8; SIZE],
}

impl<const SIZE: usize, const PAGE: usize> Default for RamNvm<SIZE, PAGE> {
    fn default() -> Self {
        Self {
            bytes: [0xFF; SIZE],
        }
    }
}

impl<const SIZE: usize, const PAGE: usize> RamNvm<SIZE, PAGE> {
    /// All the bytes, as a file-backed or test backend stores them.
    pub fn bytes(&self) -> &[u8; SIZE] {
        &self.bytes
    }
    /// A memory holding `bytes` (an image saved earlier).
    pub fn from_bytes(bytes: [u8; SIZE]) -> Self {
        Self { bytes }
    }
}

impl<const SIZE: usize, const PAGE: usize> Nvm for RamNvm<SIZE, PAGE> {
    fn page_size(&self) -> usize {
        PAGE
    }
    fn page_count(&self) -> usize {
        SIZE / PAGE
    }
    fn read(&self, address: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        flash_bytes::read(&self.bytes, address, buf)
    }
    fn erase_page(&mut self, page: usize) -> Result<(), NvmError> {
        let range = flash_bytes::page(SIZE, PAGE, page)?;
        self.bytes
            .get_mut(range)
            .ok_or(NvmError::OutOfRange)?
            .fill(0xFF);
        Ok(())
    }
    fn program(&mut self, address: usize, data: &[u8]) -> Result<(), NvmError> {
        let range = flash_bytes::program(&self.bytes, PAGE, address, data)?;
        self.bytes
            .get_mut(range)
            .ok_or(NvmError::OutOfRange)?
            .copy_from_slice(data);
        Ok(())
    }
}

/// What a torn operation leaves in the page it was writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tear {
    /// The first half of the operation happened, the rest did not.
    Half,
    /// The bytes the operation touched hold garbage (bits cleared at random, as a cut program pulse can).
    Garbage,
}

/// Largest page [`TearingNvm`] can tear (it keeps a page image on the stack).
pub const MAX_TORN_PAGE: usize = 512;

/// Cuts the power at the k-th erase or program (counting from 0): that operation is torn as [`Tear`] says and
/// fails with [`NvmError::PowerLost`], and so does every write after it, until [`TearingNvm::into_inner`]
/// hands the memory to a "rebooted" store. Reads keep working (the test inspects what survived).
#[derive(Debug)]
pub struct TearingNvm<N> {
    inner: N,
    writes_before_tear: Option<usize>,
    tear: Tear,
    writes: usize,
    powered: bool,
    noise: u32,
}

impl<N: Nvm> TearingNvm<N> {
    /// Tears the write numbered `at` (0-based); `None` never tears and only counts writes.
    pub fn new(inner: N, at: Option<usize>, tear: Tear) -> Self {
        Self {
            inner,
            writes_before_tear: at,
            tear,
            writes: 0,
            powered: true,
            noise: 0x9E37_79B9,
        }
    }
    /// Erase and program operations attempted so far (the torn one included).
    pub fn writes(&self) -> usize {
        self.writes
    }
    /// Whether the power was cut.
    pub fn torn(&self) -> bool {
        !self.powered
    }
    /// The memory, as the card finds it at the next power-on.
    pub fn into_inner(self) -> N {
        self.inner
    }

    /// Cheap deterministic noise (xorshift): garbage needs no cryptographic quality.
    fn next_noise(&mut self) -> u8 {
        self.noise ^= self.noise << 13;
        self.noise ^= self.noise >> 17;
        self.noise ^= self.noise << 5;
        self.noise.to_le_bytes()[0]
    }

    /// Counts a write; `Ok(true)` when this one is to be torn.
    fn before_write(&mut self) -> Result<bool, NvmError> {
        if !self.powered {
            return Err(NvmError::PowerLost);
        }
        let tear_now = self.writes_before_tear == Some(self.writes);
        self.writes += 1;
        if tear_now {
            self.powered = false;
        }
        Ok(tear_now)
    }

    /// Leaves `address..address + intended.len()` (within one page) as a write cut short leaves it: half
    /// done, or garbage; then reports the power loss.
    fn leave_torn(&mut self, address: usize, intended: &[u8]) -> NvmError {
        let mut torn = [0u8; MAX_TORN_PAGE];
        let Some(torn) = torn.get_mut(..intended.len()) else {
            return NvmError::PowerLost;
        };
        if self.inner.read(address, torn).is_err() {
            return NvmError::PowerLost;
        }
        let half = intended.len() / 2;
        for (i, (byte, want)) in torn.iter_mut().zip(intended).enumerate() {
            *byte = match self.tear {
                Tear::Half if i < half => *want,
                Tear::Half => *byte,
                Tear::Garbage => self.next_noise(),
            };
        }
        let mut copy = [0u8; MAX_TORN_PAGE];
        if let Some(copy) = copy.get_mut(..torn.len()) {
            copy.copy_from_slice(torn);
            // The test backend always accepts this.
            let forced = self.force(address, copy);
            debug_assert!(forced.is_ok());
        }
        NvmError::PowerLost
    }

    /// Puts `bytes` at `address` whatever was there (erases the page, restores the rest, programs): only used to
    /// leave a torn state behind.
    fn force(&mut self, address: usize, bytes: &[u8]) -> Result<(), NvmError> {
        let page_size = self.inner.page_size();
        let page = address / page_size;
        let page_start = page * page_size;
        let mut image = [0xFFu8; MAX_TORN_PAGE];
        let image = image.get_mut(..page_size).ok_or(NvmError::OutOfRange)?;
        self.inner.read(page_start, image)?;
        let offset = address - page_start;
        image
            .get_mut(offset..offset + bytes.len())
            .ok_or(NvmError::OutOfRange)?
            .copy_from_slice(bytes);
        self.inner.erase_page(page)?;
        self.inner.program(page_start, image)
    }
}

impl<N: Nvm> Nvm for TearingNvm<N> {
    fn page_size(&self) -> usize {
        self.inner.page_size()
    }
    fn page_count(&self) -> usize {
        self.inner.page_count()
    }
    fn read(&self, address: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        self.inner.read(address, buf)
    }
    fn erase_page(&mut self, page: usize) -> Result<(), NvmError> {
        if self.before_write()? {
            let page_size = self.inner.page_size();
            let erased = [0xFFu8; MAX_TORN_PAGE];
            let intended = erased.get(..page_size).ok_or(NvmError::OutOfRange)?;
            return Err(self.leave_torn(page * page_size, intended));
        }
        self.inner.erase_page(page)
    }
    fn program(&mut self, address: usize, data: &[u8]) -> Result<(), NvmError> {
        if self.before_write()? {
            return Err(self.leave_torn(address, data));
        }
        self.inner.program(address, data)
    }
}
