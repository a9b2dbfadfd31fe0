//! The payment story on the whole card in this process (patent Fig. 7, 10, 14 and 15), through the hosts' typed
//! sessions as terminals use them: a factory card issued with both applets by `card_client::issuing` (each
//! applet its own security domain, trusting the issuer's CA and its own organisation's), a deposit token minted
//! by the real `token` crate, stored at the "ATM" in the bank applet, moved into the credit applet through the
//! firewall (Fig. 14) or delivered straight to it (Fig. 15), presented at the "POS" after the cardholder PIN,
//! the card's signature verified and the token opened as the credit system does, confirmed, gone.
//!
//! Also: a tear at every write of the in-card move (the token is then in exactly one applet); the share asked
//! by any applet but the registered credit applet (refused, nothing moves); tokens for another card or company
//! never leave the bank applet; PIN exhaustion (blocked for good, nothing presented, nothing moved).

use apdu_spec::aid;
use apdu_spec::bank::Personalization as BankData;
use apdu_spec::credit::{
    CardholderPin, NONCE_LENGTH, Personalization as CreditData, Presentation, signed_message,
};
use apdu_spec::gp::CardLifeCycle;
use apdu_spec::loopback::LoopbackCommand;
use apdu_spec::scp11::cert::{Date, Role};
use apdu_spec::scp11::session::SecurityLevel;
use apdu_spec::shared::{self, BankRequest};
use apdu_spec::token::Envelope;
use card_client::CardChannel;
use card_client::bank::BankAppletSession;
use card_client::card_manager::CardManagerError;
use card_client::credit::{CreditAppletSession, PinState, Presented};
use card_client::issuing::{AppletIssue, CardIssue, IssuedCard, install_applet, issue_card};
use card_client::scp11::{Authority, OceCredentials, Scp11Session};
use card_os::layout::CardNvm;
use card_os::nvm::{Nvm, Tear, TearingNvm};
use emulator::InProcessChannel;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

const BANK_ID: &[u8] = b"BANK0001";
const CREDIT_ID: &[u8] = b"CRED0001";
const PIN: &[u8] = b"2468";
/// The credit applet's signing key (TEST ONLY).
const SIGNING_KEY: [u8; 32] = [0x3C; 32];
/// A second credit applet instance, not the one the bank applet names.
const ROGUE_CREDIT: [u8; 9] = [0xF0, 0x4C, 0x4E, 0x4B, 0x43, 0x02, 0x01, 0x00, 0x02];

fn date(y: u16, m: u8, d: u8) -> Date {
    Date::from_ymd(y, m, d).unwrap()
}

fn today() -> Date {
    date(2026, 12, 1)
}

/// The organisations: the card's CA; the issuer, the bank and the credit company, each a CA for its terminals.
struct Parties {
    card_ca: Authority,
    issuer_ca: Authority,
    bank_ca: Authority,
    credit_ca: Authority,
    issuer: OceCredentials,
    atm: OceCredentials,
    pos: OceCredentials,
    /// The credit company's certificate for the bank's Fig. 15 delivery.
    delivery: OceCredentials,
}

fn parties() -> Parties {
    let oce = |ca: &Authority, subject: &[u8], role| {
        ca.issue_oce(subject, role, today(), date(2030, 12, 31))
            .unwrap()
    };
    let issuer_ca = Authority::generate(b"issuer CA").unwrap();
    let bank_ca = Authority::generate(b"bank CA").unwrap();
    let credit_ca = Authority::generate(b"credit CA").unwrap();
    Parties {
        card_ca: Authority::generate(b"card CA").unwrap(),
        issuer: oce(&issuer_ca, b"issuer system", Role::Issuer),
        atm: oce(&bank_ca, b"bank ATM 7", Role::BankAtm),
        pos: oce(&credit_ca, b"credit POS 3", Role::CreditPos),
        delivery: oce(&credit_ca, b"bank delivery", Role::TokenDelivery),
        issuer_ca,
        bank_ca,
        credit_ca,
    }
}

