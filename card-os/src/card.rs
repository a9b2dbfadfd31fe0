//! The APDU engine: one [`Card`] that every transport drives with `power_on`, `transmit` and `power_off`.
//!
//! For each command APDU:
//! 1. length check (ISO 7816-4 cases 1-4E): malformed → 6700;
//! 2. GET RESPONSE (INS C0, **any CLA**, since OpenSC sends `B0 C0 00 00 FF`) returns the next piece of a
//!    response announced with 61xx; without one pending, 6985. Any other command discards what was pending;
//! 3. CLA: invalid → 6E00; a channel that is not open → 6881;
//! 4. command chaining (CLA bit 10): fragments with the same CLA/INS/P1/P2 are collected (each answered 9000)
//!    into a buffer of [`CHAIN_BUFFER`] bytes (more → 6700, chain dropped); the fragment without the bit
//!    completes the command, which then runs as if it had arrived whole. Any other command abandons the chain;
//! 5. routing (see [`crate::runtime`]), with extended-length commands refused (6700) for applets that do not
//!    declare support;
//! 6. response: data is kept with 9000 and warnings (62xx/63xx). If it is longer than Ne (256 when Le is
//!    absent) or than the caller's buffer, the first part goes out with 61xx (xx = bytes left, 00 for 256 or
//!    more) and GET RESPONSE fetches the rest; the command's own status word comes with the last part.

use apdu_spec::{CommandView, StatusWord, ins};
use zeroize::Zeroize;

use crate::applet::Reply;
use crate::atr::Atr;
use crate::image::Image;
use crate::layout::CardNvm;
use crate::nvm::Nvm;
use crate::runtime::Runtime;

/// Largest command data field after chained fragments are joined, and largest extended command data.
pub const CHAIN_BUFFER: usize = 2048;
/// Largest response data one command can produce.
pub const RESPONSE_BUFFER: usize = 2048;

/// Ne when a command carries no Le.
const NE_WITHOUT_LE: usize = 256;

#[derive(Debug)]
struct Chain {
    /// Header of the chain being collected (CLA without the chaining bit), if any.
    header: Option<[u8; 4]>,
    extended: bool,
    len: usize,
    buf: [u8; CHAIN_BUFFER],
}

enum ChainStep<'a> {
    /// Not part of a chain: run it as received.
    Single(CommandView<'a>),
    /// The last fragment arrived: the whole data field is the first `len` bytes of the chain buffer.
    Joined {
        len: usize,
        ne: Option<usize>,
        extended: bool,
    },
    /// A fragment was stored; more must follow.
    Stored,
    /// The chain is longer than the buffer.
    Overflow,
}

impl Chain {
    fn clear(&mut self) {
        self.header = None;
        self.len = 0;
        self.extended = false;
    }

    fn append(&mut self, data: &[u8]) -> bool {
        let Some(end) = self.len.checked_add(data.len()) else {
            return false;
        };
        match self.buf.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(data);
                self.len = end;
                true
            }
            None => false,
        }
    }

    /// Takes one received command; returns the command to run, if one is complete.
    fn accept<'a>(
        &mut self,
        view: &CommandView<'a>,
        chaining: bool,
        key: [u8; 4],
    ) -> ChainStep<'a> {
        if self.header.is_some_and(|h| h != key) {
            self.clear(); // a different command abandons the chain
        }
        if chaining {
            if self.header.is_none() {
                self.header = Some(key);
            }
            self.extended |= view.is_extended();
            if !self.append(view.data()) {
                self.clear();
                return ChainStep::Overflow;
            }
            return ChainStep::Stored;
        }
        if self.header.is_none() {
            return ChainStep::Single(*view);
        }
        if !self.append(view.data()) {
            self.clear();
            return ChainStep::Overflow;
        }
        let (len, extended) = (self.len, self.extended || view.is_extended());
        self.clear();
        ChainStep::Joined {
            len,
            ne: view.ne(),
            extended,
        }
    }
}

#[derive(Debug)]
struct Response {
    /// Next byte to send and end of the data.
    start: usize,
    end: usize,
    /// Whether a 61xx was sent and GET RESPONSE may continue.
    pending: bool,
    /// The status word that comes with the last part.
    status: StatusWord,
    buf: [u8; RESPONSE_BUFFER],
}

impl Response {
    fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
        self.pending = false;
    }
}

