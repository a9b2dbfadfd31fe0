//! One authorization (patent Fig. 10) inside one database transaction: status checks, the card's signature and
//! ATC, each token opened, marked spent and reflected at once as a pending credit, the purchase compared with the
//! available credit, the decision recorded with its evidence.

use ledger::{
    Account, AccountFlags, AccountId, Currency, Inserted, NewAccount, NewTransfer, Recorded,
    RequestId, Transaction, TransferKind,
};
use p256::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};
use token::{AwsLc, BankKeyring, CreditRecipient, OpenCrypto, OpenError, TokenBody};

use crate::error::{CreditError, pan_tail};
use crate::model::{
    AcceptedToken, AuthorizationRequest, CardStatus, CreditConfig, Decision, DeclineReason,
    PendingCredit, RefusedToken,
};
use crate::records::{
    self, CARDHOLDERS, CARDS, CardRecord, CardholderRecord, DECISIONS, DecisionRecord, Evidence,
    NEXT_AUTHORIZATION_KEY, PENDING, SPENT, SpentRecord, TokenEvidence, code,
};

/// At most this many tokens in one authorization (a card keeps 4).
pub const MAX_TOKENS: usize = 16;
/// Longest merchant name kept as evidence, in bytes.
pub const MAX_MERCHANT: usize = 128;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// What opening tokens needs: who we are, whom we trust, and the fast public-key operations.
pub(crate) struct Keys<'a> {
    pub config: &'a CreditConfig,
    pub recipient: &'a CreditRecipient,
    pub banks: &'a BankKeyring,
    pub crypto: &'a AwsLc,
}

/// A cardholder's balances as the credit system reads them from the ledger account.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Balance {
    pub outstanding: u64,
    pub pending_credits: u64,
    pub available: u64,
    /// `limit + credits − debits`, which an expired reflection can make negative.
    signed_available: i128,
}

fn clamp(value: u128) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

fn signed(value: u128) -> i128 {
    i128::try_from(value).unwrap_or(i128::MAX)
}

impl Balance {
    pub(crate) fn of(limit: u64, account: &Account) -> Self {
        // Pending credits count at once: the temporary reflection is the invention.
        let credits =
            signed(account.credits_posted).saturating_add(signed(account.credits_pending));
        let signed_available = i128::from(limit)
            .saturating_add(credits)
            .saturating_sub(signed(account.debits_posted));
        Self {
            outstanding: clamp(account.debits_posted.saturating_sub(account.credits_posted)),
            pending_credits: clamp(account.credits_pending),
            available: Self::clamp_signed(signed_available),
            signed_available,
        }
    }

    /// The credit available once `reflected` more is pending (without reading the account again).
    fn available_with(&self, reflected: u64) -> u64 {
        Self::clamp_signed(self.signed_available.saturating_add(i128::from(reflected)))
    }

    fn clamp_signed(value: i128) -> u64 {
        u64::try_from(value.max(0)).unwrap_or(u64::MAX)
    }
}

/// Runs one authorization idempotently under `request_id`; the caller commits.
pub(crate) fn authorize_one(
    tx: &mut impl Transaction,
    keys: &Keys<'_>,
    request_id: RequestId,
    request: &AuthorizationRequest,
) -> Result<Decision, CreditError> {
    let body = request_bytes(request);
    let mut fresh = None;
    // Every refusal of `decide` comes before its first write (`check_request`, unknown card or cardholder).
    let recorded = tx.idempotent_unscoped(request_id, "credit.authorize", &body, |tx| {
        let decision = decide(tx, keys, request_id, request)?;
        let answer = decision.authorization_id.to_be_bytes().to_vec();
        fresh = Some(decision);
        Ok::<_, CreditError>(answer)
    })?;
    match (recorded, fresh) {
        (Recorded::Applied(_), Some(decision)) => Ok(decision),
        (recorded, _) => {
            let id: [u8; 16] = recorded
                .into_inner()
                .try_into()
                .map_err(|_| CreditError::corrupt("authorization answer"))?;
            let record: DecisionRecord = records::load(tx, DECISIONS, &id)?
                .ok_or(CreditError::corrupt("decision of a replayed authorization"))?;
            Ok(record.decision)
        }
    }
}

