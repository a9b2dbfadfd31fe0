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
    /// A whole command arrived ([`CardT1::command`]): run it, then send [`CardT1::answer`].
    Command,
    /// A whole command arrived, longer than the command room: run it as [`Event::Command`]; its length,
    /// [`Command::Collected`] beyond the room, tells the card to refuse it.
    CommandTooLong,
    /// The reader granted the waiting time extension asked for: go on with the command.
    WtxGranted,
    /// Nothing to send (a frame that came while the card was busy with a command).
    Nothing,
}

/// Where a T=1 card's APDUs live: the card's own APDU buffers, so that the link keeps no copy of them (on a
/// card RAM is what is shortest), only its first block of a command and its last block sent.
pub trait ApduMemory {
    /// Room for a command that spans several blocks. The link takes it only once the reader has moved on from
    /// the answer before (a new command that does not fit one block), so the room may be where that answer was.
    fn command_room(&mut self) -> &mut [u8];
    /// The data of the answer being sent, as the command left it (the link keeps its status word).
    fn answer_data(&self) -> &[u8];
}

/// A whole command, for the transport to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// It came in one block: these bytes.
    OneBlock(&'a [u8]),
    /// It came in several blocks, collected in [`ApduMemory::command_room`]: this many bytes (more than the
    /// room when it did not fit, and only the room's worth kept).
    Collected(usize),
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

/// The card side of one T=1 link. It keeps the first block of a command and the last block it sent; a command
/// that spans blocks is collected in, and every answer sent from, the card's [`ApduMemory`].
#[derive(Debug)]
pub struct CardT1 {
    config: Config,
    /// The reader's information field size: the card's blocks carry at most this much.
    ifsd: u8,
    /// N(S) of the reader's next I-block.
    reader_sequence: bool,
    /// N(S) of the card's next I-block.
    card_sequence: bool,
    phase: Phase,
    /// The command's first block: the whole command when it fits in one.
    first_block: Vec<u8, MAX_INF>,
    /// Bytes collected in the command room, once a command spans blocks.
    collected: Option<usize>,
    command_too_long: bool,
    /// The answer's status word, sent after its data.
    status: [u8; 2],
    /// The answer's length: data and status word.
    answer_len: usize,
    /// Where the last I-block of the answer sent begins in the answer, and how long it is.
    response_block: (usize, usize),
    /// The last frame sent, for retransmission.
    last: Vec<u8, MAX_BLOCK>,
    /// Whether the answer `response_block` says was sent and the reader has not moved on from it.
    answered: bool,
    /// The reader's NAD with source and destination swapped.
    nad: u8,
}

impl CardT1 {
    pub const fn new(config: Config) -> Self {
        Self {
            config,
            ifsd: DEFAULT_IFS,
            reader_sequence: false,
            card_sequence: false,
            phase: Phase::Receiving,
            first_block: Vec::new(),
            collected: None,
            command_too_long: false,
            status: [0; 2],
            answer_len: 0,
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
        self.forget_command();
        *self = Self::new(self.config);
    }

    /// Takes one frame from the reader; `memory` is the card's, where a long command is collected and the
    /// answer lies.
    pub fn on_frame<M: ApduMemory + ?Sized>(&mut self, frame: &[u8], memory: &mut M) -> Event<'_> {
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
            ) => self.on_information(sequence, more, data, memory),
            (Phase::Sending, Block::Receive { next, .. }) if next == self.card_sequence => {
                Event::Send(self.next_answer_block(memory))
            }
            (Phase::AwaitingWtx, _) => Event::Send(&self.last),
            (_, Block::Receive { next, .. }) => self.on_receive_ready(next, memory),
            _ => self.reject(Acknowledge::OtherError),
        }
    }

    /// An R-block outside an acknowledged chain: the reader asks for the I-block numbered `next` (§11.6.3.2).
    fn on_receive_ready<M: ApduMemory + ?Sized>(&mut self, next: bool, memory: &M) -> Event<'_> {
        if self.answered && next != self.card_sequence {
            // The card's last I-block did not arrive: it goes again.
            return Event::Send(self.encode_answer_block(memory));
        }
        // The card has sent nothing the reader lacks: it asks for the reader's I-block (again, if it was lost).
        let status = if self.collected.is_some() {
            Acknowledge::Ok
        } else {
            Acknowledge::OtherError
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
                self.forget_command();
                self.answer_len = 0;
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

    fn on_information<M: ApduMemory + ?Sized>(
        &mut self,
        sequence: bool,
        more: bool,
        data: &[u8],
        memory: &mut M,
    ) -> Event<'_> {
        if sequence != self.reader_sequence {
            return self.reject(Acknowledge::OtherError);
        }
        self.reader_sequence = !sequence;
        // The reader moved on: the answer before is done with, and its memory may now take this command.
        self.answered = false;
        if self.collected.is_none() {
            self.forget_command();
            // A block carries at most IFSC (at most MAX_INF) bytes: `Block::parse` checked it.
            let _ = self.first_block.extend_from_slice(data);
            if more {
                self.collected = Some(0);
            }
        }
        if self.collected.is_some() {
            self.collect(data, memory);
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

    /// Appends a block of a long command to the room, as much as fits; the length counts all of it.
    fn collect<M: ApduMemory + ?Sized>(&mut self, data: &[u8], memory: &mut M) {
        let room = memory.command_room();
        let at = self.collected.unwrap_or(0);
        let kept = room.len().saturating_sub(at).min(data.len());
        if let (Some(destination), Some(source)) = (room.get_mut(at..at + kept), data.get(..kept)) {
            destination.copy_from_slice(source);
        }
        self.command_too_long |= kept < data.len();
        self.collected = Some(at.saturating_add(data.len()));
    }

    /// Drops the command's first block (zeroized: it may have been a PIN) and what was collected.
    fn forget_command(&mut self) {
        self.first_block.iter_mut().for_each(|byte| *byte = 0);
        self.first_block.clear();
        self.collected = None;
        self.command_too_long = false;
    }

    /// The command received whole, to run before [`Self::answer`].
    pub fn command(&self) -> Command<'_> {
        match self.collected {
            None => Command::OneBlock(&self.first_block),
            Some(len) => Command::Collected(len),
        }
    }

    /// The first block of the command received (all of it when it is [`Command::OneBlock`]): its header, so that
    /// the transport can tell a long-running command and ask for more time first.
    pub fn command_start(&self) -> &[u8] {
        &self.first_block
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

    /// Once the command has run: its answer is [`ApduMemory::answer_data`] then `status`; sends the first block
    /// (the rest follows as the reader acknowledges each).
    pub fn answer<M: ApduMemory + ?Sized>(&mut self, status: [u8; 2], memory: &M) -> &[u8] {
        self.forget_command();
        self.status = status;
        self.answer_len = memory.answer_data().len() + status.len();
        self.response_block = (0, 0);
        self.next_answer_block(memory)
    }

    /// The answer's block after the one last sent.
    fn next_answer_block<M: ApduMemory + ?Sized>(&mut self, memory: &M) -> &[u8] {
        let start = self.response_block.0 + self.response_block.1;
        let length = self
            .answer_len
            .saturating_sub(start)
            .min(usize::from(self.ifsd));
        self.response_block = (start, length);
        self.card_sequence = !self.card_sequence;
        self.answered = true;
        self.encode_answer_block(memory)
    }

    /// Encodes the answer's block `response_block`, numbered `!card_sequence`: sent now or again. Its
    /// information field is the part of the answer's data and of its status word it covers.
    fn encode_answer_block<M: ApduMemory + ?Sized>(&mut self, memory: &M) -> &[u8] {
        let (start, length) = self.response_block;
        let end = start + length;
        let more = end < self.answer_len;
        self.phase = if more {
            Phase::Sending
        } else {
            Phase::Receiving
        };
        let data = memory.answer_data();
        let split = data.len();
        let head = data.get(start.min(split)..end.min(split)).unwrap_or(&[]);
        let status_part = start.saturating_sub(split)..end.saturating_sub(split);
        let tail = self.status.get(status_part).unwrap_or(&[]);
        let block = Block::Information {
            sequence: !self.card_sequence,
            more,
            data: head,
        };
        block.encode_with_tail(self.nad, self.config.edc, tail, &mut self.last);
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
