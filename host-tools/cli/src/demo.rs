//! `linkcard demo`: the patent's story on the embedded default — the card in this process with its memory in a
//! file, the bank and the credit systems on SQLite, all in a fresh directory:
//!
//! 1. the key exchange (Fig. 6 and 9): each organisation's keys, the bank's signed offer, the credit company's
//!    signed acceptance (its HPKE key, its terminals' CA, the bank's delivery certificate);
//! 2. a card issued with both applets (the bank applet sharing with the credit applet, a cardholder PIN);
//! 3. a purchase at the POS, **declined** for lack of credit;
//! 4. a deposit at the ATM for the credit bill (Fig. 7): the bank pools it and the card gets the token;
//! 5. the same purchase, **approved at once**: the credit applet took the token from the bank applet (Fig. 14)
//!    and the credit system reflected it as a temporary credit (Fig. 10);
//! 6. the same token put back on the card (Fig. 15 delivery) and presented again: **refused** as already used;
//! 7. two more cardholders: Taro buys within his limit; Jiro deposits at the ATM, but the bank never hears that
//!    his card kept the token (the hold expires, the money goes back), and the token still raises his credit;
//! 8. settlement day (Fig. 8, 11): the credit company's deduction data, the bank's withdrawals (Hanako from her
//!    pool deposit, Taro from his personal account, Jiro short of funds) with its status report and transfer
//!    notice, and the reconciliation that reveals Jiro's reflection as one no deposit backs.

mod settlement;

use std::path::{Path, PathBuf};

use anyhow::Context;
use apdu_spec::aid;
use bank::{Bank, BankConfig, CardRef, CreditContract as BankSideContract, NewCustomer, Source};
use card_client::scp11::{OceCredentials, date_from_today};
use contract::{BankKeys, CreditAppletParameters, CreditKeys, Validity, read_identity};
use credit::{Credit, CreditConfig, NewCard, NewCardholder};
use emulator::InProcessChannel;
use emulator::file_nvm::FileNvm;
use ledger::SqliteStore;
use p256::ecdsa::SigningKey;
use serde_json::json;
use sha2::{Digest, Sha256};
use terminal::TerminalIdentity;
use terminal::atm::{self, Delivery};
use terminal::pos::{self, Purchase};

use crate::card_issue::{self, CardData};
use crate::hosts::{BankHost, CreditHost, request_id};
use crate::money;
use crate::report::{now, print_line};

const BANK_ID: &[u8] = b"BANK0001";
const CREDIT_ID: &[u8] = b"CRED0001";
const YEN: u16 = 392;
const CREDIT_LIMIT: u64 = 10_000;
const PURCHASE: u64 = 30_000;
const DEPOSIT: u64 = 25_000;

/// A cardholder of the story: a customer of the bank, a cardholder of the credit company, and a card.
pub(crate) struct Person {
    pub name: &'static str,
    pub user: &'static str,
    pub cardholder: &'static str,
    pub account: &'static str,
    pub pan: &'static str,
    pub pin: &'static str,
    /// Paid into the personal account when the account is opened.
    pub cash: u64,
    /// The card's memory file, in the story's directory.
    pub card_file: &'static str,
}

/// Hanako, Taro and Jiro.
pub(crate) const PEOPLE: [Person; 3] = [
    Person {
        name: "Hanako Yamada",
        user: "U-000042",
        cardholder: "CH-000042",
        account: "0001-234-5678901",
        pan: "4111111111111111",
        pin: "2468",
        cash: 100_000,
        card_file: "card.nvm",
    },
    Person {
        name: "Taro Suzuki",
        user: "U-000043",
        cardholder: "CH-000043",
        account: "0001-234-5678902",
        pan: "4111111111111129",
        pin: "1357",
        cash: 50_000,
        card_file: "taro.nvm",
    },
    Person {
        name: "Jiro Tanaka",
        user: "U-000044",
        cardholder: "CH-000044",
        account: "0001-234-5678903",
        pan: "4111111111111137",
        pin: "8642",
        cash: 8_000,
        card_file: "jiro.nvm",
    },
];
const HANAKO: usize = 0;
const TARO: usize = 1;
const JIRO: usize = 2;

/// `linkcard demo`'s options.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where the organisations, their databases and the card's memory go (must not exist yet; default: a fresh
    /// directory under the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print the story as JSON (one object: the steps and the balances after each).
    #[arg(long)]
    pub json: bool,
}

