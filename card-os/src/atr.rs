//! The Answer To Reset (ISO 7816-3 §8): direct convention, T=0 and T=1 offered, historical bytes from the image.

/// Longest ATR this runtime produces.
pub const MAX_ATR: usize = 4 + 15 + 1;

/// An ATR: `3B 8K 80 01 <K historical bytes> TCK`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Atr {
    bytes: [u8; MAX_ATR],
    len: u8,
}

impl Atr {
    /// Builds the ATR; historical bytes beyond 15 are cut (compile-time input from the image, not card input).
    #[allow(clippy::indexing_slicing)] // const-evaluated from constants: an out-of-range index fails the build
    pub const fn with_historical_bytes(historical: &[u8]) -> Self {
        let k = if historical.len() > 15 {
            15
        } else {
            historical.len()
        };
        let mut bytes = [0u8; MAX_ATR];
        bytes[0] = 0x3B; // TS: direct convention
        bytes[1] = 0x80 | k as u8; // T0: TD1 present, K historical bytes
        bytes[2] = 0x80; // TD1: T=0, TD2 present
        bytes[3] = 0x01; // TD2: T=1
        let mut i = 0;
        while i < k {
            bytes[4 + i] = historical[i];
            i += 1;
        }
        // TCK: XOR of T0 .. last historical byte (present because T=1 is offered).
        let mut tck = 0u8;
        let mut j = 1;
        while j < 4 + k {
            tck ^= bytes[j];
            j += 1;
        }
        bytes[4 + k] = tck;
        Self {
            bytes,
            len: (5 + k) as u8,
        }
    }

    /// The ATR bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl core::fmt::Debug for Atr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_makes_xor_zero() {
        let atr = Atr::with_historical_bytes(b"\x80\x58linkcard");
        let bytes = atr.as_bytes();
        assert_eq!(&bytes[..4], &[0x3B, 0x8A, 0x80, 0x01]);
        assert_eq!(bytes.len(), 15);
        assert_eq!(bytes[1..].iter().fold(0, |a, b| a ^ b), 0);
    }
}
