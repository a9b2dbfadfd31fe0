//! Settlement day at the credit company (patent Fig. 11): the statement (deduction data, step 1101) per bank,
//! and the reconciliation of the bank's answer (step 1102): the collected sum posted, each confirmed temporary
//! reflection turned into a posted payment, and every reflection no pool deposit confirms flagged and voided.
//!
//! Both run in chunks of one durable commit each and resume where a stopped run left off: a statement keeps
//! its cursor and items, each reconciled deduction is an idempotent request keyed by (bank, end-to-end id),
//! and the received transfer is one more.

use interchange::{Deduction, DeductionStatus, TokenConfirmation};
use ledger::{
    Currency, ImportError, Imported, LedgerTables as _, NewTransfer, PendingState, RequestId,
    Store, Transaction, TransferKind,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::authorize::{ensure_account, internal_request, load_account};
use crate::records::{
    self, CARDHOLDERS, CardholderRecord, DECISIONS, DecisionRecord, PENDING, SPENT, SpentRecord,
    code,
};
use crate::{Credit, CreditError, PendingCredit};

pub(crate) const MANDATES: &str = "credit.mandate";
/// Key: length-prefixed bank id ‖ cardholder id (empty value): a bank's mandates, by cardholder.
pub(crate) const MANDATES_BY_BANK: &str = "credit.mandate_by_bank";
pub(crate) const STATEMENTS: &str = "credit.statement";
/// Key: the end-to-end id (the statement's prefix ‖ '-' ‖ 10-digit sequence).
pub(crate) const STATEMENT_ITEMS: &str = "credit.statement_item";
/// Key: length-prefixed bank id ‖ token id.
pub(crate) const FLAGGED: &str = "credit.flagged";
/// Key: the end-to-end id: a reconciled deduction's request hash and outcome (its items' order, so one
/// reconciliation's records sit side by side).
pub(crate) const RECONCILED: &str = "credit.reconciled";

/// A cardholder's direct-debit mandate: where the bank collects their statements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mandate {
    #[serde(with = "crate::hex_serde")]
    pub bank_id: Vec<u8>,
    /// The cardholder's user id at the bank (the tokens' user id), 1-35 characters.
    pub user_id: String,
    /// Their personal account number at the bank, 1-34 characters.
    pub account_number: String,
    /// The mandate's reference, 1-35 characters.
    pub mandate_id: String,
}

/// A statement to make for one bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementOrder {
    /// The deduction file's message id, 1-35 characters, unique.
    pub message_id: String,
    pub bank_id: Vec<u8>,
    pub collection_date: token::Date,
}

/// A statement as made: its items are read back with [`Credit::statement_items`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementSummary {
    pub message_id: String,
    #[serde(with = "crate::hex_serde")]
    pub bank_id: Vec<u8>,
    #[serde(with = "crate::model::date_bytes")]
    pub collection_date: token::Date,
    pub created_unix_seconds: u64,
    pub currency: u16,
    pub items: u64,
    pub total: u64,
    pub tokens: u64,
    /// Every cardholder has been looked at.
    pub complete: bool,
    /// The bank's answer has been reconciled.
    pub reconciled: bool,
    /// The last cardholder looked at (a stopped run resumes after it).
    cursor: String,
}

/// One user's line of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StatementItem {
    message_id: String,
    cardholder_id: String,
    name: String,
    mandate: Mandate,
    due: u64,
    token_ids: Vec<[u8; 16]>,
}

/// A temporary reflection that no pool deposit confirmed: voided, and reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlaggedReflection {
    #[serde(with = "crate::hex_serde")]
    pub token_id: [u8; 16],
    #[serde(with = "crate::hex_serde")]
    pub bank_id: Vec<u8>,
    pub cardholder_id: String,
    /// The card that presented the token.
    pub pan: String,
    pub amount: u64,
    pub authorization_id: u128,
    /// The statement and deduction that revealed it.
    pub statement: String,
    pub end_to_end_id: String,
}

/// What reconciling a bank's answer did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReconciliationSummary {
    pub deductions: u64,
    pub due: u64,
    pub collected: u64,
    pub shortfall: u64,
    /// Reflections turned into posted payments, and their sum.
    pub reflections_posted: u64,
    pub reflected_amount_posted: u64,
    /// Reflections kept pending for what is left of their deposit (the user's prepayment).
    pub reflections_kept: u64,
    pub flagged: Vec<FlaggedReflection>,
}

/// The bank's answer to a statement, as the reconciliation needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconciliationOrder {
    /// The statement (deduction file) answered.
    pub statement: String,
    pub bank_id: Vec<u8>,
    /// The sum the transfer notice says was transferred.
    pub notice_total: u64,
}

/// One deduction of the bank's answer as [`Reconciliation::check`] found it: the answer with what the statement
/// asked (its item) and whose account it settles, and the hash the reconciliation keeps of it. The check reads
/// these on a connection of its own, so the reconciliation, on the ledger's only writer, looks none of them up
/// again (statement items and cardholders do not change while a statement is reconciled).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckedStatus {
    status: DeductionStatus,
    item: StatementItem,
    holder: CardholderRecord,
    request_hash: [u8; 32],
}

