//! The card's half of T=1 driven the way a reader drives it: whole exchanges, chaining both ways, the S-blocks,
//! the recovery from lost and corrupted blocks (ISO/IEC 7816-3 §11.6 and its Annex A scenarios), and any byte
//! stream at all.

use card_t1::atr::{WaitingTimes, atr};
use card_t1::block::MAX_BLOCK;
use card_t1::{
    Acknowledge, ApduMemory, Block, BufferedCardT1, CardT1, Command, Config, Edc, Event, Framer,
    Supervisory,
};
use heapless::Vec as Frame;
use proptest::prelude::*;

type Card = BufferedCardT1<600>;

fn frame(block: Block<'_>, edc: Edc) -> Frame<u8, MAX_BLOCK> {
    let mut out = Frame::new();
    block.encode(0, edc, &mut out);
    out
}

fn i_block(sequence: bool, more: bool, data: &[u8]) -> Frame<u8, MAX_BLOCK> {
    frame(
        Block::Information {
            sequence,
            more,
            data,
        },
        Edc::Lrc,
    )
}

fn r_block(next: bool, status: Acknowledge) -> Frame<u8, MAX_BLOCK> {
    frame(Block::Receive { next, status }, Edc::Lrc)
}

fn s_request(kind: Supervisory) -> Frame<u8, MAX_BLOCK> {
    frame(
        Block::Supervisory {
            kind,
            response: false,
        },
        Edc::Lrc,
    )
}

/// What the card sent, parsed.
fn sent(event: Event<'_>) -> Block<'_> {
    match event {
        Event::Send(frame) => Block::parse(frame, Edc::Lrc, 254).expect("a valid block").1,
        other => panic!("the card sent nothing: {other:?}"),
    }
}

/// The card's application: the command reversed, then 90 00.
fn reversed(command: &[u8], response: &mut [u8]) -> usize {
    for (out, byte) in response.iter_mut().zip(command.iter().rev()) {
        *out = *byte;
    }
    response[command.len()] = 0x90;
    response[command.len() + 1] = 0x00;
    command.len() + 2
}

fn expected_answer(command: &[u8]) -> Vec<u8> {
    let mut answer: Vec<u8> = command.iter().rev().copied().collect();
    answer.extend([0x90, 0x00]);
    answer
}

/// A reader that follows the protocol on a clean line: sends `command` in blocks of `ifsc`, acknowledges the
/// card's chain, and answers the whole response. `sequences` are the reader's and the expected card's N(S).
fn exchange(card: &mut Card, command: &[u8], ifsc: usize, sequences: &mut (bool, bool)) -> Vec<u8> {
    let chunks: Vec<&[u8]> = if command.is_empty() {
        vec![&[]]
    } else {
        command.chunks(ifsc).collect()
    };
    for (index, chunk) in chunks.iter().enumerate() {
        let more = index + 1 < chunks.len();
        let event = card.on_frame(&i_block(sequences.0, more, chunk));
        sequences.0 = !sequences.0;
        if more {
            assert_eq!(
                sent(event),
                Block::Receive {
                    next: sequences.0,
                    status: Acknowledge::Ok
                },
                "each block of a chain is acknowledged, naming the next"
            );
        } else {
            assert_eq!(event, Event::Command);
        }
    }
    let mut response = Vec::new();
    let mut block = Block::parse(card.answer(reversed), Edc::Lrc, 254)
        .expect("valid")
        .1
        .to_owned_block();
    loop {
        let OwnedBlock::Information {
            sequence,
            more,
            data,
        } = block
        else {
            panic!("the card answers with I-blocks: {block:?}");
        };
        assert_eq!(
            sequence, sequences.1,
            "the card numbers its I-blocks in turn"
        );
        assert!(data.len() <= usize::from(card.ifsd()));
        sequences.1 = !sequences.1;
        response.extend(data);
        if !more {
            return response;
        }
        block = sent(card.on_frame(&r_block(sequences.1, Acknowledge::Ok))).to_owned_block();
    }
}

#[derive(Debug)]
enum OwnedBlock {
    Information {
        sequence: bool,
        more: bool,
        data: Vec<u8>,
    },
    Other,
}

trait ToOwnedBlock {
    fn to_owned_block(&self) -> OwnedBlock;
}

impl ToOwnedBlock for Block<'_> {
    fn to_owned_block(&self) -> OwnedBlock {
        match *self {
            Block::Information {
                sequence,
                more,
                data,
            } => OwnedBlock::Information {
                sequence,
                more,
                data: data.to_vec(),
            },
            _ => OwnedBlock::Other,
        }
    }
}

