//! The card's half of T=1 (ISO/IEC 7816-3 §11): blocks in, blocks out, whole command APDUs handed to the card
//! and whole responses sent back, chained both ways, with the error handling of §11.6 as it applies to a card.
//!
//! The engine does no I/O: the transport feeds it frames ([`crate::Framer`] cuts them from the byte stream) and
//! sends the frames it answers.

use heapless::Vec;

use crate::block::{Acknowledge, Block, DEFAULT_IFS, Edc, MAX_BLOCK, MAX_INF, Supervisory};

/// How the card speaks T=1; the ATR announces it (see [`crate::atr`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The largest information field the card receives (IFSC).
    pub ifsc: u8,
    pub edc: Edc,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ifsc: MAX_INF as u8,
            edc: Edc::Lrc,
        }
    }
}

/// What the transport does after a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// Send this frame.
    Send(&'a [u8]),
    /// A whole command arrived: run it through [`CardT1::answer`].
    Command,
    /// A whole command arrived, longer than the card's command buffer: answer it with an error status through
    /// [`CardT1::answer`] (its command is cut short).
    CommandTooLong,
    /// The reader granted the waiting time extension asked for: go on with the command.
    WtxGranted,
    /// Nothing to send (a frame that came while the card was busy with a command).
    Nothing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the reader's next I-block, or the rest of its chain.
    Receiving,
    /// A whole command was handed out; its answer is due.
    Processing,
    /// S(WTX request) sent; waiting for the reader's response.
    AwaitingWtx,
    /// A chained answer is going out: the last block sent had its M bit set and awaits an acknowledgement.
    Sending,
}

/// The card side of one T=1 link, with a command buffer of `COMMAND` bytes and a response buffer of `RESPONSE`.
#[derive(Debug)]
pub struct CardT1<const COMMAND: usize, const RESPONSE: usize> {
    config: Config,
    /// The reader's information field size: the card's blocks carry at most this much.
    ifsd: u8,
    /// N(S) of the reader's next I-block.
    reader_sequence: bool,
    /// N(S) of the card's next I-block.
    card_sequence: bool,
    phase: Phase,
    command: Vec<u8, COMMAND>,
    command_too_long: bool,
    response: Vec<u8, RESPONSE>,
    /// Where the last I-block of the answer sent begins in `response`, and how long it is.
    response_block: (usize, usize),
    /// The last frame sent, for retransmission.
    last: Vec<u8, MAX_BLOCK>,
    /// Whether an I-block was sent since the reset (the one `response_block` says).
    answered: bool,
    /// The reader's NAD with source and destination swapped.
    nad: u8,
}

impl<const COMMAND: usize, const RESPONSE: usize> CardT1<COMMAND, RESPONSE> {
    pub const fn new(config: Config) -> Self {
        Self {
            config,
            ifsd: DEFAULT_IFS,
            reader_sequence: false,
            card_sequence: false,
            phase: Phase::Receiving,
            command: Vec::new(),
            command_too_long: false,
            response: Vec::new(),
            response_block: (0, 0),
            last: Vec::new(),
            answered: false,
            nad: 0,
        }
    }

    pub fn config(&self) -> Config {
        self.config
    }

    /// The reader's current information field size.
    pub fn ifsd(&self) -> u8 {
        self.ifsd
    }

    /// Back to the state after the ATR (a reset of the card).
    pub fn reset(&mut self) {
        *self = Self::new(self.config);
    }

