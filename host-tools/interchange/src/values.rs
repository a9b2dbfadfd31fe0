//! The scalar values of the files: currencies and amounts, dates, token ids, counts and bounded text. Each has a
//! writer (model → XML text) and a strict reader (XML text → model) that names the field it refuses.

use core::fmt::Write as _;

use crate::Date;
use crate::error::{FieldProblem, InterchangeError, Result};

/// The largest amount in minor units: ISO 20022 amounts and sums have at most 18 digits (`totalDigits`).
pub const MAX_AMOUNT: u64 = 999_999_999_999_999_999;

/// An ISO 4217 currency the files may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    /// ISO 4217 numeric code (the model's `currency`).
    pub numeric: u16,
    /// ISO 4217 alphabetic code (the XML's `Ccy`).
    pub alphabetic: &'static str,
    /// Digits after the decimal point of the currency's major unit.
    pub decimals: u8,
}

/// The currencies the files may carry; any other is refused rather than guessed.
pub const CURRENCIES: [Currency; 5] = [
    Currency {
        numeric: 392,
        alphabetic: "JPY",
        decimals: 0,
    },
    Currency {
        numeric: 978,
        alphabetic: "EUR",
        decimals: 2,
    },
    Currency {
        numeric: 840,
        alphabetic: "USD",
        decimals: 2,
    },
    Currency {
        numeric: 826,
        alphabetic: "GBP",
        decimals: 2,
    },
    Currency {
        numeric: 756,
        alphabetic: "CHF",
        decimals: 2,
    },
];

impl Currency {
    /// The currency of an ISO 4217 numeric code, if the files support it.
    pub fn from_numeric(numeric: u16) -> Result<Self> {
        CURRENCIES
            .iter()
            .find(|currency| currency.numeric == numeric)
            .copied()
            .ok_or_else(|| InterchangeError::UnknownCurrency(format!("{numeric:03}")))
    }

    /// The currency of an ISO 4217 alphabetic code, if the files support it.
    pub fn from_alphabetic(alphabetic: &str) -> Result<Self> {
        CURRENCIES
            .iter()
            .find(|currency| currency.alphabetic == alphabetic)
            .copied()
            .ok_or_else(|| InterchangeError::UnknownCurrency(alphabetic.to_owned()))
    }

    fn minor_per_major(self) -> u64 {
        10u64.pow(u32::from(self.decimals))
    }
}

/// A short ASCII text formatted on the stack (amounts, dates, token ids), so writing an item allocates nothing.
#[derive(Clone, Copy)]
pub(crate) struct SmallText {
    bytes: [u8; 40],
    len: usize,
}

