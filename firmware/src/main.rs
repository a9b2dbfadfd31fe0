//! The linkcard card on a Cortex-M4 (QEMU's `mps2-an386`): the card image behind ISO 7816-3 T=1 on UART0.
//!
//! At every start (power-on, a reset asked by the reader, a panic): paint the stack, load the flash, draw the
//! session's random seed from the seed file (its next state committed to flash first), power the card on, send
//! the ATR, then serve T=1 blocks for ever. Semihosting gives the firmware its command line (the host files that
//! keep the flash) and a console for its one-line reports. No allocator, no heap: the card and the T=1 engine
//! live in statics.
#![no_std]
#![no_main]

mod flash;
mod host;
mod stack;
mod state_file;
mod uart;

use card_image::LinkcardImage;
use card_os::entropy::SeedFile;
use card_os::layout::{STORE_PAGE, STORE_PAGES};
use card_os::{Card, Image};
use card_t1::atr::{WaitingTimes, atr};
use card_t1::{ApduMemory, CardT1, Command, Config, Edc, Event, Framer};
use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::hprintln;
use static_cell::ConstStaticCell;

use crate::flash::FlashNvm;
use crate::host::HostFile;
use crate::uart::Uart;

/// Where the emulated flash is (`NVM` in memory.x): the card's store, then the seed file's two pages.
const NVM_BASE: usize = 0x0030_0000;
const STORE_BYTES: usize = STORE_PAGES * STORE_PAGE;
const SEED_BYTES: usize = card_os::entropy::SEED_FILE_PAGES * STORE_PAGE;
const NVM_BYTES: usize = STORE_BYTES + SEED_BYTES;

/// How the card speaks T=1: the largest information field, the LRC.
const LINK: Config = Config {
    ifsc: card_t1::block::MAX_INF as u8,
    edc: Edc::Lrc,
};
/// BWI 4 (about 1.6 s at 3.57 MHz) for ordinary commands; CWI 5 (43 etu).
const TIMES: WaitingTimes = WaitingTimes { bwi: 4, cwi: 5 };
/// A frame left unfinished this long is dropped (the reader gave up on it): 100 ms of SysTick at 25 MHz.
const CHARACTER_TIMEOUT_TICKS: u32 = 2_500_000;
/// Under `qemu -icount shift=0` each instruction is one nanosecond of the board's clock, and SysTick counts the
/// 25 MHz core clock: one tick is 40 instructions.
const INSTRUCTIONS_PER_TICK: u64 = 40;
/// What S(WTX) asks for before a long command: 10 block waiting times (about 16 s).
const WTX_MULTIPLIER: u8 = 10;

type FirmwareCard = Card<LinkcardImage, FlashNvm>;

/// The card is built at link time: several kilobytes that a small stack should never hold while they are moved.
static CARD: ConstStaticCell<FirmwareCard> = ConstStaticCell::new(Card::unmounted());
/// The T=1 link keeps a block or two; the APDUs themselves stay in the card's buffers ([`CardMemory`]).
static LINK_STATE: ConstStaticCell<CardT1> = ConstStaticCell::new(CardT1::new(LINK));

/// The card's APDU buffers, lent to the T=1 link: a long command is collected in the card's response buffer,
/// and the answer is sent from there.
struct CardMemory<'a>(&'a mut FirmwareCard);

impl ApduMemory for CardMemory<'_> {
    fn command_room(&mut self) -> &mut [u8] {
        self.0.command_room()
    }

    fn answer_data(&self) -> &[u8] {
        self.0.answer_data()
    }
}

#[entry]
fn main() -> ! {
    stack::paint();
    let (mut uart, mut clock, card, link, counting) = start();
    // Painted again: the console reports the start-up's deepest point, then the serving's, each on its own.
    stack::paint();
    serve(&mut uart, &mut clock, card, link, counting)
}

/// Everything before the first block: its own frame, gone before `serve` runs (`main` never returns, so what its
/// frame held would weigh on the stack for ever).
#[inline(never)]
fn start() -> (
    Uart,
    Clock,
    &'static mut FirmwareCard,
    &'static mut CardT1,
    bool,
) {
    let mut uart = Uart::take();
    let Some(peripherals) = cortex_m::Peripherals::take() else {
        reset()
    };
    let clock = Clock::start(peripherals.SYST);
    let (store, seeds, counting) = flash();
    let card: &'static mut FirmwareCard = CARD.take();
    card.mount(store);
    let link: &'static mut CardT1 = LINK_STATE.take();
    card.power_on();
    match SeedFile::new(seeds).and_then(|mut seeds| seeds.next_seed()) {
        Ok(seed) => card.seed_random(seed),
        Err(error) => hprintln!(
            "linkcard-firmware: no random seed ({error:?}): the card refuses what needs one"
        ),
    }
    let Ok(answer_to_reset) = atr(LINK, TIMES, LinkcardImage::HISTORICAL_BYTES) else {
        reset()
    };
    uart.send(&answer_to_reset);
    hprintln!(
        "linkcard-firmware: started, stack high-water {} bytes",
        stack::high_water()
    );
    (uart, clock, card, link, counting)
}

