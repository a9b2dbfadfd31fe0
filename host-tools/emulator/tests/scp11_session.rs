//! SCP11 end to end in process: card issuing (the card manager personalized as a security domain), full
//! sessions at every security level, SCP11b, roles, and the attacks a secure channel must stop. Every attack
//! is refused with 6982, closes the session, and leaves the card's registry as it was.
//!
//! Commands are built by their typed encoders (`apdu-spec`); raw bytes appear only where a test plays an
//! attacker on the wire (a changed, cut or replayed secured command) or sends a form no encoder makes.

use std::sync::LazyLock;

use apdu_spec::aid::{self, Aid};
use apdu_spec::builder::Command;
use apdu_spec::gp::{CardManagerCommand, InstallRequest, SetStatusTarget, StatusScope};
use apdu_spec::iso::Select;
use apdu_spec::loopback::LoopbackCommand;
use apdu_spec::scp11::cert::{Date, Role};
use apdu_spec::scp11::session::SecurityLevel;
use apdu_spec::scp11::{HandshakeCommand, KID_OCE, KID_SCP11A, KID_SCP11B, KeyReference};
use card_client::CardChannel;
use card_client::card_manager::DataObject;
use card_client::scp11::{
    self, Authority, KVN, OceCredentials, Personalization, Scp11Error, Scp11Session, open_scp11a,
    open_scp11b,
};
use emulator::InProcessChannel;

/// The loopback instance these tests install, F04C4E4B43FF05.
static LOOPBACK_05: LazyLock<Aid> =
    LazyLock::new(|| aid::LOOPBACK_LOAD_FILE.with_suffix(0x05).unwrap());

/// INSTALL [for install and make selectable] of [`LOOPBACK_05`], multi-selectable (flags 01); no Le.
static INSTALL_LOOPBACK: LazyLock<Vec<u8>> = LazyLock::new(|| {
    apdu(CardManagerCommand::Install(InstallRequest {
        install: true,
        make_selectable: true,
        load_file: aid::LOOPBACK_LOAD_FILE.as_bytes(),
        module: aid::LOOPBACK_MODULE.as_bytes(),
        application: LOOPBACK_05.as_bytes(),
        privileges: &[0x00],
        applet_parameters: &[0x01],
    }))
});
static DELETE_LOOPBACK: LazyLock<Vec<u8>> = LazyLock::new(|| {
    apdu(CardManagerCommand::Delete {
        aid: LOOPBACK_05.as_bytes(),
    })
});
/// GET STATUS of every application.
static LIST_APPLICATIONS: LazyLock<Vec<u8>> = LazyLock::new(|| {
    apdu(CardManagerCommand::GetStatus {
        scope: StatusScope::Applications,
        next: false,
        aid_prefix: &[],
    })
});
static SELECT_CARD_MANAGER: LazyLock<Vec<u8>> =
    LazyLock::new(|| bytes(Select::aid(aid::CARD_MANAGER.as_bytes()).to_command()));
/// INSTALL [for personalization] of [`LOOPBACK_05`].
static PERSONALIZE_LOOPBACK: LazyLock<Vec<u8>> = LazyLock::new(|| {
    apdu(CardManagerCommand::InstallForPersonalization {
        aid: LOOPBACK_05.as_bytes(),
    })
});

/// A typed command's APDU (short when it fits).
fn bytes(command: Command) -> Vec<u8> {
    command.to_bytes().unwrap()
}

/// A card-manager command's APDU.
fn apdu(command: CardManagerCommand<'_>) -> Vec<u8> {
    bytes(command.to_command())
}

/// STORE DATA of one personalization object, without Le.
fn store(object: &DataObject<'_>) -> Vec<u8> {
    apdu(CardManagerCommand::StoreData {
        data: &object.encode(),
    })
}

/// The OCE's key reference in PERFORM SECURITY OPERATION, as `open_scp11a` sends it.
const OCE_KEY: KeyReference = KeyReference {
    kvn: KVN,
    kid: KID_OCE,
};

fn date(y: u16, m: u8, d: u8) -> Date {
    Date::from_ymd(y, m, d).unwrap()
}

fn sw(response: &[u8]) -> u16 {
    u16::from_be_bytes([response[response.len() - 2], response[response.len() - 1]])
}

/// An issued card and the parties around it.
struct World {
    card: InProcessChannel,
    card_ca: Authority,
    oce_ca: Authority,
    card_key: [u8; 65],
    issuer: OceCredentials,
}

const TODAY: (u16, u8, u8) = (2026, 11, 24);

