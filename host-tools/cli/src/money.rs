//! Amounts as people read them: integer minor units formatted by their ISO 4217 currency.

/// Symbol (or code) and decimal places of an ISO 4217 numeric currency.
fn currency(code: u16) -> (&'static str, u32) {
    match code {
        392 => ("¥", 0),
        978 => ("€", 2),
        840 => ("$", 2),
        826 => ("£", 2),
        756 => ("CHF ", 2),
        _ => ("", 2),
    }
}

/// `amount` minor units of `code`: `¥30,000`, `€12.50`; an unknown currency shows its number.
pub fn format(amount: u64, code: u16) -> String {
    let (symbol, decimals) = currency(code);
    let unit = 10u64.pow(decimals);
    let whole = group(amount / unit);
    let text = if decimals == 0 {
        whole
    } else {
        format!(
            "{whole}.{:0width$}",
            amount % unit,
            width = decimals as usize
        )
    };
    if symbol.is_empty() {
        format!("{text} ({code:03})")
    } else {
        format!("{symbol}{text}")
    }
}

/// An amount typed by a person, in `code`'s minor units: `30000`, `30,000` (commas between groups of three),
/// `12.50` (at most the currency's decimal places). Zero, negative, malformed and overflowing amounts are refused.
pub fn parse(text: &str, code: u16) -> Result<u64, String> {
    let (_, decimals) = currency(code);
    let text = text.trim();
    if text.starts_with('-') {
        return Err(format!("{text:?} is negative: give a positive amount"));
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = ungroup(whole).ok_or_else(|| {
        format!("{text:?} is not an amount: digits, with commas between thousands (30,000) and a decimal point")
    })?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) || (text.contains('.') && fraction.is_empty())
    {
        return Err(format!(
            "{text:?} is not an amount: digits after the decimal point"
        ));
    }
    if fraction.len() > decimals as usize {
        return Err(format!(
            "{text:?} has {} decimal places; currency {code:03} has {decimals}",
            fraction.len()
        ));
    }
    let padded = format!("{digits}{fraction:0<width$}", width = decimals as usize);
    let amount: u64 = padded
        .parse()
        .map_err(|_| format!("{text:?} is too large an amount"))?;
    if amount == 0 {
        return Err("the amount is zero: give at least one minor unit".into());
    }
    Ok(amount)
}

/// The digits of `whole` without its thousands commas, if it is digits grouped correctly (or not at all).
fn ungroup(whole: &str) -> Option<String> {
    let groups: Vec<&str> = whole.split(',').collect();
    let first = groups.first()?;
    let first_ok = !first.is_empty() && (groups.len() == 1 || first.len() <= 3);
    let rest_ok = groups.iter().skip(1).all(|group| group.len() == 3);
    let all_digits = groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()));
    (first_ok && rest_ok && all_digits).then(|| groups.concat())
}

/// Thousands separated by commas.
fn group(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_currency() {
        assert_eq!(format(30_000, 392), "¥30,000");
        assert_eq!(format(1_234_567, 978), "€12,345.67");
        assert_eq!(format(5, 978), "€0.05");
        assert_eq!(format(100, 999), "1.00 (999)");
    }

    #[test]
    fn parses_what_people_type() {
        assert_eq!(parse("30000", 392), Ok(30_000));
        assert_eq!(parse("30,000", 392), Ok(30_000));
        assert_eq!(parse("1,234,567", 392), Ok(1_234_567));
        assert_eq!(parse("12.50", 978), Ok(1_250));
        assert_eq!(parse("12.5", 978), Ok(1_250));
        assert_eq!(parse("12", 978), Ok(1_200));
        assert_eq!(parse(" 7 ", 392), Ok(7));
    }

    #[test]
    fn refuses_what_is_no_amount() {
        for (text, code, why) in [
            ("0", 392, "zero"),
            ("0.00", 978, "zero"),
            ("-5", 392, "negative"),
            ("12.50", 392, "decimal places"),
            ("1.234", 978, "decimal places"),
            ("abc", 392, "not an amount"),
            ("", 392, "not an amount"),
            ("1,2345", 392, "not an amount"),
            ("12,34", 392, "not an amount"),
            (",123", 392, "not an amount"),
            ("1.", 978, "not an amount"),
            ("1.x", 978, "not an amount"),
            ("18446744073709551616", 392, "too large"),
            ("184467440737095516.16", 978, "too large"),
        ] {
            let error = parse(text, code).expect_err(text);
            assert!(error.contains(why), "{text}: {error}");
        }
        assert_eq!(parse("18446744073709551615", 392), Ok(u64::MAX));
    }
}
