//! Start a gateway on a listener: open the store, build the state, start the IdP loader and
//! serve until shut down. Used by `portcullis serve`, `portcullis demo` and the tests.

use std::net::SocketAddr;

use portcullis_core::config::{Config, DatabaseUrl};
use portcullis_store::Store;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tower::Service;

use crate::app::router;
use crate::idp::loader;
use crate::state::{AppState, StartError};

/// A running gateway.
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    loader: tokio::task::JoinHandle<()>,
}

impl RunningGateway {
    /// Wait until the server stops (after [`RunningGateway::shutdown`] or a fatal error).
    pub async fn wait(mut self) -> std::io::Result<()> {
        let r = (&mut self.server).await.unwrap_or(Ok(()));
        self.loader.abort();
        r
    }

    /// Stop accepting connections and finish in-flight requests.
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.shutdown();
        self.loader.abort();
    }
}

/// Open the configured store.
pub async fn open_store(config: &Config) -> Result<Store, StartError> {
    match &config.database {
        DatabaseUrl::Sqlite(path) => {
            if let Some(dir) = std::path::Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StartError::Store(portcullis_store::StoreError::Corrupt(format!(
                        "cannot create {}: {e}",
                        dir.display()
                    )))
                })?;
            }
            Ok(Store::open_sqlite(path).await?)
        }
    }
}

/// Start serving on `listener`. Returns once the server runs; the IdP loads in the background.
pub async fn start(config: Config, listener: TcpListener) -> Result<RunningGateway, StartError> {
    portcullis_core::jose::install_crypto_provider();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let ca = crate::state::load_ca(&config).await?;
    let store = open_store(&config).await?;
    let state = AppState::new(config, store, ca).await?;
    let addr = listener.local_addr().map_err(|e| StartError::Listen {
        addr: "?".into(),
        source: e,
    })?;
    let loader = loader::spawn(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let app = router(state.clone());
    let server = tokio::spawn(serve(listener, app, rx));
    tracing::info!(%addr, "Portcullis listening");
    Ok(RunningGateway {
        addr,
        state,
        shutdown: Some(tx),
        server,
        loader,
    })
}

/// Longest wait for a client's request headers (R-RS-1, slowloris).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle HTTP/2 connections are pinged at this interval and dropped when silent.
const H2_KEEPALIVE: Duration = Duration::from_secs(60);
/// How long in-flight requests may run after shutdown starts.
const DRAIN: Duration = Duration::from_secs(30);
/// Concurrent connections (R-RS-1); beyond it new connections wait in the kernel backlog.
pub const MAX_CONNECTIONS: usize = 10_000;

/// The accept loop. Hand-rolled on hyper-util (instead of `axum::serve`) for what axum does not
/// expose: a header read timeout, a connection cap and graceful draining.
async fn serve(
    listener: TcpListener,
    app: axum::Router,
    mut shutdown: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let mut make = app.into_make_service_with_connect_info::<SocketAddr>();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEPALIVE)
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(svc) = make.call(peer).await;
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let conn = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(svc),
            );
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after {DRAIN:?}; closing them");
    }
    Ok(())
}

/// Bind `config.listen` and start.
pub async fn bind_and_start(config: Config) -> Result<RunningGateway, StartError> {
    let addr = config.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Listen {
            addr: addr.to_string(),
            source: e,
        })?;
    start(config, listener).await
}
