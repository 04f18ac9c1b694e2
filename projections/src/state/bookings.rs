//! Bookings by day: on which day of its month each rep's revenue landed, and how
//! many bookings made it. This is what the pacing curve and a rep's track record
//! are learned from ([`crate::pacing`]).
//!
//! Only the `total` bucket is kept by day (every revenue movement adds to it, see
//! [`crate::contribution::Movement`]): per rep × month the net amount of each day and the
//! number of bookings (positive movements: won deals, renewals, expansions); per team
//! × month and for the whole organisation, the net amount of each day, the team
//! being the rep's team as of that month. A day whose amount returns to zero is
//! removed, and a month with nothing left, so "applied then voided" is "never
//! applied" here too.
//!
//! A rep's days are stored packed (a day byte and a zigzag LEB128 amount each, in
//! day order): a rep-month holds a handful of bookings, and at 10 000 reps × 24
//! months a vector of 16-byte pairs per month would cost more than the rest of a
//! rep's figures.

use rustc_hash::FxHashMap;

use super::names::Sym;
use super::varint::{read_i64, write_i64};
use crate::time::Month;

/// Net amounts by day of the month: index 1–31 (0 unused).
pub type DayAmounts = [i64; 32];

/// One rep's month: net amount per day, and how many bookings counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepMonth {
    /// Bookings (positive revenue movements) that count, voided ones taken back.
    pub bookings: u32,
    /// (day, amount) pairs in day order, packed; no zero amount.
    packed: Vec<u8>,
}

impl RepMonth {
    /// The (day, net amount) of each day that has one, in day order.
    pub fn days(&self) -> impl Iterator<Item = (u8, i64)> + '_ {
        let mut rest = self.packed.as_slice();
        std::iter::from_fn(move || {
            let (&day, tail) = rest.split_first()?;
            let (amount, tail) = read_i64(tail);
            rest = tail;
            Some((day, amount))
        })
    }

    fn is_empty(&self) -> bool {
        self.bookings == 0 && self.packed.is_empty()
    }

    fn add(&mut self, day: u8, delta: i64) {
        // A month has at most 31 days: they are unpacked on the stack, changed and
        // packed again in place.
        let mut days = [(0u8, 0i64); 32];
        let mut n = 0;
        let mut found = false;
        for (d, v) in self.days() {
            if d == day {
                found = true;
                // Wrapping, as the actuals: removing exactly undoes adding.
                let sum = v.wrapping_add(delta);
                if sum != 0 {
                    days[n] = (d, sum);
                    n += 1;
                }
                continue;
            }
            if !found && d > day {
                days[n] = (day, delta);
                n += 1;
                found = true;
            }
            days[n] = (d, v);
            n += 1;
        }
        if !found {
            days[n] = (day, delta);
            n += 1;
        }
        self.packed.clear();
        for (d, v) in &days[..n] {
            self.packed.push(*d);
            write_i64(&mut self.packed, *v);
        }
    }
}

/// One revenue movement's share of a rep's `total` on a day, as the fold files it.
#[derive(Clone, Copy, Debug)]
pub(super) struct DayDelta {
    pub rep: Sym,
    /// The rep's team as of `month` (its name interned).
    pub team: Sym,
    pub month: Month,
    pub day: u8,
    pub delta: i64,
    /// +1 when a booking starts counting, −1 when a voided one stops, else 0.
    pub booking: i32,
}

/// Every rep's, team's and the organisation's bookings by day.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Bookings {
    /// Each rep's months, in month order.
    reps: FxHashMap<Sym, Vec<(Month, RepMonth)>>,
    teams: FxHashMap<(Sym, Month), DayAmounts>,
    org: FxHashMap<Month, DayAmounts>,
}

fn add_day<K: std::hash::Hash + Eq + Copy>(
    map: &mut FxHashMap<K, DayAmounts>,
    key: K,
    day: u8,
    delta: i64,
) {
    let days = map.entry(key).or_insert([0; 32]);
    days[usize::from(day)] = days[usize::from(day)].wrapping_add(delta);
    if days.iter().all(|v| *v == 0) {
        map.remove(&key);
    }
}

