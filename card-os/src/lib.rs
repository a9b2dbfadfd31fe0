//! The linkcard card runtime: a Java Card/GlobalPlatform-style operating system for one card image.
//!
//! * [`card`]: the APDU engine every transport drives ([`Card::power_on`], [`Card::transmit`],
//!   [`Card::power_off`]): length checks, command chaining, response chaining with 61xx/GET RESPONSE;
//! * [`runtime`]: logical channels, SELECT, MANAGE CHANNEL and dispatch;
//! * [`card_manager`]: the GlobalPlatform Issuer Security Domain (GET STATUS, INSTALL, DELETE, SET STATUS);
//! * [`registry`]: installed instances and their life cycle;
//! * [`applet`]: the [`Applet`] trait, the [`Context`] and [`Reply`] an applet gets;
//! * [`image`]: the applet types a card image carries ([`Image`]);
//! * [`atr`]: the Answer To Reset;
//! * [`nvm`]: page flash as a backend trait, a RAM backend and a tear-injecting wrapper for tests;
//! * [`store`]: the journaled persistent store with all-or-nothing transactions across power loss;
//! * [`pin`]: `OwnerPIN`-style PIN over the store;
//! * [`records`]: persistent records owned by applet contexts (the firewall's persistent half);
//! * [`persistence`]: the card life cycle and registry in the store, re-created at power-on;
//! * [`transient`]: RAM buffers cleared (zeroized) on reset or deselect;
//! * [`secure_channel`]: GlobalPlatform SCP11 for the card manager and personalized instances.
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
pub mod card_manager;
pub mod image;
pub mod nvm;
pub mod persistence;
pub mod pin;
pub mod records;
pub mod registry;
pub mod runtime;
pub mod secure_channel;
pub mod store;
pub mod transient;

pub use applet::{Applet, Context, Reply};
pub use atr::Atr;
pub use card::{CHAIN_BUFFER, Card, RESPONSE_BUFFER};
pub use image::{FactoryInstance, Image, LoadFile};
pub use secure_channel::Security;

#[cfg(test)]
mod firewall_tests;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod tests;
