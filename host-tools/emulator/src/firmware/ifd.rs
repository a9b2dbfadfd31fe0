//! The reader's half of ISO/IEC 7816-3 T=1 (the IFD), over any byte stream with a read timeout: what a PC/SC
//! reader does for a contact card, done here for the firmware card on QEMU's UART.
//!
//! One APDU at a time: the command goes out in I-blocks of at most IFSC bytes (chained, each acknowledged by the
//! card's R-block), the response comes back in the card's I-blocks (chained, each acknowledged by ours). On the
//! way, S(WTX) requests are granted (the next wait is that many block waiting times), S(IFS) requests answered,
//! S(ABORT) ends the exchange.
//!
//! Error recovery (§11.6.3): a block that does not arrive within the waiting time, or arrives damaged, is answered
//! with an R-block asking for it again (EDC error or other error); after [`RETRIES`] failed attempts in a row
//! the reader sends S(RESYNCH) (up to [`RETRIES`] times) and, once the card confirms, sends the whole command
//! again from sequence number 0. If that fails too the card is mute: [`IfdError::Mute`], and the caller resets it.
//! As the standard has it, a command whose answer was lost before the resynchronisation may run twice on the card;
//! the applets' own counters (the ATC, token ids) make a repeated payment command harmless, not the link.
//! The chunk size is fixed for a command when it starts: an S(IFS) the card sends mid-command applies from the next.

use std::io::{self, Read, Write};
use std::time::Duration;

use card_t1::{Acknowledge, Block, Edc, FrameError, Supervisory, block::MAX_BLOCK};

/// Attempts before resynchronisation, and resynchronisations before giving up (§11.6.3.2: three).
pub const RETRIES: usize = 3;

/// A byte stream with a settable read timeout: the UART's TCP connection, or a test double.
pub trait ByteLink: Read + Write {
    /// Waits at most `timeout` for the next read (`None`: no limit).
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;
    /// Throws away what has arrived and not been read, without waiting.
    fn discard_pending(&mut self) -> io::Result<()>;
}

