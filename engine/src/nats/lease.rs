//! The engine lease: which of the engines started against one deployment consumes
//! its events stream. Any number of `pacer serve` may run against one stream; the one
//! that holds the lease — a key in the JetStream KV bucket `<PREFIX>_LEASES`, whose
//! entries expire `lease_ttl_s` after they were written — consumes, publishes and
//! answers; the others wait as hot standbys, storing what it has acknowledged.
//!
//! The holder renews the key every third of the TTL with a compare-and-set on its
//! revision, and writes into it how far its alert changes are published (its log's
//! seq: every engine's log holds the stream's events in the stream's order, so a seq
//! means the same event in each). A holder that cannot renew before the TTL is up
//! stops taking events; one that finds the key taken by another stops. A standby
//! takes the key when it is gone (expired: the holder died) or released (a clean
//! stop), publishes again from the holder's last mark (the alerts stream drops what it
//! already has, by `Nats-Msg-Id`) and consumes from there. A restart of the holder on
//! its own data dir takes its own key back at once: the engine's id lives in its log.
//!
//! The holder also writes its mark, when it moves, to the key `engine` of the bucket
//! `<PREFIX>_MARKS`, whose entries do not expire: an engine that takes a lease which
//! expired with no standby watching (a replacement started after the holder died, on
//! its own data dir or an empty one) publishes again from there, so the changes the
//! dead holder had not published still go out.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Task;
use crate::error::NatsError;
use crate::kv_store::{open_kv_store, KvSpec};
use crate::log::Log;
use crate::outbox::Progress;
use crate::subjects::Subjects;

/// The log's meta key for this engine's id (made at its first start).
pub const ENGINE_ID: &str = "engine.id";

/// The log's meta key for the mark of the engine this one took the lease from: until
/// this engine's own published mark passes it, a restart on its data dir (which takes
/// its own lease back) publishes from there too, as the takeover did.
pub const TAKEN_AFTER: &str = "lease.taken_after";

/// The lease's key in the bucket: one engine consumes the whole stream.
pub const KEY: &str = "engine";

/// How often the holder looks whether its published mark moved (and renews with it).
const MARK_EVERY: Duration = Duration::from_millis(500);

/// What the lease's key holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Holder {
    /// The engine's id (its log's [`ENGINE_ID`]).
    pub engine: String,
    /// Where it runs (the machine's host name), for the operator.
    pub host: String,
    /// Every alert change of the events up to this seq of its log is published.
    pub published_seq: u64,
    /// Given up at a clean stop: the next engine may take it at once.
    #[serde(default)]
    pub released: bool,
}

/// This engine's id, made at its first start and kept in its log.
pub fn engine_id(log: &mut Log, host: &str) -> Result<String, NatsError> {
    if let Some(id) = log.meta(ENGINE_ID)? {
        return Ok(id);
    }
    let id = format!("{host}-{:016x}", rand::random::<u64>());
    log.set_meta(ENGINE_ID, &id)?;
    Ok(id)
}

/// The machine's host name, or `unknown`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The bucket of a deployment's leases, and the one of the holders' last marks.
#[derive(Clone)]
pub struct Leases {
    store: kv::Store,
    bucket: String,
    ttl: Duration,
    marks: kv::Store,
    marks_bucket: String,
}

/// What a look at the lease found.
pub enum Look {
    /// This engine holds it now (boxed: a bucket's handle is large).
    Taken(Box<Lease>),
    /// Another engine holds it: its last value and revision.
    Held(Holder, u64),
    /// Nobody holds it, and another engine was quicker to take it: look again.
    Gone,
}

/// `work`, given `limit`: no answer by then is an error of `bucket` while `doing`.
async fn within<T>(
    limit: Duration,
    bucket: &str,
    doing: &'static str,
    work: impl std::future::Future<Output = Result<T, NatsError>>,
) -> Result<T, NatsError> {
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| Err(lease_err(bucket, doing, &"no answer in time")))
}

fn lease_err(bucket: &str, doing: &'static str, e: &dyn std::fmt::Display) -> NatsError {
    NatsError::Lease {
        bucket: bucket.to_owned(),
        doing,
        reason: e.to_string(),
    }
}

