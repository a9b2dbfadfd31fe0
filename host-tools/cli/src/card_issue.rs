//! `linkcard card issue`: the bank (the issuer) installs and personalizes both applets on a new in-process card,
//! and the credit company registers the card's signing key (patent Fig. 6, 9).

use anyhow::Context as _;
use apdu_spec::aid;
use card_client::CardChannel;
use card_client::issuing::{AppletIssue, CardIssue, issue_card};
use card_client::scp11::date_from_today;
use clap::Args;
use contract::BankKeys;
use credit::NewCard;
use emulator::InProcessChannel;
use emulator::file_nvm::FileNvm;
use p256::ecdsa::SigningKey;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::datadir::{BankSide, CreditSide, DataDir, IssuedCard};
use crate::hosts::request_id;
use crate::report::{JsonFlag, emit};

/// How long a card is valid.
const CARD_DAYS: i64 = 4 * 365;

pub const ISSUE_AFTER_HELP: &str = "\
Example:
    linkcard card issue --card hanako --user U-000042 --cardholder CH-000042 --pan 4111111111111111 --pin 2468
Needs the bank and the credit company in the data directory, their contract, the bank's customer and the
credit company's cardholder. The card's memory goes to DIR/cards/NAME.nvm (never over an existing card).";

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The new card's name: its memory is DIR/cards/NAME.nvm.
    #[arg(long)]
    card: String,
    /// The bank's customer the card belongs to.
    #[arg(long)]
    user: String,
    /// The credit company's cardholder the card belongs to.
    #[arg(long)]
    cardholder: String,
    /// The card number (12-19 digits).
    #[arg(long, value_parser = parse_pan)]
    pan: String,
    /// The cardholder PIN (4-12 digits); required when the contract's cards ask for one.
    #[arg(long, value_parser = parse_pin)]
    pin: Option<String>,
    #[command(flatten)]
    json: JsonFlag,
}

fn parse_pan(text: &str) -> Result<String, String> {
    let digits = text.bytes().all(|b| b.is_ascii_digit());
    if digits && (12..=19).contains(&text.len()) {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not a card number: 12-19 digits"))
    }
}

fn parse_pin(text: &str) -> Result<String, String> {
    let digits = text.bytes().all(|b| b.is_ascii_digit());
    if digits && (4..=12).contains(&text.len()) {
        Ok(text.to_owned())
    } else {
        Err("a PIN is 4-12 digits".into())
    }
}

/// The PAN as the credit applet stores it: BCD, an odd length padded with `F`.
fn pan_bcd(pan: &str) -> Vec<u8> {
    let mut nibbles: Vec<u8> = pan.bytes().map(|b| b - b'0').collect();
    if nibbles.len() % 2 == 1 {
        nibbles.push(0x0F);
    }
    nibbles
        .chunks(2)
        .map(|pair| pair[0] << 4 | pair[1])
        .collect()
}

pub fn issue(data: &DataDir, args: &IssueArgs) -> anyhow::Result<u8> {
    let mut bank = data.bank()?;
    let mut credit = data.credit()?;
    let path = data.card_file(&args.card)?;
    anyhow::ensure!(
        !path.exists() && !data.issued_cards()?.contains_key(&args.card),
        "card {:?} exists already ({}): choose another name",
        args.card,
        path.display()
    );
    // Everything checked before the card file is made: an error leaves nothing behind.
    let customer = bank.system.customer(&args.user)?;
    credit.system.account(&args.cardholder)?;
    let pin_required = contract_of(&bank, &credit)?
        .credit_applet()
        .pin_try_limit
        .is_some();
    match (pin_required, &args.pin) {
        (true, None) => anyhow::bail!("the contract's cards ask for a PIN: give --pin DIGITS"),
        (false, Some(_)) => anyhow::bail!("the contract's cards ask no PIN: leave out --pin"),
        _ => {}
    }
    let parent = path.parent().context("a card file has a directory")?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let issued = personalize_and_register(&mut bank, &mut credit, &customer, args, &path);
    let card_binding = match issued {
        Ok(binding) => binding,
        Err(error) => {
            // The file is ours (it did not exist): a half-personalized card is of no use.
            let _ = std::fs::remove_file(&path);
            return Err(error);
        }
    };
    data.record_issued_card(
        &args.card,
        IssuedCard {
            pan: args.pan.clone(),
            card_binding: hex::encode(card_binding),
            user_id: args.user.clone(),
            cardholder_id: args.cardholder.clone(),
        },
    )?;
    emit(
        args.json,
        &format!(
            "card {} ({}) issued to {} with the bank applet and the credit applet; its memory is {}",
            args.card,
            args.pan,
            customer.name,
            path.display()
        ),
        &json!({"card": args.card, "pan": args.pan, "user": args.user, "cardholder": args.cardholder,
                "file": path.display().to_string(), "card_binding": hex::encode(card_binding)}),
    );
    Ok(crate::EXIT_OK)
}

fn contract_of(bank: &BankSide, credit: &CreditSide) -> anyhow::Result<contract::BankContract> {
    let credit_id = credit.settings.id.as_bytes();
    bank.keys
        .load_contract(credit_id, date_from_today(0))
        .with_context(|| {
            format!(
                "no contract in force between bank {} and credit company {}: run `linkcard bank offer`, `linkcard credit accept` and `linkcard bank import-acceptance` first",
                bank.settings.id, credit.settings.id
            )
        })
}

