//! A [`CardChannel`] over PC/SC (pcsc-lite's `pcscd` on Linux), for real readers and the virtual card alike.
//!
//! * Readers are chosen by exact name, a unique case-insensitive part of the name, or index ([`ReaderChoice`]).
//! * The channel waits (bounded) for a card, connects shared with whatever protocol the card offers (T=0 or
//!   T=1), and for T=0 turns 61xx into GET RESPONSE and 6Cxx into a repeat with the right Le, so callers see
//!   complete responses ([`complete_t0_exchange`]). T=1 traffic passes unchanged: the conformance scripts
//!   check 61xx themselves.
//! * After another client resets the card the channel reconnects and retries once; after a removal it waits for
//!   a card and reconnects, but reports the lost command as an error instead of sending it twice.
//! * `reset` is a warm reset (SCardReconnect with SCARD_RESET_CARD); `power_off` disconnects with
//!   SCARD_UNPOWER_CARD and `power_on` reconnects, which makes pcscd power the card up again (a cold reset).

use std::ffi::CString;
use std::time::{Duration, Instant};

use pcsc::{Context, Disposition, Protocol, Protocols, ReaderState, Scope, ShareMode, State};

use crate::channel::{CardChannel, ChannelError};
use crate::t0::complete_t0_exchange;

/// Default bound on waiting for a card to be present.
pub const DEFAULT_CARD_WAIT: Duration = Duration::from_secs(10);

/// Largest response an extended-length APDU can bring: 65536 data bytes and the status word.
const MAX_RESPONSE: usize = 65536 + 2;

/// How the user names a reader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReaderChoice {
    /// Position in the reader list (as `linkcard readers` numbers them).
    Index(usize),
    /// The full name, or a part of it that only one reader has (case-insensitive).
    Name(String),
}

impl ReaderChoice {
    /// A number is an index; anything else a name.
    pub fn parse(text: &str) -> Self {
        match text.trim().parse::<usize>() {
            Ok(index) => Self::Index(index),
            Err(_) => Self::Name(text.to_owned()),
        }
    }

