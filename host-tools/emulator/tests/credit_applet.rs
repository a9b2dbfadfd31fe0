//! The credit applet on the whole card (APDUs, runtime, SCP11 sessions, store), over real SCP11a sessions: an
//! issued card with a credit applet instance personalized as its own security domain, trusting one OCE CA that
//! certifies an issuer, a bank ATM, a credit POS and a token-delivery OCE (the bank's Fig. 15 certificate).
//!
//! Covered: the required reboot test (tokens and ATC survive `Card::with_nvm(card.into_nvm())`); a Fig. 15
//! delivery of a token minted by the real `token` crate, PRESENT at the POS (the card's signature verified, the
//! token opened), CONFIRM, gone, in 6 APDUs with the card's scalar multiplications counted; attacks refused
//! with nothing changed; a tear at every write point of PRESENT and of CONFIRM.

use apdu_spec::aid;
use apdu_spec::credit::{
    Confirmation, CreditCommand, NONCE_LENGTH, Personalization, Presentation, signed_message,
};
use apdu_spec::gp::{CardManagerCommand, InstallRequest, SetStatusTarget};
use apdu_spec::iso::Select;
use apdu_spec::scp11::cert::{Date, Role};
use apdu_spec::scp11::session::SecurityLevel;
use apdu_spec::token::{self as spec, TOKEN_ID_LENGTH};
use card_client::scp11::{
    self, Authority, OceCredentials, Personalization as DomainPersonalization, Scp11Session,
    open_scp11a,
};
use card_client::{CardChannel, ChannelError};
use card_image::LinkcardImage;
use card_os::Card;
use card_os::layout::CardNvm;
use card_os::nvm::{Nvm, Tear, TearingNvm};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The card in this process on any memory, as a channel that counts the APDUs it carries.
struct Direct<N: Nvm> {
    card: Box<Card<LinkcardImage, N>>,
    apdus: usize,
}

impl<N: Nvm> Direct<N> {
    fn on(nvm: N) -> Self {
        let mut card = Box::new(Card::with_nvm(nvm));
        emulator::seed_from_os(&mut card).unwrap();
        card.power_on();
        Self { card, apdus: 0 }
    }
    fn into_nvm(self) -> N {
        self.card.into_nvm().expect("the store opened")
    }
}

impl<N: Nvm> CardChannel for Direct<N> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        self.apdus += 1;
        if std::env::var("TRACE_APDU").is_ok() {
            eprintln!("APDU {:02X?}", &apdu[..4.min(apdu.len())]);
        }
        let mut out = vec![0u8; card_os::RESPONSE_BUFFER + 2];
        let n = self.card.transmit(apdu, &mut out);
        out.truncate(n);
        Ok(out)
    }
    fn reset(&mut self) -> Result<Vec<u8>, ChannelError> {
        Ok(self.card.power_on().as_bytes().to_vec())
    }
    fn power_off(&mut self) -> Result<(), ChannelError> {
        self.card.power_off();
        Ok(())
    }
    fn power_on(&mut self) -> Result<Vec<u8>, ChannelError> {
        Ok(self.card.power_on().as_bytes().to_vec())
    }
    fn describe(&self) -> String {
        "in-process card".into()
    }
}

type RamCard = Direct<CardNvm>;

fn date(y: u16, m: u8, d: u8) -> Date {
    Date::from_ymd(y, m, d).unwrap()
}

fn sw(response: &[u8]) -> u16 {
    u16::from_be_bytes([response[response.len() - 2], response[response.len() - 1]])
}

fn today() -> Date {
    date(2026, 12, 1)
}

const CREDIT_ID: &[u8] = b"CRED0001";
const BANK_ID: &[u8] = b"BANK0001";
/// The credit applet's signing key (TEST ONLY).
const SIGNING_KEY: [u8; 32] = [0x5C; 32];

fn signing_key() -> SigningKey {
    SigningKey::from_slice(&SIGNING_KEY).unwrap()
}

/// The card binding of this applet: SHA-256 of its public key, uncompressed.
fn binding() -> [u8; 32] {
    Sha256::digest(
        signing_key()
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes(),
    )
    .into()
}

