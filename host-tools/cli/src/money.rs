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
}
