//! [`Bank`]: each call is one idempotent request in one durable ledger transaction.

use chacha20::ChaCha20Rng;
use chacha20::rand_core::Rng;
use ledger::{
    Account, AccountFlags, Currency, Ledger, LedgerError, LedgerTables, NewAccount, NewTransfer,
    Request, RequestId, Store, Transaction, TransferKind,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ids::{
    self, AccountKind, account_id, cash_in_transfer, hold_transfer, ledger_request,
    resolution_transfer, transfer_code,
};
use crate::records::{
    self, CONTRACTS, CUSTOMERS, ContractRecord, CustomerRecord, DEPOSITS, DEPOSITS_BY_USER,
    DepositAnswer, META, META_KEY, Meta, StoredDeposit, decode, encode, load, request_body, save,
};
use crate::{
    Balances, BankConfig, BankError, CreditContract, Deposit, DepositRecord, DepositRequest,
    DepositState, NewCustomer, Source, add_days,
};

const NANOS_PER_SECOND: u64 = 1_000_000_000;
const MAX_PARTY_ID: usize = 16;

/// What the operations need besides the transaction.
pub(crate) struct Context {
    pub(crate) config: BankConfig,
    token_key: token::BankSigningKey,
    rng: ChaCha20Rng,
}

impl std::fmt::Debug for Context {
    // The signing key and the generator's state stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The bank system on a ledger store.
#[derive(Debug)]
pub struct Bank<S> {
    pub(crate) ledger: Ledger<S>,
    pub(crate) context: Context,
}

impl<S: Store> Bank<S> {
    /// Opens the bank on `store`, creating its records and its cash account on first open; reopening with the
    /// same bank id and currency changes nothing, with others is refused.
    pub fn open(
        store: S,
        config: BankConfig,
        token_key: token::BankSigningKey,
    ) -> Result<Self, BankError> {
        check_config(&config)?;
        let mut ledger = Ledger::new(store);
        let mut tx = ledger.transaction()?;
        match load::<Meta>(&mut tx, META, META_KEY)? {
            Some(meta) if meta.bank_id != config.bank_id || meta.currency != config.currency => {
                return Err(BankError::ConfigMismatch {
                    stored_bank_id: meta.bank_id,
                    stored_currency: meta.currency,
                    bank_id: config.bank_id,
                    currency: config.currency,
                });
            }
            Some(_) => {}
            None => {
                let meta = Meta {
                    bank_id: config.bank_id.clone(),
                    currency: config.currency,
                    customers: 0,
                    contracts: 0,
                };
                open_cash_account(&mut tx, config.currency)?;
                save(&mut tx, META, META_KEY, &meta)?;
            }
        }
        tx.commit()?;
        let rng = token::os_rng()?;
        Ok(Self {
            ledger,
            context: Context {
                config,
                token_key,
                rng,
            },
        })
    }

    /// The ledger underneath (for reports and invariant checks).
    pub fn ledger(&mut self) -> &mut Ledger<S> {
        &mut self.ledger
    }

    pub fn config(&self) -> &BankConfig {
        &self.context.config
    }

    /// Opens a customer with their personal account and their pool sub-account.
    pub fn add_customer(
        &mut self,
        request: RequestId,
        customer: &NewCustomer,
    ) -> Result<(), BankError> {
        let body = request_body(&(
            &customer.user_id,
            &customer.name,
            &customer.account_number,
            customer.currency,
        ))?;
        self.run(request, "bank.add_customer", &body, |tx, _| {
            add_customer_in(tx, request, customer)
        })
    }

    /// Cash paid into the customer's personal account; answers their balances after it.
    pub fn cash_in(
        &mut self,
        request: RequestId,
        user_id: &str,
        amount: u64,
    ) -> Result<Balances, BankError> {
        let body = request_body(&(user_id, amount))?;
        let answer: (u16, u64, u64, u64) = self.run(request, "bank.cash_in", &body, |tx, _| {
            let balances = cash_in_in(tx, request, user_id, amount)?;
            Ok((
                balances.currency,
                balances.personal,
                balances.pool,
                balances.pool_held,
            ))
        })?;
        let (currency, personal, pool, pool_held) = answer;
        Ok(Balances {
            currency,
            personal,
            pool,
            pool_held,
        })
    }

    /// Adds a contract with a credit company and its settlement account, or replaces the key, term and status
    /// of an existing one (its settlement account stays).
    pub fn add_contract(
        &mut self,
        request: RequestId,
        contract: &CreditContract,
    ) -> Result<(), BankError> {
        let body = request_body(&contract_record(contract, 0))?;
        self.run(request, "bank.add_contract", &body, |tx, context| {
            add_contract_in(tx, context, contract)
        })
    }

    pub fn contracts(&mut self) -> Result<Vec<CreditContract>, BankError> {
        let mut tx = self.ledger.transaction()?;
        tx.scan_prefix(CONTRACTS, b"")?
            .iter()
            .map(|(_, value)| public_contract(&decode(value, CONTRACTS)?))
            .collect()
    }

    /// Takes a deposit for a credit bill (Fig. 7): holds the money for the pool and mints the token.
    pub fn deposit(
        &mut self,
        request: RequestId,
        deposit: &DepositRequest,
    ) -> Result<Deposit, BankError> {
        let body = deposit_body(deposit)?;
        let answer: DepositAnswer = self.run(request, "bank.deposit", &body, |tx, context| {
            deposit_in(tx, context, request, deposit)
        })?;
        Ok(public_deposit(answer))
    }

    /// Takes several deposits in one durable commit (group commit): each is all-or-nothing and answered on its
    /// own, a refusal undoing only its own changes. The outer error (storage failed) means none was taken.
    pub fn deposit_batch(
        &mut self,
        deposits: &[(RequestId, DepositRequest)],
    ) -> Result<Vec<Result<Deposit, BankError>>, BankError> {
        let Self { ledger, context } = self;
        let mut tx = ledger.transaction()?;
        let mut answers = Vec::with_capacity(deposits.len());
        for (request, deposit) in deposits {
            let body = deposit_body(deposit)?;
            let answer = tx.idempotent(*request, "bank.deposit", &body, |tx| {
                Ok(encode(&deposit_in(tx, context, *request, deposit)?))
            });
            match answer {
                Ok(bytes) => {
                    answers.push(decode(&bytes.into_inner(), "answer").map(public_deposit))
                }
                Err(BankError::Ledger(error)) if !error.is_refusal() => {
                    return Err(BankError::Ledger(error));
                }
                Err(refusal) => answers.push(Err(refusal)),
            }
        }
        tx.commit()?;
        Ok(answers)
    }

    /// The card stored the token: the held money goes into the pool. Confirming twice is harmless.
    pub fn confirm_deposit(
        &mut self,
        request: RequestId,
        token_id: &[u8; 16],
    ) -> Result<(), BankError> {
        self.run(request, "bank.confirm_deposit", token_id, |tx, _| {
            resolve_in(tx, request, token_id, Resolution::Confirm)
        })
    }

    /// The card refused the token: the held money goes back to its source. Cancelling twice is harmless.
    pub fn cancel_deposit(
        &mut self,
        request: RequestId,
        token_id: &[u8; 16],
    ) -> Result<(), BankError> {
        self.run(request, "bank.cancel_deposit", token_id, |tx, _| {
            resolve_in(tx, request, token_id, Resolution::Cancel)
        })
    }

    /// The customer `user_id` as opened (the issuer personalizes the bank applet with the name and account).
    pub fn customer(&mut self, user_id: &str) -> Result<NewCustomer, BankError> {
        let mut tx = self.ledger.transaction()?;
        let record = customer(&mut tx, user_id)?;
        Ok(NewCustomer {
            user_id: record.user_id,
            name: record.name,
            account_number: record.account_number,
            currency: record.currency,
        })
    }

    pub fn balances(&mut self, user_id: &str) -> Result<Balances, BankError> {
        let mut tx = self.ledger.transaction()?;
        let customer = customer(&mut tx, user_id)?;
        balances_in(&mut tx, &customer)
    }

    /// The pool account in `currency`: the sum of the customers' confirmed deposits still there.
    pub fn pool_total(&mut self, currency: u16) -> Result<u64, BankError> {
        let mut tx = self.ledger.transaction()?;
        let mut total: u64 = 0;
        for account in tx.all_accounts()? {
            if account.code == AccountKind::Pool.code() && account.currency == Currency(currency) {
                total = total
                    .checked_add(to_u64(posted_balance(&account))?)
                    .ok_or(BankError::PoolTotalOverflow { currency })?;
            }
        }
        Ok(total)
    }

    /// The customer's deposits, by token id.
    pub fn deposits_of(&mut self, user_id: &str) -> Result<Vec<DepositRecord>, BankError> {
        let mut tx = self.ledger.transaction()?;
        customer(&mut tx, user_id)?;
        let prefix = [user_id.as_bytes(), &[0]].concat();
        let mut deposits = Vec::new();
        for (key, _) in tx.scan_prefix(DEPOSITS_BY_USER, &prefix)? {
            let token_id = &key[prefix.len()..];
            let stored: StoredDeposit =
                load(&mut tx, DEPOSITS, token_id)?.ok_or(BankError::Corrupt { what: DEPOSITS })?;
            deposits.push(stored.public());
        }
        Ok(deposits)
    }

    /// Voids the holds not confirmed or cancelled whose time is up at `now_unix_seconds`; answers how many.
    pub fn expire_holds(&mut self, now_unix_seconds: u64) -> Result<usize, BankError> {
        let Self { ledger, context } = self;
        // Not a client request: a fresh id, so that each call expires what is due at its own time.
        let request = RequestId(
            u128::from(context.rng.next_u64()) << 64 | u128::from(context.rng.next_u64()),
        );
        let mut tx = ledger.transaction()?;
        let expired = expire_due(&mut tx, request, seconds_to_nanos(now_unix_seconds))?;
        tx.commit()?;
        Ok(expired)
    }

    /// Runs `work` as the idempotent request `request` (kind, canonical body) and commits it.
    fn run<A: Serialize + DeserializeOwned>(
        &mut self,
        request: RequestId,
        kind: &str,
        body: &[u8],
        work: impl FnOnce(&mut S::Tx<'_>, &mut Context) -> Result<A, BankError>,
    ) -> Result<A, BankError> {
        let Self { ledger, context } = self;
        let mut tx = ledger.transaction()?;
        let answer = tx.idempotent(request, kind, body, |tx| {
            Ok::<_, BankError>(encode(&work(tx, context)?))
        })?;
        tx.commit()?;
        decode(&answer.into_inner(), "answer")
    }
}

fn check_config(config: &BankConfig) -> Result<(), BankError> {
    let reason = if !(1..=MAX_PARTY_ID).contains(&config.bank_id.len()) {
        "the bank id must be 1-16 bytes"
    } else if !(1..=token::MAX_CURRENCY).contains(&config.currency) {
        "the currency must be an ISO 4217 numeric code, 1-999"
    } else if config.deposit_hold_seconds == 0 {
        "the deposit hold must last at least one second"
    } else {
        return Ok(());
    };
    Err(BankError::InvalidConfig { reason })
}

fn seconds_to_nanos(seconds: u64) -> u64 {
    seconds.saturating_mul(NANOS_PER_SECOND)
}

pub(crate) fn to_u64(amount: u128) -> Result<u64, BankError> {
    u64::try_from(amount).map_err(|_| BankError::Corrupt { what: "balance" })
}

/// Posted credits less posted debits (what an account holds once its holds are settled).
pub(crate) fn posted_balance(account: &Account) -> u128 {
    account.credits_posted.saturating_sub(account.debits_posted)
}

/// Posted balance less the holds on it: what may still be spent.
pub(crate) fn available(account: &Account) -> u128 {
    posted_balance(account).saturating_sub(account.debits_pending)
}

pub(crate) fn load_account(tx: &mut impl Transaction, id: u128) -> Result<Account, BankError> {
    tx.load_account(id)?
        .ok_or(BankError::Corrupt { what: "account" })
}

/// The cash account of a currency, opened once (the same ledger request id every time, so later calls replay).
fn open_cash_account(tx: &mut impl Transaction, currency: u16) -> Result<(), BankError> {
    let account = NewAccount {
        id: account_id(AccountKind::Cash, currency, 0),
        currency: Currency(currency),
        code: AccountKind::Cash.code(),
        flags: AccountFlags::default(),
        user_data: ids::user_data(b"cash"),
    };
    tx.create_account(
        ledger_request(RequestId(u128::from(currency)), "open cash account"),
        account,
    )?;
    Ok(())
}

pub(crate) fn owned_account(
    kind: AccountKind,
    currency: u16,
    serial: u64,
    owner: &[u8],
) -> NewAccount {
    NewAccount {
        id: account_id(kind, currency, serial),
        currency: Currency(currency),
        code: kind.code(),
        flags: AccountFlags {
            debits_must_not_exceed_credits: true,
            credits_must_not_exceed_debits: false,
        },
        user_data: ids::user_data(owner),
    }
}

fn meta(tx: &mut impl Transaction) -> Result<Meta, BankError> {
    load(tx, META, META_KEY)?.ok_or(BankError::Corrupt { what: META })
}

pub(crate) fn customer(
    tx: &mut impl Transaction,
    user_id: &str,
) -> Result<CustomerRecord, BankError> {
    load(tx, CUSTOMERS, user_id.as_bytes())?.ok_or_else(|| BankError::UnknownCustomer {
        user_id: user_id.to_owned(),
    })
}

fn printable(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len()) && text.bytes().all(|b| (0x20..=0x7E).contains(&b))
}

fn check_customer(customer: &NewCustomer) -> Result<(), BankError> {
    let (field, rule) = if !printable(&customer.user_id, token::MAX_USER_ID) {
        ("user id", "1-32 printable ASCII characters")
    } else if !(1..=token::MAX_USER_NAME).contains(&customer.name.len()) {
        ("name", "1-48 bytes of UTF-8")
    } else if !printable(&customer.account_number, token::MAX_BANK_ACCOUNT) {
        ("account number", "1-34 printable ASCII characters")
    } else if !(1..=token::MAX_CURRENCY).contains(&customer.currency) {
        ("currency", "an ISO 4217 numeric code, 1-999")
    } else {
        return Ok(());
    };
    Err(BankError::InvalidCustomer { field, rule })
}

fn add_customer_in(
    tx: &mut impl Transaction,
    request: RequestId,
    new: &NewCustomer,
) -> Result<(), BankError> {
    check_customer(new)?;
    if tx.get(CUSTOMERS, new.user_id.as_bytes())?.is_some() {
        return Err(BankError::CustomerExists {
            user_id: new.user_id.clone(),
        });
    }
    let mut meta = meta(tx)?;
    meta.customers += 1;
    let serial = meta.customers;
    open_cash_account(tx, new.currency)?;
    let owner = new.user_id.as_bytes();
    let accounts = vec![
        owned_account(AccountKind::Personal, new.currency, serial, owner),
        owned_account(AccountKind::Pool, new.currency, serial, owner),
    ];
    tx.apply(
        ledger_request(request, "open customer accounts"),
        &Request::CreateAccounts(accounts),
    )?;
    let record = CustomerRecord {
        user_id: new.user_id.clone(),
        name: new.name.clone(),
        account_number: new.account_number.clone(),
        currency: new.currency,
        serial,
    };
    save(tx, CUSTOMERS, owner, &record)?;
    save(tx, META, META_KEY, &meta)
}

fn balances_in(
    tx: &mut impl Transaction,
    customer: &CustomerRecord,
) -> Result<Balances, BankError> {
    let personal = load_account(
        tx,
        account_id(AccountKind::Personal, customer.currency, customer.serial),
    )?;
    let pool = load_account(
        tx,
        account_id(AccountKind::Pool, customer.currency, customer.serial),
    )?;
    Ok(Balances {
        currency: customer.currency,
        personal: to_u64(available(&personal))?,
        pool: to_u64(posted_balance(&pool))?,
        pool_held: to_u64(pool.credits_pending)?,
    })
}

fn cash_in_in(
    tx: &mut impl Transaction,
    request: RequestId,
    user_id: &str,
    amount: u64,
) -> Result<Balances, BankError> {
    let customer = customer(tx, user_id)?;
    if amount == 0 {
        return Err(BankError::AmountZero);
    }
    let personal_id = account_id(AccountKind::Personal, customer.currency, customer.serial);
    let personal = load_account(tx, personal_id)?;
    if posted_balance(&personal) + u128::from(amount) > u128::from(u64::MAX) {
        return Err(BankError::AmountOverflow {
            user_id: user_id.to_owned(),
            account: "personal",
            amount,
        });
    }
    let transfer = NewTransfer {
        id: cash_in_transfer(request),
        debit_account_id: account_id(AccountKind::Cash, customer.currency, 0),
        credit_account_id: personal_id,
        amount: u128::from(amount),
        currency: Currency(customer.currency),
        code: transfer_code::CASH_IN,
        user_data: ids::user_data(user_id.as_bytes()),
        kind: TransferKind::Single,
    };
    tx.create_transfer(ledger_request(request, "cash in"), transfer)?;
    balances_in(tx, &customer)
}

pub(crate) fn contract_record(contract: &CreditContract, serial: u64) -> ContractRecord {
    ContractRecord {
        credit_id: contract.credit_id.clone(),
        hpke_key: contract.hpke_key.to_sec1().to_vec(),
        valid_until: contract.valid_until.0,
        active: contract.active,
        serial,
    }
}

fn public_contract(record: &ContractRecord) -> Result<CreditContract, BankError> {
    Ok(CreditContract {
        credit_id: record.credit_id.clone(),
        hpke_key: token::CreditPublicKey::from_sec1(&record.hpke_key)
            .map_err(|_| BankError::Corrupt { what: CONTRACTS })?,
        valid_until: token::Date(record.valid_until),
        active: record.active,
    })
}

fn add_contract_in(
    tx: &mut impl Transaction,
    context: &Context,
    contract: &CreditContract,
) -> Result<(), BankError> {
    if !(1..=MAX_PARTY_ID).contains(&contract.credit_id.len()) {
        return Err(BankError::InvalidCreditId {
            length: contract.credit_id.len(),
        });
    }
    if contract.valid_until.ymd().is_none() {
        return Err(BankError::InvalidDate {
            what: "the contract's last day",
        });
    }
    let key = contract.credit_id.as_slice();
    if let Some(existing) = load::<ContractRecord>(tx, CONTRACTS, key)? {
        return save(
            tx,
            CONTRACTS,
            key,
            &contract_record(contract, existing.serial),
        );
    }
    let mut meta = meta(tx)?;
    meta.contracts += 1;
    let settlement = owned_account(
        AccountKind::Settlement,
        context.config.currency,
        meta.contracts,
        key,
    );
    // Keyed by the contract, not the request: the settlement account is opened once whatever the request.
    tx.create_account(
        ledger_request(RequestId(meta.contracts.into()), "open settlement account"),
        settlement,
    )?;
    save(
        tx,
        CONTRACTS,
        key,
        &contract_record(contract, meta.contracts),
    )?;
    save(tx, META, META_KEY, &meta)
}

fn deposit_body(deposit: &DepositRequest) -> Result<Vec<u8>, BankError> {
    request_body(&(
        &deposit.user_id,
        hex::encode_upper(&deposit.credit_id),
        deposit.amount,
        deposit.currency,
        deposit.source,
        &deposit.card.pan,
        hex::encode_upper(deposit.card.card_binding),
        deposit.today.0,
        deposit.now_unix_seconds,
    ))
}

fn public_deposit(answer: DepositAnswer) -> Deposit {
    Deposit {
        token: answer.token,
        token_id: answer.token_id,
        amount: answer.amount,
        currency: answer.currency,
        valid_until: token::Date(answer.valid_until),
    }
}

/// A deposit that passed its checks: who, for whom, between which accounts.
struct Checked {
    customer: CustomerRecord,
    credit_key: token::CreditPublicKey,
    source_account: u128,
    pool_account: u128,
    valid_until: token::Date,
}

/// Steps 701-702: the contract first (706 if there is none), then the customer, the amount and the funds.
fn check_deposit(
    tx: &mut impl Transaction,
    context: &Context,
    deposit: &DepositRequest,
) -> Result<Checked, BankError> {
    let credit_id = deposit.credit_id.clone();
    let contract = load::<ContractRecord>(tx, CONTRACTS, &deposit.credit_id)?.ok_or(
        BankError::NoContract {
            credit_id: credit_id.clone(),
        },
    )?;
    let contract = public_contract(&contract)?;
    if !contract.active {
        return Err(BankError::ContractInactive { credit_id });
    }
    if deposit.today.ymd().is_none() {
        return Err(BankError::InvalidDate { what: "today" });
    }
    if contract.valid_until < deposit.today {
        return Err(BankError::ContractExpired {
            credit_id,
            valid_until: contract.valid_until,
            today: deposit.today,
        });
    }
    let customer = customer(tx, &deposit.user_id)?;
    if deposit.amount == 0 {
        return Err(BankError::AmountZero);
    }
    if deposit.currency != customer.currency {
        return Err(BankError::CurrencyMismatch {
            user_id: customer.user_id,
            account_currency: customer.currency,
            currency: deposit.currency,
        });
    }
    let pan = &deposit.card.pan;
    if !token::PAN_DIGITS.contains(&pan.len()) || !pan.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BankError::InvalidPan);
    }
    let valid_until = add_days(deposit.today, context.config.token_validity_days).ok_or(
        BankError::InvalidDate {
            what: "the token's last day",
        },
    )?;
    let (source_account, pool_account) = check_funds(tx, &customer, deposit)?;
    Ok(Checked {
        customer,
        credit_key: contract.hpke_key,
        source_account,
        pool_account,
        valid_until,
    })
}

