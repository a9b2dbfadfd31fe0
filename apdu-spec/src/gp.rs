//! GlobalPlatform card manager (Issuer Security Domain) commands, life cycles and records
//! (GlobalPlatform Card Specification v2.3, chapters 5 and 11).

use crate::command::{CommandDoc, CommandView, Param};
use crate::scp11::Requirement;
use crate::scp11::cert::Role;
use crate::scp11::session::SecurityLevel;
use crate::status::StatusWord;
use crate::tlv;

/// Card manager instruction bytes.
pub mod ins {
    /// DELETE an application instance.
    pub const DELETE: u8 = 0xE4;
    /// INSTALL [for install] / [for make selectable].
    pub const INSTALL: u8 = 0xE6;
    /// SET STATUS: card or application life cycle.
    pub const SET_STATUS: u8 = 0xF0;
    /// GET STATUS: registry listing.
    pub const GET_STATUS: u8 = 0xF2;
    /// STORE DATA: personalization of a security domain.
    pub const STORE_DATA: u8 = 0xE2;
}

/// Card life cycle states (GP §5.1.1), with their on-card encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum CardLifeCycle {
    /// Pre-issuance: the card manager is ready.
    OpReady = 0x01,
    /// Pre-issuance: initial data loaded.
    Initialized = 0x07,
    /// Issued: the card manager enforces its security policy.
    Secured = 0x0F,
    /// Issued, but only the card manager can be selected.
    CardLocked = 0x7F,
    /// End of life: irreversible.
    Terminated = 0xFF,
}

impl CardLifeCycle {
    /// Decodes the life-cycle byte.
    pub const fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0x01 => Self::OpReady,
            0x07 => Self::Initialized,
            0x0F => Self::Secured,
            0x7F => Self::CardLocked,
            0xFF => Self::Terminated,
            _ => return None,
        })
    }
    /// Before issuance (OP_READY or INITIALIZED): card content management needs no secure channel yet.
    pub const fn pre_issuance(self) -> bool {
        matches!(self, Self::OpReady | Self::Initialized)
    }
    /// Whether GP allows the transition `self → next` (forward only; SECURED ↔ CARD_LOCKED; any → TERMINATED).
    pub const fn can_become(self, next: Self) -> bool {
        match (self, next) {
            (Self::Terminated, _) => false,
            (_, Self::Terminated) => true,
            (Self::OpReady, Self::Initialized | Self::Secured) => true,
            (Self::Initialized, Self::Secured) => true,
            (Self::Secured, Self::CardLocked) | (Self::CardLocked, Self::Secured) => true,
            _ => false,
        }
    }
}

/// Application life cycle bytes (GP §5.3.1).
pub mod app_state {
    /// Installed, not yet selectable.
    pub const INSTALLED: u8 = 0x03;
    /// Selectable.
    pub const SELECTABLE: u8 = 0x07;
    /// Application-specific state used by linkcard applets once personalized.
    pub const PERSONALIZED: u8 = 0x0F;
    /// Set on top of the previous state while locked (`1xxxx111`).
    pub const LOCKED_BIT: u8 = 0x80;

    /// Whether `state` is a valid application-specific state (`0xxxx111`, beyond SELECTABLE).
    pub const fn is_application_specific(state: u8) -> bool {
        state & 0x87 == 0x07 && state != SELECTABLE
    }
    /// Whether `state` is LOCKED.
    pub const fn is_locked(state: u8) -> bool {
        state & LOCKED_BIT != 0
    }
}

/// Executable load file life cycle: LOADED.
pub const LOAD_FILE_LOADED: u8 = 0x01;

/// Privileges (GP §6.6.1), first byte.
pub mod privileges {
    /// Security domain.
    pub const SECURITY_DOMAIN: u8 = 0x80;
    /// May lock the card.
    pub const CARD_LOCK: u8 = 0x10;
    /// May terminate the card.
    pub const CARD_TERMINATE: u8 = 0x08;
    /// Default selected on the basic channel after reset.
    pub const CARD_RESET: u8 = 0x04;
    /// Card manager privileges as reported by GET STATUS.
    pub const ISSUER_SECURITY_DOMAIN: [u8; 3] = [0x9E, 0xFE, 0x80];
}

