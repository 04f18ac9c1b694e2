//! One attempt of one delivery over its channel, and what the answer means: sent,
//! try again (5xx, 408, 429 with its `Retry-After`, timeouts, a connection refused,
//! an SMTP 4xx), gone (410, a mailbox the SMTP server refuses: the subscription is
//! disabled) or refused for good (another 4xx: the operator must look).
//!
//! Every attempt of a delivery carries its id: the `webhook-id` header (and, for a
//! signed webhook, in the Standard Webhooks signature) and the email's Message-ID.

use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};

use super::render;
use super::store::Delivery;
use super::subscription::Channel;
use crate::config::{DeliverConfig, SmtpTls};
use crate::webhook::auth::{sign_standard_webhook, WebhookSecret};

/// The longest answer body read back from a receiver (for the error message).
const ANSWER_BYTES_MAX: u64 = 4096;

/// What an attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Worth trying again, not before `after_ms` when the receiver said so.
    Retry {
        error: String,
        after_ms: Option<u64>,
    },
    /// The receiver is gone for good (410, an unknown mailbox): disable.
    Gone {
        error: String,
    },
    /// Refused for a reason a retry will not change: kept failed for the operator.
    Refused {
        error: String,
    },
}

/// Attempts a delivery once. `now_s` stamps a signed webhook.
pub fn attempt(d: &Delivery, cfg: &DeliverConfig, now_s: i64) -> Outcome {
    let app_url = cfg.app_url.as_deref();
    match &d.channel {
        Channel::Email { to } => email(d, to, cfg),
        Channel::Slack { url } => post(url, &render::slack(d, app_url), d, None, cfg, now_s),
        Channel::Teams { url } => post(url, &render::teams(d, app_url), d, None, cfg, now_s),
        Channel::Webhook { url, secret } => match WebhookSecret::parse(secret) {
            Ok(secret) => post(url, &render::webhook(d), d, Some(&secret), cfg, now_s),
            Err(e) => Outcome::Refused {
                error: format!("the subscription's secret: {e}"),
            },
        },
    }
}

fn post(
    url: &str,
    body: &serde_json::Value,
    d: &Delivery,
    secret: Option<&WebhookSecret>,
    cfg: &DeliverConfig,
    now_s: i64,
) -> Outcome {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_millis(cfg.timeout_ms))
        .redirects(0)
        .build();
    let bytes = serde_json::to_vec(body).expect("JSON values serialise");
    let mut req = agent
        .post(url)
        .set("content-type", "application/json")
        .set("user-agent", "Pacer-Deliveries/1")
        .set("webhook-id", &d.id)
        .set("webhook-timestamp", &now_s.to_string());
    if let Some(secret) = secret {
        req = req.set(
            "webhook-signature",
            &sign_standard_webhook(secret, &d.id, now_s, &bytes),
        );
    }
    match req.send_bytes(&bytes) {
        Ok(r) if (200..300).contains(&r.status()) => Outcome::Sent,
        Ok(r) => Outcome::Refused {
            error: format!(
                "{} answered {} {} (a redirect is not followed)",
                host_of(url),
                r.status(),
                r.status_text()
            ),
        },
        Err(ureq::Error::Status(code, r)) => {
            let retry_after = r.header("retry-after").and_then(retry_after_ms);
            let text = answer_text(r);
            let error = format!(
                "answered {code}{}",
                if text.is_empty() {
                    String::new()
                } else {
                    format!(": {text}")
                }
            );
            match code {
                410 => Outcome::Gone { error },
                408 | 425 | 429 | 500..=599 => Outcome::Retry {
                    error,
                    after_ms: retry_after,
                },
                _ => Outcome::Refused { error },
            }
        }
        // Not `t`'s own text: it starts with the URL, and a Slack or Teams URL is a
        // secret.
        Err(ureq::Error::Transport(t)) => Outcome::Retry {
            error: format!(
                "could not reach {}: {}{}",
                host_of(url),
                t.kind(),
                t.message().map_or(String::new(), |m| format!(" ({m})"))
            ),
            after_ms: None,
        },
    }
}

/// `https://host:port` of a URL: never its path, query or credentials.
fn host_of(url: &str) -> String {
    super::subscription::origin(url)
}

