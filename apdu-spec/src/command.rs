//! Zero-copy command APDU parsing (ISO 7816-4 §5.1).
//!
//! | case | bytes after the header | Nc | Ne |
//! |---|---|---|---|
//! | 1  | (none) | 0 | 0 |
//! | 2S | Le | 0 | Le, 00 → 256 |
//! | 3S | Lc, data | Lc (1-255) | 0 |
//! | 4S | Lc, data, Le | Lc | Le, 00 → 256 |
//! | 2E | 00, Le(2) | 0 | Le, 0000 → 65536 |
//! | 3E | 00, Lc(2), data | Lc (1-65535) | 0 |
//! | 4E | 00, Lc(2), data, Le(2) | Lc | Le, 0000 → 65536 |
//!
//! Any other length is [`MalformedCommand`], which the card answers with 6700.

use crate::class::{Class, InvalidClass};

/// A command APDU whose length fields do not match its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MalformedCommand {
    /// Fewer than the four header bytes.
    TooShort,
    /// Lc/Le do not describe the bytes that follow the header.
    BadLength,
}

impl core::fmt::Display for MalformedCommand {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::TooShort => "shorter than the four header bytes",
            Self::BadLength => "Lc/Le do not match the length of the command",
        })
    }
}

impl core::error::Error for MalformedCommand {}

/// A parsed command APDU borrowing its data from the received bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandView<'a> {
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: &'a [u8],
    ne: Option<usize>,
    extended: bool,
}

impl<'a> CommandView<'a> {
    /// Parses a complete command APDU.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, MalformedCommand> {
        let [cla, ins, p1, p2, body @ ..] = bytes else {
            return Err(MalformedCommand::TooShort);
        };
        let mut view = Self {
            cla: *cla,
            ins: *ins,
            p1: *p1,
            p2: *p2,
            data: &[],
            ne: None,
            extended: false,
        };
        match body {
            [] => {}
            [le] => view.ne = Some(short_ne(*le)),
            [0, rest @ ..] if rest.len() >= 2 => {
                view.extended = true;
                let [hi, lo, tail @ ..] = rest else {
                    return Err(MalformedCommand::BadLength);
                };
                let first = usize::from(u16::from_be_bytes([*hi, *lo]));
                if tail.is_empty() {
                    view.ne = Some(extended_ne(first));
                } else {
                    if first == 0 {
                        return Err(MalformedCommand::BadLength);
                    }
                    if tail.len() == first {
                        view.data = tail;
                    } else if tail.len() == first + 2 {
                        let (data, le) = tail.split_at(first);
                        let [le_hi, le_lo] = le else {
                            return Err(MalformedCommand::BadLength);
                        };
                        view.data = data;
                        view.ne = Some(extended_ne(usize::from(u16::from_be_bytes([
                            *le_hi, *le_lo,
                        ]))));
                    } else {
                        return Err(MalformedCommand::BadLength);
                    }
                }
            }
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                if lc == 0 {
                    return Err(MalformedCommand::BadLength);
                }
                if rest.len() == lc {
                    view.data = rest;
                } else if rest.len() == lc + 1 {
                    let (data, le) = rest.split_at(lc);
                    view.data = data;
                    view.ne = le.first().map(|le| short_ne(*le));
                } else {
                    return Err(MalformedCommand::BadLength);
                }
            }
        }
        Ok(view)
    }

    /// Builds a view from parts (used by the runtime for a reassembled chained command).
    pub const fn from_parts(
        header: [u8; 4],
        data: &'a [u8],
        ne: Option<usize>,
        extended: bool,
    ) -> Self {
        let [cla, ins, p1, p2] = header;
        Self {
            cla,
            ins,
            p1,
            p2,
            data,
            ne,
            extended,
        }
    }

    /// The raw CLA byte.
    pub const fn cla(&self) -> u8 {
        self.cla
    }
    /// The decoded CLA byte.
    pub fn class(&self) -> Result<Class, InvalidClass> {
        Class::decode(self.cla)
    }
    /// INS.
    pub const fn ins(&self) -> u8 {
        self.ins
    }
    /// P1.
    pub const fn p1(&self) -> u8 {
        self.p1
    }
    /// P2.
    pub const fn p2(&self) -> u8 {
        self.p2
    }
    /// P1 and P2 as one big-endian number.
    pub const fn p1p2(&self) -> u16 {
        u16::from_be_bytes([self.p1, self.p2])
    }
    /// The four header bytes.
    pub const fn header(&self) -> [u8; 4] {
        [self.cla, self.ins, self.p1, self.p2]
    }
    /// The command data field (empty for cases 1 and 2).
    pub const fn data(&self) -> &'a [u8] {
        self.data
    }
    /// Ne, the maximum number of response bytes expected; `None` when Le is absent.
    pub const fn ne(&self) -> Option<usize> {
        self.ne
    }
    /// Whether Lc or Le used the extended (three-byte/two-byte) encoding.
    pub const fn is_extended(&self) -> bool {
        self.extended
    }
}

const fn short_ne(le: u8) -> usize {
    if le == 0 { 256 } else { le as usize }
}

