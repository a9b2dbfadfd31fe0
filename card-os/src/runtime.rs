//! Routing inside the card: logical channels, SELECT and MANAGE CHANNEL, and dispatch to the selected applet
//! or the card manager (JCRE 3 §4, ISO 7816-4 §7.1.1 and §7.1.2).
//!
//! * **SELECT by AID** (`00 A4 04 P2`, data = full or partial AID): candidates are the card manager and then the
//!   selectable instances in installation order. P2 `00` takes the first match, P2 `02` the next one after the
//!   applet currently selected on the channel; P2 `0C`/`0E` ask for no FCI. No match: 6A82 and the channel keeps
//!   its applet. The old applet is deselected before the new one's `select` runs; if that refuses, 6999 and
//!   the channel has no applet selected (commands then get 6999 until a SELECT succeeds). No data selects the card manager.
//!   A non-multi-selectable applet already active on another channel: 6985, nothing changes.
//! * **MANAGE CHANNEL** open (`P1 00`, P2 `00` = lowest free channel, returned as one data byte, or P2 = 1-19)
//!   and close (`P1 80`, P2 = channel, or `00` for the CLA's channel). A channel opened from the basic channel
//!   gets the default applet; one opened from channel *k* gets *k*'s applet. Closed or nonexistent channel: 6881;
//!   none free: 6A81; closing the basic channel: 6A86.
//! * The default applet on the basic channel after reset is the first selectable instance holding the GP Card
//!   Reset privilege, else the card manager. While the card is CARD_LOCKED or TERMINATED only the card manager can
//!   be selected.

use apdu_spec::gp::{CardLifeCycle, privileges};
use apdu_spec::{Class, CommandView, StatusWord, aid, ins};

use crate::applet::{Applet, Context, Environment, Refused, Reply};
use crate::card_manager::StatusCursor;
use crate::image::Image;
use crate::nvm::{Nvm, RamNvm};
use crate::records::RecordTable;
use crate::registry::{Entry, Registry};
use crate::secure_channel::{Security, Sessions};
use crate::store::{Store, StoreAccess};
use crate::transient::{ClearOn, TRANSIENT_BYTES, TransientPool};

/// Page size of the card's persistent store.
pub const STORE_PAGE: usize = 256;
/// Most pages one store transaction may change.
pub const STORE_DIRTY: usize = 8;
/// Pages of persistent memory (journal included).
pub const STORE_PAGES: usize = 56;
/// The default non-volatile memory: flash semantics in RAM (a card object lives as long as the process).
pub type CardNvm = RamNvm<{ STORE_PAGES * STORE_PAGE }, STORE_PAGE>;
/// The card's persistent store over memory `N`.
pub type CardStore<N> = Store<N, STORE_PAGE, STORE_DIRTY>;
/// Where applet records live, after the registry table: 32 slots of 300 bytes (296 bytes of data each).
pub const RECORDS: RecordTable = RecordTable {
    base: crate::persistence::REGISTRY_AREA,
    slots: 32,
    slot_size: 300,
};

/// Number of logical channels (0-19).
pub const CHANNELS: usize = 20;

/// Where STORE DATA goes on the channel an INSTALL [for personalization] was sent on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PersonalizationTarget {
    /// This instance's security domain.
    Instance(apdu_spec::Aid),
    /// The session or handshake it was named in ended: STORE DATA is refused (6985) rather than quietly sent to
    /// the card manager, until SELECT or a new INSTALL [for personalization].
    Withdrawn,
}

/// What is selected on a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Selected {
    CardManager,
    Applet(usize),
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Channel {
    pub(crate) open: bool,
    pub(crate) selected: Option<Selected>,
}

/// Occurrence asked for by SELECT P2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Occurrence {
    First,
    Next,
}

