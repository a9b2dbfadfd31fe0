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
//!
//! [`Card::transmit`] copies the answer out. A transport with no APDU buffers of its own (T=1 on the card itself)
//! answers in place instead: [`Card::respond`] leaves the answer in the card's response buffer
//! ([`Card::answer_data`] reads it again), and a command too long for the transport's one block is collected in
//! that same buffer ([`Card::command_room`]) and run there ([`Card::respond_in_place`]).

use apdu_spec::{Class, CommandView, StatusWord, ins};
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
/// Largest command APDU: an extended header (CLA INS P1 P2, 00 and a two-byte Lc), [`CHAIN_BUFFER`] bytes of
/// data and a two-byte Le.
pub const COMMAND_APDU: usize = 4 + 3 + CHAIN_BUFFER + 2;
/// The response buffer also takes a command collected in place ([`Card::command_room`]): room for both.
const RESPONSE_ROOM: usize = if COMMAND_APDU > RESPONSE_BUFFER {
    COMMAND_APDU
} else {
    RESPONSE_BUFFER
};

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
    /// The part last sent (`start .. end` of `buf`), which [`Card::answer_data`] reads again.
    sent: (usize, usize),
    buf: [u8; RESPONSE_ROOM],
}

impl Response {
    /// Drops what is held for GET RESPONSE and the part last sent.
    fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
        self.pending = false;
        self.sent = (0, 0);
    }
}