#[test]
fn a_short_command_and_its_answer() {
    let mut card = Card::new(Config::default());
    let mut sequences = (false, false);
    for command in [&[0x00, 0xA4, 0x04, 0x00][..], &[0x80, 0x01], &[]] {
        let answer = exchange(&mut card, command, 254, &mut sequences);
        assert_eq!(answer, expected_answer(command));
    }
}

#[test]
fn the_readers_ifs_cuts_the_answer_into_a_chain() {
    let mut card = Card::new(Config::default());
    let ifs = s_request(Supervisory::Ifs(16));
    assert_eq!(
        sent(card.on_frame(&ifs)),
        Block::Supervisory {
            kind: Supervisory::Ifs(16),
            response: true
        }
    );
    assert_eq!(card.ifsd(), 16);
    let command: Vec<u8> = (0..100).collect();
    let answer = exchange(&mut card, &command, 20, &mut (false, false));
    assert_eq!(answer, expected_answer(&command));
}

#[test]
fn a_corrupted_block_is_answered_with_an_r_block_and_sent_again() {
    let mut card = Card::new(Config::default());
    let mut corrupted = i_block(false, false, &[1, 2, 3]);
    let last = corrupted.len() - 1;
    corrupted[last] ^= 0xFF;
    assert_eq!(
        sent(card.on_frame(&corrupted)),
        Block::Receive {
            next: false,
            status: Acknowledge::EdcError
        }
    );
    let mut sequences = (false, false);
    assert_eq!(
        exchange(&mut card, &[1, 2, 3], 254, &mut sequences),
        expected_answer(&[1, 2, 3])
    );
}

#[test]
fn a_lost_answer_is_sent_again_when_the_reader_asks_for_it() {
    let mut card = Card::new(Config::default());
    assert_eq!(card.on_frame(&i_block(false, false, &[7])), Event::Command);
    let answer = card.answer(reversed).to_vec();
    // The reader saw nothing (or garbage) and asks for the I-block numbered 0 again.
    let again = card.on_frame(&r_block(false, Acknowledge::EdcError));
    assert_eq!(again, Event::Send(&answer));
    // Even after a garbled R-block made the card send an R-block of its own.
    let _ = card.on_frame(&[0x00, 0x80]);
    assert_eq!(
        card.on_frame(&r_block(false, Acknowledge::OtherError)),
        Event::Send(&answer)
    );
    // The exchange goes on with the next numbers.
    let mut sequences = (true, true);
    assert_eq!(
        exchange(&mut card, &[9, 8], 254, &mut sequences),
        expected_answer(&[9, 8])
    );
}

#[test]
fn a_lost_command_is_asked_for_again() {
    let mut card = Card::new(Config::default());
    let mut sequences = (false, false);
    exchange(&mut card, &[1], 254, &mut sequences);
    // The reader's next I-block (numbered 1) was lost; the reader times out and asks for the card's I-block 1.
    assert_eq!(
        sent(card.on_frame(&r_block(true, Acknowledge::OtherError))),
        Block::Receive {
            next: true,
            status: Acknowledge::OtherError
        },
        "the card has sent nothing the reader lacks: it asks for the reader's block 1"
    );
    assert_eq!(
        exchange(&mut card, &[2], 254, &mut sequences),
        expected_answer(&[2])
    );
}

