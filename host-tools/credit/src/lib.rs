//! The credit system (patent Fig. 10): cardholders, cards, and authorizations that reflect the cardholder's
//! early payments — the payment tokens the card presents — **at once** in the available credit.
//!
//! # Accounts (on the [`ledger`])
//!
//! - one account per cardholder (code 1), in the cardholder's currency: a purchase debits it (posted), so
//!   `outstanding = debits posted − credits posted`; the bank's transfer on settlement day will credit it;
//! - one *merchants* account per currency (code 2), credited by every approved purchase;
//! - one *receivable* account per bank and currency (code 3): what the bank owes for the tokens it minted.
//!
//! An accepted token is a **temporary reflection**: a *pending* transfer from its bank's receivable account to
//! the cardholder's account, for the token's sum, expiring at the end of the token's last valid day plus
//! [`CreditConfig::settlement_grace_days`]. Reconciliation (Fig. 11) posts it when the bank's transfer arrives;
//! otherwise it expires ([`Credit::expire`]) and the credit it gave is withdrawn. The available credit is
//! `limit − outstanding + pending credits`: a pending credit counts as soon as it is reflected.
//!
//! # One authorization, one transaction
//!
//! [`Credit::authorize`] checks the card (known, active, not expired, in the account's currency), its signature
//! over the PRESENT message (`apdu_spec::credit::signed_message`) and its ATC (strictly increasing per card),
//! then opens each token (`token::open_with` with AWS-LC, bound to the card's key), marks it spent in a table
//! unique on (bank id, token id) and adds its pending credit, compares the purchase with the available credit,
//! posts it if approved, and records the decision with its evidence — all in one database transaction, under
//! the caller's request id (a replay answers the first decision and changes nothing).
//! [`Credit::authorize_batch`] commits many authorizations at once (group commit). An authorization refuses only
//! before its first write, so it needs no savepoint of its own (`ledger::Transaction::idempotent_unscoped`).
//! The credit system's records are postcard behind a format byte (JSON records of earlier versions still read).

#![forbid(unsafe_code)]

mod authorize;
mod error;
mod model;
mod records;
mod settlement;

use ledger::records::hex_bytes as hex_serde;
use ledger::{Ledger, LedgerTables, PendingState, RequestId, Store, Transaction};
use p256::ecdsa::VerifyingKey;
use token::{AwsLc, BankKeyring, CreditRecipient};

pub use authorize::{MAX_MERCHANT, MAX_TOKENS};
pub use error::CreditError;
pub use model::{
    AcceptedToken, AuthorizationRequest, CardStatus, CreditAccount, CreditConfig, Decision,
    DeclineReason, NewCard, NewCardholder, PendingCredit, RefusedToken,
};
pub use settlement::{
    CheckedStatus, FlaggedReflection, Mandate, Reconciliation, ReconciliationOrder,
    ReconciliationSummary, StatementOrder, StatementRun, StatementSummary,
};

use authorize::{Balance, Keys};
use error::pan_tail;
use records::{
    BANKS, CARDHOLDERS, CARDS, CONFIG_KEY, CardRecord, CardholderRecord, DECISIONS, DecisionRecord,
    META, NEXT_EXPIRY_RUN_KEY, PENDING, SPENT, SpentRecord, StoredConfig, code,
};

/// The credit system on a ledger store.
#[derive(Debug)]
pub struct Credit<S> {
    ledger: Ledger<S>,
    config: CreditConfig,
    recipient: CreditRecipient,
    banks: BankKeyring,
    crypto: AwsLc,
}

impl<S: Store> Credit<S> {
    /// Opens the credit system on `store` (a new database takes `config`; an existing one must have been made
    /// with the same credit id and currency), with the HPKE private keys tokens are sealed to.
    pub fn open(
        mut store: S,
        config: CreditConfig,
        hpke_keys: Vec<token::CreditPrivateKey>,
    ) -> Result<Self, CreditError> {
        if !(1..=16).contains(&config.credit_id.len()) {
            return Err(CreditError::malformed("credit id", "must be 1-16 bytes"));
        }
        check_currency(config.currency)?;
        if hpke_keys.is_empty() {
            return Err(CreditError::NoHpkeKeys);
        }
        let mut recipient = CreditRecipient::new(&config.credit_id);
        for key in hpke_keys {
            recipient.add_key(key);
        }
        let mut crypto = AwsLc::for_recipient(&recipient).map_err(CreditError::InvalidHpkeKey)?;
        let banks = {
            let mut tx = store.transaction()?;
            check_config(&mut tx, &config)?;
            let banks = load_banks(&mut tx)?;
            tx.commit()?;
            banks
        };
        for key in banks.keys() {
            crypto
                .keep_parsed(key)
                .map_err(|_| CreditError::corrupt("trusted bank key"))?;
        }
        Ok(Self {
            ledger: Ledger::new(store),
            config,
            recipient,
            banks,
            crypto,
        })
    }

