//! The public JSON schema, both ways: [`decode`] turns one JSON event into a typed
//! [`Event`] (never panicking, naming the field and the value when it cannot), and
//! [`encode`] / [`encode_recorded`] turn typed events back into the same JSON.
//!
//! Decoding checks shape and value ranges only; rules that depend on the deployment
//! (the reporting currency) are in [`crate::validate`]. Unknown fields are ignored:
//! CRMs add fields. Amounts are decimal strings or JSON numbers, both parsed exactly
//! (serde_json keeps a number's text with `arbitrary_precision`).

use pacer_projections::bucket::Bucket;
use pacer_projections::error::ParseError;
use pacer_projections::event::*;
use pacer_projections::money::{format_decimal, parse_decimal, Currency, Money};
use pacer_projections::time::{Date, Month, Timestamp};
use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::error::{RejectKind, Rejection};

mod raw;
use raw::{Fields, Kind};

/// Size limits on one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Any event but a plan.
    pub event_bytes_max: usize,
    /// A `plan_published` (up to `plan_lines_max` lines of rep × month × bucket).
    pub plan_bytes_max: usize,
    pub id_bytes_max: usize,
    pub plan_lines_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            event_bytes_max: 64 * 1024,
            plan_bytes_max: 16 * 1024 * 1024,
            id_bytes_max: 256,
            plan_lines_max: 100_000,
        }
    }
}

impl Limits {
    /// The most bytes any event may have (a plan's limit).
    pub fn bytes_max(&self) -> usize {
        self.event_bytes_max.max(self.plan_bytes_max)
    }
}

fn too_large(bytes: usize, limit: usize) -> Rejection {
    Rejection::new(
        RejectKind::TooLarge,
        "event",
        format!("{bytes} bytes is over the limit of {limit} bytes"),
    )
}

/// Decodes one event from its JSON bytes. Events are limited to `event_bytes_max`,
/// plans to `plan_bytes_max`.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Event, Rejection> {
    if bytes.len() > limits.bytes_max() {
        return Err(too_large(bytes.len(), limits.bytes_max()));
    }
    let fields = Fields::parse(bytes).map_err(|e| malformed(&e))?;
    let Some(fields) = fields else {
        // Not an object: say what it is, or why it is not JSON after all.
        return Err(match serde_json::from_slice::<Value>(bytes) {
            Ok(value) => not_an_object(&value),
            Err(e) => malformed(&e),
        });
    };
    // Reading raw values checks every escape but `\u`'s code point: an unpaired
    // surrogate (`"\ud800"`) is not text. Rare enough to check the whole event the
    // slow way when it holds a `\u` at all.
    if bytes.contains(&b'\\') && bytes.windows(2).any(|w| w == b"\\u") {
        if let Err(e) = serde_json::from_slice::<Value>(bytes) {
            return Err(malformed(&e));
        }
    }
    let event = decode_fields(fields, limits)?;
    let limit = match event.body {
        EventBody::PlanPublished(_) => limits.plan_bytes_max,
        _ => limits.event_bytes_max,
    };
    if bytes.len() > limit {
        return Err(too_large(bytes.len(), limit));
    }
    Ok(event)
}

fn malformed(e: &serde_json::Error) -> Rejection {
    Rejection::new(
        RejectKind::MalformedJson,
        "event",
        format!("not valid JSON: {e}"),
    )
}

fn not_an_object(value: &Value) -> Rejection {
    Rejection::new(
        RejectKind::MalformedJson,
        "event",
        format!("expected a JSON object, got {}", describe(value)),
    )
}

/// Decodes one event from a parsed JSON value (no size limit on the whole: the
/// caller read it).
pub fn decode_value(value: &Value, limits: &Limits) -> Result<Event, Rejection> {
    if !value.is_object() {
        return Err(not_an_object(value));
    }
    let text = serde_json::to_vec(value).map_err(|e| malformed(&e))?;
    match Fields::parse(&text).map_err(|e| malformed(&e))? {
        Some(fields) => decode_fields(fields, limits),
        None => Err(not_an_object(value)),
    }
}

