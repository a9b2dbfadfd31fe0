//! The card manager (the GlobalPlatform Issuer Security Domain) as a typed session: one method per card-manager
//! command, each built by the command's own encoder in `apdu-spec`, each answer's status word mapped to a
//! [`CardManagerError`] that keeps it.
//!
//! A [`CardManagerSession`] selects the card manager when it is made ([`CardManagerSession::select`]) and then
//! runs over whatever channel it holds: plain, or an SCP11 session opened with the selected card manager
//! ([`CardManagerSession::open_scp11a`], [`CardManagerSession::open_scp11b`]); an [`Scp11Session`] is itself a
//! [`CardChannel`], so the methods are the same either way. Before it sends a command, the session compares
//! what the command needs (`CardManagerCommand::requirement`, the table the card enforces) with what the
//! channel gives ([`CardChannel::security`]) and fails early when the card would certainly refuse: inside a
//! session that refusal would also end the session.
//!
//! ```no_run
//! # fn demo(reader: impl card_client::CardChannel, card_ca: &apdu_spec::scp11::cert::Issuer<'_>,
//! #         issuer: &card_client::scp11::OceCredentials, today: apdu_spec::scp11::cert::Date)
//! #         -> Result<(), card_client::card_manager::CardManagerError> {
//! use apdu_spec::gp::StatusScope;
//! use apdu_spec::scp11::session::SecurityLevel;
//! use card_client::card_manager::CardManagerSession;
//!
//! let mut card_manager = CardManagerSession::select(reader)?
//!     .open_scp11a(card_ca, today, issuer, SecurityLevel::FULL)?;
//! for entry in card_manager.get_status(StatusScope::Applications)? {
//!     println!("{:02X?} life cycle {:02X}", entry.aid, entry.life_cycle);
//! }
//! card_manager.delete(&[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x05])?;
//! # Ok(()) }
//! ```

use std::fmt;

use apdu_spec::builder::{Command, EncodeError};
use apdu_spec::gp::{
    CardLifeCycle, CardManagerCommand, InstallRequest, SetStatusTarget, StatusRecord, StatusScope,
};
use apdu_spec::iso::Select;
use apdu_spec::scp11::cert::{Date, Issuer};
use apdu_spec::scp11::session::{PublicKeyBytes, SecurityLevel};
use apdu_spec::scp11::{
    self as scp, HandshakeCommand, Plain, Requirement, Security, Variant, personalization as perso,
};
use apdu_spec::{StatusWord, aid, tlv};

use crate::channel::{CardChannel, ChannelError, send_apdus, split_response};
use crate::scp11::{self, OceCredentials, Personalization, Scp11Error, Scp11Session};

/// Bounds a GET STATUS listing against a card that never stops answering 6310 (a full registry takes a few
/// pages of 256 bytes).
const MAX_STATUS_PAGES: usize = 64;
/// Short APDUs carry at most this much data; longer commands to a plain card manager go as command chains.
const SHORT_DATA: usize = 255;
/// Ne of commands whose answer has data (the card serves more through 61xx).
const NE: usize = 256;

/// Why a card-manager command failed. The card's refusals keep their status word ([`CardManagerError::status`]);
/// transport and secure-channel failures keep their cause as the source.
#[derive(Debug, thiserror::Error)]
pub enum CardManagerError {
    /// The channel failed underneath.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// A secure channel could not be opened, or a certificate could not be made.
    #[error(transparent)]
    Scp11(#[from] Scp11Error),
    /// The command cannot be encoded (data too long for any APDU).
    #[error("cannot encode {command}")]
    Encode {
        /// The command's name.
        command: &'static str,
        /// Why.
        source: EncodeError,
    },
    /// The command needs more of the secure channel than this channel gives: the card answered 6982
    /// (`status`), or the host knew it would and did not send the command (`status` is `None`).
    #[error("{command} needs {}; {}", Needs(.requirement), Provided(.channel, .status))]
    SecurityStatusNotSatisfied {
        /// The command's name.
        command: &'static str,
        /// What it needs (`CardManagerCommand::requirement`).
        requirement: Requirement,
        /// What the channel gave: `None` for a plain channel.
        channel: Option<Security>,
        /// 6982 when the card refused it; `None` when it was not sent.
        status: Option<StatusWord>,
    },
    /// No such application, load file or data (6A82, 6A88).
    #[error("{command}: not found (card answered {status})")]
    NotFound {
        /// The command's name.
        command: &'static str,
        /// What the card answered.
        status: StatusWord,
    },
    /// The card's state forbids it (6985): a life-cycle transition GP does not allow, a built-in load file,
    /// a personalization target that was withdrawn, a card without entropy.
    #[error("{command}: conditions of use not satisfied (card answered {status})")]
    ConditionsNotSatisfied {
        /// The command's name.
        command: &'static str,
        /// What the card answered.
        status: StatusWord,
    },
    /// The card refused the command's data (6A80): an AID in use, bad parameters, a certificate that does not
    /// fit.
    #[error("{command}: wrong data (card answered {status})")]
    WrongData {
        /// The command's name.
        command: &'static str,
        /// What the card answered.
        status: StatusWord,
    },
    /// The registry or a domain's store is full (6A84).
    #[error("{command}: not enough memory on the card (card answered {status})")]
    NotEnoughMemory {
        /// The command's name.
        command: &'static str,
        /// What the card answered.
        status: StatusWord,
    },
    /// Any other refusal.
    #[error("{command}: card answered {status}")]
    Refused {
        /// The command's name.
        command: &'static str,
        /// What the card answered.
        status: StatusWord,
    },
    /// The card answered success with data that is not what the command answers.
    #[error("{command}: unexpected answer: {reason}")]
    BadResponse {
        /// The command's name.
        command: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// SELECT through an open secure channel would end it on the card.
    #[error(
        "SELECT would end the secure channel: select the card manager first, then open the session"
    )]
    SelectInSession,
    /// The card manager's own domain was to be personalized, but an earlier INSTALL [for personalization] on
    /// this channel still sends STORE DATA to an instance.
    #[error(
        "STORE DATA on this channel goes to the instance named by INSTALL [for personalization]: select the card manager again to personalize its own domain"
    )]
    TargetIsInstance,
}