fn decide(
    tx: &mut impl Transaction,
    keys: &Keys<'_>,
    request_id: RequestId,
    request: &AuthorizationRequest,
) -> Result<Decision, CreditError> {
    check_request(request)?;
    let mut card: CardRecord =
        records::load(tx, CARDS, request.pan.as_bytes())?.ok_or_else(|| {
            CreditError::UnknownCard {
                pan_tail: pan_tail(&request.pan),
            }
        })?;
    let holder: CardholderRecord = records::load(tx, CARDHOLDERS, card.cardholder_id.as_bytes())?
        .ok_or_else(|| CreditError::UnknownCardholder {
        cardholder_id: card.cardholder_id.clone(),
    })?;
    let before = Balance::of(holder.credit_limit, &load_account(tx, holder.account_id)?);
    if before.outstanding.checked_add(request.amount).is_none() {
        return Err(CreditError::AmountOverflow {
            amount: request.amount,
            outstanding: before.outstanding,
        });
    }
    let authorization_id = u128::from(records::next_counter(tx, NEXT_AUTHORIZATION_KEY)?);
    let mut evidence = Evidence::of(request_id, request);
    let mut decision = Decision {
        authorization_id,
        approved: false,
        decline: None,
        available_before: before.available,
        available_after: before.available,
        accepted_tokens: Vec::new(),
        refused_tokens: Vec::new(),
    };
    let card_key = VerifyingKey::from_sec1_bytes(&card.signing_key)
        .map_err(|_| CreditError::corrupt("card signing key"))?;
    decision.decline = card_decline(&card, &holder, &card_key, keys.crypto, request, &evidence);
    if decision.decline.is_none() {
        // The card used this ATC: a later PRESENT must go beyond it, whatever the credit decision.
        card.last_atc = Some(request.atc);
        tx.put(CARDS, request.pan.as_bytes(), &records::encode(&card))?;
        let binding: [u8; 32] = Sha256::digest(card_key.to_sec1_point(false).as_bytes()).into();
        let context = TokenContext {
            keys,
            holder: &holder,
            before,
            cardholder_id: &card.cardholder_id,
            binding,
            authorization_id,
            request,
        };
        let reflected = reflect_tokens(tx, &context, &mut decision, &mut evidence)?;
        let available = before.available_with(reflected);
        settle_purchase(
            tx,
            &holder,
            request,
            available,
            &mut decision,
            &mut evidence,
        )?;
    }
    record_decision(tx, &decision, evidence)?;
    Ok(decision)
}

fn record_decision(
    tx: &mut impl Transaction,
    decision: &Decision,
    evidence: Evidence,
) -> Result<(), CreditError> {
    let key = records::decision_key(decision.authorization_id);
    let record = DecisionRecord {
        decision: decision.clone(),
        evidence,
    };
    tx.put(DECISIONS, &key, &records::encode(&record))?;
    Ok(())
}

/// Refusals that record nothing: checked before anything is written.
fn check_request(request: &AuthorizationRequest) -> Result<(), CreditError> {
    if request.amount == 0 {
        return Err(CreditError::ZeroAmount);
    }
    if request.tokens.len() > MAX_TOKENS {
        return Err(CreditError::TooManyTokens {
            count: request.tokens.len(),
            max: MAX_TOKENS,
        });
    }
    if request.merchant.len() > MAX_MERCHANT {
        return Err(CreditError::malformed(
            "merchant",
            "is longer than 128 bytes",
        ));
    }
    Ok(())
}

pub(crate) fn load_account(
    tx: &mut impl Transaction,
    id: AccountId,
) -> Result<Account, CreditError> {
    tx.load_account(id)?
        .ok_or(CreditError::corrupt("cardholder's ledger account"))
}