#[test]
fn a_lost_acknowledgement_within_the_readers_chain_is_sent_again() {
    let mut card = Card::new(Config::default());
    assert_eq!(
        sent(card.on_frame(&i_block(false, true, &[1, 2]))),
        Block::Receive {
            next: true,
            status: Acknowledge::Ok
        }
    );
    // The acknowledgement was lost: the reader asks for the card's I-block 0.
    assert_eq!(
        sent(card.on_frame(&r_block(false, Acknowledge::OtherError))),
        Block::Receive {
            next: true,
            status: Acknowledge::Ok
        }
    );
    assert_eq!(card.on_frame(&i_block(true, false, &[3])), Event::Command);
    assert_eq!(
        card.answer(reversed),
        i_block(false, false, &[3, 2, 1, 0x90, 0x00])
    );
}

#[test]
fn a_lost_block_of_the_cards_chain_is_sent_again() {
    let mut card = Card::new(Config::default());
    let _ = card.on_frame(&s_request(Supervisory::Ifs(8)));
    assert_eq!(
        card.on_frame(&i_block(false, false, &[0; 10])),
        Event::Command
    );
    let first = card.answer(reversed).to_vec();
    let second = match card.on_frame(&r_block(true, Acknowledge::Ok)) {
        Event::Send(frame) => frame.to_vec(),
        other => panic!("{other:?}"),
    };
    assert_ne!(first, second);
    // The second block was lost: the reader asks for block 1 again.
    assert_eq!(
        card.on_frame(&r_block(true, Acknowledge::EdcError)),
        Event::Send(&second)
    );
}

#[test]
fn resynchronisation_starts_the_numbering_again() {
    let mut card = Card::new(Config::default());
    let mut sequences = (false, false);
    exchange(&mut card, &[1], 254, &mut sequences);
    let _ = card.on_frame(&s_request(Supervisory::Ifs(10)));
    assert_eq!(
        sent(card.on_frame(&s_request(Supervisory::Resynch))),
        Block::Supervisory {
            kind: Supervisory::Resynch,
            response: true
        }
    );
    assert_eq!(card.ifsd(), 32, "the IFSD is the default again");
    assert_eq!(
        exchange(&mut card, &[5, 6], 254, &mut (false, false)),
        expected_answer(&[5, 6])
    );
}

#[test]
fn an_abort_drops_the_readers_chain() {
    let mut card = Card::new(Config::default());
    let _ = card.on_frame(&i_block(false, true, &[1, 2]));
    assert_eq!(
        sent(card.on_frame(&s_request(Supervisory::Abort))),
        Block::Supervisory {
            kind: Supervisory::Abort,
            response: true
        }
    );
    assert_eq!(
        exchange(&mut card, &[3], 254, &mut (true, false)),
        expected_answer(&[3]),
        "the numbering goes on; the aborted chain's data is gone"
    );
}

#[test]
fn a_long_command_asks_for_more_time() {
    let mut card = Card::new(Config::default());
    assert_eq!(card.on_frame(&i_block(false, false, &[1])), Event::Command);
    let request = card.request_wtx(3).to_vec();
    assert_eq!(request, s_request(Supervisory::Wtx(3)).to_vec());
    // A garbled answer: the request goes again.
    assert_eq!(card.on_frame(&[0, 0xE3, 1, 3, 0]), Event::Send(&request));
    let granted = frame(
        Block::Supervisory {
            kind: Supervisory::Wtx(3),
            response: true,
        },
        Edc::Lrc,
    );
    assert_eq!(card.on_frame(&granted), Event::WtxGranted);
    assert_eq!(
        card.answer(reversed),
        i_block(false, false, &[1, 0x90, 0x00])
    );
}

#[test]
fn a_command_longer_than_the_buffer_is_reported_not_cut_silently() {
    let mut card = BufferedCardT1::<8>::new(Config::default());
    let _ = card.on_frame(&i_block(false, true, &[0; 6]));
    assert_eq!(
        card.on_frame(&i_block(true, false, &[0; 6])),
        Event::CommandTooLong
    );
    let answer = card.answer(|_, response| {
        response[..2].copy_from_slice(&[0x67, 0x00]);
        2
    });
    assert_eq!(answer, i_block(false, false, &[0x67, 0x00]));
}

/// A card's memory as the firmware lends it: the answer lies where a long command is collected.
struct SharedMemory {
    buffer: [u8; 64],
    answer_len: usize,
    room_taken: usize,
}