impl CheckedStatus {
    /// The bank's answer.
    pub fn status(&self) -> &DeductionStatus {
        &self.status
    }
}

/// A statement being made: [`Credit::begin_statement`], [`StatementRun::collect`] until it answers 0, then
/// [`StatementRun::finish`].
#[derive(Debug)]
pub struct StatementRun<'c, S> {
    credit: &'c mut Credit<S>,
    summary: StatementSummary,
}

/// A reconciliation in progress: [`Credit::begin_reconciliation`], [`Reconciliation::check`] over the whole
/// answer, [`Reconciliation::reconcile`] chunk by chunk, then [`Reconciliation::finish`].
#[derive(Debug)]
pub struct Reconciliation<'c, S> {
    credit: &'c mut Credit<S>,
    order: ReconciliationOrder,
    statement: StatementSummary,
    summary: ReconciliationSummary,
    checked_total: u64,
    /// Where in the report the next chunk starts: the payments' transfer ids follow the report's order.
    position: u64,
}

impl<S: Store> Credit<S> {
    /// Records where the bank collects the cardholder's statements (replacing an earlier mandate).
    pub fn set_mandate(
        &mut self,
        request: RequestId,
        cardholder_id: &str,
        mandate: &Mandate,
    ) -> Result<(), CreditError> {
        check_mandate(mandate)?;
        let body = records::encode(&(cardholder_id, mandate));
        let mut tx = self.ledger.transaction()?;
        tx.idempotent(request, "credit.set_mandate", &body, |tx| {
            crate::load_cardholder(tx, cardholder_id)?;
            if let Some(old) = records::load::<Mandate>(tx, MANDATES, cardholder_id.as_bytes())? {
                tx.delete(MANDATES_BY_BANK, &by_bank_key(&old.bank_id, cardholder_id))?;
            }
            tx.put(
                MANDATES,
                cardholder_id.as_bytes(),
                &records::encode(mandate),
            )?;
            tx.put(
                MANDATES_BY_BANK,
                &by_bank_key(&mandate.bank_id, cardholder_id),
                &[],
            )?;
            Ok::<_, CreditError>(Vec::new())
        })?;
        tx.commit()?;
        Ok(())
    }

