//! A real `nats-server` for the tests (JetStream on, its own store dir, a free
//! loopback port), which a test can kill -9 and restart on the same store; and a
//! `pacer serve` process the test can stop, kill and restart.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull;

/// The nats-server binary: Debian's package installs it in /usr/sbin.
pub fn nats_server_bin() -> PathBuf {
    for p in [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("nats-server is not installed: run `apt-get install -y nats-server` (.ci/run does)");
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until something listens on `port` of the loopback interface.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A nats-server with JetStream, owned by the test.
pub struct NatsServer {
    pub port: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    pub fn start(store: &Path) -> Self {
        let mut s = NatsServer {
            port: free_port(),
            store: store.to_owned(),
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.store.with_extension("log")).expect("log file");
        let child = Command::new(nats_server_bin())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        wait_for_port(self.port, "nats-server");
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no goodbye, no flush.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }

    /// Starts again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `pacer serve` (or `pacer gateway`) process.
pub struct Serve {
    pub data: PathBuf,
    pub config: PathBuf,
    /// The NATS URL; empty: none (`pacer serve` runs as one process).
    pub url: String,
    /// `/healthz` and `/metrics`: `--metrics-addr` of `serve`, `--http` of `gateway`.
    pub metrics_port: u16,
    pub child: Option<Child>,
    /// `serve` or `gateway`.
    pub command: &'static str,
    /// More arguments (`--http 127.0.0.1:PORT`).
    pub extra: Vec<String>,
    log: PathBuf,
}

impl Serve {
    /// Starts `pacer serve` and waits until `/healthz` says ready.
    pub fn start(data: &Path, config: &Path, url: &str) -> Self {
        Serve::start_with("serve", data, config, url, &[])
    }

    /// Starts `pacer serve` without waiting for it to get ready.
    pub fn spawned(data: &Path, config: &Path, url: &str) -> Self {
        Serve::spawned_with(data, config, url, &[])
    }

    /// Starts `pacer serve` with more arguments, without waiting for it to get ready
    /// (a standby never is, until it takes over).
    pub fn spawned_with(data: &Path, config: &Path, url: &str, extra: &[String]) -> Self {
        let mut s = Serve::new("serve", data, config, url, extra);
        s.spawn();
        s
    }

    /// Waits until the process has said `what` (on stderr).
    pub fn wait_said(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.output().contains(what) {
            assert!(
                Instant::now() < deadline,
                "did not say {what:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn new(command: &'static str, data: &Path, config: &Path, url: &str, extra: &[String]) -> Self {
        Serve {
            data: data.to_owned(),
            config: config.to_owned(),
            url: url.to_owned(),
            metrics_port: free_port(),
            child: None,
            command,
            extra: extra.to_vec(),
            log: data.with_extension(format!("{command}.log")),
        }
    }

    /// Starts `pacer <command>` with more arguments and waits until it is ready.
    pub fn start_with(
        command: &'static str,
        data: &Path,
        config: &Path,
        url: &str,
        extra: &[String],
    ) -> Self {
        let mut s = Serve::new(command, data, config, url, extra);
        s.spawn();
        s.wait_ready();
        s
    }

    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = Command::new(super::pacer_bin());
        cmd.arg(self.command)
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--config")
            .arg(&self.config);
        if !self.url.is_empty() {
            cmd.args(["--nats", &self.url]);
        }
        let health = format!("127.0.0.1:{}", self.metrics_port);
        if self.command == "gateway" {
            cmd.args(["--http", &health]);
        } else {
            cmd.args(["--metrics-addr", &health]);
        }
        let child = cmd
            .args(&self.extra)
            .env_remove("PACER_DATA_DIR")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("pacer serve starts");
        self.child = Some(child);
    }

    /// What the process wrote to stderr so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if http_get(self.metrics_port, "/healthz")
                .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pacer serve did not get ready:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn metrics(&self) -> String {
        http_get(self.metrics_port, "/metrics").unwrap_or_default()
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }

    /// SIGTERM; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let pid = c.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = c.try_wait().expect("wait works") {
                return status.code();
            }
            if Instant::now() > deadline {
                c.kill().ok();
                panic!("pacer serve did not stop on SIGTERM:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `pacer_events_accepted_total` in a metrics text.
pub fn accepted(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("pacer_events_accepted_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A plain HTTP/1.1 GET on the loopback; the whole response, or `None`.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A client of the server at `url`, and JetStream through it.
pub async fn connect_js(url: &str) -> (async_nats::Client, async_nats::jetstream::Context) {
    let client = async_nats::connect(url).await.expect("the test connects");
    (client.clone(), async_nats::jetstream::new(client))
}

/// What the server says of stream `name` now.
pub async fn stream_info(
    js: &async_nats::jetstream::Context,
    name: &str,
) -> async_nats::jetstream::stream::Info {
    js.get_stream(name)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone()
}

/// How many messages the stream `name` holds.
pub async fn stream_messages(js: &async_nats::jetstream::Context, name: &str) -> u64 {
    stream_info(js, name).await.state.messages
}

/// The engine's consumer, as the server sees it: (pending, ack pending, delivered
/// stream seq, acked stream seq floor).
pub async fn consumer_state(js: &async_nats::jetstream::Context) -> Option<(u64, usize, u64, u64)> {
    let stream = js.get_stream("PACER_EVENTS").await.ok()?;
    let mut consumer = stream
        .get_consumer::<pull::Config>("pacer-engine")
        .await
        .ok()?;
    let info = consumer.info().await.ok()?;
    Some((
        info.num_pending,
        info.num_ack_pending,
        info.delivered.stream_sequence,
        info.ack_floor.stream_sequence,
    ))
}

/// Waits until the engine has consumed and acked everything on the stream.
pub async fn wait_drained(js: &async_nats::jetstream::Context, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((0, 0, delivered, _)) = consumer_state(js).await {
            let mut stream = js.get_stream("PACER_EVENTS").await.expect("stream");
            let last = stream.info().await.expect("info").state.last_sequence;
            if delivered >= last {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the engine did not drain the stream"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `n` activity events for 50 reps in November 2026, ids `{tag}-{i}`.
pub fn activities(tag: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let id = format!("{tag}-{i}");
            let line = format!(
                r#"{{"event_id":"{id}","source":"crm","occurred_at":"2026-11-{:02}T{:02}:{:02}:00Z","type":"activity_logged","rep":"rep{}","kind":"call"}}"#,
                2 + i % 20,
                8 + i % 10,
                i % 60,
                i % 50
            );
            (id, line)
        })
        .collect()
}

/// Each (event id, line) to publish with the event id as its `Nats-Msg-Id`.
pub fn with_msg_ids(events: &[(String, String)]) -> Vec<(Option<String>, String)> {
    events
        .iter()
        .map(|(id, l)| (Some(id.clone()), l.clone()))
        .collect()
}

/// Publishes every (msg id, payload) to `pacer.events.activity_logged`, retrying what
/// is not acknowledged (the broker may be down) with the same `Nats-Msg-Id`.
pub async fn publish_all(js: &async_nats::jetstream::Context, items: &[(Option<String>, String)]) {
    for chunk in items.chunks(256) {
        let mut todo: Vec<&(Option<String>, String)> = chunk.iter().collect();
        while !todo.is_empty() {
            let mut acks = Vec::new();
            for item in &todo {
                let mut headers = async_nats::HeaderMap::new();
                if let Some(id) = &item.0 {
                    headers.insert("Nats-Msg-Id", id.as_str());
                }
                let sent = js
                    .publish_with_headers(
                        "pacer.events.activity_logged",
                        headers,
                        bytes::Bytes::from(item.1.clone()),
                    )
                    .await;
                acks.push((*item, sent));
            }
            // The acks awaited together: while a cluster elects a stream leader none
            // comes, and each would otherwise wait out its timeout in turn.
            let outcomes =
                futures::future::join_all(acks.into_iter().map(|(item, sent)| async move {
                    match sent {
                        Ok(ack) => (item, ack.await.is_ok()),
                        Err(_) => (item, false),
                    }
                }))
                .await;
            let failed: Vec<&(Option<String>, String)> = outcomes
                .into_iter()
                .filter(|(_, stored)| !stored)
                .map(|(item, _)| item)
                .collect();
            if !failed.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            todo = failed;
        }
    }
}
