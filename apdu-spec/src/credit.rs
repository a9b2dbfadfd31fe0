//! The credit applet's commands (patent Fig. 10 and 15): the card data, a bounded store of payment tokens
//! delivered by the bank (Fig. 15 direct store), and the presentation at the point of sale.
//!
//! Proprietary class (`80` on channel 0; any channel, `84` when secured). Every command needs a secure channel,
//! see [`REQUIREMENTS`]; a command without the right session is answered 6982 (and the session ends).
//!
//! | command | CLA INS P1 P2 | data | response | needs |
//! |---|---|---|---|---|
//! | PERSONALIZE | `80 30 00 00` | [`Personalization`] TLVs: `C1` credit company id, `C2` PAN, `C3` expiry (YYMM, BCD), `C4` cardholder id, `C5` status, `C6` ATC limit (4 bytes), `C7` signing key (the 32-byte P-256 private scalar) | the public signing key, uncompressed SEC1 (`04 ‖ X ‖ Y`, 65 bytes) | SCP11a issuer, C-MAC C-DEC |
//! | STORE TOKEN | `80 34 00 00` | one token envelope (`7F71 …`, at most [`MAX_TOKEN`] bytes; chained or extended) | none | SCP11a token-delivery, C-MAC C-DEC |
//! | PRESENT | `80 36 00 00` | [`Presentation`]: terminal nonce (16 bytes) ‖ amount (8 bytes, big-endian minor units) ‖ currency (2 bytes, ISO 4217 numeric) | `C8` ATC (4 bytes) ‖ the card data TLVs `C1`…`C5` ‖ every stored token (`7F71 …`) ‖ `5F37` signature (64 bytes, r ‖ s) | SCP11a credit-pos, C-MAC |
//! | CONFIRM | `80 38 00 00` | the ATC of the last PRESENT (4 bytes) ‖ 0 or more token ids (16 bytes each) | none | SCP11a credit-pos, C-MAC |
//!
//! PRESENT answers as many whole tokens as fit its answer (the card's response buffer, `card_os::RESPONSE_BUFFER`
//! = 2048 bytes less the secure-messaging overhead: three tokens of about 500 bytes); the others wait for the
//! PRESENT after CONFIRM. Its command is extended (Le `00 00 00`) so that the answer comes in one exchange.
//!
//! The signature is ECDSA P-256 / SHA-256 (deterministic, RFC 6979) with the key of PERSONALIZE over
//! [`PRESENT_LABEL`] ‖ terminal nonce ‖ amount ‖ currency ‖ ATC ‖ SHA-256 of each presented token, in the order
//! presented ([`signed_message`]).
//!
//! Status words: 9000 done; 6982 wrong session, role or level; 6985 PERSONALIZE on a personalized applet, a
//! command before personalization, PRESENT with the ATC at its limit, or CONFIRM with an ATC other than that of
//! the last PRESENT or a second time; 6A80 malformed data, a token that does not parse, a token of another credit
//! company or bound to another card, an expired token, a token id already stored, a signing key that is no P-256
//! scalar; 6A84 no room for another token; 6A86 P1 P2 not `00 00`; 6A88 CONFIRM of a token id not stored or
//! not carried by that PRESENT (nothing is dropped then);
//! 6700 a PRESENT or CONFIRM of the wrong length; 6D00 unknown instruction; 6E00 a class without the
//! proprietary bit.
//!
//! [`MAX_TOKEN`]: crate::token::MAX_TOKEN

use crate::command::{CommandDoc, CommandView, Param};
use crate::scp11::Requirement;
use crate::scp11::cert::Role;
use crate::scp11::session::SecurityLevel;
use crate::status::StatusWord;
use crate::tlv;
use crate::token::{MAX_PARTY_ID, TOKEN_ID_LENGTH};

/// Credit applet instruction bytes.
pub mod ins {
    /// PERSONALIZE: the card data and the signing key.
    pub const PERSONALIZE: u8 = 0x30;
    /// STORE TOKEN (patent Fig. 15).
    pub const STORE_TOKEN: u8 = 0x34;
    /// PRESENT: card data, tokens, ATC and the card's signature to the POS.
    pub const PRESENT: u8 = 0x36;
    /// CONFIRM: drop the tokens the credit system accepted.
    pub const CONFIRM: u8 = 0x38;
    /// VERIFY (ISO 7816-4, class `00`): the cardholder PIN.
    pub const VERIFY: u8 = 0x20;
}

/// P2 of VERIFY: the applet's own reference data (ISO 7816-4 "specific", number 0).
pub const VERIFY_P2: u8 = 0x80;