    /// Trusts `key` for the tokens of bank `bank_id` (a bank may have several keys while it rotates them).
    pub fn trust_bank(
        &mut self,
        request: RequestId,
        bank_id: &[u8],
        key: token::BankVerifyingKey,
    ) -> Result<(), CreditError> {
        if !(1..=16).contains(&bank_id.len()) {
            return Err(CreditError::malformed("bank id", "must be 1-16 bytes"));
        }
        let point = key.to_sec1_point(false);
        let mut record_key = Vec::with_capacity(25);
        records::key_part(&mut record_key, bank_id);
        record_key.extend_from_slice(&token::bank_key_id(&key));
        let body = [record_key.as_slice(), point.as_bytes()].concat();
        let mut tx = self.ledger.transaction()?;
        tx.idempotent(request, "credit.trust_bank", &body, |tx| {
            tx.put(BANKS, &record_key, point.as_bytes())?;
            Ok::<_, CreditError>(Vec::new())
        })?;
        tx.commit()?;
        // A point p256 accepted, so AWS-LC accepts it too; were it refused, it would only be parsed each time.
        let _ = self.crypto.keep_parsed(&key);
        self.banks.insert(bank_id, key);
        Ok(())
    }

    /// Registers a cardholder with a credit limit, and opens their ledger account.
    pub fn add_cardholder(
        &mut self,
        request: RequestId,
        cardholder: &NewCardholder,
    ) -> Result<(), CreditError> {
        check_text("cardholder id", &cardholder.cardholder_id, 64)?;
        check_text("cardholder name", &cardholder.name, 128)?;
        check_currency(cardholder.currency)?;
        let body = [
            length_prefixed(cardholder.cardholder_id.as_bytes()),
            length_prefixed(cardholder.name.as_bytes()),
            cardholder.credit_limit.to_be_bytes().to_vec(),
            cardholder.currency.to_be_bytes().to_vec(),
        ]
        .concat();
        let id = cardholder.cardholder_id.as_bytes();
        let mut tx = self.ledger.transaction()?;
        tx.idempotent(request, "credit.add_cardholder", &body, |tx| {
            if tx.get(CARDHOLDERS, id)?.is_some() {
                return Err(CreditError::CardholderExists {
                    cardholder_id: cardholder.cardholder_id.clone(),
                });
            }
            let serial = records::next_counter(tx, records::NEXT_CARDHOLDER_KEY)?;
            let account_id = records::cardholder_account_id(serial);
            let merchants = records::merchants_account_id(cardholder.currency);
            authorize::ensure_account(tx, merchants, cardholder.currency, code::MERCHANTS)?;
            authorize::ensure_account(tx, account_id, cardholder.currency, code::CARDHOLDER)?;
            let record = CardholderRecord {
                name: cardholder.name.clone(),
                credit_limit: cardholder.credit_limit,
                currency: cardholder.currency,
                account_id,
            };
            tx.put(CARDHOLDERS, id, &records::encode(&record))?;
            Ok(Vec::new())
        })?;
        tx.commit()?;
        Ok(())
    }

    /// Registers a card (active, no ATC seen yet) for a registered cardholder.
    pub fn add_card(&mut self, request: RequestId, card: &NewCard) -> Result<(), CreditError> {
        check_pan(&card.pan)?;
        if card.expiry.ymd().is_none() {
            return Err(CreditError::malformed("card expiry", "is not a real day"));
        }
        let point = card.signing_key.to_sec1_point(false);
        let body = [
            length_prefixed(card.pan.as_bytes()),
            card.expiry.0.to_vec(),
            length_prefixed(card.cardholder_id.as_bytes()),
            point.as_bytes().to_vec(),
        ]
        .concat();
        let mut tx = self.ledger.transaction()?;
        tx.idempotent(request, "credit.add_card", &body, |tx| {
            if tx
                .get(CARDHOLDERS, card.cardholder_id.as_bytes())?
                .is_none()
            {
                return Err(CreditError::UnknownCardholder {
                    cardholder_id: card.cardholder_id.clone(),
                });
            }
            if tx.get(CARDS, card.pan.as_bytes())?.is_some() {
                return Err(CreditError::CardExists {
                    pan_tail: pan_tail(&card.pan),
                });
            }
            let record = CardRecord {
                expiry: card.expiry,
                cardholder_id: card.cardholder_id.clone(),
                signing_key: point.as_bytes().to_vec(),
                status: CardStatus::Active,
                last_atc: None,
            };
            tx.put(CARDS, card.pan.as_bytes(), &records::encode(&record))?;
            Ok(Vec::new())
        })?;
        tx.commit()?;
        Ok(())
    }

