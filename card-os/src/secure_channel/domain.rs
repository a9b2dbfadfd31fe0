//! A security domain's data in the store: its static key (and a new one waiting for its chain), its
//! certificate chain, its trust anchors, and (the card manager's domain only) the card date. Kept as records
//! under the domain's owner number ([`crate::layout::sd_owner`]), which the applet's own record space cannot
//! reach.

use apdu_spec::StatusWord;
use apdu_spec::scp11::cert::{Certificate, Date};
use apdu_spec::scp11::session::{self, PublicKeyBytes, public_key_of};
use heapless::Vec;
use zeroize::Zeroize;

use super::MAX_ID;
use crate::layout::{CARD_MANAGER_SD, RECORDS};
use crate::records::RecordError;
use crate::store::StoreAccess;

/// Trust anchors one security domain holds.
pub const MAX_ANCHORS: usize = 3;
/// Certificates in a security domain's own chain (GET DATA BF21), leaf last.
pub const MAX_CARD_CERTIFICATES: usize = 2;

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

const _: () = assert!(
    record::CERTIFICATE as usize + MAX_CARD_CERTIFICATES <= record::ANCHORS as usize,
    "certificate records must not run into the anchors record"
);

/// One anchor entry: identifier length, identifier (up to [`MAX_ID`]), key.
const ANCHOR_ENTRY: usize = 1 + MAX_ID + session::PUBLIC_KEY_LENGTH;

/// A private scalar that is wiped when it goes out of scope, whatever the path (p256's scalars are not).
pub(super) struct SecretScalar(pub(super) p256::NonZeroScalar);

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

