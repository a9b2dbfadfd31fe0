//! The card manager: a GlobalPlatform Issuer Security Domain (GP Card Specification v2.3 §9, §11).
//!
//! | command | what it does | when |
//! |---|---|---|
//! | SELECT | FCI `6F { 84 AID, A5 { 9F65 max length } }`; 6283 as a warning while CARD_LOCKED/TERMINATED | always |
//! | GET STATUS `80 F2 P1 02/03 {4F prefix}` | registry in GP TLV records (E3), P1 80 ISD / 40 applications / 20 load files / 10 load files and modules; 6310 when more follow (P2 03 continues) | not TERMINATED |
//! | INSTALL `80 E6 04/08/0C 00` | create an instance of a module built into the image / make it selectable; answers `00` | issuer |
//! | INSTALL `80 E6 20 00` | [for personalization]: the STORE DATA that follow on this channel go to that instance's security domain, until SELECT; if the session or a handshake on the channel ends first, STORE DATA answers 6985 until a new INSTALL or SELECT | issuer |
//! | STORE DATA `80 E2 P1 P2 {object}` | personalize a security domain: static key, certificate chain, trust anchors, card date ([`apdu_spec::scp11::personalization`]) | issuer |
//! | DELETE `80 E4 00 00/80 {4F AID}` | remove an instance not selected anywhere (and its records and keys); built-in load files cannot be deleted (6985); answers `00` | issuer |
//! | SET STATUS `80 F0 80/40 state` | card life cycle OP_READY → INITIALIZED → SECURED ↔ CARD_LOCKED → TERMINATED; application lock/unlock and application-specific states | issuer |
//!
//! "Issuer" is: before issuance (OP_READY, INITIALIZED) a plain command, or a command in an SCP11a session
//! whose OCE certificate has the issuer role; once issued (SECURED and later) only the latter. Anything else
//! is refused with 6982 (and a session that sent it is closed). The card manager is itself a security domain
//! once personalized: see [`crate::secure_channel`] for the handshake it then answers. Errors: 6A80 bad data
//! (AID length, duplicate AID, bad parameters), 6A84 registry full, 6A88 unknown load file, module or
//! instance, 6985 a transition GP forbids, 6E00 an interindustry CLA.

use apdu_spec::gp::{
    self, CardLifeCycle, CardManagerCommand, InstallRequest, SetStatusTarget, StatusRecord,
    StatusScope, app_state,
};
use apdu_spec::{Aid, Class, CommandView, StatusWord, aid, tlv};
use heapless::Vec;

use crate::applet::Reply;
use crate::image::Image;
use crate::registry::Entry;
use crate::runtime::{PersonalizationTarget, Runtime};
use crate::secure_channel::{CARD_MANAGER_SD, Security, sd_owner};
use apdu_spec::scp11::cert::Role;

/// Largest GET STATUS answer before it continues with 6310 (one short response).
pub const STATUS_PAGE: usize = 256;

/// Where an interrupted GET STATUS listing resumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StatusCursor {
    scope: StatusScope,
    prefix: Vec<u8, 16>,
    next_index: usize,
}

/// The card manager's FCI: `6F 10 84 08 <ISD AID> A5 04 9F65 01 FF`.
const FCI: [u8; 18] = [
    0x6F, 0x10, 0x84, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00, 0xA5, 0x04, 0x9F, 0x65,
    0x01, 0xFF,
];