    /// Marks a card active, lost, stolen or blocked.
    pub fn set_card_status(
        &mut self,
        request: RequestId,
        pan: &str,
        status: CardStatus,
    ) -> Result<(), CreditError> {
        let body = [length_prefixed(pan.as_bytes()), records::encode(&status)].concat();
        let mut tx = self.ledger.transaction()?;
        tx.idempotent(request, "credit.set_card_status", &body, |tx| {
            let mut card: CardRecord =
                records::load(tx, CARDS, pan.as_bytes())?.ok_or_else(|| {
                    CreditError::UnknownCard {
                        pan_tail: pan_tail(pan),
                    }
                })?;
            card.status = status;
            tx.put(CARDS, pan.as_bytes(), &records::encode(&card))?;
            Ok::<_, CreditError>(Vec::new())
        })?;
        tx.commit()?;
        Ok(())
    }

    /// Decides one purchase (Fig. 10) in one durable commit. `Err` records nothing; a decline is a recorded
    /// [`Decision`].
    pub fn authorize(
        &mut self,
        request: RequestId,
        authorization: &AuthorizationRequest,
    ) -> Result<Decision, CreditError> {
        let keys = Keys {
            config: &self.config,
            recipient: &self.recipient,
            banks: &self.banks,
            crypto: &self.crypto,
        };
        let mut tx = self.ledger.transaction()?;
        let decision = authorize::authorize_one(&mut tx, &keys, request, authorization)?;
        tx.commit()?;
        Ok(decision)
    }

    /// Decides many purchases in one durable commit (group commit), each all-or-nothing: a refused one is
    /// answered with its error and wrote nothing (every refusal comes before the first write). The outer error (storage failed,
    /// nothing committed) means no authorization of the batch was recorded.
    pub fn authorize_batch(
        &mut self,
        batch: &[(RequestId, AuthorizationRequest)],
    ) -> Result<Vec<Result<Decision, CreditError>>, CreditError> {
        let keys = Keys {
            config: &self.config,
            recipient: &self.recipient,
            banks: &self.banks,
            crypto: &self.crypto,
        };
        let mut tx = self.ledger.transaction()?;
        let mut answers = Vec::with_capacity(batch.len());
        for (request, authorization) in batch {
            match authorize::authorize_one(&mut tx, &keys, *request, authorization) {
                Err(error) if !error.is_refusal() => return Err(error),
                answer => answers.push(answer),
            }
        }
        tx.commit()?;
        Ok(answers)
    }

    /// A cardholder's limit, outstanding balance, pending credits and available credit.
    pub fn account(&mut self, cardholder_id: &str) -> Result<CreditAccount, CreditError> {
        let mut tx = self.ledger.transaction()?;
        let holder = load_cardholder(&mut tx, cardholder_id)?;
        let balance = Balance::of(
            holder.credit_limit,
            &authorize::load_account(&mut tx, holder.account_id)?,
        );
        Ok(CreditAccount {
            currency: holder.currency,
            limit: holder.credit_limit,
            outstanding: balance.outstanding,
            pending_credits: balance.pending_credits,
            available: balance.available,
        })
    }

    /// A cardholder's temporary reflections still pending (neither posted, voided nor expired), oldest first.
    pub fn pending_credits(
        &mut self,
        cardholder_id: &str,
    ) -> Result<Vec<PendingCredit>, CreditError> {
        let mut tx = self.ledger.transaction()?;
        load_cardholder(&mut tx, cardholder_id)?;
        let prefix = records::pending_prefix(cardholder_id);
        let mut pending = Vec::new();
        for (key, value) in tx.scan_prefix(PENDING, &prefix)? {
            let transfer_id = records::pending_transfer_id(&key)?;
            if tx.pending_state(transfer_id)? == Some(PendingState::Pending) {
                pending.push(records::decode(PENDING, &value)?);
            }
        }
        Ok(pending)
    }

    /// The recorded decision with this id.
    pub fn decision(&mut self, authorization_id: u128) -> Result<Option<Decision>, CreditError> {
        let mut tx = self.ledger.transaction()?;
        let key = records::decision_key(authorization_id);
        let record: Option<DecisionRecord> = records::load(&mut tx, DECISIONS, &key)?;
        Ok(record.map(|record| record.decision))
    }

