//! `card_client::card_manager::CardManagerSession` against the in-process card: plainly on a card before
//! issuance, through an SCP11a issuer session once it is SECURED, and the refusals a host sees (each error
//! keeps its status word, and says what the command needs).

use std::io::Write;
use std::sync::{Arc, Mutex};

use apdu_spec::aid::{self, CARD_MANAGER};
use apdu_spec::gp::{CardLifeCycle, InstallRequest, StatusScope, app_state};
use apdu_spec::iso::Select;
use apdu_spec::scp11::cert::{Date, Role};
use apdu_spec::scp11::session::SecurityLevel;
use apdu_spec::scp11::{Security, Variant};
use apdu_spec::{Aid, StatusWord};
use card_client::card_manager::{CardManagerError, CardManagerSession, DataObject, RegistryEntry};
use card_client::scp11::{self, Authority, OceCredentials, Personalization};
use card_client::{CardChannel, Traced};
use emulator::InProcessChannel;

const TODAY: (u16, u8, u8) = (2026, 11, 24);

fn date(y: u16, m: u8, d: u8) -> Date {
    Date::from_ymd(y, m, d).unwrap()
}

fn today() -> Date {
    date(TODAY.0, TODAY.1, TODAY.2)
}

/// The loopback instance `F04C4E4B43FF<n>`.
fn loopback(n: u8) -> Aid {
    aid::LOOPBACK_LOAD_FILE.with_suffix(n).unwrap()
}

/// INSTALL [for install and make selectable] of a loopback instance with default flags.
fn install_loopback(application: &Aid) -> InstallRequest<'_> {
    InstallRequest {
        install: true,
        make_selectable: true,
        load_file: aid::LOOPBACK_LOAD_FILE.as_bytes(),
        module: aid::LOOPBACK_MODULE.as_bytes(),
        application: application.as_bytes(),
        privileges: &[0x00],
        applet_parameters: &[],
    }
}

fn find<'a>(entries: &'a [RegistryEntry], aid: &Aid) -> Option<&'a RegistryEntry> {
    entries.iter().find(|e| e.aid == aid.as_bytes())
}

/// The CAs around a card.
struct Parties {
    card_ca: Authority,
    issuer_ca: Authority,
    issuer: OceCredentials,
}

fn parties() -> Parties {
    let issuer_ca = Authority::generate(b"issuer CA").unwrap();
    let issuer = issuer_ca
        .issue_oce(b"issuer system", Role::Issuer, today(), date(2027, 12, 31))
        .unwrap();
    Parties {
        card_ca: Authority::generate(b"card CA").unwrap(),
        issuer_ca,
        issuer,
    }
}

fn personalization<'a>(
    parties: &'a Parties,
    instance: Option<&'a [u8]>,
    anchors: &'a [scp11::Anchor],
) -> Personalization<'a> {
    Personalization {
        instance,
        card_authority: &parties.card_ca,
        subject: b"card 0001",
        anchors,
        today: today(),
        expiration: date(2031, 12, 31),
    }
}

/// A card personalized plainly by the factory and then issued: SECURED.
fn secured_card(parties: &Parties) -> InProcessChannel {
    let mut card_manager = CardManagerSession::select(InProcessChannel::new().unwrap()).unwrap();
    let anchors = [parties.issuer_ca.anchor()];
    card_manager
        .personalize(&personalization(parties, None, &anchors))
        .unwrap();
    card_manager
        .set_card_state(CardLifeCycle::Initialized)
        .unwrap();
    card_manager.set_card_state(CardLifeCycle::Secured).unwrap();
    assert_eq!(
        card_manager.card_life_cycle().unwrap(),
        CardLifeCycle::Secured
    );
    card_manager.into_channel()
}

