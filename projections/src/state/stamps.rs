//! Change stamps of months' figures: which month's actuals or bookings by day the
//! fold last changed, and when the plans or the teams' filing of bookings last
//! changed (which moves every month).
//!
//! They are bookkeeping for readers that keep what they worked out from completed
//! months between events ([`crate::pacing::Memo`]: a team's learned share of the
//! month, a rep's track record): such a value holds for as long as the stamp of the
//! months it read ([`Stamps::of_months`]) is the one it was worked out at. Stamps only
//! grow, so "the same stamp" is "nothing it read changed since".

use crate::time::Month;

/// The fold's change counter, and the count at each month's last change.
#[derive(Clone, Debug, Default)]
pub(super) struct Stamps {
    count: u64,
    /// The count at the last change to every month at once (a plan, a refile).
    all: u64,
    /// The month `months` starts at (its [`Month::index`]).
    first: i32,
    /// The count at each month's last change, from `first` on, one slot a month (a
    /// store, not a hash, on the fold's path; the months between the earliest and
    /// the latest whose actuals or bookings changed, at most the calendar's 120 000).
    months: Vec<u64>,
}

impl Stamps {
    /// One month's actuals or bookings changed.
    pub(super) fn month(&mut self, month: Month) {
        self.count += 1;
        let i = month.index();
        if self.months.is_empty() {
            self.first = i;
        } else if i < self.first {
            let earlier = (self.first - i) as usize;
            self.months.splice(0..0, std::iter::repeat_n(0, earlier));
            self.first = i;
        }
        let at = (i - self.first) as usize;
        if at >= self.months.len() {
            self.months.resize(at + 1, 0);
        }
        self.months[at] = self.count;
    }

    /// Something every month reads changed: the plans, or which team a rep's days
    /// are filed under.
    pub(super) fn all(&mut self) {
        self.count += 1;
        self.all = self.count;
    }

    /// The stamp of these months: the count at the last change to any of them.
    pub(super) fn of_months(&self, months: impl Iterator<Item = Month>) -> u64 {
        months
            .filter_map(|m| {
                let at = usize::try_from(m.index() - self.first).ok()?;
                self.months.get(at).copied()
            })
            .fold(self.all, u64::max)
    }
}

/// Stamps are not facts: two states that folded the same events are equal whatever
/// their stamps (a partition's state counts the changes of the events it folds).
impl PartialEq for Stamps {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Stamps {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_to_a_month_read_or_to_every_month_moves_the_stamp_and_no_other_does() {
        let month = |m| Month::new(2026, m).expect("a month");
        let (jan, feb, mar) = (month(1), month(2), month(3));
        let mut s = Stamps::default();
        let read = [jan, feb];
        let at = s.of_months(read.into_iter());
        s.month(mar);
        assert_eq!(s.of_months(read.into_iter()), at, "March is not read");
        // An earlier month after a later one, and a month never changed.
        s.month(month(1).plus(-30));
        assert_eq!(
            s.of_months(read.into_iter()),
            at,
            "nor is a month years before"
        );
        assert_eq!(s.of_months([month(12)].into_iter()), 0);
        s.month(feb);
        let after_feb = s.of_months(read.into_iter());
        assert!(after_feb > at, "February is read");
        s.all();
        assert!(
            s.of_months(read.into_iter()) > after_feb,
            "a plan moves every month"
        );
        assert!(s.of_months(std::iter::empty()) > 0);
    }
}
