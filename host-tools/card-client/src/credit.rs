//! The credit applet as a typed session: one method per command of [`apdu_spec::credit`], each built by the
//! command's own encoder, each refusal a [`CardManagerError`] (the card manager's mapping of status words:
//! 6982 `SecurityStatusNotSatisfied` saying what the command needs, 6985 `ConditionsNotSatisfied`, 6A80
//! `WrongData`, 6A84 `NotEnoughMemory`, 6A88 `NotFound`).
//!
//! Every credit applet command needs an SCP11a session ([`apdu_spec::credit::REQUIREMENTS`]): the session checks
//! the command's requirement against [`CardChannel::security`] before it sends. PRESENT goes as one
//! extended-length APDU ([`CardChannel::transmit_extended`]), so its long answer comes in one exchange: a
//! purchase is 6 APDUs (7 with VERIFY).

use apdu_spec::credit::{
    ATC_LENGTH, Confirmation, CreditCommand, Personalization, Presentation, SIGNATURE_LENGTH, tag,
};
use apdu_spec::scp11::cert::{Date, Issuer};
use apdu_spec::scp11::session::SecurityLevel;
use apdu_spec::token::TOKEN_ID_LENGTH;
use apdu_spec::{StatusWord, tlv};

use crate::card_manager::{
    CardManagerError, check_channel, exchange, exchange_extended, open_scp11a_with, select_applet,
};
use crate::channel::CardChannel;
use crate::scp11::{OceCredentials, Scp11Session};

/// What VERIFY said of the cardholder PIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinState {
    /// Verified: the next PRESENT is allowed.
    Verified,
    /// Not verified (or wrong); this many tries are left.
    TriesLeft(u8),
    /// No tries left: the card refuses every PIN.
    Blocked,
}

/// PRESENT's answer, taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presented {
    /// The ATC of this presentation (what CONFIRM must name).
    pub atc: u32,
    /// The card data TLVs `C1`..`C5`, as the card keeps them.
    pub card_data: Vec<u8>,
    /// The presented token envelopes, in the order signed.
    pub tokens: Vec<Vec<u8>>,
    /// The card's ECDSA P-256 signature, r ‖ s.
    pub signature: [u8; SIGNATURE_LENGTH],
}

impl Presented {
    /// Parses PRESENT's response data (without the status word); `None` if it is not one.
    pub fn parse(mut data: &[u8]) -> Option<Self> {
        let (mut atc, mut signature) = (None, None);
        let mut card_data = Vec::new();
        let mut tokens = Vec::new();
        while !data.is_empty() {
            let (item, rest) = tlv::read(data).ok()?;
            let raw = &data[..data.len() - rest.len()];
            match item.tag {
                tag::ATC if atc.is_none() => {
                    let bytes: [u8; ATC_LENGTH] = item.value.try_into().ok()?;
                    atc = Some(u32::from_be_bytes(bytes));
                }
                tag::CREDIT_ID..=tag::STATUS if tokens.is_empty() => {
                    card_data.extend_from_slice(raw);
                }
                apdu_spec::token::tag::ENVELOPE if signature.is_none() => tokens.push(raw.to_vec()),
                tag::SIGNATURE if signature.is_none() && rest.is_empty() => {
                    signature = Some(item.value.try_into().ok()?);
                }
                _ => return None,
            }
            data = rest;
        }
        Some(Self {
            atc: atc?,
            card_data,
            tokens,
            signature: signature?,
        })
    }

    /// The SHA-256 digests of the presented tokens, in order (what the signature covers, with
    /// [`apdu_spec::credit::signed_message`]).
    pub fn token_digests(&self) -> Vec<[u8; 32]> {
        use sha2::Digest;
        self.tokens
            .iter()
            .map(|t| sha2::Sha256::digest(t).into())
            .collect()
    }
}

/// A session with a credit applet instance over `C` (plain, to open a secure channel, or an SCP11 session).
#[derive(Debug)]
pub struct CreditAppletSession<C> {
    channel: C,
}

impl<C: CardChannel> CreditAppletSession<C> {
    /// Selects the credit applet `instance` (by AID; [`apdu_spec::aid::CREDIT_APPLET`] is the issuer's usual
    /// one) on a plain `channel`.
    pub fn select(mut channel: C, instance: &[u8]) -> Result<Self, CardManagerError> {
        select_applet(&mut channel, instance)?;
        Ok(Self { channel })
    }

    /// A session over a channel that already reaches the credit applet (selected, or an SCP11 session).
    pub fn over_selected(channel: C) -> Self {
        Self { channel }
    }

    /// Verifies the applet's certificates against `card_ca` as of `today` and opens an SCP11a session as `oce`.
    pub fn open_scp11a(
        self,
        card_ca: &Issuer<'_>,
        today: Date,
        oce: &OceCredentials,
        level: SecurityLevel,
    ) -> Result<CreditAppletSession<Scp11Session<C>>, CardManagerError> {
        let channel = open_scp11a_with(self.channel, card_ca, today, oce, level)?;
        Ok(CreditAppletSession { channel })
    }

