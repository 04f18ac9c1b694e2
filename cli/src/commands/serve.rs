//! `pacer serve`: the running service. With NATS (`--nats` or `[nats] urls`) it takes
//! the engine lease (or stands by, storing what the holder acknowledged, until the
//! lease is free), rebuilds the projections from the log, then consumes events from
//! JetStream, publishes clock ticks to it, publishes alerts and digests, answers
//! queries, and serves metrics; `--http` adds the webhook endpoints, which publish to
//! JetStream, and the queries, the live alert stream and the web app over this
//! engine's projections. Without NATS it rebuilds and is one process: the webhook
//! endpoints write straight to the log, and the queries and the live alert stream are
//! served over HTTP. Runs until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pacer_engine::access::Access;
use pacer_engine::config::NatsConfig;
use pacer_engine::deliver::{self, store::Mark, store::Store, Deliverer, Message};
use pacer_engine::dlq::DlqStore;
use pacer_engine::engine::Outgoing;
use pacer_engine::error::NatsError;
use pacer_engine::http::{Gateway, Live, Sink, Stores};
use pacer_engine::local::Local;
use pacer_engine::local::DELIVERY_FEED_MAX;
use pacer_engine::metrics::{serve_http, Metrics};
use pacer_engine::nats::lease::{self, Held, Holder, Leases, Look};
use pacer_engine::nats::pipeline::{
    rebuild_for_serve, Pipeline, Progress, Takeover, PUBLISHED_SEQ,
};
use pacer_engine::nats::query::{serve_queries, QueryContext};
use pacer_engine::nats::{connect, ensure_streams, Subjects};
use pacer_engine::replay::rebuild_for_append;
use pacer_engine::webhook::mirror::Mirror;
use tokio::sync::watch;

use super::common::{open_log_for_append, wall_clock};
use crate::context::Context;

/// How to reach NATS; each flag overrides the `[nats]` key of the same name.
#[derive(clap::Args, Debug, Clone)]
pub struct NatsArgs {
    /// Server URL; repeat (or separate with commas) for a cluster.
    #[arg(long = "nats", value_delimiter = ',')]
    urls: Vec<String>,
    /// A NATS credentials file (JWT and nkey seed).
    #[arg(long)]
    creds: Option<PathBuf>,
    /// A file holding an nkey seed.
    #[arg(long)]
    nkey: Option<PathBuf>,
    #[arg(long)]
    user: Option<String>,
    #[arg(long, env = "PACER_NATS_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    #[arg(long, env = "PACER_NATS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM root certificates to trust; TLS becomes required.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// The first token(s) of every subject.
    #[arg(long)]
    subject_prefix: Option<String>,
}