fn credit_data(pin: bool) -> CreditData<'static> {
    CreditData {
        credit_id: CREDIT_ID,
        pan: &[0x41, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11],
        expiry: &[0x30, 0x12],
        cardholder_id: b"holder-0042",
        status: 0,
        atc_limit: 100,
        signing_key: &SIGNING_KEY,
        bank_applet: Some(aid::BANK_APPLET.as_bytes()),
        pin: pin.then_some(CardholderPin {
            digits: PIN,
            try_limit: 3,
        }),
    }
}

/// Issues a factory card with both applets; the bank applet shares with the credit applet.
fn issue<C: CardChannel>(channel: &mut C, p: &Parties, pin: bool) -> IssuedCard {
    let bank_anchors = [p.issuer_ca.anchor(), p.bank_ca.anchor()];
    let credit_anchors = [p.issuer_ca.anchor(), p.credit_ca.anchor()];
    let issue = CardIssue {
        card_authority: &p.card_ca,
        card_subject: b"card 0001",
        card_anchors: &[p.issuer_ca.anchor()],
        issuer: &p.issuer,
        today: today(),
        expiration: date(2031, 12, 31),
        bank: Some(AppletIssue {
            instance: aid::BANK_APPLET.as_bytes(),
            subject: b"bank applet 0001",
            anchors: &bank_anchors,
            data: BankData {
                bank_id: BANK_ID,
                account: b"0001-234-5678901",
                user_id: b"U-000042",
                user_name: b"Hanako Yamada",
                credit_applet: aid::CREDIT_APPLET.as_bytes(),
            },
        }),
        credit: Some(AppletIssue {
            instance: aid::CREDIT_APPLET.as_bytes(),
            subject: b"credit applet 0001",
            anchors: &credit_anchors,
            data: credit_data(pin),
        }),
    };
    issue_card(channel, &issue).expect("the card is issued")
}

/// The card binding of the issued credit applet.
fn binding(issued: &IssuedCard) -> [u8; 32] {
    Sha256::digest(issued.credit_signing_key.as_ref().unwrap()).into()
}

use emulator::testing::{bank_token_key as bank_key, credit_hpke_key as credit_private};

/// A deposit token (signed, HPKE-sealed, signed) of `sum` yen for `credit_id` and the card `card_binding`.
fn mint(id: u8, sum: u64, credit_id: &[u8], card_binding: [u8; 32]) -> Vec<u8> {
    let mut token_id = *b"DEPOSIT-00000000";
    token_id[15] = id;
    let body = token::TokenBody {
        user_name: "Hanako Yamada".into(),
        user_id: "U-000042".into(),
        sum,
        currency: 392,
        deposit_date: today(),
        token_id,
        valid_from: today(),
        valid_until: date(2027, 1, 31),
        bank_id: BANK_ID.to_vec(),
        bank_account: "0001-234-5678901".into(),
        credit_id: credit_id.to_vec(),
        pan: "4111111111111111".into(),
        card_binding,
    };
    let mut rng = token::os_rng().unwrap();
    token::mint(&body, &bank_key(), credit_private().public_key(), &mut rng).unwrap()
}

fn token_id(token: &[u8]) -> [u8; 16] {
    *Envelope::parse(token).unwrap().header.token_id
}

/// The ATM's session with the bank applet (its certificates checked against the card CA first).
fn atm<'c, C: CardChannel>(
    card: &'c mut C,
    p: &Parties,
) -> BankAppletSession<Scp11Session<&'c mut C>> {
    BankAppletSession::select(card, aid::BANK_APPLET.as_bytes())
        .unwrap()
        .open_scp11a(&p.card_ca.issuer(), today(), &p.atm, SecurityLevel::FULL)
        .unwrap()
}

/// A session with the credit applet as `oce` (the POS, or the bank's delivery).
fn credit<'c, C: CardChannel>(
    card: &'c mut C,
    p: &Parties,
    oce: &OceCredentials,
) -> CreditAppletSession<Scp11Session<&'c mut C>> {
    CreditAppletSession::select(card, aid::CREDIT_APPLET.as_bytes())
        .unwrap()
        .open_scp11a(&p.card_ca.issuer(), today(), oce, SecurityLevel::FULL)
        .unwrap()
}

