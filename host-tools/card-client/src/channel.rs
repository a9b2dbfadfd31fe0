//! How a host talks to a card, whatever carries the APDUs.
//!
//! [`CardChannel`] is the one interface the conformance runner, the secure channel and the tools use. Its
//! implementations live with their transports: the PC/SC reader in `pcsc_channel`, the in-process card
//! in the `emulator` crate (`emulator::InProcessChannel`), and an SCP11 session wraps any of them
//! ([`crate::scp11::Scp11Session`]). [`Traced`] wraps any channel and logs every exchange in the style of
//! `opensc-tool -s`.

use std::fmt;
use std::io::Write;

use apdu_spec::StatusWord;
use apdu_spec::scp11::Security;

use crate::hex;
use crate::t0::complete_t0_exchange;

/// Why a channel could not carry an exchange. The card's own refusals are status words, not errors.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// No card is present (or it was removed).
    #[error("no card present in {0}")]
    NoCard(String),
    /// The card answered with fewer than the two status bytes every response carries.
    #[error("response of {len} byte(s) is shorter than a status word")]
    ResponseTooShort {
        /// Length of what arrived.
        len: usize,
    },
    /// The transport failed (reader, driver, connection).
    #[error("transport error: {0}")]
    Transport(String),
    /// The PC/SC service failed an operation (the reason is the source).
    #[cfg(feature = "pcsc")]
    #[error("transport error: {what}")]
    Pcsc {
        /// What the channel was doing.
        what: String,
        /// What pcsc-lite answered.
        source: pcsc::Error,
    },
    /// A secure channel over the transport could not secure the command or open its response (an
    /// [`crate::scp11::Scp11Session`] used as a plain [`CardChannel`]).
    #[error(transparent)]
    SecureChannel(Box<crate::scp11::Scp11Error>),
}

/// A connection to one card: send command APDUs, reset and power it.
pub trait CardChannel {
    /// Sends one command APDU; returns the full response, data followed by SW1 SW2.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError>;
    /// Sends one extended-length command APDU that must stay one (for an applet that declares extended length
    /// and answers long: the credit applet's PRESENT), so that the answer comes in one exchange. A plain
    /// channel sends it as it is; a secure channel wraps it as one extended APDU instead of a chain.
    fn transmit_extended(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        self.transmit(apdu)
    }
    /// Warm reset; returns the ATR.
    fn reset(&mut self) -> Result<Vec<u8>, ChannelError>;
    /// Removes power from the card.
    fn power_off(&mut self) -> Result<(), ChannelError>;
    /// Powers the card (cold reset); returns the ATR.
    fn power_on(&mut self) -> Result<Vec<u8>, ChannelError>;
    /// What this channel is connected to, for reports and traces.
    fn describe(&self) -> String;
    /// The secure channel commands sent here travel through, as the card will see them arrive; `None` for a
    /// plain channel. Typed sessions read it to check a command's requirement before they send it.
    fn security(&self) -> Option<Security> {
        None
    }
}

impl<C: CardChannel + ?Sized> CardChannel for &mut C {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        (**self).transmit(apdu)
    }
    fn transmit_extended(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        (**self).transmit_extended(apdu)
    }
    fn reset(&mut self) -> Result<Vec<u8>, ChannelError> {
        (**self).reset()
    }
    fn power_off(&mut self) -> Result<(), ChannelError> {
        (**self).power_off()
    }
    fn power_on(&mut self) -> Result<Vec<u8>, ChannelError> {
        (**self).power_on()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn security(&self) -> Option<Security> {
        (**self).security()
    }
}

impl<C: CardChannel + ?Sized> CardChannel for Box<C> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        (**self).transmit(apdu)
    }
    fn transmit_extended(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        (**self).transmit_extended(apdu)
    }
    fn reset(&mut self) -> Result<Vec<u8>, ChannelError> {
        (**self).reset()
    }
    fn power_off(&mut self) -> Result<(), ChannelError> {
        (**self).power_off()
    }
    fn power_on(&mut self) -> Result<Vec<u8>, ChannelError> {
        (**self).power_on()
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn security(&self) -> Option<Security> {
        (**self).security()
    }
}

/// A channel that logs every exchange, `opensc-tool -s` style:
///
/// ```text
/// Sending: 00 A4 04 00 08 A0 00 00 01 51 00 00 00 00
/// Received (SW1=0x90, SW2=0x00):
/// 6F 10 84 08 A0 00 00 01 51 00 00 00 A5 04 9F 65 o.......Q.....e
/// 01 FF                                           ..
/// ```
pub struct Traced<C> {
    inner: C,
    log: Box<dyn Write + Send>,
}

