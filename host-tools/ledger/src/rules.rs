//! The rules of double entry, written once over [`LedgerTables`]. Every check runs before the first write of a
//! step, and the caller runs a whole request inside one savepoint, so a refusal changes nothing.

use crate::error::LedgerError;
use crate::model::{
    Account, Answer, NewAccount, NewTransfer, PendingState, Request, Timestamp, Transfer,
    TransferId, TransferKind,
};
use crate::store::LedgerTables;

pub(crate) fn execute(
    tx: &mut impl LedgerTables,
    request: &Request,
) -> Result<Answer, LedgerError> {
    match request {
        Request::CreateAccounts(accounts) => {
            if accounts.is_empty() {
                return Err(LedgerError::EmptyRequest);
            }
            let created = accounts
                .iter()
                .map(|account| create_account(tx, account))
                .collect::<Result<_, _>>()?;
            Ok(Answer::Accounts(created))
        }
        Request::CreateTransfers(chain) => {
            let mut applied = Vec::with_capacity(chain.len());
            for (index, transfer) in chain.iter().enumerate() {
                match create_transfer(tx, transfer) {
                    Ok(transfer) => applied.push(transfer),
                    Err(error) if chain.len() == 1 => return Err(error),
                    Err(error) => {
                        return Err(LedgerError::InChain {
                            index,
                            source: Box::new(error),
                        });
                    }
                }
            }
            if applied.is_empty() {
                return Err(LedgerError::EmptyRequest);
            }
            Ok(Answer::Transfers(applied))
        }
        Request::ExpirePending { now } => expire_pending(tx, *now).map(Answer::Expired),
    }
}

fn create_account(tx: &mut impl LedgerTables, new: &NewAccount) -> Result<Account, LedgerError> {
    if new.flags.debits_must_not_exceed_credits && new.flags.credits_must_not_exceed_debits {
        return Err(LedgerError::ConflictingFlags { account: new.id });
    }
    if let Some(existing) = tx.load_account(new.id)? {
        return Err(if existing.as_new() == *new {
            LedgerError::AccountExists { account: new.id }
        } else {
            LedgerError::AccountExistsWithDifferentFields { account: new.id }
        });
    }
    let account = Account::opened(new, tx.next_timestamp()?);
    tx.insert_account(&account)?;
    Ok(account)
}

/// The accounts a transfer moves money between, loaded and checked.
struct Sides {
    debit: Account,
    credit: Account,
}

pub(crate) fn create_transfer(
    tx: &mut impl LedgerTables,
    new: &NewTransfer,
) -> Result<Transfer, LedgerError> {
    if new.amount == 0 {
        return Err(LedgerError::AmountZero);
    }
    if new.debit_account_id == new.credit_account_id {
        return Err(LedgerError::SameAccount {
            transfer: new.id,
            account: new.debit_account_id,
        });
    }
    if let Some(existing) = tx.load_transfer(new.id)? {
        return Err(if existing.as_new() == *new {
            LedgerError::TransferExists { transfer: new.id }
        } else {
            LedgerError::TransferExistsWithDifferentFields { transfer: new.id }
        });
    }
    let mut sides = load_sides(tx, new)?;
    let timestamp = tx.next_timestamp()?;
    let pending_fate = move_balances(tx, new, &mut sides, timestamp)?;
    check_limits(&sides)?;
    let transfer = Transfer {
        id: new.id,
        debit_account_id: new.debit_account_id,
        credit_account_id: new.credit_account_id,
        amount: new.amount,
        currency: new.currency,
        code: new.code,
        user_data: new.user_data,
        kind: new.kind,
        timestamp,
    };
    tx.update_balances(&sides.debit)?;
    tx.update_balances(&sides.credit)?;
    tx.insert_transfer(&transfer)?;
    if let Some((pending_id, fate)) = pending_fate {
        tx.set_pending_state(pending_id, fate)?;
    }
    Ok(transfer)
}

/// Moves the balances as the transfer's kind says; for a post or void, returns the pending fate to record.
fn move_balances(
    tx: &mut impl LedgerTables,
    new: &NewTransfer,
    sides: &mut Sides,
    timestamp: Timestamp,
) -> Result<Option<(TransferId, PendingState)>, LedgerError> {
    Ok(match new.kind {
        TransferKind::Single => {
            post(sides, new.amount)?;
            None
        }
        TransferKind::Pending { expires_at } => {
            if expires_at <= timestamp {
                return Err(LedgerError::ExpiryNotInFuture {
                    pending: new.id,
                    expires_at,
                    now: timestamp,
                });
            }
            reserve(sides, new.amount)?;
            None
        }
        TransferKind::PostPending { pending_id } => {
            let pending = open_pending(tx, new, pending_id, timestamp)?;
            if new.amount > pending.amount {
                return Err(LedgerError::ExceedsPendingAmount {
                    pending: pending_id,
                    pending_amount: pending.amount,
                    amount: new.amount,
                });
            }
            release(sides, pending.amount)?;
            post(sides, new.amount)?;
            Some((pending_id, PendingState::Posted))
        }
        TransferKind::VoidPending { pending_id } => {
            let pending = open_pending(tx, new, pending_id, timestamp)?;
            if new.amount != pending.amount {
                return Err(LedgerError::VoidAmountMismatch {
                    pending: pending_id,
                    pending_amount: pending.amount,
                    amount: new.amount,
                });
            }
            release(sides, pending.amount)?;
            Some((pending_id, PendingState::Voided))
        }
    })
}

