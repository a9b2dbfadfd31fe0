//! The loopback applet (see [`apdu_spec::loopback`] for its commands): echoes data, generates responses of any
//! length and reports its channel, so transports, chaining and extended length can be tested on any card.

use apdu_spec::loopback::{self, LoopbackCommand, flags};
use apdu_spec::{CommandView, StatusWord, tlv};
use card_os::{Applet, Context, Reply};
use heapless::Deque;

/// A loopback instance: its install-time configuration and its recent select/deselect events.
#[derive(Debug, Clone)]
pub struct Loopback {
    flags: u8,
    events: Deque<u8, { loopback::EVENT_LOG }>,
}

impl Loopback {
    /// An instance configured by its install parameters (one flags byte, or none for the defaults).
    pub fn new(parameters: &[u8]) -> Result<Self, StatusWord> {
        loopback::parse_parameters(parameters).map(|flags| Self {
            flags,
            events: Deque::new(),
        })
    }

    fn log(&mut self, event: u8) {
        if self.events.is_full() {
            self.events.pop_front();
        }
        let _ = self.events.push_back(event);
    }
}

impl Applet for Loopback {
    fn select(&mut self, ctx: &mut Context) -> bool {
        let accept = self.flags & flags::REFUSE_SELECT == 0;
        if accept {
            self.log(loopback::EVENT_SELECT | ctx.channel());
        }
        accept
    }

    fn deselect(&mut self, ctx: &mut Context) {
        self.log(loopback::EVENT_DESELECT | ctx.channel());
    }

    fn process(
        &mut self,
        ctx: &mut Context,
        command: &CommandView<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        if ctx.selecting() {
            // FCI: 6F { 84 <instance AID> }, unless P2 asks for no response data.
            if command.p2() & 0x0C == 0x0C {
                return Ok(());
            }
            let aid = ctx.aid().as_bytes();
            let mut fci = [0u8; 2 + 2 + apdu_spec::aid::MAX_LEN];
            let mut w = tlv::Writer::new(&mut fci);
            w.header(0x6F, tlv::header_len(0x84, aid.len()) + aid.len())
                .map_err(|_| StatusWord::UNKNOWN)?;
            w.tlv(0x84, aid).map_err(|_| StatusWord::UNKNOWN)?;
            return reply.push(w.written());
        }
        match LoopbackCommand::try_from(command)? {
            LoopbackCommand::Echo(data) => reply.push(data),
            LoopbackCommand::Generate(len) => {
                if len > reply.remaining() {
                    return Err(StatusWord::INCORRECT_P1P2);
                }
                let spare = reply.spare();
                for (i, byte) in spare.iter_mut().take(len).enumerate() {
                    *byte = loopback::generated_byte(i);
                }
                reply.advance(len)
            }
            LoopbackCommand::Info => {
                reply.push(&[ctx.channel(), self.flags, self.events.len() as u8])?;
                let (older, newer) = self.events.as_slices();
                reply.push(older)?;
                reply.push(newer)
            }
        }
    }

    fn multi_selectable(&self) -> bool {
        self.flags & flags::MULTI_SELECTABLE != 0
    }

    fn extended_length(&self) -> bool {
        self.flags & flags::EXTENDED_LENGTH != 0
    }

    fn reset(&mut self) {
        self.events.clear();
    }
}
