//! The invariants, recomputed from the transfers alone and compared with what the store keeps.

use std::collections::{BTreeMap, HashMap};

use crate::error::{LedgerError, Violation};
use crate::model::{
    Account, AccountId, Currency, PendingState, Transfer, TransferId, TransferKind,
};
use crate::rules::within_limits;
use crate::store::LedgerTables;

/// A sum that cannot overflow: (high, low) halves of a 256-bit integer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Wide(u128, u128);

impl Wide {
    fn add(&mut self, amount: u128) {
        let (low, carry) = self.1.overflowing_add(amount);
        *self = Wide(self.0 + u128::from(carry), low);
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Balances {
    debits_pending: Wide,
    debits_posted: Wide,
    credits_pending: Wide,
    credits_posted: Wide,
}

impl Balances {
    fn of(account: &Account) -> Self {
        Self {
            debits_pending: Wide(0, account.debits_pending),
            debits_posted: Wide(0, account.debits_posted),
            credits_pending: Wide(0, account.credits_pending),
            credits_posted: Wide(0, account.credits_posted),
        }
    }
}

/// Checks, in this order: every transfer is well formed (existing, distinct accounts of its currency, a
/// positive amount) and agrees with its pending transfer; every pending transfer's fate matches the transfers
/// that name it; every account's balances are the sums of its transfers and keep its limits; in every currency
/// debits equal credits, pending and posted.
pub(crate) fn check(tx: &mut impl LedgerTables) -> Result<(), LedgerError> {
    let accounts: HashMap<AccountId, Account> =
        tx.all_accounts()?.into_iter().map(|a| (a.id, a)).collect();
    let transfers = tx.all_transfers()?;
    // By timestamp: each later than the one before (the ledger assigns them increasing; no index enforces it).
    for pair in transfers.windows(2) {
        if let [(earlier, _), (later, _)] = pair
            && later.timestamp <= earlier.timestamp
        {
            return Err(Violation::TimestampReused { transfer: later.id }.into());
        }
    }
    let by_id: HashMap<TransferId, (&Transfer, Option<PendingState>)> = transfers
        .iter()
        .map(|(t, state)| (t.id, (t, *state)))
        .collect();
    let mut sums: HashMap<AccountId, Balances> = HashMap::new();
    let mut fates: HashMap<TransferId, PendingState> = HashMap::new();
    for (transfer, state) in &transfers {
        check_transfer(transfer, &accounts)?;
        let amount = transfer.amount;
        let (debit, credit) = (transfer.debit_account_id, transfer.credit_account_id);
        match transfer.kind {
            TransferKind::Single => {
                sums.entry(debit).or_default().debits_posted.add(amount);
                sums.entry(credit).or_default().credits_posted.add(amount);
            }
            TransferKind::Pending { .. } if *state == Some(PendingState::Pending) => {
                sums.entry(debit).or_default().debits_pending.add(amount);
                sums.entry(credit).or_default().credits_pending.add(amount);
            }
            TransferKind::Pending { .. } => {}
            TransferKind::PostPending { pending_id } | TransferKind::VoidPending { pending_id } => {
                let posted = matches!(transfer.kind, TransferKind::PostPending { .. });
                check_resolution(transfer, pending_id, posted, &by_id, &mut fates)?;
                if posted {
                    sums.entry(debit).or_default().debits_posted.add(amount);
                    sums.entry(credit).or_default().credits_posted.add(amount);
                }
            }
        }
    }
    check_fates(&transfers, &fates)?;
    check_accounts(&accounts, &sums)
}

fn check_transfer(
    transfer: &Transfer,
    accounts: &HashMap<AccountId, Account>,
) -> Result<(), Violation> {
    let of_currency = |id| {
        accounts
            .get(&id)
            .is_some_and(|account| account.currency == transfer.currency)
    };
    let well_formed = transfer.amount > 0
        && transfer.debit_account_id != transfer.credit_account_id
        && of_currency(transfer.debit_account_id)
        && of_currency(transfer.credit_account_id);
    if well_formed {
        Ok(())
    } else {
        Err(Violation::MalformedTransfer {
            transfer: transfer.id,
        })
    }
}

/// A post or void names an earlier pending transfer on the same accounts, and is the only one to resolve it.
fn check_resolution(
    transfer: &Transfer,
    pending_id: TransferId,
    posted: bool,
    by_id: &HashMap<TransferId, (&Transfer, Option<PendingState>)>,
    fates: &mut HashMap<TransferId, PendingState>,
) -> Result<(), Violation> {
    let inconsistent = Violation::PendingInconsistent {
        transfer: transfer.id,
    };
    let Some((pending, _)) = by_id.get(&pending_id) else {
        return Err(inconsistent);
    };
    let agrees = matches!(pending.kind, TransferKind::Pending { .. })
        && pending.timestamp < transfer.timestamp
        && (pending.debit_account_id, pending.credit_account_id)
            == (transfer.debit_account_id, transfer.credit_account_id)
        && if posted {
            transfer.amount <= pending.amount
        } else {
            transfer.amount == pending.amount
        };
    let fate = if posted {
        PendingState::Posted
    } else {
        PendingState::Voided
    };
    if !agrees || fates.insert(pending_id, fate).is_some() {
        return Err(inconsistent);
    }
    Ok(())
}

/// Posted and voided pending transfers are exactly those a transfer resolved; the others are pending or expired.
fn check_fates(
    transfers: &[(Transfer, Option<PendingState>)],
    fates: &HashMap<TransferId, PendingState>,
) -> Result<(), Violation> {
    for (transfer, state) in transfers {
        let consistent = match (transfer.kind, state) {
            (TransferKind::Pending { .. }, Some(PendingState::Pending | PendingState::Expired)) => {
                !fates.contains_key(&transfer.id)
            }
            (TransferKind::Pending { .. }, Some(state)) => fates.get(&transfer.id) == Some(state),
            (TransferKind::Pending { .. }, None) => false,
            (_, state) => state.is_none(),
        };
        if !consistent {
            return Err(Violation::PendingInconsistent {
                transfer: transfer.id,
            });
        }
    }
    Ok(())
}

fn check_accounts(
    accounts: &HashMap<AccountId, Account>,
    sums: &HashMap<AccountId, Balances>,
) -> Result<(), LedgerError> {
    let mut totals: BTreeMap<Currency, Balances> = BTreeMap::new();
    for account in accounts.values() {
        let expected = sums.get(&account.id);
        let stored = Balances::of(account);
        if expected.unwrap_or(&Balances::default()) != &stored {
            return Err(Violation::BalanceMismatch {
                account: account.id,
            }
            .into());
        }
        if !within_limits(account)? {
            return Err(Violation::LimitBroken {
                account: account.id,
            }
            .into());
        }
        let total = totals.entry(account.currency).or_default();
        total.debits_pending.add(account.debits_pending);
        total.debits_posted.add(account.debits_posted);
        total.credits_pending.add(account.credits_pending);
        total.credits_posted.add(account.credits_posted);
    }
    for (currency, total) in totals {
        for (posted, debits, credits) in [
            (true, total.debits_posted, total.credits_posted),
            (false, total.debits_pending, total.credits_pending),
        ] {
            if debits != credits {
                let (debits, credits) = ((debits.0, debits.1), (credits.0, credits.1));
                return Err(Violation::Unbalanced {
                    currency,
                    posted,
                    debits,
                    credits,
                }
                .into());
            }
        }
    }
    Ok(())
}