/// Runs the story; exit status 0 when every step turned out as the patent says.
pub fn run(args: &DemoArgs) -> anyhow::Result<u8> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("linkcard-demo-{:016x}", request_id().0 as u64)),
    };
    anyhow::ensure!(
        !dir.exists(),
        "{} exists: the demo starts from nothing; name a new directory with --dir",
        dir.display()
    );
    if !args.json {
        print_line(
            "linkcard demo: a credit bill paid early at the ATM, the next purchase, and settlement day (patent Fig. 7, 10, 14, 8, 11)",
        );
        print_line(&format!(
            "in {}: bank/ and credit/ (keys, contracts, SQLite), the cards' memories (*.nvm) and settlement/ (the files exchanged)\n",
            dir.display()
        ));
    }
    let mut story = Story::set_up(&dir, args.json)?;
    for who in [HANAKO, TARO, JIRO] {
        story.issue(who)?;
    }
    let declined = story.purchase(HANAKO, PURCHASE, "A purchase before any deposit")?;
    story.deposit(HANAKO, DEPOSIT, Source::Cash, Confirmation::Arrives)?;
    let approved = story.purchase(
        HANAKO,
        PURCHASE,
        "The same purchase right after the deposit",
    )?;
    let replay = story.replay()?;
    let taro = story.purchase(TARO, 8_000, "Taro buys within his limit")?;
    story.deposit(JIRO, 6_000, Source::PersonalAccount, Confirmation::Lost)?;
    let jiro = story.purchase(JIRO, 9_000, "Jiro buys; his card presents the token")?;
    let settled = settlement::settlement_day(&mut story, &dir)?;
    story.finish(&dir);
    let as_the_patent_says = !declined && approved && !replay && taro && jiro && settled;
    Ok(if as_the_patent_says {
        crate::EXIT_OK
    } else {
        crate::EXIT_FAILED
    })
}

/// Whether the bank hears that the card kept the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Confirmation {
    Arrives,
    /// The ATM's confirmation never reaches the bank: the hold expires and the money goes back.
    Lost,
}

/// A person's card and what the bank knows of it.
struct Card {
    channel: InProcessChannel<FileNvm>,
    binding: [u8; 32],
}

/// Everything the story runs on.
pub(crate) struct Story {
    bank_keys: BankKeys,
    credit_keys: CreditKeys,
    pub(crate) bank: Bank<SqliteStore>,
    pub(crate) credit: Credit<SqliteStore>,
    cards: Vec<Card>,
    atm: OceCredentials,
    pos: OceCredentials,
    delivery: OceCredentials,
    pub(crate) today: token::Date,
    last_token: Option<Vec<u8>>,
    json: bool,
    steps: Vec<serde_json::Value>,
}

impl Story {
    /// Step 1: the organisations, their key exchange, their back ends.
    fn set_up(dir: &Path, json: bool) -> anyhow::Result<Self> {
        let today = date_from_today(0);
        let year = Validity::new(today, date_from_today(365)).context("validity dates")?;
        let bank_keys = BankKeys::create(&dir.join("bank"), BANK_ID, year)?;
        let credit_keys = CreditKeys::create(&dir.join("credit"), CREDIT_ID)?;
        // The identity keys travel out of band (their fingerprints compared by people); here, as the files.
        let bank_identity = read_identity(&dir.join("bank").join("identity.pub"))?;
        let credit_identity = read_identity(&dir.join("credit").join("identity.pub"))?;
        let offer = bank_keys.export_offer(CREDIT_ID, year)?;
        let credit_contract = credit_keys.import_offer(&offer, &bank_identity, today)?;
        let parameters = CreditAppletParameters {
            atc_limit: 1_000_000,
            pin_try_limit: Some(3),
        };
        let acceptance = credit_keys.export_acceptance(&credit_contract, parameters, year)?;
        let bank_contract = bank_keys.import_acceptance(&acceptance, &credit_identity, today)?;
        bank_keys.save_contract(&bank_contract)?;
        credit_keys.save_contract(&credit_contract)?;
        let (bank, credit) = open_back_ends(
            dir,
            &bank_keys,
            &credit_keys,
            &bank_contract,
            &credit_contract,
            year,
        )?;
        let mut cards = Vec::with_capacity(PEOPLE.len());
        for person in &PEOPLE {
            let channel = InProcessChannel::on(FileNvm::open_card(&dir.join(person.card_file))?)?;
            cards.push(Card {
                channel,
                binding: [0; 32],
            });
        }
        let mut story = Self {
            atm: bank_keys.issue_atm("atm-1", year)?,
            pos: credit_keys.issue_pos("pos-1", year)?,
            delivery: bank_contract.delivery_credentials(&bank_keys),
            bank_keys,
            credit_keys,
            bank,
            credit,
            cards,
            today,
            last_token: None,
            json,
            steps: Vec::new(),
        };
        story.say(
            "key exchange",
            &format!(
                "Key exchange (Fig. 6, 9): bank {} offered credit company {} a signed contract; {} answered with its HPKE key, its POS CA and a delivery certificate for the bank (identities {} and {})",
                text(BANK_ID), text(CREDIT_ID), text(CREDIT_ID),
                short(&story.bank_keys.organisation().fingerprint().to_hex()),
                short(&story.credit_keys.organisation().fingerprint().to_hex()),
            ),
            json!({"bank": text(BANK_ID), "credit": text(CREDIT_ID)}),
        );
        Ok(story)
    }

