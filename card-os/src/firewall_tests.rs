//! Firewall tests with test-only applets: one that owns records, a shareable interface and transient secrets
//! (the keeper), and others that try to get at them (a snoop, a friend the keeper trusts, a plain applet that
//! shares nothing). Every attempt through the runtime is refused, and every refusal looks the same.

extern crate std;

use std::vec::Vec;

use apdu_spec::{Aid, CommandView, StatusWord};

use crate::applet::Refused;
use crate::transient::ClearOn;
use crate::{Applet, Card, Context, FactoryInstance, Image, Install, LoadFile, Reply};

const MODULE: Aid = Aid::from_const(&[0xF0, 9, 9, 9, 9, 0]);
const KEEPER: Aid = Aid::from_const(&[0xF0, 9, 9, 9, 9, 1]);
const SNOOP: Aid = Aid::from_const(&[0xF0, 9, 9, 9, 9, 2]);
const FRIEND: Aid = Aid::from_const(&[0xF0, 9, 9, 9, 9, 3]);
const PLAIN: Aid = Aid::from_const(&[0xF0, 9, 9, 9, 9, 4]);

/// Test applet commands (CLA 80).
mod ins {
    pub const PUT_RECORD: u8 = 0x01;
    pub const GET_RECORD: u8 = 0x02;
    pub const KEEP_SECRET: u8 = 0x03;
    pub const READ_SECRET: u8 = 0x04;
    /// Data: server AID length, server AID, request.
    pub const CALL: u8 = 0x10;
    /// Hand record P1 over as P2 outside any call (refused: there is no caller).
    pub const HAND_OVER: u8 = 0x11;
}

#[derive(Debug)]
struct TestApplet {
    aid: Aid,
}

impl Applet for TestApplet {
    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        command: &CommandView<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        if ctx.selecting() {
            return Ok(());
        }
        let clear_on = if command.p2() == 1 {
            ClearOn::Reset
        } else {
            ClearOn::Deselect
        };
        match command.ins() {
            ins::PUT_RECORD => Ok(ctx.records()?.put(command.p1(), command.data())?),
            ins::GET_RECORD => {
                let n = ctx.records()?.get(command.p1(), reply.spare())?;
                reply.advance(n)
            }
            ins::KEEP_SECRET => {
                let buffer = ctx.transient(clear_on).ok_or(StatusWord::UNKNOWN)?;
                buffer[..command.data().len()].copy_from_slice(command.data());
                Ok(())
            }
            ins::READ_SECRET => {
                let buffer = ctx.transient(clear_on).ok_or(StatusWord::UNKNOWN)?;
                let secret = buffer[..4].to_vec();
                reply.push(&secret)
            }
            ins::CALL => {
                let (&len, rest) = command.data().split_first().ok_or(StatusWord::WRONG_DATA)?;
                let (server, request) = rest.split_at(usize::from(len));
                let n = ctx
                    .call(server, request, reply.spare())
                    .map_err(|Refused| StatusWord::CONDITIONS_NOT_SATISFIED)?;
                reply.advance(n)
            }
            ins::HAND_OVER => Ok(ctx.hand_over(command.p1(), command.p2())?),
            _ => Err(StatusWord::INS_NOT_SUPPORTED),
        }
    }

    fn multi_selectable(&self) -> bool {
        true
    }

    /// Only the keeper shares, only with its friend: for "who" it answers the caller's AID as the runtime
    /// stamped it, followed by its record 1; for "give" key caller_key it hands that record over.
    fn shared(
        &mut self,
        ctx: &mut Context<'_>,
        caller: &Aid,
        request: &[u8],
        reply: &mut Reply<'_>,
    ) -> Result<(), Refused> {
        if self.aid != KEEPER || *caller != FRIEND {
            return Err(Refused);
        }
        if let [b'g', b'i', b'v', b'e', key, caller_key] = *request {
            return ctx.hand_over(key, caller_key).map_err(|_| Refused);
        }
        if request != b"who" {
            return Err(Refused);
        }
        reply.push(caller.as_bytes()).map_err(|_| Refused)?;
        let mut record = [0u8; 16];
        let n = ctx
            .records()
            .map_err(|_| Refused)?
            .get(1, &mut record)
            .map_err(|_| Refused)?;
        reply.push(&record[..n]).map_err(|_| Refused)
    }
}

#[derive(Debug)]
enum FirewallImage {}

impl Install for TestApplet {
    const LOAD_FILE: LoadFile = LoadFile {
        aid: Aid::from_const(&[0xF0, 9, 9, 9, 9]),
        modules: &[MODULE],
    };
    fn install(_: &Aid, aid: &Aid, _: &[u8]) -> Result<Self, StatusWord> {
        Ok(TestApplet { aid: *aid })
    }
}

crate::applets! {
    #[derive(Debug)]
    enum FirewallApplet {
        Test(TestApplet),
    }
}