/// Everything the card keeps between commands except the APDU buffers.
pub(crate) struct Runtime<I: Image, N> {
    pub(crate) life_cycle: CardLifeCycle,
    pub(crate) registry: Registry<I::Applet>,
    pub(crate) channels: [Channel; CHANNELS],
    pub(crate) status_cursor: Option<StatusCursor>,
    /// `None` only if the store could not be opened: record operations then fail with 6581.
    pub(crate) store: Option<CardStore<N>>,
    pub(crate) transient: TransientPool,
    /// Secure-channel sessions per channel and the card's random generator.
    pub(crate) sessions: Sessions,
    /// The instance whose security domain STORE DATA personalizes, and the channel INSTALL [for
    /// personalization] named it on; the card manager's own domain otherwise. It ends with the channel's
    /// selection or session.
    pub(crate) personalization_target: Option<(u8, PersonalizationTarget)>,
    /// The secure channel of the command being dispatched, stamped into the applet's context.
    security: Option<Security>,
}

/// What every context is lent: the store, and its owner's transient buffers. On its own it is a server's
/// environment during a call: no further calls.
struct Lent<'a> {
    store: Option<&'a mut dyn StoreAccess>,
    transient: &'a mut TransientPool,
    owner: u8,
}

/// An applet's environment at an entry point: what it is lent, and the other applets (its peers) to call.
struct Peers<'a, A> {
    lent: Lent<'a>,
    before: &'a mut [Entry<A>],
    after: &'a mut [Entry<A>],
}

/// Reborrows a lent store for a shorter time (`as_deref_mut` cannot shorten the trait object's lifetime).
fn reborrow<'s>(store: &'s mut Option<&mut dyn StoreAccess>) -> Option<&'s mut dyn StoreAccess> {
    match store {
        Some(store) => Some(&mut **store),
        None => None,
    }
}

impl Environment for Lent<'_> {
    fn store(&mut self) -> Option<&mut dyn StoreAccess> {
        reborrow(&mut self.store)
    }
    fn transient(&mut self, clear_on: ClearOn) -> Option<&mut [u8; TRANSIENT_BYTES]> {
        self.transient.buffer(self.owner, clear_on)
    }
    fn call(
        &mut self,
        _: &apdu_spec::Aid,
        _: &[u8],
        _: &[u8],
        _: &mut [u8],
    ) -> Result<usize, Refused> {
        Err(Refused)
    }
}

impl<A: Applet> Environment for Peers<'_, A> {
    fn store(&mut self) -> Option<&mut dyn StoreAccess> {
        self.lent.store()
    }
    fn transient(&mut self, clear_on: ClearOn) -> Option<&mut [u8; TRANSIENT_BYTES]> {
        self.lent.transient(clear_on)
    }

    fn call(
        &mut self,
        caller: &apdu_spec::Aid,
        server: &[u8],
        request: &[u8],
        response: &mut [u8],
    ) -> Result<usize, Refused> {
        let entry = self
            .before
            .iter_mut()
            .chain(self.after.iter_mut())
            .find(|e| e.aid.as_bytes() == server && e.selectable())
            .ok_or(Refused)?;
        let mut environment = Lent {
            store: reborrow(&mut self.lent.store),
            transient: &mut *self.lent.transient,
            owner: entry.owner,
        };
        let mut ctx = Context::new(entry.aid, entry.owner, 0, false, None, &mut environment);
        let mut reply = Reply::new(response);
        entry.applet.shared(&mut ctx, caller, request, &mut reply)?;
        Ok(reply.len())
    }
}

impl<I: Image, N: Nvm> Runtime<I, N> {
    pub(crate) fn new(nvm: N) -> Self {
        let mut runtime = Self {
            life_cycle: CardLifeCycle::OpReady,
            registry: Registry::default(),
            channels: [Channel::default(); CHANNELS],
            status_cursor: None,
            store: CardStore::open(nvm).ok(),
            transient: TransientPool::default(),
            sessions: Sessions::default(),
            personalization_target: None,
            security: None,
        };
        if !runtime.load_registry() {
            runtime.install_factory_instances();
            // A card whose store failed still works, without persistence (record commands answer 6581).
            let _ = runtime.persist_registry();
        }
        runtime
    }

    fn install_factory_instances(&mut self) {
        for factory in I::FACTORY_INSTANCES {
            let load_file = I::LOAD_FILES
                .iter()
                .find(|lf| lf.modules.contains(&factory.module));
            let parameters = heapless::Vec::from_slice(factory.parameters);
            if let (Some(load_file), Ok(parameters), Ok(applet)) = (
                load_file,
                parameters,
                I::instantiate(&factory.module, &factory.aid, factory.parameters),
            ) {
                // A factory list longer than the registry is a build mistake the image's tests catch.
                let owner = self.registry.free_owner();
                let _ = self.registry.add(Entry {
                    aid: factory.aid,
                    load_file: load_file.aid,
                    module: factory.module,
                    parameters,
                    state: apdu_spec::gp::app_state::SELECTABLE,
                    privileges: factory.privileges,
                    owner,
                    applet,
                });
            }
        }
    }