/// Decodes one event from the fields of its JSON object.
fn decode_fields(fields: Fields<'_>, limits: &Limits) -> Result<Event, Rejection> {
    let o = Obj {
        fields,
        path: String::new(),
        limits,
    };
    let event_id = o.id("event_id")?;
    let source = o.id("source")?;
    let occurred_at = o.timestamp("occurred_at")?;
    let type_name = o.str("type")?;
    let type_name: &str = &type_name;
    let body = match type_name {
        "rep_registered" => EventBody::RepRegistered(RepRegistered {
            rep: o.id("rep")?,
            name: o.text("name")?,
            team: o.id("team")?,
            manager: o.id("manager")?,
            region: o.opt_id("region")?,
            start_month: o.opt_month("start_month")?,
        }),
        "rep_reassigned" => EventBody::RepReassigned(RepReassigned {
            rep: o.id("rep")?,
            team: o.opt_id("team")?,
            manager: o.opt_id("manager")?,
            region: o.opt_id("region")?,
            effective_month: o.month("effective_month")?,
        }),
        "rep_departed" => EventBody::RepDeparted(RepDeparted {
            rep: o.id("rep")?,
            effective_month: o.month("effective_month")?,
        }),
        "plan_published" => EventBody::PlanPublished(o.plan()?),
        "comp_plan_published" => EventBody::CompPlanPublished(o.comp_plan()?),
        "forecast_submitted" => EventBody::ForecastSubmitted(ForecastSubmitted {
            rep: o.id("rep")?,
            month: o.month("month")?,
            amount: o.non_negative_money("amount", "currency")?,
            category: o.opt_choice(
                "category",
                &[
                    ("commit", ForecastCategory::Commit),
                    ("best_case", ForecastCategory::BestCase),
                ],
            )?,
        }),
        "deal_opened" => EventBody::DealOpened(DealOpened {
            deal: o.id("deal")?,
            rep: o.id("rep")?,
            account: o.id("account")?,
            customer_kind: o.customer_kind()?,
            product: o.opt_id("product")?,
            region: o.opt_id("region")?,
            amount: o.non_negative_money("amount", "currency")?,
            expected_close: o.date("expected_close")?,
            probability: o.opt_percent("probability")?,
        }),
        "deal_stage_changed" => EventBody::DealStageChanged(DealStageChanged {
            deal: o.id("deal")?,
            stage: o.id("stage")?,
            probability: o.opt_percent("probability")?,
            amount: match o.get("amount") {
                None => None,
                Some(_) => Some(o.non_negative_money("amount", "currency")?),
            },
            expected_close: o.opt_date("expected_close")?,
        }),
        "deal_won" => EventBody::DealWon(DealWon {
            deal: o.id("deal")?,
            rep: o.id("rep")?,
            account: o.id("account")?,
            customer_kind: o.customer_kind()?,
            product: o.opt_id("product")?,
            region: o.opt_id("region")?,
            amount: o.non_negative_money("amount", "currency")?,
            closed_on: o.date("closed_on")?,
            splits: o.splits()?,
        }),
        "deal_lost" => EventBody::DealLost(DealLost {
            deal: o.id("deal")?,
            reason: o.opt_text("reason")?,
        }),
        "activity_logged" => EventBody::ActivityLogged(ActivityLogged {
            rep: o.id("rep")?,
            kind: o.id("kind")?,
            account: o.opt_id("account")?,
            deal: o.opt_id("deal")?,
        }),
        "renewed" | "expanded" | "contracted" | "churned" => {
            let kind = RetentionKind::ALL
                .into_iter()
                .find(|k| k.as_str() == type_name)
                .expect("the match arm lists exactly the retention kinds");
            EventBody::Retention(
                kind,
                RetentionChange {
                    rep: o.id("rep")?,
                    account: o.id("account")?,
                    product: o.opt_id("product")?,
                    region: o.opt_id("region")?,
                    amount: o.non_negative_money("amount", "currency")?,
                    effective_on: o.date("effective_on")?,
                },
            )
        }
        "customer_rated" => EventBody::CustomerRated(CustomerRated {
            rep: o.id("rep")?,
            account: o.id("account")?,
            listening: o.score("listening")?,
            trust: o.score("trust")?,
            problem_solving: o.score("problem_solving")?,
            responsiveness: o.score("responsiveness")?,
        }),
        "event_voided" => EventBody::EventVoided(EventVoided {
            voided_event_id: o.id("voided_event_id")?,
            reason: o.opt_text("reason")?,
        }),
        "alert_acknowledged" => EventBody::AlertAcknowledged(AlertAcknowledged {
            alert_id: o.id("alert_id")?,
            by: o.id("by")?,
            note: o.opt_text("note")?,
        }),
        "clock_tick" => EventBody::ClockTick,
        "plan_submitted" => EventBody::PlanSubmitted(PlanSubmitted {
            plan: o.id("plan")?,
            version: o.u32("version")?,
            by: o.id("by")?,
            method: o.opt_text("method")?,
            note: o.opt_text("note")?,
        }),
        "plan_approved" => EventBody::PlanApproved(PlanApproved {
            plan: o.id("plan")?,
            version: o.u32("version")?,
            by: o.id("by")?,
            note: o.opt_text("note")?,
        }),
        "plan_rejected" => EventBody::PlanRejected(PlanRejected {
            plan: o.id("plan")?,
            version: o.u32("version")?,
            by: o.id("by")?,
            reason: o.text("reason")?,
        }),
        "fx_rate_set" => EventBody::FxRateSet(FxRateSet {
            currency: o.currency("currency")?,
            month: o.month("month")?,
            rate: {
                let text = o.decimal_text("rate")?;
                FxRate::parse(&text).map_err(|e| o.invalid("rate", e.to_string()))?
            },
        }),
        other => {
            return Err(Rejection::new(
                RejectKind::UnknownType,
                "type",
                format!(
                    "unknown event type {other:?} (known: {})",
                    EventBody::TYPE_NAMES.join(", ")
                ),
            ))
        }
    };
    Ok(Event {
        event_id,
        source,
        occurred_at,
        body,
    })
}

