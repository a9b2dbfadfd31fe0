//! The loopback applet's state, persistent and volatile (every applet crate has this test: see
//! `docs/writing-an-applet.md`). What it keeps in records comes back when the card reboots from its memory;
//! what it keeps in its fields (the select/deselect log) does not, and an in-process power cycle behaves the
//! same as that reboot, so no test can pass on state a real card would lose.

use apdu_spec::aid;
use apdu_spec::iso::Select;
use apdu_spec::loopback::LoopbackCommand;
use card_image::LinkcardImage;
use card_os::Card;
use card_os::layout::CardNvm;

type RamCard = Card<LinkcardImage, CardNvm>;

fn send(card: &mut RamCard, command: apdu_spec::builder::Command) -> Vec<u8> {
    let mut out = vec![0u8; card_os::RESPONSE_BUFFER + 2];
    let n = card.transmit(&command.to_bytes().unwrap(), &mut out);
    out.truncate(n);
    out
}

fn select_loopback(card: &mut RamCard) {
    let answer = send(
        card,
        Select::aid(aid::LOOPBACK_APPLET.as_bytes()).to_command(),
    );
    assert_eq!(&answer[answer.len() - 2..], [0x90, 0x00]);
}

/// INFO's event log: the events after channel, flags and count.
fn events(card: &mut RamCard) -> Vec<u8> {
    let info = send(card, LoopbackCommand::Info.to_command());
    assert_eq!(&info[info.len() - 2..], [0x90, 0x00]);
    info[3..info.len() - 2].to_vec()
}

const RECORD: &[u8] = b"kept across reboots";

/// A card after some use: a record written, the loopback selected twice (two selects, one deselect logged).
fn used_card() -> RamCard {
    let mut card = RamCard::with_nvm(CardNvm::default());
    card.power_on();
    select_loopback(&mut card);
    let put = LoopbackCommand::Put {
        key: 7,
        data: RECORD,
        leave_open: false,
    };
    assert_eq!(send(&mut card, put.to_command()), [0x90, 0x00]);
    select_loopback(&mut card);
    assert_eq!(events(&mut card), [0x40, 0x80, 0x40]);
    card
}

/// What the loopback shows after a power-on: its record, and a log holding only the new selection.
fn assert_state_after_power_on(card: &mut RamCard) {
    select_loopback(card);
    let got = send(card, LoopbackCommand::Get(7).to_command());
    assert_eq!(&got[..got.len() - 2], RECORD);
    assert_eq!(events(card), [0x40], "the fields started afresh");
}

#[test]
fn records_survive_a_reboot_from_memory_and_fields_do_not() {
    let card = used_card();
    let mut rebooted = RamCard::with_nvm(card.into_nvm().expect("the store opened"));
    rebooted.power_on();
    assert_state_after_power_on(&mut rebooted);
}

#[test]
fn a_power_cycle_in_process_is_a_reboot() {
    let mut card = used_card();
    card.power_off();
    card.power_on();
    assert_state_after_power_on(&mut card);
}
