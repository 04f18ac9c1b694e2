//! Plan files: the CSV finance publishes (`rep,month,bucket,target[,unit]`) read into
//! plan lines with every problem reported by row and column, and plan lines written
//! back as the same CSV (so `pacer plan show` output can be edited and published
//! again). The optional `unit` column says what a target counts: the reporting
//! currency's code for money, `count` for activities; when given, it must say so.
//!
//! A file is all or nothing: it becomes a `plan_published` only when every row is
//! valid and, for every rep and month, the brief's bucket invariants hold among the
//! lines it gives (`new_customer + retention == total` when either is planned, the
//! `geo:*` lines sum to `total` when any is planned, the `product:*` lines likewise).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use pacer_projections::bucket::Bucket;
use pacer_projections::event::{PlanLine, PlanPublished};
use pacer_projections::money::{format_decimal, parse_decimal, Currency};
use pacer_projections::time::Month;

/// The CSV header, in order: the first four are required, `unit` may be left out.
pub const PLAN_COLUMNS: [&str; 5] = ["rep", "month", "bucket", "target", "unit"];

/// The `unit` of an activity target.
pub const COUNT_UNIT: &str = "count";

/// One problem of a plan file. `row` is the file's line number (the header is row 1);
/// `None` for a problem of the whole file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanProblem {
    pub row: Option<u64>,
    pub column: Option<&'static str>,
    pub message: String,
}

