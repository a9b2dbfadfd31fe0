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

/// Thousands separated by commas.
fn group(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Parses `30000`, `30,000` or `12.50` as minor units of `code` (refusing more decimals than it has).
pub fn parse(text: &str, code: u16) -> Result<u64, String> {
    let (_, decimals) = currency(code);
    let clean: String = text.chars().filter(|c| *c != ',' && *c != '_').collect();
    let (whole, fraction) = clean.split_once('.').unwrap_or((&clean, ""));
    if fraction.len() > decimals as usize {
        return Err(format!(
            "{text}: at most {decimals} decimal places in this currency"
        ));
    }
    let bad = || format!("{text}: not an amount (digits, optionally with a decimal point)");
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let fraction: u64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| bad())?
    };
    let scale = 10u64.pow(decimals - fraction.len() as u32);
    whole
        .checked_mul(10u64.pow(decimals))
        .and_then(|w| w.checked_add(fraction * scale))
        .filter(|amount| *amount > 0)
        .ok_or_else(|| format!("{text}: the amount must be above zero and fit 64 bits"))
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
    fn parses_what_it_formats() {
        assert_eq!(parse("30,000", 392), Ok(30_000));
        assert_eq!(parse("12.5", 978), Ok(1_250));
        assert!(parse("1.5", 392).is_err());
        assert!(parse("0", 978).is_err());
        assert!(parse("-3", 978).is_err());
        assert!(parse("99999999999999999999", 392).is_err());
    }
}
