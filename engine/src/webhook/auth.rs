//! Who may send: Standard Webhooks signatures and bearer tokens for Pacer's own
//! endpoint, HTTP Basic for Pipedrive, and the HMAC and comparison primitives the
//! CRM adapters build their own schemes on (HubSpot's v1/v2/v3 are in
//! [`super::hubspot`]).
//!
//! Every signature is computed over the raw body bytes as received, and every
//! comparison of a secret or a signature runs in constant time.

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::WebhookError;

/// How far a signed timestamp may be from now, either way (Standard Webhooks and
/// HubSpot both use five minutes).
pub const TOLERANCE_S: i64 = 5 * 60;

/// HMAC-SHA256 of the concatenated `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Equal bytes, compared in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A header's value as text; `None` when absent or not visible ASCII.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// A Standard Webhooks secret: `whsec_` and the base64 key (the prefix is optional).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    pub fn parse(text: &str) -> Result<Self, String> {
        let b64 = text.strip_prefix("whsec_").unwrap_or(text);
        let key = B64
            .decode(b64)
            .map_err(|e| format!("not a whsec_ base64 secret ({e})"))?;
        if key.len() < 16 {
            return Err(format!(
                "the key is {} bytes; Standard Webhooks secrets have 24 to 64",
                key.len()
            ));
        }
        Ok(WebhookSecret(key))
    }
}

/// Checks a Standard Webhooks signature: `webhook-signature` holds space-separated
/// `v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`; any one
/// of them made with any one of `secrets` (several, to rotate) passes, if the
/// timestamp is within [`TOLERANCE_S`] of `now_s`.
pub fn verify_standard_webhook(
    secrets: &[WebhookSecret],
    headers: &HeaderMap,
    body: &[u8],
    now_s: i64,
) -> Result<(), WebhookError> {
    let unauthorized = |m: String| WebhookError::Unauthorized(m);
    let id = header(headers, "webhook-id")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| unauthorized("the webhook-id header is missing".into()))?;
    let ts_text = header(headers, "webhook-timestamp")
        .ok_or_else(|| unauthorized("the webhook-timestamp header is missing".into()))?;
    let ts: i64 = ts_text.parse().map_err(|_| {
        unauthorized(format!(
            "webhook-timestamp: {ts_text:?} is not whole seconds since the epoch"
        ))
    })?;
    if now_s.abs_diff(ts) > TOLERANCE_S.unsigned_abs() {
        return Err(unauthorized(format!(
            "webhook-timestamp: {ts} is {} s from now; the tolerance is {TOLERANCE_S} s",
            now_s.abs_diff(ts)
        )));
    }
    let signatures = header(headers, "webhook-signature")
        .ok_or_else(|| unauthorized("the webhook-signature header is missing".into()))?;
    let expected: Vec<[u8; 32]> = secrets
        .iter()
        .map(|s| hmac_sha256(&s.0, &[id.as_bytes(), b".", ts_text.as_bytes(), b".", body]))
        .collect();
    for sig in signatures.split(' ') {
        let Some(b64) = sig.strip_prefix("v1,") else {
            continue;
        };
        let Ok(given) = B64.decode(b64) else {
            continue;
        };
        if expected.iter().any(|e| constant_time_eq(e, &given)) {
            return Ok(());
        }
    }
    Err(unauthorized(
        "webhook-signature: no v1 signature matches the body with a configured secret".into(),
    ))
}

/// The `webhook-signature` value for a body (for senders and tests).
pub fn sign_standard_webhook(secret: &WebhookSecret, id: &str, ts_s: i64, body: &[u8]) -> String {
    let ts = ts_s.to_string();
    let mac = hmac_sha256(&secret.0, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", B64.encode(mac))
}

/// The Standard Webhooks headers, in the order a sender writes them.
pub const STANDARD_HEADERS: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];

/// What to say to a request that carries neither a bearer token nor a complete set of
/// Standard Webhooks headers, where both are accepted: which headers came, which are
/// missing, and the other way to authenticate.
pub fn missing_credentials(headers: &HeaderMap) -> String {
    let (sent, missing): (Vec<&str>, Vec<&str>) = STANDARD_HEADERS
        .iter()
        .partition(|h| headers.contains_key(**h));
    if sent.is_empty() {
        "no credentials: send `Authorization: Bearer <token>`, or sign the body with Standard Webhooks (headers webhook-id, webhook-timestamp and webhook-signature)".into()
    } else {
        format!(
            "the Standard Webhooks header{} {} {} missing ({} came); sign the request, or send `Authorization: Bearer <token>` instead",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(" and "),
            if missing.len() > 1 { "are" } else { "is" },
            sent.join(", ")
        )
    }
}

/// Checks `Authorization: Bearer <token>` against the configured tokens.
pub fn verify_bearer(tokens: &[String], headers: &HeaderMap) -> Result<(), WebhookError> {
    let given = header(headers, "authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or_else(|| {
            WebhookError::Unauthorized(
                "no `Authorization: Bearer <token>` header (the token is one of [webhooks.native] bearer_tokens)"
                    .into(),
            )
        })?;
    if tokens
        .iter()
        .any(|t| constant_time_eq(t.as_bytes(), given.trim().as_bytes()))
    {
        Ok(())
    } else {
        Err(WebhookError::Unauthorized(
            "the bearer token is not one of the configured tokens".into(),
        ))
    }
}

