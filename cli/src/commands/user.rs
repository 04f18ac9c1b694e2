//! `pacer user` and `pacer token`: who may use a running Pacer. Users and tokens live
//! in `users.json` in the data dir (never in the event log); a running server reads
//! the file again when it changes, so a new user or a revoked token counts at once.
//! Each change is appended to `audit.jsonl` with the operator's login name.

use std::io::BufRead as _;
use std::process::ExitCode;

use anyhow::Context as _;
use pacer_engine::access::{audit, Role, Users, USERS_FILE};
use serde_json::json;

use crate::context::{say, Context};

#[derive(clap::Subcommand, Debug)]
pub enum UserCommand {
    /// Adds a user: admin, finance, manager, rep, crm or service.
    #[command(
        after_help = "Examples:\n  pacer user add root --role admin --password-stdin < pw.txt\n  \
                      pacer user add maria --role manager --teams north\n  pacer user add ana --role rep --rep ana\n\n\
                      A manager reads the teams whose reps name them as manager, and any --teams listed."
    )]
    Add {
        name: String,
        #[arg(long, value_parser = Role::parse)]
        role: Role,
        /// Teams a manager may read besides those their reps name them for.
        #[arg(long, value_delimiter = ',')]
        teams: Vec<String>,
        /// The rep a `rep` user is.
        #[arg(long)]
        rep: Option<String>,
        /// Reads the log-in password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// The users, their roles and teams (never a password).
    List,
    /// Removes a user and revokes their tokens.
    Remove { name: String },
    /// Replaces the teams listed for a manager.
    SetTeams {
        name: String,
        #[arg(long, value_delimiter = ',', required = true)]
        teams: Vec<String>,
    },
    /// Sets a new log-in password, read from the first line of standard input.
    Reset { name: String },
}

#[derive(clap::Subcommand, Debug)]
pub enum TokenCommand {
    /// Creates an API token for a user; it is printed once and stored only as a hash.
    #[command(
        after_help = "Examples:\n  pacer token create --user maria\n  pacer token create --user hubspot-gw --expires 2027-06-30"
    )]
    Create {
        #[arg(long)]
        user: String,
        /// Refused from this date (YYYY-MM-DD, midnight UTC) or RFC 3339 time on.
        #[arg(long, value_parser = pacer_engine::dlq::parse_since)]
        expires: Option<i64>,
        /// What it is for.
        #[arg(long)]
        note: Option<String>,
    },
    /// The tokens (ids, users, expiry, revocation; never the token itself).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revokes a token by id; a running server refuses it at once.
    Revoke { id: String },
}

/// Who runs the command, for the audit trail.
pub fn operator() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .map(|u| format!("cli:{u}"))
        .unwrap_or_else(|_| "cli".into())
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Loads the users file, applies `change`, saves it and notes it in the audit trail.
fn change(
    ctx: &Context,
    action: &str,
    target: &str,
    detail: serde_json::Value,
    f: impl FnOnce(&mut Users) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&ctx.data_dir)
        .with_context(|| format!("cannot create the data dir {}", ctx.data_dir.display()))?;
    let path = ctx.data_dir.join(USERS_FILE);
    let mut users = Users::load(&path)?;
    f(&mut users)?;
    users.save(&path)?;
    audit(&ctx.data_dir, &operator(), action, target, detail)?;
    Ok(())
}

pub fn run_user(ctx: &Context, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UserCommand::Add {
            name,
            role,
            teams,
            rep,
            password_stdin,
        } => {
            let password = password_stdin.then(read_password).transpose()?;
            let detail = json!({"role": role.as_str(), "teams": teams, "rep": rep});
            change(ctx, "user.add", &name, detail, |u| {
                u.add(&name, role, teams, rep)?;
                if let Some(p) = &password {
                    u.set_password(&name, p)?;
                }
                Ok(())
            })?;
            say!("added {name} ({})", role.as_str())?;
        }
        UserCommand::List => {
            let users = Users::load(&ctx.data_dir.join(USERS_FILE))?;
            if users.users.is_empty() {
                say!("no users (pacer user add NAME --role admin)")?;
            }
            for u in users.users.values() {
                let tokens = users
                    .tokens
                    .iter()
                    .filter(|t| t.user == u.name && t.revoked_at.is_none())
                    .count();
                say!(
                    "{}\t{}\tteams={}\trep={}\tpassword={}\ttokens={tokens}",
                    u.name,
                    u.role.as_str(),
                    u.teams.join(","),
                    u.rep.as_deref().unwrap_or("-"),
                    if u.password.is_some() { "set" } else { "none" }
                )?;
            }
        }
        UserCommand::Remove { name } => {
            change(ctx, "user.remove", &name, json!({}), |u| {
                Ok(u.remove(&name)?)
            })?;
            say!("removed {name}; their tokens are revoked")?;
        }
        UserCommand::SetTeams { name, teams } => {
            let detail = json!({"teams": teams});
            change(ctx, "user.set_teams", &name, detail, |u| {
                Ok(u.set_teams(&name, teams)?)
            })?;
            say!("set the teams of {name}")?;
        }
        UserCommand::Reset { name } => {
            let password = read_password()?;
            change(ctx, "user.reset", &name, json!({}), |u| {
                Ok(u.set_password(&name, &password)?)
            })?;
            say!("set a new password for {name}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_token(ctx: &Context, cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCommand::Create {
            user,
            expires,
            note,
        } => {
            let expires_at = expires.and_then(pacer_engine::webhook::rfc3339_of_ms);
            let mut shown = None;
            let detail = json!({"expires_at": expires_at, "note": note});
            change(ctx, "token.create", &user, detail, |u| {
                let (token, text) = u.create_token(&user, expires_at.clone(), note)?;
                shown = Some((token.id, text));
                Ok(())
            })?;
            let (id, text) = shown.expect("created above");
            // The only time the token is shown: to standard output, never a log.
            say!("{text}")?;
            eprintln!("token {id} for {user}: keep it now, it is not shown again");
        }
        TokenCommand::List { user } => {
            let users = Users::load(&ctx.data_dir.join(USERS_FILE))?;
            for t in users
                .tokens
                .iter()
                .filter(|t| user.as_ref().is_none_or(|u| &t.user == u))
            {
                say!(
                    "{}\t{}\tcreated={}\texpires={}\trevoked={}\t{}",
                    t.id,
                    t.user,
                    t.created_at,
                    t.expires_at.as_deref().unwrap_or("never"),
                    t.revoked_at.as_deref().unwrap_or("no"),
                    t.note.as_deref().unwrap_or("")
                )?;
            }
        }
        TokenCommand::Revoke { id } => {
            change(ctx, "token.revoke", &id, json!({}), |u| Ok(u.revoke(&id)?))?;
            say!("revoked {id}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
