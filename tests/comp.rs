//! Incentive plans end to end, through the real binary: a comp plan file published
//! (and refused, row and column named), then each rep's pay for a closed month
//! (earned) and the current one (projected at today's pace and at the pipeline
//! forecast), every figure computed by hand in the comments, to the cent. Split
//! credit and FX flow through; a void takes back exactly its effect on pay.

mod common;

use common::*;
use serde_json::Value;

/// EUR, UTC, pace on a straight line (expected-to-date = plan × working days so far
/// ÷ working days in the month), so that the projection is computable by hand.
const CONFIG: &str = "[org]\ncurrency = \"EUR\"\n\n[pace]\ncurve = \"linear\"\n";

/// ana, ben and cy in north (cy has a plan for December only). Every deal is opened
/// before it is won (as CRMs tell it); none is open at the tick.
///
/// November (closed by the tick of 10 December):
/// - ana: plan total 100 000.00, new 40 000.00, retention 60 000.00;
///   won d1 20 000.00 (new); won d2 10 000.00 USD × 0.9 = 9 000.00 (new), split 60/40
///   with ben: ana 5 400.00, ben 3 600.00; renewed 57 000.00.
///   → new 25 400.00, retention 57 000.00, total 82 400.00. Rated 4,4,3,4 → 3.75.
/// - ben: plan total 10 000.00, new 5 000.00, retention 5 000.00; new 3 600.00 (the
///   split), total 3 600.00; no ratings.
///
/// December (open: 8 of 23 working days by Thursday 10 December):
/// - ana: plan total 80 000.00, new 40 000.00, retention 40 000.00; won d3 20 000.00
///   (new), renewed 16 000.00 → total 36 000.00. Rated 5,5,5,4 → 4.75.
/// - cy: plan total 10 000.00, new 5 000.00, retention 5 000.00; won d5 4 000.00 (new),
///   renewed 200.00 → total 4 200.00.
const EVENTS: &str = r#"{"event_id":"r-ana","source":"hris","occurred_at":"2026-10-01T08:00:00Z","type":"rep_registered","rep":"ana","name":"Ana Silva","team":"north","manager":"maria","region":"emea"}
{"event_id":"r-ben","source":"hris","occurred_at":"2026-10-01T08:00:00Z","type":"rep_registered","rep":"ben","name":"Ben Ito","team":"north","manager":"maria","region":"emea"}
{"event_id":"r-cy","source":"hris","occurred_at":"2026-10-01T08:00:00Z","type":"rep_registered","rep":"cy","name":"Cy Park","team":"north","manager":"maria","region":"emea"}
{"event_id":"plan-1","source":"finance","occurred_at":"2026-10-20T08:00:00Z","type":"plan_published","plan":"fy27","version":1,"basis":"top_down","horizon_start":"2026-11","effective_from":"2026-11","currency":"EUR","lines":[{"rep":"ana","month":"2026-11","bucket":"total","target":"100000"},{"rep":"ana","month":"2026-11","bucket":"new_customer","target":"40000"},{"rep":"ana","month":"2026-11","bucket":"retention","target":"60000"},{"rep":"ana","month":"2026-12","bucket":"total","target":"80000"},{"rep":"ana","month":"2026-12","bucket":"new_customer","target":"40000"},{"rep":"ana","month":"2026-12","bucket":"retention","target":"40000"},{"rep":"ben","month":"2026-11","bucket":"total","target":"10000"},{"rep":"ben","month":"2026-11","bucket":"new_customer","target":"5000"},{"rep":"ben","month":"2026-11","bucket":"retention","target":"5000"},{"rep":"cy","month":"2026-12","bucket":"total","target":"10000"},{"rep":"cy","month":"2026-12","bucket":"new_customer","target":"5000"},{"rep":"cy","month":"2026-12","bucket":"retention","target":"5000"}]}
{"event_id":"fx-usd-11","source":"finance","occurred_at":"2026-11-01T08:00:00Z","type":"fx_rate_set","currency":"USD","month":"2026-11","rate":"0.9"}
{"event_id":"o1","source":"crm","occurred_at":"2026-11-02T10:00:00Z","type":"deal_opened","rep":"ana","deal":"d1","account":"acme","customer_kind":"new","amount":"20000.00","currency":"EUR","expected_close":"2026-11-05","probability":50}
{"event_id":"o2","source":"crm","occurred_at":"2026-11-02T11:00:00Z","type":"deal_opened","rep":"ana","deal":"d2","account":"zeta","customer_kind":"new","amount":"10000.00","currency":"USD","expected_close":"2026-11-10","probability":50}
{"event_id":"o3","source":"crm","occurred_at":"2026-12-01T10:00:00Z","type":"deal_opened","rep":"ana","deal":"d3","account":"gamma","customer_kind":"new","amount":"20000.00","currency":"EUR","expected_close":"2026-12-03","probability":50}
{"event_id":"o5","source":"crm","occurred_at":"2026-12-01T11:00:00Z","type":"deal_opened","rep":"cy","deal":"d5","account":"delta","customer_kind":"new","amount":"4000.00","currency":"EUR","expected_close":"2026-12-04","probability":50}
{"event_id":"w1","source":"crm","occurred_at":"2026-11-05T10:00:00Z","type":"deal_won","rep":"ana","deal":"d1","account":"acme","customer_kind":"new","amount":"20000.00","currency":"EUR","closed_on":"2026-11-05"}
{"event_id":"w2","source":"crm","occurred_at":"2026-11-10T10:00:00Z","type":"deal_won","rep":"ana","deal":"d2","account":"zeta","customer_kind":"new","amount":"10000.00","currency":"USD","closed_on":"2026-11-10","splits":[{"rep":"ana","percent":"60"},{"rep":"ben","percent":"40"}]}
{"event_id":"n1","source":"crm","occurred_at":"2026-11-12T10:00:00Z","type":"renewed","rep":"ana","account":"beta","amount":"57000.00","currency":"EUR","effective_on":"2026-11-12"}
{"event_id":"q1","source":"survey","occurred_at":"2026-11-20T10:00:00Z","type":"customer_rated","rep":"ana","account":"acme","listening":4,"trust":4,"problem_solving":3,"responsiveness":4}
{"event_id":"w3","source":"crm","occurred_at":"2026-12-03T10:00:00Z","type":"deal_won","rep":"ana","deal":"d3","account":"gamma","customer_kind":"new","amount":"20000.00","currency":"EUR","closed_on":"2026-12-03"}
{"event_id":"n2","source":"crm","occurred_at":"2026-12-07T10:00:00Z","type":"renewed","rep":"ana","account":"beta","amount":"16000.00","currency":"EUR","effective_on":"2026-12-07"}
{"event_id":"q2","source":"survey","occurred_at":"2026-12-08T10:00:00Z","type":"customer_rated","rep":"ana","account":"gamma","listening":5,"trust":5,"problem_solving":5,"responsiveness":4}
{"event_id":"w5","source":"crm","occurred_at":"2026-12-04T10:00:00Z","type":"deal_won","rep":"cy","deal":"d5","account":"delta","customer_kind":"new","amount":"4000.00","currency":"EUR","closed_on":"2026-12-04"}
{"event_id":"n5","source":"crm","occurred_at":"2026-12-04T11:00:00Z","type":"renewed","rep":"cy","account":"eta","amount":"200.00","currency":"EUR","effective_on":"2026-12-04"}
{"event_id":"t1","source":"pacer","occurred_at":"2026-12-10T12:00:00Z","type":"clock_tick"}
"#;