impl CardManagerError {
    /// The status word the card answered, when the card refused the command.
    pub fn status(&self) -> Option<StatusWord> {
        match self {
            Self::SecurityStatusNotSatisfied { status, .. } => *status,
            Self::NotFound { status, .. }
            | Self::ConditionsNotSatisfied { status, .. }
            | Self::WrongData { status, .. }
            | Self::NotEnoughMemory { status, .. }
            | Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error for a card's refusal of `command` with `status`.
    pub(crate) fn refusal(
        command: &'static str,
        requirement: Requirement,
        channel: Option<Security>,
        status: StatusWord,
    ) -> Self {
        match status {
            StatusWord::SECURITY_STATUS_NOT_SATISFIED => Self::SecurityStatusNotSatisfied {
                command,
                requirement,
                channel,
                status: Some(status),
            },
            StatusWord::NOT_FOUND | StatusWord::REFERENCED_DATA_NOT_FOUND => {
                Self::NotFound { command, status }
            }
            StatusWord::CONDITIONS_NOT_SATISFIED => {
                Self::ConditionsNotSatisfied { command, status }
            }
            StatusWord::WRONG_DATA => Self::WrongData { command, status },
            StatusWord::NOT_ENOUGH_MEMORY => Self::NotEnoughMemory { command, status },
            _ => Self::Refused { command, status },
        }
    }
}

/// A requirement in words, as `docs/SECURE-CHANNEL.md` lists it ([`Requirement::describe`]).
struct Needs<'a>(&'a Requirement);

impl fmt::Display for Needs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.describe(f)
    }
}

/// What the channel gave, and whether the card or the host refused.
struct Provided<'a>(&'a Option<Security>, &'a Option<StatusWord>);

impl fmt::Display for Provided<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("the channel is plain")?,
            Some(security) => {
                let variant = if security.variant == Variant::A {
                    "a"
                } else {
                    "b"
                };
                write!(f, "the channel is an SCP11{variant} session")?;
                match security.role {
                    Some(role) => write!(f, " as {}", role.name())?,
                    None => f.write_str(" without a role")?,
                }
                f.write_str(" with")?;
                for (bit, name) in [
                    (SecurityLevel::C_MAC, "C-MAC"),
                    (SecurityLevel::C_DECRYPTION, "C-DEC"),
                    (SecurityLevel::R_MAC, "R-MAC"),
                    (SecurityLevel::R_ENCRYPTION, "R-ENC"),
                ] {
                    if security.level.has(bit) {
                        write!(f, " {name}")?;
                    }
                }
            }
        }
        match self.1 {
            Some(status) => write!(f, " (card answered {status})"),
            None => f.write_str(" (not sent)"),
        }
    }
}

/// The card manager's answer to SELECT: `6F { 84 <AID>, A5 { 9F65 <max command data> } }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fci {
    /// The card manager's AID (84).
    pub aid: Vec<u8>,
    /// The most data one command may carry (9F65), when the card says.
    pub max_command_data: Option<usize>,
    /// SELECT answered 6283: the card is CARD_LOCKED or TERMINATED.
    pub card_locked: bool,
}

impl Fci {
    fn parse(data: &[u8], status: StatusWord) -> Option<Self> {
        let template = tlv::find(data, 0x6F).ok().flatten()?;
        let aid = tlv::find(template, 0x84).ok().flatten()?.to_vec();
        let proprietary = tlv::find(template, 0xA5).ok().flatten().unwrap_or(&[]);
        let max_command_data = match tlv::find(proprietary, 0x9F65).ok()? {
            Some(&[max]) => Some(usize::from(max)),
            Some(_) => return None,
            None => None,
        };
        Some(Self {
            aid,
            max_command_data,
            card_locked: status == StatusWord::SELECTED_FILE_INVALIDATED,
        })
    }
}

/// One GET STATUS record, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryEntry {
    /// AID of the application, security domain or load file.
    pub aid: Vec<u8>,
    /// Its life cycle state (an application's, or the card's for the issuer security domain).
    pub life_cycle: u8,
    /// Privileges; empty for load files.
    pub privileges: Vec<u8>,
    /// The load file of an application; empty when the card does not say.
    pub load_file: Vec<u8>,
    /// The modules of a load file (scope `LoadFilesAndModules`).
    pub modules: Vec<Vec<u8>>,
}

impl RegistryEntry {
    fn from_record(record: &StatusRecord<'_>) -> Result<Self, tlv::MalformedTlv> {
        let modules = tlv::iter(record.modules)
            .filter_map(|module| match module {
                Ok(module) if module.tag != 0x84 => None,
                other => Some(other.map(|module| module.value.to_vec())),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            aid: record.aid.to_vec(),
            life_cycle: record.life_cycle,
            privileges: record.privileges.to_vec(),
            load_file: record.load_file.to_vec(),
            modules,
        })
    }
}

pub use apdu_spec::scp11::personalization::DataObject;

/// A session with the card manager over `C` (a plain channel or an SCP11 session): one method per command.
#[derive(Debug)]
pub struct CardManagerSession<C> {
    channel: C,
    fci: Option<Fci>,
    /// An INSTALL [for personalization] on this channel named an instance: until SELECT (or a new handshake,
    /// which makes the card refuse STORE DATA), STORE DATA goes there, not to the card manager.
    targets_instance: bool,
}