/// A short description of a JSON value for error messages: its type and, for
/// scalars, the value itself (truncated).
fn describe(v: &Value) -> String {
    let quoted = raw::truncated;
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {}", quoted(n.to_string())),
        Value::String(s) => format!("the string {}", quoted(format!("{s:?}"))),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A JSON object being decoded, with its path for error messages.
struct Obj<'a> {
    fields: Fields<'a>,
    path: String,
    limits: &'a Limits,
}

impl<'a> Obj<'a> {
    fn field(&self, name: &str) -> String {
        format!("{}{name}", self.path)
    }

    fn missing(&self, name: &str) -> Rejection {
        Rejection::new(
            RejectKind::MissingField,
            self.field(name),
            "required field is missing",
        )
    }

    fn wrong(&self, name: &str, expected: &str, got: &RawValue) -> Rejection {
        Rejection::new(
            RejectKind::WrongType,
            self.field(name),
            format!("expected {expected}, got {}", raw::describe(got)),
        )
    }

    fn invalid(&self, name: &str, reason: impl Into<String>) -> Rejection {
        Rejection::new(RejectKind::InvalidValue, self.field(name), reason)
    }

    /// A present, non-null value.
    fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.fields.get(name).filter(|v| raw::kind(v) != Kind::Null)
    }

    fn required(&self, name: &str) -> Result<&'a RawValue, Rejection> {
        match self.fields.get(name) {
            None => Err(self.missing(name)),
            Some(v) if raw::kind(v) == Kind::Null => Err(self.wrong(name, "a value", v)),
            Some(v) => Ok(v),
        }
    }

    fn str(&self, name: &str) -> Result<Cow<'a, str>, Rejection> {
        let v = self.required(name)?;
        raw::string(v).ok_or_else(|| self.wrong(name, "a string", v))
    }

    fn opt_str(&self, name: &str) -> Result<Option<Cow<'a, str>>, Rejection> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => raw::string(v)
                .map(Some)
                .ok_or_else(|| self.wrong(name, "a string", v)),
        }
    }

    fn check_id(&self, name: &str, s: &str) -> Result<String, Rejection> {
        if s.trim().is_empty() {
            return Err(self.invalid(
                name,
                format!("{s:?} is empty; an id needs at least one visible character"),
            ));
        }
        if s.len() > self.limits.id_bytes_max {
            return Err(Rejection::new(
                RejectKind::TooLarge,
                self.field(name),
                format!(
                    "{} bytes is over the limit of {} bytes for an id",
                    s.len(),
                    self.limits.id_bytes_max
                ),
            ));
        }
        if s.trim() != s {
            return Err(self.invalid(
                name,
                format!("{s:?} has leading or trailing spaces; ids are compared exactly"),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(self.invalid(name, format!("{s:?} contains control characters")));
        }
        Ok(s.to_owned())
    }

    /// An identifier: a non-empty string of at most `id_bytes_max` bytes.
    fn id(&self, name: &str) -> Result<String, Rejection> {
        let s = self.str(name)?;
        self.check_id(name, &s)
    }

    fn opt_id(&self, name: &str) -> Result<Option<String>, Rejection> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(s) => self.check_id(name, &s).map(Some),
        }
    }

    /// Free text (a name, a note, a reason): bounded by the event size only.
    fn text(&self, name: &str) -> Result<String, Rejection> {
        self.str(name).map(Cow::into_owned)
    }

    fn opt_text(&self, name: &str) -> Result<Option<String>, Rejection> {
        self.opt_str(name).map(|o| o.map(Cow::into_owned))
    }

    /// A string field parsed into a domain value; the parser's message names the value.
    fn parsed<T>(
        &self,
        name: &str,
        parse: fn(&str) -> Result<T, ParseError>,
    ) -> Result<T, Rejection> {
        let s = self.str(name)?;
        parse(&s).map_err(|e| self.invalid(name, e.to_string()))
    }

    fn opt_parsed<T>(
        &self,
        name: &str,
        parse: fn(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, Rejection> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(s) => parse(&s)
                .map(Some)
                .map_err(|e| self.invalid(name, e.to_string())),
        }
    }

    fn timestamp(&self, name: &str) -> Result<Timestamp, Rejection> {
        self.parsed(name, Timestamp::parse_rfc3339)
    }

    fn date(&self, name: &str) -> Result<Date, Rejection> {
        self.parsed(name, Date::parse)
    }

    fn opt_date(&self, name: &str) -> Result<Option<Date>, Rejection> {
        self.opt_parsed(name, Date::parse)
    }

    fn month(&self, name: &str) -> Result<Month, Rejection> {
        self.parsed(name, Month::parse)
    }

    fn opt_month(&self, name: &str) -> Result<Option<Month>, Rejection> {
        self.opt_parsed(name, Month::parse)
    }

    /// The text of a decimal given as a string or a JSON number.
    fn decimal_text(&self, name: &str) -> Result<String, Rejection> {
        let v = self.required(name)?;
        match raw::kind(v) {
            Kind::String => Ok(raw::string(v).unwrap_or_default().into_owned()),
            Kind::Number => Ok(v.get().to_owned()),
            _ => Err(self.wrong(name, "a decimal string or a number", v)),
        }
    }

    fn currency(&self, name: &str) -> Result<Currency, Rejection> {
        let s = self.str(name)?;
        Currency::from_code(&s).map_err(|e| self.invalid(name, e.to_string()))
    }

    fn money(&self, amount: &str, currency: &str) -> Result<Money, Rejection> {
        let text = self.decimal_text(amount)?;
        let currency = self.currency(currency)?;
        let minor = currency
            .parse_minor(&text)
            .map_err(|e| self.invalid(amount, format!("{e} in {currency}")))?;
        Ok(Money::new(minor, currency))
    }

    fn non_negative_money(&self, amount: &str, currency: &str) -> Result<Money, Rejection> {
        let m = self.money(amount, currency)?;
        if m.minor < 0 {
            return Err(self.invalid(
                amount,
                format!(
                    "{:?} is negative; the event type gives the direction",
                    m.to_decimal_string()
                ),
            ));
        }
        Ok(m)
    }

    fn percent(&self, name: &str) -> Result<Percent, Rejection> {
        let text = self.decimal_text(name)?;
        let hundredths = parse_decimal(&text, 2).map_err(|e| self.invalid(name, e.to_string()))?;
        u16::try_from(hundredths)
            .ok()
            .and_then(Percent::from_hundredths)
            .ok_or_else(|| self.invalid(name, format!("{text} is outside 0–100")))
    }

    fn opt_percent(&self, name: &str) -> Result<Option<Percent>, Rejection> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.percent(name).map(Some),
        }
    }

    fn score(&self, name: &str) -> Result<u8, Rejection> {
        let v = self.required(name)?;
        if raw::kind(v) != Kind::Number {
            return Err(self.wrong(name, "a whole number from 1 to 5", v));
        }
        let n = v.get();
        match n.parse::<u64>().ok() {
            Some(s @ 1..=5) => Ok(s as u8),
            _ => Err(self.invalid(name, format!("{n} is not a whole number from 1 to 5"))),
        }
    }

    fn choice<T: Copy>(&self, name: &str, options: &[(&str, T)]) -> Result<T, Rejection> {
        let s = self.str(name)?;
        self.pick(name, &s, options)
    }

    fn opt_choice<T: Copy>(
        &self,
        name: &str,
        options: &[(&str, T)],
    ) -> Result<Option<T>, Rejection> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(s) => self.pick(name, &s, options).map(Some),
        }
    }

    fn pick<T: Copy>(&self, name: &str, s: &str, options: &[(&str, T)]) -> Result<T, Rejection> {
        options
            .iter()
            .find(|(k, _)| *k == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
                self.invalid(name, format!("{s:?} is not one of {}", names.join(", ")))
            })
    }

    fn customer_kind(&self) -> Result<CustomerKind, Rejection> {
        self.choice(
            "customer_kind",
            &[
                ("new", CustomerKind::New),
                ("existing", CustomerKind::Existing),
            ],
        )
    }

    fn u32(&self, name: &str) -> Result<u32, Rejection> {
        let v = self.required(name)?;
        if raw::kind(v) != Kind::Number {
            return Err(self.wrong(name, "a whole number", v));
        }
        let n = v.get();
        n.parse::<u64>()
            .ok()
            .and_then(|x| u32::try_from(x).ok())
            .ok_or_else(|| {
                self.invalid(
                    name,
                    format!("{n} is not a whole number from 0 to {}", u32::MAX),
                )
            })
    }

    fn array(&self, name: &str) -> Result<Vec<&'a RawValue>, Rejection> {
        let v = self.required(name)?;
        raw::items(v).ok_or_else(|| self.wrong(name, "an array", v))
    }

    /// The object at `items[i]` of an array field.
    fn item(&self, name: &str, i: usize, v: &'a RawValue) -> Result<Obj<'a>, Rejection> {
        let path = format!("{}{name}[{i}].", self.path);
        let fields = Fields::of(v).ok_or_else(|| {
            Rejection::new(
                RejectKind::WrongType,
                format!("{}{name}[{i}]", self.path),
                format!("expected an object, got {}", raw::describe(v)),
            )
        })?;
        Ok(Obj {
            fields,
            path,
            limits: self.limits,
        })
    }

    fn splits(&self) -> Result<Vec<Split>, Rejection> {
        if self.get("splits").is_none() {
            return Ok(Vec::new());
        }
        let items = self.array("splits")?;
        let mut out = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            let s = self.item("splits", i, v)?;
            out.push(Split {
                rep: s.id("rep")?,
                percent: s.percent("percent")?,
            });
        }
        Ok(out)
    }

    /// A percentage with at most two decimals (`"62.5"`), in basis points.
    fn percent_bp(&self, name: &str) -> Result<u32, Rejection> {
        let text = self.decimal_text(name)?;
        let bp = parse_decimal(&text, 2)
            .map_err(|e| self.invalid(name, format!("{e} (a percentage, at most two decimals)")))?;
        u32::try_from(bp)
            .map_err(|_| self.invalid(name, format!("{text:?} is not a percentage from 0 up")))
    }

    fn comp_plan(&self) -> Result<CompPlanPublished, Rejection> {
        let comp_plan = self.id("comp_plan")?;
        let version = self.u32("version")?;
        let effective_from = self.month("effective_from")?;
        let period = self.choice(
            "period",
            &[
                ("month", CompPeriod::Month),
                ("quarter", CompPeriod::Quarter),
            ],
        )?;
        let currency = self.currency("currency")?;
        let mut assignments = Vec::new();
        let items = self.array("assignments")?;
        if items.len() > self.limits.plan_lines_max {
            return Err(self.invalid(
                "assignments",
                format!(
                    "{} is over the limit of {}",
                    items.len(),
                    self.limits.plan_lines_max
                ),
            ));
        }
        for (i, v) in items.iter().enumerate() {
            let a = self.item("assignments", i, v)?;
            let text = a.decimal_text("variable_pay")?;
            let variable_pay = parse_decimal(&text, currency.exponent())
                .map_err(|e| a.invalid("variable_pay", format!("{e} (in {currency})")))?;
            if variable_pay < 0 {
                return Err(a.invalid("variable_pay", format!("{text:?} is negative")));
            }
            assignments.push(CompAssignment {
                rep: a.opt_id("rep")?,
                team: a.opt_id("team")?,
                variable_pay,
            });
        }
        let mut measures = Vec::new();
        let items = self.array("measures")?;
        if items.len() > 32 {
            return Err(self.invalid(
                "measures",
                format!("{} measures is over the limit of 32", items.len()),
            ));
        }
        for (i, v) in items.iter().enumerate() {
            let m = self.item("measures", i, v)?;
            let name = m.str("measure")?;
            let kind = if name == "report_card" {
                let text = m.decimal_text("target_score")?;
                let target_score = parse_decimal(&text, 2)
                    .map_err(|e| m.invalid("target_score", format!("{e} (a score from 1 to 5)")))?;
                CompMeasureKind::ReportCard { target_score }
            } else {
                CompMeasureKind::Bucket(
                    Bucket::parse(&name)
                        .map_err(|e| m.invalid("measure", format!("{e}, or report_card")))?,
                )
            };
            let points = m.array("curve")?;
            if points.len() > 16 {
                return Err(m.invalid("curve", "at most 16 points"));
            }
            let mut curve = Vec::with_capacity(points.len());
            for (j, pv) in points.iter().enumerate() {
                let pt = m.item("curve", j, pv)?;
                curve.push(CurvePoint {
                    attainment_bp: pt.percent_bp("attainment_pct")?,
                    payout_bp: pt.percent_bp("payout_pct")?,
                });
            }
            let accelerator = match m.get("accelerator") {
                None => None,
                Some(_) => {
                    let text = m.decimal_text("accelerator")?;
                    let v = parse_decimal(&text, 2).map_err(|e| {
                        m.invalid("accelerator", format!("{e} (a multiplier such as 1.5)"))
                    })?;
                    Some(u32::try_from(v).map_err(|_| {
                        m.invalid(
                            "accelerator",
                            format!("{text:?} is not a multiplier from 0 up"),
                        )
                    })?)
                }
            };
            let cap_bp = match m.get("cap_pct") {
                None => None,
                Some(_) => Some(m.percent_bp("cap_pct")?),
            };
            let gate = match m.get("gate") {
                None => None,
                Some(gv) => {
                    let path = format!("{}measures[{i}].gate", self.path);
                    let fields = raw::Fields::of(gv).ok_or_else(|| {
                        Rejection::new(
                            RejectKind::WrongType,
                            path.clone(),
                            format!("expected an object, got {}", raw::describe(gv)),
                        )
                    })?;
                    let g = Obj {
                        fields,
                        path: format!("{path}."),
                        limits: self.limits,
                    };
                    let b = g.str("measure")?;
                    Some(CompGate {
                        bucket: Bucket::parse(&b)
                            .map_err(|e| g.invalid("measure", e.to_string()))?,
                        min_bp: g.percent_bp("min_attainment_pct")?,
                    })
                }
            };
            measures.push(CompMeasure {
                kind,
                weight_bp: m.percent_bp("weight_pct")?,
                curve,
                accelerator,
                cap_bp,
                gate,
            });
        }
        Ok(CompPlanPublished {
            comp_plan,
            version,
            effective_from,
            period,
            currency,
            assignments,
            measures,
        })
    }

    fn plan(&self) -> Result<PlanPublished, Rejection> {
        let plan = self.id("plan")?;
        let version = self.u32("version")?;
        let basis = self.choice(
            "basis",
            &[
                ("top_down", PlanBasis::TopDown),
                ("bottom_up", PlanBasis::BottomUp),
                ("revision", PlanBasis::Revision),
            ],
        )?;
        let horizon_start = self.month("horizon_start")?;
        let effective_from = self.month("effective_from")?;
        let currency = self.currency("currency")?;
        let items = self.array("lines")?;
        if items.len() > self.limits.plan_lines_max {
            return Err(Rejection::new(
                RejectKind::TooLarge,
                self.field("lines"),
                format!(
                    "{} lines is over the limit of {} lines (publish the version in parts: several plan_published of the same plan and version)",
                    items.len(),
                    self.limits.plan_lines_max
                ),
            ));
        }
        let mut lines = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            let l = self.item("lines", i, v)?;
            let bucket_text = l.str("bucket")?;
            let bucket =
                Bucket::parse(&bucket_text).map_err(|e| l.invalid("bucket", e.to_string()))?;
            let target_text = l.decimal_text("target")?;
            let scale = bucket.scale(currency);
            let target = parse_decimal(&target_text, scale).map_err(|e| {
                let unit = if bucket.is_activity() {
                    "activities are counted in whole numbers".to_owned()
                } else {
                    format!("in {currency}")
                };
                l.invalid("target", format!("{e} ({unit})"))
            })?;
            if target < 0 {
                return Err(l.invalid(
                    "target",
                    format!("{target_text:?} is negative; a plan target is at least 0"),
                ));
            }
            lines.push(PlanLine {
                rep: l.id("rep")?,
                month: l.month("month")?,
                bucket,
                target,
            });
        }
        Ok(PlanPublished {
            plan,
            version,
            basis,
            horizon_start,
            effective_from,
            currency,
            lines,
        })
    }
}