    /// Step 2: the customer, the cardholder (with the mandate to collect from the bank), and the card with
    /// both applets.
    fn issue(&mut self, who: usize) -> anyhow::Result<()> {
        let person = &PEOPLE[who];
        self.open_accounts(person)?;
        let mut scalar = [0u8; 32];
        getrandom::fill(&mut scalar)?;
        let signing = SigningKey::from_slice(&scalar).context("a card signing key")?;
        let public = signing.verifying_key().to_sec1_point(false);
        self.cards[who].binding = Sha256::digest(public.as_bytes()).into();
        self.credit.add_card(
            request_id(),
            &NewCard {
                pan: person.pan.into(),
                expiry: date_from_today(4 * 365),
                cardholder_id: person.cardholder.into(),
                signing_key: *signing.verifying_key(),
            },
        )?;
        let contract = self.bank_keys.load_contract(CREDIT_ID, self.today)?;
        let customer = customer(person);
        let card = CardData {
            customer: &customer,
            pan: person.pan,
            cardholder_id: person.cardholder,
            pin: Some(person.pin),
            signing_key: &scalar,
            expiry: date_from_today(4 * 365),
        };
        let issued = card_issue::personalize(
            &mut self.cards[who].channel,
            &self.bank_keys,
            CREDIT_ID,
            &contract,
            &card,
        );
        scalar.fill(0);
        issued?;
        let mandate = card_issue::mandate_for(BANK_ID, &customer, person.cardholder);
        self.credit
            .set_mandate(request_id(), person.cardholder, &mandate)?;
        self.say("card issued", &format!(
            "Card {} issued to {} with the bank applet and the credit applet (PIN {}); credit limit {}, {} in the personal account",
            person.pan, person.name, person.pin, money::format(CREDIT_LIMIT, YEN), money::format(person.cash, YEN)),
            json!({"pan": person.pan, "name": person.name, "cash": person.cash}));
        Ok(())
    }

    /// The bank's customer (with money in the account) and the credit company's cardholder.
    fn open_accounts(&mut self, person: &Person) -> anyhow::Result<()> {
        self.bank.add_customer(request_id(), &customer(person))?;
        self.bank.cash_in(request_id(), person.user, person.cash)?;
        self.credit.add_cardholder(
            request_id(),
            &NewCardholder {
                cardholder_id: person.cardholder.into(),
                name: person.name.into(),
                credit_limit: CREDIT_LIMIT,
                currency: YEN,
            },
        )?;
        Ok(())
    }