    /// Starts a statement for one bank, or resumes one that stopped. Refused while an earlier statement for
    /// that bank waits for its reconciliation (a user would be charged twice).
    pub fn begin_statement(
        &mut self,
        order: &StatementOrder,
        now_unix_seconds: u64,
    ) -> Result<StatementRun<'_, S>, CreditError> {
        check_id("statement message id", &order.message_id, 35)?;
        let currency = self.config.currency;
        let mut tx = self.ledger.transaction()?;
        let summary = match load_statement(&mut tx, &order.message_id)? {
            Some(summary) if summary.bank_id != order.bank_id => {
                return Err(CreditError::StatementExists {
                    message_id: order.message_id.clone(),
                });
            }
            Some(summary) => summary,
            None => {
                if let Some(open) = open_statement(&mut tx, &order.bank_id)? {
                    return Err(CreditError::StatementOpen { message_id: open });
                }
                let summary = StatementSummary {
                    message_id: order.message_id.clone(),
                    bank_id: order.bank_id.clone(),
                    collection_date: order.collection_date,
                    created_unix_seconds: now_unix_seconds,
                    currency,
                    items: 0,
                    total: 0,
                    tokens: 0,
                    complete: false,
                    reconciled: false,
                    cursor: String::new(),
                };
                save_statement(&mut tx, &summary)?;
                summary
            }
        };
        tx.commit()?;
        Ok(StatementRun {
            credit: self,
            summary,
        })
    }

    /// A statement as made so far.
    pub fn statement(&mut self, message_id: &str) -> Result<Option<StatementSummary>, CreditError> {
        let mut tx = self.ledger.read_transaction()?;
        load_statement(&mut tx, message_id)
    }

    /// Up to `limit` deductions of statement `message_id`, after the end-to-end id `after` (empty: from the
    /// first), in order: for writing the deduction file page by page.
    pub fn statement_items(
        &mut self,
        message_id: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<Deduction>, CreditError> {
        let mut tx = self.ledger.read_transaction()?;
        let statement =
            load_statement(&mut tx, message_id)?.ok_or_else(|| CreditError::UnknownStatement {
                message_id: message_id.to_owned(),
            })?;
        let prefix = item_prefix(&statement);
        let page = tx.scan_prefix_page(STATEMENT_ITEMS, &prefix, after.as_bytes(), limit)?;
        page.into_iter()
            .map(|(key, value)| {
                let item: StatementItem = records::decode(STATEMENT_ITEMS, &value)?;
                let end_to_end_id = String::from_utf8(key)
                    .map_err(|_| CreditError::corrupt("statement item key"))?;
                Ok(deduction_of(end_to_end_id, item))
            })
            .collect()
    }

    /// Every reflection reconciliation has flagged.
    pub fn flagged(&mut self) -> Result<Vec<FlaggedReflection>, CreditError> {
        let mut tx = self.ledger.transaction()?;
        tx.scan_prefix(FLAGGED, &[])?
            .iter()
            .map(|(_, value)| records::decode(FLAGGED, value))
            .collect()
    }

    /// Earlier versions kept each reconciled deduction as a ledger request, in the items' order: one whose first
    /// item has such a request was begun by them, and reconciling it here would post its payments twice.
    fn refuse_earlier_reconciliation(
        &mut self,
        statement: &StatementSummary,
    ) -> Result<(), CreditError> {
        let first = self.statement_items(&statement.message_id, "", 1)?;
        let Some(first) = first.first() else {
            return Ok(());
        };
        let mut tx = self.ledger.read_transaction()?;
        let legacy = earlier_reconcile_request(&statement.bank_id, &first.end_to_end_id);
        match tx.load_request(legacy)? {
            Some(_) => Err(CreditError::ReconciliationOfEarlierVersion {
                message_id: statement.message_id.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Starts reconciling the bank's answer to a statement (or resumes a stopped reconciliation).
    pub fn begin_reconciliation(
        &mut self,
        order: &ReconciliationOrder,
    ) -> Result<Reconciliation<'_, S>, CreditError> {
        let mut tx = self.ledger.transaction()?;
        let statement = load_statement(&mut tx, &order.statement)?.ok_or_else(|| {
            CreditError::UnknownStatement {
                message_id: order.statement.clone(),
            }
        })?;
        drop(tx);
        if statement.bank_id != order.bank_id {
            return Err(CreditError::WrongBank {
                message_id: order.statement.clone(),
            });
        }
        if !statement.complete {
            return Err(CreditError::StatementIncomplete {
                message_id: order.statement.clone(),
            });
        }
        self.refuse_earlier_reconciliation(&statement)?;
        Ok(Reconciliation {
            credit: self,
            order: order.clone(),
            statement,
            summary: ReconciliationSummary::default(),
            checked_total: 0,
            position: 0,
        })
    }
}

impl<S: Store> StatementRun<'_, S> {
    /// Looks at up to `max` more cardholders with a mandate at the bank and writes a deduction for each who owes
    /// something, in one durable commit; answers how many cardholders it looked at (0: all done) and the
    /// deductions it wrote, in order.
    pub fn collect(&mut self, max: usize) -> Result<(usize, Vec<Deduction>), CreditError> {
        if self.summary.complete {
            return Ok((0, Vec::new()));
        }
        let bank_prefix = by_bank_key(&self.summary.bank_id, "");
        let mut tx = self.credit.ledger.transaction()?;
        let after = if self.summary.cursor.is_empty() {
            Vec::new()
        } else {
            by_bank_key(&self.summary.bank_id, &self.summary.cursor)
        };
        let page = tx.scan_prefix_page(MANDATES_BY_BANK, &bank_prefix, &after, max)?;
        read_ahead_page(&mut tx, &bank_prefix, &page)?;
        let mut written = Vec::new();
        for (key, _) in &page {
            let cardholder_id =
                std::str::from_utf8(key.get(bank_prefix.len()..).unwrap_or_default())
                    .map_err(|_| CreditError::corrupt("mandate key"))?;
            written.extend(add_item(&mut tx, &mut self.summary, cardholder_id)?);
            cardholder_id.clone_into(&mut self.summary.cursor);
        }
        self.summary.complete = page.len() < max;
        save_statement(&mut tx, &self.summary)?;
        tx.commit()?;
        Ok((page.len(), written))
    }

    /// Looks at every cardholder left, `chunk` per commit, calling `progress` with the count looked at and the
    /// deductions written after each.
    pub fn collect_all<E: From<CreditError>>(
        &mut self,
        chunk: usize,
        mut progress: impl FnMut(usize, Vec<Deduction>) -> Result<(), E>,
    ) -> Result<(), E> {
        loop {
            let (looked, written) = self.collect(chunk.max(1))?;
            progress(looked, written)?;
            if self.summary.complete {
                return Ok(());
            }
            // A purchase waiting for the ledger gets in between two chunks.
            self.credit.ledger.let_others_write();
        }
    }

    pub fn finish(self) -> Result<StatementSummary, CreditError> {
        if !self.summary.complete {
            return Err(CreditError::StatementIncomplete {
                message_id: self.summary.message_id,
            });
        }
        Ok(self.summary)
    }
}

impl<S: Store> Reconciliation<'_, S> {
    /// Checks part of the answer without changing anything: every deduction is one of the statement's, its
    /// amounts add up, and it answers the statement's tokens in order. Call it over the whole answer first, so
    /// that a wrong answer is refused whole.
    pub fn check(
        &mut self,
        statuses: Vec<DeductionStatus>,
    ) -> Result<Vec<CheckedStatus>, CreditError> {
        // Reads only: another connection may be reconciling what was checked before (see `reconcile_file`).
        let mut tx = self.credit.ledger.read_transaction()?;
        let end_to_end_ids: Vec<Vec<u8>> = statuses
            .iter()
            .map(|status| status.end_to_end_id.as_bytes().to_vec())
            .collect();
        tx.read_ahead(STATEMENT_ITEMS, &end_to_end_ids)?;
        let mut items = Vec::with_capacity(statuses.len());
        for status in &statuses {
            let item = load_item(&mut tx, &self.statement, &status.end_to_end_id)?;
            check_status(status, &item)?;
            self.checked_total = self
                .checked_total
                .checked_add(status.from_pool + status.from_personal)
                .ok_or(CreditError::AmountsDisagree {
                    end_to_end_id: status.end_to_end_id.clone(),
                })?;
            items.push(item);
        }
        let holders: Vec<Vec<u8>> = items
            .iter()
            .map(|item| item.cardholder_id.as_bytes().to_vec())
            .collect();
        tx.read_ahead(CARDHOLDERS, &holders)?;
        statuses
            .into_iter()
            .zip(items)
            .map(|(status, item)| {
                let holder = crate::load_cardholder(&mut tx, &item.cardholder_id)?;
                let request_hash = Sha256::digest(records::encode(&status_body(&status))).into();
                Ok(CheckedStatus {
                    status,
                    item,
                    holder,
                    request_hash,
                })
            })
            .collect()
    }

    /// Whether the checked answer adds up to the transfer notice's total.
    pub fn check_total(&self) -> Result<(), CreditError> {
        if self.checked_total == self.order.notice_total {
            Ok(())
        } else {
            Err(CreditError::NoticeDisagrees {
                notice: self.order.notice_total,
                report: self.checked_total,
            })
        }
    }

    /// Reconciles part of the answer in one durable commit; answers the reflections it flagged.
    pub fn reconcile(
        &mut self,
        statuses: &[CheckedStatus],
    ) -> Result<Vec<FlaggedReflection>, CreditError> {
        let mut tx = self.credit.ledger.transaction()?;
        let outcomes = reconcile_chunk(&mut tx, &self.statement, self.position, statuses)?;
        tx.commit()?;
        self.position += statuses.len() as u64;
        Ok(add_outcomes(&mut self.summary, statuses, outcomes))
    }

    /// Reconciles a whole answer while it is still being read and checked (on another thread, by a
    /// [`Reconciliation::check`] of its own), then posts the bank's transfer ([`Reconciliation::finish`]).
    /// `chunks` are the report's statuses, checked, in its order, or the reading's error, which stops the
    /// reconciliation;
    /// `checked_whole` says whether the whole answer is read and checked (its total too).
    ///
    /// Nothing is committed before the answer is checked whole: until then the chunks pile up in one
    /// transaction, which a wrong answer's error drops (refused whole, nothing changed). From then on each chunk
    /// is a durable commit of its own. `answered` gets each chunk's flagged reflections once it is reconciled.
    pub fn reconcile_file<E: From<CreditError>>(
        mut self,
        chunks: impl IntoIterator<Item = Result<Vec<CheckedStatus>, E>>,
        checked_whole: impl Fn() -> bool,
        mut answered: impl FnMut(usize, Vec<FlaggedReflection>) -> Result<(), E>,
    ) -> Result<ReconciliationSummary, E> {
        let Self {
            credit,
            statement,
            summary,
            position,
            ..
        } = &mut self;
        let imported = credit.ledger.import_while_reading(
            chunks
                .into_iter()
                .map(|chunk| chunk.map_err(ImportError::Caller)),
            checked_whole,
            |tx, chunk: Vec<CheckedStatus>| {
                let outcomes = reconcile_chunk(tx, statement, *position, &chunk)
                    .map_err(ImportError::Domain)?;
                *position += chunk.len() as u64;
                Ok((outcomes, chunk))
            },
            |(outcomes, chunk)| {
                let flagged = add_outcomes(summary, &chunk, outcomes);
                answered(chunk.len(), flagged).map_err(ImportError::Caller)
            },
        );
        match imported {
            Ok(Imported::Whole) => Ok(self.finish()?),
            // The chunks stopped without an error, yet the check did not finish: never reconcile part of it.
            Ok(Imported::Stopped) => Err(CreditError::AnswerNotCheckedWhole {
                statement: statement.message_id.clone(),
            }
            .into()),
            Err(ImportError::Domain(error)) => Err(error.into()),
            Err(ImportError::Caller(error)) => Err(error),
        }
    }

    /// Posts the bank's transfer (one durable commit; a re-run replays it), marks the statement reconciled and
    /// answers the summary. Refused when what was reconciled does not add up to the notice's total.
    pub fn finish(self) -> Result<ReconciliationSummary, CreditError> {
        let Self {
            credit,
            order,
            mut statement,
            summary,
            ..
        } = self;
        if summary.collected != order.notice_total {
            return Err(CreditError::NoticeDisagrees {
                notice: order.notice_total,
                report: summary.collected,
            });
        }
        let currency = statement.currency;
        let receivable = records::receivable_account_id(&order.bank_id, currency);
        let funds = records::bank_funds_account_id(&order.bank_id, currency);
        let mut tx = credit.ledger.transaction()?;
        ensure_account(&mut tx, funds, currency, code::BANK_FUNDS)?;
        ensure_account(&mut tx, receivable, currency, code::BANK_RECEIVABLE)?;
        if order.notice_total > 0 {
            let id = records::derived_id(
                "settlement received",
                &[&order.bank_id, statement.message_id.as_bytes()],
            );
            let transfer = NewTransfer {
                id,
                debit_account_id: funds,
                credit_account_id: receivable,
                amount: u128::from(order.notice_total),
                currency: Currency(currency),
                code: code::SETTLEMENT_RECEIVED,
                user_data: user_data(statement.message_id.as_bytes()),
                kind: TransferKind::Single,
            };
            tx.create_transfer(internal_request("settlement received", id), transfer)?;
        }
        statement.reconciled = true;
        save_statement(&mut tx, &statement)?;
        tx.commit()?;
        Ok(summary)
    }
}

/// Reconciles one chunk in `tx` (not committed): each deduction's outcome, reconciled now or as stored before.
fn reconcile_chunk(
    tx: &mut impl Transaction,
    statement: &StatementSummary,
    position: u64,
    chunk: &[CheckedStatus],
) -> Result<Vec<Outcome>, CreditError> {
    let mut outcomes = Vec::with_capacity(chunk.len());
    let keys: Vec<Vec<u8>> = chunk
        .iter()
        .map(|checked| checked.status.end_to_end_id.as_bytes().to_vec())
        .collect();
    // A first reconciliation has none of its deductions reconciled: one look says so for the whole chunk.
    let any_reconciled = tx.may_hold_any(RECONCILED, &keys)?;
    let payments = PaymentTransfers::of(statement);
    read_ahead_chunk(tx, (payments, position), chunk)?;
    for ((offset, checked), key) in (0u64..).zip(chunk).zip(&keys) {
        let reconciled = match any_reconciled {
            true => records::load::<Reconciled>(tx, RECONCILED, key)?,
            false => None,
        };
        let outcome = match reconciled {
            Some(done) if done.request_hash == checked.request_hash => done.outcome,
            Some(_) => {
                return Err(CreditError::ReconciliationChanged {
                    end_to_end_id: checked.status.end_to_end_id.clone(),
                });
            }
            None => {
                let payment = payments.id(position + offset);
                // A failure after a write returns here, and the transaction is dropped, unwritten.
                let outcome = reconcile_one(tx, statement, checked, payment)?;
                let done = Reconciled {
                    request_hash: checked.request_hash,
                    outcome,
                };
                tx.put(RECONCILED, key, &records::encode(&done))?;
                done.outcome
            }
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Reads the chunk's cardholders' accounts in one ordered scan, and announces its payments' ids (from
/// `position` on) as new. A chunk's deductions are neighbours in the accounts table (anything the scan misses is
/// looked up as before).
fn read_ahead_chunk(
    tx: &mut impl Transaction,
    (payments, position): (PaymentTransfers, u64),
    chunk: &[CheckedStatus],
) -> Result<(), CreditError> {
    let accounts: Vec<_> = chunk
        .iter()
        .map(|checked| checked.holder.account_id)
        .collect();
    tx.read_ahead_accounts(&accounts)?;
    if let Some(last) = (chunk.len() as u64).checked_sub(1) {
        tx.expect_new_transfers(payments.id(position), payments.id(position + last))?;
    }
    Ok(())
}

/// Reads what a statement looks up for a page of mandates — the cardholders, their accounts, mandates and
/// pending credits — in one ordered scan each.
fn read_ahead_page(
    tx: &mut impl Transaction,
    bank_prefix: &[u8],
    page: &[ledger::Record],
) -> Result<(), CreditError> {
    let ids: Vec<Vec<u8>> = page
        .iter()
        .map(|(key, _)| key.get(bank_prefix.len()..).unwrap_or_default().to_vec())
        .collect();
    read_ahead_cardholders(tx, &ids)?;
    tx.read_ahead(MANDATES, &ids)?;
    let pending: Vec<Vec<u8>> = ids
        .iter()
        .filter_map(|id| std::str::from_utf8(id).ok())
        .map(records::pending_prefix)
        .collect();
    Ok(tx.read_ahead_prefixes(PENDING, &pending)?)
}

/// Reads ahead the cardholders `ids` and their ledger accounts.
fn read_ahead_cardholders(tx: &mut impl Transaction, ids: &[Vec<u8>]) -> Result<(), CreditError> {
    tx.read_ahead(CARDHOLDERS, ids)?;
    let mut accounts = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(holder) = records::load::<CardholderRecord>(tx, CARDHOLDERS, id)? {
            accounts.push(holder.account_id);
        }
    }
    Ok(tx.read_ahead_accounts(&accounts)?)
}

/// Adds a reconciled chunk to the summary; answers the reflections it flagged.
fn add_outcomes(
    summary: &mut ReconciliationSummary,
    chunk: &[CheckedStatus],
    outcomes: Vec<Outcome>,
) -> Vec<FlaggedReflection> {
    let mut flagged = Vec::new();
    for (status, outcome) in chunk.iter().map(CheckedStatus::status).zip(outcomes) {
        let collected = status.from_pool + status.from_personal;
        summary.deductions += 1;
        summary.due += status.due;
        summary.collected += collected;
        summary.shortfall += status.due.saturating_sub(collected);
        summary.reflections_posted += outcome.posted;
        summary.reflected_amount_posted += outcome.posted_amount;
        summary.reflections_kept += outcome.kept;
        flagged.extend(outcome.flagged);
    }
    summary.flagged.extend(flagged.iter().cloned());
    flagged
}

/// A reconciled deduction: the hash of the bank's answer (its canonical body) and what reconciling it did.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Reconciled {
    request_hash: [u8; 32],
    outcome: Outcome,
}

/// What reconciling one deduction did, kept for replays.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Outcome {
    posted: u64,
    posted_amount: u64,
    kept: u64,
    flagged: Vec<FlaggedReflection>,
}

fn check_mandate(mandate: &Mandate) -> Result<(), CreditError> {
    if !(1..=16).contains(&mandate.bank_id.len()) {
        return Err(CreditError::malformed(
            "mandate bank id",
            "must be 1-16 bytes",
        ));
    }
    check_id("mandate user id", &mandate.user_id, 35)?;
    check_id("mandate account number", &mandate.account_number, 34)?;
    check_id("mandate id", &mandate.mandate_id, 35)
}

/// 1-`max` printable ASCII characters (what the ISO 20022 identifiers take).
fn check_id(field: &'static str, text: &str, max: usize) -> Result<(), CreditError> {
    if (1..=max).contains(&text.len()) && text.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
        Ok(())
    } else {
        Err(CreditError::malformed(
            field,
            "must be 1-35 printable ASCII characters",
        ))
    }
}

