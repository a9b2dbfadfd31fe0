//! Settlement day at the bank (patent Fig. 8): the credit company's deduction data is settled user by user —
//! the due sum from the user's pool deposits for that company first, the rest from the personal account — and
//! the sum collected goes to the credit company in one batch transfer.
//!
//! Each deduction is settled once, its answer kept under (credit company, end-to-end id), in chunks of one
//! durable commit each ([`Settlement::settle`]); the batch transfer is one more ([`Settlement::finish`]). A run
//! that stops anywhere is completed by running the same file again: what was committed is replayed (the same
//! answers, nothing taken twice), the rest is done. The same deduction in another file is answered as a
//! duplicate (`AM05`) and takes nothing.

use interchange::{Deduction, DeductionStatus, ReasonCode, TokenConfirmation, TransactionStatus};
use ledger::{
    Currency, ImportError, Imported, NewTransfer, RequestId, Store, Transaction, TransferKind,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bank::{available, load_account, owned_account, posted_balance, to_u64};
use crate::ids::{
    self, AccountKind, SettlementTransfers, account_id, batch_transfer, ledger_request,
    transfer_code,
};
use crate::records::{
    CONTRACTS, CUSTOMERS, ContractRecord, CustomerRecord, DEPOSITS, DEPOSITS_BY_USER, SETTLED,
    SETTLEMENTS, StoredDeposit, load, request_body, save,
};
use crate::{Bank, BankError, DepositState};

/// A deduction file's group fields: what is settled, for whom, in what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementOrder {
    /// The deduction file's message id.
    pub message_id: String,
    /// The credit company that sent it (a contract of this bank).
    pub credit_id: Vec<u8>,
    pub collection_date: token::Date,
    /// Must be the bank's currency (its settlement accounts keep it).
    pub currency: u16,
}

/// What a settlement did, summed over every deduction of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SettlementSummary {
    pub deductions: u64,
    pub accepted: u64,
    pub partial: u64,
    pub rejected: u64,
    /// Deductions already settled under another file (answered `AM05`, nothing taken).
    pub duplicates: u64,
    pub due: u64,
    pub from_pool: u64,
    pub from_personal: u64,
    /// Due but not collected (insufficient funds, unknown accounts).
    pub shortfall: u64,
    /// Tokens the credit company listed that no pool deposit of this bank backs.
    pub unconfirmed_tokens: u64,
    /// When this settlement first ran (the same on every run: the files it writes are the same).
    pub started_unix_seconds: u64,
}

impl SettlementSummary {
    /// What goes to the credit company in the batch transfer.
    pub fn collected(&self) -> u64 {
        self.from_pool.saturating_add(self.from_personal)
    }

    fn add(&mut self, status: &DeductionStatus, duplicate: bool) {
        self.deductions += 1;
        match (duplicate, status.status) {
            (true, _) => self.duplicates += 1,
            (false, TransactionStatus::Accepted) => self.accepted += 1,
            (false, TransactionStatus::Partial) => self.partial += 1,
            (false, TransactionStatus::Rejected) => self.rejected += 1,
        }
        if duplicate {
            return;
        }
        let collected = status.from_pool.saturating_add(status.from_personal);
        self.due = self.due.saturating_add(status.due);
        self.from_pool = self.from_pool.saturating_add(status.from_pool);
        self.from_personal = self.from_personal.saturating_add(status.from_personal);
        self.shortfall = self
            .shortfall
            .saturating_add(status.due.saturating_sub(collected));
        self.unconfirmed_tokens += status.tokens.iter().filter(|t| !t.confirmed).count() as u64;
    }
}

/// A settlement's progress, kept so that a re-run writes the same files and knows the batch is posted.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SettlementRecord {
    started_unix_seconds: u64,
    /// The batch transfer's amount, once posted.
    transferred: Option<u64>,
    /// [`SETTLEMENT_FORMAT`]; 0 (absent) in settlements of earlier versions, which kept each deduction as a
    /// ledger request: settling them again here would take the money twice.
    #[serde(default)]
    format: u8,
}