/// The card checks of Fig. 10 step 1002 and the card's signature and ATC, in that order.
fn card_decline(
    card: &CardRecord,
    holder: &CardholderRecord,
    card_key: &VerifyingKey,
    crypto: &AwsLc,
    request: &AuthorizationRequest,
    evidence: &Evidence,
) -> Option<DeclineReason> {
    match card.status {
        CardStatus::Active => {}
        CardStatus::Lost => return Some(DeclineReason::CardLost),
        CardStatus::Stolen => return Some(DeclineReason::CardStolen),
        CardStatus::Blocked => return Some(DeclineReason::CardBlocked),
    }
    if request.today > card.expiry {
        return Some(DeclineReason::CardExpired);
    }
    if request.currency != holder.currency {
        return Some(DeclineReason::WrongCurrency {
            expected: holder.currency,
            got: request.currency,
        });
    }
    let digests: Vec<[u8; 32]> = evidence.tokens.iter().map(|token| token.digest).collect();
    let presentation = apdu_spec::credit::Presentation {
        nonce: &request.nonce,
        amount: request.amount,
        currency: request.currency,
    };
    let message = apdu_spec::credit::signed_message(&presentation, request.atc, &digests);
    if !crypto.verify(card_key, &message, &request.signature) {
        return Some(DeclineReason::BadCardSignature);
    }
    match card.last_atc {
        Some(last) if request.atc <= last => Some(DeclineReason::AtcNotIncreasing {
            last,
            presented: request.atc,
        }),
        _ => None,
    }
}

struct TokenContext<'a, 'k> {
    keys: &'a Keys<'k>,
    holder: &'a CardholderRecord,
    before: Balance,
    cardholder_id: &'a str,
    binding: [u8; 32],
    authorization_id: u128,
    request: &'a AuthorizationRequest,
}

fn reflect_tokens(
    tx: &mut impl Transaction,
    context: &TokenContext<'_, '_>,
    decision: &mut Decision,
    evidence: &mut Evidence,
) -> Result<u64, CreditError> {
    let mut reflected = 0u64;
    for (index, bytes) in context.request.tokens.iter().enumerate() {
        let slot = u8::try_from(index + 1).map_err(|_| CreditError::TooManyTokens {
            count: context.request.tokens.len(),
            max: MAX_TOKENS,
        })?;
        let outcome = reflect_token(tx, context, bytes, slot, reflected)?;
        let token_id = evidence.tokens.get(index).and_then(|token| token.token_id);
        match outcome {
            Ok(accepted) => {
                reflected = reflected.saturating_add(accepted.sum);
                if let Some(token) = evidence.tokens.get_mut(index) {
                    token.accepted_sum = Some(accepted.sum);
                }
                decision.accepted_tokens.push(accepted);
            }
            Err(reason) => decision
                .refused_tokens
                .push(RefusedToken { token_id, reason }),
        }
    }
    Ok(reflected)
}

/// Opens one token and reflects it; `Ok(Err(reason))` when the token is refused (nothing of it kept).
fn reflect_token(
    tx: &mut impl Transaction,
    context: &TokenContext<'_, '_>,
    bytes: &[u8],
    slot: u8,
    reflected_before: u64,
) -> Result<Result<AcceptedToken, String>, CreditError> {
    let keys = context.keys;
    let request = context.request;
    let body = match token::open_with(
        keys.crypto,
        bytes,
        keys.recipient,
        keys.banks,
        request.today,
        Some(&context.binding),
    ) {
        Ok(body) => body,
        Err(error) => return Ok(Err(open_refusal(&error))),
    };
    if let Some(reason) = body_refusal(&body, context) {
        return Ok(Err(reason));
    }
    let grace = keys.config.settlement_grace_days;
    let (Some(expires), Some(expires_at)) = (
        records::add_days(body.valid_until, grace),
        records::end_of_day_after(body.valid_until, grace),
    ) else {
        return Ok(Err("its validity date is out of range".into()));
    };
    if expires_at <= request.now_unix_seconds {
        return Ok(Err("its settlement period is over".into()));
    }
    let pending_total = u128::from(context.before.pending_credits)
        + u128::from(reflected_before)
        + u128::from(body.sum);
    if pending_total > u128::from(u64::MAX) {
        return Ok(Err("it would overflow the pending credits".into()));
    }
    let pending = PendingCredit {
        token_id: body.token_id,
        bank_id: body.bank_id.clone(),
        amount: body.sum,
        expires,
        authorization_id: context.authorization_id,
    };
    let expires_at = expires_at.saturating_mul(NANOS_PER_SECOND);
    record_reflection(tx, context, &pending, slot, expires_at)
}

