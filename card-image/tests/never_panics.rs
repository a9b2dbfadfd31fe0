//! No input makes the card panic or answer nonsense: random command sequences (up to 40 operations each) against
//! the whole card image, checked against an independent model of the APDU engine.
//!
//! Operations: arbitrary byte strings (0-300 bytes, so also fewer than the 4 header bytes); well-formed APDUs of
//! every ISO case (1, 2S, 3S, 4S, 2E, 3E, 4E) with interesting CLA/INS/P1/P2 and data (SELECT by AID and by
//! prefix, MANAGE CHANNEL, GET RESPONSE, the card manager's INSTALL/DELETE/SET STATUS/GET STATUS with well-formed
//! and mangled data, the loopback's commands); command chains (matching, mismatched, interrupted, padded to the
//! edge of [`card_os::CHAIN_BUFFER`] or beyond); commands that answer with data followed by GET RESPONSE runs;
//! record PUT/GET/REMOVE round trips; response buffers of every size from 0 bytes to full; power cycles and
//! commands sent while the card is off.
//!
//! Every exchange is checked for its shape (length, a plausible status word, data only with 9000/61xx/62xx/63xx,
//! never more than Ne or the buffer holds, a buffer too small for a status word left untouched) and against the
//! model: malformed lengths, invalid classes, closed channels, chaining and its overflow, MANAGE CHANNEL, response
//! chaining (61xx then GET RESPONSE: exact lengths, and the exact bytes where the response is predictable: ECHO,
//! GENERATE, the card manager's FCI and status record, INSTALL/DELETE), SELECT of the card manager, the card life
//! cycle, and records (a PUT that fails or is left in an open transaction changes nothing). After every sequence,
//! a power cycle must leave the card in its reset state.
//!
//! 10,000 sequences per run (more with `PROPTEST_CASES`). A failure prints the shrunk sequence with every command
//! in hex, and its seed is saved in `never_panics.proptest-regressions` next to this file (commit it: the case
//! is replayed first on every later run).

use std::fmt;

use card_image::LinkcardCard;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// A response buffer that holds the largest response and its status word.
const FULL: usize = card_os::RESPONSE_BUFFER + 2;
const CHAIN_BUFFER: usize = card_os::CHAIN_BUFFER;
/// Logical channels 0-19.
const CHANNELS: usize = 20;

// The model's own copies of the card's constants, so that it does not trust the code under test.
const ISD: [u8; 8] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];
const ISD_FCI: [u8; 18] = [
    0x6F, 0x10, 0x84, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00, 0xA5, 0x04, 0x9F, 0x65,
    0x01, 0xFF,
];
const LOAD_FILE: [u8; 6] = [0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF];
const MODULE: [u8; 7] = [0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x00];
const LOOPBACK: [u8; 7] = [0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x01];
const LOCKED_CARD: [u8; 2] = [0x7F, 0xFF]; // CARD_LOCKED, TERMINATED

const SW_OK: u16 = 0x9000;
const SW_WARNING_INVALIDATED: u16 = 0x6283;
const SW_MORE_STATUS: u16 = 0x6310;
const SW_UNKNOWN: u16 = 0x6F00;
const SW_WRONG_LENGTH: u16 = 0x6700;
const SW_NO_CHANNEL: u16 = 0x6881;
const SW_CONDITIONS: u16 = 0x6985;
const SW_SELECT_FAILED: u16 = 0x6999;
const SW_NO_FUNCTION: u16 = 0x6A81;
const SW_P1P2: u16 = 0x6A86;
const SW_CLA: u16 = 0x6E00;
const SW_SECURITY: u16 = 0x6982;

/// Bytes shown as one hex string in failure reports, so a shrunk case can be pasted into a reproducer.
#[derive(Clone, PartialEq, Eq)]
struct Bytes(Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for b in &self.0 {
            write!(f, "{b:02X}")?;
        }
        f.write_str("\"")
    }
}

/// One transmit: the command bytes and the size of the response buffer.
#[derive(Clone, Debug)]
struct Send {
    apdu: Bytes,
    out: usize,
}

#[derive(Clone, Debug)]
enum Op {
    /// One command (random bytes or a well-formed APDU).
    Send(Send),
    /// Commands back to back: chained fragments and the command that ends (or abandons) the chain, or a SELECT
    /// of the card manager and a card management command.
    Run(Vec<Send>),
    /// A command that answers with data, then GET RESPONSE while it answers 61xx (at most 40 times).
    Fetch {
        command: Send,
        get_response: Bytes,
        out: usize,
    },
    /// GET RESPONSE while it answers 61xx (at most 40 times).
    Drain { get_response: Bytes, out: usize },
    /// On the loopback selected on the basic channel: GET record `key`, PUT it (P2 01: inside a transaction the
    /// applet leaves open, which the runtime aborts), maybe REMOVE it, maybe power-cycle, GET it again. The record
    /// must hold what the successful commands left in it.
    Records {
        key: u8,
        data: Bytes,
        leave_open: bool,
        remove: bool,
        power_cycle: bool,
    },
    /// power_off, power_on, and the reset-state checks.
    PowerCycle,
    /// power_off, these commands while the card is off, power_on.
    PowerOff(Vec<Send>),
    /// A warm reset.
    PowerOn,
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding

/// ISO 7816-4 command cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    C1,
    C2S,
    C3S,
    C4S,
    C2E,
    C3E,
    C4E,
}

/// Encodes an APDU of `case` (cases 1 and 2 drop `data`; cases 3 and 4 without data become 1 and 2; short cases
/// with more than 255 bytes of data become extended).
fn encode(header: [u8; 4], case: Case, data: &[u8], le: u16) -> Vec<u8> {
    use Case::*;
    let case = match (case, data.is_empty(), data.len() > 255) {
        (C3S | C3E, true, _) => C1,
        (C4S, true, _) => C2S,
        (C4E, true, _) => C2E,
        (C3S, _, true) => C3E,
        (C4S, _, true) => C4E,
        (case, _, _) => case,
    };
    let mut out = header.to_vec();
    let [le_hi, le_lo] = le.to_be_bytes();
    match case {
        C1 => {}
        C2S => out.push(le_lo),
        C3S | C4S => {
            out.push(data.len() as u8);
            out.extend(data);
            if case == C4S {
                out.push(le_lo);
            }
        }
        C2E => out.extend([0, le_hi, le_lo]),
        C3E | C4E => {
            out.push(0);
            out.extend((data.len() as u16).to_be_bytes());
            out.extend(data);
            if case == C4E {
                out.extend([le_hi, le_lo]);
            }
        }
    }
    out
}

fn lv(value: &[u8]) -> Vec<u8> {
    let mut out = vec![value.len() as u8];
    out.extend(value);
    out
}

/// The CLA byte for a channel (ISO 7816-4 §5.4.1), or `None` for FF.
fn cla_for(channel: u8, proprietary: bool, chaining: bool, secure: bool) -> Option<u8> {
    let mut cla = if channel < 4 {
        channel | if secure { 0x04 } else { 0 }
    } else {
        0x40 | (channel - 4) | if secure { 0x20 } else { 0 }
    };
    if chaining {
        cla |= 0x10;
    }
    if proprietary {
        cla |= 0x80;
    }
    (cla != 0xFF).then_some(cla)
}

// ---------------------------------------------------------------------------------------------------------------
// Strategies

fn out_size() -> BoxedStrategy<usize> {
    prop_oneof![
        8 => Just(FULL),
        2 => 0usize..10,
        1 => 10usize..300,
    ]
    .boxed()
}