/// GET STATUS P1: which part of the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusScope {
    /// P1 80: the issuer security domain.
    IssuerSecurityDomain,
    /// P1 40: applications and security domains.
    Applications,
    /// P1 20: executable load files.
    LoadFiles,
    /// P1 10: executable load files and their modules.
    LoadFilesAndModules,
}

/// SET STATUS P1: whose life cycle changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetStatusTarget {
    /// P1 80: the card (through the issuer security domain).
    Card,
    /// P1 40: one application.
    Application,
}

/// INSTALL [for install] and/or [for make selectable] data (GP §11.5.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstallRequest<'a> {
    /// Whether to create the instance (P1 bit 04).
    pub install: bool,
    /// Whether to make it selectable (P1 bit 08).
    pub make_selectable: bool,
    /// Executable load file AID (empty for make selectable alone).
    pub load_file: &'a [u8],
    /// Executable module AID (empty for make selectable alone).
    pub module: &'a [u8],
    /// Application (instance) AID.
    pub application: &'a [u8],
    /// Privileges (1 or 3 bytes).
    pub privileges: &'a [u8],
    /// Application-specific install parameters (the value of tag C9), possibly empty.
    pub applet_parameters: &'a [u8],
}

/// A card manager command, decoded from its APDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardManagerCommand<'a> {
    /// INSTALL.
    Install(InstallRequest<'a>),
    /// DELETE the object `aid` (P2 `00`, or `80` for "and related objects": an instance has none, and the
    /// load files are built into the image, so both mean the same here).
    Delete {
        /// AID of the instance or load file.
        aid: &'a [u8],
    },
    /// SET STATUS.
    SetStatus {
        /// Card or application.
        target: SetStatusTarget,
        /// The requested state (P2).
        state: u8,
        /// The application AID (empty for the card).
        aid: &'a [u8],
    },
    /// GET STATUS in GP TLV format.
    GetStatus {
        /// Which registry entries.
        scope: StatusScope,
        /// P2 bit 01: continue after the last answer that ended with 6310.
        next: bool,
        /// AID prefix to match (empty: all).
        aid_prefix: &'a [u8],
    },
    /// INSTALL [for personalization] (P1 20): the following STORE DATA commands go to `aid`.
    InstallForPersonalization {
        /// The instance to personalize.
        aid: &'a [u8],
    },
    /// STORE DATA: one personalization data object (see [`crate::scp11::personalization`]).
    StoreData {
        /// The data field.
        data: &'a [u8],
    },
}

/// Reads one length-prefixed field (one length byte, or `81 xx` for 128-255 bytes).
fn take_lv(bytes: &[u8]) -> Result<(&[u8], &[u8]), StatusWord> {
    let (&len, rest) = bytes.split_first().ok_or(StatusWord::WRONG_DATA)?;
    let (len, rest) = match len {
        0x81 => {
            let (&len, rest) = rest.split_first().ok_or(StatusWord::WRONG_DATA)?;
            (usize::from(len), rest)
        }
        0x00..=0x7F => (usize::from(len), rest),
        _ => return Err(StatusWord::WRONG_DATA),
    };
    if rest.len() < len {
        return Err(StatusWord::WRONG_DATA);
    }
    Ok(rest.split_at(len))
}

