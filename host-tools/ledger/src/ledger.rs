//! [`Ledger`]: a store with one commit per call, or one per batch (group commit).

use crate::error::LedgerError;
use crate::invariants;
use crate::model::{
    Account, AccountId, Answer, PendingState, Request, RequestId, Transfer, TransferId,
};
use crate::store::{LedgerTables, Store, Transaction};

/// A ledger on a store. Every call that answers has committed durably first.
#[derive(Debug)]
pub struct Ledger<S> {
    store: S,
}

impl<S: Store> Ledger<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn into_store(self) -> S {
        self.store
    }

    /// A transaction for work of one's own (a domain request and its postings together). Commit it.
    pub fn transaction(&mut self) -> Result<S::Tx<'_>, LedgerError> {
        self.store.transaction()
    }

    /// A transaction that only reads ([`Store::read_transaction`]): checks beside a writer in another connection.
    pub fn read_transaction(&mut self) -> Result<S::Tx<'_>, LedgerError> {
        self.store.read_transaction()
    }

    /// Applies one request in its own durable commit ([`Transaction::apply`]).
    pub fn submit(
        &mut self,
        request_id: RequestId,
        request: &Request,
    ) -> Result<Answer, LedgerError> {
        let mut tx = self.store.transaction()?;
        let answer = tx.apply(request_id, request)?;
        tx.commit()?;
        Ok(answer)
    }

    /// Applies independent requests in order, each all-or-nothing, and commits them together once (group
    /// commit): a refused request is answered with its refusal and undoes only its own changes. The outer error
    /// (storage failed, nothing committed) means no request of the batch was applied.
    pub fn submit_batch(
        &mut self,
        requests: &[(RequestId, Request)],
    ) -> Result<Vec<Result<Answer, LedgerError>>, LedgerError> {
        let mut tx = self.store.transaction()?;
        let mut answers = Vec::with_capacity(requests.len());
        for (request_id, request) in requests {
            match tx.apply(*request_id, request) {
                Err(error) if !error.is_refusal() => return Err(error),
                answer => answers.push(answer),
            }
        }
        tx.commit()?;
        Ok(answers)
    }

    pub fn account(&mut self, id: AccountId) -> Result<Option<Account>, LedgerError> {
        self.store.transaction()?.load_account(id)
    }

    pub fn transfer(&mut self, id: TransferId) -> Result<Option<Transfer>, LedgerError> {
        self.store.transaction()?.load_transfer(id)
    }

    /// The fate of a pending transfer; `None` if there is no such pending transfer.
    pub fn pending_state(&mut self, id: TransferId) -> Result<Option<PendingState>, LedgerError> {
        self.store.transaction()?.pending_state(id)
    }

    pub fn accounts(&mut self) -> Result<Vec<Account>, LedgerError> {
        self.store.transaction()?.all_accounts()
    }

    /// Every transfer, by timestamp, with the state of the pending ones.
    pub fn transfers(&mut self) -> Result<Vec<(Transfer, Option<PendingState>)>, LedgerError> {
        self.store.transaction()?.all_transfers()
    }

    /// Recomputes every balance from the transfers and checks that each transfer is balanced and well formed,
    /// each pending transfer's fate is consistent, each account keeps its limits, and in every currency the debits
    /// equal the credits. [`LedgerError::InvariantViolated`] names the first violation found.
    pub fn check_invariants(&mut self) -> Result<(), LedgerError> {
        invariants::check(&mut self.store.transaction()?)
    }
}
