//! Drives both payment applets, personalized, through live SCP11 sessions: every run starts a fresh card on the
//! memory of one card issued with both (`emulator::testing`, built once), decodes the fuzzer's bytes into
//! operations and checks every answer.
//!
//! The input is a sequence of items; the first byte's top 3 bits say which, its low 5 bits (`p`) parametrize it:
//!
//! | top bits | item |
//! |---|---|
//! | `000` | next byte `x`: SELECT the bank (`x` even) or credit applet, open a session as OCE `(x >> 1) % 5` (issuer, bank-atm, credit-pos, token-delivery, SCP11b) at level `(x >> 4) % 4` (C-MAC; +C-DEC; +R-MAC; all) |
//! | `001` | header `HEADERS[p % 16]`, then `hi lo` (at most 2048) and that many bytes of data: one command through the session (plainly without one) |
//! | `010` | STORE TOKEN of the issued card's real token `(p >> 1) % 5` to the bank (`p` even) or credit applet, through the session |
//! | `011` | next byte `x`: CONFIRM of ATC `p` and of the real tokens whose bit is set in `x`, through the session |
//! | `100` | next byte `n`, then `n` bytes: one whole command APDU through the session |
//! | `101` | next byte `n`, then `n` bytes: sent to the card as they are, beside the session |
//! | `110` | SELECT the card manager, the bank or the credit applet (`p % 3`) |
//! | `111` | power cycle (the session ends) |
//!
//! Commands go through the session as one extended APDU when `p & 0x10` (item `001`, `100`) is set, else as short
//! ones, chained. Checks (`emulator::testing::Harness`): every response on the wire and out of the session ends
//! with a plausible status word and carries data only with 9000/61xx/62xx/63xx; 6982 ends the host's session; an
//! applet command in an undisturbed session never fails on the card's answer; a power cycle ends the session. After the input: a
//! credit-POS PRESENT and a bank-ATM LIST TOKENS answer well-formed data. A panic or failed check is a crash.
#![no_main]

use std::sync::OnceLock;

use apdu_spec::bank::BankCommand;
use apdu_spec::builder::Command;
use apdu_spec::credit::{Confirmation, CreditCommand};
use apdu_spec::scp11::session::SecurityLevel;
use apdu_spec::token::Envelope;
use emulator::testing::{self, Harness, IssuedCard, Op, Opener, Target};
use libfuzzer_sys::fuzz_target;

/// CLA INS P1 P2 of the applets' commands (and a few neighbours).
const HEADERS: [[u8; 4]; 16] = [
    [0x80, 0x20, 0, 0],    // bank PERSONALIZE
    [0x80, 0x22, 0, 0],    // READ ACCOUNT
    [0x80, 0x24, 0, 0],    // bank STORE TOKEN
    [0x80, 0x26, 0, 0],    // LIST TOKENS
    [0x80, 0x28, 0, 0],    // DELETE TOKEN
    [0x80, 0x30, 0, 0],    // credit PERSONALIZE
    [0x80, 0x34, 0, 0],    // credit STORE TOKEN
    [0x80, 0x36, 0, 0],    // PRESENT
    [0x80, 0x38, 0, 0],    // CONFIRM
    [0x00, 0x20, 0, 0x80], // VERIFY
    [0x00, 0x20, 0, 0],
    [0x80, 0x36, 0, 1],
    [0x80, 0xCA, 0xBF, 0x21], // GET DATA (certificates)
    [0x80, 0xE2, 0x90, 0],    // STORE DATA
    [0x80, 0xF2, 0x40, 0],    // GET STATUS
    [0x00, 0xA4, 0x04, 0],    // SELECT
];

fn issued() -> &'static IssuedCard {
    static ISSUED: OnceLock<IssuedCard> = OnceLock::new();
    ISSUED.get_or_init(testing::issue_payment_card)
}

/// Splits `n` bytes (fewer if the input ends) off `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, tail) = rest.split_at(n.min(rest.len()));
    *rest = tail;
    head
}

fn byte(rest: &mut &[u8]) -> Option<u8> {
    take(rest, 1).first().copied()
}

/// CONFIRM of ATC `atc` and of the real tokens whose bit is set in `tokens`.
fn confirm(atc: u8, tokens: u8) -> Op {
    let real = &issued().tokens;
    let ids: Vec<u8> = (0..real.len())
        .filter(|i| tokens & (1 << i) != 0)
        .flat_map(|i| {
            *Envelope::parse(&real[i])
                .expect("a real token")
                .header
                .token_id
        })
        .collect();
    let confirmation = Confirmation::new(u32::from(atc), &ids).expect("at most 5 ids");
    let command = CreditCommand::Confirm(confirmation).to_command();
    Op::Secured {
        apdu: command.to_extended().expect("a short command"),
        extended: false,
    }
}

/// Decodes one item; `None` at the end of the input.
fn next_op(rest: &mut &[u8]) -> Option<Op> {
    let first = byte(rest)?;
    let p = first & 0x1F;
    let extended = p & 0x10 != 0;
    let tokens = &issued().tokens;
    let secured = |apdu: Vec<u8>| Op::Secured { apdu, extended };
    let encode = |command: Command| {
        command
            .to_extended()
            .expect("the encoder takes any length up to 64 KiB")
    };
    Some(match first >> 5 {
        0 => {
            let x = byte(rest)?;
            Op::Open {
                target: if x & 1 == 0 {
                    Target::Bank
                } else {
                    Target::Credit
                },
                opener: Opener::ALL[usize::from(x >> 1) % Opener::ALL.len()],
                level: SecurityLevel::ALL[usize::from(x >> 4) % SecurityLevel::ALL.len()],
            }
        }
        1 => {
            let [cla, ins, p1, p2] = HEADERS[usize::from(p) % HEADERS.len()];
            let len = take(rest, 2);
            let len = usize::from(u16::from_be_bytes([
                len.first().copied()?,
                len.get(1).copied()?,
            ]));
            let data = take(rest, len.min(2048));
            secured(encode(Command::new(cla, ins, p1, p2).with_data(data)))
        }
        2 => {
            let token = &tokens[usize::from(p >> 1) % tokens.len()];
            let command = match p & 1 {
                0 => BankCommand::StoreToken(token).to_command(),
                _ => CreditCommand::StoreToken(token).to_command(),
            };
            Op::Secured {
                apdu: encode(command),
                extended: false,
            }
        }
        3 => confirm(p, byte(rest)?),
        4 => {
            let n = byte(rest)?;
            secured(take(rest, usize::from(n)).to_vec())
        }
        5 => {
            let n = byte(rest)?;
            Op::Raw(take(rest, usize::from(n)).to_vec())
        }
        6 => Op::Select(Target::ALL[usize::from(p) % Target::ALL.len()]),
        _ => Op::PowerCycle,
    })
}

fuzz_target!(|input: &[u8]| {
    let mut harness = Harness::new(issued());
    let mut rest = input;
    while let Some(op) = next_op(&mut rest) {
        if let Err(violation) = harness.run(&op) {
            panic!("{op:02X?}: {violation}");
        }
    }
    if let Err(violation) = harness.check_invariants() {
        panic!("after the input: {violation}");
    }
});
