//! The linkcard credit applet (patent Fig. 10 and 15): the card data, a bounded store of payment tokens that
//! the bank delivers straight to it (Fig. 15, an SCP11a session whose certificate the credit CA issued to the
//! bank with the `token-delivery` role), and the presentation at the point of sale: PRESENT gives the POS the
//! card data, the tokens, the application transaction counter (ATC) and the card's ECDSA signature over the
//! terminal's nonce, the amount, the currency, the ATC and the tokens' digests; CONFIRM drops the tokens the
//! credit system accepted, for the ATC of the last PRESENT only. Its commands are [`apdu_spec::credit`]; its
//! SCP11 key, certificate and trust anchors (the credit CA) are the runtime's (the card manager's INSTALL [for
//! personalization] and STORE DATA).
//!
//! Persistent state, all in the applet's own records (its one field is the PIN's verified flag, so a reboot
//! loses nothing but the session and that flag):
//! - [`CARD_DATA_KEY`]: the card data TLVs `C1`..`C5` (what PRESENT answers);
//! - [`SIGNING_KEY`]: the P-256 signing scalar (32 bytes) ‖ the card binding, SHA-256 of the public key in
//!   uncompressed SEC1 form (32 bytes), computed once at PERSONALIZE;
//! - [`ATC_KEY`]: the [`Atc`] state: ATC, its limit, whether the last PRESENT is still open for CONFIRM, the
//!   slots it presented (CONFIRM drops no other), and the slots a CONFIRM has dropped but not yet erased;
//! - [`SETTINGS_KEY`]: the [`Settings`] (PIN try limit, bank applet to collect from); [`PIN_KEY`]: the PIN;
//! - tokens: [`tokens::SLOTS`] tokens of up to [`apdu_spec::token::MAX_TOKEN`] bytes, 3 records each.
//!
//! **The signing key** is imported by the issuer at PERSONALIZE, inside an SCP11a issuer session with C-DEC
//! (the runtime gives applets no random numbers); the applet signs deterministically (RFC 6979) and never lets
//! the key out. PERSONALIZE answers the public key.
//!
//! **The ATC** is a `u32` that PRESENT increments and commits before it answers; at the personalized limit
//! PRESENT is refused (6985) and the counter never wraps.
//!
//! **PRESENT** answers the tokens in slot order, as many whole ones as fit the answer (three of about 500 bytes
//! in the 2048-byte response buffer); the signature covers exactly those presented.
//!
//! **CONFIRM** is one atomic write of the ATC record: it closes the presentation (so the same or an older
//! CONFIRM is refused: no replay) and names the confirmed slots as dropped. Erasing their records follows, one
//! token per transaction, and any later command finishes it first: erasing 4 tokens touches 12 store pages,
//! more than one transaction may change (`card_os::layout::STORE_DIRTY` = 8). A dropped slot is never
//! presented nor counted free before it is erased, so after a tear at any write the tokens are either all
//! there (CONFIRM not committed) or all gone.
//!
//! The card does not open tokens (only the credit system can): it reads the clear header to refuse a token of
//! another credit company, one bound to another card (header's `card_binding` ≠ SHA-256 of this applet's public
//! signing key) or one already expired, and to evict expired ones by the card date ([`Context::card_date`])
//! before storing.
//!
//! **The Fig. 14 share.** When personalization named a bank applet (`4F`), PRESENT first collects this card's
//! tokens from it: for each free slot, in a transaction of its own, the applet calls the bank applet's shareable
//! interface ([`apdu_spec::shared::BankRequest::HandOver`] with its credit company, its card binding and the
//! slot's record keys); the bank applet checks the runtime-stamped caller against the credit applet it was
//! personalized with and hands that token's records over (`card_os::Context::hand_over`: ownership moves, the
//! bytes stay); the credit applet checks the token as STORE TOKEN would and commits, or aborts and the token
//! stays in the bank applet. A tear anywhere leaves each token in exactly one applet.
//!
//! **The cardholder PIN** (optional, `C9`/`CA` at personalization, kept in [`PIN_KEY`] with `OwnerPin`
//! semantics: the try counter is spent and committed before the comparison): VERIFY in a `credit-pos` session
//! with C-DEC; when there is a PIN, PRESENT needs it verified since the applet was selected, and one
//! verification serves one PRESENT. The verified flag is the applet's one field, cleared by the runtime on
//! deselect and reset.
//!
//! Tests (they need the whole card and real SCP11 sessions, so they live with the emulator):
//! `host-tools/emulator/tests/credit_applet.rs`, `host-tools/emulator/tests/payment_flow.rs` (both applets: Fig. 14
//! and 15, the move torn at every write, the share refused to others, the PIN) and the conformance script
//! `tests/conformance/13-credit-applet.apdu`.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod tokens;

