//! The linkcard bank applet (patent Fig. 7): the user's account data and a bounded store of payment tokens,
//! which only the bank's ATM may write, in an SCP11a session whose certificate carries the `bank-atm` role.
//! Its commands are [`apdu_spec::bank`]; its SCP11 key, certificate and trust anchors are the runtime's
//! (the card manager's INSTALL [for personalization] and STORE DATA).
//!
//! Persistent state, in the applet's own records: the account data (record [`ACCOUNT_KEY`], the
//! personalization TLVs as received) and up to [`tokens::SLOTS`] tokens of up to
//! [`apdu_spec::token::MAX_TOKEN`] bytes, [`tokens::PARTS`] records each (see [`tokens`]). The applet has no
//! fields: everything it knows is in its records, so a reboot loses nothing but the session.
//!
//! **Fig. 14 share**: the credit applet pulls tokens through this applet's shareable interface
//! ([`apdu_spec::shared::BankRequest::HandOver`]); only the credit applet instance named at personalization
//! (`4F`), checked against the runtime-stamped caller AID on every call, gets them. A token moves by a
//! hand-over of its records ([`token_store::hand_over`]) inside the credit applet's transaction: after a tear
//! at any write it is in exactly one of the two applets.
//!
//! The card does not verify tokens (only the credit system can open them): it reads the clear header to refuse
//! a token of another bank or one already expired, to list tokens and to evict expired ones, by the card date
//! ([`card_os::Context::card_date`]).
//!
//! Tests (they need the whole card and real SCP11 sessions, so they live with the emulator):
//! `host-tools/emulator/tests/bank_applet.rs` (the reboot test, store/list/delete, capacity, refusals with
//! nothing changed, eviction, a tear at every write point of STORE TOKEN, mutations) and the conformance script
//! `tests/conformance/12-bank-applet.apdu`.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod tokens;

use apdu_spec::bank::{BankCommand, MAX_PERSONALIZATION, Personalization};
use apdu_spec::shared::{self, BankRequest, HandOver};
use apdu_spec::token::{Envelope, TOKEN_ID_LENGTH};
use apdu_spec::{Aid, CommandView, StatusWord};
use card_os::applet::{RecordError, Refused};
use card_os::image::{Install, LoadFile};
use card_os::{Applet, Context, Reply};

/// The record holding the account data.
pub const ACCOUNT_KEY: u8 = 0x01;

/// A bank applet instance. It keeps nothing in fields (see the crate documentation).
#[derive(Debug, Clone, Default)]
pub struct BankApplet;

impl Install for BankApplet {
    const LOAD_FILE: LoadFile = LoadFile {
        aid: apdu_spec::aid::BANK_LOAD_FILE,
        modules: &[apdu_spec::aid::BANK_MODULE],
    };

    /// The bank applet takes no install parameters (6A80 for any).
    fn install(_module: &Aid, _aid: &Aid, parameters: &[u8]) -> Result<Self, StatusWord> {
        if parameters.is_empty() {
            Ok(Self)
        } else {
            Err(StatusWord::WRONG_DATA)
        }
    }
}

/// The account data as stored; `Ok(None)` before personalization.
fn account<'b>(
    ctx: &mut Context<'_>,
    buf: &'b mut [u8; MAX_PERSONALIZATION],
) -> Result<Option<&'b [u8]>, StatusWord> {
    match ctx.records()?.get(ACCOUNT_KEY, buf) {
        Ok(n) => Ok(buf.get(..n)),
        Err(RecordError::NotFound) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The personalized bank id, into `out`; 6985 before personalization.
fn bank_id<'b>(
    ctx: &mut Context<'_>,
    out: &'b mut [u8; MAX_PERSONALIZATION],
) -> Result<&'b [u8], StatusWord> {
    let stored = account(ctx, out)?.ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
    // The record was parsed before it was stored; a record that no longer parses is a memory failure.
    Personalization::parse(stored)
        .map(|personalization| personalization.bank_id)
        .map_err(|_| StatusWord::MEMORY_FAILURE)
}

