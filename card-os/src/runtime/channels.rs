//! Logical channels and what is selected on each: SELECT by name, MANAGE CHANNEL, deselection (see the module
//! above for the rules).

use apdu_spec::gp::{CardLifeCycle, privileges};
use apdu_spec::iso::{ManageChannel, Occurrence};
use apdu_spec::{CommandView, StatusWord, aid};

use super::{Runtime, volatile_on_deselect};
use crate::applet::{Applet, Reply};
use crate::image::Image;
use crate::nvm::Nvm;
use crate::registry::Entry;

/// Number of logical channels (0-19).
pub const CHANNELS: usize = 20;

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

/// Whether `target` is selected on an open channel other than `except`.
fn active_elsewhere(channels: &[Channel], target: Selected, except: Option<u8>) -> bool {
    channels
        .iter()
        .enumerate()
        .any(|(n, c)| c.open && c.selected == Some(target) && Some(n) != except.map(usize::from))
}

/// Whether instance `index` is selected on any channel.
pub(super) fn active_anywhere(channels: &[Channel], index: usize) -> bool {
    active_elsewhere(channels, Selected::Applet(index), None)
}

impl<I: Image, N: Nvm> Runtime<I, N> {
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

    pub(super) fn selected_on(&self, channel: u8) -> Option<Selected> {
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

    /// Whether `target` may be selected on `channel`: 6985 for a non-multi-selectable one active elsewhere.
    fn may_select(&self, target: Selected, channel: u8) -> Result<(), StatusWord> {
        if !self.multi_selectable(target) && active_elsewhere(&self.channels, target, Some(channel))
        {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        Ok(())
    }

    /// Runs the applet's `select`; the card manager always accepts.
    fn select_on(&mut self, channel: u8, target: Selected) -> bool {
        match target {
            Selected::CardManager => true,
            Selected::Applet(i) => self
                .with_applet(i, channel, true, None, |applet, ctx| applet.select(ctx))
                .unwrap_or(false),
        }
    }

    /// Deselects what is selected on `channel`: its session and personalization target end; once an applet
    /// is active on no channel its CLEAR_ON_DESELECT memory goes (and its fields, where it declares them so).
    fn deselect_on(&mut self, channel: u8) {
        self.end_session(channel);
        self.manager.deselected(channel);
        let deselected = self.selected_on(channel);
        if let Some(Selected::Applet(i)) = deselected {
            self.with_applet(i, channel, false, None, |applet, ctx| applet.deselect(ctx));
        }
        self.set_selected(channel, None);
        if let Some(Selected::Applet(i)) = deselected
            && !active_anywhere(&self.channels, i)
            && let Some(entry) = self.registry.get(i)
        {
            self.transient.deselected(entry.owner);
            if volatile_on_deselect(&entry.applet) {
                self.recreate(i);
            }
        }
    }

    /// Deselects every applet instance matching `evict` on every channel (the card manager stays).
    pub(super) fn deselect_where(&mut self, evict: impl Fn(usize) -> bool) {
        for channel in 0..CHANNELS as u8 {
            if let Some(Selected::Applet(i)) = self.selected_on(channel)
                && evict(i)
            {
                self.deselect_on(channel);
            }
        }
    }

    /// After the registry entry at `removed` is gone, later indices move down by one.
    pub(super) fn forget_index(&mut self, removed: usize) {
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

    /// SELECT by name: `command` is the SELECT itself, which the selected applet answers (its FCI).
    pub(super) fn select(
        &mut self,
        channel: u8,
        name: &[u8],
        occurrence: Occurrence,
        fci: bool,
        command: &CommandView<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        let current = self.selected_on(channel);
        let target = if name.is_empty() {
            Selected::CardManager
        } else {
            self.find(name, occurrence, current)
                .ok_or(StatusWord::NOT_FOUND)?
        };
        self.may_select(target, channel)?;
        self.deselect_on(channel);
        if !self.select_on(channel, target) {
            return Err(StatusWord::APPLET_SELECT_FAILED);
        }
        self.set_selected(channel, Some(target));
        match target {
            Selected::CardManager => self.manager.select(self.life_cycle, fci, reply),
            Selected::Applet(i) => self
                .with_applet(i, channel, true, None, |applet, ctx| {
                    applet.process(ctx, command, reply)
                })
                .unwrap_or(Err(StatusWord::UNKNOWN)),
        }
    }

    pub(super) fn manage_channel(
        &mut self,
        channel: u8,
        command: ManageChannel,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        match command {
            ManageChannel::Open(asked) => {
                let new = self.channel_to_open(asked)?;
                let target = if channel == 0 {
                    Some(self.default_selection())
                } else {
                    self.selected_on(channel)
                };
                if let Some(target) = target {
                    self.may_select(target, new)?;
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
                match asked {
                    None => reply.push(&[new]),
                    Some(_) => Ok(()),
                }
            }
            ManageChannel::Close(asked) => {
                let closing = asked.unwrap_or(channel);
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
        }
    }

    /// The channel MANAGE CHANNEL open takes: the lowest free one (6A81 when none is), or the one asked for
    /// (6881 beyond 19, 6985 when already open).
    fn channel_to_open(&self, asked: Option<u8>) -> Result<u8, StatusWord> {
        match asked {
            None => (1..CHANNELS as u8)
                .find(|n| !self.channel_open(*n))
                .ok_or(StatusWord::FUNCTION_NOT_SUPPORTED),
            Some(n) if usize::from(n) >= CHANNELS => Err(StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED),
            Some(n) if self.channel_open(n) => Err(StatusWord::CONDITIONS_NOT_SATISFIED),
            Some(n) => Ok(n),
        }
    }
}

const _: () = assert!(CHANNELS <= 20, "ISO 7816-4 CLA encodes channels 0-19");
