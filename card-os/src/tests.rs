//! Runtime tests with a minimal image. The full behaviour is covered by the conformance scripts in
//! `tests/conformance`; these cover what no APDU can reach yet (CARD_LOCKED needs a secure channel) and the
//! engine's edge cases for callers (buffers too small, no power).

extern crate std;

use apdu_spec::gp::CardLifeCycle;
use apdu_spec::{Aid, CommandView, StatusWord};

use crate::{Applet, Card, Context, FactoryInstance, Image, Install, LoadFile, Reply};

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
        // INS 5E: what the runtime stamped on this command (variant, level, role), or FF for a plain one.
        if command.ins() == 0x5E {
            return match ctx.security() {
                Some(s) => reply.push(&[
                    s.variant.parameter(),
                    s.level.bits(),
                    s.role.map_or(0, |r| r.to_byte()),
                ]),
                None => reply.push(&[0xFF]),
            };
        }
        reply.push(command.data())
    }
}

#[derive(Debug)]
enum TestImage {}

impl Install for Echo {
    const LOAD_FILE: LoadFile = LoadFile {
        aid: Aid::from_const(&[0xF0, 1, 2, 3, 4]),
        modules: &[MODULE],
    };
    fn install(_: &Aid, _: &Aid, _: &[u8]) -> Result<Self, StatusWord> {
        Ok(Echo)
    }
}

/// Keeps a counter and a validated PIN in its fields and never clears them itself: the runtime must. Install
/// parameter `01` declares its fields cleared on deselect too.
#[derive(Debug)]
struct Forgetful {
    count: u8,
    pin: crate::applet::OwnerPin,
    clear_on: crate::applet::ClearOn,
}

const FORGETFUL_MODULE: Aid = Aid::from_const(&[0xF0, 1, 2, 3, 5, 0]);
const FORGETFUL: Aid = Aid::from_const(&[0xF0, 1, 2, 3, 5, 1]);
const FORGETFUL_ON_DESELECT: Aid = Aid::from_const(&[0xF0, 1, 2, 3, 5, 2]);

impl Applet for Forgetful {
    /// Any command: counts, sets the PIN (`1234`) the first time and verifies it, and answers the count and
    /// whether the PIN was validated before this command.
    fn process(
        &mut self,
        ctx: &mut Context,
        _: &CommandView<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        if ctx.selecting() {
            return Ok(());
        }
        let was_validated = self.pin.is_validated();
        self.count += 1;
        let mut records = ctx.records()?;
        if self.pin.tries_left(&records).is_err() {
            self.pin.update(&mut records, b"1234")?;
        }
        self.pin.check(&mut records, b"1234")?;
        reply.push(&[self.count, u8::from(was_validated)])
    }

    fn volatile_state(&self) -> crate::applet::ClearOn {
        self.clear_on
    }
}

impl Install for Forgetful {
    const LOAD_FILE: LoadFile = LoadFile {
        aid: Aid::from_const(&[0xF0, 1, 2, 3, 5]),
        modules: &[FORGETFUL_MODULE],
    };
    fn install(_: &Aid, _: &Aid, parameters: &[u8]) -> Result<Self, StatusWord> {
        let clear_on = match parameters {
            [] => crate::applet::ClearOn::Reset,
            [1] => crate::applet::ClearOn::Deselect,
            _ => return Err(StatusWord::WRONG_DATA),
        };
        Ok(Self {
            count: 0,
            pin: crate::applet::OwnerPin::new(1, 3).map_err(|_| StatusWord::UNKNOWN)?,
            clear_on,
        })
    }
}

crate::applets! {
    #[derive(Debug)]
    enum TestApplet {
        Echo(Echo),
        Forgetful(Forgetful),
    }
}

