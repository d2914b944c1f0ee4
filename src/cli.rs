//! The command line: `serve` (default), `migrate`, `openapi`, `token`, `user create`.

use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::auth::jwt::{self, JwtKeys, SubjectKind};
use crate::auth::{Actor, Role};
use crate::config::{Settings, parse_duration};
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
    /// Print a signed token, for scripts and first steps: TOKEN=$(rapport token --role admin)
    Token {
        /// Role the token acts with: admin, manager, agent or viewer.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Who the token is for, recorded as the actor of what it does.
        #[arg(long, default_value = "rapport-cli")]
        subject: String,
        /// Lifetime (30s, 15m, 12h, 7d); RAPPORT_TOKEN_TTL by default.
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<Duration>,
    },
    /// Manage staff users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
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
        Command::Token { role, subject, ttl } => {
            let secret = match &settings.jwt.secret {
                Some(secret) => secret.expose().as_bytes().to_vec(),
                None => {
                    db::prepare(&settings.database).await?;
                    let mut conn =
                        db::connect(&settings.database.url, settings.database.connect_timeout)
                            .await?;
                    jwt::signing_secret(&settings.jwt, &mut conn).await?
                }
            };
            let keys = JwtKeys::new(&secret, &settings.jwt);
            let ttl = ttl.unwrap_or(settings.jwt.token_ttl);
            let minted = keys.mint(SubjectKind::Service, &subject, Some(role), vec![], ttl)?;
            println!("{}", minted.token);
            eprintln!(
                "rapport: {role} token for {subject:?}, valid until {}",
                minted.expires_at.to_rfc3339()
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
            let input = NewUser {
                email,
                name,
                role,
                access: None,
                password,
            }
            .validate()
            .map_err(|e| {
                let fields: Vec<String> = e
                    .errors()
                    .iter()
                    .map(|f| format!("{} {}", f.field, f.message))
                    .collect();
                format!("invalid user: {}", fields.join("; "))
            })?;
            db::prepare(&settings.database).await?;
            let mut conn =
                db::connect(&settings.database.url, settings.database.connect_timeout).await?;
            let user = users::create(&mut conn, &Actor::Service("cli".to_owned()), input)
                .await
                .map_err(|e| format!("cannot create the user: {e}"))?;
            println!("{}", user.id);
            eprintln!("rapport: created {} user {}", user.role, user.email);
            Ok(())
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