/// Token ids the bank applet lists.
fn bank_tokens<C: CardChannel>(card: &mut C, p: &Parties) -> Vec<[u8; 16]> {
    atm(card, p)
        .list_tokens()
        .unwrap()
        .iter()
        .map(|header| {
            let (tlv, _) = apdu_spec::tlv::read(header).unwrap();
            *apdu_spec::token::ClearHeader::parse(tlv.value)
                .unwrap()
                .token_id
        })
        .collect()
}

const NONCE: [u8; NONCE_LENGTH] = [0x5A; NONCE_LENGTH];

fn presentation() -> Presentation<'static> {
    Presentation {
        nonce: &NONCE,
        amount: 30_000,
        currency: 392,
    }
}

/// What the credit system checks of a presentation: the card's signature over the POS's data, the ATC and the
/// presented tokens, and each token opened (bank's signatures, HPKE, the card binding); the tokens' sums.
fn credit_system_accepts(presented: &Presented, issued: &IssuedCard) -> Vec<u64> {
    let key = VerifyingKey::from_sec1_bytes(issued.credit_signing_key.as_ref().unwrap()).unwrap();
    let message = signed_message(&presentation(), presented.atc, &presented.token_digests());
    let signature = Signature::from_slice(&presented.signature).unwrap();
    key.verify(&message, &signature)
        .expect("the card's signature verifies");
    let mut recipient = token::CreditRecipient::new(CREDIT_ID);
    recipient.add_key(credit_private());
    let mut banks = token::BankKeyring::new();
    banks.insert(BANK_ID, *bank_key().verifying_key());
    presented
        .tokens
        .iter()
        .map(|t| {
            token::open(t, &recipient, &banks, today(), Some(&binding(issued)))
                .expect("the token opens for this card")
                .sum
        })
        .collect()
}

struct Issued<N: Nvm> {
    card: InProcessChannel<N>,
    parties: Parties,
    keys: IssuedCard,
}

fn issued(pin: bool) -> Issued<CardNvm> {
    let parties = parties();
    let mut card = InProcessChannel::new().unwrap();
    let keys = issue(&mut card, &parties, pin);
    assert_eq!(card.card().life_cycle(), CardLifeCycle::Secured);
    Issued {
        card,
        parties,
        keys,
    }
}

#[test]
fn fig_14_deposit_at_the_atm_then_purchase_at_the_pos() {
    let mut w = issued(true);
    let deposit = mint(1, 50_000, CREDIT_ID, binding(&w.keys));
    atm(&mut w.card, &w.parties).store_token(&deposit).unwrap();
    assert_eq!(bank_tokens(&mut w.card, &w.parties), [token_id(&deposit)]);

    // The POS: the PIN, then PRESENT, which moves the token in from the bank applet first; 7 APDUs (the 6 of a
    // purchase and VERIFY). The runtime counts the 5 scalar multiplications of SCP11a (PRESENT's signature is
    // the applet's 6th): the move costs none.
    let (apdus, multiplications) = (w.card.apdus(), w.card.card().scalar_multiplications());
    let mut pos = credit(&mut w.card, &w.parties, &w.parties.pos);
    assert_eq!(pos.verify_pin(PIN).unwrap(), PinState::Verified);
    let presented = pos.present(&presentation()).unwrap();
    pos.confirm(presented.atc, &[token_id(&deposit)]).unwrap();
    drop(pos);
    assert_eq!(w.card.apdus() - apdus, 7);
    assert_eq!(w.card.card().scalar_multiplications() - multiplications, 5);
    assert_eq!(presented.atc, 1);
    assert_eq!(presented.tokens, std::slice::from_ref(&deposit));
    assert_eq!(credit_system_accepts(&presented, &w.keys), [50_000]);

    // Moved, not copied; confirmed, gone.
    assert!(bank_tokens(&mut w.card, &w.parties).is_empty());
    let mut pos = credit(&mut w.card, &w.parties, &w.parties.pos);
    assert_eq!(pos.pin_state().unwrap(), PinState::TriesLeft(3));
    assert_eq!(pos.verify_pin(PIN).unwrap(), PinState::Verified);
    assert_eq!(pos.pin_state().unwrap(), PinState::Verified);
    let next = pos.present(&presentation()).unwrap();
    // One verification, one PRESENT.
    assert_eq!(pos.pin_state().unwrap(), PinState::TriesLeft(3));
    assert_eq!(next.atc, 2);
    assert!(next.tokens.is_empty());
    credit_system_accepts(&next, &w.keys);
}

