//! The card's half of T=1 with APDU buffers of its own and the application as a function: for hosts, tests and
//! fuzzing. A card OS lends its own buffers instead ([`ApduMemory`]), as the firmware does.

use heapless::Vec;

use crate::card::{ApduMemory, CardT1, Command, Config, Event};

/// A command room and an answer buffer of `N` bytes each.
#[derive(Debug)]
struct Buffers<const N: usize> {
    room: [u8; N],
    answer: Vec<u8, N>,
    /// How much of `answer` is data (the status word follows).
    data_len: usize,
}

impl<const N: usize> ApduMemory for Buffers<N> {
    fn command_room(&mut self) -> &mut [u8] {
        &mut self.room
    }

    fn answer_data(&self) -> &[u8] {
        self.answer.get(..self.data_len).unwrap_or_default()
    }
}

/// [`CardT1`] with buffers of `N` bytes for the command and the answer.
#[derive(Debug)]
pub struct BufferedCardT1<const N: usize> {
    link: CardT1,
    buffers: Buffers<N>,
}

impl<const N: usize> BufferedCardT1<N> {
    pub const fn new(config: Config) -> Self {
        Self {
            link: CardT1::new(config),
            buffers: Buffers {
                room: [0; N],
                answer: Vec::new(),
                data_len: 0,
            },
        }
    }

    /// The reader's current information field size.
    pub fn ifsd(&self) -> u8 {
        self.link.ifsd()
    }

    /// Takes one frame from the reader.
    pub fn on_frame(&mut self, frame: &[u8]) -> Event<'_> {
        self.link.on_frame(frame, &mut self.buffers)
    }

    /// The command received whole.
    pub fn command(&self) -> &[u8] {
        match self.link.command() {
            Command::OneBlock(bytes) => bytes,
            Command::Collected(len) => self.buffers.room.get(..len.min(N)).unwrap_or_default(),
        }
    }

    /// While a command runs: the S(WTX request) for `multiplier` block waiting times.
    pub fn request_wtx(&mut self, multiplier: u8) -> &[u8] {
        self.link.request_wtx(multiplier)
    }

    /// Runs the command received through `run(command, response) -> response length` (the response ends with
    /// its status word; one shorter than a status word is answered `6F 00`), then sends its first block.
    pub fn answer(&mut self, run: impl FnOnce(&[u8], &mut [u8]) -> usize) -> &[u8] {
        let mut answer = core::mem::take(&mut self.buffers.answer);
        let _ = answer.resize_default(N);
        let len = run(self.command(), &mut answer).min(N);
        answer.truncate(len);
        let status = match answer.get(len.saturating_sub(2)..) {
            Some(&[sw1, sw2]) => [sw1, sw2],
            _ => [0x6F, 0x00],
        };
        self.buffers.data_len = len.saturating_sub(2);
        self.buffers.answer = answer;
        self.link.answer(status, &self.buffers)
    }
}
