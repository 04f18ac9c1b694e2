//! The subject names under one prefix (`<prefix>.events.<type>`,
//! `<prefix>.alerts.<team>.<rep>`, `<prefix>.dlq.<reason>`...): how every mode names
//! an event, an alert change or a digest, whether or not a broker carries it. The
//! one-process server scopes its live alert feed by the same names.

/// The subjects under one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subjects {
    pub prefix: String,
}

impl Subjects {
    pub fn new(prefix: &str) -> Self {
        Subjects {
            prefix: prefix.to_owned(),
        }
    }

    /// `<prefix>.events.<type>`.
    pub fn event(&self, event_type: &str) -> String {
        format!("{}.events.{}", self.prefix, token(event_type))
    }

    pub fn events_all(&self) -> String {
        format!("{}.events.>", self.prefix)
    }

    /// `<prefix>.alerts.<team>.<rep>`.
    pub fn alert(&self, team: &str, rep: &str) -> String {
        format!("{}.alerts.{}.{}", self.prefix, token(team), token(rep))
    }

    /// `<prefix>.digest.<team>`.
    pub fn digest(&self, team: &str) -> String {
        format!("{}.digest.{}", self.prefix, token(team))
    }

    /// `<prefix>.dlq.<reason>`.
    pub fn dlq(&self, reason: &str) -> String {
        format!("{}.dlq.{}", self.prefix, token(reason))
    }

    /// A stream name for this prefix: `PACER_EVENTS` for the default `pacer`,
    /// `ACME_PACER_EVENTS` for `acme.pacer`, so deployments sharing an account never
    /// share a stream.
    pub fn stream(&self, kind: &str) -> String {
        let p: String = self
            .prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("{p}_{kind}")
    }

    /// The stream events arrive on.
    pub fn events_stream(&self) -> String {
        self.stream("EVENTS")
    }

    /// The engine's durable consumer: `pacer-engine` for the default prefix.
    pub fn consumer(&self) -> String {
        format!("{}-engine", self.prefix.replace('.', "-"))
    }

    /// `<prefix>.query`: the group of the query endpoints.
    pub fn query_group(&self) -> String {
        format!("{}.query", self.prefix)
    }
}

/// A name as one subject token: characters a token cannot hold (`.`, `*`, `>`,
/// white space) become `_`; an empty name becomes `_`.
pub fn token(name: &str) -> String {
    let t: String = name
        .chars()
        .map(|c| {
            if c == '.' || c == '*' || c == '>' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if t.is_empty() {
        "_".into()
    } else {
        t
    }
}