/// ana 6 000.00 of her own; the rest of north 3 000.00 each. Three measures:
/// total (50%: 50 → 0, 100 → 100, ×2 above, capped at 150, no accelerator unless
/// retention ≥ 90%), new customers (30%: 60 → 0, 100 → 100, ×1.5 above, cap 200), the
/// report card (20%: target 4.00; 80 → 0, 100 → 100, cap 100).
const COMP: &str =
    "kind,name,variable_pay,measure,weight_pct,curve,accelerator,cap_pct,gate,target_score
pay,team:north,3000.00,,,,,,,
pay,rep:ana,6000.00,,,,,,,
measure,,,total,50,50:0 100:100,2,150,retention>=90,
measure,,,new_customer,30,60:0 100:100,1.5,200,,
measure,,,report_card,20,80:0 100:100,,100,,4.00
";

fn org() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, data) = temp_org(CONFIG);
    let cfg = tmp.path().join("pacer.toml");
    std::fs::write(tmp.path().join("events.jsonl"), EVENTS).unwrap();
    std::fs::write(tmp.path().join("comp.csv"), COMP).unwrap();
    let c = cfg.to_str().unwrap();
    ok(pacer(&data)
        .args(["--config", c, "ingest"])
        .arg(tmp.path().join("events.jsonl"))
        .output()
        .unwrap());
    ok(pacer(&data)
        .args(["--config", c, "comp", "publish"])
        .arg(tmp.path().join("comp.csv"))
        .args([
            "--comp-plan",
            "fy27-comp",
            "--version",
            "1",
            "--effective-from",
            "2026-11",
        ])
        .output()
        .unwrap());
    (tmp, data)
}