/// Tags of the personalization data and of PRESENT's answer.
pub mod tag {
    /// Credit company identifier (as in the token header, 1-16 bytes).
    pub const CREDIT_ID: u16 = 0xC1;
    /// Primary account number (1-10 bytes, BCD).
    pub const PAN: u16 = 0xC2;
    /// Card expiry, YYMM in BCD (2 bytes).
    pub const EXPIRY: u16 = 0xC3;
    /// Cardholder identifier at the credit company (1-32 bytes).
    pub const CARDHOLDER_ID: u16 = 0xC4;
    /// Card status (1 byte, the issuer's code; the credit system interprets it).
    pub const STATUS: u16 = 0xC5;
    /// The highest ATC the card may reach (4 bytes, big-endian, at least 1).
    pub const ATC_LIMIT: u16 = 0xC6;
    /// The applet's P-256 signing key, the private scalar (32 bytes).
    pub const SIGNING_KEY: u16 = 0xC7;
    /// The application transaction counter in PRESENT's answer (4 bytes, big-endian).
    pub const ATC: u16 = 0xC8;
    /// The card's signature in PRESENT's answer (r ‖ s, 64 bytes).
    pub const SIGNATURE: u16 = 0x5F37;
    /// Optional: the AID of the bank applet whose tokens the credit applet collects (patent Fig. 14).
    pub const BANK_APPLET: u16 = 0x4F;
    /// Optional: the cardholder PIN (4-12 ASCII digits), which PRESENT then requires.
    pub const PIN: u16 = 0xC9;
    /// The PIN's try limit (1 byte, 1-15), right after [`PIN`].
    pub const PIN_TRY_LIMIT: u16 = 0xCA;
}

/// Shortest cardholder PIN.
pub const MIN_PIN: usize = 4;
/// Longest cardholder PIN.
pub const MAX_PIN: usize = 12;
/// Highest PIN try limit (the count fits the low nibble of 63Cx).
pub const MAX_PIN_TRIES: u8 = 15;

/// Longest PAN (BCD bytes).
pub const MAX_PAN: usize = 10;
/// Longest cardholder identifier.
pub const MAX_CARDHOLDER_ID: usize = 32;
/// Length of the signing key.
pub const SIGNING_KEY_LENGTH: usize = 32;
/// Length of the terminal nonce in PRESENT.
pub const NONCE_LENGTH: usize = 16;
/// Length of PRESENT's data.
pub const PRESENTATION_LENGTH: usize = NONCE_LENGTH + 8 + 2;
/// Length of the ATC.
pub const ATC_LENGTH: usize = 4;
/// Length of the card's signature.
pub const SIGNATURE_LENGTH: usize = 64;
/// The label in front of the message the card signs at PRESENT.
pub const PRESENT_LABEL: &[u8] = b"linkcard credit present v1";
/// Most token ids one CONFIRM may carry.
pub const MAX_CONFIRM: usize = 8;
/// Longest card data (the TLVs `C1`..`C5` each at its longest).
pub const MAX_CARD_DATA: usize =
    (2 + MAX_PARTY_ID) + (2 + MAX_PAN) + (2 + 2) + (2 + MAX_CARDHOLDER_ID) + (2 + 1);
/// Longest personalization data field.
pub const MAX_PERSONALIZATION: usize = MAX_CARD_DATA
    + (2 + 4)
    + (2 + SIGNING_KEY_LENGTH)
    + (2 + crate::aid::MAX_LEN)
    + (2 + MAX_PIN)
    + (2 + 1);

/// The credit applet's card data and signing key, in this order, each field once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Personalization<'a> {
    /// The credit company: tokens whose header names another are refused.
    pub credit_id: &'a [u8],
    /// The card number (BCD).
    pub pan: &'a [u8],
    /// The card's expiry, YYMM in BCD.
    pub expiry: &'a [u8; 2],
    /// The cardholder's identifier at the credit company.
    pub cardholder_id: &'a [u8],
    /// The card status (issuer's code).
    pub status: u8,
    /// The highest ATC the card may reach: PRESENT is refused there.
    pub atc_limit: u32,
    /// The P-256 private scalar the card signs with.
    pub signing_key: &'a [u8; SIGNING_KEY_LENGTH],
    /// The bank applet the credit applet collects tokens from through its shareable interface (Fig. 14);
    /// `None`: tokens come only by STORE TOKEN (Fig. 15).
    pub bank_applet: Option<&'a [u8]>,
    /// The cardholder PIN PRESENT requires; `None`: no PIN.
    pub pin: Option<CardholderPin<'a>>,
}

/// A cardholder PIN as personalized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CardholderPin<'a> {
    /// 4-12 ASCII digits.
    pub digits: &'a [u8],
    /// Consecutive wrong tries before the PIN blocks (1-15).
    pub try_limit: u8,
}