/// A card: the runtime, the applets of image `I`, its non-volatile memory `N`, and the APDU buffers.
pub struct Card<I: Image, N: Nvm = CardNvm> {
    powered: bool,
    pub(crate) runtime: Runtime<I, N>,
    chain: Chain,
    response: Response,
}

impl<I: Image, N: Nvm> core::fmt::Debug for Card<I, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Card")
            .field("powered", &self.powered)
            .field("life_cycle", &self.runtime.life_cycle())
            .field("instances", &self.runtime.instance_count())
            .finish_non_exhaustive()
    }
}

impl<I: Image> Default for Card<I> {
    fn default() -> Self {
        Self::new()
    }
}

impl<I: Image> Card<I> {
    /// A card fresh from the factory, with its memory in RAM: OP_READY, the image's factory instances, powered
    /// off.
    pub fn new() -> Self {
        Self::with_nvm(CardNvm::default())
    }
}

impl<I: Image, N: Nvm> Card<I, N> {
    /// The ATR this image answers with.
    pub const ATR: Atr = Atr::with_historical_bytes(I::HISTORICAL_BYTES);

    /// A card on the given non-volatile memory (recovering a transaction a power loss interrupted).
    pub fn with_nvm(nvm: N) -> Self {
        let mut card = Self::unmounted();
        card.runtime.mount(nvm);
        card
    }

    /// A card with no memory yet, as a constant: a firmware builds it in a `static` (a card is several
    /// kilobytes, which a small stack should not hold while it is moved), then gives it its memory with
    /// [`Self::mount`] before powering it on. Unmounted, it has no instance and keeps nothing.
    pub const fn unmounted() -> Self {
        Self {
            powered: false,
            runtime: Runtime::unmounted(),
            chain: Chain {
                header: None,
                extended: false,
                len: 0,
                buf: [0; CHAIN_BUFFER],
            },
            response: Response {
                start: 0,
                end: 0,
                pending: false,
                status: StatusWord::SUCCESS,
                buf: [0; RESPONSE_BUFFER],
            },
        }
    }

    /// Gives an [`Self::unmounted`] card its memory: the store is opened (recovering a transaction a power loss
    /// interrupted) and the registry loaded, or a new memory gets the factory instances.
    pub fn mount(&mut self, nvm: N) {
        self.runtime.mount(nvm);
    }

    /// Cold or warm reset: clears session state and selects the default applet on the basic channel.
    pub fn power_on(&mut self) -> Atr {
        self.clear_session();
        self.runtime.open_basic_channel();
        self.powered = true;
        Self::ATR
    }

    /// Power loss: clears session state; `transmit` answers 6F00 until the next `power_on`.
    pub fn power_off(&mut self) {
        self.clear_session();
        self.powered = false;
    }

    /// Whether the card is powered.
    pub fn is_powered(&self) -> bool {
        self.powered
    }

    /// Seeds the card's random generator (ChaCha20) with 32 bytes from the platform's entropy source: a TRNG
    /// on a chip, the operating system on a host. Until it is seeded, the card refuses what needs randomness
    /// (secure-channel handshakes, key generation) with 6985 rather than use predictable numbers.
    pub fn seed_random(&mut self, seed: [u8; 32]) {
        self.runtime.secure_channel().seed(seed);
    }

    /// EC scalar multiplications the card has performed (ECDH, key generation, two per signature check).
    pub fn scalar_multiplications(&self) -> u32 {
        self.runtime.scalar_multiplications()
    }

    /// Hands the non-volatile memory back (the card is gone): tests reboot another card from it.
    pub fn into_nvm(self) -> Option<N> {
        self.runtime.into_nvm()
    }

    /// The card life cycle state.
    pub fn life_cycle(&self) -> apdu_spec::gp::CardLifeCycle {
        self.runtime.life_cycle()
    }

    fn clear_session(&mut self) {
        self.chain.clear();
        self.response.clear();
        self.chain.buf.fill(0);
        self.response.buf.fill(0);
        self.runtime.reset();
    }

    /// Processes one command APDU and writes the response (data, then SW1 SW2) into `out`, returning its
    /// length. Every input gets a status word; `out` shorter than 2 bytes gets nothing (returns 0), and data
    /// that does not fit `out` is held back for GET RESPONSE.
    pub fn transmit(&mut self, command: &[u8], out: &mut [u8]) -> usize {
        if out.len() < 2 {
            return 0;
        }
        if !self.powered {
            return finish(out, 0, StatusWord::UNKNOWN);
        }
        let view = match CommandView::parse(command) {
            Ok(view) => view,
            Err(_) => {
                self.chain.clear();
                self.response.clear();
                return finish(out, 0, StatusWord::WRONG_LENGTH);
            }
        };
        if view.ins() == ins::GET_RESPONSE {
            return self.get_response(&view, out);
        }
        self.response.clear();
        let (ne, status) = self.execute(&view);
        self.emit(ne.unwrap_or(NE_WITHOUT_LE), status, out)
    }