impl<C: CardChannel> CardManagerSession<C> {
    /// Selects the card manager on `channel` (SELECT by its AID) and reads its FCI. `channel` must not be an
    /// open secure channel: the card would carry out the SELECT and end the session.
    pub fn select(mut channel: C) -> Result<Self, CardManagerError> {
        const COMMAND: &str = "SELECT";
        if channel.security().is_some() {
            return Err(CardManagerError::SelectInSession);
        }
        let select = Select::aid(aid::CARD_MANAGER.as_bytes()).to_command();
        let (data, status) = exchange(&mut channel, COMMAND, &select)?;
        if !status.carries_data() {
            return Err(CardManagerError::refusal(
                COMMAND,
                Requirement::NONE,
                None,
                status,
            ));
        }
        let fci = Fci::parse(&data, status).ok_or(CardManagerError::BadResponse {
            command: COMMAND,
            reason: "no FCI (6F { 84 AID … })",
        })?;
        Ok(Self {
            channel,
            fci: Some(fci),
            targets_instance: false,
        })
    }

    /// A session over a channel that already reaches the card manager: selected on it, or an SCP11 session
    /// opened with it. Nothing is sent, so there is no FCI.
    pub fn over_selected(channel: C) -> Self {
        Self {
            channel,
            fci: None,
            targets_instance: false,
        }
    }

    /// What SELECT answered, when this session selected the card manager.
    pub fn fci(&self) -> Option<&Fci> {
        self.fci.as_ref()
    }

    /// The secure channel the session's commands go through (`None`: plain).
    pub fn security(&self) -> Option<Security> {
        self.channel.security()
    }

    /// The channel, to send what this session has no method for.
    pub fn channel(&mut self) -> &mut C {
        &mut self.channel
    }

    /// Ends the session and hands the channel back.
    pub fn into_channel(self) -> C {
        self.channel
    }

    /// GET DATA BF21: the card manager's certificates (`7F21 …` each), leaf last. Not verified: see
    /// [`scp11::card_key`].
    pub fn certificates(&mut self) -> Result<Vec<Vec<u8>>, CardManagerError> {
        const COMMAND: &str = "GET DATA BF21";
        let command = HandshakeCommand::GetCertificates { key: None }.to_command();
        let store = self.run(COMMAND, Requirement::NONE, &command)?;
        let malformed = || CardManagerError::BadResponse {
            command: COMMAND,
            reason: "not a certificate store (BF21 { 7F21 … })",
        };
        let (outer, rest) = tlv::read(&store).map_err(|_| malformed())?;
        if outer.tag != scp::TAG_CERTIFICATE_STORE || !rest.is_empty() {
            return Err(malformed());
        }
        let mut certificates = Vec::new();
        let mut rest = outer.value;
        while !rest.is_empty() {
            let (_, next) = tlv::read(rest).map_err(|_| malformed())?;
            let (certificate, _) = rest.split_at(rest.len() - next.len());
            certificates.push(certificate.to_vec());
            rest = next;
        }
        Ok(certificates)
    }

    /// Verifies the card manager's certificates against `card_ca` as of `today` and opens an SCP11a session
    /// with the OCE's credentials; the session's commands are then secured at `level`.
    pub fn open_scp11a(
        mut self,
        card_ca: &Issuer<'_>,
        today: Date,
        oce: &OceCredentials,
        level: SecurityLevel,
    ) -> Result<CardManagerSession<Scp11Session<C>>, CardManagerError> {
        let card_key = scp11::card_key(&mut self.channel, card_ca, today)?;
        let session = scp11::open_scp11a(self.channel, &card_key, oce, level, None)?;
        Ok(CardManagerSession {
            channel: session,
            fci: self.fci,
            targets_instance: false,
        })
    }

    /// Verifies the card manager's certificates against `card_ca` as of `today` and opens an SCP11b session:
    /// confidential, but without a role, so no content management.
    pub fn open_scp11b(
        mut self,
        card_ca: &Issuer<'_>,
        today: Date,
        level: SecurityLevel,
    ) -> Result<CardManagerSession<Scp11Session<C>>, CardManagerError> {
        let card_key = scp11::card_key(&mut self.channel, card_ca, today)?;
        let session = scp11::open_scp11b(self.channel, &card_key, level)?;
        Ok(CardManagerSession {
            channel: session,
            fci: self.fci,
            targets_instance: false,
        })
    }

    /// GET STATUS: every registry entry in `scope`, following 6310 (P2 03) through every page.
    pub fn get_status(
        &mut self,
        scope: StatusScope,
    ) -> Result<Vec<RegistryEntry>, CardManagerError> {
        self.get_status_matching(scope, &[])
    }

    /// GET STATUS of the entries in `scope` whose AID begins with `aid_prefix`.
    pub fn get_status_matching(
        &mut self,
        scope: StatusScope,
        aid_prefix: &[u8],
    ) -> Result<Vec<RegistryEntry>, CardManagerError> {
        let mut entries = Vec::new();
        for page in 0..MAX_STATUS_PAGES {
            let command = CardManagerCommand::GetStatus {
                scope,
                next: page > 0,
                aid_prefix,
            };
            let (data, status) = self.send_for_status(&command)?;
            parse_status_page(&data, &mut entries).map_err(|_| CardManagerError::BadResponse {
                command: command.name(),
                reason: "not GET STATUS records (E3 { 4F AID, 9F70 state … })",
            })?;
            if status != StatusWord::MORE_DATA {
                return Ok(entries);
            }
        }
        Err(CardManagerError::BadResponse {
            command: "GET STATUS",
            reason: "more pages than any registry has (6310 without end)",
        })
    }

