//! Never panic on input: random command sequences (random bytes, well-formed headers of every ISO case, command
//! chains, channel switches, tiny response buffers, power cycles) against the card image. Every response must end
//! with a status word, and after a power cycle the card must be in its reset state.

use card_image::LinkcardCard;
use proptest::prelude::*;

const RESPONSE_CAPACITY: usize = card_os::RESPONSE_BUFFER + 2;

/// AIDs and prefixes worth selecting: the card manager, the loopback, project RIDs, nonsense.
const NAMES: &[&[u8]] = &[
    &[0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00],
    &[0xA0, 0x00, 0x00, 0x01],
    &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x01],
    &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x02],
    &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF],
    &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0x01, 0x01],
    &[0xF0],
    &[],
];

#[derive(Debug, Clone)]
enum Step {
    /// Any bytes at all.
    Raw(Vec<u8>),
    /// A well-formed APDU of a random ISO case.
    Apdu {
        header: [u8; 4],
        data: Vec<u8>,
        le: Option<u32>,
        extended: bool,
    },
    /// A command chain of `fragments` pieces (possibly overflowing the chain buffer), maybe ended by another INS.
    Chain {
        cla: u8,
        ins: u8,
        fragment: Vec<u8>,
        fragments: usize,
        end_with_other: bool,
    },
    /// A response buffer smaller than a full response.
    Tiny {
        apdu: Vec<u8>,
        capacity: usize,
    },
    PowerCycle,
    PowerOff,
}

fn cla() -> impl Strategy<Value = u8> {
    prop_oneof![
        0x00u8..=0x03,
        0x40u8..=0x4F,
        0x80u8..=0x83,
        0xC0u8..=0xCF,
        Just(0x10),
        Just(0x90),
        Just(0xB0),
        Just(0xFF),
        any::<u8>(),
    ]
}

fn ins() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(0xA4),
        Just(0x70),
        Just(0xC0),
        Just(0xE6),
        Just(0xE4),
        Just(0xF0),
        Just(0xF2),
        Just(0x10),
        Just(0x12),
        Just(0x14),
        any::<u8>(),
    ]
}

/// INSTALL data for a loopback instance, mangled at random.
fn install_data() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(suffix, flags, junk, mangle)| {
            let mut data = vec![
                0x06, 0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x07, 0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF,
                0x00,
            ];
            data.extend([
                0x07, 0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, suffix, 0x01, 0x00, 0x03, 0xC9, 0x01,
                flags, 0x00,
            ]);
            if mangle {
                data.truncate(usize::from(suffix) % data.len());
                data.extend(junk);
            }
            data
        })
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::sample::select(NAMES).prop_map(|n| n.to_vec()),
        2 => install_data(),
        1 => prop::sample::select(NAMES).prop_map(|n| {
            let mut d = vec![0x4F, n.len() as u8];
            d.extend(n);
            d
        }),
        3 => prop::collection::vec(any::<u8>(), 0..40),
        1 => prop::collection::vec(any::<u8>(), 250..600),
    ]
}

fn p1p2(ins: u8) -> BoxedStrategy<(u8, u8)> {
    match ins {
        0xA4 => (
            prop_oneof![Just(0x04), any::<u8>()],
            prop_oneof![Just(0), Just(2), Just(0x0C), any::<u8>()],
        )
            .boxed(),
        0x70 => (prop_oneof![Just(0x00), Just(0x80), any::<u8>()], 0u8..=25).boxed(),
        0x12 => (0u8..=0x09, any::<u8>()).boxed(),
        0xF2 => (
            prop_oneof![Just(0x80), Just(0x40), Just(0x20), Just(0x10)],
            0u8..=3,
        )
            .boxed(),
        _ => (any::<u8>(), any::<u8>()).boxed(),
    }
}

fn apdu() -> impl Strategy<Value = Step> {
    (cla(), ins())
        .prop_flat_map(|(cla, ins)| {
            (
                Just(cla),
                Just(ins),
                p1p2(ins),
                data(),
                prop::option::of(prop_oneof![Just(0u32), 1u32..=65536]),
                any::<bool>(),
            )
        })
        .prop_map(|(cla, ins, (p1, p2), data, le, extended)| Step::Apdu {
            header: [cla, ins, p1, p2],
            data,
            le,
            extended,
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Step::Raw),
        12 => apdu(),
        2 => (cla(), ins(), prop::collection::vec(any::<u8>(), 1..=255), 1usize..=10, any::<bool>()).prop_map(
            |(cla, ins, fragment, fragments, end_with_other)| Step::Chain { cla, ins, fragment, fragments, end_with_other }
        ),
        1 => (prop::collection::vec(any::<u8>(), 4..20), 0usize..10)
            .prop_map(|(apdu, capacity)| Step::Tiny { apdu, capacity }),
        1 => Just(Step::PowerCycle),
        1 => Just(Step::PowerOff),
    ]
}

