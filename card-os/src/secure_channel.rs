//! The card side of GlobalPlatform SCP11 (see [`apdu_spec::scp11`]): a runtime service for the card manager and
//! for every applet instance that has been given a key.
//!
//! **Security domains.** The card manager and each personalized instance are security domains: a static key
//! pair (SK.SD.ECKA), a certificate chain that certifies its public key (GET DATA BF21), trust anchors (CA-KLOC
//! public keys with their identifiers) that OCE chains must lead to. They are kept as records under an owner
//! number the applet's own record space cannot reach ([`sd_owner`]), and loaded by the card manager's STORE
//! DATA ([`apdu_spec::scp11::personalization`]); a new static key waits aside until the chain that certifies it
//! arrives, and then key and chain change in one transaction. The card's notion of today (the *card date*, for
//! certificate expiry) is one record of the card manager's domain: set at personalization, and moved forward
//! only by an issuer's SCP11a session with the card manager (to the latest effective date of its chain, once
//! its first secured command verifies); it never moves back.
//!
//! **Handshake** (plain commands, answered by the runtime for a selected security domain):
//! * `GET DATA BF21`: the certificate store;
//! * `PERFORM SECURITY OPERATION 80 2A <KVN|80 when more> <10-2F>`: one OCE certificate per command, from the
//!   one the anchor signed to the leaf; each is checked at once (issuer identifier, signature, BCD dates in
//!   order, expiry against the card date, key usage), and any failure forgets the chain (6982);
//! * `MUTUAL AUTHENTICATE 80 82` (SCP11a, after a complete chain) and `INTERNAL AUTHENTICATE 80 88` (SCP11b):
//!   a fresh ephemeral key, ECDH, session keys, receipt; the session opens on the channel.
//!
//! **Sessions** live in RAM ([`Sessions`], [`SESSIONS`] at once, one per logical channel), bound to the channel
//! and closed (keys zeroized) when the channel's selection changes, the channel closes, the card resets or
//! loses power, a secured command fails to verify, a plain command other than SELECT, MANAGE CHANNEL or a new
//! handshake arrives, or a secured command is answered 6982.

use apdu_spec::scp11::cert::{self, Certificate, Date, Role};
use apdu_spec::scp11::session::{
    self, Handshake, PublicKeyBytes, SecureMessaging, SecurityLevel, public_key_of,
};
use apdu_spec::scp11::{self as scp, Variant, personalization as perso};
use apdu_spec::{Class, CommandView, StatusWord, ins, tlv};
use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use heapless::Vec;
use p256::elliptic_curve::Generate;
use zeroize::Zeroize;

use crate::applet::Reply;
use crate::image::Image;
use crate::nvm::Nvm;
use crate::runtime::{PersonalizationTarget, RECORDS, Runtime, Selected};
use crate::store::StoreAccess;

/// Secure-channel sessions (or handshakes in progress) the card holds at once.
pub const SESSIONS: usize = 4;
/// Trust anchors one security domain holds.
pub const MAX_ANCHORS: usize = 3;
/// Certificates in a security domain's own chain (GET DATA BF21), leaf last.
pub const MAX_CARD_CERTIFICATES: usize = 2;
/// Longest identifier (CA-KLOC, subject) the card keeps.
const MAX_ID: usize = 20;

/// Record keys in a security domain's record space.
mod record {
    /// `[32-byte SK.SD.ECKA]`.
    pub const STATIC_KEY: u8 = 0x01;
    /// The chain's certificates, one per record: `CERTIFICATE + i`.
    pub const CERTIFICATE: u8 = 0x02;
    /// `[id length, id, 65-byte key]` per anchor, back to back.
    pub const ANCHORS: u8 = 0x08;
    /// The card date (card manager's domain only), 4 bytes.
    pub const CARD_DATE: u8 = 0x09;
    /// A new static key waiting for the certificate that certifies it (re-keying survives an interruption:
    /// the old key and chain serve until the new chain arrives).
    pub const PENDING_KEY: u8 = 0x0A;
}

/// The record owner of the card manager's security domain.
pub(crate) const CARD_MANAGER_SD: u8 = 0xFE;

