//! The card manager: a GlobalPlatform Issuer Security Domain (GP Card Specification v2.3 §9, §11).
//!
//! | command | what it does | who ([`apdu_spec::gp::REQUIREMENTS`]) |
//! |---|---|---|
//! | SELECT | FCI `6F { 84 AID, A5 { 9F65 max length } }`; 6283 as a warning while CARD_LOCKED/TERMINATED | anyone |
//! | GET STATUS `80 F2 P1 02/03 {4F prefix}` | registry in GP TLV records (E3), P1 80 ISD / 40 applications / 20 load files / 10 load files and modules; 6310 when more follow (P2 03 continues) | anyone, not TERMINATED |
//! | INSTALL `80 E6 04/08/0C 00` | create an instance of a module built into the image / make it selectable; answers `00` | issuer |
//! | INSTALL `80 E6 20 00` | [for personalization]: the STORE DATA that follow on this channel go to that instance's security domain, until SELECT; if the session or a handshake on the channel ends first, STORE DATA answers 6985 until a new INSTALL or SELECT | issuer |
//! | STORE DATA `80 E2 P1 P2 {object}` | personalize a security domain: static key, certificate chain, trust anchors, card date ([`apdu_spec::scp11::personalization`]) | issuer (a static key: with C-DEC) |
//! | DELETE `80 E4 00 00/80 {4F AID}` | remove an instance not selected anywhere (and its records and keys); built-in load files cannot be deleted (6985); answers `00` | issuer |
//! | SET STATUS `80 F0 80/40 state` | card life cycle OP_READY → INITIALIZED → SECURED ↔ CARD_LOCKED → TERMINATED; application lock/unlock and application-specific states | issuer |
//!
//! "Issuer" is: before issuance (OP_READY, INITIALIZED) a plain command, or a command in an SCP11a session
//! whose OCE certificate has the issuer role; once issued (SECURED and later) only the latter. Anything else
//! is refused with 6982 (and a session that sent it is closed). The card manager is itself a security domain
//! once personalized: see [`crate::secure_channel`] for the handshake it then answers. Errors: 6A80 bad data
//! (AID length, duplicate AID, bad parameters), 6A84 registry full, 6A88 unknown load file, module or
//! instance, 6985 a transition GP forbids, 6E00 an interindustry CLA.
//!
//! **State.** [`CardManager`] keeps only its own: where an interrupted GET STATUS resumes, and where STORE
//! DATA goes on each channel. What it decides about the card (a new instance, a deletion, a life-cycle
//! change, data for a security domain) it returns as a [`Change`], which the runtime applies and persists.

use apdu_spec::gp::{
    self, CardLifeCycle, CardManagerCommand, InstallRequest, SetStatusTarget, StatusRecord,
    StatusScope, app_state,
};
use apdu_spec::scp11::Security;
use apdu_spec::{Aid, Class, CommandView, StatusWord, aid, tlv};
use heapless::Vec;

use crate::applet::Reply;
use crate::image::{AppletSet, Image};
use crate::layout::{CARD_MANAGER_SD, sd_owner};
use crate::registry::{Entry, Registry};

/// Largest GET STATUS answer before it continues with 6310 (one short response).
pub const STATUS_PAGE: usize = 256;

/// Where an interrupted GET STATUS listing resumes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct StatusCursor {
    scope: StatusScope,
    prefix: Vec<u8, 16>,
    next_index: usize,
}

/// Where STORE DATA goes on the channel an INSTALL [for personalization] was sent on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PersonalizationTarget {
    /// This instance's security domain.
    Instance(Aid),
    /// The session or handshake it was named in ended: STORE DATA is refused (6985) rather than quietly sent to
    /// the card manager, until SELECT or a new INSTALL [for personalization].
    Withdrawn,
}

/// The card manager's FCI: `6F 10 84 08 <ISD AID> A5 04 9F65 01 FF`.
const FCI: [u8; 18] = [
    0x6F, 0x10, 0x84, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00, 0xA5, 0x04, 0x9F, 0x65,
    0x01, 0xFF,
];

/// What the card manager reads of the card to decide a command.
pub(crate) struct CardView<'a, A> {
    pub(crate) life_cycle: CardLifeCycle,
    pub(crate) registry: &'a Registry<A>,
    /// Whether the instance at a registry index is selected on some channel.
    pub(crate) active: &'a dyn Fn(usize) -> bool,
}