fn parse_install<'a>(p1: u8, data: &'a [u8]) -> Result<InstallRequest<'a>, StatusWord> {
    let (install, make_selectable) = match p1 {
        0x04 => (true, false),
        0x08 => (false, true),
        0x0C => (true, true),
        _ => return Err(StatusWord::INCORRECT_P1P2),
    };
    let (load_file, rest) = take_lv(data)?;
    let (module, rest) = take_lv(rest)?;
    let (application, rest) = take_lv(rest)?;
    let (privileges, rest) = take_lv(rest)?;
    let (parameters, rest) = take_lv(rest)?;
    let (token, rest) = take_lv(rest)?;
    if !rest.is_empty() || !token.is_empty() || !matches!(privileges.len(), 1 | 3) {
        return Err(StatusWord::WRONG_DATA);
    }
    if install == load_file.is_empty() || install == module.is_empty() {
        return Err(StatusWord::WRONG_DATA);
    }
    let applet_parameters = if parameters.is_empty() {
        &[][..]
    } else {
        tlv::find(parameters, 0xC9)
            .map_err(|_| StatusWord::WRONG_DATA)?
            .unwrap_or(&[])
    };
    Ok(InstallRequest {
        install,
        make_selectable,
        load_file,
        module,
        application,
        privileges,
        applet_parameters,
    })
}

/// INSTALL [for personalization]: empty load file and module, the application AID, then empty fields.
fn parse_install_for_personalization(data: &[u8]) -> Result<CardManagerCommand<'_>, StatusWord> {
    let (load_file, rest) = take_lv(data)?;
    let (module, rest) = take_lv(rest)?;
    let (aid, rest) = take_lv(rest)?;
    if !load_file.is_empty() || !module.is_empty() || aid.is_empty() {
        return Err(StatusWord::WRONG_DATA);
    }
    // Privileges, parameters and token fields must be empty when present.
    if rest.iter().any(|b| *b != 0) {
        return Err(StatusWord::WRONG_DATA);
    }
    Ok(CardManagerCommand::InstallForPersonalization { aid })
}

impl<'a> TryFrom<&CommandView<'a>> for CardManagerCommand<'a> {
    type Error = StatusWord;

    fn try_from(cmd: &CommandView<'a>) -> Result<Self, StatusWord> {
        let data = cmd.data();
        match cmd.ins() {
            ins::INSTALL => {
                if cmd.p2() != 0 {
                    return Err(StatusWord::INCORRECT_P1P2);
                }
                if cmd.p1() == 0x20 {
                    return parse_install_for_personalization(data);
                }
                parse_install(cmd.p1(), data).map(Self::Install)
            }
            ins::STORE_DATA => {
                // P1 b8 (last block) and the block number P2 are accepted as GP sends them; each command
                // carries one complete data object.
                if cmd.p1() & 0x7F != 0 {
                    return Err(StatusWord::INCORRECT_P1P2);
                }
                Ok(Self::StoreData { data })
            }
            ins::DELETE => {
                if !matches!((cmd.p1(), cmd.p2()), (0x00, 0x00) | (0x00, 0x80)) {
                    return Err(StatusWord::INCORRECT_P1P2);
                }
                let aid = tlv::find(data, 0x4F)
                    .map_err(|_| StatusWord::WRONG_DATA)?
                    .ok_or(StatusWord::WRONG_DATA)?;
                Ok(Self::Delete { aid })
            }
            ins::SET_STATUS => {
                let target = match cmd.p1() {
                    0x80 => SetStatusTarget::Card,
                    0x40 => SetStatusTarget::Application,
                    _ => return Err(StatusWord::INCORRECT_P1P2),
                };
                if target == SetStatusTarget::Application && data.is_empty() {
                    return Err(StatusWord::WRONG_DATA);
                }
                Ok(Self::SetStatus {
                    target,
                    state: cmd.p2(),
                    aid: data,
                })
            }
            ins::GET_STATUS => {
                let scope = match cmd.p1() {
                    0x80 => StatusScope::IssuerSecurityDomain,
                    0x40 => StatusScope::Applications,
                    0x20 => StatusScope::LoadFiles,
                    0x10 => StatusScope::LoadFilesAndModules,
                    _ => return Err(StatusWord::INCORRECT_P1P2),
                };
                let next = match cmd.p2() {
                    0x02 => false,
                    0x03 => true,
                    _ => return Err(StatusWord::INCORRECT_P1P2),
                };
                let aid_prefix = tlv::find(data, 0x4F)
                    .map_err(|_| StatusWord::WRONG_DATA)?
                    .ok_or(StatusWord::WRONG_DATA)?;
                Ok(Self::GetStatus {
                    scope,
                    next,
                    aid_prefix,
                })
            }
            _ => Err(StatusWord::INS_NOT_SUPPORTED),
        }
    }
}

