//! The command-line side: `login`, `whoami`, `logout` and `token …`, talking to a Portcullis
//! server with an API token that the person created on the account page and pasted here.
//!
//! Every failure is one line on stderr and a documented exit code ([`Exit`]), so scripts can
//! tell "log in again" from "the server is down".

mod api;
pub mod config;
mod sign_in;

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use api::{Api, Failure};

/// The exit codes scripts can rely on besides 0 (documented in the README).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Anything not listed below (a local file problem, an unexpected answer).
    Other = 1,
    /// Bad usage: a malformed URL, a missing argument (clap uses 2 as well).
    Usage = 2,
    /// Not logged in to this server: run `portcullis login`.
    NotLoggedIn = 3,
    /// The server refused the token: invalid, revoked, expired, or its user is inactive.
    Refused = 4,
    /// The server does not allow this with an API token (e.g. managing tokens).
    Forbidden = 5,
    /// The server cannot be reached (down, wrong port, DNS, timeout).
    Unreachable = 6,
    /// TLS failed (untrusted or mismatched certificate, not TLS at all).
    Tls = 7,
    /// The address answers, but it is not a Portcullis server.
    NotPortcullis = 8,
    /// The server answered with a temporary or internal error (429, 5xx).
    ServerError = 9,
}

/// A failure with its exit code and the one line shown.
#[derive(Debug)]
pub struct Error {
    pub exit: Exit,
    pub message: String,
}

impl Error {
    pub fn new(exit: Exit, message: impl Into<String>) -> Error {
        Error {
            exit,
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for Error {
    fn from(e: anyhow::Error) -> Self {
        Error::new(Exit::Other, crate::error_chain(&e))
    }
}

/// The server address, for the commands that take one: `--url`, else `PORTCULLIS_URL`, else
/// the one saved by `login`.
#[derive(Args, Clone, Debug, Default)]
pub struct Target {
    /// Portcullis's address, e.g. https://gateway.example.com (default: $PORTCULLIS_URL, then
    /// the address saved by `portcullis login`).
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    pub target: Target,
    /// Sign in through your browser (any identity provider) and approve there; the CLI
    /// receives a new API token at a one-time address on this computer.
    #[arg(long, conflicts_with = "device")]
    pub browser: bool,
    /// For a terminal without a browser: shows a code to enter on the account page in any
    /// browser where you can sign in.
    #[arg(long)]
    pub device: bool,
    /// With --browser or --device: days until the new token expires (1–365).
    #[arg(long, value_name = "DAYS", default_value_t = 90, value_parser = clap::value_parser!(i64).range(1..=365))]
    pub expires: i64,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// List your API tokens.
    List,
    /// Create an API token (shown once).
    Create {
        /// A name for the token, e.g. the machine or script that will use it.
        name: String,
        /// Days until it expires (1–365; default: it does not expire).
        #[arg(long, value_name = "DAYS")]
        expires: Option<i64>,
    },
    /// Revoke one of your API tokens by its id.
    Revoke {
        /// The token's id (the 12 characters after `pcs_`).
        id: String,
    },
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    pub command: TokenCommand,
}

/// Print the outcome and turn it into the process's exit code.
pub fn finish(r: Result<(), Error>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {}", e.message);
            ExitCode::from(e.exit as u8)
        }
    }
}

/// The address to use: `--url` > `PORTCULLIS_URL` > saved. `None` when none is given.
fn chosen_url(target: &Target, saved: Option<&config::Saved>) -> Option<String> {
    target
        .url
        .clone()
        .or_else(|| {
            std::env::var("PORTCULLIS_URL")
                .ok()
                .filter(|v| !v.is_empty())
        })
        .or_else(|| saved.map(|s| s.url.clone()))
}

/// The server and the token to use for a command. `PORTCULLIS_TOKEN` wins over the saved
/// token; the saved token is only ever sent to the address it was saved for.
fn session(target: &Target) -> Result<Api, Error> {
    let saved = config::load()?;
    let url = chosen_url(target, saved.as_ref()).ok_or_else(|| {
        Error::new(
            Exit::NotLoggedIn,
            "not logged in: run `portcullis login --url URL` first",
        )
    })?;
    let base = api::base_url(&url)?;
    let token = match std::env::var("PORTCULLIS_TOKEN")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(t) => t,
        None => match saved {
            Some(s) if api::base_url(&s.url).ok().as_ref() == Some(&base) => s.token,
            _ => {
                return Err(Error::new(
                    Exit::NotLoggedIn,
                    format!("not logged in to {base}: run `portcullis login --url {base}`"),
                ));
            }
        },
    };
    Api::new(base, token)
}