#[derive(Clone)]
struct Parties {
    card_ca: Authority,
    oce_ca: Authority,
    issuer: OceCredentials,
    atm: OceCredentials,
    pos: OceCredentials,
    delivery: OceCredentials,
}

fn parties() -> Parties {
    let card_ca = Authority::generate(b"linkcard card CA").unwrap();
    let oce_ca = Authority::generate(b"linkcard OCE CA").unwrap();
    let oce = |subject: &[u8], role| {
        oce_ca
            .issue_oce(subject, role, today(), date(2030, 12, 31))
            .unwrap()
    };
    Parties {
        issuer: oce(b"issuer system", Role::Issuer),
        atm: oce(b"bank ATM 1", Role::BankAtm),
        pos: oce(b"credit POS 1", Role::CreditPos),
        delivery: oce(b"bank token delivery", Role::TokenDelivery),
        card_ca,
        oce_ca,
    }
}

fn select<C: CardChannel>(channel: &mut C, aid: &[u8]) {
    let r = channel
        .transmit(&Select::aid(aid).to_command().to_bytes().unwrap())
        .unwrap();
    assert_eq!(sw(&r), 0x9000, "SELECT {aid:02X?}");
}

fn card_data(atc_limit: u32) -> Personalization<'static> {
    Personalization {
        credit_id: CREDIT_ID,
        pan: &[0x41, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11],
        expiry: &[0x30, 0x12],
        cardholder_id: b"holder-0042",
        status: 0,
        atc_limit,
        signing_key: &SIGNING_KEY,
        bank_applet: None,
        pin: None,
    }
}

/// Issues the card, installs the credit applet, personalizes its domain and its card data; returns the credit
/// applet's SCP11 key.
fn issue<C: CardChannel>(channel: &mut C, p: &Parties, atc_limit: u32) -> [u8; 65] {
    select(channel, aid::CARD_MANAGER.as_bytes());
    let card_manager = DomainPersonalization {
        instance: None,
        card_authority: &p.card_ca,
        subject: b"card 0001",
        anchors: &[p.oce_ca.anchor()],
        today: today(),
        expiration: date(2031, 12, 31),
    };
    let card_key = scp11::personalize(channel, &card_manager).unwrap();
    for state in [0x07, 0x0F] {
        let set = CardManagerCommand::SetStatus {
            target: SetStatusTarget::Card,
            state,
            aid: &[],
        };
        let r = channel.transmit(&set.to_command().to_bytes().unwrap());
        assert_eq!(sw(&r.unwrap()), 0x9000);
    }
    let credit_key = {
        let mut session = open_scp11a(
            &mut *channel,
            &card_key,
            &p.issuer,
            SecurityLevel::FULL,
            None,
        )
        .unwrap();
        let install = CardManagerCommand::Install(InstallRequest {
            install: true,
            make_selectable: true,
            load_file: aid::CREDIT_LOAD_FILE.as_bytes(),
            module: aid::CREDIT_MODULE.as_bytes(),
            application: aid::CREDIT_APPLET.as_bytes(),
            privileges: &[0x00],
            applet_parameters: &[],
        });
        let r = session.transmit_secured(&install.to_command().to_bytes().unwrap());
        assert_eq!(sw(&r.unwrap()), 0x9000, "INSTALL credit applet");
        let domain = DomainPersonalization {
            instance: Some(aid::CREDIT_APPLET.as_bytes()),
            subject: b"credit applet 0001",
            expiration: date(2030, 1, 1),
            ..card_manager
        };
        scp11::personalize(&mut session, &domain).unwrap()
    };
    let mut session = credit_session(channel, &credit_key, &p.issuer);
    let r = send(
        &mut session,
        CreditCommand::Personalize(card_data(atc_limit)),
    );
    assert_eq!(sw(&r), 0x9000, "PERSONALIZE");
    // PERSONALIZE answers the public signing key.
    assert_eq!(
        &r[..r.len() - 2],
        signing_key()
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
    );
    credit_key
}

