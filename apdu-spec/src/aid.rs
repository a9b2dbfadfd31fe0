//! Application identifiers (ISO 7816-5) and the AIDs of this project.
//!
//! linkcard's applets live under the proprietary RID **`F0 4C 4E 4B 43`**: an RID whose first nibble is `F`
//! is unregistered (ISO 7816-5 category "proprietary"), and `4C 4E 4B 43` is ASCII "LNKC". Under it, each applet
//! type has a one-byte load-file number `NN`:
//!
//! | what | AID |
//! |---|---|
//! | executable load file (package) | `F04C4E4B43 NN` |
//! | module (applet class) | `F04C4E4B43 NN 00` |
//! | default instance | `F04C4E4B43 NN 01` (more instances: `02`, `03`, …) |
//!
//! with `NN` = `01` bank, `02` credit, `FF` loopback (diagnostics). The card manager is the GlobalPlatform
//! Issuer Security Domain, `A0 00 00 01 51 00 00 00`.

/// Shortest AID (a bare RID).
pub const MIN_LEN: usize = 5;
/// Longest AID.
pub const MAX_LEN: usize = 16;

/// An application identifier of 5 to 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aid {
    bytes: [u8; MAX_LEN],
    len: u8,
}

/// A byte string that is not 5-16 bytes long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidAid;

impl Aid {
    /// An AID from 5-16 bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, InvalidAid> {
        if !(MIN_LEN..=MAX_LEN).contains(&bytes.len()) {
            return Err(InvalidAid);
        }
        let mut aid = Self {
            bytes: [0; MAX_LEN],
            len: 0,
        };
        for (dst, src) in aid.bytes.iter_mut().zip(bytes) {
            *dst = *src;
        }
        aid.len = u8::try_from(bytes.len()).map_err(|_| InvalidAid)?;
        Ok(aid)
    }

    /// An AID constant; evaluated at compile time, where a wrong length fails the build.
    #[allow(clippy::indexing_slicing)] // const-evaluated from constants: an out-of-range index fails the build
    pub const fn from_const(bytes: &[u8]) -> Self {
        assert!(
            bytes.len() >= MIN_LEN && bytes.len() <= MAX_LEN,
            "AID must be 5-16 bytes"
        );
        let mut out = [0u8; MAX_LEN];
        let mut i = 0;
        while i < bytes.len() {
            out[i] = bytes[i];
            i += 1;
        }
        Self {
            bytes: out,
            len: bytes.len() as u8,
        }
    }

    /// The AID bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The number of bytes.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Never true: an AID has at least five bytes (present for API symmetry).
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether this AID begins with `prefix` (partial selection by DF name, ISO 7816-4 §7.1.1).
    pub fn starts_with(&self, prefix: &[u8]) -> bool {
        self.as_bytes().starts_with(prefix)
    }

    /// This AID with one more byte appended, if it still fits.
    pub fn with_suffix(&self, byte: u8) -> Option<Self> {
        let mut next = *self;
        let slot = next.bytes.get_mut(usize::from(self.len))?;
        *slot = byte;
        next.len += 1;
        Some(next)
    }
}

impl core::fmt::Debug for Aid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl core::fmt::Display for Aid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self, f)
    }
}

impl AsRef<[u8]> for Aid {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// The GlobalPlatform Issuer Security Domain (card manager).
pub const CARD_MANAGER: Aid = Aid::from_const(&[0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00]);
/// linkcard's proprietary RID: `F0` + ASCII "LNKC".
pub const LINKCARD_RID: [u8; 5] = [0xF0, 0x4C, 0x4E, 0x4B, 0x43];

#[allow(clippy::indexing_slicing)] // const-evaluated from constants: an out-of-range index fails the build
const fn linkcard(suffix: &[u8]) -> Aid {
    let mut bytes = [0u8; 8];
    let mut i = 0;
    while i < 5 {
        bytes[i] = LINKCARD_RID[i];
        i += 1;
    }
    let mut j = 0;
    while j < suffix.len() {
        bytes[5 + j] = suffix[j];
        j += 1;
    }
    Aid::from_const(bytes.split_at(5 + suffix.len()).0)
}

/// Bank applet: load file, module, default instance.
pub const BANK_LOAD_FILE: Aid = linkcard(&[0x01]);
/// Bank applet module.
pub const BANK_MODULE: Aid = linkcard(&[0x01, 0x00]);
/// Bank applet default instance.
pub const BANK_APPLET: Aid = linkcard(&[0x01, 0x01]);
/// Credit applet load file.
pub const CREDIT_LOAD_FILE: Aid = linkcard(&[0x02]);
/// Credit applet module.
pub const CREDIT_MODULE: Aid = linkcard(&[0x02, 0x00]);
/// Credit applet default instance.
pub const CREDIT_APPLET: Aid = linkcard(&[0x02, 0x01]);
/// Loopback (diagnostic) applet load file.
pub const LOOPBACK_LOAD_FILE: Aid = linkcard(&[0xFF]);
/// Loopback applet module.
pub const LOOPBACK_MODULE: Aid = linkcard(&[0xFF, 0x00]);
/// Loopback applet default instance.
pub const LOOPBACK_APPLET: Aid = linkcard(&[0xFF, 0x01]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(Aid::new(&[1, 2, 3, 4]), Err(InvalidAid));
        assert_eq!(Aid::new(&[0; 17]), Err(InvalidAid));
        assert_eq!(Aid::new(&[1, 2, 3, 4, 5]).unwrap().len(), 5);
    }

    #[test]
    fn project_aids() {
        assert_eq!(
            BANK_APPLET.as_bytes(),
            &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0x01, 0x01]
        );
        assert_eq!(
            LOOPBACK_MODULE.as_bytes(),
            &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x00]
        );
        assert!(CREDIT_APPLET.starts_with(&LINKCARD_RID));
        assert!(!CARD_MANAGER.starts_with(&LINKCARD_RID));
        assert_eq!(LOOPBACK_APPLET.with_suffix(7).unwrap().len(), 8);
    }
}
