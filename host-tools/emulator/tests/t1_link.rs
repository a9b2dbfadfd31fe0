//! The reader's half of T=1 ([`emulator::firmware::ifd`]) against the card's half ([`card_t1::CardT1`], as the
//! firmware runs it) over a simulated line that loses, corrupts, cuts and duplicates blocks: every exchange
//! still delivers the whole response, and the card runs each command exactly once.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::Duration;

use card_t1::{BufferedCardT1, Config, Edc, Event, Framer};
use emulator::firmware::ifd::{ByteLink, Ifd, IfdError, Params};
use proptest::prelude::*;

/// What the line does to one frame.
#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    /// The frame never arrives.
    Lose,
    /// One byte (index modulo the length) arrives with bits flipped.
    Corrupt(usize, u8),
    /// The frame stops before its last bytes.
    Cut(usize),
    /// The frame arrives twice (from the card only: see `write`).
    Duplicate,
}

fn apply(fault: Fault, frame: &[u8], out: &mut VecDeque<u8>) {
    match fault {
        Fault::None => out.extend(frame),
        Fault::Lose => {}
        Fault::Corrupt(at, bits) => {
            let mut copy = frame.to_vec();
            let at = at % copy.len();
            copy[at] ^= bits.max(1);
            out.extend(copy);
        }
        Fault::Cut(keep) => out.extend(&frame[..keep % frame.len()]),
        Fault::Duplicate => {
            out.extend(frame);
            out.extend(frame);
        }
    }
}

/// The card and the line: what the reader writes goes through the line to the card at once, and the card's
/// answers through the line back to the reader's queue.
struct SimulatedLine {
    card: BufferedCardT1<2100>,
    framer: Framer,
    to_reader: VecDeque<u8>,
    /// Faults for the frames that cross the line, in order (both directions); then none.
    faults: VecDeque<Fault>,
    commands_run: usize,
}

impl SimulatedLine {
    fn new(config: Config, faults: Vec<Fault>) -> Self {
        Self {
            card: BufferedCardT1::new(config),
            framer: Framer::new(config.edc),
            to_reader: VecDeque::new(),
            faults: faults.into(),
            commands_run: 0,
        }
    }

    fn next_fault(&mut self) -> Fault {
        self.faults.pop_front().unwrap_or(Fault::None)
    }

    fn card_sends(&mut self, frame: &[u8]) {
        let fault = self.next_fault();
        apply(fault, frame, &mut self.to_reader);
    }

    fn card_receives(&mut self, byte: u8) {
        let Some(frame) = self.framer.push(byte) else {
            return;
        };
        let frame = frame.to_vec();
        let answer = match self.card.on_frame(&frame) {
            Event::Send(frame) => frame.to_vec(),
            Event::Command | Event::CommandTooLong | Event::WtxGranted => {
                self.commands_run += 1;
                self.card.answer(respond).to_vec()
            }
            Event::Nothing => return,
        };
        self.card_sends(&answer);
    }
}

/// The card's answer to a command: the command reversed, then 90 00.
fn respond(command: &[u8], response: &mut [u8]) -> usize {
    let n = command.len().min(response.len() - 2);
    for (i, byte) in command[..n].iter().rev().enumerate() {
        response[i] = *byte;
    }
    response[n..n + 2].copy_from_slice(&[0x90, 0x00]);
    n + 2
}

fn expected(command: &[u8]) -> Vec<u8> {
    let mut answer: Vec<u8> = command.iter().rev().copied().collect();
    answer.extend([0x90, 0x00]);
    answer
}

impl Read for SimulatedLine {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.to_reader.is_empty() {
            // The reader waits in vain: on the card's side the line has been idle as long, so a frame it was
            // receiving is dropped (the firmware's character timeout).
            self.framer.reset();
        }
        hand_over(&mut self.to_reader, buf)
    }
}

/// Gives the reader what the card has sent so far, or a timeout when it has sent nothing.
fn hand_over(to_reader: &mut VecDeque<u8>, buf: &mut [u8]) -> io::Result<usize> {
    if to_reader.is_empty() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    let n = buf.len().min(to_reader.len());
    for (slot, byte) in buf.iter_mut().zip(to_reader.drain(..n)) {
        *slot = byte;
    }
    Ok(n)
}

