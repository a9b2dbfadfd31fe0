//! The firmware card: `firmware/` running under QEMU, reached over its UART with ISO 7816-3 T=1, and presented to
//! pcscd through the same vpcd bridge as the in-process card ([`crate::vpcd::BridgedCard`]).
//!
//! * [`qemu`]: starts the board, resets it, stops it;
//! * [`ifd`]: the reader's half of T=1;
//! * [`FirmwareCard`]: power on = reset the board and read its ATR (whose T=1 parameters the reader then
//!   uses); an APDU = one T=1 exchange. A card that stays mute through T=1's recovery is reset and the command
//!   answered `6F 00`, as a reader reports a card that stopped answering; QEMU going away ends the bridge.
//!
//! The firmware keeps its memory in the card state file ([`crate::file_nvm`]'s format: the same file a card issued
//! by `linkcard card issue` or kept by `linkcard card emulate --state-dir` lives in) and its random generator's
//! state in a seed file of two pages, which [`personalize_seed_file`] creates with a seed from the operating
//! system when it is missing.

pub mod ifd;
pub mod qemu;

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use card_client::EntropyError;
use card_os::entropy::{SEED_FILE_PAGES, SeedFile, SeedFileError};
use card_os::layout::STORE_PAGE;
use card_os::nvm::RamNvm;
use card_t1::Edc;
use tracing::{debug, warn};

use crate::vpcd::BridgedCard;
use ifd::{ByteLink as _, Ifd, IfdError, Params};
use qemu::{Qemu, QemuConfig, QemuError};

/// How long the firmware may take to send its ATR after a reset.
const ATR_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response APDU a linkcard card sends.
const LONGEST_RESPONSE: usize = card_os::RESPONSE_BUFFER + 2;

