//! Routing inside the card: logical channels, SELECT and MANAGE CHANNEL ([`channels`]), and dispatch to the
//! selected applet or the card manager (JCRE 3 §4, ISO 7816-4 §7.1.1 and §7.1.2).
//!
//! * **SELECT by AID** (`00 A4 04 P2`, data = full or partial AID): candidates are the card manager and then the
//!   selectable instances in installation order. P2 `00` takes the first match, P2 `02` the next one after the
//!   applet currently selected on the channel; P2 `0C`/`0E` ask for no FCI. No match: 6A82 and the channel keeps
//!   its applet. The old applet is deselected before the new one's `select` runs; if that refuses, 6999 and
//!   the channel has no applet selected (commands then get 6999 until a SELECT succeeds). No data selects the
//!   card manager. A non-multi-selectable applet already active on another channel: 6985, nothing changes.
//!   SELECT by file (P1 `00`-`03`, `08`, `09`) goes to the selected application; any other P1 is 6A86.
//! * **MANAGE CHANNEL** open (`P1 00`, P2 `00` = lowest free channel, returned as one data byte, or P2 = 1-19)
//!   and close (`P1 80`, P2 = channel, or `00` for the CLA's channel). A channel opened from the basic channel
//!   gets the default applet; one opened from channel *k* gets *k*'s applet. Closed or nonexistent channel: 6881;
//!   none free: 6A81; closing the basic channel: 6A86.
//! * The default applet on the basic channel after reset is the first selectable instance holding the GP Card
//!   Reset privilege, else the card manager. While the card is CARD_LOCKED or TERMINATED only the card manager can
//!   be selected.
//!
//! **One writer.** [`Runtime`] alone changes the runtime's state. The card manager and the secure channel keep
//! their own ([`CardManager`], [`SecureChannel`]) and tell the runtime what else must change: a [`Change`] of
//! the registry or life cycle, a session [`Scope`] that ended. [`Runtime::apply`] and [`Runtime::end_session`]
//! are where those land.

mod channels;
mod environment;

use apdu_spec::gp::{CardLifeCycle, app_state};
use apdu_spec::iso::{ManageChannel, Select};
use apdu_spec::scp11::{HandshakeCommand, Security};
use apdu_spec::{Class, CommandView, StatusWord, ins};

use crate::applet::{Applet, Context, Reply};
use crate::card_manager::{CardManager, CardView, Change};
use crate::image::{AppletSet, Image};
use crate::layout::{CARD_MANAGER_SD, CardStore, RECORDS, sd_owner};
use crate::nvm::Nvm;
use crate::persistence;
use crate::registry::{Entry, Registry};
use crate::secure_channel::{self, Outcome, Scope, SecureChannel};
use crate::store::StoreAccess;
use crate::transient::{ClearOn, TransientPool};
pub use channels::CHANNELS;
use channels::{Channel, Selected};
use environment::{Lent, Peers};

/// Everything the card keeps between commands except the APDU buffers.
pub(crate) struct Runtime<I: Image, N> {
    life_cycle: CardLifeCycle,
    registry: Registry<I::Applet>,
    channels: [Channel; CHANNELS],
    /// `None` only if the store could not be opened: record operations then fail with 6581.
    store: Option<CardStore<N>>,
    transient: TransientPool,
    secure: SecureChannel,
    manager: CardManager,
}

impl<I: Image, N: Nvm> Runtime<I, N> {
    /// A runtime with no memory and no instance yet: [`Self::mount`] gives it its memory. A constant, so that
    /// a card can be built in a `static`, in place.
    pub(crate) const fn unmounted() -> Self {
        Self {
            life_cycle: CardLifeCycle::OpReady,
            registry: Registry::new(),
            channels: [Channel {
                open: false,
                selected: None,
            }; CHANNELS],
            store: None,
            transient: TransientPool::new(),
            secure: SecureChannel::new(),
            manager: CardManager::new(),
        }
    }

    /// Opens the store on `nvm` (recovering a transaction a power loss interrupted) and loads the life cycle and
    /// the registry from it; a new memory gets the factory registry.
    pub(crate) fn mount(&mut self, nvm: N) {
        // In place: the store's page images and the registry are kilobytes a small stack should not carry.
        let store = CardStore::open_in(&mut self.store, nvm).ok();
        let loaded =
            store.and_then(|s| persistence::load::<I>(s as &dyn StoreAccess, &mut self.registry));
        if let Some(life_cycle) = loaded {
            self.life_cycle = life_cycle;
            return;
        }
        self.life_cycle = CardLifeCycle::OpReady;
        factory_registry::<I>(&mut self.registry);
        // A card whose store failed still works, without persistence (record commands answer 6581); a write
        // torn by power loss is written again at the next change.
        self.persist().ok();
    }