#[test]
fn fig_15_the_bank_delivers_straight_to_the_credit_applet() {
    let mut w = issued(false);
    let deposit = mint(2, 20_000, CREDIT_ID, binding(&w.keys));
    credit(&mut w.card, &w.parties, &w.parties.delivery)
        .store_token(&deposit)
        .unwrap();
    assert!(bank_tokens(&mut w.card, &w.parties).is_empty());
    // The delivery certificate can do nothing else: not PRESENT, nor store at the bank applet.
    let refused = credit(&mut w.card, &w.parties, &w.parties.delivery).present(&presentation());
    assert!(matches!(
        refused,
        Err(CardManagerError::SecurityStatusNotSatisfied { .. })
    ));
    let at_bank = BankAppletSession::select(&mut w.card, aid::BANK_APPLET.as_bytes())
        .unwrap()
        .open_scp11a(
            &w.parties.card_ca.issuer(),
            today(),
            &w.parties.delivery,
            SecurityLevel::FULL,
        );
    assert!(
        at_bank.is_err(),
        "the bank applet does not trust the credit CA"
    );

    let mut pos = credit(&mut w.card, &w.parties, &w.parties.pos);
    let presented = pos.present(&presentation()).unwrap();
    assert_eq!(presented.tokens, std::slice::from_ref(&deposit));
    assert_eq!(credit_system_accepts(&presented, &w.keys), [20_000]);
    pos.confirm(presented.atc, &[token_id(&deposit)]).unwrap();
    assert!(pos.present(&presentation()).unwrap().tokens.is_empty());
}

#[test]
fn only_this_cards_tokens_leave_the_bank_applet_and_as_many_as_fit() {
    let mut w = issued(false);
    let ours: Vec<Vec<u8>> = (1..=5)
        .map(|id| mint(id, 1_000 * u64::from(id), CREDIT_ID, binding(&w.keys)))
        .collect();
    let other_card = mint(10, 1, CREDIT_ID, [0xEE; 32]);
    let other_company = mint(11, 1, b"CRED0002", binding(&w.keys));
    for token in ours.iter().chain([&other_card, &other_company]) {
        atm(&mut w.card, &w.parties).store_token(token).unwrap();
    }
    // The credit applet holds 4 tokens; PRESENT carries what fits its answer (3 of this size).
    let mut pos = credit(&mut w.card, &w.parties, &w.parties.pos);
    let presented = pos.present(&presentation()).unwrap();
    assert_eq!(presented.tokens, ours[..3]);
    credit_system_accepts(&presented, &w.keys);
    drop(pos);
    let left = bank_tokens(&mut w.card, &w.parties);
    assert_eq!(
        left,
        [
            token_id(&ours[4]),
            token_id(&other_card),
            token_id(&other_company)
        ]
    );
    // Confirming frees slots; the next PRESENT collects the last one of ours.
    let mut pos = credit(&mut w.card, &w.parties, &w.parties.pos);
    let ids: Vec<[u8; 16]> = presented.tokens.iter().map(|t| token_id(t)).collect();
    pos.confirm(presented.atc, &ids).unwrap();
    let mut next = pos.present(&presentation()).unwrap().tokens;
    // In slot order: the newcomer took the first freed slot.
    next.sort();
    let mut expected = ours[3..].to_vec();
    expected.sort();
    assert_eq!(next, expected);
    drop(pos);
    assert_eq!(
        bank_tokens(&mut w.card, &w.parties),
        [token_id(&other_card), token_id(&other_company)]
    );
}

