//! How a host talks to a linkcard card, whatever carries the APDUs. This crate never links the card itself
//! (`card-os`, `card-image`): the in-process card is the `emulator` crate's, and reaches these modules as one more
//! [`CardChannel`] (see `docs/ARCHITECTURE.md`).
//!
//! * [`channel`]: the transport-independent [`CardChannel`], its [`ChannelError`], and an APDU trace ([`Traced`]);
//! * [`card_manager`]: a typed session with the card manager ([`card_manager::CardManagerSession`]), one
//!   method per card-manager command, plain or through an SCP11 session, status words mapped to
//!   [`card_manager::CardManagerError`];
//! * [`t0`]: completing an exchange the way T=0 needs (61xx → GET RESPONSE, 6Cxx → repeat with Le);
//! * `pcsc_channel` (feature `pcsc`, on by default): the channel over PC/SC readers (real, or the virtual card
//!   behind pcscd) and the reader listing;
//! * [`scp11`]: the off-card entity's side of the SCP11 secure channel ([`scp11::Scp11Session`]), certificate
//!   authorities and personalization;
//! * [`bank`], [`credit`]: typed sessions with the two payment applets; [`issuing`]: a card issued with both;
//! * [`keyfile`]: P-256 keys in PEM files (OpenSSL's formats);
//! * [`entropy`]: randomness from the operating system;
//! * [`latency`]: APDU round-trip statistics for the benchmarks;
//! * [`hex`]: hex formatting for traces and reports.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod bank;
pub mod card_manager;
pub mod channel;
pub mod credit;
pub mod entropy;
pub mod hex;
pub mod issuing;
pub mod keyfile;
pub mod latency;
#[cfg(feature = "pcsc")]
pub mod pcsc_channel;
pub mod scp11;
pub mod t0;

pub use channel::{CardChannel, ChannelError, Traced};
pub use entropy::EntropyError;

/// An error and its sources as one line, `outer: inner: innermost`, the way reports and the `linkcard` command
/// print them. The errors of this workspace keep causes out of their own message; a source whose message the
/// text already ends with (a dependency that repeats its cause) is not repeated.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    for message in std::iter::successors(Some(error), |e| e.source()).map(ToString::to_string) {
        if text.ends_with(&message) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot read ca.key")]
    struct Outer(#[source] Repeating);

    /// A cause that repeats its own source in its message, as some dependencies' errors do.
    #[derive(Debug, thiserror::Error)]
    #[error("bad DER: tag 00")]
    struct Repeating(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("tag 00")]
    struct Inner;

    #[test]
    fn error_chain_joins_sources_once() {
        assert_eq!(
            super::error_chain(&Outer(Repeating(Inner))),
            "cannot read ca.key: bad DER: tag 00"
        );
        assert_eq!(super::error_chain(&Inner), "tag 00");
    }
}
