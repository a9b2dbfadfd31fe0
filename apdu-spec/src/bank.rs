//! The bank applet's commands (patent Fig. 7: the bank stores payment tokens on the card after mutual
//! authentication with the bank applet).
//!
//! Proprietary class (`80` on channel 0; any channel, `84` when secured). Every command needs a secure channel,
//! see [`REQUIREMENTS`]; a command without the right session is answered 6982 (and the session ends).
//!
//! | command | CLA INS P1 P2 | data | response | needs |
//! |---|---|---|---|---|
//! | PERSONALIZE | `80 20 00 00` | [`Personalization`] TLVs: `C1` bank id, `C2` account number, `C3` user id, `C4` user name, `4F` credit applet AID | none | SCP11a issuer, C-MAC |
//! | READ ACCOUNT | `80 22 00 00` | none | the personalization TLVs as stored | SCP11a bank-atm, C-MAC |
//! | STORE TOKEN | `80 24 00 00` | one token envelope (`7F71 …`, at most [`MAX_TOKEN`] bytes; chained or extended) | none | SCP11a bank-atm, C-MAC C-DEC |
//! | LIST TOKENS | `80 26 00 00` | none | the clear header TLV (`A1 …`) of every stored token, one after another | SCP11a bank-atm, C-MAC |
//! | DELETE TOKEN | `80 28 00 00` | the 16-byte token id | none | SCP11a bank-atm, C-MAC |
//!
//! Status words: 9000 done; 6982 wrong session, role or level; 6985 PERSONALIZE on a personalized applet, or
//! a token command before personalization; 6A80 malformed data, a token that does not parse, a token of another
//! bank, or a token id already stored; 6A84 no room for another token; 6A86 P1 P2 not `00 00`; 6A88 DELETE
//! TOKEN of an unknown id; 6D00 unknown instruction; 6E00 a class without the proprietary bit.
//!
//! Expired tokens (last valid day before the card date) are evicted before STORE TOKEN and LIST TOKENS.
//!
//! [`MAX_TOKEN`]: crate::token::MAX_TOKEN

use crate::aid;
use crate::command::{CommandDoc, CommandView, Param};
use crate::scp11::Requirement;
use crate::scp11::cert::Role;
use crate::scp11::session::SecurityLevel;
use crate::status::StatusWord;
use crate::tlv;
use crate::token::{MAX_PARTY_ID, TOKEN_ID_LENGTH};

/// Bank applet instruction bytes.
pub mod ins {
    /// PERSONALIZE: the account data.
    pub const PERSONALIZE: u8 = 0x20;
    /// READ ACCOUNT: the personalization data back.
    pub const READ_ACCOUNT: u8 = 0x22;
    /// STORE TOKEN.
    pub const STORE_TOKEN: u8 = 0x24;
    /// LIST TOKENS: the clear headers.
    pub const LIST_TOKENS: u8 = 0x26;
    /// DELETE TOKEN by id.
    pub const DELETE_TOKEN: u8 = 0x28;
}

/// Tags of the personalization data.
pub mod tag {
    /// Bank identifier (as in the token header, 1-16 bytes).
    pub const BANK_ID: u16 = 0xC1;
    /// Bank account number (1-34 bytes: an IBAN at most).
    pub const ACCOUNT: u16 = 0xC2;
    /// User identifier at the bank (1-32 bytes).
    pub const USER_ID: u16 = 0xC3;
    /// User name (1-64 bytes, UTF-8).
    pub const USER_NAME: u16 = 0xC4;
    /// AID of the credit applet instance the bank applet may share tokens with.
    pub const CREDIT_APPLET: u16 = 0x4F;
}

/// Longest account number.
pub const MAX_ACCOUNT: usize = 34;
/// Longest user identifier.
pub const MAX_USER_ID: usize = 32;
/// Longest user name.
pub const MAX_USER_NAME: usize = 64;
/// Longest personalization data field (every field at its longest, with its TLV header).
pub const MAX_PERSONALIZATION: usize = (2 + MAX_PARTY_ID)
    + (2 + MAX_ACCOUNT)
    + (2 + MAX_USER_ID)
    + (2 + MAX_USER_NAME)
    + (2 + aid::MAX_LEN);

/// The bank applet's account data, in this order, each field once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Personalization<'a> {
    /// The bank: tokens whose header names another bank are refused.
    pub bank_id: &'a [u8],
    /// The user's account number.
    pub account: &'a [u8],
    /// The user's identifier at the bank.
    pub user_id: &'a [u8],
    /// The user's name.
    pub user_name: &'a [u8],
    /// The credit applet instance tokens may be shared with.
    pub credit_applet: &'a [u8],
}