/// Whether `digits` is a well-formed PIN: [`MIN_PIN`]-[`MAX_PIN`] ASCII digits.
pub fn is_pin(digits: &[u8]) -> bool {
    (MIN_PIN..=MAX_PIN).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit)
}

/// Reads the next field if it has `tag` (optional fields).
fn optional<'a>(
    bytes: &mut &'a [u8],
    tag: u16,
    min: usize,
    max: usize,
) -> Result<Option<&'a [u8]>, StatusWord> {
    match tlv::read(bytes) {
        Ok((tlv, _)) if tlv.tag == tag => field(bytes, tag, min, max).map(Some),
        _ => Ok(None),
    }
}

/// Reads one field with `tag` and a length in `min..=max`.
fn field<'a>(
    bytes: &mut &'a [u8],
    tag: u16,
    min: usize,
    max: usize,
) -> Result<&'a [u8], StatusWord> {
    let (tlv, rest) = tlv::read(bytes).map_err(|_| StatusWord::WRONG_DATA)?;
    if tlv.tag != tag || tlv.value.len() < min || tlv.value.len() > max {
        return Err(StatusWord::WRONG_DATA);
    }
    *bytes = rest;
    Ok(tlv.value)
}

/// Reads one fixed-length field.
fn fixed<'a, const N: usize>(bytes: &mut &'a [u8], tag: u16) -> Result<&'a [u8; N], StatusWord> {
    field(bytes, tag, N, N)?
        .try_into()
        .map_err(|_| StatusWord::WRONG_DATA)
}

impl<'a> Personalization<'a> {
    /// Parses the personalization TLVs (6A80 for anything else, or an ATC limit of 0).
    pub fn parse(mut data: &'a [u8]) -> Result<Self, StatusWord> {
        let rest = &mut data;
        let personalization = Self {
            credit_id: field(rest, tag::CREDIT_ID, 1, MAX_PARTY_ID)?,
            pan: field(rest, tag::PAN, 1, MAX_PAN)?,
            expiry: fixed(rest, tag::EXPIRY)?,
            cardholder_id: field(rest, tag::CARDHOLDER_ID, 1, MAX_CARDHOLDER_ID)?,
            status: fixed::<1>(rest, tag::STATUS)?[0],
            atc_limit: u32::from_be_bytes(*fixed(rest, tag::ATC_LIMIT)?),
            signing_key: fixed(rest, tag::SIGNING_KEY)?,
            bank_applet: optional(
                rest,
                tag::BANK_APPLET,
                crate::aid::MIN_LEN,
                crate::aid::MAX_LEN,
            )?,
            pin: match optional(rest, tag::PIN, MIN_PIN, MAX_PIN)? {
                Some(digits) => Some(CardholderPin {
                    digits,
                    try_limit: fixed::<1>(rest, tag::PIN_TRY_LIMIT)?[0],
                }),
                None => None,
            },
        };
        let pin_ok = personalization
            .pin
            .is_none_or(|pin| is_pin(pin.digits) && (1..=MAX_PIN_TRIES).contains(&pin.try_limit));
        if !rest.is_empty() || personalization.atc_limit == 0 || !pin_ok {
            return Err(StatusWord::WRONG_DATA);
        }
        Ok(personalization)
    }

    /// Writes the card data TLVs (`C1`..`C5`, what PRESENT answers) into `out`; the number of bytes written.
    pub fn write_card_data(&self, out: &mut [u8]) -> Result<usize, StatusWord> {
        let mut w = tlv::Writer::new(out);
        w.tlv(tag::CREDIT_ID, self.credit_id)
            .and_then(|()| w.tlv(tag::PAN, self.pan))
            .and_then(|()| w.tlv(tag::EXPIRY, self.expiry))
            .and_then(|()| w.tlv(tag::CARDHOLDER_ID, self.cardholder_id))
            .and_then(|()| w.tlv(tag::STATUS, &[self.status]))
            .map_err(|_| StatusWord::UNKNOWN)?;
        Ok(w.written().len())
    }
}

/// What the POS sends with PRESENT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Presentation<'a> {
    /// The terminal's fresh nonce.
    pub nonce: &'a [u8; NONCE_LENGTH],
    /// The purchase amount, integer minor units.
    pub amount: u64,
    /// ISO 4217 numeric currency code.
    pub currency: u16,
}