/// Settlements whose deductions are kept in [`SETTLED`].
const SETTLEMENT_FORMAT: u8 = 2;

/// A settled deduction: the hash of what was asked (its canonical body) and the answer given.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SettledDeduction {
    request_hash: [u8; 32],
    answer: StoredStatus,
}

/// A deduction's answer as kept for replays: under which file it was settled, and what was done.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredStatus {
    message_id: String,
    status: u8,
    reason: Option<u8>,
    due: u64,
    from_pool: u64,
    from_personal: u64,
    /// (token id, confirmed, drawn, remaining).
    tokens: Vec<([u8; 16], bool, u64, u64)>,
}

/// One settlement in progress: [`Bank::begin_settlement`], then [`Settlement::settle`] chunk by chunk, then
/// [`Settlement::finish`].
#[derive(Debug)]
pub struct Settlement<'b, S> {
    bank: &'b mut Bank<S>,
    order: SettlementOrder,
    posting: Posting,
    summary: SettlementSummary,
    /// Where in the file the next chunk starts: the settlement's transfer ids follow the file's order.
    position: u64,
}

/// Where a settlement posts: the credit company's two accounts at the bank (the settlement (clearing) account and
/// its own), and the ids of the file's transfers.
#[derive(Debug, Clone, Copy)]
struct Posting {
    settlement: u128,
    company: u128,
    transfers: SettlementTransfers,
}

impl<S: Store> Bank<S> {
    /// Starts settling a deduction file, or resumes a settlement of the same file that stopped.
    pub fn begin_settlement(
        &mut self,
        order: &SettlementOrder,
        now_unix_seconds: u64,
    ) -> Result<Settlement<'_, S>, BankError> {
        if order.currency != self.context.config.currency {
            return Err(BankError::SettlementCurrency {
                currency: order.currency,
                bank_currency: self.context.config.currency,
            });
        }
        let currency = order.currency;
        let mut tx = self.ledger.transaction()?;
        let contract: ContractRecord =
            load(&mut tx, CONTRACTS, &order.credit_id)?.ok_or_else(|| BankError::NoContract {
                credit_id: order.credit_id.clone(),
            })?;
        let company = owned_account(
            AccountKind::CreditCompany,
            currency,
            contract.serial,
            &order.credit_id,
        );
        // Keyed by the contract: opened once, replayed by every later settlement.
        tx.create_account(
            ledger_request(
                RequestId(contract.serial.into()),
                "open credit company account",
            ),
            company,
        )?;
        let key = settlement_key(&order.credit_id, &order.message_id);
        let record = match load::<SettlementRecord>(&mut tx, SETTLEMENTS, &key)? {
            Some(record) if record.format != SETTLEMENT_FORMAT => {
                return Err(BankError::SettlementOfEarlierVersion {
                    message_id: order.message_id.clone(),
                });
            }
            Some(record) => record,
            None => {
                let record = SettlementRecord {
                    started_unix_seconds: now_unix_seconds,
                    transferred: None,
                    format: SETTLEMENT_FORMAT,
                };
                save(&mut tx, SETTLEMENTS, &key, &record)?;
                record
            }
        };
        tx.commit()?;
        Ok(Settlement {
            bank: self,
            order: order.clone(),
            posting: Posting {
                settlement: account_id(AccountKind::Settlement, currency, contract.serial),
                company: company.id,
                transfers: SettlementTransfers::of(&order.credit_id, &order.message_id),
            },
            summary: SettlementSummary {
                started_unix_seconds: record.started_unix_seconds,
                ..SettlementSummary::default()
            },
            position: 0,
        })
    }
}

