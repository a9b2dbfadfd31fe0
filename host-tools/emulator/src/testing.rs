//! Test support (feature `testing`, TEST KEYS ONLY): one card issued with both payment applets personalized, and a
//! driver that sends it operations (sessions opened, commands secured, raw bytes, SELECT, power cycles) and checks
//! the shape of every answer. `tests/applets_never_panic.rs` drives it with proptest sequences, the fuzz target
//! `fuzz/fuzz_targets/applets.rs` with libFuzzer's bytes.
//!
//! A failure to issue is a broken test setup, not an input: it panics, as a test would.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::cell::RefCell;
use std::rc::Rc;

use apdu_spec::aid;
use apdu_spec::bank;
use apdu_spec::credit::{self, CardholderPin, Presentation};
use apdu_spec::iso::Select;
use apdu_spec::scp11::cert::{Date, Role};
use apdu_spec::scp11::session::SecurityLevel;
use apdu_spec::tlv;
use apdu_spec::token::ClearHeader;
use card_client::issuing::{AppletIssue, CardIssue, issue_card};
use card_client::scp11::{
    Authority, OceCredentials, Scp11Error, Scp11Session, open_scp11a, open_scp11b,
};
use card_client::{CardChannel, ChannelError};
use card_image::LinkcardCard;
use card_os::Card;
use card_os::layout::CardNvm;
use sha2::{Digest, Sha256};

/// The card date the issuer writes, and the day the tokens are minted.
pub fn today() -> Date {
    date(2026, 12, 1)
}

fn date(y: u16, m: u8, d: u8) -> Date {
    Date::from_ymd(y, m, d).expect("a valid date")
}

/// The bank the bank applet is personalized for.
pub const BANK_ID: &[u8] = b"BANK0001";
/// The credit company the credit applet is personalized for.
pub const CREDIT_ID: &[u8] = b"CRED0001";
/// The cardholder PIN the credit applet is personalized with.
pub const PIN: &[u8] = b"1234";
/// The credit applet's signing key (TEST ONLY).
pub const SIGNING_KEY: [u8; 32] = [0x5C; 32];
/// The bank's token signing key and the credit system's HPKE key (TEST ONLY).
const BANK_TOKEN_KEY: [u8; 32] = [0x2B; 32];
/// See [`BANK_TOKEN_KEY`].
const CREDIT_HPKE_KEY: [u8; 32] = [0x3C; 32];

/// The authorities and the off-card entities around the card: one OCE CA certifies an OCE of every role.
#[derive(Clone, Debug)]
pub struct Parties {
    /// Certifies the card's security domains.
    pub card_ca: Authority,
    /// The anchor every domain trusts.
    pub oce_ca: Authority,
    /// Role issuer.
    pub issuer: OceCredentials,
    /// Role bank-atm.
    pub atm: OceCredentials,
    /// Role credit-pos.
    pub pos: OceCredentials,
    /// Role token-delivery (the bank's Fig. 15 certificate).
    pub delivery: OceCredentials,
}

impl Parties {
    fn generate() -> Self {
        let card_ca = Authority::generate(b"linkcard card CA").expect("entropy");
        let oce_ca = Authority::generate(b"linkcard OCE CA").expect("entropy");
        let oce = |subject: &[u8], role| {
            oce_ca
                .issue_oce(subject, role, today(), date(2030, 12, 31))
                .expect("an OCE certificate")
        };
        Self {
            issuer: oce(b"issuer system", Role::Issuer),
            atm: oce(b"bank ATM 1", Role::BankAtm),
            pos: oce(b"credit POS 1", Role::CreditPos),
            delivery: oce(b"bank token delivery", Role::TokenDelivery),
            card_ca,
            oce_ca,
        }
    }
}

/// A card after issuance: its memory (powered off), the parties, the domains' SCP11 keys and real tokens.
#[derive(Clone, Debug)]
pub struct IssuedCard {
    /// The card's persistent memory; start a card on a copy with [`SharedCard::on`].
    pub nvm: CardNvm,
    /// Who may open sessions.
    pub parties: Parties,
    /// PK.SD.ECKA of the card manager, the bank applet and the credit applet.
    pub card_manager_key: [u8; 65],
    /// See `card_manager_key`.
    pub bank_key: [u8; 65],
    /// See `card_manager_key`.
    pub credit_key: [u8; 65],
    /// Tokens minted by the `token` crate: two for this card, one of another bank, one of another credit
    /// company, one bound to another card.
    pub tokens: Vec<Vec<u8>>,
}

