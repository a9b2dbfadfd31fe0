//! Where the card's randomness comes from.
//!
//! * [`EntropySource`]: what a platform offers the card at power-on: 32 bytes never handed out before. A chip's
//!   TRNG implements it; so does [`SeedFile`] on a board without one;
//! * [`SeedFile`]: a deterministic generator whose state lives in two pages of flash, seeded once at
//!   personalization. Each [`SeedFile::next_seed`] derives the next state and the seed from the current state
//!   with ChaCha20 (the card's own generator, used as "fast key erasure": the first 32 bytes of its keystream
//!   become the new state, the next 32 the output) and **commits the new state before it returns the output**.
//!   A power loss at any point therefore either leaves the old state (and no output was used) or the new one:
//!   no reboot and no tear ever hands out the same seed twice.
//!
//! The two pages alternate: the new state goes into the page not holding the current one, as a record
//! `magic | generation | state | CRC-32`. At start-up the valid record with the highest generation wins; a torn
//! record fails its CRC and is ignored.

use chacha20::ChaCha20Rng;
use chacha20::rand_core::{Rng, SeedableRng};
use zeroize::Zeroize;

use crate::nvm::{Nvm, NvmError};

/// A platform's source of fresh seeds.
pub trait EntropySource {
    /// Why no seed could be had.
    type Error;
    /// 32 bytes for the card's generator ([`crate::Card::seed_random`]), never returned before.
    fn seed(&mut self) -> Result<[u8; 32], Self::Error>;
}

/// Why [`SeedFile`] gave no seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedFileError {
    /// Neither page holds a valid record: the card was never personalized (or both records were destroyed).
    NotPersonalized,
    /// The memory has fewer than two pages, or pages too small for a record.
    Geometry,
    /// The generation counter is exhausted (2^32 power-ons): the card must be personalized again.
    Exhausted,
    /// The memory failed (a power loss included): nothing was handed out.
    Nvm(NvmError),
}

impl core::fmt::Display for SeedFileError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotPersonalized => f.write_str("no valid generator state: not personalized"),
            Self::Geometry => f.write_str("the memory cannot hold two seed records"),
            Self::Exhausted => f.write_str("the generation counter is exhausted"),
            Self::Nvm(_) => f.write_str("the memory failed"),
        }
    }
}

impl core::error::Error for SeedFileError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Nvm(error) => Some(error),
            _ => None,
        }
    }
}

impl From<NvmError> for SeedFileError {
    fn from(error: NvmError) -> Self {
        Self::Nvm(error)
    }
}

/// Pages the seed file takes (at the start of its memory).
pub const SEED_FILE_PAGES: usize = 2;

const MAGIC: [u8; 4] = *b"LKRS";
/// magic, generation, state, CRC-32 of what precedes it.
pub const RECORD: usize = 4 + 4 + 32 + 4;
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// A valid record found in a page.
#[derive(Clone, Copy)]
struct Current {
    page: usize,
    generation: u32,
    state: [u8; 32],
}

/// The generator whose state is kept in the first two pages of `N`.
#[derive(Debug)]
pub struct SeedFile<N> {
    nvm: N,
}

impl<N: Nvm> SeedFile<N> {
    /// The generator in `nvm` (personalized or not: [`Self::next_seed`] tells).
    pub fn new(nvm: N) -> Result<Self, SeedFileError> {
        if nvm.page_count() < SEED_FILE_PAGES || nvm.page_size() < RECORD {
            return Err(SeedFileError::Geometry);
        }
        Ok(Self { nvm })
    }

    /// The memory, back.
    pub fn into_inner(self) -> N {
        self.nvm
    }

    /// Personalization: erases both pages and starts the generator from `seed` (from the personalization
    /// system's own entropy, unique per card).
    pub fn personalize(&mut self, mut seed: [u8; 32]) -> Result<(), SeedFileError> {
        self.nvm.erase_page(1)?;
        self.write_record(0, 1, &seed)?;
        seed.zeroize();
        Ok(())
    }

    /// Whether a valid state is present.
    pub fn is_personalized(&self) -> bool {
        self.current().is_some()
    }

    /// The next seed: the successor state is committed to the memory first, then the seed is returned.
    pub fn next_seed(&mut self) -> Result<[u8; 32], SeedFileError> {
        let mut current = self.current().ok_or(SeedFileError::NotPersonalized)?;
        let generation = current
            .generation
            .checked_add(1)
            .ok_or(SeedFileError::Exhausted)?;
        let mut keystream = [0u8; 64];
        ChaCha20Rng::from_seed(current.state).fill_bytes(&mut keystream);
        current.state.zeroize();
        let (next, output) = keystream.split_at(32);
        let mut next_state = [0u8; 32];
        next_state.copy_from_slice(next);
        let mut seed = [0u8; 32];
        seed.copy_from_slice(output);
        keystream.zeroize();
        let written = self.write_record(1 - current.page, generation, &next_state);
        next_state.zeroize();
        match written {
            Ok(()) => Ok(seed),
            Err(error) => {
                seed.zeroize();
                Err(error)
            }
        }
    }