impl Image for TestImage {
    type Applet = TestApplet;
    const HISTORICAL_BYTES: &'static [u8] = b"test";
    const FACTORY_INSTANCES: &'static [FactoryInstance] = &[
        FactoryInstance {
            module: MODULE,
            aid: INSTANCE,
            parameters: &[],
            privileges: [0; 3],
        },
        FactoryInstance {
            module: FORGETFUL_MODULE,
            aid: FORGETFUL,
            parameters: &[],
            privileges: [0; 3],
        },
        FactoryInstance {
            module: FORGETFUL_MODULE,
            aid: FORGETFUL_ON_DESELECT,
            parameters: &[1],
            privileges: [0; 3],
        },
    ];
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
    card.runtime.force_life_cycle(CardLifeCycle::Secured);
    card.runtime.force_life_cycle(CardLifeCycle::CardLocked);
    assert_eq!(send(&mut card, &[0x80, 0x10, 0, 0, 1, 0xAA]), [0x69, 0x99]);
    assert_eq!(send(&mut card, &SELECT_INSTANCE), [0x6A, 0x82]);
    let fci = send(&mut card, &SELECT_ISD);
    assert_eq!(&fci[fci.len() - 2..], &[0x62, 0x83]);
    assert_eq!(fci[0], 0x6F);
    // Content management is refused while locked (6982 until the secure channel exists).
    assert_eq!(send(&mut card, &[0x80, 0xF0, 0x80, 0x0F]), [0x69, 0x82]);
    // Unlocked again, the instance is selectable.
    card.runtime.force_life_cycle(CardLifeCycle::Secured);
    assert_eq!(send(&mut card, &SELECT_INSTANCE), [0x90, 0x00]);
}

fn select(card: &mut Card<TestImage>, aid: &Aid) {
    let mut apdu = std::vec![0x00, 0xA4, 0x04, 0x0C, aid.len() as u8];
    apdu.extend_from_slice(aid.as_bytes());
    assert_eq!(send(card, &apdu), [0x90, 0x00]);
}

#[test]
fn applet_fields_and_the_pin_flag_do_not_outlive_a_reset() {
    let mut card = Card::<TestImage>::new();
    card.power_on();
    select(&mut card, &FORGETFUL);
    let touch = [0x80, 0x01, 0x00, 0x00];
    assert_eq!(send(&mut card, &touch), [1, 0, 0x90, 0x00]);
    assert_eq!(
        send(&mut card, &touch),
        [2, 1, 0x90, 0x00],
        "counted, PIN validated"
    );
    // Deselected and selected again: fields declared for reset only stay.
    select(&mut card, &INSTANCE);
    select(&mut card, &FORGETFUL);
    assert_eq!(send(&mut card, &touch), [3, 1, 0x90, 0x00]);
    // A reset creates the applet anew: the count starts again and the PIN is no longer validated (its record,
    // set at the first command, is still there: the check succeeds).
    card.power_on();
    select(&mut card, &FORGETFUL);
    assert_eq!(send(&mut card, &touch), [1, 0, 0x90, 0x00]);
    card.power_off();
    card.power_on();
    select(&mut card, &FORGETFUL);
    assert_eq!(send(&mut card, &touch), [1, 0, 0x90, 0x00]);
}