fn statements(tmp: &tempfile::TempDir, data: &std::path::Path, args: &[&str]) -> Vec<Value> {
    let cfg = tmp.path().join("pacer.toml");
    let out = ok(pacer(data)
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "comp",
            "report",
            "--format",
            "json",
        ])
        .args(args)
        .output()
        .unwrap());
    let v: Value = serde_json::from_str(&out).unwrap();
    v["statements"].as_array().unwrap().clone()
}

/// (measure, attainment %, payout %, pay) of one payout.
fn lines(p: &Value) -> Vec<(String, String, String, String)> {
    p["measures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let t = |k: &str| m[k].as_str().unwrap_or("–").to_owned();
            (t("measure"), t("attainment_pct"), t("payout_pct"), t("pay"))
        })
        .collect()
}

fn l(m: &str, a: &str, p: &str, pay: &str) -> (String, String, String, String) {
    (m.into(), a.into(), p.into(), pay.into())
}

#[test]
fn earned_and_projected_pay_are_the_hand_computed_figures() {
    let (tmp, data) = org();

    // November, closed: earned.
    let nov = statements(&tmp, &data, &["--period", "2026-11", "--team", "north"]);
    let ana = nov.iter().find(|s| s["rep"] == "ana").unwrap();
    assert_eq!(ana["status"], "closed");
    assert_eq!(
        ana["variable_pay"], "6000.00",
        "her own line wins over the team's"
    );
    assert_eq!(ana["payouts"].as_array().unwrap().len(), 1);
    assert_eq!(ana["payouts"][0]["basis"], "earned");
    // total 82 400 / 100 000 = 82.40% → (82.40 − 50) × 2 = 64.80% → 6 000 × 50% × 64.80% = 1 944.00
    // new 25 400 / 40 000 = 63.50% → (63.50 − 60) ÷ 40 × 100 = 8.75% → 6 000 × 30% × 8.75% = 157.50
    // report card 3.75 / 4.00 = 93.75% → (93.75 − 80) ÷ 20 × 100 = 68.75% → 6 000 × 20% × 68.75% = 825.00
    assert_eq!(
        lines(&ana["payouts"][0]),
        [
            l("total", "82.40", "64.80", "1944.00"),
            l("new_customer", "63.50", "8.75", "157.50"),
            l("report_card", "93.75", "68.75", "825.00"),
        ]
    );
    assert_eq!(ana["payouts"][0]["total"], "2926.50");
    // ben, through the team's line (3 000.00), with his 40% of the USD deal:
    // total 3 600 / 10 000 = 36% → below the threshold: 0
    // new 3 600 / 5 000 = 72% → (72 − 60) ÷ 40 × 100 = 30% → 3 000 × 30% × 30% = 270.00
    // report card: no ratings, no attainment: 0
    let ben = nov.iter().find(|s| s["rep"] == "ben").unwrap();
    assert_eq!(ben["variable_pay"], "3000.00");
    assert_eq!(
        lines(&ben["payouts"][0]),
        [
            l("total", "36.00", "0.00", "0.00"),
            l("new_customer", "72.00", "30.00", "270.00"),
            l("report_card", "–", "0.00", "0.00"),
        ]
    );
    assert_eq!(ben["payouts"][0]["total"], "270.00");

    // December, open: projected. At today's pace the month ends at actual × 23 ÷ 8.
    let dec = statements(&tmp, &data, &["--period", "2026-12", "--rep", "ana"]);
    let ana = &dec[0];
    assert_eq!(ana["status"], "open");
    assert_eq!(ana["payouts"][0]["basis"], "projected_at_pace");
    // total 36 000 × 23 ÷ 8 = 103 500 → 129.375%; retention 16 000 × 23 ÷ 8 = 46 000 of
    //   40 000 = 115% ≥ 90%: the gate is open → 100 + 29.375 × 2 = 158.75% → cap 150%
    //   → 6 000 × 50% × 150% = 4 500.00
    // new 20 000 × 23 ÷ 8 = 57 500 → 143.75% → 100 + 43.75 × 1.5 = 165.625% →
    //   6 000 × 30% × 165.625% = 2 981.25
    // report card: 3.75 (Nov) is not December's; 4.75 / 4.00 = 118.75% → cap 100% → 1 200.00
    assert_eq!(
        lines(&ana["payouts"][0]),
        [
            l("total", "129.38", "150.00", "4500.00"),
            l("new_customer", "143.75", "165.63", "2981.25"),
            l("report_card", "118.75", "100.00", "1200.00"),
        ]
    );
    assert_eq!(ana["payouts"][0]["total"], "8681.25");
    // At the pipeline forecast (no open deals: the actuals): total 36 000 / 80 000 =
    // 45% → 0; new 20 000 / 40 000 = 50% → 0; the report card as above.
    assert_eq!(ana["payouts"][1]["basis"], "projected_at_forecast");
    assert_eq!(
        lines(&ana["payouts"][1]),
        [
            l("total", "45.00", "0.00", "0.00"),
            l("new_customer", "50.00", "0.00", "0.00"),
            l("report_card", "118.75", "100.00", "1200.00"),
        ]
    );
    assert_eq!(ana["payouts"][1]["total"], "1200.00");
    // What moves the needle: her median won new-customer deal is 20 000.00 (d1
    // 20 000.00, d2 9 000.00, d3 20 000.00). One more this month: new 57 500 + 20 000
    // = 77 500 → 193.75% → 240.625% → cap 200% → 3 600.00, 618.75 more; total is at
    // its cap already.
    assert_eq!(ana["needle"]["deal_kind"], "new_customer");
    assert_eq!(ana["needle"]["typical_deal"], "20000.00");
    assert_eq!(ana["needle"]["deals_seen"], 3);
    assert_eq!(ana["needle"]["adds"], "618.75");
    assert_eq!(
        ana["needle"]["message"],
        "a 20,000.00 EUR new_customer deal (the median of 3 won) adds 618.75 EUR to the pay projected this month at today's pace"
    );

    // cy neglects retention: total 4 200 × 23 ÷ 8 = 12 075 → 120.75%, but retention
    // 200 × 23 ÷ 8 = 575 of 5 000 = 11.5% < 90%: the gate is closed, 1:1 above 100 →
    // 120.75% → 3 000 × 50% × 120.75% = 1 811.25 (open, it would be 141.50%: 2 122.50)
    // new 4 000 × 23 ÷ 8 = 11 500 → 230% → 100 + 130 × 1.5 = 295% → cap 200% →
    // 3 000 × 30% × 200% = 1 800.00
    let cy = &statements(&tmp, &data, &["--period", "2026-12", "--rep", "cy"])[0];
    assert_eq!(
        lines(&cy["payouts"][0]),
        [
            l("total", "120.75", "120.75", "1811.25"),
            l("new_customer", "230.00", "200.00", "1800.00"),
            l("report_card", "–", "0.00", "0.00"),
        ]
    );
    assert_eq!(cy["payouts"][0]["measures"][0]["gate_open"], false);
    assert_eq!(cy["payouts"][0]["total"], "3611.25");
    // One more 4 000.00 deal: total 12 075 + 4 000 = 16 075 → 160.75%, the gate still
    // closed → 1:1 → cap 150% → 2 250.00: 438.75 more (new customers are capped).
    // A new-customer deal adds as much (new customers are capped): the finer kind.
    assert_eq!(cy["needle"]["deal_kind"], "new_customer");
    assert_eq!(cy["needle"]["adds"], "438.75");
    // A closed month has nothing left to move.
    assert!(nov.iter().all(|s| s["needle"].is_null()));

    // The table says the same for people.
    let cfg = tmp.path().join("pacer.toml");
    let table = ok(pacer(&data)
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "comp",
            "report",
            "--rep",
            "cy",
        ])
        .output()
        .unwrap());
    assert!(
        table.contains("(gate closed)") && table.contains("3,611.25"),
        "{table}"
    );
}