/// `portcullis login`: read the token (hidden prompt on a terminal, standard input
/// otherwise), check it with the server, then save address and token.
pub async fn login(args: LoginArgs) -> Result<(), Error> {
    let saved = config::load()?;
    let url = chosen_url(&args.target, saved.as_ref()).ok_or_else(|| {
        Error::new(
            Exit::Usage,
            "which server? Use `portcullis login --url https://gateway.example.com`",
        )
    })?;
    let base = api::base_url(&url)?;
    if args.browser || args.device {
        let anonymous = Api::new(base.clone(), String::new())?;
        let minted = if args.browser {
            sign_in::by_browser(&anonymous, Some(args.expires)).await?
        } else {
            sign_in::by_device(&anonymous, Some(args.expires)).await?
        };
        return save_and_greet(&base, minted.token, Some(&minted.name)).await;
    }
    let token = read_token(&base)?;
    if portcullis_core::apitoken::parse(&token).is_none() {
        return Err(Error::new(
            Exit::Refused,
            format!(
                "that is not a Portcullis API token (they look like pcs_…, 60 characters): create one at {}",
                api::account_url(&base)
            ),
        ));
    }
    save_and_greet(&base, token, None).await
}

/// Check the token with the server (who it signs in as), then save address and token.
async fn save_and_greet(base: &url::Url, token: String, minted: Option<&str>) -> Result<(), Error> {
    let api = Api::new(base.clone(), token.clone())?;
    let who = api.session().await.map_err(|f| f.into_error(base))?;
    let path = config::save(&config::Saved {
        url: base.to_string(),
        token,
    })?;
    println!("Logged in to {base} as {}.", who.display_name());
    match minted {
        Some(name) => println!(
            "New API token \"{name}\" saved in {} (readable by you only).",
            path.display()
        ),
        None => println!("Token saved in {} (readable by you only).", path.display()),
    }
    Ok(())
}

fn read_token(base: &url::Url) -> Result<String, Error> {
    let text = if std::io::stdin().is_terminal() {
        eprintln!(
            "Create an API token at {} and paste it here.",
            api::account_url(base)
        );
        rpassword::prompt_password("API token (input hidden): ")
            .map_err(|e| Error::new(Exit::Other, format!("cannot read the token: {e}")))?
    } else {
        let mut s = String::new();
        std::io::stdin()
            .take(4096)
            .read_to_string(&mut s)
            .map_err(|e| {
                Error::new(
                    Exit::Other,
                    format!("cannot read the token from standard input: {e}"),
                )
            })?;
        s
    };
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(Error::new(Exit::Usage, "no token given"));
    }
    Ok(token)
}

/// `portcullis whoami`.
pub async fn whoami(target: Target) -> Result<(), Error> {
    let api = session(&target)?;
    let who = api.session().await.map_err(|f| f.into_error(api.base()))?;
    println!("{}", who.display_name());
    println!("server: {}", api.base());
    if !who.roles.is_empty() {
        println!("roles:  {}", who.roles.join(", "));
    }
    if let Some(t) = &who.api_token {
        println!(
            "token:  {} ({}), {}",
            t.name,
            t.id,
            match t.expires_at {
                Some(e) => format!("expires {}", api::date(e)),
                None => "does not expire".into(),
            }
        );
    }
    Ok(())
}

/// `portcullis logout`: forget the saved token on this computer.
pub fn logout() -> Result<(), Error> {
    match config::remove()? {
        Some(s) => {
            let account = api::base_url(&s.url)
                .map(|b| api::account_url(&b).to_string())
                .unwrap_or_else(|_| "the account page".into());
            println!(
                "Logged out of {}: the token was removed from this computer.",
                s.url
            );
            println!("The token itself still works until you revoke it at {account}.");
        }
        None => println!("Not logged in: there was no saved token to remove."),
    }
    Ok(())
}

/// `portcullis token …`.
pub async fn token(args: TokenArgs) -> Result<(), Error> {
    let api = session(&args.target)?;
    let base = api.base().clone();
    let r = match args.command {
        TokenCommand::List => api.list().await.map(|tokens| {
            if tokens.is_empty() {
                println!("No tokens.");
            }
            for t in tokens {
                println!(
                    "{}  {}  created {}  {}  last used {}",
                    t.id,
                    t.name,
                    api::date(t.created_at),
                    match t.expires_at {
                        Some(e) if t.expired => format!("expired {}", api::date(e)),
                        Some(e) => format!("expires {}", api::date(e)),
                        None => "no expiry".into(),
                    },
                    t.last_used_at
                        .map(api::date)
                        .unwrap_or_else(|| "never".into()),
                );
            }
        }),
        TokenCommand::Create { name, expires } => api.create(&name, expires).await.map(|t| {
            eprintln!(
                "Created token {} ({}). It is shown only once:",
                t.name, t.id
            );
            println!("{}", t.token);
        }),
        TokenCommand::Revoke { id } => api.revoke(&id).await.map(|()| {
            println!("Revoked token {id}.");
        }),
    };
    r.map_err(|f| match f {
        // A token may not manage tokens: only a browser session may.
        Failure::Forbidden => Error::new(
            Exit::Forbidden,
            format!(
                "an API token cannot list, create or revoke tokens; do it in your browser at {}",
                api::account_url(&base)
            ),
        ),
        f => f.into_error(&base),
    })
}