fn world() -> World {
    let mut card = InProcessChannel::new().unwrap();
    let card_ca = Authority::generate(b"linkcard card CA").unwrap();
    let oce_ca = Authority::generate(b"linkcard issuer CA").unwrap();
    let today = date(TODAY.0, TODAY.1, TODAY.2);
    assert_eq!(sw(&card.transmit(&SELECT_CARD_MANAGER).unwrap()), 0x9000);
    let card_key = scp11::personalize(
        &mut card,
        &Personalization {
            instance: None,
            card_authority: &card_ca,
            subject: b"card 0001",
            anchors: &[oce_ca.anchor()],
            today,
            expiration: date(2031, 12, 31),
        },
    )
    .unwrap();
    // Issue the card: INITIALIZED, then SECURED.
    for state in [0x07, 0x0F] {
        let set_status = apdu(CardManagerCommand::SetStatus {
            target: SetStatusTarget::Card,
            state,
            aid: &[],
        });
        let r = card.transmit(&set_status).unwrap();
        assert_eq!(sw(&r), 0x9000, "SET STATUS {state:02X}");
    }
    let issuer = oce_ca
        .issue_oce(b"issuer system", Role::Issuer, today, date(2027, 12, 31))
        .unwrap();
    World {
        card,
        card_ca,
        oce_ca,
        card_key,
        issuer,
    }
}

/// The registry listing, read plainly (SELECT first: it ends any session on the channel).
fn applications(channel: &mut impl CardChannel) -> Vec<u8> {
    assert_eq!(sw(&channel.transmit(&SELECT_CARD_MANAGER).unwrap()), 0x9000);
    let r = channel.transmit(&LIST_APPLICATIONS).unwrap();
    assert_eq!(sw(&r), 0x9000);
    r
}

fn open<'a>(
    world: &'a mut World,
    oce: &OceCredentials,
    level: SecurityLevel,
) -> Scp11Session<&'a mut InProcessChannel> {
    open_scp11a(&mut world.card, &world.card_key, oce, level, None).unwrap()
}

/// Sends raw bytes under the session (as an attacker on the wire would) and returns the status word.
fn raw(session: &mut Scp11Session<&mut InProcessChannel>, apdu: &[u8]) -> u16 {
    sw(&session.inner().transmit(apdu).unwrap())
}

/// After an attack: the session is gone on the card (a correct secured command is refused too).
fn assert_closed<C: CardChannel>(session: &mut Scp11Session<C>) {
    let r = session.transmit_secured(&LIST_APPLICATIONS);
    assert!(
        matches!(&r, Ok(plain) if sw(plain) == 0x6982),
        "a session after an attack must be closed: {r:?}"
    );
}

#[test]
fn card_certificate_verifies_against_the_card_ca_only() {
    let mut w = world();
    let today = date(TODAY.0, TODAY.1, TODAY.2);
    let key = scp11::card_key(&mut w.card, &w.card_ca.issuer(), today).unwrap();
    assert_eq!(key, w.card_key);
    let stranger = Authority::generate(b"linkcard card CA").unwrap();
    assert!(scp11::card_key(&mut w.card, &stranger.issuer(), today).is_err());
}

#[test]
fn a_chained_oce_authenticates_with_the_published_chain_flag() {
    let mut w = world();
    let today = date(TODAY.0, TODAY.1, TODAY.2);
    let intermediate = Authority::generate(b"issuer sub-CA").unwrap();
    let link = w
        .oce_ca
        .certify_authority(&intermediate, today, date(2029, 12, 31))
        .unwrap();
    let mut oce = intermediate
        .issue_oce(b"issuer system 2", Role::Issuer, today, date(2027, 12, 31))
        .unwrap();
    oce.chain.insert(0, link.clone());
    // `80 2A 03 90 <link>`, then `80 2A 03 10 <leaf>`: P2 b8 marks the certificate that has a successor.
    let mut session = open(&mut w, &oce, SecurityLevel::FULL);
    let r = session.transmit_secured(&INSTALL_LOOPBACK).unwrap();
    assert_eq!(r, [0x00, 0x90, 0x00]);
    drop(session);
    // The flag in P1 b8 is not SCP11's: the link then counts as a leaf, and a CA certificate is no leaf. Raw
    // bytes: no encoder makes this unpublished form.
    assert_eq!(sw(&w.card.transmit(&SELECT_CARD_MANAGER).unwrap()), 0x9000);
    let mut old_form = vec![0x80, 0x2A, 0x83, 0x10, link.len() as u8];
    old_form.extend_from_slice(&link);
    assert_eq!(sw(&w.card.transmit(&old_form).unwrap()), 0x6982);
}