impl fmt::Display for PlanProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.row, self.column) {
            (Some(r), Some(c)) => write!(f, "row {r}, column {c}: {}", self.message),
            (Some(r), None) => write!(f, "row {r}: {}", self.message),
            (None, Some(c)) => write!(f, "column {c}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

impl PlanProblem {
    /// The problem as a spreadsheet names it (`cell D7 (target): ...`), for a sheet
    /// read by `xlsx::xlsx_to_csv_at` whose first used cell is `origin` (0-based row,
    /// column): CSV row R is sheet row R + the origin's row.
    pub fn in_sheet(&self, origin: (u32, u32)) -> String {
        let row = self.row.map(|r| r + u64::from(origin.0));
        let column = self
            .column
            .and_then(|c| PLAN_COLUMNS.iter().position(|x| *x == c))
            .map(|i| column_letters(i as u32 + origin.1));
        match (row, column, self.column) {
            (Some(r), Some(c), Some(name)) => format!("cell {c}{r} ({name}): {}", self.message),
            (Some(r), _, _) => format!("row {r}: {}", self.message),
            (None, Some(c), Some(name)) => format!("column {c} ({name}): {}", self.message),
            _ => self.message.clone(),
        }
    }
}

/// A spreadsheet's column name of a 0-based index: A … Z, AA, AB …
fn column_letters(index: u32) -> String {
    let mut n = index + 1;
    let mut out = Vec::new();
    while n > 0 {
        n -= 1;
        out.push(b'A' + (n % 26) as u8);
        n /= 26;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII letters")
}

/// What a plan file must agree with.
pub struct PlanRules<'a> {
    pub currency: Currency,
    /// Reps the log has registered.
    pub registered: &'a BTreeSet<String>,
    /// The plan's 24-month horizon starts here.
    pub horizon_start: Month,
    /// The first month the version governs: a line before it would never apply.
    pub effective_from: Month,
    /// The most lines one file may hold (one `plan_published`).
    pub lines_max: usize,
}

/// Reads a plan CSV. Returns the lines, or every problem found (row by row, then the
/// invariants), never just the first.
pub fn read_plan_csv(
    bytes: &[u8],
    rules: &PlanRules<'_>,
) -> Result<Vec<PlanLine>, Vec<PlanProblem>> {
    let mut problems = Vec::new();
    let problem = |row: Option<u64>, column: Option<&'static str>, message: String| PlanProblem {
        row,
        column,
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        // A row with too few or too many fields is reported by its row, below.
        .flexible(true)
        .from_reader(bytes);
    let columns = match reader.headers() {
        Ok(h) if h.iter().eq(PLAN_COLUMNS) => PLAN_COLUMNS.len(),
        Ok(h) if h.iter().eq(PLAN_COLUMNS[..4].iter().copied()) => 4,
        Ok(h) => {
            return Err(vec![problem(
                Some(1),
                None,
                format!(
                    "the header is {:?}; it must be {} (unit optional)",
                    h.iter().collect::<Vec<_>>().join(","),
                    PLAN_COLUMNS.join(",")
                ),
            )])
        }
        Err(e) => return Err(vec![problem(Some(1), None, format!("not CSV: {e}"))]),
    };
    let last = rules.horizon_start.plus(PlanPublished::HORIZON_MONTHS - 1);
    let mut lines: Vec<(u64, PlanLine)> = Vec::new();
    let mut seen: BTreeMap<(String, Month, Bucket), u64> = BTreeMap::new();
    // The file line a record starts on, from its byte offset (blank lines and quoted
    // line breaks count), counting newlines incrementally.
    let (mut counted_to, mut line) = (0usize, 1u64);
    let mut line_at = |byte: u64| -> u64 {
        let mut byte = (byte as usize).min(bytes.len());
        // A record's position may be that of the blank lines skipped before it.
        while byte < bytes.len() && (bytes[byte] == b'\n' || bytes[byte] == b'\r') {
            byte += 1;
        }
        if byte >= counted_to {
            line += bytes[counted_to..byte]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            counted_to = byte;
        }
        line
    };
    for (i, record) in reader.records().enumerate() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let row = e.position().map_or(i as u64 + 2, |p| line_at(p.byte()));
                problems.push(problem(Some(row), None, format!("not a CSV row: {e}")));
                continue;
            }
        };
        let row = record
            .position()
            .map_or(i as u64 + 2, |p| line_at(p.byte()));
        if record.len() != columns {
            problems.push(problem(
                Some(row),
                None,
                format!(
                    "{} fields; a row has {}",
                    record.len(),
                    PLAN_COLUMNS[..columns].join(",")
                ),
            ));
            continue;
        }
        let (rep, month, bucket, target) = (&record[0], &record[1], &record[2], &record[3]);
        let mut ok = true;
        if rep.is_empty() {
            problems.push(problem(Some(row), Some("rep"), "is empty".into()));
            ok = false;
        } else if !rules.registered.contains(rep) {
            problems.push(problem(
                Some(row),
                Some("rep"),
                format!("{rep:?} is not a registered rep (rep_registered first)"),
            ));
            ok = false;
        }
        let month = match Month::parse(month) {
            Ok(m) if m >= rules.horizon_start && m <= last && m < rules.effective_from => {
                problems.push(problem(
                    Some(row),
                    Some("month"),
                    format!(
                        "{m} is before the effective month {}: this version would never apply it (publish from an earlier month, or leave the line out)",
                        rules.effective_from
                    ),
                ));
                None
            }
            Ok(m) if m >= rules.horizon_start && m <= last => Some(m),
            Ok(m) => {
                problems.push(problem(
                    Some(row),
                    Some("month"),
                    format!(
                        "{m} is outside the plan's 24-month horizon {}..{last}",
                        rules.horizon_start
                    ),
                ));
                None
            }
            Err(_) => {
                problems.push(problem(
                    Some(row),
                    Some("month"),
                    format!("{month:?} is not a month YYYY-MM"),
                ));
                None
            }
        };
        let bucket = match Bucket::parse(bucket) {
            Ok(b) => Some(b),
            Err(_) => {
                problems.push(problem(
                    Some(row),
                    Some("bucket"),
                    format!("{bucket:?} is not a bucket (total, new_customer, retention, geo:<region>, product:<line>, account:<customer>, activity:<kind>)"),
                ));
                None
            }
        };
        if let (Some(unit), Some(b)) = (record.get(4), bucket.as_ref()) {
            let want = if b.is_activity() {
                COUNT_UNIT
            } else {
                rules.currency.code()
            };
            if unit != want {
                problems.push(problem(
                    Some(row),
                    Some("unit"),
                    format!(
                        "{unit:?} is not the unit of {} target: it is {want}{}",
                        if b.is_activity() {
                            "an activity"
                        } else {
                            "a money"
                        },
                        if b.is_activity() {
                            String::new()
                        } else {
                            " (plans are in the reporting currency)".to_owned()
                        }
                    ),
                ));
                ok = false;
            }
        }
        let target = bucket.as_ref().and_then(|b| {
            let scale = b.scale(rules.currency);
            match parse_decimal(target, scale) {
                Ok(v) if v >= 0 => Some(v),
                Ok(_) => {
                    problems.push(problem(Some(row), Some("target"), format!("{target:?} is negative")));
                    None
                }
                Err(_) if b.is_activity() => {
                    problems.push(problem(
                        Some(row),
                        Some("target"),
                        format!("{target:?} is not a whole count of activities"),
                    ));
                    None
                }
                Err(_) => {
                    problems.push(problem(
                        Some(row),
                        Some("target"),
                        format!(
                            "{target:?} is not an exact amount in {} (at most {} decimals, no separators)",
                            rules.currency.code(),
                            rules.currency.exponent()
                        ),
                    ));
                    None
                }
            }
        });
        if let (true, Some(month), Some(bucket), Some(target)) = (ok, month, bucket, target) {
            let key = (rep.to_owned(), month, bucket.clone());
            if let Some(first) = seen.get(&key) {
                problems.push(problem(
                    Some(row),
                    None,
                    format!("repeats row {first} ({rep}, {month}, {bucket})"),
                ));
                continue;
            }
            seen.insert(key, row);
            lines.push((
                row,
                PlanLine {
                    rep: rep.to_owned(),
                    month,
                    bucket,
                    target,
                },
            ));
        }
    }
    if lines.is_empty() && problems.is_empty() {
        problems.push(problem(None, None, "the file has no plan lines".into()));
    }
    if lines.len() > rules.lines_max {
        problems.push(problem(
            None,
            None,
            format!(
                "{} lines is over the {} one plan_published may hold; split the file (by team or by month) and publish each as a part of this version (--part NAME)",
                lines.len(),
                rules.lines_max
            ),
        ));
    }
    problems.extend(invariant_problems(&lines, rules.currency));
    if problems.is_empty() {
        Ok(lines.into_iter().map(|(_, l)| l).collect())
    } else {
        Err(problems)
    }
}