impl Leases {
    /// Opens (or creates) the bucket: entries expire `ttl` after they were written,
    /// `replicas` copies. A bucket made with another TTL is an error (every engine of
    /// a deployment must agree on how long a lease lasts).
    pub async fn open(
        js: &jetstream::Context,
        subjects: &Subjects,
        ttl: Duration,
        replicas: usize,
    ) -> Result<Leases, NatsError> {
        let open = |name: String, description: &'static str, max_age: Duration| async move {
            let spec = KvSpec {
                name: &name,
                description,
                max_age,
                replicas,
            };
            match open_kv_store(js, &spec).await {
                Ok((store, max_age)) => Ok((store, max_age, name)),
                Err(e) => Err(NatsError::Lease {
                    bucket: name.clone(),
                    doing: e.doing,
                    reason: e.reason,
                }),
            }
        };
        let (store, max_age, bucket) = open(
            subjects.stream("LEASES"),
            "Pacer: which engine consumes the events stream (entries expire)",
            ttl,
        )
        .await?;
        if max_age != ttl {
            return Err(NatsError::LeaseTtl {
                bucket,
                bucket_s: max_age.as_secs(),
                configured_s: ttl.as_secs(),
            });
        }
        let (marks, _, marks_bucket) = open(
            subjects.stream("MARKS"),
            "Pacer: how far the last engine to hold the lease published (kept)",
            Duration::ZERO,
        )
        .await?;
        Ok(Leases {
            store,
            bucket,
            ttl,
            marks,
            marks_bucket,
        })
    }

    /// The last mark a holder wrote, if any (kept after its lease expired), and the
    /// revision of its key (0: none yet).
    pub async fn last_mark(&self) -> Result<(Option<Holder>, u64), NatsError> {
        let entry = self
            .marks
            .entry(KEY)
            .await
            .map_err(|e| lease_err(&self.marks_bucket, "reading the last mark", &e))?;
        Ok(match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                (serde_json::from_slice::<Holder>(&e.value).ok(), e.revision)
            }
            Some(e) => (None, e.revision),
            None => (None, 0),
        })
    }

    /// Writes `value` to the marks key, compare-and-set on `revision` (0: the key must
    /// not hold a value yet); returns the new revision.
    async fn write_mark(&self, value: Bytes, revision: u64) -> Result<u64, NatsError> {
        let written = if revision == 0 {
            self.marks
                .create(KEY, value)
                .await
                .map_err(|e| e.to_string())
        } else {
            self.marks
                .update(KEY, value, revision)
                .await
                .map_err(|e| e.to_string())
        };
        written.map_err(|e| lease_err(&self.marks_bucket, "writing the published mark", &e))
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Who holds the lease now, if anyone.
    pub async fn holder(&self) -> Result<Option<Holder>, NatsError> {
        Leases::holder_in(&self.store)
            .await
            .map_err(|e| lease_err(&self.bucket, "reading the lease", &e))
    }

    /// Who holds the lease of the bucket `store` now, if anyone (`pacer cluster
    /// status` reads it so, without making the bucket).
    pub async fn holder_in(store: &kv::Store) -> Result<Option<Holder>, kv::EntryError> {
        Ok(store
            .entry(KEY)
            .await?
            .filter(|e| e.operation == kv::Operation::Put)
            .and_then(|e| serde_json::from_slice::<Holder>(&e.value).ok())
            .filter(|h| !h.released))
    }

    /// Takes the lease for `me` when it is free, released, or `me`'s own (a restart
    /// on the same data dir); otherwise says who holds it.
    pub async fn look(&self, me: &Holder) -> Result<Look, NatsError> {
        let err = |doing, e: &dyn std::fmt::Display| lease_err(&self.bucket, doing, e);
        let entry = self
            .store
            .entry(KEY)
            .await
            .map_err(|e| err("reading the lease", &e))?;
        let value = Bytes::from(serde_json::to_vec(me).expect("a holder serialises"));
        // The key expires a TTL after the server writes it, later than this.
        let sent = Instant::now();
        let mut kept: Option<(Option<Holder>, u64)> = None;
        let (revision, previous) = match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                let holder = serde_json::from_slice::<Holder>(&e.value).map_err(|x| {
                    err(
                        "reading the lease",
                        &format!("its value is not a Pacer lease ({x})"),
                    )
                })?;
                if holder.engine != me.engine && !holder.released {
                    return Ok(Look::Held(holder, e.revision));
                }
                match self.store.update(KEY, value, e.revision).await {
                    Ok(rev) => (rev, Some(holder)),
                    Err(x) if x.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                        return Ok(Look::Held(holder, e.revision))
                    }
                    Err(x) => return Err(err("taking the lease", &x)),
                }
            }
            _ => {
                // Gone: the holder before may have died with changes unpublished;
                // its last mark says how far it got. Read before the key is taken:
                // a failure then takes nothing (the next turn looks again).
                kept = Some(match self.last_mark().await {
                    Ok(k) => k,
                    // A standby knows the mark it saw; only an engine nobody watched
                    // needs the kept one: taking over is not held up for it.
                    Err(e) => {
                        eprintln!("pacer serve: {e}; taking the lease without it");
                        (None, 0)
                    }
                });
                match self.store.create(KEY, value).await {
                    Ok(rev) => (rev, None),
                    Err(x) if x.kind() == kv::CreateErrorKind::AlreadyExists => {
                        // Taken between the look and the create: say by whom (or,
                        // gone again already, look again at the next turn).
                        return Ok(match self.holder().await? {
                            Some(holder) => Look::Held(holder, 0),
                            None => Look::Gone,
                        });
                    }
                    Err(x) => return Err(err("taking the lease", &x)),
                }
            }
        };
        // This engine's own mark is its log's to know.
        let (expired, marks_revision) = match kept {
            Some((mark, rev)) => (
                mark.filter(|h| h.engine != me.engine),
                Some(rev).filter(|r| *r > 0),
            ),
            None => (None, None),
        };
        Ok(Look::Taken(Box::new(Lease {
            leases: self.clone(),
            me: me.clone(),
            revision,
            previous,
            expired,
            marks_revision,
            state: Arc::new(LeaseState::new(sent + self.ttl_held())),
        })))
    }

    /// How long after a renewal was sent the holder still counts on it: two thirds
    /// of the TTL (the entry expires a TTL after the server wrote it, later than
    /// the send), so a holder that cannot renew stops well before another can take
    /// over.
    fn ttl_held(&self) -> Duration {
        self.ttl * 2 / 3
    }
}

