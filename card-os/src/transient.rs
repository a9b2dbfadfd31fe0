//! Transient memory (Java Card `makeTransient…Array`): RAM whose contents disappear on a reset or power loss
//! (CLEAR_ON_RESET), or also whenever its owner is deselected (CLEAR_ON_DESELECT). Clearing zeroizes, so session
//! keys kept here do not linger.
//!
//! [`TransientPool`] holds the runtime's buffers, one pair per applet owner number, reached only through the
//! owner's `Context::transient`; the runtime clears them itself, so an applet cannot keep them past a deselect
//! or reset. (An applet's own fields are volatile too: see [`crate::applet`].)

use zeroize::Zeroize;

/// When a transient buffer is cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClearOn {
    /// Reset and power loss only.
    Reset,
    /// Also every deselection of the owning applet.
    Deselect,
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
        Self::new()
    }
}

impl TransientPool {
    /// Every buffer cleared.
    pub const fn new() -> Self {
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
        let mut pool = TransientPool::default();
        pool.buffer(1, ClearOn::Deselect).unwrap()[0] = 1;
        pool.buffer(1, ClearOn::Reset).unwrap()[0] = 2;
        pool.buffer(2, ClearOn::Deselect).unwrap()[0] = 3;
        pool.deselected(1);
        assert_eq!(pool.buffer(1, ClearOn::Deselect).unwrap()[0], 0);
        assert_eq!(pool.buffer(1, ClearOn::Reset).unwrap()[0], 2);
        assert_eq!(pool.buffer(2, ClearOn::Deselect).unwrap()[0], 3);
        pool.reset();
        assert_eq!(pool.buffer(1, ClearOn::Reset).unwrap()[0], 0);
        assert_eq!(pool.buffer(2, ClearOn::Deselect).unwrap()[0], 0);
    }
}