impl Image for FirewallImage {
    type Applet = FirewallApplet;
    const HISTORICAL_BYTES: &'static [u8] = b"fw";
    const FACTORY_INSTANCES: &'static [FactoryInstance] = &[
        FactoryInstance {
            module: MODULE,
            aid: KEEPER,
            parameters: &[],
            privileges: [0; 3],
        },
        FactoryInstance {
            module: MODULE,
            aid: SNOOP,
            parameters: &[],
            privileges: [0; 3],
        },
        FactoryInstance {
            module: MODULE,
            aid: FRIEND,
            parameters: &[],
            privileges: [0; 3],
        },
        FactoryInstance {
            module: MODULE,
            aid: PLAIN,
            parameters: &[],
            privileges: [0; 3],
        },
    ];
}

fn send(card: &mut Card<FirewallImage>, apdu: &[u8]) -> Vec<u8> {
    let mut out = [0u8; crate::RESPONSE_BUFFER + 2];
    let n = card.transmit(apdu, &mut out);
    out[..n].to_vec()
}

fn select(card: &mut Card<FirewallImage>, aid: &Aid) {
    let mut apdu = std::vec![0x00, 0xA4, 0x04, 0x0C, aid.len() as u8];
    apdu.extend_from_slice(aid.as_bytes());
    assert_eq!(send(card, &apdu), [0x90, 0x00], "select {aid}");
}

fn call(card: &mut Card<FirewallImage>, server: &[u8], request: &[u8]) -> Vec<u8> {
    let mut data = std::vec![server.len() as u8];
    data.extend_from_slice(server);
    data.extend_from_slice(request);
    let mut apdu = std::vec![0x80, ins::CALL, 0, 0, data.len() as u8];
    apdu.extend_from_slice(&data);
    apdu.push(0);
    send(card, &apdu)
}

fn card() -> Card<FirewallImage> {
    let mut card = Card::<FirewallImage>::new();
    card.power_on();
    select(&mut card, &KEEPER);
    assert_eq!(
        send(
            &mut card,
            &[0x80, ins::PUT_RECORD, 1, 0, 3, 0x0A, 0x0B, 0x0C]
        ),
        [0x90, 0x00]
    );
    card
}

#[test]
fn another_applet_cannot_reach_the_keepers_records() {
    let mut card = card();
    select(&mut card, &SNOOP);
    // Same key, own records: nothing there.
    assert_eq!(
        send(&mut card, &[0x80, ins::GET_RECORD, 1, 0, 0]),
        [0x6A, 0x88]
    );
    select(&mut card, &KEEPER);
    assert_eq!(
        send(&mut card, &[0x80, ins::GET_RECORD, 1, 0, 0]),
        [0x0A, 0x0B, 0x0C, 0x90, 0x00]
    );
}

#[test]
fn calls_carry_the_stamped_caller_and_every_refusal_is_alike() {
    let mut card = card();
    // The friend is served: the keeper sees the friend's AID, stamped by the runtime.
    select(&mut card, &FRIEND);
    let mut expected = FRIEND.as_bytes().to_vec();
    expected.extend_from_slice(&[0x0A, 0x0B, 0x0C, 0x90, 0x00]);
    assert_eq!(call(&mut card, KEEPER.as_bytes(), b"who"), expected);

    // The snoop is refused, whatever it claims to be in its request, and so is every other failed call.
    select(&mut card, &SNOOP);
    let refusals = [
        call(&mut card, KEEPER.as_bytes(), b"who"),
        call(
            &mut card,
            KEEPER.as_bytes(),
            &[FRIEND.as_bytes(), b"who"].concat(),
        ),
        call(&mut card, KEEPER.as_bytes(), b"records please"),
        call(&mut card, PLAIN.as_bytes(), b"who"),
        call(&mut card, &[0xF0, 9, 9, 9, 9, 0x77], b"who"),
        call(
            &mut card,
            &[0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00],
            b"who",
        ),
    ];
    for refusal in &refusals {
        assert_eq!(refusal, &[0x69, 0x85]);
    }

    // A locked keeper refuses its friend too, the same way.
    select(
        &mut card,
        &Aid::from_const(&[0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00]),
    );
    let mut lock = std::vec![0x80, 0xF0, 0x40, 0x80, KEEPER.len() as u8];
    lock.extend_from_slice(KEEPER.as_bytes());
    assert_eq!(send(&mut card, &lock), [0x90, 0x00]);
    select(&mut card, &FRIEND);
    assert_eq!(call(&mut card, KEEPER.as_bytes(), b"who"), [0x69, 0x85]);
}

