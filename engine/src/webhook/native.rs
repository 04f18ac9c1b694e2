//! `POST /v1/events`: Pacer's own JSON schema over HTTP, for an in-house CRM or a
//! script. The body is one event object, a JSON array of them, or NDJSON (one event
//! per line, blank lines skipped); which one is told by `Content-Type`
//! (`application/json`, or `application/x-ndjson` / `application/jsonl`). Senders
//! authenticate with a Standard Webhooks signature or a bearer token
//! ([`super::auth`]).

use serde::Deserialize;
use serde_json::Value;

use super::auth::WebhookSecret;
use super::{Change, Parsed, WebhookError};

/// At most this many events in one request.
pub const EVENTS_MAX: usize = 10_000;

/// `[webhooks.native]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NativeConfig {
    /// Tokens accepted as `Authorization: Bearer <token>`.
    pub bearer_tokens: Vec<String>,
    /// Standard Webhooks secrets (`whsec_...`); several while rotating.
    pub secrets: Vec<WebhookSecret>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNative {
    #[serde(default)]
    bearer_tokens: Vec<String>,
    #[serde(default)]
    secrets: Vec<String>,
}

impl NativeConfig {
    pub fn from_toml(value: toml::Value) -> Result<Self, String> {
        let raw = RawNative::deserialize(value)
            .map_err(|e| format!("webhooks.native: {}", e.to_string().trim_end()))?;
        let mut secrets = Vec::new();
        for (i, s) in raw.secrets.iter().enumerate() {
            secrets.push(
                WebhookSecret::parse(s)
                    .map_err(|e| format!("webhooks.native.secrets[{i}]: {e}"))?,
            );
        }
        if let Some(i) = raw.bearer_tokens.iter().position(|t| t.trim().len() < 16) {
            return Err(format!(
                "webhooks.native.bearer_tokens[{i}]: a token needs at least 16 characters"
            ));
        }
        Ok(NativeConfig {
            bearer_tokens: raw.bearer_tokens,
            secrets,
        })
    }

    /// Whether any way in is configured (without one, the endpoint refuses all).
    pub fn is_open_to_anyone(&self) -> bool {
        !self.bearer_tokens.is_empty() || !self.secrets.is_empty()
    }
}

/// The body's format, from `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
}

impl Format {
    /// `None` for a content type this endpoint does not take.
    pub fn of(content_type: &str) -> Option<Format> {
        match super::mime_of(content_type).as_str() {
            "application/json" => Some(Format::Json),
            "application/x-ndjson"
            | "application/jsonl"
            | "application/jsonlines"
            | "application/x-jsonlines" => Some(Format::Ndjson),
            _ => None,
        }
    }
}

/// The events of a body, in order, as JSON objects (decoded later, so that errors
/// name the event's index and field). An NDJSON line that is not JSON is refused on
/// its own (item = its place among the non-blank lines).
pub fn parse(format: Format, body: &[u8]) -> Result<Parsed, WebhookError> {
    let mut parsed = Parsed::default();
    let mut count = 0usize;
    match format {
        Format::Json => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(items)) => {
                count = items.len();
                if count <= EVENTS_MAX {
                    for (i, v) in items.into_iter().enumerate() {
                        parsed.push(i, Change::Event(v));
                    }
                }
            }
            Ok(v @ Value::Object(_)) => {
                count = 1;
                parsed.push(0, Change::Event(v));
            }
            Ok(_) => {
                return Err(WebhookError::bad(
                    "body",
                    "must be an event object or an array of events",
                ))
            }
            Err(e) => return Err(WebhookError::bad("body", format!("not valid JSON: {e}"))),
        },
        Format::Ndjson => {
            for (n, line) in lines(body) {
                if count < EVENTS_MAX {
                    match serde_json::from_slice::<Value>(line) {
                        Ok(v) => parsed.push(count, Change::Event(v)),
                        Err(e) => parsed.invalid.push(super::ItemError::malformed(
                            count,
                            format!("line {n}"),
                            format!("not valid JSON: {e}"),
                        )),
                    }
                }
                count += 1;
            }
        }
    }
    if count > EVENTS_MAX {
        return Err(WebhookError::bad(
            "body",
            format!("{count} events is over the limit of {EVENTS_MAX} per request"),
        ));
    }
    if count == 0 {
        return Err(WebhookError::bad("body", "holds no event"));
    }
    Ok(parsed)
}