impl<S: Store> Settlement<'_, S> {
    /// Settles `deductions` in one durable commit and answers their statuses, in order. The chunks are the file's
    /// deductions in the file's order, from its first (a re-run gives the same chunks again).
    pub fn settle(&mut self, deductions: &[Deduction]) -> Result<Vec<DeductionStatus>, BankError> {
        let Self {
            bank,
            order,
            posting,
            summary,
            position,
        } = self;
        let mut tx = bank.ledger.transaction()?;
        let answered = settle_chunk(&mut tx, order, *posting, *position, deductions)?;
        tx.commit()?;
        *position += deductions.len() as u64;
        answer_chunk(order, summary, answered, deductions)
    }

    /// Settles a whole file while it is still being read (on another thread), then posts the batch transfer
    /// ([`Settlement::finish`]). `chunks` are the file's deductions in its order, or the reading's error, which
    /// stops the settlement; `read_whole` says whether the reader has read and checked the whole file.
    ///
    /// Nothing is committed before the file is read whole: until then the chunks pile up in one transaction,
    /// which a malformed file's error drops (refused whole, nothing changed). From then on each chunk is a
    /// durable commit of its own. `answered` gets each chunk's statuses once it is settled (committed or not).
    pub fn settle_file<E: From<BankError>>(
        mut self,
        chunks: impl IntoIterator<Item = Result<Vec<Deduction>, E>>,
        read_whole: impl Fn() -> bool,
        mut answered: impl FnMut(Vec<DeductionStatus>) -> Result<(), E>,
    ) -> Result<SettlementSummary, E> {
        let Self {
            bank,
            order,
            posting,
            summary,
            position,
        } = &mut self;
        let imported = bank.ledger.import_while_reading(
            chunks
                .into_iter()
                .map(|chunk| chunk.map_err(ImportError::Caller)),
            read_whole,
            |tx, chunk: Vec<Deduction>| {
                let stored = settle_chunk(tx, order, *posting, *position, &chunk)
                    .map_err(ImportError::Domain)?;
                *position += chunk.len() as u64;
                Ok((stored, chunk))
            },
            |(stored, chunk)| {
                let statuses =
                    answer_chunk(order, summary, stored, &chunk).map_err(ImportError::Domain)?;
                answered(statuses).map_err(ImportError::Caller)
            },
        );
        match imported {
            Ok(Imported::Whole) => Ok(self.finish()?),
            // The chunks stopped without an error, yet the reader did not finish: never settle part of a file.
            Ok(Imported::Stopped) => Err(BankError::FileNotReadWhole {
                message_id: order.message_id.clone(),
            }
            .into()),
            Err(ImportError::Domain(error)) => Err(error.into()),
            Err(ImportError::Caller(error)) => Err(error),
        }
    }

    /// What the chunks settled so far add up to.
    pub fn summary(&self) -> &SettlementSummary {
        &self.summary
    }

    /// Posts the batch transfer of everything collected to the credit company (one durable commit; a re-run
    /// replays it) and answers the summary. Call it once every deduction of the file is settled.
    pub fn finish(self) -> Result<SettlementSummary, BankError> {
        let Self {
            bank,
            order,
            posting,
            summary,
            position: _,
        } = self;
        let total = summary.collected();
        let key = settlement_key(&order.credit_id, &order.message_id);
        let batch = batch_transfer(&order.credit_id, &order.message_id);
        let mut tx = bank.ledger.transaction()?;
        let mut record: SettlementRecord =
            load(&mut tx, SETTLEMENTS, &key)?.ok_or(BankError::Corrupt { what: SETTLEMENTS })?;
        match record.transferred {
            Some(posted) if posted == total => return Ok(summary),
            Some(posted) => {
                return Err(BankError::SettlementChanged {
                    message_id: order.message_id,
                    posted,
                    total,
                });
            }
            None => {}
        }
        if total > 0 {
            let transfer = NewTransfer {
                id: batch,
                debit_account_id: posting.settlement,
                credit_account_id: posting.company,
                amount: u128::from(total),
                currency: Currency(order.currency),
                code: transfer_code::BATCH,
                user_data: ids::user_data(order.message_id.as_bytes()),
                kind: TransferKind::Single,
            };
            tx.create_transfer(RequestId(batch), transfer)?;
        }
        record.transferred = Some(total);
        save(&mut tx, SETTLEMENTS, &key, &record)?;
        tx.commit()?;
        Ok(summary)
    }
}