#[test]
fn a_plain_session_lists_installs_personalizes_and_deletes_before_issuance() {
    let parties = parties();
    let mut card_manager = CardManagerSession::select(InProcessChannel::new().unwrap()).unwrap();
    let fci = card_manager.fci().unwrap();
    assert_eq!(fci.aid, CARD_MANAGER.as_bytes());
    assert_eq!((fci.max_command_data, fci.card_locked), (Some(255), false));
    assert_eq!(card_manager.security(), None);
    assert_eq!(
        card_manager.card_life_cycle().unwrap(),
        CardLifeCycle::OpReady
    );
    let listed = card_manager.get_status(StatusScope::Applications).unwrap();
    let factory = find(&listed, &aid::LOOPBACK_APPLET).expect("the factory loopback");
    assert_eq!(factory.life_cycle, app_state::SELECTABLE);
    assert_eq!(factory.load_file, aid::LOOPBACK_LOAD_FILE.as_bytes());

    let instance = loopback(0x05);
    card_manager.install(&install_loopback(&instance)).unwrap();
    let listed = card_manager.get_status(StatusScope::Applications).unwrap();
    assert_eq!(
        find(&listed, &instance).map(|e| e.life_cycle),
        Some(app_state::SELECTABLE)
    );
    let prefix = card_manager
        .get_status_matching(StatusScope::Applications, instance.as_bytes())
        .unwrap();
    assert_eq!(prefix.len(), 1, "only the instance matches its own AID");

    // The card manager's own domain, then the instance's: each its own key, certified by the card CA.
    let anchors = [parties.issuer_ca.anchor()];
    let card_key = card_manager
        .personalize(&personalization(&parties, None, &anchors))
        .unwrap();
    let certificates = card_manager.certificates().unwrap();
    assert_eq!(certificates.len(), 1);
    let (leaf, _) = apdu_spec::scp11::cert::Certificate::parse(&certificates[0]).unwrap();
    assert_eq!(*leaf.public_key_bytes(), card_key);
    let instance_key = card_manager
        .personalize(&personalization(
            &parties,
            Some(instance.as_bytes()),
            &anchors,
        ))
        .unwrap();
    assert_ne!(instance_key, card_key);
    let mut channel = card_manager.into_channel();
    let select = Select::aid(instance.as_bytes())
        .to_command()
        .to_bytes()
        .unwrap();
    assert!(channel.transmit(&select).unwrap().ends_with(&[0x90, 0x00]));
    let issuer = parties.card_ca.issuer();
    assert_eq!(
        scp11::card_key(&mut channel, &issuer, today()).unwrap(),
        instance_key
    );

    // SELECT the card manager again (the instance was selected) and remove the instance.
    let mut card_manager = CardManagerSession::select(channel).unwrap();
    card_manager.delete(instance.as_bytes()).unwrap();
    let listed = card_manager.get_status(StatusScope::Applications).unwrap();
    assert!(find(&listed, &instance).is_none());
    let error = card_manager.delete(instance.as_bytes()).unwrap_err();
    assert!(
        matches!(
            error,
            CardManagerError::NotFound {
                command: "DELETE",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.status(), Some(StatusWord::REFERENCED_DATA_NOT_FOUND));
}

/// A log shared with the test, to count the commands the session sent.
#[derive(Clone, Default)]
struct SharedLog(Arc<Mutex<Vec<u8>>>);

impl Write for SharedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn get_status_pages_through_a_full_registry_and_a_full_card_is_not_enough_memory() {
    let mut card_manager = CardManagerSession::select(InProcessChannel::new().unwrap()).unwrap();
    let mut installed = vec![aid::LOOPBACK_APPLET];
    let full = loop {
        let instance = loopback(0x10 + u8::try_from(installed.len()).unwrap());
        match card_manager.install(&install_loopback(&instance)) {
            Ok(()) => installed.push(instance),
            Err(error) => break error,
        }
        assert!(
            installed.len() <= card_os::MAX_INSTANCES,
            "the registry never filled"
        );
    };
    assert!(
        matches!(
            full,
            CardManagerError::NotEnoughMemory {
                command: "INSTALL",
                ..
            }
        ),
        "{full:?}"
    );
    assert_eq!(full.status(), Some(StatusWord::NOT_ENOUGH_MEMORY));

    let log = SharedLog::default();
    let traced = Traced::with_log(card_manager.into_channel(), Box::new(log.clone()));
    let mut card_manager = CardManagerSession::over_selected(traced);
    let listed = card_manager.get_status(StatusScope::Applications).unwrap();
    let mut aids: Vec<&[u8]> = listed.iter().map(|e| e.aid.as_slice()).collect();
    aids.sort();
    let mut expected: Vec<&[u8]> = installed.iter().map(Aid::as_bytes).collect();
    expected.sort();
    assert_eq!(aids, expected, "every instance, each once");
    let trace = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let pages = trace.matches("Received (SW1=0x63, SW2=0x10)").count();
    assert!(pages >= 1, "the listing needs more than one page: {trace}");
    assert_eq!(
        trace.matches("Sending: 80 F2 40 03").count(),
        pages,
        "each 6310 is followed by GET STATUS P2 03"
    );
}

#[test]
fn a_plain_session_on_a_secured_card_is_told_it_needs_an_issuer_session() {
    let parties = parties();
    let mut card_manager = CardManagerSession::select(secured_card(&parties)).unwrap();
    let instance = loopback(0x05);
    let error = card_manager
        .install(&install_loopback(&instance))
        .unwrap_err();
    assert_eq!(
        error.status(),
        Some(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
    );
    assert_eq!(
        error.to_string(),
        "INSTALL needs SCP11a, role issuer, C-MAC; plain before issuance; the channel is plain \
         (card answered 6982 SECURITY_STATUS_NOT_SATISFIED)"
    );
    let error = card_manager
        .delete(aid::LOOPBACK_APPLET.as_bytes())
        .unwrap_err();
    assert!(
        matches!(
            error,
            CardManagerError::SecurityStatusNotSatisfied {
                command: "DELETE",
                channel: None,
                ..
            }
        ),
        "{error:?}"
    );
    // Listing needs nothing.
    let listed = card_manager.get_status(StatusScope::Applications).unwrap();
    assert!(find(&listed, &instance).is_none());
}

#[test]
fn an_issuer_session_manages_a_secured_card() {
    let parties = parties();
    let card_manager = CardManagerSession::select(secured_card(&parties)).unwrap();
    let mut card_manager = card_manager
        .open_scp11a(
            &parties.card_ca.issuer(),
            today(),
            &parties.issuer,
            SecurityLevel::FULL,
        )
        .unwrap();
    assert_eq!(
        card_manager.security(),
        Some(Security {
            variant: Variant::A,
            level: SecurityLevel::FULL,
            role: Some(Role::Issuer),
        })
    );
    let instance = loopback(0x05);
    card_manager.install(&install_loopback(&instance)).unwrap();
    let terminal_ca = Authority::generate(b"terminal CA").unwrap();
    let anchors = [terminal_ca.anchor()];
    card_manager
        .personalize(&personalization(
            &parties,
            Some(instance.as_bytes()),
            &anchors,
        ))
        .unwrap();
    card_manager
        .set_application_state(instance.as_bytes(), app_state::PERSONALIZED)
        .unwrap();
    card_manager
        .set_application_state(instance.as_bytes(), app_state::LOCKED_BIT)
        .unwrap();
    let listed = card_manager.get_status(StatusScope::Applications).unwrap();
    assert_eq!(
        find(&listed, &instance).map(|e| e.life_cycle),
        Some(app_state::PERSONALIZED | app_state::LOCKED_BIT)
    );
    // A refusal travels bare and leaves the session open.
    let error = card_manager
        .set_card_state(CardLifeCycle::OpReady)
        .unwrap_err();
    assert!(
        matches!(
            error,
            CardManagerError::ConditionsNotSatisfied {
                command: "SET STATUS",
                ..
            }
        ),
        "{error:?}"
    );
    card_manager.delete(instance.as_bytes()).unwrap();
    let error = card_manager.delete(instance.as_bytes()).unwrap_err();
    assert_eq!(error.status(), Some(StatusWord::REFERENCED_DATA_NOT_FOUND));
    let listed = card_manager.get_status(StatusScope::Applications).unwrap();
    assert!(find(&listed, &instance).is_none());
}

#[test]
fn an_scp11b_session_is_refused_content_management_before_anything_is_sent() {
    let parties = parties();
    let card_manager = CardManagerSession::select(secured_card(&parties)).unwrap();
    let mut card_manager = card_manager
        .open_scp11b(&parties.card_ca.issuer(), today(), SecurityLevel::FULL)
        .unwrap();
    let error = card_manager
        .install(&install_loopback(&loopback(0x05)))
        .unwrap_err();
    assert!(
        matches!(
            error,
            CardManagerError::SecurityStatusNotSatisfied { status: None, .. }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("the channel is an SCP11b session without a role"),
        "{error}"
    );
    // Not sent, so the card did not end the session: it still answers inside it.
    assert!(card_manager.channel().is_open());
    let listed = card_manager.get_status(StatusScope::Applications).unwrap();
    assert!(find(&listed, &aid::LOOPBACK_APPLET).is_some());
}

#[test]
fn a_static_key_is_not_sent_in_a_session_without_command_encryption() {
    let parties = parties();
    let card_manager = CardManagerSession::select(secured_card(&parties)).unwrap();
    let mut card_manager = card_manager
        .open_scp11a(
            &parties.card_ca.issuer(),
            today(),
            &parties.issuer,
            SecurityLevel::MAC,
        )
        .unwrap();
    let error = card_manager
        .store_data(&DataObject::StaticKey(&[0x11; 32]))
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("STORE DATA DF20 (static key) needs SCP11a, role issuer, C-MAC, C-DEC"),
        "{error}"
    );
    assert_eq!(error.status(), None, "refused by the host");
    let listed = card_manager.get_status(StatusScope::Applications).unwrap();
    assert!(!listed.is_empty(), "the session is still open");
}

#[test]
fn select_through_an_open_session_is_refused() {
    let parties = parties();
    let card_manager = CardManagerSession::select(secured_card(&parties)).unwrap();
    let card_manager = card_manager
        .open_scp11a(
            &parties.card_ca.issuer(),
            today(),
            &parties.issuer,
            SecurityLevel::FULL,
        )
        .unwrap();
    let error = CardManagerSession::select(card_manager.into_channel()).unwrap_err();
    assert!(
        matches!(error, CardManagerError::SelectInSession),
        "{error:?}"
    );
}

/// After INSTALL [for personalization] named an instance, STORE DATA on the channel goes there: personalizing
/// the card manager's own domain in the same session is refused before anything is sent, and works once the card
/// manager is selected again.
#[test]
fn personalizing_the_card_manager_after_an_instance_needs_a_new_selection() {
    let parties = parties();
    let anchors = [parties.issuer_ca.anchor()];
    let mut card_manager = CardManagerSession::select(InProcessChannel::new().unwrap()).unwrap();
    let instance = loopback(0x05);
    card_manager.install(&install_loopback(&instance)).unwrap();
    card_manager
        .personalize(&personalization(
            &parties,
            Some(instance.as_bytes()),
            &anchors,
        ))
        .unwrap();
    let error = card_manager
        .personalize(&personalization(&parties, None, &anchors))
        .unwrap_err();
    assert!(
        matches!(error, CardManagerError::TargetIsInstance),
        "{error:?}"
    );
    let mut card_manager = CardManagerSession::select(card_manager.into_channel()).unwrap();
    card_manager
        .personalize(&personalization(&parties, None, &anchors))
        .unwrap();
}
