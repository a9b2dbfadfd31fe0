//! Feeds `Card::transmit` with command sequences decoded from the fuzzer's bytes and checks every response.
//!
//! The input is a sequence of items:
//!
//! | first byte | item |
//! |---|---|
//! | `00`-`F9` | that many bytes follow: one command APDU |
//! | `FA hi lo` | `hi lo` (big-endian, at most 4096) bytes follow: one long (extended) command APDU |
//! | `FB n` | the next command gets a response buffer of `n` bytes (`FB FF`: a full one); default full |
//! | `FC` | power off: the commands that follow are sent to an unpowered card |
//! | `FD` | power on (a warm reset when the card is on) |
//! | `FE` | power cycle, then check the reset state |
//! | `FF` | GET RESPONSE (`00 C0 00 00 00`) |
//!
//! Checks, for every command: a buffer shorter than 2 bytes gets nothing and stays untouched; otherwise the
//! response is 2 to `out.len()` bytes ending with a plausible status word (61-6F xx or 9000), carries data only
//! with 9000/61xx/62xx/63xx, never more data than Ne and the buffer allow, exactly that much with 61xx; an
//! unpowered card answers 6F00, malformed lengths get 6700, GET RESPONSE with nothing announced gets 6985. After a
//! power cycle, SELECT of the card manager works on the basic channel, channel 1 is closed and nothing is pending.
#![no_main]

use card_image::LinkcardCard;
use libfuzzer_sys::fuzz_target;

const FULL: usize = card_os::RESPONSE_BUFFER + 2;
const UNTOUCHED: u8 = 0xA5;
const ISD_FCI: [u8; 18] = [
    0x6F, 0x10, 0x84, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00, 0xA5, 0x04, 0x9F, 0x65,
    0x01, 0xFF,
];

/// What the checks need from a command APDU (ISO 7816-4 §5.1 cases 1-4E), parsed independently of `apdu_spec`.
struct Parsed {
    ins: u8,
    p1p2: u16,
    has_data: bool,
    ne: usize,
}

fn parse(bytes: &[u8]) -> Option<Parsed> {
    let ([_, ins, p1, p2], body) = bytes.split_first_chunk::<4>().map(|(h, b)| (*h, b))?;
    let short_ne = |le: u8| if le == 0 { 256 } else { usize::from(le) };
    let long_ne = |hi: u8, lo: u8| match u16::from_be_bytes([hi, lo]) {
        0 => 65536,
        n => usize::from(n),
    };
    let (has_data, ne) = match body {
        [] => (false, 256),
        [le] => (false, short_ne(*le)),
        [0, hi, lo] => (false, long_ne(*hi, *lo)),
        [0, hi, lo, rest @ ..] => match usize::from(u16::from_be_bytes([*hi, *lo])) {
            0 => return None,
            lc if rest.len() == lc => (true, 256),
            lc if rest.len() == lc + 2 => (true, long_ne(rest[lc], rest[lc + 1])),
            _ => return None,
        },
        [lc, rest @ ..] => match usize::from(*lc) {
            0 => return None,
            lc if rest.len() == lc => (true, 256),
            lc if rest.len() == lc + 1 => (true, short_ne(rest[lc])),
            _ => return None,
        },
    };
    Some(Parsed {
        ins,
        p1p2: u16::from_be_bytes([p1, p2]),
        has_data,
        ne,
    })
}

struct Harness {
    card: Box<LinkcardCard>,
    powered: bool,
    /// The last response announced more with 61xx.
    pending: bool,
}

