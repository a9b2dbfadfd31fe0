//! The card state file the emulator keeps a card in (`emulator::file_nvm`, format version 1: a 20-byte header,
//! then the memory page after page), used here as the flash's host file: a card issued by `linkcard card issue`
//! or kept by `linkcard card emulate --state-dir` runs on the firmware as it is, and back.

use crate::host::HostFile;

const MAGIC: [u8; 8] = *b"LCNVM\0\0\0";
const VERSION: u16 = 1;
/// Where the memory starts in the file.
pub const HEADER_LEN: usize = 20;

/// Why a state file is not used.
#[derive(Debug)]
pub enum StateFileError {
    /// Not a linkcard card state file, or one of another format version.
    Format,
    /// Made for pages of another size, or for more pages than this card has.
    Geometry,
    /// The host could not read or write it.
    Host,
}

/// Checks `file`'s header for a memory of `pages` pages of `page_size` bytes and answers where the memory starts.
/// An empty file gets a header and erased pages; a file with fewer pages (an older, smaller card) is grown by
/// erased pages, as the emulator grows it.
pub fn prepare(file: &HostFile, page_size: usize, pages: usize) -> Result<usize, StateFileError> {
    let mut header = [0u8; HEADER_LEN];
    let found_pages = if file.read_at(0, &mut header) {
        check(&header, page_size, pages)?
    } else {
        0
    };
    if found_pages < pages {
        let erased = [0xFFu8; 256];
        let start = HEADER_LEN + found_pages * page_size;
        let end = HEADER_LEN + pages * page_size;
        let mut at = start;
        while at < end {
            let chunk = erased.len().min(end - at);
            if !file.write_at(at, erased.get(..chunk).ok_or(StateFileError::Host)?) {
                return Err(StateFileError::Host);
            }
            at += chunk;
        }
        if !file.write_at(0, &encode(page_size, pages)) {
            return Err(StateFileError::Host);
        }
    }
    Ok(HEADER_LEN)
}

/// The header's page count, when it is a version 1 header for pages of `page_size` and at most `pages` of them.
fn check(
    header: &[u8; HEADER_LEN],
    page_size: usize,
    pages: usize,
) -> Result<usize, StateFileError> {
    let field = |at: usize| -> [u8; 4] {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(header.get(at..at + 4).unwrap_or(&[0; 4]));
        bytes
    };
    let version = u16::from_be_bytes([header[8], header[9]]);
    if !header.starts_with(&MAGIC) || version != VERSION {
        return Err(StateFileError::Format);
    }
    let found_page_size = u32::from_be_bytes(field(12)) as usize;
    let found_pages = u32::from_be_bytes(field(16)) as usize;
    if found_page_size != page_size || found_pages > pages {
        return Err(StateFileError::Geometry);
    }
    Ok(found_pages)
}

fn encode(page_size: usize, pages: usize) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    header[8..10].copy_from_slice(&VERSION.to_be_bytes());
    header[12..16].copy_from_slice(&(page_size as u32).to_be_bytes());
    header[16..20].copy_from_slice(&(pages as u32).to_be_bytes());
    header
}
