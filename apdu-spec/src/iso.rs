//! The interindustry commands the card runtime itself answers (ISO 7816-4 §7.1.1 SELECT, §7.1.2 MANAGE CHANNEL),
//! typed, with a parser for the card and an encoder for hosts.
//!
//! | command | P1 | P2 | data | typed as |
//! |---|---|---|---|---|
//! | SELECT by DF name | `04` | `00` first / `02` next occurrence, `+0C` no FCI | AID or AID prefix (none: the card manager) | [`Select::ByName`] |
//! | SELECT by file | `00`-`03`, `08`, `09` | any | file id or path | [`Select::File`] (goes to the selected application) |
//! | SELECT, other P1 | — | — | — | 6A86 |
//! | MANAGE CHANNEL open | `00` | `00` lowest free, or `01`-`13` | none | [`ManageChannel::Open`] |
//! | MANAGE CHANNEL close | `80` | `00` this channel, or `01`-`13` | none | [`ManageChannel::Close`] |

use crate::command::{CommandDoc, Param};
use crate::scp11::Requirement;
use crate::{CommandView, StatusWord, ins};

/// Which match of a partial AID SELECT takes (P2 b2-b1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Occurrence {
    /// P2 `x0`: the first match.
    First,
    /// P2 `x2`: the next match after the application selected on the channel.
    Next,
}

/// P2 bits asking for no response data.
const NO_FCI: u8 = 0x0C;

/// A SELECT command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select<'a> {
    /// SELECT by DF name: an application by its AID or a prefix of it; empty selects the card manager.
    ByName {
        /// The AID or AID prefix.
        name: &'a [u8],
        /// First or next match.
        occurrence: Occurrence,
        /// Whether the FCI is wanted (P2 b4-b3 not `11`).
        fci: bool,
    },
    /// SELECT of a file inside the selected application (P1 `00`-`03`, `08`, `09`); the runtime passes it on.
    File {
        /// P1: how the file is named.
        p1: u8,
    },
}

impl<'a> Select<'a> {
    /// SELECT by AID (first occurrence, with FCI): `00 A4 04 00 Lc <aid> 00`.
    pub const fn aid(name: &'a [u8]) -> Self {
        Self::ByName {
            name,
            occurrence: Occurrence::First,
            fci: true,
        }
    }

    /// Parses an interindustry SELECT; `None` when the command is not a SELECT. 6A86 for an undefined P1 or
    /// P2, 6700 for an extended-length SELECT by name.
    pub fn parse(command: &CommandView<'a>) -> Option<Result<Self, StatusWord>> {
        if command.ins() != ins::SELECT {
            return None;
        }
        Some(match command.p1() {
            ins::SELECT_BY_NAME => Self::parse_by_name(command),
            0x00..=0x03 | 0x08 | 0x09 => Ok(Self::File { p1: command.p1() }),
            _ => Err(StatusWord::INCORRECT_P1P2),
        })
    }

    fn parse_by_name(command: &CommandView<'a>) -> Result<Self, StatusWord> {
        if command.is_extended() {
            return Err(StatusWord::WRONG_LENGTH);
        }
        let occurrence = match command.p2() & !NO_FCI {
            0x00 => Occurrence::First,
            0x02 => Occurrence::Next,
            _ => return Err(StatusWord::INCORRECT_P1P2),
        };
        Ok(Self::ByName {
            name: command.data(),
            occurrence,
            fci: command.p2() & NO_FCI != NO_FCI,
        })
    }
}

/// A MANAGE CHANNEL command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManageChannel {
    /// Open a channel: `None` for the lowest free one (the card answers its number), or this one.
    Open(Option<u8>),
    /// Close a channel: `None` for the channel the command came on, or this one.
    Close(Option<u8>),
}