use apdu_spec::credit::{
    ATC_LENGTH, Confirmation, CreditCommand, MAX_CARD_DATA, Personalization, Presentation,
    SIGNATURE_LENGTH, SIGNING_KEY_LENGTH, tag,
};
use apdu_spec::curve;
use apdu_spec::scp11::cert::Date;
use apdu_spec::shared::{self, BankRequest, HandOver};
use apdu_spec::token::{BINDING_LENGTH, ClearHeader, Envelope, MAX_PARTY_ID};
use apdu_spec::{Aid, CommandView, StatusWord, aid, tlv};
use card_os::applet::{ClearOn, OwnerPin, RecordError};
use card_os::image::{Install, LoadFile};
use card_os::{Applet, Context, Reply};
use sha2::{Digest, Sha256};

/// The record holding the card data TLVs.
pub const CARD_DATA_KEY: u8 = 0x01;
/// The record holding the signing scalar and the card binding.
pub const SIGNING_KEY: u8 = 0x02;
/// The record holding the [`Atc`] state.
pub const ATC_KEY: u8 = 0x03;
/// The record holding the [`Settings`]: PIN try limit and the bank applet tokens are collected from.
pub const SETTINGS_KEY: u8 = 0x04;
/// The record holding the cardholder PIN ([`OwnerPin`] layout).
pub const PIN_KEY: u8 = 0x05;

/// What personalization chose beyond the card data: whether PRESENT needs the cardholder PIN, and which bank
/// applet tokens are collected from (Fig. 14). Stored as `[try limit (0: no PIN)] ‖ bank applet AID (or
/// nothing)`; an applet personalized before these options existed has no record and neither option.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// The PIN's try limit; 0 when there is no PIN.
    pub pin_tries: u8,
    bank_applet: [u8; aid::MAX_LEN],
    bank_applet_len: usize,
}

impl Settings {
    /// The bank applet tokens are collected from, if any.
    pub fn bank_applet(&self) -> Option<&[u8]> {
        self.bank_applet
            .get(..self.bank_applet_len)
            .filter(|aid| !aid.is_empty())
    }
}

/// The settings; the default (no PIN, no bank applet) for an applet personalized without them.
fn settings(ctx: &mut Context<'_>) -> Result<Settings, StatusWord> {
    let mut buf = [0u8; 1 + aid::MAX_LEN];
    let Some(stored) = record(ctx, SETTINGS_KEY, &mut buf)? else {
        return Ok(Settings::default());
    };
    let (&pin_tries, bank) = stored.split_first().ok_or(StatusWord::MEMORY_FAILURE)?;
    let mut settings = Settings {
        pin_tries,
        bank_applet_len: bank.len(),
        ..Settings::default()
    };
    settings
        .bank_applet
        .get_mut(..bank.len())
        .ok_or(StatusWord::MEMORY_FAILURE)?
        .copy_from_slice(bank);
    Ok(settings)
}

/// The ATC state as stored (11 bytes: ATC ‖ limit, both big-endian `u32`, ‖ open ‖ presented ‖ dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Atc {
    /// The ATC of the last PRESENT (0 before the first).
    pub atc: u32,
    /// The highest ATC PRESENT may reach.
    pub limit: u32,
    /// Whether the last PRESENT may still be confirmed.
    pub open: bool,
    /// Token slots the last PRESENT presented (bit `s` for slot `s`): CONFIRM drops only these; a slot written
    /// anew since loses its bit.
    pub presented: u8,
    /// Token slots a CONFIRM dropped whose records are not yet erased (bit `s` for slot `s`).
    pub dropped: u8,
}

