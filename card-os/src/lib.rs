//! The linkcard card runtime: a Java Card/GlobalPlatform-style operating system for one card image.
//!
//! What each kind of user sees:
//! * **applets**: [`applet`], the whole applet API (entry points, context, records, PIN, transient memory,
//!   the secure channel a command came through);
//! * **images**: [`image`] ([`Image`], [`Install`], [`applets!`]): which applet types a card carries;
//! * **transports** (in-process tests, the PC/SC bridge, the firmware): [`Card::power_on`], [`Card::transmit`],
//!   [`Card::power_off`] over any [`nvm::Nvm`] memory, and the [`atr`] and [`layout`] figures.
//!
//! Inside, one module each: [`card`] (the APDU engine: lengths, chaining, 61xx/GET RESPONSE), `runtime`
//! (channels, SELECT, dispatch; the one writer of runtime state), `card_manager` (the GlobalPlatform ISD),
//! `secure_channel` (SCP11), `registry`, `persistence` (life cycle and registry in the store), [`store`] (the
//! journaled store with all-or-nothing transactions across power loss), `records` (per-owner records: the
//! firewall's persistent half), `pin`, `transient`.
//!
//! No allocator, no `unsafe`, and no panic reachable from input: every byte string gets a status word.
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

pub mod applet;
pub mod atr;
pub mod card;
mod card_manager;
pub mod entropy;
pub mod image;
pub mod layout;
pub mod nvm;
mod persistence;
mod pin;
mod records;
mod registry;
mod runtime;
mod secure_channel;
pub mod store;
mod transient;

/// The card edge contract, for [`applets!`] and applet crates.
pub use apdu_spec;
pub use applet::{Applet, Context, Reply};
pub use atr::Atr;
pub use card::{Answer, CHAIN_BUFFER, COMMAND_APDU, Card, RESPONSE_BUFFER};
pub use card_manager::STATUS_PAGE;
pub use image::{AppletSet, FactoryInstance, Image, Install, LoadFile};
pub use registry::{MAX_INSTANCES, MAX_PARAMETERS};
pub use runtime::CHANNELS;
pub use secure_channel::{MAX_ANCHORS, MAX_CARD_CERTIFICATES, SESSIONS};

#[cfg(test)]
mod firewall_tests;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod tests;