fn cla() -> BoxedStrategy<u8> {
    prop_oneof![
        8 => Just(0x00),
        8 => Just(0x80),
        2 => 0x00u8..=0x03,
        2 => 0x80u8..=0x83,
        1 => 0x40u8..=0x4F,
        1 => 0xC0u8..=0xCF,
        2 => (0u8..20, any::<bool>(), any::<bool>(), any::<bool>())
            .prop_filter_map("FF", |(ch, p, c, s)| cla_for(ch, p, c, s)),
        1 => prop_oneof![Just(0x10), Just(0x90), Just(0x11), Just(0x91), Just(0x50), Just(0xD3)],
        1 => prop_oneof![Just(0xB0), Just(0xFF), Just(0x20), Just(0x84), Just(0x0C)],
        1 => any::<u8>(),
    ]
    .boxed()
}

/// The CLA of a command on one of the low channels (mostly the basic one), without chaining or secure messaging.
fn plain_cla(proprietary: bool) -> BoxedStrategy<u8> {
    prop_oneof![6 => Just(0u8), 1 => 1u8..4, 1 => 4u8..20]
        .prop_map(move |ch| cla_for(ch, proprietary, false, false).unwrap_or(0))
        .boxed()
}

fn ins() -> BoxedStrategy<u8> {
    prop_oneof![
        5 => Just(0xA4),
        3 => Just(0x70),
        2 => Just(0xC0),
        3 => Just(0xE6),
        1 => Just(0xE4),
        2 => Just(0xF0),
        2 => Just(0xF2),
        3 => Just(0x10),
        3 => Just(0x12),
        2 => Just(0x14),
        2 => prop_oneof![Just(0x16), Just(0x18), Just(0x1A), Just(0x1C), Just(0x1E)],
        2 => any::<u8>(),
    ]
    .boxed()
}

fn p1p2(ins: u8) -> BoxedStrategy<(u8, u8)> {
    let any_p = || any::<u8>().boxed();
    match ins {
        0xA4 => (
            prop_oneof![8 => Just(0x04), 1 => any::<u8>()],
            prop_oneof![
                Just(0x00),
                Just(0x02),
                Just(0x0C),
                Just(0x0E),
                Just(0x04),
                any::<u8>()
            ],
        )
            .boxed(),
        0x70 => (
            prop_oneof![4 => Just(0x00), 4 => Just(0x80), 1 => any::<u8>()],
            prop_oneof![Just(0), Just(0), 0u8..=25],
        )
            .boxed(),
        0xC0 => prop_oneof![8 => Just((0, 0)), 1 => (any_p(), any_p())].boxed(),
        0xE6 => (
            prop_oneof![Just(0x0C), Just(0x0C), Just(0x04), Just(0x08), any::<u8>()],
            prop_oneof![8 => Just(0x00), 1 => any::<u8>()],
        )
            .boxed(),
        0xE4 => (
            prop_oneof![8 => Just(0x00), 1 => any::<u8>()],
            prop_oneof![Just(0x00), Just(0x80), any::<u8>()],
        )
            .boxed(),
        0xF0 => (
            prop_oneof![Just(0x80), Just(0x40), any::<u8>()],
            prop_oneof![
                Just(0x01),
                Just(0x07),
                Just(0x0F),
                Just(0x7F),
                Just(0xFF),
                Just(0x83),
                Just(0x87),
                Just(0x00),
                any::<u8>()
            ],
        )
            .boxed(),
        0xF2 => (
            prop_oneof![Just(0x80), Just(0x40), Just(0x20), Just(0x10), any::<u8>()],
            prop_oneof![4 => Just(0x02), 2 => Just(0x03), 1 => any::<u8>()],
        )
            .boxed(),
        0x10 | 0x14 | 0x1C => prop_oneof![8 => Just((0, 0)), 1 => (any_p(), any_p())].boxed(),
        0x12 => (0u8..=0x09, any::<u8>()).boxed(),
        0x16 | 0x18 | 0x1A | 0x1E => (0u8..4, prop_oneof![Just(0), Just(1), any::<u8>()]).boxed(),
        _ => (any_p(), any_p()).boxed(),
    }
}

/// Instance AIDs: the factory loopback, ones INSTALL may create, ones it must refuse, nonsense.
fn instance_aid() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => Just(LOOPBACK.to_vec()),
        3 => (2u8..6).prop_map(|n| [&LOAD_FILE[..], &[n]].concat()),
        1 => Just(vec![0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0x01]),
        1 => Just(ISD.to_vec()),
        1 => Just([&ISD[..], &[0x01]].concat()),
        1 => Just(LOAD_FILE.to_vec()),
        1 => Just(MODULE.to_vec()),
        1 => prop::collection::vec(any::<u8>(), 5..=16),
        1 => prop::collection::vec(any::<u8>(), 0..=20),
    ]
    .boxed()
}

/// Names SELECT looks for: whole AIDs and prefixes.
fn select_name() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        4 => Just(ISD.to_vec()),
        4 => Just(LOOPBACK.to_vec()),
        2 => instance_aid(),
        1 => (1usize..=8).prop_map(|n| ISD[..n].to_vec()),
        2 => (1usize..=7).prop_map(|n| LOOPBACK[..n].to_vec()),
        1 => Just(vec![]),
        1 => prop::collection::vec(any::<u8>(), 1..=20),
    ]
    .boxed()
}

/// INSTALL [for install (and make selectable)] of a loopback, every field possibly wrong, the result possibly
/// mangled.
fn install_data() -> BoxedStrategy<Vec<u8>> {
    let load_file = prop_oneof![
        8 => Just(LOAD_FILE.to_vec()),
        1 => Just(vec![]),
        1 => Just(vec![0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0x01]),
    ];
    let module = prop_oneof![
        8 => Just(MODULE.to_vec()),
        1 => Just(vec![]),
        1 => Just(LOOPBACK.to_vec()),
    ];
    let privileges = prop_oneof![
        4 => Just(vec![0x00]),
        2 => Just(vec![0x04]),
        1 => Just(vec![0x80]),
        1 => Just(vec![0x1C, 0x00, 0x00]),
        1 => Just(vec![]),
        1 => prop::collection::vec(any::<u8>(), 0..5),
    ];
    let parameters = prop_oneof![
        4 => (0u8..16).prop_map(|f| vec![0xC9, 0x01, f]),
        1 => any::<u8>().prop_map(|f| vec![0xC9, 0x01, f]),
        1 => Just(vec![0xC9, 0x00]),
        1 => Just(vec![]),
        1 => prop::collection::vec(any::<u8>(), 1..12).prop_map(|v| [&[0xC9, v.len() as u8][..], &v].concat()),
        1 => prop::collection::vec(any::<u8>(), 0..12),
    ];
    let token = prop_oneof![8 => Just(vec![]), 1 => Just(vec![0x00])];
    let mangle = prop_oneof![
        6 => Just(None),
        1 => (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 0..6)).prop_map(Some),
    ];
    (
        load_file,
        module,
        instance_aid(),
        privileges,
        parameters,
        token,
        mangle,
        any::<bool>(),
    )
        .prop_map(
            |(load_file, module, aid, privileges, parameters, token, mangle, long_form)| {
                let mut data = [lv(&load_file), lv(&module), lv(&aid)].concat();
                data.extend(lv(&privileges));
                if long_form {
                    data.push(0x81); // the 81 xx length form for the parameters field
                }
                data.extend(lv(&parameters));
                data.extend(lv(&token));
                if let Some((cut, junk)) = mangle {
                    data.truncate(cut.index(data.len() + 1));
                    data.extend(junk);
                }
                data
            },
        )
        .boxed()
}

fn tagged_aid(aid: Vec<u8>) -> Vec<u8> {
    [&[0x4F, aid.len() as u8][..], &aid].concat()
}

