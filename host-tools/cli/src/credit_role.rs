//! `linkcard credit …`: the credit service program (patent Fig. 9, 10): the company's keys, the contract accepted
//! from a bank, cardholders and their credit.

use std::path::PathBuf;

use anyhow::Context as _;
use card_client::scp11::date_from_today;
use clap::{Args, Subcommand};
use contract::{CreditAppletParameters, Fingerprint, read_identity};
use credit::NewCardholder;
use serde_json::json;

use crate::datadir::{DataDir, Settings};
use crate::hosts::request_id;
use crate::money;
use crate::report::{JsonFlag, emit, parse_currency, parse_id, write_new};

#[derive(Debug, Subcommand)]
pub enum CreditCommand {
    /// Create the credit company: its keys (identity, HPKE, POS CA) and its database.
    #[command(after_help = "Example:\n    linkcard credit init --id CRED0001 --currency 392")]
    Init(InitArgs),
    /// Accept a bank's offer (Fig. 9): the contract is saved, the bank's token key trusted, the acceptance written.
    #[command(
        after_help = "Example:\n    linkcard credit accept offer.json --bank-identity bank-identity.pub --out acceptance.json\nCompare the fingerprint printed with the one the bank reads out; send acceptance.json and\nDIR/credit/identity.pub back to the bank."
    )]
    Accept(AcceptArgs),
    /// The company's cardholders.
    #[command(subcommand)]
    Cardholder(CardholderCommand),
    /// Settlement day, step 1101: the deduction data for one bank (pain.008, signed).
    #[command(
        after_help = "Example:\n    linkcard credit statement --bank BANK0001 --date 2027-01-10\nSend the file and its .sig to the bank; running it again resumes or rewrites the same file."
    )]
    Statement(crate::settlement::StatementArgs),
    /// Settlement day, step 1102: import the bank's status report and transfer notice; flag every temporary
    /// credit no deposit backs.
    #[command(
        after_help = "Example:\n    linkcard credit reconcile --report RP-ST-BANK0001-2027-01-10.xml --notice NT-ST-BANK0001-2027-01-10.xml"
    )]
    Reconcile(crate::settlement::ReconcileArgs),
    /// A cardholder's credit: limit, outstanding, temporary credits, available.
    #[command(after_help = "Example:\n    linkcard credit account --cardholder CH-000042 --json")]
    Account(AccountArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The credit company id (1-16 ASCII characters), as in the tokens it accepts.
    #[arg(long, value_parser = parse_id)]
    id: String,
    /// ISO 4217 numeric currency of the accounts.
    #[arg(long, default_value = "392", value_parser = parse_currency)]
    currency: u16,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct AcceptArgs {
    /// The offer bundle the bank sent.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The bank's identity public key (PEM), handed over out of band.
    #[arg(long, value_name = "PEM")]
    bank_identity: PathBuf,
    /// Where to write the acceptance (must not exist).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Wrong cardholder PINs a card allows before it blocks (1-15); 0: the cards ask no PIN.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(0..=15))]
    pin_tries: u8,
    /// The highest transaction counter a card may reach.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..))]
    atc_limit: u32,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Debug, Subcommand)]
pub enum CardholderCommand {
    /// Register a cardholder with a credit limit.
    #[command(
        after_help = "Example:\n    linkcard credit cardholder add --id CH-000042 --name \"Hanako Yamada\" --limit 10,000"
    )]
    Add(CardholderAddArgs),
}

#[derive(Debug, Args)]
pub struct CardholderAddArgs {
    /// The cardholder id.
    #[arg(long)]
    id: String,
    /// The cardholder's name.
    #[arg(long)]
    name: String,
    /// The credit limit, in the company's currency (10000, 10,000 or 100.00).
    #[arg(long, allow_negative_numbers = true)]
    limit: String,
    #[command(flatten)]
    json: JsonFlag,
}

#[derive(Debug, Args)]
pub struct AccountArgs {
    /// The cardholder.
    #[arg(long)]
    cardholder: String,
    #[command(flatten)]
    json: JsonFlag,
}

pub fn run_command(data: &DataDir, command: &CreditCommand) -> anyhow::Result<u8> {
    match command {
        CreditCommand::Init(args) => init(data, args),
        CreditCommand::Accept(args) => accept(data, args),
        CreditCommand::Cardholder(CardholderCommand::Add(args)) => add_cardholder(data, args),
        CreditCommand::Account(args) => account(data, args),
        CreditCommand::Statement(args) => return crate::settlement::statement(data, args),
        CreditCommand::Reconcile(args) => return crate::settlement::reconcile(data, args),
    }?;
    Ok(crate::EXIT_OK)
}

