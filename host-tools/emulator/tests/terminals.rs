//! The terminals (crate `terminal`): the ATM and the POS on an issued card in this process (`emulator::testing`: both applets, a PIN, the bank
//! applet sharing with the credit applet), with stand-in back ends that do what the bank and credit systems do
//! with the messages: the bank mints real tokens and tracks its holds; the credit system verifies the card's
//! signature, opens the tokens and approves what the credit and the tokens cover.

use std::collections::BTreeMap;

use apdu_spec::aid;
use apdu_spec::credit::{Presentation, signed_message};
use card_os::layout::CardNvm;
use emulator::InProcessChannel;
use emulator::testing::{self, BANK_ID, CREDIT_ID, IssuedCard, PIN};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha256};
use terminal::atm::{self, CardHolder, Delivery, DepositHost, MintedToken};
use terminal::pos::{
    self, AuthorizationAnswer, AuthorizationHost, AuthorizationMessage, PinRefused, Purchase,
};
use terminal::{TerminalError, TerminalIdentity};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refusal(String);

/// The bank: mints a token for the card's holder, then posts or releases the hold.
struct Bank {
    amount: u64,
    bank_id: Vec<u8>,
    holds: BTreeMap<[u8; 16], &'static str>,
    next_id: u8,
}

impl Bank {
    fn new(amount: u64) -> Self {
        Self {
            amount,
            bank_id: BANK_ID.to_vec(),
            holds: BTreeMap::new(),
            next_id: 0,
        }
    }
}

impl DepositHost for Bank {
    type Error = Refusal;
    fn deposit(&mut self, holder: &CardHolder) -> Result<MintedToken, Refusal> {
        if holder.bank_id != BANK_ID {
            return Err(Refusal("not our customer".into()));
        }
        self.next_id += 1;
        let mut token_id = *b"ATM-DEPOSIT-0000";
        token_id[15] = self.next_id;
        let body = token::TokenBody {
            user_name: holder.user_name.clone(),
            user_id: holder.user_id.clone(),
            sum: self.amount,
            currency: 978,
            deposit_date: testing::today(),
            token_id,
            valid_from: testing::today(),
            valid_until: token::Date::from_ymd(2027, 1, 31).unwrap(),
            bank_id: self.bank_id.clone(),
            bank_account: holder.account.clone(),
            credit_id: CREDIT_ID.to_vec(),
            pan: "4111111111111111".into(),
            card_binding: testing::binding(),
        };
        let token = token::mint(
            &body,
            &bank_key(),
            credit_key().public_key(),
            &mut token::os_rng().unwrap(),
        )
        .map_err(|e| Refusal(e.to_string()))?;
        self.holds.insert(token_id, "held");
        Ok(MintedToken { token, token_id })
    }
    fn confirm(&mut self, token_id: &[u8; 16]) -> Result<(), Refusal> {
        self.holds.insert(*token_id, "posted");
        Ok(())
    }
    fn cancel(&mut self, token_id: &[u8; 16]) -> Result<(), Refusal> {
        self.holds.insert(*token_id, "released");
        Ok(())
    }
}

use testing::{bank_token_key as bank_key, credit_hpke_key as credit_key};

/// The credit system: a credit line of `limit`, raised at once by every token it accepts.
struct Credit {
    limit: u64,
    spent: Vec<[u8; 16]>,
}

impl AuthorizationHost for Credit {
    type Error = Refusal;
    fn authorize(&mut self, m: &AuthorizationMessage) -> Result<AuthorizationAnswer, Refusal> {
        let card = SigningKey::from_slice(&testing::SIGNING_KEY).unwrap();
        let digests: Vec<[u8; 32]> = m.tokens.iter().map(|t| Sha256::digest(t).into()).collect();
        let presentation = Presentation {
            nonce: &m.nonce,
            amount: m.amount,
            currency: m.currency,
        };
        let signed = signed_message(&presentation, m.atc, &digests);
        card.verifying_key()
            .verify(&signed, &Signature::from_slice(&m.signature).unwrap())
            .map_err(|_| Refusal("bad card signature".into()))?;
        let mut recipient = token::CreditRecipient::new(CREDIT_ID);
        recipient.add_key(credit_key());
        let mut banks = token::BankKeyring::new();
        banks.insert(BANK_ID, *bank_key().verifying_key());
        let mut accepted = Vec::new();
        for t in &m.tokens {
            let body = token::open(
                t,
                &recipient,
                &banks,
                testing::today(),
                Some(&testing::binding()),
            )
            .map_err(|e| Refusal(e.to_string()))?;
            if !self.spent.contains(&body.token_id) {
                self.spent.push(body.token_id);
                self.limit += body.sum;
                accepted.push(body.token_id);
            }
        }
        let approved = m.amount <= self.limit;
        if approved {
            self.limit -= m.amount;
        }
        Ok(AuthorizationAnswer {
            approved,
            accepted_tokens: accepted,
            message: if approved {
                "approved".into()
            } else {
                "insufficient credit".into()
            },
        })
    }
}

struct World {
    issued: IssuedCard,
    card: InProcessChannel<CardNvm>,
}

fn world() -> World {
    let issued = testing::issue_payment_card();
    let card = InProcessChannel::on(issued.nvm.clone()).unwrap();
    World { issued, card }
}

fn identity<'a>(
    issuer: &'a apdu_spec::scp11::cert::Issuer<'a>,
    oce: &'a card_client::scp11::OceCredentials,
) -> TerminalIdentity<'a> {
    TerminalIdentity {
        card_ca: issuer,
        today: testing::today(),
        oce,
    }
}

