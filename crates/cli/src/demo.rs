//! `portcullis demo` and `portcullis dev-idp`: a first look on one machine. The IdP here is the
//! built-in DEVELOPMENT IdP; it is never the evidence that the gateway works (tests use a real
//! OpenID Provider).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{Context, anyhow};
use clap::Args;
use portcullis_core::config::{RawSettings, validate};
use portcullis_dev_idp::{DevClient, DevIdp, DevIdpConfig, demo_users, sample_app};
use tokio::net::TcpListener;

#[derive(Args)]
pub struct DemoArgs {
    /// Port of the gateway on localhost (the URL you open).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Port of the development IdP on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    idp_port: u16,
    /// SQLite file for the demo's users and sessions.
    #[arg(long, default_value_t = default_db())]
    database: String,
}

#[derive(Args)]
pub struct DevIdpArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// Client id to register.
    #[arg(long, default_value = "portcullis")]
    client_id: String,
    /// Client secret to register.
    #[arg(long, default_value = "dev-idp-client-secret-change-me")]
    client_secret: String,
    /// Redirect URI(s) to register (repeatable).
    #[arg(long, default_value = "http://localhost:8080/api/callback")]
    redirect_uri: Vec<String>,
}

fn default_db() -> String {
    std::env::temp_dir()
        .join("portcullis-demo")
        .join("demo.db")
        .display()
        .to_string()
}

/// 32 CSPRNG bytes, base64url (43 characters): demo client secret and signing secret.
fn random_secret() -> anyhow::Result<String> {
    portcullis_core::oidc::pkce::random_token().map_err(|e| anyhow!("{e}"))
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let gw_listener = TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{} (try --port)", args.port))?;
    let port = gw_listener.local_addr()?.port();
    let idp_listener = TcpListener::bind(("127.0.0.1", args.idp_port)).await?;
    let app_listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let idp_addr = idp_listener.local_addr()?;
    let app_addr = app_listener.local_addr()?;

    // The gateway is reached as `localhost` and the IdP as `127.0.0.1`, so their cookies never
    // mix (browsers share cookies across ports of one host).
    let public = format!("http://localhost:{port}");
    let issuer = format!("http://127.0.0.1:{}", idp_addr.port());
    let client_secret = random_secret()?;
    let idp = DevIdp::new(DevIdpConfig {
        issuer: issuer.parse()?,
        clients: vec![DevClient {
            client_id: "portcullis-demo".into(),
            client_secret: client_secret.clone(),
            redirect_uris: vec![format!("{public}/api/callback")],
            post_logout_redirect_uris: vec![format!("{public}/.portcullis/signed-out")],
            backchannel_logout_uri: None,
        }],
        users: demo_users(),
    })
    .map_err(|e| anyhow!("dev IdP: {e}"))?;
    tokio::spawn(portcullis_dev_idp::serve(idp_listener, idp.router()));
    tokio::spawn(portcullis_dev_idp::serve(
        app_listener,
        sample_app::router(),
    ));

    let raw = RawSettings {
        api_auth: Some("OIDC".into()),
        discovery_url: Some(format!("{issuer}/.well-known/openid-configuration")),
        redirect_url: Some(format!("{public}/api/callback")),
        scopes: Some(
            ["openid", "email", "profile", "groups"]
                .map(String::from)
                .to_vec(),
        ),
        client_id: Some("portcullis-demo".into()),
        client_secret: Some(client_secret),
        // The dev IdP speaks plain http on loopback; a real deployment never sets this.
        allow_insecure_http: Some("true".into()),
        jwt_signing_secret: Some(random_secret()?),
        upstream: Some(format!("http://{app_addr}")),
        database_url: Some(format!("sqlite://{}", args.database)),
        roles: BTreeMap::new(),
        ..Default::default()
    };
    let config = validate(&raw).map_err(|p| anyhow!("demo configuration invalid: {p:?}"))?;
    let mut gw = portcullis_gateway::start(config, gw_listener).await?;
    // Print "Open" only once sign-in works: the dev IdP is local, its metadata loads at once
    // (a person who clicks the link straight away must not meet "starting up").
    for _ in 0..500 {
        if gw.state.primary_idp().provider().is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // One write, errors ignored: a closed stdout (e.g. piped to `head`) must not stop the demo
    // with a panic.
    let banner = [
        String::new(),
        "  Portcullis demo is running (DEVELOPMENT ONLY: built-in test IdP, not for production)"
            .into(),
        String::new(),
        format!("  Open:            {public}/"),
        format!("  Dev IdP:         {issuer}  (demo users below; password = username)"),
        // The app's own address is shown for comparison only: opened directly it has no
        // identity headers, which is the point of putting Portcullis in front.
        format!(
            "  Sample app:      http://{app_addr}  (direct, bypasses Portcullis \u{2014} for comparison)"
        ),
        format!("  Database:        {}", args.database),
        String::new(),
        "  Demo users:      alice / alice   (groups: admins, devs)".into(),
        "                   bob   / bob     (groups: devs)".into(),
        "                   carol / carol   (no groups)".into(),
        String::new(),
        format!("  Session JSON:    {public}/api/session     Sign out: {public}/api/logout"),
        "  Press Ctrl-C to stop.".into(),
        String::new(),
    ]
    .join("\n");
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{banner}");
        let _ = out.flush();
    }
    crate::serve::shutdown_signal().await;
    gw.shutdown();
    gw.wait().await?;
    Ok(())
}

pub async fn run_dev_idp(args: DevIdpArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let issuer = format!("http://{}", listener.local_addr()?);
    let idp = DevIdp::new(DevIdpConfig {
        issuer: issuer.parse()?,
        clients: vec![DevClient {
            client_id: args.client_id.clone(),
            client_secret: args.client_secret,
            redirect_uris: args.redirect_uri,
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
        }],
        users: demo_users(),
    })
    .map_err(|e| anyhow!("dev IdP: {e}"))?;
    eprintln!(
        "DEVELOPMENT IdP — never use in production. Issuer: {issuer}  (client id: {})",
        args.client_id
    );
    eprintln!(
        "Front page (users and endpoints): {issuer}/  Discovery: {issuer}/.well-known/openid-configuration; users alice/alice, bob/bob, carol/carol"
    );
    tokio::select! {
        r = portcullis_dev_idp::serve(listener, idp.router()) => r?,
        _ = crate::serve::shutdown_signal() => {}
    }
    Ok(())
}