fn open_refusal(error: &OpenError) -> String {
    match error {
        OpenError::UnknownBankKey => "unknown bank: no trusted bank key signed it".into(),
        OpenError::WrongRecipient => "sealed for another credit company".into(),
        OpenError::CardBindingMismatch => "bound to another card".into(),
        OpenError::Expired { .. } | OpenError::NotYetValid { .. } => error.to_string(),
        _ => format!("tampered or malformed ({error})"),
    }
}

fn body_refusal(body: &TokenBody, context: &TokenContext<'_, '_>) -> Option<String> {
    if body.pan != context.request.pan {
        return Some("issued for another card number".into());
    }
    if body.currency != context.holder.currency {
        return Some(format!(
            "in currency {}, the account keeps {}",
            body.currency, context.holder.currency
        ));
    }
    None
}

/// The pending credit and the spent-token mark, together or neither. Without a savepoint of its own (one would
/// copy every page it touches into SQLite's statement journal): the mark is looked up first, the ledger
/// request is all-or-nothing, and only then are the mark and the record written.
fn record_reflection(
    tx: &mut impl Transaction,
    context: &TokenContext<'_, '_>,
    pending: &PendingCredit,
    slot: u8,
    expires_at: u64,
) -> Result<Result<AcceptedToken, String>, CreditError> {
    let holder = context.holder;
    let transfer_id = records::authorization_transfer_id(context.authorization_id, slot);
    let spent = SpentRecord {
        authorization_id: context.authorization_id,
        pending_transfer: transfer_id,
    };
    let spent_key = records::spent_key(&pending.bank_id, &pending.token_id);
    if tx.get(SPENT, &spent_key)?.is_some() {
        return Ok(Err("already used".into()));
    }
    let receivable = records::receivable_account_id(&pending.bank_id, holder.currency);
    ensure_account(tx, receivable, holder.currency, code::BANK_RECEIVABLE)?;
    let mut user_data = [0u8; 32];
    user_data[..16].copy_from_slice(&pending.token_id);
    let bank_id_length = pending.bank_id.len().min(16);
    user_data[16..16 + bank_id_length].copy_from_slice(&pending.bank_id[..bank_id_length]);
    let transfer = NewTransfer {
        id: transfer_id,
        debit_account_id: receivable,
        credit_account_id: holder.account_id,
        amount: u128::from(pending.amount),
        currency: Currency(holder.currency),
        code: code::REFLECTION,
        user_data,
        kind: TransferKind::Pending { expires_at },
    };
    match tx.create_transfer_within(transfer) {
        Ok(_) => {}
        Err(error) if error.is_refusal() => {
            return Ok(Err(format!("the ledger refused it: {error}")));
        }
        Err(error) => return Err(error.into()),
    }
    // The table's uniqueness on (bank id, token id) is the guard; the look-up above only spares the transfer.
    if tx.insert_unique(SPENT, &spent_key, &records::encode(&spent))? == Inserted::AlreadyExists {
        return Err(CreditError::Inconsistent {
            what: "a spent token appeared within the transaction",
        });
    }
    let mut key = records::pending_prefix(context.cardholder_id);
    key.extend_from_slice(&transfer_id.to_be_bytes());
    tx.put(PENDING, &key, &records::encode(pending))?;
    Ok(Ok(AcceptedToken {
        token_id: pending.token_id,
        bank_id: pending.bank_id.clone(),
        sum: pending.amount,
    }))
}

