//! Shared helpers of the integration tests: run the real `pacer` binary against a
//! temporary data dir and read what it printed.

#![allow(dead_code)]

pub mod nats;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn pacer_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pacer"))
}

/// A `pacer` command for `data_dir`, with no config file from the working directory.
pub fn pacer(data_dir: &Path) -> Command {
    let mut c = Command::new(pacer_bin());
    c.arg("--data-dir").arg(data_dir);
    c.current_dir(data_dir.parent().expect("data dirs live inside a temp dir"));
    c.env_remove("PACER_DATA_DIR");
    c
}

/// Runs `pacer ARGS...` and returns its output.
pub fn run(data_dir: &Path, args: &[&str]) -> Output {
    pacer(data_dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("pacer runs")
}

/// Runs `pacer ARGS...` with `stdin` as standard input.
pub fn run_with_stdin(data_dir: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = pacer(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pacer runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("stdin accepts");
    child.wait_with_output().expect("pacer finishes")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "pacer failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// The stored events, parsed from `pacer log`.
pub fn log_events(data_dir: &Path) -> Vec<serde_json::Value> {
    ok(run(data_dir, &["log"]))
        .lines()
        .map(|l| serde_json::from_str(l).expect("log lines are JSON"))
        .collect()
}