    /// The channel, to send what this session has no method for.
    pub fn channel(&mut self) -> &mut C {
        &mut self.channel
    }

    /// Ends the session and hands the channel back.
    pub fn into_channel(self) -> C {
        self.channel
    }

    /// PERSONALIZE (an issuer session with C-DEC): the card data and the signing key, once; returns the public
    /// signing key (uncompressed SEC1, 65 bytes).
    pub fn personalize(&mut self, card: &Personalization<'_>) -> Result<Vec<u8>, CardManagerError> {
        self.run(&CreditCommand::Personalize(*card))
    }

    /// STORE TOKEN (the bank's token-delivery session): one token envelope.
    pub fn store_token(&mut self, token: &[u8]) -> Result<(), CardManagerError> {
        self.run(&CreditCommand::StoreToken(token)).map(drop)
    }

    /// PRESENT (the POS's session): counts the ATC up and answers the card data, the tokens and the signature.
    pub fn present(
        &mut self,
        presentation: &Presentation<'_>,
    ) -> Result<Presented, CardManagerError> {
        let data = self
            .exchange(&CreditCommand::Present(*presentation), true, |status| {
                status == StatusWord::SUCCESS
            })?
            .0;
        Presented::parse(&data).ok_or(CardManagerError::BadResponse {
            command: "PRESENT",
            reason: "not ATC, card data, tokens and a signature",
        })
    }

    /// CONFIRM (the POS's session): drops the tokens with `token_ids`, for the presentation with `atc`.
    pub fn confirm(
        &mut self,
        atc: u32,
        token_ids: &[[u8; TOKEN_ID_LENGTH]],
    ) -> Result<(), CardManagerError> {
        let ids = token_ids.concat();
        let confirmation = Confirmation::new(atc, &ids).ok_or(CardManagerError::BadResponse {
            command: "CONFIRM",
            reason: "too many token ids for one CONFIRM",
        })?;
        self.run(&CreditCommand::Confirm(confirmation)).map(drop)
    }

    /// VERIFY (the POS's session with C-DEC): the cardholder PIN, which PRESENT then accepts once. A wrong PIN
    /// is [`PinState::TriesLeft`] (63Cx), a blocked one [`PinState::Blocked`] (6983); other refusals are errors.
    pub fn verify_pin(&mut self, digits: &[u8]) -> Result<PinState, CardManagerError> {
        self.pin(&CreditCommand::Verify(Some(digits)))
    }

    /// VERIFY without data: whether the PIN is verified for the next PRESENT, or how many tries are left.
    pub fn pin_state(&mut self) -> Result<PinState, CardManagerError> {
        self.pin(&CreditCommand::Verify(None))
    }

    fn pin(&mut self, command: &CreditCommand<'_>) -> Result<PinState, CardManagerError> {
        let status = self.run_accepting(command, |status| {
            status.is_success()
                || status == StatusWord::AUTH_METHOD_BLOCKED
                || status.0 & 0xFFF0 == 0x63C0
        })?;
        Ok(match status {
            StatusWord::SUCCESS => PinState::Verified,
            StatusWord::AUTH_METHOD_BLOCKED => PinState::Blocked,
            other => PinState::TriesLeft((other.0 & 0x0F) as u8),
        })
    }

    /// Checks the command's requirement against the channel, sends it, and returns the data on 9000.
    fn run(&mut self, command: &CreditCommand<'_>) -> Result<Vec<u8>, CardManagerError> {
        let data = self.exchange(command, false, |status| status == StatusWord::SUCCESS)?;
        Ok(data.0)
    }

    /// Like [`Self::run`], for a command with no answer data whose accepted status words are all answers.
    fn run_accepting(
        &mut self,
        command: &CreditCommand<'_>,
        accept: impl Fn(StatusWord) -> bool,
    ) -> Result<StatusWord, CardManagerError> {
        self.exchange(command, false, accept)
            .map(|(_, status)| status)
    }

    /// Sends `command` (`extended`: as one extended-length APDU, for its long answer) and returns the answer
    /// when `accept` takes its status word.
    fn exchange(
        &mut self,
        command: &CreditCommand<'_>,
        extended: bool,
        accept: impl Fn(StatusWord) -> bool,
    ) -> Result<(Vec<u8>, StatusWord), CardManagerError> {
        let (name, requirement) = (command.name(), command.requirement());
        let security = self.channel.security();
        check_channel(name, requirement, security)?;
        let apdu = command.to_command();
        let (data, status) = if extended {
            exchange_extended(&mut self.channel, name, &apdu)?
        } else {
            exchange(&mut self.channel, name, &apdu)?
        };
        if accept(status) {
            Ok((data, status))
        } else {
            Err(CardManagerError::refusal(
                name,
                requirement,
                security,
                status,
            ))
        }
    }
}
