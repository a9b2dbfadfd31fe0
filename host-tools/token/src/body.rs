//! The token body (patent Fig. 12): what only the credit system reads. Strict BER-TLV inside template `A3`,
//! every field present, in ascending tag order, with minimal lengths and bounded sizes (`docs/token.md` §4).

use apdu_spec::scp11::cert::Date;
use apdu_spec::token::{BINDING_LENGTH, MAX_PARTY_ID, TOKEN_ID_LENGTH};
use zeroize::Zeroize;

use crate::tlv::{push_tlv, read_exact};

/// Tags of the body (inside the ciphertext; shared ids reuse the header's tags).
pub mod tag {
    /// The body template.
    pub const BODY: u16 = 0xA3;
    /// Token identifier (as header 81).
    pub const TOKEN_ID: u16 = 0x81;
    /// Bank identifier (as header 82).
    pub const BANK_ID: u16 = 0x82;
    /// Credit company identifier (as header 83).
    pub const CREDIT_ID: u16 = 0x83;
    /// First day of validity (equals header 84, issued).
    pub const VALID_FROM: u16 = 0x84;
    /// Last day of validity (equals header 85, expires).
    pub const VALID_UNTIL: u16 = 0x85;
    /// Card binding (as header 88).
    pub const CARD_BINDING: u16 = 0x88;
    /// Deposit date.
    pub const DEPOSIT_DATE: u16 = 0x89;
    /// User name, UTF-8.
    pub const USER_NAME: u16 = 0x8A;
    /// User identifier, printable ASCII.
    pub const USER_ID: u16 = 0x8B;
    /// Sum in minor units, 8 bytes big-endian.
    pub const SUM: u16 = 0x8C;
    /// Currency, ISO 4217 numeric, 2 bytes big-endian.
    pub const CURRENCY: u16 = 0x8D;
    /// Bank account number, printable ASCII.
    pub const BANK_ACCOUNT: u16 = 0x8E;
    /// Credit card number (PAN), ASCII digits.
    pub const PAN: u16 = 0x8F;
}

/// Longest user name in bytes (UTF-8).
pub const MAX_USER_NAME: usize = 48;
/// Longest user identifier.
pub const MAX_USER_ID: usize = 32;
/// Longest bank account number (an IBAN's 34 characters).
pub const MAX_BANK_ACCOUNT: usize = 34;
/// Shortest and longest PAN (ISO/IEC 7812).
pub const PAN_DIGITS: core::ops::RangeInclusive<usize> = 12..=19;
/// Largest ISO 4217 numeric code.
pub const MAX_CURRENCY: u16 = 999;

/// Which body field is out of its bounds (mint) or disagrees with the header (open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// Token identifier.
    TokenId,
    /// Bank identifier.
    BankId,
    /// Credit company identifier.
    CreditId,
    /// Validity: from (header: issued).
    ValidFrom,
    /// Validity: until (header: expires).
    ValidUntil,
    /// Card binding.
    CardBinding,
    /// Deposit date.
    DepositDate,
    /// User name.
    UserName,
    /// User identifier.
    UserId,
    /// Currency.
    Currency,
    /// Bank account number.
    BankAccount,
    /// Credit card number.
    Pan,
}

/// The token body: every Fig. 12 item plus currency and the card binding.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenBody {
    /// Cardholder's name (1-48 bytes of UTF-8).
    pub user_name: String,
    /// Cardholder's identifier at the bank (1-32 printable ASCII characters).
    pub user_id: String,
    /// Sum deposited, in minor units of `currency`.
    pub sum: u64,
    /// ISO 4217 numeric currency code (1-999).
    pub currency: u16,
    /// Day of the deposit.
    pub deposit_date: Date,
    /// Token identifier, unique per bank.
    pub token_id: [u8; TOKEN_ID_LENGTH],
    /// First day the token is valid.
    pub valid_from: Date,
    /// Last day the token is valid.
    pub valid_until: Date,
    /// The minting bank (1-16 bytes).
    pub bank_id: Vec<u8>,
    /// Bank account number (1-34 printable ASCII characters).
    pub bank_account: String,
    /// The credit company (1-16 bytes).
    pub credit_id: Vec<u8>,
    /// Credit card number (12-19 ASCII digits).
    pub pan: String,
    /// SHA-256 of the credit applet's uncompressed public key.
    pub card_binding: [u8; BINDING_LENGTH],
}

impl core::fmt::Debug for TokenBody {
    // The PAN and the account number stay out of logs: only the last four digits show.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let pan_tail = self
            .pan
            .get(self.pan.len().saturating_sub(4)..)
            .unwrap_or("");
        f.debug_struct("TokenBody")
            .field("token_id", &self.token_id)
            .field("bank_id", &self.bank_id)
            .field("credit_id", &self.credit_id)
            .field("sum", &self.sum)
            .field("currency", &self.currency)
            .field("deposit_date", &self.deposit_date)
            .field("valid_from", &self.valid_from)
            .field("valid_until", &self.valid_until)
            .field("pan", &format_args!("…{pan_tail}"))
            .finish_non_exhaustive()
    }
}

