//! The bank applet on the whole card (APDUs, runtime, SCP11 sessions, store), over real SCP11a sessions: an
//! issued card with a bank applet instance personalized as its own security domain, trusting one OCE CA that
//! certifies an issuer, a bank ATM, a credit POS and a token-delivery OCE.
//!
//! Covered: the required reboot test (tokens and account survive `Card::with_nvm(card.into_nvm())`, the
//! session does not); store, list, delete; capacity (8 tokens of the largest size, then 6A84); attacks refused
//! with nothing changed; eviction by the card date; a tear at every write point of STORE TOKEN.

use apdu_spec::aid;
use apdu_spec::bank::{BankCommand, Personalization};
use apdu_spec::gp::{CardManagerCommand, InstallRequest, SetStatusTarget, StatusScope};
use apdu_spec::iso::Select;
use apdu_spec::scp11::cert::{Date, Role};
use apdu_spec::scp11::session::SecurityLevel;
use apdu_spec::token::{self, ClearHeader, MAX_TOKEN, TOKEN_ID_LENGTH};
use card_client::scp11::{
    self, Authority, OceCredentials, Personalization as DomainPersonalization, Scp11Session,
    open_scp11a, open_scp11b,
};
use card_client::{CardChannel, ChannelError};
use card_image::LinkcardImage;
use card_os::Card;
use card_os::layout::CardNvm;
use card_os::nvm::{Nvm, Tear, TearingNvm};

/// The card in this process on any memory, as a channel (a tearing memory for the tear test).
struct Direct<N: Nvm>(Box<Card<LinkcardImage, N>>);

impl<N: Nvm> Direct<N> {
    fn on(nvm: N) -> Self {
        let mut card = Box::new(Card::with_nvm(nvm));
        emulator::seed_from_os(&mut card).unwrap();
        card.power_on();
        Self(card)
    }
    fn into_nvm(self) -> N {
        self.0.into_nvm().expect("the store opened")
    }
}

impl<N: Nvm> CardChannel for Direct<N> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let mut out = vec![0u8; card_os::RESPONSE_BUFFER + 2];
        let n = self.0.transmit(apdu, &mut out);
        out.truncate(n);
        Ok(out)
    }
    fn reset(&mut self) -> Result<Vec<u8>, ChannelError> {
        Ok(self.0.power_on().as_bytes().to_vec())
    }
    fn power_off(&mut self) -> Result<(), ChannelError> {
        self.0.power_off();
        Ok(())
    }
    fn power_on(&mut self) -> Result<Vec<u8>, ChannelError> {
        Ok(self.0.power_on().as_bytes().to_vec())
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

const TODAY: (u16, u8, u8) = (2026, 11, 24);
const BANK_ID: &[u8] = b"BANK0001";

fn today() -> Date {
    date(TODAY.0, TODAY.1, TODAY.2)
}

/// The parties around the card.
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

fn account() -> Personalization<'static> {
    Personalization {
        bank_id: BANK_ID,
        account: b"DE89370400440532013000",
        user_id: b"user-42",
        user_name: b"Erika Mustermann",
        credit_applet: aid::CREDIT_APPLET.as_bytes(),
    }
}

/// Issues the card (card manager personalized, SECURED), installs the bank applet, personalizes its domain
/// (key, certificate, OCE CA anchor) and its account data; returns the bank applet's key.
fn issue<C: CardChannel>(channel: &mut C, p: &Parties) -> [u8; 65] {
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
    let bank_key = {
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
            load_file: aid::BANK_LOAD_FILE.as_bytes(),
            module: aid::BANK_MODULE.as_bytes(),
            application: aid::BANK_APPLET.as_bytes(),
            privileges: &[0x00],
            applet_parameters: &[],
        });
        let r = session.transmit_secured(&install.to_command().to_bytes().unwrap());
        assert_eq!(sw(&r.unwrap()), 0x9000, "INSTALL bank applet");
        let domain = DomainPersonalization {
            instance: Some(aid::BANK_APPLET.as_bytes()),
            subject: b"bank applet 0001",
            expiration: date(2030, 1, 1),
            ..card_manager
        };
        scp11::personalize(&mut session, &domain).unwrap()
    };
    let mut session = bank_session(channel, &bank_key, &p.issuer);
    let personalize = BankCommand::Personalize(account()).to_command();
    let r = session.transmit_secured(&personalize.to_bytes().unwrap());
    assert_eq!(sw(&r.unwrap()), 0x9000, "PERSONALIZE");
    bank_key
}

