//! `portcullis serve`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use portcullis_core::config;

#[derive(Args)]
pub struct ServeArgs {
    /// YAML configuration file (seed 001 authentication.yaml or seed 000 values.yaml shape).
    #[arg(long, env = "PORTCULLIS_CONFIG")]
    config: Option<PathBuf>,
    /// Check the configuration and exit (0 when valid).
    #[arg(long)]
    check: bool,
}

/// Variables the CLI itself reads (not configuration settings): never "unknown".
const CLI_VARS: &[&str] = &["PORTCULLIS_LOG_FORMAT"];

/// Load configuration from the process environment and the optional file; print every
/// problem, one per line.
pub fn load(path: Option<&PathBuf>) -> anyhow::Result<config::Config> {
    let text = match path {
        Some(p) => Some(
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => None,
    };
    let label = path.map(|p| p.display().to_string()).unwrap_or_default();
    let env = |k: &str| std::env::var(k).ok();
    for v in config::unknown_vars(
        std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| !CLI_VARS.contains(&k.as_str()))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str),
    ) {
        tracing::warn!("unknown setting {v} in the environment (ignored); check its spelling");
    }
    match config::load(&env, text.as_deref().map(|t| (label.as_str(), t))) {
        Ok(c) => Ok(c),
        Err(problems) => {
            eprintln!(
                "portcullis: the configuration has {} problem(s):",
                problems.len()
            );
            for p in &problems {
                eprintln!("  - {p}");
            }
            bail!("refusing to start with an invalid configuration")
        }
    }
}

/// Shown at start-up when `PORTCULLIS_UPSTREAM` is not set: the gateway then signs people in but
/// has nothing to show them, which is easy to miss until someone signs in.
pub const NO_UPSTREAM_WARNING: &str = "no upstream configured (PORTCULLIS_UPSTREAM): signed-in users will see a \"no application configured\" page";

/// Warnings about the configuration that the CLI adds to the validator's own `config.warnings`.
fn cli_warnings(config: &config::Config) -> Vec<&'static str> {
    let mut w = Vec::new();
    if config.upstream.is_none() {
        w.push(NO_UPSTREAM_WARNING);
    }
    w
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = load(args.config.as_ref())?;
    for w in cli_warnings(&config) {
        tracing::warn!("{w}");
    }
    if args.check {
        // `serve` logs these at start (portcullis_gateway::start); `--check` reports exactly
        // what `serve` would, the low-entropy secret warning included.
        for w in &config.warnings {
            tracing::warn!("{w}");
        }
        check_ca_file(&config)?;
        // Ignore a closed stdout rather than panicking.
        let _ = std::io::Write::write_all(&mut std::io::stdout(), b"configuration OK\n");
        return Ok(());
    }
    let mut gw = portcullis_gateway::bind_and_start(config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    gw.shutdown();
    gw.wait().await?;
    Ok(())
}

/// `--check` reads a `file://` custom CA the way start-up does (R-CFG-5), so a PEM that
/// `serve` would refuse is not reported as OK. (An https CA URL is fetched only at start-up.)
fn check_ca_file(config: &config::Config) -> anyhow::Result<()> {
    if let Some(config::CaSource::Url(u)) = &config.oidc.ca
        && u.scheme() == "file"
    {
        let path = u
            .to_file_path()
            .map_err(|_| anyhow::anyhow!("custom CA (OIDC_SIGNER_PEM_URL): bad file URL {u}"))?;
        let pem = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "custom CA (OIDC_SIGNER_PEM_URL): cannot read {}",
                path.display()
            )
        })?;
        config::check_ca_pem(&pem)
            .map_err(|e| anyhow::anyhow!("custom CA (OIDC_SIGNER_PEM_URL): {e}"))?;
    }
    Ok(())
}

/// Ctrl-C or SIGTERM (Kubernetes stops pods with SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
