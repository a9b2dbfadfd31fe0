//! Feeds the card's T=1 half ([`card_t1::CardT1`], with buffers of its own, behind a [`card_t1::Framer`] as the
//! firmware runs it) with any byte stream, with character timeouts where the input says so, and checks what it
//! sends.
//!
//! Input: bytes for the line, except that `FF FF` is a silence longer than the character waiting time (the
//! firmware then drops a partial frame) and the first byte picks the EDC (odd: CRC) and the card's IFSC.
//!
//! Checks: nothing panics; every frame the card sends parses as a block of its own EDC, with an information field
//! within the reader's IFS (as last announced); a command reaching the card is within its buffer.
#![no_main]

use card_t1::{Block, BufferedCardT1, Config, Edc, Event, Framer};
use libfuzzer_sys::fuzz_target;

const COMMAND: usize = 600;

fuzz_target!(|data: &[u8]| {
    let Some((&setup, line)) = data.split_first() else {
        return;
    };
    let edc = if setup & 1 == 1 { Edc::Crc } else { Edc::Lrc };
    let config = Config {
        ifsc: (setup >> 1).max(1),
        edc,
    };
    let mut card = BufferedCardT1::<COMMAND>::new(config);
    let mut framer = Framer::new(edc);
    let mut bytes = line.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        if byte == 0xFF && bytes.peek() == Some(&0xFF) {
            bytes.next();
            framer.reset();
            continue;
        }
        let Some(frame) = framer.push(byte) else {
            continue;
        };
        let frame = frame.to_vec();
        let sent = match card.on_frame(&frame) {
            Event::Send(out) => out.to_vec(),
            Event::Command | Event::CommandTooLong | Event::WtxGranted => {
                assert!(card.command().len() <= COMMAND);
                card.answer(|command, response| {
                    let n = command.len().min(response.len());
                    response[..n].copy_from_slice(&command[..n]);
                    n
                })
                .to_vec()
            }
            Event::Nothing => continue,
        };
        let ifsd = card.ifsd();
        match Block::parse(&sent, edc, u8::MAX) {
            Ok((_, Block::Information { data, .. })) => assert!(data.len() <= usize::from(ifsd)),
            Ok(_) => {}
            Err(error) => panic!("the card sent a frame that does not parse ({error:?}): {sent:02X?}"),
        }
    }
});
