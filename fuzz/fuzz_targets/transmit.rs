//! Feeds `Card::transmit` with APDU sequences decoded from the fuzzer's bytes: each item is a length byte and
//! that many bytes, except length byte FF, which power-cycles the card, and FE, which powers it off for one
//! command. Every response must end with a plausible status word.
#![no_main]

use card_image::LinkcardCard;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let mut card = Box::new(LinkcardCard::new());
    card.power_on();
    let mut out = vec![0u8; card_os::RESPONSE_BUFFER + 2];
    let mut rest = input;
    while let Some((&len, tail)) = rest.split_first() {
        match len {
            0xFF => {
                card.power_off();
                card.power_on();
                rest = tail;
                continue;
            }
            0xFE => {
                card.power_off();
                let n = card.transmit(&[0x00, 0xA4, 0x04, 0x00, 0x00], &mut out);
                assert_eq!(&out[..n], &[0x6F, 0x00]);
                card.power_on();
                rest = tail;
                continue;
            }
            _ => {}
        }
        let len = usize::from(len).min(tail.len());
        let (apdu, next) = tail.split_at(len);
        let n = card.transmit(apdu, &mut out);
        assert!(n >= 2 && n <= out.len());
        assert!(matches!(out[n - 2], 0x61..=0x6F | 0x90), "status {:02X?}", &out[n - 2..n]);
        rest = next;
    }
});
