//! Currencies: amounts in another currency than the reporting one count once an
//! `fx_rate_set` gives their month's rate. [`normalize`] is the one place that turns
//! an event's amounts into the reporting currency, so everything after it (buckets,
//! deals, forecasts) only ever sees reporting minor units.
//!
//! The month of an amount is the month of its own date: `closed_on` for a won deal,
//! `effective_on` for a renewal or churn, `expected_close` for an opening (or a stage
//! change that moves it), the forecast's `month`; an amount without a date (a stage
//! change that only re-prices) uses the month of `occurred_at`. Conversion is exact:
//! minor units × rate, rescaled between the two currencies' exponents, rounded once,
//! half away from zero. A rate set again for a month applies to amounts folded after
//! it; amounts already folded keep the rate they were converted at.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono_tz::Tz;

use crate::event::{Event, EventBody, FxRate};
use crate::money::{div_round_half_away, Currency, Money};
use crate::time::Month;

/// The known rates, by currency and month.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FxTable {
    rates: BTreeMap<(Currency, Month), FxRate>,
}

impl FxTable {
    /// No rates.
    pub const fn new() -> Self {
        FxTable {
            rates: BTreeMap::new(),
        }
    }

    pub fn set(&mut self, currency: Currency, month: Month, rate: FxRate) {
        self.rates.insert((currency, month), rate);
    }

    pub fn rate(&self, currency: Currency, month: Month) -> Option<FxRate> {
        self.rates.get(&(currency, month)).copied()
    }

    /// Every rate, by currency and month.
    pub fn iter(&self) -> impl Iterator<Item = (&(Currency, Month), &FxRate)> + '_ {
        self.rates.iter()
    }
}

/// An amount whose month has no rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingRate {
    /// The event's field that holds the amount's currency.
    pub field: &'static str,
    pub currency: Currency,
    pub month: Month,
}

/// `m` in the reporting currency at `rate`: minor × rate × 10^(e_r − e_m), rounded
/// half away from zero (saturating at the i64 range).
pub fn convert(m: Money, rate: FxRate, reporting: Currency) -> Money {
    let num = i128::from(m.minor)
        .checked_mul(i128::from(rate.scaled()))
        .and_then(|n| n.checked_mul(10i128.pow(reporting.exponent())));
    let den = 10i128.pow(m.currency.exponent()) * 10i128.pow(FxRate::SCALE);
    let minor = match num {
        Some(num) => {
            div_round_half_away(num, den).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
        }
        // Beyond even i128: far beyond the i64 range, on the amount's side of zero.
        None if (m.minor < 0) != (rate.scaled() < 0) => i64::MIN,
        None => i64::MAX,
    };
    Money::new(minor, reporting)
}

fn to_reporting(
    m: &mut Money,
    month: Month,
    field: &'static str,
    reporting: Currency,
    table: &FxTable,
) -> Result<(), MissingRate> {
    if m.currency == reporting {
        return Ok(());
    }
    let rate = table.rate(m.currency, month).ok_or(MissingRate {
        field,
        currency: m.currency,
        month,
    })?;
    *m = convert(*m, rate, reporting);
    Ok(())
}