#[test]
fn issuer_session_at_every_level_manages_content() {
    let mut w = world();
    let before = applications(&mut w.card);
    for level in SecurityLevel::ALL {
        let issuer = w.issuer.clone();
        let mut session = open(&mut w, &issuer, level);
        let r = session.transmit_secured(&INSTALL_LOOPBACK).unwrap();
        assert_eq!(r, [0x00, 0x90, 0x00], "INSTALL at level {level:?}");
        let listed = session.transmit_secured(&LIST_APPLICATIONS).unwrap();
        assert_eq!(sw(&listed), 0x9000);
        assert!(
            listed.windows(7).any(|w| w == LOOPBACK_05.as_bytes()),
            "new instance listed at level {level:?}"
        );
        let r = session.transmit_secured(&DELETE_LOOPBACK).unwrap();
        assert_eq!(r, [0x00, 0x90, 0x00], "DELETE at level {level:?}");
        // Errors travel bare and do not end the session.
        let r = session.transmit_secured(&DELETE_LOOPBACK).unwrap();
        assert_eq!(r, [0x6A, 0x88]);
        let r = session.transmit_secured(&LIST_APPLICATIONS).unwrap();
        assert_eq!(sw(&r), 0x9000);
    }
    assert_eq!(applications(&mut w.card), before);
}

/// Installs the loopback instance F04C4E4B43FF05 through an issuer session, personalizes it as a security domain
/// of its own that trusts `terminal_ca`, and selects it; returns its key as verified from GET DATA BF21.
fn personalized_instance(w: &mut World, terminal_ca: &Authority) -> [u8; 65] {
    let today = date(TODAY.0, TODAY.1, TODAY.2);
    let instance = *LOOPBACK_05;
    let issuer = w.issuer.clone();
    let card_ca = w.card_ca.clone();
    let instance_key = {
        let mut session = open(w, &issuer, SecurityLevel::FULL);
        assert_eq!(
            session.transmit_secured(&INSTALL_LOOPBACK).unwrap(),
            [0x00, 0x90, 0x00]
        );
        scp11::personalize(
            &mut session,
            &Personalization {
                instance: Some(instance.as_bytes()),
                card_authority: &card_ca,
                subject: b"loopback 05",
                anchors: &[terminal_ca.anchor()],
                today,
                expiration: date(2030, 1, 1),
            },
        )
        .unwrap()
    };
    let select = bytes(Select::aid(instance.as_bytes()).to_command());
    assert_eq!(sw(&w.card.transmit(&select).unwrap()), 0x9000);
    let key = scp11::card_key(&mut w.card, &card_ca.issuer(), today).unwrap();
    assert_eq!(key, instance_key);
    key
}

/// An applet instance personalized as its own security domain (through an issuer session): its own key,
/// certificate and anchors; a long command is secured whole, then chained, and the long answer comes back
/// through GET RESPONSE.
#[test]
fn personalized_instance_runs_its_own_sessions_with_long_commands() {
    let mut w = world();
    let today = date(TODAY.0, TODAY.1, TODAY.2);
    let terminal_ca = Authority::generate(b"terminal CA").unwrap();
    let issuer = w.issuer.clone();
    let key = personalized_instance(&mut w, &terminal_ca);
    assert_ne!(key, w.card_key, "each domain has its own key");
    // The card manager's issuer certificate means nothing here: the instance trusts the terminal CA only.
    let r = open_scp11a(&mut w.card, &key, &issuer, SecurityLevel::FULL, None);
    assert!(matches!(r, Err(Scp11Error::Refused { .. })), "{r:?}");
    let terminal = terminal_ca
        .issue_oce(b"terminal 1", Role::BankAtm, today, date(2027, 1, 1))
        .unwrap();
    let mut session = open_scp11a(&mut w.card, &key, &terminal, SecurityLevel::FULL, None).unwrap();
    let payload: Vec<u8> = (0..400u16).map(|i| (i * 7) as u8).collect();
    let command = LoopbackCommand::Echo(&payload)
        .to_command()
        .to_extended()
        .unwrap();
    let fragments = session.wrap(&command).unwrap();
    assert!(fragments.len() > 1, "secured then chained");
    // wrap() advanced the host's counter: start a fresh session for the real exchange.
    let mut session = open_scp11a(
        session.into_inner(),
        &key,
        &terminal,
        SecurityLevel::FULL,
        None,
    )
    .unwrap();
    let r = session.transmit_secured(&command).unwrap();
    assert_eq!(sw(&r), 0x9000);
    assert_eq!(&r[..r.len() - 2], &payload[..], "echo through the session");
}

