//! Host-side tools for linkcard cards.
//!
//! * [`channel`]: the transport-independent [`CardChannel`] a host talks to a card through, the in-process
//!   card ([`InProcessChannel`]) and an APDU trace ([`Traced`]);
//! * [`scp11`]: the off-card entity's side of the SCP11 secure channel ([`scp11::Scp11Session`]);
//! * [`entropy`]: randomness from the operating system;
//! * [`keyfile`]: P-256 keys in PEM files (OpenSSL's formats);
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
pub mod entropy;
pub mod file_nvm;
pub mod hex;
pub mod keyfile;
pub mod latency;
pub mod pcsc_channel;
pub mod scp11;
pub mod script;
pub mod vpcd;

pub use channel::{CardChannel, ChannelError, InProcessChannel, Traced};
pub use conformance::{Report, ScriptOutcome};
pub use script::{Pattern, Script, Step, StepKind};
