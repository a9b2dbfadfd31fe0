//! **The applet API**: everything an applet sees of the card, in one place. An applet crate needs nothing from
//! card-os beyond this module (and [`crate::image::Install`] to be built into an image; see
//! `docs/writing-an-applet.md`).
//!
//! * [`Applet`]: the entry points the runtime calls; [`Context`]: what it is handed at each; [`Reply`]: where
//!   response data goes; [`Refused`]: every refusal of a shareable-interface call;
//! * persistent state: the applet's own records ([`Context::records`], a [`RecordSpace`], records of at most
//!   [`MAX_RECORD`] bytes, errors [`RecordError`]) and a PIN kept in one ([`OwnerPin`], [`PinError`]);
//! * volatile state: the applet's own fields (created anew by the runtime on every reset and power loss, and on
//!   deselection where [`Applet::volatile_state`] says so), and runtime-managed transient buffers
//!   ([`Context::transient`], [`ClearOn`], [`TRANSIENT_BYTES`]);
//! * [`Security`]: the secure channel the command came through ([`Context::security`]), to be checked against a
//!   command's [`apdu_spec::scp11::Requirement`].
//!
//! **Persistent or volatile.** What must survive a reboot goes into records: an applet object does not
//! outlive a power cycle, not even in process (the runtime re-creates it from its install parameters, as a
//! real card rebooting from its memory does), so a test cannot pass on state that a real card would lose.
//!
//! **Firewall.** The context is the only way an applet reaches anything beyond its own fields: its persistent
//! records ([`Context::records`], bound by the runtime to the applet's own owner number), store transactions
//! ([`Context::begin_transaction`]; the runtime aborts any left open when the entry point returns), and other
//! applets' shareable interfaces ([`Context::call`]). A call goes through the runtime, which finds the server,
//! checks it is selectable, hands it the caller's AID (stamped by the runtime, never declared by the caller),
//! lets it answer into a copy, and returns that copy. Every refusal (no such applet, not selectable, the server
//! says no, a bad request) is the same [`Refused`]. A call inside a transaction is part of it.

use apdu_spec::{Aid, CommandView, StatusWord, tlv};

pub use crate::layout::MAX_RECORD;
pub use crate::pin::{OwnerPin, PinError};
pub use crate::records::{RecordError, RecordSpace};
pub use crate::store::StoreAccess;
pub use crate::transient::{ClearOn, TRANSIENT_BYTES, TRANSIENT_SLOTS};
pub use apdu_spec::scp11::Security;

/// A card application. The runtime calls it on selection, deselection and for every command addressed to it.
///
/// Entry points return a status word through `Err`; `Ok(())` means 9000. Response data is kept with 9000 and
/// with warnings (62xx, 63xx) and discarded with any other status word.
pub trait Applet {
    /// Called when the applet is selected on `ctx.channel()`; returning `false` refuses selection (6999).
    fn select(&mut self, ctx: &mut Context<'_>) -> bool {
        let _ = ctx;
        true
    }

    /// Called before another applet is selected on the channel, when the channel closes, or when the applet is
    /// locked or the card locked.
    fn deselect(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }

    /// Processes one command. During selection it receives the SELECT command itself with
    /// [`Context::selecting`] set, to answer with its FCI.
    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        command: &CommandView<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord>;

    /// Whether the applet may be selected on several logical channels at once.
    fn multi_selectable(&self) -> bool {
        false
    }

    /// Whether the applet accepts extended-length APDUs (6700 otherwise, before it sees them).
    fn extended_length(&self) -> bool {
        false
    }

    /// When the runtime clears this applet's fields by creating the instance anew: [`ClearOn::Reset`] (the
    /// default) on every reset and power loss; [`ClearOn::Deselect`] also when it is deselected from its last
    /// channel. No deselect is delivered on a reset.
    fn volatile_state(&self) -> ClearOn {
        ClearOn::Reset
    }