/// Settles one chunk in `tx` (not committed): each deduction's answer, settled now or as stored before.
fn settle_chunk(
    tx: &mut impl Transaction,
    order: &SettlementOrder,
    posting: Posting,
    position: u64,
    deductions: &[Deduction],
) -> Result<Vec<StoredStatus>, BankError> {
    let mut answers = Vec::with_capacity(deductions.len());
    let keys: Vec<Vec<u8>> = deductions
        .iter()
        .map(|deduction| settled_key(&order.credit_id, &deduction.end_to_end_id))
        .collect();
    // A file settled for the first time has none of its deductions settled: one look says so for the whole chunk.
    let any_settled = tx.may_hold_any(SETTLED, &keys)?;
    let customers = read_ahead_chunk(tx, posting, position, deductions)?;
    let chunk = (0u64..).zip(deductions).zip(&keys).zip(customers);
    for (((offset, deduction), key), customer) in chunk {
        let request_hash: [u8; 32] =
            Sha256::digest(request_body(&deduction_body(deduction))?).into();
        let settled = match any_settled {
            true => load::<SettledDeduction>(tx, SETTLED, key)?,
            false => None,
        };
        let stored = match settled {
            Some(settled) if settled.request_hash == request_hash => settled.answer,
            // The same end-to-end id with other content: not this deduction, and not settled again.
            Some(_) => duplicate_of_other(order, deduction),
            None => {
                // A failure after a write returns here, and the transaction is dropped, unwritten.
                let at = (deduction, position + offset);
                let answer = settle_one(tx, order, posting, at, customer)?;
                let settled = SettledDeduction {
                    request_hash,
                    answer,
                };
                save(tx, SETTLED, key, &settled)?;
                settled.answer
            }
        };
        answers.push(stored);
    }
    Ok(answers)
}

/// Reads what settling the chunk looks up — its users' customer records, deposits and personal accounts — in
/// one ordered scan each, and announces its transfers' ids as new; answers each deduction's customer, if known.
/// A file lists its users in the credit company's order, usually the bank's too: each scan then walks
/// neighbouring pages instead of seeking once per user (anything the scans miss is looked up as before).
fn read_ahead_chunk(
    tx: &mut impl Transaction,
    posting: Posting,
    position: u64,
    deductions: &[Deduction],
) -> Result<Vec<Option<CustomerRecord>>, BankError> {
    let users: Vec<Vec<u8>> = deductions
        .iter()
        .map(|deduction| deduction.user_id.as_bytes().to_vec())
        .collect();
    tx.read_ahead(CUSTOMERS, &users)?;
    let deposit_prefixes: Vec<Vec<u8>> = users.iter().map(|user| deposits_prefix(user)).collect();
    tx.read_ahead_prefixes(DEPOSITS_BY_USER, &deposit_prefixes)?;
    // Customers are not written while settling: each is read (and decoded) once, here.
    let customers = users
        .iter()
        .map(|user| load::<CustomerRecord>(tx, CUSTOMERS, user))
        .collect::<Result<Vec<_>, _>>()?;
    let personal: Vec<_> = customers
        .iter()
        .flatten()
        .map(|customer| account_id(AccountKind::Personal, customer.currency, customer.serial))
        .collect();
    tx.read_ahead_accounts(&personal)?;
    if let Some(last) = (deductions.len() as u64).checked_sub(1) {
        let first_id = posting.transfers.id(position, SOURCE_POOL);
        let last_id = posting.transfers.id(position + last, SOURCE_PERSONAL);
        tx.expect_new_transfers(first_id, last_id)?;
    }
    Ok(customers)
}

