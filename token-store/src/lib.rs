//! The token store both payment applets keep in their own records: slots of tokens of up to [`MAX_TOKEN`]
//! bytes (`apdu_spec::token`). A library for applets, not an applet: each applet names its number of slots and
//! calls these functions with its own [`Context`], so every record stays in that applet's space.
//!
//! A record holds at most [`MAX_RECORD`] (296) bytes, so a token is kept as a stream of up to [`PARTS`] records:
//! the stream is the token's length (2 bytes, big-endian) followed by the token, cut into [`MAX_RECORD`]-byte
//! parts; token slot `s`, part `p` is record key `FIRST_KEY + s × PARTS + p`. A token is written, and removed,
//! with all its parts in one store transaction, so after a power loss at any write it is wholly there or wholly
//! absent. Writing one touches at most 3 record slots of 300 bytes, 6 store pages: within the 8 pages a
//! transaction may change (`card_os::layout::STORE_DIRTY`); removing one writes 3 slot headers, 3 pages.
//!
//! **The in-card move (patent Fig. 14)** is a hand-over, not a copy: inside the receiving applet's transaction, the
//! giving applet's shareable interface gives the token's records to its caller ([`hand_over`], the runtime's
//! `Context::hand_over`): each part's slot changes owner and key in one write of 2 bytes, so the whole token moves
//! in at most 3 page writes, well within one transaction's 8 pages, and a tear leaves it in exactly one applet.
//! The receiver names the keys ([`part_key`] of its free slot), so both applets keep this same layout.
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

use apdu_spec::StatusWord;
use apdu_spec::token::{BINDING_LENGTH, Envelope, MAX_TOKEN, TOKEN_ID_LENGTH};
use card_os::Context;
use card_os::applet::{MAX_RECORD, RecordError};

/// Records per token: the length prefix and the largest token, in records of [`MAX_RECORD`] bytes.
pub const PARTS: usize = (LENGTH_PREFIX + MAX_TOKEN).div_ceil(MAX_RECORD);
/// The record key of slot 0, part 0 (keys below it are the applet's other records).
pub const FIRST_KEY: u8 = 0x10;
/// Bytes of the length prefix in front of the token.
const LENGTH_PREFIX: usize = 2;
/// A whole stream: length prefix and token, in whole parts.
const STREAM: usize = PARTS * MAX_RECORD;

/// Most slots an applet may have: every slot's keys fit in a byte above [`FIRST_KEY`].
pub const MAX_SLOTS: usize = (0x100 - FIRST_KEY as usize) / PARTS;

const _: () = {
    // A token of the largest size fits its parts.
    assert!(LENGTH_PREFIX + MAX_TOKEN <= STREAM);
    assert!(PARTS == 3);
};

/// Record key of part `part` of slot `slot` (both in range: callers iterate `0..slots` (at most `MAX_SLOTS`) and `0..PARTS`).
fn key(slot: usize, part: usize) -> u8 {
    u8::try_from(FIRST_KEY as usize + slot * PARTS + part).unwrap_or(u8::MAX)
}

/// The record key of the first part of `slot` (what a receiver names in a hand-over request).
pub fn part_key(slot: usize) -> u8 {
    debug_assert!(slot < MAX_SLOTS);
    key(slot, 0)
}

/// A token's bytes read back from its records: a buffer of [`Stored::empty`] that [`read`] fills, one per
/// scan (it is nearly 900 bytes, which a card's stack should hold once, not once per frame).
#[derive(Debug)]
pub struct Stored {
    stream: [u8; STREAM],
    len: usize,
}

impl Stored {
    /// A buffer holding no token.
    pub const fn empty() -> Self {
        Self {
            stream: [0; STREAM],
            len: 0,
        }
    }

    /// The token's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.stream
            .get(LENGTH_PREFIX..LENGTH_PREFIX + self.len)
            .unwrap_or(&[])
    }

    /// The token parsed; `None` if its records do not hold a token (never written so by this applet).
    pub fn envelope(&self) -> Option<Envelope<'_>> {
        Envelope::parse(self.bytes()).ok()
    }
}

/// Reads the token in `slot` into `stored`; `false` (and `stored` empty) if the slot holds none.
pub fn read(ctx: &mut Context<'_>, slot: usize, stored: &mut Stored) -> Result<bool, StatusWord> {
    stored.len = 0;
    let records = ctx.records()?;
    let mut filled = 0;
    for part in 0..PARTS {
        let chunk = stored
            .stream
            .get_mut(part * MAX_RECORD..(part + 1) * MAX_RECORD)
            .ok_or(StatusWord::UNKNOWN)?;
        match records.get(key(slot, part), chunk) {
            // Only the last part is short: the stream ends there (and no byte of an earlier read shows through).
            Ok(n) if n < MAX_RECORD => {
                filled += n;
                break;
            }
            Ok(n) => filled += n,
            Err(RecordError::NotFound) if part == 0 => return Ok(false),
            Err(RecordError::NotFound) => break,
            Err(error) => return Err(error.into()),
        }
        if filled >= LENGTH_PREFIX + stored.declared_len() {
            break;
        }
    }
    // A stream shorter than its prefix says (never written so: parts are written together) holds no token.
    if filled >= LENGTH_PREFIX + stored.declared_len() {
        stored.len = stored.declared_len();
    }
    Ok(true)
}

impl Stored {
    fn declared_len(&self) -> usize {
        let [hi, lo, ..] = self.stream;
        usize::from(u16::from_be_bytes([hi, lo])).min(MAX_TOKEN)
    }
}