/// Issues a card with `card_client::issuing`: the card manager personalized, the card SECURED, the bank and the
/// credit applet installed in an issuer session, each one's security domain personalized, then each applet's
/// PERSONALIZE (the credit applet sharing with the bank applet, Fig. 14, and asking for a cardholder PIN). Slow
/// (ECC): build it once.
pub fn issue_payment_card() -> IssuedCard {
    let parties = Parties::generate();
    let mut card = SharedCard::on(CardNvm::default());
    let anchors = [parties.oce_ca.anchor()];
    let issue = CardIssue {
        card_authority: &parties.card_ca,
        card_subject: b"payment card 0001",
        card_anchors: &anchors,
        issuer: &parties.issuer,
        today: today(),
        expiration: date(2031, 12, 31),
        bank: Some(AppletIssue {
            instance: aid::BANK_APPLET.as_bytes(),
            subject: b"bank applet 0001",
            anchors: &anchors,
            data: bank::Personalization {
                bank_id: BANK_ID,
                account: b"DE89370400440532013000",
                user_id: b"user-42",
                user_name: b"Erika Mustermann",
                credit_applet: aid::CREDIT_APPLET.as_bytes(),
            },
        }),
        credit: Some(AppletIssue {
            instance: aid::CREDIT_APPLET.as_bytes(),
            subject: b"credit applet 0001",
            anchors: &anchors,
            data: credit::Personalization {
                credit_id: CREDIT_ID,
                pan: &[0x41, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11],
                expiry: &[0x30, 0x12],
                cardholder_id: b"holder-0042",
                status: 0,
                atc_limit: u32::MAX,
                signing_key: &SIGNING_KEY,
                bank_applet: Some(aid::BANK_APPLET.as_bytes()),
                pin: Some(CardholderPin {
                    digits: PIN,
                    try_limit: 3,
                }),
            },
        }),
    };
    let issued = issue_card(&mut card, &issue).expect("the card is issued");
    card.power_off().unwrap();
    let key = |key: Option<[u8; 65]>| key.expect("the applet was issued");
    IssuedCard {
        nvm: card.into_nvm(),
        card_manager_key: issued.card_key,
        bank_key: key(issued.bank_key),
        credit_key: key(issued.credit_key),
        parties,
        tokens: mint_tokens(),
    }
}

/// The bank's token signing key (TEST ONLY).
pub fn bank_token_key() -> token::BankSigningKey {
    token::BankSigningKey::from_slice(&BANK_TOKEN_KEY).expect("a P-256 scalar")
}

/// The credit system's HPKE key (TEST ONLY).
pub fn credit_hpke_key() -> token::CreditPrivateKey {
    token::CreditPrivateKey::from_bytes(&CREDIT_HPKE_KEY).expect("a P-256 scalar")
}

/// The card binding of the credit applet: SHA-256 of its public key, uncompressed.
pub fn binding() -> [u8; 32] {
    let key = token::BankSigningKey::from_slice(&SIGNING_KEY).unwrap();
    Sha256::digest(key.verifying_key().to_sec1_point(false).as_bytes()).into()
}

fn mint_tokens() -> Vec<Vec<u8>> {
    let bank_key = bank_token_key();
    let credit = credit_hpke_key();
    let mut rng = token::os_rng().unwrap();
    let parties: [(&[u8], &[u8], [u8; 32]); 5] = [
        (BANK_ID, CREDIT_ID, binding()),
        (BANK_ID, CREDIT_ID, binding()),
        (b"BANK0002", CREDIT_ID, binding()),
        (BANK_ID, b"CRED0002", binding()),
        (BANK_ID, CREDIT_ID, [0xCB; 32]),
    ];
    let mut token_id = *b"TOKEN-0000000000";
    parties
        .iter()
        .map(|(bank_id, credit_id, card_binding)| {
            token_id[15] += 1;
            let body = token::TokenBody {
                user_name: "Erika Mustermann".into(),
                user_id: "user-42".into(),
                sum: 10_000 * u64::from(token_id[15]),
                currency: 978,
                deposit_date: today(),
                token_id,
                valid_from: today(),
                valid_until: date(2027, 1, 31),
                bank_id: bank_id.to_vec(),
                bank_account: "DE89370400440532013000".into(),
                credit_id: credit_id.to_vec(),
                pan: "4111111111111111".into(),
                card_binding: *card_binding,
            };
            token::mint(&body, &bank_key, credit.public_key(), &mut rng).expect("a token")
        })
        .collect()
}