/// The record owner of the security domain of the instance whose own records are under `owner` (owners are
/// below 0x80, so the applet's record space never reaches it).
pub(crate) const fn sd_owner(owner: u8) -> u8 {
    owner | 0x80
}

/// How the command being processed reached the card: the runtime stamps it, applets read it with
/// [`crate::Context::security`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Security {
    /// SCP11a (the OCE proved a certificate) or SCP11b (anonymous OCE).
    pub variant: Variant,
    /// The protections the session applies.
    pub level: SecurityLevel,
    /// The role in the OCE's leaf certificate (SCP11a); `None` for SCP11b or a certificate without a role.
    pub role: Option<Role>,
}

impl Security {
    /// Whether the OCE authenticated with a certificate carrying `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.variant == Variant::A && self.role == Some(role)
    }
}

/// What a channel's secure channel is doing.
enum Phase {
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

/// The sessions of every channel, in RAM; dropping one zeroizes its keys.
pub(crate) struct Sessions {
    slots: [Option<Session>; SESSIONS],
    /// The card's random generator, seeded by the platform ([`crate::Card::seed_random`]); `None` until then,
    /// and handshakes needing randomness are refused.
    rng: Option<ChaCha20Rng>,
    /// EC scalar multiplications performed (ECDH, key generation, two per signature check), for benchmarks.
    pub(crate) scalar_multiplications: u32,
}

impl core::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            slots: [const { None }; SESSIONS],
            rng: None,
            scalar_multiplications: 0,
        }
    }
}

impl Sessions {
    fn slot(&mut self, channel: u8) -> Option<&mut Session> {
        self.slots
            .iter_mut()
            .flatten()
            .find(|s| s.channel == channel)
    }

    /// Ends whatever runs on `channel`; whether anything did.
    pub(crate) fn close(&mut self, channel: u8) -> bool {
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
    pub(crate) fn clear(&mut self) {
        self.slots = [const { None }; SESSIONS];
    }

    /// Installs `phase` on `channel`, replacing what ran there; 6A84 when every slot is taken.
    fn start(&mut self, channel: u8, phase: Phase) -> Result<(), StatusWord> {
        self.close(channel);
        let free = self
            .slots
            .iter_mut()
            .find(|s| s.is_none())
            .ok_or(StatusWord::NOT_ENOUGH_MEMORY)?;
        *free = Some(Session { channel, phase });
        Ok(())
    }

    /// The open session on `channel`.
    pub(crate) fn security(&mut self, channel: u8) -> Option<Security> {
        match self.slot(channel) {
            Some(Session {
                phase: Phase::Open { security, .. },
                ..
            }) => Some(*security),
            _ => None,
        }
    }

    fn messaging(&mut self, channel: u8) -> Option<&mut SecureMessaging> {
        match self.slot(channel) {
            Some(Session {
                phase: Phase::Open { messaging, .. },
                ..
            }) => Some(messaging),
            _ => None,
        }
    }

    /// Opens a session from given state (tests that replay published transcripts, whose card keys are secret).
    #[cfg(test)]
    pub(crate) fn open_with(
        &mut self,
        channel: u8,
        messaging: SecureMessaging,
        security: Security,
    ) -> Result<(), StatusWord> {
        self.start(
            channel,
            Phase::Open {
                messaging,
                security,
                pending_date: None,
            },
        )
    }

    /// The date an issuer session will move the card date to, taken once.
    fn take_pending_date(&mut self, channel: u8) -> Option<Date> {
        match self.slot(channel) {
            Some(Session {
                phase: Phase::Open { pending_date, .. },
                ..
            }) => pending_date.take(),
            _ => None,
        }
    }

    pub(crate) fn seed(&mut self, seed: [u8; 32]) {
        self.rng = Some(ChaCha20Rng::from_seed(seed));
    }
}

/// What a plain command is to the secure-channel service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HandshakeCommand {
    CertificateStore,
    UploadCertificate { more: bool },
    MutualAuthenticate,
    InternalAuthenticate,
}