    /// Picks one of `readers`, or says why none fits (listing the readers there are).
    pub fn pick<'a>(&self, readers: &'a [String]) -> Result<&'a str, ChannelError> {
        let listing = || {
            if readers.is_empty() {
                "no readers are connected".to_owned()
            } else {
                let names: Vec<String> = readers
                    .iter()
                    .enumerate()
                    .map(|(i, r)| format!("{i}: {r}"))
                    .collect();
                format!("readers: {}", names.join(", "))
            }
        };
        match self {
            Self::Index(index) => readers.get(*index).map(String::as_str).ok_or_else(|| {
                ChannelError::Transport(format!("no reader number {index}; {}", listing()))
            }),
            Self::Name(name) => {
                if let Some(exact) = readers.iter().find(|r| *r == name) {
                    return Ok(exact);
                }
                let wanted = name.to_lowercase();
                let matches: Vec<&String> = readers
                    .iter()
                    .filter(|r| r.to_lowercase().contains(&wanted))
                    .collect();
                match matches.as_slice() {
                    [one] => Ok(one.as_str()),
                    [] => Err(ChannelError::Transport(format!(
                        "no reader matches \"{name}\"; {}",
                        listing()
                    ))),
                    several => Err(ChannelError::Transport(format!(
                        "\"{name}\" matches several readers ({}); give more of the name or an index",
                        several
                            .iter()
                            .map(|r| format!("\"{r}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))),
                }
            }
        }
    }
}

/// One reader as `linkcard readers` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderInfo {
    /// The reader's name.
    pub name: String,
    /// The ATR of the card in it, if there is one.
    pub atr: Option<Vec<u8>>,
}

fn pcsc_error(what: &str, error: pcsc::Error) -> ChannelError {
    match error {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => {
            ChannelError::Transport(format!("{what}: no PC/SC service (is pcscd running?)"))
        }
        pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard => {
            ChannelError::NoCard(what.to_owned())
        }
        source => ChannelError::Pcsc {
            what: what.to_owned(),
            source,
        },
    }
}

fn establish() -> Result<Context, ChannelError> {
    Context::establish(Scope::User).map_err(|e| pcsc_error("connecting to the PC/SC service", e))
}

fn reader_names(context: &Context) -> Result<Vec<String>, ChannelError> {
    match context.list_readers_owned() {
        Ok(names) => Ok(names
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect()),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(pcsc_error("listing readers", e)),
    }
}

/// Lists the readers and the ATR of each card present.
pub fn list_readers() -> Result<Vec<ReaderInfo>, ChannelError> {
    let context = establish()?;
    let names = reader_names(&context)?;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut states = names
        .iter()
        .map(|n| CString::new(n.as_str()).map(|c| ReaderState::new(c, State::UNAWARE)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ChannelError::Transport(format!("reader name: {e}")))?;
    context
        .get_status_change(Duration::from_millis(0), &mut states)
        .map_err(|e| pcsc_error("reading reader states", e))?;
    Ok(names
        .into_iter()
        .zip(&states)
        .map(|(name, state)| {
            let present = state.event_state().contains(State::PRESENT);
            ReaderInfo {
                name,
                atr: present.then(|| state.atr().to_vec()),
            }
        })
        .collect())
}

/// A connection to the card in one PC/SC reader.
pub struct PcscChannel {
    context: Context,
    reader: CString,
    card: Option<pcsc::Card>,
    protocol: Option<Protocol>,
    wait: Duration,
}

impl std::fmt::Debug for PcscChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscChannel")
            .field("reader", &self.reader)
            .field("protocol", &self.protocol)
            .field("connected", &self.card.is_some())
            .finish()
    }
}

impl PcscChannel {
    /// Connects to the card in the chosen reader, waiting up to `wait` for one to be inserted.
    pub fn open(choice: &ReaderChoice, wait: Duration) -> Result<Self, ChannelError> {
        let context = establish()?;
        let names = reader_names(&context)?;
        let name = choice.pick(&names)?;
        let reader =
            CString::new(name).map_err(|e| ChannelError::Transport(format!("reader name: {e}")))?;
        let mut channel = Self {
            context,
            reader,
            card: None,
            protocol: None,
            wait,
        };
        channel.connect()?;
        Ok(channel)
    }

    /// The reader's name.
    pub fn reader_name(&self) -> String {
        self.reader.to_string_lossy().into_owned()
    }

    fn wait_for_card(&self) -> Result<(), ChannelError> {
        let deadline = Instant::now() + self.wait;
        let mut states = [ReaderState::new(self.reader.clone(), State::UNAWARE)];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.context.get_status_change(left, &mut states) {
                Ok(()) | Err(pcsc::Error::Timeout) => {}
                Err(e) => return Err(pcsc_error("waiting for a card", e)),
            }
            let [state] = &mut states;
            if state.event_state().contains(State::PRESENT)
                && !state.event_state().contains(State::MUTE)
            {
                return Ok(());
            }
            if left.is_zero() {
                return Err(ChannelError::NoCard(format!(
                    "{} (waited {} s)",
                    self.reader_name(),
                    self.wait.as_secs_f32()
                )));
            }
            state.sync_current_state();
        }
    }

    fn connect(&mut self) -> Result<(), ChannelError> {
        self.wait_for_card()?;
        let card = self
            .context
            .connect(&self.reader, ShareMode::Shared, Protocols::ANY)
            .map_err(|e| {
                pcsc_error(
                    &format!("connecting to the card in {}", self.reader_name()),
                    e,
                )
            })?;
        self.protocol = card.status2_owned().ok().and_then(|s| s.protocol2());
        self.card = Some(card);
        Ok(())
    }

    fn connected(&mut self) -> Result<&mut pcsc::Card, ChannelError> {
        if self.card.is_none() {
            self.connect()?;
        }
        self.card
            .as_mut()
            .ok_or_else(|| ChannelError::NoCard(String::new()))
    }

    fn atr(&mut self) -> Result<Vec<u8>, ChannelError> {
        let card = self.connected()?;
        let status = card
            .status2_owned()
            .map_err(|e| pcsc_error("reading the ATR", e))?;
        self.protocol = status.protocol2();
        Ok(status.atr().to_vec())
    }

    /// One raw exchange, recovering from a reset by another client (reconnect, retry once) and from a removal
    /// (reconnect, report the lost command).
    fn raw_transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let mut buffer = vec![0u8; MAX_RESPONSE];
        let first = self
            .connected()?
            .transmit(apdu, &mut buffer)
            .map(<[u8]>::to_vec);
        match first {
            Ok(response) => Ok(response),
            Err(pcsc::Error::ResetCard) => {
                let card = self.connected()?;
                card.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::LeaveCard)
                    .map_err(|e| pcsc_error("reconnecting after a reset", e))?;
                card.transmit(apdu, &mut buffer)
                    .map(<[u8]>::to_vec)
                    .map_err(|e| pcsc_error("sending after a reset", e))
            }
            Err(e @ (pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard)) => {
                self.card = None;
                let lost = pcsc_error(&format!("{} (the command was lost)", self.reader_name()), e);
                self.connect()?;
                Err(lost)
            }
            Err(e) => Err(pcsc_error("transmitting", e)),
        }
    }
}

