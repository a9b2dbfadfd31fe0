//! A card rebuilt from its non-volatile memory has the same life cycle, instances (with their install
//! parameters and states) and records; and a fresh memory gives a factory card.

use card_image::LinkcardImage;
use card_os::Card;
use card_os::layout::CardNvm;

type RamCard = Card<LinkcardImage, CardNvm>;

fn hex(text: &str) -> Vec<u8> {
    let digits: String = text.split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

fn send(card: &mut RamCard, apdu: &str) -> Vec<u8> {
    let mut out = vec![0u8; card_os::RESPONSE_BUFFER + 2];
    let n = card.transmit(&hex(apdu), &mut out);
    out.truncate(n);
    out
}

#[test]
fn registry_life_cycle_and_records_come_back() {
    let mut card = RamCard::with_nvm(CardNvm::default());
    card.power_on();
    // FF02: multi-selectable (flags 01); locked afterwards. FF03: INSTALLED only. Card INITIALIZED.
    let install = "80 E6 0C 00 1E 06 F04C4E4B43FF 07 F04C4E4B43FF00 07 F04C4E4B43FF02 01 00 03 C9 01 01 00 00";
    assert_eq!(send(&mut card, install), hex("00 90 00"));
    let install_only = "80 E6 04 00 1E 06 F04C4E4B43FF 07 F04C4E4B43FF00 07 F04C4E4B43FF03 01 00 03 C9 01 00 00 00";
    assert_eq!(send(&mut card, install_only), hex("00 90 00"));
    assert_eq!(
        send(&mut card, "00 A4 04 0C 07 F04C4E4B43FF02"),
        hex("90 00")
    );
    assert_eq!(send(&mut card, "80 16 05 00 03 0A 0B 0C"), hex("90 00"));
    assert_eq!(send(&mut card, "00 A4 04 0C 00"), hex("90 00"));
    assert_eq!(
        send(&mut card, "80 F0 40 0F 07 F04C4E4B43FF02"),
        hex("90 00")
    );
    assert_eq!(send(&mut card, "80 F0 80 07"), hex("90 00"));
    let listing = send(&mut card, "80 F2 40 02 02 4F 00 00");

    // Power gone; a new card object on the same memory.
    let mut card = RamCard::with_nvm(card.into_nvm().expect("the store opened"));
    card.power_on();
    assert_eq!(
        send(&mut card, "80 F2 40 02 02 4F 00 00"),
        listing,
        "same instances, states and privileges"
    );
    assert_eq!(
        send(&mut card, "80 F2 80 02 02 4F 00 00"),
        hex("E3 13 4F 08 A000000151000000 9F70 01 07 C5 03 9E FE 80 90 00"),
        "still INITIALIZED"
    );
    assert_eq!(
        send(&mut card, "00 A4 04 0C 07 F04C4E4B43FF02"),
        hex("90 00")
    );
    assert_eq!(
        send(&mut card, "80 14 00 00 00"),
        hex("00 01 01 40 90 00"),
        "install flags kept"
    );
    assert_eq!(
        send(&mut card, "80 18 05 00 00"),
        hex("0A 0B 0C 90 00"),
        "records kept"
    );
    assert_eq!(
        send(&mut card, "00 A4 04 00 07 F04C4E4B43FF03 00"),
        hex("6A 82"),
        "still only INSTALLED"
    );
}

#[test]
fn a_fresh_memory_is_a_factory_card() {
    let mut card = RamCard::with_nvm(CardNvm::default());
    card.power_on();
    assert_eq!(
        send(&mut card, "80 F2 40 02 02 4F 00 00"),
        hex("E3 1A 4F 07 F04C4E4B43FF01 9F70 01 07 C5 03 00 00 00 C4 06 F04C4E4B43FF 90 00")
    );
}