    /// A purchase of `amount` at the POS with `who`'s card; whether it was approved.
    fn purchase(&mut self, who: usize, amount: u64, what: &str) -> anyhow::Result<bool> {
        let person = &PEOPLE[who];
        let before = self.credit.account(person.cardholder)?;
        let card_ca = self.bank_keys.card_ca().issuer();
        let identity = TerminalIdentity {
            card_ca: &card_ca,
            today: self.today,
            oce: &self.pos,
        };
        let mut host = CreditHost {
            credit: &mut self.credit,
            merchant: "Shop 17".into(),
            today: self.today,
            now: now(),
            last: None,
        };
        let purchase = Purchase {
            amount,
            currency: YEN,
            pin: Some(person.pin.as_bytes()),
        };
        let receipt = pos::purchase(
            &mut self.cards[who].channel,
            aid::CREDIT_APPLET.as_bytes(),
            &identity,
            &purchase,
            &mut host,
        )?
        .map_err(|refused| anyhow::anyhow!("the card refused the PIN: {refused}"))?;
        let decision = host.last.take().context("the credit system decided")?;
        if let Some(token) = receipt.message.tokens.first() {
            self.last_token = Some(token.clone());
        }
        let after = self.credit.account(person.cardholder)?;
        let verdict = if receipt.answer.approved {
            "APPROVED"
        } else {
            "DECLINED"
        };
        let tokens = describe_tokens(&decision, receipt.message.tokens.len());
        self.say("purchase", &format!(
            "{what}: {} at the POS, {verdict}. {tokens}; available credit {} before, {} after ({}; {} APDUs)",
            money::format(amount, YEN), money::format(before.available, YEN), money::format(after.available, YEN),
            receipt.answer.message, receipt.apdus),
            json!({"who": person.name, "amount": amount, "approved": receipt.answer.approved,
                   "available_before": before.available,
                   "available_after": after.available, "outstanding_after": after.outstanding,
                   "pending_credits_after": after.pending_credits,
                   "accepted_tokens": decision.accepted_tokens.iter().map(|t| hex::encode(t.token_id)).collect::<Vec<_>>(),
                   "refused_tokens": decision.refused_tokens.iter().map(|t| t.reason.clone()).collect::<Vec<_>>(),
                   "apdus": receipt.apdus}));
        Ok(receipt.answer.approved)
    }

    /// A deposit at the ATM, stored in the bank applet (Fig. 14); `Lost`: the bank never hears that the card
    /// kept the token, and the hold expires.
    fn deposit(
        &mut self,
        who: usize,
        amount: u64,
        source: Source,
        confirmation: Confirmation,
    ) -> anyhow::Result<()> {
        let person = &PEOPLE[who];
        let card_ca = self.bank_keys.card_ca().issuer();
        let identity = TerminalIdentity {
            card_ca: &card_ca,
            today: self.today,
            oce: &self.atm,
        };
        let mut host = BankHost {
            bank: &mut self.bank,
            credit_id: CREDIT_ID.to_vec(),
            amount,
            currency: YEN,
            source,
            card: CardRef {
                pan: person.pan.into(),
                card_binding: self.cards[who].binding,
            },
            today: self.today,
            now: now(),
        };
        let channel = &mut self.cards[who].channel;
        let receipt = match confirmation {
            Confirmation::Arrives => atm::deposit(
                channel,
                aid::BANK_APPLET.as_bytes(),
                &identity,
                Delivery::BankApplet,
                &mut host,
            )?,
            Confirmation::Lost => atm::deposit(
                channel,
                aid::BANK_APPLET.as_bytes(),
                &identity,
                Delivery::BankApplet,
                &mut LostConfirmation(host),
            )?,
        };
        if confirmation == Confirmation::Lost {
            // The hold's time passes without a confirmation: the money goes back to its source.
            self.bank.expire_holds(now() + 24 * 3600)?;
        }
        let balances = self.bank.balances(person.user)?;
        let from = match source {
            Source::Cash => "paid in cash",
            Source::PersonalAccount => "transferred from the personal account",
        };
        let fate = match confirmation {
            Confirmation::Arrives => "the bank pooled it",
            Confirmation::Lost => {
                "but the ATM's confirmation never reached the bank: the hold expired and the money went back"
            }
        };
        self.say("deposit", &format!(
            "{} {from} at the ATM by {} for the {} credit bill (Fig. 7): {fate} (pool {}, personal account {}); token {} is in the card's {}",
            money::format(amount, YEN), person.name, text(CREDIT_ID), money::format(balances.pool, YEN),
            money::format(balances.personal, YEN), short(&hex::encode(receipt.token_id)), receipt.stored_in),
            json!({"who": person.name, "amount": amount, "token_id": hex::encode(receipt.token_id),
                   "confirmed": confirmation == Confirmation::Arrives,
                   "pool": balances.pool, "personal": balances.personal}));
        Ok(())
    }