fn credit_session<'c, C: CardChannel>(
    channel: &'c mut C,
    key: &[u8; 65],
    oce: &OceCredentials,
) -> Scp11Session<&'c mut C> {
    select(channel, aid::CREDIT_APPLET.as_bytes());
    open_scp11a(channel, key, oce, SecurityLevel::FULL, None).unwrap()
}

fn send<C: CardChannel>(session: &mut Scp11Session<C>, command: CreditCommand<'_>) -> Vec<u8> {
    // The credit applet takes extended APDUs: each command, PRESENT's long answer too, in one exchange.
    session
        .transmit_secured_extended(&command.to_command().to_extended().unwrap())
        .unwrap()
}

fn store<C: CardChannel>(session: &mut Scp11Session<C>, token: &[u8]) -> u16 {
    sw(&send(session, CreditCommand::StoreToken(token)))
}

/// Test keys of the token crate (TEST ONLY).
fn token_key(name: &str) -> [u8; 32] {
    let path = format!("{}/../token/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    hex::decode(std::fs::read_to_string(path).unwrap().trim())
        .unwrap()
        .try_into()
        .unwrap()
}

fn bank_key() -> token::BankSigningKey {
    token::BankSigningKey::from_slice(&token_key("bank-signing.TEST-ONLY.hex")).unwrap()
}

fn credit_private() -> token::CreditPrivateKey {
    token::CreditPrivateKey::from_bytes(&token_key("credit-hpke.TEST-ONLY.hex")).unwrap()
}

fn body(id: u8, credit_id: &[u8], card_binding: [u8; 32]) -> token::TokenBody {
    let mut token_id = *b"TOKEN-0000000000";
    token_id[15] = id;
    token::TokenBody {
        user_name: "Hanako Yamada".into(),
        user_id: "U-000042".into(),
        sum: 10_000 * u64::from(id),
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
    }
}

/// A real token (signed, HPKE-sealed, signed), minted by the bank for this card.
fn mint(id: u8, credit_id: &[u8], card_binding: [u8; 32]) -> Vec<u8> {
    token::mint(
        &body(id, credit_id, card_binding),
        &bank_key(),
        credit_private().public_key(),
        &mut token::os_rng().unwrap(),
    )
    .unwrap()
}

fn token(id: u8) -> Vec<u8> {
    mint(id, CREDIT_ID, binding())
}

/// PRESENT's answer, taken apart.
#[derive(Debug, PartialEq)]
struct Presented {
    atc: u32,
    card_data: Vec<u8>,
    tokens: Vec<Vec<u8>>,
    signature: [u8; 64],
}

fn parse_presented(r: &[u8]) -> Presented {
    assert_eq!(sw(r), 0x9000, "PRESENT");
    let mut rest = &r[..r.len() - 2];
    let mut out = Presented {
        atc: 0,
        card_data: Vec::new(),
        tokens: Vec::new(),
        signature: [0; 64],
    };
    while !rest.is_empty() {
        let (tlv, after) = apdu_spec::tlv::read(rest).unwrap();
        let raw = &rest[..rest.len() - after.len()];
        match tlv.tag {
            0xC8 => out.atc = u32::from_be_bytes(tlv.value.try_into().unwrap()),
            0xC1..=0xC5 => out.card_data.extend_from_slice(raw),
            0x7F71 => out.tokens.push(raw.to_vec()),
            0x5F37 => out.signature = tlv.value.try_into().unwrap(),
            other => panic!("unexpected tag {other:X}"),
        }
        rest = after;
    }
    out
}

const NONCE: [u8; NONCE_LENGTH] = [0x4E; NONCE_LENGTH];

fn presentation() -> Presentation<'static> {
    Presentation {
        nonce: &NONCE,
        amount: 4_980,
        currency: 392,
    }
}

fn present<C: CardChannel>(session: &mut Scp11Session<C>) -> Presented {
    parse_presented(&send(session, CreditCommand::Present(presentation())))
}

/// The POS's check of the card's evidence.
fn verify(presented: &Presented) {
    let digests: Vec<[u8; 32]> = presented
        .tokens
        .iter()
        .map(|t| Sha256::digest(t).into())
        .collect();
    let message = signed_message(&presentation(), presented.atc, &digests);
    let key: VerifyingKey = *signing_key().verifying_key();
    let signature = Signature::from_slice(&presented.signature).unwrap();
    key.verify(&message, &signature)
        .expect("the card's signature verifies");
}

