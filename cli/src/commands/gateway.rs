//! `pacer gateway`: the stateless webhook gateway. CRMs call its HTTP endpoints; it
//! checks, maps and publishes their events to JetStream (answering 2xx only after
//! the PubAcks), keeping each deal's mirrored properties in a JetStream key-value
//! bucket so that any number of gateways can run behind a load balancer. The engine
//! (`pacer serve --nats`) consumes what they publish.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pacer_engine::access::Access;
use pacer_engine::http::{Sink, Stores};
use pacer_engine::metrics::Metrics;
use pacer_engine::nats::{connect, Subjects};

use super::serve::{jetstream_ready, nats_dlq, runtime, serve_webhooks, stop_on_signal, NatsArgs};
use crate::context::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    nats: NatsArgs,
    /// Serve the webhook endpoints on this address (host:port).
    #[arg(long)]
    http: Option<String>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut config = ctx.config.clone();
    config.nats = args.nats.apply(&config.nats)?;
    if args.http.is_some() {
        config.serve.http_addr.clone_from(&args.http);
    }
    let addr = config
        .serve
        .http_addr
        .clone()
        .context("pacer gateway needs --http ADDR (or [serve] http_addr)")?;
    runtime()?.block_on(async move {
        let stop_rx = stop_on_signal("pacer gateway: stopping: finishing the requests in hand");
        let client = connect(&config.nats, "pacer gateway").await?;
        let js = async_nats::jetstream::new(client.clone());
        let subjects = Subjects::new(&config.nats.subject_prefix);
        let mut stop = stop_rx.clone();
        let Some(Some(mirror)) =
            jetstream_ready(&js, &config.nats, "pacer gateway", true, &mut stop).await
        else {
            return Ok(());
        };
        let metrics = Arc::new(Metrics::new());
        metrics.set_client(client.clone());
        let (bound, server) = serve_webhooks(
            &config,
            &addr,
            Sink::Nats {
                js: js.clone(),
                subjects,
            },
            Stores {
                mirror,
                dlq: nats_dlq(&js, &config),
                access: Arc::new(Access::new(&ctx.data_dir)),
                deliverer: None,
            },
            &metrics,
            stop_rx.clone(),
            ctx.config_path.clone(),
        )
        .await?;
        eprintln!(
            "pacer gateway: webhooks on http://{bound}, publishing to {} on {}",
            config.nats.subject_prefix,
            config.nats.urls.join(",")
        );
        let _ = stop.wait_for(|s| *s).await;
        // The requests in hand get a few seconds; a CRM whose request is cut retries.
        let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), client.flush()).await;
        eprintln!("pacer gateway: stopped cleanly");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