/// The chunk's public statuses, added to the summary.
fn answer_chunk(
    order: &SettlementOrder,
    summary: &mut SettlementSummary,
    answers: Vec<StoredStatus>,
    deductions: &[Deduction],
) -> Result<Vec<DeductionStatus>, BankError> {
    answers
        .into_iter()
        .zip(deductions)
        .map(|(stored, deduction)| {
            let duplicate = stored.message_id != order.message_id;
            let status = public_status(&stored, deduction, duplicate)?;
            summary.add(&status, duplicate);
            Ok(status)
        })
        .collect()
}

fn settled_key(credit_id: &[u8], end_to_end_id: &str) -> Vec<u8> {
    [credit_id, &[0], end_to_end_id.as_bytes()].concat()
}

fn settlement_key(credit_id: &[u8], message_id: &str) -> Vec<u8> {
    [credit_id, &[0], message_id.as_bytes()].concat()
}

/// The canonical body of a deduction request (every field but the file it came in).
fn deduction_body(deduction: &Deduction) -> impl Serialize + '_ {
    (
        &deduction.end_to_end_id,
        &deduction.mandate_id,
        &deduction.user_id,
        &deduction.name,
        &deduction.debtor_account,
        deduction.amount,
        deduction
            .token_ids
            .iter()
            .map(hex::encode_upper)
            .collect::<Vec<_>>(),
    )
}

/// The same end-to-end id came before with other content: a duplicate, nothing taken.
fn duplicate_of_other(order: &SettlementOrder, deduction: &Deduction) -> StoredStatus {
    StoredStatus {
        // Never this file's id: the answer is a duplicate whatever this file is.
        message_id: format!("{}\u{0}other", order.message_id),
        status: 0,
        reason: None,
        due: deduction.amount,
        from_pool: 0,
        from_personal: 0,
        tokens: Vec::new(),
    }
}

fn status_code(status: TransactionStatus) -> u8 {
    match status {
        TransactionStatus::Accepted => 0,
        TransactionStatus::Partial => 1,
        TransactionStatus::Rejected => 2,
    }
}

fn reason_code(reason: ReasonCode) -> u8 {
    match reason {
        ReasonCode::InsufficientFunds => 0,
        ReasonCode::IncorrectAccount => 1,
        ReasonCode::NoMandate => 2,
        ReasonCode::Duplicate => 3,
    }
}

fn reason_of(code: u8) -> Result<ReasonCode, BankError> {
    Ok(match code {
        0 => ReasonCode::InsufficientFunds,
        1 => ReasonCode::IncorrectAccount,
        2 => ReasonCode::NoMandate,
        3 => ReasonCode::Duplicate,
        _ => {
            return Err(BankError::Corrupt {
                what: "settlement answer",
            });
        }
    })
}

/// The status a deduction gets in this file's report: its own, or a duplicate's (nothing taken; its tokens as
/// first answered, none drawn again).
fn public_status(
    stored: &StoredStatus,
    deduction: &Deduction,
    duplicate: bool,
) -> Result<DeductionStatus, BankError> {
    let status = match stored.status {
        0 => TransactionStatus::Accepted,
        1 => TransactionStatus::Partial,
        2 => TransactionStatus::Rejected,
        _ => {
            return Err(BankError::Corrupt {
                what: "settlement answer",
            });
        }
    };
    let mut tokens: Vec<TokenConfirmation> = stored
        .tokens
        .iter()
        .map(
            |&(token_id, confirmed, drawn, remaining)| TokenConfirmation {
                token_id,
                confirmed,
                drawn,
                remaining,
            },
        )
        .collect();
    if !duplicate {
        return Ok(DeductionStatus {
            end_to_end_id: deduction.end_to_end_id.clone(),
            status,
            reason: stored.reason.map(reason_of).transpose()?,
            due: stored.due,
            from_pool: stored.from_pool,
            from_personal: stored.from_personal,
            tokens,
        });
    }
    // One answer per token of this file's deduction, in its order.
    tokens = deduction
        .token_ids
        .iter()
        .map(|id| {
            let first = tokens.iter().find(|t| t.token_id == *id);
            TokenConfirmation {
                token_id: *id,
                confirmed: first.is_some_and(|t| t.confirmed),
                drawn: 0,
                remaining: first.map_or(0, |t| t.remaining),
            }
        })
        .collect();
    Ok(DeductionStatus {
        end_to_end_id: deduction.end_to_end_id.clone(),
        status: TransactionStatus::Rejected,
        reason: Some(ReasonCode::Duplicate),
        due: deduction.amount,
        from_pool: 0,
        from_personal: 0,
        tokens,
    })
}

