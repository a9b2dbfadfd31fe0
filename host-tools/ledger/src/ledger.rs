//! [`Ledger`]: a store with one commit per call, or one per batch (group commit).

use crate::error::LedgerError;
use crate::invariants;
use crate::model::{
    Account, AccountId, Answer, PendingState, Request, RequestId, Transfer, TransferId,
};
use crate::store::{LedgerTables, Store, Transaction};

/// Why [`Ledger::import_while_reading`] stopped: the importing system's error (its work, or the store: `D`) or
/// its caller's (the reader's, or what it does with the results: `E`).
#[derive(Debug)]
pub enum ImportError<D, E> {
    Domain(D),
    Caller(E),
}

impl<D: From<LedgerError>, E> From<LedgerError> for ImportError<D, E> {
    fn from(error: LedgerError) -> Self {
        Self::Domain(error.into())
    }
}

/// How [`Ledger::import_while_reading`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// Every chunk is in and committed.
    Whole,
    /// The chunks ended before the reader had read the whole file: nothing was committed.
    Stopped,
}

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

    /// Imports a file while another thread is still reading it: `work` takes each chunk in a transaction, and
    /// `done` gets its result once the chunk is in (committed or not). Nothing is committed before `read_whole`
    /// says the reader has read and checked the whole file: until then every chunk goes into one transaction,
    /// which an error (the reader's, sent as a chunk, or `work`'s) drops, so a bad file changes nothing. From
    /// then on each chunk is a commit of its own, after which other writers get their turn
    /// ([`Store::let_others_write`]); the chunks' commits are made durable together, once, before it answers
    /// [`Imported::Whole`] ([`Store::unsynced_transaction`]: a crash of the machine meanwhile takes back the
    /// last chunks, which a re-run imports again). Answers [`Imported::Stopped`], nothing committed, when the
    /// chunks end before the file was read whole.
    pub fn import_while_reading<C, R, E: From<LedgerError>>(
        &mut self,
        chunks: impl IntoIterator<Item = Result<C, E>>,
        read_whole: impl Fn() -> bool,
        mut work: impl FnMut(&mut S::Tx<'_>, C) -> Result<R, E>,
        mut done: impl FnMut(R) -> Result<(), E>,
    ) -> Result<Imported, E> {
        let mut chunks = chunks.into_iter();
        let mut ended = false;
        // One transaction per pass: until the file is read whole it takes every chunk, then one chunk each.
        let mut committed = false;
        while !ended {
            if committed {
                self.store.let_others_write();
            }
            let mut open = Some(self.store.unsynced_transaction()?);
            while let Some(tx) = open.as_mut() {
                let Some(chunk) = chunks.next() else {
                    ended = true;
                    break;
                };
                let result = work(tx, chunk?)?;
                if read_whole()
                    && let Some(tx) = open.take()
                {
                    tx.commit()?;
                    committed = true;
                }
                done(result)?;
            }
            if ended && !read_whole() {
                return Ok(Imported::Stopped);
            }
            if let Some(tx) = open.take() {
                tx.commit()?;
            }
        }
        // One disk flush for the whole import, before anyone hears of it.
        self.store.sync()?;
        Ok(Imported::Whole)
    }

    /// Lets writers waiting for the store in (see [`Store::let_others_write`]): a long batch of commits calls it
    /// between two of them.
    pub fn let_others_write(&mut self) {
        self.store.let_others_write();
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