fn init(data: &DataDir, args: &InitArgs) -> anyhow::Result<()> {
    let settings = Settings {
        id: args.id.clone(),
        currency: args.currency,
    };
    let credit = data.create_credit(settings)?;
    let fingerprint = credit.keys.organisation().fingerprint();
    let dir = data.credit_dir();
    emit(
        args.json,
        &format!(
            "credit company {} created in {} (currency {:03}); identity fingerprint {fingerprint}\nnext: `linkcard credit accept offer.json --bank-identity PEM --out acceptance.json`",
            args.id,
            dir.display(),
            args.currency
        ),
        &json!({"credit": args.id, "dir": dir.display().to_string(), "currency": args.currency,
                "identity_fingerprint": fingerprint.to_hex()}),
    );
    Ok(())
}

fn accept(data: &DataDir, args: &AcceptArgs) -> anyhow::Result<()> {
    let mut credit = data.credit()?;
    let identity = read_identity(&args.bank_identity).with_context(|| {
        format!(
            "cannot read the bank's identity key {}",
            args.bank_identity.display()
        )
    })?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let contract = credit
        .keys
        .import_offer(&bytes, &identity, date_from_today(0))
        .with_context(|| format!("{} is refused", args.file.display()))?;
    let parameters = CreditAppletParameters {
        atc_limit: args.atc_limit,
        pin_try_limit: (args.pin_tries > 0).then_some(args.pin_tries),
    };
    // The delivery certificate runs as long as the contract the bank offered.
    let acceptance = credit
        .keys
        .export_acceptance(&contract, parameters, contract.validity())
        .context("cannot make the acceptance")?;
    // The file first: if it cannot be written, nothing is saved and the command can simply be run again.
    write_new(&args.out, &acceptance)?;
    credit.keys.save_contract(&contract)?;
    credit
        .system
        .trust_bank(request_id(), contract.bank_id(), *contract.token_key())?;
    let bank = String::from_utf8_lossy(contract.bank_id()).into_owned();
    let fingerprint = Fingerprint::of(&identity);
    let own_identity = data.credit_dir().join(contract::paths::IDENTITY_PUB);
    emit(
        args.json,
        &format!(
            "contract with bank {bank} accepted (bank identity fingerprint {fingerprint}); its tokens are trusted\nacceptance written to {}: send it with {}",
            args.out.display(),
            own_identity.display()
        ),
        &json!({"bank": bank, "acceptance": args.out.display().to_string(),
                "bank_identity_fingerprint": fingerprint.to_hex(),
                "credit_identity": own_identity.display().to_string(),
                "identity_fingerprint": credit.keys.organisation().fingerprint().to_hex(),
                "pin_tries": args.pin_tries, "atc_limit": args.atc_limit}),
    );
    Ok(())
}

fn add_cardholder(data: &DataDir, args: &CardholderAddArgs) -> anyhow::Result<()> {
    let mut credit = data.credit()?;
    let currency = credit.settings.currency;
    let limit = money::parse(&args.limit, currency).map_err(anyhow::Error::msg)?;
    credit.system.add_cardholder(
        request_id(),
        &NewCardholder {
            cardholder_id: args.id.clone(),
            name: args.name.clone(),
            credit_limit: limit,
            currency,
        },
    )?;
    emit(
        args.json,
        &format!(
            "cardholder {} ({}) registered with a credit limit of {}",
            args.id,
            args.name,
            money::format(limit, currency)
        ),
        &json!({"cardholder": args.id, "name": args.name, "limit": limit, "currency": currency}),
    );
    Ok(())
}

fn account(data: &DataDir, args: &AccountArgs) -> anyhow::Result<()> {
    let mut credit = data.credit()?;
    let a = credit.system.account(&args.cardholder)?;
    let f = |amount| money::format(amount, a.currency);
    emit(
        args.json,
        &format!(
            "{}: limit {}, outstanding {}, temporary credits {}, available {}",
            args.cardholder,
            f(a.limit),
            f(a.outstanding),
            f(a.pending_credits),
            f(a.available)
        ),
        &json!({"cardholder": args.cardholder, "currency": a.currency, "limit": a.limit,
                "outstanding": a.outstanding, "pending_credits": a.pending_credits, "available": a.available}),
    );
    Ok(())
}
