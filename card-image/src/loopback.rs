//! The loopback applet (see [`apdu_spec::loopback`] for its commands): echoes data, generates responses of any
//! length and reports its channel, so transports, chaining and extended length can be tested on any card.

use apdu_spec::Aid;
use apdu_spec::loopback::{self, LoopbackCommand, flags};
use apdu_spec::shared::{self, LoopbackRequest};
use apdu_spec::{CommandView, StatusWord};
use card_os::applet::{MAX_RECORD, Refused};
use card_os::image::{Install, LoadFile};
use card_os::{Applet, Context, Reply};
use heapless::Deque;

/// A loopback instance: its install-time configuration and its recent select/deselect events. Both are
/// volatile fields: the flags come back from the install parameters whenever the runtime creates the instance
/// anew, the event log starts empty after every reset.
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
        let logged = self.events.push_back(event);
        debug_assert!(logged.is_ok(), "room was made above");
    }
}

impl Install for Loopback {
    const LOAD_FILE: LoadFile = LoadFile {
        aid: apdu_spec::aid::LOOPBACK_LOAD_FILE,
        modules: &[apdu_spec::aid::LOOPBACK_MODULE],
    };

    fn install(_module: &Aid, _aid: &Aid, parameters: &[u8]) -> Result<Self, StatusWord> {
        Self::new(parameters)
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
            return card_os::applet::answer_select(ctx, command, reply);
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
            LoopbackCommand::Put {
                key,
                data,
                leave_open,
            } => {
                if leave_open {
                    // The runtime aborts a transaction the applet leaves open: this record never lands.
                    ctx.begin_transaction()?;
                }
                ctx.records()?.put(key, data)?;
                Ok(())
            }
            LoopbackCommand::Get(key) => {
                let spare = reply.spare();
                let n = ctx.records()?.get(key, spare)?;
                reply.advance(n)
            }
            LoopbackCommand::Remove(key) => Ok(ctx.records()?.remove(key)?),
            LoopbackCommand::Call { server, request } => {
                let n = ctx
                    .call(server, request, reply.spare())
                    .map_err(|Refused| StatusWord::CONDITIONS_NOT_SATISFIED)?;
                reply.advance(n)
            }
            LoopbackCommand::Transfer {
                key,
                server,
                commit,
            } => {
                ctx.begin_transaction()?;
                let mut record = [0u8; MAX_RECORD];
                let n = ctx.records()?.get(key, &mut record)?;
                let mut message = [0u8; 8 + MAX_RECORD];
                let data = record.get(..n).unwrap_or(&[]);
                let request = shared::encode(&LoopbackRequest::Store { key, data }, &mut message)
                    .map_err(|_| StatusWord::UNKNOWN)?;
                ctx.records()?.remove(key)?;
                let mut answer = [0u8; 4];
                ctx.call(server, request, &mut answer)
                    .map_err(|Refused| StatusWord::CONDITIONS_NOT_SATISFIED)?;
                if commit {
                    ctx.commit_transaction()
                } else {
                    ctx.abort_transaction();
                    Ok(())
                }
            }
            LoopbackCommand::Info => {
                let logged = u8::try_from(self.events.len()).map_err(|_| StatusWord::UNKNOWN)?;
                reply.push(&[ctx.channel(), self.flags, logged])?;
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

    fn shared(
        &mut self,
        ctx: &mut Context<'_>,
        caller: &Aid,
        request: &[u8],
        reply: &mut Reply<'_>,
    ) -> Result<(), Refused> {
        if self.flags & flags::SHAREABLE == 0 {
            return Err(Refused);
        }
        match shared::decode(request).map_err(|_| Refused)? {
            LoopbackRequest::WhoCalls { note } => {
                let caller = caller.as_bytes();
                let len = u8::try_from(caller.len()).map_err(|_| Refused)?;
                reply.push(&[len]).map_err(|_| Refused)?;
                reply.push(caller).map_err(|_| Refused)?;
                reply.push(note).map_err(|_| Refused)
            }
            LoopbackRequest::Store { key, data } => ctx
                .records()
                .map_err(|_| Refused)?
                .put(key, data)
                .map_err(|_| Refused),
        }
    }
}
