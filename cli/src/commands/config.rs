//! `pacer config`: what an operator does with the configuration of a running
//! server. `reload` asks a running `pacer serve --http` or `pacer gateway` to read
//! its configuration file again (as SIGHUP does, for where a signal cannot be sent:
//! another machine, a container): `[webhooks]` comes in force (owner mappings,
//! fields, stages), and the deals waiting for an owner it now maps are told.

use std::process::ExitCode;

use super::common::call_server;
use crate::context::say;

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCommand {
    /// Makes a running server read its configuration file again.
    #[command(
        after_help = "Example:\n  pacer config reload --http http://127.0.0.1:8080 --api-token $PACER_API_TOKEN\n\n\
                      The same as `kill -HUP <pid>` of the server. Only [webhooks] is read again;\n\
                      the rest of the file takes a restart. A file that does not load changes nothing."
    )]
    Reload(ReloadArgs),
}

#[derive(clap::Args, Debug)]
pub struct ReloadArgs {
    /// The running `pacer serve --http` or `pacer gateway` (its base URL).
    #[arg(long)]
    http: String,
    /// An admin's or service user's token (`pacer token create`).
    #[arg(long, env = "PACER_API_TOKEN", hide_env_values = true)]
    api_token: String,
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    let ConfigCommand::Reload(a) = cmd;
    let base = a.http.trim_end_matches('/');
    let out = call_server(
        base,
        &a.api_token,
        ureq::post(&format!("{base}/v1/config/reload")),
        None,
    )?;
    let count = |k: &str| out[k].as_array().map_or(0, Vec::len);
    say!(
        "{}: [webhooks] of {} in force; {} waiting deal(s) and dead letter(s) taken in ({} events), {} still waiting or refused",
        base,
        out["path"].as_str().unwrap_or("its configuration file"),
        count("succeeded"),
        out["events"].as_u64().unwrap_or(0),
        count("failed")
    )?;
    Ok(ExitCode::SUCCESS)
}