    /// The card's life cycle, as GET STATUS of the issuer security domain reports it.
    pub fn card_life_cycle(&mut self) -> Result<CardLifeCycle, CardManagerError> {
        let entries = self.get_status(StatusScope::IssuerSecurityDomain)?;
        entries
            .first()
            .and_then(|isd| CardLifeCycle::from_byte(isd.life_cycle))
            .ok_or(CardManagerError::BadResponse {
                command: "GET STATUS",
                reason: "no card life cycle in the issuer security domain's record",
            })
    }

    /// INSTALL [for install] and/or [for make selectable], as `request` says.
    pub fn install(&mut self, request: &InstallRequest<'_>) -> Result<(), CardManagerError> {
        // The card answers one byte (00): ask for it, as T=0 readers need.
        self.send(&CardManagerCommand::Install(*request), Some(NE))
            .map(drop)
    }

    /// INSTALL [for make selectable]: the installed instance `aid` becomes SELECTABLE with `privileges`
    /// (1 or 3 bytes).
    pub fn make_selectable(
        &mut self,
        aid: &[u8],
        privileges: &[u8],
    ) -> Result<(), CardManagerError> {
        self.install(&InstallRequest {
            install: false,
            make_selectable: true,
            load_file: &[],
            module: &[],
            application: aid,
            privileges,
            applet_parameters: &[],
        })
    }

    /// INSTALL [for personalization]: the STORE DATA that follow go to `aid`'s security domain, until the
    /// selection changes (or the session they were named in ends).
    pub fn install_for_personalization(&mut self, aid: &[u8]) -> Result<(), CardManagerError> {
        self.send(&CardManagerCommand::InstallForPersonalization { aid }, None)?;
        self.targets_instance = true;
        Ok(())
    }

    /// STORE DATA of one object into the card manager's security domain, or the instance named by
    /// [`Self::install_for_personalization`]; returns what the card answered (the public key, for
    /// [`DataObject::GenerateKey`]).
    pub fn store_data(&mut self, object: &DataObject<'_>) -> Result<Vec<u8>, CardManagerError> {
        let data = object.encode();
        self.send(&CardManagerCommand::StoreData { data: &data }, Some(NE))
    }

    /// STORE DATA DF23: the card generates the domain's new static key pair and answers its public key, which
    /// serves once a certificate for it follows ([`DataObject::Certificates`]).
    pub fn generate_key(&mut self) -> Result<PublicKeyBytes, CardManagerError> {
        let answer = self.store_data(&DataObject::GenerateKey)?;
        tlv::find(&answer, perso::TAG_PUBLIC_KEY)
            .ok()
            .flatten()
            .and_then(|key| PublicKeyBytes::try_from(key).ok())
            .ok_or(CardManagerError::BadResponse {
                command: "STORE DATA",
                reason: "no public key (B0 41 …) for the generated key",
            })
    }

    /// DELETE the instance `aid` (with its records and keys).
    pub fn delete(&mut self, aid: &[u8]) -> Result<(), CardManagerError> {
        // The card answers one byte (00), as for INSTALL.
        self.send(&CardManagerCommand::Delete { aid }, Some(NE))
            .map(drop)
    }

    /// SET STATUS of the card: its life cycle moves to `state` (forward only, SECURED ↔ CARD_LOCKED).
    pub fn set_card_state(&mut self, state: CardLifeCycle) -> Result<(), CardManagerError> {
        let command = CardManagerCommand::SetStatus {
            target: SetStatusTarget::Card,
            state: state as u8,
            aid: &[],
        };
        self.send(&command, None).map(drop)
    }

    /// SET STATUS of the application `aid`: an application-specific state, or (with the lock bit) locked.
    pub fn set_application_state(&mut self, aid: &[u8], state: u8) -> Result<(), CardManagerError> {
        let command = CardManagerCommand::SetStatus {
            target: SetStatusTarget::Application,
            state,
            aid,
        };
        self.send(&command, None).map(drop)
    }

    /// Personalizes a security domain: the card manager's own, or `personalization.instance`'s (INSTALL [for
    /// personalization] first). The card date, a key pair generated on the card, its certificate from the card
    /// CA, then the trust anchors; returns the domain's public key, PK.SD.ECKA. Plain before issuance, through
    /// an issuer session after.
    pub fn personalize(
        &mut self,
        personalization: &Personalization<'_>,
    ) -> Result<PublicKeyBytes, CardManagerError> {
        match personalization.instance {
            Some(aid) => self.install_for_personalization(aid)?,
            None if self.targets_instance => return Err(CardManagerError::TargetIsInstance),
            None => {}
        }
        self.store_data(&DataObject::CardDate(personalization.today))?;
        let public = self.generate_key()?;
        let certificate = personalization.card_authority.certify(
            personalization.subject,
            &public,
            None,
            personalization.today,
            personalization.expiration,
        )?;
        self.store_data(&DataObject::Certificates(&certificate))?;
        for anchor in personalization.anchors {
            self.store_data(&DataObject::TrustAnchor {
                id: &anchor.id,
                key: &anchor.key,
            })?;
        }
        Ok(public)
    }

    /// Sends a card-manager command (`ne`: the answer's expected length) and returns the answer's data; every
    /// status but 9000 is an error.
    fn send(
        &mut self,
        command: &CardManagerCommand<'_>,
        ne: Option<usize>,
    ) -> Result<Vec<u8>, CardManagerError> {
        let mut apdu = command.to_command();
        if let Some(ne) = ne {
            apdu = apdu.with_ne(ne);
        }
        self.run(command.name(), command.requirement(), &apdu)
    }