impl SmallText {
    pub(crate) fn new() -> Self {
        Self {
            bytes: [0; 40],
            len: 0,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        self.bytes
            .get(..self.len)
            .and_then(|bytes| core::str::from_utf8(bytes).ok())
            .unwrap_or("")
    }
}

impl core::fmt::Write for SmallText {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        let end = self.len + text.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        slot.copy_from_slice(text.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl core::fmt::Debug for SmallText {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Checks a text field against its ISO 20022 `MaxNText` bound and what the XML can carry back unchanged: no
/// control characters (XML 1.0 cannot carry most, and normalises the others), no leading or trailing space (the
/// reader trims them).
pub(crate) fn check_text(value: &str, field: &'static str, max_chars: usize) -> Result<()> {
    let problem = if value.is_empty() {
        Some(FieldProblem::Empty)
    } else if value
        .chars()
        .any(|c| c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}')
    {
        Some(FieldProblem::ControlCharacter)
    } else if value.starts_with(' ') || value.ends_with(' ') {
        Some(FieldProblem::SurroundingSpace)
    } else {
        let actual = value.chars().count();
        (actual > max_chars).then_some(FieldProblem::TooLong {
            max: max_chars,
            actual,
        })
    };
    match problem {
        Some(problem) => Err(InterchangeError::field(field, problem)),
        None => Ok(()),
    }
}

/// Checks a text read from the XML and makes it the model's.
pub(crate) fn read_text(value: &str, field: &'static str, max_chars: usize) -> Result<String> {
    check_text(value, field, max_chars)?;
    Ok(value.to_owned())
}

/// Checks an amount of the model: within the format's 18 digits, and above zero where required.
pub(crate) fn check_amount(minor: u64, field: &'static str, positive: bool) -> Result<()> {
    if minor > MAX_AMOUNT {
        Err(InterchangeError::field(field, FieldProblem::TooLarge))
    } else if positive && minor == 0 {
        Err(InterchangeError::field(field, FieldProblem::Zero))
    } else {
        Ok(())
    }
}

/// An amount in major units with exactly the currency's decimals (`1234` yen, `12.34` euros).
pub(crate) fn format_amount(minor: u64, currency: Currency) -> SmallText {
    let mut text = SmallText::new();
    let per_major = currency.minor_per_major();
    let width = usize::from(currency.decimals);
    // At most 20 digits and a point: always fits the 40 bytes.
    let _ = if width == 0 {
        write!(text, "{minor}")
    } else {
        write!(text, "{}.{:0width$}", minor / per_major, minor % per_major)
    };
    text
}

/// Reads an `xs:decimal` amount into minor units of `currency`. Refuses signs other than `+`, exponents, more
/// decimals than the currency has (trailing zeros aside), more than 18 digits, and zero when `positive`.
pub(crate) fn parse_amount(
    text: &str,
    currency: Currency,
    field: &'static str,
    positive: bool,
) -> Result<u64> {
    let refuse = |problem| Err(InterchangeError::field(field, problem));
    if text.starts_with('-') {
        return refuse(FieldProblem::Negative);
    }
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return refuse(FieldProblem::NotAnAmount);
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > usize::from(currency.decimals) {
        return refuse(FieldProblem::TooManyDecimals {
            allowed: currency.decimals,
        });
    }
    let mut minor: u64 = 0;
    let padding = usize::from(currency.decimals) - fraction.len();
    let digits = whole
        .bytes()
        .chain(fraction.bytes())
        .chain(core::iter::repeat_n(b'0', padding));
    for digit in digits {
        minor = match minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(digit - b'0')))
        {
            Some(value) if value <= MAX_AMOUNT => value,
            _ => return refuse(FieldProblem::TooLarge),
        };
    }
    if positive && minor == 0 {
        return refuse(FieldProblem::Zero);
    }
    Ok(minor)
}

/// Checks a calendar date of the model (years 1 to 9999, as `xs:date` writes them with four digits).
pub(crate) fn check_date(date: Date, field: &'static str) -> Result<()> {
    let valid = (1..=9999).contains(&date.year)
        && (1..=12).contains(&date.month)
        && date.day >= 1
        && date.day <= days_in_month(i64::from(date.year), date.month);
    if valid {
        Ok(())
    } else {
        Err(InterchangeError::field(field, FieldProblem::NotADate))
    }
}

pub(crate) fn format_date(date: Date) -> SmallText {
    let mut text = SmallText::new();
    let _ = write!(text, "{:04}-{:02}-{:02}", date.year, date.month, date.day);
    text
}

/// Reads exactly `YYYY-MM-DD` (no time zone: the files' dates are calendar days).
pub(crate) fn parse_date(text: &str, field: &'static str) -> Result<Date> {
    let bytes = text.as_bytes();
    let refuse = || InterchangeError::field(field, FieldProblem::NotADate);
    if bytes.len() != 10 || bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return Err(refuse());
    }
    let year = digits(bytes, 0, 4).ok_or_else(refuse)?;
    let month = digits(bytes, 5, 2).ok_or_else(refuse)?;
    let day = digits(bytes, 8, 2).ok_or_else(refuse)?;
    let date = Date {
        year: u16::try_from(year).map_err(|_| refuse())?,
        month: u8::try_from(month).map_err(|_| refuse())?,
        day: u8::try_from(day).map_err(|_| refuse())?,
    };
    check_date(date, field)?;
    Ok(date)
}

/// The latest instant `xs:dateTime` can write with a four-digit year: 9999-12-31T23:59:59Z.
const MAX_UNIX_SECONDS: u64 = 253_402_300_799;

pub(crate) fn check_unix_seconds(seconds: u64, field: &'static str) -> Result<()> {
    if seconds <= MAX_UNIX_SECONDS {
        Ok(())
    } else {
        Err(InterchangeError::field(field, FieldProblem::NotADateTime))
    }
}

/// `YYYY-MM-DDThh:mm:ssZ` in UTC.
pub(crate) fn format_date_time(unix_seconds: u64) -> SmallText {
    let days = i64::try_from(unix_seconds / 86_400).unwrap_or(0);
    let of_day = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut text = SmallText::new();
    let _ = write!(
        text,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
    text
}

/// Reads `YYYY-MM-DDThh:mm:ss` followed by `Z` or `±hh:mm` into seconds since 1970 (UTC). A time without a zone
/// is ambiguous and fractions of a second do not fit the model: both are refused.
pub(crate) fn parse_date_time(text: &str, field: &'static str) -> Result<u64> {
    let refuse = || InterchangeError::field(field, FieldProblem::NotADateTime);
    let (date_text, rest) = text.split_once('T').ok_or_else(refuse)?;
    let date = parse_date(date_text, field).map_err(|_| refuse())?;
    let bytes = rest.as_bytes();
    if bytes.len() < 9 || bytes.get(2) != Some(&b':') || bytes.get(5) != Some(&b':') {
        return Err(refuse());
    }
    let hour = digits(bytes, 0, 2).ok_or_else(refuse)?;
    let minute = digits(bytes, 3, 2).ok_or_else(refuse)?;
    let second = digits(bytes, 6, 2).ok_or_else(refuse)?;
    if hour > 23 || minute > 59 || second > 59 {
        return Err(refuse());
    }
    let offset_seconds = parse_zone(bytes.get(8..).unwrap_or_default()).ok_or_else(refuse)?;
    let days = days_from_civil(i64::from(date.year), date.month, date.day);
    let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    u64::try_from(local - offset_seconds).map_err(|_| refuse())
}

/// `Z` → 0, `+hh:mm` / `-hh:mm` → that offset east of UTC in seconds.
fn parse_zone(zone: &[u8]) -> Option<i64> {
    match zone {
        b"Z" => Some(0),
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let hours = digits(zone, 1, 2)?;
            let minutes = digits(zone, 4, 2)?;
            if hours > 14 || minutes > 59 {
                return None;
            }
            let offset = i64::from(hours * 3600 + minutes * 60);
            Some(if *sign == b'-' { -offset } else { offset })
        }
        _ => None,
    }
}

/// Token ids as 32 lowercase hexadecimal digits.
pub(crate) fn format_token_id(token_id: &[u8; 16]) -> SmallText {
    let mut text = SmallText::new();
    for byte in token_id {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

pub(crate) fn parse_token_id(text: &str, field: &'static str) -> Result<[u8; 16]> {
    let refuse = || InterchangeError::field(field, FieldProblem::NotATokenId);
    let bytes = text.as_bytes();
    if bytes.len() != 32 {
        return Err(refuse());
    }
    let mut token_id = [0u8; 16];
    for (byte, pair) in token_id.iter_mut().zip(bytes.chunks_exact(2)) {
        let high = lowercase_hex_digit(pair.first().copied()).ok_or_else(refuse)?;
        let low = lowercase_hex_digit(pair.get(1).copied()).ok_or_else(refuse)?;
        *byte = high << 4 | low;
    }
    Ok(token_id)
}

fn lowercase_hex_digit(byte: Option<u8>) -> Option<u8> {
    match byte? {
        digit @ b'0'..=b'9' => Some(digit - b'0'),
        letter @ b'a'..=b'f' => Some(letter - b'a' + 10),
        _ => None,
    }
}

pub(crate) fn format_count(count: u64) -> SmallText {
    let mut text = SmallText::new();
    let _ = write!(text, "{count}");
    text
}

/// `Max15NumericText`: 1 to 15 decimal digits.
pub(crate) fn parse_count(text: &str, field: &'static str) -> Result<u64> {
    if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InterchangeError::field(field, FieldProblem::NotACount));
    }
    text.parse()
        .map_err(|_| InterchangeError::field(field, FieldProblem::NotACount))
}

/// The largest count `Max15NumericText` can write.
pub(crate) const MAX_COUNT: u64 = 999_999_999_999_999;

/// `xs:boolean`.
pub(crate) fn parse_bool(text: &str, field: &'static str) -> Result<bool> {
    match text {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(InterchangeError::field(field, FieldProblem::NotABoolean)),
    }
}

/// Refuses a code other than the one our files use (`DD`, `CRDT`, `BOOK`, ...).
pub(crate) fn expect_code(text: &str, expected: &'static str, field: &'static str) -> Result<()> {
    if text == expected {
        Ok(())
    } else {
        Err(InterchangeError::field(
            field,
            FieldProblem::Unexpected {
                expected,
                found: text.to_owned(),
            },
        ))
    }
}

/// Refuses a text that must repeat one the file already gave (the bank id of every debtor agent, ...).
pub(crate) fn same_text(
    field: &'static str,
    expected_from: &'static str,
    expected: &str,
    found: &str,
) -> Result<()> {
    if expected == found {
        return Ok(());
    }
    Err(InterchangeError::Mismatch {
        field,
        expected_from,
        expected: expected.to_owned(),
        found: found.to_owned(),
    })
}

pub(crate) fn same_number(field: &'static str, expected: u64, found: u64) -> Result<()> {
    if expected == found {
        return Ok(());
    }
    Err(InterchangeError::Mismatch {
        field,
        expected_from: "group header",
        expected: expected.to_string(),
        found: found.to_string(),
    })
}

fn digits(bytes: &[u8], start: usize, len: usize) -> Option<u32> {
    let slice = bytes.get(start..start + len)?;
    slice.iter().try_fold(0u32, |value, &byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + u32::from(byte - b'0'))
    })
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const EUR: Currency = CURRENCIES[1];
    const JPY: Currency = CURRENCIES[0];

    #[test]
    fn amounts_are_written_with_the_currency_decimals() {
        assert_eq!(format_amount(1234, EUR).as_str(), "12.34");
        assert_eq!(format_amount(5, EUR).as_str(), "0.05");
        assert_eq!(format_amount(1234, JPY).as_str(), "1234");
        assert_eq!(
            format_amount(MAX_AMOUNT, EUR).as_str(),
            "9999999999999999.99"
        );
    }

    #[test]
    fn amounts_are_read_strictly() {
        let read = |text, currency| parse_amount(text, currency, "Amt", true);
        assert_eq!(read("12.34", EUR).ok(), Some(1234));
        assert_eq!(read("12.3", EUR).ok(), Some(1230));
        assert_eq!(read("12.340", EUR).ok(), Some(1234));
        assert_eq!(read("12", EUR).ok(), Some(1200));
        assert_eq!(read("+7", JPY).ok(), Some(7));
        let problem = |text, currency| match read(text, currency) {
            Err(InterchangeError::Field { problem, .. }) => Some(problem),
            _ => None,
        };
        assert_eq!(
            problem("12.345", EUR),
            Some(FieldProblem::TooManyDecimals { allowed: 2 })
        );
        assert_eq!(
            problem("1.5", JPY),
            Some(FieldProblem::TooManyDecimals { allowed: 0 })
        );
        assert_eq!(problem("-1.00", EUR), Some(FieldProblem::Negative));
        assert_eq!(problem("0.00", EUR), Some(FieldProblem::Zero));
        assert_eq!(problem("1e3", EUR), Some(FieldProblem::NotAnAmount));
        assert_eq!(problem(".", EUR), Some(FieldProblem::NotAnAmount));
        assert_eq!(problem("", EUR), Some(FieldProblem::NotAnAmount));
        assert_eq!(problem("1 000", EUR), Some(FieldProblem::NotAnAmount));
        assert_eq!(
            problem("10000000000000000.00", EUR),
            Some(FieldProblem::TooLarge)
        );
        assert_eq!(
            problem("99999999999999999999999", JPY),
            Some(FieldProblem::TooLarge)
        );
    }

    #[test]
    fn date_times_round_trip_and_honour_offsets() {
        for seconds in [
            0,
            951_782_400,
            1_767_225_600,
            4_102_444_799,
            MAX_UNIX_SECONDS,
        ] {
            let text = format_date_time(seconds);
            assert_eq!(
                parse_date_time(text.as_str(), "CreDtTm").ok(),
                Some(seconds),
                "{text:?}"
            );
        }
        assert_eq!(
            format_date_time(951_782_400).as_str(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            parse_date_time("2000-02-29T09:00:00+09:00", "f").ok(),
            Some(951_782_400)
        );
        for bad in [
            "2000-02-29T00:00:00",
            "2001-02-29T00:00:00Z",
            "2000-02-29T24:00:00Z",
            "2000-02-29T00:00:00.5Z",
        ] {
            assert!(parse_date_time(bad, "f").is_err(), "{bad}");
        }
        assert!(parse_date_time("1969-12-31T23:59:59Z", "f").is_err());
    }

    #[test]
    fn dates_are_checked() {
        assert!(
            check_date(
                Date {
                    year: 2024,
                    month: 2,
                    day: 29
                },
                "d"
            )
            .is_ok()
        );
        assert!(
            check_date(
                Date {
                    year: 2023,
                    month: 2,
                    day: 29
                },
                "d"
            )
            .is_err()
        );
        assert!(
            check_date(
                Date {
                    year: 0,
                    month: 1,
                    day: 1
                },
                "d"
            )
            .is_err()
        );
        assert!(parse_date("2024-13-01", "d").is_err());
        assert!(parse_date("2024-1-01", "d").is_err());
        assert!(parse_date("2024-01-01Z", "d").is_err());
    }

    #[test]
    fn token_ids_are_lowercase_hex() {
        let id = [0xAB; 16];
        let text = format_token_id(&id);
        assert_eq!(text.as_str(), "abababababababababababababababab");
        assert_eq!(parse_token_id(text.as_str(), "Nb").ok(), Some(id));
        assert!(parse_token_id("ABABABABABABABABABABABABABABABAB", "Nb").is_err());
        assert!(parse_token_id("abab", "Nb").is_err());
        assert!(parse_token_id("gbababababababababababababababab", "Nb").is_err());
    }

    #[test]
    fn texts_are_bounded_and_round_trippable() {
        assert!(check_text("Ada Lovelace", "Nm", 140).is_ok());
        assert!(check_text("é".repeat(35).as_str(), "Id", 35).is_ok());
        assert!(check_text("x".repeat(36).as_str(), "Id", 35).is_err());
        assert!(check_text("", "Id", 35).is_err());
        assert!(check_text(" a", "Id", 35).is_err());
        assert!(check_text("a\tb", "Id", 35).is_err());
    }
}
