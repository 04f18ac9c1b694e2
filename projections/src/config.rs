//! The organisation's settings the model reads: time zone, reporting currency,
//! fiscal year, the alert rules' settings and how "expected to date" is paced.
//! Arguments, never globals; a leaf that every fold may read.

use chrono_tz::Tz;

use crate::alerts::config::AlertConfig;
use crate::money::Currency;

/// The organisation settings the model needs. An argument, never a global.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgConfig {
    pub timezone: Tz,
    /// The reporting currency: every amount in the state is in its minor units.
    pub currency: Currency,
    /// 1 = January.
    pub fiscal_year_start_month: u32,
    /// The alert rules' thresholds, severities and the focus limit.
    pub alerts: AlertConfig,
    /// How "expected to date" is paced: the learned curve or the straight line.
    pub pace: PaceConfig,
}

/// Which curve "expected to date" follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CurveMode {
    /// Learned from the log's history once there is enough of it; linear before.
    History,
    /// Working days elapsed ÷ working days in the month, always.
    Linear,
}

impl CurveMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "history" => Some(CurveMode::History),
            "linear" => Some(CurveMode::Linear),
            _ => None,
        }
    }
}

/// The pacing settings (`[pace]` in the config file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaceConfig {
    pub curve: CurveMode,
    /// The completed months the curve and the track record learn from.
    pub history_months: u32,
    /// Fewer months with bookings than this: the team's curve falls back to the
    /// organisation's, the organisation's to the straight line.
    pub min_history_months: u32,
}

impl Default for PaceConfig {
    fn default() -> Self {
        PaceConfig {
            curve: CurveMode::History,
            history_months: 12,
            min_history_months: 6,
        }
    }
}
