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
//! 6. the same token put back on the card (Fig. 15 delivery) and presented again: **refused** as already used.

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
use crate::report::print_line;

const BANK_ID: &[u8] = b"BANK0001";
const CREDIT_ID: &[u8] = b"CRED0001";
const YEN: u16 = 392;
const PAN: &str = "4111111111111111";
const PIN: &str = "2468";
const USER: &str = "U-000042";
const CARDHOLDER: &str = "CH-000042";
const CREDIT_LIMIT: u64 = 10_000;
const PURCHASE: u64 = 30_000;
const DEPOSIT: u64 = 25_000;

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
            "linkcard demo: a credit bill paid early at the ATM, and the next purchase (patent Fig. 7, 10, 14)",
        );
        print_line(&format!(
            "in {}: bank/ and credit/ (keys, contracts, SQLite) and card.nvm (the card's memory)\n",
            dir.display()
        ));
    }
    let mut story = Story::set_up(&dir, args.json)?;
    story.issue()?;
    let declined = story.purchase("A purchase before any deposit")?;
    story.deposit()?;
    let approved = story.purchase("The same purchase right after the deposit")?;
    let replay = story.replay()?;
    story.finish(&dir);
    let as_the_patent_says = !declined && approved && !replay;
    Ok(if as_the_patent_says {
        crate::EXIT_OK
    } else {
        crate::EXIT_FAILED
    })
}