/// Bytes of the stored [`Atc`] state.
const ATC_RECORD: usize = 11;

impl Atc {
    fn to_bytes(self) -> [u8; ATC_RECORD] {
        let mut out = [0u8; ATC_RECORD];
        let (atc, rest) = out.split_at_mut(4);
        atc.copy_from_slice(&self.atc.to_be_bytes());
        let (limit, rest) = rest.split_at_mut(4);
        limit.copy_from_slice(&self.limit.to_be_bytes());
        if let [open, presented, dropped] = rest {
            *open = u8::from(self.open);
            *presented = self.presented;
            *dropped = self.dropped;
        }
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; ATC_RECORD] = bytes.try_into().ok()?;
        let (atc, rest) = bytes.split_first_chunk::<4>()?;
        let (limit, rest) = rest.split_first_chunk::<4>()?;
        let [open, presented, dropped] = *rest else {
            return None;
        };
        Some(Self {
            atc: u32::from_be_bytes(*atc),
            limit: u32::from_be_bytes(*limit),
            open: open != 0,
            presented,
            dropped,
        })
    }

    fn dropped(&self, slot: usize) -> bool {
        u32::from(self.dropped) & (1 << slot) != 0
    }

    fn was_presented(&self, slot: usize) -> bool {
        u32::from(self.presented) & (1 << slot) != 0
    }
}

/// Bit `slot` of a slot set (slots are below [`tokens::SLOTS`] = 4).
fn bit(slot: usize) -> u8 {
    u8::try_from(1u32 << slot).unwrap_or(0)
}

/// Whose tokens this applet takes: its credit company's and bound to its own key.
struct Holder {
    credit_id: [u8; MAX_PARTY_ID],
    credit_id_len: usize,
    binding: [u8; BINDING_LENGTH],
}

impl Holder {
    fn read(ctx: &mut Context<'_>) -> Result<Self, StatusWord> {
        let signing = signing_record(ctx)?;
        let mut holder = Self {
            credit_id: [0; MAX_PARTY_ID],
            credit_id_len: 0,
            binding: [0; BINDING_LENGTH],
        };
        holder
            .binding
            .copy_from_slice(signing.get(SIGNING_KEY_LENGTH..).unwrap_or_default());
        let mut buf = [0u8; MAX_CARD_DATA];
        let card_data = record(ctx, CARD_DATA_KEY, &mut buf)?.ok_or(StatusWord::MEMORY_FAILURE)?;
        // The card data starts with the credit company id (written so at PERSONALIZE).
        let (credit_id, _) = tlv::read(card_data).map_err(|_| StatusWord::MEMORY_FAILURE)?;
        if credit_id.tag != tag::CREDIT_ID {
            return Err(StatusWord::MEMORY_FAILURE);
        }
        holder
            .credit_id
            .get_mut(..credit_id.value.len())
            .ok_or(StatusWord::MEMORY_FAILURE)?
            .copy_from_slice(credit_id.value);
        holder.credit_id_len = credit_id.value.len();
        Ok(holder)
    }

    fn credit_id(&self) -> &[u8] {
        self.credit_id.get(..self.credit_id_len).unwrap_or_default()
    }

    /// A token for this card: its company, its binding, not expired on `today`.
    fn accepts(&self, header: &ClearHeader<'_>, today: Date) -> bool {
        header.credit_id == self.credit_id()
            && *header.card_binding == self.binding
            && header.expires >= today
    }
}

/// Takes `slot` out of the last PRESENT's set before a new token goes there.
fn forget_presented(ctx: &mut Context<'_>, slot: usize) -> Result<(), StatusWord> {
    let state = atc(ctx)?;
    if !state.was_presented(slot) {
        return Ok(());
    }
    put_atc(
        ctx,
        Atc {
            presented: state.presented & !bit(slot),
            ..state
        },
    )
}

