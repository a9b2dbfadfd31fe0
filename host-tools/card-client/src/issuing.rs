//! Issuing a payment card (patent Fig. 6 and 9): the card manager's domain personalized and the card taken to
//! SECURED, then, in an issuer session, the bank and the credit applet installed (each its own security domain,
//! with its own key, certificate and trust anchors) and personalized with their data. Over any
//! [`CardChannel`] reaching a card in OP_READY (fresh from the factory).
//!
//! The steps, in order (each refused step stops the issue with the card's refusal):
//! 1. SELECT the card manager; its domain personalized plainly ([`CardManagerSession::personalize`]): card date,
//!    key pair generated on the card, certificate from the card CA, trust anchors;
//! 2. SET STATUS INITIALIZED, then SECURED: from now on every card-manager command needs an issuer session;
//! 3. per applet, in an SCP11a issuer session with the card manager: INSTALL [for install and make
//!    selectable], then INSTALL [for personalization] and STORE DATA for its domain;
//! 4. per applet, an SCP11a issuer session with the applet itself: its PERSONALIZE (the credit applet's with
//!    C-DEC: it carries the signing key).

use apdu_spec::aid;
use apdu_spec::gp::{CardLifeCycle, InstallRequest};
use apdu_spec::scp11::cert::Date;
use apdu_spec::scp11::session::{PublicKeyBytes, SecurityLevel};
use apdu_spec::{bank, credit};

use crate::bank::BankAppletSession;
use crate::card_manager::{CardManagerError, CardManagerSession};
use crate::channel::CardChannel;
use crate::credit::CreditAppletSession;
use crate::scp11::{Anchor, Authority, OceCredentials, Personalization, open_scp11a};

/// One applet of the card: its instance AID, its domain's certificate subject and trust anchors (the CAs
/// whose terminals it accepts), and its own PERSONALIZE data.
#[derive(Clone, Copy, Debug)]
pub struct AppletIssue<'a, P> {
    /// The instance AID.
    pub instance: &'a [u8],
    /// The subject of its domain certificate.
    pub subject: &'a [u8],
    /// The CAs whose OCE certificates its domain accepts (the issuer's among them, to personalize it).
    pub anchors: &'a [Anchor],
    /// Its PERSONALIZE data.
    pub data: P,
}

/// What to put on the card.
#[derive(Clone, Copy, Debug)]
pub struct CardIssue<'a> {
    /// The CA that certifies every domain key on the card.
    pub card_authority: &'a Authority,
    /// The card manager's certificate subject (the card's serial, say).
    pub card_subject: &'a [u8],
    /// The CAs the card manager accepts (the issuer's among them).
    pub card_anchors: &'a [Anchor],
    /// The issuer's OCE credentials (role `issuer`), for the sessions after SECURED.
    pub issuer: &'a OceCredentials,
    /// The card date set at issuance, and the certificates' effective date.
    pub today: Date,
    /// When the card's certificates expire.
    pub expiration: Date,
    /// The bank applet, if the card carries one.
    pub bank: Option<AppletIssue<'a, bank::Personalization<'a>>>,
    /// The credit applet, if the card carries one.
    pub credit: Option<AppletIssue<'a, credit::Personalization<'a>>>,
}

/// The public keys an issued card answers with, for the terminals that will talk to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCard {
    /// The card manager's PK.SD.ECKA.
    pub card_key: PublicKeyBytes,
    /// The bank applet's PK.SD.ECKA (SCP11 with the ATM).
    pub bank_key: Option<PublicKeyBytes>,
    /// The credit applet's PK.SD.ECKA (SCP11 with the POS and the bank's delivery).
    pub credit_key: Option<PublicKeyBytes>,
    /// The credit applet's public signing key, uncompressed SEC1: SHA-256 of it is the card binding tokens carry.
    pub credit_signing_key: Option<Vec<u8>>,
}

/// Issues a factory-fresh card as `issue` says (see the module documentation for the steps).
pub fn issue_card<C: CardChannel>(
    channel: &mut C,
    issue: &CardIssue<'_>,
) -> Result<IssuedCard, CardManagerError> {
    let mut card_manager = CardManagerSession::select(&mut *channel)?;
    let card_key = card_manager.personalize(&Personalization {
        instance: None,
        card_authority: issue.card_authority,
        subject: issue.card_subject,
        anchors: issue.card_anchors,
        today: issue.today,
        expiration: issue.expiration,
    })?;
    card_manager.set_card_state(CardLifeCycle::Initialized)?;
    card_manager.set_card_state(CardLifeCycle::Secured)?;
    let mut issued = IssuedCard {
        card_key,
        bank_key: None,
        credit_key: None,
        credit_signing_key: None,
    };
    if let Some(bank) = &issue.bank {
        let module = (aid::BANK_LOAD_FILE, aid::BANK_MODULE);
        let key = install_applet(channel, issue, &issued.card_key, bank, module)?;
        let selected = BankAppletSession::select(&mut *channel, bank.instance)?.into_channel();
        let mut session = BankAppletSession::over_selected(open_scp11a(
            selected,
            &key,
            issue.issuer,
            SecurityLevel::FULL,
            None,
        )?);
        session.personalize(&bank.data)?;
        issued.bank_key = Some(key);
    }
    if let Some(credit) = &issue.credit {
        let module = (aid::CREDIT_LOAD_FILE, aid::CREDIT_MODULE);
        let key = install_applet(channel, issue, &issued.card_key, credit, module)?;
        let selected = CreditAppletSession::select(&mut *channel, credit.instance)?.into_channel();
        let mut session = CreditAppletSession::over_selected(open_scp11a(
            selected,
            &key,
            issue.issuer,
            SecurityLevel::FULL,
            None,
        )?);
        issued.credit_signing_key = Some(session.personalize(&credit.data)?);
        issued.credit_key = Some(key);
    }
    Ok(issued)
}

/// Installs one applet instance of the module `(load_file, module)` and personalizes its domain, in an issuer
/// session with the card manager of a SECURED card whose key is `card_key`; returns the domain's key. (Its own
/// PERSONALIZE is the applet's session's.)
pub fn install_applet<C: CardChannel, P>(
    channel: &mut C,
    issue: &CardIssue<'_>,
    card_key: &PublicKeyBytes,
    applet: &AppletIssue<'_, P>,
    (load_file, module): (aid::Aid, aid::Aid),
) -> Result<PublicKeyBytes, CardManagerError> {
    let selected = CardManagerSession::select(&mut *channel)?.into_channel();
    let mut session = CardManagerSession::over_selected(open_scp11a(
        selected,
        card_key,
        issue.issuer,
        SecurityLevel::FULL,
        None,
    )?);
    session.install(&InstallRequest {
        install: true,
        make_selectable: true,
        load_file: load_file.as_bytes(),
        module: module.as_bytes(),
        application: applet.instance,
        privileges: &[0x00],
        applet_parameters: &[],
    })?;
    session.personalize(&Personalization {
        instance: Some(applet.instance),
        card_authority: issue.card_authority,
        subject: applet.subject,
        anchors: applet.anchors,
        today: issue.today,
        expiration: issue.expiration,
    })
}
