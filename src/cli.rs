//! The command line: `serve` (default), `migrate`, `openapi`, `token` (mint, list, revoke),
//! `keys` (list, rotate, retire), `secrets reseal`, `user create`.
#![expect(clippy::print_stdout, reason = "the command line answers on stdout")]

use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use clap::{Parser, Subcommand};

use std::sync::Arc;

use diesel_async::AsyncPgConnection;

use crate::auth::jwt::{self, JwtKeys};
use crate::auth::keyring;
use crate::auth::{Actor, Role};
use crate::config::{Settings, parse_duration};
use crate::secrets::SecretBox;
use crate::service_tokens::{self, json::ServiceToken, json::TokenStatus};
use crate::startup::Application;
use crate::users::json::NewUser;
use crate::{db, openapi, users};

/// Environment variable `rapport user create` reads the password from, when set.
pub const PASSWORD_VAR: &str = "RAPPORT_USER_PASSWORD";

#[derive(Debug, Parser)]
#[command(
    name = "rapport",
    version,
    about = "Rapport: a headless CRM, as a JSON REST API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default): create the database if needed, migrate, listen.
    Serve,
    /// Create the database if needed, apply pending migrations, and exit.
    Migrate,
    /// Print the OpenAPI document (what `openapi/openapi.json` holds).
    Openapi,
    /// Print a signed, recorded token for scripts and first steps:
    /// TOKEN=$(rapport token --role admin). Also: `rapport token list`, `rapport token revoke JTI`.
    #[command(args_conflicts_with_subcommands = true)]
    Token {
        #[command(subcommand)]
        command: Option<TokenCommand>,
        /// Role the token acts with: admin, manager, agent or viewer.
        #[arg(long, value_parser = parse_role)]
        role: Option<Role>,
        /// Who the token is for, recorded as the actor of what it does.
        #[arg(long, default_value = "rapport-cli", value_parser = parse_subject)]
        subject: String,
        /// Lifetime (30s, 15m, 12h, 7d); RAPPORT_TOKEN_TTL by default.
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<Duration>,
    },
    /// Manage the keys that sign tokens (the key ring kept sealed in the database).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage the secrets kept sealed in the database under RAPPORT_SECRET_KEY.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Manage staff users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// List the recorded service tokens (never the tokens themselves): active ones, or all.
    List {
        /// Also revoked and expired tokens.
        #[arg(long)]
        all: bool,
    },
    /// Revoke a service token by its id (jti): it is refused from now on.
    Revoke {
        jti: String,
        /// Why, kept in the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys: id, created, state (never the key material).
    List,
    /// A new key signs from now on; the old ones verify until their tokens have expired.
    Rotate,
    /// Retire a key at once (a leaked one): its tokens are refused from now on.
    Retire { kid: String },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-seal every stored secret under the current RAPPORT_SECRET_KEY (after a rotation,
    /// with the old key in RAPPORT_SECRET_KEY_PREVIOUS); then the old key can go.
    Reseal,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a staff user. The password is read from RAPPORT_USER_PASSWORD when set,
    /// otherwise from standard input (prompted for, unechoed, on a terminal); never from
    /// an argument, which other users of the machine could see.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Display name; the part of the email before `@` by default.
        #[arg(long)]
        name: Option<String>,
        /// Create the user without a password (they cannot sign in until one is set).
        #[arg(long)]
        no_password: bool,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

fn parse_subject(text: &str) -> Result<String, String> {
    let subject = text.trim();
    if subject.is_empty() || subject.chars().count() > crate::service_tokens::MAX_SUBJECT {
        return Err(format!(
            "a subject has 1 to {} characters",
            crate::service_tokens::MAX_SUBJECT
        ));
    }
    Ok(subject.to_owned())
}

fn parse_ttl(text: &str) -> Result<Duration, String> {
    parse_duration(text)
        .filter(|d| *d >= Duration::from_secs(1) && *d <= Duration::from_secs(366 * 86_400))
        .ok_or_else(|| format!("{text:?} is not a duration from 1s to 366d such as 30m or 12h"))
}

/// Runs a command to completion; the error is one line for `main` to print.
pub async fn run(command: Command, settings: Settings) -> Result<(), String> {
    match command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "rapport is serving");
            app.run_until_stopped()
                .await
                .map_err(|e| format!("server failed: {e}"))
        }
        Command::Migrate => {
            let applied = db::prepare(&settings.database).await?;
            eprintln!("rapport: database ready, {applied} migration(s) applied");
            Ok(())
        }
        Command::Openapi => {
            print!("{}", openapi::pretty());
            Ok(())
        }
        Command::Token {
            command: Some(command),
            ..
        } => token_command(command, &settings).await,
        Command::Token {
            command: None,
            role,
            subject,
            ttl,
        } => {
            let role = role.ok_or_else(|| {
                "give the token's --role (admin, manager, agent or viewer), or a subcommand \
                 (list, revoke)"
                    .to_owned()
            })?;
            let (mut conn, keys) = prepare(&settings).await?;
            let jwt = JwtKeys::load(&settings.jwt, keys, &mut conn).await?;
            let ttl = ttl.unwrap_or(settings.jwt.token_ttl);
            let (minted, _) =
                service_tokens::issue(&mut conn, &jwt, &cli_actor(), &subject, role, ttl)
                    .await
                    .map_err(|e| format!("cannot record the token: {e}"))?;
            println!("{}", minted.token);
            eprintln!(
                "rapport: {role} token {} for {subject:?}, valid until {} (revoke: rapport token revoke {})",
                minted.jti,
                minted.expires_at.to_rfc3339(),
                minted.jti
            );
            Ok(())
        }
        Command::Keys { command } => keys_command(command, &settings).await,
        Command::Secrets {
            command: SecretsCommand::Reseal,
        } => {
            let (mut conn, keys) = prepare(&settings).await?;
            let counts = crate::secrets::stored::pass(&mut conn, &keys, true).await?;
            println!(
                "resealed {} secret(s) under server key {}; {} already were",
                counts.sealed,
                keys.key_id(),
                counts.unchanged
            );
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    role,
                    name,
                    no_password,
                },
        } => {
            let password = if no_password {
                None
            } else {
                Some(read_password()?)
            };
            let name =
                name.unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
            let input = users::rules::validate_new(NewUser {
                email,
                name,
                role,
                access: None,
                password,
            })
            .map_err(|e| format!("invalid user: {e}"))?;
            db::prepare(&settings.database).await?;
            let mut conn = db::connect(
                settings.database.session_url(),
                settings.database.connect_timeout,
            )
            .await?;
            let user = users::create(&mut conn, &cli_actor(), input)
                .await
                .map_err(|e| format!("cannot create the user: {e}"))?;
            println!("{}", user.id);
            eprintln!("rapport: created {} user {}", user.role, user.email);
            Ok(())
        }
    }
}