fn confirm<C: CardChannel>(session: &mut Scp11Session<C>, atc: u32, ids: &[&[u8]]) -> u16 {
    let ids = ids.concat();
    let confirmation = Confirmation::new(atc, &ids).unwrap();
    sw(&send(session, CreditCommand::Confirm(confirmation)))
}

fn token_id(token: &[u8]) -> Vec<u8> {
    spec::Envelope::parse(token)
        .unwrap()
        .header
        .token_id
        .to_vec()
}

struct Issued {
    card: RamCard,
    parties: Parties,
    key: [u8; 65],
}

fn issued(atc_limit: u32) -> Issued {
    let parties = parties();
    let mut card = RamCard::on(CardNvm::default());
    let key = issue(&mut card, &parties, atc_limit);
    Issued { card, parties, key }
}

impl Issued {
    fn delivery(&mut self) -> Scp11Session<&mut RamCard> {
        credit_session(&mut self.card, &self.key, &self.parties.delivery)
    }
    fn pos(&mut self) -> Scp11Session<&mut RamCard> {
        credit_session(&mut self.card, &self.key, &self.parties.pos)
    }
}

#[test]
fn tokens_and_the_atc_survive_a_reboot_from_memory() {
    let mut w = issued(u32::MAX);
    let (t1, t2) = (token(1), token(2));
    let mut bank = w.delivery();
    assert_eq!(store(&mut bank, &t1), 0x9000);
    assert_eq!(store(&mut bank, &t2), 0x9000);
    drop(bank);
    let first = present(&mut w.pos());
    assert_eq!(first.atc, 1);
    assert_eq!(first.tokens, [t1.clone(), t2.clone()]);
    let Issued { card, parties, key } = w;
    let mut card = RamCard::on(card.into_nvm());
    let mut pos = credit_session(&mut card, &key, &parties.pos);
    let second = present(&mut pos);
    assert_eq!(second.atc, 2, "the ATC survived the reboot");
    assert_eq!(second.tokens, [t1, t2]);
    assert_eq!(second.card_data, first.card_data);
    verify(&second);
}

#[test]
fn a_fig_15_delivery_then_a_purchase_in_six_apdus() {
    let mut w = issued(u32::MAX);
    let t = token(1);
    assert_eq!(store(&mut w.delivery(), &t), 0x9000);
    // The POS: SELECT, GET DATA (the card's certificate), PSO, MUTUAL AUTHENTICATE, PRESENT, CONFIRM.
    let apdus = w.card.apdus;
    let scalars = w.card.card.scalar_multiplications();
    select(&mut w.card, aid::CREDIT_APPLET.as_bytes());
    let card_key = scp11::card_key(&mut w.card, &w.parties.card_ca.issuer(), today()).unwrap();
    assert_eq!(card_key, w.key);
    let pos_oce = w.parties.pos.clone();
    let mut pos = open_scp11a(&mut w.card, &card_key, &pos_oce, SecurityLevel::FULL, None).unwrap();
    let presented = present(&mut pos);
    // The credit system: the card's evidence, then the token itself.
    verify(&presented);
    assert_eq!(presented.tokens, std::slice::from_ref(&t));
    let mut banks = token::BankKeyring::new();
    banks.insert(BANK_ID, *bank_key().verifying_key());
    let mut recipient = token::CreditRecipient::new(CREDIT_ID);
    recipient.add_key(credit_private());
    let opened = token::open(
        &presented.tokens[0],
        &recipient,
        &banks,
        today(),
        Some(&binding()),
    )
    .unwrap();
    assert_eq!(opened, body(1, CREDIT_ID, binding()));
    assert_eq!(confirm(&mut pos, presented.atc, &[&token_id(&t)]), 0x9000);
    drop(pos);
    let purchase_apdus = w.card.apdus - apdus;
    // The card's own: the secure channel's (counted by the runtime) and one for the PRESENT signature.
    let card_scalars = w.card.card.scalar_multiplications() - scalars + 1;
    println!(
        "purchase: {purchase_apdus} APDUs, {card_scalars} EC scalar multiplications on the card \
         ({} in the SCP11a handshake, 1 for the PRESENT signature)",
        card_scalars - 1
    );
    assert_eq!(purchase_apdus, 6);
    assert_eq!(card_scalars, 6);
    // Gone.
    let again = present(&mut w.pos());
    assert!(again.tokens.is_empty());
    assert_eq!(again.atc, presented.atc + 1);
    verify(&again);
}

