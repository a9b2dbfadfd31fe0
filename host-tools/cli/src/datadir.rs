//! The data directory of the role commands: each organisation's keys, database and settings, and the in-process
//! cards' memories.
//!
//! ```text
//! DIR/bank/     BankKeys (identity, CAs, issuer, oce/atm-1.*, contracts/), bank.sqlite, bank.json, cards.json
//! DIR/credit/   CreditKeys (identity, HPKE, oce/pos-1.*, contracts/), credit.sqlite, credit.json
//! DIR/cards/    NAME.nvm: the memory of the in-process card NAME
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use bank::{Bank, BankConfig};
use contract::{BankKeys, CreditKeys, Validity};
use credit::{Credit, CreditConfig};
use ledger::SqliteStore;
use serde::{Deserialize, Serialize};

/// How long a minted token stays valid (days).
const TOKEN_VALIDITY_DAYS: u16 = 60;
/// How long an ATM deposit is held before it is confirmed or voided on its own (seconds).
const DEPOSIT_HOLD_SECONDS: u64 = 3600;
/// How long a temporary reflection waits for the bank's transfer after the token's last day.
const SETTLEMENT_GRACE_DAYS: u16 = 30;

/// Where the role commands keep their state.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// `bank.json` / `credit.json`: what the organisation's database is opened with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The organisation id (ASCII).
    pub id: String,
    /// ISO 4217 numeric currency of its accounts.
    pub currency: u16,
}

/// What the bank (the issuer) remembers of a card it issued: what the ATM needs for a deposit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuedCard {
    /// The card number.
    pub pan: String,
    /// SHA-256 of the credit applet's public signing key (tokens are bound to it).
    pub card_binding: String,
    /// The bank's customer.
    pub user_id: String,
    /// The credit company's cardholder.
    pub cardholder_id: String,
}

/// The bank, opened: keys, settings, back end.
pub struct BankSide {
    pub keys: BankKeys,
    pub settings: Settings,
    pub system: Bank<SqliteStore>,
}

/// The credit company, opened: keys, settings, back end.
pub struct CreditSide {
    pub keys: CreditKeys,
    pub settings: Settings,
    pub system: Credit<SqliteStore>,
}

impl DataDir {
    /// `--data-dir` or `LINKCARD_DATA_DIR` when given, else `linkcard` under the user's data directory.
    pub fn resolve(given: Option<&Path>) -> anyhow::Result<Self> {
        let root = match given {
            Some(dir) => dir.to_owned(),
            None => directories::ProjectDirs::from("", "", "linkcard")
                .context("no home directory to put the data directory in: give --data-dir DIR")?
                .data_dir()
                .to_owned(),
        };
        Ok(Self { root })
    }

    pub fn bank_dir(&self) -> PathBuf {
        self.root.join("bank")
    }

    pub fn credit_dir(&self) -> PathBuf {
        self.root.join("credit")
    }

    /// The memory file of the in-process card `name` (a plain name: no path separators).
    pub fn card_file(&self, name: &str) -> anyhow::Result<PathBuf> {
        let plain = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        anyhow::ensure!(plain, "invalid card name {name:?}: 1-64 of A-Z a-z 0-9 - _");
        Ok(self.root.join("cards").join(format!("{name}.nvm")))
    }

    /// Creates the bank's keys, settings and database; refused if `DIR/bank` holds a bank already.
    pub fn create_bank(&self, settings: Settings, issuer: Validity) -> anyhow::Result<BankSide> {
        let dir = self.bank_dir();
        refuse_existing(&dir, "bank")?;
        let keys = BankKeys::create(&dir, settings.id.as_bytes(), issuer)
            .with_context(|| format!("cannot create the bank in {}", dir.display()))?;
        write_json(&dir.join("bank.json"), &settings)?;
        let system = open_bank_system(&dir, &keys, &settings)?;
        Ok(BankSide {
            keys,
            settings,
            system,
        })
    }