impl ApduMemory for SharedMemory {
    fn command_room(&mut self) -> &mut [u8] {
        self.room_taken += 1;
        self.answer_len = 0;
        &mut self.buffer
    }

    fn answer_data(&self) -> &[u8] {
        &self.buffer[..self.answer_len]
    }
}

#[test]
fn the_link_collects_long_commands_in_the_cards_memory_and_leaves_it_alone_for_short_ones() {
    let mut link = CardT1::new(Config::default());
    let mut memory = SharedMemory {
        buffer: [0; 64],
        answer_len: 0,
        room_taken: 0,
    };
    // A command in two blocks is collected in the room; its first block stays with the link.
    let _ = link.on_frame(&i_block(false, true, &[0x80, 0x10, 0, 0]), &mut memory);
    assert_eq!(
        link.on_frame(&i_block(true, false, &[5, 6]), &mut memory),
        Event::Command
    );
    assert_eq!(link.command(), Command::Collected(6));
    assert_eq!(link.command_start(), &[0x80, 0x10, 0, 0]);
    assert_eq!(&memory.buffer[..6], &[0x80, 0x10, 0, 0, 5, 6]);
    // Its answer is sent from the memory, the status word after it.
    memory.buffer[..3].copy_from_slice(&[7, 8, 9]);
    memory.answer_len = 3;
    assert_eq!(
        link.answer([0x61, 0x02], &memory),
        i_block(false, false, &[7, 8, 9, 0x61, 0x02])
    );
    // A command in one block (GET RESPONSE) does not take the room: the answer the card holds stays.
    let taken = memory.room_taken;
    let get_response = [0x00, 0xC0, 0x00, 0x00, 0x02];
    assert_eq!(
        link.on_frame(&i_block(false, false, &get_response), &mut memory),
        Event::Command
    );
    assert_eq!(link.command(), Command::OneBlock(&get_response));
    assert_eq!(memory.room_taken, taken);
    assert_eq!(memory.answer_data(), &[7, 8, 9]);
    let _ = link.answer([0x90, 0x00], &memory);
    // A command longer than the room: the room's worth is kept, the length says all of it (the card refuses it).
    let _ = link.on_frame(&i_block(true, true, &[1; 40]), &mut memory);
    assert_eq!(
        link.on_frame(&i_block(false, false, &[2; 40]), &mut memory),
        Event::CommandTooLong
    );
    assert_eq!(link.command(), Command::Collected(80));
    assert_eq!(&memory.buffer[38..42], &[1, 1, 2, 2]);
}

#[test]
fn the_atr_announces_t1_its_ifsc_waiting_times_and_edc() {
    let lrc = atr(Config::default(), WaitingTimes::default(), b"linkcard").expect("an ATR");
    assert_eq!(&lrc[..6], &[0x3B, 0x88, 0x81, 0x31, 0xFE, 0x4D]);
    assert_eq!(&lrc[6..14], b"linkcard");
    assert_eq!(lrc[1..].iter().fold(0, |x, b| x ^ b), 0, "TCK");
    let crc = Config {
        ifsc: 128,
        edc: Edc::Crc,
    };
    let with_crc = atr(crc, WaitingTimes { bwi: 7, cwi: 5 }, &[]).expect("an ATR");
    assert_eq!(
        &with_crc[..],
        &[0x3B, 0x80, 0x81, 0x71, 0x80, 0x75, 0x01, 0x84]
    );
    assert_eq!(with_crc[1..].iter().fold(0, |x, b| x ^ b), 0, "TCK");
    assert!(atr(Config::default(), WaitingTimes::default(), &[0; 16]).is_err());
    assert!(atr(Config::default(), WaitingTimes { bwi: 10, cwi: 0 }, &[]).is_err());
}