/// Content management and personalization: the issuer, through an SCP11a session (or in the clear while the card
/// is not issued: the factory).
const ISSUER: Requirement =
    Requirement::session(Role::Issuer, SecurityLevel::C_MAC).before_issuance_plain();
/// A private key travels encrypted when it travels in a session.
const ISSUER_KEY: Requirement = Requirement::session(
    Role::Issuer,
    SecurityLevel::C_MAC | SecurityLevel::C_DECRYPTION,
)
.before_issuance_plain();

/// What each card manager command needs of the channel it arrives through: the card enforces it
/// ([`Requirement::check`]), hosts read it, and `docs/SECURE-CHANNEL.md` lists it (a test compares).
pub const REQUIREMENTS: [(&str, Requirement); 7] = [
    ("GET STATUS", Requirement::NONE),
    ("INSTALL", ISSUER),
    ("INSTALL [for personalization]", ISSUER),
    ("STORE DATA", ISSUER),
    ("STORE DATA DF20 (static key)", ISSUER_KEY),
    ("DELETE", ISSUER),
    ("SET STATUS", ISSUER),
];

impl CardManagerCommand<'_> {
    /// The command's name in [`REQUIREMENTS`].
    pub fn name(&self) -> &'static str {
        match self {
            Self::GetStatus { .. } => "GET STATUS",
            Self::Install(_) => "INSTALL",
            Self::InstallForPersonalization { .. } => "INSTALL [for personalization]",
            Self::StoreData {
                data: [0xDF, 0x20, ..],
            } => "STORE DATA DF20 (static key)",
            Self::StoreData { .. } => "STORE DATA",
            Self::Delete { .. } => "DELETE",
            Self::SetStatus { .. } => "SET STATUS",
        }
    }

    /// What the command needs of its secure channel (the [`REQUIREMENTS`] row of its name; a test checks that
    /// every command's row is there and the same).
    pub fn requirement(&self) -> Requirement {
        match self {
            Self::GetStatus { .. } => Requirement::NONE,
            Self::StoreData {
                data: [0xDF, 0x20, ..],
            } => ISSUER_KEY,
            Self::Install(_)
            | Self::InstallForPersonalization { .. }
            | Self::StoreData { .. }
            | Self::Delete { .. }
            | Self::SetStatus { .. } => ISSUER,
        }
    }
}

