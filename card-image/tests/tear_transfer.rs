//! A token moved from one applet to another inside one transaction, through the whole card (APDUs, runtime,
//! firewall, shareable interface, store), with the power cut at every write point of the move: after each
//! reboot the record is in exactly one of the two applets.

use card_image::LinkcardImage;
use card_os::Card;
use card_os::layout::{CardNvm, CardStore, RECORDS};
use card_os::nvm::{Tear, TearingNvm};

type TornCard = Card<LinkcardImage, TearingNvm<CardNvm>>;

const TOKEN: &[u8] = b"token #1: 1000 JPY";

fn hex(text: &str) -> Vec<u8> {
    let digits: String = text.split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

fn send(card: &mut TornCard, apdu: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; card_os::RESPONSE_BUFFER + 2];
    let n = card.transmit(apdu, &mut out);
    out.truncate(n);
    out
}

/// Installs a client (FF20, owner 1) holding the token in record slot 1 and a shareable server (FF21, owner 2),
/// and selects the client.
fn set_up(card: &mut TornCard) {
    card.power_on();
    let install = "80 E6 0C 00 1E 06 F04C4E4B43FF 07 F04C4E4B43FF00 07 F04C4E4B43FF2";
    assert_eq!(
        send(card, &hex(&format!("{install}0 01 00 03 C9 01 00 00 00"))),
        [0x00, 0x90, 0x00]
    );
    assert_eq!(
        send(card, &hex(&format!("{install}1 01 00 03 C9 01 08 00 00"))),
        [0x00, 0x90, 0x00]
    );
    assert_eq!(
        send(card, &hex("00 A4 04 0C 07 F04C4E4B43FF20")),
        [0x90, 0x00]
    );
    // A record in slot 0, removed after the token took slot 1: the server's copy will land in slot 0, so the
    // transfer changes pages apart from each other.
    assert_eq!(send(card, &hex("80 16 09 00 02 F1 F1")), [0x90, 0x00]);
    let mut put = hex("80 16 01 00");
    put.push(TOKEN.len() as u8);
    put.extend_from_slice(TOKEN);
    assert_eq!(send(card, &put), [0x90, 0x00]);
    assert_eq!(send(card, &hex("80 1A 09 00")), [0x90, 0x00]);
}

const TRANSFER: &str = "80 1E 01 00 07 F04C4E4B43FF21";

/// Who holds record 01 after a reboot on this memory: (client, server).
fn holders(memory: CardNvm) -> (bool, bool) {
    let mut store = CardStore::open(memory).expect("the store recovers");
    let mut buf = [0u8; 300];
    let mut holds = |owner| match RECORDS.space(&mut store, owner).get(1, &mut buf) {
        Ok(n) => {
            assert_eq!(&buf[..n], TOKEN, "a record is whole or absent");
            true
        }
        Err(_) => false,
    };
    (holds(1), holds(2))
}

#[test]
fn a_transfer_torn_anywhere_leaves_the_token_in_exactly_one_applet() {
    let mut counting = TornCard::with_nvm(TearingNvm::new(CardNvm::default(), None, Tear::Half));
    set_up(&mut counting);
    let setup_writes = counting_writes(counting);

    let mut complete = TornCard::with_nvm(TearingNvm::new(CardNvm::default(), None, Tear::Half));
    set_up(&mut complete);
    assert_eq!(send(&mut complete, &hex(TRANSFER)), [0x90, 0x00]);
    let total_writes = counting_writes(complete);
    let transfer_writes = total_writes - setup_writes;
    assert!(
        transfer_writes >= 6,
        "the transfer changes two records through the journal"
    );

    let mut checked = 0;
    for tear in [Tear::Half, Tear::Garbage] {
        for at in setup_writes..total_writes {
            let mut card = TornCard::with_nvm(TearingNvm::new(CardNvm::default(), Some(at), tear));
            set_up(&mut card);
            let answer = send(&mut card, &hex(TRANSFER));
            assert_eq!(
                answer,
                [0x65, 0x81],
                "{tear:?} tear at write {at}: memory failure reported"
            );
            let memory = card.into_nvm().expect("store").into_inner();
            let (client, server) = holders(memory);
            assert!(
                client != server,
                "{tear:?} tear at write {at}: client {client}, server {server}"
            );
            checked += 1;
        }
    }
    println!(
        "two-applet transfer through the card: {transfer_writes} write points, {checked} torn transfers checked"
    );
}

fn counting_writes(card: TornCard) -> usize {
    card.into_nvm().expect("store").writes()
}