#[test]
fn the_share_is_refused_to_every_applet_but_the_registered_credit_applet() {
    let mut w = issued(false);
    let deposit = mint(3, 9_000, CREDIT_ID, binding(&w.keys));
    atm(&mut w.card, &w.parties).store_token(&deposit).unwrap();

    // A second credit applet instance with the same key and company (so the same card binding), installed by
    // the issuer and naming the bank applet: the bank applet gives it nothing.
    let anchors = [w.parties.issuer_ca.anchor(), w.parties.credit_ca.anchor()];
    let rogue = AppletIssue {
        instance: &ROGUE_CREDIT,
        subject: b"second credit applet",
        anchors: &anchors,
        data: credit_data(false),
    };
    let issue = CardIssue {
        card_authority: &w.parties.card_ca,
        card_subject: b"card 0001",
        card_anchors: &[],
        issuer: &w.parties.issuer,
        today: today(),
        expiration: date(2031, 12, 31),
        bank: None,
        credit: None,
    };
    let rogue_key = install_applet(
        &mut w.card,
        &issue,
        &w.keys.card_key,
        &rogue,
        (aid::CREDIT_LOAD_FILE, aid::CREDIT_MODULE),
    )
    .unwrap();
    let mut session = CreditAppletSession::select(&mut w.card, &ROGUE_CREDIT)
        .unwrap()
        .into_channel();
    let mut session = CreditAppletSession::over_selected(
        card_client::scp11::open_scp11a(
            &mut session,
            &rogue_key,
            &w.parties.issuer,
            SecurityLevel::FULL,
            None,
        )
        .unwrap(),
    );
    session.personalize(&rogue.data).unwrap();
    drop(session);
    let mut rogue_pos = CreditAppletSession::select(&mut w.card, &ROGUE_CREDIT)
        .unwrap()
        .open_scp11a(
            &w.parties.card_ca.issuer(),
            today(),
            &w.parties.pos,
            SecurityLevel::FULL,
        )
        .unwrap();
    assert!(
        rogue_pos
            .present(&presentation())
            .unwrap()
            .tokens
            .is_empty()
    );
    drop(rogue_pos);

    // The loopback applet asks with a well-formed request naming itself as the receiver: refused alike.
    let mut request = [0u8; 64];
    let request = shared::encode(
        &BankRequest::HandOver {
            credit_id: CREDIT_ID,
            card_binding: binding(&w.keys),
            first_key: 0x10,
        },
        &mut request,
    )
    .unwrap();
    let loopback = aid::LOOPBACK_APPLET.as_bytes();
    let select = apdu_spec::iso::Select::aid(loopback).to_command();
    assert!(
        w.card
            .transmit(&select.to_bytes().unwrap())
            .unwrap()
            .ends_with(&[0x90, 0x00])
    );
    let call = LoopbackCommand::Call {
        server: aid::BANK_APPLET.as_bytes(),
        request,
    };
    let answer = w
        .card
        .transmit(&call.to_command().to_bytes().unwrap())
        .unwrap();
    assert_eq!(answer, [0x69, 0x85]);

    // The token is still the bank applet's, and the registered credit applet gets it.
    assert_eq!(bank_tokens(&mut w.card, &w.parties), [token_id(&deposit)]);
    let presented = credit(&mut w.card, &w.parties, &w.parties.pos)
        .present(&presentation())
        .unwrap();
    assert_eq!(presented.tokens, [deposit]);
}