impl<I: Image, N: crate::nvm::Nvm> Runtime<I, N> {
    pub(crate) fn card_manager_select(
        &mut self,
        command: &CommandView<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        if command.p2() & 0x0C != 0x0C {
            reply.push(&FCI)?;
        }
        match self.life_cycle {
            CardLifeCycle::CardLocked | CardLifeCycle::Terminated => {
                Err(StatusWord::SELECTED_FILE_INVALIDATED)
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn card_manager(
        &mut self,
        class: Class,
        command: &CommandView<'_>,
        reply: &mut Reply<'_>,
        security: Option<Security>,
    ) -> Result<(), StatusWord> {
        if !class.proprietary() {
            return Err(StatusWord::CLA_NOT_SUPPORTED);
        }
        let request = CardManagerCommand::try_from(command)?;
        if self.life_cycle == CardLifeCycle::Terminated {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        if let CardManagerCommand::GetStatus {
            scope,
            next,
            aid_prefix,
        } = request
        {
            return self.get_status(scope, next, aid_prefix, reply);
        }
        // Content management and personalization: before issuance anyone (the factory) may, in a session only
        // the issuer; once issued, only an SCP11a session whose OCE certificate has the issuer role.
        let authorized = match security {
            Some(security) => security.has_role(Role::Issuer),
            None => self.life_cycle.pre_issuance(),
        };
        if !authorized {
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        self.status_cursor = None;
        let result = match request {
            CardManagerCommand::StoreData { data } => {
                let owner = match self.personalization_target {
                    Some((on, PersonalizationTarget::Instance(target)))
                        if on == class.channel() =>
                    {
                        self.registry
                            .position(target.as_bytes())
                            .and_then(|i| self.registry.get(i))
                            .map(|e| sd_owner(e.owner))
                            .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?
                    }
                    Some((on, PersonalizationTarget::Withdrawn)) if on == class.channel() => {
                        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
                    }
                    _ => CARD_MANAGER_SD,
                };
                return self.personalize(owner, data, reply, security);
            }
            CardManagerCommand::InstallForPersonalization { aid } => {
                let index = self
                    .registry
                    .position(aid)
                    .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
                self.personalization_target = self
                    .registry
                    .get(index)
                    .map(|e| (class.channel(), PersonalizationTarget::Instance(e.aid)));
                return Ok(());
            }
            CardManagerCommand::Install(install) => self.install(install, reply),
            CardManagerCommand::Delete { aid, .. } => self.delete(aid, reply),
            CardManagerCommand::SetStatus {
                target: SetStatusTarget::Card,
                state,
                ..
            } => self.set_card_state(state),
            CardManagerCommand::SetStatus {
                target: SetStatusTarget::Application,
                state,
                aid,
            } => self.set_application_state(aid, state),
            CardManagerCommand::GetStatus { .. } => Err(StatusWord::UNKNOWN),
        };
        // Every successful change of the registry or the life cycle is written through to the store.
        result?;
        self.persist_registry()
    }

    fn aid_in_use(&self, candidate: &Aid) -> bool {
        *candidate == aid::CARD_MANAGER
            || self.registry.position(candidate.as_bytes()).is_some()
            || I::LOAD_FILES
                .iter()
                .any(|lf| lf.aid == *candidate || lf.modules.contains(candidate))
    }

    fn install(
        &mut self,
        request: InstallRequest<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        let application = Aid::new(request.application).map_err(|_| StatusWord::WRONG_DATA)?;
        let privileges = match request.privileges {
            [a] => [*a, 0, 0],
            [a, b, c] => [*a, *b, *c],
            _ => return Err(StatusWord::WRONG_DATA),
        };
        if privileges[0] & gp::privileges::SECURITY_DOMAIN != 0 {
            return Err(StatusWord::WRONG_DATA); // no supplementary security domains on this card
        }
        if request.install {
            let load_file = I::LOAD_FILES
                .iter()
                .find(|lf| lf.aid.as_bytes() == request.load_file)
                .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
            let module = load_file
                .modules
                .iter()
                .find(|m| m.as_bytes() == request.module)
                .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
            if self.aid_in_use(&application) {
                return Err(StatusWord::WRONG_DATA);
            }
            let applet = I::instantiate(module, &application, request.applet_parameters)?;
            let state = if request.make_selectable {
                app_state::SELECTABLE
            } else {
                app_state::INSTALLED
            };
            let parameters = heapless::Vec::from_slice(request.applet_parameters)
                .map_err(|_| StatusWord::WRONG_DATA)?; // longer than this card keeps
            let owner = self.registry.free_owner();
            // Records a torn DELETE may have left under this owner number are not the new instance's.
            if let Some(store) = self.store.as_mut() {
                for records in [owner, sd_owner(owner)] {
                    crate::runtime::RECORDS
                        .remove_all(store, records)
                        .map_err(StatusWord::from)?;
                }
            }
            self.transient.forget(owner);
            self.registry.add(Entry {
                aid: application,
                load_file: load_file.aid,
                module: *module,
                parameters,
                state,
                privileges,
                owner,
                applet,
            })?;
        } else {
            let index = self
                .registry
                .position(application.as_bytes())
                .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
            let entry = self
                .registry
                .get_mut(index)
                .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
            if entry.state != app_state::INSTALLED {
                return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
            }
            entry.state = app_state::SELECTABLE;
            entry.privileges = privileges;
        }
        reply.push(&[0x00])
    }

    fn delete(&mut self, target: &[u8], reply: &mut Reply<'_>) -> Result<(), StatusWord> {
        if target == aid::CARD_MANAGER.as_bytes()
            || I::LOAD_FILES.iter().any(|lf| lf.aid.as_bytes() == target)
        {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let index = self
            .registry
            .position(target)
            .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        if self.is_selected_anywhere(index) {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        if let Some(removed) = self.registry.remove(index)
            && let Some(store) = self.store.as_mut()
        {
            // The instance is gone either way; its records are freed now, or at the next INSTALL after a tear.
            let _ = crate::runtime::RECORDS.remove_all(store, removed.owner);
            let _ = crate::runtime::RECORDS.remove_all(store, sd_owner(removed.owner));
        }
        self.forget_index(index);
        reply.push(&[0x00])
    }

    fn set_card_state(&mut self, state: u8) -> Result<(), StatusWord> {
        let next = CardLifeCycle::from_byte(state).ok_or(StatusWord::WRONG_DATA)?;
        if !self.life_cycle.can_become(next) {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        self.life_cycle = next;
        if matches!(next, CardLifeCycle::CardLocked | CardLifeCycle::Terminated) {
            self.deselect_where(|_| true);
        }
        Ok(())
    }

    fn set_application_state(&mut self, target: &[u8], state: u8) -> Result<(), StatusWord> {
        let index = self
            .registry
            .position(target)
            .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        let entry = self
            .registry
            .get_mut(index)
            .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        let current = entry.state;
        if app_state::is_locked(state) {
            entry.state = current | app_state::LOCKED_BIT;
            self.deselect_where(|i| i == index);
        } else if app_state::is_locked(current) {
            let previous = current & !app_state::LOCKED_BIT;
            if state != 0 && state != previous {
                return Err(StatusWord::WRONG_DATA);
            }
            entry.state = previous;
        } else if app_state::is_application_specific(state) {
            if current == app_state::INSTALLED {
                return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
            }
            entry.state = state;
        } else {
            return Err(StatusWord::WRONG_DATA);
        }
        Ok(())
    }

    fn status_record_count(&self, scope: StatusScope) -> usize {
        match scope {
            StatusScope::IssuerSecurityDomain => 1,
            StatusScope::Applications => self.registry.len(),
            StatusScope::LoadFiles | StatusScope::LoadFilesAndModules => I::LOAD_FILES.len(),
        }
    }

    /// Writes record `index` of `scope` if its AID matches `prefix`; `Ok(None)` when it does not match.
    fn write_status_record(
        &self,
        scope: StatusScope,
        index: usize,
        prefix: &[u8],
        page: &mut tlv::Writer<'_>,
    ) -> Result<Option<()>, tlv::BufferFull> {
        let mut modules_buf = [0u8; 8 * (2 + aid::MAX_LEN)];
        let record = match scope {
            StatusScope::IssuerSecurityDomain => StatusRecord {
                aid: aid::CARD_MANAGER.as_bytes(),
                life_cycle: self.life_cycle as u8,
                privileges: &gp::privileges::ISSUER_SECURITY_DOMAIN,
                load_file: &[],
                modules: &[],
            },
            StatusScope::Applications => {
                let Some(e) = self.registry.get(index) else {
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
                let Some(lf) = I::LOAD_FILES.get(index) else {
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

    fn get_status(
        &mut self,
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
        let page_len = reply.remaining().min(STATUS_PAGE);
        let spare = reply.spare();
        let mut page = tlv::Writer::new(spare.get_mut(..page_len).unwrap_or(&mut []));
        let mut found = false;
        let mut more_from = None;
        for index in start..self.status_record_count(scope) {
            match self.write_status_record(scope, index, prefix, &mut page) {
                Ok(Some(())) => found = true,
                Ok(None) => {}
                Err(tlv::BufferFull) => {
                    // The record did not fit: its partial bytes are dropped below and it comes first next time.
                    more_from = Some(index);
                    break;
                }
            }
        }
        let written = match more_from {
            Some(_) => last_complete_record_end(page.written()),
            None => page.len(),
        };
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

/// Length of the longest prefix of `bytes` made of complete E3 records (a record cut by a full page is dropped).
fn last_complete_record_end(bytes: &[u8]) -> usize {
    let mut rest = bytes;
    while let Ok((_, next)) = tlv::read(rest) {
        rest = next;
    }
    bytes.len() - rest.len()
}