/// Steps 802-805 for one user (the deduction at `position` in the file, from `customer`, `None` if the bank has
/// no such user): the pool first, then the personal account; each token confirmed or not.
fn settle_one(
    tx: &mut impl Transaction,
    order: &SettlementOrder,
    posting: Posting,
    (deduction, position): (&Deduction, u64),
    customer: Option<CustomerRecord>,
) -> Result<StoredStatus, BankError> {
    let rejected = |reason: ReasonCode, tokens| StoredStatus {
        message_id: order.message_id.clone(),
        status: status_code(TransactionStatus::Rejected),
        reason: Some(reason_code(reason)),
        due: deduction.amount,
        from_pool: 0,
        from_personal: 0,
        tokens,
    };
    let unconfirmed = || {
        deduction
            .token_ids
            .iter()
            .map(|id| (*id, false, 0, 0))
            .collect::<Vec<_>>()
    };
    let Some(customer) = customer else {
        return Ok(rejected(ReasonCode::IncorrectAccount, unconfirmed()));
    };
    if customer.account_number != deduction.debtor_account || customer.currency != order.currency {
        return Ok(rejected(ReasonCode::IncorrectAccount, unconfirmed()));
    }
    let mut deposits = deposits_of(tx, &deduction.user_id)?;
    let draws = plan_pool_draws(&mut deposits, order, deduction);
    let draw = Draw {
        order,
        posting,
        customer: &customer,
        deduction,
        position,
    };
    let from_pool = draw_from_pool(tx, &draw, &deposits, &draws)?;
    let still_due = deduction.amount - from_pool;
    let from_personal = draw_from_personal(tx, &draw, still_due)?;
    let collected = from_pool + from_personal;
    let (status, reason) = if collected == deduction.amount {
        (TransactionStatus::Accepted, None)
    } else if collected > 0 {
        (
            TransactionStatus::Partial,
            Some(ReasonCode::InsufficientFunds),
        )
    } else {
        (
            TransactionStatus::Rejected,
            Some(ReasonCode::InsufficientFunds),
        )
    };
    let tokens = deduction
        .token_ids
        .iter()
        .map(|id| match deposits.iter().position(|d| d.token_id == *id) {
            Some(index) if backs(&deposits[index], order) => {
                (*id, true, draws[index], deposits[index].remaining())
            }
            _ => (*id, false, 0, 0),
        })
        .collect();
    Ok(StoredStatus {
        message_id: order.message_id.clone(),
        status: status_code(status),
        reason: reason.map(reason_code),
        due: deduction.amount,
        from_pool,
        from_personal,
        tokens,
    })
}

/// A deposit that backs tokens of this credit company: confirmed into the pool (whatever is left of it).
fn backs(deposit: &StoredDeposit, order: &SettlementOrder) -> bool {
    deposit.state == DepositState::Confirmed && deposit.credit_id == order.credit_id
}

/// The key prefix of a user's deposits in [`DEPOSITS_BY_USER`].
fn deposits_prefix(user_id: &[u8]) -> Vec<u8> {
    [user_id, &[0]].concat()
}

fn deposits_of(tx: &mut impl Transaction, user_id: &str) -> Result<Vec<StoredDeposit>, BankError> {
    let prefix = deposits_prefix(user_id.as_bytes());
    let mut deposits = Vec::new();
    for (key, _) in tx.scan_prefix(DEPOSITS_BY_USER, &prefix)? {
        let token_id = key.get(prefix.len()..).unwrap_or_default();
        let stored: StoredDeposit =
            load(tx, DEPOSITS, token_id)?.ok_or(BankError::Corrupt { what: DEPOSITS })?;
        deposits.push(stored);
    }
    Ok(deposits)
}