impl<C: fmt::Debug> fmt::Debug for Traced<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Traced")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<C: CardChannel> Traced<C> {
    /// Logs `inner`'s exchanges to standard error.
    pub fn new(inner: C) -> Self {
        Self::with_log(inner, Box::new(std::io::stderr()))
    }

    /// Logs `inner`'s exchanges to `log`.
    pub fn with_log(inner: C, log: Box<dyn Write + Send>) -> Self {
        Self { inner, log }
    }

    /// The wrapped channel.
    pub fn into_inner(self) -> C {
        self.inner
    }

    // The trace is diagnostic only: failing to write it must not fail the exchange.
    fn line(&mut self, text: &str) {
        let _ = writeln!(self.log, "{text}");
    }

    fn log_atr(&mut self, what: &str, result: &Result<Vec<u8>, ChannelError>) {
        match result {
            Ok(atr) => self.line(&format!("{what}: ATR {}", hex::spaced(atr))),
            Err(e) => self.line(&format!("{what} failed: {e}")),
        }
    }
}

impl<C: CardChannel> Traced<C> {
    fn traced(
        &mut self,
        apdu: &[u8],
        send: impl FnOnce(&mut C, &[u8]) -> Result<Vec<u8>, ChannelError>,
    ) -> Result<Vec<u8>, ChannelError> {
        self.line(&format!("Sending: {}", hex::spaced(apdu)));
        let result = send(&mut self.inner, apdu);
        match &result {
            Ok(response) => {
                for line in received_lines(response) {
                    self.line(&line);
                }
            }
            Err(e) => self.line(&format!("Transmit failed: {e}")),
        }
        result
    }
}

impl<C: CardChannel> CardChannel for Traced<C> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        self.traced(apdu, |inner, apdu| inner.transmit(apdu))
    }

    fn transmit_extended(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        self.traced(apdu, |inner, apdu| inner.transmit_extended(apdu))
    }

    fn reset(&mut self) -> Result<Vec<u8>, ChannelError> {
        let result = self.inner.reset();
        self.log_atr("Reset", &result);
        result
    }

    fn power_off(&mut self) -> Result<(), ChannelError> {
        let result = self.inner.power_off();
        match &result {
            Ok(()) => self.line("Power off"),
            Err(e) => self.line(&format!("Power off failed: {e}")),
        }
        result
    }

    fn power_on(&mut self) -> Result<Vec<u8>, ChannelError> {
        let result = self.inner.power_on();
        self.log_atr("Power on", &result);
        result
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn security(&self) -> Option<Security> {
        self.inner.security()
    }
}

/// Sends the APDUs of one command (one, or a chain) and completes the last exchange (61xx → GET RESPONSE);
/// returns the whole response, data then SW1 SW2. A piece of a chain that is refused ends the chain: its
/// answer is the command's.
pub(crate) fn send_apdus<C: CardChannel + ?Sized>(
    channel: &mut C,
    fragments: &[Vec<u8>],
) -> Result<Vec<u8>, ChannelError> {
    let Some((last, first)) = fragments.split_last() else {
        return Err(ChannelError::Transport("no APDU to send".into()));
    };
    for fragment in first {
        let answer = channel.transmit(fragment)?;
        if split_response(&answer)?.1 != StatusWord::SUCCESS {
            return Ok(answer);
        }
    }
    complete_t0_exchange(last, |apdu| channel.transmit(apdu))
}

/// A response as its data and status word.
pub(crate) fn split_response(answer: &[u8]) -> Result<(&[u8], StatusWord), ChannelError> {
    let split = answer
        .len()
        .checked_sub(2)
        .ok_or(ChannelError::ResponseTooShort { len: answer.len() })?;
    let (data, sw) = answer.split_at(split);
    Ok((data, StatusWord::from_bytes(sw[0], sw[1])))
}

/// The trace of one response: the status line, then the data as a hex dump with an ASCII column.
fn received_lines(response: &[u8]) -> Vec<String> {
    let Some(data_len) = response.len().checked_sub(2) else {
        return vec![format!(
            "Received {} byte(s), no status word: {}",
            response.len(),
            hex::spaced(response)
        )];
    };
    let (data, sw) = response.split_at(data_len);
    let status = StatusWord::from_bytes(sw[0], sw[1]);
    let mut lines = vec![format!(
        "Received (SW1=0x{:02X}, SW2=0x{:02X}){} {}",
        status.sw1(),
        status.sw2(),
        if data.is_empty() { "" } else { ":" },
        status.name()
    )];
    for chunk in data.chunks(16) {
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    char::from(b)
                } else {
                    '.'
                }
            })
            .collect();
        lines.push(format!("{:<48}{ascii}", hex::spaced(chunk)));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    // The trace of the in-process card, and the channel itself, are tested in the `emulator` crate
    // (`tests/in_process.rs`): this crate does not link the card.

    #[test]
    fn hex_dump_has_ascii_column() {
        let lines = received_lines(b"linkcard\x90\x00");
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[1],
            format!("{:<48}linkcard", "6C 69 6E 6B 63 61 72 64")
        );
        assert_eq!(
            received_lines(&[0x90]),
            ["Received 1 byte(s), no status word: 90"]
        );
    }
}
