//! The alert rules' settings: thresholds, severities and switches, with the brief's
//! defaults. The engine reads them from `[alerts.<rule>]` in the config file and
//! passes them in; nothing here reads a file.
//!
//! Every threshold is an exact integer: percentages in hundredths of a percent
//! ([`Percent`]), coverage ratios and rating scores in hundredths (3× = 300,
//! 3.5 of 5 = 350).

use std::fmt;

use crate::event::Percent;

/// How loudly an alert speaks. Ordered: `Info < Warning < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The brief's alert rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    BehindPace,
    ActivityBehind,
    ProductConcentration,
    CustomerMix,
    LowCoverage,
    ReportCardDrop,
    MonthMissed,
}

impl Rule {
    pub const ALL: [Rule; 7] = [
        Rule::BehindPace,
        Rule::ActivityBehind,
        Rule::ProductConcentration,
        Rule::CustomerMix,
        Rule::LowCoverage,
        Rule::ReportCardDrop,
        Rule::MonthMissed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::BehindPace => "behind_pace",
            Rule::ActivityBehind => "activity_behind",
            Rule::ProductConcentration => "product_concentration",
            Rule::CustomerMix => "customer_mix",
            Rule::LowCoverage => "low_coverage",
            Rule::ReportCardDrop => "report_card_drop",
            Rule::MonthMissed => "month_missed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Rule::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The rule's name for people ("Behind pace").
    pub fn label(self) -> &'static str {
        match self {
            Rule::BehindPace => "Behind pace",
            Rule::ActivityBehind => "Activity behind",
            Rule::ProductConcentration => "Product concentration",
            Rule::CustomerMix => "Customer mix",
            Rule::LowCoverage => "Low coverage",
            Rule::ReportCardDrop => "Report card drop",
            Rule::MonthMissed => "Month missed",
        }
    }

    /// Rear-view rules look at a month that is over: they rank after every rule about
    /// a month that can still be saved, whatever their money at stake.
    pub fn is_rear_view(self) -> bool {
        self == Rule::MonthMissed
    }
}

/// A set of rules: the ones an event can change the findings of, so that the fold
/// re-evaluates only those (see [`crate::alerts::rules::rules_moved_by`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Rules(u8);

impl Rules {
    pub const NONE: Rules = Rules(0);
    pub const ALL: Rules = Rules((1 << Rule::ALL.len()) - 1);

    pub const fn of(rules: &[Rule]) -> Rules {
        let mut bits = 0u8;
        let mut i = 0;
        while i < rules.len() {
            bits |= 1 << rules[i] as u8;
            i += 1;
        }
        Rules(bits)
    }

    pub fn contains(self, rule: Rule) -> bool {
        self.0 & (1 << rule as u8) != 0
    }

    pub fn union(self, other: Rules) -> Rules {
        Rules(self.0 | other.0)
    }

    /// These rules less `rule`.
    pub fn without(self, rule: Rule) -> Rules {
        Rules(self.0 & !(1 << rule as u8))
    }

