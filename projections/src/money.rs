//! Money as integers: ISO-4217 currencies with their own exponent, exact decimal
//! parsing into minor units, formatting back, and the one rounding rule (half away
//! from zero) that every money product uses.
//!
//! No value in this module ever passes through a float.

use std::fmt;

use crate::error::ParseError;

/// An ISO-4217 currency that has a minor unit (EUR: 2 digits, JPY: 0, KWD: 3).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode,
)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

impl Currency {
    /// Looks up an ISO-4217 code (upper case, as on the wire).
    pub fn from_code(code: &str) -> Result<Self, ParseError> {
        let unknown = || ParseError::Currency {
            value: code.to_owned(),
        };
        let iso = iso_currency::Currency::from_code(code).ok_or_else(unknown)?;
        // Codes such as XAU (gold) or XXX have no minor unit: money cannot be counted in them.
        let exponent = iso.exponent().ok_or_else(unknown)?;
        let bytes = code.as_bytes();
        Ok(Currency {
            code: [bytes[0], bytes[1], bytes[2]],
            exponent: exponent as u8,
        })
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).expect("currency codes are ASCII")
    }

    /// Digits after the decimal point in this currency.
    pub fn exponent(&self) -> u32 {
        u32::from(self.exponent)
    }

    /// Parses a decimal string (`"12500.00"`, `"-3.5"`, `"7"`) into minor units of this
    /// currency, exactly. More fractional digits than the currency has is an error,
    /// never a rounding; so is anything that overflows an `i64` of minor units.
    pub fn parse_minor(&self, s: &str) -> Result<i64, ParseError> {
        parse_decimal(s, self.exponent())
    }

    /// Formats minor units with the currency's digits (`1250000` EUR → `"12500.00"`).
    pub fn format_minor(&self, minor: i64) -> String {
        format_decimal(minor, self.exponent())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount of money: minor units and their currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, bincode::Encode, bincode::Decode)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    /// The decimal string of this amount (`"12500.00"`).
    pub fn to_decimal_string(&self) -> String {
        self.currency.format_minor(self.minor)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

/// Parses a plain decimal number with at most `scale` fractional digits into an
/// integer scaled by `10^scale`. Accepts an optional sign, digits, and an optional
/// `.` followed by digits. Rejects exponents, thousands separators, commas, blanks.
pub fn parse_decimal(s: &str, scale: u32) -> Result<i64, ParseError> {
    let bad = |reason: &str| ParseError::Decimal {
        value: s.to_owned(),
        reason: reason.to_owned(),
    };
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(bad("not a decimal number"));
    }
    if body.contains('.') && frac_part.is_empty() {
        return Err(bad("no digits after the decimal point"));
    }
    if int_part.is_empty() {
        return Err(bad("no digits before the decimal point"));
    }
    if !int_part.bytes().all(|c| c.is_ascii_digit())
        || !frac_part.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(bad(
            "not a decimal number (digits, an optional sign and one '.' only)",
        ));
    }
    let frac_digits = frac_part.len() as u32;
    if frac_digits > scale {
        // Never rounded, not even trailing zeros: the sender's system disagrees with
        // ISO 4217 about the currency, and that is worth hearing about.
        return Err(bad(&format!(
            "more than {scale} digits after the decimal point"
        )));
    }
    let overflow = || bad("too large for a 64-bit count of minor units");
    let mut value: i128 = 0;
    for c in int_part.bytes() {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i128::from(c - b'0')))
            .ok_or_else(overflow)?;
        if value > i128::from(i64::MAX) {
            return Err(overflow());
        }
    }
    for i in 0..scale {
        let digit = frac_part.as_bytes().get(i as usize).map_or(0, |c| c - b'0');
        value = value * 10 + i128::from(digit);
        if value > i128::from(i64::MAX) {
            return Err(overflow());
        }
    }
    let value = if negative { -value } else { value };
    i64::try_from(value).map_err(|_| overflow())
}

/// Formats an integer scaled by `10^scale` as a decimal string with exactly `scale`
/// fractional digits.
pub fn format_decimal(value: i64, scale: u32) -> String {
    let mut out = String::with_capacity(24);
    write_decimal(&mut out, value, scale).expect("writing to a String cannot fail");
    out
}

/// An integer scaled by `10^scale`, shown as [`format_decimal`] writes it, with no
/// `String` in between (answers of megabytes write their figures through this).
#[derive(Clone, Copy, Debug)]
pub struct Decimal(pub i64, pub u32);

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A width (`{:>12}`) pads the whole figure; without one, no String is made.
        if f.width().is_some() {
            return f.pad(&format_decimal(self.0, self.1));
        }
        write_decimal(f, self.0, self.1)
    }
}