/// Writes `token` into the free `slot`, all its parts in one transaction (6A84 if the records are full).
pub fn write(ctx: &mut Context<'_>, slot: usize, token: &[u8]) -> Result<(), StatusWord> {
    let len = u16::try_from(token.len())
        .ok()
        .filter(|len| usize::from(*len) <= MAX_TOKEN)
        .ok_or(StatusWord::WRONG_DATA)?;
    let mut stream = [0u8; STREAM];
    let used = LENGTH_PREFIX + token.len();
    let (prefix, rest) = stream.split_at_mut(LENGTH_PREFIX);
    prefix.copy_from_slice(&len.to_be_bytes());
    rest.get_mut(..token.len())
        .ok_or(StatusWord::WRONG_DATA)?
        .copy_from_slice(token);
    let stream = stream.get(..used).ok_or(StatusWord::UNKNOWN)?;
    ctx.begin_transaction()?;
    let written = stream
        .chunks(MAX_RECORD)
        .enumerate()
        .try_for_each(|(part, chunk)| ctx.records()?.put(key(slot, part), chunk));
    match written {
        Ok(()) => ctx.commit_transaction(),
        Err(error) => {
            ctx.abort_transaction();
            Err(error.into())
        }
    }
}

/// Removes the token in `slot`, all its parts in one transaction.
pub fn remove(ctx: &mut Context<'_>, slot: usize) -> Result<(), StatusWord> {
    ctx.begin_transaction()?;
    let removed = (0..PARTS).try_for_each(|part| match ctx.records()?.remove(key(slot, part)) {
        Ok(()) | Err(RecordError::NotFound) => Ok(()),
        Err(error) => Err(error),
    });
    match removed {
        Ok(()) => ctx.commit_transaction(),
        Err(error) => {
            ctx.abort_transaction();
            Err(error.into())
        }
    }
}

/// While serving a shareable call: gives the token in `slot` to the caller, whose records `first_key`,
/// `first_key + 1`, … receive its parts. In the caller's transaction if it opened one, else in one of its own,
/// so the parts move together.
pub fn hand_over(ctx: &mut Context<'_>, slot: usize, first_key: u8) -> Result<(), StatusWord> {
    if usize::from(first_key) + PARTS > 0x100 {
        return Err(StatusWord::WRONG_DATA);
    }
    // Refused only when the caller's transaction is open: the move then belongs to it.
    let own_transaction = ctx.begin_transaction().is_ok();
    let moved = (0..PARTS).try_for_each(|part| {
        let caller_key = first_key.wrapping_add(part as u8);
        match ctx.hand_over(key(slot, part), caller_key) {
            Err(RecordError::NotFound) if part > 0 => Ok(()),
            other => other,
        }
    });
    match moved {
        Ok(()) if own_transaction => ctx.commit_transaction(),
        Ok(()) => Ok(()),
        Err(error) => {
            if own_transaction {
                ctx.abort_transaction();
            }
            Err(error.into())
        }
    }
}

/// The first of the first `slots` slots holding a token of `credit_id` bound to `card_binding` and valid on
/// the card date, with its id.
pub fn find_for(
    ctx: &mut Context<'_>,
    slots: usize,
    credit_id: &[u8],
    card_binding: &[u8; BINDING_LENGTH],
) -> Result<Option<(usize, [u8; TOKEN_ID_LENGTH])>, StatusWord> {
    debug_assert!(slots <= MAX_SLOTS);
    let today = ctx.card_date();
    let mut stored = Stored::empty();
    for slot in 0..slots {
        if !read(ctx, slot, &mut stored)? {
            continue;
        }
        if let Some(envelope) = stored.envelope()
            && envelope.header.credit_id == credit_id
            && envelope.header.card_binding == card_binding
            && envelope.header.expires >= today
        {
            return Ok(Some((slot, *envelope.header.token_id)));
        }
    }
    Ok(None)
}

/// What the store holds, in one pass: the first free slot and the slot of the token with `id`, if any.
#[derive(Debug, Clone, Copy)]
pub struct Scan {
    /// A slot without a token.
    pub free: Option<usize>,
    /// The slot holding the token with the id asked for.
    pub found: Option<usize>,
}

/// Looks through the first `slots` slots for a free one and for the token `id`.
pub fn scan(
    ctx: &mut Context<'_>,
    slots: usize,
    id: &[u8; TOKEN_ID_LENGTH],
) -> Result<Scan, StatusWord> {
    debug_assert!(slots <= MAX_SLOTS);
    let mut scan = Scan {
        free: None,
        found: None,
    };
    let mut stored = Stored::empty();
    for slot in 0..slots {
        if !read(ctx, slot, &mut stored)? {
            scan.free.get_or_insert(slot);
        } else if stored
            .envelope()
            .is_some_and(|envelope| envelope.header.token_id == id)
        {
            scan.found.get_or_insert(slot);
        }
    }
    Ok(scan)
}

/// The first of the first `slots` slots without a token.
pub fn free_slot(ctx: &mut Context<'_>, slots: usize) -> Result<Option<usize>, StatusWord> {
    debug_assert!(slots <= MAX_SLOTS);
    let mut stored = Stored::empty();
    for slot in 0..slots {
        if !read(ctx, slot, &mut stored)? {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

/// Removes every token whose last valid day is before `today` (each in its own transaction: one token's
/// removal is 3 pages, and a STORE TOKEN after it needs its own 6).
pub fn evict_expired(ctx: &mut Context<'_>, slots: usize) -> Result<(), StatusWord> {
    debug_assert!(slots <= MAX_SLOTS);
    let today = ctx.card_date();
    let mut stored = Stored::empty();
    for slot in 0..slots {
        let expired = read(ctx, slot, &mut stored)?
            && stored
                .envelope()
                .is_some_and(|envelope| envelope.header.expires < today);
        if expired {
            remove(ctx, slot)?;
        }
    }
    Ok(())
}