/// Answers T=1 blocks for ever.
fn serve(
    uart: &mut Uart,
    clock: &mut Clock,
    card: &mut FirmwareCard,
    link: &mut CardT1,
    counting: bool,
) -> ! {
    let mut framer = Framer::new(LINK.edc);
    let mut reported_stack = 0;
    loop {
        let Some(byte) = uart.try_read() else {
            if framer.is_partial() && clock.idle() > CHARACTER_TIMEOUT_TICKS {
                framer.reset();
            }
            continue;
        };
        clock.restart_idle();
        let Some(frame) = framer.push(byte) else {
            continue;
        };
        let wants_time = match link.on_frame(frame, &mut CardMemory(card)) {
            Event::Send(frame) => {
                uart.send(frame);
                continue;
            }
            Event::Nothing => continue,
            Event::Command => is_long(link.command_start()),
            Event::CommandTooLong | Event::WtxGranted => false,
        };
        if wants_time {
            uart.send(link.request_wtx(WTX_MULTIPLIER));
            continue;
        }
        let started = SYST::get_current();
        let mut header = [0u8; 2];
        header.copy_from_slice(link.command_start().get(..2).unwrap_or(&[0, 0]));
        let status = match link.command() {
            Command::OneBlock(command) => card.respond(command).status,
            Command::Collected(len) => card.respond_in_place(len).status,
        };
        let ticks = started.wrapping_sub(SYST::get_current()) & 0x00FF_FFFF;
        uart.send(link.answer(status.to_bytes(), &CardMemory(card)));
        if counting {
            let [cla, ins] = header;
            hprintln!(
                "linkcard-firmware: {cla:02X} {ins:02X} ran {} instructions",
                u64::from(ticks) * INSTRUCTIONS_PER_TICK
            );
        }
        let deepest = stack::high_water();
        if deepest > reported_stack {
            reported_stack = deepest;
            hprintln!(
                "linkcard-firmware: stack high-water {deepest} of {} bytes",
                stack::size()
            );
        }
    }
}

/// Commands that may take longer than one block waiting time under emulation: the secure-channel handshake
/// (PERFORM SECURITY OPERATION, MUTUAL and INTERNAL AUTHENTICATE), key generation at personalization, and the
/// credit applet's signed PRESENT and CONFIRM. The card asks for more time before it runs them.
fn is_long(command: &[u8]) -> bool {
    let Some(&ins) = command.get(1) else {
        return false;
    };
    matches!(
        ins,
        0x2A | 0x82
            | 0x88
            | card_os::apdu_spec::bank::ins::PERSONALIZE
            | card_os::apdu_spec::credit::ins::PERSONALIZE
            | card_os::apdu_spec::credit::ins::PRESENT
            | card_os::apdu_spec::credit::ins::CONFIRM
    )
}

/// The card's store and the seed file's pages. QEMU's command line names their host files:
/// "linkcard-firmware STATE-FILE SEED-FILE [count]" (see [`state_file`]; the seed file is its two pages as they
/// are); `count` asks for each command's instruction count on the console (under `-icount shift=0`).
fn flash() -> (FlashNvm, FlashNvm, bool) {
    let mut line = [0u8; host::MAX_COMMAND_LINE];
    let mut words = host::command_line(&mut line)
        .unwrap_or("")
        .split(' ')
        .skip(1);
    let state = words
        .next()
        .filter(|name| !name.is_empty())
        .and_then(HostFile::new);
    let seeds = words
        .next()
        .filter(|name| !name.is_empty())
        .and_then(HostFile::new);
    let counting = words.next() == Some("count");
    let state = state.and_then(
        |file| match state_file::prepare(&file, STORE_PAGE, STORE_PAGES) {
            Ok(offset) => Some((file, offset)),
            Err(error) => {
                hprintln!("linkcard-firmware: the card state file is not used ({error:?})");
                None
            }
        },
    );
    let named = state.is_some();
    // SAFETY: `NVM_BASE .. + NVM_BYTES` lies in the NVM region of memory.x, which the linker keeps free of code
    // and data; `flash` runs once per start, so this is the only reference to it.
    let region = unsafe { core::slice::from_raw_parts_mut(NVM_BASE as *mut u8, NVM_BYTES) };
    let (store, seed_pages) = region.split_at_mut(STORE_BYTES);
    let store = FlashNvm::new(store, STORE_PAGE, state);
    if !store.is_kept() {
        let why = if named {
            "cannot be read"
        } else {
            "is not used"
        };
        hprintln!(
            "linkcard-firmware: the card state file {why}: the memory starts erased at every start"
        );
    }
    let seeds = FlashNvm::new(seed_pages, STORE_PAGE, seeds.map(|file| (file, 0)));
    (store, seeds, counting)
}

/// SysTick as a free-running 24-bit down-counter at the core clock, for the character timeout.
struct Clock {
    last: u32,
    idle: u32,
}

impl Clock {
    fn start(mut systick: SYST) -> Self {
        systick.set_clock_source(SystClkSource::Core);
        systick.set_reload(0x00FF_FFFF);
        systick.clear_current();
        systick.enable_counter();
        Self {
            last: SYST::get_current(),
            idle: 0,
        }
    }

    /// Ticks since the last [`Self::restart_idle`] (saturating); called often enough that the counter wraps at
    /// most once between calls.
    fn idle(&mut self) -> u32 {
        let now = SYST::get_current();
        let elapsed = self.last.wrapping_sub(now) & 0x00FF_FFFF;
        self.last = now;
        self.idle = self.idle.saturating_add(elapsed);
        self.idle
    }

    fn restart_idle(&mut self) {
        self.last = SYST::get_current();
        self.idle = 0;
    }
}

/// Starts the card again, as a power cycle does.
fn reset() -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    reset()
}

#[exception]
unsafe fn HardFault(_: &cortex_m_rt::ExceptionFrame) -> ! {
    reset()
}

#[exception]
unsafe fn DefaultHandler(_: i16) {
    reset()
}