fn answer_text(r: ureq::Response) -> String {
    use std::io::Read as _;
    let mut buf = String::new();
    let _ = r
        .into_reader()
        .take(ANSWER_BYTES_MAX)
        .read_to_string(&mut buf);
    let t: String = buf.trim().chars().take(200).collect();
    t
}

/// `Retry-After` as seconds or an HTTP date, in milliseconds from now.
fn retry_after_ms(v: &str) -> Option<u64> {
    if let Ok(s) = v.trim().parse::<u64>() {
        return Some(s.saturating_mul(1000));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
    let ms = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(ms.max(0) as u64)
}

fn email(d: &Delivery, to: &str, cfg: &DeliverConfig) -> Outcome {
    let Some(smtp) = &cfg.smtp else {
        return Outcome::Retry {
            error: "no [deliver.smtp] is configured: the email waits for one".into(),
            after_ms: None,
        };
    };
    let (from, to) = match (smtp.from.parse::<Mailbox>(), to.parse::<Mailbox>()) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) => {
            return Outcome::Refused {
                error: format!("deliver.smtp.from: {e}"),
            }
        }
        (_, Err(e)) => {
            return Outcome::Gone {
                error: format!("{to:?} is not an address: {e}"),
            }
        }
    };
    let mail = render::email(d, cfg.app_url.as_deref());
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject)
        .message_id(Some(format!("<{}@{}>", d.id, from.email.domain())))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(mail.text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(mail.html),
                ),
        );
    let message = match message {
        Ok(m) => m,
        Err(e) => {
            return Outcome::Refused {
                error: format!("the email could not be made: {e}"),
            }
        }
    };
    let builder = match smtp.tls {
        SmtpTls::None => Ok(SmtpTransport::builder_dangerous(smtp.host.as_str())),
        SmtpTls::Starttls => SmtpTransport::starttls_relay(&smtp.host),
        SmtpTls::Tls => SmtpTransport::relay(&smtp.host),
    };
    let mut builder = match builder {
        Ok(b) => b
            .port(smtp.port)
            .timeout(Some(Duration::from_millis(cfg.timeout_ms))),
        Err(e) => {
            return Outcome::Refused {
                error: format!("deliver.smtp.host {:?}: {e}", smtp.host),
            }
        }
    };
    if let (Some(user), Some(password)) = (&smtp.user, &smtp.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    match builder.build().send(&message) {
        Ok(_) => Outcome::Sent,
        Err(e) => {
            let code = e.status().map(u16::from);
            let error = format!("SMTP {}:{}: {e}", smtp.host, smtp.port);
            // A mailbox the server does not know (enhanced status 5.1.x: a bad
            // destination) is a bounce; another permanent refusal (a policy, the
            // sender) is the operator's to look at.
            let mailbox = e.to_string().contains(" 5.1.");
            match code {
                Some(550 | 551 | 553) if mailbox => Outcome::Gone { error },
                _ if e.is_permanent() => Outcome::Refused { error },
                _ => Outcome::Retry {
                    error,
                    after_ms: None,
                },
            }
        }
    }
}

/// The wait before attempt `attempts + 1`: `base × 2^(attempts-1)`, at most `max`,
/// with ±20 % jitter from `jitter` (in 0..1000), so that receivers coming back are not
/// hit by every sender at once.
pub fn backoff_ms(attempts: u32, base_ms: u64, max_ms: u64, jitter: u64) -> u64 {
    let exp = base_ms.saturating_mul(1u64 << attempts.saturating_sub(1).min(30));
    let capped = exp.min(max_ms);
    capped * (800 + jitter % 400) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_within_the_jitter() {
        let at = |n, j| backoff_ms(n, 1000, 60_000, j);
        assert_eq!(at(1, 200), 1000);
        assert_eq!(at(2, 200), 2000);
        assert_eq!(at(3, 200), 4000);
        assert_eq!(at(20, 200), 60_000);
        for n in 1..12 {
            let mid = at(n, 200);
            assert!(at(n, 0) >= mid * 8 / 10 && at(n, 399) <= mid * 12 / 10);
        }
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(retry_after_ms("7"), Some(7000));
        assert_eq!(retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), Some(0));
        assert_eq!(retry_after_ms("soon"), None);
    }
}