/// Why the firmware card cannot run.
#[derive(Debug, thiserror::Error)]
pub enum FirmwareError {
    #[error(transparent)]
    Qemu(#[from] QemuError),
    #[error("the firmware sent no valid ATR within {ATR_TIMEOUT:?} of a reset (received {0:02X?})")]
    NoAtr(Vec<u8>),
    #[error(transparent)]
    Line(#[from] IfdError),
    #[error(transparent)]
    Entropy(#[from] EntropyError),
    #[error("cannot write the seed file {path}")]
    SeedFile {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot personalize the seed file {path}")]
    Personalize { path: String, source: SeedFileError },
}

/// The firmware card on QEMU.
#[derive(Debug)]
pub struct FirmwareCard {
    qemu: Qemu,
    ifd: Ifd<TcpStream>,
    atr: Vec<u8>,
}

impl FirmwareCard {
    /// Starts QEMU with the firmware (creating the seed file first if it is missing) and powers the card on.
    pub fn start(config: &QemuConfig) -> Result<Self, FirmwareError> {
        personalize_seed_file(&config.seed_file)?;
        let mut qemu = Qemu::start(config)?;
        let (atr, ifd) = reset(&mut qemu)?;
        Ok(Self { qemu, ifd, atr })
    }

    /// Resets the card (the board) and starts a new T=1 link with what its ATR says.
    pub fn reset(&mut self) -> Result<(), FirmwareError> {
        (self.atr, self.ifd) = reset(&mut self.qemu)?;
        Ok(())
    }

    /// One APDU through T=1.
    pub fn transceive(&mut self, apdu: &[u8]) -> Result<Vec<u8>, IfdError> {
        self.ifd.transceive(apdu)
    }
}

impl BridgedCard for FirmwareCard {
    type Error = FirmwareError;

    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn power_on(&mut self) -> Result<(), FirmwareError> {
        self.reset()
    }

    /// The board keeps running; the next power-on resets it, which is all a card sees of a power cycle.
    fn power_off(&mut self) {}

    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, FirmwareError> {
        match self.transceive(apdu) {
            Ok(response) => Ok(response),
            Err(IfdError::Io(error)) => Err(FirmwareError::Line(IfdError::Io(error))),
            Err(error) => {
                warn!("{error}: resetting the card");
                self.reset()?;
                Ok(vec![0x6F, 0x00])
            }
        }
    }
}

/// Creates the seed file `path`, if it is missing, with a generator seeded from the operating system: this is
/// the card's personalization for randomness (a chip with a TRNG needs none).
pub fn personalize_seed_file(path: &Path) -> Result<(), FirmwareError> {
    if path.exists() {
        return Ok(());
    }
    let io_error = |source| FirmwareError::SeedFile {
        path: path.display().to_string(),
        source,
    };
    let personalized = |source| FirmwareError::Personalize {
        path: path.display().to_string(),
        source,
    };
    let mut file = SeedFile::new(RamNvm::<{ SEED_FILE_PAGES * STORE_PAGE }, STORE_PAGE>::default())
        .map_err(personalized)?;
    file.personalize(card_client::entropy::os_seed()?)
        .map_err(personalized)?;
    let partial = path.with_extension("partial");
    std::fs::write(&partial, file.into_inner().bytes()).map_err(io_error)?;
    std::fs::rename(&partial, path).map_err(io_error)
}

/// Resets the board and reads its ATR, once more if the first read fails (bytes of the firmware that ran before
/// the reset may still come first); answers the ATR and a new T=1 link with the parameters it announces.
fn reset(qemu: &mut Qemu) -> Result<(Vec<u8>, Ifd<TcpStream>), FirmwareError> {
    let (atr, params) = match reset_once(qemu) {
        Err(FirmwareError::NoAtr(received)) => {
            debug!("no valid ATR after a reset ({received:02X?}): resetting again");
            reset_once(qemu)
        }
        outcome => outcome,
    }?;
    let line = qemu.serial.try_clone().map_err(QemuError::Io)?;
    Ok((atr, Ifd::new(line, params, LONGEST_RESPONSE)))
}

fn reset_once(qemu: &mut Qemu) -> Result<(Vec<u8>, Params), FirmwareError> {
    // Bytes of a link about to be reset.
    qemu.serial.discard_pending().map_err(QemuError::Io)?;
    qemu.reset()?;
    let deadline = Instant::now() + ATR_TIMEOUT;
    let mut atr = Vec::new();
    loop {
        if let Some(params) = t1_params(&atr) {
            debug!("ATR {atr:02X?}: {params:?}");
            return Ok((atr, params));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || atr.len() > card_t1::atr::MAX_ATR {
            return Err(FirmwareError::NoAtr(atr));
        }
        qemu.serial
            .set_read_timeout(Some(left))
            .map_err(QemuError::Io)?;
        let mut byte = [0u8; 1];
        match qemu.serial.read(&mut byte) {
            // An ATR starts with TS: anything before it is left over from before the reset.
            Ok(1) if atr.is_empty() && byte[0] != 0x3B && byte[0] != 0x3F => {}
            Ok(1) => atr.push(byte[0]),
            Ok(_) => return Err(FirmwareError::NoAtr(atr)),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(FirmwareError::NoAtr(atr));
            }
            Err(e) => return Err(QemuError::Io(e).into()),
        }
    }
}

/// The T=1 parameters of a whole ATR (ISO/IEC 7816-3 §8.2), `None` while it is incomplete or if it offers no
/// T=1. The first TA/TB/TC after a TD announcing T=1 (from TD2 on) are IFSC, BWI/CWI and the EDC.
pub fn t1_params(atr: &[u8]) -> Option<Params> {
    let (&initial, after_initial) = atr.split_first()?;
    if initial != 0x3B && initial != 0x3F {
        return None;
    }
    let (&format, mut rest) = after_initial.split_first()?;
    let historical = usize::from(format & 0x0F);
    let mut indicator = format >> 4;
    let (mut ifsc, mut bwi, mut edc) = (card_t1::block::DEFAULT_IFS, 4u8, Edc::Lrc);
    let mut offers_t1 = false;
    let mut seen = (false, false, false);
    let mut level = 1;
    // Which protocol the bytes being read belong to (after TD(i-1)); T=1's own bytes are from level 3 on.
    let mut t1_level = false;
    loop {
        for (bit, field) in [(1u8, 'A'), (2, 'B'), (4, 'C')] {
            if indicator & bit != 0 {
                let (&byte, after) = rest.split_first()?;
                rest = after;
                // Only the first T=1 bytes count (from TD2 on): later ones are for other protocols' levels.
                match field {
                    'A' if t1_level && !seen.0 => (ifsc, seen.0) = (byte, true),
                    'B' if t1_level && !seen.1 => (bwi, seen.1) = (byte >> 4, true),
                    'C' if t1_level && !seen.2 => {
                        edc = if byte & 1 == 1 { Edc::Crc } else { Edc::Lrc };
                        seen.2 = true;
                    }
                    _ => {}
                }
            }
        }
        if indicator & 8 == 0 {
            break;
        }
        let (&td, after) = rest.split_first()?;
        rest = after;
        offers_t1 |= td & 0x0F == 1;
        level += 1;
        t1_level = td & 0x0F == 1 && level >= 3;
        indicator = td >> 4;
    }
    // Historical bytes, then TCK (present whenever a protocol other than T=0 is offered): every byte after TS
    // exclusive-ored with it gives 0.
    if rest.len() < historical + usize::from(offers_t1) || !offers_t1 {
        return None;
    }
    let end = 1 + (after_initial.len() - rest.len()) + historical + 1;
    if atr.get(1..end)?.iter().fold(0, |check, byte| check ^ byte) != 0
        || !(1..=254).contains(&ifsc)
    {
        return None;
    }
    // BWT = 11 etu + 2^BWI × 960 × 372 / 3.57 MHz ≈ 2^BWI × 100 ms (the etu term is negligible).
    let block_waiting_time = Duration::from_millis(100u64 << bwi.min(9));
    Some(Params {
        ifsc,
        edc,
        block_waiting_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use card_t1::atr::{WaitingTimes, atr};

    const HISTORICAL: [u8; 10] = [0x80, 0x58, b'l', b'i', b'n', b'k', b'c', b'a', b'r', b'd'];

    #[test]
    fn the_firmware_atr_gives_its_t1_parameters_once_whole() {
        let config = card_t1::Config {
            ifsc: 254,
            edc: Edc::Crc,
        };
        let bytes = atr(config, WaitingTimes { bwi: 4, cwi: 5 }, &HISTORICAL).unwrap();
        for cut in 0..bytes.len() {
            assert_eq!(
                t1_params(&bytes[..cut]),
                None,
                "{cut} bytes are not a whole ATR"
            );
        }
        let params = t1_params(&bytes).unwrap();
        assert_eq!((params.ifsc, params.edc), (254, Edc::Crc));
        assert_eq!(params.block_waiting_time, Duration::from_millis(1600));
    }

    #[test]
    fn an_atr_without_t1_parameters_gets_the_defaults_and_a_bad_one_none() {
        // The emulator's ATR: T=0 and T=1 offered, no T=1 bytes.
        let emulator = crate::atr();
        let params = t1_params(emulator).unwrap();
        assert_eq!((params.ifsc, params.edc), (32, Edc::Lrc));
        let mut wrong_check = emulator.to_vec();
        *wrong_check.last_mut().unwrap() ^= 1;
        assert_eq!(t1_params(&wrong_check), None);
        let mut wrong_start = emulator.to_vec();
        wrong_start[0] = 0x3C;
        assert_eq!(t1_params(&wrong_start), None);
        // T=0 only: no T=1 link to speak.
        assert_eq!(t1_params(&[0x3B, 0x00]), None);
    }
}