fn data_for(ins: u8, p1: u8) -> BoxedStrategy<Vec<u8>> {
    let random = || prop::collection::vec(any::<u8>(), 0..40).boxed();
    match (ins, p1) {
        (0xA4, _) => prop_oneof![8 => select_name(), 1 => random()].boxed(),
        (0xE6, _) => prop_oneof![8 => install_data(), 1 => random()].boxed(),
        (0xE4, _) => prop_oneof![6 => instance_aid().prop_map(tagged_aid), 1 => random()].boxed(),
        (0xF0, 0x40) => prop_oneof![6 => instance_aid(), 1 => random()].boxed(),
        (0xF0, _) => prop_oneof![4 => Just(vec![]), 1 => random()].boxed(),
        (0xF2, _) => prop_oneof![
            6 => Just(vec![0x4F, 0x00]),
            2 => select_name().prop_map(tagged_aid),
            1 => random(),
        ]
        .boxed(),
        (0x10, _) => prop_oneof![
            6 => prop::collection::vec(any::<u8>(), 0..300),
            1 => prop::collection::vec(any::<u8>(), 256..=2048),
            1 => prop::collection::vec(any::<u8>(), 2040..2200),
        ]
        .boxed(),
        (0x16, _) => prop::collection::vec(any::<u8>(), 0..320).boxed(),
        (0x1C, _) => (
            instance_aid(),
            prop_oneof![
                Just(vec![0x00, 0x02, 0xCA, 0xFE]),
                Just(vec![0x01, 0x02, 0x01, 0x55]),
                prop::collection::vec(any::<u8>(), 0..8),
            ],
        )
            .prop_map(|(aid, request)| [lv(&aid), request].concat())
            .boxed(),
        (0x1E, _) => instance_aid(),
        (0x12 | 0x14 | 0x18 | 0x1A | 0x70 | 0xC0, _) => {
            prop_oneof![8 => Just(vec![]), 1 => random()].boxed()
        }
        _ => random(),
    }
}

fn case() -> BoxedStrategy<Case> {
    prop_oneof![
        Just(Case::C1),
        Just(Case::C2S),
        Just(Case::C3S),
        Just(Case::C4S),
        Just(Case::C2E),
        Just(Case::C3E),
        Just(Case::C4E),
    ]
    .boxed()
}

fn le() -> BoxedStrategy<u16> {
    prop_oneof![
        4 => Just(0u16),
        2 => 1u16..=32,
        1 => Just(0x100),
        1 => Just(0x800),
        2 => any::<u16>(),
    ]
    .boxed()
}

/// A well-formed APDU: header, data for the instruction, a random case.
fn apdu() -> BoxedStrategy<Vec<u8>> {
    (cla(), ins())
        .prop_flat_map(|(cla, ins)| (Just(cla), Just(ins), p1p2(ins)))
        .prop_flat_map(|(cla, ins, (p1, p2))| {
            (Just([cla, ins, p1, p2]), data_for(ins, p1), case(), le())
        })
        .prop_map(|(header, data, case, le)| encode(header, case, &data, le))
        .boxed()
}

fn send() -> BoxedStrategy<Send> {
    (
        prop_oneof![
            5 => apdu(),
            1 => prop::collection::vec(any::<u8>(), 0..300),
            1 => prop::collection::vec(any::<u8>(), 0..6),
        ],
        out_size(),
    )
        .prop_map(|(apdu, out)| Send {
            apdu: Bytes(apdu),
            out,
        })
        .boxed()
}

fn get_response() -> BoxedStrategy<Vec<u8>> {
    (
        prop_oneof![4 => Just(0x00u8), 1 => cla()],
        prop_oneof![Just(Case::C1), Just(Case::C2S), Just(Case::C2E)],
        le(),
    )
        .prop_map(|(cla, case, le)| encode([cla, 0xC0, 0, 0], case, &[], le))
        .boxed()
}

/// How the command after the fragments relates to the chain.
#[derive(Clone, Copy, Debug)]
enum ChainEnd {
    /// Same header without the chaining bit: completes the chain.
    Complete,
    /// Another INS, P1 or CLA: abandons it.
    OtherIns,
    OtherP1,
    OtherCla,
    /// Nothing: the chain stays open for the next operations.
    Open,
}

/// What fills a chain beyond its payload.
#[derive(Clone, Copy, Debug)]
enum Padding {
    None,
    /// This many fragments of 255 bytes first: 9 or more overflow the chain buffer.
    Fragments(usize),
    /// Fragments first so that the whole chain carries the chain buffer's size plus this many bytes.
    Total(isize),
}

/// Commands sent in the middle of a chain: most abandon it (malformed, invalid CLA, closed channel, another
/// command), GET RESPONSE does not.
fn interruption() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        Just(vec![0xFF, 0x10, 0x00, 0x00]),
        Just(vec![0x20, 0x10, 0x00, 0x00]),
        Just(vec![0x13, 0x10, 0x00, 0x00, 0x01, 0xEE]),
        Just(vec![0x00, 0xA4]),
        Just(vec![0x80, 0x10, 0x00, 0x00, 0x02, 0x01]),
        Just(vec![0x00, 0xC0, 0x00, 0x00, 0x00]),
        Just(vec![0x80, 0x14, 0x00, 0x00, 0x00]),
        apdu(),
    ]
    .boxed()
}

/// A command chain: a payload cut into fragments (sometimes padded to or beyond the chain buffer), sometimes
/// after a SELECT of the loopback and with another command in the middle, then the end of the chain.
fn chain() -> BoxedStrategy<Op> {
    let header = prop_oneof![
        3 => plain_cla(true).prop_map(|cla| [cla, 0x10, 0x00, 0x00]),
        1 => plain_cla(false).prop_map(|cla| [cla, 0xA4, 0x04, 0x00]),
        1 => Just([0x80, 0xE6, 0x0C, 0x00]),
        1 => plain_cla(true).prop_map(|cla| [cla, 0x12, 0x00, 0x10]),
        2 => (cla().prop_map(|c| c & !0x10), ins())
            .prop_flat_map(|(cla, ins)| (Just(cla), Just(ins), p1p2(ins)))
            .prop_map(|(cla, ins, (p1, p2))| [cla, ins, p1, p2]),
    ];
    let padding = prop_oneof![
        6 => Just(Padding::None),
        1 => (1usize..=10).prop_map(Padding::Fragments),
        1 => (-2isize..=1).prop_map(Padding::Total),
    ];
    (header, padding, any::<bool>())
        .prop_flat_map(|(header, padding, select_loopback)| {
            (
                Just((header, padding, select_loopback)),
                data_for(header[1], header[2]),
                prop::collection::vec(any::<prop::sample::Index>(), 0..6),
                prop::collection::vec(any::<bool>(), 16),
                prop::option::weighted(0.25, (any::<prop::sample::Index>(), interruption())),
                prop_oneof![
                    8 => Just(ChainEnd::Complete),
                    1 => Just(ChainEnd::OtherIns),
                    1 => Just(ChainEnd::OtherP1),
                    1 => Just(ChainEnd::OtherCla),
                    1 => Just(ChainEnd::Open),
                ],
                (le(), any::<bool>(), out_size()),
            )
        })
        .prop_map(
            |(
                (header, padding, select_loopback),
                payload,
                cuts,
                extended,
                interrupt,
                end,
                (le, end_extended, out),
            )| {
                let mut cuts: Vec<usize> =
                    cuts.iter().map(|c| c.index(payload.len() + 1)).collect();
                cuts.extend([0, payload.len()]);
                cuts.sort_unstable();
                cuts.dedup();
                let mut pieces: Vec<&[u8]> =
                    cuts.windows(2).map(|w| &payload[w[0]..w[1]]).collect();
                let pad = [0x5Au8; 255];
                let mut padded: Vec<&[u8]> = Vec::new();
                match padding {
                    Padding::None => {}
                    Padding::Fragments(n) => padded.extend((0..n).map(|_| &pad[..])),
                    Padding::Total(delta) => {
                        let target = CHAIN_BUFFER.saturating_add_signed(delta);
                        let mut missing = target.saturating_sub(payload.len());
                        while missing > 0 {
                            let n = missing.min(pad.len());
                            padded.push(&pad[..n]);
                            missing -= n;
                        }
                    }
                }
                pieces.splice(0..0, padded);
                let last = pieces.pop().unwrap_or(&[]);
                let [cla, ins, p1, p2] = header;
                let mut sends = Vec::new();
                if select_loopback {
                    // The interindustry CLA of the chain's channel.
                    let select = [&[cla & 0x7F, 0xA4, 0x04, 0x0C, 0x07][..], &LOOPBACK].concat();
                    sends.push(Send {
                        apdu: Bytes(select),
                        out: FULL,
                    });
                }
                let interrupt_at = interrupt.as_ref().map(|(at, _)| at.index(pieces.len() + 1));
                for (i, piece) in pieces.iter().enumerate() {
                    if interrupt_at == Some(i)
                        && let Some((_, apdu)) = &interrupt
                    {
                        sends.push(Send {
                            apdu: Bytes(apdu.clone()),
                            out: FULL,
                        });
                    }
                    let case = if extended[i % extended.len()] {
                        Case::C3E
                    } else {
                        Case::C3S
                    };
                    sends.push(Send {
                        apdu: Bytes(encode([cla | 0x10, ins, p1, p2], case, piece, 0)),
                        out: FULL,
                    });
                }
                if interrupt_at == Some(pieces.len())
                    && let Some((_, apdu)) = &interrupt
                {
                    sends.push(Send {
                        apdu: Bytes(apdu.clone()),
                        out: FULL,
                    });
                }
                let end_header = match end {
                    ChainEnd::Complete => Some([cla, ins, p1, p2]),
                    ChainEnd::OtherIns => Some([cla, ins ^ 0x02, p1, p2]),
                    ChainEnd::OtherP1 => Some([cla, ins, p1 ^ 0x01, p2]),
                    ChainEnd::OtherCla => Some([cla ^ 0x01, ins, p1, p2]),
                    ChainEnd::Open => None,
                };
                if let Some(h) = end_header {
                    let case = if end_extended { Case::C4E } else { Case::C4S };
                    sends.push(Send {
                        apdu: Bytes(encode(h, case, last, le)),
                        out,
                    });
                }
                Op::Run(sends)
            },
        )
        .boxed()
}