fn load_sides(tx: &mut impl LedgerTables, new: &NewTransfer) -> Result<Sides, LedgerError> {
    let mut load = |id| {
        let account = tx
            .load_account(id)?
            .ok_or(LedgerError::AccountNotFound { account: id })?;
        if account.currency != new.currency {
            return Err(LedgerError::CurrencyMismatch {
                account: id,
                account_currency: account.currency,
                currency: new.currency,
            });
        }
        Ok(account)
    };
    Ok(Sides {
        debit: load(new.debit_account_id)?,
        credit: load(new.credit_account_id)?,
    })
}

/// The pending transfer that `new` posts or voids, if it still may be.
fn open_pending(
    tx: &mut impl LedgerTables,
    new: &NewTransfer,
    pending_id: TransferId,
    now: Timestamp,
) -> Result<Transfer, LedgerError> {
    let pending = tx
        .load_transfer(pending_id)?
        .ok_or(LedgerError::PendingNotFound {
            pending: pending_id,
        })?;
    let TransferKind::Pending { expires_at } = pending.kind else {
        return Err(LedgerError::NotPending {
            pending: pending_id,
        });
    };
    match tx.pending_state(pending_id)? {
        Some(PendingState::Pending) => {}
        Some(PendingState::Posted) => {
            return Err(LedgerError::PendingAlreadyPosted {
                pending: pending_id,
            });
        }
        Some(PendingState::Voided) => {
            return Err(LedgerError::PendingAlreadyVoided {
                pending: pending_id,
            });
        }
        Some(PendingState::Expired) => {
            return Err(LedgerError::PendingExpired {
                pending: pending_id,
            });
        }
        None => {
            return Err(LedgerError::Corrupt {
                what: "pending state",
            });
        }
    }
    // Expired in time even if no one has called expire_pending yet: the fate does not hang on that call.
    if expires_at <= now {
        return Err(LedgerError::PendingExpired {
            pending: pending_id,
        });
    }
    if (
        pending.debit_account_id,
        pending.credit_account_id,
        pending.currency,
    ) != (new.debit_account_id, new.credit_account_id, new.currency)
    {
        return Err(LedgerError::PendingMismatch {
            pending: pending_id,
        });
    }
    Ok(pending)
}

fn add(balance: u128, amount: u128, account: &Account) -> Result<u128, LedgerError> {
    balance.checked_add(amount).ok_or(LedgerError::Overflow {
        account: account.id,
    })
}

/// Only a corrupt store could hold less in pending than a pending transfer reserved.
fn sub(balance: u128, amount: u128) -> Result<u128, LedgerError> {
    balance.checked_sub(amount).ok_or(LedgerError::Corrupt {
        what: "pending balance",
    })
}

fn post(sides: &mut Sides, amount: u128) -> Result<(), LedgerError> {
    sides.debit.debits_posted = add(sides.debit.debits_posted, amount, &sides.debit)?;
    sides.credit.credits_posted = add(sides.credit.credits_posted, amount, &sides.credit)?;
    Ok(())
}

fn reserve(sides: &mut Sides, amount: u128) -> Result<(), LedgerError> {
    sides.debit.debits_pending = add(sides.debit.debits_pending, amount, &sides.debit)?;
    sides.credit.credits_pending = add(sides.credit.credits_pending, amount, &sides.credit)?;
    Ok(())
}

fn release(sides: &mut Sides, amount: u128) -> Result<(), LedgerError> {
    sides.debit.debits_pending = sub(sides.debit.debits_pending, amount)?;
    sides.credit.credits_pending = sub(sides.credit.credits_pending, amount)?;
    Ok(())
}

/// Whether an account keeps its own limits; also used by the invariant check.
pub(crate) fn within_limits(account: &Account) -> Result<bool, LedgerError> {
    let debits = add(account.debits_pending, account.debits_posted, account)?;
    let credits = add(account.credits_pending, account.credits_posted, account)?;
    Ok(
        !(account.flags.debits_must_not_exceed_credits && debits > account.credits_posted
            || account.flags.credits_must_not_exceed_debits && credits > account.debits_posted),
    )
}

fn check_limits(sides: &Sides) -> Result<(), LedgerError> {
    for account in [&sides.debit, &sides.credit] {
        if !within_limits(account)? {
            return Err(if account.flags.debits_must_not_exceed_credits {
                LedgerError::ExceedsCredits {
                    account: account.id,
                }
            } else {
                LedgerError::ExceedsDebits {
                    account: account.id,
                }
            });
        }
    }
    Ok(())
}

fn expire_pending(
    tx: &mut impl LedgerTables,
    now: Timestamp,
) -> Result<Vec<TransferId>, LedgerError> {
    let due = tx.pending_due(now)?;
    let mut expired = Vec::with_capacity(due.len());
    for pending in due {
        let mut sides = Sides {
            debit: tx
                .load_account(pending.debit_account_id)?
                .ok_or(LedgerError::Corrupt { what: "account" })?,
            credit: tx
                .load_account(pending.credit_account_id)?
                .ok_or(LedgerError::Corrupt { what: "account" })?,
        };
        release(&mut sides, pending.amount)?;
        tx.update_balances(&sides.debit)?;
        tx.update_balances(&sides.credit)?;
        tx.set_pending_state(pending.id, PendingState::Expired)?;
        expired.push(pending.id);
    }
    Ok(expired)
}