/// The card manager's commands, for `docs/apdu.md` (a test checks the rows against the encoders, the names and
/// requirements against [`REQUIREMENTS`], and the document against the rendered table).
pub const COMMANDS: &[CommandDoc] = &[
    CommandDoc {
        name: "GET STATUS",
        cla: 0x80,
        ins: ins::GET_STATUS,
        p1: Param::OneOf(
            &[0x80, 0x40, 0x20, 0x10],
            "`80` card manager, `40` applications, `20` load files, `10` load files and modules",
        ),
        p2: Param::OneOf(&[0x02, 0x03], "`02` first, `03` next (after 6310)"),
        data: "`4F <AID prefix>` (`4F 00`: all)",
        response: "`E3 { 4F, 9F70, C5, C4, 84… }` records",
        status: &[
            (
                StatusWord::MORE_DATA,
                "more records: ask again with P2 `03`",
            ),
            (StatusWord::REFERENCED_DATA_NOT_FOUND, "nothing matches"),
            (
                StatusWord::CONDITIONS_NOT_SATISFIED,
                "P2 `03` with nothing to continue",
            ),
        ],
        requirement: Requirement::NONE,
    },
    CommandDoc {
        name: "INSTALL",
        cla: 0x80,
        ins: ins::INSTALL,
        p1: Param::OneOf(
            &[0x04, 0x08, 0x0C],
            "`04` for install, `08` for make selectable, `0C` both",
        ),
        p2: Param::Is(0x00),
        data: "load file, module, application AID, privileges, `C9` parameters, token (each length-prefixed)",
        response: "none",
        status: &[
            (
                StatusWord::REFERENCED_DATA_NOT_FOUND,
                "no such load file, module or instance",
            ),
            (
                StatusWord::CONDITIONS_NOT_SATISFIED,
                "AID in use, or not in a state to change",
            ),
            (
                StatusWord::WRONG_DATA,
                "malformed data, privileges or parameters",
            ),
        ],
        requirement: ISSUER,
    },
    CommandDoc {
        name: "INSTALL [for personalization]",
        cla: 0x80,
        ins: ins::INSTALL,
        p1: Param::Is(0x20),
        p2: Param::Is(0x00),
        data: "`00 00 <len> <application AID> 00 00 00`",
        response: "none",
        status: &[
            (StatusWord::REFERENCED_DATA_NOT_FOUND, "no such instance"),
            (StatusWord::WRONG_DATA, "malformed data"),
        ],
        requirement: ISSUER,
    },
    CommandDoc {
        name: "STORE DATA",
        cla: 0x80,
        ins: ins::STORE_DATA,
        p1: Param::OneOf(&[0x00, 0x80], "`80` last block (or `00`)"),
        p2: Param::Any("block number"),
        data: "one personalization object (`DF23`, `BF21`, `BF22`, `DF22`; `docs/SECURE-CHANNEL.md`) for the card manager, or the instance INSTALL [for personalization] named",
        response: "`DF23`: the public key `B0 41 …`; else none",
        status: &[
            (
                StatusWord::CONDITIONS_NOT_SATISFIED,
                "the INSTALL [for personalization] target was withdrawn (its session ended), or a chain without its key",
            ),
            (StatusWord::WRONG_DATA, "malformed object"),
        ],
        requirement: ISSUER,
    },
    CommandDoc {
        name: "STORE DATA DF20 (static key)",
        cla: 0x80,
        ins: ins::STORE_DATA,
        p1: Param::OneOf(&[0x00, 0x80], "`80` last block (or `00`)"),
        p2: Param::Any("block number"),
        data: "`DF20 <private key>`",
        response: "none",
        status: &[
            (
                StatusWord::CONDITIONS_NOT_SATISFIED,
                "the INSTALL [for personalization] target was withdrawn",
            ),
            (StatusWord::WRONG_DATA, "not a P-256 private key"),
        ],
        requirement: ISSUER_KEY,
    },
    CommandDoc {
        name: "DELETE",
        cla: 0x80,
        ins: ins::DELETE,
        p1: Param::Is(0x00),
        p2: Param::OneOf(&[0x00, 0x80], "`00`, or `80` with related objects"),
        data: "`4F <AID>`",
        response: "none",
        status: &[
            (StatusWord::REFERENCED_DATA_NOT_FOUND, "no such instance"),
            (
                StatusWord::CONDITIONS_NOT_SATISFIED,
                "the card manager or a load file, or the instance is selected",
            ),
        ],
        requirement: ISSUER,
    },
    CommandDoc {
        name: "SET STATUS",
        cla: 0x80,
        ins: ins::SET_STATUS,
        p1: Param::OneOf(&[0x80, 0x40], "`80` card, `40` application"),
        p2: Param::Any("the new life cycle state"),
        data: "none (card), or the application AID",
        response: "none",
        status: &[
            (StatusWord::REFERENCED_DATA_NOT_FOUND, "no such instance"),
            (
                StatusWord::CONDITIONS_NOT_SATISFIED,
                "a transition GP does not allow",
            ),
            (StatusWord::WRONG_DATA, "undefined state"),
        ],
        requirement: ISSUER,
    },
];

