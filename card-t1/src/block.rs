//! T=1 blocks (ISO/IEC 7816-3 §11.3): the prologue (NAD, PCB, LEN), the information field and the epilogue (the
//! error detection code, one LRC byte or two CRC bytes).

use heapless::Vec;

/// The largest information field a block may carry (IFSC and IFSD are at most 254).
pub const MAX_INF: usize = 254;
/// The largest block: prologue, information field, a two-byte CRC.
pub const MAX_BLOCK: usize = 3 + MAX_INF + 2;
/// The information field size both sides assume until told otherwise (§11.4.2).
pub const DEFAULT_IFS: u8 = 32;

/// Which error detection code the blocks end with: announced by the card in its ATR (TC3, §11.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Edc {
    /// One byte, the exclusive-or of every byte before it (the default).
    #[default]
    Lrc,
    /// Two bytes, the CRC-16 of ISO/IEC 13239 (poly 0x1021 reflected, initial value 0xFFFF), high byte first, as
    /// PC/SC readers compute it.
    Crc,
}

const CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_MCRF4XX);

impl Edc {
    /// How many bytes the code takes.
    pub const fn size(self) -> usize {
        match self {
            Self::Lrc => 1,
            Self::Crc => 2,
        }
    }

    /// The code of `bytes`, in [`Self::size`] bytes.
    fn compute(self, bytes: &[u8]) -> Vec<u8, 2> {
        let code = match self {
            Self::Lrc => [bytes.iter().fold(0, |lrc, byte| lrc ^ byte), 0],
            Self::Crc => CRC.checksum(bytes).to_be_bytes(),
        };
        code.into_iter().take(self.size()).collect()
    }
}

/// The kind of an S-block (§11.3.2.2, PCB bits 5 to 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supervisory {
    Resynch,
    /// The information field size the sender can receive, in the block's one-byte information field.
    Ifs(u8),
    Abort,
    /// The block waiting time multiplier, in the block's one-byte information field.
    Wtx(u8),
}

/// What an R-block says about the block it answers (§11.3.2.2, PCB bits 4 to 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acknowledge {
    /// Error-free: an acknowledgement within a chain.
    Ok,
    /// A block arrived with a wrong EDC or parity.
    EdcError,
    /// Any other error: a wrong length, an unknown PCB, a block out of turn.
    OtherError,
}

/// A block, its information field borrowed from the frame it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block<'a> {
    /// Application data; `more` is set on every block of a chain but the last.
    Information {
        sequence: bool,
        more: bool,
        data: &'a [u8],
    },
    /// `next` is the sequence number of the I-block expected next.
    Receive {
        next: bool,
        status: Acknowledge,
    },
    Supervisory {
        kind: Supervisory,
        response: bool,
    },
}

/// Why a frame is not a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The error detection code does not match.
    Edc,
    /// LEN disagrees with the frame's length, or exceeds the information field size the receiver announced.
    Length,
    /// A PCB no block has, or an S-block whose information field is not what its kind requires.
    Pcb,
}

impl FrameError {
    /// How the receiver's R-block reports it (§11.6.3.2).
    pub const fn acknowledge(self) -> Acknowledge {
        match self {
            Self::Edc => Acknowledge::EdcError,
            Self::Length | Self::Pcb => Acknowledge::OtherError,
        }
    }
}

impl<'a> Block<'a> {
    /// Parses a whole frame (prologue, information field, EDC) whose information field may hold up to `max_inf`
    /// bytes (the receiver's IFS).
    pub fn parse(frame: &'a [u8], edc: Edc, max_inf: u8) -> Result<(u8, Self), FrameError> {
        let (Some(&nad), Some(&pcb), Some(&len)) = (frame.first(), frame.get(1), frame.get(2))
        else {
            return Err(FrameError::Length);
        };
        let body_end = frame
            .len()
            .checked_sub(edc.size())
            .ok_or(FrameError::Length)?;
        let (body, code) = frame.split_at(body_end);
        if code != edc.compute(body).as_slice() {
            return Err(FrameError::Edc);
        }
        let data = body.get(3..).ok_or(FrameError::Length)?;
        if data.len() != usize::from(len) || len > max_inf {
            return Err(FrameError::Length);
        }
        Self::from_pcb(pcb, data).map(|block| (nad, block))
    }