#[test]
fn scp11b_session_is_confidential_but_has_no_role() {
    let mut w = world();
    let before = applications(&mut w.card);
    let mut session = open_scp11b(&mut w.card, &w.card_key, SecurityLevel::FULL).unwrap();
    let r = session.transmit_secured(&LIST_APPLICATIONS).unwrap();
    assert_eq!(r, before, "the same listing, decrypted");
    let r = session.transmit_secured(&INSTALL_LOOPBACK).unwrap();
    assert_eq!(r, [0x69, 0x82], "no issuer role");
    assert_closed(&mut session);
    let mut card = session.into_inner();
    assert_eq!(applications(&mut card), before);
}

#[test]
fn plain_content_management_is_refused_once_secured() {
    let mut w = world();
    let r = w.card.transmit(&INSTALL_LOOPBACK).unwrap();
    assert_eq!(r, [0x69, 0x82]);
}

#[test]
fn role_without_rights_is_refused_and_closes_the_session() {
    let mut w = world();
    let today = date(TODAY.0, TODAY.1, TODAY.2);
    let before = applications(&mut w.card);
    for role in [Role::BankAtm, Role::CreditPos, Role::TokenDelivery] {
        let oce = w
            .oce_ca
            .issue_oce(b"terminal", role, today, date(2027, 1, 1))
            .unwrap();
        let mut session = open(&mut w, &oce, SecurityLevel::FULL);
        let r = session.transmit_secured(&INSTALL_LOOPBACK).unwrap();
        assert_eq!(r, [0x69, 0x82], "{role:?} may not INSTALL");
        assert_closed(&mut session);
    }
    assert_eq!(applications(&mut w.card), before);
}

#[test]
fn tampered_replayed_reordered_and_truncated_commands_are_refused() {
    let mut w = world();
    let before = applications(&mut w.card);
    type Attack = fn(&mut Scp11Session<&mut InProcessChannel>) -> u16;
    let attacks: [(&str, Attack); 6] = [
        ("replayed", |s| {
            let sent = s.wrap(&LIST_APPLICATIONS).unwrap().remove(0);
            assert_eq!(raw(s, &sent), 0x9000);
            raw(s, &sent)
        }),
        ("flipped data bit", |s| {
            let mut apdu = s.wrap(&INSTALL_LOOPBACK).unwrap().remove(0);
            apdu[7] ^= 0x01;
            raw(s, &apdu)
        }),
        ("flipped MAC bit", |s| {
            let mut apdu = s.wrap(&INSTALL_LOOPBACK).unwrap().remove(0);
            let last = apdu.len() - 1; // no Le: the MAC's last byte
            apdu[last] ^= 0x80;
            raw(s, &apdu)
        }),
        ("truncated MAC", |s| {
            // No Le: the MAC is last; drop half of it and say so in Lc.
            let apdu = s.wrap(&INSTALL_LOOPBACK).unwrap().remove(0);
            let mut short = apdu[..apdu.len() - 4].to_vec();
            short[4] -= 4;
            raw(s, &short)
        }),
        ("reordered", |s| {
            let first = s.wrap(&LIST_APPLICATIONS).unwrap().remove(0);
            let second = s.wrap(&INSTALL_LOOPBACK).unwrap().remove(0);
            let answer = raw(s, &second);
            assert_eq!(raw(s, &first), 0x6982);
            answer
        }),
        ("plain command inside the session", |s| {
            raw(s, &INSTALL_LOOPBACK)
        }),
    ];
    for (name, attack) in attacks {
        let issuer = w.issuer.clone();
        let mut session = open(&mut w, &issuer, SecurityLevel::FULL);
        assert_eq!(attack(&mut session), 0x6982, "{name}");
        assert_closed(&mut session);
        assert_eq!(applications(&mut w.card), before, "{name}: nothing changed");
    }
}