impl Bookings {
    pub(super) fn add(&mut self, d: DayDelta) {
        if d.delta == 0 && d.booking == 0 || !(1..=31).contains(&d.day) {
            return;
        }
        let months = self.reps.entry(d.rep).or_default();
        let i = match months.binary_search_by_key(&d.month, |(m, _)| *m) {
            Ok(i) => i,
            Err(i) => {
                months.insert(i, (d.month, RepMonth::default()));
                i
            }
        };
        let month = &mut months[i].1;
        if d.delta != 0 {
            month.add(d.day, d.delta);
        }
        month.bookings = month.bookings.saturating_add_signed(d.booking);
        if month.is_empty() {
            months.remove(i);
            if months.is_empty() {
                self.reps.remove(&d.rep);
            }
        }
        if d.delta != 0 {
            add_day(&mut self.teams, (d.team, d.month), d.day, d.delta);
            add_day(&mut self.org, d.month, d.day, d.delta);
        }
    }

    /// Moves a rep's days from one team to another for each month where the rep's
    /// team changed (an org event re-dated who the rep worked for). Returns whether
    /// any moved.
    pub(super) fn refile(
        &mut self,
        rep: Sym,
        before: impl Fn(Month) -> Sym,
        after: impl Fn(Month) -> Sym,
    ) -> bool {
        let Some(months) = self.reps.get(&rep) else {
            return false;
        };
        let mut moved = false;
        for (month, rm) in months {
            let (from, to) = (before(*month), after(*month));
            if from == to {
                continue;
            }
            for (day, v) in rm.days() {
                moved = true;
                add_day(&mut self.teams, (from, *month), day, v.wrapping_neg());
                add_day(&mut self.teams, (to, *month), day, v);
            }
        }
        moved
    }

    pub fn rep_month(&self, rep: Sym, month: Month) -> Option<&RepMonth> {
        let months = self.reps.get(&rep)?;
        months
            .binary_search_by_key(&month, |(m, _)| *m)
            .ok()
            .map(|i| &months[i].1)
    }

    pub fn team_month(&self, team: Sym, month: Month) -> Option<&DayAmounts> {
        self.teams.get(&(team, month))
    }

    pub fn org_month(&self, month: Month) -> Option<&DayAmounts> {
        self.org.get(&month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::names::Names;

    #[test]
    fn days_add_up_and_removing_undoes_adding() {
        let mut names = Names::default();
        let (ana, north, south) = (
            names.intern("ana"),
            names.intern("north"),
            names.intern("south"),
        );
        let m = Month::parse("2026-11").unwrap();
        let d = |day, delta, booking| DayDelta {
            rep: ana,
            team: north,
            month: m,
            day,
            delta,
            booking,
        };
        let mut b = Bookings::default();
        b.add(d(30, 500, 1));
        b.add(d(3, 1_000_000, 1));
        b.add(d(30, -200, 0));
        let rm = b.rep_month(ana, m).unwrap();
        assert_eq!(
            rm.days().collect::<Vec<_>>(),
            vec![(3, 1_000_000), (30, 300)]
        );
        let sum: i64 = rm.days().map(|(_, v)| v).sum();
        assert_eq!((rm.bookings, sum), (2, 1_000_300));
        assert_eq!(b.team_month(north, m).unwrap()[30], 300);
        assert_eq!(b.org_month(m).unwrap()[3], 1_000_000);
        b.refile(ana, |_| north, |_| south);
        assert!(b.team_month(north, m).is_none());
        assert_eq!(b.team_month(south, m).unwrap()[3], 1_000_000);
        let s = |day, delta, booking| DayDelta {
            team: south,
            ..d(day, delta, booking)
        };
        b.add(s(30, 200, 0));
        b.add(s(30, -500, -1));
        b.add(s(3, -1_000_000, -1));
        assert_eq!(b, Bookings::default());
    }
}
