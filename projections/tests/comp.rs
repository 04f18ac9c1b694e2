//! Properties of comp plan payouts: for any sane curve (attainment rising, payout
//! never falling), with or without an accelerator, a cap and a closed gate, pay never
//! decreases as attainment rises, never exceeds the cap, and is zero below the
//! threshold; a measure's pay is never more than its weight of the variable pay at
//! the cap.

use pacer_projections::comp::{measure_pay, payout_bp, Frac};
use pacer_projections::event::{CompMeasure, CompMeasureKind, CurvePoint};
use pacer_projections::Bucket;
use proptest::prelude::*;

/// A sane measure: 1–5 points, attainment strictly rising, payout never falling.
fn measure() -> impl Strategy<Value = CompMeasure> {
    (
        prop::collection::vec((1u32..5_000, 0u32..5_000), 1..5),
        0u32..10_000,
        prop::option::of(0u32..400),
        prop::option::of(0u32..30_000),
        1u32..=10_000,
    )
        .prop_map(|(steps, start, accelerator, cap_extra, weight)| {
            let (mut a, mut p) = (start, 0u32);
            let curve: Vec<CurvePoint> = steps
                .into_iter()
                .map(|(da, dp)| {
                    a += da;
                    p += dp;
                    CurvePoint {
                        attainment_bp: a,
                        payout_bp: p,
                    }
                })
                .collect();
            let top = curve.iter().map(|c| c.payout_bp).max().unwrap_or(0);
            CompMeasure {
                kind: CompMeasureKind::Bucket(Bucket::Total),
                weight_bp: weight,
                curve,
                accelerator,
                cap_bp: cap_extra.map(|x| top + x),
                gate: None,
            }
        })
}

proptest! {
    #[test]
    fn pay_never_falls_as_attainment_rises_and_stays_within_the_cap(
        m in measure(),
        a in 0i64..100_000,
        d in 0i64..50_000,
        den in 1i64..1_000,
        gate in any::<bool>(),
        pay in 0i64..10_000_000,
    ) {
        let lo = Frac::new(i128::from(a), i128::from(den)).unwrap();
        let hi = Frac::new(i128::from(a + d), i128::from(den)).unwrap();
        let (p_lo, p_hi) = (payout_bp(&m, lo, gate), payout_bp(&m, hi, gate));
        // As fractions: p_lo ≤ p_hi.
        prop_assert!(p_lo.num * p_hi.den <= p_hi.num * p_lo.den, "{p_lo:?} > {p_hi:?}");
        prop_assert!(measure_pay(pay, m.weight_bp, p_lo) <= measure_pay(pay, m.weight_bp, p_hi));
        if let Some(cap) = m.cap_bp {
            prop_assert!(p_hi.num <= i128::from(cap) * p_hi.den, "{p_hi:?} above the cap {cap}");
            let most = measure_pay(pay, m.weight_bp, Frac::new(i128::from(cap), 1).unwrap());
            prop_assert!(measure_pay(pay, m.weight_bp, p_hi) <= most);
        }
        // Below the first point nothing is paid.
        let first = i128::from(m.curve[0].attainment_bp);
        if lo.num < first * lo.den {
            prop_assert_eq!(p_lo.num, 0);
            prop_assert_eq!(measure_pay(pay, m.weight_bp, p_lo), 0);
        }
        // A closed gate never pays more than an open one.
        let (open, closed) = (payout_bp(&m, hi, true), payout_bp(&m, hi, false));
        if m.accelerator.is_some_and(|x| x >= 100) {
            prop_assert!(closed.num * open.den <= open.num * closed.den);
        }
    }
}
