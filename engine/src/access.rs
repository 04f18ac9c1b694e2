//! Who may see what: users, their roles and scopes, API tokens and browser sessions.
//!
//! Users live outside the event log, in `users.json` in the data dir (mode 0600), so no
//! secret ever reaches the log: a password only as its Argon2id hash, a token only as
//! the SHA-256 of its text (tokens are 32 random bytes: a fast hash is enough). The
//! file is written whole (temp file and rename) by `pacer user` / `pacer token`, and a
//! running server reads it again when it changes, so a revoked token is refused at
//! once. Every change is appended to `audit.jsonl` beside it.
//!
//! | role | may |
//! | --- | --- |
//! | `admin` | everything, users, dead letters, metrics |
//! | `finance` | every report, alert and digest (plans: the CLI) |
//! | `manager` | the reports, alerts, digests and acks of their teams: the teams whose reps name them as manager (`rep_registered` / `rep_reassigned`), and any listed |
//! | `rep` | their own figures and alerts |
//! | `crm` | the webhook endpoints only |
//! | `service` | gateways and tools: webhooks, dead letters, metrics, every read |

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use pacer_projections::state::State;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The users file in a data dir.
pub const USERS_FILE: &str = "users.json";
/// The audit trail in a data dir.
pub const AUDIT_FILE: &str = "audit.jsonl";
/// The most users and tokens one file holds.
pub const USERS_MAX: usize = 10_000;
pub const TOKENS_MAX: usize = 50_000;
/// A password must be at least this long.
pub const PASSWORD_CHARS_MIN: usize = 12;

#[derive(Debug, Error)]
pub enum AccessError {
    #[error("cannot {doing} {path}: {source}")]
    Io {
        doing: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid users file: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// A request of the operator that cannot be done (names the field and value).
    #[error("{0}")]
    Invalid(String),
}

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Finance,
    Manager,
    Rep,
    Crm,
    Service,
}

impl Role {
    pub fn parse(text: &str) -> Result<Role, String> {
        match text {
            "admin" => Ok(Role::Admin),
            "finance" => Ok(Role::Finance),
            "manager" => Ok(Role::Manager),
            "rep" => Ok(Role::Rep),
            "crm" => Ok(Role::Crm),
            "service" => Ok(Role::Service),
            _ => Err(format!(
                "role: {text:?} is not admin, finance, manager, rep, crm or service"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Finance => "finance",
            Role::Manager => "manager",
            Role::Rep => "rep",
            Role::Crm => "crm",
            Role::Service => "service",
        }
    }

    /// May read figures (reports, alerts, digests, the stream), within a scope.
    pub fn reads(self) -> bool {
        !matches!(self, Role::Crm)
    }

    /// May operate the service (dead letters, metrics).
    pub fn operates(self) -> bool {
        matches!(self, Role::Admin | Role::Service)
    }

    /// May send events (the native endpoint).
    pub fn writes_events(self) -> bool {
        matches!(self, Role::Admin | Role::Crm | Role::Service)
    }
}

/// A user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// Teams listed for a manager (beyond those their reps name them for).
    #[serde(default)]
    pub teams: Vec<String>,
    /// The rep a `rep` user is.
    #[serde(default)]
    pub rep: Option<String>,
    /// The Argon2id hash (PHC string); `None`: no log-in, tokens only.
    #[serde(default)]
    pub password: Option<String>,
    pub created_at: String,
}

/// An API token, as stored: never its text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// `tk-` and 8 hex digits; the token's text starts with `pacer_<id>_`.
    pub id: String,
    pub user: String,
    /// Hex SHA-256 of the token's text.
    pub hash: String,
    #[serde(default)]
    pub note: Option<String>,
    pub created_at: String,
    /// Refused from this time on (RFC 3339).
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub revoked_at: Option<String>,
}

/// The users file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Users {
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    #[serde(default)]
    pub tokens: Vec<Token>,
}

/// What a user may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The whole organisation.
    All,
    /// These teams only.
    Teams(BTreeSet<String>),
    /// One rep's own figures.
    Rep(String),
    /// Nothing (a `crm` user).
    Nothing,
}