/// Reads one field with `tag` and a length in `1..=max`.
fn field<'a>(
    bytes: &mut &'a [u8],
    tag: u16,
    min: usize,
    max: usize,
) -> Result<&'a [u8], StatusWord> {
    let (tlv, rest) = tlv::read(bytes).map_err(|_| StatusWord::WRONG_DATA)?;
    if tlv.tag != tag || tlv.value.len() < min || tlv.value.len() > max {
        return Err(StatusWord::WRONG_DATA);
    }
    *bytes = rest;
    Ok(tlv.value)
}

impl<'a> Personalization<'a> {
    /// Parses the personalization TLVs (6A80 for anything else).
    pub fn parse(mut data: &'a [u8]) -> Result<Self, StatusWord> {
        let rest = &mut data;
        let personalization = Self {
            bank_id: field(rest, tag::BANK_ID, 1, MAX_PARTY_ID)?,
            account: field(rest, tag::ACCOUNT, 1, MAX_ACCOUNT)?,
            user_id: field(rest, tag::USER_ID, 1, MAX_USER_ID)?,
            user_name: field(rest, tag::USER_NAME, 1, MAX_USER_NAME)?,
            credit_applet: field(rest, tag::CREDIT_APPLET, aid::MIN_LEN, aid::MAX_LEN)?,
        };
        if !rest.is_empty() {
            return Err(StatusWord::WRONG_DATA);
        }
        Ok(personalization)
    }
}