impl ManageChannel {
    /// Parses MANAGE CHANNEL; `None` when the command is not one. 6700 with data or extended length, 6A86 for
    /// an undefined P1.
    pub fn parse(command: &CommandView<'_>) -> Option<Result<Self, StatusWord>> {
        if command.ins() != ins::MANAGE_CHANNEL {
            return None;
        }
        if command.is_extended() || !command.data().is_empty() {
            return Some(Err(StatusWord::WRONG_LENGTH));
        }
        let channel = (command.p2() != 0).then_some(command.p2());
        Some(match command.p1() {
            ins::MANAGE_CHANNEL_OPEN => Ok(Self::Open(channel)),
            ins::MANAGE_CHANNEL_CLOSE => Ok(Self::Close(channel)),
            _ => Err(StatusWord::INCORRECT_P1P2),
        })
    }
}

/// The commands the runtime answers itself, for `docs/apdu.md` (a test checks the rows against the encoders and
/// the document). GET RESPONSE has no typed command: the runtime reads it before anything else, and hosts send it
/// from their T=0 completion.
pub const COMMANDS: &[CommandDoc] = &[
    CommandDoc {
        name: "SELECT by name",
        cla: 0x00,
        ins: ins::SELECT,
        p1: Param::Is(ins::SELECT_BY_NAME),
        p2: Param::OneOf(
            &[0x00, 0x02, 0x0C, 0x0E],
            "`00` first, `02` next occurrence; `+0C` no FCI",
        ),
        data: "AID or AID prefix (none: the card manager); short length only",
        response: "FCI of the application (none with P2 `+0C`)",
        status: &[
            (StatusWord::NOT_FOUND, "no application matches"),
            (
                StatusWord::APPLET_SELECT_FAILED,
                "the application refused the selection",
            ),
            (
                StatusWord::CONDITIONS_NOT_SATISFIED,
                "not multi-selectable and selected on another channel",
            ),
            (StatusWord::INCORRECT_P1P2, "undefined P1 or P2"),
            (StatusWord::WRONG_LENGTH, "extended length"),
        ],
        requirement: Requirement::NONE,
    },
    CommandDoc {
        name: "SELECT by file",
        cla: 0x00,
        ins: ins::SELECT,
        p1: Param::OneOf(
            &[0x00, 0x01, 0x02, 0x03, 0x08, 0x09],
            "`00`-`03`, `08`, `09`",
        ),
        p2: Param::Any("any"),
        data: "file id or path",
        response: "the selected application's",
        status: &[(
            StatusWord::APPLET_SELECT_FAILED,
            "no application selected on the channel",
        )],
        requirement: Requirement::NONE,
    },
    CommandDoc {
        name: "MANAGE CHANNEL open",
        cla: 0x00,
        ins: ins::MANAGE_CHANNEL,
        p1: Param::Is(ins::MANAGE_CHANNEL_OPEN),
        p2: Param::Any("`00` lowest free, or `01`-`13`"),
        data: "none",
        response: "the channel number (P2 `00`), else none",
        status: &[
            (StatusWord::FUNCTION_NOT_SUPPORTED, "no free channel"),
            (
                StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED,
                "no such channel on this card",
            ),
            (
                StatusWord::CONDITIONS_NOT_SATISFIED,
                "the channel is open already",
            ),
            (StatusWord::WRONG_LENGTH, "data or extended length"),
        ],
        requirement: Requirement::NONE,
    },
    CommandDoc {
        name: "MANAGE CHANNEL close",
        cla: 0x00,
        ins: ins::MANAGE_CHANNEL,
        p1: Param::Is(ins::MANAGE_CHANNEL_CLOSE),
        p2: Param::Any("`00` this channel, or `01`-`13`"),
        data: "none",
        response: "none",
        status: &[
            (StatusWord::INCORRECT_P1P2, "channel 0 cannot close"),
            (
                StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED,
                "the channel is not open",
            ),
            (StatusWord::WRONG_LENGTH, "data or extended length"),
        ],
        requirement: Requirement::NONE,
    },
    CommandDoc {
        name: "GET RESPONSE",
        cla: 0x00,
        ins: ins::GET_RESPONSE,
        p1: Param::Is(0x00),
        p2: Param::Is(0x00),
        data: "none; Le: how many bytes",
        response: "the next part of the held response",
        status: &[
            (StatusWord::CONDITIONS_NOT_SATISFIED, "no response held"),
            (StatusWord::INCORRECT_P1P2, "P1 P2 not `00 00`"),
            (StatusWord::WRONG_LENGTH, "data"),
        ],
        requirement: Requirement::NONE,
    },
];

