//! The one function that maps an event to its signed bucket contributions.
//!
//! Every revenue movement (a won deal, a renewal, a churn...) lands in exactly five
//! buckets of one rep and month: `total`, `geo:<region>`, `product:<line>`,
//! `account:<customer>` and one of `new_customer` / `retention`. That is what keeps the
//! brief's invariants true by construction: `new_customer + retention == total`, and
//! the `geo:*` and `product:*` buckets each sum to `total`.

use chrono_tz::Tz;

use crate::bucket::{Bucket, BucketRef, UNASSIGNED};
use crate::event::{CustomerKind, Event, EventBody, Split};
use crate::money::{div_round_half_away, largest_remainder};
use crate::time::{Date, Month};

/// A signed amount added to one bucket of one rep's month.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, bincode::Encode, bincode::Decode)]
pub struct Contribution {
    pub rep: String,
    pub month: Month,
    /// The day of the month (1–31) it counts on: what the pacing curve learns from.
    pub day: u8,
    pub bucket: Bucket,
    pub delta: i64,
}

/// A [`Contribution`] that borrows its rep and bucket name from the event: what the
/// fold adds without copying a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContributionRef<'a> {
    pub rep: &'a str,
    pub month: Month,
    /// The day of the month (1–31) it counts on.
    pub day: u8,
    pub bucket: BucketRef<'a>,
    pub delta: i64,
}

impl ContributionRef<'_> {
    pub fn to_owned(self) -> Contribution {
        Contribution {
            rep: self.rep.to_owned(),
            month: self.month,
            day: self.day,
            bucket: self.bucket.to_bucket(),
            delta: self.delta,
        }
    }
}

/// A movement of revenue, before it is spread over buckets.
#[derive(Clone, Copy, Debug)]
pub struct Movement<'a> {
    pub rep: &'a str,
    /// The date it counts on (closed on, effective on; for a pipeline forecast, the
    /// expected close).
    pub on: Date,
    pub account: &'a str,
    pub customer_kind: CustomerKind,
    pub product: Option<&'a str>,
    pub region: Option<&'a str>,
    /// Signed minor units.
    pub amount: i64,
}

impl<'a> Movement<'a> {
    /// The five buckets this movement adds its amount to, in a fixed order.
    pub fn buckets(&self) -> [Bucket; 5] {
        self.bucket_refs().map(BucketRef::to_bucket)
    }

    /// [`Movement::buckets`], borrowing the names from the movement.
    pub fn bucket_refs(&self) -> [BucketRef<'a>; 5] {
        [
            BucketRef::Total,
            BucketRef::Geo(self.region.unwrap_or(UNASSIGNED)),
            BucketRef::Product(self.product.unwrap_or(UNASSIGNED)),
            BucketRef::Account(self.account),
            match self.customer_kind {
                CustomerKind::New => BucketRef::NewCustomer,
                CustomerKind::Existing => BucketRef::Retention,
            },
        ]
    }