/// The source has the amount, and the pool sub-account can take it: answers (source, pool) account ids.
fn check_funds(
    tx: &mut impl Transaction,
    customer: &CustomerRecord,
    deposit: &DepositRequest,
) -> Result<(u128, u128), BankError> {
    let amount = u128::from(deposit.amount);
    let (currency, serial) = (customer.currency, customer.serial);
    let source_account = match deposit.source {
        Source::Cash => account_id(AccountKind::Cash, currency, 0),
        Source::PersonalAccount => {
            let personal = load_account(tx, account_id(AccountKind::Personal, currency, serial))?;
            if available(&personal) < amount {
                return Err(BankError::InsufficientFunds {
                    user_id: customer.user_id.clone(),
                    available: to_u64(available(&personal))?,
                    amount: deposit.amount,
                });
            }
            personal.id
        }
    };
    let pool = load_account(tx, account_id(AccountKind::Pool, currency, serial))?;
    if posted_balance(&pool) + pool.credits_pending + amount > u128::from(u64::MAX) {
        return Err(BankError::AmountOverflow {
            user_id: customer.user_id.clone(),
            account: "pool",
            amount: deposit.amount,
        });
    }
    Ok((source_account, pool.id))
}

fn mint_token(
    context: &mut Context,
    checked: &Checked,
    deposit: &DepositRequest,
    token_id: [u8; 16],
) -> Result<Vec<u8>, BankError> {
    let body = token::TokenBody {
        user_name: checked.customer.name.clone(),
        user_id: checked.customer.user_id.clone(),
        sum: deposit.amount,
        currency: deposit.currency,
        deposit_date: deposit.today,
        token_id,
        valid_from: deposit.today,
        valid_until: checked.valid_until,
        bank_id: context.config.bank_id.clone(),
        bank_account: checked.customer.account_number.clone(),
        credit_id: deposit.credit_id.clone(),
        pan: deposit.card.pan.clone(),
        card_binding: deposit.card.card_binding,
    };
    Ok(token::mint(
        &body,
        &context.token_key,
        &checked.credit_key,
        &mut context.rng,
    )?)
}