/// What a command answered in place ([`Card::respond`]): its data, in the card's response buffer, and its status
/// word (61xx when more waits for GET RESPONSE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer<'a> {
    pub data: &'a [u8],
    pub status: StatusWord,
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
                sent: (0, 0),
                buf: [0; RESPONSE_ROOM],
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
        let Some(room) = out.len().checked_sub(2) else {
            return 0;
        };
        let status = self.respond_within(command, room);
        let data = self.answer_data();
        if let Some(destination) = out.get_mut(..data.len()) {
            destination.copy_from_slice(data);
        }
        finish(out, data.len(), status)
    }

    /// Processes one command APDU and answers in place, for a transport that keeps no response buffer of its
    /// own (a T=1 card): the data stays in the card's memory, where [`Self::answer_data`] reads it again until
    /// the next command. Ne decides how much goes now; the rest waits for GET RESPONSE, as with
    /// [`Self::transmit`].
    pub fn respond(&mut self, command: &[u8]) -> Answer<'_> {
        let status = self.respond_within(command, usize::MAX);
        Answer {
            data: self.answer_data(),
            status,
        }
    }

    /// Room for a command APDU collected in the card's own memory ([`COMMAND_APDU`] bytes), for a transport
    /// that keeps no command buffer either: the response buffer, which any command but GET RESPONSE frees.
    /// Taking it drops the response held for GET RESPONSE (a GET RESPONSE is short: it comes through
    /// [`Self::respond`]).
    pub fn command_room(&mut self) -> &mut [u8] {
        self.response.clear();
        &mut self.response.buf
    }

    /// [`Self::respond`] for the command of `len` bytes collected in [`Self::command_room`]; a `len` beyond the
    /// room (a command that did not fit) is refused as malformed, 6700.
    pub fn respond_in_place(&mut self, len: usize) -> Answer<'_> {
        let status = match self.run_collected(len) {
            Ok((ne, status)) => self.emit(ne.unwrap_or(NE_WITHOUT_LE), status, usize::MAX),
            Err(status) => status,
        };
        Answer {
            data: self.answer_data(),
            status,
        }
    }

    /// The data of the answer last given (by [`Self::transmit`], [`Self::respond`] or
    /// [`Self::respond_in_place`]), until the next command.
    pub fn answer_data(&self) -> &[u8] {
        let (start, end) = self.response.sent;
        self.response.buf.get(start..end).unwrap_or_default()
    }

    /// Runs a command; the part of its response that goes now is `self.response.sent`, at most `room` bytes.
    fn respond_within(&mut self, command: &[u8], room: usize) -> StatusWord {
        self.response.sent = (0, 0);
        if !self.powered {
            return StatusWord::UNKNOWN;
        }
        let view = match CommandView::parse(command) {
            Ok(view) => view,
            Err(_) => {
                self.chain.clear();
                self.response.clear();
                return StatusWord::WRONG_LENGTH;
            }
        };
        if view.ins() == ins::GET_RESPONSE {
            return self.get_response(&view, room);
        }
        self.response.clear();
        let (ne, status) = self.execute(&view);
        self.emit(ne.unwrap_or(NE_WITHOUT_LE), status, room)
    }

    /// Runs the command collected in the response buffer: its data moves to the chain buffer first (the
    /// response is written where it lay). `Err` is a status word to answer without data.
    fn run_collected(&mut self, len: usize) -> Result<(Option<usize>, StatusWord), StatusWord> {
        self.response.clear();
        if !self.powered {
            return Err(StatusWord::UNKNOWN);
        }
        let collected = self.response.buf.get(..len).unwrap_or_default();
        let Ok(view) = CommandView::parse(collected) else {
            self.chain.clear();
            return Err(StatusWord::WRONG_LENGTH);
        };
        if view.ins() == ins::GET_RESPONSE {
            // Nothing is held any more: the room was taken for this command.
            return Err(get_response_refusal(&view, false).unwrap_or(StatusWord::UNKNOWN));
        }
        let (class, key) = Self::admit(&self.runtime, &view).inspect_err(|_| self.chain.clear())?;
        let step: ChainStep<'static> = match self.chain.accept(&view, class.chaining(), key) {
            ChainStep::Single(command) => match self.chain.buf.get_mut(..command.data().len()) {
                Some(destination) => {
                    destination.copy_from_slice(command.data());
                    ChainStep::Joined {
                        len: command.data().len(),
                        ne: command.ne(),
                        extended: command.is_extended(),
                    }
                }
                // Data beyond the chain buffer: refused as a chain too long would be.
                None => ChainStep::Overflow,
            },
            ChainStep::Joined { len, ne, extended } => ChainStep::Joined { len, ne, extended },
            ChainStep::Stored => ChainStep::Stored,
            ChainStep::Overflow => ChainStep::Overflow,
        };
        Ok(self.run_admitted(class, key, step))
    }

    /// Runs a command; the response data is left in `self.response`.
    fn execute(&mut self, view: &CommandView<'_>) -> (Option<usize>, StatusWord) {
        let (class, key) = match Self::admit(&self.runtime, view) {
            Ok(admitted) => admitted,
            Err(status) => {
                self.chain.clear();
                return (None, status);
            }
        };
        let step = self.chain.accept(view, class.chaining(), key);
        self.run_admitted(class, key, step)
    }

    /// The command's class and chain key (CLA without the chaining bit, INS, P1, P2), if its class is valid
    /// and its channel open. (A refused command abandons the chain: the callers clear it.)
    fn admit(
        runtime: &Runtime<I, N>,
        view: &CommandView<'_>,
    ) -> Result<(Class, [u8; 4]), StatusWord> {
        let class = view.class().map_err(|_| StatusWord::CLA_NOT_SUPPORTED)?;
        if !runtime.channel_open(class.channel()) {
            return Err(StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED);
        }
        let key = [
            class.without_chaining().raw(),
            view.ins(),
            view.p1(),
            view.p2(),
        ];
        Ok((class, key))
    }

    /// Runs a command the chain has let through; the response data is left in `self.response`.
    fn run_admitted(
        &mut self,
        class: Class,
        key: [u8; 4],
        step: ChainStep<'_>,
    ) -> (Option<usize>, StatusWord) {
        let base = class.without_chaining();
        let (single, len, ne, extended) = match step {
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
            return self.run_secured(class, key, single, (len, ne, extended));
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
        let mut reply = Reply::new(
            self.response
                .buf
                .get_mut(..RESPONSE_BUFFER)
                .unwrap_or_default(),
        );
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

    /// Runs a secured command: opened in place, its data in the chain buffer (where a chained one already is).
    fn run_secured(
        &mut self,
        class: Class,
        key: [u8; 4],
        single: Option<CommandView<'_>>,
        (len, ne, extended): (usize, Option<usize>, bool),
    ) -> (Option<usize>, StatusWord) {
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
            class.without_chaining(),
            key,
            data,
            ne,
            extended,
            self.response
                .buf
                .get_mut(..RESPONSE_BUFFER)
                .unwrap_or_default(),
        );
        // The plain data may hold keys: it does not stay in the buffer.
        data.zeroize();
        self.response.end = sent;
        (ne, status)
    }

    fn get_response(&mut self, view: &CommandView<'_>, room: usize) -> StatusWord {
        if let Some(refusal) = get_response_refusal(view, self.response.pending) {
            return refusal;
        }
        let status = self.response.status;
        self.emit(view.ne().unwrap_or(NE_WITHOUT_LE), status, room)
    }

    /// Marks up to `ne` bytes (at most `room`) of the held response as the part that goes now; answers its
    /// status word, 61xx while more remain.
    fn emit(&mut self, ne: usize, status: StatusWord, room: usize) -> StatusWord {
        let available = self.response.end.saturating_sub(self.response.start);
        let n = available.min(ne).min(room);
        let start = self.response.start;
        self.response.sent = (start, start + n);
        self.response.start += n;
        let left = available - n;
        if left > 0 {
            self.response.pending = true;
            self.response.status = status;
            StatusWord::bytes_remaining(left)
        } else {
            // Nothing is held any more; the part just sent stays readable until the next command.
            let sent = self.response.sent;
            self.response.clear();
            self.response.sent = sent;
            status
        }
    }
}

/// Why a GET RESPONSE is refused, if it is: P1-P2 not 0000, a data field, or nothing held (`pending`).
fn get_response_refusal(view: &CommandView<'_>, pending: bool) -> Option<StatusWord> {
    if view.p1p2() != 0 {
        Some(StatusWord::INCORRECT_P1P2)
    } else if !view.data().is_empty() {
        Some(StatusWord::WRONG_LENGTH)
    } else if !pending {
        Some(StatusWord::CONDITIONS_NOT_SATISFIED)
    } else {
        None
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