    /// Hands each of the five bucket contributions of this movement to `f`.
    pub fn each_contribution(&self, f: &mut impl FnMut(ContributionRef<'a>)) {
        let (month, day) = self.on.month_and_day();
        let day = day as u8;
        for bucket in self.bucket_refs() {
            f(ContributionRef {
                rep: self.rep,
                month,
                day,
                bucket,
                delta: self.amount,
            });
        }
    }
}

/// The bucket contributions of one event: what it adds to (or removes from) the
/// actuals. Activities count in the month of `occurred_at` in the organisation's zone
/// `tz`; won deals in the month of `closed_on`; retention movements in the month of
/// `effective_on`. Events that move no actuals contribute nothing.
///
/// [`each_contribution`] is the mapping; this collects what it hands over.
pub fn contributions(event: &Event, tz: Tz) -> Vec<Contribution> {
    let mut out = Vec::new();
    each_contribution(event, tz, |c| out.push(c.to_owned()));
    out
}

/// The one function that maps an event to its bucket contributions (see
/// [`contributions`]), handing each to `f` in a fixed order, borrowed from the event.
pub fn each_contribution<'e>(event: &'e Event, tz: Tz, mut f: impl FnMut(ContributionRef<'e>)) {
    match &event.body {
        EventBody::DealWon(won) => {
            let shares = split_shares(won.amount.minor, &won.splits);
            let reps: Vec<&str> = if won.splits.is_empty() {
                vec![won.rep.as_str()]
            } else {
                won.splits.iter().map(|s| s.rep.as_str()).collect()
            };
            for (rep, amount) in reps.into_iter().zip(shares) {
                Movement {
                    rep,
                    on: won.closed_on,
                    account: &won.account,
                    customer_kind: won.customer_kind,
                    product: won.product.as_deref(),
                    region: won.region.as_deref(),
                    amount,
                }
                .each_contribution(&mut f);
            }
        }
        EventBody::Retention(kind, change) => Movement {
            rep: &change.rep,
            on: change.effective_on,
            account: &change.account,
            customer_kind: CustomerKind::Existing,
            product: change.product.as_deref(),
            region: change.region.as_deref(),
            amount: kind.sign() * change.amount.minor,
        }
        .each_contribution(&mut f),
        EventBody::ActivityLogged(a) => {
            let (month, day) = event.occurred_at.local_date(tz).month_and_day();
            f(ContributionRef {
                rep: &a.rep,
                month,
                day: day as u8,
                bucket: BucketRef::Activity(&a.kind),
                delta: 1,
            })
        }
        EventBody::RepRegistered(_)
        | EventBody::RepReassigned(_)
        | EventBody::RepDeparted(_)
        | EventBody::PlanPublished(_)
        | EventBody::ForecastSubmitted(_)
        | EventBody::DealOpened(_)
        | EventBody::DealStageChanged(_)
        | EventBody::DealLost(_)
        | EventBody::CustomerRated(_)
        | EventBody::EventVoided(_)
        | EventBody::AlertAcknowledged(_)
        | EventBody::ClockTick
        | EventBody::FxRateSet(_)
        | EventBody::PlanSubmitted(_)
        | EventBody::PlanApproved(_)
        | EventBody::PlanRejected(_)
        | EventBody::CompPlanPublished(_) => {}
    }
}

/// Splits `amount` by the given shares so that the parts add up to `amount` exactly:
/// each part is rounded down, then the minor units left over go one each to the parts
/// with the largest remainders (the earlier split first on a tie). With no splits the
/// whole amount is one part.
pub fn split_shares(amount: i64, splits: &[Split]) -> Vec<i64> {
    if splits.is_empty() {
        return vec![amount];
    }
    let weights: Vec<i128> = splits
        .iter()
        .map(|s| i128::from(s.percent.hundredths()))
        .collect();
    largest_remainder(amount, &weights)
}

/// `amount × probability`, rounded half away from zero: an open deal's weight in a
/// pipeline forecast.
pub fn weighted(amount: i64, probability_hundredths: u16) -> i64 {
    div_round_half_away(
        i128::from(amount) * i128::from(probability_hundredths),
        10_000,
    ) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Percent;

    fn split(rep: &str, hundredths: u16) -> Split {
        Split {
            rep: rep.into(),
            percent: Percent::from_hundredths(hundredths).unwrap(),
        }
    }

    #[test]
    fn split_shares_add_up_exactly() {
        let thirds = [split("a", 3333), split("b", 3333), split("c", 3334)];
        let parts = split_shares(100, &thirds);
        assert_eq!(parts.iter().sum::<i64>(), 100);
        assert_eq!(parts, vec![33, 33, 34]);
        let halves = [split("a", 5000), split("b", 5000)];
        assert_eq!(split_shares(101, &halves), vec![51, 50]);
        assert_eq!(split_shares(7, &[]), vec![7]);
    }

    #[test]
    fn weighting_rounds_half_away_from_zero() {
        assert_eq!(weighted(1_000_000, 2500), 250_000);
        assert_eq!(weighted(5, 5000), 3);
        assert_eq!(weighted(3, 3333), 1);
    }
}
