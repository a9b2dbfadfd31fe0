//! Link check for the card image on a Cortex-M4: no allocator, no std, the card behind its T=1 engine.
#![no_std]
#![no_main]

use card_image::LinkcardCard;
use card_t1::{CardT1, Config, Event, Framer};

/// The largest command APDU: an extended header, the joined data, Le.
const COMMAND: usize = card_os::CHAIN_BUFFER + 9;
/// The largest response APDU: the data and the status word.
const RESPONSE: usize = card_os::RESPONSE_BUFFER + 2;

/// Entry point: feeds the T=1 engine a SELECT of the card manager in one I-block, byte by byte, and runs the card
/// on it, so that the block protocol and the whole card engine are linked in. The UART comes later.
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    let mut card = LinkcardCard::new();
    card.power_on();
    let mut t1 = CardT1::<COMMAND, RESPONSE>::new(Config::default());
    let mut framer = Framer::new(t1.config().edc);
    // I(0) carrying 00 A4 04 00 00, then its LRC.
    let block = [0x00, 0x00, 0x05, 0x00, 0xA4, 0x04, 0x00, 0x00, 0xA5];
    loop {
        for byte in core::hint::black_box(block) {
            let Some(frame) = framer.push(byte) else {
                continue;
            };
            let sent = match t1.on_frame(frame) {
                Event::Send(frame) => frame.len(),
                Event::Command | Event::CommandTooLong => t1
                    .answer(|command, response| card.transmit(command, response))
                    .len(),
                Event::WtxGranted | Event::Nothing => 0,
            };
            core::hint::black_box(sent);
        }
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