    /// The card life cycle state.
    pub(crate) fn life_cycle(&self) -> CardLifeCycle {
        self.life_cycle
    }

    /// Installed instances.
    pub(crate) fn instance_count(&self) -> usize {
        self.registry.len()
    }

    /// The card's secure channels (seeding, counters).
    pub(crate) fn secure_channel(&mut self) -> &mut SecureChannel {
        &mut self.secure
    }

    /// EC scalar multiplications the secure channel has performed.
    pub(crate) fn scalar_multiplications(&self) -> u32 {
        self.secure.scalar_multiplications()
    }

    /// The memory, once the card is gone.
    pub(crate) fn into_nvm(self) -> Option<N> {
        self.store.map(crate::store::Store::into_nvm)
    }

    /// Power loss or reset: every channel but the basic one closes, sessions end, transient memory is cleared
    /// and every applet is created anew from its install parameters (its fields are volatile state), then the
    /// default applet is selected on the basic channel.
    pub(crate) fn reset(&mut self) {
        self.channels = [Channel::default(); CHANNELS];
        self.manager.reset();
        self.secure.reset();
        self.transient.reset();
        for index in 0..self.registry.len() {
            self.recreate(index);
        }
    }

    /// Moves the card to a life-cycle state no APDU reaches without a secure channel (runtime tests).
    #[cfg(test)]
    pub(crate) fn force_life_cycle(&mut self, next: CardLifeCycle) {
        self.life_cycle = next;
        if matches!(next, CardLifeCycle::CardLocked | CardLifeCycle::Terminated) {
            self.deselect_where(|_| true);
        }
    }

    /// Creates the applet at `index` anew, as a reboot would: what it kept in its fields is gone.
    fn recreate(&mut self, index: usize) {
        let Some(entry) = self.registry.get_mut(index) else {
            return;
        };
        match I::Applet::instantiate(&entry.module, &entry.aid, &entry.parameters) {
            Ok(applet) => entry.applet = applet,
            // The same module, AID and parameters were accepted at install: an image that refuses them now is
            // a bug its reboot test catches.
            Err(_) => debug_assert!(false, "instance {:?} cannot be re-created", entry.aid),
        }
    }

    fn store_access(&mut self) -> Option<&mut dyn StoreAccess> {
        self.store.as_mut().map(|s| s as &mut dyn StoreAccess)
    }

    /// Writes the life cycle and registry through to the store; 6581 without one.
    fn persist(&mut self) -> Result<(), StatusWord> {
        let store = self
            .store
            .as_mut()
            .map(|s| s as &mut dyn StoreAccess)
            .ok_or(StatusWord::MEMORY_FAILURE)?;
        persistence::save(store, self.life_cycle, &self.registry)
    }

    /// Ends the secure channel on `channel`, and with it what was bound to it.
    pub(crate) fn end_session(&mut self, channel: u8) {
        let scope = self.secure.close(channel);
        self.apply_scope(channel, scope);
    }

    fn apply_scope(&mut self, channel: u8, scope: Scope) {
        if scope == Scope::Ended {
            self.manager.session_ended(channel);
        }
    }

    fn outcome<T>(&mut self, channel: u8, outcome: Outcome<T>) -> Result<T, StatusWord> {
        self.apply_scope(channel, outcome.scope);
        outcome.result
    }