/// A money amount as the wire writes it: a decimal string with the currency's digits.
fn amount(m: &Money) -> Value {
    Value::String(m.to_decimal_string())
}

fn percent(p: Percent) -> Value {
    serde_json::from_str(&p.to_decimal_string())
        .expect("a percent's decimal string is a JSON number")
}

/// Inserts optional fields only when present, so encode(decode(x)) has no nulls.
fn put_opt(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v);
    }
}

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn opt_s(v: &Option<String>) -> Option<Value> {
    v.as_deref().map(s)
}

/// Encodes an event as the public JSON schema (the inverse of [`decode`]).
pub fn encode(ev: &Event) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("event_id".into(), s(&ev.event_id));
    m.insert("source".into(), s(&ev.source));
    m.insert("occurred_at".into(), s(&ev.occurred_at.to_rfc3339()));
    m.insert("type".into(), s(ev.body.type_name()));
    let fields = match &ev.body {
        EventBody::RepRegistered(e) => {
            let mut f = json!({"rep": e.rep, "name": e.name, "team": e.team, "manager": e.manager});
            let o = f.as_object_mut().expect("object literal");
            put_opt(o, "region", opt_s(&e.region));
            put_opt(o, "start_month", e.start_month.map(|m| s(&m.to_string())));
            f
        }
        EventBody::RepReassigned(e) => {
            let mut f = json!({"rep": e.rep, "effective_month": e.effective_month.to_string()});
            let o = f.as_object_mut().expect("object literal");
            put_opt(o, "team", opt_s(&e.team));
            put_opt(o, "manager", opt_s(&e.manager));
            put_opt(o, "region", opt_s(&e.region));
            f
        }
        EventBody::RepDeparted(e) => {
            json!({"rep": e.rep, "effective_month": e.effective_month.to_string()})
        }
        EventBody::PlanPublished(p) => {
            let lines: Vec<Value> = p
                .lines
                .iter()
                .map(|l| {
                    let scale = l.bucket.scale(p.currency);
                    json!({"rep": l.rep, "month": l.month.to_string(), "bucket": l.bucket.to_string(),
                           "target": format_decimal(l.target, scale)})
                })
                .collect();
            json!({"plan": p.plan, "version": p.version, "basis": p.basis.as_str(),
                   "horizon_start": p.horizon_start.to_string(), "effective_from": p.effective_from.to_string(),
                   "currency": p.currency.code(), "lines": lines})
        }
        EventBody::ForecastSubmitted(e) => {
            let mut f = json!({"rep": e.rep, "month": e.month.to_string(), "amount": amount(&e.amount),
                               "currency": e.amount.currency.code()});
            put_opt(
                f.as_object_mut().expect("object literal"),
                "category",
                e.category.map(|c| s(c.as_str())),
            );
            f
        }
        EventBody::DealOpened(e) => {
            let mut f = json!({"deal": e.deal, "rep": e.rep, "account": e.account,
                               "customer_kind": e.customer_kind.as_str(), "amount": amount(&e.amount),
                               "currency": e.amount.currency.code(), "expected_close": e.expected_close.to_string()});
            let o = f.as_object_mut().expect("object literal");
            put_opt(o, "product", opt_s(&e.product));
            put_opt(o, "region", opt_s(&e.region));
            put_opt(o, "probability", e.probability.map(percent));
            f
        }
        EventBody::DealStageChanged(e) => {
            let mut f = json!({"deal": e.deal, "stage": e.stage});
            let o = f.as_object_mut().expect("object literal");
            put_opt(o, "probability", e.probability.map(percent));
            put_opt(o, "amount", e.amount.as_ref().map(amount));
            put_opt(
                o,
                "currency",
                e.amount.as_ref().map(|a| s(a.currency.code())),
            );
            put_opt(
                o,
                "expected_close",
                e.expected_close.map(|d| s(&d.to_string())),
            );
            f
        }
        EventBody::DealWon(e) => {
            let mut f = json!({"deal": e.deal, "rep": e.rep, "account": e.account,
                               "customer_kind": e.customer_kind.as_str(), "amount": amount(&e.amount),
                               "currency": e.amount.currency.code(), "closed_on": e.closed_on.to_string()});
            let o = f.as_object_mut().expect("object literal");
            put_opt(o, "product", opt_s(&e.product));
            put_opt(o, "region", opt_s(&e.region));
            if !e.splits.is_empty() {
                let splits: Vec<Value> = e
                    .splits
                    .iter()
                    .map(|sp| json!({"rep": sp.rep, "percent": percent(sp.percent)}))
                    .collect();
                o.insert("splits".into(), Value::Array(splits));
            }
            f
        }
        EventBody::DealLost(e) => {
            let mut f = json!({"deal": e.deal});
            put_opt(
                f.as_object_mut().expect("object literal"),
                "reason",
                opt_s(&e.reason),
            );
            f
        }
        EventBody::ActivityLogged(e) => {
            let mut f = json!({"rep": e.rep, "kind": e.kind});
            let o = f.as_object_mut().expect("object literal");
            put_opt(o, "account", opt_s(&e.account));
            put_opt(o, "deal", opt_s(&e.deal));
            f
        }
        EventBody::Retention(_, e) => {
            let mut f = json!({"rep": e.rep, "account": e.account, "amount": amount(&e.amount),
                               "currency": e.amount.currency.code(), "effective_on": e.effective_on.to_string()});
            let o = f.as_object_mut().expect("object literal");
            put_opt(o, "product", opt_s(&e.product));
            put_opt(o, "region", opt_s(&e.region));
            f
        }
        EventBody::CustomerRated(e) => {
            json!({"rep": e.rep, "account": e.account, "listening": e.listening,
            "trust": e.trust, "problem_solving": e.problem_solving, "responsiveness": e.responsiveness})
        }
        EventBody::EventVoided(e) => {
            let mut f = json!({"voided_event_id": e.voided_event_id});
            put_opt(
                f.as_object_mut().expect("object literal"),
                "reason",
                opt_s(&e.reason),
            );
            f
        }
        EventBody::AlertAcknowledged(e) => {
            let mut f = json!({"alert_id": e.alert_id, "by": e.by});
            put_opt(
                f.as_object_mut().expect("object literal"),
                "note",
                opt_s(&e.note),
            );
            f
        }
        EventBody::ClockTick => json!({}),
        EventBody::FxRateSet(e) => {
            json!({"currency": e.currency.code(), "month": e.month.to_string(),
                                          "rate": e.rate.to_decimal_string()})
        }
        EventBody::PlanSubmitted(e) => {
            let mut f = json!({"plan": e.plan, "version": e.version, "by": e.by});
            let o = f.as_object_mut().expect("object literal");
            put_opt(o, "method", opt_s(&e.method));
            put_opt(o, "note", opt_s(&e.note));
            f
        }
        EventBody::PlanApproved(e) => {
            let mut f = json!({"plan": e.plan, "version": e.version, "by": e.by});
            put_opt(
                f.as_object_mut().expect("object literal"),
                "note",
                opt_s(&e.note),
            );
            f
        }
        EventBody::PlanRejected(e) => {
            json!({"plan": e.plan, "version": e.version, "by": e.by, "reason": e.reason})
        }
        EventBody::CompPlanPublished(e) => comp_plan_fields(e),
    };
    if let Value::Object(f) = fields {
        m.extend(f);
    }
    m
}