/// The CLI as an actor in the audit log.
fn cli_actor() -> Actor {
    Actor::Service("cli".to_owned())
}

/// The database (created and migrated if needed), connected, and the server keys.
async fn prepare(settings: &Settings) -> Result<(AsyncPgConnection, Arc<SecretBox>), String> {
    db::prepare(&settings.database).await?;
    let keys = Arc::new(SecretBox::from_settings(&settings.secret_key)?);
    let conn = db::connect(
        settings.database.session_url(),
        settings.database.connect_timeout,
    )
    .await?;
    Ok((conn, keys))
}

async fn token_command(command: TokenCommand, settings: &Settings) -> Result<(), String> {
    let (mut conn, _) = prepare(settings).await?;
    match command {
        TokenCommand::List { all } => {
            let status = (!all).then_some(TokenStatus::Active);
            let mut after = None;
            println!("jti\tsubject\trole\tstatus\tissued_at\texpires_at\tkid");
            loop {
                let rows = service_tokens::store::list(&mut conn, status, after.take(), 500)
                    .await
                    .map_err(|e| format!("cannot list the tokens: {e}"))?;
                let done = rows.len() < 500;
                for row in rows {
                    after = Some(row.jti.clone());
                    let token = ServiceToken::from(row);
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        token.jti,
                        token.subject,
                        token.role,
                        serde_json::to_value(token.status)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        token.issued_at.to_rfc3339(),
                        token.expires_at.to_rfc3339(),
                        token.kid
                    );
                }
                if done {
                    return Ok(());
                }
            }
        }
        TokenCommand::Revoke { jti, reason } => {
            let token =
                service_tokens::revoke(&mut conn, &cli_actor(), jti.trim(), reason.as_deref())
                    .await
                    .map_err(|e| format!("cannot revoke the token: {e}"))?
                    .ok_or_else(|| {
                        format!("no service token {jti:?}; see rapport token list --all")
                    })?;
            eprintln!(
                "rapport: token {} for {:?} is revoked (refused on every instance within a second)",
                token.jti, token.subject
            );
            Ok(())
        }
    }
}