#[test]
fn oce_certificates_from_the_wrong_ca_expired_or_not_for_key_agreement_are_refused() {
    let mut w = world();
    let today = date(TODAY.0, TODAY.1, TODAY.2);
    let impostor_ca = Authority::generate(&w.oce_ca.id).unwrap(); // same identifier, other key
    let forged = impostor_ca
        .issue_oce(b"issuer system", Role::Issuer, today, date(2027, 1, 1))
        .unwrap();
    let expired = w
        .oce_ca
        .issue_oce(
            b"issuer system",
            Role::Issuer,
            date(2020, 1, 1),
            date(2026, 11, 23),
        )
        .unwrap();
    let unknown_ca = Authority::generate(b"nobody's CA")
        .unwrap()
        .issue_oce(b"issuer system", Role::Issuer, today, date(2027, 1, 1))
        .unwrap();
    // A leaf uploaded as if more certificates followed must be a CA: refused.
    for (name, oce) in [
        ("wrong CA", forged),
        ("expired", expired),
        ("unknown CA", unknown_ca),
    ] {
        let r = open_scp11a(&mut w.card, &w.card_key, &oce, SecurityLevel::FULL, None);
        assert!(
            matches!(r, Err(Scp11Error::Refused { status, .. }) if status.to_bytes() == [0x69, 0x82]),
            "{name}: {r:?}"
        );
        // No MUTUAL AUTHENTICATE without a verified chain.
        let mutual = HandshakeCommand::MutualAuthenticate {
            key: KeyReference {
                kvn: KVN,
                kid: KID_SCP11A,
            },
            data: &[],
        };
        let r = w.card.transmit(&bytes(mutual.to_command())).unwrap();
        assert_ne!(sw(&r), 0x9000, "{name}");
    }
    let r = w.card.transmit(&INSTALL_LOOPBACK).unwrap();
    assert_eq!(r, [0x69, 0x82]);
}

#[test]
fn replayed_handshake_gives_an_attacker_nothing() {
    let mut w = world();
    let before = applications(&mut w.card);
    // Record a whole session: its handshake and one secured INSTALL.
    let issuer = w.issuer.clone();
    let recorded_install = {
        let mut session = open(&mut w, &issuer, SecurityLevel::FULL);
        session.wrap(&INSTALL_LOOPBACK).unwrap().remove(0)
    };
    // The attacker replays the OCE's certificate upload and handshake: the card answers with a new ephemeral
    // key, so the replay opens a session under keys the attacker does not have...
    let pso = HandshakeCommand::UploadCertificate {
        key: OCE_KEY,
        more: false,
        certificate: &issuer.chain[0],
    };
    assert_eq!(
        sw(&w.card.transmit(&bytes(pso.to_command())).unwrap()),
        0x9000
    );
    let handshake_data = {
        let mut data = [0u8; 96];
        let ephemeral = scp11::random_scalar().unwrap();
        let n = apdu_spec::scp11::session::Handshake::encode(
            apdu_spec::scp11::Variant::A,
            SecurityLevel::FULL,
            &scp11::public_key_of(&ephemeral),
            &mut data,
        )
        .unwrap();
        data[..n].to_vec()
    };
    let mutual = HandshakeCommand::MutualAuthenticate {
        key: KeyReference {
            kvn: KVN,
            kid: KID_SCP11A,
        },
        data: &handshake_data,
    };
    assert_eq!(
        sw(&w.card.transmit(&bytes(mutual.to_command())).unwrap()),
        0x9000
    );
    // ...and the recorded secured INSTALL is refused under them.
    assert_eq!(sw(&w.card.transmit(&recorded_install).unwrap()), 0x6982);
    assert_eq!(applications(&mut w.card), before);
}

#[test]
fn sessions_end_on_reset_and_deselect() {
    let mut w = world();
    let issuer = w.issuer.clone();
    let mut session = open(&mut w, &issuer, SecurityLevel::FULL);
    let next = session.wrap(&LIST_APPLICATIONS).unwrap().remove(0);
    session.inner().reset().unwrap();
    assert_eq!(raw(&mut session, &SELECT_CARD_MANAGER), 0x9000);
    assert_eq!(raw(&mut session, &next), 0x6982, "no session after a reset");

    let mut session = open(&mut w, &issuer, SecurityLevel::FULL);
    let next = session.wrap(&LIST_APPLICATIONS).unwrap().remove(0);
    assert_eq!(raw(&mut session, &SELECT_CARD_MANAGER), 0x9000);
    assert_eq!(raw(&mut session, &next), 0x6982, "no session after SELECT");
}