/// Commands that answer with data (up to the whole response buffer), with any Le.
fn data_command() -> BoxedStrategy<Vec<u8>> {
    let short_or_extended = || prop_oneof![3 => Just(false), 1 => Just(true)];
    prop_oneof![
        // GENERATE
        3 => (plain_cla(true), 0u16..=0x0900, le(), short_or_extended()).prop_map(|(cla, len, le, ext)| {
            let [p1, p2] = len.to_be_bytes();
            encode([cla, 0x12, p1, p2], if ext { Case::C2E } else { Case::C2S }, &[], le)
        }),
        // ECHO
        2 => (plain_cla(true), data_for(0x10, 0), le(), short_or_extended())
            .prop_map(|(cla, data, le, ext)| {
                encode([cla, 0x10, 0, 0], if ext { Case::C4E } else { Case::C4S }, &data, le)
            }),
        // SELECT with FCI
        2 => (plain_cla(false), select_name(), le())
            .prop_map(|(cla, name, le)| encode([cla, 0xA4, 0x04, 0x00], Case::C4S, &name, le)),
        // GET STATUS
        1 => (
            plain_cla(true),
            prop_oneof![Just(0x80u8), Just(0x40), Just(0x20), Just(0x10)],
            prop_oneof![Just(0x02u8), Just(0x03)],
            le(),
        )
            .prop_map(|(cla, p1, p2, le)| encode([cla, 0xF2, p1, p2], Case::C4S, &[0x4F, 0x00], le)),
        // INFO
        1 => (plain_cla(true), le()).prop_map(|(cla, le)| encode([cla, 0x14, 0, 0], Case::C2S, &[], le)),
        // MANAGE CHANNEL open, the new channel's number as data
        1 => (plain_cla(false), le()).prop_map(|(cla, le)| encode([cla, 0x70, 0, 0], Case::C2S, &[], le)),
    ]
    .boxed()
}

/// SELECT of the card manager on the basic channel, then a card management command.
fn card_management() -> BoxedStrategy<Op> {
    let command = prop_oneof![
        5 => (prop_oneof![3 => Just(0x0Cu8), 1 => Just(0x04), 1 => Just(0x08)], install_data())
            .prop_map(|(p1, data)| ([0x80, 0xE6, p1, 0x00], data)),
        2 => instance_aid().prop_map(|aid| ([0x80, 0xE4, 0x00, 0x00], tagged_aid(aid))),
        2 => (
            prop_oneof![Just(0x83u8), Just(0x80), Just(0x07), Just(0x0F), Just(0x87), Just(0x03), any::<u8>()],
            instance_aid(),
        )
            .prop_map(|(state, aid)| ([0x80, 0xF0, 0x40, state], aid)),
        1 => prop_oneof![4 => Just(0x07u8), 4 => Just(0x0F), 2 => Just(0x7F), 1 => Just(0xFF), 1 => any::<u8>()]
            .prop_map(|state| ([0x80, 0xF0, 0x80, state], vec![])),
        1 => prop_oneof![Just(0x80u8), Just(0x40), Just(0x20), Just(0x10)]
            .prop_map(|p1| ([0x80, 0xF2, p1, 0x02], vec![0x4F, 0x00])),
    ];
    (
        command,
        prop_oneof![Just(Case::C3S), Just(Case::C4S)],
        le(),
        out_size(),
    )
        .prop_map(|((header, data), case, le, out)| {
            let select = [&[0x00, 0xA4, 0x04, 0x0C, 0x08][..], &ISD].concat();
            Op::Run(vec![
                Send {
                    apdu: Bytes(select),
                    out: FULL,
                },
                Send {
                    apdu: Bytes(encode(header, case, &data, le)),
                    out,
                },
            ])
        })
        .boxed()
}

/// SELECT of an applet the card has or may have, on a low channel.
fn select_known() -> BoxedStrategy<Vec<u8>> {
    (
        plain_cla(false),
        prop_oneof![
            3 => Just(LOOPBACK.to_vec()),
            2 => Just(ISD.to_vec()),
            2 => (2u8..6).prop_map(|n| [&LOAD_FILE[..], &[n]].concat()),
        ],
        prop_oneof![Just(0x00u8), Just(0x0C)],
    )
        .prop_map(|(cla, name, p2)| encode([cla, 0xA4, 0x04, p2], Case::C3S, &name, 0))
        .boxed()
}