#[test]
fn stores_outside_the_delivery_session_and_foreign_tokens_are_refused_with_nothing_changed() {
    let mut w = issued(u32::MAX);
    let t1 = token(1);
    assert_eq!(store(&mut w.delivery(), &t1), 0x9000);
    let p = w.parties.clone();
    // The bank ATM, the credit POS, the issuer: certified by the CA the applet trusts, none with the role.
    for oce in [&p.atm, &p.pos, &p.issuer] {
        let mut session = credit_session(&mut w.card, &w.key, oce);
        assert_eq!(store(&mut session, &token(2)), 0x6982);
    }
    // The delivery role without command encryption.
    select(&mut w.card, aid::CREDIT_APPLET.as_bytes());
    let mut mac_only =
        open_scp11a(&mut w.card, &w.key, &p.delivery, SecurityLevel::MAC, None).unwrap();
    assert_eq!(store(&mut mac_only, &token(2)), 0x6982);
    drop(mac_only);
    let mut bank = w.delivery();
    assert_eq!(
        store(&mut bank, &mint(3, b"CRED0002", binding())),
        0x6A80,
        "another credit company's token"
    );
    assert_eq!(
        store(&mut bank, &mint(4, CREDIT_ID, [0xCB; 32])),
        0x6A80,
        "a token bound to another card"
    );
    assert_eq!(store(&mut bank, &t1), 0x6A80, "the same token twice");
    let mut truncated = token(5);
    truncated.pop();
    assert_eq!(store(&mut bank, &truncated), 0x6A80);
    // PRESENT and CONFIRM in the delivery session: refused.
    assert_eq!(
        sw(&send(&mut bank, CreditCommand::Present(presentation()))),
        0x6982
    );
    drop(bank);
    // Personalization a second time: refused (6985).
    let mut issuer = credit_session(&mut w.card, &w.key, &p.issuer);
    assert_eq!(
        sw(&send(&mut issuer, CreditCommand::Personalize(card_data(9)))),
        0x6985
    );
    drop(issuer);
    let presented = present(&mut w.pos());
    assert_eq!(presented.tokens, [t1]);
    assert_eq!(presented.atc, 1, "no PRESENT went through before");
}

#[test]
fn capacity_is_four_tokens_then_6a84_and_present_answers_what_fits() {
    let mut w = issued(u32::MAX);
    let tokens: Vec<Vec<u8>> = (1..=4).map(token).collect();
    let mut bank = w.delivery();
    for t in &tokens {
        assert_eq!(store(&mut bank, t), 0x9000);
    }
    assert_eq!(store(&mut bank, &token(5)), 0x6A84, "beyond capacity");
    drop(bank);
    // Four real tokens (about 500 bytes each) do not fit one answer of the card's 2048-byte response
    // buffer: PRESENT answers the first three, signed; the fourth waits for the PRESENT after CONFIRM.
    let mut pos = w.pos();
    let first = present(&mut pos);
    verify(&first);
    assert_eq!(first.tokens, tokens[..3]);
    let ids: Vec<Vec<u8>> = first.tokens.iter().map(|t| token_id(t)).collect();
    let ids: Vec<&[u8]> = ids.iter().map(Vec::as_slice).collect();
    assert_eq!(confirm(&mut pos, first.atc, &ids), 0x9000);
    let second = present(&mut pos);
    verify(&second);
    assert_eq!(second.tokens, tokens[3..]);
    drop(pos);
    // Room again.
    assert_eq!(store(&mut w.delivery(), &token(5)), 0x9000);
}