    fn from_pcb(pcb: u8, data: &'a [u8]) -> Result<Self, FrameError> {
        match pcb >> 6 {
            0b00 | 0b01 if pcb & 0x1F == 0 => Ok(Self::Information {
                sequence: pcb & 0x40 != 0,
                more: pcb & 0x20 != 0,
                data,
            }),
            0b10 if pcb & 0x20 == 0 && data.is_empty() => {
                let status = match pcb & 0x0F {
                    0 => Acknowledge::Ok,
                    1 => Acknowledge::EdcError,
                    2 => Acknowledge::OtherError,
                    _ => return Err(FrameError::Pcb),
                };
                Ok(Self::Receive {
                    next: pcb & 0x10 != 0,
                    status,
                })
            }
            0b11 => {
                let kind = match (pcb & 0x1F, data) {
                    (0x00, []) => Supervisory::Resynch,
                    (0x01, [size]) if (1..=MAX_INF as u8).contains(size) => Supervisory::Ifs(*size),
                    (0x02, []) => Supervisory::Abort,
                    (0x03, [multiplier]) => Supervisory::Wtx(*multiplier),
                    _ => return Err(FrameError::Pcb),
                };
                Ok(Self::Supervisory {
                    kind,
                    response: pcb & 0x20 != 0,
                })
            }
            _ => Err(FrameError::Pcb),
        }
    }

    fn pcb_and_data(&self) -> (u8, Option<u8>, &'a [u8]) {
        match *self {
            Self::Information {
                sequence,
                more,
                data,
            } => (u8::from(sequence) << 6 | u8::from(more) << 5, None, data),
            Self::Receive { next, status } => {
                let code = match status {
                    Acknowledge::Ok => 0,
                    Acknowledge::EdcError => 1,
                    Acknowledge::OtherError => 2,
                };
                (0x80 | u8::from(next) << 4 | code, None, &[])
            }
            Self::Supervisory { kind, response } => {
                let (code, value) = match kind {
                    Supervisory::Resynch => (0, None),
                    Supervisory::Ifs(size) => (1, Some(size)),
                    Supervisory::Abort => (2, None),
                    Supervisory::Wtx(multiplier) => (3, Some(multiplier)),
                };
                (0xC0 | u8::from(response) << 5 | code, value, &[])
            }
        }
    }

    /// Writes the whole frame into `out` (cleared first). An information field longer than [`MAX_INF`] is cut to
    /// it: callers split their data into blocks of at most the receiver's IFS.
    pub fn encode(&self, nad: u8, edc: Edc, out: &mut Vec<u8, MAX_BLOCK>) {
        self.encode_with_tail(nad, edc, &[], out);
    }

    /// [`Self::encode`] with `tail` after the information field (an answer's status word, which does not lie
    /// after its data in the card's memory); the whole field is cut to [`MAX_INF`].
    pub fn encode_with_tail(&self, nad: u8, edc: Edc, tail: &[u8], out: &mut Vec<u8, MAX_BLOCK>) {
        let (pcb, value, data) = self.pcb_and_data();
        let value = value.as_slice();
        let data = data.get(..MAX_INF).unwrap_or(data);
        let tail = tail.get(..MAX_INF - data.len()).unwrap_or(tail);
        out.clear();
        let len = (value.len() + data.len() + tail.len()) as u8;
        // At most 3 + 254 bytes so far: the room is there.
        let _ = out.extend_from_slice(&[nad, pcb, len]);
        let _ = out.extend_from_slice(value);
        let _ = out.extend_from_slice(data);
        let _ = out.extend_from_slice(tail);
        let code = edc.compute(out);
        let _ = out.extend_from_slice(&code);
        debug_assert_eq!(out.len(), 3 + usize::from(len) + edc.size());
    }
}

/// Cuts a byte stream into frames: a block's length is in its third byte. A receiver that sees the line fall
/// silent mid-block (the character waiting time passed) calls [`Self::reset`] and starts over with the next byte.
#[derive(Debug, Clone, Default)]
pub struct Framer {
    // LEN may say 255 (no block has it): room for the whole of such a frame, so that it ends and is refused.
    frame: Vec<u8, { MAX_BLOCK + 1 }>,
    edc: Edc,
}

impl Framer {
    pub fn new(edc: Edc) -> Self {
        Self {
            frame: Vec::new(),
            edc,
        }
    }

    /// Takes one byte; answers the whole frame once its last byte came.
    pub fn push(&mut self, byte: u8) -> Option<&[u8]> {
        if self.complete() {
            self.frame.clear();
        }
        // `complete` holds at the latest at 3 + 255 + 2 bytes: the room is there.
        let _ = self.frame.push(byte);
        self.complete().then_some(self.frame.as_slice())
    }

    /// Forgets a partial frame.
    pub fn reset(&mut self) {
        self.frame.clear();
    }

    /// Whether a frame has begun and not ended.
    pub fn is_partial(&self) -> bool {
        !self.frame.is_empty() && !self.complete()
    }

    fn complete(&self) -> bool {
        self.frame
            .get(2)
            .is_some_and(|len| self.frame.len() >= 3 + usize::from(*len) + self.edc.size())
    }
}