fn op() -> BoxedStrategy<Op> {
    let response_out = || prop_oneof![4 => Just(FULL), 1 => 2usize..300, 1 => 2usize..8];
    prop_oneof![
        12 => send().prop_map(Op::Send),
        6 => (data_command(), out_size(), get_response(), response_out()).prop_map(
            |(command, command_out, get_response, out)| Op::Fetch {
                command: Send { apdu: Bytes(command), out: command_out },
                get_response: Bytes(get_response),
                out,
            }
        ),
        3 => select_known().prop_map(|apdu| Op::Send(Send { apdu: Bytes(apdu), out: FULL })),
        3 => chain(),
        3 => card_management(),
        2 => (
            0u8..4,
            prop_oneof![
                4 => prop::collection::vec(any::<u8>(), 0..=40),
                1 => prop::collection::vec(any::<u8>(), 280..=310),
            ],
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.2),
        )
            .prop_map(|(key, data, leave_open, remove, power_cycle)| Op::Records {
                key,
                data: Bytes(data),
                leave_open,
                remove,
                power_cycle,
            }),
        1 => (get_response(), response_out())
            .prop_map(|(get_response, out)| Op::Drain { get_response: Bytes(get_response), out }),
        1 => Just(Op::PowerCycle),
        1 => prop::collection::vec(send(), 0..3).prop_map(Op::PowerOff),
        1 => Just(Op::PowerOn),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------------------------
// The model

/// A command APDU as the model parses it (ISO 7816-4 §5.1), independently of `apdu_spec`.
#[derive(Debug)]
struct Parsed {
    header: [u8; 4],
    data: Vec<u8>,
    ne: Option<usize>,
    extended: bool,
}

fn parse(bytes: &[u8]) -> Option<Parsed> {
    let (header, body) = bytes.split_first_chunk::<4>()?;
    let mut parsed = Parsed {
        header: *header,
        data: Vec::new(),
        ne: None,
        extended: false,
    };
    let short_ne = |le: u8| if le == 0 { 256 } else { usize::from(le) };
    let long_ne = |hi: u8, lo: u8| match u16::from_be_bytes([hi, lo]) {
        0 => 65536,
        n => usize::from(n),
    };
    match body {
        [] => {}
        [le] => parsed.ne = Some(short_ne(*le)),
        [0, hi, lo] => {
            parsed.extended = true;
            parsed.ne = Some(long_ne(*hi, *lo));
        }
        [0, hi, lo, rest @ ..] => {
            parsed.extended = true;
            let lc = usize::from(u16::from_be_bytes([*hi, *lo]));
            if lc == 0 {
                return None;
            }
            if rest.len() == lc {
                parsed.data = rest.to_vec();
            } else if rest.len() == lc + 2 {
                parsed.data = rest[..lc].to_vec();
                parsed.ne = Some(long_ne(rest[lc], rest[lc + 1]));
            } else {
                return None;
            }
        }
        [lc, rest @ ..] => {
            let lc = usize::from(*lc);
            if lc == 0 {
                return None;
            }
            if rest.len() == lc {
                parsed.data = rest.to_vec();
            } else if rest.len() == lc + 1 {
                parsed.data = rest[..lc].to_vec();
                parsed.ne = Some(short_ne(rest[lc]));
            } else {
                return None;
            }
        }
    }
    Some(parsed)
}

/// CLA decoding: `(channel, chaining)`, `None` for the reserved range and FF.
fn decode_cla(cla: u8) -> Option<(usize, bool)> {
    match cla & 0x7F {
        _ if cla == 0xFF => None,
        low @ 0x00..=0x1F => Some((usize::from(low & 0x03), low & 0x10 != 0)),
        low @ 0x40..=0x7F => Some((4 + usize::from(low & 0x0F), low & 0x10 != 0)),
        _ => None,
    }
}

/// Whether a (valid) CLA indicates secure messaging.
fn secure_messaging(cla: u8) -> bool {
    match cla & 0x7F {
        low @ 0x00..=0x1F => low & 0x0C != 0,
        low => low & 0x20 != 0,
    }
}

/// The card life cycle transitions GlobalPlatform allows (GP §5.1.1).
fn life_cycle_allows(from: u8, to: u8) -> bool {
    matches!(
        (from, to),
        (0x01, 0x07 | 0x0F)
            | (0x07, 0x0F)
            | (0x0F, 0x7F)
            | (0x7F, 0x0F)
            | (0x01 | 0x07 | 0x0F | 0x7F, 0xFF)
    )
}

/// Reads `E3 len value` records (one- or two-byte BER lengths); `None` if the bytes are anything else.
fn status_records(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut records = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = match bytes {
            [0xE3, 0x81, len, rest @ ..] => (usize::from(*len), rest),
            [0xE3, len @ 0x00..=0x7F, rest @ ..] => (usize::from(*len), rest),
            _ => return None,
        };
        if rest.len() < len {
            return None;
        }
        records.push(&rest[..len]);
        bytes = &rest[len..];
    }
    Some(records)
}

#[derive(Debug)]
struct PendingChain {
    key: [u8; 4],
    data: Vec<u8>,
    extended: bool,
}

/// A response announced with 61xx.
#[derive(Debug)]
struct Pending {
    /// Bytes left, when known (61xx with xx ≠ 00, or a predictable response).
    exact: Option<usize>,
    /// At least this many bytes are left.
    at_least: usize,
    /// The rest of the response, when the model can predict it, and the status word that ends it.
    rest: Option<(Vec<u8>, u16)>,
}

#[derive(Debug)]
struct Model {
    powered: bool,
    open: [bool; CHANNELS],
    chain: Option<PendingChain>,
    pending: Option<Pending>,
    life_cycle: u8,
}

/// The command an applet or the runtime sees after chaining is undone.
#[derive(Debug)]
struct Effective {
    header: [u8; 4],
    data: Vec<u8>,
    extended: bool,
    channel: usize,
}

/// A response the model can predict in full: data and status word.
struct Expected(Vec<u8>, u16);

struct Response {
    data: Vec<u8>,
    sw: u16,
}

impl Response {
    fn sw1(&self) -> u8 {
        (self.sw >> 8) as u8
    }
    fn delivered(&self) -> bool {
        self.sw == SW_OK || self.sw1() == 0x61
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {:04X}", Bytes(self.data.clone()), self.sw)
    }
}

macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

fn expect_sw(r: &Response, sw: u16, what: &str) -> Result<(), String> {
    check!(
        r.sw == sw && r.data.is_empty(),
        "{what}: expected {sw:04X} without data"
    );
    Ok(())
}

impl Model {
    fn new() -> Self {
        Self {
            powered: false,
            open: [false; CHANNELS],
            chain: None,
            pending: None,
            life_cycle: 0x01, // OP_READY
        }
    }

    fn power_on(&mut self) {
        self.powered = true;
        self.open = [false; CHANNELS];
        self.open[0] = true;
        self.chain = None;
        self.pending = None;
    }

    fn power_off(&mut self) {
        self.powered = false;
        self.chain = None;
        self.pending = None;
    }

    /// Checks one exchange (buffer of `out` bytes, at least 2) and updates the model.
    fn exchange(&mut self, apdu: &[u8], out: usize, r: &Response) -> Result<(), String> {
        if !self.powered {
            return expect_sw(r, SW_UNKNOWN, "card off");
        }
        let Some(cmd) = parse(apdu) else {
            self.chain = None;
            self.pending = None;
            return expect_sw(r, SW_WRONG_LENGTH, "malformed lengths");
        };
        let cap = cmd.ne.unwrap_or(256).min(out - 2);
        check!(r.data.len() <= cap, "more data than Ne/buffer room ({cap})");
        if r.sw1() == 0x61 {
            check!(
                r.data.len() == cap,
                "61xx with less data than Ne/room ({cap})"
            );
        }
        let [cla, ins, p1, p2] = cmd.header;
        if ins == 0xC0 {
            return self.get_response(&cmd, cap, r);
        }
        self.pending = None;
        let Some((channel, chaining)) = decode_cla(cla) else {
            self.chain = None;
            return expect_sw(r, SW_CLA, "invalid CLA");
        };
        if !self.open[channel] {
            self.chain = None;
            return expect_sw(r, SW_NO_CHANNEL, "closed channel");
        }
        let key = [cla & !0x10, ins, p1, p2];
        if self.chain.as_ref().is_some_and(|c| c.key != key) {
            self.chain = None;
        }
        if chaining {
            let chain = self.chain.get_or_insert_with(|| PendingChain {
                key,
                data: Vec::new(),
                extended: false,
            });
            chain.extended |= cmd.extended;
            if chain.data.len() + cmd.data.len() > CHAIN_BUFFER {
                self.chain = None;
                return expect_sw(r, SW_WRONG_LENGTH, "chain overflow");
            }
            chain.data.extend(&cmd.data);
            return expect_sw(r, SW_OK, "chained fragment");
        }
        let command = match self.chain.take() {
            Some(chain) => {
                if chain.data.len() + cmd.data.len() > CHAIN_BUFFER {
                    return expect_sw(r, SW_WRONG_LENGTH, "chain overflow on its last fragment");
                }
                Effective {
                    header: key,
                    data: [chain.data, cmd.data].concat(),
                    extended: chain.extended || cmd.extended,
                    channel,
                }
            }
            None => Effective {
                header: key,
                data: cmd.data,
                extended: cmd.extended,
                channel,
            },
        };
        if secure_messaging(cla) {
            // No secure channel is ever opened here (no security domain has a key): the card cannot verify
            // a secured command, and refuses it whatever it is.
            if command.data.len() > CHAIN_BUFFER {
                return expect_sw(r, SW_WRONG_LENGTH, "secured command longer than the buffer");
            }
            return expect_sw(r, SW_SECURITY, "secured command without a session");
        }
        let expected = self.dispatch(&command, r)?;
        if r.sw1() == 0x61 {
            let left = usize::from(r.sw as u8);
            let mut pending = Pending {
                exact: (left != 0).then_some(left),
                at_least: if left == 0 { 256 } else { left },
                rest: None,
            };
            if let Some(Expected(full, sw)) = expected {
                check!(
                    full.starts_with(&r.data) && full.len() > r.data.len(),
                    "first part of a predictable response: expected {:?}",
                    Bytes(full)
                );
                let rest = full[r.data.len()..].to_vec();
                check!(
                    left == if rest.len() >= 256 { 0 } else { rest.len() },
                    "61xx does not count the {} bytes left",
                    rest.len()
                );
                pending.exact = Some(rest.len());
                pending.rest = Some((rest, sw));
            }
            self.pending = Some(pending);
        } else if let Some(Expected(full, sw)) = expected {
            check!(
                r.data == full && r.sw == sw,
                "expected {:?} {sw:04X}",
                Bytes(full)
            );
        }
        Ok(())
    }