impl BankApplet {
    fn personalize(ctx: &mut Context<'_>, data: &[u8]) -> Result<(), StatusWord> {
        let mut buf = [0u8; MAX_PERSONALIZATION];
        if account(ctx, &mut buf)?.is_some() {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        Ok(ctx.records()?.put(ACCOUNT_KEY, data)?)
    }

    fn read_account(ctx: &mut Context<'_>, reply: &mut Reply<'_>) -> Result<(), StatusWord> {
        let mut buf = [0u8; MAX_PERSONALIZATION];
        let stored = account(ctx, &mut buf)?.ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
        reply.push(stored)
    }

    /// Checks the token against the account and the card date, then keeps it in a free slot.
    fn store_token(ctx: &mut Context<'_>, token: &[u8]) -> Result<(), StatusWord> {
        let mut buf = [0u8; MAX_PERSONALIZATION];
        let bank_id = bank_id(ctx, &mut buf)?;
        let envelope = Envelope::parse(token).map_err(|_| StatusWord::WRONG_DATA)?;
        let today = ctx.card_date();
        if envelope.header.bank_id != bank_id || envelope.header.expires < today {
            return Err(StatusWord::WRONG_DATA);
        }
        tokens::evict_expired(ctx)?;
        let scan = tokens::scan(ctx, envelope.header.token_id)?;
        if scan.found.is_some() {
            return Err(StatusWord::WRONG_DATA);
        }
        let slot = scan.free.ok_or(StatusWord::NOT_ENOUGH_MEMORY)?;
        tokens::write(ctx, slot, token)
    }

    fn list_tokens(ctx: &mut Context<'_>, reply: &mut Reply<'_>) -> Result<(), StatusWord> {
        let mut buf = [0u8; MAX_PERSONALIZATION];
        bank_id(ctx, &mut buf)?;
        tokens::evict_expired(ctx)?;
        let mut stored = tokens::Stored::empty();
        for slot in 0..tokens::SLOTS {
            if tokens::read(ctx, slot, &mut stored)?
                && let Some(envelope) = stored.envelope()
            {
                reply.push(envelope.header_tlv)?;
            }
        }
        Ok(())
    }

    /// Fig. 14: gives the first token for the caller's company and card to the caller, if the caller is the
    /// credit applet named at personalization (as the runtime stamped it).
    fn hand_over(
        ctx: &mut Context<'_>,
        caller: &Aid,
        request: &[u8],
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        let mut buf = [0u8; MAX_PERSONALIZATION];
        let stored = account(ctx, &mut buf)?.ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
        let personalization =
            Personalization::parse(stored).map_err(|_| StatusWord::MEMORY_FAILURE)?;
        if personalization.credit_applet != caller.as_bytes() {
            return Err(StatusWord::SECURITY_STATUS_NOT_SATISFIED);
        }
        let BankRequest::HandOver {
            credit_id,
            card_binding,
            first_key,
        } = shared::decode(request).map_err(|_| StatusWord::WRONG_DATA)?;
        let answer = match tokens::find_for(ctx, credit_id, &card_binding)? {
            Some((slot, token_id)) => {
                tokens::hand_over(ctx, slot, first_key)?;
                HandOver::Token { token_id }
            }
            None => HandOver::Nothing,
        };
        let n = shared::encode(&answer, reply.spare())
            .map_err(|_| StatusWord::UNKNOWN)?
            .len();
        reply.advance(n)
    }

    fn delete_token(ctx: &mut Context<'_>, id: &[u8; TOKEN_ID_LENGTH]) -> Result<(), StatusWord> {
        let mut buf = [0u8; MAX_PERSONALIZATION];
        bank_id(ctx, &mut buf)?;
        let slot = tokens::scan(ctx, id)?
            .found
            .ok_or(StatusWord::REFERENCED_DATA_NOT_FOUND)?;
        tokens::remove(ctx, slot)
    }
}

impl Applet for BankApplet {
    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        command: &CommandView<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), StatusWord> {
        if ctx.selecting() {
            return card_os::applet::answer_select(ctx, command, reply);
        }
        let parsed = BankCommand::try_from(command)?;
        // The bank applet has no plain commands, before issuance or after.
        parsed.requirement().check(ctx.security(), false)?;
        match parsed {
            BankCommand::Personalize(_) => Self::personalize(ctx, command.data()),
            BankCommand::ReadAccount => Self::read_account(ctx, reply),
            BankCommand::StoreToken(token) => Self::store_token(ctx, token),
            BankCommand::ListTokens => Self::list_tokens(ctx, reply),
            BankCommand::DeleteToken(id) => Self::delete_token(ctx, id),
        }
    }

    /// The Fig. 14 share: only [`BankRequest::HandOver`], only from the credit applet named at
    /// personalization; every refusal is the same.
    fn shared(
        &mut self,
        ctx: &mut Context<'_>,
        caller: &Aid,
        request: &[u8],
        reply: &mut Reply<'_>,
    ) -> Result<(), Refused> {
        Self::hand_over(ctx, caller, request, reply).map_err(|_| Refused)
    }

    /// A token (up to 640 bytes, more once secured) fits one extended-length APDU, or a command chain.
    fn extended_length(&self) -> bool {
        true
    }
}