#[test]
fn the_atc_stops_at_its_limit_and_old_or_replayed_confirms_are_refused() {
    let mut w = issued(3);
    let (t1, t2) = (token(1), token(2));
    let mut bank = w.delivery();
    assert_eq!(store(&mut bank, &t1), 0x9000);
    assert_eq!(store(&mut bank, &t2), 0x9000);
    drop(bank);
    let mut pos = w.pos();
    let first = present(&mut pos);
    let second = present(&mut pos);
    assert_eq!((first.atc, second.atc), (1, 2));
    // A CONFIRM for the older presentation: refused, nothing dropped.
    assert_eq!(confirm(&mut pos, first.atc, &[&token_id(&t1)]), 0x6985);
    // An unknown token id: refused, nothing dropped.
    assert_eq!(
        confirm(&mut pos, second.atc, &[&[0xEE; TOKEN_ID_LENGTH]]),
        0x6A88
    );
    assert_eq!(confirm(&mut pos, second.atc, &[&token_id(&t1)]), 0x9000);
    // The same CONFIRM again (a replay): refused, t2 stays.
    assert_eq!(confirm(&mut pos, second.atc, &[&token_id(&t2)]), 0x6985);
    let third = present(&mut pos);
    assert_eq!(third.atc, 3);
    assert_eq!(third.tokens, std::slice::from_ref(&t2));
    // At the limit: refused, and the counter does not move or wrap.
    assert_eq!(
        sw(&send(&mut pos, CreditCommand::Present(presentation()))),
        0x6985
    );
    drop(pos);
    let mut pos = w.pos();
    assert_eq!(
        sw(&send(&mut pos, CreditCommand::Present(presentation()))),
        0x6985
    );
    // The last presentation can still be confirmed.
    assert_eq!(confirm(&mut pos, third.atc, &[&token_id(&t2)]), 0x9000);
}