/// A change of the card the card manager decided; the runtime applies it (and then writes the registry and
/// life cycle through to the store, except for [`Change::Personalize`]).
#[derive(Debug)]
pub(crate) enum Change<'a, A> {
    /// Add this new instance (its owner number's leftover records and transient memory are wiped first).
    Install(Entry<A>),
    /// The instance at `index` becomes SELECTABLE with `privileges`.
    MakeSelectable { index: usize, privileges: [u8; 3] },
    /// Remove the instance at `index` (selected nowhere), its records and its domain.
    Delete { index: usize },
    /// The card enters this life-cycle state; CARD_LOCKED and TERMINATED deselect every applet.
    LifeCycle(CardLifeCycle),
    /// The instance at `index` enters `state`; a lock deselects it everywhere.
    ApplicationState {
        index: usize,
        state: u8,
        locked: bool,
    },
    /// Store one personalization data object into the security domain `owner`.
    Personalize { owner: u8, data: &'a [u8] },
}

/// The card manager's own state.
#[derive(Debug, Default)]
pub(crate) struct CardManager {
    status_cursor: Option<StatusCursor>,
    /// The channel an INSTALL [for personalization] was sent on, and where its STORE DATA go.
    target: Option<(u8, PersonalizationTarget)>,
}

impl CardManager {
    pub(crate) const fn new() -> Self {
        Self {
            status_cursor: None,
            target: None,
        }
    }

    /// Reset or power loss.
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }

    /// The card manager was deselected on `channel`: its personalization target goes.
    pub(crate) fn deselected(&mut self, channel: u8) {
        if self.target.is_some_and(|(on, _)| on == channel) {
            self.target = None;
        }
    }

    /// The session (or handshake) on `channel` ended: an INSTALL [for personalization] made inside it no
    /// longer holds.
    pub(crate) fn session_ended(&mut self, channel: u8) {
        if let Some((on, target)) = &mut self.target
            && *on == channel
        {
            *target = PersonalizationTarget::Withdrawn;
        }
    }

    /// SELECT: the FCI unless P2 asks for none.
    pub(crate) fn select(
        &self,
        life_cycle: CardLifeCycle,
        fci: bool,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        if fci {
            reply.push(&FCI)?;
        }
        match life_cycle {
            CardLifeCycle::CardLocked | CardLifeCycle::Terminated => {
                Err(StatusWord::SELECTED_FILE_INVALIDATED)
            }
            _ => Ok(()),
        }
    }

    /// Decides one command; what it changes of the card comes back for the runtime to apply.
    pub(crate) fn process<'c, I: Image>(
        &mut self,
        card: CardView<'_, I::Applet>,
        class: Class,
        command: &CommandView<'c>,
        reply: &mut Reply<'_>,
        security: Option<Security>,
    ) -> Result<Option<Change<'c, I::Applet>>, StatusWord> {
        if !class.proprietary() {
            return Err(StatusWord::CLA_NOT_SUPPORTED);
        }
        let request = CardManagerCommand::try_from(command)?;
        if card.life_cycle == CardLifeCycle::Terminated {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        request
            .requirement()
            .check(security, card.life_cycle.pre_issuance())?;
        if let CardManagerCommand::GetStatus {
            scope,
            next,
            aid_prefix,
        } = request
        {
            self.get_status::<I>(&card, scope, next, aid_prefix, reply)?;
            return Ok(None);
        }
        self.status_cursor = None;
        let channel = class.channel();
        let change = match request {
            CardManagerCommand::StoreData { data } => Change::Personalize {
                owner: self.store_data_owner(&card, channel)?,
                data,
            },
            CardManagerCommand::InstallForPersonalization { aid } => {
                let index = card
                    .registry
                    .position(aid)
                    .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
                self.target = card
                    .registry
                    .get(index)
                    .map(|e| (channel, PersonalizationTarget::Instance(e.aid)));
                return Ok(None);
            }
            CardManagerCommand::Install(install) => install_change::<I>(&card, install, reply)?,
            CardManagerCommand::Delete { aid } => delete_change::<I>(&card, aid, reply)?,
            CardManagerCommand::SetStatus {
                target: SetStatusTarget::Card,
                state,
                ..
            } => card_state_change(card.life_cycle, state)?,
            CardManagerCommand::SetStatus {
                target: SetStatusTarget::Application,
                state,
                aid,
            } => application_state_change(card.registry, aid, state)?,
            CardManagerCommand::GetStatus { .. } => return Err(StatusWord::UNKNOWN),
        };
        Ok(Some(change))
    }

    /// The security domain STORE DATA on `channel` personalizes: the card manager's own, or the one an INSTALL
    /// [for personalization] named there.
    fn store_data_owner<A>(&self, card: &CardView<'_, A>, channel: u8) -> Result<u8, StatusWord> {
        match self.target {
            Some((on, PersonalizationTarget::Instance(target))) if on == channel => card
                .registry
                .position(target.as_bytes())
                .and_then(|i| card.registry.get(i))
                .map(|e| sd_owner(e.owner))
                .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND),
            Some((on, PersonalizationTarget::Withdrawn)) if on == channel => {
                Err(StatusWord::CONDITIONS_NOT_SATISFIED)
            }
            _ => Ok(CARD_MANAGER_SD),
        }
    }

    fn get_status<I: Image>(
        &mut self,
        card: &CardView<'_, I::Applet>,
        scope: StatusScope,
        next: bool,
        prefix: &[u8],
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        let prefix_vec = Vec::<u8, 16>::from_slice(prefix).map_err(|_| StatusWord::WRONG_DATA)?;
        let start = if next {
            match self.status_cursor.take() {
                Some(c) if c.scope == scope && c.prefix == prefix_vec => c.next_index,
                _ => return Err(StatusWord::CONDITIONS_NOT_SATISFIED),
            }
        } else {
            self.status_cursor = None;
            0
        };
        let (written, more_from, found) = write_status_page::<I>(card, scope, start, prefix, reply);
        reply.advance(written)?;
        if let Some(next_index) = more_from {
            self.status_cursor = Some(StatusCursor {
                scope,
                prefix: prefix_vec,
                next_index,
            });
            return Err(StatusWord::MORE_DATA);
        }
        if !found && start == 0 {
            return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
        }
        Ok(())
    }
}

