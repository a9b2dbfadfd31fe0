//! `linkcard atm …` and `linkcard pos …`: the terminals (patent Fig. 7, 10, 14, 15), driving an in-process card
//! from the data directory or a card in a PC/SC reader, with the organisations' back ends in this process.

use std::collections::BTreeMap;

use anyhow::Context as _;
use apdu_spec::aid;
use bank::{BankError, CardRef, Source};
use card_client::CardChannel;
use card_client::scp11::{OceCredentials, date_from_today, oce_paths};
use clap::{Args, Subcommand, ValueEnum};
use contract::{Organisation, Validity};
use emulator::InProcessChannel;
use emulator::file_nvm::FileNvm;
use ledger::SqliteStore;
use serde_json::json;
use terminal::TerminalIdentity;
use terminal::atm::{self, CardHolder, Delivery, DepositHost, MintedToken};
use terminal::pos::{self, Purchase};

use crate::datadir::{DataDir, IssuedCard};
use crate::hosts::{BankHost, CreditHost};
use crate::money;
use crate::report::{JsonFlag, emit, now};

/// The terminal credentials' validity, from their first use.
const TERMINAL_DAYS: i64 = 5 * 365;
const ATM_NAME: &str = "atm-1";
const POS_NAME: &str = "pos-1";

/// Which card the terminal talks to.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct CardChoice {
    /// The in-process card NAME of the data directory (DIR/cards/NAME.nvm, made by `linkcard card issue`).
    #[arg(long, value_name = "NAME")]
    card: Option<String>,
    /// The card in this PC/SC reader (number, name, or unique part of a name).
    #[arg(long, value_name = "R")]
    reader: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AtmCommand {
    /// Pay a credit bill early (Fig. 7): the bank pools the amount and stores a token on the card.
    #[command(
        after_help = "Examples:\n    linkcard atm deposit --card hanako --amount 25,000\n    linkcard atm deposit --reader 0 --amount 25000 --from account --direct\nWithout --direct the token goes into the bank applet and the credit applet takes it at the next\npurchase (Fig. 14); with --direct the ATM stores it in the credit applet itself (Fig. 15)."
    )]
    Deposit(DepositArgs),
}

/// Where the deposited money comes from.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Funds {
    /// Notes paid in at the ATM.
    Cash,
    /// A transfer from the customer's personal account.
    Account,
}

impl Funds {
    fn source(self) -> Source {
        match self {
            Self::Cash => Source::Cash,
            Self::Account => Source::PersonalAccount,
        }
    }
}

#[derive(Debug, Args)]
pub struct DepositArgs {
    #[command(flatten)]
    card: CardChoice,
    /// The amount, in the bank's currency (25000, 25,000 or 12.50).
    #[arg(long, allow_negative_numbers = true)]
    amount: String,
    /// Cash or the personal account.
    #[arg(long, value_enum, default_value = "cash")]
    from: Funds,
    /// The credit company whose bill is paid (default: the bank's only contract).
    #[arg(long, value_name = "ID")]
    credit: Option<String>,
    /// Store the token in the credit applet directly (Fig. 15), with the contract's delivery certificate.
    #[arg(long)]
    direct: bool,
    /// With --reader: how long to wait for a card, in seconds.
    #[arg(long, default_value_t = 10.0)]
    wait: f64,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Debug, Subcommand)]
pub enum PosCommand {
    /// A purchase (Fig. 10): the card presents its tokens, the credit company authorizes.
    #[command(
        after_help = "Examples:\n    linkcard pos purchase --card hanako --amount 30,000 --pin 2468\n    linkcard pos purchase --reader 0 --amount 30000 --pin 2468 --merchant \"Shop 17\" --json\nExit status 0: APPROVED; 3: DECLINED (by the credit company, or the card refused the PIN)."
    )]
    Purchase(PurchaseArgs),
}

