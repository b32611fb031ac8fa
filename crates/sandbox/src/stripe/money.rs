//! Amounts in minor units, formatted for people: `1999` `usd` → `$19.99`, `500` `jpy` → `¥500`.

/// Currencies Stripe treats as having no minor unit.
const ZERO_DECIMAL: [&str; 16] = [
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];
/// Currencies with three decimal places.
const THREE_DECIMAL: [&str; 5] = ["bhd", "jod", "kwd", "omr", "tnd"];

/// `amount` minor units of `currency` (lowercase ISO code), with a symbol for the common ones
/// and the upper-case code otherwise (`CHF 12.50`).
pub(crate) fn format(amount: i64, currency: &str) -> String {
    let currency = currency.to_ascii_lowercase();
    let decimals: u32 = if ZERO_DECIMAL.contains(&currency.as_str()) {
        0
    } else if THREE_DECIMAL.contains(&currency.as_str()) {
        3
    } else {
        2
    };
    let sign = if amount < 0 { "-" } else { "" };
    let magnitude = amount.unsigned_abs();
    let scale = 10_u64.pow(decimals);
    let whole = group_thousands(magnitude / scale);
    let number = if decimals == 0 {
        whole
    } else {
        let fraction = magnitude % scale;
        let width = usize::try_from(decimals).unwrap_or(2);
        format!("{whole}.{fraction:0width$}")
    };
    match currency.as_str() {
        "usd" => format!("{sign}${number}"),
        "eur" => format!("{sign}€{number}"),
        "gbp" => format!("{sign}£{number}"),
        "jpy" => format!("{sign}¥{number}"),
        other => format!("{sign}{} {number}", other.to_ascii_uppercase()),
    }
}

fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
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
    fn minor_units_are_scaled_by_the_currency_exponent() {
        assert_eq!(format(1999, "usd"), "$19.99");
        assert_eq!(format(5, "eur"), "€0.05");
        assert_eq!(format(123_456_789, "gbp"), "£1,234,567.89");
        assert_eq!(format(500, "jpy"), "¥500");
        assert_eq!(format(1250, "chf"), "CHF 12.50");
        assert_eq!(format(1234, "kwd"), "KWD 1.234");
    }
}
