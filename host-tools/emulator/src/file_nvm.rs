//! A card's non-volatile memory kept in a file, so a virtual card survives restarts of its emulator.
//!
//! File format, version 1 (all numbers big-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `LCNVM\0\0\0` |
//! | 2 | format version (1) |
//! | 2 | reserved, 0 |
//! | 4 | page size |
//! | 4 | page count |
//! | page size × page count | the memory, page after page (erased bytes are FF) |
//!
//! Every erase and program is written through to the file before it returns (no fsync: a host crash is not
//! a card tear; the card's own journal covers tears). A later format version must keep loading version 1 files:
//! `tests/fixtures/nvm-v1.bin` is checked by a test for that.
//!
//! A file with the right page size but fewer pages than the card now has (a card made before its memory grew,
//! `tests/fixtures/card-v1.nvm`) is grown by erased pages at the end when it is opened: the card's layout keeps
//! every older address where it was, and erased memory reads as free record slots. A file with more pages than
//! the card has is refused (nothing is ever cut off).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use card_os::nvm::{Nvm, NvmError, flash_bytes};

use card_os::nvm::state_file;
/// The header's constants, shared with the firmware (`card_os::nvm::state_file`).
pub use card_os::nvm::state_file::{HEADER_LEN, MAGIC, VERSION};

/// Why a state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FileNvmError {
    /// Reading or writing the file failed (the reason is the source).
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Not a linkcard NVM file, or damaged.
    #[error("{path}: not a linkcard card state file ({reason})")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file from a newer linkcard.
    #[error(
        "{path}: card state format version {found} is newer than this linkcard understands ({VERSION})"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u16,
    },
    /// Made for another memory size.
    #[error(
        "{path}: made for {found_pages} pages of {found_page_size} bytes, this card has {pages} of {page_size}"
    )]
    Geometry {
        /// The file.
        path: PathBuf,
        /// Its page size.
        found_page_size: usize,
        /// Its page count.
        found_pages: usize,
        /// Expected page size.
        page_size: usize,
        /// Expected page count.
        pages: usize,
    },
}

/// Page flash kept in a file.
#[derive(Debug)]
pub struct FileNvm {
    path: PathBuf,
    file: File,
    bytes: Vec<u8>,
    page_size: usize,
}

impl FileNvm {
    /// Opens (or creates) a state file with the linkcard card's own memory geometry.
    pub fn open_card(path: &Path) -> Result<Self, FileNvmError> {
        Self::open(
            path,
            card_os::layout::STORE_PAGE,
            card_os::layout::STORE_PAGES,
        )
    }

    /// Opens `path`, or creates it erased when it does not exist.
    pub fn open(path: &Path, page_size: usize, page_count: usize) -> Result<Self, FileNvmError> {
        let io = |source| FileNvmError::Io {
            path: path.to_owned(),
            source,
        };
        if !path.exists() {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(path)
                .map_err(io)?;
            let header = state_file::encode(page_size, page_count);
            let bytes = vec![0xFF; page_size * page_count];
            file.write_all(&header)
                .and_then(|()| file.write_all(&bytes))
                .map_err(io)?;
            return Ok(Self {
                path: path.to_owned(),
                file,
                bytes,
                page_size,
            });
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        let mut contents = Vec::new();
        file.read_to_end(&mut contents).map_err(io)?;
        let format = |reason: &str| FileNvmError::Format {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let (header, body) = contents
            .split_at_checked(HEADER_LEN)
            .ok_or_else(|| format("shorter than its header"))?;
        let header = state_file::parse(header.try_into().map_err(|_| format("header"))?)
            .ok_or_else(|| format("wrong magic"))?;
        if header.version > VERSION {
            return Err(FileNvmError::TooNew {
                path: path.to_owned(),
                found: header.version,
            });
        }
        let (found_page_size, found_pages) = (header.page_size, header.pages);
        if found_page_size != page_size || found_pages > page_count {
            return Err(FileNvmError::Geometry {
                path: path.to_owned(),
                found_page_size,
                found_pages,
                page_size,
                pages: page_count,
            });
        }
        if body.len() != page_size * found_pages {
            return Err(format("memory size does not match the header"));
        }
        let mut bytes = body.to_vec();
        if found_pages < page_count {
            grow(&file, &mut bytes, page_size, page_count).map_err(io)?;
        }
        Ok(Self {
            path: path.to_owned(),
            file,
            bytes,
            page_size,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn persist(&self, range: std::ops::Range<usize>) -> Result<(), NvmError> {
        let bytes = self.bytes.get(range.clone()).ok_or(NvmError::OutOfRange)?;
        // An I/O failure is a memory failure to the card (6581).
        self.file
            .write_all_at(bytes, (HEADER_LEN + range.start) as u64)
            .map_err(|_| NvmError::PowerLost)
    }
}

/// Appends erased pages to an older, smaller file: the memory, then the page count in the header.
fn grow(
    file: &File,
    bytes: &mut Vec<u8>,
    page_size: usize,
    page_count: usize,
) -> std::io::Result<()> {
    let old_len = bytes.len();
    bytes.resize(page_size * page_count, 0xFF);
    let added = bytes.get(old_len..).unwrap_or_default();
    file.write_all_at(added, (HEADER_LEN + old_len) as u64)?;
    file.write_all_at(&(page_count as u32).to_be_bytes(), 16)
}

impl Nvm for FileNvm {
    fn page_size(&self) -> usize {
        self.page_size
    }
    fn page_count(&self) -> usize {
        self.bytes.len() / self.page_size
    }
    fn read(&self, address: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        flash_bytes::read(&self.bytes, address, buf)
    }
    fn erase_page(&mut self, page: usize) -> Result<(), NvmError> {
        let range = flash_bytes::page(self.bytes.len(), self.page_size, page)?;
        self.bytes
            .get_mut(range.clone())
            .ok_or(NvmError::OutOfRange)?
            .fill(0xFF);
        self.persist(range)
    }
    fn program(&mut self, address: usize, data: &[u8]) -> Result<(), NvmError> {
        if data.is_empty() {
            return Ok(());
        }
        let range = flash_bytes::program(&self.bytes, self.page_size, address, data)?;
        self.bytes
            .get_mut(range.clone())
            .ok_or(NvmError::OutOfRange)?
            .copy_from_slice(data);
        self.persist(range)
    }
}