/// Selects the bank applet and opens SCP11a with it as `oce`.
fn bank_session<'c, C: CardChannel>(
    channel: &'c mut C,
    bank_key: &[u8; 65],
    oce: &OceCredentials,
) -> Scp11Session<&'c mut C> {
    select(channel, aid::BANK_APPLET.as_bytes());
    open_scp11a(channel, bank_key, oce, SecurityLevel::FULL, None).unwrap()
}

/// A token of `len` bytes (the ciphertext is sized to make it so) with the id `id`; random-looking
/// ciphertext and signature (the card verifies neither).
fn token_bytes(id: u8, bank_id: &[u8], expires: Date, len: usize) -> Vec<u8> {
    let header = ClearHeader {
        token_id: &[id; TOKEN_ID_LENGTH],
        bank_id,
        credit_id: b"CREDIT01",
        issued: today(),
        expires,
        bank_key_id: &[0xB1; 8],
        credit_key_id: &[0xC1; 8],
        card_binding: &[0xCB; 32],
    }
    .encode();
    let build = |ciphertext_len: usize| {
        let ciphertext: Vec<u8> = (0..ciphertext_len).map(|i| (i * 31 + 7) as u8).collect();
        let sealed = token::sealed_tlv(&[0x04; 65], &ciphertext);
        token::envelope(&[header.clone(), sealed].concat(), &[0x5A; 64])
    };
    // Length fields grow with the ciphertext: search the ciphertext length that gives exactly `len`.
    (16..MAX_TOKEN)
        .map(build)
        .find(|t| t.len() == len)
        .expect("a ciphertext length gives this token length")
}

fn token(id: u8) -> Vec<u8> {
    token_bytes(id, BANK_ID, date(2027, 6, 30), MAX_TOKEN)
}

fn send<C: CardChannel>(session: &mut Scp11Session<C>, command: BankCommand<'_>) -> Vec<u8> {
    session
        .transmit_secured(&command.to_command().to_extended().unwrap())
        .unwrap()
}

fn store<C: CardChannel>(session: &mut Scp11Session<C>, token: &[u8]) -> u16 {
    sw(&send(session, BankCommand::StoreToken(token)))
}

/// The token ids LIST TOKENS reports, in slot order.
fn listed<C: CardChannel>(session: &mut Scp11Session<C>) -> Vec<u8> {
    let r = send(session, BankCommand::ListTokens);
    assert_eq!(sw(&r), 0x9000, "LIST TOKENS");
    let mut ids = Vec::new();
    let mut rest = &r[..r.len() - 2];
    while !rest.is_empty() {
        let (tlv, after) = apdu_spec::tlv::read(rest).unwrap();
        assert_eq!(tlv.tag, 0xA1);
        ids.push(ClearHeader::parse(tlv.value).unwrap().token_id[0]);
        rest = after;
    }
    ids
}

struct Issued {
    card: RamCard,
    parties: Parties,
    bank_key: [u8; 65],
}

fn issued() -> Issued {
    let parties = parties();
    let mut card = RamCard::on(CardNvm::default());
    let bank_key = issue(&mut card, &parties);
    Issued {
        card,
        parties,
        bank_key,
    }
}

impl Issued {
    fn atm(&mut self) -> Scp11Session<&mut RamCard> {
        bank_session(&mut self.card, &self.bank_key, &self.parties.atm)
    }
}