#[test]
fn pin_exhaustion_blocks_the_card_for_good_with_nothing_moved() {
    let mut w = issued(true);
    let deposit = mint(4, 7_000, CREDIT_ID, binding(&w.keys));
    atm(&mut w.card, &w.parties).store_token(&deposit).unwrap();
    let mut pos = credit(&mut w.card, &w.parties, &w.parties.pos);
    // Without the PIN, no PRESENT; a right PIN restores the tries.
    assert!(matches!(
        pos.present(&presentation()),
        Err(CardManagerError::ConditionsNotSatisfied { .. })
    ));
    assert_eq!(pos.verify_pin(b"0000").unwrap(), PinState::TriesLeft(2));
    assert_eq!(pos.verify_pin(PIN).unwrap(), PinState::Verified);
    // Leaving the applet forgets the verification.
    drop(pos);
    let mut pos = credit(&mut w.card, &w.parties, &w.parties.pos);
    assert_eq!(pos.pin_state().unwrap(), PinState::TriesLeft(3));
    for left in [2, 1, 0] {
        assert_eq!(pos.verify_pin(b"1357").unwrap(), PinState::TriesLeft(left));
    }
    assert_eq!(pos.verify_pin(PIN).unwrap(), PinState::Blocked);
    assert_eq!(pos.pin_state().unwrap(), PinState::Blocked);
    assert!(pos.present(&presentation()).is_err());
    drop(pos);
    // A power cycle does not give the tries back.
    w.card.power_off().unwrap();
    w.card.power_on().unwrap();
    let mut pos = credit(&mut w.card, &w.parties, &w.parties.pos);
    assert_eq!(pos.verify_pin(PIN).unwrap(), PinState::Blocked);
    drop(pos);
    // Nothing presented, nothing moved.
    assert_eq!(bank_tokens(&mut w.card, &w.parties), [token_id(&deposit)]);
}

/// Writes the card makes for `then` after the POS session is open, on a copy of `base`.
fn writes_of(base: &CardNvm, p: &Parties, present: bool) -> usize {
    let mut card = InProcessChannel::on(TearingNvm::new(base.clone(), None, Tear::Half)).unwrap();
    let mut pos = credit(&mut card, p, &p.pos);
    if present {
        pos.present(&presentation()).unwrap();
    }
    drop(pos);
    card.into_nvm().unwrap().writes()
}

#[test]
fn a_move_torn_at_any_write_leaves_the_token_in_exactly_one_applet() {
    let mut w = issued(false);
    let deposit = mint(5, 12_000, CREDIT_ID, binding(&w.keys));
    atm(&mut w.card, &w.parties).store_token(&deposit).unwrap();
    let base = w.card.into_nvm().unwrap();
    let p = &w.parties;
    let (before, after) = (writes_of(&base, p, false), writes_of(&base, p, true));
    assert!(after > before, "the move and the ATC are written");
    let (mut moved, mut stayed) = (0, 0);
    for tear in [Tear::Half, Tear::Garbage] {
        for at in before..after {
            let torn = TearingNvm::new(base.clone(), Some(at), tear);
            let mut card = InProcessChannel::on(torn).unwrap();
            let answer = credit(&mut card, p, &p.pos).present(&presentation());
            assert!(
                answer.is_err(),
                "{tear:?} at write {at}: no answer after a tear"
            );
            let mut rebooted = InProcessChannel::on(card.into_nvm().unwrap().into_inner()).unwrap();
            // Where the token is now: the bank applet or the credit applet, never both, never neither.
            let in_bank = bank_tokens(&mut rebooted, p) == [token_id(&deposit)];
            let presented = credit(&mut rebooted, p, &p.pos)
                .present(&presentation())
                .unwrap();
            assert_eq!(
                presented.tokens,
                std::slice::from_ref(&deposit),
                "{tear:?} at write {at}"
            );
            assert!(
                bank_tokens(&mut rebooted, p).is_empty(),
                "{tear:?} at {at}: a copy left"
            );
            credit_system_accepts(&presented, &w.keys);
            if in_bank {
                stayed += 1;
            } else {
                moved += 1;
            }
        }
    }
    assert!(
        moved > 0 && stayed > 0,
        "tears fell both before and after the move's commit"
    );
    println!(
        "PRESENT with a move: {} write points, torn twice each: moved {moved}, stayed {stayed}",
        after - before
    );
}