    /// Erases `page` and writes the record of `state` at `generation` into it.
    fn write_record(
        &mut self,
        page: usize,
        generation: u32,
        state: &[u8; 32],
    ) -> Result<(), SeedFileError> {
        let mut record = [0u8; RECORD];
        let (head, crc) = record.split_at_mut(RECORD - 4);
        let (magic, rest) = head.split_at_mut(4);
        let (counter, body) = rest.split_at_mut(4);
        magic.copy_from_slice(&MAGIC);
        counter.copy_from_slice(&generation.to_le_bytes());
        body.copy_from_slice(state);
        crc.copy_from_slice(&CRC32.checksum(head).to_le_bytes());
        let address = page * self.nvm.page_size();
        self.nvm.erase_page(page)?;
        let programmed = self.nvm.program(address, &record);
        record.zeroize();
        Ok(programmed?)
    }

    /// The valid record with the highest generation.
    fn current(&self) -> Option<Current> {
        (0..2)
            .filter_map(|page| self.read_record(page))
            .max_by_key(|record| record.generation)
    }

    fn read_record(&self, page: usize) -> Option<Current> {
        let mut record = [0u8; RECORD];
        self.nvm
            .read(page * self.nvm.page_size(), &mut record)
            .ok()?;
        let (head, crc) = record.split_at(RECORD - 4);
        let valid = head.starts_with(&MAGIC) && CRC32.checksum(head).to_le_bytes() == crc;
        let mut state = [0u8; 32];
        state.copy_from_slice(head.get(8..40)?);
        let generation = u32::from_le_bytes(head.get(4..8)?.try_into().ok()?);
        record.zeroize();
        valid.then_some(Current {
            page,
            generation,
            state,
        })
    }
}

impl<N: Nvm> EntropySource for SeedFile<N> {
    type Error = SeedFileError;
    fn seed(&mut self) -> Result<[u8; 32], SeedFileError> {
        self.next_seed()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::nvm::{RamNvm, Tear, TearingNvm};

    type Pages = RamNvm<512, 256>;

    fn personalized() -> Pages {
        let mut file = SeedFile::new(Pages::default()).unwrap();
        file.personalize([7; 32]).unwrap();
        file.into_inner()
    }

    #[test]
    fn an_unpersonalized_card_gets_no_seed() {
        let mut file = SeedFile::new(Pages::default()).unwrap();
        assert!(!file.is_personalized());
        assert_eq!(file.next_seed(), Err(SeedFileError::NotPersonalized));
        assert_eq!(
            SeedFile::new(RamNvm::<256, 256>::default()).err(),
            Some(SeedFileError::Geometry)
        );
    }

    #[test]
    fn seeds_follow_the_fast_key_erasure_construction() {
        let mut file = SeedFile::new(personalized()).unwrap();
        let mut keystream = [0u8; 64];
        ChaCha20Rng::from_seed([7; 32]).fill_bytes(&mut keystream);
        assert_eq!(file.next_seed().unwrap(), keystream[32..]);
        let mut second = [0u8; 64];
        ChaCha20Rng::from_seed(keystream[..32].try_into().unwrap()).fill_bytes(&mut second);
        assert_eq!(file.next_seed().unwrap(), second[32..]);
    }

    #[test]
    fn the_state_survives_a_reboot() {
        let mut first = SeedFile::new(personalized()).unwrap();
        let a = first.next_seed().unwrap();
        let mut rebooted = SeedFile::new(first.into_inner()).unwrap();
        let b = rebooted.next_seed().unwrap();
        assert_ne!(a, b);
    }

    /// Boots the card `boots` times, tearing the k-th write of the whole run: every seed handed out is
    /// different, and after the tear the generator goes on.
    fn run_with_tear_at(
        tear_at: usize,
        tear: Tear,
        boots: usize,
    ) -> (bool, std::vec::Vec<[u8; 32]>) {
        let mut memory = personalized();
        let mut seeds = std::vec::Vec::new();
        let mut written = 0;
        let mut torn = false;
        for _ in 0..boots {
            let at = (!torn).then(|| tear_at.checked_sub(written)).flatten();
            let mut file = SeedFile::new(TearingNvm::new(memory, at, tear)).unwrap();
            match file.next_seed() {
                Ok(seed) => seeds.push(seed),
                Err(error) => assert_eq!(error, SeedFileError::Nvm(NvmError::PowerLost)),
            }
            let nvm = file.into_inner();
            written += nvm.writes();
            torn |= nvm.torn();
            memory = nvm.into_inner();
        }
        (torn, seeds)
    }

    #[test]
    fn no_tear_ever_repeats_a_seed() {
        for tear in [Tear::Half, Tear::Garbage] {
            // Each boot erases once and programs once.
            for tear_at in 0..12 {
                let (torn, seeds) = run_with_tear_at(tear_at, tear, 8);
                assert!(torn, "write {tear_at} was torn");
                assert!(seeds.len() >= 7, "the generator went on after the tear");
                let unique: std::collections::BTreeSet<_> = seeds.iter().collect();
                assert_eq!(unique.len(), seeds.len(), "tear at {tear_at} ({tear:?})");
            }
        }
    }
}
