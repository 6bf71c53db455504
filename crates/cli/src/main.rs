//! `portcullis`: one binary, several commands (DESIGN.md). `anyhow` lives only here.

mod demo;
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
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init();
    let result = match cli.command {
        Command::Serve(a) => serve::run(a).await,
        Command::Demo(a) => demo::run(a).await,
        Command::DevIdp(a) => demo::run_dev_idp(a).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