/// A credit applet instance. Its one field is whether the cardholder PIN was verified since it was selected
/// (volatile: the runtime creates the instance anew on deselect and reset); the rest is in its records.
#[derive(Debug, Clone, Default)]
pub struct CreditApplet {
    pin_verified: bool,
}

impl Install for CreditApplet {
    const LOAD_FILE: LoadFile = LoadFile {
        aid: apdu_spec::aid::CREDIT_LOAD_FILE,
        modules: &[apdu_spec::aid::CREDIT_MODULE],
    };

    /// The credit applet takes no install parameters (6A80 for any).
    fn install(_module: &Aid, _aid: &Aid, parameters: &[u8]) -> Result<Self, StatusWord> {
        if parameters.is_empty() {
            Ok(Self::default())
        } else {
            Err(StatusWord::WRONG_DATA)
        }
    }
}

/// Reads record `key` into `buf`; `Ok(None)` if there is none.
fn record<'b>(
    ctx: &mut Context<'_>,
    key: u8,
    buf: &'b mut [u8],
) -> Result<Option<&'b [u8]>, StatusWord> {
    match ctx.records()?.get(key, buf) {
        Ok(n) => Ok(buf.get(..n)),
        Err(RecordError::NotFound) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The ATC state; 6985 before personalization.
fn atc(ctx: &mut Context<'_>) -> Result<Atc, StatusWord> {
    let mut buf = [0u8; ATC_RECORD];
    let stored = record(ctx, ATC_KEY, &mut buf)?.ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
    Atc::from_bytes(stored).ok_or(StatusWord::MEMORY_FAILURE)
}

fn put_atc(ctx: &mut Context<'_>, state: Atc) -> Result<(), StatusWord> {
    Ok(ctx.records()?.put(ATC_KEY, &state.to_bytes())?)
}

/// The signing key stored as a big-endian scalar; `None` unless it is one in `1..n`.
fn signing_scalar(bytes: &[u8]) -> Option<p256::NonZeroScalar> {
    let bytes: [u8; SIGNING_KEY_LENGTH] = bytes.try_into().ok()?;
    p256::NonZeroScalar::from_repr(bytes.into()).into()
}

/// The signing scalar and the card binding; 6985 before personalization.
fn signing_record(
    ctx: &mut Context<'_>,
) -> Result<[u8; SIGNING_KEY_LENGTH + BINDING_LENGTH], StatusWord> {
    let mut buf = [0u8; SIGNING_KEY_LENGTH + BINDING_LENGTH];
    let n = record(ctx, SIGNING_KEY, &mut buf)?
        .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?
        .len();
    if n != buf.len() {
        return Err(StatusWord::MEMORY_FAILURE);
    }
    Ok(buf)
}

/// Erases the records of every slot a committed CONFIRM dropped (one token per transaction), then clears the
/// list. Runs before every command after personalization.
fn finish_dropped(ctx: &mut Context<'_>, mut state: Atc) -> Result<Atc, StatusWord> {
    if state.dropped == 0 {
        return Ok(state);
    }
    for slot in 0..tokens::SLOTS {
        if state.dropped(slot) {
            tokens::remove(ctx, slot)?;
        }
    }
    state.dropped = 0;
    put_atc(ctx, state)?;
    Ok(state)
}

/// The personalized state, with any dropped tokens erased; 6985 before personalization.
fn ready(ctx: &mut Context<'_>) -> Result<Atc, StatusWord> {
    let state = atc(ctx)?;
    finish_dropped(ctx, state)
}

impl CreditApplet {
    fn personalize(
        ctx: &mut Context<'_>,
        personalization: &Personalization<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        let mut buf = [0u8; 1];
        let personalized = match ctx.records()?.get(ATC_KEY, &mut buf) {
            Err(RecordError::NotFound) => false,
            Ok(_) | Err(RecordError::BufferTooSmall) => true,
            Err(error) => return Err(error.into()),
        };
        if personalized {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let key = signing_scalar(personalization.signing_key).ok_or(StatusWord::WRONG_DATA)?;
        let public = curve::public_key_of(&key);
        let binding = Sha256::digest(public);
        let mut signing = [0u8; SIGNING_KEY_LENGTH + BINDING_LENGTH];
        let (scalar, digest) = signing.split_at_mut(SIGNING_KEY_LENGTH);
        scalar.copy_from_slice(personalization.signing_key);
        digest.copy_from_slice(&binding);
        // The PIN first, in its own write: until the ATC record exists it means nothing (a PERSONALIZE after
        // a tear writes it again).
        if let Some(pin) = personalization.pin {
            let mut owner_pin =
                OwnerPin::new(PIN_KEY, pin.try_limit).map_err(|_| StatusWord::WRONG_DATA)?;
            owner_pin.update(&mut ctx.records()?, pin.digits)?;
        }
        let written = Self::write_personalization(ctx, personalization, &signing);
        signing.fill(0);
        written?;
        reply.push(&public)
    }

    /// Card data, signing key, settings and ATC in one transaction (4 small records, at most 8 pages).
    fn write_personalization(
        ctx: &mut Context<'_>,
        personalization: &Personalization<'_>,
        signing: &[u8; SIGNING_KEY_LENGTH + BINDING_LENGTH],
    ) -> Result<(), StatusWord> {
        let mut card_data = [0u8; MAX_CARD_DATA];
        let n = personalization.write_card_data(&mut card_data)?;
        let mut settings = [0u8; 1 + aid::MAX_LEN];
        let bank = personalization.bank_applet.unwrap_or_default();
        settings[0] = personalization.pin.map_or(0, |pin| pin.try_limit);
        settings
            .get_mut(1..1 + bank.len())
            .ok_or(StatusWord::WRONG_DATA)?
            .copy_from_slice(bank);
        let state = Atc {
            atc: 0,
            limit: personalization.atc_limit,
            open: false,
            presented: 0,
            dropped: 0,
        };
        ctx.begin_transaction()?;
        let written = (|| -> Result<(), StatusWord> {
            let mut records = ctx.records()?;
            records.put(CARD_DATA_KEY, card_data.get(..n).unwrap_or_default())?;
            records.put(SIGNING_KEY, signing)?;
            records.put(
                SETTINGS_KEY,
                settings.get(..1 + bank.len()).unwrap_or_default(),
            )?;
            // The ATC record last: its presence is what "personalized" means.
            records.put(ATC_KEY, &state.to_bytes())?;
            Ok(())
        })();
        match written {
            Ok(()) => ctx.commit_transaction(),
            Err(error) => {
                ctx.abort_transaction();
                Err(error)
            }
        }
    }

    /// VERIFY: checks the cardholder PIN (the try counter is spent before the comparison), or, without data,
    /// says whether it is verified (9000) or how many tries are left (63Cx, 6983 at none).
    fn verify(
        &mut self,
        ctx: &mut Context<'_>,
        candidate: Option<&[u8]>,
    ) -> Result<(), StatusWord> {
        ready(ctx)?;
        let pin_tries = settings(ctx)?.pin_tries;
        if pin_tries == 0 {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let mut pin = OwnerPin::new(PIN_KEY, pin_tries).map_err(|_| StatusWord::MEMORY_FAILURE)?;
        let Some(candidate) = candidate else {
            if self.pin_verified {
                return Ok(());
            }
            return match pin.tries_left(&ctx.records()?)? {
                0 => Err(StatusWord::AUTH_METHOD_BLOCKED),
                tries => Err(StatusWord::verify_failed(tries)),
            };
        };
        self.pin_verified = false;
        pin.check(&mut ctx.records()?, candidate)?;
        self.pin_verified = pin.is_validated();
        Ok(())
    }

    /// Checks the token against the card data, the card binding and the card date, then keeps it in a free slot.
    fn store_token(ctx: &mut Context<'_>, token: &[u8]) -> Result<(), StatusWord> {
        ready(ctx)?;
        let holder = Holder::read(ctx)?;
        let envelope = Envelope::parse(token).map_err(|_| StatusWord::WRONG_DATA)?;
        let today = ctx.card_date();
        if !holder.accepts(&envelope.header, today) {
            return Err(StatusWord::WRONG_DATA);
        }
        tokens::evict_expired(ctx)?;
        let scan = tokens::scan(ctx, envelope.header.token_id)?;
        if scan.found.is_some() {
            return Err(StatusWord::WRONG_DATA);
        }
        let slot = scan.free.ok_or(StatusWord::NOT_ENOUGH_MEMORY)?;
        // A slot freed since the last PRESENT (an expired token evicted) holds a token that was not presented:
        // it leaves the presented set first (so a tear in between only forgets a bit).
        forget_presented(ctx, slot)?;
        tokens::write(ctx, slot, token)
    }

    /// Fig. 14: takes this card's tokens from the bank applet into free slots, one hand-over per transaction,
    /// until the bank has none left or no slot is free. A bank applet that is absent or refuses gives nothing;
    /// a token that is not this card's after all goes back (the transaction aborts) and ends the collection.
    fn collect(ctx: &mut Context<'_>, bank_applet: &[u8]) -> Result<(), StatusWord> {
        let holder = Holder::read(ctx)?;
        let mut request = [0u8; 64];
        while let Some(slot) = tokens::free_slot(ctx)? {
            let message = BankRequest::HandOver {
                credit_id: holder.credit_id(),
                card_binding: holder.binding,
                first_key: tokens::part_key(slot),
            };
            let message =
                shared::encode(&message, &mut request).map_err(|_| StatusWord::UNKNOWN)?;
            ctx.begin_transaction()?;
            match Self::take_one(ctx, &holder, bank_applet, message, slot) {
                Ok(true) => ctx.commit_transaction()?,
                Ok(false) | Err(_) => {
                    ctx.abort_transaction();
                    break;
                }
            }
        }
        Ok(())
    }

    /// One hand-over into `slot`, inside the open transaction; whether a token of this card arrived.
    fn take_one(
        ctx: &mut Context<'_>,
        holder: &Holder,
        bank_applet: &[u8],
        request: &[u8],
        slot: usize,
    ) -> Result<bool, StatusWord> {
        let mut answer = [0u8; 32];
        let Ok(n) = ctx.call(bank_applet, request, &mut answer) else {
            return Ok(false);
        };
        let answer = answer.get(..n).ok_or(StatusWord::UNKNOWN)?;
        let HandOver::Token { token_id } =
            shared::decode(answer).map_err(|_| StatusWord::UNKNOWN)?
        else {
            return Ok(false);
        };
        let today = ctx.card_date();
        let mut stored = tokens::Stored::empty();
        let arrived = tokens::read(ctx, slot, &mut stored)?
            && stored.envelope().is_some_and(|envelope| {
                holder.accepts(&envelope.header, today) && *envelope.header.token_id == token_id
            });
        // The same id in another slot (a token delivered both ways) is not taken twice.
        let first_of_its_id = tokens::scan(ctx, &token_id)?.found == Some(slot);
        if !(arrived && first_of_its_id) {
            return Ok(false);
        }
        forget_presented(ctx, slot)?;
        Ok(true)
    }

    /// Checks the PIN was verified (if there is one; a verification serves one PRESENT), collects the bank
    /// applet's tokens (Fig. 14, if one was named), then presents.
    fn present(
        &mut self,
        ctx: &mut Context<'_>,
        presentation: &Presentation<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        ready(ctx)?;
        let settings = settings(ctx)?;
        if settings.pin_tries != 0 && !core::mem::take(&mut self.pin_verified) {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        if let Some(bank_applet) = settings.bank_applet() {
            Self::collect(ctx, bank_applet)?;
        }
        Self::sign_presentation(ctx, presentation, reply)
    }

    /// Counts the ATC up and commits it, then answers the card data, the tokens and the signature.
    fn sign_presentation(
        ctx: &mut Context<'_>,
        presentation: &Presentation<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        let mut state = atc(ctx)?;
        if state.atc >= state.limit {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let mut signing = signing_record(ctx)?;
        let key = signing_scalar(signing.get(..SIGNING_KEY_LENGTH).unwrap_or_default());
        signing.fill(0);
        let key = key.ok_or(StatusWord::MEMORY_FAILURE)?;
        state.atc = state
            .atc
            .checked_add(1)
            .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
        state.open = true;
        // Which tokens this answer carries, in slot order: as many whole ones as fit.
        const ATC_TLV: usize = 2 + ATC_LENGTH;
        const SIGNATURE_TLV: usize = 3 + SIGNATURE_LENGTH;
        let mut buf = [0u8; MAX_CARD_DATA];
        let card_len = record(ctx, CARD_DATA_KEY, &mut buf)?
            .ok_or(StatusWord::MEMORY_FAILURE)?
            .len();
        let mut room = reply
            .remaining()
            .checked_sub(ATC_TLV + card_len + SIGNATURE_TLV)
            .ok_or(StatusWord::UNKNOWN)?;
        state.presented = 0;
        let mut stored = tokens::Stored::empty();
        for slot in 0..tokens::SLOTS {
            if tokens::read(ctx, slot, &mut stored)?
                && stored.envelope().is_some()
                && stored.bytes().len() <= room
            {
                room -= stored.bytes().len();
                state.presented |= bit(slot);
            }
        }
        // Persisted before any answer: a torn or refused answer still used up this ATC.
        put_atc(ctx, state)?;

        reply.push(&[0xC8, ATC_LENGTH as u8])?;
        reply.push(&state.atc.to_be_bytes())?;
        reply.push(buf.get(..card_len).unwrap_or_default())?;
        let mut message = Sha256::new();
        message.update(presentation.signed_prefix(state.atc));
        for slot in 0..tokens::SLOTS {
            if state.was_presented(slot) && tokens::read(ctx, slot, &mut stored)? {
                let token = stored.bytes();
                reply.push(token)?;
                message.update(Sha256::digest(token));
            }
        }
        let signature =
            curve::sign_digest(&key, &message.finalize().into()).ok_or(StatusWord::UNKNOWN)?;
        reply.push(&[0x5F, 0x37, SIGNATURE_LENGTH as u8])?;
        reply.push(&signature.to_bytes())
    }

    /// Drops the confirmed tokens, for the open presentation with this ATC only.
    fn confirm(ctx: &mut Context<'_>, confirmation: &Confirmation<'_>) -> Result<(), StatusWord> {
        let mut state = ready(ctx)?;
        if !state.open || confirmation.atc != state.atc {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let mut dropped = 0u8;
        for id in confirmation.ids() {
            // Only a token this presentation carried.
            let slot = tokens::scan(ctx, id)?
                .found
                .filter(|slot| state.was_presented(*slot))
                .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
            dropped |= bit(slot);
        }
        // The commit point: one record write closes the presentation and drops the tokens.
        state.open = false;
        state.presented = 0;
        state.dropped = dropped;
        put_atc(ctx, state)?;
        finish_dropped(ctx, state).map(|_| ())
    }
}

impl Applet for CreditApplet {
    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        command: &CommandView<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        if ctx.selecting() {
            return card_os::applet::answer_select(ctx, command, reply);
        }
        let parsed = CreditCommand::try_from(command)?;
        // The credit applet has no plain commands, before issuance or after.
        parsed.requirement().check(ctx.security(), false)?;
        match parsed {
            CreditCommand::Personalize(personalization) => {
                Self::personalize(ctx, &personalization, reply)
            }
            CreditCommand::StoreToken(token) => Self::store_token(ctx, token),
            CreditCommand::Present(presentation) => self.present(ctx, &presentation, reply),
            CreditCommand::Confirm(confirmation) => Self::confirm(ctx, &confirmation),
            CreditCommand::Verify(candidate) => self.verify(ctx, candidate),
        }
    }

    /// The PIN verification is forgotten when the applet is deselected, not only on reset.
    fn volatile_state(&self) -> ClearOn {
        ClearOn::Deselect
    }

    /// A token fits one extended-length APDU (or a chain); PRESENT's answer is longer than 256 bytes.
    fn extended_length(&self) -> bool {
        true
    }
}