impl Scope {
    /// The scope of `user` against the organisation as `state` knows it now.
    pub fn of(user: &User, state: &State) -> Scope {
        match user.role {
            Role::Admin | Role::Finance | Role::Service => Scope::All,
            Role::Crm => Scope::Nothing,
            Role::Rep => user.rep.clone().map_or(Scope::Nothing, Scope::Rep),
            Role::Manager => {
                let mut teams = state.teams_managed_now(&user.name);
                teams.extend(user.teams.iter().cloned());
                Scope::Teams(teams)
            }
        }
    }

    /// Whether a team's figures are in scope.
    pub fn team(&self, team: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Teams(t) => t.contains(team),
            Scope::Rep(_) | Scope::Nothing => false,
        }
    }

    /// Whether a rep's figures are in scope (through their current team).
    pub fn rep(&self, rep: &str, state: &State) -> bool {
        match self {
            Scope::All => true,
            Scope::Teams(t) => state.team_now(rep).is_some_and(|team| t.contains(team)),
            Scope::Rep(r) => r == rep,
            Scope::Nothing => false,
        }
    }
}

/// Writes a file whole and privately: a temp file (mode 0600), flushed, renamed over
/// `path`, so a reader sees the old file or the new one, never a part.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AccessError> {
    use std::io::Write;
    let io = |doing, source| AccessError::Io {
        doing,
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("json.tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(|e| io("write", e))?;
    f.write_all(bytes).map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("flush", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("replace", e))
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut out);
    out
}

/// A user or team name: letters, digits, `.`, `-`, `_`, `@`, at most 64.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@' | ' '))
}

