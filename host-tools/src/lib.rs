//! Host-side tools for linkcard cards.
//!
//! * [`channel`]: the transport-independent [`CardChannel`] a host talks to a card through, the in-process
//!   card ([`InProcessChannel`]) and an APDU trace ([`Traced`]);
//! * [`script`]: the conformance script format (`*.apdu`, see `tests/conformance/README.md`) and its
//!   response [`Pattern`]s;
//! * [`conformance`]: runs scripts against a channel and reports the outcome for people or as JSON;
//! * [`pcsc_channel`]: the same channel over PC/SC readers (real, or the virtual card behind pcscd);
//! * [`vpcd`]: the card image as a virtual card for pcscd's vpcd driver (`linkcard card emulate`);
//! * [`latency`]: APDU round-trip statistics for the benchmark;
//! * [`file_nvm`]: the card's non-volatile memory kept in a versioned file.
//!
//! The `linkcard` command line tool is built on these modules.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod channel;
pub mod conformance;
pub mod file_nvm;
pub mod hex;
pub mod latency;
pub mod pcsc_channel;
pub mod script;
pub mod vpcd;

pub use channel::{CardChannel, ChannelError, InProcessChannel, Traced};
pub use conformance::{Report, ScriptOutcome};
pub use script::{Pattern, Script, Step, StepKind};