fn handshake_command(command: &CommandView<'_>) -> Option<HandshakeCommand> {
    match (command.ins(), command.p1(), command.p2()) {
        (ins::GET_DATA, 0xBF, 0x21) => Some(HandshakeCommand::CertificateStore),
        (scp::INS_PERFORM_SECURITY_OPERATION, p1, 0x10..=0x2F) => {
            Some(HandshakeCommand::UploadCertificate {
                more: p1 & 0x80 != 0,
            })
        }
        (scp::INS_MUTUAL_AUTHENTICATE, _, _) => Some(HandshakeCommand::MutualAuthenticate),
        (scp::INS_INTERNAL_AUTHENTICATE, _, _) => Some(HandshakeCommand::InternalAuthenticate),
        _ => None,
    }
}

fn read_date(store: &mut dyn StoreAccess) -> Date {
    let mut buf = [0u8; 4];
    match RECORDS
        .space(store, CARD_MANAGER_SD)
        .get(record::CARD_DATE, &mut buf)
    {
        Ok(4) => Date(buf),
        _ => Date([0; 4]),
    }
}

/// Moves the card date forward to `date` (never back).
fn advance_date(store: &mut dyn StoreAccess, date: Date) -> Result<(), StatusWord> {
    if date > read_date(store) {
        RECORDS
            .space(store, CARD_MANAGER_SD)
            .put(record::CARD_DATE, &date.0)
            .map_err(|_| StatusWord::MEMORY_FAILURE)?;
    }
    Ok(())
}

/// A private scalar that is wiped when it goes out of scope, whatever the path (p256's scalars are not).
struct SecretScalar(p256::NonZeroScalar);

impl Drop for SecretScalar {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl core::ops::Deref for SecretScalar {
    type Target = p256::NonZeroScalar;
    fn deref(&self) -> &p256::NonZeroScalar {
        &self.0
    }
}

/// A private key record (`record::STATIC_KEY` or `record::PENDING_KEY`) of `owner`.
fn stored_key(store: &mut dyn StoreAccess, owner: u8, key: u8) -> Option<SecretScalar> {
    let mut buf = [0u8; 32];
    let n = RECORDS.space(store, owner).get(key, &mut buf).ok()?;
    let scalar = if n == 32 {
        Option::from(p256::NonZeroScalar::from_repr(buf.into())).map(SecretScalar)
    } else {
        None
    };
    buf.zeroize();
    scalar
}

fn static_key(store: &mut dyn StoreAccess, owner: u8) -> Option<SecretScalar> {
    stored_key(store, owner, record::STATIC_KEY)
}

/// Whether a date is a real calendar date in BCD (`20 26 11 24`).
fn valid_date(date: Date) -> bool {
    date.ymd().is_some()
}

/// Finds the anchor with identifier `id` in the domain's anchors record.
fn find_anchor(store: &mut dyn StoreAccess, owner: u8, id: &[u8]) -> Option<PublicKeyBytes> {
    let mut buf = [0u8; MAX_ANCHORS * (1 + MAX_ID + session::PUBLIC_KEY_LENGTH)];
    let n = RECORDS
        .space(store, owner)
        .get(record::ANCHORS, &mut buf)
        .ok()?;
    let mut rest = buf.get(..n)?;
    while let Some((&len, tail)) = rest.split_first() {
        let (anchor_id, tail) = tail.split_at_checked(usize::from(len))?;
        let (key, tail) = tail.split_at_checked(session::PUBLIC_KEY_LENGTH)?;
        if anchor_id == id {
            return PublicKeyBytes::try_from(key).ok();
        }
        rest = tail;
    }
    None
}

impl<I: Image, N: Nvm> Runtime<I, N> {
    /// The record owner of `target`'s security domain.
    pub(crate) fn security_domain(&self, target: Selected) -> Option<u8> {
        match target {
            Selected::CardManager => Some(CARD_MANAGER_SD),
            Selected::Applet(i) => self.registry.get(i).map(|e| sd_owner(e.owner)),
        }
    }

    fn store_access(&mut self) -> Result<&mut dyn StoreAccess, StatusWord> {
        self.store
            .as_mut()
            .map(|s| s as &mut dyn StoreAccess)
            .ok_or(StatusWord::MEMORY_FAILURE)
    }