#[cfg(feature = "alloc")]
mod encode {
    use super::*;
    use crate::builder::Command;

    impl Select<'_> {
        /// The command on the basic channel (`File` carries no file id: it encodes P1 alone).
        pub fn to_command(&self) -> Command {
            match *self {
                Self::ByName {
                    name,
                    occurrence,
                    fci,
                } => {
                    let p2 = match occurrence {
                        Occurrence::First => 0x00,
                        Occurrence::Next => 0x02,
                    } | if fci { 0x00 } else { NO_FCI };
                    let command =
                        Command::new(0x00, ins::SELECT, ins::SELECT_BY_NAME, p2).with_data(name);
                    if fci { command.with_ne(256) } else { command }
                }
                Self::File { p1 } => Command::new(0x00, ins::SELECT, p1, 0x00),
            }
        }
    }

    impl ManageChannel {
        /// The command on the basic channel (Le 1 when the card names the opened channel).
        pub fn to_command(&self) -> Command {
            match *self {
                Self::Open(None) => {
                    Command::new(0x00, ins::MANAGE_CHANNEL, ins::MANAGE_CHANNEL_OPEN, 0).with_ne(1)
                }
                Self::Open(Some(n)) => {
                    Command::new(0x00, ins::MANAGE_CHANNEL, ins::MANAGE_CHANNEL_OPEN, n)
                }
                Self::Close(n) => Command::new(
                    0x00,
                    ins::MANAGE_CHANNEL,
                    ins::MANAGE_CHANNEL_CLOSE,
                    n.unwrap_or(0),
                ),
            }
        }
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;

    fn parse_select(bytes: &[u8]) -> Option<Result<Select<'_>, StatusWord>> {
        Select::parse(&CommandView::parse(bytes).unwrap())
    }

    #[test]
    fn select_p1_values() {
        assert_eq!(
            parse_select(&[0x00, 0xA4, 0xFF, 0x00, 0x01, 0xA0]),
            Some(Err(StatusWord::INCORRECT_P1P2))
        );
        assert_eq!(
            parse_select(&[0x00, 0xA4, 0x00, 0x00, 0x02, 0x3F, 0x00]),
            Some(Ok(Select::File { p1: 0 }))
        );
        assert_eq!(
            parse_select(&[0x00, 0xA4, 0x04, 0x0E, 0x01, 0xA0]),
            Some(Ok(Select::ByName {
                name: &[0xA0],
                occurrence: Occurrence::Next,
                fci: false
            }))
        );
        assert_eq!(
            parse_select(&[0x00, 0xA4, 0x04, 0x01, 0x01, 0xA0]),
            Some(Err(StatusWord::INCORRECT_P1P2))
        );
        assert_eq!(parse_select(&[0x00, 0xB0, 0x04, 0x00]), None);
    }

    #[test]
    fn encoders_round_trip() {
        for select in [
            Select::aid(&[0xA0, 0x00, 0x00, 0x01, 0x51]),
            Select::ByName {
                name: &[0xF0, 0x4C],
                occurrence: Occurrence::Next,
                fci: false,
            },
            Select::ByName {
                name: &[],
                occurrence: Occurrence::First,
                fci: true,
            },
        ] {
            let bytes = select.to_command().to_bytes().unwrap();
            assert_eq!(parse_select(&bytes), Some(Ok(select)));
        }
        for manage in [
            ManageChannel::Open(None),
            ManageChannel::Open(Some(3)),
            ManageChannel::Close(None),
            ManageChannel::Close(Some(19)),
        ] {
            let bytes = manage.to_command().to_bytes().unwrap();
            let view = CommandView::parse(&bytes).unwrap();
            assert_eq!(ManageChannel::parse(&view), Some(Ok(manage)));
        }
    }
}