#[derive(Debug, Args)]
pub struct PurchaseArgs {
    #[command(flatten)]
    card: CardChoice,
    /// The amount, in the credit company's currency.
    #[arg(long, allow_negative_numbers = true)]
    amount: String,
    /// The PIN the cardholder types.
    #[arg(long)]
    pin: Option<String>,
    /// The merchant's name, recorded with the decision.
    #[arg(long, default_value = "Shop 17")]
    merchant: String,
    /// The bank that issued the card (default: the credit company's only contract).
    #[arg(long, value_name = "ID")]
    bank: Option<String>,
    /// With --reader: how long to wait for a card, in seconds.
    #[arg(long, default_value_t = 10.0)]
    wait: f64,
    #[command(flatten)]
    json: JsonFlag,
}

pub fn run_atm(data: &DataDir, command: &AtmCommand) -> anyhow::Result<u8> {
    let AtmCommand::Deposit(args) = command;
    deposit(data, args)
}

pub fn run_pos(data: &DataDir, command: &PosCommand) -> anyhow::Result<u8> {
    let PosCommand::Purchase(args) = command;
    purchase(data, args)
}

fn open_card(
    data: &DataDir,
    choice: &CardChoice,
    wait: f64,
) -> anyhow::Result<Box<dyn CardChannel>> {
    if let Some(reader) = &choice.reader {
        return Ok(Box::new(crate::readers::open(reader, wait)?));
    }
    let name = choice.card.as_deref().context("--card or --reader")?;
    let path = data.card_file(name)?;
    anyhow::ensure!(
        path.exists(),
        "no card {name:?} in {}: run `linkcard card issue --card {name} …` first",
        path.display()
    );
    Ok(Box::new(InProcessChannel::on(FileNvm::open_card(&path)?)?))
}

/// The terminal `name`'s credentials, issued by `issue` at first use and loaded afterwards.
fn terminal_credentials(
    org: &Organisation,
    name: &str,
    issue: impl FnOnce(Validity) -> Result<OceCredentials, contract::KeysError>,
) -> anyhow::Result<OceCredentials> {
    let (key, _) = oce_paths(&org.terminal_prefix(name)?);
    if key.exists() {
        return org
            .load_terminal(name)
            .with_context(|| format!("cannot load the terminal credentials {name}"));
    }
    let validity = Validity::new(date_from_today(0), date_from_today(TERMINAL_DAYS))
        .context("the terminal's validity dates")?;
    issue(validity).with_context(|| format!("cannot issue the terminal credentials {name}"))
}

/// The single contract of `contracts`, or the one named.
fn pick_contract(
    contracts: &[Vec<u8>],
    named: Option<&str>,
    what: &str,
    flag: &str,
) -> anyhow::Result<Vec<u8>> {
    if let Some(id) = named {
        return Ok(id.as_bytes().to_vec());
    }
    match contracts {
        [only] => Ok(only.clone()),
        [] => anyhow::bail!(
            "no contract with any {what}: there is nothing to pay for here; pay at the credit company"
        ),
        _ => anyhow::bail!("contracts with several {what}s: name one with --{flag}"),
    }
}