    /// Whether `target` holds a static key (is a security domain that answers the handshake).
    fn is_security_domain(&mut self, target: Selected) -> bool {
        let Some(owner) = self.security_domain(target) else {
            return false;
        };
        match self.store_access() {
            Ok(store) => RECORDS
                .space(store, owner)
                .get(record::STATIC_KEY, &mut [0u8; 32])
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Answers a plain handshake command for `target`, or `None` when the command is not one (or `target` is
    /// not a security domain) and goes to the target as usual.
    pub(crate) fn handshake(
        &mut self,
        channel: u8,
        target: Selected,
        class: Class,
        command: &CommandView<'_>,
        reply: &mut Reply<'_>,
    ) -> Option<Result<(), StatusWord>> {
        let request = handshake_command(command)?;
        if request != HandshakeCommand::CertificateStore && !class.proprietary() {
            return None;
        }
        if !self.is_security_domain(target) {
            return None;
        }
        let owner = self.security_domain(target)?;
        let result = match request {
            HandshakeCommand::CertificateStore => {
                // A plain command ends an open session, this one too (a chain being uploaded may go on).
                if self.sessions.security(channel).is_some() {
                    self.end_session(channel);
                }
                self.certificate_store(owner, command.data(), reply)
            }
            HandshakeCommand::UploadCertificate { more } => {
                // A handshake begins a new session: a personalization target of the old one is gone.
                self.withdraw_target(channel);
                let result = self.upload_certificate(channel, owner, command.data(), more);
                if result.is_err() {
                    self.end_session(channel);
                }
                result
            }
            HandshakeCommand::MutualAuthenticate | HandshakeCommand::InternalAuthenticate => {
                let (variant, kid) = if request == HandshakeCommand::MutualAuthenticate {
                    (Variant::A, scp::KID_SCP11A)
                } else {
                    (Variant::B, scp::KID_SCP11B)
                };
                // P2 names the card's key: SCP11a's or SCP11b's (one key pair serves both).
                self.withdraw_target(channel);
                let result = if command.p2() == kid {
                    self.authenticate(channel, owner, variant, command.data(), reply)
                } else {
                    Err(StatusWord::REFERENCED_DATA_NOT_FOUND)
                };
                if result.is_err() {
                    self.end_session(channel);
                }
                result
            }
        };
        Some(result)
    }

    fn certificate_store(
        &mut self,
        owner: u8,
        request: &[u8],
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        // An OCE may name the key whose certificates it wants: A6 { 83 <KID> <KVN> }. This domain has one key,
        // answering as SCP11a's and SCP11b's.
        if !request.is_empty() {
            let reference = tlv::find(request, 0xA6)
                .ok()
                .flatten()
                .and_then(|crt| tlv::find(crt, 0x83).ok().flatten())
                .ok_or(StatusWord::WRONG_DATA)?;
            match reference.first() {
                Some(&scp::KID_SCP11A) | Some(&scp::KID_SCP11B) => {}
                _ => return Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
            }
        }
        let store = self.store_access()?;
        let space = RECORDS.space(store, owner);
        let mut certificates = [0u8; MAX_CARD_CERTIFICATES * 300];
        let mut len = 0;
        for i in 0..MAX_CARD_CERTIFICATES as u8 {
            let Some(spare) = certificates.get_mut(len..) else {
                break;
            };
            match space.get(record::CERTIFICATE + i, spare) {
                Ok(n) => len += n,
                Err(_) => break,
            }
        }
        if len == 0 {
            return Err(StatusWord::REFERENCED_DATA_NOT_FOUND);
        }
        let mut writer = tlv::Writer::new(reply.spare());
        writer
            .tlv(
                scp::TAG_CERTIFICATE_STORE,
                certificates.get(..len).unwrap_or_default(),
            )
            .map_err(|_| StatusWord::UNKNOWN)?;
        let written = writer.len();
        reply.advance(written)
    }

    fn upload_certificate(
        &mut self,
        channel: u8,
        owner: u8,
        data: &[u8],
        more: bool,
    ) -> Result<(), StatusWord> {
        let (certificate, rest) = Certificate::parse(data).map_err(|_| StatusWord::WRONG_DATA)?;
        if !rest.is_empty() {
            return Err(StatusWord::WRONG_DATA);
        }
        // The chain continues when the previous upload said more would follow; otherwise this is its first.
        let (issuer_key, count, chain_effective) = match self.sessions.slot(channel) {
            Some(Session {
                phase:
                    Phase::Chain {
                        key,
                        subject,
                        leaf: false,
                        count,
                        effective,
                        ..
                    },
                ..
            }) => {
                if subject.as_slice() != certificate.ca_kloc_id() {
                    return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
                }
                (*key, *count, *effective)
            }
            _ => {
                self.end_session(channel);
                let store = self.store_access()?;
                let key = find_anchor(store, owner, certificate.ca_kloc_id())
                    .ok_or(StatusWord::SECURITY_STATUS_NOT_SATISFIED)?;
                (key, 0, None)
            }
        };
        if count >= cert::MAX_CHAIN_LENGTH {
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        let issuer = p256::ecdsa::VerifyingKey::from_sec1_bytes(&issuer_key)
            .map_err(|_| StatusWord::SECURITY_STATUS_NOT_SATISFIED)?;
        self.sessions.scalar_multiplications =
            self.sessions.scalar_multiplications.saturating_add(2);
        certificate
            .verify_signature(&issuer)
            .map_err(|_| StatusWord::SECURITY_STATUS_NOT_SATISFIED)?;
        let store = self.store_access()?;
        // The card has no clock: expiry is judged against the card date (see the module documentation).
        let expiration = certificate.expiration();
        let dates_valid = valid_date(expiration)
            && certificate
                .effective()
                .is_none_or(|effective| valid_date(effective) && effective <= expiration);
        if !dates_valid || expiration < read_date(store) {
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        let usage_fits = if more {
            certificate.is_certificate_signing()
        } else {
            certificate.is_key_agreement()
        };
        if !usage_fits {
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        let effective = chain_effective.max(certificate.effective());
        let subject =
            Vec::from_slice(certificate.subject_id()).map_err(|_| StatusWord::WRONG_DATA)?;
        self.sessions.start(
            channel,
            Phase::Chain {
                key: *certificate.public_key_bytes(),
                subject,
                role: certificate.role(),
                leaf: !more,
                count: count + 1,
                effective,
            },
        )
    }

    fn authenticate(
        &mut self,
        channel: u8,
        owner: u8,
        variant: Variant,
        data: &[u8],
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        let handshake = Handshake::parse(data).map_err(|_| StatusWord::WRONG_DATA)?;
        if handshake.variant != variant {
            return Err(StatusWord::WRONG_DATA);
        }
        // SCP11a needs the OCE's complete chain, uploaded on this channel.
        let (oce_key, role, effective) = match (variant, self.sessions.slot(channel)) {
            (Variant::B, _) => (*handshake.ephemeral_key, None, None),
            (
                _,
                Some(Session {
                    phase:
                        Phase::Chain {
                            key,
                            role,
                            leaf: true,
                            effective,
                            ..
                        },
                    ..
                }),
            ) => (*key, *role, *effective),
            _ => return Err(StatusWord::CONDITIONS_NOT_SATISFIED),
        };
        self.end_session(channel);
        let rng = self
            .sessions
            .rng
            .as_mut()
            .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
        let ephemeral = SecretScalar(<p256::NonZeroScalar as Generate>::generate_from_rng(rng));
        let store = self.store_access()?;
        let static_key = static_key(store, owner).ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        let ephemeral_public = public_key_of(&ephemeral);
        let shared_ee = session::ecdh(&ephemeral, handshake.ephemeral_key);
        let shared_ss = session::ecdh(&static_key, &oce_key);
        // The private scalars are not needed past this point; neither are the shared secrets after the KDF.
        drop(ephemeral);
        drop(static_key);
        self.sessions.scalar_multiplications =
            self.sessions.scalar_multiplications.saturating_add(3);
        let (Ok(mut shared_ee), Ok(mut shared_ss)) = (shared_ee, shared_ss) else {
            return Err(StatusWord::WRONG_DATA);
        };
        let keys = session::derive(&shared_ee, &shared_ss, handshake.level);
        shared_ee.zeroize();
        shared_ss.zeroize();
        let receipt = session::receipt(&keys, handshake.command_data, &ephemeral_public);
        let written =
            session::encode_authenticate_response(&ephemeral_public, &receipt, reply.spare())
                .map_err(|_| StatusWord::UNKNOWN)?;
        reply.advance(written)?;
        // Only the issuer moves the card date (a CA trusted by one applet must not be able to expire everyone
        // else's certificates), and only once it has proved its key: see `unwrap_command`.
        let pending_date = if owner == CARD_MANAGER_SD && role == Some(Role::Issuer) {
            effective
        } else {
            None
        };
        self.sessions.start(
            channel,
            Phase::Open {
                messaging: SecureMessaging::new(&keys, &receipt, handshake.level),
                security: Security {
                    variant,
                    level: handshake.level,
                    role,
                },
                pending_date,
            },
        )
    }

    /// Opens a secured command in place: `data` is its data field (C-MAC last). Returns the session's security
    /// and the plain data length; any failure closes the session and answers 6982.
    pub(crate) fn unwrap_command(
        &mut self,
        channel: u8,
        header: [u8; 4],
        data: &mut [u8],
    ) -> Result<(Security, usize), StatusWord> {
        let security = self.sessions.security(channel);
        let opened = match (security, self.sessions.messaging(channel)) {
            (Some(security), Some(messaging)) => messaging
                .unwrap_command(header, data)
                .ok()
                .map(|n| (security, n)),
            _ => None,
        };
        let Some(opened) = opened else {
            self.end_session(channel);
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        };
        // The OCE holds the key its certificate names: an issuer's chain may now move the card date.
        if let Some(date) = self.sessions.take_pending_date(channel) {
            let advanced = self
                .store_access()
                .and_then(|store| advance_date(store, date));
            if let Err(status) = advanced {
                self.end_session(channel);
                return Err(status);
            }
        }
        Ok(opened)
    }

    /// Protects the response to the last opened command in place; returns the length to send. A channel whose
    /// session ended meanwhile (SELECT inside the session) answers plainly.
    pub(crate) fn wrap_response(
        &mut self,
        channel: u8,
        buf: &mut [u8],
        data_len: usize,
        status: StatusWord,
    ) -> Result<usize, StatusWord> {
        if status == StatusWord::SECURITY_STATUS_NOT_SATISFIED {
            self.end_session(channel);
            return Ok(0);
        }
        let Some(messaging) = self.sessions.messaging(channel) else {
            return Ok(data_len);
        };
        match messaging.wrap_response(buf, data_len, u16::from_be_bytes(status.to_bytes())) {
            Ok(n) => Ok(n),
            Err(_) => {
                self.end_session(channel);
                Err(StatusWord::UNKNOWN)
            }
        }
    }

    /// Ends the secure channel on `channel`, and with it an INSTALL [for personalization] made inside it.
    pub(crate) fn end_session(&mut self, channel: u8) {
        if self.sessions.close(channel) {
            self.withdraw_target(channel);
        }
    }

    /// An INSTALL [for personalization] on `channel` no longer holds (its session or handshake ended).
    fn withdraw_target(&mut self, channel: u8) {
        if let Some((on, target)) = &mut self.personalization_target
            && *on == channel
        {
            *target = PersonalizationTarget::Withdrawn;
        }
    }

    /// STORE DATA into the security domain `owner`: one personalization data object per command. A private key
    /// sent in a session must travel encrypted (C-DEC).
    pub(crate) fn personalize(
        &mut self,
        owner: u8,
        data: &[u8],
        reply: &mut Reply<'_>,
        security: Option<Security>,
    ) -> Result<(), StatusWord> {
        let (object, rest) = tlv::read(data).map_err(|_| StatusWord::WRONG_DATA)?;
        if !rest.is_empty() {
            return Err(StatusWord::WRONG_DATA);
        }
        let rng = self.sessions.rng.as_mut();
        let store = self
            .store
            .as_mut()
            .map(|s| s as &mut dyn StoreAccess)
            .ok_or(StatusWord::MEMORY_FAILURE)?;
        match object.tag {
            perso::TAG_STATIC_KEY => {
                if security.is_some_and(|s| !s.level.has(SecurityLevel::C_DECRYPTION)) {
                    return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
                }
                let mut bytes =
                    <[u8; 32]>::try_from(object.value).map_err(|_| StatusWord::WRONG_DATA)?;
                let key: Option<p256::NonZeroScalar> =
                    p256::NonZeroScalar::from_repr(bytes.into()).into();
                let result = match key.map(SecretScalar) {
                    Some(_) => put(store, owner, record::PENDING_KEY, &bytes),
                    None => Err(StatusWord::WRONG_DATA),
                };
                bytes.zeroize();
                result
            }
            perso::TAG_GENERATE_KEY => {
                if !object.value.is_empty() {
                    return Err(StatusWord::WRONG_DATA);
                }
                let rng = rng.ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
                let key = SecretScalar(<p256::NonZeroScalar as Generate>::generate_from_rng(rng));
                self.sessions.scalar_multiplications =
                    self.sessions.scalar_multiplications.saturating_add(1);
                let mut bytes: [u8; 32] =
                    p256::elliptic_curve::ff::PrimeField::to_repr(&*key.0).into();
                let result = put(store, owner, record::PENDING_KEY, &bytes);
                bytes.zeroize();
                result?;
                let mut writer = tlv::Writer::new(reply.spare());
                writer
                    .tlv(perso::TAG_PUBLIC_KEY, &public_key_of(&key))
                    .map_err(|_| StatusWord::UNKNOWN)?;
                let written = writer.len();
                reply.advance(written)
            }
            scp::TAG_CERTIFICATE_STORE => store_certificates(store, owner, object.value),
            perso::TAG_TRUST_ANCHOR => {
                let id = tlv::find(object.value, 0x42)
                    .map_err(|_| StatusWord::WRONG_DATA)?
                    .ok_or(StatusWord::WRONG_DATA)?;
                let key = tlv::find(object.value, perso::TAG_PUBLIC_KEY)
                    .map_err(|_| StatusWord::WRONG_DATA)?
                    .ok_or(StatusWord::WRONG_DATA)?;
                if id.is_empty() || id.len() > MAX_ID {
                    return Err(StatusWord::WRONG_DATA);
                }
                p256::PublicKey::from_sec1_bytes(key).map_err(|_| StatusWord::WRONG_DATA)?;
                let key = PublicKeyBytes::try_from(key).map_err(|_| StatusWord::WRONG_DATA)?;
                add_anchor(store, owner, id, &key)
            }
            perso::TAG_CARD_DATE => {
                let date =
                    Date(<[u8; 4]>::try_from(object.value).map_err(|_| StatusWord::WRONG_DATA)?);
                if !valid_date(date) {
                    return Err(StatusWord::WRONG_DATA);
                }
                advance_date(store, date)
            }
            _ => Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
        }
    }
}

/// Stores a domain's certificate chain (leaf last). The leaf certifies either the key waiting in
/// `record::PENDING_KEY`, which then becomes the domain's key, or the domain's current key. Key and chain change
/// in one store transaction: a power loss leaves the old pair or the new one.
fn store_certificates(
    store: &mut dyn StoreAccess,
    owner: u8,
    chain: &[u8],
) -> Result<(), StatusWord> {
    let mut rest = chain;
    let mut pieces: [&[u8]; MAX_CARD_CERTIFICATES] = [&[]; MAX_CARD_CERTIFICATES];
    let mut count = 0;
    let mut leaf_key = None;
    while !rest.is_empty() {
        let (certificate, after) = Certificate::parse(rest).map_err(|_| StatusWord::WRONG_DATA)?;
        let slot = pieces.get_mut(count).ok_or(StatusWord::NOT_ENOUGH_MEMORY)?;
        *slot = certificate.encoded();
        count += 1;
        leaf_key = Some(*certificate.public_key_bytes());
        rest = after;
    }
    let leaf_key = leaf_key.ok_or(StatusWord::WRONG_DATA)?;
    let pending = stored_key(store, owner, record::PENDING_KEY);
    let current = static_key(store, owner);
    let activate = if pending
        .as_ref()
        .is_some_and(|k| public_key_of(k) == leaf_key)
    {
        true
    } else if current
        .as_ref()
        .is_some_and(|k| public_key_of(k) == leaf_key)
    {
        false
    } else if pending.is_none() && current.is_none() {
        return Err(StatusWord::CONDITIONS_NOT_SATISFIED); // no key to certify yet
    } else {
        return Err(StatusWord::WRONG_DATA); // the chain certifies some other key
    };
    drop(current);
    store
        .begin()
        .map_err(|_| StatusWord::CONDITIONS_NOT_SATISFIED)?;
    let written = write_chain(store, owner, &pieces, pending.filter(|_| activate));
    match written {
        Ok(()) => store.commit().map_err(|_| StatusWord::MEMORY_FAILURE),
        Err(status) => {
            store.abort();
            Err(status)
        }
    }
}

/// The writes of [`store_certificates`], inside its transaction.
fn write_chain(
    store: &mut dyn StoreAccess,
    owner: u8,
    pieces: &[&[u8]],
    new_key: Option<SecretScalar>,
) -> Result<(), StatusWord> {
    if let Some(key) = new_key {
        let mut bytes: [u8; 32] = p256::elliptic_curve::ff::PrimeField::to_repr(&*key.0).into();
        let result = put(store, owner, record::STATIC_KEY, &bytes);
        bytes.zeroize();
        result?;
        remove(store, owner, record::PENDING_KEY)?;
    }
    for (i, piece) in pieces.iter().enumerate() {
        let key = record::CERTIFICATE + i as u8;
        if piece.is_empty() {
            remove(store, owner, key)?;
        } else {
            put(store, owner, key, piece)?;
        }
    }
    Ok(())
}

fn remove(store: &mut dyn StoreAccess, owner: u8, key: u8) -> Result<(), StatusWord> {
    match RECORDS.space(store, owner).remove(key) {
        Ok(()) | Err(crate::records::RecordError::NotFound) => Ok(()),
        Err(_) => Err(StatusWord::MEMORY_FAILURE),
    }
}

fn put(store: &mut dyn StoreAccess, owner: u8, key: u8, data: &[u8]) -> Result<(), StatusWord> {
    RECORDS
        .space(store, owner)
        .put(key, data)
        .map_err(|e| match e {
            crate::records::RecordError::Full | crate::records::RecordError::TooLarge => {
                StatusWord::NOT_ENOUGH_MEMORY
            }
            _ => StatusWord::MEMORY_FAILURE,
        })
}

/// Adds (or replaces, by identifier) one trust anchor; 6A84 beyond [`MAX_ANCHORS`].
fn add_anchor(
    store: &mut dyn StoreAccess,
    owner: u8,
    id: &[u8],
    key: &PublicKeyBytes,
) -> Result<(), StatusWord> {
    const ENTRY: usize = 1 + MAX_ID + session::PUBLIC_KEY_LENGTH;
    let mut old = [0u8; MAX_ANCHORS * ENTRY];
    let n = RECORDS
        .space(&mut *store, owner)
        .get(record::ANCHORS, &mut old)
        .unwrap_or(0);
    let mut new: Vec<u8, { MAX_ANCHORS * ENTRY }> = Vec::new();
    let mut count = 0;
    let mut rest = old.get(..n).unwrap_or_default();
    while let Some((&len, tail)) = rest.split_first() {
        let Some((entry_id, tail)) = tail.split_at_checked(usize::from(len)) else {
            break;
        };
        let Some((entry_key, tail)) = tail.split_at_checked(session::PUBLIC_KEY_LENGTH) else {
            break;
        };
        if entry_id != id {
            new.push(len).map_err(|_| StatusWord::NOT_ENOUGH_MEMORY)?;
            new.extend_from_slice(entry_id)
                .map_err(|_| StatusWord::NOT_ENOUGH_MEMORY)?;
            new.extend_from_slice(entry_key)
                .map_err(|_| StatusWord::NOT_ENOUGH_MEMORY)?;
            count += 1;
        }
        rest = tail;
    }
    if count >= MAX_ANCHORS {
        return Err(StatusWord::NOT_ENOUGH_MEMORY);
    }
    new.push(id.len() as u8)
        .map_err(|_| StatusWord::NOT_ENOUGH_MEMORY)?;
    new.extend_from_slice(id)
        .map_err(|_| StatusWord::NOT_ENOUGH_MEMORY)?;
    new.extend_from_slice(key)
        .map_err(|_| StatusWord::NOT_ENOUGH_MEMORY)?;
    put(store, owner, record::ANCHORS, &new)
}
