//! Spreadsheets for finance: the report as a workbook (a sheet per month), plans as a
//! workbook (`rep, month, bucket, target`, the CSV's columns), and a plan workbook
//! read back into that CSV so that one validator checks both.
//!
//! Pacer's figures are exact integers; a spreadsheet cell is a binary float. The
//! conversion happens here and only here, from the exact decimal text, so a cell
//! holds the nearest double to the exact amount and displays it exactly (amounts up
//! to 15 significant digits). Reading back goes through the shortest decimal text of
//! each cell, so a value a person typed, or one this module wrote, reads back exactly;
//! a cell that holds more digits than the currency has is rejected by the validator,
//! never rounded.

use calamine::{open_workbook_from_rs, Data, Reader, Xlsx};
use pacer_projections::event::PlanLine;
use pacer_projections::money::{format_decimal, Currency};
use pacer_projections::report::ReportRow;
use pacer_projections::time::Month;
use rust_xlsxwriter::{Format, Workbook, Worksheet};
use thiserror::Error;

use crate::output::{report_cells, REPORT_FIELDS};
use crate::plan_file::PLAN_COLUMNS;

/// A workbook that could not be written or read.
#[derive(Debug, Error)]
#[error("{doing}: {reason}")]
pub struct SheetError {
    pub doing: &'static str,
    pub reason: String,
}

fn writing(e: rust_xlsxwriter::XlsxError) -> SheetError {
    SheetError {
        doing: "writing the workbook",
        reason: e.to_string(),
    }
}

/// The exact decimal text as a spreadsheet number.
fn number(text: &str) -> f64 {
    text.parse()
        .expect("format_decimal writes a plain decimal, which parses as f64")
}

/// The number format for `digits` decimals: `#,##0.00`.
fn money_format(digits: u32) -> Format {
    let pattern = if digits == 0 {
        "#,##0".to_owned()
    } else {
        format!("#,##0.{}", "0".repeat(digits as usize))
    };
    Format::new().set_num_format(pattern)
}

fn header(sheet: &mut Worksheet, names: &[&str]) -> Result<(), SheetError> {
    let bold = Format::new().set_bold();
    for (c, name) in names.iter().enumerate() {
        sheet
            .write_string_with_format(0, c as u16, *name, &bold)
            .map_err(writing)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(writing)?;
    Ok(())
}

/// The report as a workbook: one sheet per month (named `2026-11`), a row per rep and
/// bucket with plan, actual, variance, attainment, expected-to-date, pace gap and
/// forecast; money formatted with the currency's digits, activities as counts,
/// attainment as a percentage.
pub fn report_xlsx(
    months: &[(Month, Vec<ReportRow<'_>>)],
    currency: Currency,
) -> Result<Vec<u8>, SheetError> {
    // The report's own fields and figures (`output::report_cells`), less the month
    // (the sheet's name) and the currency (the number format).
    let columns: Vec<(usize, &str)> = REPORT_FIELDS
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, f)| *f != "month" && *f != "currency")
        .collect();
    let names: Vec<&str> = columns.iter().map(|(_, f)| *f).collect();
    let mut book = Workbook::new();
    let money = money_format(currency.exponent());
    let count = money_format(0);
    let percent = Format::new().set_num_format("0.0%");
    for (month, rows) in months {
        let sheet = book.add_worksheet();
        sheet.set_name(month.to_string()).map_err(writing)?;
        header(sheet, &names)?;
        for c in 2..names.len() as u16 {
            sheet.set_column_width(c, 16).map_err(writing)?;
        }
        for (i, r) in rows.iter().enumerate() {
            let row = i as u32 + 1;
            let cells = report_cells(r);
            let amount_format = if r.is_activity() { &count } else { &money };
            for (col, (field, name)) in columns.iter().enumerate() {
                let Some(text) = &cells[*field] else { continue };
                let col = col as u16;
                match *name {
                    "rep" | "team" | "bucket" | "pace_curve" => sheet.write_string(row, col, text),
                    "attainment" => {
                        sheet.write_number_with_format(row, col, number(text), &percent)
                    }
                    _ => sheet.write_number_with_format(row, col, number(text), amount_format),
                }
                .map_err(writing)?;
            }
        }
    }
    if months.is_empty() {
        let sheet = book.add_worksheet();
        header(sheet, &names)?;
    }
    book.save_to_buffer().map_err(writing)
}

/// Plan lines as a workbook with the CSV's columns, one sheet named `plan`.
pub fn plan_xlsx(lines: &[PlanLine], currency: Currency) -> Result<Vec<u8>, SheetError> {
    let mut book = Workbook::new();
    let money = money_format(currency.exponent());
    let count = money_format(0);
    let sheet = book.add_worksheet();
    sheet.set_name("plan").map_err(writing)?;
    header(sheet, &PLAN_COLUMNS)?;
    sheet.set_column_width(2, 24).map_err(writing)?;
    sheet.set_column_width(3, 16).map_err(writing)?;
    for (i, l) in lines.iter().enumerate() {
        let row = i as u32 + 1;
        let scale = l.bucket.scale(currency);
        let format = if l.bucket.is_activity() {
            &count
        } else {
            &money
        };
        sheet.write_string(row, 0, &l.rep).map_err(writing)?;
        sheet
            .write_string(row, 1, l.month.to_string())
            .map_err(writing)?;
        sheet
            .write_string(row, 2, l.bucket.to_string())
            .map_err(writing)?;
        sheet
            .write_number_with_format(row, 3, number(&format_decimal(l.target, scale)), format)
            .map_err(writing)?;
        sheet
            .write_string(row, 4, crate::plan_file::unit_of(&l.bucket, currency))
            .map_err(writing)?;
    }
    book.save_to_buffer().map_err(writing)
}

/// A table of text as a workbook of one sheet: its `money` columns as numbers (from
/// their exact decimal text, shown with as many decimals as the text has), the rest as
/// text. What the web app offers as the download of what is on screen.
pub fn table_xlsx(table: &crate::plans::Table, sheet_name: &str) -> Result<Vec<u8>, SheetError> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(sheet_name).map_err(writing)?;
    let names: Vec<&str> = table.header.iter().map(String::as_str).collect();
    header(sheet, &names)?;
    for (i, row) in table.rows.iter().enumerate() {
        let r = i as u32 + 1;
        for (c, text) in row.iter().enumerate() {
            let parses = text.parse::<f64>().is_ok();
            if table.money.contains(&c) && parses {
                let digits = text.split_once('.').map_or(0, |(_, f)| f.len() as u32);
                sheet
                    .write_number_with_format(r, c as u16, number(text), &money_format(digits))
                    .map_err(writing)?;
            } else {
                sheet.write_string(r, c as u16, text).map_err(writing)?;
            }
        }
    }
    for c in 0..names.len() {
        sheet.set_column_width(c as u16, 16).map_err(writing)?;
    }
    book.save_to_buffer().map_err(writing)
}