/// The lease as its holder has it.
pub struct Lease {
    leases: Leases,
    me: Holder,
    revision: u64,
    /// The value the key held when it was taken (this engine's own before a
    /// restart, or a released holder's); `None` when it was gone (expired).
    pub previous: Option<Holder>,
    /// When it was gone: the last mark another engine wrote (see the module doc).
    pub expired: Option<Holder>,
    /// The revision of the marks key as this holder last knew it (`None`: to be
    /// read): its writes are compare-and-set on it, so a late write of an engine
    /// that held the lease before cannot replace a later holder's mark.
    marks_revision: Option<u64>,
    state: Arc<LeaseState>,
}

/// What the renewing task and the engine's loop share.
struct LeaseState {
    /// Monotonic milliseconds (since `base`) until which the lease counts as held.
    valid_until_ms: AtomicU64,
    base: Instant,
    /// Another engine has it.
    lost: AtomicBool,
}

impl LeaseState {
    fn new(valid_until: Instant) -> Self {
        let base = Instant::now();
        let s = LeaseState {
            valid_until_ms: AtomicU64::new(0),
            base,
            lost: AtomicBool::new(false),
        };
        s.extend(valid_until);
        s
    }

    fn extend(&self, until: Instant) {
        let ms = until.saturating_duration_since(self.base).as_millis() as u64;
        self.valid_until_ms.store(ms, Ordering::SeqCst);
    }

    fn held(&self) -> bool {
        !self.lost.load(Ordering::SeqCst)
            && (self.base.elapsed().as_millis() as u64) < self.valid_until_ms.load(Ordering::SeqCst)
    }
}

/// What the engine's loop asks of the lease before it takes or acknowledges events.
#[derive(Clone)]
pub struct Guard {
    state: Arc<LeaseState>,
    bucket: String,
}

impl Guard {
    /// Another engine holds the lease: this one must stop.
    pub fn is_lost(&self) -> bool {
        self.state.lost.load(Ordering::SeqCst)
    }

    /// `Err` once the lease may be another engine's: taken by one, or not renewed
    /// in time (lapsed: the renewal task goes on, and takes it back if it expired
    /// with nobody taking it).
    pub fn check(&self) -> Result<(), NatsError> {
        if self.state.held() {
            return Ok(());
        }
        Err(NatsError::LeaseLost {
            bucket: self.bucket.clone(),
            reason: if self.state.lost.load(Ordering::SeqCst) {
                "another engine holds it".to_owned()
            } else {
                "it could not be renewed in time (NATS away?)".to_owned()
            },
        })
    }
}

impl Lease {
    pub fn guard(&self) -> Guard {
        Guard {
            state: Arc::clone(&self.state),
            bucket: self.leases.bucket.clone(),
        }
    }

