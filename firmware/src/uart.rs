//! The CMSDK APB UART (ARM DDI 0479C §4.2) of the mps2 boards: UART0 at 0x4000_4000. Polled, no interrupts: the
//! card only ever waits for the reader or answers it.

use core::ptr::{read_volatile, write_volatile};

/// UART0 of mps2-an386.
const UART0: usize = 0x4000_4000;

const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const BAUDDIV: usize = 0x10;

const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const CTRL_TX_ENABLE: u32 = 1 << 0;
const CTRL_RX_ENABLE: u32 = 1 << 1;
/// The smallest divider the UART accepts (QEMU drops what is sent with less); the emulated line has no real
/// rate, so the smallest is the fastest.
const SMALLEST_DIVIDER: u32 = 16;

/// The UART, owned by whoever holds this value (one per program: see [`Uart::take`]).
pub struct Uart {
    base: usize,
}

impl Uart {
    /// UART0, enabled both ways. Called once, from `main`.
    pub fn take() -> Self {
        let uart = Self { base: UART0 };
        uart.write(BAUDDIV, SMALLEST_DIVIDER);
        uart.write(CTRL, CTRL_TX_ENABLE | CTRL_RX_ENABLE);
        uart
    }

    /// The byte received, if one is waiting.
    pub fn try_read(&mut self) -> Option<u8> {
        (self.read(STATE) & STATE_RX_FULL != 0).then(|| self.read(DATA).to_le_bytes()[0])
    }

    /// Sends `bytes`, waiting while the transmitter is full.
    pub fn send(&mut self, bytes: &[u8]) {
        for byte in bytes {
            while self.read(STATE) & STATE_TX_FULL != 0 {}
            self.write(DATA, u32::from(*byte));
        }
    }

    fn read(&self, register: usize) -> u32 {
        // SAFETY: `base + register` is one of the UART's 32-bit registers, always mapped on this board, and
        // reading it has no effect beyond the UART's (the RX register pops the byte, which is what we want).
        unsafe { read_volatile((self.base + register) as *const u32) }
    }

    fn write(&self, register: usize, value: u32) {
        // SAFETY: as in `read`; only `Uart` touches these addresses.
        unsafe { write_volatile((self.base + register) as *mut u32, value) }
    }
}