#[cfg(feature = "alloc")]
mod encode {
    use alloc::vec::Vec;

    use super::*;
    use crate::builder::Command;

    /// Appends one length-prefixed field (`81 xx` from 128 bytes).
    fn push_lv(out: &mut Vec<u8>, value: &[u8]) {
        // GP length fields hold at most 255 bytes; a longer value is cut to fit (and refused by the card).
        let len = u8::try_from(value.len()).unwrap_or(u8::MAX);
        debug_assert_eq!(
            usize::from(len),
            value.len(),
            "GP length fields hold at most 255 bytes"
        );
        if len > 0x7F {
            out.push(0x81);
        }
        out.push(len);
        let value = value.get(..usize::from(len)).unwrap_or(value);
        out.extend_from_slice(value);
    }

    fn tlv_4f(aid: &[u8]) -> Vec<u8> {
        let mut data = alloc::vec![0x4F];
        push_lv(&mut data, aid);
        data
    }

    fn install_data(request: &InstallRequest<'_>) -> Vec<u8> {
        let mut data = Vec::new();
        push_lv(&mut data, request.load_file);
        push_lv(&mut data, request.module);
        push_lv(&mut data, request.application);
        push_lv(&mut data, request.privileges);
        let mut parameters = alloc::vec![0xC9];
        push_lv(&mut parameters, request.applet_parameters);
        push_lv(&mut data, &parameters);
        push_lv(&mut data, &[]);
        data
    }

    impl CardManagerCommand<'_> {
        /// The command on the basic channel (CLA 80).
        pub fn to_command(&self) -> Command {
            match *self {
                Self::Install(request) => {
                    let p1 = match (request.install, request.make_selectable) {
                        (true, true) => 0x0C,
                        (true, false) => 0x04,
                        _ => 0x08,
                    };
                    Command::new(0x80, ins::INSTALL, p1, 0x00).with_data(install_data(&request))
                }
                Self::InstallForPersonalization { aid } => {
                    let mut data = alloc::vec![0x00, 0x00];
                    push_lv(&mut data, aid);
                    data.extend_from_slice(&[0x00, 0x00, 0x00]);
                    Command::new(0x80, ins::INSTALL, 0x20, 0x00).with_data(data)
                }
                Self::StoreData { data } => {
                    Command::new(0x80, ins::STORE_DATA, 0x80, 0x00).with_data(data)
                }
                Self::Delete { aid } => {
                    Command::new(0x80, ins::DELETE, 0x00, 0x00).with_data(tlv_4f(aid))
                }
                Self::SetStatus { target, state, aid } => {
                    let p1 = match target {
                        SetStatusTarget::Card => 0x80,
                        SetStatusTarget::Application => 0x40,
                    };
                    Command::new(0x80, ins::SET_STATUS, p1, state).with_data(aid)
                }
                Self::GetStatus {
                    scope,
                    next,
                    aid_prefix,
                } => {
                    let p1 = match scope {
                        StatusScope::IssuerSecurityDomain => 0x80,
                        StatusScope::Applications => 0x40,
                        StatusScope::LoadFiles => 0x20,
                        StatusScope::LoadFilesAndModules => 0x10,
                    };
                    let p2 = if next { 0x03 } else { 0x02 };
                    Command::new(0x80, ins::GET_STATUS, p1, p2)
                        .with_data(tlv_4f(aid_prefix))
                        .with_ne(256)
                }
            }
        }
    }
}

/// One GET STATUS record (tag E3), as the card writes and the host reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRecord<'a> {
    /// AID (4F).
    pub aid: &'a [u8],
    /// Life cycle state (9F70).
    pub life_cycle: u8,
    /// Privileges (C5), empty for load files.
    pub privileges: &'a [u8],
    /// Load file of an application (C4), empty when absent.
    pub load_file: &'a [u8],
    /// Module AIDs (each an 84 TLV), concatenated as received; empty when absent.
    pub modules: &'a [u8],
}