/// The deposit; the card is opened only once the request is known to be one the bank can take.
fn deposit(data: &DataDir, args: &DepositArgs) -> anyhow::Result<u8> {
    let mut bank = data.bank()?;
    let currency = bank.settings.currency;
    let amount = money::parse(&args.amount, currency).map_err(anyhow::Error::msg)?;
    let today = date_from_today(0);
    let contracts = bank.keys.contracts()?;
    let credit_id = pick_contract(
        &contracts,
        args.credit.as_deref(),
        "credit company",
        "credit",
    )?;
    // Patent step 706: no contract, no early payment; refused before the card is touched.
    if !contracts.contains(&credit_id) {
        return Err(BankError::NoContract { credit_id }.into());
    }
    let contract = bank.keys.load_contract(&credit_id, today)?;
    let delivery_credentials = contract.delivery_credentials(&bank.keys);
    let delivery = if args.direct {
        Delivery::CreditApplet {
            instance: aid::CREDIT_APPLET.as_bytes(),
            delivery: &delivery_credentials,
        }
    } else {
        Delivery::BankApplet
    };
    let atm_credentials = terminal_credentials(bank.keys.organisation(), ATM_NAME, |v| {
        bank.keys.issue_atm(ATM_NAME, v)
    })?;
    let card_ca = bank.keys.card_ca().issuer();
    let identity = TerminalIdentity {
        card_ca: &card_ca,
        today,
        oce: &atm_credentials,
    };
    let mut host = AtmHost {
        inner: BankHost {
            bank: &mut bank.system,
            credit_id: credit_id.clone(),
            amount,
            currency,
            source: args.from.source(),
            card: CardRef {
                pan: String::new(),
                card_binding: [0; 32],
            },
            today,
            now: now(),
        },
        cards: data.issued_cards()?,
        named: args.card.card.clone(),
    };
    let mut channel = open_card(data, &args.card, args.wait)?;
    let receipt = atm::deposit(
        &mut channel,
        aid::BANK_APPLET.as_bytes(),
        &identity,
        delivery,
        &mut host,
    )?;
    let balances = bank.system.balances(&receipt.holder.user_id)?;
    report_deposit(args.json, amount, &credit_id, &receipt, &balances);
    Ok(crate::EXIT_OK)
}

fn report_deposit(
    json: JsonFlag,
    amount: u64,
    credit_id: &[u8],
    receipt: &atm::Receipt,
    balances: &bank::Balances,
) {
    let currency = balances.currency;
    let user = &receipt.holder.user_id;
    let credit = String::from_utf8_lossy(credit_id);
    emit(
        json,
        &format!(
            "{} paid for the {credit} credit bill of {user}: token {} stored in the card's {}; pool {}, personal account {}",
            money::format(amount, currency),
            hex::encode(receipt.token_id),
            receipt.stored_in,
            money::format(balances.pool, currency),
            money::format(balances.personal, currency)
        ),
        &json!({"user": user, "credit": credit, "amount": amount, "currency": currency,
                "token_id": hex::encode(receipt.token_id), "stored_in": receipt.stored_in,
                "pool": balances.pool, "personal": balances.personal}),
    );
}

/// Why the ATM's back end could not take the deposit.
#[derive(Debug)]
enum AtmHostError {
    Bank(BankError),
    UnknownCard(String),
}

impl std::fmt::Display for AtmHostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bank(error) => error.fmt(f),
            Self::UnknownCard(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for AtmHostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Bank(error) => error.source(),
            Self::UnknownCard(_) => None,
        }
    }
}

/// The bank behind the ATM, which finds the card it issued: by name, or by the holder the card reports.
struct AtmHost<'b> {
    inner: BankHost<'b, SqliteStore>,
    cards: BTreeMap<String, IssuedCard>,
    named: Option<String>,
}

impl AtmHost<'_> {
    fn find_card(&self, holder: &CardHolder) -> Result<CardRef, AtmHostError> {
        let found: Vec<&IssuedCard> = match &self.named {
            Some(name) => self.cards.get(name).into_iter().collect(),
            None => self
                .cards
                .values()
                .filter(|c| c.user_id == holder.user_id)
                .collect(),
        };
        let [card] = found.as_slice() else {
            return Err(AtmHostError::UnknownCard(format!(
                "the bank knows {} card(s) of customer {:?} here: it issues with `linkcard card issue`, and takes a deposit on one of them",
                found.len(),
                holder.user_id
            )));
        };
        let mut card_binding = [0u8; 32];
        hex::decode_to_slice(&card.card_binding, &mut card_binding)
            .map_err(|_| AtmHostError::UnknownCard("the bank's card list is damaged".into()))?;
        Ok(CardRef {
            pan: card.pan.clone(),
            card_binding,
        })
    }
}

impl DepositHost for AtmHost<'_> {
    type Error = AtmHostError;

    fn deposit(&mut self, holder: &CardHolder) -> Result<MintedToken, AtmHostError> {
        self.inner.card = self.find_card(holder)?;
        self.inner.deposit(holder).map_err(AtmHostError::Bank)
    }

    fn confirm(&mut self, token_id: &[u8; 16]) -> Result<(), AtmHostError> {
        self.inner.confirm(token_id).map_err(AtmHostError::Bank)
    }

    fn cancel(&mut self, token_id: &[u8; 16]) -> Result<(), AtmHostError> {
        self.inner.cancel(token_id).map_err(AtmHostError::Bank)
    }
}