#[test]
fn fields_declared_clear_on_deselect_go_with_the_last_channel() {
    let mut card = Card::<TestImage>::new();
    card.power_on();
    select(&mut card, &FORGETFUL_ON_DESELECT);
    let touch = [0x80, 0x01, 0x00, 0x00];
    assert_eq!(send(&mut card, &touch), [1, 0, 0x90, 0x00]);
    assert_eq!(send(&mut card, &touch), [2, 1, 0x90, 0x00]);
    select(&mut card, &INSTANCE);
    select(&mut card, &FORGETFUL_ON_DESELECT);
    assert_eq!(send(&mut card, &touch), [1, 0, 0x90, 0x00]);
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

/// Collects `apdu` in the card's command room and runs it there, as the firmware's T=1 link does.
fn respond_in_place(card: &mut Card<TestImage>, apdu: &[u8]) -> std::vec::Vec<u8> {
    card.command_room()[..apdu.len()].copy_from_slice(apdu);
    let answer = card.respond_in_place(apdu.len());
    let mut out = answer.data.to_vec();
    out.extend(answer.status.to_bytes());
    out
}

#[test]
fn answers_in_place_match_transmitted_ones() {
    let mut card = Card::<TestImage>::new();
    card.power_on();
    assert_eq!(respond_in_place(&mut card, &SELECT_INSTANCE), [0x90, 0x00]);
    // An extended command of the largest size, collected in the room where its answer then goes.
    let mut extended = std::vec![0x80, 0x10, 0, 0, 0, 0x08, 0x00];
    extended.extend((0..crate::CHAIN_BUFFER).map(|i| i as u8));
    extended.extend([0x08, 0x00]);
    assert_eq!(extended.len(), crate::COMMAND_APDU);
    assert_eq!(
        respond_in_place(&mut card, &extended),
        send(&mut card, &extended)
    );
    // A chain collected fragment by fragment in the room is joined, as a transmitted one.
    let first = [0x90, 0x10, 0, 0, 3, 1, 2, 3];
    assert_eq!(respond_in_place(&mut card, &first), [0x90, 0x00]);
    assert_eq!(
        respond_in_place(&mut card, &[0x80, 0x10, 0, 0, 2, 4, 5, 0]),
        [1, 2, 3, 4, 5, 0x90, 0x00]
    );
    // The answer stays readable until the next command; Ne holds the rest back for GET RESPONSE, which comes
    // short (not through the room) and finds it.
    let answer = card.respond(&[0x80, 0x10, 0, 0, 4, 1, 2, 3, 4, 2]);
    assert_eq!(
        (answer.data, answer.status),
        (&[1, 2][..], StatusWord::bytes_remaining(2))
    );
    assert_eq!(card.answer_data(), &[1, 2]);
    let rest = card.respond(&[0x00, 0xC0, 0, 0, 0]);
    assert_eq!((rest.data, rest.status), (&[3, 4][..], StatusWord::SUCCESS));
    // Taking the room drops what was held.
    let _ = card.respond(&[0x80, 0x10, 0, 0, 4, 1, 2, 3, 4, 2]);
    assert_eq!(
        respond_in_place(&mut card, &[0x00, 0xC0, 0, 0, 0]),
        [0x69, 0x85]
    );
    assert_eq!(respond_in_place(&mut card, &[0x00]), [0x67, 0x00]);
    let too_long = card.respond_in_place(crate::COMMAND_APDU + 1);
    assert_eq!(
        (too_long.data, too_long.status),
        (&[][..], StatusWord::WRONG_LENGTH)
    );
    card.power_off();
    assert_eq!(respond_in_place(&mut card, &SELECT_INSTANCE), [0x6F, 0x00]);
}

#[test]
fn default_atr_names_the_image() {
    let mut card = Card::<TestImage>::new();
    let atr = card.power_on();
    assert_eq!(&atr.as_bytes()[4..8], b"test");
}

fn from_hex(text: &str) -> std::vec::Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The card's own path for secured commands (unwrap in place, dispatch, wrap the answer) on the published
/// SCP11a transcript of Samsung/OpenSCP-Java: with the session state the published handshake yields (derived
/// host side, since the card's private keys are not published), the card accepts the published secured GET
/// STATUS byte for byte, answers in a form the host opens, and refuses it when replayed.
#[test]
fn card_opens_the_published_secured_command() {
    use apdu_spec::scp11::Variant;
    use apdu_spec::scp11::session::{self, SecureMessaging, SecurityLevel};

    let text = include_str!("../../apdu-spec/tests/data/scp11/openscp-scp11a-p256-aes128-s8.txt");
    let value = |name: &str| {
        let line = text
            .lines()
            .find(|l| l.starts_with(&std::format!("{name} = ")))
            .unwrap();
        from_hex(&line[name.len() + 3..])
    };
    let scalar = |name: &str| {
        let bytes: [u8; 32] = value(name).try_into().unwrap();
        p256::NonZeroScalar::from_repr(bytes.into()).unwrap()
    };
    let command = value("authenticate_command");
    let data = &command[5..5 + usize::from(command[4])];
    let (card_ephemeral, receipt) =
        session::parse_authenticate_response(&value("authenticate_response"))
            .map(|(k, r)| (*k, *r))
            .unwrap();
    let pk_sd: [u8; 65] = value("pk_sd").try_into().unwrap();
    let keys = session::derive(
        &session::ecdh(&scalar("esk_oce"), &card_ephemeral).unwrap(),
        &session::ecdh(&scalar("sk_oce"), &pk_sd).unwrap(),
        SecurityLevel::FULL,
    );
    assert_eq!(session::receipt(&keys, data, &card_ephemeral), receipt);

    // The published command is GET STATUS with P2 00 (the legacy format), which this card manager refuses with
    // 6A86: plainly, and also secured, where the bare 6A86 (not 6982) shows the card verified and opened it.
    let mut plain_card = Card::<TestImage>::new();
    plain_card.power_on();
    assert_eq!(send(&mut plain_card, &value("plain_command")), [0x6A, 0x86]);

    let mut card = Card::<TestImage>::new();
    card.power_on();
    assert_eq!(send(&mut card, &SELECT_ISD)[..2], [0x6F, 0x10]);
    let security = crate::applet::Security {
        variant: Variant::A,
        level: SecurityLevel::FULL,
        role: Some(apdu_spec::scp11::cert::Role::Issuer),
    };
    card.runtime
        .secure_channel()
        .open_with(
            0,
            SecureMessaging::new(&keys, &receipt, SecurityLevel::FULL),
            security,
        )
        .unwrap();
    let secured = value("secured_command");
    assert_eq!(
        send(&mut card, &secured),
        [0x6A, 0x86],
        "verified, opened, run"
    );
    // The host, in step, opens the bare error; the session stays open for the next command.
    let mut host = SecureMessaging::new(&keys, &receipt, SecurityLevel::FULL);
    let mut buf = [0u8; 64];
    buf[..2].copy_from_slice(&[0x4F, 0x00]);
    assert_eq!(
        host.wrap_command([0x84, 0xF2, 0x20, 0x00], &mut buf, 2)
            .unwrap(),
        24
    );
    assert_eq!(&buf[..24], &secured[5..]);
    assert_eq!(host.unwrap_response(&mut [], 0x6A86), Ok(0));
    let mut buf = [0u8; 64];
    buf[..2].copy_from_slice(&[0x4F, 0x00]);
    let n = host
        .wrap_command([0x84, 0xF2, 0x40, 0x02], &mut buf, 2)
        .unwrap();
    let mut next = std::vec![0x84, 0xF2, 0x40, 0x02, n as u8];
    next.extend_from_slice(&buf[..n]);
    next.push(0x00);
    let answer = send(&mut card, &next);
    let (body, sw) = answer.split_at(answer.len() - 2);
    assert_eq!(sw, [0x90, 0x00]);
    let mut body = body.to_vec();
    let n = host.unwrap_response(&mut body, 0x9000).unwrap();
    let plain = send(
        &mut plain_card,
        &[0x80, 0xF2, 0x40, 0x02, 0x02, 0x4F, 0x00, 0x00],
    );
    assert_eq!(
        &body[..n],
        &plain[..plain.len() - 2],
        "the next answer opens to the listing"
    );
    assert_eq!(send(&mut card, &secured), [0x69, 0x82], "replayed");
}

/// The runtime stamps the session's security on each secured command it opened, and nothing on plain ones; the
/// applet cannot declare it. A plain command inside the session is refused and ends it.
#[test]
fn applets_see_the_security_the_runtime_stamped() {
    use apdu_spec::scp11::Variant;
    use apdu_spec::scp11::cert::Role;
    use apdu_spec::scp11::session::{self, SecureMessaging, SecurityLevel};

    let mut card = Card::<TestImage>::new();
    card.power_on();
    assert_eq!(send(&mut card, &SELECT_INSTANCE), [0x90, 0x00]);
    assert_eq!(send(&mut card, &[0x80, 0x5E, 0, 0, 0]), [0xFF, 0x90, 0x00]);

    let keys = session::derive(&[1; 32], &[2; 32], SecurityLevel::MAC_RMAC);
    let security = crate::applet::Security {
        variant: Variant::A,
        level: SecurityLevel::MAC_RMAC,
        role: Some(Role::BankAtm),
    };
    card.runtime
        .secure_channel()
        .open_with(
            0,
            SecureMessaging::new(&keys, &[7; 16], SecurityLevel::MAC_RMAC),
            security,
        )
        .unwrap();
    let mut host = SecureMessaging::new(&keys, &[7; 16], SecurityLevel::MAC_RMAC);
    let mut buf = [0u8; 32];
    let n = host.wrap_command([0x84, 0x5E, 0, 0], &mut buf, 0).unwrap();
    let mut apdu = std::vec![0x84, 0x5E, 0, 0, n as u8];
    apdu.extend_from_slice(&buf[..n]);
    apdu.push(0);
    let answer = send(&mut card, &apdu);
    let (body, sw) = answer.split_at(answer.len() - 2);
    assert_eq!(sw, [0x90, 0x00]);
    let mut body = body.to_vec();
    let n = host.unwrap_response(&mut body, 0x9000).unwrap();
    assert_eq!(
        &body[..n],
        &[0x01, 0x11, 0x02],
        "SCP11a, C-MAC + R-MAC, bank-atm"
    );
    // Plain inside the session: refused, and the session is over.
    assert_eq!(send(&mut card, &[0x80, 0x5E, 0, 0, 0]), [0x69, 0x82]);
    assert_eq!(send(&mut card, &[0x80, 0x5E, 0, 0, 0]), [0xFF, 0x90, 0x00]);
}