/// What a check found wrong: the card broke the response rules, or the host session lied about its state.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Violation(pub String);

/// Checks one response's shape: at least SW1 SW2, a plausible status word (61-6F xx or 9000), data only with
/// 9000, 61xx, 62xx or 63xx. Returns the status word.
pub fn check_shape(response: &[u8]) -> Result<u16, Violation> {
    let Some((sw, data)) = response
        .split_last_chunk::<2>()
        .map(|(d, sw)| (u16::from_be_bytes(*sw), d))
    else {
        return Err(Violation(format!(
            "response {response:02X?} has no status word"
        )));
    };
    let sw1 = (sw >> 8) as u8;
    if !(sw == 0x9000 || matches!(sw1, 0x61..=0x6F)) {
        return Err(Violation(format!("implausible status {sw:04X}")));
    }
    if !data.is_empty() && !matches!(sw1, 0x90 | 0x61 | 0x62 | 0x63) {
        return Err(Violation(format!(
            "{} bytes of data with status {sw:04X}",
            data.len()
        )));
    }
    Ok(sw)
}

struct Shared {
    card: Box<LinkcardCard>,
    /// What the shape check found on the wire since it was last read.
    violation: Option<Violation>,
}

/// The card in this process behind a shared handle: the harness and its session's channel are clones of one
/// handle, so a failed session opening (which consumes its channel) loses nothing. Every response that crosses
/// it is checked with [`check_shape`].
#[derive(Clone)]
pub struct SharedCard(Rc<RefCell<Shared>>);

impl std::fmt::Debug for SharedCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedCard")
    }
}

impl SharedCard {
    /// A card on `nvm`, seeded from the operating system and powered on.
    pub fn on(nvm: CardNvm) -> Self {
        let mut card = Box::new(Card::with_nvm(nvm));
        crate::seed_from_os(&mut card).expect("entropy");
        card.power_on();
        Self(Rc::new(RefCell::new(Shared {
            card,
            violation: None,
        })))
    }

    /// The card's memory (every other handle dropped).
    pub fn into_nvm(self) -> CardNvm {
        let shared = Rc::try_unwrap(self.0).ok().expect("the only handle");
        shared
            .into_inner()
            .card
            .into_nvm()
            .expect("the store opened")
    }

    /// The first rule broken on the wire since the last call.
    pub fn take_violation(&self) -> Option<Violation> {
        self.0.borrow_mut().violation.take()
    }
}

impl CardChannel for SharedCard {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let mut shared = self.0.borrow_mut();
        let mut out = vec![0u8; card_os::RESPONSE_BUFFER + 2];
        let n = shared.card.transmit(apdu, &mut out);
        out.truncate(n);
        if let Err(Violation(v)) = check_shape(&out) {
            shared
                .violation
                .get_or_insert(Violation(format!("{apdu:02X?}: {v}")));
        }
        Ok(out)
    }
    fn reset(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.power_on()
    }
    fn power_off(&mut self) -> Result<(), ChannelError> {
        self.0.borrow_mut().card.power_off();
        Ok(())
    }
    fn power_on(&mut self) -> Result<Vec<u8>, ChannelError> {
        let mut shared = self.0.borrow_mut();
        // Every power-on gets fresh randomness, as `seed_from_os` promises.
        crate::seed_from_os(&mut shared.card).expect("entropy");
        Ok(shared.card.power_on().as_bytes().to_vec())
    }
    fn describe(&self) -> String {
        "shared in-process card".into()
    }
}

/// Where a SELECT or a session goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The card manager (ISD).
    CardManager,
    /// The bank applet.
    Bank,
    /// The credit applet.
    Credit,
}

