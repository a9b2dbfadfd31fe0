//! How a host talks to a card, whatever carries the APDUs.
//!
//! [`CardChannel`] is the one interface the conformance runner and the tools use; [`InProcessChannel`] drives
//! the card image directly in this process, and a PC/SC reader will be another implementation. [`Traced`]
//! wraps any channel and logs every exchange in the style of `opensc-tool -s`.

use std::fmt;
use std::io::Write;

use apdu_spec::StatusWord;
use card_image::LinkcardCard;

use crate::hex;

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
}

/// A connection to one card: send command APDUs, reset and power it.
pub trait CardChannel {
    /// Sends one command APDU; returns the full response, data followed by SW1 SW2.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError>;
    /// Warm reset; returns the ATR.
    fn reset(&mut self) -> Result<Vec<u8>, ChannelError>;
    /// Removes power from the card.
    fn power_off(&mut self) -> Result<(), ChannelError>;
    /// Powers the card (cold reset); returns the ATR.
    fn power_on(&mut self) -> Result<Vec<u8>, ChannelError>;
    /// What this channel is connected to, for reports and traces.
    fn describe(&self) -> String;
}

impl<C: CardChannel + ?Sized> CardChannel for &mut C {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        (**self).transmit(apdu)
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
}

impl<C: CardChannel + ?Sized> CardChannel for Box<C> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        (**self).transmit(apdu)
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
}

/// What [`InProcessChannel::describe`] says.
pub const IN_PROCESS_DESCRIPTION: &str = "in-process linkcard card";

/// The linkcard card image running in this process: no reader, no driver.
#[derive(Debug)]
pub struct InProcessChannel {
    // Boxed: the card holds its APDU buffers inline and is several KB.
    card: Box<LinkcardCard>,
}

impl InProcessChannel {
    /// A fresh factory card, powered on.
    pub fn new() -> Self {
        Self::with_card(Box::new(LinkcardCard::new()))
    }

    /// Wraps an existing card and powers it on (a warm reset if it already was).
    pub fn with_card(mut card: Box<LinkcardCard>) -> Self {
        card.seed_random(crate::entropy::os_seed());
        card.power_on();
        Self { card }
    }

    /// The card, to inspect its state.
    pub fn card(&self) -> &LinkcardCard {
        &self.card
    }

    /// The card, to change what a test needs (its random seed, for instance).
    pub fn card_mut(&mut self) -> &mut LinkcardCard {
        &mut self.card
    }
}

impl Default for InProcessChannel {
    fn default() -> Self {
        Self::new()
    }
}

impl CardChannel for InProcessChannel {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        // Room for the largest response data the card holds, plus SW1 SW2.
        let mut out = vec![0u8; card_os::RESPONSE_BUFFER + 2];
        let len = self.card.transmit(apdu, &mut out);
        out.truncate(len);
        Ok(out)
    }

    fn reset(&mut self) -> Result<Vec<u8>, ChannelError> {
        Ok(self.card.power_on().as_bytes().to_vec())
    }

    fn power_off(&mut self) -> Result<(), ChannelError> {
        self.card.power_off();
        Ok(())
    }

    fn power_on(&mut self) -> Result<Vec<u8>, ChannelError> {
        Ok(self.card.power_on().as_bytes().to_vec())
    }

    fn describe(&self) -> String {
        IN_PROCESS_DESCRIPTION.to_owned()
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

impl<C: CardChannel> CardChannel for Traced<C> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        self.line(&format!("Sending: {}", hex::spaced(apdu)));
        let result = self.inner.transmit(apdu);
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
    use std::sync::{Arc, Mutex};

    const SELECT_CARD_MANAGER: [u8; 14] = [
        0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00, 0x00,
    ];

    #[derive(Clone, Default)]
    struct SharedLog(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedLog {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl SharedLog {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn in_process_card_is_powered_and_answers() {
        let mut channel = InProcessChannel::new();
        assert!(channel.card().is_powered());
        let response = channel.transmit(&SELECT_CARD_MANAGER).unwrap();
        assert_eq!(&response[response.len() - 2..], &[0x90, 0x00]);
    }

    #[test]
    fn unpowered_card_answers_for_itself() {
        let mut channel = InProcessChannel::new();
        channel.power_off().unwrap();
        // The card's own answer when unpowered, passed through rather than turned into an error.
        assert_eq!(
            channel.transmit(&SELECT_CARD_MANAGER).unwrap(),
            [0x6F, 0x00]
        );
        let atr = channel.power_on().unwrap();
        assert_eq!(atr.first(), Some(&0x3B));
        assert_eq!(channel.reset().unwrap(), atr);
    }

    #[test]
    fn trace_reads_like_opensc_tool() {
        let log = SharedLog::default();
        let mut channel = Traced::with_log(InProcessChannel::new(), Box::new(log.clone()));
        channel.reset().unwrap();
        channel.transmit(&SELECT_CARD_MANAGER).unwrap();
        channel.transmit(&[0x80, 0xFF, 0x00, 0x00]).unwrap();
        channel.power_off().unwrap();
        let text = log.text();
        assert!(text.starts_with("Reset: ATR 3B "), "{text}");
        assert!(
            text.contains("Sending: 00 A4 04 00 08 A0 00 00 01 51 00 00 00 00\n"),
            "{text}"
        );
        assert!(
            text.contains("Received (SW1=0x90, SW2=0x00): SUCCESS\n6F "),
            "{text}"
        );
        assert!(
            text.contains("Received (SW1=0x6D, SW2=0x00) INS_NOT_SUPPORTED\n"),
            "{text}"
        );
        assert!(text.ends_with("Power off\n"), "{text}");
    }

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