    /// Step 6: the reflected token put back on the card and presented again; whether that purchase was approved.
    fn replay(&mut self) -> anyhow::Result<bool> {
        let token = self.last_token.clone().context("a token was presented")?;
        let card_ca = self.bank_keys.card_ca().issuer();
        card_client::credit::CreditAppletSession::select(
            &mut self.cards[HANAKO].channel,
            aid::CREDIT_APPLET.as_bytes(),
        )?
        .open_scp11a(
            &card_ca,
            self.today,
            &self.delivery,
            apdu_spec::scp11::session::SecurityLevel::FULL,
        )?
        .store_token(&token)?;
        self.purchase(
            HANAKO,
            PURCHASE,
            "A copy of the spent token written back to the card (Fig. 15 delivery) and presented again",
        )
    }

    fn finish(&mut self, dir: &Path) {
        if self.json {
            print_line(
                &serde_json::to_string_pretty(
                    &json!({"dir": dir.display().to_string(), "steps": self.steps}),
                )
                .unwrap_or_default(),
            );
        } else {
            print_line(
                "\nAs the patent says: the deposit raised the credit at the very next purchase, a token counts once, and settlement day confirmed every reflection a deposit backs and exposed the one none did.",
            );
        }
    }

    pub(crate) fn say(&mut self, step: &str, text: &str, data: serde_json::Value) {
        if self.json {
            self.steps
                .push(json!({"step": step, "text": text, "data": data}));
        } else {
            print_line(&format!("{}. {text}", self.steps.len() + 1));
            self.steps.push(serde_json::Value::Null);
        }
    }
}

/// What the POS prints of the tokens a purchase presented.
fn describe_tokens(decision: &credit::Decision, presented: usize) -> String {
    let mut tokens = format!("{presented} token(s) presented");
    if !decision.accepted_tokens.is_empty() {
        let sum: u64 = decision.accepted_tokens.iter().map(|t| t.sum).sum();
        tokens += &format!(
            ", {} reflected at once as a temporary credit",
            money::format(sum, YEN)
        );
    }
    for refused in &decision.refused_tokens {
        tokens += &format!(", one refused ({})", refused.reason);
    }
    tokens
}

/// The bank behind an ATM whose confirmation is lost on the way: the deposit is taken, the confirmation never
/// arrives.
struct LostConfirmation<'b, S>(BankHost<'b, S>);

impl<S: ledger::Store> atm::DepositHost for LostConfirmation<'_, S> {
    type Error = bank::BankError;

    fn deposit(&mut self, holder: &atm::CardHolder) -> Result<atm::MintedToken, bank::BankError> {
        self.0.deposit(holder)
    }

    fn confirm(&mut self, _token_id: &[u8; 16]) -> Result<(), bank::BankError> {
        Ok(())
    }

    fn cancel(&mut self, token_id: &[u8; 16]) -> Result<(), bank::BankError> {
        self.0.cancel(token_id)
    }
}

/// The bank and the credit systems on their SQLite files, each registered with its contract.
fn open_back_ends(
    dir: &Path,
    bank_keys: &BankKeys,
    credit_keys: &CreditKeys,
    bank_contract: &contract::BankContract,
    credit_contract: &contract::CreditContract,
    year: Validity,
) -> anyhow::Result<(Bank<SqliteStore>, Credit<SqliteStore>)> {
    let config = BankConfig {
        bank_id: BANK_ID.to_vec(),
        currency: YEN,
        token_validity_days: 60,
        deposit_hold_seconds: 3600,
    };
    let mut bank = Bank::open(
        SqliteStore::open(dir.join("bank/bank.sqlite"))?,
        config,
        bank_keys.token_signing_key().clone(),
    )?;
    bank.add_contract(
        request_id(),
        &BankSideContract {
            credit_id: CREDIT_ID.to_vec(),
            hpke_key: bank_contract.hpke_key().clone(),
            valid_until: year.until,
            active: true,
        },
    )?;
    let config = CreditConfig {
        credit_id: CREDIT_ID.to_vec(),
        currency: YEN,
        settlement_grace_days: 30,
    };
    let mut credit = Credit::open(
        SqliteStore::open(dir.join("credit/credit.sqlite"))?,
        config,
        vec![credit_keys.hpke_key().clone()],
    )?;
    credit.trust_bank(request_id(), BANK_ID, *credit_contract.token_key())?;
    Ok((bank, credit))
}

/// The bank's customer a person is.
fn customer(person: &Person) -> NewCustomer {
    NewCustomer {
        user_id: person.user.into(),
        name: person.name.into(),
        account_number: person.account.into(),
        currency: YEN,
    }
}

pub(crate) fn text(id: &[u8]) -> String {
    String::from_utf8_lossy(id).into_owned()
}

pub(crate) fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}