impl Drop for TokenBody {
    fn drop(&mut self) {
        self.user_name.zeroize();
        self.user_id.zeroize();
        self.bank_account.zeroize();
        self.pan.zeroize();
    }
}

fn printable_ascii(text: &str, max: usize) -> bool {
    (1..=max).contains(&text.len()) && text.bytes().all(|b| (0x20..=0x7E).contains(&b))
}

fn party(id: &[u8]) -> bool {
    (1..=MAX_PARTY_ID).contains(&id.len())
}

fn is_date(date: Date) -> bool {
    date.ymd().is_some()
}

impl TokenBody {
    /// The first field out of its bounds, if any (`docs/token.md` §4 lists the bounds).
    pub fn invalid_field(&self) -> Option<Field> {
        let checks = [
            (party(&self.bank_id), Field::BankId),
            (party(&self.credit_id), Field::CreditId),
            (is_date(self.valid_from), Field::ValidFrom),
            (
                is_date(self.valid_until) && self.valid_from <= self.valid_until,
                Field::ValidUntil,
            ),
            (is_date(self.deposit_date), Field::DepositDate),
            (
                (1..=MAX_USER_NAME).contains(&self.user_name.len()),
                Field::UserName,
            ),
            (printable_ascii(&self.user_id, MAX_USER_ID), Field::UserId),
            ((1..=MAX_CURRENCY).contains(&self.currency), Field::Currency),
            (
                printable_ascii(&self.bank_account, MAX_BANK_ACCOUNT),
                Field::BankAccount,
            ),
            (
                PAN_DIGITS.contains(&self.pan.len())
                    && self.pan.bytes().all(|b| b.is_ascii_digit()),
                Field::Pan,
            ),
        ];
        checks
            .into_iter()
            .find(|(ok, _)| !ok)
            .map(|(_, field)| field)
    }

    /// The body's whole TLV (`A3 …`). The caller checks [`Self::invalid_field`] first.
    pub fn encode(&self) -> Vec<u8> {
        let mut value = Vec::with_capacity(300);
        push_tlv(&mut value, tag::TOKEN_ID, &self.token_id);
        push_tlv(&mut value, tag::BANK_ID, &self.bank_id);
        push_tlv(&mut value, tag::CREDIT_ID, &self.credit_id);
        push_tlv(&mut value, tag::VALID_FROM, &self.valid_from.to_bytes());
        push_tlv(&mut value, tag::VALID_UNTIL, &self.valid_until.to_bytes());
        push_tlv(&mut value, tag::CARD_BINDING, &self.card_binding);
        push_tlv(&mut value, tag::DEPOSIT_DATE, &self.deposit_date.to_bytes());
        push_tlv(&mut value, tag::USER_NAME, self.user_name.as_bytes());
        push_tlv(&mut value, tag::USER_ID, self.user_id.as_bytes());
        push_tlv(&mut value, tag::SUM, &self.sum.to_be_bytes());
        push_tlv(&mut value, tag::CURRENCY, &self.currency.to_be_bytes());
        push_tlv(&mut value, tag::BANK_ACCOUNT, self.bank_account.as_bytes());
        push_tlv(&mut value, tag::PAN, self.pan.as_bytes());
        let mut out = Vec::with_capacity(value.len() + 3);
        push_tlv(&mut out, tag::BODY, &value);
        value.zeroize();
        out
    }

    /// Decodes a body's whole TLV; `None` if it is not exactly one valid body of this format.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (value, _, rest) = read_exact(bytes, tag::BODY)?;
        if !rest.is_empty() {
            return None;
        }
        let mut fields = value;
        let reader = &mut fields;
        let body = Self {
            token_id: fixed(reader, tag::TOKEN_ID)?,
            bank_id: field(reader, tag::BANK_ID)?.to_vec(),
            credit_id: field(reader, tag::CREDIT_ID)?.to_vec(),
            valid_from: Date(fixed(reader, tag::VALID_FROM)?),
            valid_until: Date(fixed(reader, tag::VALID_UNTIL)?),
            card_binding: fixed(reader, tag::CARD_BINDING)?,
            deposit_date: Date(fixed(reader, tag::DEPOSIT_DATE)?),
            user_name: text(reader, tag::USER_NAME)?,
            user_id: text(reader, tag::USER_ID)?,
            sum: u64::from_be_bytes(fixed(reader, tag::SUM)?),
            currency: u16::from_be_bytes(fixed(reader, tag::CURRENCY)?),
            bank_account: text(reader, tag::BANK_ACCOUNT)?,
            pan: text(reader, tag::PAN)?,
        };
        // Bounds as at mint, so every accepted body re-encodes to the same bytes.
        (reader.is_empty() && body.invalid_field().is_none()).then_some(body)
    }
}

fn field<'a>(bytes: &mut &'a [u8], tag: u16) -> Option<&'a [u8]> {
    let (value, _, rest) = read_exact(bytes, tag)?;
    *bytes = rest;
    Some(value)
}

fn fixed<const N: usize>(bytes: &mut &[u8], tag: u16) -> Option<[u8; N]> {
    field(bytes, tag)?.try_into().ok()
}

fn text(bytes: &mut &[u8], tag: u16) -> Option<String> {
    String::from_utf8(field(bytes, tag)?.to_vec()).ok()
}