#[test]
fn a_card_without_entropy_refuses_what_needs_randomness() {
    // A card object nobody seeded (a transport that forgot): it must not invent randomness.
    let mut card = card_image::LinkcardCard::new();
    card.power_on();
    let mut out = [0u8; 300];
    let mut send = |card: &mut card_image::LinkcardCard, apdu: &[u8]| -> u16 {
        let n = card.transmit(apdu, &mut out);
        u16::from_be_bytes([out[n - 2], out[n - 1]])
    };
    assert_eq!(send(&mut card, &SELECT_CARD_MANAGER), 0x9000);
    assert_eq!(
        send(&mut card, &store(&DataObject::GenerateKey)),
        0x6985,
        "key generation"
    );
    let secret = scp11::random_scalar().unwrap();
    let scalar: [u8; 32] = p256::elliptic_curve::ff::PrimeField::to_repr(&*secret).into();
    assert_eq!(
        send(&mut card, &store(&DataObject::StaticKey(&scalar))),
        0x9000,
        "an imported key needs no randomness"
    );
    // The key serves once a certificate certifies it.
    let certificate = Authority::generate(b"card CA")
        .unwrap()
        .certify(
            b"card",
            &scp11::public_key_of(&secret),
            None,
            date(2026, 11, 24),
            date(2030, 1, 1),
        )
        .unwrap();
    assert_eq!(
        send(&mut card, &store(&DataObject::Certificates(&certificate))),
        0x9000,
        "the certificate activates the key"
    );
    let mut data = [0u8; 96];
    let n = apdu_spec::scp11::session::Handshake::encode(
        apdu_spec::scp11::Variant::B,
        SecurityLevel::FULL,
        &scp11::public_key_of(&scp11::random_scalar().unwrap()),
        &mut data,
    )
    .unwrap();
    let internal = HandshakeCommand::InternalAuthenticate {
        key: KeyReference {
            kvn: KVN,
            kid: KID_SCP11B,
        },
        data: &data[..n],
    };
    let internal = bytes(internal.to_command());
    assert_eq!(
        send(&mut card, &internal),
        0x6985,
        "handshake without entropy"
    );
    card.seed_random(card_client::entropy::os_seed().unwrap());
    assert_eq!(send(&mut card, &internal), 0x9000, "handshake once seeded");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any change to a secured command on the wire (a byte changed anywhere after the header, cut short, or
    /// grown) is refused with 6982, ends the session and changes nothing.
    #[test]
    fn any_tampered_secured_command_is_refused(
        kind in 0u8..3,
        position in proptest::prelude::any::<proptest::sample::Index>(),
        mask in 1u8..=255,
        extra in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..16),
    ) {
        let mut w = world();
        let before = applications(&mut w.card);
        let issuer = w.issuer.clone();
        let mut session = open(&mut w, &issuer, SecurityLevel::FULL);
        let apdu = session.wrap(&INSTALL_LOOPBACK).unwrap().remove(0);
        let data_len = usize::from(apdu[4]);
        let tampered = match kind {
            0 => {
                // One byte of the data field (ciphertext or MAC) changed.
                let mut t = apdu.clone();
                t[5 + position.index(data_len)] ^= mask;
                t
            }
            1 => {
                // Cut short, Lc saying so.
                let keep = position.index(data_len);
                let mut t = apdu[..5 + keep].to_vec();
                t[4] = keep as u8;
                if keep == 0 { t.truncate(4); }
                t
            }
            _ => {
                // Grown, Lc saying so.
                let mut t = apdu.clone();
                t.extend(&extra);
                t[4] = (data_len + extra.len()) as u8;
                t
            }
        };
        proptest::prop_assert_eq!(raw(&mut session, &tampered), 0x6982);
        assert_closed(&mut session);
        proptest::prop_assert_eq!(applications(&mut w.card), before);
    }
}

/// Only an issuer session with the card manager moves the card date: a CA that one applet trusts cannot push
/// it into the future and so expire the issuer's certificate.
#[test]
fn a_far_future_certificate_for_an_applet_does_not_move_the_card_date() {
    let mut w = world();
    let terminal_ca = Authority::generate(b"terminal CA").unwrap();
    let issuer = w.issuer.clone();
    let key = personalized_instance(&mut w, &terminal_ca);
    let future = terminal_ca
        .issue_oce(
            b"terminal",
            Role::BankAtm,
            date(2099, 1, 1),
            date(2099, 12, 31),
        )
        .unwrap();
    assert!(open_scp11a(&mut w.card, &key, &future, SecurityLevel::FULL, None).is_ok());
    // Back on the card manager, the issuer (valid to 2027) still gets in.
    assert_eq!(sw(&w.card.transmit(&SELECT_CARD_MANAGER).unwrap()), 0x9000);
    let mut session = open(&mut w, &issuer, SecurityLevel::FULL);
    assert_eq!(
        sw(&session.transmit_secured(&LIST_APPLICATIONS).unwrap()),
        0x9000
    );
}