fn by_bank_key(bank_id: &[u8], cardholder_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(bank_id.len() + cardholder_id.len() + 1);
    records::key_part(&mut key, bank_id);
    key.extend_from_slice(cardholder_id.as_bytes());
    key
}

fn load_statement(
    tx: &mut impl Transaction,
    message_id: &str,
) -> Result<Option<StatementSummary>, CreditError> {
    records::load(tx, STATEMENTS, message_id.as_bytes())
}

fn save_statement(
    tx: &mut impl Transaction,
    summary: &StatementSummary,
) -> Result<(), CreditError> {
    tx.put(
        STATEMENTS,
        summary.message_id.as_bytes(),
        &records::encode(summary),
    )?;
    Ok(())
}

/// A statement for `bank_id` not yet reconciled, if any.
fn open_statement(
    tx: &mut impl Transaction,
    bank_id: &[u8],
) -> Result<Option<String>, CreditError> {
    for (_, value) in tx.scan_prefix(STATEMENTS, &[])? {
        let summary: StatementSummary = records::decode(STATEMENTS, &value)?;
        if summary.bank_id == bank_id && !summary.reconciled {
            return Ok(Some(summary.message_id));
        }
    }
    Ok(None)
}

/// The end-to-end ids of a statement start with 12 hex digits of its message id's hash: short, and unique
/// per statement.
fn item_prefix(statement: &StatementSummary) -> Vec<u8> {
    let digest = Sha256::digest(statement.message_id.as_bytes());
    let mut prefix = hex_lower(digest.get(..6).unwrap_or_default()).into_bytes();
    prefix.push(b'-');
    prefix
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn end_to_end_id(statement: &StatementSummary, sequence: u64) -> String {
    let prefix = item_prefix(statement);
    format!("{}{sequence:010}", String::from_utf8_lossy(&prefix))
}

/// Writes the cardholder's deduction if they owe something: the outstanding balance, with the tokens of this
/// bank still reflected.
fn add_item(
    tx: &mut impl Transaction,
    statement: &mut StatementSummary,
    cardholder_id: &str,
) -> Result<Option<Deduction>, CreditError> {
    let holder: CardholderRecord = records::load(tx, CARDHOLDERS, cardholder_id.as_bytes())?
        .ok_or(CreditError::corrupt("mandate of an unknown cardholder"))?;
    let mandate: Mandate = records::load(tx, MANDATES, cardholder_id.as_bytes())?
        .ok_or(CreditError::corrupt("mandate index"))?;
    let account = load_account(tx, holder.account_id)?;
    let outstanding = account.debits_posted.saturating_sub(account.credits_posted);
    let due =
        u64::try_from(outstanding).map_err(|_| CreditError::corrupt("outstanding balance"))?;
    if due == 0 || holder.currency != statement.currency {
        return Ok(None);
    }
    let mut token_ids = Vec::new();
    for (key, value) in tx.scan_prefix(PENDING, &records::pending_prefix(cardholder_id))? {
        let pending: PendingCredit = records::decode(PENDING, &value)?;
        let transfer_id = records::pending_transfer_id(&key)?;
        if pending.bank_id == statement.bank_id
            && tx.pending_state(transfer_id)? == Some(PendingState::Pending)
            && !token_ids.contains(&pending.token_id)
        {
            token_ids.push(pending.token_id);
        }
    }
    statement.items += 1;
    statement.total = statement
        .total
        .checked_add(due)
        .ok_or(CreditError::corrupt("statement total"))?;
    statement.tokens += token_ids.len() as u64;
    let item = StatementItem {
        message_id: statement.message_id.clone(),
        cardholder_id: cardholder_id.to_owned(),
        name: holder.name,
        mandate,
        due,
        token_ids,
    };
    let id = end_to_end_id(statement, statement.items);
    tx.put(STATEMENT_ITEMS, id.as_bytes(), &records::encode(&item))?;
    Ok(Some(deduction_of(id, item)))
}

fn deduction_of(end_to_end_id: String, item: StatementItem) -> Deduction {
    Deduction {
        end_to_end_id,
        mandate_id: item.mandate.mandate_id,
        user_id: item.mandate.user_id,
        name: item.name,
        debtor_account: item.mandate.account_number,
        amount: item.due,
        token_ids: item.token_ids,
    }
}

fn load_item(
    tx: &mut impl Transaction,
    statement: &StatementSummary,
    end_to_end_id: &str,
) -> Result<StatementItem, CreditError> {
    statement_item(tx, statement, end_to_end_id.as_bytes())?
        .ok_or_else(|| unknown_deduction(statement, end_to_end_id))
}

/// The statement's item under `end_to_end_id`, if it has one.
fn statement_item(
    tx: &mut impl Transaction,
    statement: &StatementSummary,
    end_to_end_id: &[u8],
) -> Result<Option<StatementItem>, CreditError> {
    Ok(
        records::load::<StatementItem>(tx, STATEMENT_ITEMS, end_to_end_id)?
            .filter(|item| item.message_id == statement.message_id),
    )
}

fn unknown_deduction(statement: &StatementSummary, end_to_end_id: &str) -> CreditError {
    CreditError::UnknownDeduction {
        end_to_end_id: end_to_end_id.to_owned(),
        statement: statement.message_id.clone(),
    }
}

/// The bank's answer to one deduction is coherent with what was asked.
fn check_status(status: &DeductionStatus, item: &StatementItem) -> Result<(), CreditError> {
    let disagree = || CreditError::AmountsDisagree {
        end_to_end_id: status.end_to_end_id.clone(),
    };
    let collected = status
        .from_pool
        .checked_add(status.from_personal)
        .ok_or_else(disagree)?;
    let drawn: u64 = status.tokens.iter().map(|t| t.drawn).sum();
    let tokens: Vec<[u8; 16]> = status.tokens.iter().map(|t| t.token_id).collect();
    if status.due != item.due
        || collected > status.due
        || drawn > status.from_pool
        || tokens != item.token_ids
    {
        return Err(disagree());
    }
    Ok(())
}

/// The payments of a statement's reconciliation, by the deductions' positions in the bank's answer: the
/// statement's hash leads and the position follows, so one reconciliation's payments land side by side in the
/// ledger's index; the hash is taken once, not per payment.
#[derive(Debug, Clone, Copy)]
struct PaymentTransfers {
    statement: u128,
}

impl PaymentTransfers {
    fn of(statement: &StatementSummary) -> Self {
        let stem = records::derived_id(
            "settlement payments",
            &[&statement.bank_id, statement.message_id.as_bytes()],
        );
        Self {
            statement: stem >> 64 << 64,
        }
    }

    /// The payment of the deduction at `position` in the bank's answer.
    fn id(self, position: u64) -> u128 {
        self.statement | u128::from(position)
    }
}

/// The ledger request under which earlier versions reconciled a deduction (see
/// [`Credit::refuse_earlier_reconciliation`]).
fn earlier_reconcile_request(bank_id: &[u8], end_to_end_id: &str) -> RequestId {
    RequestId(records::derived_id(
        "reconcile deduction",
        &[bank_id, end_to_end_id.as_bytes()],
    ))
}

fn status_body(status: &DeductionStatus) -> impl Serialize + '_ {
    let tokens: Vec<([u8; 16], bool, u64, u64)> = status
        .tokens
        .iter()
        .map(|t| (t.token_id, t.confirmed, t.drawn, t.remaining))
        .collect();
    (
        &status.end_to_end_id,
        status.due,
        status.from_pool,
        status.from_personal,
        tokens,
    )
}