#[test]
fn tokens_and_account_survive_a_reboot_from_memory_and_the_session_does_not() {
    let mut w = issued();
    let mut atm = w.atm();
    assert_eq!(store(&mut atm, &token(1)), 0x9000);
    assert_eq!(store(&mut atm, &token(2)), 0x9000);
    let account_before = send(&mut atm, BankCommand::ReadAccount);
    drop(atm);
    let Issued {
        card,
        parties,
        bank_key,
    } = w;
    let mut card = RamCard::on(card.into_nvm());
    // The session lived in RAM: a secured command of the old session finds none (6982).
    select(&mut card, aid::BANK_APPLET.as_bytes());
    let stale = [0x84, 0x26, 0x00, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8];
    assert_eq!(sw(&card.transmit(&stale).unwrap()), 0x6982);
    let mut atm = bank_session(&mut card, &bank_key, &parties.atm);
    assert_eq!(listed(&mut atm), [1, 2]);
    assert_eq!(send(&mut atm, BankCommand::ReadAccount), account_before);
    assert_eq!(
        &account_before[..account_before.len() - 2],
        account().to_bytes()
    );
    // A power cycle in process is the same reboot.
    drop(atm);
    card.power_off().unwrap();
    card.power_on().unwrap();
    let mut atm = bank_session(&mut card, &bank_key, &parties.atm);
    assert_eq!(listed(&mut atm), [1, 2]);
}

#[test]
fn store_list_delete_and_capacity() {
    let mut w = issued();
    let mut atm = w.atm();
    assert_eq!(listed(&mut atm), Vec::<u8>::new());
    // A small token and the largest.
    let small = token_bytes(9, BANK_ID, date(2027, 1, 1), 300);
    assert_eq!(store(&mut atm, &small), 0x9000);
    for id in 1..8 {
        assert_eq!(store(&mut atm, &token(id)), 0x9000, "token {id}");
    }
    assert_eq!(listed(&mut atm), [9, 1, 2, 3, 4, 5, 6, 7]);
    // Beyond capacity: 6A84, nothing changed.
    assert_eq!(store(&mut atm, &token(8)), 0x6A84);
    assert_eq!(listed(&mut atm), [9, 1, 2, 3, 4, 5, 6, 7]);
    // The same id twice: refused.
    let delete = |id: u8| BankCommand::DeleteToken(&[id; TOKEN_ID_LENGTH]).to_command();
    assert_eq!(
        sw(&atm
            .transmit_secured(&delete(3).to_bytes().unwrap())
            .unwrap()),
        0x9000
    );
    assert_eq!(store(&mut atm, &token(1)), 0x6A80, "duplicate id");
    assert_eq!(
        sw(&atm
            .transmit_secured(&delete(3).to_bytes().unwrap())
            .unwrap()),
        0x6A88
    );
    assert_eq!(listed(&mut atm), [9, 1, 2, 4, 5, 6, 7]);
    // The freed slot takes a new token.
    assert_eq!(store(&mut atm, &token(8)), 0x9000);
    assert_eq!(listed(&mut atm), [9, 1, 2, 8, 4, 5, 6, 7]);
    // Eight tokens of the largest size at once.
    assert_eq!(
        sw(&atm
            .transmit_secured(&delete(9).to_bytes().unwrap())
            .unwrap()),
        0x9000
    );
    assert_eq!(store(&mut atm, &token(10)), 0x9000);
    assert_eq!(listed(&mut atm), [10, 1, 2, 8, 4, 5, 6, 7]);
    assert_eq!(store(&mut atm, &token(11)), 0x6A84);
}

/// LIST TOKENS and READ ACCOUNT through the ATM's session: what the card holds now.
fn snapshot(w: &mut Issued) -> (Vec<u8>, Vec<u8>) {
    let mut atm = w.atm();
    let tokens = send(&mut atm, BankCommand::ListTokens);
    let account = send(&mut atm, BankCommand::ReadAccount);
    (tokens, account)
}