const fn extended_ne(le: usize) -> usize {
    if le == 0 { 65536 } else { le }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<(Vec<u8>, Option<usize>, bool), MalformedCommand> {
        CommandView::parse(bytes).map(|v| (v.data().to_vec(), v.ne(), v.is_extended()))
    }
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn every_case() {
        assert_eq!(parse(&[0, 0xA4, 4, 0]), Ok((vec![], None, false)));
        assert_eq!(parse(&[0, 0xB0, 0, 0, 0x10]), Ok((vec![], Some(16), false)));
        assert_eq!(
            parse(&[0, 0xB0, 0, 0, 0x00]),
            Ok((vec![], Some(256), false))
        );
        assert_eq!(
            parse(&[0, 0xD6, 0, 0, 2, 9, 8]),
            Ok((vec![9, 8], None, false))
        );
        assert_eq!(
            parse(&[0, 0x88, 0, 0, 1, 7, 0]),
            Ok((vec![7], Some(256), false))
        );
        assert_eq!(
            parse(&[0, 0xB0, 0, 0, 0, 0x01, 0x00]),
            Ok((vec![], Some(256), true))
        );
        assert_eq!(
            parse(&[0, 0xB0, 0, 0, 0, 0, 0]),
            Ok((vec![], Some(65536), true))
        );
        assert_eq!(
            parse(&[0, 0xD6, 0, 0, 0, 0, 2, 5, 6]),
            Ok((vec![5, 6], None, true))
        );
        assert_eq!(
            parse(&[0, 0x88, 0, 0, 0, 0, 1, 5, 0, 0]),
            Ok((vec![5], Some(65536), true))
        );
        assert_eq!(
            parse(&[0, 0x88, 0, 0, 0, 0, 1, 5, 0x12, 0x34]),
            Ok((vec![5], Some(0x1234), true))
        );
    }

    use std::vec;

    #[test]
    fn malformed_lengths() {
        assert_eq!(parse(&[0, 0xA4, 4]), Err(MalformedCommand::TooShort));
        assert_eq!(parse(&[]), Err(MalformedCommand::TooShort));
        assert_eq!(
            parse(&[0, 0xA4, 4, 0, 2, 1]),
            Err(MalformedCommand::BadLength)
        );
        assert_eq!(
            parse(&[0, 0xA4, 4, 0, 2, 1, 2, 3, 4]),
            Err(MalformedCommand::BadLength)
        );
        assert_eq!(
            parse(&[0, 0xA4, 4, 0, 0, 1]),
            Err(MalformedCommand::BadLength)
        );
        assert_eq!(
            parse(&[0, 0xA4, 4, 0, 0, 0, 0, 1]),
            Err(MalformedCommand::BadLength)
        );
        assert_eq!(
            parse(&[0, 0xA4, 4, 0, 0, 0, 2, 1]),
            Err(MalformedCommand::BadLength)
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_data_is_inside_input(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Ok(view) = CommandView::parse(&bytes) {
                proptest::prop_assert!(view.data().len() + 4 <= bytes.len());
                proptest::prop_assert_eq!(&bytes[..4], &view.header()[..]);
            }
        }
    }
}

/// A parameter byte (P1 or P2) as `docs/apdu.md` documents it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// Exactly this value.
    Is(u8),
    /// One of these values, described by the text.
    OneOf(&'static [u8], &'static str),
    /// Any value, with this meaning (a key version, a length, a record key…).
    Any(&'static str),
}

impl Param {
    /// Whether `value` is one this parameter documents.
    pub fn admits(&self, value: u8) -> bool {
        match self {
            Self::Is(v) => *v == value,
            Self::OneOf(values, _) => values.contains(&value),
            Self::Any(_) => true,
        }
    }
}

impl core::fmt::Display for Param {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Is(v) => write!(f, "`{v:02X}`"),
            Self::OneOf(_, text) | Self::Any(text) => f.write_str(text),
        }
    }
}

/// One command's row in `docs/apdu.md`: each command module lists its commands in a `COMMANDS` catalogue, and a
/// test (`apdu-spec/tests/apdu_doc.rs`) encodes an example of every row with the module's encoder, checks the
/// header bytes against the row, and checks that the document shows the rendered table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandDoc {
    /// The command's name (the name in the module's `REQUIREMENTS`, where it has one).
    pub name: &'static str,
    /// CLA on the basic channel, plain (`00` interindustry, `80` proprietary).
    pub cla: u8,
    /// INS.
    pub ins: u8,
    /// P1.
    pub p1: Param,
    /// P2.
    pub p2: Param,
    /// The data field.
    pub data: &'static str,
    /// The response data.
    pub response: &'static str,
    /// The status words the command answers besides 9000, with their meaning here.
    pub status: &'static [(crate::StatusWord, &'static str)],
    /// What the command needs of the channel it arrives through.
    pub requirement: crate::scp11::Requirement,
}

#[cfg(test)]
mod doc_tests {
    extern crate std;
    use std::string::ToString;

    use super::Param;

    #[test]
    fn params_admit_what_they_document() {
        assert!(Param::Is(0x04).admits(0x04) && !Param::Is(0x04).admits(0x00));
        let p2 = Param::OneOf(&[0x02, 0x03], "`02` first, `03` next");
        assert!(p2.admits(0x03) && !p2.admits(0x00));
        assert!((0..=u8::MAX).all(|b| Param::Any("KVN").admits(b)));
        assert_eq!(Param::Is(0x0C).to_string(), "`0C`");
        assert_eq!(p2.to_string(), "`02` first, `03` next");
        assert_eq!(Param::Any("KVN").to_string(), "KVN");
    }
}
