//! Machine-readable output shared by every front end (the CLI today, NATS queries
//! later), so that the same question gets the same bytes wherever it is asked.
//!
//! Money is a decimal string with the currency's digits, activity counts are integer
//! strings, attainment is a JSON number with four decimals (exact, from integers).

use pacer_projections::money::format_decimal;
use pacer_projections::report::ReportRow;
use serde_json::{Map, Value};

/// The report's field names, in output order.
pub const REPORT_FIELDS: [&str; 12] = [
    "rep",
    "team",
    "month",
    "bucket",
    "plan",
    "actual",
    "variance",
    "attainment",
    "expected_to_date",
    "pace_gap",
    "forecast",
    "currency",
];

/// Decimal places of a report's attainment.
pub const ATTAINMENT_PLACES: u32 = 4;

/// Formats a bucket value: money with the currency's digits, counts as integers.
pub fn amount_text(row: &ReportRow, value: i64) -> String {
    let scale = if row.is_activity() {
        0
    } else {
        row.currency.exponent()
    };
    format_decimal(value, scale)
}

/// The row's fields as text (`None` for null), in [`REPORT_FIELDS`] order.
pub fn report_cells(row: &ReportRow) -> [Option<String>; 12] {
    let amount = |v: i64| Some(amount_text(row, v));
    [
        Some(row.rep.clone()),
        Some(row.team.clone()),
        Some(row.month.to_string()),
        Some(row.bucket.to_string()),
        amount(row.plan),
        amount(row.actual),
        amount(row.variance()),
        row.attainment()
            .map(|a| a.to_decimal_string(ATTAINMENT_PLACES)),
        row.expected_to_date.and_then(amount),
        row.pace_gap().and_then(amount),
        row.forecast.and_then(amount),
        Some(row.currency.code().to_owned()),
    ]
}

/// The report as a JSON array of row objects.
pub fn report_json(rows: &[ReportRow]) -> Value {
    let list = rows
        .iter()
        .map(|row| {
            let mut m = Map::new();
            for (name, cell) in REPORT_FIELDS.iter().zip(report_cells(row)) {
                let v = match (name, cell) {
                    (_, None) => Value::Null,
                    (&"attainment", Some(text)) => {
                        // As a JSON number, without trailing zeros (0.1250 → 0.125, 1.0000 → 1).
                        let trimmed = if text.contains('.') {
                            text.trim_end_matches('0').trim_end_matches('.')
                        } else {
                            &text
                        };
                        serde_json::from_str(trimmed).expect("a decimal string is a JSON number")
                    }
                    (_, Some(text)) => Value::String(text),
                };
                m.insert((*name).to_owned(), v);
            }
            Value::Object(m)
        })
        .collect();
    Value::Array(list)
}

/// The report as CSV with a header row; nulls are empty cells.
pub fn report_csv(rows: &[ReportRow]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(REPORT_FIELDS)
        .expect("writing to memory cannot fail");
    for row in rows {
        let cells = report_cells(row);
        w.write_record(cells.iter().map(|c| c.as_deref().unwrap_or("")))
            .expect("writing to memory cannot fail");
    }
    String::from_utf8(w.into_inner().expect("writing to memory cannot fail"))
        .expect("CSV of UTF-8 cells is UTF-8")
}