#[test]
fn a_void_takes_back_exactly_its_effect_on_pay() {
    let (tmp, data) = org();
    let void = r#"{"event_id":"v3","source":"crm","occurred_at":"2026-12-10T13:00:00Z","type":"event_voided","voided_event_id":"w3"}
"#;
    std::fs::write(tmp.path().join("void.jsonl"), void).unwrap();
    ok(run(
        &data,
        &[
            "--config",
            tmp.path().join("pacer.toml").to_str().unwrap(),
            "ingest",
            tmp.path().join("void.jsonl").to_str().unwrap(),
        ],
    ));
    let voided = statements(&tmp, &data, &["--period", "2026-12", "--rep", "ana"]);

    // The same log without w3 (and without its void) from the start.
    let (tmp2, data2) = temp_org(CONFIG);
    let without: String = EVENTS
        .lines()
        .filter(|l| !l.contains("\"event_id\":\"w3\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(tmp2.path().join("events.jsonl"), without).unwrap();
    std::fs::write(tmp2.path().join("comp.csv"), COMP).unwrap();
    let c2 = tmp2.path().join("pacer.toml");
    ok(pacer(&data2)
        .args(["--config", c2.to_str().unwrap(), "ingest"])
        .arg(tmp2.path().join("events.jsonl"))
        .output()
        .unwrap());
    ok(pacer(&data2)
        .args(["--config", c2.to_str().unwrap(), "comp", "publish"])
        .arg(tmp2.path().join("comp.csv"))
        .args([
            "--comp-plan",
            "fy27-comp",
            "--version",
            "1",
            "--effective-from",
            "2026-11",
        ])
        .output()
        .unwrap());
    let never = statements(&tmp2, &data2, &["--period", "2026-12", "--rep", "ana"]);
    assert_eq!(voided, never);
    // And w3 did count before: the new-customer pay moved.
    assert_ne!(voided[0]["payouts"][0]["measures"][1]["pay"], "2981.25");
}

#[test]
fn a_bad_comp_plan_is_refused_naming_row_and_column_and_nothing_is_published() {
    let (tmp, data) = org();
    let cfg = tmp.path().join("pacer.toml");
    let publish = |name: &str, text: &str, version: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        pacer(&data)
            .args(["--config", cfg.to_str().unwrap(), "comp", "publish"])
            .arg(&path)
            .args([
                "--comp-plan",
                "fy27-comp",
                "--version",
                version,
                "--effective-from",
                "2026-12",
            ])
            .output()
            .unwrap()
    };
    let cases = [
        // A curve that falls: the row of the measure, the curve column.
        (
            COMP.replace("60:0 100:100,1.5", "60:50 100:40,1.5"),
            "row 5, column curve: 40.00% is below the point before (50.00%)",
        ),
        // Weights that do not sum to 100.
        (
            COMP.replace("measure,,,new_customer,30", "measure,,,new_customer,20"),
            "measures: the weights sum to 90.00%, not 100%",
        ),
        // A cap below the curve.
        (
            COMP.replace("2,150,retention", "2,90,retention"),
            "row 4, column cap_pct: 90.00% is below the curve's 100.00%",
        ),
        // A bucket that is not one.
        (
            COMP.replace("measure,,,total,50", "measure,,,totl,50"),
            "row 4, column measure:",
        ),
        // A pay line for nobody.
        (
            COMP.replace("pay,team:north", "pay,north"),
            "row 2, column name: \"north\" is not rep:<id> or team:<name>",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let o = publish(&format!("bad{i}.csv"), text, "2");
        assert!(!o.status.success(), "case {i} was published");
        let err = stderr(&o);
        assert!(err.contains(want), "case {i}: {err}");
        assert!(err.contains("nothing was published"), "{err}");
    }
    // Only version 1 is in the log.
    let events = log_events(&data);
    let comp: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "comp_plan_published")
        .collect();
    assert_eq!(comp.len(), 1);
    // The same version again is refused with the next one to use.
    let o = publish("again.csv", COMP, "1");
    assert!(
        stderr(&o).contains("already published: publish the new terms as version 2"),
        "{}",
        stderr(&o)
    );
}

/// `GET /v1/comp` answers what `pacer comp report --format json` prints, within the
/// caller's scope: a rep their own pay, a manager their team's, finance everyone's.
#[test]
fn pay_over_http_is_the_clis_and_each_role_sees_its_own() {
    use common::nats::{free_port, Serve};
    let (tmp, data) = org();
    let cfg = tmp.path().join("pacer.toml");
    let ana = user_token(&data, "ana", "rep", &["--rep", "ana"]);
    let maria = user_token(&data, "maria", "manager", &["--teams", "north"]);
    let fin = user_token(&data, "fin", "finance", &[]);
    let cli = |args: &[&str]| -> Value {
        let out = ok(pacer(&data)
            .args([
                "--config",
                cfg.to_str().unwrap(),
                "comp",
                "report",
                "--format",
                "json",
            ])
            .args(args)
            .output()
            .unwrap());
        serde_json::from_str(&out).unwrap()
    };
    // What the CLI prints, read before the server holds the data dir.
    let want_ana = cli(&["--rep", "ana", "--period", "2026-12"]);
    let want_team = cli(&["--team", "north", "--period", "2026-11"]);
    let want_all = cli(&["--period", "2026-11"]);
    let port = free_port();
    let _server = Serve::start_with(
        "serve",
        &data,
        &cfg,
        "",
        &["--http".into(), format!("127.0.0.1:{port}")],
    );
    let get = |token: &str, query: &str| -> (u16, String) {
        let r = ureq::get(&format!("http://127.0.0.1:{port}/v1/comp?{query}"))
            .set("authorization", &format!("Bearer {token}"))
            .call();
        match r {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap_or_default()),
            Err(e) => panic!("{e}"),
        }
    };
    let json = |t: &str| -> Value { serde_json::from_str(t).unwrap() };
    let (code, own) = get(&ana, "rep=ana&period=2026-12");
    assert_eq!(code, 200, "{own}");
    assert_eq!(json(&own), want_ana);
    assert_eq!(
        get(&ana, "rep=ben&period=2026-11").0,
        403,
        "a rep sees only their own pay"
    );
    assert_eq!(get(&ana, "period=2026-11").0, 403);
    let (code, team) = get(&maria, "team=north&period=2026-11");
    assert_eq!(code, 200);
    assert_eq!(json(&team), want_team);
    assert_eq!(get(&maria, "team=south").0, 403);
    // Naming herself is not a way round her scope: pay is asked of a rep or a team.
    let (code, why) = get(&maria, "manager=maria&period=2026-11");
    assert_eq!(code, 400, "{why}");
    assert!(!why.contains("statements"), "{why}");
    let (code, all) = get(&fin, "period=2026-11");
    assert_eq!(code, 200);
    assert_eq!(json(&all), want_all);
    assert_eq!(json(&all)["statements"].as_array().unwrap().len(), 3);
}

