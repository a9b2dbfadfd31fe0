//! The card side of GlobalPlatform SCP11 (see [`apdu_spec::scp11`]): a runtime service for the card manager and
//! for every applet instance that has been given a key.
//!
//! **Security domains.** The card manager and each personalized instance are security domains: a static key
//! pair (SK.SD.ECKA), a certificate chain that certifies its public key (GET DATA BF21), trust anchors (CA-KLOC
//! public keys with their identifiers) that OCE chains must lead to ([`domain`]). They are loaded by the card
//! manager's STORE DATA ([`apdu_spec::scp11::personalization`], [`personalization`]); a new static key waits
//! aside until the chain that certifies it arrives, and then key and chain change in one transaction. The
//! card's notion of today (the *card date*, for certificate expiry) is one record of the card manager's domain:
//! set at personalization, and moved forward only by an issuer's SCP11a session with the card manager (to the
//! latest effective date of its chain, once its first secured command verifies); it never moves back.
//!
//! **Handshake** ([`handshake`]; plain commands, answered by the runtime for a selected security domain):
//! * `GET DATA BF21`: the certificate store;
//! * `PERFORM SECURITY OPERATION 80 2A <KVN> <10-2F, b8 set while more follow>`: one OCE certificate per
//!   command, from the one the anchor signed to the leaf; each is checked at once (issuer identifier,
//!   signature, BCD dates in order, expiry against the card date, key usage), and any failure forgets the
//!   chain (6982);
//! * `MUTUAL AUTHENTICATE 80 82` (SCP11a, after a complete chain) and `INTERNAL AUTHENTICATE 80 88` (SCP11b):
//!   a fresh ephemeral key, ECDH, session keys, receipt; the session opens on the channel.
//!
//! **Sessions** live in RAM ([`sessions`], [`SESSIONS`] at once, one per logical channel), bound to the channel
//! and closed (keys zeroized) when the channel's selection changes, the channel closes, the card resets or
//! loses power, a secured command fails to verify, a plain command other than SELECT, MANAGE CHANNEL or a new
//! handshake arrives, or a secured command is answered 6982.
//!
//! **State.** [`SecureChannel`] owns the sessions and the card's random generator and nothing else; the store
//! is lent to each call. What a call means for the rest of the runtime (a session ended, so whatever was bound
//! to it ends too) comes back as a [`Scope`], which the runtime applies.

mod domain;

pub(crate) use domain::card_date;
mod handshake;
mod personalization;
mod sessions;

use apdu_spec::StatusWord;
use apdu_spec::scp11::Security;
use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;

pub(crate) use domain::has_static_key;
pub use domain::{MAX_ANCHORS, MAX_CARD_CERTIFICATES};
pub use sessions::SESSIONS;

use crate::store::StoreAccess;
use sessions::Sessions;

/// Longest identifier (CA-KLOC, subject) the card keeps.
const MAX_ID: usize = 20;
const _: () = assert!(MAX_ID >= apdu_spec::scp11::personalization::MAX_ANCHOR_ID);

/// What a call did to the secure channel of its logical channel, beyond its answer.
#[must_use = "an ended session ends what was bound to it: the runtime must apply it"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The session (or handshake) on the channel, if any, goes on.
    Kept,
    /// It ended, or a new handshake replaced it: what was bound to it (an INSTALL [for personalization]
    /// made inside it) no longer holds.
    Ended,
}

impl Scope {
    fn ended_if(ended: bool) -> Self {
        if ended { Self::Ended } else { Self::Kept }
    }
}

/// A call's answer and what it did to the channel's session.
#[must_use]
#[derive(Debug)]
pub(crate) struct Outcome<T> {
    pub(crate) result: Result<T, StatusWord>,
    pub(crate) scope: Scope,
}

impl<T> Outcome<T> {
    fn new(result: Result<T, StatusWord>, scope: Scope) -> Self {
        Self { result, scope }
    }
}

/// The card's secure channels and random generator.
#[derive(Default)]
pub(crate) struct SecureChannel {
    sessions: Sessions,
    /// Seeded by the platform ([`crate::Card::seed_random`]); `None` until then, and what needs randomness
    /// (handshakes, key generation) is refused with 6985.
    rng: Option<ChaCha20Rng>,
    /// EC scalar multiplications performed (ECDH, key generation, two per signature check), for benchmarks.
    scalar_multiplications: u32,
}