/// Writes the GET STATUS records of `scope` from `start` that fit one page into the reply's spare room: the
/// bytes written, the index to continue from when the page is full, and whether any record matched.
fn write_status_page<I: Image>(
    card: &CardView<'_, I::Applet>,
    scope: StatusScope,
    start: usize,
    prefix: &[u8],
    reply: &mut Reply<'_>,
) -> (usize, Option<usize>, bool) {
    let page_len = reply.remaining().min(STATUS_PAGE);
    let spare = reply.spare();
    let mut page = tlv::Writer::new(spare.get_mut(..page_len).unwrap_or(&mut []));
    let mut found = false;
    for index in start..status_record_count::<I>(card, scope) {
        match write_status_record::<I>(card, scope, index, prefix, &mut page) {
            Ok(Some(())) => found = true,
            Ok(None) => {}
            // The record did not fit: its partial bytes are dropped and it comes first next time.
            Err(tlv::BufferFull) => {
                return (last_complete_record_end(page.written()), Some(index), found);
            }
        }
    }
    (page.len(), None, found)
}

fn aid_in_use<I: Image>(registry: &Registry<I::Applet>, candidate: &Aid) -> bool {
    *candidate == aid::CARD_MANAGER
        || registry.position(candidate.as_bytes()).is_some()
        || I::Applet::LOAD_FILES
            .iter()
            .any(|lf| lf.aid == *candidate || lf.modules.contains(candidate))
}

fn install_change<'c, I: Image>(
    card: &CardView<'_, I::Applet>,
    request: InstallRequest<'_>,
    reply: &mut Reply<'_>,
) -> Result<Change<'c, I::Applet>, StatusWord> {
    let application = Aid::new(request.application).map_err(|_| StatusWord::WRONG_DATA)?;
    let privileges = match request.privileges {
        [a] => [*a, 0, 0],
        [a, b, c] => [*a, *b, *c],
        _ => return Err(StatusWord::WRONG_DATA),
    };
    if privileges[0] & gp::privileges::SECURITY_DOMAIN != 0 {
        return Err(StatusWord::WRONG_DATA); // no supplementary security domains on this card
    }
    let change = if request.install {
        Change::Install(new_instance::<I>(card, &request, application, privileges)?)
    } else {
        let index = card
            .registry
            .position(application.as_bytes())
            .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        let entry = card
            .registry
            .get(index)
            .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        if entry.state != app_state::INSTALLED {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        Change::MakeSelectable { index, privileges }
    };
    reply.push(&[0x00])?;
    Ok(change)
}

/// INSTALL [for install]: a new instance of a module the image carries.
fn new_instance<I: Image>(
    card: &CardView<'_, I::Applet>,
    request: &InstallRequest<'_>,
    application: Aid,
    privileges: [u8; 3],
) -> Result<Entry<I::Applet>, StatusWord> {
    let load_file = I::Applet::LOAD_FILES
        .iter()
        .find(|lf| lf.aid.as_bytes() == request.load_file)
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    let module = load_file
        .modules
        .iter()
        .find(|m| m.as_bytes() == request.module)
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    if aid_in_use::<I>(card.registry, &application) {
        return Err(StatusWord::WRONG_DATA);
    }
    let applet = I::Applet::instantiate(module, &application, request.applet_parameters)?;
    let parameters =
        Vec::from_slice(request.applet_parameters).map_err(|_| StatusWord::WRONG_DATA)?; // longer than this card keeps
    Ok(Entry {
        aid: application,
        load_file: load_file.aid,
        module: *module,
        parameters,
        state: if request.make_selectable {
            app_state::SELECTABLE
        } else {
            app_state::INSTALLED
        },
        privileges,
        owner: card.registry.free_owner(),
        applet,
    })
}