/// Steps 703-704: the hold for the pool, the token, the record, in the caller's transaction.
fn deposit_in(
    tx: &mut impl Transaction,
    context: &mut Context,
    request: RequestId,
    deposit: &DepositRequest,
) -> Result<DepositAnswer, BankError> {
    let checked = check_deposit(tx, context, deposit)?;
    let hold_ends = deposit
        .now_unix_seconds
        .saturating_add(context.config.deposit_hold_seconds);
    let mut token_id = [0u8; 16];
    context.rng.fill_bytes(&mut token_id);
    let token = mint_token(context, &checked, deposit, token_id)?;
    let hold = NewTransfer {
        id: hold_transfer(&token_id),
        debit_account_id: checked.source_account,
        credit_account_id: checked.pool_account,
        amount: u128::from(deposit.amount),
        currency: Currency(deposit.currency),
        code: transfer_code::DEPOSIT,
        user_data: ids::user_data(&token_id),
        kind: TransferKind::Pending {
            expires_at: seconds_to_nanos(hold_ends),
        },
    };
    match tx.create_transfer(ledger_request(request, "deposit hold"), hold) {
        Ok(_) => {}
        Err(LedgerError::ExpiryNotInFuture { .. }) => {
            return Err(BankError::ClockBehind {
                hold_ends_unix_seconds: hold_ends,
            });
        }
        Err(error) => return Err(error.into()),
    }
    let record = StoredDeposit {
        token_id,
        user_id: deposit.user_id.clone(),
        credit_id: deposit.credit_id.clone(),
        amount: deposit.amount,
        currency: deposit.currency,
        source: deposit.source,
        deposit_date: deposit.today.0,
        valid_until: checked.valid_until.0,
        state: DepositState::Held,
        settled: 0,
    };
    save(tx, DEPOSITS, &token_id, &record)?;
    let index = records::deposit_index_key(&deposit.user_id, &token_id);
    tx.put(DEPOSITS_BY_USER, &index, &[])?;
    Ok(DepositAnswer {
        token,
        token_id,
        amount: deposit.amount,
        currency: deposit.currency,
        valid_until: checked.valid_until.0,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    Confirm,
    Cancel,
}

/// Posts (confirm) or voids (cancel) a deposit's hold; a hold already resolved the same way is left as it is.
fn resolve_in(
    tx: &mut impl Transaction,
    request: RequestId,
    token_id: &[u8; 16],
    resolution: Resolution,
) -> Result<(), BankError> {
    let mut stored: StoredDeposit =
        load(tx, DEPOSITS, token_id)?.ok_or(BankError::UnknownDeposit {
            token_id: *token_id,
        })?;
    let token_id = *token_id;
    match (stored.state, resolution) {
        (DepositState::Held, _) => {}
        (DepositState::Confirmed, Resolution::Confirm)
        | (DepositState::Cancelled | DepositState::Expired, Resolution::Cancel) => return Ok(()),
        (DepositState::Confirmed, Resolution::Cancel) => {
            return Err(BankError::DepositConfirmed { token_id });
        }
        (DepositState::Cancelled, Resolution::Confirm) => {
            return Err(BankError::DepositCancelled { token_id });
        }
        (DepositState::Expired, Resolution::Confirm) => {
            return Err(BankError::DepositExpired { token_id });
        }
    }
    let hold = tx
        .load_transfer(hold_transfer(&token_id))?
        .ok_or(BankError::Corrupt {
            what: "deposit hold",
        })?;
    let transfer = match resolution {
        Resolution::Confirm => {
            NewTransfer::post(resolution_transfer(&token_id), &hold, hold.amount)
        }
        Resolution::Cancel => NewTransfer::void(resolution_transfer(&token_id), &hold),
    };
    match tx.create_transfer(ledger_request(request, "resolve hold"), transfer) {
        Ok(_) => {}
        // Its time is up but no one has expired it yet: too late to confirm; a cancel expires it now.
        Err(LedgerError::PendingExpired { .. }) => {
            let TransferKind::Pending { expires_at } = hold.kind else {
                return Err(BankError::Corrupt {
                    what: "deposit hold",
                });
            };
            if resolution == Resolution::Confirm {
                return Err(BankError::DepositExpired { token_id });
            }
            expire_due(tx, ledger_request(request, "expire holds"), expires_at)?;
            return Ok(());
        }
        Err(error) => return Err(error.into()),
    }
    stored.state = match resolution {
        Resolution::Confirm => DepositState::Confirmed,
        Resolution::Cancel => DepositState::Cancelled,
    };
    save(tx, DEPOSITS, &token_id, &stored)
}

/// Expires every hold due at `now` (nanoseconds) and marks its deposit expired; answers how many.
fn expire_due(tx: &mut impl Transaction, request: RequestId, now: u64) -> Result<usize, BankError> {
    let mut expired = 0;
    for transfer in tx.expire_pending(request, now)? {
        let token_id = transfer.to_be_bytes();
        if let Some(mut stored) = load::<StoredDeposit>(tx, DEPOSITS, &token_id)? {
            stored.state = DepositState::Expired;
            save(tx, DEPOSITS, &token_id, &stored)?;
            expired += 1;
        }
    }
    Ok(expired)
}