/// Everything the story runs on.
struct Story {
    bank_keys: BankKeys,
    bank: Bank<SqliteStore>,
    credit: Credit<SqliteStore>,
    card: InProcessChannel<FileNvm>,
    atm: OceCredentials,
    pos: OceCredentials,
    delivery: OceCredentials,
    card_binding: [u8; 32],
    today: token::Date,
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
        let atm = bank_keys.issue_atm("atm-1", year)?;
        let pos = credit_keys.issue_pos("pos-1", year)?;
        let delivery = bank_contract.delivery_credentials(&bank_keys);
        let card = InProcessChannel::on(FileNvm::open_card(&dir.join("card.nvm"))?)?;
        let mut story = Self {
            bank_keys,
            bank,
            credit,
            card,
            atm,
            pos,
            delivery,
            card_binding: [0; 32],
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
                short(&credit_keys.organisation().fingerprint().to_hex()),
            ),
            json!({"bank": text(BANK_ID), "credit": text(CREDIT_ID)}),
        );
        Ok(story)
    }

    /// Step 2: the customer, the cardholder, and the card with both applets.
    fn issue(&mut self) -> anyhow::Result<()> {
        self.open_accounts()?;
        let mut scalar = [0u8; 32];
        getrandom::fill(&mut scalar)?;
        let signing = SigningKey::from_slice(&scalar).context("a card signing key")?;
        let public = signing.verifying_key().to_sec1_point(false);
        self.card_binding = Sha256::digest(public.as_bytes()).into();
        self.credit.add_card(
            request_id(),
            &NewCard {
                pan: PAN.into(),
                expiry: date_from_today(4 * 365),
                cardholder_id: CARDHOLDER.into(),
                signing_key: *signing.verifying_key(),
            },
        )?;
        let contract = self.bank_keys.load_contract(CREDIT_ID, self.today)?;
        let card = CardData {
            customer: &customer(),
            pan: PAN,
            cardholder_id: CARDHOLDER,
            pin: Some(PIN),
            signing_key: &scalar,
            expiry: date_from_today(4 * 365),
        };
        let issued =
            card_issue::personalize(&mut self.card, &self.bank_keys, CREDIT_ID, &contract, &card);
        scalar.fill(0);
        issued?;
        self.say("card issued", &format!("Card {PAN} issued to Hanako Yamada with the bank applet and the credit applet (PIN {}); credit limit {}", PIN, money::format(CREDIT_LIMIT, YEN)), json!({"pan": PAN}));
        Ok(())
    }

    /// The bank's customer (with money in her account) and the credit company's cardholder.
    fn open_accounts(&mut self) -> anyhow::Result<()> {
        self.bank.add_customer(request_id(), &customer())?;
        self.bank.cash_in(request_id(), USER, 100_000)?;
        self.credit.add_cardholder(
            request_id(),
            &NewCardholder {
                cardholder_id: CARDHOLDER.into(),
                name: "Hanako Yamada".into(),
                credit_limit: CREDIT_LIMIT,
                currency: YEN,
            },
        )?;
        Ok(())
    }

    /// A purchase of [`PURCHASE`] at the POS; whether it was approved.
    fn purchase(&mut self, what: &str) -> anyhow::Result<bool> {
        let before = self.credit.account(CARDHOLDER)?;
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
            amount: PURCHASE,
            currency: YEN,
            pin: Some(PIN.as_bytes()),
        };
        let receipt = pos::purchase(
            &mut self.card,
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
        let after = self.credit.account(CARDHOLDER)?;
        let verdict = if receipt.answer.approved {
            "APPROVED"
        } else {
            "DECLINED"
        };
        let mut tokens = format!("{} token(s) presented", receipt.message.tokens.len());
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
        self.say("purchase", &format!(
            "{what}: {} at the POS, {verdict}. {tokens}; available credit {} before, {} after ({}; {} APDUs)",
            money::format(PURCHASE, YEN), money::format(before.available, YEN), money::format(after.available, YEN),
            receipt.answer.message, receipt.apdus),
            json!({"amount": PURCHASE, "approved": receipt.answer.approved, "available_before": before.available,
                   "available_after": after.available, "outstanding_after": after.outstanding,
                   "pending_credits_after": after.pending_credits,
                   "accepted_tokens": decision.accepted_tokens.iter().map(|t| hex::encode(t.token_id)).collect::<Vec<_>>(),
                   "refused_tokens": decision.refused_tokens.iter().map(|t| t.reason.clone()).collect::<Vec<_>>(),
                   "apdus": receipt.apdus}));
        Ok(receipt.answer.approved)
    }

    /// Step 4: the deposit at the ATM, from cash, stored in the bank applet (Fig. 14).
    fn deposit(&mut self) -> anyhow::Result<()> {
        let card_ca = self.bank_keys.card_ca().issuer();
        let identity = TerminalIdentity {
            card_ca: &card_ca,
            today: self.today,
            oce: &self.atm,
        };
        let mut host = BankHost {
            bank: &mut self.bank,
            credit_id: CREDIT_ID.to_vec(),
            amount: DEPOSIT,
            currency: YEN,
            source: Source::Cash,
            card: CardRef {
                pan: PAN.into(),
                card_binding: self.card_binding,
            },
            today: self.today,
            now: now(),
        };
        let receipt = atm::deposit(
            &mut self.card,
            aid::BANK_APPLET.as_bytes(),
            &identity,
            Delivery::BankApplet,
            &mut host,
        )?;
        let balances = self.bank.balances(USER)?;
        self.say("deposit", &format!(
            "{} paid in cash at the ATM for the {} credit bill (Fig. 7): the bank pooled it (her pool {}, personal account {}) and stored token {} in the card's {}; the credit applet takes it at the next purchase (Fig. 14)",
            money::format(DEPOSIT, YEN), text(CREDIT_ID), money::format(balances.pool, YEN), money::format(balances.personal, YEN),
            short(&hex::encode(receipt.token_id)), receipt.stored_in),
            json!({"amount": DEPOSIT, "token_id": hex::encode(receipt.token_id), "pool": balances.pool, "personal": balances.personal}));
        Ok(())
    }

    /// Step 6: the reflected token put back on the card and presented again; whether that purchase was approved.
    fn replay(&mut self) -> anyhow::Result<bool> {
        let token = self.last_presented_token()?;
        let card_ca = self.bank_keys.card_ca().issuer();
        card_client::credit::CreditAppletSession::select(
            &mut self.card,
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
            "A copy of the spent token written back to the card (Fig. 15 delivery) and presented again",
        )
    }

    fn last_presented_token(&mut self) -> anyhow::Result<Vec<u8>> {
        self.last_token.clone().context("a token was presented")
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
                "\nAs the patent says: the deposit raised the credit at the very next purchase, and a token counts once.",
            );
        }
    }

    fn say(&mut self, step: &str, text: &str, data: serde_json::Value) {
        if self.json {
            self.steps
                .push(json!({"step": step, "text": text, "data": data}));
        } else {
            print_line(&format!("{}. {text}", self.steps.len() + 1));
            self.steps.push(serde_json::Value::Null);
        }
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

/// The bank's customer whose card the story issues.
fn customer() -> NewCustomer {
    NewCustomer {
        user_id: USER.into(),
        name: "Hanako Yamada".into(),
        account_number: "0001-234-5678901".into(),
        currency: YEN,
    }
}

fn text(id: &[u8]) -> String {
    String::from_utf8_lossy(id).into_owned()
}

fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