/// A bank applet command, decoded from its APDU (borrowing its data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BankCommand<'a> {
    /// PERSONALIZE with the account data.
    Personalize(Personalization<'a>),
    /// READ ACCOUNT.
    ReadAccount,
    /// STORE TOKEN: the envelope's bytes (parsed by the applet, which answers 6A80 if they are no token).
    StoreToken(&'a [u8]),
    /// LIST TOKENS.
    ListTokens,
    /// DELETE TOKEN with this id.
    DeleteToken(&'a [u8; TOKEN_ID_LENGTH]),
}

impl<'a> TryFrom<&CommandView<'a>> for BankCommand<'a> {
    type Error = StatusWord;

    fn try_from(cmd: &CommandView<'a>) -> Result<Self, StatusWord> {
        if cmd.cla() & 0x80 == 0 {
            return Err(StatusWord::CLA_NOT_SUPPORTED);
        }
        let known = matches!(
            cmd.ins(),
            ins::PERSONALIZE
                | ins::READ_ACCOUNT
                | ins::STORE_TOKEN
                | ins::LIST_TOKENS
                | ins::DELETE_TOKEN
        );
        if !known {
            return Err(StatusWord::INS_NOT_SUPPORTED);
        }
        if cmd.p1p2() != 0 {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        let data = cmd.data();
        let no_data = |command| {
            if data.is_empty() {
                Ok(command)
            } else {
                Err(StatusWord::WRONG_LENGTH)
            }
        };
        match cmd.ins() {
            ins::PERSONALIZE => Personalization::parse(data).map(Self::Personalize),
            ins::READ_ACCOUNT => no_data(Self::ReadAccount),
            ins::STORE_TOKEN if data.is_empty() => Err(StatusWord::WRONG_DATA),
            ins::STORE_TOKEN => Ok(Self::StoreToken(data)),
            ins::LIST_TOKENS => no_data(Self::ListTokens),
            _ => data
                .try_into()
                .map(Self::DeleteToken)
                .map_err(|_| StatusWord::WRONG_DATA),
        }
    }
}

/// The issuer personalizes the applet.
const PERSONALIZER: Requirement = Requirement::session(Role::Issuer, SecurityLevel::C_MAC);
/// The bank ATM's session: authenticated by a bank-issued certificate.
const BANK_ATM: Requirement = Requirement::session(Role::BankAtm, SecurityLevel::C_MAC);
/// A token travels encrypted (its clear header is readable by anyone, but which tokens a card receives is not).
const BANK_ATM_ENCRYPTED: Requirement = Requirement::session(
    Role::BankAtm,
    SecurityLevel::C_MAC | SecurityLevel::C_DECRYPTION,
);

/// What each bank applet command needs of the channel it arrives through: the applet enforces it
/// ([`Requirement::check`]), hosts read it.
pub const REQUIREMENTS: [(&str, Requirement); 5] = [
    ("PERSONALIZE", PERSONALIZER),
    ("READ ACCOUNT", BANK_ATM),
    ("STORE TOKEN", BANK_ATM_ENCRYPTED),
    ("LIST TOKENS", BANK_ATM),
    ("DELETE TOKEN", BANK_ATM),
];

/// The bank applet's commands, for `docs/apdu.md` (a test checks the rows against the encoders, the names and
/// requirements against [`REQUIREMENTS`], and the document against the rendered table). Every command also
/// answers 6A86 for P1 P2 other than `00 00`.
pub const COMMANDS: &[CommandDoc] = &[
    CommandDoc {
        name: "PERSONALIZE",
        cla: 0x80,
        ins: ins::PERSONALIZE,
        p1: Param::Is(0x00),
        p2: Param::Is(0x00),
        data: "`C1` bank id, `C2` account number, `C3` user id, `C4` user name, `4F` credit applet AID",
        response: "none",
        status: &[
            (StatusWord::CONDITIONS_NOT_SATISFIED, "already personalized"),
            (StatusWord::WRONG_DATA, "malformed data"),
        ],
        requirement: PERSONALIZER,
    },
    CommandDoc {
        name: "READ ACCOUNT",
        cla: 0x80,
        ins: ins::READ_ACCOUNT,
        p1: Param::Is(0x00),
        p2: Param::Is(0x00),
        data: "none",
        response: "the personalization TLVs as stored",
        status: &[
            (StatusWord::CONDITIONS_NOT_SATISFIED, "not personalized"),
            (StatusWord::WRONG_LENGTH, "data"),
        ],
        requirement: BANK_ATM,
    },
    CommandDoc {
        name: "STORE TOKEN",
        cla: 0x80,
        ins: ins::STORE_TOKEN,
        p1: Param::Is(0x00),
        p2: Param::Is(0x00),
        data: "one token envelope `7F71 …` (`docs/token.md`), chained or extended",
        response: "none",
        status: &[
            (StatusWord::CONDITIONS_NOT_SATISFIED, "not personalized"),
            (
                StatusWord::WRONG_DATA,
                "not a token, another bank's, or its id is stored already",
            ),
            (StatusWord::NOT_ENOUGH_MEMORY, "no room for another token"),
        ],
        requirement: BANK_ATM_ENCRYPTED,
    },
    CommandDoc {
        name: "LIST TOKENS",
        cla: 0x80,
        ins: ins::LIST_TOKENS,
        p1: Param::Is(0x00),
        p2: Param::Is(0x00),
        data: "none",
        response: "the clear header `A1 …` of every stored token",
        status: &[
            (StatusWord::CONDITIONS_NOT_SATISFIED, "not personalized"),
            (StatusWord::WRONG_LENGTH, "data"),
        ],
        requirement: BANK_ATM,
    },
    CommandDoc {
        name: "DELETE TOKEN",
        cla: 0x80,
        ins: ins::DELETE_TOKEN,
        p1: Param::Is(0x00),
        p2: Param::Is(0x00),
        data: "the 16-byte token id",
        response: "none",
        status: &[
            (StatusWord::CONDITIONS_NOT_SATISFIED, "not personalized"),
            (StatusWord::WRONG_DATA, "not 16 bytes"),
            (
                StatusWord::REFERENCED_DATA_NOT_FOUND,
                "no token with that id",
            ),
        ],
        requirement: BANK_ATM,
    },
];

impl BankCommand<'_> {
    /// The command's name in [`REQUIREMENTS`].
    pub fn name(&self) -> &'static str {
        match self {
            Self::Personalize(_) => "PERSONALIZE",
            Self::ReadAccount => "READ ACCOUNT",
            Self::StoreToken(_) => "STORE TOKEN",
            Self::ListTokens => "LIST TOKENS",
            Self::DeleteToken(_) => "DELETE TOKEN",
        }
    }

    /// What the command needs of its secure channel (the strictest entry if the name were missing).
    pub fn requirement(&self) -> Requirement {
        let name = self.name();
        REQUIREMENTS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(BANK_ATM_ENCRYPTED, |(_, requirement)| *requirement)
    }
}

#[cfg(feature = "alloc")]
mod encode {
    use alloc::vec::Vec;

    use super::*;
    use crate::builder::Command;