fn delete_change<'c, I: Image>(
    card: &CardView<'_, I::Applet>,
    target: &[u8],
    reply: &mut Reply<'_>,
) -> Result<Change<'c, I::Applet>, StatusWord> {
    if target == aid::CARD_MANAGER.as_bytes()
        || I::Applet::LOAD_FILES
            .iter()
            .any(|lf| lf.aid.as_bytes() == target)
    {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    let index = card
        .registry
        .position(target)
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    if (card.active)(index) {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    reply.push(&[0x00])?;
    Ok(Change::Delete { index })
}

fn card_state_change<'c, A>(
    current: CardLifeCycle,
    state: u8,
) -> Result<Change<'c, A>, StatusWord> {
    let next = CardLifeCycle::from_byte(state).ok_or(StatusWord::WRONG_DATA)?;
    if !current.can_become(next) {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
    }
    Ok(Change::LifeCycle(next))
}

fn application_state_change<'c, A>(
    registry: &Registry<A>,
    target: &[u8],
    state: u8,
) -> Result<Change<'c, A>, StatusWord> {
    let index = registry
        .position(target)
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
    let current = registry
        .get(index)
        .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?
        .state;
    let (state, locked) = if app_state::is_locked(state) {
        (current | app_state::LOCKED_BIT, true)
    } else if app_state::is_locked(current) {
        let previous = current & !app_state::LOCKED_BIT;
        if state != 0 && state != previous {
            return Err(StatusWord::WRONG_DATA);
        }
        (previous, false)
    } else if app_state::is_application_specific(state) {
        if current == app_state::INSTALLED {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        (state, false)
    } else {
        return Err(StatusWord::WRONG_DATA);
    };
    Ok(Change::ApplicationState {
        index,
        state,
        locked,
    })
}

fn status_record_count<I: Image>(card: &CardView<'_, I::Applet>, scope: StatusScope) -> usize {
    match scope {
        StatusScope::IssuerSecurityDomain => 1,
        StatusScope::Applications => card.registry.len(),
        StatusScope::LoadFiles | StatusScope::LoadFilesAndModules => I::Applet::LOAD_FILES.len(),
    }
}

/// Writes record `index` of `scope` if its AID matches `prefix`; `Ok(None)` when it does not match.
fn write_status_record<I: Image>(
    card: &CardView<'_, I::Applet>,
    scope: StatusScope,
    index: usize,
    prefix: &[u8],
    page: &mut tlv::Writer<'_>,
) -> Result<Option<()>, tlv::BufferFull> {
    let mut modules_buf = [0u8; 8 * (2 + aid::MAX_LEN)];
    let record = match scope {
        StatusScope::IssuerSecurityDomain => StatusRecord {
            aid: aid::CARD_MANAGER.as_bytes(),
            life_cycle: card.life_cycle as u8,
            privileges: &gp::privileges::ISSUER_SECURITY_DOMAIN,
            load_file: &[],
            modules: &[],
        },
        StatusScope::Applications => {
            let Some(e) = card.registry.get(index) else {
                return Ok(None);
            };
            StatusRecord {
                aid: e.aid.as_bytes(),
                life_cycle: e.state,
                privileges: &e.privileges,
                load_file: e.load_file.as_bytes(),
                modules: &[],
            }
        }
        StatusScope::LoadFiles | StatusScope::LoadFilesAndModules => {
            let Some(lf) = I::Applet::LOAD_FILES.get(index) else {
                return Ok(None);
            };
            let mut modules = tlv::Writer::new(&mut modules_buf);
            if scope == StatusScope::LoadFilesAndModules {
                for m in lf.modules {
                    modules.tlv(0x84, m.as_bytes())?;
                }
            }
            let modules_len = modules.len();
            StatusRecord {
                aid: lf.aid.as_bytes(),
                life_cycle: gp::LOAD_FILE_LOADED,
                privileges: &[],
                load_file: &[],
                modules: modules_buf.get(..modules_len).unwrap_or(&[]),
            }
        }
    };
    if !record.aid.starts_with(prefix) {
        return Ok(None);
    }
    record.write(page).map(Some)
}

/// Length of the longest prefix of `bytes` made of complete E3 records (a record cut by a full page is dropped).
fn last_complete_record_end(bytes: &[u8]) -> usize {
    let mut rest = bytes;
    while let Ok((_, next)) = tlv::read(rest) {
        rest = next;
    }
    bytes.len() - rest.len()
}