/// The event with every amount in the reporting currency (borrowed when it already
/// is), or the first amount whose month has no rate. Plans are not converted: a plan
/// is published in the reporting currency.
pub fn normalize<'a>(
    ev: &'a Event,
    reporting: Currency,
    tz: Tz,
    table: &FxTable,
) -> Result<Cow<'a, Event>, MissingRate> {
    let foreign = |m: &Money| m.currency != reporting;
    let needs = match &ev.body {
        EventBody::ForecastSubmitted(f) => foreign(&f.amount),
        EventBody::DealOpened(d) => foreign(&d.amount),
        EventBody::DealStageChanged(d) => d.amount.as_ref().is_some_and(foreign),
        EventBody::DealWon(d) => foreign(&d.amount),
        EventBody::Retention(_, r) => foreign(&r.amount),
        _ => false,
    };
    if !needs {
        return Ok(Cow::Borrowed(ev));
    }
    let mut ev = ev.clone();
    let occurred = ev.occurred_at.local_date(tz).month();
    let f = "currency";
    match &mut ev.body {
        EventBody::ForecastSubmitted(x) => {
            to_reporting(&mut x.amount, x.month, f, reporting, table)?
        }
        EventBody::DealOpened(x) => {
            to_reporting(&mut x.amount, x.expected_close.month(), f, reporting, table)?
        }
        EventBody::DealStageChanged(x) => {
            let month = x.expected_close.map_or(occurred, |d| d.month());
            if let Some(a) = &mut x.amount {
                to_reporting(a, month, f, reporting, table)?;
            }
        }
        EventBody::DealWon(x) => {
            to_reporting(&mut x.amount, x.closed_on.month(), f, reporting, table)?
        }
        EventBody::Retention(_, x) => {
            to_reporting(&mut x.amount, x.effective_on.month(), f, reporting, table)?
        }
        _ => {}
    }
    Ok(Cow::Owned(ev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(c: &str) -> Currency {
        Currency::from_code(c).unwrap()
    }

    #[test]
    fn converts_exactly_between_exponents_half_away_from_zero() {
        let eur = cur("EUR");
        let rate = FxRate::parse("1.0825").unwrap();
        // 100.00 USD × 1.0825 = 108.25 EUR.
        assert_eq!(
            convert(Money::new(10_000, cur("USD")), rate, eur).minor,
            10_825
        );
        // 0.01 USD × 1.0825 = 0.010825 → 0.01; 0.05 × 1.0825 = 0.054125 → 0.05.
        assert_eq!(convert(Money::new(1, cur("USD")), rate, eur).minor, 1);
        // A half: 0.02 × 1.25 = 0.025 → 0.03; −0.02 → −0.03.
        let r = FxRate::parse("1.25").unwrap();
        assert_eq!(convert(Money::new(2, cur("USD")), r, eur).minor, 3);
        assert_eq!(convert(Money::new(-2, cur("USD")), r, eur).minor, -3);
        // JPY has no minor unit: ¥1000 × 0.0061 = 6.10 EUR.
        let jpy = FxRate::parse("0.0061").unwrap();
        assert_eq!(convert(Money::new(1000, cur("JPY")), jpy, eur).minor, 610);
        // KWD has three: 1.234 KWD × 3 = 3.702 → 3.70 EUR.
        let kwd = FxRate::parse("3").unwrap();
        assert_eq!(convert(Money::new(1234, cur("KWD")), kwd, eur).minor, 370);
        // Into JPY: 1.00 EUR × 163.5 = ¥163.5 → ¥164.
        let r = FxRate::parse("163.5").unwrap();
        assert_eq!(convert(Money::new(100, eur), r, cur("JPY")).minor, 164);
    }

    #[test]
    fn a_product_beyond_i128_saturates_instead_of_wrapping() {
        let huge = FxRate::from_scaled(i64::MAX).unwrap();
        let kwd = cur("KWD");
        assert_eq!(
            convert(Money::new(i64::MAX, cur("JPY")), huge, kwd).minor,
            i64::MAX
        );
        assert_eq!(
            convert(Money::new(i64::MIN, cur("JPY")), huge, kwd).minor,
            i64::MIN
        );
    }

    #[test]
    fn rates_are_positive_exact_decimals() {
        assert_eq!(FxRate::parse("1.0825").unwrap().scaled(), 10_825_000_000);
        assert_eq!(FxRate::parse("0.0000000001").unwrap().scaled(), 1);
        assert_eq!(
            FxRate::parse("1.0825").unwrap().to_decimal_string(),
            "1.0825"
        );
        for bad in ["0", "-1.2", "1,2", "0.00000000001", "abc", ""] {
            assert!(FxRate::parse(bad).is_err(), "{bad}");
        }
    }
}