    pub fn holder(&self) -> &Holder {
        &self.me
    }

    /// Holds the lease from now on: a task renews it with how far alert changes are
    /// published (`mark`, which the engine's publisher moves) until the returned
    /// [`Held`] is dropped or released. The mark is kept in the marks bucket once it
    /// reaches `kept_from` (the mark of the engine before, which a mark below it
    /// must not replace: an engine taking over after this one dies in its catch-up
    /// would publish again what the one before had published long ago).
    pub fn hold(self, mark: Progress, kept_from: u64) -> Held {
        let kept_from = Arc::new(AtomicU64::new(kept_from));
        Held {
            guard: self.guard(),
            leases: self.leases.clone(),
            me: self.me.clone(),
            mark: mark.clone(),
            kept_from: Arc::clone(&kept_from),
            _keeper: Task(tokio::spawn(self.keep(mark, kept_from))),
        }
    }

    /// Renews the lease at once (with the mark it starts from), then every third of
    /// its TTL and within [`MARK_EVERY`] of a move of how far alert changes are
    /// published (so that a takeover publishes little again), each attempt given a
    /// sixth of the TTL, retried every half second when NATS refuses; until another
    /// engine holds it: returns then (the [`Guard`] says so too).
    async fn keep(mut self, mark: Progress, kept_from: Arc<AtomicU64>) {
        let every = self.leases.ttl / 3;
        let attempt = self.leases.ttl / 6;
        let mut renewed: Option<Instant> = None;
        let mut said_failing = false;
        // The mark last written to the marks bucket (`None`: not yet).
        let mut kept_mark: Option<u64> = None;
        let mut said_mark_failing = false;
        let (bucket, marks_bucket) = (self.leases.bucket.clone(), self.leases.marks_bucket.clone());
        loop {
            let published_seq = mark.get();
            let due = renewed.is_none_or(|at| at.elapsed() + MARK_EVERY >= every);
            if published_seq != self.me.published_seq || due {
                self.me.published_seq = published_seq;
                let sent = Instant::now();
                let outcome = within(attempt, &bucket, "renewing the lease", self.renew()).await;
                match outcome {
                    Ok(true) => {
                        self.state.extend(sent + self.leases.ttl_held());
                        renewed = Some(sent);
                        said_failing = false;
                        if kept_mark != Some(published_seq)
                            && published_seq >= kept_from.load(Ordering::SeqCst)
                        {
                            // Retried with the next renewal when it fails; meanwhile
                            // a replacement would publish a little more again (the
                            // alerts stream drops what it has).
                            let kept = within(
                                attempt,
                                &marks_bucket,
                                "writing the published mark",
                                self.keep_mark(),
                            );
                            match kept.await {
                                Ok(()) => {
                                    kept_mark = Some(published_seq);
                                    said_mark_failing = false;
                                }
                                Err(e) if !said_mark_failing => {
                                    said_mark_failing = true;
                                    eprintln!("pacer serve: {e}; retrying with the lease");
                                }
                                Err(_) => {}
                            }
                        }
                    }
                    Ok(false) => {
                        self.state.lost.store(true, Ordering::SeqCst);
                        eprintln!(
                        "pacer serve: the engine lease in {} is no longer this engine's (it expired, or another engine took it): taking no more events",
                        self.leases.bucket
                    );
                        return;
                    }
                    // Said once until a renewal succeeds again (the guard tells the
                    // engine when it is too late).
                    Err(e) if !said_failing => {
                        said_failing = true;
                        eprintln!("pacer serve: {e}; retrying every {MARK_EVERY:?}");
                    }
                    Err(_) => {}
                }
            }
            tokio::time::sleep(MARK_EVERY).await;
        }
    }

    /// Writes this holder's value (its mark) to the marks bucket, compare-and-set on
    /// the revision it knows: only the engine that has just renewed the lease writes
    /// it, and a conflict (a late write of another) is read again and retried with the
    /// next renewal.
    async fn keep_mark(&mut self) -> Result<(), NatsError> {
        let value = Bytes::from(serde_json::to_vec(&self.me).expect("a holder serialises"));
        let revision = match self.marks_revision {
            Some(r) => r,
            None => self.leases.last_mark().await?.1,
        };
        match self.leases.write_mark(value, revision).await {
            Ok(rev) => {
                self.marks_revision = Some(rev);
                Ok(())
            }
            Err(e) => {
                self.marks_revision = None;
                Err(e)
            }
        }
    }

