//! How a host talks to a linkcard card, whatever carries the APDUs. This crate never links the card itself
//! (`card-os`, `card-image`): the in-process card is the `emulator` crate's, and reaches these modules as one more
//! [`CardChannel`] (see `docs/ARCHITECTURE.md`).
//!
//! * [`channel`]: the transport-independent [`CardChannel`], its [`ChannelError`], and an APDU trace ([`Traced`]);
//! * [`t0`]: completing an exchange the way T=0 needs (61xx → GET RESPONSE, 6Cxx → repeat with Le);
//! * `pcsc_channel` (feature `pcsc`, on by default): the channel over PC/SC readers (real, or the virtual card
//!   behind pcscd) and the reader listing;
//! * [`scp11`]: the off-card entity's side of the SCP11 secure channel ([`scp11::Scp11Session`]), certificate
//!   authorities and personalization;
//! * [`keyfile`]: P-256 keys in PEM files (OpenSSL's formats);
//! * [`entropy`]: randomness from the operating system;
//! * [`latency`]: APDU round-trip statistics for the benchmarks;
//! * [`hex`]: hex formatting for traces and reports.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod channel;
pub mod entropy;
pub mod hex;
pub mod keyfile;
pub mod latency;
#[cfg(feature = "pcsc")]
pub mod pcsc_channel;
pub mod scp11;
pub mod t0;

pub use channel::{CardChannel, ChannelError, Traced};
pub use entropy::EntropyError;