    /// Serves a call to this applet's shareable interface from `caller` (the AID the runtime stamped): reads
    /// `request`, answers into `reply`. The default refuses every call.
    fn shared(
        &mut self,
        ctx: &mut Context<'_>,
        caller: &Aid,
        request: &[u8],
        reply: &mut Reply<'_>,
    ) -> Result<(), Refused> {
        let _ = (ctx, caller, request, reply);
        Err(Refused)
    }
}

/// A shareable-interface call was refused; why is not told (the firewall answers every refusal the same way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused;

/// What the runtime lends a context: the store and the other applets.
pub(crate) trait Environment {
    fn store(&mut self) -> Option<&mut dyn StoreAccess>;
    /// The owner number of the applet whose shareable call is being served; `None` at an entry point.
    fn caller_owner(&self) -> Option<u8>;
    fn transient(&mut self, clear_on: ClearOn) -> Option<&mut [u8; TRANSIENT_BYTES]>;
    fn call(
        &mut self,
        caller: &Aid,
        server: &[u8],
        request: &[u8],
        response: &mut [u8],
    ) -> Result<usize, Refused>;
}

/// What the runtime hands an applet at an entry point.
pub struct Context<'a> {
    aid: Aid,
    owner: u8,
    channel: u8,
    selecting: bool,
    security: Option<Security>,
    environment: &'a mut dyn Environment,
}

impl core::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Context")
            .field("aid", &self.aid)
            .field("owner", &self.owner)
            .field("channel", &self.channel)
            .field("selecting", &self.selecting)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        aid: Aid,
        owner: u8,
        channel: u8,
        selecting: bool,
        security: Option<Security>,
        environment: &'a mut dyn Environment,
    ) -> Self {
        Self {
            aid,
            owner,
            channel,
            selecting,
            security,
            environment,
        }
    }
    /// The AID of the instance being called.
    pub const fn aid(&self) -> &Aid {
        &self.aid
    }
    /// The logical channel (0-19) of the call.
    pub const fn channel(&self) -> u8 {
        self.channel
    }
    /// Whether the command being processed is the SELECT that just selected this applet.
    pub const fn selecting(&self) -> bool {
        self.selecting
    }
    /// The secure channel the command being processed arrived through (stamped by the runtime after it
    /// verified and decrypted the command); `None` for a plain command. Applets decide from its role and
    /// level what the command may do.
    pub const fn security(&self) -> Option<Security> {
        self.security
    }

    /// The card's notion of today, read-only: the date the card manager keeps (set at personalization, moved
    /// forward by issuer sessions, never back; see `docs/SECURE-CHANNEL.md`). All zero (`00000000`, before any
    /// real date) while nobody set it, so nothing counts as expired on such a card.
    pub fn card_date(&mut self) -> apdu_spec::scp11::cert::Date {
        match self.environment.store() {
            Some(store) => crate::secure_channel::card_date(store),
            None => apdu_spec::scp11::cert::Date([0; 4]),
        }
    }

    /// This applet's persistent records, and only them.
    pub fn records(&mut self) -> Result<RecordSpace<'_, dyn StoreAccess + '_>, RecordError> {
        let owner = self.owner;
        let store = self
            .environment
            .store()
            .ok_or(RecordError::Store(crate::store::StoreError::Geometry))?;
        Ok(crate::layout::RECORDS.space(store, owner))
    }

    /// This applet's transient buffer cleared on `clear_on` (all zero after a reset, and the deselect buffer
    /// after the applet is deselected from its last channel); `None` when the card's transient memory is all
    /// handed out ([`TRANSIENT_SLOTS`] buffers over every applet: Java Card's NO_TRANSIENT_SPACE).
    pub fn transient(&mut self, clear_on: ClearOn) -> Option<&mut [u8; TRANSIENT_BYTES]> {
        self.environment.transient(clear_on)
    }

    /// Opens a store transaction (one level; the runtime aborts it if the entry point returns without commit).
    pub fn begin_transaction(&mut self) -> Result<(), StatusWord> {
        let store = self.environment.store().ok_or(StatusWord::MEMORY_FAILURE)?;
        store
            .begin()
            .map_err(|_| StatusWord::CONDITIONS_NOT_SATISFIED)
    }

    /// Commits the open transaction.
    pub fn commit_transaction(&mut self) -> Result<(), StatusWord> {
        let store = self.environment.store().ok_or(StatusWord::MEMORY_FAILURE)?;
        store.commit().map_err(|e| match e {
            crate::store::StoreError::NoTransaction => StatusWord::CONDITIONS_NOT_SATISFIED,
            _ => StatusWord::MEMORY_FAILURE,
        })
    }

    /// Drops the open transaction's changes.
    pub fn abort_transaction(&mut self) {
        if let Some(store) = self.environment.store() {
            store.abort();
        }
    }

    /// While serving a shareable call ([`Applet::shared`]): gives this applet's record `key` to the caller, which
    /// finds it as its own record `caller_key` (the caller names that key in its request). The data is not
    /// copied: the slot changes owner in one write, part of the caller's open transaction if there is one, so a
    /// move of several records made inside the caller's transaction is wholly done or not at all. Refused
    /// ([`RecordError::Refused`]) outside a call or onto a key the caller already uses; the receiver is always
    /// the caller the runtime stamped, never one the server chooses.
    pub fn hand_over(&mut self, key: u8, caller_key: u8) -> Result<(), RecordError> {
        let receiver = self
            .environment
            .caller_owner()
            .ok_or(RecordError::Refused)?;
        let owner = self.owner;
        let store = self
            .environment
            .store()
            .ok_or(RecordError::Store(crate::store::StoreError::Geometry))?;
        crate::layout::RECORDS.hand_over(store, owner, key, receiver, caller_key)
    }

    /// Calls the shareable interface of the applet `server` (its full AID) with `request`; the answer is copied
    /// into `response` and its length returned.
    pub fn call(
        &mut self,
        server: &[u8],
        request: &[u8],
        response: &mut [u8],
    ) -> Result<usize, Refused> {
        let caller = self.aid;
        self.environment.call(&caller, server, request, response)
    }
}