impl ByteLink for std::net::TcpStream {
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(timeout)
    }

    fn discard_pending(&mut self) -> io::Result<()> {
        self.set_nonblocking(true)?;
        let mut sink = [0u8; 256];
        let outcome = loop {
            match self.read(&mut sink) {
                Ok(0) => break Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.set_nonblocking(false)?;
        outcome
    }
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum IfdError {
    /// The stream failed (QEMU went away).
    #[error("the card's line failed: {0}")]
    Io(#[from] io::Error),
    /// No valid answer after every retry and resynchronisation.
    #[error("the card does not answer (T=1 recovery failed)")]
    Mute,
    /// The card aborted the exchange with S(ABORT).
    #[error("the card aborted the exchange")]
    Aborted,
    /// The card's response is longer than any response APDU.
    #[error("the card's response exceeds {0} bytes")]
    ResponseTooLong(usize),
}

/// What the card's T=1 parameters are (from its ATR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// The largest information field the card accepts.
    pub ifsc: u8,
    pub edc: Edc,
    /// How long to wait for a block.
    pub block_waiting_time: Duration,
}

/// How often each block has been sent since the exchange last made progress: a block sent [`RETRIES`] + 1 times
/// means the link is lost (§11.6.3.2: a block is sent again at most three times), whether the sends follow one
/// another or alternate with other blocks (a card that restarts whenever the command reaches it answers the
/// command with its ATR, then asks for it again, without end).
#[derive(Default)]
struct Attempts {
    sent: Vec<(Vec<u8>, usize)>,
    /// Every block sent in this exchange: a card that keeps the reader busy (S-blocks without end) is mute too.
    total: usize,
}

/// More blocks than the longest exchange needs (a 2 KiB response in blocks of 8 bytes, each retried).
const MOST_BLOCKS: usize = 4096;

impl Attempts {
    /// Counts sending `frame`; [`IfdError::Mute`] when it would be once too often.
    fn count(&mut self, frame: &[u8]) -> Result<(), IfdError> {
        self.total += 1;
        if self.total > MOST_BLOCKS {
            return Err(IfdError::Mute);
        }
        // An S-block answers the card's request (a WTX each long step of a long command): not a retransmission.
        // R-blocks asking for the same block count as one, whatever error they report (their status bits and so
        // their EDC differ): they are compared by NAD and PCB without those bits.
        let frame = match frame {
            [_, pcb, ..] if pcb & 0xC0 == 0xC0 => return Ok(()),
            [nad, pcb, ..] if pcb & 0xC0 == 0x80 => vec![*nad, pcb & 0xF0],
            _ => frame.to_vec(),
        };
        let times = match self.sent.iter_mut().find(|(sent, _)| *sent == frame) {
            Some((_, times)) => {
                *times += 1;
                *times
            }
            None => {
                self.sent.push((frame, 1));
                1
            }
        };
        if times > RETRIES + 1 {
            return Err(IfdError::Mute);
        }
        Ok(())
    }

    /// The card sent the next block: what was sent before no longer counts.
    fn progress(&mut self) {
        self.sent.clear();
    }
}

/// One outcome of waiting for a block: a whole, valid frame, or (nothing in time, or a frame that does not
/// parse) how the R-block asking for it again reports the error.
type Reply = Result<Vec<u8>, Acknowledge>;

/// The reader side of one T=1 link.
#[derive(Debug)]
pub struct Ifd<L> {
    link: L,
    params: Params,
    /// N(S) of the reader's next I-block.
    reader_sequence: bool,
    /// N(S) of the card's next I-block.
    card_sequence: bool,
    /// How many block waiting times the next wait may take (a granted WTX), reset after it.
    wait_multiplier: u32,
    longest_response: usize,
}

impl<L: ByteLink> Ifd<L> {
    /// A link to a card just reset: both sequence numbers 0.
    pub fn new(link: L, params: Params, longest_response: usize) -> Self {
        Self {
            link,
            params,
            reader_sequence: false,
            card_sequence: false,
            wait_multiplier: 1,
            longest_response,
        }
    }

    /// The stream, back.
    pub fn into_link(self) -> L {
        self.link
    }

    /// Sends `apdu` and answers the card's response APDU, resynchronising once if the link is lost.
    pub fn transceive(&mut self, apdu: &[u8]) -> Result<Vec<u8>, IfdError> {
        match self.exchange(apdu) {
            Err(IfdError::Mute) => {
                self.resynchronise()?;
                self.exchange(apdu)
            }
            outcome => outcome,
        }
    }

    /// One attempt at the whole exchange.
    fn exchange(&mut self, apdu: &[u8]) -> Result<Vec<u8>, IfdError> {
        let chunk = usize::from(self.params.ifsc.max(1));
        let mut pieces = apdu.chunks(chunk).peekable();
        loop {
            let data = pieces.next().unwrap_or(&[]);
            let more = pieces.peek().is_some();
            let block = self.encode(Block::Information {
                sequence: self.reader_sequence,
                more,
                data,
            });
            if more {
                self.send_chained(&block)?;
            } else {
                return self.send_last(&block);
            }
        }
    }

    /// Sends an I-block with M set and waits for the card's acknowledgement, R(N(R) = the next N(S)).
    fn send_chained(&mut self, block: &[u8]) -> Result<(), IfdError> {
        let mut attempts = Attempts::default();
        let mut outgoing = block.to_vec();
        loop {
            attempts.count(&outgoing)?;
            self.send(&outgoing)?;
            let reply = self.receive()?;
            outgoing = match self.parse(&reply) {
                Ok(Block::Receive { next, .. }) if next != self.reader_sequence => {
                    self.reader_sequence = !self.reader_sequence;
                    return Ok(());
                }
                // The card asks for our block again.
                Ok(Block::Receive { .. }) => block.to_vec(),
                Ok(Block::Supervisory {
                    kind,
                    response: false,
                }) => self.answer_request(kind)?,
                Ok(_) => self.receive_ready(Acknowledge::OtherError),
                Err(status) => self.receive_ready(status),
            };
        }
    }

    /// Sends the command's last I-block and collects the response's I-blocks.
    fn send_last(&mut self, block: &[u8]) -> Result<Vec<u8>, IfdError> {
        let mut response = Vec::new();
        let mut attempts = Attempts::default();
        let mut outgoing = block.to_vec();
        let mut acknowledged = false;
        loop {
            attempts.count(&outgoing)?;
            self.send(&outgoing)?;
            let reply = self.receive()?;
            outgoing = match self.parse(&reply) {
                Ok(Block::Information {
                    sequence,
                    more,
                    data,
                }) => {
                    if !acknowledged {
                        // The card's first I-block acknowledges our last one.
                        acknowledged = true;
                        self.reader_sequence = !self.reader_sequence;
                    }
                    if sequence == self.card_sequence {
                        self.card_sequence = !self.card_sequence;
                        response.extend_from_slice(data);
                        if response.len() > self.longest_response {
                            return Err(IfdError::ResponseTooLong(self.longest_response));
                        }
                        if !more {
                            return Ok(response);
                        }
                        attempts.progress();
                    }
                    // Acknowledge it (again, if it was a repeat of one already taken).
                    self.receive_ready(Acknowledge::Ok)
                }
                // Our block did not arrive whole: send it again.
                Ok(Block::Receive { .. }) if !acknowledged => block.to_vec(),
                Ok(Block::Supervisory {
                    kind,
                    response: false,
                }) => self.answer_request(kind)?,
                Ok(_) => self.receive_ready(Acknowledge::OtherError),
                Err(status) => self.receive_ready(status),
            };
        }
    }

    /// The answer to the card's S-block request; S(ABORT) ends the exchange.
    fn answer_request(&mut self, kind: Supervisory) -> Result<Vec<u8>, IfdError> {
        match kind {
            Supervisory::Wtx(multiplier) => self.wait_multiplier = u32::from(multiplier.max(1)),
            Supervisory::Ifs(size) => self.params.ifsc = size,
            Supervisory::Abort => {
                let answer = self.encode(Block::Supervisory {
                    kind,
                    response: true,
                });
                self.send(&answer)?;
                return Err(IfdError::Aborted);
            }
            Supervisory::Resynch => {}
        }
        Ok(self.encode(Block::Supervisory {
            kind,
            response: true,
        }))
    }

    /// S(RESYNCH) until the card confirms it; then both sequence numbers are 0 again.
    fn resynchronise(&mut self) -> Result<(), IfdError> {
        let request = self.encode(Block::Supervisory {
            kind: Supervisory::Resynch,
            response: false,
        });
        for _ in 0..RETRIES {
            self.send(&request)?;
            let reply = self.receive()?;
            if let Ok(Block::Supervisory {
                kind: Supervisory::Resynch,
                response: true,
            }) = self.parse(&reply)
            {
                self.reader_sequence = false;
                self.card_sequence = false;
                return Ok(());
            }
        }
        Err(IfdError::Mute)
    }

    /// The R-block asking for the card's next I-block (or reporting `status` about the one that failed).
    fn receive_ready(&self, status: Acknowledge) -> Vec<u8> {
        self.encode(Block::Receive {
            next: self.card_sequence,
            status,
        })
    }

    fn encode(&self, block: Block<'_>) -> Vec<u8> {
        let mut out = heapless::Vec::<u8, MAX_BLOCK>::new();
        block.encode(0, self.params.edc, &mut out);
        out.to_vec()
    }

    /// Sends `frame` after throwing away anything stale on the line (a block that came after its wait was over,
    /// or a repeat): what comes next answers this block, and no old byte can be read as part of it.
    fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.link.discard_pending()?;
        self.link.write_all(frame)?;
        self.link.flush()
    }

    /// Waits for one block: the prologue, then as many bytes as LEN says and the EDC. A silence longer than the
    /// waiting time, or a frame that does not parse, is an `Err` reply (what was left of it is read away).
    fn receive(&mut self) -> Result<Reply, IfdError> {
        let wait = self.params.block_waiting_time * self.wait_multiplier;
        self.wait_multiplier = 1;
        let mut frame = vec![0u8; 3];
        if !self.read_within(&mut frame, wait)? {
            return Ok(Err(Acknowledge::OtherError));
        }
        let rest = usize::from(frame[2]) + self.params.edc.size();
        frame.resize(3 + rest, 0);
        // The rest of a block follows at once: a short wait tells a cut frame.
        if !self.read_within(&mut frame[3..], CHARACTER_WAIT)? {
            return Ok(Err(Acknowledge::OtherError));
        }
        match Block::parse(&frame, self.params.edc, card_t1::block::MAX_INF as u8) {
            Ok(_) => Ok(Ok(frame)),
            Err(error) => {
                self.drain()?;
                Ok(Err(FrameError::acknowledge(error)))
            }
        }
    }

    /// The block a reply holds, or how to report that it holds none.
    fn parse<'f>(&self, reply: &'f Reply) -> Result<Block<'f>, Acknowledge> {
        let frame = reply.as_deref().map_err(|status| *status)?;
        let parsed = Block::parse(frame, self.params.edc, card_t1::block::MAX_INF as u8);
        parsed
            .map(|(_, block)| block)
            .map_err(FrameError::acknowledge)
    }

    /// Fills `buffer` within `wait`; `false` on a timeout (the partial frame is read away).
    fn read_within(&mut self, buffer: &mut [u8], wait: Duration) -> Result<bool, IfdError> {
        self.link
            .set_timeout(Some(wait.max(Duration::from_millis(1))))?;
        match self.link.read_exact(buffer) {
            Ok(()) => Ok(true),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                self.drain()?;
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reads away whatever is left on the line (a cut or garbled frame), so the next block starts clean.
    fn drain(&mut self) -> Result<(), IfdError> {
        self.link.set_timeout(Some(CHARACTER_WAIT))?;
        let mut sink = [0u8; 64];
        loop {
            match self.link.read(&mut sink) {
                Ok(0) => return Err(IfdError::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// How long the bytes of one block may lag each other: QEMU's UART delivers a block at once.
const CHARACTER_WAIT: Duration = Duration::from_millis(50);
