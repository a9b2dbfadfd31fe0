//! Link check for the card image on a Cortex-M4: no allocator, no std.
#![no_std]
#![no_main]

use card_image::LinkcardCard;

/// Entry point: drives the card with a SELECT of the card manager so the whole engine is linked in.
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    let mut card = LinkcardCard::new();
    card.power_on();
    let mut response = [0u8; card_os::RESPONSE_BUFFER + 2];
    let select = [0x00, 0xA4, 0x04, 0x00, 0x00];
    loop {
        let n = card.transmit(core::hint::black_box(&select), &mut response);
        core::hint::black_box(n);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