    /// One renewal: `Ok(false)` when the key is another engine's (or was: written by
    /// another since). A renewal that timed out may have been written: a key holding
    /// this engine's value at a later revision is taken as its own. A key that expired
    /// with nobody writing the bucket since is taken back (nobody consumed meanwhile:
    /// only a holder does).
    async fn renew(&mut self) -> Result<bool, NatsError> {
        let err =
            |e: &dyn std::fmt::Display| lease_err(&self.leases.bucket, "renewing the lease", e);
        let value = Bytes::from(serde_json::to_vec(&self.me).expect("a holder serialises"));
        match self
            .leases
            .store
            .update(KEY, value.clone(), self.revision)
            .await
        {
            Ok(rev) => {
                self.revision = rev;
                Ok(true)
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                let entry = self.leases.store.entry(KEY).await.map_err(|e| err(&e))?;
                let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
                    // Taken back only if nobody wrote the bucket since this engine's
                    // last renewal: an engine that took it and let it go may have
                    // consumed, and a standby's takeover (with its mark) is the way.
                    let mut stream = self.leases.store.stream.clone();
                    let last = stream
                        .info()
                        .await
                        .map_err(|e| err(&e))?
                        .state
                        .last_sequence;
                    if last != self.revision {
                        return Ok(false);
                    }
                    return match self.leases.store.create(KEY, value).await {
                        Ok(rev) => {
                            self.revision = rev;
                            eprintln!(
                                "pacer serve: the engine lease had expired with nobody taking it: taken back"
                            );
                            Ok(true)
                        }
                        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
                        Err(e) => Err(err(&e)),
                    };
                };
                let ours = Some(entry).filter(|e| {
                    e.revision > self.revision
                        && serde_json::from_slice::<Holder>(&e.value)
                            .is_ok_and(|h| h.engine == self.me.engine && !h.released)
                });
                let Some(ours) = ours else {
                    return Ok(false);
                };
                self.revision = ours.revision;
                match self.leases.store.update(KEY, value, self.revision).await {
                    Ok(rev) => {
                        self.revision = rev;
                        Ok(true)
                    }
                    Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
                    Err(e) => Err(err(&e)),
                }
            }
            Err(e) => Err(err(&e)),
        }
    }
}

/// The lease while this engine holds it, renewed by a task of its own.
pub struct Held {
    pub guard: Guard,
    leases: Leases,
    me: Holder,
    mark: Progress,
    /// The mark below which this holder's is not kept (see [`Lease::hold`]); 0 once
    /// the takeover's catch-up is done.
    kept_from: Arc<AtomicU64>,
    _keeper: Task,
}

impl Held {
    /// The takeover's catch-up is done: this holder's mark is kept from now on (where
    /// it is below the mark it took over from, the two logs number events apart, and
    /// its own says where this log's publishing stands).
    pub fn caught_up(&self) {
        self.kept_from.store(0, Ordering::SeqCst);
    }

    /// Gives the lease up at a clean stop, with the final published mark, so that a
    /// standby takes over at once. Best effort, for at most 5 s: an engine that
    /// cannot reach NATS lets it expire.
    pub async fn release(self) {
        let Held {
            leases,
            me,
            mark,
            kept_from,
            ..
        } = self;
        let release = async {
            let entry = leases.store.entry(KEY).await.ok()??;
            let holder = serde_json::from_slice::<Holder>(&entry.value).ok()?;
            if holder.engine != me.engine {
                return None;
            }
            let last = Holder {
                published_seq: mark.get(),
                released: true,
                ..me
            };
            let value = Bytes::from(serde_json::to_vec(&last).expect("a holder serialises"));
            let released = leases
                .store
                .update(KEY, value.clone(), entry.revision)
                .await;
            if released.is_ok() {
                // The final mark is kept too, for an engine that starts after the
                // released key expired (a failure costs only changes published
                // again), once it has reached the mark this holder took over from.
                if last.published_seq >= kept_from.load(Ordering::SeqCst) {
                    if let Ok((_, revision)) = leases.last_mark().await {
                        let _ = leases.write_mark(value, revision).await;
                    }
                }
            }
            Some(released)
        };
        match tokio::time::timeout(Duration::from_secs(5), release).await {
            Ok(Some(Ok(_))) => eprintln!("pacer serve: released the engine lease"),
            Ok(None) => {}
            Ok(Some(Err(e))) => {
                eprintln!("pacer serve: the engine lease was not released ({e}); it expires")
            }
            Err(_) => {
                eprintln!("pacer serve: the engine lease was not released in time; it expires")
            }
        }
    }
}
