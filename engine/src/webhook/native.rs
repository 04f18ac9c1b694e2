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
/// name the event's index and field).
pub fn parse(format: Format, body: &[u8]) -> Result<Parsed, WebhookError> {
    let values: Vec<Value> = match format {
        Format::Json => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Array(items)) => items,
            Ok(v @ Value::Object(_)) => vec![v],
            Ok(_) => {
                return Err(WebhookError::bad(
                    "body",
                    "must be an event object or an array of events",
                ))
            }
            Err(e) => return Err(WebhookError::bad("body", format!("not valid JSON: {e}"))),
        },
        Format::Ndjson => {
            let mut out = Vec::new();
            for (n, line) in body.split(|b| *b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let v = serde_json::from_slice::<Value>(line).map_err(|e| {
                    WebhookError::bad(format!("line {}", n + 1), format!("not valid JSON: {e}"))
                })?;
                out.push(v);
            }
            out
        }
    };
    if values.len() > EVENTS_MAX {
        return Err(WebhookError::bad(
            "body",
            format!(
                "{} events is over the limit of {EVENTS_MAX} per request",
                values.len()
            ),
        ));
    }
    if values.is_empty() {
        return Err(WebhookError::bad("body", "holds no event"));
    }
    Ok(Parsed {
        changes: values.into_iter().map(Change::Event).collect(),
        ignored: 0,
    })
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
        let err = parse(Format::Ndjson, b"{\"a\":1}\n{oops\n").unwrap_err();
        assert!(
            matches!(&err, WebhookError::BadRequest { field, .. } if field == "line 2"),
            "{err}"
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
                    Ok(p) => prop_assert!(!p.changes.is_empty()),
                    Err(e) => {
                        let bad = matches!(e, WebhookError::BadRequest { .. });
                        prop_assert!(bad, "{}", e);
                    }
                }
            }
        }
    }
}