impl Target {
    /// Every target, for strategies and decoders to pick from.
    pub const ALL: [Self; 3] = [Self::CardManager, Self::Bank, Self::Credit];

    fn aid(self) -> &'static [u8] {
        const CARD_MANAGER: apdu_spec::aid::Aid = aid::CARD_MANAGER;
        const BANK: apdu_spec::aid::Aid = aid::BANK_APPLET;
        const CREDIT: apdu_spec::aid::Aid = aid::CREDIT_APPLET;
        match self {
            Self::CardManager => CARD_MANAGER.as_bytes(),
            Self::Bank => BANK.as_bytes(),
            Self::Credit => CREDIT.as_bytes(),
        }
    }
}

/// Who opens a session: an SCP11a OCE of one of the four roles, or the anonymous host of SCP11b.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opener {
    /// SCP11a, role issuer.
    Issuer,
    /// SCP11a, role bank-atm.
    BankAtm,
    /// SCP11a, role credit-pos.
    CreditPos,
    /// SCP11a, role token-delivery.
    TokenDelivery,
    /// SCP11b.
    Anonymous,
}

impl Opener {
    /// Every opener.
    pub const ALL: [Self; 5] = [
        Self::Issuer,
        Self::BankAtm,
        Self::CreditPos,
        Self::TokenDelivery,
        Self::Anonymous,
    ];
}

/// One step of a sequence.
#[derive(Clone, Debug)]
pub enum Op {
    /// SELECT `target`, then open a session with it (a session still open ends first).
    Open {
        /// The applet (its security domain) to authenticate to.
        target: Target,
        /// Who authenticates.
        opener: Opener,
        /// The level asked for.
        level: SecurityLevel,
    },
    /// One command APDU, unsecured form, through the open session (one extended APDU, or short ones chained),
    /// or plainly when none is open.
    Secured {
        /// The command.
        apdu: Vec<u8>,
        /// As one extended APDU.
        extended: bool,
    },
    /// Bytes sent to the card as they are, beside any session.
    Raw(Vec<u8>),
    /// A plain SELECT.
    Select(Target),
    /// Power off, power on: the card and the host both end the session.
    PowerCycle,
}

/// Runs [`Op`]s on a fresh card started from an [`IssuedCard`]'s memory and checks every answer.
#[derive(Debug)]
pub struct Harness<'a> {
    issued: &'a IssuedCard,
    card: SharedCard,
    session: Option<Scp11Session<SharedCard>>,
    /// Nothing but the session's own commands crossed the card since it opened (no raw bytes, no SELECT).
    clean: bool,
    /// An issuer session got a 9000: it may have changed a domain's keys or trust anchors.
    issuer_wrote: bool,
}

impl<'a> Harness<'a> {
    /// A card on a copy of `issued`'s memory, powered on, nothing selected.
    pub fn new(issued: &'a IssuedCard) -> Self {
        Self {
            issued,
            card: SharedCard::on(issued.nvm.clone()),
            session: None,
            clean: false,
            issuer_wrote: false,
        }
    }

    /// The security of the session open on the host side, if any.
    pub fn session(&self) -> Option<apdu_spec::scp11::Security> {
        self.session.as_ref().and_then(CardChannel::security)
    }

    /// Runs one step; returns the status word of its last answer when one came back.
    pub fn run(&mut self, op: &Op) -> Result<Option<u16>, Violation> {
        let sw = match op {
            Op::Open {
                target,
                opener,
                level,
            } => self.open(*target, *opener, *level)?,
            Op::Secured { apdu, extended } => self.secured(apdu, *extended)?.map(|r| status(&r)),
            Op::Raw(bytes) => {
                self.clean = false;
                self.plain(bytes)
            }
            Op::Select(target) => {
                self.clean = false;
                self.plain(&Select::aid(target.aid()).to_command().to_bytes().unwrap())
            }
            Op::PowerCycle => {
                self.power_cycle()?;
                None
            }
        };
        match self.card.take_violation() {
            Some(v) => Err(v),
            None => Ok(sw),
        }
    }

    fn plain(&mut self, apdu: &[u8]) -> Option<u16> {
        let r = self
            .card
            .transmit(apdu)
            .expect("the in-process card answers");
        (r.len() >= 2).then(|| status(&r))
    }

