//! Runtime tests with a minimal image. The full behaviour is covered by the conformance scripts in
//! `tests/conformance`; these cover what no APDU can reach yet (CARD_LOCKED needs a secure channel) and the
//! engine's edge cases for callers (buffers too small, no power).

extern crate std;

use apdu_spec::gp::CardLifeCycle;
use apdu_spec::{Aid, CommandView, StatusWord};

use crate::{Applet, Card, Context, FactoryInstance, Image, LoadFile, Reply};

const MODULE: Aid = Aid::from_const(&[0xF0, 1, 2, 3, 4, 0]);
const INSTANCE: Aid = Aid::from_const(&[0xF0, 1, 2, 3, 4, 1]);

#[derive(Debug)]
struct Echo;

impl Applet for Echo {
    fn process(
        &mut self,
        ctx: &mut Context,
        command: &CommandView<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        if ctx.selecting() {
            return Ok(());
        }
        reply.push(command.data())
    }
}

#[derive(Debug)]
enum TestImage {}

impl Image for TestImage {
    type Applet = Echo;
    const HISTORICAL_BYTES: &'static [u8] = b"test";
    const LOAD_FILES: &'static [LoadFile] = &[LoadFile {
        aid: Aid::from_const(&[0xF0, 1, 2, 3, 4]),
        modules: &[MODULE],
    }];
    const FACTORY_INSTANCES: &'static [FactoryInstance] = &[FactoryInstance {
        module: MODULE,
        aid: INSTANCE,
        parameters: &[],
        privileges: [0; 3],
    }];
    fn instantiate(_: &Aid, _: &Aid, _: &[u8]) -> Result<Echo, StatusWord> {
        Ok(Echo)
    }
}

fn send(card: &mut Card<TestImage>, apdu: &[u8]) -> std::vec::Vec<u8> {
    let mut out = [0u8; crate::RESPONSE_BUFFER + 2];
    let n = card.transmit(apdu, &mut out);
    out[..n].to_vec()
}

const SELECT_INSTANCE: [u8; 11] = [0x00, 0xA4, 0x04, 0x0C, 0x06, 0xF0, 1, 2, 3, 4, 1];
const SELECT_ISD: [u8; 5] = [0x00, 0xA4, 0x04, 0x00, 0x00];

#[test]
fn card_locked_allows_only_the_card_manager() {
    let mut card = Card::<TestImage>::new();
    card.power_on();
    assert_eq!(send(&mut card, &SELECT_INSTANCE), [0x90, 0x00]);
    card.runtime.life_cycle = CardLifeCycle::Secured;
    card.runtime.life_cycle = CardLifeCycle::CardLocked;
    card.runtime.deselect_where(|_| true);
    assert_eq!(send(&mut card, &[0x80, 0x10, 0, 0, 1, 0xAA]), [0x69, 0x99]);
    assert_eq!(send(&mut card, &SELECT_INSTANCE), [0x6A, 0x82]);
    let fci = send(&mut card, &SELECT_ISD);
    assert_eq!(&fci[fci.len() - 2..], &[0x62, 0x83]);
    assert_eq!(fci[0], 0x6F);
    // Content management is refused while locked (6982 until the secure channel exists).
    assert_eq!(send(&mut card, &[0x80, 0xF0, 0x80, 0x0F]), [0x69, 0x82]);
    // Unlocked again, the instance is selectable.
    card.runtime.life_cycle = CardLifeCycle::Secured;
    assert_eq!(send(&mut card, &SELECT_INSTANCE), [0x90, 0x00]);
}

#[test]
fn unpowered_card_and_tiny_buffers() {
    let mut card = Card::<TestImage>::new();
    assert_eq!(send(&mut card, &SELECT_ISD), [0x6F, 0x00]);
    card.power_on();
    let mut none = [0u8; 1];
    assert_eq!(card.transmit(&SELECT_ISD, &mut none), 0);
    // A 10-byte buffer takes 8 data bytes; the rest waits for GET RESPONSE.
    assert_eq!(send(&mut card, &SELECT_INSTANCE), [0x90, 0x00]);
    let mut small = [0u8; 10];
    let n = card.transmit(
        &[
            0x80, 0x10, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0,
        ],
        &mut small,
    );
    assert_eq!(&small[..n], &[1, 2, 3, 4, 5, 6, 7, 8, 0x61, 0x04]);
    assert_eq!(
        send(&mut card, &[0x00, 0xC0, 0, 0, 0]),
        [9, 10, 11, 12, 0x90, 0x00]
    );
    card.power_off();
    assert!(!card.is_powered());
    assert_eq!(send(&mut card, &SELECT_ISD), [0x6F, 0x00]);
}

#[test]
fn default_atr_names_the_image() {
    let mut card = Card::<TestImage>::new();
    let atr = card.power_on();
    assert_eq!(&atr.as_bytes()[4..8], b"test");
}