/// The sum of some lines of a cell, and their rows.
type Parts = (i64, Vec<u64>);

/// The bucket invariants among the lines of each rep and month.
fn invariant_problems(lines: &[(u64, PlanLine)], currency: Currency) -> Vec<PlanProblem> {
    let mut by_cell: BTreeMap<(&str, Month), Vec<(u64, &PlanLine)>> = BTreeMap::new();
    for (row, l) in lines {
        by_cell
            .entry((&l.rep, l.month))
            .or_default()
            .push((*row, l));
    }
    let money = |v: i64| format_decimal(v, currency.exponent());
    let mut out = Vec::new();
    for ((rep, month), cell) in by_cell {
        let total = cell
            .iter()
            .find(|(_, l)| l.bucket == Bucket::Total)
            .map(|(row, l)| (*row, l.target));
        let sum_of = |f: &dyn Fn(&Bucket) -> bool| -> Option<Parts> {
            let parts: Vec<&(u64, &PlanLine)> = cell.iter().filter(|(_, l)| f(&l.bucket)).collect();
            (!parts.is_empty()).then(|| {
                (
                    parts
                        .iter()
                        .fold(0i64, |a, (_, l)| a.saturating_add(l.target)),
                    parts.iter().map(|(r, _)| *r).collect(),
                )
            })
        };
        let checks: [(&str, Option<Parts>); 3] = [
            (
                "new_customer + retention",
                sum_of(&|b| matches!(b, Bucket::NewCustomer | Bucket::Retention)),
            ),
            ("the geo:* lines", sum_of(&|b| matches!(b, Bucket::Geo(_)))),
            (
                "the product:* lines",
                sum_of(&|b| matches!(b, Bucket::Product(_))),
            ),
        ];
        for (what, sum) in checks {
            let Some((sum, rows)) = sum else { continue };
            let named = format!(
                "{} {}",
                if rows.len() == 1 { "row" } else { "rows" },
                rows.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            match total {
                Some((_, t)) if t == sum => {}
                // The total line is the one the rule holds against: the problem is
                // at its row, and names the part lines.
                Some((total_row, t)) => out.push(PlanProblem {
                    row: Some(total_row),
                    column: Some("target"),
                    message: format!(
                        "{rep}, {month}: total is {} but {what} ({named}) sum to {}",
                        money(t),
                        money(sum)
                    ),
                }),
                None => out.push(PlanProblem {
                    row: rows.first().copied(),
                    column: Some("bucket"),
                    message: format!(
                        "{rep}, {month}: {what} are planned ({named}) but there is no total line"
                    ),
                }),
            }
        }
    }
    out
}

/// What a bucket's target counts: the currency's code, or `count`.
pub fn unit_of(bucket: &Bucket, currency: Currency) -> String {
    if bucket.is_activity() {
        COUNT_UNIT.to_owned()
    } else {
        currency.code().to_owned()
    }
}

/// Plan lines as the CSV `read_plan_csv` reads, sorted by rep, month and bucket.
pub fn write_plan_csv(lines: &[PlanLine], currency: Currency) -> String {
    let mut sorted: Vec<&PlanLine> = lines.iter().collect();
    sorted.sort_by(|a, b| (&a.rep, a.month, &a.bucket).cmp(&(&b.rep, b.month, &b.bucket)));
    let rows = sorted.into_iter().map(|l| {
        let scale = l.bucket.scale(currency);
        [
            l.rep.clone(),
            l.month.to_string(),
            l.bucket.to_string(),
            format_decimal(l.target, scale),
            unit_of(&l.bucket, currency),
        ]
    });
    crate::output::csv_text(&PLAN_COLUMNS, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(registered: &BTreeSet<String>) -> PlanRules<'_> {
        PlanRules {
            currency: Currency::from_code("EUR").unwrap(),
            registered,
            horizon_start: Month::parse("2026-11").unwrap(),
            effective_from: Month::parse("2026-11").unwrap(),
            lines_max: 100_000,
        }
    }

    #[test]
    fn a_line_before_the_effective_month_is_refused_at_its_row() {
        let r = reps();
        let rules = PlanRules {
            effective_from: Month::parse("2027-01").unwrap(),
            ..rules(&r)
        };
        let text = "rep,month,bucket,target\nana,2027-01,total,10\nana,2026-12,total,10\n";
        let problems: Vec<String> = read_plan_csv(text.as_bytes(), &rules)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            ["row 3, column month: 2026-12 is before the effective month 2027-01: this version would never apply it (publish from an earlier month, or leave the line out)"]
        );
    }

    fn reps() -> BTreeSet<String> {
        ["ana", "ben"].into_iter().map(String::from).collect()
    }

    #[test]
    fn a_valid_file_round_trips() {
        let text = "rep,month,bucket,target\n\
                    ana,2026-11,total,1000.50\n\
                    ana,2026-11,new_customer,600\n\
                    ana,2026-11,retention,400.50\n\
                    ana,2026-11,geo:emea,1000.50\n\
                    ana,2026-11,activity:call,40\n\
                    ben,2028-10,total,5\n";
        let r = reps();
        let lines = read_plan_csv(text.as_bytes(), &rules(&r)).unwrap();
        assert_eq!(lines.len(), 6);
        assert_eq!(lines[0].target, 100_050);
        assert_eq!(lines[4].target, 40);
        let again = write_plan_csv(&lines, Currency::from_code("EUR").unwrap());
        assert_eq!(
            read_plan_csv(again.as_bytes(), &rules(&r)).unwrap().len(),
            6
        );
        assert!(
            again.starts_with("rep,month,bucket,target,unit\n"),
            "{again}"
        );
        assert!(
            again.contains("ana,2026-11,activity:call,40,count\n"),
            "{again}"
        );
        assert!(again.contains("ana,2026-11,total,1000.50,EUR\n"), "{again}");
    }

    #[test]
    fn a_unit_column_must_say_the_reporting_currency_or_count() {
        let text = "rep,month,bucket,target,unit\n\
                    ana,2026-11,total,10,EUR\n\
                    ana,2026-11,activity:call,4,count\n\
                    ben,2026-11,total,10,USD\n\
                    ben,2026-11,activity:call,4,EUR\n\
                    ben,2026-12,total,10\n";
        let r = reps();
        let problems: Vec<String> = read_plan_csv(text.as_bytes(), &rules(&r))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            [
                "row 4, column unit: \"USD\" is not the unit of a money target: it is EUR (plans are in the reporting currency)",
                "row 5, column unit: \"EUR\" is not the unit of an activity target: it is count",
                "row 6: 4 fields; a row has rep,month,bucket,target,unit",
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_row_and_column() {
        let text = "rep,month,bucket,target\n\
                    zed,2026-11,total,10\n\
                    ana,2028-11,total,10\n\
                    ana,2026-13,total,10\n\
                    ana,2026-11,region:x,10\n\
                    ana,2026-11,total,\"12,5\"\n\
                    ana,2026-11,activity:call,2.5\n\
                    ana,2026-12,total,-1\n\
                    ben,2026-11,total,100\n\
                    ben,2026-11,total,100\n\
                    ben,2026-11,geo:emea,60\n\
                    ben,2026-11,geo:us,30\n\
                    ben,2026-12,retention,30\n";
        let r = reps();
        let problems: Vec<String> = read_plan_csv(text.as_bytes(), &rules(&r))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            [
                "row 2, column rep: \"zed\" is not a registered rep (rep_registered first)",
                "row 3, column month: 2028-11 is outside the plan's 24-month horizon 2026-11..2028-10",
                "row 4, column month: \"2026-13\" is not a month YYYY-MM",
                "row 5, column bucket: \"region:x\" is not a bucket (total, new_customer, retention, geo:<region>, product:<line>, account:<customer>, activity:<kind>)",
                "row 6, column target: \"12,5\" is not an exact amount in EUR (at most 2 decimals, no separators)",
                "row 7, column target: \"2.5\" is not a whole count of activities",
                "row 8, column target: \"-1\" is negative",
                "row 10: repeats row 9 (ben, 2026-11, total)",
                "row 9, column target: ben, 2026-11: total is 100.00 but the geo:* lines (rows 11, 12) sum to 90.00",
                "row 13, column bucket: ben, 2026-12: new_customer + retention are planned (row 13) but there is no total line",
            ]
        );
    }

    #[test]
    fn row_numbers_are_the_files_lines_even_after_a_blank_line() {
        let r = reps();
        let text = "rep,month,bucket,target\nana,2026-11,total,10\n\nana,2026-11,geo:x,abc\n";
        let e = read_plan_csv(text.as_bytes(), &rules(&r)).unwrap_err();
        assert!(
            e[0].to_string().starts_with("row 4, column target:"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn a_wrong_header_or_an_empty_file_is_refused() {
        let r = reps();
        let e = read_plan_csv(b"rep,month,target\nana,2026-11,1\n", &rules(&r)).unwrap_err();
        assert!(
            e[0].to_string().starts_with("row 1: the header is"),
            "{}",
            e[0]
        );
        let e = read_plan_csv(b"rep,month,bucket,target\n", &rules(&r)).unwrap_err();
        assert_eq!(e[0].to_string(), "the file has no plan lines");
    }
}
