//! What the runtime lends an applet's context: the store and its owner's transient memory ([`Lent`]), and at an
//! entry point also the other applets, whose shareable interfaces it may call through the firewall
//! ([`Peers`]).

use apdu_spec::Aid;

use crate::applet::{Applet, Context, Environment, Refused, Reply};
use crate::registry::Entry;
use crate::store::StoreAccess;
use crate::transient::{ClearOn, TRANSIENT_BYTES, TransientPool};

/// What every context is lent: the store, and its owner's transient buffers. On its own it is a server's
/// environment during a call: no further calls (shareable calls go one level deep).
pub(super) struct Lent<'a> {
    pub(super) store: Option<&'a mut dyn StoreAccess>,
    pub(super) transient: &'a mut TransientPool,
    pub(super) owner: u8,
    /// The caller's owner number while a shareable call is served (the receiver of a hand-over).
    pub(super) caller: Option<u8>,
}

/// An applet's environment at an entry point: what it is lent, and the other applets (its peers) to call.
pub(super) struct Peers<'a, A> {
    pub(super) lent: Lent<'a>,
    pub(super) before: &'a mut [Entry<A>],
    pub(super) after: &'a mut [Entry<A>],
}

/// Reborrows a lent store for a shorter time (`as_deref_mut` cannot shorten the trait object's lifetime).
pub(super) fn reborrow<'s>(
    store: &'s mut Option<&mut dyn StoreAccess>,
) -> Option<&'s mut dyn StoreAccess> {
    match store {
        Some(store) => Some(&mut **store),
        None => None,
    }
}

impl Environment for Lent<'_> {
    fn store(&mut self) -> Option<&mut dyn StoreAccess> {
        reborrow(&mut self.store)
    }
    fn caller_owner(&self) -> Option<u8> {
        self.caller
    }
    fn transient(&mut self, clear_on: ClearOn) -> Option<&mut [u8; TRANSIENT_BYTES]> {
        self.transient.buffer(self.owner, clear_on)
    }
    fn call(&mut self, _: &Aid, _: &[u8], _: &[u8], _: &mut [u8]) -> Result<usize, Refused> {
        Err(Refused)
    }
}

impl<A: Applet> Environment for Peers<'_, A> {
    fn store(&mut self) -> Option<&mut dyn StoreAccess> {
        self.lent.store()
    }
    fn caller_owner(&self) -> Option<u8> {
        None
    }
    fn transient(&mut self, clear_on: ClearOn) -> Option<&mut [u8; TRANSIENT_BYTES]> {
        self.lent.transient(clear_on)
    }

    /// The firewall: the server must exist and be selectable; it gets its own context (its own records and
    /// transient memory) and the caller's AID as the runtime knows it; the answer is a copy.
    fn call(
        &mut self,
        caller: &Aid,
        server: &[u8],
        request: &[u8],
        response: &mut [u8],
    ) -> Result<usize, Refused> {
        let entry = self
            .before
            .iter_mut()
            .chain(self.after.iter_mut())
            .find(|e| e.aid.as_bytes() == server && e.selectable())
            .ok_or(Refused)?;
        let mut environment = Lent {
            store: reborrow(&mut self.lent.store),
            transient: &mut *self.lent.transient,
            owner: entry.owner,
            caller: Some(self.lent.owner),
        };
        let mut ctx = Context::new(entry.aid, entry.owner, 0, false, None, &mut environment);
        let mut reply = Reply::new(response);
        entry.applet.shared(&mut ctx, caller, request, &mut reply)?;
        Ok(reply.len())
    }
}
