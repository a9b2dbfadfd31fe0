//! The card state file the emulator keeps a card in (`emulator::file_nvm`, format version 1: a 20-byte header,
//! then the memory page after page), used here as the flash's host file: a card issued by `linkcard card issue`
//! or kept by `linkcard card emulate --state-dir` runs on the firmware as it is, and back.

use card_os::nvm::state_file::{self, HEADER_LEN, VERSION};

use crate::host::HostFile;

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
        if !file.write_at(0, &state_file::encode(page_size, pages)) {
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
    let found = state_file::parse(header)
        .filter(|found| found.version == VERSION)
        .ok_or(StateFileError::Format)?;
    if found.page_size != page_size || found.pages > pages {
        return Err(StateFileError::Geometry);
    }
    Ok(found.pages)
}