impl Harness {
    /// Sends one command and checks the response; returns (data, SW) when the buffer had room for a status word.
    fn transmit(&mut self, apdu: &[u8], out_len: usize) -> Option<(Vec<u8>, u16)> {
        let mut out = vec![UNTOUCHED; out_len];
        let n = self.card.transmit(apdu, &mut out);
        if out_len < 2 {
            assert_eq!(
                n, 0,
                "{apdu:02X?}: no room for a status word, yet {n} bytes"
            );
            assert!(
                out.iter().all(|b| *b == UNTOUCHED),
                "{apdu:02X?}: wrote into {out:02X?}"
            );
            return None;
        }
        assert!(
            (2..=out_len).contains(&n),
            "{apdu:02X?}: {n} bytes into {out_len}"
        );
        assert!(
            out[n..].iter().all(|b| *b == UNTOUCHED),
            "{apdu:02X?}: wrote past {n}"
        );
        let (data, sw) = (
            out[..n - 2].to_vec(),
            u16::from_be_bytes([out[n - 2], out[n - 1]]),
        );
        let sw1 = (sw >> 8) as u8;
        assert!(
            matches!(sw1, 0x61..=0x6F) || sw == 0x9000,
            "{apdu:02X?}: status {sw:04X}"
        );
        assert!(
            data.is_empty() || matches!(sw1, 0x90 | 0x61 | 0x62 | 0x63),
            "{apdu:02X?}: data with status {sw:04X}"
        );
        if !self.powered {
            assert!(
                sw == 0x6F00 && data.is_empty(),
                "{apdu:02X?} while off: {sw:04X}"
            );
            return Some((data, sw));
        }
        let Some(cmd) = parse(apdu) else {
            assert!(
                sw == 0x6700 && data.is_empty(),
                "{apdu:02X?} is malformed: {sw:04X}"
            );
            self.pending = false;
            return Some((data, sw));
        };
        let cap = cmd.ne.min(out_len - 2);
        assert!(
            data.len() <= cap,
            "{apdu:02X?}: {} bytes for Ne/room {cap}",
            data.len()
        );
        if sw1 == 0x61 {
            assert_eq!(data.len(), cap, "{apdu:02X?}: 61xx with less than Ne/room");
        }
        if cmd.ins == 0xC0 {
            if cmd.p1p2 != 0 {
                assert_eq!(sw, 0x6A86, "{apdu:02X?}");
                return Some((data, sw));
            }
            if cmd.has_data {
                assert_eq!(sw, 0x6700, "{apdu:02X?}");
                return Some((data, sw));
            }
            if !self.pending {
                assert_eq!(sw, 0x6985, "{apdu:02X?}: GET RESPONSE with nothing pending");
            }
        }
        self.pending = sw1 == 0x61;
        Some((data, sw))
    }

    fn power_on(&mut self) {
        let atr = self.card.power_on();
        assert_eq!(atr.as_bytes(), LinkcardCard::ATR.as_bytes());
        self.powered = true;
        self.pending = false;
    }

    fn power_off(&mut self) {
        self.card.power_off();
        self.powered = false;
        self.pending = false;
    }

    fn power_cycle(&mut self) {
        self.power_off();
        self.power_on();
        let select_isd = [
            0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00, 0x00,
        ];
        let (data, sw) = self.transmit(&select_isd, FULL).unwrap_or_default();
        assert!(
            sw == 0x9000 || sw == 0x6283,
            "SELECT card manager after reset: {sw:04X}"
        );
        assert_eq!(data, ISD_FCI);
        let (_, sw) = self
            .transmit(&[0x01, 0xA4, 0x04, 0x00, 0x00], FULL)
            .unwrap_or_default();
        assert_eq!(sw, 0x6881, "channel 1 after reset");
        let (_, sw) = self
            .transmit(&[0x00, 0xC0, 0x00, 0x00, 0x00], FULL)
            .unwrap_or_default();
        assert_eq!(sw, 0x6985, "GET RESPONSE after reset");
    }
}

fuzz_target!(|input: &[u8]| {
    let mut h = Harness {
        card: Box::new(LinkcardCard::new()),
        powered: false,
        pending: false,
    };
    h.power_on();
    let mut out_len = FULL;
    let mut rest = input;
    while let Some((&item, tail)) = rest.split_first() {
        rest = tail;
        let apdu = match item {
            0x00..=0xF9 => {
                let (apdu, next) = rest.split_at(usize::from(item).min(rest.len()));
                rest = next;
                apdu
            }
            0xFA => {
                let Some((&[hi, lo], next)) = rest.split_first_chunk::<2>() else {
                    break;
                };
                let len = usize::from(u16::from_be_bytes([hi, lo])).min(4096);
                let (apdu, next) = next.split_at(len.min(next.len()));
                rest = next;
                apdu
            }
            0xFB => {
                let Some((&n, next)) = rest.split_first() else {
                    break;
                };
                rest = next;
                out_len = if n == 0xFF { FULL } else { usize::from(n) };
                continue;
            }
            0xFC => {
                h.power_off();
                continue;
            }
            0xFD => {
                h.power_on();
                continue;
            }
            0xFE => {
                h.power_cycle();
                continue;
            }
            0xFF => &[0x00, 0xC0, 0x00, 0x00, 0x00][..],
        };
        h.transmit(apdu, out_len);
        out_len = FULL;
    }
    // Whatever happened, a power cycle brings the card back to its reset state.
    h.power_cycle();
});