    /// Expires the temporary reflections whose time has come at `now_unix_seconds` (their credit is withdrawn);
    /// returns how many.
    pub fn expire(&mut self, now_unix_seconds: u64) -> Result<usize, CreditError> {
        let mut tx = self.ledger.transaction()?;
        // A fresh ledger request per run: a later run at the same time may find newer reflections due.
        let run = records::next_counter(&mut tx, NEXT_EXPIRY_RUN_KEY)?;
        let request = authorize::internal_request("expiry run", u128::from(run));
        let now = now_unix_seconds.saturating_mul(1_000_000_000);
        let expired = tx.expire_pending(request, now)?;
        tx.commit()?;
        Ok(expired.len())
    }

    /// The ledger underneath (balances, transfers, its own invariant check).
    pub fn ledger(&mut self) -> &mut Ledger<S> {
        &mut self.ledger
    }

    /// The ledger's invariants, and the credit system's own: every spent token has its pending credit (a
    /// reflection transfer and its record), and every reflection transfer has its record.
    pub fn check_invariants(&mut self) -> Result<(), CreditError> {
        self.ledger.check_invariants()?;
        let mut tx = self.ledger.transaction()?;
        let mut spent: Vec<u128> = Vec::new();
        for (_, value) in tx.scan_prefix(SPENT, &[])? {
            let record: SpentRecord = records::decode(SPENT, &value)?;
            spent.push(record.pending_transfer);
        }
        let mut reflected: Vec<u128> = Vec::new();
        for (key, _) in tx.scan_prefix(PENDING, &[])? {
            reflected.push(records::pending_transfer_id(&key)?);
        }
        let mut transfers: Vec<u128> = tx
            .all_transfers()?
            .into_iter()
            .filter(|(transfer, _)| {
                transfer.code == code::REFLECTION
                    && matches!(transfer.kind, ledger::TransferKind::Pending { .. })
            })
            .map(|(transfer, _)| transfer.id)
            .collect();
        reflected.sort_unstable();
        transfers.sort_unstable();
        // A reconciliation that keeps part of a reflection makes a new, smaller one: the spent token points at
        // the newest, and every reflection (old or new) has its record.
        let spent_unreflected = spent.iter().any(|id| transfers.binary_search(id).is_err());
        if reflected != transfers || spent_unreflected {
            return Err(CreditError::Inconsistent {
                what: "spent tokens, pending-credit records and reflection transfers",
            });
        }
        Ok(())
    }
}

fn check_config(tx: &mut impl Transaction, config: &CreditConfig) -> Result<(), CreditError> {
    let wanted = StoredConfig {
        credit_id: config.credit_id.clone(),
        currency: config.currency,
    };
    match records::load::<StoredConfig>(tx, META, CONFIG_KEY)? {
        None => tx.put(META, CONFIG_KEY, &records::encode(&wanted))?,
        Some(stored) if stored.credit_id != wanted.credit_id => {
            return Err(CreditError::ConfigMismatch { what: "credit id" });
        }
        Some(stored) if stored.currency != wanted.currency => {
            return Err(CreditError::ConfigMismatch { what: "currency" });
        }
        Some(_) => {}
    }
    Ok(())
}

fn load_banks(tx: &mut impl Transaction) -> Result<BankKeyring, CreditError> {
    let mut banks = BankKeyring::new();
    for (key, value) in tx.scan_prefix(BANKS, &[])? {
        let bank_id = key
            .split_first()
            .and_then(|(length, rest)| rest.get(..usize::from(*length)))
            .ok_or(CreditError::corrupt("trusted bank key"))?;
        let verifying =
            VerifyingKey::from_sec1_bytes(&value).map_err(|_| CreditError::corrupt("bank key"))?;
        banks.insert(bank_id, verifying);
    }
    Ok(banks)
}

fn load_cardholder(
    tx: &mut impl Transaction,
    cardholder_id: &str,
) -> Result<CardholderRecord, CreditError> {
    records::load(tx, CARDHOLDERS, cardholder_id.as_bytes())?.ok_or_else(|| {
        CreditError::UnknownCardholder {
            cardholder_id: cardholder_id.to_owned(),
        }
    })
}

fn check_currency(currency: u16) -> Result<(), CreditError> {
    if (1..=999).contains(&currency) {
        Ok(())
    } else {
        Err(CreditError::malformed(
            "currency",
            "must be an ISO 4217 numeric code, 1-999",
        ))
    }
}

fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), CreditError> {
    if (1..=max).contains(&text.len()) {
        Ok(())
    } else {
        Err(CreditError::malformed(field, "is empty or too long"))
    }
}

fn check_pan(pan: &str) -> Result<(), CreditError> {
    if (12..=19).contains(&pan.len()) && pan.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(CreditError::malformed(
            "PAN",
            "must be 12-19 decimal digits",
        ))
    }
}

fn length_prefixed(bytes: &[u8]) -> Vec<u8> {
    let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    [length.to_be_bytes().as_slice(), bytes].concat()
}
