//! The secure channels of every logical channel, in RAM: a handshake in progress or an open session per
//! channel, [`SESSIONS`] at once. Dropping one zeroizes its keys (`SecureMessaging` zeroizes on drop).

use apdu_spec::StatusWord;
use apdu_spec::scp11::Security;
use apdu_spec::scp11::cert::{Date, Role};
use apdu_spec::scp11::session::{PublicKeyBytes, SecureMessaging};
use heapless::Vec;

use super::MAX_ID;

/// Secure-channel sessions (or handshakes in progress) the card holds at once.
pub const SESSIONS: usize = 4;

/// What a channel's secure channel is doing.
pub(super) enum Phase {
    /// OCE certificates verified so far (SCP11a): the last one's key, subject and role.
    Chain {
        key: PublicKeyBytes,
        subject: Vec<u8, MAX_ID>,
        role: Option<Role>,
        leaf: bool,
        count: usize,
        /// The latest effective date along the chain: the card date moves to it after an issuer handshake.
        effective: Option<Date>,
    },
    /// The session is open.
    Open {
        messaging: SecureMessaging,
        security: Security,
        /// The issuer's chain's effective date, applied to the card date once the OCE has proved its key
        /// (the first command whose C-MAC verifies): certificates alone are public.
        pending_date: Option<Date>,
    },
}

struct Session {
    channel: u8,
    phase: Phase,
}

/// The slots, one per channel that runs a secure channel.
pub(super) struct Sessions {
    slots: [Option<Session>; SESSIONS],
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new()
    }
}

impl Sessions {
    pub(super) const fn new() -> Self {
        Self {
            slots: [const { None }; SESSIONS],
        }
    }
}

impl Sessions {
    /// What runs on `channel`.
    pub(super) fn phase(&mut self, channel: u8) -> Option<&mut Phase> {
        self.slots
            .iter_mut()
            .flatten()
            .find(|s| s.channel == channel)
            .map(|s| &mut s.phase)
    }

    /// Ends whatever runs on `channel`; whether anything did.
    pub(super) fn close(&mut self, channel: u8) -> bool {
        let mut closed = false;
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|s| s.channel == channel) {
                *slot = None;
                closed = true;
            }
        }
        closed
    }

    /// Ends every session (reset, power loss).
    pub(super) fn clear(&mut self) {
        self.slots = [const { None }; SESSIONS];
    }

    /// Installs `phase` on `channel`, replacing what ran there; 6A84 when every slot is taken.
    pub(super) fn start(&mut self, channel: u8, phase: Phase) -> Result<(), StatusWord> {
        self.close(channel);
        let free = self
            .slots
            .iter_mut()
            .find(|s| s.is_none())
            .ok_or(StatusWord::NOT_ENOUGH_MEMORY)?;
        *free = Some(Session { channel, phase });
        Ok(())
    }

    /// The open session's security on `channel`.
    pub(super) fn security(&mut self, channel: u8) -> Option<Security> {
        match self.phase(channel) {
            Some(Phase::Open { security, .. }) => Some(*security),
            _ => None,
        }
    }

    /// The open session's secure messaging on `channel`.
    pub(super) fn messaging(&mut self, channel: u8) -> Option<&mut SecureMessaging> {
        match self.phase(channel) {
            Some(Phase::Open { messaging, .. }) => Some(messaging),
            _ => None,
        }
    }

    /// The date an issuer session will move the card date to, taken once.
    pub(super) fn take_pending_date(&mut self, channel: u8) -> Option<Date> {
        match self.phase(channel) {
            Some(Phase::Open { pending_date, .. }) => pending_date.take(),
            _ => None,
        }
    }
}
