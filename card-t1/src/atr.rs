//! The answer to reset of a T=1 card (ISO/IEC 7816-3 §8.2): TS, T0, TD1 (T=1), TD2 (T=1: TA3 IFSC, TB3 waiting
//! times, TC3 the EDC), the historical bytes, TCK.

use heapless::Vec;

use crate::block::Edc;
use crate::card::Config;

/// The longest ATR (§8.2.1).
pub const MAX_ATR: usize = 33;

/// The waiting times a card announces in TB3: the block waiting time is 11 etu + 2^BWI × 960 × Fd/f, the character
/// waiting time 11 + 2^CWI etu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitingTimes {
    /// 0 to 9.
    pub bwi: u8,
    /// 0 to 15.
    pub cwi: u8,
}

impl Default for WaitingTimes {
    /// The standard's defaults: BWI 4 (about 1.6 s at 3.57 MHz), CWI 13.
    fn default() -> Self {
        Self { bwi: 4, cwi: 13 }
    }
}

/// Why an ATR cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtrError {
    /// More than 15 historical bytes, or more than the ATR holds.
    TooManyHistoricalBytes,
    /// BWI above 9 or CWI above 15.
    WaitingTimes,
    /// IFSC 0 or 255.
    Ifsc,
}

/// The ATR of a card speaking only T=1 with `config`, `times` and `historical` bytes.
pub fn atr(
    config: Config,
    times: WaitingTimes,
    historical: &[u8],
) -> Result<Vec<u8, MAX_ATR>, AtrError> {
    let count = u8::try_from(historical.len())
        .ok()
        .filter(|count| *count <= 15)
        .ok_or(AtrError::TooManyHistoricalBytes)?;
    if times.bwi > 9 || times.cwi > 15 {
        return Err(AtrError::WaitingTimes);
    }
    if config.ifsc == 0 || config.ifsc == 255 {
        return Err(AtrError::Ifsc);
    }
    let crc = config.edc == Edc::Crc;
    // TD2 announces TA3 and TB3, TC3 when the EDC is a CRC, and T=1 again.
    let td2 = 0x30 | if crc { 0x40 } else { 0 } | 0x01;
    let mut out: Vec<u8, MAX_ATR> = Vec::new();
    let interface = [
        0x3B,
        0x80 | count,
        0x81,
        td2,
        config.ifsc,
        times.bwi << 4 | times.cwi,
    ];
    out.extend_from_slice(&interface)
        .map_err(|_| AtrError::TooManyHistoricalBytes)?;
    if crc {
        out.push(0x01)
            .map_err(|_| AtrError::TooManyHistoricalBytes)?;
    }
    out.extend_from_slice(historical)
        .map_err(|_| AtrError::TooManyHistoricalBytes)?;
    // TCK: the exclusive-or of T0 to the last historical byte is zero with it.
    let tck = out.iter().skip(1).fold(0, |check, byte| check ^ byte);
    out.push(tck)
        .map_err(|_| AtrError::TooManyHistoricalBytes)?;
    Ok(out)
}