/// Answers the SELECT that selected the applet (`ctx.selecting()`) with the usual FCI, `6F { 84 <instance AID> }`,
/// unless P2 asks for no response data (`0C`).
pub fn answer_select(
    ctx: &Context<'_>,
    command: &CommandView<'_>,
    reply: &mut Reply<'_>,
) -> Result<(), StatusWord> {
    if command.p2() & 0x0C == 0x0C {
        return Ok(());
    }
    let aid = ctx.aid().as_bytes();
    let mut fci = [0u8; 2 + 2 + apdu_spec::aid::MAX_LEN];
    let mut w = tlv::Writer::new(&mut fci);
    w.header(0x6F, tlv::header_len(0x84, aid.len()) + aid.len())
        .and_then(|()| w.tlv(0x84, aid))
        .map_err(|_| StatusWord::UNKNOWN)?;
    reply.push(w.written())
}

/// Response data an applet appends to; bounded by the runtime's response buffer.
#[derive(Debug)]
pub struct Reply<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Reply<'a> {
    /// A reply writing into `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }
    /// Appends bytes; 6F00 when they do not fit (an applet bug, not an input error).
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), StatusWord> {
        let end = self
            .len
            .checked_add(bytes.len())
            .ok_or(StatusWord::UNKNOWN)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(StatusWord::UNKNOWN)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
    /// The free space as a writable slice; call [`Reply::advance`] with what was written.
    pub fn spare(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.len..).unwrap_or(&mut [])
    }
    /// Marks `n` bytes of [`Reply::spare`] as written.
    pub fn advance(&mut self, n: usize) -> Result<(), StatusWord> {
        let end = self
            .len
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(StatusWord::UNKNOWN)?;
        self.len = end;
        Ok(())
    }
    /// How many more bytes fit.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.len
    }
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