/// INSTALL [for personalization] lasts as long as its session: the next session's STORE DATA is refused
/// (6985) rather than sent anywhere, and after SELECT it goes to the card manager.
#[test]
fn a_personalization_target_ends_with_its_session() {
    let mut w = world();
    let issuer = w.issuer.clone();
    let mut session = open(&mut w, &issuer, SecurityLevel::FULL);
    assert_eq!(
        session.transmit_secured(&INSTALL_LOOPBACK).unwrap(),
        [0x00, 0x90, 0x00]
    );
    assert_eq!(
        session.transmit_secured(&PERSONALIZE_LOOPBACK).unwrap(),
        [0x90, 0x00]
    );
    drop(session);
    // A new session (the handshake ends the old one): STORE DATA has no target until SELECT.
    let other_ca = Authority::generate(b"second issuer CA").unwrap();
    let other_anchor = other_ca.anchor();
    let anchor = store(&DataObject::TrustAnchor {
        id: &other_anchor.id,
        key: &other_anchor.key,
    });
    let mut session = open(&mut w, &issuer, SecurityLevel::FULL);
    assert_eq!(session.transmit_secured(&anchor).unwrap(), [0x69, 0x85]);
    drop(session);
    assert_eq!(sw(&w.card.transmit(&SELECT_CARD_MANAGER).unwrap()), 0x9000);
    let mut session = open(&mut w, &issuer, SecurityLevel::FULL);
    assert_eq!(session.transmit_secured(&anchor).unwrap(), [0x90, 0x00]);
    drop(session);
    let today = date(TODAY.0, TODAY.1, TODAY.2);
    let second = other_ca
        .issue_oce(b"second issuer", Role::Issuer, today, date(2027, 1, 1))
        .unwrap();
    let mut session = open(&mut w, &second, SecurityLevel::FULL);
    assert_eq!(
        sw(&session.transmit_secured(&LIST_APPLICATIONS).unwrap()),
        0x9000
    );
    drop(session);
    // And the instance got nothing: it is not a security domain (GET DATA BF21 reaches the applet).
    let select = bytes(Select::aid(LOOPBACK_05.as_bytes()).to_command());
    assert_eq!(sw(&w.card.transmit(&select).unwrap()), 0x9000);
    let get_certificates = HandshakeCommand::GetCertificates { key: None }.to_command();
    assert_ne!(
        sw(&w.card.transmit(&bytes(get_certificates)).unwrap()),
        0x9000
    );
}

/// A private key sent in a session must be encrypted: C-MAC alone is refused.
#[test]
fn a_static_key_is_refused_without_command_encryption() {
    let mut w = world();
    let issuer = w.issuer.clone();
    // Sent as it is, past the host's own check (CardManagerSession::store_data would not send it): the card
    // must refuse it too.
    let key = store(&DataObject::StaticKey(&[0x11; 32]));
    for level in [SecurityLevel::MAC, SecurityLevel::MAC_RMAC] {
        let mut session = open(&mut w, &issuer, level);
        assert_eq!(
            session.transmit_secured(&key).unwrap(),
            [0x69, 0x82],
            "{level:?}"
        );
    }
    let mut session = open(&mut w, &issuer, SecurityLevel::MAC_ENC);
    assert_eq!(session.transmit_secured(&key).unwrap(), [0x90, 0x00]);
}

/// Re-keying interrupted after the new key (no certificate for it yet): the old key and chain keep working.
#[test]
fn an_interrupted_rekeying_keeps_the_old_key() {
    let mut w = world();
    let issuer = w.issuer.clone();
    {
        let mut session = open(&mut w, &issuer, SecurityLevel::FULL);
        let generate = CardManagerCommand::StoreData {
            data: &DataObject::GenerateKey.encode(),
        };
        let r = session
            .transmit_secured(&bytes(generate.to_command().with_ne(256)))
            .unwrap();
        assert_eq!(sw(&r), 0x9000);
    }
    w.card.reset().unwrap();
    assert_eq!(sw(&w.card.transmit(&SELECT_CARD_MANAGER).unwrap()), 0x9000);
    let today = date(TODAY.0, TODAY.1, TODAY.2);
    assert_eq!(
        scp11::card_key(&mut w.card, &w.card_ca.issuer(), today).unwrap(),
        w.card_key
    );
    let mut session = open(&mut w, &issuer, SecurityLevel::FULL);
    assert_eq!(
        sw(&session.transmit_secured(&LIST_APPLICATIONS).unwrap()),
        0x9000
    );
}

/// Inside a session: a secured command the runtime does not route (SELECT by file identifier) reaches the
/// card manager and keeps the session; a plain GET DATA BF21 ends it like any plain command.
#[test]
fn session_rules_for_select_and_plain_get_data() {
    let mut w = world();
    let issuer = w.issuer.clone();
    let mut session = open(&mut w, &issuer, SecurityLevel::FULL);
    let select_mf = Select::File { p1: 0x00 }
        .to_command()
        .with_data([0x3F, 0x00]);
    let r = session.transmit_secured(&bytes(select_mf)).unwrap();
    assert_eq!(
        sw(&r),
        0x6E00,
        "answered by the card manager (interindustry CLA), not refused"
    );
    assert_eq!(
        sw(&session.transmit_secured(&LIST_APPLICATIONS).unwrap()),
        0x9000
    );
    let get_certificates = HandshakeCommand::GetCertificates { key: None }.to_command();
    assert_eq!(raw(&mut session, &bytes(get_certificates)), 0x9000);
    assert_closed(&mut session);
}

