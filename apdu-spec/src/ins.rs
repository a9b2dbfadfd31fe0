//! Instruction bytes the card runtime itself interprets (ISO 7816-4 interindustry commands).

/// SELECT (by DF name = AID when P1 is 04).
pub const SELECT: u8 = 0xA4;
/// MANAGE CHANNEL: open (P1 00) or close (P1 80) a logical channel.
pub const MANAGE_CHANNEL: u8 = 0x70;
/// GET RESPONSE: fetch the rest of a response announced by 61xx.
pub const GET_RESPONSE: u8 = 0xC0;
/// GET DATA.
pub const GET_DATA: u8 = 0xCA;

/// SELECT P1: selection by DF name (an AID or a prefix of one).
pub const SELECT_BY_NAME: u8 = 0x04;
/// MANAGE CHANNEL P1 values.
pub const MANAGE_CHANNEL_OPEN: u8 = 0x00;
/// MANAGE CHANNEL P1 for close.
pub const MANAGE_CHANNEL_CLOSE: u8 = 0x80;
