//! What an applet is to the runtime: the [`Applet`] trait, the [`Context`] it is handed at every entry point, and
//! the [`Reply`] buffer it writes response data into.

use apdu_spec::{Aid, CommandView, StatusWord};

/// A card application. The runtime calls it on selection, deselection and for every command addressed to it.
///
/// Entry points return a status word through `Err`; `Ok(())` means 9000. Response data is kept with 9000 and
/// with warnings (62xx, 63xx) and discarded with any other status word.
pub trait Applet {
    /// Called when the applet is selected on `ctx.channel()`; returning `false` refuses selection (6999).
    fn select(&mut self, ctx: &mut Context) -> bool {
        let _ = ctx;
        true
    }

    /// Called before another applet is selected on the channel, when the channel closes, or when the applet is
    /// locked or the card locked.
    fn deselect(&mut self, ctx: &mut Context) {
        let _ = ctx;
    }

    /// Processes one command. During selection it receives the SELECT command itself with
    /// [`Context::selecting`] set, to answer with its FCI.
    fn process(
        &mut self,
        ctx: &mut Context,
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

    /// Power was lost or the card reset: clear session state. No deselect is delivered in that case.
    fn reset(&mut self) {}
}

/// What the runtime tells an applet at an entry point.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    aid: Aid,
    channel: u8,
    selecting: bool,
}

impl Context {
    pub(crate) const fn new(aid: Aid, channel: u8, selecting: bool) -> Self {
        Self {
            aid,
            channel,
            selecting,
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
}

/// Response data an applet appends to; bounded by the runtime's response buffer.
#[derive(Debug)]
pub struct Reply<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Reply<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
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
    /// Drops what was written.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}