/// The card's notion of today (for certificate expiry); all zero before personalization sets it.
pub(crate) fn card_date(store: &mut dyn StoreAccess) -> Date {
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
pub(super) fn advance_date(store: &mut dyn StoreAccess, date: Date) -> Result<(), StatusWord> {
    if date > card_date(store) {
        put(store, CARD_MANAGER_SD, record::CARD_DATE, &date.0)?;
    }
    Ok(())
}

/// Whether a date is a real calendar date in BCD (`20 26 11 24`).
pub(super) fn valid_date(date: Date) -> bool {
    date.ymd().is_some()
}

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

/// The domain's static private key SK.SD.ECKA.
pub(super) fn static_key(store: &mut dyn StoreAccess, owner: u8) -> Option<SecretScalar> {
    stored_key(store, owner, record::STATIC_KEY)
}

/// Whether `owner`'s domain holds a static key (answers the handshake).
pub(crate) fn has_static_key(store: &mut dyn StoreAccess, owner: u8) -> bool {
    let mut key = [0u8; 32];
    let found = RECORDS
        .space(store, owner)
        .get(record::STATIC_KEY, &mut key)
        .is_ok();
    key.zeroize();
    found
}

/// Keeps `key` aside until the chain that certifies it arrives ([`store_certificates`]).
pub(super) fn set_pending_key(
    store: &mut dyn StoreAccess,
    owner: u8,
    key: &SecretScalar,
) -> Result<(), StatusWord> {
    let mut bytes: [u8; 32] = p256::elliptic_curve::ff::PrimeField::to_repr(&*key.0).into();
    let result = put(store, owner, record::PENDING_KEY, &bytes);
    bytes.zeroize();
    result
}

/// Writes the domain's chain (leaf first … last) into `out`; its length, 0 when there is none.
pub(super) fn read_chain(store: &mut dyn StoreAccess, owner: u8, out: &mut [u8]) -> usize {
    let space = RECORDS.space(store, owner);
    let mut len = 0;
    for i in 0..MAX_CARD_CERTIFICATES as u8 {
        let Some(spare) = out.get_mut(len..) else {
            break;
        };
        match space.get(record::CERTIFICATE + i, spare) {
            Ok(n) => len += n,
            Err(_) => break,
        }
    }
    len
}

/// Finds the anchor with identifier `id` in the domain's anchors record.
pub(super) fn find_anchor(
    store: &mut dyn StoreAccess,
    owner: u8,
    id: &[u8],
) -> Option<PublicKeyBytes> {
    let mut buf = [0u8; MAX_ANCHORS * ANCHOR_ENTRY];
    let n = RECORDS
        .space(store, owner)
        .get(record::ANCHORS, &mut buf)
        .ok()?;
    anchors(buf.get(..n)?)
        .find(|(anchor_id, _)| *anchor_id == id)
        .and_then(|(_, key)| PublicKeyBytes::try_from(key).ok())
}

/// The (identifier, key) entries of an anchors record; a malformed tail ends the list.
fn anchors(mut rest: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    core::iter::from_fn(move || {
        let (&len, tail) = rest.split_first()?;
        let (id, tail) = tail.split_at_checked(usize::from(len))?;
        let (key, tail) = tail.split_at_checked(session::PUBLIC_KEY_LENGTH)?;
        rest = tail;
        Some((id, key))
    })
}

/// Adds (or replaces, by identifier) one trust anchor; 6A84 beyond [`MAX_ANCHORS`].
pub(super) fn add_anchor(
    store: &mut dyn StoreAccess,
    owner: u8,
    id: &[u8],
    key: &PublicKeyBytes,
) -> Result<(), StatusWord> {
    let mut old = [0u8; MAX_ANCHORS * ANCHOR_ENTRY];
    let n = RECORDS
        .space(&mut *store, owner)
        .get(record::ANCHORS, &mut old)
        .unwrap_or(0);
    let mut new: Vec<u8, { MAX_ANCHORS * ANCHOR_ENTRY }> = Vec::new();
    let mut kept = 0;
    for (entry_id, entry_key) in anchors(old.get(..n).unwrap_or_default()).filter(|(i, _)| *i != id)
    {
        push_anchor(&mut new, entry_id, entry_key)?;
        kept += 1;
    }
    if kept >= MAX_ANCHORS {
        return Err(StatusWord::NOT_ENOUGH_MEMORY);
    }
    push_anchor(&mut new, id, key)?;
    put(store, owner, record::ANCHORS, &new)
}

fn push_anchor<const N: usize>(
    out: &mut Vec<u8, N>,
    id: &[u8],
    key: &[u8],
) -> Result<(), StatusWord> {
    let len = u8::try_from(id.len()).map_err(|_| StatusWord::WRONG_DATA)?;
    out.push(len).map_err(|_| StatusWord::NOT_ENOUGH_MEMORY)?;
    out.extend_from_slice(id)
        .map_err(|_| StatusWord::NOT_ENOUGH_MEMORY)?;
    out.extend_from_slice(key)
        .map_err(|_| StatusWord::NOT_ENOUGH_MEMORY)
}

/// Stores a domain's certificate chain (leaf last). The leaf certifies either the key waiting aside, which then
/// becomes the domain's key, or the domain's current key. Key and chain change in one store transaction: a
/// power loss leaves the old pair or the new one.
pub(super) fn store_certificates(
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
    let certifies =
        |key: &Option<SecretScalar>| key.as_ref().is_some_and(|k| public_key_of(k) == leaf_key);
    let pending = stored_key(store, owner, record::PENDING_KEY);
    let current = static_key(store, owner);
    let activate = if certifies(&pending) {
        true
    } else if certifies(&current) {
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
    match write_chain(store, owner, &pieces, pending.filter(|_| activate)) {
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
    pieces: &[&[u8]; MAX_CARD_CERTIFICATES],
    new_key: Option<SecretScalar>,
) -> Result<(), StatusWord> {
    if let Some(key) = new_key {
        let mut bytes: [u8; 32] = p256::elliptic_curve::ff::PrimeField::to_repr(&*key.0).into();
        let result = put(store, owner, record::STATIC_KEY, &bytes);
        bytes.zeroize();
        result?;
        remove(store, owner, record::PENDING_KEY)?;
    }
    for (key, piece) in (record::CERTIFICATE..).zip(pieces) {
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
        Ok(()) | Err(RecordError::NotFound) => Ok(()),
        Err(_) => Err(StatusWord::MEMORY_FAILURE),
    }
}

fn put(store: &mut dyn StoreAccess, owner: u8, key: u8, data: &[u8]) -> Result<(), StatusWord> {
    RECORDS
        .space(store, owner)
        .put(key, data)
        .map_err(|e| match e {
            RecordError::Full | RecordError::TooLarge => StatusWord::NOT_ENOUGH_MEMORY,
            _ => StatusWord::MEMORY_FAILURE,
        })
}
