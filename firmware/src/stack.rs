//! The stack's high-water mark, by painting: at start-up every word between the bottom of the stack and a little
//! below the current stack pointer is filled with a pattern; the deepest word no longer holding it is as far as
//! the stack ever reached.

use core::ptr::{addr_of, read_volatile, write_volatile};

const PAINT: u32 = 0x5AFE_C0DE;
/// Left unpainted below the stack pointer: `paint` itself and what it calls run there.
const MARGIN: usize = 256;

unsafe extern "C" {
    /// Lowest address of the stack (cortex-m-rt: after .bss and .uninit).
    static _stack_end: u32;
    /// Highest address of the stack (the initial stack pointer).
    static _stack_start: u32;
}

fn bottom() -> usize {
    addr_of!(_stack_end) as usize
}

fn top() -> usize {
    addr_of!(_stack_start) as usize
}

/// Paints the unused stack. Called first thing in `main`.
pub fn paint() {
    let here = cortex_m::register::msp::read() as usize;
    let mut word = bottom();
    while word + 4 <= here.saturating_sub(MARGIN) {
        // SAFETY: `word` is in the stack region below the live frames (the stack pointer minus a margin that
        // covers this function), so nothing refers to it; it is 4-byte aligned because the linker aligns
        // `_stack_end` to 4.
        unsafe { write_volatile(word as *mut u32, PAINT) };
        word += 4;
    }
}

/// The deepest the stack has been since [`paint`], in bytes.
pub fn high_water() -> usize {
    let mut word = bottom();
    // SAFETY: reads within the stack region, 4-byte aligned; the words may be live or not, only compared.
    while word < top() && unsafe { read_volatile(word as *const u32) } == PAINT {
        word += 4;
    }
    top() - word
}

/// Bytes between the bottom and the top of the stack.
pub fn size() -> usize {
    top() - bottom()
}
