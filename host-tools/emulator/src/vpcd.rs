//! The card image as a virtual card behind pcscd, through the vsmartcard `vpcd` reader driver.
//!
//! vpcd is a pcscd reader driver that listens on TCP (port 35963 for its first slot, "Virtual PCD 00 00",
//! 35964 for the second, "Virtual PCD 00 01"); the virtual card is the TCP **client**. Every message, both
//! ways, is a big-endian u16 length followed by that many bytes:
//!
//! | from vpcd | meaning | reply |
//! |---|---|---|
//! | 1 byte `00` | power off | none |
//! | 1 byte `01` | power on | none |
//! | 1 byte `02` | reset | none |
//! | 1 byte `04` | send the ATR | the ATR |
//! | any other 1 byte | (a control byte vpcd may add, or a malformed APDU: they look the same) | `67 00` |
//! | 0 bytes, or more than a command APDU can hold | malformed | `67 00` (the bytes are read, to stay in step) |
//! | anything else | a command APDU | the response APDU |
//!
//! **vpcd listens on all network interfaces**: whoever can reach its port can act as a card to this machine's
//! pcscd. Firewall the port, or give pcscd a reader configuration of its own (`pcscd -c DIR`).
//!
//! TCP_NODELAY is set on the connection and TCP_QUICKACK before every read: without them each APDU waits for a
//! delayed ACK (~40 ms on Linux). When the connection drops (pcscd restarted) the card is powered off and the
//! bridge reconnects with exponential back-off; the same card object is kept, so what the card stores survives.
//!
//! vpcd asks for the ATR about every 400 ms to see whether a card is present, so those requests are logged at
//! trace level; power changes and every APDU are logged at debug level, inside a `vpcd{slot=N}` span.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use apdu_spec::StatusWord;
use card_client::{EntropyError, hex};
use card_image::{LinkcardCard, LinkcardImage};
use card_os::Card;
use card_os::nvm::Nvm;
use socket2::SockRef;
use tracing::{debug, info, trace};

/// vpcd's port for slot 0 (0x8C7B); slot N listens on this port + N.
pub const DEFAULT_PORT: u16 = 35963;

/// The largest command APDU the card can take: header, extended Lc, a full chain buffer, extended Le.
const MAX_COMMAND: usize = 4 + 3 + card_os::CHAIN_BUFFER + 2;

/// Back-off between connection attempts: from the first to the longest wait.
const FIRST_RETRY: Duration = Duration::from_millis(50);
const LONGEST_RETRY: Duration = Duration::from_secs(2);

/// How long one connection attempt may take. Bounded so that a stop request is honoured even while connecting
/// to a host that drops packets (the system's own limit is minutes).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Where one virtual card connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// vpcd's host (127.0.0.1 unless pcscd runs elsewhere).
    pub host: String,
    /// vpcd's port for this slot.
    pub port: u16,
    /// The slot number, for messages.
    pub slot: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Why serving one connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ServeError<E> {
    /// The connection failed (vpcd went away, pcscd restarted): the bridge reconnects.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The card cannot go on (it could not be seeded at power-on; the firmware's emulator died): the bridge stops.
    #[error(transparent)]
    Card(E),
}

/// A card the bridge presents to vpcd: the card image in this process, or the firmware under QEMU
/// ([`crate::firmware`]).
pub trait BridgedCard {
    /// Why the card cannot go on.
    type Error: std::error::Error + Send + Sync + 'static;
    /// Its answer to reset.
    fn atr(&self) -> Vec<u8>;
    /// Power on, or a warm reset.
    fn power_on(&mut self) -> Result<(), Self::Error>;
    fn power_off(&mut self);
    /// Runs one command APDU and answers the response APDU.
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, Self::Error>;
}

/// The card image in this process, seeded by the operating system at every power-on and reset.
impl<N: Nvm> BridgedCard for Card<LinkcardImage, N> {
    type Error = EntropyError;
    fn atr(&self) -> Vec<u8> {
        LinkcardCard::ATR.as_bytes().to_vec()
    }
    fn power_on(&mut self) -> Result<(), EntropyError> {
        crate::seed_from_os(self)?;
        Card::power_on(self);
        Ok(())
    }
    fn power_off(&mut self) {
        Card::power_off(self);
    }
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, EntropyError> {
        let mut response = vec![0u8; card_os::RESPONSE_BUFFER + 2];
        let n = Card::transmit(self, apdu, &mut response);
        response.truncate(n);
        Ok(response)
    }
}

/// Tells every bridge to stop, and wakes the ones blocked in a read by shutting their connections.
#[derive(Debug, Default)]
pub struct Stop {
    requested: AtomicBool,
    next_id: AtomicU64,
    connections: Mutex<Vec<(u64, TcpStream)>>,
}

impl Stop {
    /// A shared stop switch.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Requests a stop.
    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        let connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (_, connection) in connections.iter() {
            // Already closed is fine: the point is to end a blocking read.
            let _ = connection.shutdown(Shutdown::Both);
        }
    }

    /// Whether a stop was requested.
    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Registers a connection so that a stop request can end its blocking read; returns its key for
    /// [`Self::unwatch`]. Without a handle to shut, a stop could not reach the bridge: that fails the connection.
    fn watch(&self, connection: &TcpStream) -> io::Result<u64> {
        let clone = connection.try_clone()?;
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, clone));
        if self.requested() {
            // A stop that came before the registration; already closed is fine.
            let _ = connection.shutdown(Shutdown::Both);
        }
        Ok(id)
    }

    fn unwatch(&self, id: u64) {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(watched, _)| *watched != id);
    }

    /// Sleeps for `duration` or until a stop is requested.
    fn sleep(&self, duration: Duration) {
        let deadline = Instant::now() + duration;
        while !self.requested() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
    }
}

