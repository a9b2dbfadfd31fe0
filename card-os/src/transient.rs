//! Transient memory (Java Card `makeTransient…Array`): RAM whose contents disappear on a reset or power loss
//! (CLEAR_ON_RESET), or also whenever its owner is deselected (CLEAR_ON_DESELECT). Clearing zeroizes, so session
//! keys kept here do not linger.
//!
//! * [`TransientPool`]: the runtime's buffers, one pair per applet owner number, reached only through the owner's
//!   `Context::transient`; the runtime clears them itself, so an applet cannot keep them past a deselect or reset.
//! * [`Transient`]: a buffer an applet keeps in its own fields and clears from its `deselect` and `reset`.

use zeroize::Zeroize;

/// When a transient buffer is cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClearOn {
    /// Reset and power loss only.
    Reset,
    /// Also every deselection of the owning applet.
    Deselect,
}

/// A transient buffer of `N` bytes, all zero after clearing.
#[derive(Clone, Debug)]
pub struct Transient<const N: usize> {
    bytes: [u8; N],
    clear_on: ClearOn,
}

impl<const N: usize> Transient<N> {
    /// A zeroed buffer cleared on the given events.
    pub const fn new(clear_on: ClearOn) -> Self {
        Self {
            bytes: [0; N],
            clear_on,
        }
    }
    /// The contents.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }
    /// The contents, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.bytes
    }
    /// Zeroizes the contents now.
    pub fn clear(&mut self) {
        self.bytes.zeroize();
    }
    /// The owner was deselected: CLEAR_ON_DESELECT buffers are zeroized.
    pub fn on_deselect(&mut self) {
        if self.clear_on == ClearOn::Deselect {
            self.clear();
        }
    }
    /// Reset or power loss: every transient buffer is zeroized.
    pub fn on_reset(&mut self) {
        self.clear();
    }
}

/// Bytes of each runtime-managed transient buffer.
pub const TRANSIENT_BYTES: usize = 64;

/// The runtime's transient buffers: for each owner number, one cleared on reset and one also on deselect.
#[derive(Debug)]
pub struct TransientPool {
    on_reset: [[u8; TRANSIENT_BYTES]; crate::registry::MAX_INSTANCES],
    on_deselect: [[u8; TRANSIENT_BYTES]; crate::registry::MAX_INSTANCES],
}

impl Default for TransientPool {
    fn default() -> Self {
        Self {
            on_reset: [[0; TRANSIENT_BYTES]; crate::registry::MAX_INSTANCES],
            on_deselect: [[0; TRANSIENT_BYTES]; crate::registry::MAX_INSTANCES],
        }
    }
}

impl TransientPool {
    /// The buffer of `owner` cleared on `clear_on`.
    pub fn buffer(&mut self, owner: u8, clear_on: ClearOn) -> Option<&mut [u8; TRANSIENT_BYTES]> {
        let buffers = match clear_on {
            ClearOn::Reset => &mut self.on_reset,
            ClearOn::Deselect => &mut self.on_deselect,
        };
        buffers.get_mut(usize::from(owner))
    }
    /// `owner` was deselected (from its last channel).
    pub fn deselected(&mut self, owner: u8) {
        if let Some(buffer) = self.on_deselect.get_mut(usize::from(owner)) {
            buffer.zeroize();
        }
    }
    /// `owner` was deleted: its number may be reused, its buffers must not be.
    pub fn forget(&mut self, owner: u8) {
        self.deselected(owner);
        if let Some(buffer) = self.on_reset.get_mut(usize::from(owner)) {
            buffer.zeroize();
        }
    }
    /// Reset or power loss.
    pub fn reset(&mut self) {
        self.on_reset.zeroize();
        self.on_deselect.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleared_on_the_right_events() {
        let mut session: Transient<4> = Transient::new(ClearOn::Deselect);
        let mut counter: Transient<4> = Transient::new(ClearOn::Reset);
        session.as_mut_slice().copy_from_slice(&[1, 2, 3, 4]);
        counter.as_mut_slice().copy_from_slice(&[5, 6, 7, 8]);
        session.on_deselect();
        counter.on_deselect();
        assert_eq!(session.as_slice(), &[0; 4]);
        assert_eq!(counter.as_slice(), &[5, 6, 7, 8]);
        counter.on_reset();
        assert_eq!(counter.as_slice(), &[0; 4]);
    }
}