/// Encodes an APDU; `extended` forces the extended encoding, and so does a length a short APDU cannot carry.
fn encode(header: [u8; 4], data: &[u8], le: Option<u32>, extended: bool) -> Vec<u8> {
    let mut out = header.to_vec();
    let extended = extended || data.len() > 255 || le.is_some_and(|le| le > 256);
    if extended {
        if !data.is_empty() || le.is_some() {
            out.push(0);
        }
        if !data.is_empty() {
            out.extend((data.len() as u16).to_be_bytes());
            out.extend(data);
        }
        if let Some(le) = le {
            out.extend(((le % 65536) as u16).to_be_bytes());
        }
    } else {
        if !data.is_empty() {
            out.push(data.len() as u8);
            out.extend(data);
        }
        if let Some(le) = le {
            out.push((le % 256) as u8);
        }
    }
    out
}

/// Sends one APDU and checks the response shape.
fn exchange(
    card: &mut LinkcardCard,
    apdu: &[u8],
    capacity: usize,
) -> Result<Vec<u8>, TestCaseError> {
    let mut out = vec![0u8; capacity];
    let n = card.transmit(apdu, &mut out);
    if capacity < 2 {
        prop_assert_eq!(n, 0, "a buffer without room for a status word gets nothing");
        return Ok(Vec::new());
    }
    prop_assert!(
        (2..=capacity).contains(&n),
        "response length {} for capacity {}",
        n,
        capacity
    );
    let (sw1, sw2) = (out[n - 2], out[n - 1]);
    prop_assert!(
        matches!(sw1, 0x61..=0x6F | 0x90),
        "implausible status word {:02X}{:02X}",
        sw1,
        sw2
    );
    if sw1 == 0x90 {
        prop_assert_eq!(sw2, 0x00);
    }
    out.truncate(n);
    Ok(out)
}

fn run(card: &mut LinkcardCard, step: &Step) -> Result<(), TestCaseError> {
    match step {
        Step::Raw(bytes) => {
            exchange(card, bytes, RESPONSE_CAPACITY)?;
        }
        Step::Apdu {
            header,
            data,
            le,
            extended,
        } => {
            let response = exchange(
                card,
                &encode(*header, data, *le, *extended),
                RESPONSE_CAPACITY,
            )?;
            // Data only ever comes with 9000, a warning or 61xx, and never beyond Ne (256 without Le).
            if response.len() > 2 {
                prop_assert!(matches!(
                    response[response.len() - 2],
                    0x90 | 0x61 | 0x62 | 0x63
                ));
                let long = *extended || data.len() > 255 || le.is_some_and(|le| le > 256);
                let ne = match le {
                    None => 256,
                    Some(0) if long => 65536,
                    Some(0) => 256,
                    Some(le) => *le as usize,
                };
                prop_assert!(
                    response.len() - 2 <= ne,
                    "{} data bytes for Ne {}",
                    response.len() - 2,
                    ne
                );
            }
        }
        Step::Chain {
            cla,
            ins,
            fragment,
            fragments,
            end_with_other,
        } => {
            for _ in 0..*fragments {
                exchange(
                    card,
                    &encode([cla | 0x10, *ins, 0, 0], fragment, None, false),
                    RESPONSE_CAPACITY,
                )?;
            }
            let last_ins = if *end_with_other {
                ins.wrapping_add(1)
            } else {
                *ins
            };
            exchange(
                card,
                &encode([*cla & !0x10, last_ins, 0, 0], fragment, Some(0), false),
                RESPONSE_CAPACITY,
            )?;
        }
        Step::Tiny { apdu, capacity } => {
            exchange(card, apdu, *capacity)?;
        }
        Step::PowerCycle => {
            card.power_off();
            let atr = card.power_on();
            prop_assert_eq!(&atr.as_bytes()[..4], &[0x3B, 0x8A, 0x80, 0x01]);
            // Reset state: every channel but the basic one is closed, nothing is pending.
            prop_assert_eq!(
                exchange(card, &[0x01, 0xA4, 0x04, 0x00, 0x00], RESPONSE_CAPACITY)?,
                vec![0x68, 0x81]
            );
            prop_assert_eq!(
                exchange(card, &[0x00, 0xC0, 0x00, 0x00, 0x00], RESPONSE_CAPACITY)?,
                vec![0x69, 0x85]
            );
        }
        Step::PowerOff => {
            card.power_off();
            prop_assert_eq!(
                exchange(card, &[0x00, 0xA4, 0x04, 0x00, 0x00], RESPONSE_CAPACITY)?,
                vec![0x6F, 0x00]
            );
            card.power_on();
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_command_sequence_gets_status_words(steps in prop::collection::vec(step(), 1..40)) {
        let mut card = Box::new(LinkcardCard::new());
        card.power_on();
        for step in &steps {
            run(&mut card, step)?;
        }
        // Whatever happened, the card manager still answers on the basic channel. A command with another header
        // first ends any chain the sequence left open (its fragments would otherwise join the SELECT's data).
        exchange(&mut card, &[0x80, 0x00, 0x00, 0x00], RESPONSE_CAPACITY)?;
        let select_isd = [0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00, 0x00];
        let response = exchange(&mut card, &select_isd, RESPONSE_CAPACITY)?;
        let sw = &response[response.len() - 2..];
        prop_assert!(sw == [0x90, 0x00] || sw == [0x62, 0x83], "SELECT card manager answered {:02X?}", sw);
    }
}