    impl Personalization<'_> {
        /// The TLVs, as PERSONALIZE sends them and READ ACCOUNT answers them.
        pub fn to_bytes(&self) -> Vec<u8> {
            let mut out = Vec::with_capacity(MAX_PERSONALIZATION);
            for (tag, value) in [
                (tag::BANK_ID, self.bank_id),
                (tag::ACCOUNT, self.account),
                (tag::USER_ID, self.user_id),
                (tag::USER_NAME, self.user_name),
                (tag::CREDIT_APPLET, self.credit_applet),
            ] {
                // Every field is under 128 bytes: a one-byte tag and a one-byte length.
                out.push(u8::try_from(tag).unwrap_or(u8::MAX));
                out.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(value);
            }
            out
        }
    }

    impl BankCommand<'_> {
        /// The command on the basic channel (CLA 80); a long STORE TOKEN is chained or extended by the caller.
        pub fn to_command(&self) -> Command {
            let command = |ins: u8| Command::new(0x80, ins, 0, 0);
            match *self {
                Self::Personalize(personalization) => {
                    command(ins::PERSONALIZE).with_data(personalization.to_bytes())
                }
                Self::ReadAccount => command(ins::READ_ACCOUNT).with_ne(256),
                Self::StoreToken(token) => command(ins::STORE_TOKEN).with_data(token),
                Self::ListTokens => command(ins::LIST_TOKENS).with_ne(65536),
                Self::DeleteToken(id) => command(ins::DELETE_TOKEN).with_data(id.as_slice()),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const PERSONALIZATION: Personalization<'static> = Personalization {
            bank_id: b"BANK0001",
            account: b"DE89370400440532013000",
            user_id: b"user-42",
            user_name: b"Erika Mustermann",
            credit_applet: &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0x02, 0x01],
        };

        #[test]
        fn encoders_round_trip() {
            let token = [0x7F, 0x71, 0x01, 0x00];
            for command in [
                BankCommand::Personalize(PERSONALIZATION),
                BankCommand::ReadAccount,
                BankCommand::StoreToken(&token),
                BankCommand::ListTokens,
                BankCommand::DeleteToken(&[7; TOKEN_ID_LENGTH]),
            ] {
                let bytes = command.to_command().to_bytes().unwrap();
                let view = CommandView::parse(&bytes).unwrap();
                assert_eq!(BankCommand::try_from(&view), Ok(command));
                assert!(REQUIREMENTS.iter().any(|(name, _)| *name == command.name()));
            }
        }

        #[test]
        fn longest_personalization_fits_its_bound() {
            let long = Personalization {
                bank_id: &[1; MAX_PARTY_ID],
                account: &[2; MAX_ACCOUNT],
                user_id: &[3; MAX_USER_ID],
                user_name: &[4; MAX_USER_NAME],
                credit_applet: &[5; aid::MAX_LEN],
            };
            let bytes = long.to_bytes();
            assert_eq!(bytes.len(), MAX_PERSONALIZATION);
            assert_eq!(Personalization::parse(&bytes), Ok(long));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<BankCommand<'_>, StatusWord> {
        BankCommand::try_from(&CommandView::parse(bytes).unwrap())
    }

    #[test]
    fn malformed_commands_get_their_status_words() {
        assert_eq!(
            parse(&[0x00, 0x26, 0, 0]),
            Err(StatusWord::CLA_NOT_SUPPORTED)
        );
        assert_eq!(
            parse(&[0x80, 0x2A, 0, 0]),
            Err(StatusWord::INS_NOT_SUPPORTED)
        );
        assert_eq!(parse(&[0x80, 0x26, 1, 0]), Err(StatusWord::INCORRECT_P1P2));
        assert_eq!(
            parse(&[0x80, 0x26, 0, 0, 1, 0]),
            Err(StatusWord::WRONG_LENGTH)
        );
        assert_eq!(parse(&[0x80, 0x24, 0, 0]), Err(StatusWord::WRONG_DATA));
        assert_eq!(
            parse(&[0x80, 0x28, 0, 0, 2, 1, 2]),
            Err(StatusWord::WRONG_DATA)
        );
        // A personalization with a field missing, too long, or out of order.
        assert_eq!(
            parse(&[0x80, 0x20, 0, 0, 3, 0xC1, 1, 9]),
            Err(StatusWord::WRONG_DATA)
        );
        assert_eq!(
            parse(&[0x80, 0x20, 0, 0, 4, 0xC2, 1, 9, 0]),
            Err(StatusWord::WRONG_DATA)
        );
    }

    #[test]
    fn secured_class_on_another_channel_parses() {
        assert_eq!(parse(&[0x85, 0x26, 0, 0]), Ok(BankCommand::ListTokens));
    }
}