    fn get_response(&mut self, cmd: &Parsed, cap: usize, r: &Response) -> Result<(), String> {
        if cmd.header[2..] != [0, 0] {
            return expect_sw(r, SW_P1P2, "GET RESPONSE with P1P2");
        }
        if !cmd.data.is_empty() {
            return expect_sw(r, SW_WRONG_LENGTH, "GET RESPONSE with data");
        }
        let Some(pending) = self.pending.take() else {
            return expect_sw(r, SW_CONDITIONS, "GET RESPONSE with nothing pending");
        };
        let n = r.data.len();
        if let Some(left) = pending.exact {
            check!(
                n == left.min(cap),
                "GET RESPONSE sent {n} of {left} bytes left (room {cap})"
            );
            if left > cap {
                let rest = left - n;
                let sw2 = if rest >= 256 { 0 } else { rest as u16 };
                check!(
                    r.sw == 0x6100 | sw2,
                    "61xx after GET RESPONSE: {rest} bytes left"
                );
            }
        }
        if r.sw1() != 0x61 {
            check!(
                n >= pending.at_least,
                "last part of {n} bytes, but 61xx announced at least {}",
                pending.at_least
            );
        }
        let rest = match pending.rest {
            Some((rest, sw)) => {
                check!(
                    rest.starts_with(&r.data),
                    "GET RESPONSE part: expected {:?}",
                    Bytes(rest)
                );
                if r.sw1() != 0x61 {
                    check!(r.sw == sw, "the response ends with {sw:04X}");
                }
                Some((rest[n..].to_vec(), sw))
            }
            None => None,
        };
        if r.sw1() == 0x61 {
            let left = usize::from(r.sw as u8);
            self.pending = Some(Pending {
                exact: (left != 0).then_some(left).or(pending.exact.map(|e| e - n)),
                at_least: if left == 0 { 256 } else { left },
                rest,
            });
        }
        Ok(())
    }