#[test]
fn transient_secrets_do_not_outlive_deselect_or_reset() {
    let mut card = card();
    // CLEAR_ON_DESELECT (P2 00) and CLEAR_ON_RESET (P2 01) secrets.
    assert_eq!(
        send(&mut card, &[0x80, ins::KEEP_SECRET, 0, 0, 4, 1, 2, 3, 4]),
        [0x90, 0x00]
    );
    assert_eq!(
        send(&mut card, &[0x80, ins::KEEP_SECRET, 0, 1, 4, 5, 6, 7, 8]),
        [0x90, 0x00]
    );
    assert_eq!(
        send(&mut card, &[0x80, ins::READ_SECRET, 0, 0, 0]),
        [1, 2, 3, 4, 0x90, 0x00]
    );

    // Another applet's transient memory is its own: zeros.
    select(&mut card, &SNOOP);
    assert_eq!(
        send(&mut card, &[0x80, ins::READ_SECRET, 0, 0, 0]),
        [0, 0, 0, 0, 0x90, 0x00]
    );
    assert_eq!(
        send(&mut card, &[0x80, ins::READ_SECRET, 0, 1, 0]),
        [0, 0, 0, 0, 0x90, 0x00]
    );

    // The keeper was deselected: its deselect secret is gone, its reset secret is not.
    select(&mut card, &KEEPER);
    assert_eq!(
        send(&mut card, &[0x80, ins::READ_SECRET, 0, 0, 0]),
        [0, 0, 0, 0, 0x90, 0x00]
    );
    assert_eq!(
        send(&mut card, &[0x80, ins::READ_SECRET, 0, 1, 0]),
        [5, 6, 7, 8, 0x90, 0x00]
    );

    // Still selected on another channel, the deselect secret stays.
    assert_eq!(
        send(&mut card, &[0x80, ins::KEEP_SECRET, 0, 0, 4, 9, 9, 9, 9]),
        [0x90, 0x00]
    );
    assert_eq!(
        send(&mut card, &[0x00, 0x70, 0x00, 0x00, 0x01]),
        [0x01, 0x90, 0x00]
    );
    let mut select_keeper_on_1 = std::vec![0x01, 0xA4, 0x04, 0x0C, KEEPER.len() as u8];
    select_keeper_on_1.extend_from_slice(KEEPER.as_bytes());
    assert_eq!(send(&mut card, &select_keeper_on_1), [0x90, 0x00]);
    select(&mut card, &SNOOP);
    assert_eq!(
        send(&mut card, &[0x81, ins::READ_SECRET, 0, 0, 0]),
        [9, 9, 9, 9, 0x90, 0x00]
    );

    // A reset clears both.
    card.power_off();
    card.power_on();
    select(&mut card, &KEEPER);
    assert_eq!(
        send(&mut card, &[0x80, ins::READ_SECRET, 0, 1, 0]),
        [0, 0, 0, 0, 0x90, 0x00]
    );
}

#[test]
fn a_server_hands_records_only_to_its_stamped_caller() {
    let mut card = card();
    // Outside a call there is nobody to hand a record to.
    assert_eq!(send(&mut card, &[0x80, ins::HAND_OVER, 1, 7]), [0x69, 0x85]);
    // The snoop asks for the keeper's record 1: refused, the record stays.
    select(&mut card, &SNOOP);
    assert_eq!(
        call(&mut card, KEEPER.as_bytes(), b"give\x01\x07"),
        [0x69, 0x85]
    );
    assert_eq!(
        send(&mut card, &[0x80, ins::GET_RECORD, 7, 0, 0]),
        [0x6A, 0x88]
    );
    // The friend cannot have it over a record of its own.
    select(&mut card, &FRIEND);
    assert_eq!(
        send(&mut card, &[0x80, ins::PUT_RECORD, 7, 0, 1, 0xEE]),
        [0x90, 0x00]
    );
    assert_eq!(
        call(&mut card, KEEPER.as_bytes(), b"give\x01\x07"),
        [0x69, 0x85]
    );
    assert_eq!(
        send(&mut card, &[0x80, ins::GET_RECORD, 7, 0, 0]),
        [0xEE, 0x90, 0x00]
    );
    // Under a free key it becomes the friend's, the same bytes, and the keeper's is gone.
    assert_eq!(
        call(&mut card, KEEPER.as_bytes(), b"give\x01\x08"),
        [0x90, 0x00]
    );
    assert_eq!(
        send(&mut card, &[0x80, ins::GET_RECORD, 8, 0, 0]),
        [0x0A, 0x0B, 0x0C, 0x90, 0x00]
    );
    select(&mut card, &KEEPER);
    assert_eq!(
        send(&mut card, &[0x80, ins::GET_RECORD, 1, 0, 0]),
        [0x6A, 0x88]
    );
    // Given once, it cannot be given again.
    select(&mut card, &FRIEND);
    assert_eq!(
        call(&mut card, KEEPER.as_bytes(), b"give\x01\x09"),
        [0x69, 0x85]
    );
}
