//! GlobalPlatform SCP11 (Card Specification v2.3 Amendment F) on NIST P-256 with AES-128: the part of the
//! secure channel both sides must agree on byte for byte.
//!
//! * [`cert`]: GP SCP11 certificates (tag `7F21`), their linkcard [`cert::Role`], parsing and verification
//!   (and, with the `signing` feature, creation);
//! * [`session`]: the handshake data, the X9.63 key derivation into receipt key and session keys, the receipt,
//!   and SCP03-style secure messaging (C-MAC, C-DEC, R-MAC, R-ENC) for both directions;
//! * [`commands`]: the handshake commands (GET DATA BF21, PERFORM SECURITY OPERATION, MUTUAL and INTERNAL
//!   AUTHENTICATE), parsed by the card and encoded by hosts;
//! * [`security`]: what a command arrived through ([`Security`]) and what it needs ([`Requirement`]).
//!
//! The card runs the ECDH (static and ephemeral) itself and the host runs its own; both feed the shared secrets
//! into [`session::derive`], so key derivation and secure messaging exist exactly once.

pub mod cert;
pub mod commands;
pub mod personalization;
pub mod security;
pub mod session;

pub use commands::{HandshakeCommand, KeyReference};
pub use security::{Plain, Requirement, Security};

/// INS of PERFORM SECURITY OPERATION (upload of the OCE certificate chain).
pub const INS_PERFORM_SECURITY_OPERATION: u8 = 0x2A;
/// INS of MUTUAL AUTHENTICATE (SCP11a).
pub const INS_MUTUAL_AUTHENTICATE: u8 = 0x82;
/// INS of INTERNAL AUTHENTICATE (SCP11b).
pub const INS_INTERNAL_AUTHENTICATE: u8 = 0x88;
/// GET DATA P1P2 of the certificate store (the card's certificate chain, leaf last).
pub const TAG_CERTIFICATE_STORE: u16 = 0xBF21;
/// Key identifier (KID) of the card's SCP11a key (P2 of MUTUAL AUTHENTICATE, `83` of GET DATA BF21).
pub const KID_SCP11A: u8 = 0x11;
/// Key identifier of the card's SCP11b key (P2 of INTERNAL AUTHENTICATE).
pub const KID_SCP11B: u8 = 0x13;
/// Key identifier of the OCE's CA (P2 of PERFORM SECURITY OPERATION).
pub const KID_OCE: u8 = 0x10;

/// Which SCP11 variant a handshake runs (the second byte of tag `90` in the control reference template).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Mutual authentication: the OCE proves its static key through a certificate chain.
    A,
    /// The card authenticates to an anonymous OCE (ephemeral key only).
    B,
    /// Like A, but the card uses its static key in place of an ephemeral one (no card randomness).
    C,
}

impl Variant {
    /// The SCP "i" parameter carried in tag `90`.
    pub const fn parameter(self) -> u8 {
        match self {
            Self::A => 0x01,
            Self::B => 0x00,
            Self::C => 0x03,
        }
    }
    /// The variant whose "i" parameter this is.
    pub const fn from_parameter(i: u8) -> Option<Self> {
        match i {
            0x01 => Some(Self::A),
            0x00 => Some(Self::B),
            0x03 => Some(Self::C),
            _ => None,
        }
    }
}