/// Checks `Authorization: Basic base64(user:password)` (Pipedrive's only scheme).
pub fn verify_basic(user: &str, password: &str, headers: &HeaderMap) -> Result<(), WebhookError> {
    let refused = |m: &str| WebhookError::Unauthorized(m.to_owned());
    let b64 = header(headers, "authorization")
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .ok_or_else(|| refused("no Basic credentials"))?;
    let decoded = B64
        .decode(b64.trim())
        .map_err(|_| refused("the Basic credentials are not base64"))?;
    let expected = format!("{user}:{password}");
    // Both sides are compared whole, so neither the user nor the password leaks by
    // timing.
    if constant_time_eq(&decoded, expected.as_bytes()) {
        Ok(())
    } else {
        Err(refused("wrong user or password"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_request_without_credentials_is_told_which_headers_it_could_send() {
        let mut h = HeaderMap::new();
        let none = missing_credentials(&h);
        assert!(
            none.contains("Authorization: Bearer") && none.contains("webhook-signature"),
            "{none}"
        );
        h.insert("webhook-id", "msg_1".parse().unwrap());
        h.insert("webhook-timestamp", "1700000000".parse().unwrap());
        let one = missing_credentials(&h);
        assert!(
            one.contains("header webhook-signature is missing")
                && one.contains("webhook-id, webhook-timestamp came"),
            "{one}"
        );
        let mut h = HeaderMap::new();
        h.insert("webhook-signature", "v1,xx".parse().unwrap());
        let two = missing_credentials(&h);
        assert!(
            two.contains("headers webhook-id and webhook-timestamp are missing"),
            "{two}"
        );
    }

    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    // The example of the Standard Webhooks specification (and of its reference
    // libraries' tests): this secret, id, timestamp and payload sign to this value.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_specification_vector_signs_and_verifies() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        assert_eq!(
            sign_standard_webhook(&secret, SPEC_ID, SPEC_TS, SPEC_BODY),
            SPEC_SIG
        );
        let h = headers(&[
            ("webhook-id", SPEC_ID),
            ("webhook-timestamp", &SPEC_TS.to_string()),
            ("webhook-signature", SPEC_SIG),
        ]);
        assert_eq!(
            verify_standard_webhook(&[secret], &h, SPEC_BODY, SPEC_TS + 10),
            Ok(())
        );
    }

    #[test]
    fn any_listed_signature_with_any_secret_passes_for_rotation() {
        let old = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let new = WebhookSecret::parse("whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0").unwrap();
        let sig = format!(
            "v1,bm90IGl0 {}",
            sign_standard_webhook(&new, SPEC_ID, SPEC_TS, SPEC_BODY)
        );
        let h = headers(&[
            ("webhook-id", SPEC_ID),
            ("webhook-timestamp", &SPEC_TS.to_string()),
            ("webhook-signature", &sig),
        ]);
        assert_eq!(
            verify_standard_webhook(&[old, new], &h, SPEC_BODY, SPEC_TS),
            Ok(())
        );
    }

    #[test]
    fn wrong_secret_stale_time_and_tampered_body_are_refused() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let other = WebhookSecret::parse("whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0").unwrap();
        let h = headers(&[
            ("webhook-id", SPEC_ID),
            ("webhook-timestamp", &SPEC_TS.to_string()),
            ("webhook-signature", SPEC_SIG),
        ]);
        let refused = |r: Result<(), WebhookError>| matches!(r, Err(WebhookError::Unauthorized(_)));
        assert!(refused(verify_standard_webhook(
            &[other],
            &h,
            SPEC_BODY,
            SPEC_TS
        )));
        assert!(refused(verify_standard_webhook(
            std::slice::from_ref(&secret),
            &h,
            SPEC_BODY,
            SPEC_TS + TOLERANCE_S + 1
        )));
        assert!(refused(verify_standard_webhook(
            std::slice::from_ref(&secret),
            &h,
            SPEC_BODY,
            SPEC_TS - TOLERANCE_S - 1
        )));
        assert!(refused(verify_standard_webhook(
            std::slice::from_ref(&secret),
            &h,
            br#"{"test": 2432232315}"#,
            SPEC_TS
        )));
        let no_sig = headers(&[("webhook-id", SPEC_ID), ("webhook-timestamp", "1614265330")]);
        assert!(refused(verify_standard_webhook(
            &[secret],
            &no_sig,
            SPEC_BODY,
            SPEC_TS
        )));
    }

    #[test]
    fn bearer_and_basic() {
        let tokens = vec!["t-123".to_owned()];
        assert_eq!(
            verify_bearer(&tokens, &headers(&[("authorization", "Bearer t-123")])),
            Ok(())
        );
        assert!(verify_bearer(&tokens, &headers(&[("authorization", "Bearer t-124")])).is_err());
        assert!(verify_bearer(&tokens, &HeaderMap::new()).is_err());
        let basic = format!("Basic {}", B64.encode("pd:s3cret"));
        assert_eq!(
            verify_basic("pd", "s3cret", &headers(&[("authorization", &basic)])),
            Ok(())
        );
        let wrong = format!("Basic {}", B64.encode("pd:s3cres"));
        assert!(verify_basic("pd", "s3cret", &headers(&[("authorization", &wrong)])).is_err());
        assert!(verify_basic("pd", "s3cret", &headers(&[("authorization", "Basic !!")])).is_err());
    }
}