#[test]
fn fig_14_deposit_then_a_declined_purchase_is_approved_at_once() {
    let mut w = world();
    let ca = w.issued.parties.card_ca.issuer();
    let pos_id = identity(&ca, &w.issued.parties.pos);
    let mut credit = Credit {
        limit: 10_000,
        spent: Vec::new(),
    };
    let purchase = Purchase {
        amount: 30_000,
        currency: 978,
        pin: Some(PIN),
    };
    let first = pos::purchase(
        &mut w.card,
        aid::CREDIT_APPLET.as_bytes(),
        &pos_id,
        &purchase,
        &mut credit,
    )
    .unwrap()
    .unwrap();
    assert!(!first.answer.approved);
    assert_eq!(first.message.pan, "4111111111111111");
    assert_eq!(
        first.apdus, 7,
        "SELECT, GET DATA, PSO, MUTUAL AUTHENTICATE, VERIFY, PRESENT, CONFIRM"
    );

    let mut bank = Bank::new(25_000);
    let atm_id = identity(&ca, &w.issued.parties.atm);
    let receipt = atm::deposit(
        &mut w.card,
        aid::BANK_APPLET.as_bytes(),
        &atm_id,
        Delivery::BankApplet,
        &mut bank,
    )
    .unwrap();
    assert_eq!(receipt.stored_in, "bank applet");
    assert_eq!(receipt.holder.user_id, "user-42");
    assert_eq!(bank.holds[&receipt.token_id], "posted");

    let second = pos::purchase(
        &mut w.card,
        aid::CREDIT_APPLET.as_bytes(),
        &pos_id,
        &purchase,
        &mut credit,
    )
    .unwrap()
    .unwrap();
    assert!(
        second.answer.approved,
        "the token raised the credit at once"
    );
    assert_eq!(second.answer.accepted_tokens, [receipt.token_id]);
    assert_eq!(second.message.atc, first.message.atc + 1);
    // Confirmed: the card no longer presents it.
    let third = pos::purchase(
        &mut w.card,
        aid::CREDIT_APPLET.as_bytes(),
        &pos_id,
        &Purchase {
            amount: 1,
            ..purchase
        },
        &mut credit,
    )
    .unwrap()
    .unwrap();
    assert!(third.message.tokens.is_empty());
}

#[test]
fn fig_15_deposit_straight_into_the_credit_applet() {
    let mut w = world();
    let ca = w.issued.parties.card_ca.issuer();
    let mut bank = Bank::new(5_000);
    let delivery = Delivery::CreditApplet {
        instance: aid::CREDIT_APPLET.as_bytes(),
        delivery: &w.issued.parties.delivery,
    };
    let receipt = atm::deposit(
        &mut w.card,
        aid::BANK_APPLET.as_bytes(),
        &identity(&ca, &w.issued.parties.atm),
        delivery,
        &mut bank,
    )
    .unwrap();
    assert_eq!(receipt.stored_in, "credit applet");
    let mut credit = Credit {
        limit: 0,
        spent: Vec::new(),
    };
    let purchase = Purchase {
        amount: 5_000,
        currency: 978,
        pin: Some(PIN),
    };
    let sale = pos::purchase(
        &mut w.card,
        aid::CREDIT_APPLET.as_bytes(),
        &identity(&ca, &w.issued.parties.pos),
        &purchase,
        &mut credit,
    )
    .unwrap()
    .unwrap();
    assert!(sale.answer.approved);
    assert_eq!(sale.answer.accepted_tokens, [receipt.token_id]);
}

#[test]
fn a_token_the_card_refuses_is_released_by_the_bank() {
    let mut w = world();
    let ca = w.issued.parties.card_ca.issuer();
    let mut bank = Bank::new(1_000);
    // A token naming another bank: the bank applet refuses it (6A80), so the hold must go back.
    bank.bank_id = b"BANK0002".to_vec();
    let refused = atm::deposit(
        &mut w.card,
        aid::BANK_APPLET.as_bytes(),
        &identity(&ca, &w.issued.parties.atm),
        Delivery::BankApplet,
        &mut bank,
    );
    assert!(
        matches!(refused, Err(TerminalError::Card(_))),
        "{refused:?}"
    );
    assert_eq!(bank.holds.values().collect::<Vec<_>>(), [&"released"]);
}

#[test]
fn a_wrong_pin_stops_the_purchase_before_present() {
    let mut w = world();
    let ca = w.issued.parties.card_ca.issuer();
    let mut credit = Credit {
        limit: 100,
        spent: Vec::new(),
    };
    let id = identity(&ca, &w.issued.parties.pos);
    let wrong = Purchase {
        amount: 10,
        currency: 978,
        pin: Some(b"9999"),
    };
    let refused = pos::purchase(
        &mut w.card,
        aid::CREDIT_APPLET.as_bytes(),
        &id,
        &wrong,
        &mut credit,
    )
    .unwrap();
    assert_eq!(refused.unwrap_err(), PinRefused::Wrong(2));
    let right = Purchase {
        pin: Some(PIN),
        ..wrong
    };
    let sale = pos::purchase(
        &mut w.card,
        aid::CREDIT_APPLET.as_bytes(),
        &id,
        &right,
        &mut credit,
    )
    .unwrap()
    .unwrap();
    // The wrong try used no ATC.
    assert_eq!(sale.message.atc, 1);
    assert_eq!(
        pos::pan(&sale.message.card_data).as_deref(),
        Some("4111111111111111")
    );
}
