//! Transient memory (Java Card `makeTransient…Array`): RAM buffers whose contents disappear on a reset or power
//! loss (CLEAR_ON_RESET), or also whenever their owner is deselected (CLEAR_ON_DESELECT). Clearing zeroizes, so
//! session keys kept here do not linger. Applets call [`Transient::on_deselect`] and [`Transient::on_reset`] from
//! their `deselect` and `reset` entry points.

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
