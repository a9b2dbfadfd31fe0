//! The bank applet as a typed session: one method per command of [`apdu_spec::bank`], each built by the
//! command's own encoder, each refusal a [`CardManagerError`] (the same mapping of status words as the card
//! manager's session: 6982 `SecurityStatusNotSatisfied` saying what the command needs, 6985
//! `ConditionsNotSatisfied`, 6A80 `WrongData`, 6A84 `NotEnoughMemory`, 6A88 `NotFound`).
//!
//! Every bank applet command needs an SCP11a session ([`apdu_spec::bank::REQUIREMENTS`]): the session checks
//! the command's requirement against [`CardChannel::security`] before it sends, so a command the card would
//! certainly refuse (and whose refusal would end the session) is not sent.

use apdu_spec::bank::{BankCommand, Personalization};
use apdu_spec::scp11::cert::{Date, Issuer};
use apdu_spec::scp11::session::SecurityLevel;
use apdu_spec::token::TOKEN_ID_LENGTH;
use apdu_spec::{StatusWord, tlv};

use crate::card_manager::{
    CardManagerError, check_channel, exchange, open_scp11a_with, select_applet,
};
use crate::channel::CardChannel;
use crate::scp11::{OceCredentials, Scp11Session};

/// A session with a bank applet instance over `C` (plain, to open a secure channel, or an SCP11 session).
#[derive(Debug)]
pub struct BankAppletSession<C> {
    channel: C,
}

impl<C: CardChannel> BankAppletSession<C> {
    /// Selects the bank applet `instance` (by AID; [`apdu_spec::aid::BANK_APPLET`] is the issuer's usual one) on a plain
    /// `channel`.
    pub fn select(mut channel: C, instance: &[u8]) -> Result<Self, CardManagerError> {
        select_applet(&mut channel, instance)?;
        Ok(Self { channel })
    }

    /// A session over a channel that already reaches the bank applet (selected, or an SCP11 session with it).
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
    ) -> Result<BankAppletSession<Scp11Session<C>>, CardManagerError> {
        let channel = open_scp11a_with(self.channel, card_ca, today, oce, level)?;
        Ok(BankAppletSession { channel })
    }

    /// The channel, to send what this session has no method for.
    pub fn channel(&mut self) -> &mut C {
        &mut self.channel
    }

    /// Ends the session and hands the channel back.
    pub fn into_channel(self) -> C {
        self.channel
    }

    /// PERSONALIZE (an issuer session): the account data, once.
    pub fn personalize(&mut self, account: &Personalization<'_>) -> Result<(), CardManagerError> {
        self.run(&BankCommand::Personalize(*account)).map(drop)
    }

    /// READ ACCOUNT: the account data as the applet keeps it (parse with [`Personalization::parse`]).
    pub fn read_account(&mut self) -> Result<Vec<u8>, CardManagerError> {
        self.run(&BankCommand::ReadAccount)
    }

    /// STORE TOKEN: one token envelope.
    pub fn store_token(&mut self, token: &[u8]) -> Result<(), CardManagerError> {
        self.run(&BankCommand::StoreToken(token)).map(drop)
    }

    /// LIST TOKENS: the clear header TLV (`A1 …`) of each stored token (parse the value with
    /// [`apdu_spec::token::ClearHeader::parse`]).
    pub fn list_tokens(&mut self) -> Result<Vec<Vec<u8>>, CardManagerError> {
        const COMMAND: &str = "LIST TOKENS";
        let data = self.run(&BankCommand::ListTokens)?;
        let mut headers = Vec::new();
        let mut rest = &data[..];
        while !rest.is_empty() {
            let (header, next) = tlv::read(rest).map_err(|_| CardManagerError::BadResponse {
                command: COMMAND,
                reason: "not clear headers (A1 …)",
            })?;
            if header.tag != apdu_spec::token::tag::HEADER {
                return Err(CardManagerError::BadResponse {
                    command: COMMAND,
                    reason: "not clear headers (A1 …)",
                });
            }
            headers.push(rest[..rest.len() - next.len()].to_vec());
            rest = next;
        }
        Ok(headers)
    }

    /// DELETE TOKEN with id `token_id`.
    pub fn delete_token(
        &mut self,
        token_id: &[u8; TOKEN_ID_LENGTH],
    ) -> Result<(), CardManagerError> {
        self.run(&BankCommand::DeleteToken(token_id)).map(drop)
    }

    /// Checks the command's requirement against the channel, sends it, and returns the data on 9000.
    fn run(&mut self, command: &BankCommand<'_>) -> Result<Vec<u8>, CardManagerError> {
        let (name, requirement) = (command.name(), command.requirement());
        let security = self.channel.security();
        check_channel(name, requirement, security)?;
        let (data, status) = exchange(&mut self.channel, name, &command.to_command())?;
        if status == StatusWord::SUCCESS {
            Ok(data)
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