#[test]
fn stores_without_the_bank_atm_session_are_refused_with_nothing_changed() {
    let mut w = issued();
    assert_eq!(store(&mut w.atm(), &token(1)), 0x9000);
    let before = snapshot(&mut w);
    let store_token = BankCommand::StoreToken(&token(2)).to_command();
    // No session: plainly, chained or extended.
    select(&mut w.card, aid::BANK_APPLET.as_bytes());
    let plain = w
        .card
        .transmit(&store_token.to_extended().unwrap())
        .unwrap();
    assert_eq!(sw(&plain), 0x6982);
    for fragment in store_token.to_chain(255).unwrap() {
        let r = w.card.transmit(&fragment).unwrap();
        assert!(matches!(sw(&r), 0x9000 | 0x6982), "{r:02X?}");
    }
    // The credit POS, the token-delivery certificate, the issuer: all certified by the CA the applet trusts,
    // none with the bank-ATM role.
    let p = w.parties.clone();
    for oce in [&p.pos, &p.delivery, &p.issuer] {
        let mut session = bank_session(&mut w.card, &w.bank_key, oce);
        assert_eq!(store(&mut session, &token(2)), 0x6982);
    }
    // SCP11b: confidential, but no role.
    select(&mut w.card, aid::BANK_APPLET.as_bytes());
    let mut anonymous = open_scp11b(&mut w.card, &w.bank_key, SecurityLevel::FULL).unwrap();
    assert_eq!(store(&mut anonymous, &token(2)), 0x6982);
    // The bank ATM with a session without command encryption.
    select(&mut w.card, aid::BANK_APPLET.as_bytes());
    let mut mac_only =
        open_scp11a(&mut w.card, &w.bank_key, &p.atm, SecurityLevel::MAC, None).unwrap();
    assert_eq!(store(&mut mac_only, &token(2)), 0x6982);
    assert_eq!(snapshot(&mut w), before);
}

#[test]
fn foreign_malformed_and_expired_tokens_are_refused_with_nothing_changed() {
    let mut w = issued();
    assert_eq!(store(&mut w.atm(), &token(1)), 0x9000);
    let before = snapshot(&mut w);
    let mut atm = w.atm();
    let foreign = token_bytes(2, b"BANK0002", date(2027, 6, 30), 500);
    assert_eq!(store(&mut atm, &foreign), 0x6A80, "another bank's token");
    let expired = token_bytes(3, BANK_ID, date(2026, 11, 23), 500);
    assert_eq!(
        store(&mut atm, &expired),
        0x6A80,
        "expired before the card date"
    );
    let good = token(4);
    let mut truncated = good.clone();
    truncated.pop();
    let mut flipped = good.clone();
    flipped[1] ^= 0x01; // the envelope's tag
    let mut trailing = good.clone();
    trailing.push(0);
    for malformed in [
        &truncated[..],
        &flipped,
        &trailing,
        &good[..10],
        &[0x7F, 0x71, 0x00],
    ] {
        assert_eq!(
            store(&mut atm, malformed),
            0x6A80,
            "{:02X?}",
            &malformed[..4]
        );
    }
    // A personalization a second time: refused (6985), even from the issuer.
    drop(atm);
    let issuer = w.parties.issuer.clone();
    let mut session = bank_session(&mut w.card, &w.bank_key, &issuer);
    let again = BankCommand::Personalize(Personalization {
        bank_id: b"BANK0002",
        ..account()
    });
    assert_eq!(sw(&send(&mut session, again)), 0x6985);
    assert_eq!(snapshot(&mut w), before);
}

#[test]
fn expired_tokens_are_evicted_when_the_card_date_moves_on() {
    let mut w = issued();
    let mut atm = w.atm();
    assert_eq!(
        store(&mut atm, &token_bytes(1, BANK_ID, date(2026, 12, 31), 400)),
        0x9000
    );
    assert_eq!(store(&mut atm, &token(2)), 0x9000);
    drop(atm);
    // An issuer session with a chain effective 2027-01-05 moves the card date forward once it proves its key.
    let later = w
        .parties
        .oce_ca
        .issue_oce(
            b"issuer system",
            Role::Issuer,
            date(2027, 1, 5),
            date(2030, 1, 1),
        )
        .unwrap();
    select(&mut w.card, aid::CARD_MANAGER.as_bytes());
    let card_key = scp11::card_key(&mut w.card, &w.parties.card_ca.issuer(), today()).unwrap();
    let mut session =
        open_scp11a(&mut w.card, &card_key, &later, SecurityLevel::FULL, None).unwrap();
    let status = CardManagerCommand::GetStatus {
        scope: StatusScope::Applications,
        next: false,
        aid_prefix: &[],
    };
    let r = session.transmit_secured(&status.to_command().to_bytes().unwrap());
    assert_eq!(sw(&r.unwrap()), 0x9000);
    drop(session);
    assert_eq!(
        listed(&mut w.atm()),
        [2],
        "the token that expired 2026-12-31 is gone"
    );
}

