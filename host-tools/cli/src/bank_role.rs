//! `linkcard bank …`: the bank system program (patent Fig. 6, 7): the bank's keys, the contract offered to a
//! credit company, customers and their money.

use std::path::PathBuf;

use anyhow::Context as _;
use bank::{CreditContract as BankSideContract, NewCustomer};
use card_client::scp11::date_from_today;
use clap::{Args, Subcommand};
use contract::{Fingerprint, Validity, read_identity};
use serde_json::json;

use crate::datadir::{DataDir, Settings};
use crate::hosts::request_id;
use crate::money;
use crate::report::{JsonFlag, emit, parse_currency, parse_id, write_new};

/// How long the issuer's certificate (which personalizes cards) is valid.
const ISSUER_DAYS: i64 = 5 * 365;
/// How long an offered contract runs.
const CONTRACT_DAYS: i64 = 365;

#[derive(Debug, Subcommand)]
pub enum BankCommand {
    /// Create the bank: its keys (identity, card CA, token signing, delivery, issuer) and its database.
    #[command(after_help = "Example:\n    linkcard bank init --id BANK0001 --currency 392")]
    Init(InitArgs),
    /// Offer a credit company a contract (Fig. 6): a bundle signed by the bank's identity key.
    #[command(
        after_help = "Example:\n    linkcard bank offer --credit CRED0001 --out offer.json\nSend offer.json and DIR/bank/identity.pub to the credit company; read the fingerprint printed to them\nover another channel."
    )]
    Offer(OfferArgs),
    /// Import the credit company's acceptance: the contract is saved and registered in the bank system.
    #[command(
        after_help = "Example:\n    linkcard bank import-acceptance acceptance.json --credit-identity credit-identity.pub\nCompare the fingerprint printed with the one the credit company reads out."
    )]
    ImportAcceptance(ImportAcceptanceArgs),
    /// The bank's customers.
    #[command(subcommand)]
    Customer(CustomerCommand),
    /// Cash paid into a customer's personal account.
    #[command(after_help = "Example:\n    linkcard bank cash-in --user U-000042 100,000")]
    CashIn(CashInArgs),
    /// A customer's personal account and pool balances.
    #[command(after_help = "Example:\n    linkcard bank balance --user U-000042 --json")]
    Balance(BalanceArgs),
    /// Settlement day (Fig. 8): settle a credit company's deduction file, the pool first, then the personal
    /// accounts; write the status report (pain.002) and the transfer notice (camt.054), signed.
    #[command(
        after_help = "Example:\n    linkcard bank settle ST-BANK0001-2027-01-10.xml\nThe file's signature (FILE.sig) is checked against the contract first. Running it again completes an interrupted\nsettlement and writes the same files; nothing is taken twice."
    )]
    Settle(crate::settlement::SettleArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The bank id (1-16 ASCII characters), as in its tokens.
    #[arg(long, value_parser = parse_id)]
    id: String,
    /// ISO 4217 numeric currency of the accounts.
    #[arg(long, default_value = "392", value_parser = parse_currency)]
    currency: u16,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct OfferArgs {
    /// The credit company the contract is offered to (its id).
    #[arg(long, value_parser = parse_id)]
    credit: String,
    /// Where to write the offer (must not exist).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct ImportAcceptanceArgs {
    /// The acceptance bundle the credit company sent.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The credit company's identity public key (PEM), handed over out of band.
    #[arg(long, value_name = "PEM")]
    credit_identity: PathBuf,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// Open a customer's personal account.
    #[command(
        after_help = "Example:\n    linkcard bank customer add --user U-000042 --name \"Hanako Yamada\" --account 0001-234-5678901"
    )]
    Add(CustomerAddArgs),
}