    fn open(
        &mut self,
        target: Target,
        opener: Opener,
        level: SecurityLevel,
    ) -> Result<Option<u16>, Violation> {
        self.session = None;
        let select = self.plain(&Select::aid(target.aid()).to_command().to_bytes().unwrap());
        if select != Some(0x9000) {
            return Ok(select);
        }
        let key = match target {
            Target::CardManager => &self.issued.card_manager_key,
            Target::Bank => &self.issued.bank_key,
            Target::Credit => &self.issued.credit_key,
        };
        let p = &self.issued.parties;
        let oce = match opener {
            Opener::Issuer => Some(&p.issuer),
            Opener::BankAtm => Some(&p.atm),
            Opener::CreditPos => Some(&p.pos),
            Opener::TokenDelivery => Some(&p.delivery),
            Opener::Anonymous => None,
        };
        let opened = match oce {
            Some(oce) => open_scp11a(self.card.clone(), key, oce, level, None),
            None => open_scp11b(self.card.clone(), key, level),
        };
        match opened {
            Ok(session) => {
                self.session = Some(session);
                self.clean = true;
                Ok(Some(0x9000))
            }
            // The card may refuse a step (its life cycle, a domain an issuer changed).
            Err(Scp11Error::Refused { status, .. }) => {
                Ok(Some(u16::from_be_bytes(status.to_bytes())))
            }
            Err(error) => Err(Violation(format!(
                "opening {opener:?} to {target:?}: {error:?}"
            ))),
        }
    }

    /// Sends `apdu` through the session (plainly without one); returns the plain response if one came back.
    fn secured(&mut self, apdu: &[u8], extended: bool) -> Result<Option<Vec<u8>>, Violation> {
        let Some(session) = self.session.as_mut() else {
            self.clean = false;
            return Ok(Some(
                self.card
                    .transmit(apdu)
                    .expect("the in-process card answers"),
            ));
        };
        let result = if extended {
            session.transmit_secured_extended(apdu)
        } else {
            session.transmit_secured(apdu)
        };
        match result {
            Ok(plain) => {
                let sw = check_shape(&plain)
                    .map_err(|Violation(v)| Violation(format!("secured {apdu:02X?}: {v}")))?;
                if sw == 0x6982 && session.is_open() {
                    return Err(Violation("6982 left the host session open".into()));
                }
                if sw == 0x9000 && Scp11Session::security(session).role == Some(Role::Issuer) {
                    self.issuer_wrote = true;
                }
                if !session.is_open() {
                    self.session = None;
                }
                Ok(Some(plain))
            }
            // The session could not secure the command (its bytes, its length): nothing went out.
            Err(_) if session.is_open() => Ok(None),
            // An applet's own command in a session nobody disturbed: its answer must open.
            Err(error) if self.clean && is_applet_command(apdu) => Err(Violation(format!(
                "secured {apdu:02X?} in an undisturbed session: {error:?}"
            ))),
            Err(_) => {
                self.session = None;
                Ok(None)
            }
        }
    }

    fn power_cycle(&mut self) -> Result<(), Violation> {
        match self.session.as_mut() {
            Some(session) => {
                session.power_off().expect("power off");
                session.power_on().expect("power on");
                if session.is_open() {
                    return Err(Violation("the session survived a power cycle".into()));
                }
            }
            None => {
                self.card.power_off().expect("power off");
                self.card.power_on().expect("power on");
            }
        }
        self.session = None;
        Ok(())
    }
}

/// A command of the bank or the credit applet on the basic channel (not SELECT or MANAGE CHANNEL, which may
/// end a session on the card's side).
fn is_applet_command(apdu: &[u8]) -> bool {
    matches!(
        apdu,
        [
            0x00 | 0x80,
            0x20 | 0x22 | 0x24 | 0x26 | 0x28 | 0x30 | 0x34 | 0x36 | 0x38,
            ..
        ]
    )
}

fn status(response: &[u8]) -> u16 {
    match response {
        [.., sw1, sw2] => u16::from_be_bytes([*sw1, *sw2]),
        _ => 0,
    }
}

