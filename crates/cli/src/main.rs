//! `portcullis`: one binary, several commands (DESIGN.md). `anyhow` lives only here.

mod account;
mod demo;
mod doctor;
mod logging;
mod serve;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: under load glibc's arena locks showed up as the top
/// user-space cost of a proxied request (perf, bench/load.sh); mimalloc's per-thread heaps
/// avoid that contention.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "OpenID Connect authentication gateway for self-hosted software",
    long_about = "Portcullis signs people in against your organisation's OpenID Connect IdP, keeps their \
session in HttpOnly cookies, and forwards signed-in requests to your application with identity headers."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: auth endpoints plus the reverse proxy to PORTCULLIS_UPSTREAM.
    ///
    /// Configuration comes from the environment (seed 000's OIDC_* / JWT_SIGNING_SECRET names and
    /// PORTCULLIS_*) and, optionally, a YAML file (seed 001's authentication.yaml or seed 000's
    /// values.yaml shape); the environment wins. Invalid configuration stops start-up with one
    /// line per problem.
    Serve(serve::ServeArgs),
    /// Everything on one machine for a first look: gateway + SQLite + a built-in DEVELOPMENT
    /// IdP + a sample app. Prints the URL and the demo users. Never for production.
    Demo(demo::DemoArgs),
    /// Run only the built-in DEVELOPMENT identity provider (for local experiments; never
    /// production: in-memory, fresh keys each start, passwords shown on its login page).
    DevIdp(demo::DevIdpArgs),
    /// Check a configuration against the real IdP, the upstream and the database, and say how
    /// to fix every problem (exit 0: no problem, 1: problems found, 2: could not run).
    Doctor(doctor::DoctorArgs),
    /// Log in to a Portcullis server: with --browser (sign in and approve in your browser)
    /// or --device (enter a code on the account page from any browser), or by pasting an API
    /// token created on the account page (/.portcullis/account) when asked (or on standard input).
    Login(account::LoginArgs),
    /// Show who the saved (or $PORTCULLIS_TOKEN) API token signs in as.
    Whoami(account::Target),
    /// Forget the saved API token on this computer (revoke it on the account page to end it).
    Logout,
    /// List, create or revoke your API tokens.
    Token(account::TokenArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The command-line client commands: one line per failure and their own exit codes, no
    // log output.
    match cli.command {
        Command::Login(a) => return account::finish(account::login(a).await),
        Command::Whoami(t) => return account::finish(account::whoami(t).await),
        Command::Logout => return account::finish(account::logout()),
        Command::Token(a) => return account::finish(account::token(a).await),
        // A report on stdout and its own exit codes; no log output.
        Command::Doctor(a) => return doctor::run(a).await,
        _ => {}
    }
    logging::init();
    let result = match cli.command {
        Command::Serve(a) => serve::run(a).await,
        Command::Demo(a) => demo::run(a).await,
        Command::DevIdp(a) => demo::run_dev_idp(a).await,
        Command::Login(_)
        | Command::Whoami(_)
        | Command::Logout
        | Command::Token(_)
        | Command::Doctor(_) => Ok(()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {}", error_chain(&e));
            std::process::ExitCode::from(2)
        }
    }
}

/// `outer: cause: cause…`, skipping a cause whose text is already in what was printed: some
/// errors (e.g. `cannot listen on …: {source}`) show their source in their own message and
/// also return it from `source()`, and the cause should be printed once.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like the gateway's `StartError::Listen`: the source in the message and in
    /// `source()`.
    #[derive(Debug)]
    struct Listen {
        addr: &'static str,
        source: std::io::Error,
    }

    impl std::fmt::Display for Listen {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot listen on {}: {}", self.addr, self.source)
        }
    }

    impl std::error::Error for Listen {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let io = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let text = io.to_string();
        let e = anyhow::Error::new(Listen {
            addr: "127.0.0.1:1",
            source: io,
        });
        assert_eq!(
            error_chain(&e),
            format!("cannot listen on 127.0.0.1:1: {text}")
        );
        // Causes not already shown are kept, in order.
        let e = anyhow::Error::new(std::io::Error::other("disk full"))
            .context("cannot write")
            .context("saving the session");
        assert_eq!(
            error_chain(&e),
            "saving the session: cannot write: disk full"
        );
    }
}