#[derive(Debug, Args)]
pub struct CustomerAddArgs {
    /// The customer's user id at the bank.
    #[arg(long)]
    user: String,
    /// The customer's name (printable ASCII: it goes on the card).
    #[arg(long)]
    name: String,
    /// The personal account number.
    #[arg(long)]
    account: String,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct CashInArgs {
    /// The customer.
    #[arg(long)]
    user: String,
    /// The amount, in the bank's currency (30000, 30,000 or 12.50).
    #[arg(allow_negative_numbers = true)]
    amount: String,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct BalanceArgs {
    /// The customer.
    #[arg(long)]
    user: String,
    #[command(flatten)]
    json: JsonFlag,
}

pub fn run_command(data: &DataDir, command: &BankCommand) -> anyhow::Result<u8> {
    match command {
        BankCommand::Init(args) => init(data, args),
        BankCommand::Offer(args) => offer(data, args),
        BankCommand::ImportAcceptance(args) => import_acceptance(data, args),
        BankCommand::Customer(CustomerCommand::Add(args)) => add_customer(data, args),
        BankCommand::CashIn(args) => cash_in(data, args),
        BankCommand::Balance(args) => balance(data, args),
        BankCommand::Settle(args) => return crate::settlement::settle(data, args),
    }?;
    Ok(crate::EXIT_OK)
}

fn init(data: &DataDir, args: &InitArgs) -> anyhow::Result<()> {
    let validity = Validity::new(date_from_today(0), date_from_today(ISSUER_DAYS))
        .context("the issuer's validity dates")?;
    let settings = Settings {
        id: args.id.clone(),
        currency: args.currency,
    };
    let bank = data.create_bank(settings, validity)?;
    let fingerprint = bank.keys.organisation().fingerprint();
    let dir = data.bank_dir();
    emit(
        args.json,
        &format!(
            "bank {} created in {} (currency {:03}); identity fingerprint {fingerprint}\nnext: `linkcard bank offer --credit ID --out offer.json`",
            args.id,
            dir.display(),
            args.currency
        ),
        &json!({"bank": args.id, "dir": dir.display().to_string(), "currency": args.currency,
                "identity_fingerprint": fingerprint.to_hex()}),
    );
    Ok(())
}

fn offer(data: &DataDir, args: &OfferArgs) -> anyhow::Result<()> {
    let bank = data.bank()?;
    let validity = Validity::new(date_from_today(0), date_from_today(CONTRACT_DAYS))
        .context("the contract's validity dates")?;
    let bytes = bank
        .keys
        .export_offer(args.credit.as_bytes(), validity)
        .context("cannot make the offer")?;
    write_new(&args.out, &bytes)?;
    let fingerprint = bank.keys.organisation().fingerprint();
    let identity = data.bank_dir().join(contract::paths::IDENTITY_PUB);
    emit(
        args.json,
        &format!(
            "offer to {} written to {}\nsend it with {} (the bank's identity); its fingerprint, to compare by another channel:\n    {fingerprint}",
            args.credit,
            args.out.display(),
            identity.display()
        ),
        &json!({"credit": args.credit, "offer": args.out.display().to_string(),
                "bank_identity": identity.display().to_string(), "identity_fingerprint": fingerprint.to_hex(),
                "valid_until": validity.until.to_string()}),
    );
    Ok(())
}

fn import_acceptance(data: &DataDir, args: &ImportAcceptanceArgs) -> anyhow::Result<()> {
    let mut bank = data.bank()?;
    let identity = read_identity(&args.credit_identity).with_context(|| {
        format!(
            "cannot read the credit company's identity key {}",
            args.credit_identity.display()
        )
    })?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let contract = bank
        .keys
        .import_acceptance(&bytes, &identity, date_from_today(0))
        .with_context(|| format!("{} is refused", args.file.display()))?;
    bank.keys.save_contract(&contract)?;
    let credit_id = contract.credit_id().to_vec();
    let validity = contract.validity();
    bank.system.add_contract(
        request_id(),
        &BankSideContract {
            credit_id: credit_id.clone(),
            hpke_key: contract.hpke_key().clone(),
            valid_until: validity.until,
            active: true,
        },
    )?;
    let credit = String::from_utf8_lossy(&credit_id).into_owned();
    let fingerprint = Fingerprint::of(&identity);
    emit(
        args.json,
        &format!(
            "contract with credit company {credit} in force until {} (credit identity fingerprint {fingerprint}): this bank takes early payments for it",
            validity.until
        ),
        &json!({"credit": credit, "valid_until": validity.until.to_string(),
                "credit_identity_fingerprint": fingerprint.to_hex()}),
    );
    Ok(())
}

fn add_customer(data: &DataDir, args: &CustomerAddArgs) -> anyhow::Result<()> {
    let mut bank = data.bank()?;
    let currency = bank.settings.currency;
    bank.system.add_customer(
        request_id(),
        &NewCustomer {
            user_id: args.user.clone(),
            name: args.name.clone(),
            account_number: args.account.clone(),
            currency,
        },
    )?;
    emit(
        args.json,
        &format!(
            "customer {} ({}) opened with account {}",
            args.user, args.name, args.account
        ),
        &json!({"user": args.user, "name": args.name, "account": args.account, "currency": currency}),
    );
    Ok(())
}

fn cash_in(data: &DataDir, args: &CashInArgs) -> anyhow::Result<()> {
    let mut bank = data.bank()?;
    let currency = bank.settings.currency;
    let amount = money::parse(&args.amount, currency).map_err(anyhow::Error::msg)?;
    bank.system.cash_in(request_id(), &args.user, amount)?;
    let balances = bank.system.balances(&args.user)?;
    emit(
        args.json,
        &format!(
            "{} paid in for {}: personal account {}",
            money::format(amount, currency),
            args.user,
            money::format(balances.personal, currency)
        ),
        &json!({"user": args.user, "amount": amount, "currency": currency, "personal": balances.personal}),
    );
    Ok(())
}

fn balance(data: &DataDir, args: &BalanceArgs) -> anyhow::Result<()> {
    let mut bank = data.bank()?;
    let b = bank.system.balances(&args.user)?;
    let f = |amount| money::format(amount, b.currency);
    emit(
        args.json,
        &format!(
            "{}: personal account {}, pool {} (of which held {})",
            args.user,
            f(b.personal),
            f(b.pool),
            f(b.pool_held)
        ),
        &json!({"user": args.user, "currency": b.currency, "personal": b.personal, "pool": b.pool,
                "pool_held": b.pool_held}),
    );
    Ok(())
}