/// The non-blank lines of an NDJSON body, with their 1-based line numbers.
fn lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    body.split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(n, line)| (n + 1, line))
}

/// The items of a body as the dead-letter store keeps them: each event's JSON text
/// (an NDJSON line as sent). [`parse`] takes one back as `application/json`.
pub fn split(format: Format, body: &[u8]) -> Vec<String> {
    match format {
        Format::Json => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(items)) => items.iter().map(Value::to_string).collect(),
            _ => vec![String::from_utf8_lossy(body).into_owned()],
        },
        Format::Ndjson => lines(body)
            .map(|(_, line)| String::from_utf8_lossy(line).trim().to_owned())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_object_an_array_or_lines() {
        let one = parse(Format::Json, br#"{"event_id":"a"}"#).unwrap();
        assert_eq!(one.changes.len(), 1);
        let many = parse(Format::Json, br#"[{"event_id":"a"},{"event_id":"b"}]"#).unwrap();
        assert_eq!(many.changes.len(), 2);
        let lines = parse(
            Format::Ndjson,
            b"{\"event_id\":\"a\"}\n\n{\"event_id\":\"b\"}\n",
        )
        .unwrap();
        assert_eq!(lines.changes.len(), 2);
        assert_eq!(
            Format::of("application/json; charset=utf-8"),
            Some(Format::Json)
        );
        assert_eq!(Format::of("application/x-ndjson"), Some(Format::Ndjson));
        assert_eq!(Format::of("text/plain"), None);
    }

    #[test]
    fn malformed_bodies_name_where() {
        let parsed = parse(Format::Ndjson, b"{\"a\":1}\n\n{oops\n").unwrap();
        assert_eq!(parsed.changes.len(), 1);
        assert_eq!(parsed.invalid.len(), 1);
        assert_eq!(parsed.invalid[0].field, "line 3");
        assert_eq!(parsed.invalid[0].index, 1);
        assert_eq!(
            split(Format::Ndjson, b"{\"a\":1}\n\n{oops\n"),
            vec!["{\"a\":1}".to_owned(), "{oops".to_owned()]
        );
        let err = parse(Format::Json, b"42").unwrap_err();
        assert!(matches!(&err, WebhookError::BadRequest { field, .. } if field == "body"));
        assert!(parse(Format::Json, b"[]").is_err());
    }

    #[test]
    fn config_checks_secrets_and_tokens() {
        let ok: toml::Value = toml::from_str(
            "bearer_tokens = [\"0123456789abcdef\"]\nsecrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]",
        )
        .unwrap();
        assert!(NativeConfig::from_toml(ok).unwrap().is_open_to_anyone());
        let short: toml::Value = toml::from_str("bearer_tokens = [\"abc\"]").unwrap();
        assert!(NativeConfig::from_toml(short)
            .unwrap_err()
            .contains("webhooks.native.bearer_tokens[0]"));
        let bad: toml::Value = toml::from_str("secrets = [\"whsec_!!\"]").unwrap();
        assert!(NativeConfig::from_toml(bad)
            .unwrap_err()
            .contains("webhooks.native.secrets[0]"));
        let unknown: toml::Value = toml::from_str("token = \"x\"").unwrap();
        assert!(NativeConfig::from_toml(unknown)
            .unwrap_err()
            .contains("token"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            for format in [Format::Json, Format::Ndjson] {
                match parse(format, &body) {
                    Ok(p) => prop_assert!(!p.changes.is_empty() || !p.invalid.is_empty()),
                    Err(e) => {
                        let bad = matches!(e, WebhookError::BadRequest { .. });
                        prop_assert!(bad, "{}", e);
                    }
                }
            }
        }
    }
}