impl NatsArgs {
    /// The configuration with these flags applied.
    pub fn apply(&self, base: &NatsConfig) -> anyhow::Result<NatsConfig> {
        let mut c = base.clone();
        if !self.urls.is_empty() {
            c.urls = self.urls.clone();
        }
        if self.creds.is_some() {
            c.creds.clone_from(&self.creds);
        }
        if self.nkey.is_some() {
            c.nkey.clone_from(&self.nkey);
        }
        if self.user.is_some() {
            c.user.clone_from(&self.user);
        }
        if self.password.is_some() {
            c.password.clone_from(&self.password);
        }
        if self.token.is_some() {
            c.token.clone_from(&self.token);
        }
        if self.tls_ca.is_some() {
            c.tls_ca.clone_from(&self.tls_ca);
        }
        if let Some(p) = &self.subject_prefix {
            anyhow::ensure!(
                pacer_engine::config::valid_subject_prefix(p),
                "--subject-prefix: {p:?} is not dot-separated tokens of letters, digits, - and _"
            );
            c.subject_prefix.clone_from(p);
        }
        Ok(c)
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    nats: NatsArgs,
    /// Serve /metrics and /healthz on this address (host:port).
    #[arg(long)]
    metrics_addr: Option<String>,
    /// Serve the webhook endpoints (and, without NATS, the queries) on this address
    /// (host:port).
    #[arg(long)]
    http: Option<String>,
}

/// A runtime for the NATS commands: two worker threads, as the machine has two cores.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut config = ctx.config.clone();
    config.nats = args.nats.apply(&config.nats)?;
    if args.metrics_addr.is_some() {
        config.serve.metrics_addr.clone_from(&args.metrics_addr);
    }
    if args.http.is_some() {
        config.serve.http_addr.clone_from(&args.http);
    }
    if config.nats.urls.is_empty() {
        anyhow::ensure!(
            config.serve.http_addr.is_some(),
            "pacer serve without NATS takes its events over HTTP: pass --http ADDR (or set \
             [serve] http_addr), or --nats URL to consume from JetStream"
        );
        runtime()?.block_on(serve_local(ctx, config))?;
    } else {
        runtime()?.block_on(serve(ctx, config))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One process, no broker: webhooks → log → projections → alerts over HTTP.
async fn serve_local(ctx: &Context, config: pacer_engine::Config) -> anyhow::Result<()> {
    let stop_rx = stop_on_signal("pacer serve: stopping: finishing the requests in hand");
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = &config.serve.metrics_addr {
        serve_http(addr, Arc::clone(&metrics)).await?;
    }
    let mut log = open_log_for_append(ctx)?;
    let store = Store::new(log.side_tree(deliver::TREE)?);
    let (state, backlog) = rebuild_local(&mut log, &config, &store)?;
    let (local, mirror, dlq) = local_engine(log, state, &config, &metrics)?;
    let deliverer = Arc::new(Deliverer::new(
        ctx.data_dir.clone(),
        store,
        config.clone(),
        Arc::clone(local.state()),
        Arc::clone(&metrics),
    ));
    feed_local_deliveries(&local, &deliverer, backlog)?;
    let delivering = Arc::new(AtomicBool::new(false));
    let _worker = Arc::clone(&deliverer).run(Arc::clone(&delivering));
    let addr = config.serve.http_addr.clone().unwrap_or_default();
    let (bound, server) = serve_webhooks(
        &config,
        &addr,
        Sink::Local(Arc::clone(&local)),
        Stores {
            mirror,
            dlq,
            access: Arc::new(Access::new(&ctx.data_dir)),
            deliverer: Some(deliverer),
        },
        &metrics,
        stop_rx.clone(),
        ctx.config_path.clone(),
    )
    .await?;
    eprintln!(
        "pacer serve: one process, no broker: webhooks, queries and /v1/alerts/stream on http://{bound}"
    );
    let tick_every = config.serve.tick_interval_s;
    let mut stop = stop_rx;
    loop {
        if tick_every > 0 {
            let local = Arc::clone(&local);
            tokio::task::block_in_place(|| local.tick())?;
        }
        let wait = Duration::from_secs(if tick_every > 0 {
            tick_every
        } else {
            365 * 24 * 3600
        });
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    delivering.store(true, Ordering::Release);
    eprintln!("pacer serve: stopped cleanly");
    Ok(())
}

/// Rebuilds the projections of a one-process engine, with the messages of the
/// events after the deliverer's mark (those a crash kept from being recorded); a log
/// the deliverer has never seen starts at its end (its history is not delivered).
fn rebuild_local(
    log: &mut pacer_engine::Log,
    config: &pacer_engine::Config,
    store: &Store,
) -> anyhow::Result<(pacer_projections::model::Model, Vec<Outgoing>)> {
    let Some(mark) = store.log_mark()? else {
        store.record(Mark::Log(log.last_seq()), &[])?;
        return Ok((rebuild_logged(log, config)?, Vec::new()));
    };
    let total = log.last_seq();
    eprintln!("pacer serve: rebuilding the projections from {total} events");
    let started = Instant::now();
    let (state, backlog) = tokio::task::block_in_place(|| {
        pacer_engine::outbox::rebuild_with_messages(log, config, mark, |_| {})
    })?;
    eprintln!(
        "pacer serve: rebuilt {} events in {:.2} s; {} alert message(s) after seq {mark} to match to subscriptions again",
        state.events_applied(),
        started.elapsed().as_secs_f64(),
        backlog.len()
    );
    Ok((state, backlog))
}

/// Hands the one-process engine's messages to the deliverer: first those made
/// again at start-up, then, on a thread of its own, each stored batch's. A batch
/// that cannot be recorded (the disk) is tried again, never dropped.
fn feed_local_deliveries(
    local: &Local,
    deliverer: &Arc<Deliverer>,
    backlog: Vec<Outgoing>,
) -> anyhow::Result<()> {
    let mut by_seq: std::collections::BTreeMap<u64, Vec<Outgoing>> = Default::default();
    for o in backlog {
        by_seq.entry(o.seq).or_default().push(o);
    }
    for (seq, out) in by_seq {
        let messages: Vec<Message<'_>> = out.iter().map(Message::from).collect();
        deliverer.record(Mark::Log(seq), &messages)?;
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<(u64, Vec<Outgoing>)>(DELIVERY_FEED_MAX);
    let d = Arc::clone(deliverer);
    std::thread::Builder::new()
        .name("pacer-deliver-feed".into())
        .spawn(move || {
            for (seq, out) in rx {
                let messages: Vec<Message<'_>> = out.iter().map(Message::from).collect();
                while let Err(e) = d.record(Mark::Log(seq), &messages) {
                    eprintln!("pacer deliver: alerts of seq {seq} not recorded: {e}; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        })
        .context("starting the deliveries feed")?;
    local.feed_deliveries(tx);
    Ok(())
}

/// The one-process engine over a rebuilt log, with the deal mirror and the
/// dead-letter store in the log's database.
pub fn local_engine(
    log: pacer_engine::Log,
    state: pacer_projections::model::Model,
    config: &pacer_engine::Config,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(Arc<Local>, Mirror, DlqStore)> {
    let local = Arc::new(Local::new(
        log,
        Arc::new(RwLock::new(state)),
        config.clone(),
        Arc::clone(metrics),
        Box::new(wall_clock),
    ));
    let mirror = Mirror::Sled(local.side_tree("webhook_deals")?);
    let dlq = local_dlq(&local, config)?;
    Ok((local, mirror, dlq))
}

/// The dead-letter store in the log's database.
pub fn local_dlq(local: &Local, config: &pacer_engine::Config) -> anyhow::Result<DlqStore> {
    Ok(DlqStore::sled(
        local.side_tree("dlq")?,
        local.side_tree("dlq_order")?,
        config.dlq.items_max,
    ))
}

/// The dead-letter store in the `PACER_DLQ` stream.
pub fn nats_dlq(js: &async_nats::jetstream::Context, config: &pacer_engine::Config) -> DlqStore {
    DlqStore::Nats {
        js: js.clone(),
        subjects: Subjects::new(&config.nats.subject_prefix),
        items_max: config.dlq.items_max,
    }
}

/// Rebuilds the projections, saying how long it took.
fn rebuild_logged(
    log: &mut pacer_engine::Log,
    config: &pacer_engine::Config,
) -> anyhow::Result<pacer_projections::model::Model> {
    let total = log.last_seq();
    eprintln!("pacer serve: rebuilding the projections from {total} events");
    let started = Instant::now();
    let state = tokio::task::block_in_place(|| rebuild_for_append(log, &config.org, |_, _, _| {}))?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "pacer serve: rebuilt {} events in {secs:.2} s ({:.0} events/s)",
        state.events_applied(),
        state.events_applied() as f64 / secs.max(1e-9)
    );
    Ok(state)
}

/// The wall clock in milliseconds since the epoch (signature timestamps).
pub fn wall_clock_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Serves the webhook endpoints (and, for a local sink, the queries) on `addr`
/// until `stop`, and marks the process ready once the socket is bound: what
/// `pacer serve --http` and `pacer gateway` share.
pub async fn serve_webhooks(
    config: &pacer_engine::Config,
    addr: &str,
    sink: Sink,
    stores: Stores,
    metrics: &Arc<Metrics>,
    stop: tokio::sync::watch::Receiver<bool>,
    config_path: Option<std::path::PathBuf>,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    if let Err(e) = stores.dlq.count(metrics).await {
        eprintln!("pacer: cannot count the dead letters yet: {e}");
    }
    let mut gateway = Gateway::new(
        config.clone(),
        sink,
        stores,
        Arc::clone(metrics),
        wall_clock_ms,
        stop,
    );
    gateway.config_path = config_path;
    let gateway = Arc::new(gateway);
    redrive_mapped_owners(Arc::clone(&gateway));
    reload_on_hangup(Arc::clone(&gateway));
    // The operator hears of items waiting too long (NATS: `<prefix>.alerts.system`).
    let periodic = Arc::clone(&gateway);
    let mut stopped = periodic.stop.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = periodic.publish_system_alerts().await {
                eprintln!("pacer: the system alerts were not published: {e}");
            }
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
        }
    });
    let served = pacer_engine::http::serve(addr, gateway)
        .await
        .with_context(|| format!("serving HTTP on {addr}"))?;
    metrics
        .ready
        .store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(served)
}

async fn serve(ctx: &Context, config: pacer_engine::Config) -> anyhow::Result<()> {
    let stop_rx = stop_on_signal("pacer serve: stopping: finishing the batch in hand");
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = &config.serve.metrics_addr {
        serve_http(addr, Arc::clone(&metrics)).await?;
        eprintln!("pacer serve: metrics on http://{addr}/metrics, readiness on /healthz");
    }
    let log = open_log_for_append(ctx)?;
    let subjects = Subjects::new(&config.nats.subject_prefix);
    let client = connect(&config.nats, "pacer serve").await?;
    metrics.set_client(client.clone());
    let js = async_nats::jetstream::new(client.clone());
    let mut stop = stop_rx.clone();
    let webhooks = config.serve.http_addr.is_some();
    let Some(mirror) = jetstream_ready(&js, &config.nats, "pacer serve", webhooks, &mut stop).await
    else {
        return Ok(());
    };
    // One engine consumes; any other started beside it waits as a hot standby.
    let Some(Taken {
        mut log,
        state,
        held,
        mark,
        before,
    }) = take_lease(log, &config, &js, &subjects, &metrics, &mut stop).await?
    else {
        return Ok(());
    };
    let store = Store::new(log.side_tree(deliver::TREE)?);
    // The stream feeds the deliverer here: a later one-process start begins at the
    // log's end instead of delivering again what NATS delivered.
    store.forget_log_mark()?;
    let (state, published_seq, pending) = match state {
        // A standby's projections, every change of its log published.
        Some(state) => {
            eprintln!(
                "pacer serve: going on with the standby's projections of {} events (no rebuild: the engine before published every change they made)",
                state.events_applied()
            );
            (state, log.last_seq(), Vec::new())
        }
        None => {
            let total = log.last_seq();
            eprintln!("pacer serve: rebuilding the projections from {total} events");
            let started = Instant::now();
            let mut next_report = 100_000;
            let rebuilt = tokio::task::block_in_place(|| {
                rebuild_for_serve(&mut log, &config, |seq| {
                    if seq >= next_report {
                        eprintln!("pacer serve: rebuilt {seq} of {total} events");
                        next_report += 100_000;
                    }
                })
            })?;
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "pacer serve: rebuilt {} events in {secs:.2} s ({:.0} events/s)",
                rebuilt.state.events_applied(),
                rebuilt.state.events_applied() as f64 / secs.max(1e-9)
            );
            (rebuilt.state, rebuilt.published_seq, rebuilt.unpublished)
        }
    };
    let state = Arc::new(RwLock::new(state));
    let deliverer = Arc::new(Deliverer::new(
        ctx.data_dir.clone(),
        store,
        config.clone(),
        Arc::clone(&state),
        Arc::clone(&metrics),
    ));
    let delivering = Arc::new(AtomicBool::new(false));
    let deliver_consumer = pacer_engine::nats::deliver::consumer(&js, &subjects).await?;
    tokio::spawn(pacer_engine::nats::deliver::feed(
        deliver_consumer,
        Arc::clone(&deliverer),
        stop_rx.clone(),
    ));
    let _worker = Arc::clone(&deliverer).run(Arc::clone(&delivering));
    let queries = QueryContext::new(Arc::clone(&state), log.reader());
    let _service = serve_queries(client.clone(), &subjects, queries.clone()).await?;
    let http_server = match (&config.serve.http_addr, mirror) {
        (Some(addr), Some(mirror)) => {
            let stores = Stores {
                mirror,
                dlq: nats_dlq(&js, &config),
                access: Arc::new(Access::new(&ctx.data_dir)),
                deliverer: Some(Arc::clone(&deliverer)),
            };
            let sink = Sink::Nats {
                js: js.clone(),
                subjects: subjects.clone(),
            };
            // The queries, the live stream and the web app read this engine's
            // projections; alert changes come back from NATS as any subscriber's do.
            let live = Live {
                alerts: pacer_engine::nats::live::feed(&client, &subjects).await?,
                subjects: subjects.clone(),
            };
            let gateway = Gateway::new(
                config.clone(),
                sink,
                stores,
                Arc::clone(&metrics),
                wall_clock_ms,
                stop_rx.clone(),
            )
            .with_reads(queries.clone(), live);
            let mut gateway = gateway;
            gateway.config_path.clone_from(&ctx.config_path);
            let gateway = Arc::new(gateway);
            redrive_mapped_owners(Arc::clone(&gateway));
            reload_on_hangup(Arc::clone(&gateway));
            let (bound, task) = pacer_engine::http::serve(addr, gateway)
                .await
                .with_context(|| format!("serving HTTP on {addr}"))?;
            eprintln!(
                "pacer serve: webhooks, queries and the web app on http://{bound}; events published to JetStream"
            );
            Some(task)
        }
        _ => {
            ignore_hangup();
            None
        }
    };
    eprintln!(
        "pacer serve: consuming {} on {} (queries on {}.*)",
        subjects.events_all(),
        config.nats.urls.join(","),
        subjects.query_group()
    );
    let mut pipeline = Pipeline::new(
        log,
        state,
        config,
        js,
        Arc::clone(&metrics),
        Box::new(wall_clock),
        published_seq,
    )
    .publishing_to(mark);
    pipeline.published_before(before);
    pipeline.queue_unpublished(pending);
    // Ready once the pipeline has its consumer and holds every event it delivered
    // (`Pipeline::run` says so in the metrics).
    pipeline.run(stop_rx, Some(held)).await?;
    delivering.store(true, Ordering::Release);
    if let Some(task) = http_server {
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    // NATS may be away: do not wait for it forever on the way out.
    let _ = tokio::time::timeout(Duration::from_secs(5), client.flush()).await;
    eprintln!("pacer serve: stopped cleanly");
    Ok(())
}

/// The engine lease, taken.
struct Taken {
    log: pacer_engine::Log,
    /// A standby's projections, when they can go on as they are (every alert change
    /// of its log published, by the holder before); `None`: rebuild from the log.
    state: Option<pacer_projections::model::Model>,
    /// Held from now on, renewed with `mark`.
    held: Held,
    /// How far alert changes are published; the pipeline moves it.
    mark: Progress,
    /// The mark of the engine before this one, when another's was taken over.
    before: Option<u64>,
}

/// Takes the engine lease, waiting as a hot standby while another engine holds it
/// (`None`: asked to stop meanwhile). A takeover lowers the log's published mark to
/// the one the engine before left in the lease, so that the rebuild publishes again
/// what it may not have published (the alerts stream drops what it has).
async fn take_lease(
    mut log: pacer_engine::Log,
    config: &pacer_engine::Config,
    js: &async_nats::jetstream::Context,
    subjects: &Subjects,
    metrics: &Arc<Metrics>,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<Taken>> {
    let ttl = Duration::from_secs(config.serve.lease_ttl_s);
    let leases = loop {
        match Leases::open(js, subjects, ttl, config.nats.replicas as usize).await {
            Ok(l) => break l,
            Err(e @ NatsError::LeaseTtl { .. }) => return Err(e.into()),
            Err(e) => {
                eprintln!("pacer serve: {e}; retrying");
                tokio::select! {
                    _ = stop.changed() => return Ok(None),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    let host = lease::host_name();
    // The log's own mark, written with the lease when it is taken at once.
    let logged = |log: &pacer_engine::Log| -> anyhow::Result<Option<u64>> {
        Ok(log
            .meta(PUBLISHED_SEQ)?
            .and_then(|s| s.parse::<u64>().ok())
            .map(|s| s.min(log.last_seq())))
    };
    let me = Holder {
        engine: lease::engine_id(&mut log, &host)?,
        host,
        published_seq: logged(&log)?.unwrap_or_else(|| log.last_seq()),
        released: false,
    };
    let mut standby_state = None;
    let first_look = loop {
        match leases.look(&me).await {
            Ok(Look::Gone) => {}
            Ok(look) => break look,
            Err(e) => eprintln!("pacer serve: {e}; retrying"),
        }
        tokio::select! {
            _ = stop.changed() => return Ok(None),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
    let takeover = match first_look {
        Look::Taken(lease) => Takeover {
            lease: *lease,
            last_seen: None,
        },
        Look::Held(..) | Look::Gone => {
            // A standby: the projections (validation reads them) and the quiet
            // catch-up, until the lease is free.
            let rebuilt =
                tokio::task::block_in_place(|| rebuild_for_serve(&mut log, config, |_| {}))?;
            let mut standby = Pipeline::new(
                log,
                Arc::new(RwLock::new(rebuilt.state)),
                config.clone(),
                js.clone(),
                Arc::clone(metrics),
                Box::new(wall_clock),
                rebuilt.published_seq,
            );
            metrics.standing_by.store(true, Ordering::SeqCst);
            let taken = standby.stand_by(&leases, &me, stop).await;
            metrics.standing_by.store(false, Ordering::SeqCst);
            let (standby_log, state) = standby.into_parts();
            log = standby_log;
            standby_state = state;
            match taken? {
                Some(t) => t,
                None => return Ok(None),
            }
        }
    };
    let mut logged = logged(&log)?;
    // The mark of the engine before; on this engine's own lease, the one it took it
    // over with, until its own mark has passed it (a stop during that catch-up).
    let before = match takeover.published_before() {
        Some(b) => {
            log.set_meta(lease::TAKEN_AFTER, &b.to_string())?;
            Some(b)
        }
        None => log
            .meta(lease::TAKEN_AFTER)?
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|b| *b > logged.unwrap_or(0)),
    };
    match (&takeover.last_seen, &takeover.lease.previous) {
        (_, Some(p)) if p.engine == me.engine => {}
        (_, Some(p)) => eprintln!(
            "pacer serve: took over the engine lease released by engine {} on {}",
            p.engine, p.host
        ),
        (Some((seen, silent)), None) => eprintln!(
            "pacer serve: took over the engine lease of engine {} on {}, not renewed for {:.1} s",
            seen.engine,
            seen.host,
            silent.as_secs_f64()
        ),
        (None, None) => match &takeover.lease.expired {
            Some(dead) => eprintln!(
                "pacer serve: took the engine lease, which had expired; engine {} on {} held it last and had published the alert changes up to seq {}: the catch-up publishes those after it",
                dead.engine, dead.host, dead.published_seq
            ),
            None => eprintln!("pacer serve: took the engine lease"),
        },
    }
    // The mark of the engine before, within this log, is this log's from now on:
    // lower (the changes after it are published again; the alerts stream drops
    // what it has) or higher (a standby's own mark, stale from before it stood by,
    // is not: the engine before published those).
    let end = log.last_seq();
    if let Some(before) = before.map(|b| b.min(end)) {
        if logged.is_some_and(|l| before < l) {
            eprintln!(
                "pacer serve: publishing again the alert changes after seq {before} (the engine before may not have published them; the alerts stream drops what it has)"
            );
        }
        if logged != Some(before) {
            log.set_meta(PUBLISHED_SEQ, &before.to_string())?;
            logged = Some(before);
        }
    }
    let start = logged.unwrap_or(0);
    let mark = Progress::new(start);
    metrics.lease_held.set(1);
    // The standby's projections go on when nothing of its log is to be published
    // again: no rebuild, so failover does not grow with the log.
    let state = standby_state.filter(|_| logged == Some(end) && before.is_none_or(|b| b >= end));
    Ok(Some(Taken {
        log,
        state,
        held: takeover.lease.hold(mark.clone(), before.unwrap_or(0)),
        mark,
        before,
    }))
}

/// On SIGHUP, the configuration file is read again and its `[webhooks]` put in
/// force (owners, fields, stages; the rest of the file needs a restart), then the
/// deals waiting for an owner it now maps are told, and the dead letters refused
/// for one taken in (`Gateway::reload_config_file`, as `pacer config reload`). A
/// file that does not load changes nothing, and says why.
pub fn reload_on_hangup(gateway: Arc<Gateway>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        eprintln!("pacer serve: cannot listen for SIGHUP; a new configuration needs a restart");
        return;
    };
    let mut stop = gateway.stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                got = hangups.recv() => if got.is_none() { return },
                _ = stop.changed() => return,
            }
            match gateway.reload_config_file("SIGHUP").await {
                Ok(r) => eprintln!(
                    "pacer: SIGHUP: [webhooks] of {} in force; {} waiting deal(s) and dead letter(s) taken in ({} events), {} still waiting or refused",
                    gateway
                        .config_path
                        .as_ref()
                        .map_or(String::new(), |p| p.display().to_string()),
                    r.succeeded.len(),
                    r.events,
                    r.failed.len()
                ),
                Err(e) => eprintln!("pacer: SIGHUP: {e}"),
            }
        }
    });
}

/// A `pacer serve --nats` without `--http` takes no webhooks, so it has nothing to
/// reload: SIGHUP is answered in the log instead of ending the process.
fn ignore_hangup() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        return;
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            eprintln!(
                "pacer serve: SIGHUP: this process serves no webhooks (no --http); nothing to reload"
            );
        }
    });
}

/// At start, in the background: the dead letters whose deal waited for an owner the
/// configuration now maps are taken in (`Gateway::redrive_mapped_owners`), and the
/// log says how many.
pub fn redrive_mapped_owners(gateway: Arc<Gateway>) {
    tokio::spawn(async move {
        match gateway.redrive_mapped_owners().await {
            Ok(r) if r.succeeded.is_empty() && r.failed.is_empty() => {}
            Ok(r) => eprintln!(
                "pacer: {} dead letter(s) waiting for an owner now mapped were taken in ({} events); {} refused again",
                r.succeeded.len(),
                r.events,
                r.failed.len()
            ),
            Err(e) => eprintln!("pacer: the dead letters waiting for an owner were not retried: {e}"),
        }
    });
}

/// A stop flag that turns true on SIGTERM or SIGINT, saying `message` when it does.
pub fn stop_on_signal(message: &'static str) -> watch::Receiver<bool> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("{message}");
        let _ = stop_tx.send(true);
    });
    stop_rx
}

/// Makes sure the streams exist, and opens the deal mirror bucket when `mirror`,
/// retrying every second while NATS refuses (whoever starts first creates them);
/// `None` when asked to stop meanwhile.
pub async fn jetstream_ready(
    js: &async_nats::jetstream::Context,
    nats: &NatsConfig,
    who: &str,
    mirror: bool,
    stop: &mut watch::Receiver<bool>,
) -> Option<Option<Mirror>> {
    let subjects = Subjects::new(&nats.subject_prefix);
    loop {
        let ready = async {
            ensure_streams(js, nats, &subjects).await?;
            if !mirror {
                return Ok(None);
            }
            let m = Mirror::kv(js, &nats.subject_prefix, nats.replicas as usize)
                .await
                .context("opening the deal mirror bucket")?;
            anyhow::Ok(Some(m))
        };
        match ready.await {
            Ok(m) => return Some(m),
            Err(e) => {
                eprintln!("{who}: {e:#}; retrying");
                tokio::select! {
                    _ = stop.changed() => return None,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