fn user_data(bytes: &[u8]) -> [u8; 32] {
    let mut data = [0u8; 32];
    let length = bytes.len().min(32);
    data[..length].copy_from_slice(&bytes[..length]);
    data
}

/// Step 1102 for one user: each token posted (what the bank drew), kept (what is left in the pool) or flagged;
/// the rest of the collected sum posted as a payment.
fn reconcile_one(
    tx: &mut impl Transaction,
    statement: &StatementSummary,
    CheckedStatus {
        status,
        item,
        holder,
        ..
    }: &CheckedStatus,
    payment_id: u128,
) -> Result<Outcome, CreditError> {
    let receivable = records::receivable_account_id(&statement.bank_id, holder.currency);
    ensure_account(tx, receivable, holder.currency, code::BANK_RECEIVABLE)?;
    let mut outcome = Outcome::default();
    for token in &status.tokens {
        settle_reflection(
            tx,
            statement,
            item,
            token,
            &status.end_to_end_id,
            &mut outcome,
        )?;
    }
    let collected = status.from_pool + status.from_personal;
    let payment = collected.saturating_sub(outcome.posted_amount);
    if payment > 0 {
        tx.create_transfer_within(NewTransfer {
            id: payment_id,
            debit_account_id: receivable,
            credit_account_id: holder.account_id,
            amount: u128::from(payment),
            currency: Currency(holder.currency),
            code: code::PAYMENT,
            user_data: user_data(status.end_to_end_id.as_bytes()),
            kind: TransferKind::Single,
        })?;
    }
    Ok(outcome)
}