/// Finance's view: each month's accrual by team (a month's pay is its period's:
/// earned for November, projected at today's pace for December), and what changed
/// between two versions of the plan.
#[test]
fn accruals_by_month_and_team_and_the_plan_diff() {
    let (tmp, data) = org();
    let cfg = tmp.path().join("pacer.toml");
    let c = cfg.to_str().unwrap();
    let out = ok(pacer(&data)
        .args([
            "--config", c, "comp", "accruals", "--from", "2026-11", "--to", "2026-12",
        ])
        .args(["--format", "json"])
        .output()
        .unwrap());
    let v: Value = serde_json::from_str(&out).unwrap();
    let rows: Vec<(String, String, i64, String, String, String)> = v["accruals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let t = |k: &str| r[k].as_str().unwrap().to_owned();
            (
                t("month"),
                t("team"),
                r["reps"].as_i64().unwrap(),
                t("earned"),
                t("projected"),
                t("total"),
            )
        })
        .collect();
    // November: ana 2 926.50 + ben 270.00 + cy 0 (no plan then) earned.
    // December: ana 8 681.25 + cy 3 611.25 + ben 0 (no plan) projected.
    assert_eq!(
        rows,
        [
            (
                "2026-11".into(),
                "north".into(),
                3,
                "3196.50".into(),
                "0.00".into(),
                "3196.50".into()
            ),
            (
                "2026-12".into(),
                "north".into(),
                3,
                "0.00".into(),
                "12292.50".into(),
                "12292.50".into()
            ),
        ]
    );

    // Version 2: ana's pay and the total measure's cap change.
    let v2 = COMP
        .replace("pay,rep:ana,6000.00", "pay,rep:ana,6500.00")
        .replace("2,150,retention", "2,160,retention");
    std::fs::write(tmp.path().join("comp2.csv"), v2).unwrap();
    ok(pacer(&data)
        .args(["--config", c, "comp", "publish"])
        .arg(tmp.path().join("comp2.csv"))
        .args([
            "--comp-plan",
            "fy27-comp",
            "--version",
            "2",
            "--effective-from",
            "2026-12",
        ])
        .output()
        .unwrap());
    let diff = ok(pacer(&data)
        .args(["--config", c, "comp", "diff", "1", "2"])
        .output()
        .unwrap());
    assert_eq!(
        diff,
        "effective_from\t2026-11\t→ 2026-12\nmeasure total cap_pct\t150.00\t→ 160.00\npay rep:ana\t6000.00\t→ 6500.00\n"
    );
    // From December version 2 pays ana: total 158.75% is under the new cap of 160% →
    // 6 500 × 50% × 158.75% = 5 159.375 → 5 159.38; new 6 500 × 30% × 165.625% =
    // 3 229.6875 → 3 229.69; the report card 6 500 × 20% × 100% = 1 300.00; in all
    // 9 689.07. November is still version 1's.
    let dec = statements(&tmp, &data, &["--period", "2026-12", "--rep", "ana"]);
    assert_eq!(dec[0]["version"], 2);
    assert_eq!(dec[0]["payouts"][0]["total"], "9689.07");
    let nov = statements(&tmp, &data, &["--period", "2026-11", "--rep", "ana"]);
    assert_eq!(nov[0]["version"], 1);
    assert_eq!(nov[0]["payouts"][0]["total"], "2926.50");
}