    /// Runs `entry_point` on instance `index` with a context for `channel`, then aborts any store transaction
    /// the applet left open (Java Card: a transaction does not outlive the entry point).
    fn with_applet<R>(
        &mut self,
        index: usize,
        channel: u8,
        selecting: bool,
        security: Option<Security>,
        entry_point: impl FnOnce(&mut I::Applet, &mut Context<'_>) -> R,
    ) -> Option<R> {
        let (before, entry, after) = self.registry.split_at(index)?;
        let store = self
            .store
            .as_mut()
            .map(|store| store as &mut dyn StoreAccess);
        let lent = Lent {
            store,
            transient: &mut self.transient,
            owner: entry.owner,
            caller: None,
        };
        let mut peers = Peers {
            lent,
            before,
            after,
        };
        let mut ctx = Context::new(
            entry.aid,
            entry.owner,
            channel,
            selecting,
            security,
            &mut peers,
        );
        let result = entry_point(&mut entry.applet, &mut ctx);
        if let Some(store) = self.store.as_mut()
            && store.in_transaction()
        {
            store.abort();
        }
        Some(result)
    }

    /// Routes one complete plain command (chaining already undone).
    pub(crate) fn dispatch(
        &mut self,
        command: &CommandView<'_>,
        class: Class,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        let channel = class.channel();
        if class.interindustry() {
            if let Some(Select::ByName {
                name,
                occurrence,
                fci,
            }) = Select::parse(command).transpose()?
            {
                return self.select(channel, name, occurrence, fci, command, reply);
            }
            if let Some(manage) = ManageChannel::parse(command) {
                return self.manage_channel(channel, manage?, reply);
            }
        }
        let target = self
            .selected_on(channel)
            .ok_or(StatusWord::APPLET_SELECT_FAILED)?;
        if let Some(result) = self.handshake(channel, target, command, reply) {
            return result;
        }
        // A plain command ends the channel's secure channel; inside an open session it is refused.
        let was_open = self.secure.security(channel).is_some();
        self.end_session(channel);
        if was_open {
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        self.route(target, channel, class, command, reply, None)
    }

    /// The record owner of `target`'s security domain.
    fn security_domain(&self, target: Selected) -> Option<u8> {
        match target {
            Selected::CardManager => Some(CARD_MANAGER_SD),
            Selected::Applet(i) => self.registry.get(i).map(|e| sd_owner(e.owner)),
        }
    }

    /// Answers a plain handshake command for `target`, or `None` when the command is not one (or `target` is
    /// not a security domain) and goes to the target as usual.
    fn handshake(
        &mut self,
        channel: u8,
        target: Selected,
        command: &CommandView<'_>,
        reply: &mut Reply<'_>,
    ) -> Option<Result<(), StatusWord>> {
        let request = HandshakeCommand::parse(command)?;
        let owner = self.security_domain(target)?;
        let store = self.store.as_mut().map(|s| s as &mut dyn StoreAccess)?;
        if !secure_channel::has_static_key(store, owner) {
            return None;
        }
        let outcome = match request {
            Ok(request) => self.secure.handshake(store, channel, owner, request, reply),
            Err(status) => {
                // A malformed GET DATA is still a plain command: it ends an open session.
                if self.secure.security(channel).is_some() {
                    self.end_session(channel);
                }
                return Some(Err(status));
            }
        };
        Some(self.outcome(channel, outcome))
    }

    /// Routes one secured command: `data` (its data field, C-MAC last) is verified and decrypted in place, the
    /// plain command runs with the session's [`Security`] stamped on it, and the response is protected in
    /// `response` (data then R-MAC). Returns the status word and the length of the response data to send.
    pub(crate) fn dispatch_secured(
        &mut self,
        class: Class,
        header: [u8; 4],
        data: &mut [u8],
        ne: Option<usize>,
        extended: bool,
        response: &mut [u8],
    ) -> (StatusWord, usize) {
        let channel = class.channel();
        let opened = self.secure.unwrap_command(
            self.store.as_mut().map(|s| s as &mut dyn StoreAccess),
            channel,
            header,
            data,
        );
        let (security, len) = match self.outcome(channel, opened) {
            Ok(opened) => opened,
            Err(status) => return (status, 0),
        };
        let plain =
            CommandView::from_parts(header, data.get(..len).unwrap_or_default(), ne, extended);
        let room = response
            .len()
            .saturating_sub(apdu_spec::scp11::session::OVERHEAD);
        let mut reply = Reply::new(response.get_mut(..room).unwrap_or_default());
        let result = if class.interindustry() && routed_by_runtime(&plain) {
            // SELECT by name (which ends the session) and MANAGE CHANNEL are the runtime's.
            self.dispatch(&plain, class, &mut reply)
        } else {
            match self.selected_on(channel) {
                None => Err(StatusWord::APPLET_SELECT_FAILED),
                Some(target) => {
                    self.route(target, channel, class, &plain, &mut reply, Some(security))
                }
            }
        };
        let status = result.err().unwrap_or(StatusWord::SUCCESS);
        let data_len = if status.carries_data() {
            reply.len()
        } else {
            0
        };
        let wrapped = self
            .secure
            .wrap_response(channel, response, data_len, status);
        match self.outcome(channel, wrapped) {
            Ok(sent) => (status, sent),
            Err(status) => (status, 0),
        }
    }

    /// Runs a command on what is selected on the channel.
    fn route(
        &mut self,
        target: Selected,
        channel: u8,
        class: Class,
        command: &CommandView<'_>,
        reply: &mut Reply<'_>,
        security: Option<Security>,
    ) -> Result<(), StatusWord> {
        match target {
            Selected::CardManager => {
                if command.is_extended() {
                    return Err(StatusWord::WRONG_LENGTH);
                }
                let channels = &self.channels;
                let active = |index: usize| channels::active_anywhere(channels, index);
                let card = CardView {
                    life_cycle: self.life_cycle,
                    registry: &self.registry,
                    active: &active,
                };
                match self
                    .manager
                    .process::<I>(card, class, command, reply, security)?
                {
                    Some(change) => self.apply(change, reply),
                    None => Ok(()),
                }
            }
            Selected::Applet(i) => {
                let entry = self.registry.get(i).ok_or(StatusWord::UNKNOWN)?;
                if command.is_extended() && !entry.applet.extended_length() {
                    return Err(StatusWord::WRONG_LENGTH);
                }
                self.with_applet(i, channel, false, security, |applet, ctx| {
                    applet.process(ctx, command, reply)
                })
                .unwrap_or(Err(StatusWord::UNKNOWN))
            }
        }
    }

    /// Applies what the card manager decided, and writes the registry and life cycle through to the store.
    fn apply(
        &mut self,
        change: Change<'_, I::Applet>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        match change {
            Change::Personalize { owner, data } => {
                let store = self
                    .store
                    .as_mut()
                    .map(|s| s as &mut dyn StoreAccess)
                    .ok_or(StatusWord::MEMORY_FAILURE)?;
                return self.secure.personalize(store, owner, data, reply);
            }
            Change::Install(entry) => {
                // Records a torn DELETE may have left under this owner number are not the new instance's.
                if let Some(store) = self.store_access() {
                    for records in [entry.owner, sd_owner(entry.owner)] {
                        RECORDS
                            .remove_all(store, records)
                            .map_err(StatusWord::from)?;
                    }
                }
                self.transient.forget(entry.owner);
                self.registry.add(entry)?;
            }
            Change::MakeSelectable { index, privileges } => {
                let entry = self
                    .registry
                    .get_mut(index)
                    .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
                entry.state = app_state::SELECTABLE;
                entry.privileges = privileges;
            }
            Change::Delete { index } => self.delete(index),
            Change::LifeCycle(next) => {
                self.life_cycle = next;
                if matches!(next, CardLifeCycle::CardLocked | CardLifeCycle::Terminated) {
                    self.deselect_where(|_| true);
                }
            }
            Change::ApplicationState {
                index,
                state,
                locked,
            } => {
                let entry = self
                    .registry
                    .get_mut(index)
                    .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
                entry.state = state;
                if locked {
                    self.deselect_where(|i| i == index);
                }
            }
        }
        self.persist()
    }

    /// Removes the instance at `index` (selected nowhere), its records and its security domain.
    fn delete(&mut self, index: usize) {
        debug_assert!(!channels::active_anywhere(&self.channels, index));
        let Some(removed) = self.registry.remove(index) else {
            return;
        };
        if let Some(store) = self.store_access() {
            // The instance is gone either way; its records are freed now, or at the next INSTALL after a tear.
            // Both spaces are tried: the domain's holds its private key.
            for records in [removed.owner, sd_owner(removed.owner)] {
                RECORDS.remove_all(&mut *store, records).ok();
            }
        }
        self.forget_index(index);
    }
}

/// Whether a secured command is one the runtime itself answers (SELECT by name, MANAGE CHANNEL, or a SELECT
/// with an undefined P1) rather than the selected application.
fn routed_by_runtime(command: &CommandView<'_>) -> bool {
    match Select::parse(command) {
        Some(Ok(Select::File { .. })) => false,
        Some(_) => true,
        None => command.ins() == ins::MANAGE_CHANNEL,
    }
}

/// The registry of a new card: the image's factory instances.
fn factory_registry<I: Image>(registry: &mut Registry<I::Applet>) {
    registry.clear();
    for factory in I::FACTORY_INSTANCES {
        let load_file = I::Applet::LOAD_FILES
            .iter()
            .find(|lf| lf.modules.contains(&factory.module));
        let parameters = heapless::Vec::from_slice(factory.parameters);
        let applet = I::Applet::instantiate(&factory.module, &factory.aid, factory.parameters);
        let (Some(load_file), Ok(parameters), Ok(applet)) = (load_file, parameters, applet) else {
            debug_assert!(
                false,
                "factory instance {:?} cannot be created",
                factory.aid
            );
            continue;
        };
        let owner = registry.free_owner();
        let added = registry.add(Entry {
            aid: factory.aid,
            load_file: load_file.aid,
            module: factory.module,
            parameters,
            state: app_state::SELECTABLE,
            privileges: factory.privileges,
            owner,
            applet,
        });
        // A factory list longer than the registry is a build mistake the image's tests catch.
        debug_assert!(added.is_ok());
    }
}

/// Whether the applet's fields are to be cleared (by creating it anew) when it leaves its last channel.
fn volatile_on_deselect<A: Applet>(applet: &A) -> bool {
    applet.volatile_state() == ClearOn::Deselect
}