impl<'a> Presentation<'a> {
    /// Parses PRESENT's data (6700 for any other length).
    pub fn parse(data: &'a [u8]) -> Result<Self, StatusWord> {
        let data: &[u8; PRESENTATION_LENGTH] =
            data.try_into().map_err(|_| StatusWord::WRONG_LENGTH)?;
        let (nonce, rest) = data
            .split_first_chunk::<NONCE_LENGTH>()
            .ok_or(StatusWord::WRONG_LENGTH)?;
        let (amount, currency) = rest
            .split_first_chunk::<8>()
            .ok_or(StatusWord::WRONG_LENGTH)?;
        let currency: &[u8; 2] = currency.try_into().map_err(|_| StatusWord::WRONG_LENGTH)?;
        Ok(Self {
            nonce,
            amount: u64::from_be_bytes(*amount),
            currency: u16::from_be_bytes(*currency),
        })
    }

    /// The fixed part of the signed message: label ‖ nonce ‖ amount ‖ currency ‖ ATC (token digests follow).
    pub fn signed_prefix(
        &self,
        atc: u32,
    ) -> [u8; PRESENT_LABEL.len() + PRESENTATION_LENGTH + ATC_LENGTH] {
        let mut out = [0u8; PRESENT_LABEL.len() + PRESENTATION_LENGTH + ATC_LENGTH];
        let parts: [&[u8]; 5] = [
            PRESENT_LABEL,
            self.nonce,
            &self.amount.to_be_bytes(),
            &self.currency.to_be_bytes(),
            &atc.to_be_bytes(),
        ];
        let mut at = 0;
        for part in parts {
            if let Some(dst) = out.get_mut(at..at + part.len()) {
                dst.copy_from_slice(part);
            }
            at += part.len();
        }
        out
    }
}

/// The token ids a CONFIRM carries, after the ATC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Confirmation<'a> {
    /// The ATC of the PRESENT this confirms.
    pub atc: u32,
    /// The accepted token ids, 16 bytes each (a multiple of [`TOKEN_ID_LENGTH`], at most [`MAX_CONFIRM`]).
    ids: &'a [u8],
}

impl<'a> Confirmation<'a> {
    /// A confirmation of `ids` (16-byte token ids back to back) for the presentation with `atc`.
    pub fn new(atc: u32, ids: &'a [u8]) -> Option<Self> {
        let ok =
            ids.len().is_multiple_of(TOKEN_ID_LENGTH) && ids.len() / TOKEN_ID_LENGTH <= MAX_CONFIRM;
        ok.then_some(Self { atc, ids })
    }

    /// Parses CONFIRM's data (6700 if it is no ATC followed by whole token ids, or too many).
    pub fn parse(data: &'a [u8]) -> Result<Self, StatusWord> {
        let (atc, ids) = data
            .split_first_chunk::<ATC_LENGTH>()
            .ok_or(StatusWord::WRONG_LENGTH)?;
        Self::new(u32::from_be_bytes(*atc), ids).ok_or(StatusWord::WRONG_LENGTH)
    }

    /// The accepted token ids.
    pub fn ids(&self) -> impl Iterator<Item = &'a [u8; TOKEN_ID_LENGTH]> + use<'a> {
        self.ids
            .chunks_exact(TOKEN_ID_LENGTH)
            .filter_map(|id| id.try_into().ok())
    }

    /// The raw ids, back to back.
    pub fn id_bytes(&self) -> &'a [u8] {
        self.ids
    }
}