/// Runs one virtual card until `stop` is requested: connects to vpcd, serves it, reconnects when it goes away.
/// `on_connect` is called after each successful connection (the CLI prints a line). Only a card that cannot be
/// seeded ends it early, with that error.
pub fn run<C: BridgedCard>(
    endpoint: &Endpoint,
    card: &mut C,
    stop: &Stop,
    on_connect: &dyn Fn(&Endpoint),
) -> Result<(), C::Error> {
    // Every message below, APDUs included, says which card it is about when several slots run.
    let _slot = tracing::info_span!("vpcd", slot = endpoint.slot).entered();
    let mut retry = FIRST_RETRY;
    let mut hinted = false;
    while !stop.requested() {
        match connect(endpoint) {
            Ok(connection) => {
                retry = FIRST_RETRY;
                hinted = false;
                let outcome = match stop.watch(&connection) {
                    Ok(id) => {
                        on_connect(endpoint);
                        let outcome = serve(&connection, card);
                        stop.unwatch(id);
                        outcome
                    }
                    Err(e) => Err(e.into()),
                };
                // The reader is gone: the card loses power, its registry stays.
                card.power_off();
                match outcome {
                    Err(ServeError::Card(e)) => return Err(e),
                    // Our own shutdown ended the read: nothing went wrong on vpcd's side.
                    _ if stop.requested() => {
                        debug!("disconnected from vpcd at {endpoint}: stopping")
                    }
                    Ok(()) => info!("vpcd at {endpoint} closed the connection; reconnecting"),
                    Err(e) => info!("connection to vpcd at {endpoint} lost: {e}; reconnecting"),
                }
            }
            Err(e) => {
                // One hint per outage; the retries themselves are routine (pcscd restarting) and stay at debug.
                if !hinted {
                    info!(
                        "cannot connect to vpcd at {endpoint}: {e} (is pcscd running with the vpcd driver?); retrying"
                    );
                    hinted = true;
                } else {
                    debug!("cannot connect to vpcd at {endpoint}: {e}; retrying in {retry:?}");
                }
                stop.sleep(retry);
                retry = (retry * 2).min(LONGEST_RETRY);
            }
        }
    }
    Ok(())
}

/// Connects to the first of `endpoint`'s addresses that answers, each attempt bounded by [`CONNECT_TIMEOUT`].
fn connect(endpoint: &Endpoint) -> io::Result<TcpStream> {
    let mut last_error = None;
    for address in (endpoint.host.as_str(), endpoint.port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
            Ok(connection) => return Ok(connection),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the host name has no address")))
}

/// Serves one connection until vpcd closes it (`Ok`) or it fails; the card is seeded from the operating system at
/// every power-on and reset.
pub fn serve<C: BridgedCard>(
    connection: &TcpStream,
    card: &mut C,
) -> Result<(), ServeError<C::Error>> {
    connection.set_nodelay(true)?;
    let socket = SockRef::from(connection);
    let mut reader = connection;
    let mut writer = connection;
    let mut message = vec![0u8; MAX_COMMAND];
    loop {
        // Linux turns quick ACKs off again after a while: ask before every read.
        socket.set_tcp_quickack(true)?;
        let mut length = [0u8; 2];
        match reader.read_exact(&mut length) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let length = usize::from(u16::from_be_bytes(length));
        let Some(payload) = message.get_mut(..length).filter(|p| !p.is_empty()) else {
            // Empty, or longer than any APDU the card can take: read it away and refuse it.
            io::copy(&mut (&mut reader).take(length as u64), &mut io::sink())?;
            debug!("malformed message of {length} bytes");
            send(&mut writer, &StatusWord::WRONG_LENGTH.to_bytes())?;
            continue;
        };
        reader.read_exact(payload)?;
        match payload {
            [0x00] => {
                debug!("power off");
                card.power_off();
            }
            [0x01] => {
                debug!("power on");
                card.power_on().map_err(ServeError::Card)?;
            }
            [0x02] => {
                debug!("reset");
                card.power_on().map_err(ServeError::Card)?;
            }
            [0x04] => {
                let atr = card.atr();
                // vpcd's presence poll: frequent, so below debug.
                trace!("ATR request: {}", hex::spaced(&atr));
                send(&mut writer, &atr)?;
            }
            [other] => {
                debug!("unknown control byte {other:02X}");
                send(&mut writer, &StatusWord::WRONG_LENGTH.to_bytes())?;
            }
            apdu => {
                let response = card.transmit(apdu).map_err(ServeError::Card)?;
                let answer = response.as_slice();
                if tracing::enabled!(tracing::Level::DEBUG) {
                    let status = match answer {
                        [.., sw1, sw2] => StatusWord::from_bytes(*sw1, *sw2).name(),
                        _ => "no status",
                    };
                    debug!("C-APDU {}", hex::spaced(apdu));
                    debug!("R-APDU {} ({status})", hex::spaced(answer));
                }
                send(&mut writer, answer)?;
            }
        }
    }
}

fn send(writer: &mut &TcpStream, payload: &[u8]) -> io::Result<()> {
    let length = u16::try_from(payload.len())
        .map_err(|_| io::Error::other("response longer than 65535 bytes"))?;
    let mut message = Vec::with_capacity(2 + payload.len());
    message.extend_from_slice(&length.to_be_bytes());
    message.extend_from_slice(payload);
    writer.write_all(&message)
}