/// The first sheet of a workbook as CSV text, row for row from its first used cell.
/// Numbers become their shortest exact decimal text.
pub fn xlsx_to_csv(bytes: &[u8]) -> Result<String, SheetError> {
    xlsx_to_csv_at(bytes).map(|(csv, _)| csv)
}

/// [`xlsx_to_csv`], and where the sheet's first used cell is (row, column; 0-based),
/// so that row R of the CSV is the sheet's row R + row and an error can name the
/// cell as the spreadsheet does (`PlanProblem::in_sheet`).
pub fn xlsx_to_csv_at(bytes: &[u8]) -> Result<(String, (u32, u32)), SheetError> {
    let reading = |e: &dyn std::fmt::Display| SheetError {
        doing: "reading the workbook",
        reason: e.to_string(),
    };
    let mut book: Xlsx<_> =
        open_workbook_from_rs(std::io::Cursor::new(bytes)).map_err(|e| reading(&e))?;
    let range = match book.worksheet_range_at(0) {
        Some(r) => r.map_err(|e| reading(&e))?,
        None => return Err(reading(&"the workbook has no sheet")),
    };
    let origin = range.start().unwrap_or((0, 0));
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in range.rows() {
        let cells: Vec<String> = row
            .iter()
            .map(|c| match c {
                Data::Empty => String::new(),
                Data::String(s) => s.clone(),
                Data::Int(i) => i.to_string(),
                Data::Float(f) => format!("{f}"),
                Data::Bool(b) => b.to_string(),
                Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
                Data::DateTime(d) => d.to_string(),
                Data::Error(e) => format!("#{e:?}"),
            })
            .collect();
        w.write_record(&cells).map_err(|e| reading(&e))?;
    }
    let bytes = w.into_inner().map_err(|e| reading(&e))?;
    let csv = String::from_utf8(bytes).map_err(|e| reading(&e))?;
    Ok((csv, origin))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pacer_projections::bucket::Bucket;

    /// A sheet whose table starts at C3 reads from there, and its errors name the
    /// cell where the spreadsheet shows it.
    #[test]
    fn a_table_away_from_a1_keeps_its_cells_names() {
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        for (c, name) in crate::plan_file::PLAN_COLUMNS[..4].iter().enumerate() {
            sheet.write_string(2, 2 + c as u16, *name).unwrap();
        }
        for (c, v) in ["ana", "2026-11", "total", "12.345"].iter().enumerate() {
            sheet.write_string(3, 2 + c as u16, *v).unwrap();
        }
        let bytes = book.save_to_buffer().unwrap();
        let (csv, origin) = xlsx_to_csv_at(&bytes).unwrap();
        assert_eq!(origin, (2, 2));
        assert!(csv.starts_with("rep,month,bucket,target\n"), "{csv}");
        let problem = crate::plan_file::PlanProblem {
            row: Some(2),
            column: Some("target"),
            message: "\"12.345\" has more decimals than EUR".into(),
        };
        assert_eq!(
            problem.in_sheet(origin),
            "cell F4 (target): \"12.345\" has more decimals than EUR"
        );
    }

    #[test]
    fn a_plan_workbook_reads_back_as_its_csv() {
        let eur = Currency::from_code("EUR").unwrap();
        let m = Month::parse("2026-11").unwrap();
        let line = |bucket: &str, target: i64| PlanLine {
            rep: "ana".into(),
            month: m,
            bucket: Bucket::parse(bucket).unwrap(),
            target,
        };
        let lines = vec![
            line("activity:call", 40),
            line("total", 100_050),
            line("new_customer", 99_999_999_999_999),
            line("retention", 1),
        ];
        let book = plan_xlsx(&lines, eur).unwrap();
        let csv = xlsx_to_csv(&book).unwrap();
        assert_eq!(
            csv,
            "rep,month,bucket,target,unit\n\
             ana,2026-11,activity:call,40,count\n\
             ana,2026-11,total,1000.5,EUR\n\
             ana,2026-11,new_customer,999999999999.99,EUR\n\
             ana,2026-11,retention,0.01,EUR\n"
        );
    }
}