/// A credit applet command, decoded from its APDU (borrowing its data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreditCommand<'a> {
    /// PERSONALIZE with the card data and the signing key.
    Personalize(Personalization<'a>),
    /// STORE TOKEN: the envelope's bytes (parsed by the applet, which answers 6A80 if they are no token).
    StoreToken(&'a [u8]),
    /// PRESENT to the POS.
    Present(Presentation<'a>),
    /// CONFIRM the tokens the credit system accepted.
    Confirm(Confirmation<'a>),
    /// VERIFY the cardholder PIN; `None` asks only whether it is verified (9000) or how many tries are left
    /// (63Cx).
    Verify(Option<&'a [u8]>),
}

/// VERIFY's fields (ISO class): P1 P2 `00 80`, no data or a well-formed PIN.
fn verify<'a>(cmd: &CommandView<'a>) -> Result<CreditCommand<'a>, StatusWord> {
    if cmd.p1p2() != u16::from(VERIFY_P2) {
        return Err(StatusWord::INCORRECT_P1P2);
    }
    match cmd.data() {
        [] => Ok(CreditCommand::Verify(None)),
        digits if is_pin(digits) => Ok(CreditCommand::Verify(Some(digits))),
        _ => Err(StatusWord::WRONG_DATA),
    }
}

impl<'a> TryFrom<&CommandView<'a>> for CreditCommand<'a> {
    type Error = StatusWord;

    fn try_from(cmd: &CommandView<'a>) -> Result<Self, StatusWord> {
        if cmd.cla() & 0x80 == 0 {
            // The one interindustry command.
            return match cmd.ins() {
                ins::VERIFY => verify(cmd),
                _ => Err(StatusWord::CLA_NOT_SUPPORTED),
            };
        }
        let known = matches!(
            cmd.ins(),
            ins::PERSONALIZE | ins::STORE_TOKEN | ins::PRESENT | ins::CONFIRM
        );
        if !known {
            return Err(StatusWord::INS_NOT_SUPPORTED);
        }
        if cmd.p1p2() != 0 {
            return Err(StatusWord::INCORRECT_P1P2);
        }
        let data = cmd.data();
        match cmd.ins() {
            ins::PERSONALIZE => Personalization::parse(data).map(Self::Personalize),
            ins::STORE_TOKEN if data.is_empty() => Err(StatusWord::WRONG_DATA),
            ins::STORE_TOKEN => Ok(Self::StoreToken(data)),
            ins::PRESENT => Presentation::parse(data).map(Self::Present),
            _ => Confirmation::parse(data).map(Self::Confirm),
        }
    }
}

/// The POS's session: authenticated by a credit-issued certificate.
const CREDIT_POS: Requirement = Requirement::session(Role::CreditPos, SecurityLevel::C_MAC);
/// The most a command needs (the fallback of [`CreditCommand::requirement`]).
const DELIVERY: Requirement = Requirement::session(
    Role::TokenDelivery,
    SecurityLevel::C_MAC | SecurityLevel::C_DECRYPTION,
);

/// The POS, in a session that encrypts the PIN.
const PIN_ENTRY: Requirement = Requirement::session(
    Role::CreditPos,
    SecurityLevel::C_MAC | SecurityLevel::C_DECRYPTION,
);

/// The issuer, in a session that encrypts the signing key.
const PERSONALIZER: Requirement = Requirement::session(
    Role::Issuer,
    SecurityLevel::C_MAC | SecurityLevel::C_DECRYPTION,
);

/// What each credit applet command needs of the channel it arrives through: the applet enforces it
/// ([`Requirement::check`]), hosts read it.
pub const REQUIREMENTS: [(&str, Requirement); 5] = [
    ("PERSONALIZE", PERSONALIZER),
    ("STORE TOKEN", DELIVERY),
    ("PRESENT", CREDIT_POS),
    ("CONFIRM", CREDIT_POS),
    ("VERIFY", PIN_ENTRY),
];

/// The credit applet's commands as `docs/apdu.md` lists them (`apdu-spec/tests/apdu_doc.rs` checks each row
/// against the encoders and the doc against the rows).
pub const COMMANDS: &[CommandDoc] = &[
    CommandDoc {
        name: "PERSONALIZE",
        cla: 0x80,
        ins: ins::PERSONALIZE,
        p1: Param::Is(0x00),
        p2: Param::Is(0x00),
        data: "`C1` credit company id, `C2` PAN, `C3` expiry YYMM, `C4` cardholder id, `C5` status, `C6` ATC limit, `C7` signing key (32 bytes); optional `4F` bank applet AID (Fig. 14), optional `C9` PIN (4-12 digits) with `CA` try limit (1-15)",
        response: "the public signing key, uncompressed (65 bytes)",
        status: &[
            (StatusWord::CONDITIONS_NOT_SATISFIED, "already personalized"),
            (StatusWord::WRONG_DATA, "malformed data, or no P-256 scalar"),
        ],
        requirement: PERSONALIZER,
    },
    CommandDoc {
        name: "STORE TOKEN",
        cla: 0x80,
        ins: ins::STORE_TOKEN,
        p1: Param::Is(0x00),
        p2: Param::Is(0x00),
        data: "one token envelope `7F71 …` (`docs/token.md`), chained or extended",
        response: "none",
        status: &[
            (StatusWord::CONDITIONS_NOT_SATISFIED, "not personalized"),
            (
                StatusWord::WRONG_DATA,
                "not a token, another credit company's, bound to another card, expired, or its id is stored already",
            ),
            (StatusWord::NOT_ENOUGH_MEMORY, "no room for another token"),
        ],
        requirement: DELIVERY,
    },
    CommandDoc {
        name: "PRESENT",
        cla: 0x80,
        ins: ins::PRESENT,
        p1: Param::Is(0x00),
        p2: Param::Is(0x00),
        data: "terminal nonce (16) ‖ amount (8, big-endian) ‖ currency (2)",
        response: "`C8` ATC ‖ card data `C1`…`C5` ‖ the tokens ‖ `5F37` signature (r ‖ s)",
        status: &[
            (
                StatusWord::CONDITIONS_NOT_SATISFIED,
                "not personalized, the ATC is at its limit, or the PIN is not verified",
            ),
            (StatusWord::WRONG_LENGTH, "data of another length"),
        ],
        requirement: CREDIT_POS,
    },
    CommandDoc {
        name: "CONFIRM",
        cla: 0x80,
        ins: ins::CONFIRM,
        p1: Param::Is(0x00),
        p2: Param::Is(0x00),
        data: "the ATC of the last PRESENT (4) ‖ token ids (16 each)",
        response: "none",
        status: &[
            (
                StatusWord::CONDITIONS_NOT_SATISFIED,
                "not the last PRESENT's ATC, or confirmed already",
            ),
            (
                StatusWord::REFERENCED_DATA_NOT_FOUND,
                "a token that PRESENT did not carry",
            ),
            (StatusWord::WRONG_LENGTH, "ids not a multiple of 16 bytes"),
        ],
        requirement: CREDIT_POS,
    },
    CommandDoc {
        name: "VERIFY",
        cla: 0x00,
        ins: ins::VERIFY,
        p1: Param::Is(0x00),
        p2: Param::Is(VERIFY_P2),
        data: "the cardholder PIN (4-12 ASCII digits), or none to ask for its state",
        response: "none",
        status: &[
            (
                StatusWord::verify_failed(0),
                "63Cx: wrong PIN (or, without data, not verified yet), x tries left",
            ),
            (StatusWord::AUTH_METHOD_BLOCKED, "no tries left"),
            (
                StatusWord::CONDITIONS_NOT_SATISFIED,
                "not personalized, or personalized without a PIN",
            ),
            (StatusWord::WRONG_DATA, "not 4-12 ASCII digits"),
        ],
        requirement: PIN_ENTRY,
    },
];

impl CreditCommand<'_> {
    /// The command's name in [`REQUIREMENTS`].
    pub fn name(&self) -> &'static str {
        match self {
            Self::Personalize(_) => "PERSONALIZE",
            Self::StoreToken(_) => "STORE TOKEN",
            Self::Present(_) => "PRESENT",
            Self::Confirm(_) => "CONFIRM",
            Self::Verify(_) => "VERIFY",
        }
    }

    /// What the command needs of its secure channel.
    pub fn requirement(&self) -> Requirement {
        let name = self.name();
        REQUIREMENTS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(DELIVERY, |(_, requirement)| *requirement)
    }
}