    /// GET STATUS, whose 6310 (more records follow) is an answer, not an error.
    fn send_for_status(
        &mut self,
        command: &CardManagerCommand<'_>,
    ) -> Result<(Vec<u8>, StatusWord), CardManagerError> {
        let more_or_done =
            |status: StatusWord| status.is_success() || status == StatusWord::MORE_DATA;
        self.run_accepting(
            command.name(),
            command.requirement(),
            &command.to_command(),
            more_or_done,
        )
    }

    /// Checks `requirement` against the channel, sends `apdu`, and returns the answer's data on 9000.
    fn run(
        &mut self,
        name: &'static str,
        requirement: Requirement,
        apdu: &Command,
    ) -> Result<Vec<u8>, CardManagerError> {
        self.run_accepting(name, requirement, apdu, StatusWord::is_success)
            .map(|(data, _)| data)
    }

    /// Checks `requirement` against the channel, sends `apdu`, and returns the answer when `accept` takes its
    /// status word; any other status is the card's refusal.
    fn run_accepting(
        &mut self,
        name: &'static str,
        requirement: Requirement,
        apdu: &Command,
        accept: impl Fn(StatusWord) -> bool,
    ) -> Result<(Vec<u8>, StatusWord), CardManagerError> {
        // What the command was sent through, for the error: a failed exchange may close the session.
        let security = self.channel.security();
        check_channel(name, requirement, security)?;
        let (data, status) = exchange(&mut self.channel, name, apdu)?;
        if accept(status) {
            Ok((data, status))
        } else {
            Err(CardManagerError::refusal(
                name,
                requirement,
                security,
                status,
            ))
        }
    }
}

/// Refuses, before sending, what the card would certainly refuse over this channel: a session without the
/// role or level (the card's 6982 would also end the session), or a plain command that is never plain. A plain
/// command allowed before issuance goes to the card, which knows its life cycle.
pub(crate) fn check_channel(
    command: &'static str,
    requirement: Requirement,
    security: Option<Security>,
) -> Result<(), CardManagerError> {
    let allowed = match security {
        // In a session the card's life cycle does not matter: the session must meet the role and level.
        Some(_) => requirement.check(security, false).is_ok(),
        None => requirement.plain != Plain::Refused,
    };
    if allowed {
        Ok(())
    } else {
        Err(CardManagerError::SecurityStatusNotSatisfied {
            command,
            requirement,
            channel: security,
            status: None,
        })
    }
}

/// SELECT of an applet `instance` on a plain channel, for the applets' sessions: refused through an open
/// secure channel (the card would end it), any answer but success a refusal.
pub(crate) fn select_applet<C: CardChannel>(
    channel: &mut C,
    instance: &[u8],
) -> Result<(), CardManagerError> {
    const COMMAND: &str = "SELECT";
    if channel.security().is_some() {
        return Err(CardManagerError::SelectInSession);
    }
    let (_, status) = exchange(channel, COMMAND, &Select::aid(instance).to_command())?;
    if !status.is_success() {
        return Err(CardManagerError::refusal(
            COMMAND,
            Requirement::NONE,
            None,
            status,
        ));
    }
    Ok(())
}

/// Verifies the selected security domain's certificates against `card_ca` as of `today` and opens an SCP11a
/// session as `oce`, for the applets' sessions.
pub(crate) fn open_scp11a_with<C: CardChannel>(
    mut channel: C,
    card_ca: &Issuer<'_>,
    today: Date,
    oce: &OceCredentials,
    level: SecurityLevel,
) -> Result<Scp11Session<C>, CardManagerError> {
    let card_key = scp11::card_key(&mut channel, card_ca, today)?;
    Ok(scp11::open_scp11a(channel, &card_key, oce, level, None)?)
}

/// Sends one command the way `channel` needs it and splits the answer. A secure channel gets the whole command
/// (it secures it, then chains it); a plain card manager takes no extended length, so long data goes as a chain
/// of short APDUs.
pub(crate) fn exchange<C: CardChannel + ?Sized>(
    channel: &mut C,
    name: &'static str,
    command: &Command,
) -> Result<(Vec<u8>, StatusWord), CardManagerError> {
    let encode = |source| CardManagerError::Encode {
        command: name,
        source,
    };
    let fragments = if channel.security().is_some() {
        vec![command.to_bytes().map_err(encode)?]
    } else {
        command.to_chain(SHORT_DATA).map_err(encode)?
    };
    let answer = send_apdus(channel, &fragments)?;
    let (data, status) = split_response(&answer)?;
    Ok((data.to_vec(), status))
}

/// Like [`exchange`], for a command sent as one extended-length APDU ([`CardChannel::transmit_extended`]).
pub(crate) fn exchange_extended<C: CardChannel + ?Sized>(
    channel: &mut C,
    name: &'static str,
    command: &Command,
) -> Result<(Vec<u8>, StatusWord), CardManagerError> {
    let apdu = command
        .to_extended()
        .map_err(|source| CardManagerError::Encode {
            command: name,
            source,
        })?;
    let answer = crate::t0::complete_t0_exchange(&apdu, |apdu| channel.transmit_extended(apdu))?;
    let (data, status) = split_response(&answer)?;
    Ok((data.to_vec(), status))
}