/// Writes of the whole card up to a point: the setup's, then with the STORE TOKEN.
fn writes_of(base: &CardNvm, p: &Parties, key: &[u8; 65], token: Option<&[u8]>) -> usize {
    let mut card = Direct::on(TearingNvm::new(base.clone(), None, Tear::Half));
    let mut atm = bank_session(&mut card, key, &p.atm);
    if let Some(token) = token {
        assert_eq!(store(&mut atm, token), 0x9000);
    }
    drop(atm);
    card.into_nvm().writes()
}

/// For each owner number, which of records 10, 11, 12 (token slot 0's parts) it has.
fn slot_zero_parts(memory: CardNvm) -> Vec<[bool; 3]> {
    let mut store = card_os::layout::CardStore::open(memory).expect("the store recovers");
    let mut buf = [0u8; 300];
    (0..16u8)
        .map(|owner| {
            let records = card_os::layout::RECORDS.space(&mut store, owner);
            [0x10, 0x11, 0x12].map(|key| records.get(key, &mut buf).is_ok())
        })
        .collect()
}

#[test]
fn a_store_torn_at_any_write_leaves_the_token_whole_or_absent() {
    let parties = parties();
    let mut card = RamCard::on(CardNvm::default());
    let key = issue(&mut card, &parties);
    let base = card.into_nvm();
    let token = token(1);
    let before = writes_of(&base, &parties, &key, None);
    let after = writes_of(&base, &parties, &key, Some(&token));
    assert!(after - before >= 6, "three records through the journal");
    let (mut present, mut absent) = (0, 0);
    for tear in [Tear::Half, Tear::Garbage] {
        for at in before..after {
            let mut card = Direct::on(TearingNvm::new(base.clone(), Some(at), tear));
            let mut atm = bank_session(&mut card, &key, &parties.atm);
            let sw = store(&mut atm, &token);
            drop(atm);
            assert_ne!(sw, 0x9000, "{tear:?} at write {at}: the tear is reported");
            let memory = card.into_nvm().into_inner();
            let parts = slot_zero_parts(memory.clone());
            assert!(
                parts.iter().all(|p| p.iter().all(|h| *h == p[0])),
                "{tear:?} at write {at}: parts {parts:?}"
            );
            let mut rebooted = RamCard::on(memory);
            let mut atm = bank_session(&mut rebooted, &key, &parties.atm);
            match listed(&mut atm)[..] {
                [1] => present += 1,
                [] => {
                    absent += 1;
                    assert_eq!(
                        store(&mut atm, &token),
                        0x9000,
                        "stored again after the tear"
                    );
                    assert_eq!(listed(&mut atm), [1]);
                }
                ref other => panic!("{tear:?} at write {at}: {other:?}"),
            }
        }
    }
    println!(
        "STORE TOKEN: {} write points, torn twice each: {present} whole, {absent} absent",
        after - before
    );
    assert!(absent > 0);
}

