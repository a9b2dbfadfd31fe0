//! Transient memory (Java Card `makeTransient…Array`): RAM whose contents disappear on a reset or power loss
//! (CLEAR_ON_RESET), or also whenever its owner is deselected (CLEAR_ON_DESELECT). Clearing zeroizes, so session
//! keys kept here do not linger.
//!
//! [`TransientPool`] holds the runtime's buffers, reached only through the owner's `Context::transient`; the
//! runtime clears them itself, so an applet cannot keep them past a deselect or reset. (An applet's own fields
//! are volatile too: see [`crate::applet`].)
//!
//! RAM is what a card has least of: the pool has [`TRANSIENT_SLOTS`] buffers, handed to an owner at its first
//! use of a kind and taken back, zeroized, when that buffer is cleared (a buffer that reads all zero until it
//! is written is what a fresh one is). When every slot is taken the next request gets none (Java Card's
//! NO_TRANSIENT_SPACE).

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
/// Buffers the pool hands out at once, over every owner and both kinds.
pub const TRANSIENT_SLOTS: usize = 8;

#[derive(Debug)]
struct Slot {
    /// `(owner, kind)` while handed out.
    holder: Option<(u8, ClearOn)>,
    bytes: [u8; TRANSIENT_BYTES],
}

impl Slot {
    fn release(&mut self) {
        self.bytes.zeroize();
        self.holder = None;
    }
}

/// The runtime's transient buffers, handed out on first use.
#[derive(Debug)]
pub struct TransientPool {
    slots: [Slot; TRANSIENT_SLOTS],
}

impl Default for TransientPool {
    fn default() -> Self {
        Self::new()
    }
}

impl TransientPool {
    /// Every buffer free.
    pub const fn new() -> Self {
        Self {
            slots: [const {
                Slot {
                    holder: None,
                    bytes: [0; TRANSIENT_BYTES],
                }
            }; TRANSIENT_SLOTS],
        }
    }

    /// The buffer of `owner` cleared on `clear_on`, all zero at its first use; `None` when every slot is taken.
    pub fn buffer(&mut self, owner: u8, clear_on: ClearOn) -> Option<&mut [u8; TRANSIENT_BYTES]> {
        let wanted = Some((owner, clear_on));
        let index = match self.slots.iter().position(|slot| slot.holder == wanted) {
            Some(index) => index,
            None => {
                let index = self.slots.iter().position(|slot| slot.holder.is_none())?;
                let slot = self.slots.get_mut(index)?;
                debug_assert!(
                    slot.bytes.iter().all(|b| *b == 0),
                    "a free slot is zeroized"
                );
                slot.holder = wanted;
                index
            }
        };
        self.slots.get_mut(index).map(|slot| &mut slot.bytes)
    }

    /// `owner` was deselected (from its last channel).
    pub fn deselected(&mut self, owner: u8) {
        self.release_where(|holder| holder == (owner, ClearOn::Deselect));
    }

    /// `owner` was deleted: its number may be reused, its buffers must not be.
    pub fn forget(&mut self, owner: u8) {
        self.release_where(|(holder, _)| holder == owner);
    }

    /// Reset or power loss.
    pub fn reset(&mut self) {
        self.release_where(|_| true);
    }

    fn release_where(&mut self, cleared: impl Fn((u8, ClearOn)) -> bool) {
        for slot in &mut self.slots {
            if slot.holder.is_some_and(&cleared) {
                slot.release();
            }
        }
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

    #[test]
    fn slots_are_handed_out_until_none_is_left_and_come_back_cleared() {
        let mut pool = TransientPool::new();
        for owner in 0..TRANSIENT_SLOTS as u8 {
            pool.buffer(owner, ClearOn::Deselect).unwrap()[0] = owner + 1;
        }
        assert!(pool.buffer(99, ClearOn::Reset).is_none(), "no slot left");
        for owner in 0..TRANSIENT_SLOTS as u8 {
            assert_eq!(pool.buffer(owner, ClearOn::Deselect).unwrap()[0], owner + 1);
        }
        pool.deselected(3);
        let reused = pool
            .buffer(99, ClearOn::Reset)
            .expect("the deselected slot is free again");
        assert_eq!(reused, &[0; TRANSIENT_BYTES], "and zeroized");
        reused[1] = 7;
        assert!(
            pool.buffer(3, ClearOn::Deselect).is_none(),
            "taken meanwhile"
        );
        pool.forget(99);
        assert_eq!(
            pool.buffer(3, ClearOn::Deselect).unwrap(),
            &[0; TRANSIENT_BYTES]
        );
    }
}