/// One token's reflection: posted for what the bank drew, re-reflected for what is left, or voided and
/// flagged when no deposit confirms it. A reflection no longer pending (expired) is left as it is.
fn settle_reflection(
    tx: &mut impl Transaction,
    statement: &StatementSummary,
    item: &StatementItem,
    token: &TokenConfirmation,
    end_to_end_id: &str,
    outcome: &mut Outcome,
) -> Result<(), CreditError> {
    let spent_key = records::spent_key(&statement.bank_id, &token.token_id);
    let mut spent: SpentRecord = records::load(tx, SPENT, &spent_key)?
        .ok_or(CreditError::corrupt("spent token of a statement"))?;
    let pending = tx
        .load_transfer(spent.pending_transfer)?
        .ok_or(CreditError::corrupt("reflection transfer"))?;
    if tx.pending_state(pending.id)? != Some(PendingState::Pending) {
        return Ok(());
    }
    let parts: [&[u8]; 2] = [&token.token_id, end_to_end_id.as_bytes()];
    if !token.confirmed {
        let void = NewTransfer::void(records::derived_id("void reflection", &parts), &pending);
        tx.create_transfer_within(void)?;
        let flagged = flag(tx, statement, item, &spent, token, end_to_end_id, &pending)?;
        outcome.flagged.push(flagged);
        return Ok(());
    }
    if token.drawn == 0 {
        outcome.kept += 1;
        return Ok(());
    }
    let posted = u128::from(token.drawn).min(pending.amount);
    let post = NewTransfer::post(
        records::derived_id("post reflection", &parts),
        &pending,
        posted,
    );
    tx.create_transfer_within(post)?;
    outcome.posted += 1;
    outcome.posted_amount +=
        u64::try_from(posted).map_err(|_| CreditError::corrupt("reflection amount"))?;
    let rest = pending.amount - posted;
    let kept = rest.min(u128::from(token.remaining));
    if kept > 0 {
        let TransferKind::Pending { expires_at } = pending.kind else {
            return Err(CreditError::corrupt("reflection transfer kind"));
        };
        let id = records::derived_id("kept reflection", &parts);
        tx.create_transfer_within(NewTransfer {
            id,
            amount: kept,
            kind: TransferKind::Pending { expires_at },
            ..pending.as_new()
        })?;
        keep_pending_record(tx, item, &mut spent, &spent_key, id, kept)?;
        outcome.kept += 1;
    }
    Ok(())
}