/// Certificates are public: replaying a genuine issuer chain with a later effective date, without its private
/// key, must not move the card date (only a session whose first command verifies does).
#[test]
fn a_replayed_issuer_chain_without_its_key_does_not_move_the_card_date() {
    let mut w = world();
    let later = w
        .oce_ca
        .issue_oce(
            b"issuer 2029",
            Role::Issuer,
            date(2028, 6, 1),
            date(2029, 12, 31),
        )
        .unwrap();
    let replayed = OceCredentials {
        static_key: scp11::random_scalar().unwrap(),
        chain: later.chain.clone(),
    };
    let r = open_scp11a(
        &mut w.card,
        &w.card_key,
        &replayed,
        SecurityLevel::FULL,
        None,
    );
    assert!(matches!(r, Err(Scp11Error::Protocol(_))), "{r:?}");
    // The current issuer (valid to 2027) still gets in...
    let issuer = w.issuer.clone();
    let mut session = open(&mut w, &issuer, SecurityLevel::FULL);
    assert_eq!(
        sw(&session.transmit_secured(&LIST_APPLICATIONS).unwrap()),
        0x9000
    );
    drop(session);
    // ...until the holder of the later certificate uses it for real: then the card date is 2028-06-01.
    let mut session = open(&mut w, &later, SecurityLevel::FULL);
    assert_eq!(
        sw(&session.transmit_secured(&LIST_APPLICATIONS).unwrap()),
        0x9000
    );
    drop(session);
    let r = open_scp11a(&mut w.card, &w.card_key, &issuer, SecurityLevel::FULL, None);
    assert!(
        matches!(r, Err(Scp11Error::Refused { .. })),
        "expired now: {r:?}"
    );
}

/// A personalization target named before a handshake is withdrawn by it: STORE DATA then fails (6985) instead
/// of quietly going to the card manager, until SELECT.
#[test]
fn a_withdrawn_personalization_target_fails_closed() {
    let mut card = InProcessChannel::new().unwrap();
    let card_ca = Authority::generate(b"card CA").unwrap();
    let issuer_ca = Authority::generate(b"issuer CA").unwrap();
    let today = date(TODAY.0, TODAY.1, TODAY.2);
    assert_eq!(sw(&card.transmit(&SELECT_CARD_MANAGER).unwrap()), 0x9000);
    let card_key = scp11::personalize(
        &mut card,
        &Personalization {
            instance: None,
            card_authority: &card_ca,
            subject: b"card",
            anchors: &[issuer_ca.anchor()],
            today,
            expiration: date(2030, 1, 1),
        },
    )
    .unwrap();
    assert_eq!(
        card.transmit(&INSTALL_LOOPBACK).unwrap(),
        [0x00, 0x90, 0x00]
    );
    assert_eq!(card.transmit(&PERSONALIZE_LOOPBACK).unwrap(), [0x90, 0x00]);
    let session = open_scp11b(&mut card, &card_key, SecurityLevel::MAC).unwrap();
    drop(session);
    let date_object = store(&DataObject::CardDate(date(TODAY.0, TODAY.1, TODAY.2)));
    assert_eq!(
        card.transmit(&date_object).unwrap(),
        [0x69, 0x82],
        "plain inside the session"
    );
    assert_eq!(
        card.transmit(&date_object).unwrap(),
        [0x69, 0x85],
        "the target was withdrawn"
    );
    assert_eq!(sw(&card.transmit(&SELECT_CARD_MANAGER).unwrap()), 0x9000);
    assert_eq!(
        card.transmit(&date_object).unwrap(),
        [0x90, 0x00],
        "after SELECT: the card manager"
    );
}

/// A malformed plain GET DATA BF21 inside a session is refused (6A80) and, as a plain command, ends it.
#[test]
fn a_malformed_plain_get_data_ends_the_session_too() {
    let mut w = world();
    let issuer = w.issuer.clone();
    let mut session = open(&mut w, &issuer, SecurityLevel::FULL);
    assert_eq!(
        raw(
            &mut session,
            &[0x00, 0xCA, 0xBF, 0x21, 0x02, 0xA6, 0x00, 0x00]
        ),
        0x6A80
    );
    assert_closed(&mut session);
}