    /// Takes one frame from the reader.
    pub fn on_frame(&mut self, frame: &[u8]) -> Event<'_> {
        let block = match Block::parse(frame, self.config.edc, self.config.ifsc) {
            Ok((nad, block)) => {
                self.nad = (nad & 0x07) << 4 | (nad >> 4) & 0x07;
                block
            }
            Err(_) if self.phase == Phase::Processing => return Event::Nothing,
            // The reader's answer to the card's S(WTX request) was lost: the request goes again (§11.6.3.2).
            Err(_) if self.phase == Phase::AwaitingWtx => return Event::Send(&self.last),
            Err(error) => return self.reject(error.acknowledge()),
        };
        match (self.phase, block) {
            (Phase::Processing, _) => Event::Nothing,
            (
                _,
                Block::Supervisory {
                    kind,
                    response: false,
                },
            ) => self.on_request(kind),
            (
                Phase::AwaitingWtx,
                Block::Supervisory {
                    kind: Supervisory::Wtx(_),
                    response: true,
                },
            ) => {
                self.phase = Phase::Processing;
                Event::WtxGranted
            }
            (
                Phase::Receiving,
                Block::Information {
                    sequence,
                    more,
                    data,
                },
            ) => self.on_information(sequence, more, data),
            (Phase::Sending, Block::Receive { next, .. }) if next == self.card_sequence => {
                Event::Send(self.next_answer_block())
            }
            (Phase::AwaitingWtx, _) => Event::Send(&self.last),
            (_, Block::Receive { next, .. }) => self.on_receive_ready(next),
            _ => self.reject(Acknowledge::OtherError),
        }
    }

    /// An R-block outside an acknowledged chain: the reader asks for the I-block numbered `next` (§11.6.3.2).
    fn on_receive_ready(&mut self, next: bool) -> Event<'_> {
        if self.answered && next != self.card_sequence {
            // The card's last I-block did not arrive: it goes again.
            return Event::Send(self.encode_answer_block());
        }
        // The card has sent nothing the reader lacks: it asks for the reader's I-block (again, if it was lost).
        let status = if self.command.is_empty() {
            Acknowledge::OtherError
        } else {
            Acknowledge::Ok
        };
        self.reject(status)
    }

    /// Answers an R-block reporting `status`, naming the I-block the card expects.
    fn reject(&mut self, status: Acknowledge) -> Event<'_> {
        let next = self.reader_sequence;
        self.send(Block::Receive { next, status })
    }

    fn on_request(&mut self, kind: Supervisory) -> Event<'_> {
        match kind {
            Supervisory::Resynch => self.reset(),
            Supervisory::Ifs(size) => self.ifsd = size,
            Supervisory::Abort => {
                self.command.clear();
                self.command_too_long = false;
                self.response.clear();
                self.response_block = (0, 0);
                self.answered = false;
                self.phase = Phase::Receiving;
            }
            // Only a card asks for more time.
            Supervisory::Wtx(_) => return self.reject(Acknowledge::OtherError),
        }
        self.send(Block::Supervisory {
            kind,
            response: true,
        })
    }

    fn on_information(&mut self, sequence: bool, more: bool, data: &[u8]) -> Event<'_> {
        if sequence != self.reader_sequence {
            return self.reject(Acknowledge::OtherError);
        }
        self.reader_sequence = !sequence;
        if self.command.extend_from_slice(data).is_err() {
            self.command_too_long = true;
        }
        if more {
            let next = self.reader_sequence;
            return self.send(Block::Receive {
                next,
                status: Acknowledge::Ok,
            });
        }
        self.phase = Phase::Processing;
        if self.command_too_long {
            Event::CommandTooLong
        } else {
            Event::Command
        }
    }

    /// The command received whole, before [`Self::answer`] runs it (so that the transport can tell a long one
    /// and ask for more time first).
    pub fn command(&self) -> &[u8] {
        &self.command
    }

    /// While a command runs: the S(WTX request) asking the reader for `multiplier` times the block waiting time.
    /// The reader's answer comes back through [`Self::on_frame`] as [`Event::WtxGranted`].
    pub fn request_wtx(&mut self, multiplier: u8) -> &[u8] {
        debug_assert_eq!(self.phase, Phase::Processing);
        self.phase = Phase::AwaitingWtx;
        self.encode(Block::Supervisory {
            kind: Supervisory::Wtx(multiplier),
            response: false,
        });
        &self.last
    }

    /// Runs the command received through `run(command, response) -> response length`, then answers the first
    /// block of its response (the rest follows as the reader acknowledges each).
    pub fn answer(&mut self, run: impl FnOnce(&[u8], &mut [u8]) -> usize) -> &[u8] {
        self.response.clear();
        let _ = self.response.resize_default(RESPONSE);
        let length = run(&self.command, &mut self.response).min(RESPONSE);
        self.response.truncate(length);
        self.command.clear();
        self.command_too_long = false;
        self.response_block = (0, 0);
        self.next_answer_block()
    }

    /// The response's block after the one last sent.
    fn next_answer_block(&mut self) -> &[u8] {
        let start = self.response_block.0 + self.response_block.1;
        let length = (self.response.len() - start).min(usize::from(self.ifsd));
        self.response_block = (start, length);
        self.card_sequence = !self.card_sequence;
        self.answered = true;
        self.encode_answer_block()
    }

    /// Encodes the answer's block `response_block`, numbered `!card_sequence`: sent now or again.
    fn encode_answer_block(&mut self) -> &[u8] {
        let (start, length) = self.response_block;
        let more = start + length < self.response.len();
        self.phase = if more {
            Phase::Sending
        } else {
            Phase::Receiving
        };
        let block = Block::Information {
            sequence: !self.card_sequence,
            more,
            data: self.response.get(start..start + length).unwrap_or(&[]),
        };
        block.encode(self.nad, self.config.edc, &mut self.last);
        &self.last
    }

    fn send(&mut self, block: Block<'_>) -> Event<'_> {
        self.encode(block);
        Event::Send(&self.last)
    }

    fn encode(&mut self, block: Block<'_>) {
        block.encode(self.nad, self.config.edc, &mut self.last);
    }
}