/// Writes of the whole card up to a point: the setup's (a POS session), then with `commands`.
fn writes_of(base: &CardNvm, p: &Parties, key: &[u8; 65], commands: &[CreditCommand<'_>]) -> usize {
    let mut card = Direct::on(TearingNvm::new(base.clone(), None, Tear::Half));
    let mut pos = credit_session(&mut card, key, &p.pos);
    for command in commands {
        assert_eq!(sw(&send(&mut pos, *command)), 0x9000);
    }
    drop(pos);
    card.into_nvm().writes()
}

#[test]
fn a_present_torn_at_any_write_never_answers_an_atc_it_did_not_keep() {
    let parties = parties();
    let mut card = RamCard::on(CardNvm::default());
    let key = issue(&mut card, &parties, u32::MAX);
    let t = token(1);
    assert_eq!(
        store(&mut credit_session(&mut card, &key, &parties.delivery), &t),
        0x9000
    );
    let base = card.into_nvm();
    let present_command = CreditCommand::Present(presentation());
    let before = writes_of(&base, &parties, &key, &[]);
    let after = writes_of(&base, &parties, &key, &[present_command]);
    assert!(after > before, "PRESENT writes the ATC");
    let (mut kept, mut lost) = (0, 0);
    for tear in [Tear::Half, Tear::Garbage] {
        for at in before..after {
            let mut card = Direct::on(TearingNvm::new(base.clone(), Some(at), tear));
            let mut pos = credit_session(&mut card, &key, &parties.pos);
            let r = send(&mut pos, present_command);
            drop(pos);
            assert_ne!(
                sw(&r),
                0x9000,
                "{tear:?} at write {at}: no answer without the ATC kept"
            );
            let mut rebooted = RamCard::on(card.into_nvm().into_inner());
            let next = present(&mut credit_session(&mut rebooted, &key, &parties.pos));
            match next.atc {
                1 => lost += 1,
                2 => kept += 1,
                other => panic!("{tear:?} at write {at}: ATC {other}"),
            }
            assert_eq!(next.tokens, std::slice::from_ref(&t));
            verify(&next);
        }
    }
    println!(
        "PRESENT: {} write points, torn twice each: ATC kept {kept}, not written {lost}",
        after - before
    );
}

#[test]
fn a_confirm_torn_at_any_write_drops_all_or_none() {
    let parties = parties();
    let mut card = RamCard::on(CardNvm::default());
    let key = issue(&mut card, &parties, u32::MAX);
    let tokens: Vec<Vec<u8>> = (1..=4).map(token).collect();
    let mut bank = credit_session(&mut card, &key, &parties.delivery);
    for t in &tokens {
        assert_eq!(store(&mut bank, t), 0x9000);
    }
    drop(bank);
    let presented = present(&mut credit_session(&mut card, &key, &parties.pos));
    let base = card.into_nvm();
    // The tokens this presentation carried (three of the four fit its answer).
    assert_eq!(presented.tokens, tokens[..3]);
    let ids: Vec<u8> = presented.tokens.iter().flat_map(|t| token_id(t)).collect();
    let confirm_command = CreditCommand::Confirm(Confirmation::new(presented.atc, &ids).unwrap());
    let before = writes_of(&base, &parties, &key, &[]);
    let after = writes_of(&base, &parties, &key, &[confirm_command]);
    assert!(
        after - before >= 9,
        "three tokens' records and the ATC record"
    );
    let (mut all, mut none) = (0, 0);
    for tear in [Tear::Half, Tear::Garbage] {
        for at in before..after {
            let mut card = Direct::on(TearingNvm::new(base.clone(), Some(at), tear));
            let mut pos = credit_session(&mut card, &key, &parties.pos);
            let r = send(&mut pos, confirm_command);
            drop(pos);
            assert_ne!(
                sw(&r),
                0x9000,
                "{tear:?} at write {at}: the tear is reported"
            );
            let mut rebooted = RamCard::on(card.into_nvm().into_inner());
            let mut pos = credit_session(&mut rebooted, &key, &parties.pos);
            // Either CONFIRM did not commit (it may be sent again) or it did (and may not be).
            match sw(&send(&mut pos, confirm_command)) {
                0x9000 => none += 1,
                0x6985 => all += 1,
                other => panic!("{tear:?} at write {at}: {other:04X}"),
            }
            let next = present(&mut pos);
            assert_eq!(
                next.tokens,
                tokens[3..],
                "{tear:?} at write {at}: only the token not presented is left"
            );
        }
    }
    println!(
        "CONFIRM: {} write points, torn twice each: committed {all}, not {none}",
        after - before
    );
    assert!(all > 0 && none > 0);
}

/// Writes the card makes for `delivered` tokens stored in a delivery session, on a copy of `base`.
fn delivery_writes(base: &CardNvm, p: &Parties, key: &[u8; 65], delivered: &[&[u8]]) -> usize {
    let mut card = Direct::on(TearingNvm::new(base.clone(), None, Tear::Half));
    let mut bank = credit_session(&mut card, key, &p.delivery);
    for token in delivered {
        assert_eq!(store(&mut bank, token), 0x9000);
    }
    drop(bank);
    card.into_nvm().writes()
}

#[test]
fn a_store_token_torn_at_any_write_keeps_the_token_whole_or_not_at_all() {
    let parties = parties();
    let mut card = RamCard::on(CardNvm::default());
    let key = issue(&mut card, &parties, u32::MAX);
    // One token already there and presented (its presentation still open for CONFIRM).
    let (first, second) = (token(1), token(2));
    assert_eq!(
        store(
            &mut credit_session(&mut card, &key, &parties.delivery),
            &first
        ),
        0x9000
    );
    let presented = present(&mut credit_session(&mut card, &key, &parties.pos));
    assert_eq!(presented.tokens, std::slice::from_ref(&first));
    let base = card.into_nvm();
    let before = delivery_writes(&base, &parties, &key, &[]);
    let after = delivery_writes(&base, &parties, &key, &[&second]);
    assert!(after > before);
    let (mut stored, mut not) = (0, 0);
    for tear in [Tear::Half, Tear::Garbage] {
        for at in before..after {
            let mut card = Direct::on(TearingNvm::new(base.clone(), Some(at), tear));
            let r = store(
                &mut credit_session(&mut card, &key, &parties.delivery),
                &second,
            );
            assert_ne!(r, 0x9000, "{tear:?} at write {at}: the tear is reported");
            let mut rebooted = RamCard::on(card.into_nvm().into_inner());
            let next = present(&mut credit_session(&mut rebooted, &key, &parties.pos));
            verify(&next);
            // The first token is still there; the second is whole or absent.
            match next.tokens.as_slice() {
                [only] if *only == first => not += 1,
                [a, b] if *a == first && *b == second => stored += 1,
                other => panic!("{tear:?} at write {at}: {} tokens", other.len()),
            }
        }
    }
    println!(
        "STORE TOKEN: {} write points, torn twice each: stored {stored}, not {not}",
        after - before
    );
    assert!(not > 0 && stored > 0);
}

#[test]
fn the_typed_host_session_delivers_presents_and_confirms() {
    use card_client::card_manager::CardManagerError;
    use card_client::credit::CreditAppletSession;
    let mut w = issued(u32::MAX);
    let card_ca = w.parties.card_ca.clone();
    fn open<'c>(
        card: &'c mut RamCard,
        card_ca: &Authority,
        oce: &OceCredentials,
    ) -> CreditAppletSession<Scp11Session<&'c mut RamCard>> {
        CreditAppletSession::select(card, aid::CREDIT_APPLET.as_bytes())
            .unwrap()
            .open_scp11a(&card_ca.issuer(), today(), oce, SecurityLevel::FULL)
            .unwrap()
    }
    let (t1, t2) = (token(1), token(2));
    let mut bank = open(&mut w.card, &card_ca, &w.parties.delivery);
    bank.store_token(&t1).unwrap();
    bank.store_token(&t2).unwrap();
    let error = bank.store_token(&t2).unwrap_err();
    assert!(
        matches!(error, CardManagerError::WrongData { .. }),
        "{error}"
    );
    // The delivery session may not present: the host refuses before sending.
    let error = bank.present(&presentation()).unwrap_err();
    assert!(
        matches!(error, CardManagerError::SecurityStatusNotSatisfied { .. }),
        "{error}"
    );
    drop(bank);
    let mut pos = open(&mut w.card, &card_ca, &w.parties.pos);
    let presented = pos.present(&presentation()).unwrap();
    assert_eq!(presented.tokens, [t1.clone(), t2.clone()]);
    assert_eq!(presented.token_digests().len(), 2);
    let parsed = Presented {
        atc: presented.atc,
        card_data: presented.card_data.clone(),
        tokens: presented.tokens.clone(),
        signature: presented.signature,
    };
    verify(&parsed);
    let id: [u8; TOKEN_ID_LENGTH] = token_id(&t1).try_into().unwrap();
    pos.confirm(presented.atc, &[id]).unwrap();
    let error = pos.confirm(presented.atc, &[id]).unwrap_err();
    assert!(
        matches!(error, CardManagerError::ConditionsNotSatisfied { .. }),
        "{error}"
    );
    assert_eq!(
        pos.present(&presentation()).unwrap().tokens,
        std::slice::from_ref(&t2)
    );
}

#[test]
fn confirm_drops_only_tokens_that_presentation_carried() {
    let mut w = issued(u32::MAX);
    let (t1, t2) = (token(1), token(2));
    assert_eq!(store(&mut w.delivery(), &t1), 0x9000);
    let presented = present(&mut w.pos());
    assert_eq!(presented.tokens, std::slice::from_ref(&t1));
    // Delivered after the presentation: the credit system never saw it, CONFIRM may not drop it.
    assert_eq!(store(&mut w.delivery(), &t2), 0x9000);
    let mut pos = w.pos();
    assert_eq!(confirm(&mut pos, presented.atc, &[&token_id(&t2)]), 0x6A88);
    assert_eq!(
        confirm(&mut pos, presented.atc, &[&token_id(&t1), &token_id(&t2)]),
        0x6A88
    );
    assert_eq!(confirm(&mut pos, presented.atc, &[&token_id(&t1)]), 0x9000);
    let next = present(&mut pos);
    assert_eq!(next.tokens, std::slice::from_ref(&t2));
    verify(&next);
}