#[test]
fn the_typed_host_session_stores_lists_and_deletes() {
    use card_client::bank::BankAppletSession;
    use card_client::card_manager::CardManagerError;
    let mut w = issued();
    let card_ca = w.parties.card_ca.clone();
    let session = BankAppletSession::select(&mut w.card, aid::BANK_APPLET.as_bytes()).unwrap();
    let mut atm = session
        .open_scp11a(
            &card_ca.issuer(),
            today(),
            &w.parties.atm,
            SecurityLevel::FULL,
        )
        .unwrap();
    atm.store_token(&token(1)).unwrap();
    atm.store_token(&token(2)).unwrap();
    let headers = atm.list_tokens().unwrap();
    assert_eq!(headers.len(), 2);
    assert_eq!(
        ClearHeader::parse(&headers[1][2..]).unwrap().token_id,
        &[2; 16]
    );
    let account_data = atm.read_account().unwrap();
    assert_eq!(Personalization::parse(&account_data), Ok(account()));
    atm.delete_token(&[1; TOKEN_ID_LENGTH]).unwrap();
    let error = atm.delete_token(&[1; TOKEN_ID_LENGTH]).unwrap_err();
    assert!(
        matches!(error, CardManagerError::NotFound { .. }),
        "{error}"
    );
    let error = atm.store_token(&token(2)).unwrap_err();
    assert!(
        matches!(error, CardManagerError::WrongData { .. }),
        "{error}"
    );
    assert_eq!(atm.list_tokens().unwrap().len(), 1);
    drop(atm);
    // A credit POS session: the host refuses before sending (the card would answer 6982 and end the session).
    let session = BankAppletSession::select(&mut w.card, aid::BANK_APPLET.as_bytes()).unwrap();
    let mut pos = session
        .open_scp11a(
            &card_ca.issuer(),
            today(),
            &w.parties.pos,
            SecurityLevel::FULL,
        )
        .unwrap();
    let error = pos.store_token(&token(3)).unwrap_err();
    assert!(
        matches!(
            error,
            CardManagerError::SecurityStatusNotSatisfied { status: None, .. }
        ),
        "{error}"
    );
}

/// Cheap deterministic noise (xorshift) for the mutation test.
fn next(state: &mut u32) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state
}

/// Every single-byte change and every truncation of a stored token, sent by the bank ATM: never a panic; the
/// answer is 6A80 (no token, another bank, or the same id again) or, when the change left a well-formed token
/// of this bank with a new id, 9000, and that token is then deleted. Random plain APDUs to the selected applet
/// change nothing either. Afterwards the card holds exactly what it held.
#[test]
fn mutated_tokens_and_random_commands_never_panic_and_change_nothing() {
    let mut w = issued();
    let original = token_bytes(1, BANK_ID, date(2027, 6, 30), 400);
    let mut atm = w.atm();
    assert_eq!(store(&mut atm, &original), 0x9000);
    let mut noise = 0x9E37_79B9;
    let mut stored_anew = 0;
    for at in 0..original.len() {
        let mut mutated = original.clone();
        mutated[at] ^= 1 << (next(&mut noise) % 8);
        let cut = &original[..at];
        for candidate in [&mutated[..], cut] {
            if candidate.is_empty() {
                continue;
            }
            match store(&mut atm, candidate) {
                0x6A80 => {}
                0x9000 => {
                    let envelope = token::Envelope::parse(candidate).unwrap();
                    let delete = BankCommand::DeleteToken(envelope.header.token_id);
                    assert_eq!(sw(&send(&mut atm, delete)), 0x9000);
                    stored_anew += 1;
                }
                other => panic!("byte {at}: {other:04X}"),
            }
        }
    }
    assert!(
        stored_anew > 0,
        "changes to the token id are stored as new tokens"
    );
    assert_eq!(listed(&mut atm), [1]);
    drop(atm);
    let before = snapshot(&mut w);
    select(&mut w.card, aid::BANK_APPLET.as_bytes());
    for _ in 0..2000 {
        let len = (next(&mut noise) % 40) as usize;
        let mut apdu: Vec<u8> = (0..len).map(|_| next(&mut noise) as u8).collect();
        if let Some(cla) = apdu.first_mut() {
            *cla &= 0x83; // proprietary or not, basic channel or 1-3, no chaining or secure messaging bit
        }
        if let Some(ins) = apdu.get_mut(1) {
            *ins = 0x20 + (*ins % 12);
        }
        let r = w.card.transmit(&apdu).unwrap();
        assert!(r.len() >= 2, "{apdu:02X?}");
        assert_ne!(sw(&r), 0x9000, "no plain command succeeds: {apdu:02X?}");
    }
    assert_eq!(snapshot(&mut w), before);
}