/// What goes on one card besides the organisations' keys.
pub struct CardData<'a> {
    /// The bank's customer the card is for.
    pub customer: &'a bank::NewCustomer,
    /// The card number, as digits.
    pub pan: &'a str,
    /// The cardholder at the credit company.
    pub cardholder_id: &'a str,
    /// The cardholder PIN, if the card has one (the contract gives its try limit).
    pub pin: Option<&'a str>,
    /// The credit applet's signing scalar.
    pub signing_key: &'a [u8; 32],
    /// The card's last valid day.
    pub expiry: contract::Date,
}

/// Personalizes both applets on the card in `path` and registers its signing key with the credit company;
/// the card binding (SHA-256 of that key) the bank's tokens are bound to.
fn personalize_and_register(
    bank: &mut BankSide,
    credit: &mut CreditSide,
    customer: &bank::NewCustomer,
    args: &IssueArgs,
    path: &std::path::Path,
) -> anyhow::Result<[u8; 32]> {
    let contract = contract_of(bank, credit)?;
    let expiry = date_from_today(CARD_DAYS);
    let mut scalar = [0u8; 32];
    getrandom::fill(&mut scalar).map_err(card_client::EntropyError::from)?;
    let signing = SigningKey::from_slice(&scalar).context("a card signing key")?;
    let card = CardData {
        customer,
        pan: &args.pan,
        cardholder_id: &args.cardholder,
        pin: args.pin.as_deref(),
        signing_key: &scalar,
        expiry,
    };
    let personalized = InProcessChannel::on(FileNvm::open_card(path)?)
        .map_err(anyhow::Error::from)
        .and_then(|mut channel| {
            personalize(
                &mut channel,
                &bank.keys,
                credit.settings.id.as_bytes(),
                &contract,
                &card,
            )
        });
    scalar.fill(0);
    personalized?;
    credit.system.add_card(
        request_id(),
        &NewCard {
            pan: args.pan.clone(),
            expiry,
            cardholder_id: args.cardholder.clone(),
            signing_key: *signing.verifying_key(),
        },
    )?;
    // The statements of this card's cardholder are collected from the customer's account at this bank.
    credit.system.set_mandate(
        request_id(),
        &args.cardholder,
        &mandate_for(bank.settings.id.as_bytes(), customer, &args.cardholder),
    )?;
    let public = signing.verifying_key().to_sec1_point(false);
    Ok(Sha256::digest(public.as_bytes()).into())
}

/// The direct-debit mandate a card's issue gives the credit company: the customer's account at the bank, under
/// the reference `M-<cardholder>` (or `M-` and a hash, when that is not a short printable id).
pub fn mandate_for(
    bank_id: &[u8],
    customer: &bank::NewCustomer,
    cardholder_id: &str,
) -> credit::Mandate {
    let plain = format!("M-{cardholder_id}");
    let mandate_id = if plain.len() <= 35 && plain.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
        plain
    } else {
        format!(
            "M-{}",
            hex::encode(&Sha256::digest(cardholder_id.as_bytes())[..8])
        )
    };
    credit::Mandate {
        bank_id: bank_id.to_vec(),
        user_id: customer.user_id.clone(),
        account_number: customer.account_number.clone(),
        mandate_id,
    }
}

/// Installs and personalizes the bank applet and the credit applet on the factory card in `channel`, as the
/// bank's issuer (`linkcard card issue`, and the demo).
pub fn personalize(
    channel: &mut impl CardChannel,
    bank: &BankKeys,
    credit_id: &[u8],
    contract: &contract::BankContract,
    card: &CardData<'_>,
) -> anyhow::Result<()> {
    let issuer_anchor = bank.organisation().oce_ca().anchor();
    let bank_anchors = [issuer_anchor.clone()];
    let credit_anchors = [issuer_anchor, contract.oce_ca().clone()];
    let customer = card.customer;
    let pan = pan_bcd(card.pan);
    let card_subject = format!("card {}", &card.pan[card.pan.len().saturating_sub(4)..]);
    let pin_try_limit = contract.credit_applet().pin_try_limit;
    let issue = CardIssue {
        card_authority: bank.card_ca(),
        card_subject: card_subject.as_bytes(),
        card_anchors: &bank_anchors,
        issuer: bank.issuer(),
        today: date_from_today(0),
        expiration: card.expiry,
        bank: Some(AppletIssue {
            instance: aid::BANK_APPLET.as_bytes(),
            subject: b"bank applet",
            anchors: &bank_anchors,
            data: apdu_spec::bank::Personalization {
                bank_id: bank.id(),
                account: customer.account_number.as_bytes(),
                user_id: customer.user_id.as_bytes(),
                user_name: customer.name.as_bytes(),
                credit_applet: aid::CREDIT_APPLET.as_bytes(),
            },
        }),
        credit: Some(AppletIssue {
            instance: aid::CREDIT_APPLET.as_bytes(),
            subject: b"credit applet",
            anchors: &credit_anchors,
            data: apdu_spec::credit::Personalization {
                credit_id,
                pan: &pan,
                // YYMM in BCD, from the date's CC YY MM DD.
                expiry: &[card.expiry.0[1], card.expiry.0[2]],
                cardholder_id: card.cardholder_id.as_bytes(),
                status: 0,
                atc_limit: contract.credit_applet().atc_limit,
                signing_key: card.signing_key,
                bank_applet: Some(aid::BANK_APPLET.as_bytes()),
                pin: card.pin.zip(pin_try_limit).map(|(pin, limit)| {
                    apdu_spec::credit::CardholderPin {
                        digits: pin.as_bytes(),
                        try_limit: limit,
                    }
                }),
            },
        }),
    };
    issue_card(channel, &issue).context("the card refused its personalization")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pan_packs_into_bcd_padded_with_f() {
        assert_eq!(
            pan_bcd("4111111111111111"),
            [0x41, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11]
        );
        assert_eq!(
            pan_bcd("1234567890123"),
            [0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x3F]
        );
    }
}
