//! The linkcard card on the host: the one host crate that links the card (`card-os`, `card-image`), so that every
//! other host crate reaches it the way a terminal reaches a real card, through a
//! [`CardChannel`](card_client::CardChannel) (see `docs/ARCHITECTURE.md`).
//!
//! * [`InProcessChannel`]: the card image in this process, a [`CardChannel`](card_client::CardChannel) with no
//!   reader and no driver (tests, benchmarks, `linkcard conformance run`);
//! * [`VirtualCard`]: a card for `linkcard card emulate`, its memory in RAM or kept in a state file
//!   ([`file_nvm`], the right geometry chosen here), served to pcscd by the [`vpcd`] bridge;
//! * [`firmware`]: the firmware card, `firmware/` under QEMU, reached over T=1 and bridged to vpcd the same way;
//! * [`seed_from_os`]: every card the host runs gets its random generator seeded by the operating system at each
//!   power-on;
//! * `testing` (feature `testing`): a card issued with both payment applets and a driver that checks every
//!   answer, for the never-panic property test and the fuzz target.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod file_nvm;
pub mod firmware;
mod in_process;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vpcd;

use std::path::Path;

use card_client::EntropyError;
use card_image::{LinkcardCard, LinkcardImage};
use card_os::Card;
use card_os::nvm::Nvm;

pub use in_process::{IN_PROCESS_DESCRIPTION, InProcessChannel};

use crate::file_nvm::{FileNvm, FileNvmError};

/// The ATR every linkcard card answers with.
pub fn atr() -> &'static [u8] {
    static ATR: card_os::Atr = LinkcardCard::ATR;
    ATR.as_bytes()
}

/// Seeds `card`'s random generator from the operating system. A card nobody seeds refuses what needs
/// randomness (6985); a host whose generator fails gets the error, never weak numbers.
pub fn seed_from_os<N: Nvm>(card: &mut Card<LinkcardImage, N>) -> Result<(), EntropyError> {
    card.seed_random(card_client::entropy::os_seed()?);
    Ok(())
}

/// A card whose non-volatile memory is a state file.
pub type FileCard = Card<LinkcardImage, FileNvm>;

/// Opens (or creates) a card state file with the card's own memory geometry, and the card on it.
pub fn open_file_card(path: &Path) -> Result<Box<FileCard>, FileNvmError> {
    Ok(Box::new(Card::with_nvm(FileNvm::open_card(path)?)))
}

/// One card of `linkcard card emulate`: a factory card in RAM, or a card kept in a state file.
#[derive(Debug)]
pub struct VirtualCard(Memory);

// Boxed: a card holds its APDU buffers inline and is several KB.
#[derive(Debug)]
enum Memory {
    Ram(Box<LinkcardCard>),
    File(Box<FileCard>),
}

impl VirtualCard {
    /// A factory card whose memory lives as long as the process.
    pub fn in_memory() -> Self {
        Self(Memory::Ram(Box::default()))
    }

    /// The card kept in the state file `path` (created when missing): what it stores survives restarts.
    pub fn with_state_file(path: &Path) -> Result<Self, FileNvmError> {
        open_file_card(path).map(|card| Self(Memory::File(card)))
    }

    /// Serves this card to vpcd at `endpoint` until `stop` (see [`vpcd::run`]).
    pub fn serve_vpcd(
        &mut self,
        endpoint: &vpcd::Endpoint,
        stop: &vpcd::Stop,
        on_connect: &dyn Fn(&vpcd::Endpoint),
    ) -> Result<(), EntropyError> {
        match &mut self.0 {
            Memory::Ram(card) => vpcd::run(endpoint, card.as_mut(), stop, on_connect),
            Memory::File(card) => vpcd::run(endpoint, card.as_mut(), stop, on_connect),
        }
    }
}