    pub fn intersects(self, other: Rules) -> bool {
        self.0 & other.0 != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `activity_behind`: an activity bucket's actual is below `below_pct` of its
/// expected-to-date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaceRule {
    pub enabled: bool,
    pub severity: Severity,
    pub below_pct: Percent,
    /// Below this the alert is critical; `None`: never.
    pub critical_below_pct: Option<Percent>,
    /// Silent before this many working days of the month have passed: a run rate
    /// of one day says nothing.
    pub min_working_days: u32,
    /// Silent while fewer activities than this were due by today: being behind on a
    /// handful is chance.
    pub min_expected: u32,
    /// The rep's recent rate for the activity, over this many completed months with
    /// a plan line for it, sets where the month is heading.
    pub track_record_months: u32,
}

/// `behind_pace`: a money bucket's month is heading below `below_pct` of plan.
///
/// The month-end figure it judges ("projected") is the larger of the outlook (this
/// month's pace and the rep's track record over their last `track_record_months`
/// months with a plan, weighted by credibility: [`crate::alerts::rules::outlook`])
/// and the pipeline forecast. See [`crate::alerts::rules`] for when a shortfall is
/// material and when the alert is critical.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BehindPace {
    pub enabled: bool,
    pub severity: Severity,
    pub below_pct: Percent,
    /// The month very likely ends below this: critical. `None`: never critical.
    pub critical_below_pct: Option<Percent>,
    /// Silent before this many working days of the month have passed.
    pub min_working_days: u32,
    /// A breakdown bucket (`geo:*`, `product:*`, `account:*`, `new_customer`,
    /// `retention`) raises on its own only when its shortfall is at least this share
    /// of the rep's `total` plan for the month.
    pub min_share_of_total_pct: Percent,
    /// The bookings the rep is expected to have closed by today (their bookings a
    /// month × the expected share, × the bucket's share of the plan for a
    /// breakdown), in hundredths, before a shortfall counts as evidence: a critical
    /// `total`, or a breakdown at all.
    pub min_expected_deals: u32,
    /// How many expected bookings this month's pace needs to count as much as the
    /// rep's track record in the projection (hundredths; see
    /// [`crate::alerts::rules::outlook`]).
    pub credibility_deals: u32,
    /// The rep's track record: their last this-many completed months with a `total`
    /// plan, which give each bucket's recent attainment and the bookings a month.
    pub track_record_months: u32,
}

/// `product_concentration`: one product line holds more than `above_pct` of the rep's
/// open pipeline (face value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductConcentration {
    pub enabled: bool,
    pub severity: Severity,
    pub above_pct: Percent,
    pub critical_above_pct: Option<Percent>,
    /// With fewer open deals a share says nothing (one deal is always 100%).
    pub min_open_deals: u32,
}

/// `customer_mix`: the new-customer share of the open pipeline is outside
/// `target_new_pct ± tolerance_pct`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerMix {
    pub enabled: bool,
    pub severity: Severity,
    pub target_new_pct: Percent,
    pub tolerance_pct: Percent,
    /// Outside target ± this the alert is critical.
    pub critical_tolerance_pct: Option<Percent>,
    pub min_open_deals: u32,
}

/// `low_coverage`: open pipeline expected to close next month is below
/// `min_ratio` × next month's remaining total plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LowCoverage {
    pub enabled: bool,
    pub severity: Severity,
    /// Hundredths: 300 = 3×.
    pub min_ratio: u32,
    pub critical_min_ratio: Option<u32>,
    /// Judged only in the last this-many working days of the month, when next
    /// month's pipeline should stand (it is still being built before).
    pub last_working_days: u32,
}

/// `report_card_drop`: the rep's average customer rating over the last
/// `window_months` months is below `below_score`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportCardDrop {
    pub enabled: bool,
    pub severity: Severity,
    /// Hundredths of a point on the 1–5 scale: 350 = 3.5.
    pub below_score: u32,
    pub critical_below_score: Option<u32>,
    pub window_months: u32,
    pub min_ratings: u32,
}

/// `month_missed`: last month's total closed below `below_pct` of plan. Rear-view:
/// it stands through the following month, at the lowest priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonthMissed {
    pub enabled: bool,
    pub severity: Severity,
    pub below_pct: Percent,
    pub critical_below_pct: Option<Percent>,
    /// It stands for the review of last month: through this many working days of
    /// the new one.
    pub review_working_days: u32,
}

/// Every rule's settings and the focus limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertConfig {
    /// At most this many unresolved alerts per rep are `focus`; the rest are `watch`.
    pub max_focus_per_rep: u32,
    pub behind_pace: BehindPace,
    pub activity_behind: PaceRule,
    pub product_concentration: ProductConcentration,
    pub customer_mix: CustomerMix,
    pub low_coverage: LowCoverage,
    pub report_card_drop: ReportCardDrop,
    pub month_missed: MonthMissed,
}

