//! The configuration file (TOML). Every key has a default, an unknown key or a bad
//! value is an error at start-up that names the key, and the parsed [`Config`] is
//! passed down as an argument: nothing reads it from a global.
//!
//! ```toml
//! [org]
//! timezone = "Europe/Berlin"      # IANA name; default "UTC"
//! currency = "EUR"                # reporting currency; default "USD"
//! fiscal_year_start_month = 4     # 1-12; default 1
//! ```

use std::path::Path;

use pacer_projections::money::Currency;
use pacer_projections::state::OrgConfig;
use serde::Deserialize;

use crate::error::ConfigError;
use crate::validate::Rules;
use crate::wire::Limits;

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub org: OrgConfig,
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_raw(RawConfig::default()).expect("the defaults are valid")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    org: RawOrg,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrg {
    #[serde(default = "default_timezone")]
    timezone: String,
    #[serde(default = "default_currency")]
    currency: String,
    #[serde(default = "default_fiscal_start")]
    fiscal_year_start_month: i64,
}

impl Default for RawOrg {
    fn default() -> Self {
        RawOrg {
            timezone: default_timezone(),
            currency: default_currency(),
            fiscal_year_start_month: default_fiscal_start(),
        }
    }
}

fn default_timezone() -> String {
    "UTC".into()
}

fn default_currency() -> String {
    "USD".into()
}

fn default_fiscal_start() -> i64 {
    1
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses config text; the error names the key and the value.
    pub fn parse(text: &str) -> Result<Config, String> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
        Config::from_raw(raw)
    }

    fn from_raw(raw: RawConfig) -> Result<Config, String> {
        let timezone = raw.org.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
            format!(
                "org.timezone: {:?} is not an IANA time zone name",
                raw.org.timezone
            )
        })?;
        let currency =
            Currency::from_code(&raw.org.currency).map_err(|e| format!("org.currency: {e}"))?;
        let fiscal = raw.org.fiscal_year_start_month;
        if !(1..=12).contains(&fiscal) {
            return Err(format!(
                "org.fiscal_year_start_month: {fiscal} is not a month number from 1 to 12"
            ));
        }
        Ok(Config {
            org: OrgConfig {
                timezone,
                currency,
                fiscal_year_start_month: fiscal as u32,
            },
            limits: Limits::default(),
        })
    }

    /// The validation rules this configuration implies.
    pub fn rules(&self) -> Rules {
        Rules {
            currency: self.org.currency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_to_an_empty_file() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.org.timezone, chrono_tz::UTC);
        assert_eq!(c.org.currency.code(), "USD");
        assert_eq!(c.org.fiscal_year_start_month, 1);
    }

    #[test]
    fn reads_the_org_section() {
        let c = Config::parse("[org]\ntimezone = \"Europe/Berlin\"\ncurrency = \"EUR\"\nfiscal_year_start_month = 4\n")
            .unwrap();
        assert_eq!(c.org.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(c.org.currency.code(), "EUR");
        assert_eq!(c.org.fiscal_year_start_month, 4);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = Config::parse("[org]\ntimezon = \"UTC\"\n").unwrap_err();
        assert!(e.contains("timezon"), "{e}");
        let e = Config::parse("[orgs]\n").unwrap_err();
        assert!(e.contains("orgs"), "{e}");
        let e = Config::parse("[org]\ntimezone = \"Mars/Olympus\"\n").unwrap_err();
        assert!(
            e.contains("org.timezone") && e.contains("Mars/Olympus"),
            "{e}"
        );
        let e = Config::parse("[org]\ncurrency = \"EURO\"\n").unwrap_err();
        assert!(e.contains("org.currency") && e.contains("EURO"), "{e}");
        let e = Config::parse("[org]\nfiscal_year_start_month = 13\n").unwrap_err();
        assert!(
            e.contains("fiscal_year_start_month") && e.contains("13"),
            "{e}"
        );
        let e = Config::parse("[org]\nfiscal_year_start_month = \"april\"\n").unwrap_err();
        assert!(e.contains("fiscal_year_start_month"), "{e}");
    }
}