fn write_decimal(out: &mut impl std::fmt::Write, value: i64, scale: u32) -> std::fmt::Result {
    // Every figure of every answer goes through here: digits by `itoa`, not `format!`.
    let mut digits = itoa::Buffer::new();
    let abs = value.unsigned_abs();
    if value < 0 {
        out.write_char('-')?;
    }
    if scale == 0 {
        return out.write_str(digits.format(abs));
    }
    let unit = 10u64.pow(scale);
    out.write_str(digits.format(abs / unit))?;
    out.write_char('.')?;
    let fraction = digits.format(abs % unit);
    for _ in fraction.len()..scale as usize {
        out.write_char('0')?;
    }
    out.write_str(fraction)
}

/// `num / den` rounded to the nearest integer, halves away from zero.
/// `den` must not be zero.
pub fn div_round_half_away(num: i128, den: i128) -> i128 {
    assert!(den != 0, "division by zero in div_round_half_away");
    let (num, den) = if den < 0 { (-num, -den) } else { (num, den) };
    let q = num / den;
    let r = num % den;
    if 2 * r.abs() >= den {
        q + num.signum()
    } else {
        q
    }
}

/// `value × num / den`, rounded half away from zero, saturated to the `i64` range.
pub fn mul_div_round(value: i64, num: i64, den: i64) -> i64 {
    let q = div_round_half_away(i128::from(value) * i128::from(num), i128::from(den));
    q.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// `"-1234567.89"` → `"-1,234,567.89"`.
pub fn group_thousands(s: &str) -> String {
    let (sign, rest) = s.strip_prefix('-').map_or(("", s), |r| ("-", r));
    let (int, frac) = rest
        .split_once('.')
        .map_or((rest, None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// Splits `amount` in proportion to `weights` so that the parts add up to `amount`
/// exactly: each part is rounded down, then the units left over go one each to the
/// parts with the largest remainders (the earlier part first on a tie). With no
/// weight at all, the first part takes everything (there must be at least one part).
pub fn largest_remainder(amount: i64, weights: &[i128]) -> Vec<i64> {
    let n = weights.len();
    assert!(n > 0, "largest_remainder needs at least one part");
    // Keep `amount × weight` inside i128 whatever the weights (sums of bookings can be
    // large): scale them down to at most 2^40 each. The parts still add up exactly.
    const WEIGHT_MAX: i128 = 1 << 40;
    let largest = weights.iter().map(|w| (*w).max(0)).max().unwrap_or(0);
    let scaled: Vec<i128>;
    let weights = if largest > WEIGHT_MAX {
        scaled = weights
            .iter()
            .map(|w| (*w).max(0) / (largest / WEIGHT_MAX + 1))
            .collect();
        &scaled[..]
    } else {
        weights
    };
    let total: i128 = weights.iter().map(|w| (*w).max(0)).sum();
    if total == 0 {
        let mut parts = vec![0; n];
        parts[0] = amount;
        return parts;
    }
    let mut parts = Vec::with_capacity(n);
    let mut remainders = Vec::with_capacity(n);
    for w in weights {
        let exact = i128::from(amount) * (*w).max(0);
        parts.push(exact.div_euclid(total) as i64);
        remainders.push(exact.rem_euclid(total));
    }
    let mut left = amount - parts.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| remainders[*b].cmp(&remainders[*a]).then(a.cmp(b)));
    for i in order.into_iter().cycle() {
        if left <= 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts
}

/// An exact ratio of two integers (attainment = actual / plan).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratio {
    pub num: i64,
    pub den: i64,
}

impl Ratio {
    /// `None` when the denominator is zero.
    pub fn new(num: i64, den: i64) -> Option<Self> {
        (den != 0).then_some(Ratio { num, den })
    }

    /// The ratio as a decimal string with `places` digits, rounded half away from zero
    /// (`Ratio { 2, 3 }` with 4 places → `"0.6667"`).
    pub fn to_decimal_string(self, places: u32) -> String {
        let scaled = div_round_half_away(
            i128::from(self.num) * 10i128.pow(places),
            i128::from(self.den),
        );
        let scaled = scaled.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        format_decimal(scaled, places)
    }

    /// The ratio in basis points (1.0 = 10 000), rounded half away from zero.
    pub fn basis_points(self) -> i64 {
        mul_div_round(self.num, 10_000, self.den)
    }
}

#[cfg(test)]
mod tests {

    /// The formula `format_decimal` had, by `format!`: the reference it must equal.
    fn formatted(value: i64, scale: u32) -> String {
        let sign = if value < 0 { "-" } else { "" };
        let abs = value.unsigned_abs();
        if scale == 0 {
            return format!("{sign}{abs}");
        }
        let unit = 10u64.pow(scale);
        format!(
            "{sign}{}.{:0width$}",
            abs / unit,
            abs % unit,
            width = scale as usize
        )
    }

    proptest::proptest! {
        #[test]
        fn format_decimal_writes_what_format_wrote(value in proptest::prelude::any::<i64>(), scale in 0u32..=4) {
            proptest::prop_assert_eq!(format_decimal(value, scale), formatted(value, scale));
            proptest::prop_assert_eq!(Decimal(value, scale).to_string(), formatted(value, scale));
            proptest::prop_assert_eq!(format!("{:>30}", Decimal(value, scale)), format!("{:>30}", formatted(value, scale)));
        }
    }

    #[test]
    fn format_decimal_at_the_edges() {
        for value in [
            0,
            1,
            -1,
            9,
            10,
            99,
            100,
            101,
            -100,
            i64::MAX,
            i64::MIN,
            100_000_007,
        ] {
            for scale in 0..=4 {
                assert_eq!(
                    format_decimal(value, scale),
                    formatted(value, scale),
                    "{value} {scale}"
                );
            }
        }
        assert_eq!(format_decimal(-5, 2), "-0.05");
        assert_eq!(format_decimal(1234567, 2), "12345.67");
    }
    use super::*;

    #[test]
    fn largest_remainder_adds_up_exactly_even_for_huge_weights() {
        let parts = largest_remainder(999_983, &[1, 1, 1, 1, 1, 1, 1]);
        assert_eq!(parts.iter().sum::<i64>(), 999_983);
        assert_eq!(
            parts,
            vec![142_855, 142_855, 142_855, 142_855, 142_855, 142_854, 142_854]
        );
        let huge = [i128::from(i64::MAX) * 1000, i128::from(i64::MAX) * 3000, 1];
        let parts = largest_remainder(i64::MAX, &huge);
        assert_eq!(
            parts.iter().map(|p| i128::from(*p)).sum::<i128>(),
            i128::from(i64::MAX)
        );
        assert!(parts[1] > parts[0] * 2);
    }

    fn eur() -> Currency {
        Currency::from_code("EUR").unwrap()
    }

    #[test]
    fn parses_exactly_with_the_currency_exponent() {
        assert_eq!(eur().parse_minor("12500.00").unwrap(), 1_250_000);
        assert_eq!(eur().parse_minor("12500").unwrap(), 1_250_000);
        assert_eq!(eur().parse_minor("-300.5").unwrap(), -30_050);
        assert_eq!(eur().parse_minor("0.1").unwrap(), 10);
        let jpy = Currency::from_code("JPY").unwrap();
        assert_eq!(jpy.parse_minor("1200").unwrap(), 1200);
        assert!(jpy.parse_minor("1200.5").is_err());
        let kwd = Currency::from_code("KWD").unwrap();
        assert_eq!(kwd.parse_minor("1.234").unwrap(), 1234);
    }

    #[test]
    fn rejects_what_is_not_an_exact_decimal() {
        for bad in [
            "12,5", "1e3", "", "-", ".5", "5.", "1.2.3", " 5", "5 ", "0x10", "1_000", "12.345",
            "12.500",
        ] {
            let err = eur().parse_minor(bad).unwrap_err();
            assert!(
                err.to_string().contains(&format!("{bad:?}")),
                "{err} should quote {bad:?}"
            );
        }
        assert!(eur().parse_minor("92233720368547758.08").is_err());
        assert_eq!(eur().parse_minor("92233720368547758.07").unwrap(), i64::MAX);
        assert!(eur()
            .parse_minor("99999999999999999999999999999999")
            .is_err());
    }

    #[test]
    fn unknown_or_unitless_currencies_are_rejected() {
        assert!(Currency::from_code("EURO").is_err());
        assert!(Currency::from_code("ABC").is_err());
        assert!(Currency::from_code("eur").is_err());
        assert!(Currency::from_code("XAU").is_err());
    }

    #[test]
    fn formats_with_the_currency_digits() {
        assert_eq!(eur().format_minor(1_250_000), "12500.00");
        assert_eq!(eur().format_minor(-30_050), "-300.50");
        assert_eq!(eur().format_minor(-5), "-0.05");
        assert_eq!(Currency::from_code("JPY").unwrap().format_minor(-7), "-7");
        assert_eq!(eur().format_minor(i64::MIN), "-92233720368547758.08");
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(div_round_half_away(5, 2), 3);
        assert_eq!(div_round_half_away(-5, 2), -3);
        assert_eq!(div_round_half_away(4, 3), 1);
        assert_eq!(div_round_half_away(-4, 3), -1);
        assert_eq!(div_round_half_away(5, -2), -3);
        assert_eq!(mul_div_round(100_000, 13, 21), 61_905);
        assert_eq!(Ratio::new(2, 3).unwrap().to_decimal_string(4), "0.6667");
        assert_eq!(Ratio::new(-1, 8).unwrap().to_decimal_string(2), "-0.13");
        assert!(Ratio::new(1, 0).is_none());
    }
}