    /// Routing of a complete command: the model predicts what it can, returns the full response when it knows it.
    fn dispatch(&mut self, c: &Effective, r: &Response) -> Result<Option<Expected>, String> {
        let [cla, ins, p1, p2] = c.header;
        let interindustry = cla & 0x80 == 0;
        if interindustry && ins == 0x70 {
            return self.manage_channel(c, r);
        }
        if interindustry && ins == 0xA4 && p1 == 0x04 {
            if c.extended {
                expect_sw(r, SW_WRONG_LENGTH, "extended SELECT")?;
                return Ok(None);
            }
            let first = match p2 & 0xF3 {
                0x00 => true,
                0x02 => false,
                _ => {
                    expect_sw(r, SW_P1P2, "SELECT P2")?;
                    return Ok(None);
                }
            };
            if c.data.is_empty() || (first && c.data == ISD) {
                let fci = if p2 & 0x0C == 0x0C {
                    vec![]
                } else {
                    ISD_FCI.to_vec()
                };
                let locked = LOCKED_CARD.contains(&self.life_cycle);
                let sw = if locked {
                    SW_WARNING_INVALIDATED
                } else {
                    SW_OK
                };
                return Ok(Some(Expected(fci, sw)));
            }
            if let Some(first) = r.data.first() {
                check!(*first == 0x6F, "FCI must start with 6F");
            }
            return Ok(None);
        }
        if interindustry {
            return Ok(None);
        }
        match ins {
            // ECHO
            0x10 if r.delivered() => {
                check!(
                    p1 == 0 && p2 == 0,
                    "ECHO answered with P1P2 {p1:02X}{p2:02X}"
                );
                Ok(Some(Expected(c.data.clone(), SW_OK)))
            }
            // GENERATE
            0x12 if r.delivered() => {
                check!(c.data.is_empty(), "GENERATE answered despite command data");
                let len = usize::from(u16::from_be_bytes([p1, p2]));
                Ok(Some(Expected((0..len).map(|i| i as u8).collect(), SW_OK)))
            }
            // INFO: [channel, flags, n, n events]
            0x14 if r.sw == SW_OK => {
                let d = &r.data;
                check!(d.len() >= 3, "INFO too short");
                check!(
                    usize::from(d[0]) == c.channel,
                    "INFO reports channel {}",
                    d[0]
                );
                check!(d[1] & !0x0F == 0, "INFO flags");
                check!(
                    d[2] <= 8 && d.len() == 3 + usize::from(d[2]),
                    "INFO event count"
                );
                for e in &d[3..] {
                    check!(
                        matches!(e & 0xC0, 0x40 | 0x80) && usize::from(e & 0x3F) < CHANNELS,
                        "INFO event {e:02X}"
                    );
                }
                Ok(None)
            }
            // INSTALL, DELETE
            0xE6 | 0xE4 if r.delivered() => Ok(Some(Expected(vec![0x00], SW_OK))),
            // SET STATUS of the card
            0xF0 if p1 == 0x80 && r.sw == SW_OK => {
                check!(
                    life_cycle_allows(self.life_cycle, p2),
                    "life cycle {:02X} → {p2:02X} accepted",
                    self.life_cycle
                );
                self.life_cycle = p2;
                Ok(None)
            }
            // GET STATUS: whole E3 records; the card manager's own record exactly.
            0xF2 if r.sw == SW_OK || r.sw == SW_MORE_STATUS => {
                let records = status_records(&r.data);
                check!(records.is_some(), "GET STATUS data is not E3 records");
                if p1 == 0x80 {
                    let mut isd = vec![0xE3, 0x13, 0x4F, 0x08];
                    isd.extend(ISD);
                    isd.extend([
                        0x9F,
                        0x70,
                        0x01,
                        self.life_cycle,
                        0xC5,
                        0x03,
                        0x9E,
                        0xFE,
                        0x80,
                    ]);
                    check!(
                        r.data == isd && r.sw == SW_OK,
                        "ISD status record: expected {:?}",
                        Bytes(isd)
                    );
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn manage_channel(&mut self, c: &Effective, r: &Response) -> Result<Option<Expected>, String> {
        let [_, _, p1, p2] = c.header;
        if c.extended || !c.data.is_empty() {
            expect_sw(r, SW_WRONG_LENGTH, "MANAGE CHANNEL with data")?;
            return Ok(None);
        }
        match p1 {
            0x00 => {
                let new = match usize::from(p2) {
                    0 => match (1..CHANNELS).find(|n| !self.open[*n]) {
                        Some(n) => n,
                        None => {
                            expect_sw(r, SW_NO_FUNCTION, "no free channel")?;
                            return Ok(None);
                        }
                    },
                    n if n >= CHANNELS => {
                        expect_sw(r, SW_NO_CHANNEL, "channel beyond 19")?;
                        return Ok(None);
                    }
                    n if self.open[n] => {
                        expect_sw(r, SW_CONDITIONS, "channel already open")?;
                        return Ok(None);
                    }
                    n => n,
                };
                if r.delivered() {
                    self.open[new] = true;
                    let data = if p2 == 0 { vec![new as u8] } else { vec![] };
                    return Ok(Some(Expected(data, SW_OK)));
                }
                // The applet to select on the new channel may refuse or be active elsewhere.
                check!(
                    matches!(r.sw, SW_CONDITIONS | SW_SELECT_FAILED) && r.data.is_empty(),
                    "MANAGE CHANNEL open of {new} failed"
                );
                Ok(None)
            }
            0x80 => {
                let closing = if p2 == 0 { c.channel } else { usize::from(p2) };
                if closing == 0 {
                    expect_sw(r, SW_P1P2, "closing the basic channel")?;
                } else if closing >= CHANNELS || !self.open[closing] {
                    expect_sw(r, SW_NO_CHANNEL, "closing a closed channel")?;
                } else {
                    self.open[closing] = false;
                    return Ok(Some(Expected(vec![], SW_OK)));
                }
                Ok(None)
            }
            _ => {
                expect_sw(r, SW_P1P2, "MANAGE CHANNEL P1")?;
                Ok(None)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The harness

struct Harness {
    card: Box<LinkcardCard>,
    model: Model,
}

impl Harness {
    fn new() -> Result<Self, TestCaseError> {
        let mut harness = Self {
            card: Box::new(LinkcardCard::new()),
            model: Model::new(),
        };
        harness.power_on()?;
        Ok(harness)
    }

    fn power_on(&mut self) -> Result<(), TestCaseError> {
        let atr = self.card.power_on();
        prop_assert_eq!(atr.as_bytes(), LinkcardCard::ATR.as_bytes());
        prop_assert_eq!(&atr.as_bytes()[..4], &[0x3B, 0x8A, 0x80, 0x01]);
        self.model.power_on();
        prop_assert!(self.card.is_powered());
        Ok(())
    }

    fn power_off(&mut self) -> Result<(), TestCaseError> {
        self.card.power_off();
        self.model.power_off();
        prop_assert!(!self.card.is_powered());
        Ok(())
    }

    /// One transmit, checked for its shape and against the model. `None` when the buffer had no room for a
    /// status word.
    fn transmit(&mut self, apdu: &[u8], out_len: usize) -> Result<Option<Response>, TestCaseError> {
        const UNTOUCHED: u8 = 0xA5;
        let mut out = vec![UNTOUCHED; out_len];
        let n = self.card.transmit(apdu, &mut out);
        let context = || format!("command {:?} into {out_len} bytes", Bytes(apdu.to_vec()));
        if out_len < 2 {
            prop_assert_eq!(
                n,
                0,
                "{}: a buffer without room for a status word gets nothing",
                context()
            );
            prop_assert!(
                out.iter().all(|b| *b == UNTOUCHED),
                "{}: wrote {:02X?}",
                context(),
                out
            );
            return Ok(None);
        }
        prop_assert!(
            (2..=out_len).contains(&n),
            "{}: response length {}",
            context(),
            n
        );
        prop_assert!(
            out[n..].iter().all(|b| *b == UNTOUCHED),
            "{}: wrote beyond the {} bytes it returned",
            context(),
            n
        );
        let r = Response {
            data: out[..n - 2].to_vec(),
            sw: u16::from_be_bytes([out[n - 2], out[n - 1]]),
        };
        prop_assert!(
            matches!(r.sw1(), 0x61..=0x6F) || r.sw == SW_OK,
            "{}: implausible status word in {:?}",
            context(),
            r
        );
        prop_assert!(
            r.data.is_empty() || matches!(r.sw1(), 0x90 | 0x61 | 0x62 | 0x63),
            "{}: data with an error status: {:?}",
            context(),
            r
        );
        if let Err(message) = self.model.exchange(apdu, out_len, &r) {
            return Err(TestCaseError::fail(format!(
                "{}: {message}\n  answered {r:?}\n  model {:?}",
                context(),
                self.model
            )));
        }
        prop_assert_eq!(
            self.card.life_cycle() as u8,
            self.model.life_cycle,
            "{}: life cycle",
            context()
        );
        prop_assert_eq!(self.card.is_powered(), self.model.powered);
        Ok(Some(r))
    }

    /// Power loss, a command while off, power-on: the card must be in its reset state.
    fn power_cycle(&mut self) -> Result<(), TestCaseError> {
        self.power_off()?;
        let off = self.transmit(&[0x00, 0xA4, 0x04, 0x00, 0x00], FULL)?;
        prop_assert_eq!(off.map(|r| r.sw), Some(SW_UNKNOWN));
        self.power_on()?;
        // SELECT of the card manager on the basic channel always works (a warning once the card is locked).
        let select = [&[0x00, 0xA4, 0x04, 0x00, 0x08][..], &ISD, &[0x00]].concat();
        let r = self.transmit(&select, FULL)?.unwrap_or(Response {
            data: vec![],
            sw: 0,
        });
        prop_assert!(
            r.sw == SW_OK || r.sw == SW_WARNING_INVALIDATED,
            "SELECT card manager after reset: {:?}",
            r
        );
        prop_assert_eq!(&r.data[..], &ISD_FCI[..]);
        // Every channel but the basic one closed, nothing left to GET RESPONSE.
        let r = self.transmit(&[0x01, 0xA4, 0x04, 0x00, 0x00], FULL)?;
        prop_assert_eq!(r.map(|r| r.sw), Some(SW_NO_CHANNEL));
        let r = self.transmit(&[0x00, 0xC0, 0x00, 0x00, 0x00], FULL)?;
        prop_assert_eq!(r.map(|r| r.sw), Some(SW_CONDITIONS));
        Ok(())
    }

    /// One command with a full buffer, and GET RESPONSE while it answers 61xx: the whole response.
    fn fetch_all(&mut self, apdu: &[u8]) -> Result<Response, TestCaseError> {
        let mut all = Response {
            data: Vec::new(),
            sw: 0x6100,
        };
        let mut command = apdu;
        for _ in 0..40 {
            let Some(r) = self.transmit(command, FULL)? else {
                break;
            };
            all.data.extend(r.data);
            all.sw = r.sw;
            if all.sw1() != 0x61 {
                break;
            }
            command = &[0x00, 0xC0, 0x00, 0x00, 0x00];
        }
        Ok(all)
    }

    fn records(
        &mut self,
        key: u8,
        data: &[u8],
        leave_open: bool,
        remove: bool,
        power_cycle: bool,
    ) -> Result<(), TestCaseError> {
        let select = [&[0x00, 0xA4, 0x04, 0x0C, 0x07][..], &LOOPBACK].concat();
        let get = [0x80, 0x18, key, 0x00, 0x00];
        if self.fetch_all(&select)?.sw != SW_OK {
            return Ok(()); // deleted, locked, refusing selection, or the card is locked
        }
        let before = self.fetch_all(&get)?;
        prop_assert!(
            before.sw == SW_OK || before.sw == 0x6A88,
            "GET record {}: {:?}",
            key,
            before
        );
        let put = [0x80, 0x16, key, u8::from(leave_open)];
        let put = self.fetch_all(&encode(put, Case::C3S, data, 0))?;
        if data.len() > 296 {
            // 6A84, or 6700 from an instance without extended length support
            prop_assert_ne!(put.sw, SW_OK, "PUT of {} bytes", data.len());
        }
        let mut expected = before;
        if put.sw == SW_OK && !leave_open {
            expected = Response {
                data: data.to_vec(),
                sw: SW_OK,
            };
        }
        if remove {
            let r = self.fetch_all(&[0x80, 0x1A, key, 0x00])?;
            let existed = expected.sw == SW_OK;
            prop_assert_eq!(
                r.sw,
                if existed { SW_OK } else { 0x6A88 },
                "REMOVE record {}",
                key
            );
            expected = Response {
                data: vec![],
                sw: 0x6A88,
            };
        }
        if power_cycle {
            self.power_cycle()?;
            let r = self.fetch_all(&select)?;
            prop_assert_eq!(r.sw, SW_OK, "SELECT loopback again after a power cycle");
        }
        let after = self.fetch_all(&get)?;
        prop_assert!(
            after.sw == expected.sw && after.data == expected.data,
            "record {} after PUT {:?} (leave open: {}) answered {:04X}{}: expected {:?}, got {:?}",
            key,
            Bytes(data.to_vec()),
            leave_open,
            put.sw,
            if remove { " and REMOVE" } else { "" },
            expected,
            after
        );
        Ok(())
    }

    /// GET RESPONSE while the card answers 61xx.
    fn drain(&mut self, get_response: &[u8], out: usize) -> Result<(), TestCaseError> {
        for _ in 0..40 {
            match self.transmit(get_response, out)? {
                Some(r) if r.sw1() == 0x61 => {}
                _ => break,
            }
        }
        Ok(())
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Send(send) => {
                self.transmit(&send.apdu.0, send.out)?;
            }
            Op::Run(sends) => {
                for send in sends {
                    self.transmit(&send.apdu.0, send.out)?;
                }
            }
            Op::Fetch {
                command,
                get_response,
                out,
            } => {
                if let Some(r) = self.transmit(&command.apdu.0, command.out)?
                    && r.sw1() == 0x61
                {
                    self.drain(&get_response.0, *out)?;
                }
            }
            Op::Drain { get_response, out } => self.drain(&get_response.0, *out)?,
            Op::Records {
                key,
                data,
                leave_open,
                remove,
                power_cycle,
            } => self.records(*key, &data.0, *leave_open, *remove, *power_cycle)?,
            Op::PowerCycle => self.power_cycle()?,
            Op::PowerOff(sends) => {
                self.power_off()?;
                for send in sends {
                    self.transmit(&send.apdu.0, send.out)?;
                }
                self.power_on()?;
            }
            Op::PowerOn => self.power_on()?,
        }
        Ok(())
    }
}

fn config() -> ProptestConfig {
    // At least 10,000 sequences per run (PROPTEST_CASES may ask for more). A failing case's seed is saved next to
    // this file (never_panics.proptest-regressions) and replayed first on later runs.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(10_000, |n: u32| n.max(10_000));
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_command_sequences_get_status_words(ops in prop::collection::vec(op(), 1..=40)) {
        let mut harness = Harness::new()?;
        for op in &ops {
            harness.run(op)?;
        }
        harness.power_cycle()?;
    }
}

/// The model itself: encodings of every case parse back, and the checks reject a wrong answer.
#[test]
fn model_parses_every_case_and_rejects_wrong_answers() {
    // The documented sizes the sequences aim their overflows at.
    assert_eq!((CHAIN_BUFFER, card_os::RESPONSE_BUFFER), (2048, 2048));
    let header = [0x80, 0x10, 0x00, 0x00];
    let data = [1u8, 2, 3];
    for (case, ne, extended) in [
        (Case::C1, None, false),
        (Case::C2S, Some(256), false),
        (Case::C3S, None, false),
        (Case::C4S, Some(5), false),
        (Case::C2E, Some(65536), true),
        (Case::C3E, None, true),
        (Case::C4E, Some(5), true),
    ] {
        let le = if ne == Some(5) { 5 } else { 0 };
        let p = parse(&encode(header, case, &data, le)).unwrap();
        let has_data = matches!(case, Case::C3S | Case::C4S | Case::C3E | Case::C4E);
        assert_eq!(p.data, if has_data { &data[..] } else { &[] }, "{case:?}");
        assert_eq!((p.ne, p.extended), (ne, extended), "{case:?}");
    }
    assert!(parse(&[0x00, 0xA4, 0x04]).is_none());
    assert!(parse(&[0x00, 0xA4, 0x04, 0x00, 0x00, 0x01]).is_none());
    assert!(parse(&[0x00, 0xA4, 0x04, 0x00, 0x02, 0x01]).is_none());

    let mut model = Model::new();
    model.power_on();
    let echo = [0x80, 0x10, 0x00, 0x00, 0x02, 0xAB, 0xCD, 0x00];
    let right = Response {
        data: vec![0xAB, 0xCD],
        sw: SW_OK,
    };
    assert!(model.exchange(&echo, FULL, &right).is_ok());
    let wrong = Response {
        data: vec![0xAB],
        sw: SW_OK,
    };
    assert!(model.exchange(&echo, FULL, &wrong).is_err());
    let closed = Response {
        data: vec![],
        sw: SW_OK,
    };
    assert!(
        model
            .exchange(&[0x01, 0x14, 0x00, 0x00], FULL, &closed)
            .is_err()
    );
}

/// A short walk through what the random sequences rely on, so a broken card fails here with a readable message.
#[test]
fn channels_chains_and_get_response() -> Result<(), TestCaseError> {
    let mut h = Harness::new()?;
    // Open channel 1 (the factory loopback is multi-selectable), select the loopback there, ask INFO.
    let r = h.transmit(&[0x00, 0x70, 0x00, 0x00, 0x01], FULL)?.unwrap();
    assert_eq!((r.data, r.sw), (vec![0x01], SW_OK));
    let select = [&[0x01, 0xA4, 0x04, 0x00, 0x07][..], &LOOPBACK].concat();
    assert_eq!(h.transmit(&select, FULL)?.unwrap().sw, SW_OK);
    let r = h.transmit(&[0x81, 0x14, 0x00, 0x00, 0x00], FULL)?.unwrap();
    assert_eq!((r.data[0], r.sw), (0x01, SW_OK));
    // A chained ECHO of 600 bytes, then the response in 256-byte pieces.
    let data: Vec<u8> = (0..600).map(|i| (i * 7) as u8).collect();
    for piece in data[..400].chunks(200) {
        let r = h.transmit(&encode([0x91, 0x10, 0, 0], Case::C3S, piece, 0), FULL)?;
        assert_eq!(r.unwrap().sw, SW_OK);
    }
    let r = h.transmit(
        &encode([0x81, 0x10, 0, 0], Case::C4S, &data[400..], 0),
        FULL,
    )?;
    assert_eq!(r.unwrap().sw, 0x6100);
    assert_eq!(
        h.transmit(&[0x00, 0xC0, 0x00, 0x00, 0x00], FULL)?
            .unwrap()
            .sw,
        0x6158
    );
    let r = h.transmit(&[0x00, 0xC0, 0x00, 0x00, 0x58], FULL)?.unwrap();
    assert_eq!(r.sw, SW_OK);
    // Tiny buffers (GENERATE 16 bytes on channel 1): nothing at all, then only a status word.
    assert!(h.transmit(&[0x81, 0x12, 0x00, 0x10, 0x00], 1)?.is_none());
    let r = h.transmit(&[0x81, 0x12, 0x00, 0x10, 0x00], 2)?.unwrap();
    assert_eq!(r.sw, 0x6110);
    h.power_cycle()
}
