//! Conformance scripts for linkcard cards: the `*.apdu` format ([`script`], documented in
//! `tests/conformance/README.md`) and the runner ([`runner`]) that plays scripts on cards and reports the outcome for
//! people or as JSON.
//!
//! The runner takes its cards from the caller, as [`CardChannel`](card_client::CardChannel)s: one shared card in a
//! reader ([`runner::run_on_channel`]), or a fresh card per script from a factory ([`runner::run_each`]; the
//! `linkcard` command passes the in-process card of the `emulator` crate). This crate never links the card itself.
//!
//! Secured steps (`open`, `personalize`) use `card_client`'s SCP11 off-card entity with the test keys of a
//! directory ([`fixtures`]; the workspace's are in `tests/fixtures/scp11`), and run on any of those channels.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod fixtures;
pub mod runner;
pub mod script;

pub use runner::{Report, ScriptOutcome};
pub use script::{Pattern, Script, Step, StepKind};
