//! Checks the card's P-256 operations (`apdu_spec::curve`, with whichever arithmetic the build chose) against
//! RFC 6979's published P-256 / SHA-256 vector, on the board, and counts each operation's instructions:
//! `qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -icount shift=0 -semihosting-config
//! enable=on,target=native -kernel curve_vectors`; exits 0 when every check holds, 1 when one fails or the core
//! faults (the faulting address is printed).
#![no_std]
#![no_main]

use apdu_spec::curve;
// Its single-core critical section, which semihosting output needs.
use cortex_m as _;
use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use p256::ecdsa::VerifyingKey;

/// RFC 6979 A.2.5: the key.
const SECRET: &str = "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721";
const PUBLIC_X: &str = "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6";
const PUBLIC_Y: &str = "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299";
/// RFC 6979 A.2.5: the signature of "sample" with SHA-256.
const SAMPLE_R: &str = "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716";
const SAMPLE_S: &str = "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8";

fn hex32(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks(2)) {
        let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
        *byte = digit(pair[0]) << 4 | digit(pair[1]);
    }
    out
}

fn check(what: &str, holds: bool) -> bool {
    hprintln!("{} {}", if holds { "ok  " } else { "FAIL" }, what);
    holds
}

/// Under `-icount shift=0` one instruction is one nanosecond and SysTick counts the 25 MHz clock: 40 per tick.
const INSTRUCTIONS_PER_TICK: u32 = 40;

/// Runs `operation`, printing how many instructions it took (SysTick wraps every 671 M instructions).
fn counted<T>(what: &str, operation: impl FnOnce() -> T) -> T {
    let before = SYST::get_current();
    let result = operation();
    let ticks = before.wrapping_sub(SYST::get_current()) & 0x00FF_FFFF;
    hprintln!("{what}: {} instructions", ticks * INSTRUCTIONS_PER_TICK);
    result
}

#[entry]
fn main() -> ! {
    let mut systick = cortex_m::Peripherals::take().expect("taken once").SYST;
    systick.set_clock_source(SystClkSource::Core);
    systick.set_reload(0x00FF_FFFF);
    systick.clear_current();
    systick.enable_counter();
    let secret: p256::NonZeroScalar =
        Option::from(p256::NonZeroScalar::from_repr(hex32(SECRET).into())).expect("a valid scalar");
    let mut expected_public = [0x04u8; 65];
    expected_public[1..33].copy_from_slice(&hex32(PUBLIC_X));
    expected_public[33..].copy_from_slice(&hex32(PUBLIC_Y));
    let mut all = check(
        "public key of the RFC 6979 key",
        counted("public key (k·G)", || curve::public_key_of(&secret)) == expected_public,
    );

    use sha2::Digest;
    let digest: [u8; 32] = sha2::Sha256::digest(b"sample").into();
    let signature = counted("ECDSA signature", || curve::sign_digest(&secret, &digest));
    let mut expected_signature = [0u8; 64];
    expected_signature[..32].copy_from_slice(&hex32(SAMPLE_R));
    expected_signature[32..].copy_from_slice(&hex32(SAMPLE_S));
    all &= check(
        "RFC 6979 signature of \"sample\"",
        signature.is_some_and(|signature| signature.to_bytes()[..] == expected_signature[..]),
    );

    let key = VerifyingKey::from_sec1_bytes(&expected_public).expect("the vector's key");
    let published =
        p256::ecdsa::Signature::from_slice(&expected_signature).expect("the vector's signature");
    let verified = counted("ECDSA verification", || {
        curve::verify(&key, b"sample", &published)
    });
    all &= check("the published signature verifies", verified);
    all &= check(
        "it does not verify another message",
        !curve::verify(&key, b"test", &published),
    );

    let other: p256::NonZeroScalar =
        Option::from(p256::NonZeroScalar::from_repr(digest.into())).expect("a valid scalar");
    let (ours, theirs) = (curve::public_key_of(&secret), curve::public_key_of(&other));
    let shared = (
        counted("ECDH", || curve::ecdh(&secret, &theirs)),
        curve::ecdh(&other, &ours),
    );
    all &= check(
        "ECDH agrees both ways",
        matches!(shared, (Ok(a), Ok(b)) if a == b),
    );
    let mut off_curve = ours;
    off_curve[64] ^= 1;
    all &= check(
        "ECDH refuses a point off the curve",
        curve::ecdh(&secret, &off_curve).is_err(),
    );

    debug::exit(if all {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("fault at {:#x}", frame.pc());
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
