//! The linkcard credit applet (patent Fig. 10 and 15): the card data, a bounded store of payment tokens that
//! the bank delivers straight to it (Fig. 15, an SCP11a session whose certificate the credit CA issued to the
//! bank with the `token-delivery` role), and the presentation at the point of sale: PRESENT gives the POS the
//! card data, the tokens, the application transaction counter (ATC) and the card's ECDSA signature over the
//! terminal's nonce, the amount, the currency, the ATC and the tokens' digests; CONFIRM drops the tokens the
//! credit system accepted, for the ATC of the last PRESENT only. Its commands are [`apdu_spec::credit`]; its
//! SCP11 key, certificate and trust anchors (the credit CA) are the runtime's (the card manager's INSTALL [for
//! personalization] and STORE DATA).
//!
//! Persistent state, all in the applet's own records (it has no fields, so a reboot loses nothing but the
//! session):
//! - [`CARD_DATA_KEY`]: the card data TLVs `C1`..`C5` (what PRESENT answers);
//! - [`SIGNING_KEY`]: the P-256 signing scalar (32 bytes) ‖ the card binding, SHA-256 of the public key in
//!   uncompressed SEC1 form (32 bytes), computed once at PERSONALIZE;
//! - [`ATC_KEY`]: the [`Atc`] state: ATC, its limit, whether the last PRESENT is still open for CONFIRM, the
//!   slots it presented (CONFIRM drops no other), and the slots a CONFIRM has dropped but not yet erased;
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
//! **The Fig. 14 share** (not built yet) would go: the credit applet's [`Applet::shared`] is not the way in
//! (the bank applet is the server in Fig. 14); instead a credit-applet command in a `credit-pos` or issuer
//! session would `ctx.call` the bank applet's shareable interface, the bank checks the runtime-stamped caller
//! AID against the credit applet AID it was personalized with, answers the token, and the credit applet writes
//! it with the same checks as STORE TOKEN in the same transaction as the bank's removal (see
//! `bank_applet::tokens` on the page budget of that move).
//!
//! Tests (they need the whole card and real SCP11 sessions, so they live with the emulator):
//! `host-tools/emulator/tests/credit_applet.rs` and the conformance script `tests/conformance/13-credit-applet.apdu`.
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
use apdu_spec::token::{BINDING_LENGTH, Envelope};
use apdu_spec::{Aid, CommandView, StatusWord, tlv};
use card_os::applet::RecordError;
use card_os::image::{Install, LoadFile};
use card_os::{Applet, Context, Reply};
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha256};

/// The record holding the card data TLVs.
pub const CARD_DATA_KEY: u8 = 0x01;
/// The record holding the signing scalar and the card binding.
pub const SIGNING_KEY: u8 = 0x02;
/// The record holding the [`Atc`] state.
pub const ATC_KEY: u8 = 0x03;

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

/// A credit applet instance. It keeps nothing in fields (see the crate documentation).
#[derive(Debug, Clone, Default)]
pub struct CreditApplet;

impl Install for CreditApplet {
    const LOAD_FILE: LoadFile = LoadFile {
        aid: apdu_spec::aid::CREDIT_LOAD_FILE,
        modules: &[apdu_spec::aid::CREDIT_MODULE],
    };

    /// The credit applet takes no install parameters (6A80 for any).
    fn install(_module: &Aid, _aid: &Aid, parameters: &[u8]) -> Result<Self, StatusWord> {
        if parameters.is_empty() {
            Ok(Self)
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
        let key = SigningKey::from_slice(personalization.signing_key)
            .map_err(|_| StatusWord::WRONG_DATA)?;
        let public = key.verifying_key().to_sec1_point(false);
        let binding = Sha256::digest(public.as_bytes());
        let mut signing = [0u8; SIGNING_KEY_LENGTH + BINDING_LENGTH];
        let (scalar, digest) = signing.split_at_mut(SIGNING_KEY_LENGTH);
        scalar.copy_from_slice(personalization.signing_key);
        digest.copy_from_slice(&binding);
        let mut card_data = [0u8; MAX_CARD_DATA];
        let n = personalization.write_card_data(&mut card_data)?;
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
            records.put(SIGNING_KEY, &signing)?;
            // The ATC record last: its presence is what "personalized" means.
            records.put(ATC_KEY, &state.to_bytes())?;
            Ok(())
        })();
        signing.fill(0);
        match written {
            Ok(()) => ctx.commit_transaction()?,
            Err(error) => {
                ctx.abort_transaction();
                return Err(error);
            }
        }
        reply.push(public.as_bytes())
    }

    /// Checks the token against the card data, the card binding and the card date, then keeps it in a free slot.
    fn store_token(ctx: &mut Context<'_>, token: &[u8]) -> Result<(), StatusWord> {
        ready(ctx)?;
        let signing = signing_record(ctx)?;
        let binding = signing.get(SIGNING_KEY_LENGTH..).unwrap_or_default();
        let mut buf = [0u8; MAX_CARD_DATA];
        let card_data = record(ctx, CARD_DATA_KEY, &mut buf)?.ok_or(StatusWord::MEMORY_FAILURE)?;
        // The card data starts with the credit company id (written so at PERSONALIZE).
        let (credit_id, _) = tlv::read(card_data).map_err(|_| StatusWord::MEMORY_FAILURE)?;
        if credit_id.tag != tag::CREDIT_ID {
            return Err(StatusWord::MEMORY_FAILURE);
        }
        let envelope = Envelope::parse(token).map_err(|_| StatusWord::WRONG_DATA)?;
        let today = ctx.card_date();
        if envelope.header.credit_id != credit_id.value
            || envelope.header.card_binding.as_slice() != binding
            || envelope.header.expires < today
        {
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
        let state = atc(ctx)?;
        if state.was_presented(slot) {
            put_atc(
                ctx,
                Atc {
                    presented: state.presented & !bit(slot),
                    ..state
                },
            )?;
        }
        tokens::write(ctx, slot, token)
    }

    /// Counts the ATC up and commits it, then answers the card data, the tokens and the signature.
    fn present(
        ctx: &mut Context<'_>,
        presentation: &Presentation<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        let mut state = ready(ctx)?;
        if state.atc >= state.limit {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let mut signing = signing_record(ctx)?;
        let key = SigningKey::from_slice(signing.get(..SIGNING_KEY_LENGTH).unwrap_or_default())
            .map_err(|_| StatusWord::MEMORY_FAILURE);
        signing.fill(0);
        let key = key?;
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
        for slot in 0..tokens::SLOTS {
            if let Some(stored) = tokens::read(ctx, slot)?
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
            if state.was_presented(slot)
                && let Some(stored) = tokens::read(ctx, slot)?
            {
                let token = stored.bytes();
                reply.push(token)?;
                message.update(Sha256::digest(token));
            }
        }
        let signature: Signature = key
            .sign_prehash(&message.finalize())
            .map_err(|_| StatusWord::UNKNOWN)?;
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
            CreditCommand::Present(presentation) => Self::present(ctx, &presentation, reply),
            CreditCommand::Confirm(confirmation) => Self::confirm(ctx, &confirmation),
            // The cardholder PIN lands with its personalization in the next change.
            CreditCommand::Verify(_) => Err(StatusWord::CONDITIONS_NOT_SATISFIED),
        }
    }

    /// A token fits one extended-length APDU (or a chain); PRESENT's answer is longer than 256 bytes.
    fn extended_length(&self) -> bool {
        true
    }
}