impl AlertConfig {
    /// Whether the rule is switched on.
    pub fn enabled(&self, rule: Rule) -> bool {
        match rule {
            Rule::BehindPace => self.behind_pace.enabled,
            Rule::ActivityBehind => self.activity_behind.enabled,
            Rule::ProductConcentration => self.product_concentration.enabled,
            Rule::CustomerMix => self.customer_mix.enabled,
            Rule::LowCoverage => self.low_coverage.enabled,
            Rule::ReportCardDrop => self.report_card_drop.enabled,
            Rule::MonthMissed => self.month_missed.enabled,
        }
    }

    /// The severity `rule` raises its alerts at before any escalation.
    pub fn severity(&self, rule: Rule) -> Severity {
        match rule {
            Rule::BehindPace => self.behind_pace.severity,
            Rule::ActivityBehind => self.activity_behind.severity,
            Rule::ProductConcentration => self.product_concentration.severity,
            Rule::CustomerMix => self.customer_mix.severity,
            Rule::LowCoverage => self.low_coverage.severity,
            Rule::ReportCardDrop => self.report_card_drop.severity,
            Rule::MonthMissed => self.month_missed.severity,
        }
    }

    /// Whether `rule` can raise a critical alert with these settings: it has a
    /// critical threshold, or its own severity is critical.
    pub fn can_be_critical(&self, rule: Rule) -> bool {
        let threshold = match rule {
            Rule::BehindPace => self.behind_pace.critical_below_pct.is_some(),
            Rule::ActivityBehind => self.activity_behind.critical_below_pct.is_some(),
            Rule::ProductConcentration => self.product_concentration.critical_above_pct.is_some(),
            Rule::CustomerMix => self.customer_mix.critical_tolerance_pct.is_some(),
            Rule::LowCoverage => self.low_coverage.critical_min_ratio.is_some(),
            Rule::ReportCardDrop => self.report_card_drop.critical_below_score.is_some(),
            Rule::MonthMissed => self.month_missed.critical_below_pct.is_some(),
        };
        threshold || self.severity(rule) == Severity::Critical
    }
}

/// `pct` whole percent as a [`Percent`] (for the defaults).
const fn pct(whole: u16) -> Percent {
    match Percent::from_hundredths(whole * 100) {
        Some(p) => p,
        None => panic!("a default percentage is at most 100"),
    }
}

impl Default for AlertConfig {
    /// The brief's defaults: behind pace under 90% projected, product concentration
    /// over 70%, a 50/50 customer mix, 3× coverage, at most 2 focus items.
    fn default() -> Self {
        AlertConfig {
            max_focus_per_rep: 2,
            behind_pace: BehindPace {
                enabled: true,
                severity: Severity::Warning,
                below_pct: pct(90),
                critical_below_pct: Some(pct(70)),
                min_working_days: 3,
                min_share_of_total_pct: pct(10),
                min_expected_deals: 100,
                credibility_deals: 2000,
                track_record_months: 3,
            },
            activity_behind: PaceRule {
                enabled: true,
                severity: Severity::Warning,
                below_pct: pct(80),
                critical_below_pct: Some(pct(50)),
                min_working_days: 3,
                min_expected: 5,
                track_record_months: 3,
            },
            product_concentration: ProductConcentration {
                enabled: true,
                severity: Severity::Warning,
                above_pct: pct(70),
                critical_above_pct: None,
                min_open_deals: 3,
            },
            customer_mix: CustomerMix {
                enabled: true,
                severity: Severity::Warning,
                target_new_pct: pct(50),
                tolerance_pct: pct(20),
                critical_tolerance_pct: None,
                min_open_deals: 3,
            },
            low_coverage: LowCoverage {
                enabled: true,
                severity: Severity::Warning,
                min_ratio: 300,
                critical_min_ratio: None,
                last_working_days: 10,
            },
            report_card_drop: ReportCardDrop {
                enabled: true,
                severity: Severity::Warning,
                below_score: 350,
                critical_below_score: None,
                window_months: 3,
                min_ratings: 2,
            },
            month_missed: MonthMissed {
                enabled: true,
                severity: Severity::Info,
                below_pct: pct(100),
                critical_below_pct: None,
                review_working_days: 5,
            },
        }
    }
}