/// Appends the E3 records of one GET STATUS page.
fn parse_status_page(
    page: &[u8],
    entries: &mut Vec<RegistryEntry>,
) -> Result<(), tlv::MalformedTlv> {
    for record in tlv::iter(page) {
        let record = record?;
        if record.tag != 0xE3 {
            return Err(tlv::MalformedTlv);
        }
        entries.push(RegistryEntry::from_record(&StatusRecord::parse(
            record.value,
        )?)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use apdu_spec::scp11::cert::Role;

    use crate::scp11::Anchor;

    use super::*;

    /// One BER-TLV, for building card answers.
    fn tlv_bytes(tag: u16, value: &[u8]) -> Result<Vec<u8>, tlv::BufferFull> {
        let mut out = vec![0u8; value.len() + 5];
        let mut writer = tlv::Writer::new(&mut out);
        writer.tlv(tag, value)?;
        let len = writer.len();
        out.truncate(len);
        Ok(out)
    }

    const LOOPBACK_05: [u8; 7] = [0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF, 0x05];

    /// A card that expects exactly these commands, in order, and gives these answers; and claims the
    /// secure channel `security`.
    #[derive(Debug)]
    struct Scripted {
        exchanges: VecDeque<(Vec<u8>, Vec<u8>)>,
        security: Option<Security>,
    }

    impl Scripted {
        fn new(security: Option<Security>) -> Self {
            Self {
                exchanges: VecDeque::new(),
                security,
            }
        }

        /// Expects `command` (as the session encodes it for a plain card manager) and answers `answer`.
        fn expect(mut self, command: Command, answer: &[u8]) -> Self {
            let apdu = command.to_short().unwrap();
            self.exchanges.push_back((apdu, answer.to_vec()));
            self
        }

        fn expect_bytes(mut self, apdu: Vec<u8>, answer: &[u8]) -> Self {
            self.exchanges.push_back((apdu, answer.to_vec()));
            self
        }

        fn done(&self) {
            assert!(
                self.exchanges.is_empty(),
                "not sent: {:02X?}",
                self.exchanges
            );
        }
    }

    impl CardChannel for Scripted {
        fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
            let (expected, answer) = self
                .exchanges
                .pop_front()
                .unwrap_or_else(|| panic!("nothing more expected, got {apdu:02X?}"));
            assert_eq!(apdu, expected.as_slice());
            Ok(answer)
        }
        fn reset(&mut self) -> Result<Vec<u8>, ChannelError> {
            unreachable!("sessions do not reset the card")
        }
        fn power_off(&mut self) -> Result<(), ChannelError> {
            unreachable!("sessions do not power the card")
        }
        fn power_on(&mut self) -> Result<Vec<u8>, ChannelError> {
            unreachable!("sessions do not power the card")
        }
        fn describe(&self) -> String {
            "scripted card".into()
        }
        fn security(&self) -> Option<Security> {
            self.security
        }
    }

    const ISSUER_FULL: Security = Security {
        variant: Variant::A,
        level: SecurityLevel::FULL,
        role: Some(Role::Issuer),
    };

    fn get_status(next: bool) -> Command {
        CardManagerCommand::GetStatus {
            scope: StatusScope::Applications,
            next,
            aid_prefix: &[],
        }
        .to_command()
    }

    fn delete_05() -> Command {
        CardManagerCommand::Delete { aid: &LOOPBACK_05 }
            .to_command()
            .with_ne(NE)
    }

    /// `E3 { 4F <aid>, 9F70 <state>, C5 <privileges> }` as the card writes it.
    fn record(aid: &[u8], state: u8) -> Vec<u8> {
        let record = StatusRecord {
            aid,
            life_cycle: state,
            privileges: &[0x00, 0x00, 0x00],
            load_file: &[0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF],
            modules: &[],
        };
        let mut out = vec![0u8; record.encoded_len()];
        record.write(&mut tlv::Writer::new(&mut out)).unwrap();
        out
    }

    fn answer(data: &[u8], sw: [u8; 2]) -> Vec<u8> {
        [data, &sw].concat()
    }

    #[test]
    fn get_status_follows_6310_with_p2_03_until_9000() {
        let first = [
            record(&[0xF0, 1, 2, 3, 4], 0x07),
            record(&LOOPBACK_05, 0x0F),
        ]
        .concat();
        let second = record(&[0xF0, 9, 9, 9, 9], 0x83);
        let card = Scripted::new(None)
            .expect(get_status(false), &answer(&first, [0x63, 0x10]))
            .expect(get_status(true), &answer(&second, [0x90, 0x00]));
        let mut session = CardManagerSession::over_selected(card);
        let entries = session.get_status(StatusScope::Applications).unwrap();
        let listed: Vec<(&[u8], u8)> = entries
            .iter()
            .map(|e| (e.aid.as_slice(), e.life_cycle))
            .collect();
        assert_eq!(
            listed,
            [
                (&[0xF0, 1, 2, 3, 4][..], 0x07),
                (&LOOPBACK_05[..], 0x0F),
                (&[0xF0, 9, 9, 9, 9][..], 0x83)
            ]
        );
        assert_eq!(entries[0].privileges, [0, 0, 0]);
        assert_eq!(entries[0].load_file, [0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0xFF]);
        session.into_channel().done();
    }

    #[test]
    fn get_status_stops_a_card_that_never_ends_its_listing() {
        let mut card = Scripted::new(None).expect(get_status(false), &[0x63, 0x10]);
        for _ in 1..MAX_STATUS_PAGES {
            card = card.expect(get_status(true), &[0x63, 0x10]);
        }
        let mut session = CardManagerSession::over_selected(card);
        let error = session.get_status(StatusScope::Applications).unwrap_err();
        assert!(
            matches!(
                error,
                CardManagerError::BadResponse {
                    command: "GET STATUS",
                    ..
                }
            ),
            "{error}"
        );
        session.into_channel().done();
    }

    #[test]
    fn a_status_page_that_is_not_records_is_a_bad_response() {
        let card = Scripted::new(None).expect(get_status(false), &[0x4F, 0x01, 0x00, 0x90, 0x00]);
        let mut session = CardManagerSession::over_selected(card);
        let error = session.get_status(StatusScope::Applications).unwrap_err();
        assert!(
            matches!(error, CardManagerError::BadResponse { .. }),
            "{error}"
        );
        assert_eq!(error.status(), None);
    }

    #[test]
    fn status_words_map_to_errors_that_keep_them() {
        type IsExpected = fn(&CardManagerError) -> bool;
        let cases: [([u8; 2], IsExpected); 6] = [
            ([0x6A, 0x88], |e| {
                matches!(e, CardManagerError::NotFound { .. })
            }),
            ([0x6A, 0x82], |e| {
                matches!(e, CardManagerError::NotFound { .. })
            }),
            ([0x69, 0x85], |e| {
                matches!(e, CardManagerError::ConditionsNotSatisfied { .. })
            }),
            ([0x6A, 0x80], |e| {
                matches!(e, CardManagerError::WrongData { .. })
            }),
            ([0x6A, 0x84], |e| {
                matches!(e, CardManagerError::NotEnoughMemory { .. })
            }),
            ([0x6F, 0x00], |e| {
                matches!(e, CardManagerError::Refused { .. })
            }),
        ];
        for (sw, is_expected) in cases {
            let card = Scripted::new(None).expect(delete_05(), &sw);
            let error = CardManagerSession::over_selected(card)
                .delete(&LOOPBACK_05)
                .unwrap_err();
            assert!(is_expected(&error), "{sw:02X?}: {error:?}");
            assert_eq!(error.status(), Some(StatusWord::from_bytes(sw[0], sw[1])));
            assert!(error.to_string().starts_with("DELETE: "), "{error}");
        }
        let card = Scripted::new(None).expect(delete_05(), &[0x6A, 0x88]);
        let error = CardManagerSession::over_selected(card)
            .delete(&LOOPBACK_05)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "DELETE: not found (card answered 6A88 REFERENCED_DATA_NOT_FOUND)"
        );
    }

    #[test]
    fn a_plain_refusal_6982_says_which_session_the_command_needs() {
        let card = Scripted::new(None).expect(delete_05(), &[0x69, 0x82]);
        let error = CardManagerSession::over_selected(card)
            .delete(&LOOPBACK_05)
            .unwrap_err();
        let CardManagerError::SecurityStatusNotSatisfied {
            command,
            requirement,
            channel,
            status,
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(*command, "DELETE");
        assert_eq!(
            *requirement,
            CardManagerCommand::Delete { aid: &[] }.requirement()
        );
        assert_eq!((*channel, *status), (None, Some(StatusWord(0x6982))));
        assert_eq!(
            error.to_string(),
            "DELETE needs SCP11a, role issuer, C-MAC; plain before issuance; the channel is plain \
             (card answered 6982 SECURITY_STATUS_NOT_SATISFIED)"
        );
    }

    #[test]
    fn a_session_without_the_role_fails_before_sending_and_keeps_the_session() {
        let anonymous = Security {
            variant: Variant::B,
            level: SecurityLevel::FULL,
            role: None,
        };
        // Nothing scripted: any command sent would fail the test.
        let mut session = CardManagerSession::over_selected(Scripted::new(Some(anonymous)));
        let error = session.delete(&LOOPBACK_05).unwrap_err();
        assert!(
            matches!(
                error,
                CardManagerError::SecurityStatusNotSatisfied { status: None, .. }
            ),
            "{error:?}"
        );
        assert_eq!(error.status(), None);
        assert_eq!(
            error.to_string(),
            "DELETE needs SCP11a, role issuer, C-MAC; plain before issuance; the channel is an SCP11b \
             session without a role with C-MAC C-DEC R-MAC R-ENC (not sent)"
        );
    }

    #[test]
    fn a_static_key_needs_command_encryption_in_a_session() {
        let mac_only = Security {
            level: SecurityLevel::MAC,
            ..ISSUER_FULL
        };
        let mut session = CardManagerSession::over_selected(Scripted::new(Some(mac_only)));
        let error = session
            .store_data(&DataObject::StaticKey(&[0x11; 32]))
            .unwrap_err();
        assert!(
            error.to_string().starts_with(
                "STORE DATA DF20 (static key) needs SCP11a, role issuer, C-MAC, C-DEC;"
            )
        );
        assert!(
            error
                .to_string()
                .contains("as issuer with C-MAC (not sent)"),
            "{error}"
        );
    }

    #[test]
    fn a_command_that_is_never_plain_is_not_sent_plainly() {
        let requirement = Requirement::session(Role::Issuer, SecurityLevel::C_MAC);
        let error = check_channel("TEST", requirement, None).unwrap_err();
        assert!(
            matches!(
                error,
                CardManagerError::SecurityStatusNotSatisfied { status: None, .. }
            ),
            "{error:?}"
        );
        assert!(check_channel("TEST", requirement, Some(ISSUER_FULL)).is_ok());
        assert!(check_channel("TEST", Requirement::NONE, None).is_ok());
    }

    #[test]
    fn select_reads_the_fci_and_maps_its_refusals() {
        let select = Select::aid(aid::CARD_MANAGER.as_bytes()).to_command();
        let fci = [
            0x6F, 0x10, 0x84, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00, 0xA5, 0x04,
            0x9F, 0x65, 0x01, 0xFF,
        ];
        let card = Scripted::new(None).expect(select.clone(), &answer(&fci, [0x90, 0x00]));
        let session = CardManagerSession::select(card).unwrap();
        assert_eq!(
            session.fci(),
            Some(&Fci {
                aid: aid::CARD_MANAGER.as_bytes().to_vec(),
                max_command_data: Some(255),
                card_locked: false,
            })
        );
        let card = Scripted::new(None).expect(select.clone(), &answer(&fci, [0x62, 0x83]));
        let session = CardManagerSession::select(card).unwrap();
        assert!(session.fci().unwrap().card_locked);
        let card = Scripted::new(None).expect(select.clone(), &[0x6A, 0x82]);
        let error = CardManagerSession::select(card).unwrap_err();
        assert!(matches!(
            error,
            CardManagerError::NotFound {
                command: "SELECT",
                ..
            }
        ));
        let card = Scripted::new(None).expect(select, &[0x90, 0x00]);
        let error = CardManagerSession::select(card).unwrap_err();
        assert!(
            matches!(error, CardManagerError::BadResponse { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn select_through_an_open_session_is_refused_before_it_ends_it() {
        let error = CardManagerSession::select(Scripted::new(Some(ISSUER_FULL))).unwrap_err();
        assert!(
            matches!(error, CardManagerError::SelectInSession),
            "{error:?}"
        );
    }

    #[test]
    fn long_data_is_chained_when_plain_and_sent_whole_to_a_session() {
        let chain = [vec![0x7F; 200], vec![0x21; 150]];
        let chain = chain.concat();
        let object = DataObject::Certificates(&chain);
        let store = CardManagerCommand::StoreData {
            data: &object.encode(),
        }
        .to_command()
        .with_ne(NE);
        let pieces = store.to_chain(SHORT_DATA).unwrap();
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0][0], 0x90, "the chaining bit on the first piece");
        let card = Scripted::new(None)
            .expect_bytes(pieces[0].clone(), &[0x90, 0x00])
            .expect_bytes(pieces[1].clone(), &[0x90, 0x00]);
        let mut session = CardManagerSession::over_selected(card);
        session.store_data(&object).unwrap();
        session.into_channel().done();

        let card =
            Scripted::new(Some(ISSUER_FULL)).expect_bytes(store.to_bytes().unwrap(), &[0x90, 0x00]);
        let mut session = CardManagerSession::over_selected(card);
        session.store_data(&object).unwrap();
        session.into_channel().done();
    }

    #[test]
    fn a_refused_piece_of_a_chain_ends_it() {
        let chain = [vec![0x7F; 300]];
        let chain = chain.concat();
        let object = DataObject::Certificates(&chain);
        let store = CardManagerCommand::StoreData {
            data: &object.encode(),
        }
        .to_command()
        .with_ne(NE);
        let pieces = store.to_chain(SHORT_DATA).unwrap();
        let card = Scripted::new(None).expect_bytes(pieces[0].clone(), &[0x69, 0x82]);
        let mut session = CardManagerSession::over_selected(card);
        let error = session.store_data(&object).unwrap_err();
        assert_eq!(error.status(), Some(StatusWord(0x6982)));
        session.into_channel().done();
    }

    #[test]
    fn generate_key_answers_the_public_key() {
        let store = CardManagerCommand::StoreData {
            data: &DataObject::GenerateKey.encode(),
        }
        .to_command()
        .with_ne(NE);
        let key = [0x04; 65];
        let card = Scripted::new(None)
            .expect(
                store.clone(),
                &answer(
                    &tlv_bytes(perso::TAG_PUBLIC_KEY, &key).unwrap(),
                    [0x90, 0x00],
                ),
            )
            .expect(store, &[0x90, 0x00]);
        let mut session = CardManagerSession::over_selected(card);
        assert_eq!(session.generate_key().unwrap(), key);
        let error = session.generate_key().unwrap_err();
        assert!(
            matches!(error, CardManagerError::BadResponse { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn certificates_are_split_from_the_store() {
        let first = tlv_bytes(0x7F21, &[1, 2, 3]).unwrap();
        let second = tlv_bytes(0x7F21, &[4; 130]).unwrap();
        let store = tlv_bytes(
            scp::TAG_CERTIFICATE_STORE,
            &[first.clone(), second.clone()].concat(),
        )
        .unwrap();
        let get_data = HandshakeCommand::GetCertificates { key: None }.to_command();
        let card = Scripted::new(None)
            .expect(get_data.clone(), &answer(&store, [0x90, 0x00]))
            .expect(get_data, &answer(&[0x7F, 0x21, 0x05], [0x90, 0x00]));
        let mut session = CardManagerSession::over_selected(card);
        assert_eq!(session.certificates().unwrap(), [first, second]);
        assert!(matches!(
            session.certificates(),
            Err(CardManagerError::BadResponse { .. })
        ));
    }

    #[test]
    fn data_objects_encode_as_the_card_reads_them() {
        let anchor = Anchor {
            id: vec![0xCA; 20],
            key: [0x04; 65],
        };
        let encoded = DataObject::TrustAnchor {
            id: &anchor.id,
            key: &anchor.key,
        }
        .encode();
        let (outer, rest) = tlv::read(&encoded).unwrap();
        assert!(rest.is_empty());
        assert_eq!(outer.tag, perso::TAG_TRUST_ANCHOR);
        assert_eq!(
            tlv::find(outer.value, perso::TAG_ANCHOR_ID).unwrap(),
            Some(&[0xCA; 20][..])
        );
        assert_eq!(
            tlv::find(outer.value, perso::TAG_PUBLIC_KEY).unwrap(),
            Some(&[0x04; 65][..])
        );
        let date = Date::from_ymd(2026, 11, 24).unwrap();
        assert_eq!(
            DataObject::CardDate(date).encode(),
            [0xDF, 0x22, 0x04, 0x20, 0x26, 0x11, 0x24]
        );
        assert_eq!(DataObject::GenerateKey.encode(), [0xDF, 0x23, 0x00]);
        let key = DataObject::StaticKey(&[7; 32]).encode();
        assert_eq!((key[..3].to_vec(), key.len()), (vec![0xDF, 0x20, 0x20], 35));
    }
}
