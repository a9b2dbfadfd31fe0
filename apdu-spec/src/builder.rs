//! Owned command APDUs for hosts: encode as one short or extended APDU, or split into a command chain.

use alloc::vec::Vec;

use crate::class::Class;

/// A command that cannot be encoded as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// Data longer than 255 bytes or Ne above 256 needs extended length (or chaining for the data).
    NeedsExtendedLength,
    /// Data longer than 65535 bytes or Ne above 65536.
    TooLong,
    /// The CLA byte has no valid decoding, so the chaining bit cannot be set.
    InvalidClass,
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NeedsExtendedLength => {
                "more than 255 data bytes or Ne above 256 needs extended length"
            }
            Self::TooLong => "more than 65535 data bytes or Ne above 65536",
            Self::InvalidClass => "the CLA byte has no valid decoding",
        })
    }
}

impl core::error::Error for EncodeError {}

/// An owned command APDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// CLA.
    pub cla: u8,
    /// INS.
    pub ins: u8,
    /// P1.
    pub p1: u8,
    /// P2.
    pub p2: u8,
    /// Command data.
    pub data: Vec<u8>,
    /// Ne: how many response bytes are expected (`None`: Le absent).
    pub ne: Option<usize>,
}

impl Command {
    /// A command with no data and no Le.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Self {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            ne: None,
        }
    }
    /// Sets the data field.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self
    }
    /// Sets Ne.
    pub fn with_ne(mut self, ne: usize) -> Self {
        self.ne = Some(ne);
        self
    }

    /// Whether the command fits a short APDU.
    pub fn fits_short(&self) -> bool {
        self.data.len() <= 255 && self.ne.is_none_or(|ne| ne <= 256)
    }

    /// Encodes as a short APDU.
    pub fn to_short(&self) -> Result<Vec<u8>, EncodeError> {
        if !self.fits_short() {
            return Err(EncodeError::NeedsExtendedLength);
        }
        let mut out = Vec::with_capacity(6 + self.data.len());
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if !self.data.is_empty() {
            let lc = u8::try_from(self.data.len()).map_err(|_| EncodeError::NeedsExtendedLength)?;
            out.push(lc);
            out.extend_from_slice(&self.data);
        }
        if let Some(ne) = self.ne {
            // Le 00 stands for 256.
            let le = if ne == 256 { Ok(0) } else { u8::try_from(ne) };
            out.push(le.map_err(|_| EncodeError::NeedsExtendedLength)?);
        }
        Ok(out)
    }

    /// Encodes as an extended-length APDU (cases 2E, 3E, 4E; case 1 stays four bytes).
    pub fn to_extended(&self) -> Result<Vec<u8>, EncodeError> {
        if self.data.len() > 65535 || self.ne.is_some_and(|ne| ne > 65536) {
            return Err(EncodeError::TooLong);
        }
        let mut out = Vec::with_capacity(9 + self.data.len());
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if self.data.is_empty() && self.ne.is_none() {
            return Ok(out);
        }
        out.push(0);
        if !self.data.is_empty() {
            out.extend_from_slice(&(self.data.len() as u16).to_be_bytes());
            out.extend_from_slice(&self.data);
        }
        if let Some(ne) = self.ne {
            out.extend_from_slice(&(if ne == 65536 { 0 } else { ne as u16 }).to_be_bytes());
        }
        Ok(out)
    }

    /// Encodes short when possible and extended otherwise.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        if self.fits_short() {
            self.to_short()
        } else {
            self.to_extended()
        }
    }

    /// Splits the data into short APDUs of at most `fragment` (1-255) bytes, chaining bit set on all but the
    /// last, which carries Le. A command with no more data than one fragment is returned as one APDU.
    pub fn to_chain(&self, fragment: usize) -> Result<Vec<Vec<u8>>, EncodeError> {
        let fragment = fragment.clamp(1, 255);
        if self.ne.is_some_and(|ne| ne > 256) {
            return Err(EncodeError::NeedsExtendedLength);
        }
        let class = Class::decode(self.cla).map_err(|_| EncodeError::InvalidClass)?;
        let chained_cla = Class::encode(
            class.channel(),
            class.proprietary(),
            true,
            class.secure_messaging(),
        )
        .ok_or(EncodeError::InvalidClass)?;
        let chunks: Vec<&[u8]> = if self.data.is_empty() {
            Vec::from([&[][..]])
        } else {
            self.data.chunks(fragment).collect()
        };
        let last = chunks.len() - 1;
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| {
                let piece = Self {
                    cla: if i == last { self.cla } else { chained_cla },
                    data: chunk.to_vec(),
                    ne: if i == last { self.ne } else { None },
                    ..*self
                };
                piece.to_short()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::CommandView;
    use alloc::vec;

    #[test]
    fn short_and_extended() {
        let c = Command::new(0x80, 0x10, 0, 0)
            .with_data(vec![1, 2, 3])
            .with_ne(256);
        assert_eq!(c.to_short().unwrap(), vec![0x80, 0x10, 0, 0, 3, 1, 2, 3, 0]);
        assert_eq!(
            c.to_extended().unwrap(),
            vec![0x80, 0x10, 0, 0, 0, 0, 3, 1, 2, 3, 1, 0]
        );
        let big = Command::new(0x80, 0x10, 0, 0).with_data(vec![7; 300]);
        assert_eq!(big.to_short(), Err(EncodeError::NeedsExtendedLength));
        let bytes = big.to_bytes().unwrap();
        let view = CommandView::parse(&bytes).unwrap();
        assert_eq!((view.data().len(), view.is_extended()), (300, true));
    }

    #[test]
    fn chain_sets_bit_on_all_but_last() {
        let c = Command::new(0x81, 0x10, 0, 0)
            .with_data(vec![5; 600])
            .with_ne(256);
        let chain = c.to_chain(255).unwrap();
        assert_eq!(chain.len(), 3);
        assert_eq!(chain[0][0], 0x91);
        assert_eq!(chain[1][0], 0x91);
        assert_eq!(chain[2][0], 0x81);
        let total: usize = chain
            .iter()
            .map(|a| CommandView::parse(a).unwrap().data().len())
            .sum();
        assert_eq!(total, 600);
        assert_eq!(CommandView::parse(&chain[2]).unwrap().ne(), Some(256));
        assert_eq!(CommandView::parse(&chain[0]).unwrap().ne(), None);
    }
}
