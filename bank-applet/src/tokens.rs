//! The bank applet's tokens: [`SLOTS`] of them in the shared token store (`token-store`: 3 records per token,
//! written and removed in one transaction; its docs also say how the Fig. 14 move to the credit applet goes).
//!
//! Capacity: 8 tokens × 3 records = 24 of the card's 96 record slots (shared by every applet), plus one for the
//! account data; the card-wide table may fill first (6A84 too, nothing written).

pub use token_store::{PARTS, Scan, Stored, hand_over, read, remove, write};

use apdu_spec::StatusWord;
use apdu_spec::token::{BINDING_LENGTH, TOKEN_ID_LENGTH};
use card_os::Context;

/// How many tokens the applet keeps.
pub const SLOTS: usize = 8;

const _: () = assert!(SLOTS <= token_store::MAX_SLOTS);

/// Looks through every slot for a free one and for the token `id`.
pub fn scan(ctx: &mut Context<'_>, id: &[u8; TOKEN_ID_LENGTH]) -> Result<Scan, StatusWord> {
    token_store::scan(ctx, SLOTS, id)
}

/// Removes every expired token.
pub fn evict_expired(ctx: &mut Context<'_>) -> Result<(), StatusWord> {
    token_store::evict_expired(ctx, SLOTS)
}

/// The first token for `credit_id` and `card_binding`, valid today, with its id.
pub fn find_for(
    ctx: &mut Context<'_>,
    credit_id: &[u8],
    card_binding: &[u8; BINDING_LENGTH],
) -> Result<Option<(usize, [u8; TOKEN_ID_LENGTH])>, StatusWord> {
    token_store::find_for(ctx, SLOTS, credit_id, card_binding)
}