#[cfg(feature = "alloc")]
mod encode {
    use alloc::vec::Vec;

    use super::*;
    use crate::builder::Command;

    impl Personalization<'_> {
        /// The TLVs, as PERSONALIZE sends them.
        pub fn to_bytes(&self) -> Vec<u8> {
            let mut out = Vec::with_capacity(MAX_PERSONALIZATION);
            let status = [self.status];
            let limit = self.atc_limit.to_be_bytes();
            for (tag, value) in [
                (tag::CREDIT_ID, self.credit_id),
                (tag::PAN, self.pan),
                (tag::EXPIRY, self.expiry.as_slice()),
                (tag::CARDHOLDER_ID, self.cardholder_id),
                (tag::STATUS, status.as_slice()),
                (tag::ATC_LIMIT, limit.as_slice()),
                (tag::SIGNING_KEY, self.signing_key.as_slice()),
            ] {
                push_field(&mut out, tag, value);
            }
            if let Some(bank_applet) = self.bank_applet {
                push_field(&mut out, tag::BANK_APPLET, bank_applet);
            }
            if let Some(pin) = self.pin {
                push_field(&mut out, tag::PIN, pin.digits);
                push_field(&mut out, tag::PIN_TRY_LIMIT, &[pin.try_limit]);
            }
            out
        }
    }

    /// Every field is under 128 bytes: a one-byte tag and a one-byte length.
    fn push_field(out: &mut Vec<u8>, tag: u16, value: &[u8]) {
        out.push(u8::try_from(tag).unwrap_or(u8::MAX));
        out.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(value);
    }

    /// The whole message the card signs at PRESENT, for the host to verify.
    pub fn signed_message(
        presentation: &Presentation<'_>,
        atc: u32,
        token_digests: &[[u8; 32]],
    ) -> Vec<u8> {
        let mut out = presentation.signed_prefix(atc).to_vec();
        for digest in token_digests {
            out.extend_from_slice(digest);
        }
        out
    }

    impl CreditCommand<'_> {
        /// The command on the basic channel (CLA 80); a long STORE TOKEN is chained or extended by the caller.
        pub fn to_command(&self) -> Command {
            let command = |ins: u8| Command::new(0x80, ins, 0, 0);
            match *self {
                Self::Personalize(personalization) => command(ins::PERSONALIZE)
                    .with_data(personalization.to_bytes())
                    .with_ne(256),
                Self::StoreToken(token) => command(ins::STORE_TOKEN).with_data(token),
                Self::Present(p) => {
                    let mut data = Vec::with_capacity(PRESENTATION_LENGTH);
                    data.extend_from_slice(p.nonce);
                    data.extend_from_slice(&p.amount.to_be_bytes());
                    data.extend_from_slice(&p.currency.to_be_bytes());
                    command(ins::PRESENT).with_data(data).with_ne(65536)
                }
                Self::Confirm(c) => {
                    let mut data = c.atc.to_be_bytes().to_vec();
                    data.extend_from_slice(c.ids);
                    command(ins::CONFIRM).with_data(data)
                }
                Self::Verify(None) => Command::new(0x00, ins::VERIFY, 0, VERIFY_P2),
                Self::Verify(Some(digits)) => {
                    Command::new(0x00, ins::VERIFY, 0, VERIFY_P2).with_data(digits)
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const PERSONALIZATION: Personalization<'static> = Personalization {
            credit_id: b"CREDIT01",
            pan: &[0x45, 0x39, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12],
            expiry: &[0x30, 0x12],
            cardholder_id: b"holder-7",
            status: 0,
            atc_limit: 65535,
            signing_key: &[7; SIGNING_KEY_LENGTH],
            bank_applet: None,
            pin: None,
        };

        #[test]
        fn encoders_round_trip() {
            let token = [0x7F, 0x71, 0x01, 0x00];
            let ids = [9u8; 2 * TOKEN_ID_LENGTH];
            for command in [
                CreditCommand::Personalize(PERSONALIZATION),
                CreditCommand::StoreToken(&token),
                CreditCommand::Present(Presentation {
                    nonce: &[3; NONCE_LENGTH],
                    amount: 12_345,
                    currency: 978,
                }),
                CreditCommand::Confirm(Confirmation::new(7, &ids).unwrap()),
                CreditCommand::Confirm(Confirmation::new(u32::MAX, &[]).unwrap()),
                CreditCommand::Verify(None),
                CreditCommand::Verify(Some(b"123456")),
                CreditCommand::Personalize(Personalization {
                    bank_applet: Some(crate::aid::BANK_APPLET.as_bytes()),
                    pin: Some(CardholderPin {
                        digits: b"0000",
                        try_limit: 3,
                    }),
                    ..PERSONALIZATION
                }),
                CreditCommand::Personalize(Personalization {
                    pin: Some(CardholderPin {
                        digits: b"123456789012",
                        try_limit: 15,
                    }),
                    ..PERSONALIZATION
                }),
            ] {
                let bytes = command.to_command().to_bytes().unwrap();
                let view = CommandView::parse(&bytes).unwrap();
                assert_eq!(CreditCommand::try_from(&view), Ok(command));
                assert!(REQUIREMENTS.iter().any(|(name, _)| *name == command.name()));
            }
        }

        #[test]
        fn longest_personalization_fits_its_bound() {
            let long = Personalization {
                credit_id: &[1; MAX_PARTY_ID],
                pan: &[2; MAX_PAN],
                cardholder_id: &[3; MAX_CARDHOLDER_ID],
                bank_applet: Some(&[4; crate::aid::MAX_LEN]),
                pin: Some(CardholderPin {
                    digits: b"999999999999",
                    try_limit: 1,
                }),
                ..PERSONALIZATION
            };
            let bytes = long.to_bytes();
            assert_eq!(bytes.len(), MAX_PERSONALIZATION);
            assert_eq!(Personalization::parse(&bytes), Ok(long));
            let mut card_data = [0u8; MAX_CARD_DATA];
            assert_eq!(long.write_card_data(&mut card_data), Ok(MAX_CARD_DATA));
            assert_eq!(&bytes[..MAX_CARD_DATA], &card_data[..]);
        }

        #[test]
        fn personalization_pin_and_bank_applet_are_checked() {
            let base = |extra: &[u8]| {
                let mut data = alloc::vec![
                    0xC1, 1, b'C', 0xC2, 1, 0x41, 0xC3, 2, 0x30, 0x12, 0xC4, 1, b'h'
                ];
                data.extend_from_slice(&[0xC5, 1, 0, 0xC6, 4, 0, 0, 0, 9, 0xC7, 32]);
                data.extend_from_slice(&[1; 32]);
                data.extend_from_slice(extra);
                data
            };
            let parsed = |extra: &[u8]| {
                Personalization::parse(&base(extra)).map(|p| {
                    let pin = p.pin.map(|pin| (pin.digits.to_vec(), pin.try_limit));
                    (p.bank_applet.map(<[u8]>::to_vec), pin)
                })
            };
            assert_eq!(parsed(&[]), Ok((None, None)));
            assert_eq!(
                parsed(&[0xC9, 4, b'1', b'2', b'3', b'4', 0xCA, 1, 3]),
                Ok((None, Some((b"1234".to_vec(), 3))))
            );
            assert_eq!(
                parsed(&[0x4F, 5, 1, 2, 3, 4, 5]),
                Ok((Some(alloc::vec![1, 2, 3, 4, 5]), None))
            );
            // A PIN without its try limit, a try limit of 0 or 16, a PIN of letters, a field out of order.
            for bad in [
                &[0xC9, 4, b'1', b'2', b'3', b'4'][..],
                &[0xC9, 4, b'1', b'2', b'3', b'4', 0xCA, 1, 0],
                &[0xC9, 4, b'1', b'2', b'3', b'4', 0xCA, 1, 16],
                &[0xC9, 4, b'a', b'b', b'c', b'd', 0xCA, 1, 3],
                &[
                    0xC9, 4, b'1', b'2', b'3', b'4', 0xCA, 1, 3, 0x4F, 5, 1, 2, 3, 4, 5,
                ],
                &[0x4F, 4, 1, 2, 3, 4],
            ] {
                assert_eq!(parsed(bad), Err(StatusWord::WRONG_DATA), "{bad:02X?}");
            }
        }

        #[test]
        fn signed_message_is_label_fields_atc_digests() {
            let p = Presentation {
                nonce: &[3; NONCE_LENGTH],
                amount: 0x0102,
                currency: 978,
            };
            let m = signed_message(&p, 5, &[[0xAA; 32]]);
            assert!(m.starts_with(PRESENT_LABEL));
            let rest = &m[PRESENT_LABEL.len()..];
            assert_eq!(&rest[..16], &[3; 16]);
            assert_eq!(&rest[16..24], &0x0102u64.to_be_bytes());
            assert_eq!(&rest[24..26], &978u16.to_be_bytes());
            assert_eq!(&rest[26..30], &[0, 0, 0, 5]);
            assert_eq!(&rest[30..], &[0xAA; 32]);
        }
    }
}