/// The purchase; the card is opened once the credit company and the amount are known good.
fn purchase(data: &DataDir, args: &PurchaseArgs) -> anyhow::Result<u8> {
    let mut credit = data.credit()?;
    let currency = credit.settings.currency;
    let amount = money::parse(&args.amount, currency).map_err(anyhow::Error::msg)?;
    let today = date_from_today(0);
    let bank_id = pick_contract(
        &credit.keys.contracts()?,
        args.bank.as_deref(),
        "bank",
        "bank",
    )?;
    let contract = credit
        .keys
        .load_contract(&bank_id, today)
        .with_context(|| {
            format!(
                "no contract with bank {}: run `linkcard credit accept` first",
                String::from_utf8_lossy(&bank_id)
            )
        })?;
    let card_ca = contract.card_ca().issuer()?;
    let pos_credentials = terminal_credentials(credit.keys.organisation(), POS_NAME, |v| {
        credit.keys.issue_pos(POS_NAME, v)
    })?;
    let identity = TerminalIdentity {
        card_ca: &card_ca,
        today,
        oce: &pos_credentials,
    };
    let mut host = CreditHost {
        credit: &mut credit.system,
        merchant: args.merchant.clone(),
        today,
        now: now(),
        last: None,
    };
    let order = Purchase {
        amount,
        currency,
        pin: args.pin.as_deref().map(str::as_bytes),
    };
    let mut channel = open_card(data, &args.card, args.wait)?;
    let outcome = pos::purchase(
        &mut channel,
        aid::CREDIT_APPLET.as_bytes(),
        &identity,
        &order,
        &mut host,
    )?;
    let shown = money::format(amount, currency);
    let receipt = match outcome {
        Ok(receipt) => receipt,
        Err(refused) => {
            emit(
                args.json,
                &format!("{shown} DECLINED: the card refused the PIN ({refused})"),
                &json!({"amount": amount, "currency": currency, "approved": false, "message": refused.to_string()}),
            );
            return Ok(crate::EXIT_DECLINED);
        }
    };
    let decision = host.last.take().context("the credit system decided")?;
    Ok(report_purchase(args.json, &order, &receipt, &decision))
}

/// Prints the POS's receipt; the exit status it means.
fn report_purchase(
    json: JsonFlag,
    order: &Purchase<'_>,
    receipt: &pos::Receipt,
    decision: &credit::Decision,
) -> u8 {
    let (amount, currency) = (order.amount, order.currency);
    let shown = money::format(amount, currency);
    let verdict = if receipt.answer.approved {
        "APPROVED"
    } else {
        "DECLINED"
    };
    let f = |a| money::format(a, currency);
    emit(
        json,
        &format!(
            "{shown} {verdict}: {}; available credit {} before, {} after; {} token(s) presented, {} reflected, {} refused",
            // The credit system's message repeats the verdict.
            receipt.answer.message.trim_start_matches("declined: "),
            f(decision.available_before),
            f(decision.available_after),
            receipt.message.tokens.len(),
            decision.accepted_tokens.len(),
            decision.refused_tokens.len()
        ),
        &json!({"amount": amount, "currency": currency, "approved": receipt.answer.approved,
                "message": receipt.answer.message, "pan": receipt.message.pan,
                "available_before": decision.available_before, "available_after": decision.available_after,
                "accepted_tokens": decision.accepted_tokens.iter().map(|t| hex::encode(t.token_id)).collect::<Vec<_>>(),
                "refused_tokens": decision.refused_tokens.iter().map(|t| t.reason.clone()).collect::<Vec<_>>(),
                "apdus": receipt.apdus}),
    );
    if receipt.answer.approved {
        crate::EXIT_OK
    } else {
        crate::EXIT_DECLINED
    }
}