impl core::fmt::Debug for SecureChannel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SecureChannel")
            .field("seeded", &self.rng.is_some())
            .field("scalar_multiplications", &self.scalar_multiplications)
            .finish_non_exhaustive()
    }
}

impl SecureChannel {
    /// No session, not seeded (a constant, so that a card can be built in a `static`).
    pub(crate) const fn new() -> Self {
        Self {
            sessions: Sessions::new(),
            rng: None,
            scalar_multiplications: 0,
        }
    }

    /// Seeds the random generator.
    pub(crate) fn seed(&mut self, seed: [u8; 32]) {
        self.rng = Some(ChaCha20Rng::from_seed(seed));
    }

    /// EC scalar multiplications so far.
    pub(crate) fn scalar_multiplications(&self) -> u32 {
        self.scalar_multiplications
    }

    fn count_scalar_multiplications(&mut self, n: u32) {
        self.scalar_multiplications = self.scalar_multiplications.saturating_add(n);
    }

    /// The open session on `channel`.
    pub(crate) fn security(&mut self, channel: u8) -> Option<Security> {
        self.sessions.security(channel)
    }

    /// Ends whatever runs on `channel`.
    pub(crate) fn close(&mut self, channel: u8) -> Scope {
        Scope::ended_if(self.sessions.close(channel))
    }

    /// Reset or power loss: every session ends (the runtime resets what was bound to them itself).
    pub(crate) fn reset(&mut self) {
        self.sessions.clear();
    }

    /// Opens a session from given state (tests that replay published transcripts, whose card keys are secret).
    #[cfg(test)]
    pub(crate) fn open_with(
        &mut self,
        channel: u8,
        messaging: apdu_spec::scp11::session::SecureMessaging,
        security: Security,
    ) -> Result<(), StatusWord> {
        self.sessions.start(
            channel,
            sessions::Phase::Open {
                messaging,
                security,
                pending_date: None,
            },
        )
    }

    /// Opens a secured command in place: `data` is its data field (C-MAC last). Returns the session's security
    /// and the plain data length; any failure closes the session and answers 6982. Never inlined: its AES and
    /// CMAC state leave the stack before the command runs.
    #[inline(never)]
    pub(crate) fn unwrap_command(
        &mut self,
        store: Option<&mut dyn StoreAccess>,
        channel: u8,
        header: [u8; 4],
        data: &mut [u8],
    ) -> Outcome<(Security, usize)> {
        let security = self.sessions.security(channel);
        let opened = match (security, self.sessions.messaging(channel)) {
            (Some(security), Some(messaging)) => messaging
                .unwrap_command(header, data)
                .ok()
                .map(|n| (security, n)),
            _ => None,
        };
        let Some(opened) = opened else {
            let scope = self.close(channel);
            return Outcome::new(Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED), scope);
        };
        // The OCE holds the key its certificate names: an issuer's chain may now move the card date.
        if let Some(date) = self.sessions.take_pending_date(channel) {
            let advanced = store
                .ok_or(StatusWord::MEMORY_FAILURE)
                .and_then(|store| domain::advance_date(store, date));
            if let Err(status) = advanced {
                let scope = self.close(channel);
                return Outcome::new(Err(status), scope);
            }
        }
        Outcome::new(Ok(opened), Scope::Kept)
    }

    /// Protects the response to the last opened command in place; returns the length to send. A channel whose
    /// session ended meanwhile (SELECT inside the session) answers plainly; 6982 ends the session. Never
    /// inlined, as [`Self::unwrap_command`].
    #[inline(never)]
    pub(crate) fn wrap_response(
        &mut self,
        channel: u8,
        buf: &mut [u8],
        data_len: usize,
        status: StatusWord,
    ) -> Outcome<usize> {
        if status == StatusWord::SECURITY_STATUS_NOT_SATISFIED {
            let scope = self.close(channel);
            return Outcome::new(Ok(0), scope);
        }
        let Some(messaging) = self.sessions.messaging(channel) else {
            return Outcome::new(Ok(data_len), Scope::Kept);
        };
        match messaging.wrap_response(buf, data_len, u16::from_be_bytes(status.to_bytes())) {
            Ok(n) => Outcome::new(Ok(n), Scope::Kept),
            Err(_) => {
                let scope = self.close(channel);
                Outcome::new(Err(StatusWord::UNKNOWN), scope)
            }
        }
    }
}