/// Compares the purchase with the credit available after the reflections; posts it if approved.
fn settle_purchase(
    tx: &mut impl Transaction,
    holder: &CardholderRecord,
    request: &AuthorizationRequest,
    available: u64,
    decision: &mut Decision,
    evidence: &mut Evidence,
) -> Result<(), CreditError> {
    if request.amount > available {
        decision.decline = Some(DeclineReason::InsufficientCredit {
            available,
            amount: request.amount,
        });
        decision.available_after = available;
        return Ok(());
    }
    let transfer_id = records::authorization_transfer_id(decision.authorization_id, 0);
    let mut user_data = [0u8; 32];
    user_data[..16].copy_from_slice(&decision.authorization_id.to_be_bytes());
    let purchase = NewTransfer {
        id: transfer_id,
        debit_account_id: holder.account_id,
        credit_account_id: records::merchants_account_id(holder.currency),
        amount: u128::from(request.amount),
        currency: Currency(holder.currency),
        code: code::PURCHASE,
        user_data,
        kind: TransferKind::Single,
    };
    tx.create_transfer_within(purchase)?;
    decision.approved = true;
    decision.available_after = available - request.amount;
    evidence.purchase_transfer = Some(transfer_id);
    Ok(())
}

/// The ledger request id of a change the credit system makes on its own behalf (rare ones: accounts, expiry
/// runs): derived, so it meets no caller's id.
pub(crate) fn internal_request(kind: &str, id: u128) -> RequestId {
    RequestId(records::derived_id(kind, &[&id.to_be_bytes()]))
}

/// Opens the account if it is not there yet.
pub(crate) fn ensure_account(
    tx: &mut impl Transaction,
    id: AccountId,
    currency: u16,
    account_code: u16,
) -> Result<(), CreditError> {
    if tx.load_account(id)?.is_some() {
        return Ok(());
    }
    let account = NewAccount {
        id,
        currency: Currency(currency),
        code: account_code,
        flags: AccountFlags::default(),
        user_data: [0; 32],
    };
    tx.create_account(internal_request("account", id), account)?;
    Ok(())
}

impl Evidence {
    fn of(request_id: RequestId, request: &AuthorizationRequest) -> Self {
        let tokens = request
            .tokens
            .iter()
            .map(|bytes| TokenEvidence {
                digest: Sha256::digest(bytes).into(),
                token_id: apdu_spec::token::Envelope::parse(bytes)
                    .ok()
                    .map(|envelope| *envelope.header.token_id),
                accepted_sum: None,
            })
            .collect();
        Self {
            request_id: request_id.0,
            pan: request.pan.clone(),
            nonce: request.nonce,
            amount: request.amount,
            currency: request.currency,
            atc: request.atc,
            signature: request.signature.to_vec(),
            merchant: request.merchant.clone(),
            today: request.today,
            now_unix_seconds: request.now_unix_seconds,
            tokens,
            purchase_transfer: None,
        }
    }
}

/// The canonical bytes of a request, bound to its request id (every field, lengths as 32-bit prefixes).
fn request_bytes(request: &AuthorizationRequest) -> Vec<u8> {
    let token_bytes: usize = request.tokens.iter().map(|token| token.len() + 4).sum();
    let mut out = Vec::with_capacity(160 + token_bytes + request.merchant.len());
    let part = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    part(&mut out, request.pan.as_bytes());
    out.extend_from_slice(&request.nonce);
    out.extend_from_slice(&request.amount.to_be_bytes());
    out.extend_from_slice(&request.currency.to_be_bytes());
    out.extend_from_slice(&request.atc.to_be_bytes());
    out.extend_from_slice(
        &u32::try_from(request.tokens.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for token in &request.tokens {
        part(&mut out, token);
    }
    out.extend_from_slice(&request.signature);
    part(&mut out, request.merchant.as_bytes());
    out.extend_from_slice(&request.today.0);
    out.extend_from_slice(&request.now_unix_seconds.to_be_bytes());
    out
}