#[test]
fn the_codes_match_published_values() {
    // S(IFS request, 254) with its LRC, the classic first block of a PC/SC reader.
    assert_eq!(
        &s_request(Supervisory::Ifs(0xFE))[..],
        &[0x00, 0xC1, 0x01, 0xFE, 0x3E]
    );
    // The CRC is CRC-16/MCRF4XX of the CRC catalogue: its check value over "123456789" is 0x6F91.
    let check = crc::Crc::<u16>::new(&crc::CRC_16_MCRF4XX).checksum(b"123456789");
    assert_eq!(check, 0x6F91);
    let with_crc = frame(
        Block::Supervisory {
            kind: Supervisory::Ifs(0xFE),
            response: false,
        },
        Edc::Crc,
    );
    let code = crc::Crc::<u16>::new(&crc::CRC_16_MCRF4XX).checksum(&[0x00, 0xC1, 0x01, 0xFE]);
    assert_eq!(&with_crc[4..], &code.to_be_bytes());
    let mut wrong = with_crc.clone();
    wrong[4] ^= 1;
    assert_eq!(
        Block::parse(&wrong, Edc::Crc, 254),
        Err(card_t1::FrameError::Edc)
    );
}

fn any_block() -> impl Strategy<Value = (u8, bool, bool, Vec<u8>)> {
    (
        0u8..9,
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..=254),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_block_reads_back_as_written((kind, flag, other, data) in any_block(), crc in any::<bool>()) {
        let edc = if crc { Edc::Crc } else { Edc::Lrc };
        let value = data.first().copied().unwrap_or(1).max(1);
        let block = match kind {
            0 => Block::Information { sequence: flag, more: other, data: &data },
            1 => Block::Receive { next: flag, status: Acknowledge::Ok },
            2 => Block::Receive { next: flag, status: Acknowledge::EdcError },
            3 => Block::Receive { next: flag, status: Acknowledge::OtherError },
            4 => Block::Supervisory { kind: Supervisory::Resynch, response: flag },
            5 => Block::Supervisory { kind: Supervisory::Ifs(value.min(254)), response: flag },
            6 => Block::Supervisory { kind: Supervisory::Abort, response: flag },
            _ => Block::Supervisory { kind: Supervisory::Wtx(value), response: flag },
        };
        let encoded = frame(block, edc);
        let mut framer = Framer::new(edc);
        let mut whole = None;
        for (index, byte) in encoded.iter().enumerate() {
            let done = framer.push(*byte).map(<[u8]>::to_vec);
            prop_assert_eq!(done.is_some(), index + 1 == encoded.len());
            whole = done.or(whole);
        }
        prop_assert_eq!(whole.as_deref(), Some(&encoded[..]));
        prop_assert_eq!(Block::parse(&encoded, edc, 254), Ok((0, block)));
    }

    #[test]
    fn any_command_and_answer_length_and_any_ifs_make_a_whole_exchange(
        command in prop::collection::vec(any::<u8>(), 0..590),
        ifsc in 1usize..=254,
        ifsd in 1u8..=254,
    ) {
        let mut card = Card::new(Config::default());
        let _ = card.on_frame(&s_request(Supervisory::Ifs(ifsd)));
        let answer = exchange(&mut card, &command, ifsc, &mut (false, false));
        prop_assert_eq!(answer, expected_answer(&command));
    }

    #[test]
    fn no_byte_stream_makes_the_card_panic(
        stream in prop::collection::vec(any::<u8>(), 0..4096),
        idles in prop::collection::vec(any::<u16>(), 0..8),
        crc in any::<bool>(),
    ) {
        let edc = if crc { Edc::Crc } else { Edc::Lrc };
        let mut card = Card::new(Config { ifsc: 254, edc });
        let mut framer = Framer::new(edc);
        for (index, byte) in stream.iter().enumerate() {
            if idles.iter().any(|at| usize::from(*at) == index) {
                framer.reset();
            }
            let Some(frame) = framer.push(*byte) else { continue };
            let frame = frame.to_vec();
            match card.on_frame(&frame) {
                Event::Command | Event::CommandTooLong | Event::WtxGranted => {
                    let answer = card.answer(|command, response| {
                        let length = command.len().min(response.len() - 2);
                        response[..length].copy_from_slice(&command[..length]);
                        length
                    });
                    prop_assert!(answer.len() <= MAX_BLOCK);
                }
                Event::Send(sent) => prop_assert!(Block::parse(sent, edc, 254).is_ok()),
                Event::Nothing => {}
            }
        }
    }
}