impl Write for SimulatedLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // The card reads the line as the bytes come: a repeated frame would be two frames from the reader, which
        // a reader never sends unasked (and then two answers would cross on the line with no gap between them to
        // tell them apart); a duplicate only happens towards the reader, which discards it before it sends again.
        let fault = match self.next_fault() {
            Fault::Duplicate => Fault::None,
            fault => fault,
        };
        let mut crossing = VecDeque::new();
        apply(fault, buf, &mut crossing);
        for byte in crossing {
            self.card_receives(byte);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ByteLink for SimulatedLine {
    fn set_timeout(&mut self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn discard_pending(&mut self) -> io::Result<()> {
        self.to_reader.clear();
        Ok(())
    }
}

/// A reader of `link` for a card of this IFSC and EDC, waiting 10 ms for each block.
fn reader<L: ByteLink>(link: L, ifsc: u8, edc: Edc) -> Ifd<L> {
    let params = Params {
        ifsc,
        edc,
        block_waiting_time: Duration::from_millis(10),
    };
    Ifd::new(link, params, 2100)
}

#[test]
fn a_clean_line_carries_a_chained_command_and_a_chained_answer() {
    let config = Config {
        ifsc: 32,
        edc: Edc::Crc,
    };
    let mut ifd = reader(SimulatedLine::new(config, vec![]), 32, Edc::Crc);
    let command: Vec<u8> = (0..=255).collect();
    for _ in 0..3 {
        assert_eq!(ifd.transceive(&command).unwrap(), expected(&command));
    }
    assert_eq!(ifd.into_link().commands_run, 3);
}

#[test]
fn a_mute_card_is_reported_not_waited_for_forever() {
    let faults = vec![Fault::Lose; 64];
    let mut ifd = reader(SimulatedLine::new(Config::default(), faults), 254, Edc::Lrc);
    assert!(matches!(
        ifd.transceive(&[0x00, 0xA4, 0x04, 0x00]),
        Err(IfdError::Mute)
    ));
}

/// The firmware's ATR (docs/firmware.md).
const FIRMWARE_ATR: [u8; 17] = [
    0x3B, 0x8A, 0x81, 0x31, 0xFE, 0x45, 0x80, 0x58, 0x6C, 0x69, 0x6E, 0x6B, 0x63, 0x61, 0x72, 0x64,
    0x4D,
];

/// A card that restarts whenever a command reaches it (the command faults and the board resets): it answers every
/// I-block with its ATR, and any other block as a card just reset, asking for its first block again.
#[derive(Default)]
struct RestartingCard {
    to_reader: VecDeque<u8>,
    blocks_received: usize,
}

impl Read for RestartingCard {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        hand_over(&mut self.to_reader, buf)
    }
}

impl Write for RestartingCard {
    fn write(&mut self, block: &[u8]) -> io::Result<usize> {
        self.blocks_received += 1;
        match block {
            [_, pcb, ..] if pcb & 0x80 == 0 => self.to_reader.extend(FIRMWARE_ATR),
            // R(N(R) = 0, other error): NAD, PCB, LEN, LRC.
            _ => self.to_reader.extend([0x00, 0x82, 0x00, 0x82]),
        }
        Ok(block.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ByteLink for RestartingCard {
    fn set_timeout(&mut self, _: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
    fn discard_pending(&mut self) -> io::Result<()> {
        self.to_reader.clear();
        Ok(())
    }
}

#[test]
fn a_card_that_restarts_on_the_command_is_given_up_on_after_a_few_sends() {
    let mut ifd = reader(RestartingCard::default(), 254, Edc::Lrc);
    assert!(matches!(
        ifd.transceive(&[0x80, 0x2A, 0x00, 0x00]),
        Err(IfdError::Mute)
    ));
    // Four sends of the command and of the R-block between them, twice (before and after one resynchronisation),
    // and the resynchronisation's three requests: not the thousands an exchange may take.
    let sent = ifd.into_link().blocks_received;
    assert!(sent <= 2 * 2 * 4 + 3, "{sent} blocks sent");
}

fn any_fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::Lose),
        (any::<usize>(), any::<u8>()).prop_map(|(at, bits)| Fault::Corrupt(at, bits)),
        any::<usize>().prop_map(Fault::Cut),
        Just(Fault::Duplicate),
    ]
}

/// Faults on the frames crossing the line, never two within three frames of each other (T=1 recovers from
/// isolated errors; a line that fails three times in a row ends in resynchronisation, tested apart).
fn sparse_faults() -> impl Strategy<Value = Vec<Fault>> {
    prop::collection::vec((any_fault(), 3usize..8), 0..12).prop_map(|spaced| {
        let mut plan = Vec::new();
        for (fault, gap) in spaced {
            plan.push(fault);
            plan.extend(std::iter::repeat_n(Fault::None, gap));
        }
        plan
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn isolated_line_errors_never_lose_or_repeat_a_command(
        command in prop::collection::vec(any::<u8>(), 1..700),
        ifsc in 8u8..=254,
        crc in any::<bool>(),
        faults in sparse_faults(),
    ) {
        let edc = if crc { Edc::Crc } else { Edc::Lrc };
        let config = Config { ifsc, edc };
        let mut ifd = reader(SimulatedLine::new(config, faults), ifsc, edc);
        let answer = ifd.transceive(&command);
        prop_assert_eq!(answer.unwrap(), expected(&command));
        // The next command runs on the same link, in step.
        prop_assert_eq!(ifd.transceive(&command[..1]).unwrap(), expected(&command[..1]));
        prop_assert_eq!(ifd.into_link().commands_run, 2);
    }

    #[test]
    fn any_line_errors_end_in_an_answer_or_a_reported_failure(
        command in prop::collection::vec(any::<u8>(), 1..300),
        faults in prop::collection::vec(prop_oneof![Just(Fault::None), any_fault()], 0..40),
    ) {
        let mut ifd = reader(SimulatedLine::new(Config::default(), faults), 254, Edc::Lrc);
        match ifd.transceive(&command) {
            Ok(answer) => prop_assert_eq!(answer, expected(&command)),
            Err(error) => prop_assert!(matches!(error, IfdError::Mute), "{error}"),
        }
    }
}