    /// Creates the credit company's keys, settings and database; refused if `DIR/credit` holds one already.
    pub fn create_credit(&self, settings: Settings) -> anyhow::Result<CreditSide> {
        let dir = self.credit_dir();
        refuse_existing(&dir, "credit company")?;
        let keys = CreditKeys::create(&dir, settings.id.as_bytes())
            .with_context(|| format!("cannot create the credit company in {}", dir.display()))?;
        write_json(&dir.join("credit.json"), &settings)?;
        let system = open_credit_system(&dir, &keys, &settings)?;
        Ok(CreditSide {
            keys,
            settings,
            system,
        })
    }

    /// The bank in `DIR/bank`, or an error that says how to make it.
    pub fn bank(&self) -> anyhow::Result<BankSide> {
        let dir = self.bank_dir();
        let settings: Settings = read_json(&dir.join("bank.json")).with_context(|| {
            format!(
                "no bank in {}: run `linkcard bank init --id BANK0001` first",
                dir.display()
            )
        })?;
        let keys = BankKeys::load(&dir)
            .with_context(|| format!("cannot load the bank's keys in {}", dir.display()))?;
        let system = open_bank_system(&dir, &keys, &settings)?;
        Ok(BankSide {
            keys,
            settings,
            system,
        })
    }

    /// The credit company in `DIR/credit`, or an error that says how to make it.
    pub fn credit(&self) -> anyhow::Result<CreditSide> {
        let dir = self.credit_dir();
        let settings: Settings = read_json(&dir.join("credit.json")).with_context(|| {
            format!(
                "no credit company in {}: run `linkcard credit init --id CRED0001` first",
                dir.display()
            )
        })?;
        let keys = CreditKeys::load(&dir).with_context(|| {
            format!("cannot load the credit company's keys in {}", dir.display())
        })?;
        let system = open_credit_system(&dir, &keys, &settings)?;
        Ok(CreditSide {
            keys,
            settings,
            system,
        })
    }

    /// The cards the bank issued, by card name.
    pub fn issued_cards(&self) -> anyhow::Result<BTreeMap<String, IssuedCard>> {
        let path = self.bank_dir().join("cards.json");
        if !path.exists() {
            return Ok(BTreeMap::new());
        }
        read_json(&path)
    }

    /// Records card `name` in the bank's card list (a new name only).
    pub fn record_issued_card(&self, name: &str, card: IssuedCard) -> anyhow::Result<()> {
        let mut cards = self.issued_cards()?;
        anyhow::ensure!(
            !cards.contains_key(name),
            "the bank has issued a card named {name:?} already"
        );
        cards.insert(name.to_owned(), card);
        let path = self.bank_dir().join("cards.json");
        // Written whole to a temporary file and renamed, so a crash leaves the old list or the new one.
        let temporary = path.with_extension("json.new");
        std::fs::write(&temporary, serde_json::to_vec_pretty(&cards)?)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        std::fs::rename(&temporary, &path)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

fn refuse_existing(dir: &Path, what: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !dir.join(contract::paths::ORGANISATION).exists(),
        "{} holds a {what} already: use another --data-dir",
        dir.display()
    );
    Ok(())
}

fn open_bank_system(
    dir: &Path,
    keys: &BankKeys,
    settings: &Settings,
) -> anyhow::Result<Bank<SqliteStore>> {
    let path = dir.join("bank.sqlite");
    let config = BankConfig {
        bank_id: settings.id.as_bytes().to_vec(),
        currency: settings.currency,
        token_validity_days: TOKEN_VALIDITY_DAYS,
        deposit_hold_seconds: DEPOSIT_HOLD_SECONDS,
    };
    let store =
        SqliteStore::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    Bank::open(store, config, keys.token_signing_key().clone())
        .with_context(|| format!("cannot open the bank system in {}", path.display()))
}

fn open_credit_system(
    dir: &Path,
    keys: &CreditKeys,
    settings: &Settings,
) -> anyhow::Result<Credit<SqliteStore>> {
    let path = dir.join("credit.sqlite");
    let config = CreditConfig {
        credit_id: settings.id.as_bytes().to_vec(),
        currency: settings.currency,
        settlement_grace_days: SETTLEMENT_GRACE_DAYS,
    };
    let store =
        SqliteStore::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    Credit::open(store, config, vec![keys.hpke_key().clone()])
        .with_context(|| format!("cannot open the credit system in {}", path.display()))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} does not parse", path.display()))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("cannot write {}", path.display()))
}
