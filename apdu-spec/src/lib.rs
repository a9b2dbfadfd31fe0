//! The contract at the linkcard card edge, shared by the card and every host.
//!
//! * [`command`]: zero-copy parsing of ISO 7816-4 command APDUs (cases 1, 2S, 3S, 4S, 2E, 3E, 4E);
//! * [`class`]: CLA decoding (logical channel, secure messaging, command chaining);
//! * [`status`]: status words with names and meanings;
//! * [`aid`]: application identifiers and the AIDs this project uses;
//! * [`tlv`]: bounded BER-TLV reading and writing;
//! * [`iso`]: the interindustry commands the runtime answers (SELECT, MANAGE CHANNEL), typed;
//! * [`gp`]: GlobalPlatform card-manager commands, life cycles and GET STATUS records;
//! * [`bank`]: the bank applet's command set (personalization, token storage);
//! * [`credit`]: the credit applet's command set (personalization, token delivery, presentation at the POS);
//! * [`loopback`]: the command set of the diagnostic loopback applet;
//! * [`scp11`]: the GlobalPlatform SCP11 secure channel: certificates, key derivation, secure messaging;
//! * [`token`]: the payment token's envelope as the card reads it (clear header, sealed body; `docs/token.md`);
//! * [`shared`]: messages applets exchange through shareable interfaces, postcard-encoded;
//! * [`builder`] (feature `alloc`): owned commands for hosts, split into chained or extended APDUs.
//!
//! Nothing in this crate panics on input: every parser returns an error the card answers with a status word.
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

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod aid;
pub mod bank;
#[cfg(feature = "alloc")]
pub mod builder;
pub mod class;
pub mod command;
pub mod credit;
pub mod curve;
pub mod gp;
pub mod ins;
pub mod iso;
pub mod loopback;
pub mod scp11;
pub mod shared;
pub mod status;
pub mod tlv;
pub mod token;

pub use aid::Aid;
pub use class::Class;
pub use command::{CommandView, MalformedCommand};
pub use status::StatusWord;