    /// Runs a command; the response data is left in `self.response`.
    fn execute(&mut self, view: &CommandView<'_>) -> (Option<usize>, StatusWord) {
        let Ok(class) = view.class() else {
            self.chain.clear();
            return (None, StatusWord::CLA_NOT_SUPPORTED);
        };
        if !self.runtime.channel_open(class.channel()) {
            self.chain.clear();
            return (None, StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED);
        }
        let base = class.without_chaining();
        let key = [base.raw(), view.ins(), view.p1(), view.p2()];
        let (single, len, ne, extended) = match self.chain.accept(view, class.chaining(), key) {
            ChainStep::Single(command) => (Some(command), 0, command.ne(), command.is_extended()),
            ChainStep::Joined { len, ne, extended } => (None, len, ne, extended),
            ChainStep::Stored => return (None, StatusWord::SUCCESS),
            ChainStep::Overflow => {
                // Plain or secured, a command that cannot be run ends the channel's session.
                self.runtime.end_session(class.channel());
                return (None, StatusWord::WRONG_LENGTH);
            }
        };
        if base.secure_messaging() {
            // Secured commands are opened in place: their data goes to the chain buffer (where a chained one
            // already is).
            let len = match single {
                Some(command) => {
                    let data = command.data();
                    match self.chain.buf.get_mut(..data.len()) {
                        Some(dst) => dst.copy_from_slice(data),
                        None => {
                            self.runtime.end_session(class.channel());
                            return (ne, StatusWord::WRONG_LENGTH);
                        }
                    }
                    data.len()
                }
                None => len,
            };
            let data = self.chain.buf.get_mut(..len).unwrap_or_default();
            let (status, sent) = self.runtime.dispatch_secured(
                base,
                key,
                data,
                ne,
                extended,
                &mut self.response.buf,
            );
            // The plain data may hold keys: it does not stay in the buffer.
            data.zeroize();
            self.response.end = sent;
            return (ne, status);
        }
        let command = match single {
            Some(command) => command,
            None => CommandView::from_parts(
                key,
                self.chain.buf.get(..len).unwrap_or_default(),
                ne,
                extended,
            ),
        };
        let mut reply = Reply::new(&mut self.response.buf);
        let status = match self.runtime.dispatch(&command, base, &mut reply) {
            Ok(()) => StatusWord::SUCCESS,
            Err(status) => status,
        };
        self.response.end = if status.carries_data() {
            reply.len()
        } else {
            0
        };
        (command.ne(), status)
    }

    fn get_response(&mut self, view: &CommandView<'_>, out: &mut [u8]) -> usize {
        if view.p1p2() != 0 {
            return finish(out, 0, StatusWord::INCORRECT_P1P2);
        }
        if !view.data().is_empty() {
            return finish(out, 0, StatusWord::WRONG_LENGTH);
        }
        if !self.response.pending {
            return finish(out, 0, StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let status = self.response.status;
        self.emit(view.ne().unwrap_or(NE_WITHOUT_LE), status, out)
    }

    /// Sends up to `ne` bytes of the held response, with 61xx while more remain.
    fn emit(&mut self, ne: usize, status: StatusWord, out: &mut [u8]) -> usize {
        let room = out.len().saturating_sub(2);
        let available = self.response.end.saturating_sub(self.response.start);
        let n = available.min(ne).min(room);
        let start = self.response.start;
        if let (Some(dst), Some(src)) = (out.get_mut(..n), self.response.buf.get(start..start + n))
        {
            dst.copy_from_slice(src);
        }
        self.response.start += n;
        let left = available - n;
        if left > 0 {
            self.response.pending = true;
            self.response.status = status;
            finish(out, n, StatusWord::bytes_remaining(left))
        } else {
            self.response.clear();
            finish(out, n, status)
        }
    }
}

/// Appends the status word after `len` data bytes.
fn finish(out: &mut [u8], len: usize, status: StatusWord) -> usize {
    match out.get_mut(len..len + 2) {
        Some(sw) => {
            sw.copy_from_slice(&status.to_bytes());
            len + 2
        }
        None => 0,
    }
}
