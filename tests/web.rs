//! The web app in a real browser: `pacer serve --http` over the demo organisation,
//! driven by tests/web/browser.py (Playwright for Python with Debian's chromium, both
//! installed by tests/run.sh). The script logs in as north's manager and checks what
//! a manager relies on; its screenshots are kept in target/web-screenshots.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::nats::{free_port, NatsServer, Serve};
use common::*;

#[test]
fn a_manager_uses_the_web_app_in_a_real_browser() {
    browse(None, "local");
}

/// The same pages with the engine behind NATS: the webhook's events and the
/// acknowledgement go through JetStream, the live changes come back from it.
#[test]
fn the_web_app_works_the_same_with_nats() {
    let tmp = tempfile::tempdir().unwrap();
    let nats = NatsServer::start(&tmp.path().join("jetstream"));
    browse(Some(&nats), "nats");
}

/// Runs the browser script against `pacer serve --http` over the demo, with NATS
/// when given; screenshots go to target/web-screenshots/<shots>.
fn browse(nats: Option<&NatsServer>, shots: &str) {
    let ready = Command::new("python3")
        .args(["-c", "import playwright, openpyxl"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ready,
        "Playwright for Python is missing: run the tests with tests/run.sh, which installs it"
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    demo(&data, &["--seed", "42"]);
    let password = "maria-keller-password-7";
    add_user_with_password(&data, "Maria Keller", "manager", password);
    let fin_password = "finance-password-2026";
    add_user_with_password(&data, "fin", "finance", fin_password);
    let admin = user_token(&data, "root", "admin", &[]);
    let native = "native-token-0123456789";
    let cfg = tmp.path().join("pacer.toml");
    // No ticks of the server's own: the demo's now stays the page's now.
    std::fs::write(
        &cfg,
        format!(
            "[serve]\ntick_interval_s = 0\n\n[webhooks.native]\nbearer_tokens = [\"{native}\"]\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let mut serve = Serve::start_with(
        "serve",
        &data,
        &cfg,
        &nats.map(NatsServer::url).unwrap_or_default(),
        &["--http".into(), format!("127.0.0.1:{port}")],
    );
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/web-screenshots")
        .join(shots);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/web/browser.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["--url", &format!("http://127.0.0.1:{port}")])
        .args(["--admin-token", &admin, "--native-token", native])
        .args([
            "--manager",
            "Maria Keller",
            "--password",
            password,
            "--team",
            "north",
        ])
        .args(["--finance-user", "fin", "--finance-password", fin_password])
        .arg("--out")
        .arg(&shots)
        .output()
        .unwrap();
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{said}\n{}", serve.output());
    assert!(said.contains("all checks held"), "{said}");
    assert_eq!(serve.stop(), Some(0), "{}", serve.output());
}

/// `pacer user add NAME --role ROLE`, with the password on standard input.
fn add_user_with_password(data: &Path, name: &str, role: &str, password: &str) {
    let added = run_with_stdin(
        data,
        &["user", "add", name, "--role", role, "--password-stdin"],
        &format!("{password}\n"),
    );
    assert!(added.status.success(), "{}", stderr(&added));
}