#[cfg(feature = "alloc")]
pub use encode::signed_message;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<CreditCommand<'_>, StatusWord> {
        CreditCommand::try_from(&CommandView::parse(bytes).unwrap())
    }

    #[test]
    fn malformed_commands_get_their_status_words() {
        assert_eq!(
            parse(&[0x00, 0x36, 0, 0]),
            Err(StatusWord::CLA_NOT_SUPPORTED)
        );
        assert_eq!(
            parse(&[0x80, 0x3A, 0, 0]),
            Err(StatusWord::INS_NOT_SUPPORTED)
        );
        assert_eq!(parse(&[0x80, 0x36, 1, 0]), Err(StatusWord::INCORRECT_P1P2));
        assert_eq!(
            parse(&[0x80, 0x36, 0, 0, 1, 0]),
            Err(StatusWord::WRONG_LENGTH)
        );
        assert_eq!(parse(&[0x80, 0x34, 0, 0]), Err(StatusWord::WRONG_DATA));
        // CONFIRM: no ATC, or a partial token id.
        assert_eq!(
            parse(&[0x80, 0x38, 0, 0, 2, 0, 1]),
            Err(StatusWord::WRONG_LENGTH)
        );
        assert_eq!(
            parse(&[0x80, 0x38, 0, 0, 5, 0, 0, 0, 1, 9]),
            Err(StatusWord::WRONG_LENGTH)
        );
        assert_eq!(
            parse(&[0x80, 0x30, 0, 0, 3, 0xC1, 1, 9]),
            Err(StatusWord::WRONG_DATA)
        );
        // VERIFY: ISO class only, P1 P2 00 80, a PIN of 4-12 digits.
        assert_eq!(
            parse(&[0x80, 0x20, 0, 0x80]),
            Err(StatusWord::INS_NOT_SUPPORTED)
        );
        assert_eq!(
            parse(&[0x00, 0x20, 0, 0x81]),
            Err(StatusWord::INCORRECT_P1P2)
        );
        for bad in [&b"123"[..], b"1234567890123", b"12a4"] {
            let mut apdu = [0u8; 5 + 13];
            apdu[..5].copy_from_slice(&[0x00, 0x20, 0, 0x80, bad.len() as u8]);
            apdu[5..5 + bad.len()].copy_from_slice(bad);
            assert_eq!(parse(&apdu[..5 + bad.len()]), Err(StatusWord::WRONG_DATA));
        }
    }

    #[test]
    fn secured_class_on_another_channel_parses() {
        let confirm = parse(&[0x85, 0x38, 0, 0, 4, 0, 0, 0, 1]).unwrap();
        assert_eq!(
            confirm,
            CreditCommand::Confirm(Confirmation::new(1, &[]).unwrap())
        );
    }
}