/// The comp report and the accruals leave Pacer as finance opens them: CSV, and a
/// workbook whose cells are the CSV's (figures as numbers).
#[test]
fn the_comp_report_and_accruals_export_as_csv_and_as_a_workbook() {
    use calamine::Reader;
    let (tmp, data) = org();
    let cfg = tmp.path().join("pacer.toml");
    let c = cfg.to_str().unwrap();
    let run = |args: &[&str]| {
        ok(pacer(&data)
            .current_dir(tmp.path())
            .args(["--config", c, "comp"])
            .args(args)
            .output()
            .unwrap())
    };
    // Each (CSV, workbook) pair: the workbook's rows are the CSV's, cell for cell, a
    // figure's shortest decimal being the exact one.
    let same = |csv: &str, file: &str, sheet: &str| {
        let mut book: calamine::Xlsx<_> = calamine::open_workbook(tmp.path().join(file)).unwrap();
        let range = book.worksheet_range(sheet).unwrap();
        let mut rows = range.rows();
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        let first: Vec<String> = rows.next().unwrap().iter().map(|c| c.to_string()).collect();
        assert_eq!(first, header);
        for record in reader.records() {
            let record = record.unwrap();
            let cells = rows.next().expect("a row per CSV line");
            assert_eq!(cells.len(), record.len(), "{record:?}");
            for (cell, text) in cells.iter().zip(record.iter()) {
                // A figure's cell is a number: its shortest decimal.
                let numeric = text.parse::<f64>().is_ok();
                let trimmed = if numeric && text.contains('.') {
                    text.trim_end_matches('0').trim_end_matches('.')
                } else {
                    text
                };
                assert_eq!(cell.to_string(), trimmed, "{record:?}");
                if numeric {
                    assert!(
                        matches!(cell, calamine::Data::Float(_) | calamine::Data::Int(_)),
                        "{cell:?} of {record:?} is a number"
                    );
                }
            }
        }
        assert!(rows.next().is_none(), "no row the CSV does not have");
    };

    let csv = run(&[
        "report", "--period", "2026-12", "--rep", "ana", "--format", "csv",
    ]);
    let lines: Vec<&str> = csv.lines().collect();
    // Two payouts (at pace, at the forecast) × three measures, under a header.
    assert_eq!(lines.len(), 7, "{csv}");
    assert_eq!(
        lines[1],
        "ana,north,fy27-comp,1,2026-12,open,projected_at_pace,total,50.00,80000.00,103500.00,129.38,150.00,true,4500.00,EUR",
        "the hand-computed figures of the test above"
    );
    // A workbook is not written to a terminal.
    let o = pacer(&data)
        .args(["--config", c, "comp", "report", "--format", "xlsx"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("pass --out FILE.xlsx"), "{err}");
    let out = run(&[
        "report",
        "--period",
        "2026-12",
        "--rep",
        "ana",
        "--format",
        "xlsx",
        "--out",
        "comp.xlsx",
    ]);
    assert!(out.contains("wrote comp.xlsx"), "{out}");
    same(&csv, "comp.xlsx", "comp");

    let csv = run(&[
        "accruals", "--from", "2026-11", "--to", "2026-12", "--format", "csv",
    ]);
    assert_eq!(
        csv,
        "month,team,reps,earned,projected,total,currency\n2026-11,north,3,3196.50,0.00,3196.50,EUR\n2026-12,north,3,0.00,12292.50,12292.50,EUR\n"
    );
    run(&[
        "accruals", "--from", "2026-11", "--to", "2026-12", "--format", "xlsx", "--out", "acc.xlsx",
    ]);
    same(&csv, "acc.xlsx", "accruals");
}