async fn keys_command(command: KeysCommand, settings: &Settings) -> Result<(), String> {
    if let Some(secret) = &settings.jwt.secret {
        return match command {
            KeysCommand::List => {
                println!("kid\tcreated_at\tstate");
                println!(
                    "{}\t-\tsigning (RAPPORT_JWT_SECRET)",
                    jwt::configured_kid(secret.expose())
                );
                for old in &settings.jwt.previous_secrets {
                    println!(
                        "{}\t-\tverifying (RAPPORT_JWT_PREVIOUS_SECRETS)",
                        jwt::configured_kid(old.expose())
                    );
                }
                Ok(())
            }
            _ => Err(
                "RAPPORT_JWT_SECRET is set, so keys rotate by configuration: move it to \
                      RAPPORT_JWT_PREVIOUS_SECRETS, set a new one, restart, and drop the old one \
                      once its tokens have expired"
                    .to_owned(),
            ),
        };
    }
    let (mut conn, keys) = prepare(settings).await?;
    keyring::ensure(&mut conn, &keys, settings.jwt.token_ttl).await?;
    match command {
        KeysCommand::List => {
            let now = chrono::Utc::now();
            println!("kid\tcreated_at\tstate");
            for key in keyring::list(&mut conn).await? {
                println!(
                    "{}\t{}\t{}{}",
                    key.kid,
                    key.created_at.to_rfc3339(),
                    key.state(now),
                    if key.legacy {
                        " (from before key ids)"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
        KeysCommand::Rotate => {
            let kid = keyring::rotate(&mut conn, &keys, settings.jwt.token_ttl).await?;
            println!("{kid}");
            eprintln!(
                "rapport: key {kid} signs from now on (every instance within {} s); older keys \
                 verify until their tokens have expired",
                jwt::REFRESH.as_secs()
            );
            Ok(())
        }
        KeysCommand::Retire { kid } => {
            if keyring::retire(&mut conn, &keys, kid.trim()).await? {
                eprintln!(
                    "rapport: key {kid} is retired: its tokens are refused (every instance \
                     within {} s)",
                    jwt::REFRESH.as_secs()
                );
                Ok(())
            } else {
                Err(format!("no active key {kid:?}; see rapport keys list"))
            }
        }
    }
}

fn read_password() -> Result<String, String> {
    if let Ok(password) = std::env::var(PASSWORD_VAR) {
        return Ok(password);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the passwords differ".to_owned());
        }
        return Ok(first);
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        return Err(format!(
            "no password: pipe one on standard input, set {PASSWORD_VAR}, or pass --no-password"
        ));
    }
    Ok(password)
}