impl<'a> StatusRecord<'a> {
    /// Encoded size of the record, E3 header included.
    pub fn encoded_len(&self) -> usize {
        let inner = self.inner_len();
        tlv::header_len(0xE3, inner) + inner
    }

    fn inner_len(&self) -> usize {
        let field = |tag: u16, len: usize| {
            if len == 0 {
                0
            } else {
                tlv::header_len(tag, len) + len
            }
        };
        field(0x4F, self.aid.len())
            + field(0x9F70, 1)
            + field(0xC5, self.privileges.len())
            + field(0xC4, self.load_file.len())
            + self.modules.len()
    }

    /// Writes the record.
    pub fn write(&self, out: &mut tlv::Writer<'_>) -> Result<(), tlv::BufferFull> {
        out.header(0xE3, self.inner_len())?;
        out.tlv(0x4F, self.aid)?;
        out.tlv(0x9F70, &[self.life_cycle])?;
        if !self.privileges.is_empty() {
            out.tlv(0xC5, self.privileges)?;
        }
        if !self.load_file.is_empty() {
            out.tlv(0xC4, self.load_file)?;
        }
        out.raw(self.modules)
    }

    /// Reads one E3 record's value.
    pub fn parse(e3_value: &'a [u8]) -> Result<Self, tlv::MalformedTlv> {
        let mut record = Self {
            aid: &[],
            life_cycle: 0,
            privileges: &[],
            load_file: &[],
            modules: &[],
        };
        let mut modules_start = None;
        let mut rest = e3_value;
        while !rest.is_empty() {
            let (tlv, next) = tlv::read(rest)?;
            match tlv.tag {
                0x4F => record.aid = tlv.value,
                0x9F70 => record.life_cycle = *tlv.value.first().ok_or(tlv::MalformedTlv)?,
                0xC5 => record.privileges = tlv.value,
                0xC4 => record.load_file = tlv.value,
                0x84 if modules_start.is_none() => {
                    modules_start = Some(e3_value.len() - rest.len())
                }
                _ => {}
            }
            rest = next;
        }
        if let Some(start) = modules_start {
            record.modules = e3_value.get(start..).unwrap_or(&[]);
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> [CardManagerCommand<'static>; 8] {
        [
            CardManagerCommand::Install(InstallRequest {
                install: true,
                make_selectable: true,
                load_file: &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF],
                module: &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x00],
                application: &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x05],
                privileges: &[0x00],
                applet_parameters: &[0x09],
            }),
            CardManagerCommand::Install(InstallRequest {
                install: false,
                make_selectable: true,
                load_file: &[],
                module: &[],
                application: &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x05],
                privileges: &[0x04, 0x00, 0x00],
                applet_parameters: &[],
            }),
            CardManagerCommand::InstallForPersonalization {
                aid: &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x05],
            },
            CardManagerCommand::StoreData {
                data: &[0xDF, 0x23, 0x00],
            },
            CardManagerCommand::StoreData {
                data: &[0xDF, 0x20, 0x01, 0x07],
            },
            CardManagerCommand::Delete {
                aid: &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x05],
            },
            CardManagerCommand::SetStatus {
                target: SetStatusTarget::Application,
                state: 0x83,
                aid: &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x05],
            },
            CardManagerCommand::GetStatus {
                scope: StatusScope::LoadFilesAndModules,
                next: true,
                aid_prefix: &[0xF0],
            },
        ]
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn encoders_round_trip() {
        for command in every_kind() {
            let bytes = command.to_command().to_bytes().unwrap();
            assert_eq!(cmd(&bytes), Ok(command), "{bytes:02X?}");
        }
        let long_parameters = [0x5A; 200];
        let install = CardManagerCommand::Install(InstallRequest {
            install: true,
            make_selectable: false,
            load_file: &[0xA0, 0x01],
            module: &[0xA0, 0x02],
            application: &[0xA0, 0x03],
            privileges: &[0x00],
            applet_parameters: &long_parameters,
        });
        let bytes = install.to_command().to_extended().unwrap();
        assert_eq!(cmd(&bytes), Ok(install));
    }

    #[test]
    fn every_command_has_a_listed_requirement() {
        for command in every_kind() {
            assert!(
                REQUIREMENTS
                    .iter()
                    .any(|(name, r)| *name == command.name() && *r == command.requirement()),
                "{}",
                command.name()
            );
        }
        assert_eq!(
            every_kind()[4].requirement().level,
            SecurityLevel::C_MAC | SecurityLevel::C_DECRYPTION
        );
    }

    fn cmd(bytes: &[u8]) -> Result<CardManagerCommand<'_>, StatusWord> {
        let view = CommandView::parse(bytes).unwrap();
        CardManagerCommand::try_from(&view)
    }

    #[test]
    fn install_for_install_and_make_selectable() {
        let apdu = [
            0x80, 0xE6, 0x0C, 0x00, 0x1E, 0x06, 0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x07, 0xF0,
            0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x00, 0x07, 0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x01,
            0x01, 0x00, 0x03, 0xC9, 0x01, 0x03, 0x00,
        ];
        let CardManagerCommand::Install(req) = cmd(&apdu).unwrap() else {
            panic!()
        };
        assert!(req.install && req.make_selectable);
        assert_eq!(req.application, crate::aid::LOOPBACK_APPLET.as_bytes());
        assert_eq!(req.applet_parameters, &[0x03]);
    }

    #[test]
    fn malformed_install_is_wrong_data() {
        assert_eq!(
            cmd(&[0x80, 0xE6, 0x0C, 0x00, 0x02, 0x06, 0xF0]),
            Err(StatusWord::WRONG_DATA)
        );
        assert_eq!(
            cmd(&[0x80, 0xE6, 0x02, 0x00, 0x01, 0x00]),
            Err(StatusWord::INCORRECT_P1P2)
        );
    }

    #[test]
    fn get_status_needs_tlv_format() {
        assert!(matches!(
            cmd(&[0x80, 0xF2, 0x40, 0x02, 0x02, 0x4F, 0x00]),
            Ok(CardManagerCommand::GetStatus {
                scope: StatusScope::Applications,
                next: false,
                ..
            })
        ));
        assert_eq!(
            cmd(&[0x80, 0xF2, 0x40, 0x00, 0x02, 0x4F, 0x00]),
            Err(StatusWord::INCORRECT_P1P2)
        );
    }

    #[test]
    fn life_cycle_transitions() {
        use CardLifeCycle::*;
        assert!(OpReady.can_become(Initialized));
        assert!(Initialized.can_become(Secured));
        assert!(!Secured.can_become(Initialized));
        assert!(Secured.can_become(CardLocked) && CardLocked.can_become(Secured));
        assert!(CardLocked.can_become(Terminated));
        assert!(!Terminated.can_become(Secured));
    }

    #[test]
    fn record_round_trip() {
        let modules = [0x84, 0x02, 0xAB, 0xCD];
        let record = StatusRecord {
            aid: &[1, 2, 3, 4, 5],
            life_cycle: 7,
            privileges: &[0, 0, 0],
            load_file: &[9, 9, 9, 9, 9],
            modules: &modules,
        };
        let mut buf = [0u8; 64];
        let mut w = tlv::Writer::new(&mut buf);
        record.write(&mut w).unwrap();
        assert_eq!(w.len(), record.encoded_len());
        let (e3, _) = tlv::read(w.written()).unwrap();
        assert_eq!(e3.tag, 0xE3);
        assert_eq!(StatusRecord::parse(e3.value).unwrap(), record);
    }
}