/// Points the spent token at its new, smaller reflection and records it as a pending credit.
fn keep_pending_record(
    tx: &mut impl Transaction,
    item: &StatementItem,
    spent: &mut SpentRecord,
    spent_key: &[u8],
    transfer_id: u128,
    amount: u128,
) -> Result<(), CreditError> {
    let mut old_key = records::pending_prefix(&item.cardholder_id);
    old_key.extend_from_slice(&spent.pending_transfer.to_be_bytes());
    let mut pending: PendingCredit = records::load(tx, PENDING, &old_key)?
        .ok_or(CreditError::corrupt("pending credit of a reflection"))?;
    pending.amount =
        u64::try_from(amount).map_err(|_| CreditError::corrupt("reflection amount"))?;
    let mut key = records::pending_prefix(&item.cardholder_id);
    key.extend_from_slice(&transfer_id.to_be_bytes());
    tx.put(PENDING, &key, &records::encode(&pending))?;
    spent.pending_transfer = transfer_id;
    tx.put(SPENT, spent_key, &records::encode(&*spent))?;
    Ok(())
}

fn flag(
    tx: &mut impl Transaction,
    statement: &StatementSummary,
    item: &StatementItem,
    spent: &SpentRecord,
    token: &TokenConfirmation,
    end_to_end_id: &str,
    pending: &ledger::Transfer,
) -> Result<FlaggedReflection, CreditError> {
    let decision: Option<DecisionRecord> = records::load(
        tx,
        DECISIONS,
        &records::decision_key(spent.authorization_id),
    )?;
    let pan = decision.map(|d| d.evidence.pan).unwrap_or_default();
    let flagged = FlaggedReflection {
        token_id: token.token_id,
        bank_id: statement.bank_id.clone(),
        cardholder_id: item.cardholder_id.clone(),
        pan,
        amount: u64::try_from(pending.amount)
            .map_err(|_| CreditError::corrupt("reflection amount"))?,
        authorization_id: spent.authorization_id,
        statement: statement.message_id.clone(),
        end_to_end_id: end_to_end_id.to_owned(),
    };
    let mut key = Vec::with_capacity(33);
    records::key_part(&mut key, &statement.bank_id);
    key.extend_from_slice(&token.token_id);
    tx.put(FLAGGED, &key, &records::encode(&flagged))?;
    Ok(flagged)
}