impl CardChannel for PcscChannel {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        if self.protocol == Some(Protocol::T0) {
            // Split borrow: the closure needs `self` mutably while the protocol is already known.
            let mut send = |bytes: &[u8]| self.raw_transmit(bytes);
            complete_t0_exchange(apdu, &mut send)
        } else {
            self.raw_transmit(apdu)
        }
    }

    fn reset(&mut self) -> Result<Vec<u8>, ChannelError> {
        let card = self.connected()?;
        card.reconnect(ShareMode::Shared, Protocols::ANY, Disposition::ResetCard)
            .map_err(|e| pcsc_error("resetting the card", e))?;
        self.atr()
    }

    fn power_off(&mut self) -> Result<(), ChannelError> {
        if let Some(card) = self.card.take() {
            card.disconnect(Disposition::UnpowerCard)
                .map_err(|(_, e)| pcsc_error("powering the card off", e))?;
        }
        Ok(())
    }

    fn power_on(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.atr()
    }

    fn describe(&self) -> String {
        let protocol = match self.protocol {
            Some(Protocol::T0) => "T=0",
            Some(Protocol::T1) => "T=1",
            Some(Protocol::RAW) => "raw",
            _ => "no protocol",
        };
        format!("PC/SC reader \"{}\" ({protocol})", self.reader_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readers() -> Vec<String> {
        vec![
            "Virtual PCD 00 00".into(),
            "Virtual PCD 00 01".into(),
            "ACS ACR122U PICC".into(),
        ]
    }

    #[test]
    fn reader_choice_by_index_exact_and_part() {
        let r = readers();
        assert_eq!(
            ReaderChoice::parse("1").pick(&r).unwrap(),
            "Virtual PCD 00 01"
        );
        assert_eq!(
            ReaderChoice::parse("Virtual PCD 00 00").pick(&r).unwrap(),
            "Virtual PCD 00 00"
        );
        assert_eq!(
            ReaderChoice::parse("acr122").pick(&r).unwrap(),
            "ACS ACR122U PICC"
        );
        assert_eq!(
            ReaderChoice::parse("00 01").pick(&r).unwrap(),
            "Virtual PCD 00 01"
        );
    }

    #[test]
    fn reader_choice_errors_name_the_candidates() {
        let r = readers();
        let err = ReaderChoice::parse("virtual")
            .pick(&r)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("matches several readers") && err.contains("Virtual PCD 00 01"),
            "{err}"
        );
        let err = ReaderChoice::parse("7").pick(&r).unwrap_err().to_string();
        assert!(
            err.contains("no reader number 7") && err.contains("2: ACS ACR122U PICC"),
            "{err}"
        );
        let err = ReaderChoice::parse("gemalto")
            .pick(&r)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no reader matches"), "{err}");
        let err = ReaderChoice::parse("0").pick(&[]).unwrap_err().to_string();
        assert!(err.contains("no readers are connected"), "{err}");
    }
}