impl Users {
    /// The users file of a data dir (empty when there is none).
    pub fn load(path: &Path) -> Result<Users, AccessError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| AccessError::Corrupt {
                path: path.to_owned(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Users::default()),
            Err(source) => Err(AccessError::Io {
                doing: "read",
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Writes the file whole: a temp file (mode 0600), flushed, renamed over it.
    pub fn save(&self, path: &Path) -> Result<(), AccessError> {
        let text = serde_json::to_vec_pretty(self).expect("users serialise");
        write_private(path, &text)
    }

    /// Adds a user.
    pub fn add(
        &mut self,
        name: &str,
        role: Role,
        teams: Vec<String>,
        rep: Option<String>,
    ) -> Result<(), AccessError> {
        let invalid = |m: String| Err(AccessError::Invalid(m));
        if !valid_name(name) {
            return invalid(format!(
                "user: {name:?} is not a name (letters, digits, . - _ @, at most 64)"
            ));
        }
        if self.users.contains_key(name) {
            return invalid(format!("user: {name:?} exists already"));
        }
        if self.users.len() >= USERS_MAX {
            return invalid(format!("user: at most {USERS_MAX} users"));
        }
        if let Some(t) = teams.iter().find(|t| !valid_name(t)) {
            return invalid(format!("teams: {t:?} is not a team name"));
        }
        if role == Role::Rep && rep.is_none() {
            return invalid("rep: a rep user needs --rep (the rep id they are)".into());
        }
        self.users.insert(
            name.to_owned(),
            User {
                name: name.to_owned(),
                role,
                teams,
                rep,
                password: None,
                created_at: now_rfc3339(),
            },
        );
        Ok(())
    }

    fn user_mut(&mut self, name: &str) -> Result<&mut User, AccessError> {
        self.users
            .get_mut(name)
            .ok_or_else(|| AccessError::Invalid(format!("user: no user {name:?}")))
    }

    /// Removes a user and revokes their tokens.
    pub fn remove(&mut self, name: &str) -> Result<(), AccessError> {
        self.user_mut(name)?;
        self.users.remove(name);
        let now = now_rfc3339();
        for t in self.tokens.iter_mut().filter(|t| t.user == name) {
            t.revoked_at.get_or_insert_with(|| now.clone());
        }
        Ok(())
    }

    pub fn set_teams(&mut self, name: &str, teams: Vec<String>) -> Result<(), AccessError> {
        if let Some(t) = teams.iter().find(|t| !valid_name(t)) {
            return Err(AccessError::Invalid(format!(
                "teams: {t:?} is not a team name"
            )));
        }
        self.user_mut(name)?.teams = teams;
        Ok(())
    }

    /// Sets a user's password (Argon2id).
    pub fn set_password(&mut self, name: &str, password: &str) -> Result<(), AccessError> {
        if password.chars().count() < PASSWORD_CHARS_MIN {
            return Err(AccessError::Invalid(format!(
                "password: at least {PASSWORD_CHARS_MIN} characters"
            )));
        }
        let salt = SaltString::encode_b64(&random_bytes::<16>())
            .map_err(|e| AccessError::Invalid(format!("password: {e}")))?;
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| AccessError::Invalid(format!("password: {e}")))?
            .to_string();
        self.user_mut(name)?.password = Some(hash);
        Ok(())
    }

    /// Creates a token for `user`; returns it and its text, which is shown once and
    /// never stored.
    pub fn create_token(
        &mut self,
        user: &str,
        expires_at: Option<String>,
        note: Option<String>,
    ) -> Result<(Token, String), AccessError> {
        self.user_mut(user)?;
        if self.tokens.len() >= TOKENS_MAX {
            return Err(AccessError::Invalid(format!(
                "token: at most {TOKENS_MAX} tokens"
            )));
        }
        let id_bytes = random_bytes::<4>();
        let id = format!(
            "tk-{}",
            id_bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let text = format!("pacer_{id}_{}", B64.encode(random_bytes::<32>()));
        let token = Token {
            id,
            user: user.to_owned(),
            hash: sha256_hex(&text),
            note,
            created_at: now_rfc3339(),
            expires_at,
            revoked_at: None,
        };
        self.tokens.push(token.clone());
        Ok((token, text))
    }

    /// Revokes a token by id.
    pub fn revoke(&mut self, id: &str) -> Result<(), AccessError> {
        let t = self
            .tokens
            .iter_mut()
            .find(|t| t.id == id)
            .ok_or_else(|| AccessError::Invalid(format!("token: no token {id:?}")))?;
        t.revoked_at.get_or_insert_with(now_rfc3339);
        Ok(())
    }

    /// The user a token's text belongs to, if it is live at `now_ms`.
    pub fn by_token(&self, text: &str, now_ms: i64) -> Option<&User> {
        let id = text.strip_prefix("pacer_")?.split('_').next()?;
        let token = self.tokens.iter().find(|t| t.id == id)?;
        let given = sha256_hex(text);
        if !crate::webhook::auth::constant_time_eq(given.as_bytes(), token.hash.as_bytes()) {
            return None;
        }
        if token.revoked_at.is_some() {
            return None;
        }
        let expired = token
            .expires_at
            .as_deref()
            .and_then(crate::webhook::ms_of_rfc3339)
            .is_some_and(|t| now_ms >= t);
        if expired {
            return None;
        }
        self.users.get(&token.user)
    }

    /// The user, if the password is theirs. The hash is computed even for an
    /// unknown user, so the answer takes as long either way.
    pub fn by_password(&self, name: &str, password: &str) -> Option<&User> {
        const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J0/aKHHP8d2KjbsTa0bqYbXHAoPx4Y4+dqDaNUiZ2Fo";
        let user = self.users.get(name);
        let stored = user.and_then(|u| u.password.as_deref()).unwrap_or(DUMMY);
        let ok = PasswordHash::new(stored)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        user.filter(|u| ok && u.password.is_some())
    }
}

/// How long a browser session lasts.
pub const SESSION_MS: i64 = 12 * 3_600_000;
/// The most sessions a server keeps (the oldest go first).
pub const SESSIONS_MAX: usize = 10_000;
/// The most users and addresses with failed log-ins remembered.
const FAILURES_MAX: usize = 10_000;

/// Who is asking, and how they proved it.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: User,
    /// The session's CSRF token when it came with the session cookie; `None` for an
    /// API token (a header no other site can make a browser send).
    pub csrf: Option<String>,
}

/// Why a request is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// 401: no credentials, or not valid ones.
    Unauthenticated(&'static str),
    /// 403: valid, but not allowed.
    Forbidden(String),
    /// 500: the users file cannot be read.
    Broken(String),
}

struct Session {
    user: String,
    csrf: String,
    expires_ms: i64,
}

/// The running server's gate: the users file (read again when it changes), the
/// browser sessions (in memory: a restart logs everyone out), and failed log-ins.
pub struct Access {
    data_dir: PathBuf,
    cache: std::sync::Mutex<Option<(std::time::SystemTime, std::sync::Arc<Users>)>>,
    sessions: std::sync::Mutex<BTreeMap<String, Session>>,
    failures: std::sync::Mutex<BTreeMap<String, (u32, i64)>>,
}

impl Access {
    pub fn new(data_dir: &Path) -> Self {
        Access {
            data_dir: data_dir.to_owned(),
            cache: std::sync::Mutex::new(None),
            sessions: std::sync::Mutex::new(BTreeMap::new()),
            failures: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The users as the file says now.
    pub fn users(&self) -> Result<std::sync::Arc<Users>, Denied> {
        let path = self.data_dir.join(USERS_FILE);
        let stamp = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        let mut cache = self.cache.lock().expect("not poisoned");
        if let Some((at, users)) = cache.as_ref() {
            if *at == stamp && stamp != std::time::UNIX_EPOCH {
                return Ok(std::sync::Arc::clone(users));
            }
        }
        let users =
            std::sync::Arc::new(Users::load(&path).map_err(|e| Denied::Broken(e.to_string()))?);
        *cache = Some((stamp, std::sync::Arc::clone(&users)));
        Ok(users)
    }

    /// The caller of a request: a bearer token (`Authorization: Bearer pacer_...`) or
    /// the session cookie (`pacer_session`).
    pub fn caller(
        &self,
        authorization: Option<&str>,
        cookie: Option<&str>,
        now_ms: i64,
    ) -> Result<Caller, Denied> {
        let users = self.users()?;
        if let Some(auth) = authorization {
            let token = auth
                .strip_prefix("Bearer ")
                .or_else(|| auth.strip_prefix("bearer "))
                .map(str::trim)
                .ok_or(Denied::Unauthenticated(
                    "the Authorization header is not a bearer token",
                ))?;
            return users
                .by_token(token, now_ms)
                .map(|u| Caller {
                    user: u.clone(),
                    csrf: None,
                })
                .ok_or(Denied::Unauthenticated(
                    "the token is not valid (unknown, revoked or expired)",
                ));
        }
        let Some(id) = cookie.and_then(session_cookie) else {
            return Err(Denied::Unauthenticated(
                "credentials required: a bearer token, or log in (POST /v1/login)",
            ));
        };
        let mut sessions = self.sessions.lock().expect("not poisoned");
        let key = sha256_hex(id);
        let Some(s) = sessions.get(&key) else {
            return Err(Denied::Unauthenticated(
                "the session has ended; log in again",
            ));
        };
        if s.expires_ms <= now_ms {
            sessions.remove(&key);
            return Err(Denied::Unauthenticated(
                "the session has ended; log in again",
            ));
        }
        let user = users
            .users
            .get(&s.user)
            .cloned()
            .ok_or(Denied::Unauthenticated(
                "the session's user no longer exists",
            ))?;
        Ok(Caller {
            user,
            csrf: Some(s.csrf.clone()),
        })
    }

    /// A log-in: the session cookie's value and the CSRF token, or why not. Failures
    /// are slowed down per user and per address (the caller waits the returned time
    /// before answering) and logged without the password.
    pub fn log_in(
        &self,
        name: &str,
        password: &str,
        from: &str,
        now_ms: i64,
    ) -> Result<(User, String, String), (std::time::Duration, &'static str)> {
        let keys = [format!("user:{name}"), format!("addr:{from}")];
        let users = self
            .users()
            .map_err(|_| (std::time::Duration::ZERO, "the users file cannot be read"))?;
        let user = users.by_password(name, password).cloned();
        let mut failures = self.failures.lock().expect("not poisoned");
        let Some(user) = user else {
            let mut worst = 0;
            for k in &keys {
                if failures.len() >= FAILURES_MAX && !failures.contains_key(k) {
                    if let Some(oldest) = failures
                        .iter()
                        .min_by_key(|(_, v)| v.1)
                        .map(|(k, _)| k.clone())
                    {
                        failures.remove(&oldest);
                    }
                }
                let e = failures.entry(k.clone()).or_insert((0, now_ms));
                e.0 = e.0.saturating_add(1);
                e.1 = now_ms;
                worst = worst.max(e.0);
            }
            eprintln!("pacer: failed log-in for user {name:?} from {from} ({worst} in a row)");
            let delay_ms = (250u64 << worst.min(5)).min(8_000);
            return Err((
                std::time::Duration::from_millis(delay_ms),
                "wrong user or password",
            ));
        };
        for k in &keys {
            failures.remove(k);
        }
        drop(failures);
        let id = B64.encode(random_bytes::<32>());
        let csrf = B64.encode(random_bytes::<24>());
        let mut sessions = self.sessions.lock().expect("not poisoned");
        sessions.retain(|_, s| s.expires_ms > now_ms);
        if sessions.len() >= SESSIONS_MAX {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires_ms)
                .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            sha256_hex(&id),
            Session {
                user: user.name.clone(),
                csrf: csrf.clone(),
                expires_ms: now_ms + SESSION_MS,
            },
        );
        Ok((user, id, csrf))
    }

    /// Ends the session of a cookie.
    pub fn log_out(&self, cookie: Option<&str>) {
        if let Some(id) = cookie.and_then(session_cookie) {
            self.sessions
                .lock()
                .expect("not poisoned")
                .remove(&sha256_hex(id));
        }
    }
}

/// The value of the `pacer_session` cookie in a `Cookie` header.
fn session_cookie(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == "pacer_session")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Appends one line to the audit trail: who did what to what (never a secret).
pub fn audit(
    data_dir: &Path,
    actor: &str,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<(), AccessError> {
    use std::io::Write;
    let path = data_dir.join(AUDIT_FILE);
    std::fs::create_dir_all(data_dir).map_err(|source| AccessError::Io {
        doing: "create",
        path: data_dir.to_owned(),
        source,
    })?;
    let line = serde_json::json!({
        "at": now_rfc3339(), "actor": actor, "action": action, "target": target, "detail": detail,
    });
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|source| AccessError::Io {
            doing: "append to",
            path: path.clone(),
            source,
        })?;
    writeln!(f, "{line}").map_err(|source| AccessError::Io {
        doing: "append to",
        path,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_as_hashes_and_refused_once_revoked_or_expired() {
        let mut u = Users::default();
        u.add("maria", Role::Manager, vec!["north".into()], None)
            .unwrap();
        let (t, text) = u.create_token("maria", None, None).unwrap();
        assert!(text.starts_with(&format!("pacer_{}_", t.id)));
        let stored = serde_json::to_string(&u).unwrap();
        assert!(!stored.contains(&text[t.id.len() + 7..]));
        assert_eq!(u.by_token(&text, 0).map(|u| u.name.as_str()), Some("maria"));
        assert!(u.by_token(&format!("{text}x"), 0).is_none());
        u.revoke(&t.id).unwrap();
        assert!(u.by_token(&text, 0).is_none());
        let (_, soon) = u
            .create_token("maria", Some("2026-12-01T00:00:00Z".into()), None)
            .unwrap();
        let dec1 = crate::webhook::ms_of_rfc3339("2026-12-01T00:00:00Z").unwrap();
        assert!(u.by_token(&soon, dec1 - 1).is_some());
        assert!(u.by_token(&soon, dec1).is_none());
    }

    #[test]
    fn passwords_are_argon2id_and_checked() {
        let mut u = Users::default();
        u.add("fin", Role::Finance, vec![], None).unwrap();
        assert!(u.set_password("fin", "short").is_err());
        u.set_password("fin", "correct horse battery").unwrap();
        let hash = u.users["fin"].password.clone().unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(u.by_password("fin", "correct horse battery").is_some());
        assert!(u.by_password("fin", "wrong horse battery").is_none());
        assert!(u.by_password("nobody", "correct horse battery").is_none());
        assert!(u.add("fin", Role::Admin, vec![], None).is_err());
        assert!(u.add("r", Role::Rep, vec![], None).is_err());
        assert!(Role::parse("boss").unwrap_err().contains("\"boss\""));
    }
}
