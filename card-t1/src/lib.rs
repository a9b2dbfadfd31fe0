//! ISO/IEC 7816-3 T=1, the block protocol of contact cards, as the card speaks it:
//!
//! * [`block`]: blocks (I, R, S), their prologue and error detection code, and the [`Framer`] that cuts them
//!   from a byte stream;
//! * [`atr`]: the answer to reset announcing T=1 with its IFSC, waiting times and EDC;
//! * [`card`]: the card's half of the protocol: command APDUs received (chained or not), responses sent (chained
//!   to the reader's IFSD), waiting time extensions, the S-blocks a reader sends and the error recovery of §11.6.
//!   It keeps no APDU buffer: a long command is collected in, and the answer sent from, the card's own memory
//!   ([`ApduMemory`]); [`buffered`] gives it buffers of its own, for hosts and tests.
//!
//! Nothing here does I/O or allocates, and no byte stream makes it panic.
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

pub mod atr;
pub mod block;
pub mod buffered;
pub mod card;

pub use block::{Acknowledge, Block, Edc, FrameError, Framer, Supervisory};
pub use buffered::BufferedCardT1;
pub use card::{ApduMemory, CardT1, Command, Config, Event};