    /// Runs `entry_point` on instance `index` with a context for `channel`, then aborts any store transaction
    /// the applet left open (Java Card: a transaction does not outlive the entry point).
    pub(crate) fn with_applet<R>(
        &mut self,
        index: usize,
        channel: u8,
        selecting: bool,
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
            self.security,
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

    /// Power loss or reset: every channel but the basic one closes, sessions are cleared, the default applet
    /// is selected on the basic channel.
    pub(crate) fn reset(&mut self) {
        self.channels = [Channel::default(); CHANNELS];
        self.status_cursor = None;
        self.personalization_target = None;
        self.security = None;
        self.sessions.clear();
        self.transient.reset();
        for index in 0..self.registry.len() {
            if let Some(entry) = self.registry.get_mut(index) {
                entry.applet.reset();
            }
        }
    }

    pub(crate) fn open_basic_channel(&mut self) {
        let target = self.default_selection();
        let selected = self.select_on(0, target).then_some(target);
        if let Some(basic) = self.channels.get_mut(0) {
            *basic = Channel {
                open: true,
                selected,
            };
        }
    }

    pub(crate) fn channel_open(&self, channel: u8) -> bool {
        self.channels
            .get(usize::from(channel))
            .is_some_and(|c| c.open)
    }

    fn selected_on(&self, channel: u8) -> Option<Selected> {
        self.channels
            .get(usize::from(channel))
            .and_then(|c| c.selected)
    }

    fn set_selected(&mut self, channel: u8, selected: Option<Selected>) {
        if let Some(c) = self.channels.get_mut(usize::from(channel)) {
            c.selected = selected;
        }
    }

    fn only_card_manager(&self) -> bool {
        matches!(
            self.life_cycle,
            CardLifeCycle::CardLocked | CardLifeCycle::Terminated
        )
    }

    fn default_selection(&self) -> Selected {
        if self.only_card_manager() {
            return Selected::CardManager;
        }
        self.registry
            .iter()
            .position(|e| e.selectable() && e.privileges[0] & privileges::CARD_RESET != 0)
            .map_or(Selected::CardManager, Selected::Applet)
    }

    fn aid_of(&self, target: Selected) -> Option<apdu_spec::Aid> {
        match target {
            Selected::CardManager => Some(aid::CARD_MANAGER),
            Selected::Applet(i) => self.registry.get(i).map(|e| e.aid),
        }
    }

    fn selectable(&self, target: Selected) -> bool {
        match target {
            Selected::CardManager => true,
            Selected::Applet(i) => {
                !self.only_card_manager() && self.registry.get(i).is_some_and(Entry::selectable)
            }
        }
    }

    fn multi_selectable(&self, target: Selected) -> bool {
        match target {
            Selected::CardManager => true,
            Selected::Applet(i) => self
                .registry
                .get(i)
                .is_some_and(|e| e.applet.multi_selectable()),
        }
    }

    /// Whether `target` is selected on a channel other than `except`.
    fn active_elsewhere(&self, target: Selected, except: Option<u8>) -> bool {
        self.channels.iter().enumerate().any(|(n, c)| {
            c.open && c.selected == Some(target) && Some(n) != except.map(usize::from)
        })
    }

    /// Runs the applet's `select`; the card manager always accepts.
    fn select_on(&mut self, channel: u8, target: Selected) -> bool {
        match target {
            Selected::CardManager => true,
            Selected::Applet(i) => self
                .with_applet(i, channel, true, |applet, ctx| applet.select(ctx))
                .unwrap_or(false),
        }
    }

    fn deselect_on(&mut self, channel: u8) {
        self.end_session(channel);
        if self
            .personalization_target
            .is_some_and(|(on, _)| on == channel)
        {
            self.personalization_target = None;
        }
        let deselected = self.selected_on(channel);
        if let Some(Selected::Applet(i)) = deselected {
            self.with_applet(i, channel, false, |applet, ctx| applet.deselect(ctx));
        }
        self.set_selected(channel, None);
        // CLEAR_ON_DESELECT memory goes once the applet is active on no channel at all.
        if let Some(Selected::Applet(i)) = deselected
            && !self.is_selected_anywhere(i)
            && let Some(entry) = self.registry.get(i)
        {
            self.transient.deselected(entry.owner);
        }
    }

    /// Deselects every applet instance matching `evict` on every channel (the card manager stays).
    pub(crate) fn deselect_where(&mut self, evict: impl Fn(usize) -> bool) {
        for channel in 0..CHANNELS as u8 {
            if let Some(Selected::Applet(i)) = self.selected_on(channel)
                && evict(i)
            {
                self.deselect_on(channel);
            }
        }
    }

    /// After the registry entry at `removed` is gone, later indices move down by one.
    pub(crate) fn forget_index(&mut self, removed: usize) {
        for c in &mut self.channels {
            if let Some(Selected::Applet(i)) = c.selected {
                c.selected = match i.cmp(&removed) {
                    core::cmp::Ordering::Less => Some(Selected::Applet(i)),
                    core::cmp::Ordering::Equal => None,
                    core::cmp::Ordering::Greater => Some(Selected::Applet(i - 1)),
                };
            }
        }
    }

    /// Whether instance `index` is selected on any channel.
    pub(crate) fn is_selected_anywhere(&self, index: usize) -> bool {
        self.active_elsewhere(Selected::Applet(index), None)
    }

    /// Routes one complete plain command (chaining already undone).
    pub(crate) fn dispatch(
        &mut self,
        command: &CommandView<'_>,
        class: Class,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        let channel = class.channel();
        if class.interindustry()
            && command.ins() == ins::SELECT
            && command.p1() == ins::SELECT_BY_NAME
        {
            return self.select(channel, command, reply);
        }
        if class.interindustry() && command.ins() == ins::MANAGE_CHANNEL {
            return self.manage_channel(channel, command, reply);
        }
        let target = self
            .selected_on(channel)
            .ok_or(StatusWord::APPLET_SELECT_FAILED)?;
        if let Some(result) = self.handshake(channel, target, class, command, reply) {
            return result;
        }
        // A plain command ends the channel's secure channel; inside an open session it is refused.
        let was_open = self.sessions.security(channel).is_some();
        self.end_session(channel);
        if was_open {
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        self.route(target, channel, class, command, reply)
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
        let (security, len) = match self.unwrap_command(channel, header, data) {
            Ok(opened) => opened,
            Err(status) => return (status, 0),
        };
        let plain =
            CommandView::from_parts(header, data.get(..len).unwrap_or_default(), ne, extended);
        let room = response
            .len()
            .saturating_sub(apdu_spec::scp11::session::OVERHEAD);
        let mut reply = Reply::new(response.get_mut(..room).unwrap_or_default());
        // SELECT by name and MANAGE CHANNEL are the runtime's (and end the session); the rest go to the target.
        let routed_by_runtime = match plain.ins() {
            ins::SELECT => plain.p1() == ins::SELECT_BY_NAME,
            ins::MANAGE_CHANNEL => true,
            _ => false,
        };
        let result = if class.interindustry() && routed_by_runtime {
            self.dispatch(&plain, class, &mut reply)
        } else {
            match self.selected_on(channel) {
                None => Err(StatusWord::APPLET_SELECT_FAILED),
                Some(target) => {
                    self.security = Some(security);
                    let result = self.route(target, channel, class, &plain, &mut reply);
                    self.security = None;
                    result
                }
            }
        };
        let status = result.err().unwrap_or(StatusWord::SUCCESS);
        let data_len = if status.carries_data() {
            reply.len()
        } else {
            0
        };
        match self.wrap_response(channel, response, data_len, status) {
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
    ) -> Result<(), StatusWord> {
        match target {
            Selected::CardManager => {
                if command.is_extended() {
                    return Err(StatusWord::WRONG_LENGTH);
                }
                let security = self.security;
                self.card_manager(class, command, reply, security)
            }
            Selected::Applet(i) => {
                let entry = self.registry.get(i).ok_or(StatusWord::UNKNOWN)?;
                if command.is_extended() && !entry.applet.extended_length() {
                    return Err(StatusWord::WRONG_LENGTH);
                }
                self.with_applet(i, channel, false, |applet, ctx| {
                    applet.process(ctx, command, reply)
                })
                .unwrap_or(Err(StatusWord::UNKNOWN))
            }
        }
    }

    fn find(
        &self,
        name: &[u8],
        occurrence: Occurrence,
        current: Option<Selected>,
    ) -> Option<Selected> {
        let candidates = core::iter::once(Selected::CardManager)
            .chain((0..self.registry.len()).map(Selected::Applet))
            .filter(|t| {
                self.selectable(*t) && self.aid_of(*t).is_some_and(|a| a.starts_with(name))
            });
        match (occurrence, current) {
            (Occurrence::Next, Some(current))
                if self.aid_of(current).is_some_and(|a| a.starts_with(name)) =>
            {
                candidates.skip_while(|t| *t != current).nth(1)
            }
            _ => candidates.into_iter().next(),
        }
    }

    fn select(
        &mut self,
        channel: u8,
        command: &CommandView<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        if command.is_extended() {
            return Err(StatusWord::WRONG_LENGTH);
        }
        let occurrence = match command.p2() & 0xF3 {
            0x00 => Occurrence::First,
            0x02 => Occurrence::Next,
            _ => return Err(StatusWord::INCORRECT_P1P2),
        };
        let current = self.selected_on(channel);
        let target = if command.data().is_empty() {
            Selected::CardManager
        } else {
            self.find(command.data(), occurrence, current)
                .ok_or(StatusWord::NOT_FOUND)?
        };
        if !self.multi_selectable(target) && self.active_elsewhere(target, Some(channel)) {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        self.deselect_on(channel);
        if !self.select_on(channel, target) {
            return Err(StatusWord::APPLET_SELECT_FAILED);
        }
        self.set_selected(channel, Some(target));
        match target {
            Selected::CardManager => self.card_manager_select(command, reply),
            Selected::Applet(i) => self
                .with_applet(i, channel, true, |applet, ctx| {
                    applet.process(ctx, command, reply)
                })
                .unwrap_or(Err(StatusWord::UNKNOWN)),
        }
    }

    fn manage_channel(
        &mut self,
        channel: u8,
        command: &CommandView<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        if command.is_extended() || !command.data().is_empty() {
            return Err(StatusWord::WRONG_LENGTH);
        }
        match command.p1() {
            ins::MANAGE_CHANNEL_OPEN => {
                let new = match command.p2() {
                    0 => (1..CHANNELS as u8)
                        .find(|n| !self.channel_open(*n))
                        .ok_or(StatusWord::FUNCTION_NOT_SUPPORTED)?,
                    n if usize::from(n) >= CHANNELS => {
                        return Err(StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED);
                    }
                    n if self.channel_open(n) => return Err(StatusWord::CONDITIONS_NOT_SATISFIED),
                    n => n,
                };
                let target = if channel == 0 {
                    Some(self.default_selection())
                } else {
                    self.selected_on(channel)
                };
                if let Some(target) = target {
                    if !self.multi_selectable(target) && self.active_elsewhere(target, Some(new)) {
                        return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
                    }
                    if !self.select_on(new, target) {
                        return Err(StatusWord::APPLET_SELECT_FAILED);
                    }
                }
                if let Some(c) = self.channels.get_mut(usize::from(new)) {
                    *c = Channel {
                        open: true,
                        selected: target,
                    };
                }
                if command.p2() == 0 {
                    reply.push(&[new])
                } else {
                    Ok(())
                }
            }
            ins::MANAGE_CHANNEL_CLOSE => {
                let closing = if command.p2() == 0 {
                    channel
                } else {
                    command.p2()
                };
                if closing == 0 {
                    return Err(StatusWord::INCORRECT_P1P2);
                }
                if !self.channel_open(closing) {
                    return Err(StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED);
                }
                self.deselect_on(closing);
                if let Some(c) = self.channels.get_mut(usize::from(closing)) {
                    *c = Channel::default();
                }
                Ok(())
            }
            _ => Err(StatusWord::INCORRECT_P1P2),
        }
    }
}
