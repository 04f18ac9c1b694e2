//! Figures as the organisation reads them: amounts with the group and decimal
//! separators of its locale (`[org] locale`, CLDR data from `num-format`), ratios as
//! percents, and times in its time zone. The exact decimal text of the API goes in
//! and only its separators change: nothing is rounded here. Files (CSV, XLSX) and the
//! JSON API keep plain decimals.

use chrono_tz::Tz;
use num_format::{Locale, ToFormattedString};
use serde_json::Value;

use crate::http::gateway::Gateway;

/// The organisation's conventions for one page.
#[derive(Clone, Copy, Debug)]
pub struct Fmt {
    pub locale: Locale,
    pub tz: Tz,
}

impl Fmt {
    pub fn of(g: &Gateway) -> Fmt {
        Fmt {
            locale: g.config.locale,
            tz: g.config.org.timezone,
        }
    }

    /// An exact decimal text (`-1234567.50`) in the locale's way (`-1.234.567,50`
    /// for `de`); a text that is not a plain decimal is returned as it is.
    pub fn decimal(&self, text: &str) -> String {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int, frac) = match digits.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (digits, None),
        };
        let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let Ok(whole) = int.parse::<u64>() else {
            return text.to_owned();
        };
        if !plain(int) || frac.is_some_and(|f| !plain(f)) {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len() + 8);
        if negative {
            out.push_str(self.locale.minus_sign());
        }
        out.push_str(&whole.to_formatted_string(&self.locale));
        if let Some(f) = frac {
            out.push_str(self.locale.decimal());
            out.push_str(f);
        }
        out
    }

    /// A money (or count) text of the API; `–` for none.
    pub fn money(&self, v: &Value) -> String {
        match v {
            Value::String(s) => self.decimal(s),
            Value::Number(n) => self.decimal(&n.to_string()),
            _ => "–".into(),
        }
    }

    /// A ratio as a percent with one decimal: 0.399 → `39.9%` (`39,9%` for `de`).
    /// For reading only: the ratio itself is in the API and the tables' data.
    pub fn percent(&self, v: &Value) -> String {
        v.as_f64().map_or("–".into(), |r| {
            format!("{:.1}%", r * 100.0).replace('.', self.locale.decimal())
        })
    }

    /// An RFC 3339 time in the organisation's zone, as people read it:
    /// `Fri 20 Nov 18:00`.
    pub fn time(&self, v: &Value) -> String {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| {
                t.with_timezone(&self.tz)
                    .format("%a %d %b %H:%M")
                    .to_string()
            })
            .unwrap_or_else(|| "–".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(name: &str) -> Fmt {
        Fmt {
            locale: Locale::from_name(name).unwrap(),
            tz: chrono_tz::UTC,
        }
    }

    #[test]
    fn amounts_take_the_locales_separators_and_keep_every_digit() {
        let cases = [
            ("en", "1234567.50", "1,234,567.50"),
            ("en", "-1234567.05", "-1,234,567.05"),
            ("de", "1234567.50", "1.234.567,50"),
            ("en-IN", "12345678.00", "1,23,45,678.00"),
            ("en", "0.00", "0.00"),
            ("en", "999", "999"),
            ("en", "9223372036854775807", "9,223,372,036,854,775,807"),
            ("en", "n/a", "n/a"),
            ("en", "1.2.3", "1.2.3"),
            ("en", "-", "-"),
        ];
        for (locale, text, want) in cases {
            assert_eq!(fmt(locale).decimal(text), want, "{locale} {text}");
        }
        let fr = fmt("fr").decimal("1234567.50");
        assert!(fr.ends_with(",50") && !fr.contains('.'), "{fr}");
    }

    #[test]
    fn percents_use_the_locales_decimal_mark() {
        assert_eq!(fmt("en").percent(&serde_json::json!(0.399)), "39.9%");
        assert_eq!(fmt("de").percent(&serde_json::json!(0.399)), "39,9%");
        assert_eq!(fmt("de").percent(&Value::Null), "–");
    }
}