/// A comp plan's fields as the wire writes them (percentages and money as decimal
/// strings), the inverse of its decoding.
fn comp_plan_fields(e: &CompPlanPublished) -> Value {
    let pct = |bp: u32| Value::String(format_decimal(i64::from(bp), 2));
    let assignments: Vec<Value> = e
        .assignments
        .iter()
        .map(|a| {
            let mut m = Map::new();
            if let Some(r) = &a.rep {
                m.insert("rep".into(), s(r));
            }
            if let Some(t) = &a.team {
                m.insert("team".into(), s(t));
            }
            m.insert(
                "variable_pay".into(),
                s(&format_decimal(a.variable_pay, e.currency.exponent())),
            );
            Value::Object(m)
        })
        .collect();
    let measures: Vec<Value> = e
        .measures
        .iter()
        .map(|m| {
            let mut o = Map::new();
            match &m.kind {
                CompMeasureKind::Bucket(b) => {
                    o.insert("measure".into(), s(&b.to_string()));
                }
                CompMeasureKind::ReportCard { target_score } => {
                    o.insert("measure".into(), s("report_card"));
                    o.insert("target_score".into(), s(&format_decimal(*target_score, 2)));
                }
            }
            o.insert("weight_pct".into(), pct(m.weight_bp));
            o.insert(
                "curve".into(),
                Value::Array(
                    m.curve
                        .iter()
                        .map(|c| json!({"attainment_pct": pct(c.attainment_bp), "payout_pct": pct(c.payout_bp)}))
                        .collect(),
                ),
            );
            if let Some(a) = m.accelerator {
                o.insert("accelerator".into(), s(&format_decimal(i64::from(a), 2)));
            }
            if let Some(c) = m.cap_bp {
                o.insert("cap_pct".into(), pct(c));
            }
            if let Some(g) = &m.gate {
                o.insert(
                    "gate".into(),
                    json!({"measure": g.bucket.to_string(), "min_attainment_pct": pct(g.min_bp)}),
                );
            }
            Value::Object(o)
        })
        .collect();
    json!({
        "comp_plan": e.comp_plan, "version": e.version,
        "effective_from": e.effective_from.to_string(), "period": e.period.as_str(),
        "currency": e.currency.code(), "assignments": assignments, "measures": measures,
    })
}

/// Encodes a stored event: the public schema plus the engine's `seq` and `recorded_at`.
pub fn encode_recorded(rec: &Recorded) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("seq".into(), Value::from(rec.seq));
    m.insert("recorded_at".into(), s(&rec.recorded_at.to_rfc3339()));
    m.extend(encode(&rec.event));
    m
}

#[cfg(test)]
mod tests;
