//! The credit applet's tokens: [`SLOTS`] of them in the shared token store (`token-store`: 3 records per token,
//! written and removed in one transaction).
//!
//! Capacity: 4 tokens × 3 records = 12 of the card's 96 record slots (shared by every applet), plus three for
//! the card data, the signing key and the ATC; beyond, STORE TOKEN answers 6A84 with nothing written (the
//! card-wide table may fill first: 6A84 too).

pub use token_store::{PARTS, Scan, Stored, part_key, read, remove, write};

use apdu_spec::StatusWord;
use apdu_spec::token::TOKEN_ID_LENGTH;
use card_os::Context;

/// How many tokens the applet keeps.
pub const SLOTS: usize = 4;

const _: () = assert!(SLOTS <= token_store::MAX_SLOTS);

/// Looks through every slot for a free one and for the token `id`.
pub fn scan(ctx: &mut Context<'_>, id: &[u8; TOKEN_ID_LENGTH]) -> Result<Scan, StatusWord> {
    token_store::scan(ctx, SLOTS, id)
}

/// Removes every expired token.
pub fn evict_expired(ctx: &mut Context<'_>) -> Result<(), StatusWord> {
    token_store::evict_expired(ctx, SLOTS)
}

/// The first slot without a token.
pub fn free_slot(ctx: &mut Context<'_>) -> Result<Option<usize>, StatusWord> {
    token_store::free_slot(ctx, SLOTS)
}
