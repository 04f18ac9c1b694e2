//! Buckets: what a plan line and an actual are counted in (`total`, `geo:<region>`,
//! `product:<line>`, `account:<customer>`, `new_customer`, `retention`,
//! `activity:<kind>`), their names and their borrowed form. Which buckets an event
//! adds to is [`crate::contribution`]'s one function.

use std::fmt;

use crate::error::ParseError;

/// The region or product line of a movement that names none.
pub const UNASSIGNED: &str = "unassigned";

/// A bucket of a rep's monthly plan. The variant order is the order of the bucket
/// names as strings, so sorting buckets sorts their names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode)]
pub enum Bucket {
    Account(String),
    Activity(String),
    Geo(String),
    NewCustomer,
    Product(String),
    Retention,
    Total,
}

impl Bucket {
    /// Parses a bucket name (`total`, `geo:emea`, `activity:meeting`, ...).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::Bucket {
            value: s.to_owned(),
        };
        let named = |rest: &str, f: fn(String) -> Bucket| {
            if rest.is_empty() || rest.trim() != rest {
                Err(bad())
            } else {
                Ok(f(rest.to_owned()))
            }
        };
        match s {
            "total" => Ok(Bucket::Total),
            "new_customer" => Ok(Bucket::NewCustomer),
            "retention" => Ok(Bucket::Retention),
            _ => match s.split_once(':') {
                Some(("geo", rest)) => named(rest, Bucket::Geo),
                Some(("product", rest)) => named(rest, Bucket::Product),
                Some(("account", rest)) => named(rest, Bucket::Account),
                Some(("activity", rest)) => named(rest, Bucket::Activity),
                _ => Err(bad()),
            },
        }
    }

    /// Activity buckets count events; every other bucket holds minor units of money.
    /// The decimal digits of the bucket's values: the currency's for money, none for
    /// activity counts.
    pub fn scale(&self, currency: crate::money::Currency) -> u32 {
        if self.is_activity() {
            0
        } else {
            currency.exponent()
        }
    }

    pub fn is_activity(&self) -> bool {
        matches!(self, Bucket::Activity(_))
    }

    /// The buckets a manager reads first.
    pub fn is_main(&self) -> bool {
        matches!(
            self,
            Bucket::Total | Bucket::NewCustomer | Bucket::Retention
        )
    }

    /// The bucket as a [`BucketRef`], borrowing its name.
    pub fn borrowed(&self) -> BucketRef<'_> {
        match self {
            Bucket::Account(a) => BucketRef::Account(a),
            Bucket::Activity(k) => BucketRef::Activity(k),
            Bucket::Geo(r) => BucketRef::Geo(r),
            Bucket::NewCustomer => BucketRef::NewCustomer,
            Bucket::Product(p) => BucketRef::Product(p),
            Bucket::Retention => BucketRef::Retention,
            Bucket::Total => BucketRef::Total,
        }
    }
}

/// A bucket whose name is borrowed: what a reader compares stored buckets with
/// without copying a name. Same variants in the same order as [`Bucket`], so
/// `a.borrowed().cmp(&b.borrowed()) == a.cmp(&b)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BucketRef<'a> {
    Account(&'a str),
    Activity(&'a str),
    Geo(&'a str),
    NewCustomer,
    Product(&'a str),
    Retention,
    Total,
}

impl BucketRef<'_> {
    pub fn to_bucket(self) -> Bucket {
        match self {
            BucketRef::Account(a) => Bucket::Account(a.to_owned()),
            BucketRef::Activity(k) => Bucket::Activity(k.to_owned()),
            BucketRef::Geo(r) => Bucket::Geo(r.to_owned()),
            BucketRef::NewCustomer => Bucket::NewCustomer,
            BucketRef::Product(p) => Bucket::Product(p.to_owned()),
            BucketRef::Retention => Bucket::Retention,
            BucketRef::Total => Bucket::Total,
        }
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bucket::Total => f.write_str("total"),
            Bucket::NewCustomer => f.write_str("new_customer"),
            Bucket::Retention => f.write_str("retention"),
            Bucket::Geo(r) => write!(f, "geo:{r}"),
            Bucket::Product(p) => write!(f, "product:{p}"),
            Bucket::Account(a) => write!(f, "account:{a}"),
            Bucket::Activity(k) => write!(f, "activity:{k}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_round_trip_and_sort_as_strings() {
        let names = [
            "account:acme",
            "activity:call",
            "geo:emea",
            "new_customer",
            "product:analytics",
            "retention",
            "total",
        ];
        let mut buckets: Vec<Bucket> = names
            .iter()
            .rev()
            .map(|n| Bucket::parse(n).unwrap())
            .collect();
        buckets.sort();
        let back: Vec<String> = buckets.iter().map(|b| b.to_string()).collect();
        assert_eq!(back, names);
        for a in &buckets {
            assert_eq!(a.borrowed().to_bucket(), *a);
            for b in &buckets {
                assert_eq!(a.borrowed().cmp(&b.borrowed()), a.cmp(b));
            }
        }
        for bad in ["Total", "geo:", "geo", "region:emea", "activity: call", ""] {
            assert!(Bucket::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