impl Harness<'_> {
    /// What must hold after any sequence, checked on the card after a power cycle: a credit-POS session opens
    /// and PRESENT answers an error or a well-formed presentation of this credit company's tokens; a bank-ATM
    /// session opens and LIST TOKENS answers at most 8 distinct clear headers of this bank. Sessions may fail to
    /// open only after an issuer session changed something.
    pub fn check_invariants(&mut self) -> Result<(), Violation> {
        self.power_cycle()?;
        if self.open_for_check(Target::Credit, Opener::CreditPos)? {
            let present = credit::CreditCommand::Present(Presentation {
                nonce: &[0x4E; credit::NONCE_LENGTH],
                amount: 4_980,
                currency: 978,
            });
            let r = self.secured(&present.to_command().to_extended().unwrap(), true)?;
            let r = r.ok_or_else(|| Violation("PRESENT got no answer".into()))?;
            if status(&r) == 0x9000 {
                check_presented(&r[..r.len() - 2])?;
            }
        }
        if self.open_for_check(Target::Bank, Opener::BankAtm)? {
            let list = bank::BankCommand::ListTokens
                .to_command()
                .to_extended()
                .unwrap();
            let r = self.secured(&list, false)?;
            let r = r.ok_or_else(|| Violation("LIST TOKENS got no answer".into()))?;
            if status(&r) != 0x9000 {
                return Err(Violation(format!("LIST TOKENS: {r:02X?}")));
            }
            check_listed(&r[..r.len() - 2])?;
        }
        match self.card.take_violation() {
            Some(v) => Err(v),
            None => Ok(()),
        }
    }

    /// Opens a full session for a check; `false` if the card refused and an issuer may have caused it.
    fn open_for_check(&mut self, target: Target, opener: Opener) -> Result<bool, Violation> {
        match self.open(target, opener, SecurityLevel::FULL)? {
            Some(0x9000) => Ok(true),
            _ if self.issuer_wrote => Ok(false),
            other => Err(Violation(format!("{opener:?} to {target:?}: {other:04X?}"))),
        }
    }
}

/// PRESENT's data: card data, the ATC, tokens of this credit company, the signature.
fn check_presented(mut data: &[u8]) -> Result<(), Violation> {
    let (mut atc, mut signature) = (false, false);
    while !data.is_empty() {
        let (field, rest) =
            tlv::read(data).map_err(|e| Violation(format!("PRESENT: {e:?} at {data:02X?}")))?;
        let raw = &data[..data.len() - rest.len()];
        match field.tag {
            0xC1..=0xC5 => {}
            0xC8 => atc = field.value.len() == credit::ATC_LENGTH,
            0x5F37 => signature = field.value.len() == credit::SIGNATURE_LENGTH,
            0x7F71 => {
                let envelope = apdu_spec::token::Envelope::parse(raw).map_err(|e| {
                    Violation(format!("PRESENT: a token that does not parse: {e:?}"))
                })?;
                if envelope.header.credit_id != CREDIT_ID {
                    return Err(Violation("PRESENT: another credit company's token".into()));
                }
            }
            other => return Err(Violation(format!("PRESENT: tag {other:X}"))),
        }
        data = rest;
    }
    if atc && signature {
        Ok(())
    } else {
        Err(Violation("PRESENT without an ATC or a signature".into()))
    }
}

/// LIST TOKENS' data: clear headers (`A1 …`) of this bank, distinct, at most 8.
fn check_listed(mut data: &[u8]) -> Result<(), Violation> {
    let mut ids = Vec::new();
    while !data.is_empty() {
        let (field, rest) =
            tlv::read(data).map_err(|e| Violation(format!("LIST TOKENS: {e:?} at {data:02X?}")))?;
        let header = ClearHeader::parse(field.value)
            .ok()
            .filter(|_| field.tag == 0xA1)
            .ok_or_else(|| Violation(format!("LIST TOKENS: no clear header: {data:02X?}")))?;
        if header.bank_id != BANK_ID || ids.contains(header.token_id) {
            return Err(Violation(format!("LIST TOKENS: {header:?}")));
        }
        ids.push(*header.token_id);
        data = rest;
    }
    if ids.len() > 8 {
        return Err(Violation(format!("LIST TOKENS: {} tokens", ids.len())));
    }
    Ok(())
}