/// How much to take from each deposit (index-aligned with `deposits`, whose `settled` it advances): the
/// deposits behind the listed tokens first, in the listed order, then the company's other deposits, oldest
/// first; never more than the deduction.
fn plan_pool_draws(
    deposits: &mut [StoredDeposit],
    order: &SettlementOrder,
    deduction: &Deduction,
) -> Vec<u64> {
    let mut sequence: Vec<usize> = Vec::with_capacity(deposits.len());
    for id in &deduction.token_ids {
        if let Some(index) = deposits.iter().position(|d| d.token_id == *id)
            && !sequence.contains(&index)
        {
            sequence.push(index);
        }
    }
    let mut others: Vec<usize> = (0..deposits.len())
        .filter(|index| !sequence.contains(index))
        .collect();
    others.sort_by_key(|&index| (deposits[index].deposit_date, deposits[index].token_id));
    sequence.extend(others);
    let mut draws = vec![0u64; deposits.len()];
    let mut left = deduction.amount;
    for index in sequence {
        if !backs(&deposits[index], order) || left == 0 {
            continue;
        }
        let draw = deposits[index].remaining().min(left);
        draws[index] = draw;
        deposits[index].settled += draw;
        left -= draw;
    }
    draws
}

/// One deduction's draws: from whom, for whom, and where in the file.
struct Draw<'a> {
    order: &'a SettlementOrder,
    posting: Posting,
    customer: &'a crate::records::CustomerRecord,
    deduction: &'a Deduction,
    position: u64,
}

impl Draw<'_> {
    fn transfer(&self, from: u128, amount: u64, source: u8) -> NewTransfer {
        NewTransfer {
            id: self.posting.transfers.id(self.position, source),
            debit_account_id: from,
            credit_account_id: self.posting.settlement,
            amount: u128::from(amount),
            currency: Currency(self.order.currency),
            code: transfer_code::SETTLEMENT,
            user_data: ids::user_data(self.deduction.end_to_end_id.as_bytes()),
            kind: TransferKind::Single,
        }
    }
}

/// Moves the planned draws from the user's pool sub-account to the settlement account; answers the sum.
fn draw_from_pool(
    tx: &mut impl Transaction,
    draw: &Draw<'_>,
    deposits: &[StoredDeposit],
    draws: &[u64],
) -> Result<u64, BankError> {
    let total: u64 = draws.iter().sum();
    if total == 0 {
        return Ok(0);
    }
    let pool_id = account_id(
        AccountKind::Pool,
        draw.customer.currency,
        draw.customer.serial,
    );
    let pool = load_account(tx, pool_id)?;
    if posted_balance(&pool) < u128::from(total) {
        return Err(BankError::Corrupt {
            what: "pool sub-account (less than its deposits)",
        });
    }
    for (deposit, amount) in deposits.iter().zip(draws) {
        if *amount > 0 {
            save(tx, DEPOSITS, &deposit.token_id, deposit)?;
        }
    }
    tx.create_transfer_within(draw.transfer(pool_id, total, SOURCE_POOL))?;
    Ok(total)
}

/// Takes what is still due, as far as it goes, from the personal account; answers the amount.
fn draw_from_personal(
    tx: &mut impl Transaction,
    draw: &Draw<'_>,
    still_due: u64,
) -> Result<u64, BankError> {
    if still_due == 0 {
        return Ok(0);
    }
    let personal_id = account_id(
        AccountKind::Personal,
        draw.customer.currency,
        draw.customer.serial,
    );
    let personal = load_account(tx, personal_id)?;
    let amount = still_due.min(to_u64(available(&personal))?);
    if amount > 0 {
        tx.create_transfer_within(draw.transfer(personal_id, amount, SOURCE_PERSONAL))?;
    }
    Ok(amount)
}

const SOURCE_POOL: u8 = 0;
const SOURCE_PERSONAL: u8 = 1;
